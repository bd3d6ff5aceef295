/* devshop's admin frame, the parent side of the App Bridge stand-in (app-bridge.js runs in the app's iframe).
 * It draws what the Shopify admin draws around an embedded app: the app's nav in the sidebar (from <s-app-nav>),
 * the title bar, the contextual save bar, toasts and a leave-confirmation dialog; and it answers idToken and
 * extensions requests from devshop. It accepts messages from its iframe at the app's origin only.
 * The real admin is a single-page app that swaps the iframe's URL itself; this one follows a nav link by loading
 * devshop's admin page for that path, which gives the iframe fresh launch params (id_token, hmac) the same way.
 */
(() => {
  'use strict';
  // This runs in <head>: messages that arrive before the page is parsed wait here.
  const early = [];
  let onMessage = null;
  window.addEventListener('message', (event) => (onMessage ? onMessage(event) : early.push(event)));
  document.addEventListener('DOMContentLoaded', () => {
    start();
    early.splice(0).forEach((event) => onMessage(event));
  });

  function start() {
    const SOURCE = 'devshop-app-bridge';
    const LAUNCH_PARAMS = ['embedded', 'hmac', 'host', 'id_token', 'locale', 'session', 'shop', 'timestamp'];
    const config = JSON.parse(document.getElementById('devshop-admin-config').textContent);
    const iframe = document.getElementById('app-iframe');
    const $ = (id) => document.getElementById(id);
    const navCacheKey = `devshop-app-nav:${config.adminBase}`;
    let appUrl = config.appBase;
    let navItems = [];
    let saveBar = { visible: false, id: null, discardConfirmation: false };

    const reply = (message) => iframe.contentWindow.postMessage({ source: SOURCE, ...message }, config.appOrigin);

    // -- app URL <-> admin URL --
    const basePath = new URL(config.appBase).pathname.replace(/\/$/, '');
    const adminUrlFor = (href) => {
      const url = new URL(href, appUrl);
      if (url.origin !== config.appOrigin) return null;
      let rest;
      if (url.pathname === basePath || url.pathname === `${basePath}/`) rest = '';
      else if (url.pathname.startsWith(`${basePath}/`)) rest = url.pathname.slice(basePath.length + 1);
      else return null;
      const query = new URLSearchParams(url.search);
      LAUNCH_PARAMS.forEach((name) => query.delete(name));
      const search = query.toString();
      return config.adminBase + (rest ? `/${rest}` : '') + (search ? `?${search}` : '');
    };
    // The item to highlight: the longest nav path the app's current path is at or under (a parent stays lit on its
    // sub-pages); the app's name (home) when none is.
    const currentItem = () => {
      const path = new URL(appUrl).pathname.replace(/\/$/, '');
      let best = null;
      for (const item of navItems) {
        const itemPath = new URL(item.href).pathname.replace(/\/$/, '');
        const under = path === itemPath || path.startsWith(`${itemPath}/`);
        if (!item.home && under && (!best || itemPath.length > new URL(best.href).pathname.length)) best = item;
      }
      return best;
    };

    // -- sidebar nav (and the narrow-screen menu) --
    const renderNav = () => {
      const current = currentItem();
      const home = navItems.find((item) => item.home);
      for (const homeLink of document.querySelectorAll('a.app-home')) {
        if (home) homeLink.href = adminUrlFor(home.href) || config.adminBase;
        if (current) homeLink.removeAttribute('aria-current'); else homeLink.setAttribute('aria-current', 'page');
      }
      for (const list of [$('app-nav'), $('app-nav-menu')]) {
        const keep = Array.from(list.children).filter((li) => li.querySelector('a.app-home'));
        list.replaceChildren(...keep, ...navItems.filter((item) => !item.home).map((item) => {
          const li = document.createElement('li');
          const link = document.createElement('a');
          link.textContent = item.label;
          link.href = adminUrlFor(item.href) || item.href;
          if (item === current) link.setAttribute('aria-current', 'page');
          li.appendChild(link);
          return li;
        }));
      }
    };
    try { navItems = JSON.parse(sessionStorage.getItem(navCacheKey) || '[]'); } catch { navItems = []; }
    renderNav();

    // -- dialog (leave confirmation, discard confirmation) --
    const confirmDialog = (heading, text, okLabel) => new Promise((resolve) => {
      const dialog = $('devshop-dialog');
      $('devshop-dialog-heading').textContent = heading;
      $('devshop-dialog-text').textContent = text;
      $('devshop-dialog-ok').textContent = okLabel;
      dialog.returnValue = '';
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
    });
    const confirmLeave = () => confirmDialog('Leave page with unsaved changes?',
      'Leaving this page will delete all unsaved changes.', 'Leave page');

    // Nav links while the save bar shows: ask first, as the admin does.
    document.addEventListener('click', async (event) => {
      const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
      if (!link || !saveBar.visible || !link.closest('.sidebar, .nav-menu')) return;
      event.preventDefault();
      if (await confirmLeave()) location.href = link.href;
    });

    // -- save bar --
    const showSaveBar = (state) => {
      saveBar = state;
      $('save-bar').hidden = !state.visible;
    };
    $('save-bar-save').addEventListener('click', () => reply({ type: 'saveBarAction', id: saveBar.id, action: 'save' }));
    $('save-bar-discard').addEventListener('click', async () => {
      if (saveBar.discardConfirmation && !await confirmDialog('Discard all unsaved changes?',
        'If you discard changes, you’ll delete any edits you made since you last saved.', 'Discard changes')) return;
      reply({ type: 'saveBarAction', id: saveBar.id, action: 'discard' });
    });

    // -- toasts --
    const toasts = new Map();
    const hideToast = (id) => {
      const element = toasts.get(id);
      if (element) element.remove();
      toasts.delete(id);
    };
    const showToast = ({ id, message, isError, duration }) => {
      hideToast(id);
      const element = document.createElement('div');
      element.className = isError ? 'toast toast-error' : 'toast';
      element.dataset.toastId = id;
      const text = document.createElement('span');
      text.textContent = message;
      const close = document.createElement('button');
      close.type = 'button';
      close.setAttribute('aria-label', 'Dismiss');
      close.textContent = '×';
      close.addEventListener('click', () => hideToast(id));
      element.append(text, close);
      $('toasts').appendChild(element);
      toasts.set(id, element);
      setTimeout(() => hideToast(id), duration);
    };

    // -- answers from devshop --
    const fromDevshop = async (url, options, pick) => {
      try {
        const response = await fetch(url, { credentials: 'same-origin', ...options });
        const body = await response.json();
        if (!response.ok) return { error: (body.error && body.error.message) || `HTTP ${response.status}` };
        return pick(body);
      } catch (err) {
        return { error: String(err) };
      }
    };

    onMessage = async (event) => {
      const data = event.data;
      if (event.source !== iframe.contentWindow || event.origin !== config.appOrigin
          || !data || data.source !== SOURCE) return;
      switch (data.type) {
        case 'ready': {
          appUrl = data.url;
          reply({ type: 'config', shop: config.shop, host: config.host });
          const admin = adminUrlFor(appUrl);
          if (admin && admin !== location.pathname + location.search) history.replaceState(null, '', admin);
          showSaveBar({ visible: false, id: null, discardConfirmation: false });
          renderNav();
          break;
        }
        case 'nav':
          navItems = Array.isArray(data.items) ? data.items.filter((i) => i && typeof i.href === 'string') : [];
          sessionStorage.setItem(navCacheKey, JSON.stringify(navItems));
          renderNav();
          break;
        case 'title':
          $('app-title').textContent = String(data.title || config.appName);
          document.title = `${data.title || config.appName} · ${config.shopName} · Shopify (devshop)`;
          break;
        case 'saveBar':
          showSaveBar({ visible: !!data.visible, id: data.id || null, discardConfirmation: !!data.discardConfirmation });
          break;
        case 'toast':
          if (data.hide) hideToast(String(data.id)); else showToast({ id: String(data.id), message: String(data.message),
            isError: !!data.isError, duration: Number(data.duration) || 5000 });
          break;
        case 'idToken':
          reply({ type: 'idToken', id: data.id, ...await fromDevshop(config.tokenUrl, { method: 'POST' },
            (body) => ({ token: body.id_token })) });
          break;
        case 'extensions':
          reply({ type: 'extensions', id: data.id, ...await fromDevshop(config.extensionsUrl, {},
            (body) => ({ extensions: body.extensions })) });
          break;
        case 'leaveConfirmation':
          reply({ type: 'leaveConfirmation', id: data.id, confirmed: await confirmLeave() });
          break;
        default:
          break;
      }
    };
  }
})();
