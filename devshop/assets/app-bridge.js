/* devshop's App Bridge stand-in: what https://cdn.shopify.com/shopifycloud/app-bridge.js does inside an
 * embedded app's iframe, reduced to what a server-rendered app uses, so `make dev` and the tests run offline.
 * Served by devshop at /_devshop/app-bridge.js; load it first in <head>, as a classic (not async/defer/module)
 * script, after <meta name="shopify-api-key">.
 *
 * It defines window.shopify: idToken(), a patched fetch, toast, saveBar (+ <form data-save-bar> and
 * <ui-save-bar>), app.extensions(), config, and reports <s-app-nav> and the page title to the admin frame
 * around the iframe (devshop's /shops/<shop>/admin/apps/<app>[/<path>]).
 *
 * Protocol: window.postMessage with objects {source: "devshop-app-bridge", type, ...}, origin-checked both ways:
 * this script talks only to window.parent at devshop's origin (where it was loaded from), and the admin frame only
 * to its iframe at the app's origin. App → admin: ready, title, nav, saveBar, toast, idToken, extensions,
 * leaveConfirmation. Admin → app: config, idToken, extensions, leaveConfirmation (answers, by request id),
 * saveBarAction {id, action: "save" | "discard"}.
 *
 * Real App Bridge differs: it talks to admin.shopify.com with its own (private) protocol, caches a session token
 * until shortly before it expires (this one asks the admin for a fresh one on every call), redirects to the admin
 * when the page is opened outside it (this one does nothing there: idToken() rejects), and has much more
 * (modals, resource picker, Navigation API, loading bar, POS and mobile support).
 */
(() => {
  'use strict';
  const SOURCE = 'devshop-app-bridge';
  const script = document.currentScript;
  // Messages go to (and are accepted from) the admin frame only: devshop's origin, where this file came from.
  const adminOrigin = script && script.src ? new URL(script.src).origin : null;
  const embedded = window.parent !== window && adminOrigin !== null;
  if (!adminOrigin) console.error('App Bridge (devshop): load /_devshop/app-bridge.js as a classic <script src>');
  const apiKeyMeta = document.querySelector('meta[name="shopify-api-key"]');
  if (!apiKeyMeta) console.error('App Bridge (devshop): <meta name="shopify-api-key" content="..."> is missing');

  const params = new URLSearchParams(location.search);
  const config = {
    apiKey: apiKeyMeta ? apiKeyMeta.content : '',
    shop: params.get('shop') || '',
    host: params.get('host') || '',
    locale: params.get('locale') || document.documentElement.lang || 'en',
  };

  // -- requests to the admin frame, answered by id --
  const pending = new Map();
  let nextId = 0;
  const post = (message) => {
    if (embedded) window.parent.postMessage({ source: SOURCE, ...message }, adminOrigin);
  };
  const ask = (type, extra = {}) => new Promise((resolve, reject) => {
    if (!embedded) {
      reject(new Error('App Bridge (devshop): the app is not inside the Shopify admin'));
      return;
    }
    const id = String(++nextId);
    pending.set(id, { resolve, reject });
    post({ type, id, ...extra });
  });

  // -- the save bar: <form data-save-bar> forms and <ui-save-bar id> elements --
  const shownBars = new Set(); // ui-save-bar ids shown through shopify.saveBar.show / the element's show()
  let lastBar = null;
  const isDirty = (form) => Array.from(form.elements).some((el) => {
    // "Changed from its initial state": the DOM's defaults (value/checked/selected attributes), which
    // form.reset() restores. An app that fills a form from an API sets defaultValue/defaultChecked too.
    if (el.disabled) return false;
    if (el.type === 'checkbox' || el.type === 'radio') return el.checked !== el.defaultChecked;
    if (el.type === 'file') return el.files.length > 0;
    if (el.tagName === 'SELECT') {
      const options = Array.from(el.options);
      if (!el.multiple && !options.some((o) => o.defaultSelected)) return el.selectedIndex > 0;
      return options.some((o) => o.selected !== o.defaultSelected);
    }
    if ('defaultValue' in el && el.type !== 'button' && el.type !== 'submit' && el.type !== 'reset') {
      return el.value !== el.defaultValue;
    }
    return false;
  });
  const dirtyForms = new Set();
  const saveBarState = () => {
    const ids = Array.from(shownBars);
    if (ids.length) {
      const id = ids[ids.length - 1];
      const element = document.getElementById(id);
      return { visible: true, id, discardConfirmation: !!element && element.hasAttribute('discardConfirmation') };
    }
    if (dirtyForms.size) {
      const confirm = Array.from(dirtyForms).some((f) => f.hasAttribute('data-discard-confirmation'));
      return { visible: true, id: null, discardConfirmation: confirm };
    }
    return { visible: false, id: null, discardConfirmation: false };
  };
  const syncSaveBar = () => {
    const state = saveBarState();
    const key = JSON.stringify(state);
    if (key !== lastBar) {
      lastBar = key;
      post({ type: 'saveBar', ...state });
    }
  };
  const saveBarForm = (target) => (target instanceof Element ? target.closest('form[data-save-bar]') : null);
  const onEdit = (event) => {
    const form = saveBarForm(event.target);
    if (!form) return;
    if (isDirty(form)) dirtyForms.add(form); else dirtyForms.delete(form);
    syncSaveBar();
  };
  document.addEventListener('input', onEdit, true);
  document.addEventListener('change', onEdit, true);
  // The bar hides when the form is submitted or reset (as App Bridge documents): Save is requestSubmit(),
  // so the app's submit handler runs (and reports failures inline); Discard is reset().
  for (const kind of ['submit', 'reset']) {
    document.addEventListener(kind, (event) => {
      const form = saveBarForm(event.target);
      if (form && dirtyForms.delete(form)) syncSaveBar();
    }, true);
  }
  const saveBarButton = (id, primary) => {
    const bar = document.getElementById(id);
    if (!bar) return null;
    return Array.from(bar.querySelectorAll('button'))
      .find((b) => (b.getAttribute('variant') === 'primary') === primary) || null;
  };
  const onSaveBarAction = (id, action) => {
    if (id) { // <ui-save-bar>: its buttons' handlers run; the app hides the bar itself
      const button = saveBarButton(id, action === 'save');
      if (button) button.click();
      return;
    }
    for (const form of Array.from(dirtyForms)) {
      if (action === 'save') form.requestSubmit(); else form.reset();
    }
  };
  const saveBar = {
    show: async (id) => { shownBars.delete(id); shownBars.add(id); syncSaveBar(); },
    hide: async (id) => { shownBars.delete(id); syncSaveBar(); },
    toggle: async (id) => (shownBars.has(id) ? saveBar.hide(id) : saveBar.show(id)),
    // Resolves when no save bar is showing, or once the merchant confirms leaving in the admin's dialog.
    // (If they choose to stay, the promise stays pending, as App Bridge's does.)
    leaveConfirmation: async () => {
      if (!saveBarState().visible) return;
      const { confirmed } = await ask('leaveConfirmation');
      if (!confirmed) await new Promise(() => {});
    },
  };
  if (!customElements.get('ui-save-bar')) {
    customElements.define('ui-save-bar', class extends HTMLElement {
      show() { return saveBar.show(this.id); }
      hide() { return saveBar.hide(this.id); }
      toggle() { return saveBar.toggle(this.id); }
      get showing() { return shownBars.has(this.id); }
    });
  }

  // -- toast --
  let toastId = 0;
  const toast = {
    show: (message, options = {}) => {
      const id = `toast-${++toastId}`;
      post({ type: 'toast', id, message: String(message), isError: !!options.isError,
        duration: Number(options.duration) > 0 ? Number(options.duration) : 5000 });
      return id;
    },
    hide: (id) => post({ type: 'toast', id, hide: true }),
  };

  // -- nav and title, sent whenever they change --
  const navItems = () => {
    const nav = document.querySelector('s-app-nav, ui-nav-menu');
    if (!nav) return null;
    return Array.from(nav.querySelectorAll('a[href], s-link[href]')).map((link) => ({
      href: new URL(link.getAttribute('href'), location.href).href,
      label: link.textContent.trim(),
      home: (link.getAttribute('rel') || '') === 'home',
    }));
  };
  const pageTitle = () => {
    const page = document.querySelector('s-page[heading]');
    return (page && page.getAttribute('heading')) || document.title || '';
  };
  let lastNav = null;
  let lastTitle = null;
  const syncPage = () => {
    const nav = JSON.stringify(navItems());
    if (nav !== lastNav) {
      lastNav = nav;
      post({ type: 'nav', items: JSON.parse(nav) });
    }
    const title = pageTitle();
    if (title !== lastTitle) {
      lastTitle = title;
      post({ type: 'title', title });
    }
  };
  let queued = false;
  new MutationObserver(() => {
    if (!queued) {
      queued = true;
      queueMicrotask(() => { queued = false; syncPage(); });
    }
  }).observe(document.documentElement, { subtree: true, childList: true, characterData: true,
    attributes: true, attributeFilter: ['href', 'heading', 'rel'] });

  // -- fetch: the app's own origin gets a fresh session token, as App Bridge does --
  const nativeFetch = window.fetch.bind(window);
  const idToken = () => ask('idToken').then((answer) => {
    if (answer.error) throw new Error(answer.error);
    return answer.token;
  });
  const withToken = async (request) => {
    const headers = new Headers(request.headers);
    headers.set('Authorization', `Bearer ${await idToken()}`);
    return new Request(request, { headers });
  };
  window.fetch = async (input, init) => {
    const request = new Request(input, init);
    // Other origins, and calls that set Authorization themselves, go out untouched.
    if (!embedded || new URL(request.url).origin !== location.origin || request.headers.has('Authorization')) {
      return nativeFetch(request);
    }
    const retry = request.clone();
    const response = await nativeFetch(await withToken(request));
    // App Bridge retries once with a new token when the app asks for it (Shopify's libraries send this header
    // with a 401 for an invalid session token).
    if (response.headers.get('X-Shopify-Retry-Invalid-Session-Request') === '1') {
      return nativeFetch(await withToken(retry));
    }
    return response;
  };

  const shopify = {
    config,
    environment: { embedded, mobile: false, pos: false },
    idToken,
    toast,
    saveBar,
    app: {
      extensions: () => ask('extensions').then((answer) => {
        if (answer.error) throw new Error(answer.error);
        return answer.extensions;
      }),
    },
    loading: () => {}, // the admin's loading bar: not drawn by devshop
  };
  Object.defineProperty(window, 'shopify', { value: shopify, configurable: false, writable: false });

  window.addEventListener('message', (event) => {
    const data = event.data;
    if (!embedded || event.origin !== adminOrigin || event.source !== window.parent
        || !data || data.source !== SOURCE) return;
    if (data.type === 'config') {
      Object.assign(config, { shop: data.shop || config.shop, host: data.host || config.host });
    } else if (data.type === 'saveBarAction') {
      onSaveBarAction(data.id || null, data.action);
    } else if (data.id && pending.has(data.id)) {
      const { resolve } = pending.get(data.id);
      pending.delete(data.id);
      resolve(data);
    }
  });

  // App Bridge's own elements draw nothing in the app: the admin shows them.
  const style = document.createElement('style');
  style.textContent = 's-app-nav,ui-nav-menu,ui-save-bar{display:none!important}';
  document.head.appendChild(style);

  post({ type: 'ready', apiKey: config.apiKey, url: location.href });
  const start = () => syncPage();
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
