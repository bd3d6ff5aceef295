/* Lumi chat: a reply's parts and the forms; see blocks/support-chat.liquid. */
let n = 0;
const safe = (url) => (/^(https?:|\/)/.test(url || '') ? url : null);

export function render(c, out, list, history, escalated) {
  const { h, t } = c;
  for (const p of list) {
    let el = null;
    if (p.type === 'order' && p.order) {
      el = h('div', { class: 'lumi-card' }, h('p', { class: 'lumi-card__title' }, t.order + ' ' + p.order.name),
        h('ul', {}, ...(p.order.line_items || []).map((i) => h('li', {}, i.quantity + ' × ' + i.title))));
    } else if (p.type === 'tracking_link' && safe(p.url)) {
      el = h('a', { class: 'lumi-link', href: p.url, target: '_blank', rel: 'noopener' },
        t.track + ': ' + [p.carrier, p.number].filter(Boolean).join(' '), h('span', { class: 'lumi-vh' }, ` (${t.new_tab})`));
    } else if (p.type === 'products' && p.products) {
      el = h('ul', { class: 'lumi-products', 'aria-label': t.products }, ...p.products.slice(0, 3).map((x) => {
        const src = safe((x.image && x.image.url) || x.image);
        const href = /^\/\w/.test(x.url) ? c.root.dataset.home + x.url.slice(1) : safe(x.url); // under the locale root
        return h('li', {}, h('a', { href },
          src ? h('img', { src, alt: '', width: 56, height: 56, loading: 'lazy' }) : h('span', { class: 'lumi-products__noimg' }),
          h('span', {}, x.title), h('span', { class: 'lumi-products__price' }, x.price_formatted)));
      }));
    } else if (history) {
      continue; // suggestions and forms belong to their moment
    } else if (p.type === 'suggested_replies' && p.replies) {
      el = h('div', { class: 'lumi-suggest', role: 'group', 'aria-label': t.suggestions },
        ...p.replies.map((r) => h('button', { type: 'button', class: 'lumi-btn lumi-btn--quiet', onclick: () => c.send(r) }, r)));
    } else if (p.type === 'verify_order') {
      el = verification(c, c.last);
    }
    escalated = escalated || p.type === 'escalated';
    if (el) out.el.append(el);
  }
  if (escalated && !history && !c.escalated) out.el.append(escalation(c));
}

// Labelled fields, each with an inline error (aria-describedby), and a line for the whole form.
function form(c, title, fields, submit, onsubmit, info) {
  const h = c.h;
  const id = 'lumi-f' + ++n;
  const inputs = {};
  const el = h('form', { class: 'lumi-form', novalidate: true, 'aria-labelledby': id + 't' },
    h('p', { class: 'lumi-form__title', id: id + 't' }, title),
    info ? h('p', { id: id + 'i' }, info) : null,
    ...fields.map(([name, label, type, auto]) => {
      inputs[name] = h('input', { id: id + name, name, type, autocomplete: auto, 'aria-describedby': `${id + name}e ${info ? id + 'i ' : ''}${id}e` });
      return h('div', { class: 'lumi-field' }, h('label', { for: id + name }, label), inputs[name], h('p', { class: 'lumi-err', id: id + name + 'e' }));
    }),
    h('p', { class: 'lumi-err', id: id + 'e' }), h('button', { class: 'lumi-btn' }, submit));
  const say = (name, text) => { // under a field (then invalid and focused), or for the form (name '')
    el.querySelector(`#${id + name}e`).textContent = text || '';
    if (!name) return;
    inputs[name].toggleAttribute('aria-invalid', !!text);
    if (text) inputs[name].focus();
  };
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (el.dataset.busy) return;
    [...Object.keys(inputs), ''].forEach((name) => say(name));
    el.dataset.busy = 1;
    const value = (name) => inputs[name].value.trim();
    const request = async (path, body) => {
      const res = await c.post(c.url(path), body).catch(() => null);
      const data = res ? await c.json(res) : {};
      return { ok: res && res.ok, code: data.error && data.error.code, data, text: c.error(res, data.error) };
    };
    const done = (text) => { // the form gives way to a note; focus goes back to the message input
      el.replaceWith(h('p', { class: 'lumi-note' }, text));
      c.input.focus();
    };
    try {
      await onsubmit(value, say, request, done);
    } finally {
      delete el.dataset.busy;
    }
  });
  return el;
}

function verification(c, question) {
  const t = c.t;
  return form(c, t.verify_title, [['order', t.verify_order, 'text', 'off'], ['email', t.verify_email, 'email', 'email']],
    t.verify_submit, async (value, say, request, done) => {
      const r = await request('/verify', { order_name: value('order'), email: value('email') });
      if (r.ok) {
        done(t.verify_done.replace('{name}', r.data.order.name));
        if (question) c.send(question, true); // the question that asked for it, answered now
      } else if (r.code === 'invalid_order_name') say('order', t.bad_order);
      else if (r.code === 'invalid_email') say('email', t.bad_email);
      else say('', r.code === 'verification_failed' ? t.verify_failed : r.text);
    });
}

function escalation(c) {
  const t = c.t;
  return form(c, t.escalate_title, [['reply', t.escalate_email, 'email', 'email']], t.escalate_submit,
    async (value, say, request, done) => {
      const email = value('reply');
      const r = await request('/escalate', email ? { email } : {});
      if (r.ok) {
        c.escalated = true;
        done(t.escalate_done);
      } else say(r.code === 'invalid_email' ? 'reply' : '', r.code === 'invalid_email' ? t.bad_email : r.text);
    }, t.escalate_note);
}
