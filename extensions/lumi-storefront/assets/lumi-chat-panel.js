/* Lumi chat panel: see blocks/support-chat.liquid. Parts and forms: lumi-chat-parts.js. */
let c;
let session;
let starting;
let direct = true;
let busy = false;

const h = (tag, attrs, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v != null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...kids.filter((kid) => kid != null));
  return el;
};
const sleep = (s) => new Promise((done) => setTimeout(done, s * 1000));
const retryAfter = (res) => Math.max(1, parseInt(res.headers.get('Retry-After'), 10) || 1);
const json = (res) => res.json().catch(() => ({}));
const url = (path) => c.root.dataset.home + 'apps/lumi/chat/sessions' + (session ? '/' + session.id + path : '');
const post = (to, body, accept) => fetch(to, { method: 'POST', body: JSON.stringify(body), headers: {
  'Content-Type': 'application/json', 'X-Lumi-Session-Secret': session ? session.secret : '', Accept: accept || 'application/json' } });
const keep = (value) => { // sessionStorage only: gone with the tab
  try {
    const key = 'lumi-chat:' + c.root.dataset.shop;
    if (value === undefined) return JSON.parse(sessionStorage.getItem(key));
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch (err) { return null; }
};

export async function open(root) {
  if (!c) {
    c = build(root);
    c.parts = import(root.dataset.parts);
    c.ready = new Promise((done) => document.head.append(h('link', { rel: 'stylesheet', href: root.dataset.css, onload: done, onerror: done })));
  }
  await c.ready;
  if (c.dialog.open) return;
  c.dialog.showModal();
  c.launcher.setAttribute('aria-expanded', 'true');
  fit();
  c.input.focus();
  starting = starting || start();
}

function build(root) {
  const t = JSON.parse(root.querySelector('.lumi-chat__text').textContent);
  const launcher = root.querySelector('.lumi-chat__launcher');
  const input = h('input', { id: 'lumi-chat-input', type: 'text', autocomplete: 'off', enterkeyhint: 'send', maxlength: 2000 });
  const log = h('div', { class: 'lumi-panel__log', role: 'log', 'aria-live': 'polite', 'aria-labelledby': 'lumi-chat-title', tabindex: 0 });
  const form = h('form', { class: 'lumi-panel__form', onsubmit: (e) => { e.preventDefault(); send(input.value); } },
    h('label', { for: 'lumi-chat-input', class: 'lumi-vh' }, t.message), input, h('button', { class: 'lumi-btn' }, t.send));
  const dialog = h('dialog', { class: 'lumi-panel', 'aria-labelledby': 'lumi-chat-title' },
    h('div', { class: 'lumi-panel__head' }, h('h2', { id: 'lumi-chat-title' }, t.title),
      h('button', { type: 'button', class: 'lumi-panel__close', 'aria-label': t.close, onclick: () => dialog.close() }, '×')),
    log, form);
  dialog.addEventListener('close', () => { launcher.setAttribute('aria-expanded', 'false'); launcher.focus(); });
  root.append(dialog);
  if (window.visualViewport) ['resize', 'scroll'].forEach((e) => visualViewport.addEventListener(e, fit));
  return { root, t, launcher, dialog, log, form, input, send, post, url, h, error, json, scroll };
}

// Phones: the panel follows the visual viewport (above the on-screen keyboard).
function fit() {
  const vv = window.visualViewport;
  if (vv) c.dialog.setAttribute('style', `--lumi-vh:${vv.height}px;--lumi-vt:${vv.offsetTop}px`);
}

function scroll() { c.log.scrollTop = c.log.scrollHeight; }

function say(role, text) {
  const body = h('p', { class: 'lumi-msg__text' }, text || '');
  const el = h('div', { class: 'lumi-msg lumi-msg--' + role }, h('span', { class: 'lumi-vh' }, (role === 'shopper' ? c.t.you : c.t.shop) + ': '), body);
  c.log.append(el);
  scroll();
  return { el, body };
}

// What to tell the shopper when a request failed (neither res nor err: offline).
function error(res, err) {
  const t = c.t;
  const code = (err && err.code) || '';
  if (code === 'chat_disabled') return c.form.remove() || t.disabled;
  if (res && res.status === 429) return t.wait.replace('{seconds}', retryAfter(res));
  if ((res && res.status === 503) || code === 'orders_unavailable') return t.outage;
  return res || err ? t.error : t.offline;
}

function fail(out, text) {
  out.body.textContent = text;
  out.el.classList.add('lumi-msg--error');
  out.el.removeAttribute('aria-busy');
  return true;
}

function failed(res, err) { // no session: say why; the next message tries again
  starting = null;
  c.log.append(h('p', { class: 'lumi-note lumi-err' }, error(res, err)));
  return false;
}

async function start() {
  const saved = keep();
  if (saved && saved.id) { // this tab's conversation, on a new page
    session = saved;
    const res = await fetch(url(''), { headers: { 'X-Lumi-Session-Secret': saved.secret } }).catch(() => null);
    if (res && res.ok) {
      for (const m of (await json(res)).messages || []) {
        if (m.role === 'shopper' || m.role === 'assistant') show(say(m.role, m.text), m, true);
      }
      return true;
    }
    if (!res || res.status !== 404) return failed(res);
  }
  session = null;
  const d = c.root.dataset;
  const res = await post(url(''), { locale: d.locale || undefined, country: d.country || undefined }).catch(() => null);
  const data = res ? await json(res) : {};
  if (!res || res.status !== 201) return failed(res, data.error);
  session = { id: data.session.id, secret: data.session.secret, stream_url: data.stream_url || null };
  keep(session);
  say('assistant', data.greeting);
  return true;
}

async function send(text, quiet) {
  text = (text || '').trim();
  if (!text || busy) return;
  busy = true;
  c.input.value = '';
  c.log.querySelectorAll('.lumi-suggest').forEach((el) => el.remove());
  if (!c.dialog.contains(document.activeElement)) c.input.focus(); // its button is gone
  if (!quiet) {
    say('shopper', text);
    c.last = text; // answered again after a verify form
  }
  const out = say('assistant');
  out.el.setAttribute('aria-busy', 'true');
  out.body.append(h('span', { class: 'lumi-typing' }, c.t.typing));
  try {
    starting = starting || start();
    if (await starting) await deliver(text, crypto.randomUUID(), out);
    else out.el.remove();
  } finally {
    busy = false;
  }
}

// Retried with the same client_id (a repeat is never a second turn); the direct stream, else the proxy.
async function deliver(text, clientId, out) {
  let renewed = 0;
  for (let attempt = 0; ; attempt++) {
    const viaDirect = direct && session.stream_url;
    let answered = false;
    try {
      const res = await post(viaDirect ? session.stream_url : url('/messages'), { text, client_id: clientId }, 'text/event-stream');
      answered = true;
      if (res.status === 409 && attempt < 30) { await sleep(retryAfter(res)); continue; }
      if (viaDirect && res.status === 404) { direct = false; continue; }
      if (!res.ok) {
        const err = (await json(res)).error;
        if (err && err.code === 'session_not_found' && !renewed++) { // expired: a new session
          keep(null);
          if (await (starting = start())) continue;
          return out.el.remove();
        }
        return fail(out, error(res, err));
      }
      if (await read(res, out)) return;
      throw new Error('cut short');
    } catch (err) {
      if (viaDirect && !answered) { direct = false; continue; } // blocked or unreachable: the proxy instead
      if (attempt < 4) { await sleep(2 ** attempt); continue; }
      return fail(out, c.t.offline);
    }
  }
}

// SSE (delta…, final | error), streamed or whole, or JSON: true when complete.
async function read(res, out) {
  if (!/event-stream/.test(res.headers.get('Content-Type'))) return finish(out, await res.json());
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let streamed = '';
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value, { stream: !done });
    const blocks = buffer.split('\n\n');
    buffer = done ? '' : blocks.pop();
    for (const block of blocks) { // one `data:` line per event (comments, like `: lumi`, have none)
      const [, event] = /^event: ?(.*)/m.exec(block) || [];
      const [, data] = /^data: ?(.*)/m.exec(block) || [];
      if (!data) continue;
      const body = JSON.parse(data);
      if (event === 'final') return finish(out, body);
      if (event === 'error') return fail(out, error(null, body));
      if (event === 'delta') {
        out.body.textContent = streamed += body.text;
        scroll();
      }
    }
    if (done) return false;
  }
}

function finish(out, body) {
  const m = body.message || {};
  out.body.textContent = m.text || '';
  out.el.removeAttribute('aria-busy');
  show(out, m, false, body.escalated);
  return true;
}

function show(out, message, history, escalated) {
  c.parts.then((p) => p.render(c, out, message.parts || [], history, escalated)).then(scroll);
}
