/* Lumi chat launcher (see blocks/support-chat.liquid): after load, at idle, /config says whether the chat is on;
   the panel is imported on the first click. */
(() => {
  const start = async () => {
    const root = document.getElementById('lumi-chat');
    if (!root || root.dataset.state) return;
    root.dataset.state = 'off';
    // not a schema stylesheet: that would block rendering (support-chat.liquid)
    const css = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: root.dataset.css0 });
    const styled = new Promise((ok) => { css.onload = () => ok(1); css.onerror = () => ok(0); });
    document.head.append(css);
    let config = null;
    try {
      const res = await fetch(root.dataset.home + 'apps/lumi/config');
      if (res.ok) config = await res.json();
    } catch (err) { /* offline or the app is down: no launcher */ }
    if (!config || !config.chat_enabled || !(await styled)) return;
    const widget = config.widget || {};
    if (widget.primary_color) root.style.setProperty('--lumi-bg', widget.primary_color);
    if (widget.text_color) root.style.setProperty('--lumi-fg', widget.text_color);
    if (root.dataset.position === 'auto') root.dataset.position = widget.position === 'bottom-left' ? 'bottom_left' : 'bottom_right';
    const button = root.querySelector('.lumi-chat__launcher');
    let opening;
    button.addEventListener('click', () => {
      opening = opening || import(root.dataset.panel);
      opening.then((panel) => panel.open(root));
    });
    button.hidden = false;
    root.dataset.state = 'ready';
  };
  const idle = () => (window.requestIdleCallback || setTimeout)(start);
  if (document.readyState === 'complete') idle();
  else addEventListener('load', idle, { once: true });
})();
