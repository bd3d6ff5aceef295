// Lumi's admin page: fills the server-rendered shell from /api/*.
// App Bridge patches fetch, so every same-origin call carries a fresh session token: this script never
// holds a token, and the page keeps working for hours. Errors stay on the page, inline and red (never
// only in a toast); toasts only confirm.
(() => {
  "use strict";
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const page = document.body.dataset.page;
  const shopify = () => window.shopify;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    node.append(...children.flat().filter((c) => c != null));
    return node;
  }

  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || `The request failed (${status}).`);
      this.status = status;
      this.code = error && error.code;
      this.details = (error && error.details) || {};
    }
  }

  async function api(path, { method = "GET", json, raw = false } = {}) {
    const init = { method, headers: { Accept: raw ? "*/*" : "application/json" } };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, { message: "Lumi could not be reached. Check your connection and try again." });
    }
    if (raw && response.ok) return response;
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body && body.error);
    return body;
  }

  function pageError(message) {
    const banner = $("#page-error");
    banner.textContent = message || "";
    banner.hidden = !message;
  }

  function toast(message) {
    const bridge = shopify();
    if (bridge && bridge.toast) bridge.toast.show(message);
  }

  const number = (value, digits = 0) => value == null ? "–" : Number(value).toLocaleString("en", {
    maximumFractionDigits: digits, minimumFractionDigits: digits });
  const percent = (ratio) => ratio == null ? "–" : `${(ratio * 100).toFixed(1)}%`;
  const seconds = (s) => s == null ? "–" : s < 60 ? `${number(s, s < 10 ? 1 : 0)} s` : `${number(s / 60, 1)} min`;
  const when = (iso) => iso ? new Date(iso).toLocaleString("en", { dateStyle: "medium", timeStyle: "short" }) : "–";
  const isoDay = (date) => date.toISOString().slice(0, 10);
  const daysAgo = (n) => { const d = new Date(); d.setUTCDate(d.getUTCDate() - n); return isoDay(d); };
  const badge = (text, tone = "") => el("span", { class: `badge ${tone}`.trim() }, text);
  const setStat = (id, text) => { $(id).textContent = text; };

  let shopPromise;
  const loadShop = () => (shopPromise = shopPromise || api("/api/shop").then((b) => b.shop));

  // --- Home ------------------------------------------------------------------------------------------

  async function home() {
    loadShop().then((shop) => {
      const installed = shop.status === "installed" || !shop.status;
      $("#install-badge").replaceChildren(shop.needs_reauth ? badge("Needs re-authentication", "warning")
        : badge(installed ? "Installed" : shop.status, installed ? "success" : "warning"));
      $("#plan-line").replaceChildren(`${shop.domain} · ${shop.plan.label} plan · chat history kept `
        + `${shop.plan.retention_days} days`);
      if (shop.needs_reauth) {
        $("#reauth-text").textContent = `Lumi lost access to your store (${shop.reauth_reason || "token"}). `
          + "Open Lumi again from your admin's Apps list to reconnect it.";
        $("#reauth-banner").hidden = false;
      }
      extensions(shop.domain);
    }).catch((err) => pageError(err.message));
    refreshIndex();
    $("#rebuild").addEventListener("click", rebuild);
    api("/api/freshness").then((f) => {
      setStat("#fresh-p50", seconds(f.p50_s));
      setStat("#fresh-p95", seconds(f.p95_s));
      $("#fresh-note").textContent = f.samples ? `From ${f.samples} product updates.`
        : "No product updates in the last 24 hours.";
    }).catch((err) => { $("#fresh-note").textContent = err.status === 404 ? "Not measured yet." : err.message; });
    const today = isoDay(new Date());
    api(`/api/chat/analytics?from=${today}&to=${today}`).then(({ analytics: a }) => {
      setStat("#today-sessions", number(a.sessions));
      const escalated = (a.sessions_per_day || []).reduce((sum, d) => sum + (d.escalated || 0), 0);
      setStat("#today-escalated", number(escalated));
    }).catch((err) => pageError(err.message));
  }

  async function extensions(domain) {
    const key = $('meta[name="shopify-api-key"]').content;
    const editor = `https://${domain}/admin/themes/current/editor`;
    $("#block-link").href = `${editor}?template=product&addAppBlockId=${key}/product-feed&target=mainSection`;
    $("#embed-link").href = `${editor}?context=apps&template=index&activateAppId=${key}/support-chat`;
    const show = (cell, active, label) => $(cell).replaceChildren(
      active == null ? badge("Unknown") : active ? badge(label, "success") : badge("Not added", "warning"));
    const bridge = shopify();
    if (!bridge || !bridge.app || !bridge.app.extensions) {
      show("#block-status", null); show("#embed-status", null);
      return;
    }
    try {
      const blocks = (await bridge.app.extensions()).filter((x) => x.type === "theme_app_extension")
        .flatMap((x) => x.activations || []);
      const status = (handle) => {
        const found = blocks.find((b) => b.handle === handle);
        return found ? found.status === "active" : false;
      };
      const block = status("product-feed");
      const embed = status("support-chat");
      show("#block-status", block, "Added");
      show("#embed-status", embed, "Active");
      $("#block-link").textContent = block ? "Add another" : "Add to product page";
      $("#embed-link").textContent = embed ? "Open theme editor" : "Activate in theme";
    } catch (err) {
      show("#block-status", null); show("#embed-status", null);
    }
  }

  let indexTimer = null;
  function describeIndex(i) {
    if (i.state === "never") return "Not indexed yet.";
    if (i.state === "failed") return `Last sync failed: ${i.error || i.last_error || "unknown error"}`;
    if (i.state === "completed") return `${number(i.documents)} products indexed.`;
    const total = i.total ? number(i.total) : "?";
    const eta = i.eta_s != null ? ` · about ${seconds(Math.ceil(i.eta_s))} left` : "";
    return `${i.phase || i.state}: ${number(i.done || 0)} of ${total} products${eta}`;
  }

  async function refreshIndex() {
    clearTimeout(indexTimer);
    let i;
    try {
      i = (await api("/api/index")).index;
      $("#index-error").textContent = "";
    } catch (err) {
      $("#index-error").textContent = err.message;
      indexTimer = setTimeout(refreshIndex, 5000);
      return;
    }
    const busy = i.state === "queued" || i.state === "running";
    const pct = i.state === "completed" ? 100 : i.total ? Math.min(100, (100 * (i.done || 0)) / i.total) : 0;
    const bar = $("#index-progress");
    bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    bar.firstElementChild.style.width = `${pct}%`;
    bar.classList.toggle("done", i.state === "completed");
    bar.dataset.state = i.state;
    $("#index-text").textContent = describeIndex(i);
    $("#index-last").textContent = i.last_completed_at
      ? `Last sync ${when(i.last_completed_at * 1000)}` : "\u00a0";
    $("#rebuild").disabled = busy;
    if (busy) indexTimer = setTimeout(refreshIndex, 1000);
  }

  async function rebuild() {
    $("#rebuild").disabled = true;
    try {
      await api("/api/index/rebuild", { method: "POST" });
      $("#index-error").textContent = "";
      toast("Rebuild started");
    } catch (err) {
      if (err.code !== "sync_running") $("#index-error").textContent = err.message;
    }
    refreshIndex();
  }

  // --- Settings forms (Feeds, Chat): <form data-save-bar>, App Bridge's save bar submits or resets ------

  const form = () => $("#settings-form");
  const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  const titles = new Map(); // product id → title, from searches and lookups

  function fill(settings) {
    for (const input of form().elements) {
      if (!input.name) continue;
      const value = get(settings, input.name);
      if (input.type === "checkbox") {
        input.checked = input.defaultChecked = Boolean(value);
      } else if (input.tagName === "SELECT") {
        for (const option of input.options) option.selected = option.defaultSelected = option.value === value;
      } else {
        let text;
        if ("products" in input.dataset || "pins" in input.dataset) text = JSON.stringify(value || (input.dataset.pins != null ? {} : []));
        else if (Array.isArray(value)) text = value.join(", ");
        else text = value == null ? "" : String(value);
        input.value = input.defaultValue = text;
      }
    }
    form().dataset.loaded = "";
    afterChange();
  }

  function read() {
    const patch = {};
    for (const input of form().elements) {
      if (!input.name) continue;
      let value;
      if (input.type === "checkbox") value = input.checked;
      else if ("products" in input.dataset || "pins" in input.dataset) value = JSON.parse(input.value || "null");
      else if (input.name === "excluded_tags") value = input.value.split(",").map((t) => t.trim()).filter(Boolean);
      else if (input.type === "number") value = input.value === "" ? null : Number(input.value);
      else if (input.type === "email") value = input.value.trim() || null;
      else value = input.value;
      const [head, tail] = input.name.split(".");
      if (tail) (patch[head] = patch[head] || {})[tail] = value;
      else patch[head] = value;
    }
    return patch;
  }

  function clearErrors() {
    for (const node of $$(".field-error[id^='error-']")) node.textContent = "";
    for (const node of $$("[aria-invalid]", form())) node.removeAttribute("aria-invalid");
  }

  function showFieldError(field, message) {
    let target = null;
    for (let name = field; name && !target; name = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : "") {
      target = document.getElementById(`error-${name}`);
    }
    target = target || $("#page-error");
    target.textContent = message;
    target.hidden = false;
    const name = target.id.replace(/^error-/, "");
    const input = form().elements.namedItem(name);
    const visible = input && !input.hidden ? input : $(`[data-picker="${name}"] input`);
    if (visible) { visible.setAttribute("aria-invalid", "true"); visible.focus(); }
  }

  async function save(event) {
    event.preventDefault();
    clearErrors();
    const status = $("#save-status");
    status.textContent = "Saving…";
    try {
      const body = await api("/api/settings", { method: "PATCH", json: read() });
      fill(body.settings);
      status.textContent = "Saved.";
      toast("Settings saved");
    } catch (err) {
      status.textContent = "Not saved: fix the error below.";
      const field = err.details.field;
      const message = field ? err.message.replace(new RegExp(`^${field}: `), "") : err.message;
      showFieldError(field || "", field ? `${message}` : message);
      if (!field) status.textContent = `Not saved: ${err.message}`;
    }
  }

  function changed(input) {
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    afterChange();
  }

  let afterChange = () => {};

  async function settingsPage(render) {
    afterChange = render;
    form().addEventListener("submit", save);
    form().addEventListener("reset", () => { clearErrors(); setTimeout(render, 0); });
    form().addEventListener("input", render);
    try {
      fill((await api("/api/settings")).settings);
    } catch (err) {
      pageError(err.message);
    }
  }

  // --- Feeds -------------------------------------------------------------------------------------------

  function productList(name) {
    const input = form().elements.namedItem(name);
    return { input, value: () => JSON.parse(input.value || "null") };
  }

  function renderChips() {
    const excluded = productList("excluded_products").value() || [];
    const pins = productList("pinned_products").value() || {};
    const feed = $("#pin-feed").value;
    const chip = (id, remove) => el("li", {}, el("span", {}, titles.get(id) || `Product ${id}`),
      el("button", { type: "button", "aria-label": `Remove ${titles.get(id) || `product ${id}`}`, onclick: remove }, "×"));
    $("#chips-excluded_products").replaceChildren(...excluded.map((id) => chip(id, () => {
      setList("excluded_products", excluded.filter((x) => x !== id));
    })));
    $("#chips-pinned_products").replaceChildren(...(pins[feed] || []).map((id) => chip(id, () => {
      setList("pinned_products", { ...pins, [feed]: pins[feed].filter((x) => x !== id) });
    })));
    lookUpTitles([...excluded, ...Object.values(pins).flat()]);
  }

  function setList(name, value) {
    const { input } = productList(name);
    input.value = JSON.stringify(value);
    changed(input);
  }

  let lookingUp = false;
  async function lookUpTitles(ids) {
    const missing = [...new Set(ids)].filter((id) => !titles.has(id));
    if (!missing.length || lookingUp) return;
    lookingUp = true;
    try {
      const body = await api(`/api/products/search?ids=${missing.join(",")}`);
      for (const p of body.products || []) titles.set(Number(p.id), p.title);
      missing.forEach((id) => titles.has(id) || titles.set(id, `Product ${id}`));
    } catch (err) {
      missing.forEach((id) => titles.set(id, `Product ${id}`));
    } finally {
      lookingUp = false;
    }
    renderChips();
  }

  function picker(box) {
    const name = box.dataset.picker;
    const search = $("input", box);
    const results = $(".results", box);
    let timer;
    search.addEventListener("input", (event) => {
      event.stopPropagation(); // a search is not a change to save
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = search.value.trim();
        if (!q) { results.replaceChildren(); return; }
        try {
          const body = await api(`/api/products/search?q=${encodeURIComponent(q)}`);
          results.replaceChildren(...(body.products || []).map((p) => {
            titles.set(Number(p.id), p.title);
            return el("li", {}, el("span", {}, p.title, p.available === false ? " (out of stock)" : ""),
              el("button", { class: "btn", type: "button", onclick: () => add(name, Number(p.id)) },
                name === "pinned_products" ? "Pin" : "Exclude"));
          }));
          if (!results.children.length) results.replaceChildren(el("li", { class: "muted" }, "No products found."));
        } catch (err) {
          results.replaceChildren(el("li", { class: "field-error" }, err.message));
        }
      }, 200);
    });
    search.addEventListener("change", (event) => event.stopPropagation());
  }

  function add(name, id) {
    const value = productList(name).value();
    if (name === "pinned_products") {
      const feed = $("#pin-feed").value;
      const list = value[feed] || [];
      if (!list.includes(id)) setList(name, { ...value, [feed]: [...list, id] });
    } else if (!value.includes(id)) {
      setList(name, [...value, id]);
    }
  }

  function explainCell(why) {
    if (!why) return "–";
    const s = why.signals || {};
    const facts = [`${number(s.units_7d)} sold in 7 days`, `${number(s.units_30d)} in 30 days`,
      `trending ${number(s.trending_score, 2)}`];
    if (s.discount_pct) facts.push(`${number(s.discount_pct)}% off`);
    if (s.restocked_at) facts.push(`restocked ${when(s.restocked_at)}`);
    if (s.available === false) facts.push("out of stock");
    return el("div", {}, el("ul", { class: "reasons" }, (why.reasons || []).map((r) => el("li", {}, r))),
      el("p", { class: "muted" }, facts.join(" · ")));
  }

  async function preview(event) {
    if (event) event.preventDefault();
    const feed = $("#preview-feed").value;
    const limit = $("#preview-limit").value || "12";
    const body = $("#preview-table tbody");
    $("#preview-error").textContent = "";
    try {
      const data = await api(`/api/feeds/preview/${feed}?limit=${encodeURIComponent(limit)}`);
      const why = new Map((data.explain || []).map((e) => [String(e.id), e]));
      const products = data.products || [];
      body.replaceChildren(...products.map((p, index) => {
        const reason = why.get(String(p.id));
        return el("tr", { "data-product-id": p.id },
          el("td", { class: "num" }, String(reason ? reason.rank : index + 1)),
          el("td", {}, p.title || p.handle), el("td", {}, explainCell(reason)));
      }));
      if (!products.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "This feed is empty.")));
      $("#preview-note").textContent = data.feeds_enabled === false
        ? "Feeds are off: your storefront shows none of these until you turn them on." : "";
    } catch (err) {
      $("#preview-error").textContent = err.message;
    }
  }

  function feeds() {
    settingsPage(renderChips);
    $$("[data-picker]").forEach(picker);
    $("#pin-feed").addEventListener("change", (event) => { event.stopPropagation(); renderChips(); });
    $("#preview-form").addEventListener("submit", preview);
  }

  // --- Chat ----------------------------------------------------------------------------------------------

  function renderWidget() {
    const f = form();
    const preview = $("#widget-preview");
    const launcher = $("#preview-launcher");
    launcher.style.background = f.elements.namedItem("widget.primary_color").value;
    launcher.style.color = f.elements.namedItem("widget.text_color").value;
    const left = f.elements.namedItem("widget.position").value === "bottom-left";
    preview.classList.toggle("left", left);
    preview.classList.toggle("right", !left);
    $("#preview-greeting").textContent = f.elements.namedItem("widget.greeting").value.trim()
      || "Hi! Ask me about your order.";
  }

  async function testEmail() {
    const status = $("#test-email-status");
    status.className = "";
    status.textContent = "Sending…";
    try {
      await api("/api/settings/test-email", { method: "POST" });
      status.textContent = "Test email sent. Check the inbox of the saved escalation address.";
      toast("Test email sent");
    } catch (err) {
      status.className = "field-error";
      status.textContent = err.message;
    }
  }

  const history = { cursors: [""], at: 0, next: null };

  function historyQuery(extra = {}) {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData($("#history-form"))) if (value) params.set(key, value);
    for (const [key, value] of Object.entries(extra)) if (value) params.set(key, value);
    return params;
  }

  async function loadHistory() {
    const body = $("#history-table tbody");
    $("#history-error").textContent = "";
    try {
      const data = await api(`/api/chat/sessions?${historyQuery({ limit: "25", cursor: history.cursors[history.at] })}`);
      history.next = data.next_cursor;
      body.replaceChildren(...data.sessions.map((s) => el("tr", { "data-session-id": s.id },
        el("td", {}, when(s.started_at)), el("td", { class: "num" }, String(s.messages)),
        el("td", {}, s.escalated ? badge("Escalated", "warning") : s.resolved ? badge("Resolved", "success") : badge("Open")),
        el("td", {}, s.sentiment == null ? "–" : number(s.sentiment, 2)),
        el("td", {}, (s.orders || []).join(", ") || "–"),
        el("td", {}, el("button", { class: "btn plain", type: "button", onclick: () => transcript(s) },
          "View", el("span", { class: "visually-hidden" }, ` transcript of ${when(s.started_at)}`))))));
      if (!data.sessions.length) {
        body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No conversations in this period.")));
      }
    } catch (err) {
      $("#history-error").textContent = err.message;
      body.replaceChildren();
    }
    $("#prev-page").disabled = history.at === 0;
    $("#next-page").disabled = !history.next;
  }

  async function transcript(session) {
    const card = $("#transcript-card");
    try {
      const data = await api(`/api/chat/sessions/${encodeURIComponent(session.id)}`);
      $("#transcript-meta").textContent = `${when(data.session.started_at)} · ${data.session.messages} messages`
        + (data.session.orders.length ? ` · orders ${data.session.orders.join(", ")}` : "");
      $("#transcript").replaceChildren(...data.messages.map((m) => el("li", { class: m.role },
        el("span", { class: "role" }, m.role === "user" ? "Shopper" : m.role === "assistant" ? "Lumi" : m.role),
        m.text || "")));
    } catch (err) {
      $("#transcript-meta").textContent = err.message;
      $("#transcript").replaceChildren();
    }
    card.hidden = false;
    card.focus();
  }

  async function exportCsv() {
    const button = $("#export-csv");
    button.disabled = true;
    $("#history-error").textContent = "";
    try {
      // A plain link cannot carry the session token: fetch (App Bridge adds it) and save the blob.
      const all = historyQuery();
      const params = new URLSearchParams([...all].filter(([key]) => key === "from" || key === "to"));
      const response = await api(`/api/chat/export.csv?${params}`, { raw: true });
      const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: name ? name[1] : "lumi-chat.csv", hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      $("#history-error").textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  function chat() {
    settingsPage(renderWidget);
    $("#test-email").addEventListener("click", testEmail);
    $("#history-form").addEventListener("submit", (event) => {
      event.preventDefault();
      history.cursors = [""]; history.at = 0;
      loadHistory();
    });
    $("#prev-page").addEventListener("click", () => { history.at = Math.max(0, history.at - 1); loadHistory(); });
    $("#next-page").addEventListener("click", () => {
      history.cursors[history.at + 1] = history.next; history.at += 1; loadHistory();
    });
    $("#export-csv").addEventListener("click", exportCsv);
    $("#close-transcript").addEventListener("click", () => { $("#transcript-card").hidden = true; });
    $("#h-to").value = daysAgo(0);
    $("#h-from").value = daysAgo(6);
    loadShop().then((shop) => {
      const days = shop.plan.retention_days;
      $("#retention-text").textContent = `Transcripts are deleted after the retention period (${days} days on `
        + `the ${shop.plan.label} plan) and cannot be recovered. Export them as CSV before then.`;
      $("#h-from").value = daysAgo(days - 1);
      $("#h-from").min = daysAgo(days - 1);
      loadHistory();
    }).catch((err) => { pageError(err.message); loadHistory(); });
  }

  // --- Analytics -------------------------------------------------------------------------------------------

  const CHARTS = {
    sessions: (d) => number(d.sessions),
    escalation_rate: (d) => percent(d.sessions ? d.escalated / d.sessions : null),
    resolution_rate: (d) => percent(d.sessions ? d.resolved / d.sessions : null),
    sentiment: (d) => d.average_sentiment == null ? "–" : number(d.average_sentiment, 2),
  };

  async function chart(figure, days) {
    try {
      const response = await api(`/api/chat/analytics.svg?days=${days}&chart=${figure.dataset.chart}`, { raw: true });
      const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
      const svg = doc.documentElement;
      if (svg.nodeName !== "svg") throw new Error("not an SVG");
      $$("script, foreignObject", svg).forEach((node) => node.remove());
      svg.setAttribute("role", "img");
      figure.replaceChildren(document.importNode(svg, true));
    } catch (err) {
      figure.replaceChildren(el("p", { class: "muted" }, "The chart could not be drawn; see the table."));
    }
  }

  async function analyticsFor(days) {
    $$("[data-days]").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.days) === days)));
    $("#analytics-error").textContent = "";
    $$("[data-chart]").forEach((figure) => chart(figure, days));
    try {
      const { analytics: a } = await api(`/api/chat/analytics?days=${days}`);
      $("#period").textContent = `(${a.from.slice(0, 10)} to ${a.to.slice(0, 10)})`;
      setStat("#a-sessions", number(a.sessions));
      setStat("#a-escalation", percent(a.escalation_rate));
      setStat("#a-resolution", percent(a.resolution_rate));
      setStat("#a-sentiment", a.average_sentiment == null ? "–" : number(a.average_sentiment, 2));
      setStat("#a-first-reply", a.median_first_reply_ms == null ? "–" : seconds(a.median_first_reply_ms / 1000));
      for (const [name, cell] of Object.entries(CHARTS)) {
        $(`#table-${name} tbody`).replaceChildren(...(a.sessions_per_day || []).map((d) =>
          el("tr", {}, el("td", {}, d.date), el("td", { class: "num" }, cell(d)))));
      }
      $("#intents-table tbody").replaceChildren(...(a.top_intents || []).map((i) =>
        el("tr", {}, el("td", {}, i.intent.replace(/_/g, " ")), el("td", { class: "num" }, number(i.count)))));
      if (!(a.top_intents || []).length) {
        $("#intents-table tbody").replaceChildren(el("tr", {}, el("td", { colspan: 2, class: "muted" }, "No conversations yet.")));
      }
    } catch (err) {
      $("#analytics-error").textContent = err.message;
    }
  }

  function analytics() {
    $$("[data-days]").forEach((button) => button.addEventListener("click", () => {
      if (button.getAttribute("aria-disabled") !== "true") analyticsFor(Number(button.dataset.days));
    }));
    analyticsFor(7);
    loadShop().then((shop) => {
      const days = shop.plan.retention_days;
      $("#retention-note").textContent = `Your ${shop.plan.label} plan keeps chat data ${days} days, `
        + "so longer periods show what is left.";
      $$("[data-days]").forEach((b) => {
        if (Number(b.dataset.days) > days) { b.setAttribute("aria-disabled", "true"); b.title = `Kept ${days} days on your plan`; }
      });
    }).catch(() => {});
  }

  // --- Data & privacy --------------------------------------------------------------------------------

  const CATEGORY_LABELS = { products: "Indexed products", settings: "App settings", chat: "Chat data",
    operational: "Operational records", install: "Install and access tokens" };
  const categoryLabel = (c) => CATEGORY_LABELS[c] || c;
  const total = (items) => Object.values(items || {}).reduce((a, b) => a + b, 0);
  const rank = (c) => { const i = Object.keys(CATEGORY_LABELS).indexOf(c); return i < 0 ? 99 : i; };
  const byCategory = (obj) => Object.entries(obj).sort(([a], [b]) => rank(a) - rank(b));

  async function loadInventory() {
    const rows = $("#inventory-rows");
    try {
      const { inventory } = await api("/api/data-inventory");
      const out = [];
      for (const [category, stores] of byCategory(inventory)) {
        for (const [store, held] of Object.entries(stores)) {
          const names = Object.entries(held.items);
          out.push(el("tr", { "data-store": store, "data-category": category },
            el("td", {}, categoryLabel(category)),
            el("td", {}, held.description),
            el("td", {}, names.length ? el("ul", { class: "reasons" },
              names.map(([name, n]) => el("li", {}, el("code", {}, name), ` (${number(n)})`))) : el("span", { class: "muted" }, "nothing")),
            el("td", { class: "align-end", "data-count": total(held.items) }, number(total(held.items)))));
        }
      }
      rows.replaceChildren(...out);
      $("#inventory").removeAttribute("aria-busy");
      $("#inventory-error").textContent = "";
    } catch (err) {
      $("#inventory-error").textContent = err.message;
    }
  }

  function showReceipt(receipt) {
    $("#receipt-id").textContent = receipt.id;
    $("#receipt-finished").textContent = when(receipt.finished_at);
    $("#receipt-categories").textContent = receipt.categories.map(categoryLabel).join(", ");
    $("#receipt-counts").replaceChildren(...Object.entries(receipt.counts).map(([store, n]) =>
      el("li", {}, `${store}: ${number(n)} deleted`)));
    $("#receipt-digest").textContent = receipt.digest;
    $("#receipt").hidden = false;
  }

  async function follow(id) {
    const status = $("#delete-status");
    for (;;) {
      let request;
      try {
        ({ deletion_request: request } = await api(`/api/deletion-requests/${encodeURIComponent(id)}`));
      } catch (err) {
        status.textContent = err.message;
        status.className = "field-error";
        return;
      }
      status.replaceChildren(badge(request.status, request.status === "done" ? "success"
        : request.status === "failed" ? "critical" : "info"), " ",
        request.status === "done" ? "Deleted." : request.status === "failed"
          ? "The deletion failed. Try again, or contact support with this request id: " + id : "Deleting…");
      status.className = request.status === "failed" ? "field-error" : "";
      status.dataset.status = request.status;
      if (request.status === "done") {
        showReceipt(request.receipt);
        toast("Data deleted");
        loadInventory();
        loadDataRequests(); // a chat deletion takes the kept answers with it
        return;
      }
      if (request.status === "failed") return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  const DELIVERY = {
    email: ["Emailed", "success"], no_address: ["Not emailed: no address", "warning"],
    email_failed: ["Not emailed: sending failed", "critical"], retrying: ["Sending, retrying", "info"],
    pending: ["Sending", "info"],
  };

  function deliveryCell(request) {
    const [text, tone] = DELIVERY[request.delivered] || [request.emailed ? "Emailed" : "Not emailed", ""];
    return el("td", { "data-emailed": String(request.emailed) }, badge(text, tone),
      request.answered_at ? ` ${when(request.answered_at)}` : null);
  }

  async function showDataRequest(id, button) {
    const view = $("#data-request-view");
    $$("#data-request-rows button[aria-expanded]").forEach((b) => b.setAttribute("aria-expanded", "false"));
    try {
      const { data_request: request } = await api(`/api/data-requests/${encodeURIComponent(id)}`);
      $("#data-request-id").textContent = request.id;
      $("#data-request-meta").textContent = `Received ${when(request.received_at)} · `
        + `${number(request.sessions)} chat session${request.sessions === 1 ? "" : "s"} found · `
        + `deleted ${when(request.expires_at)}`;
      $("#data-request-answer").textContent = request.answer;
    } catch (err) {
      $("#data-request-id").textContent = id;
      $("#data-request-meta").textContent = err.message;
      $("#data-request-answer").textContent = "";
    }
    view.hidden = false;
    view.dataset.requestId = id;
    button.setAttribute("aria-expanded", "true");
    view.focus();
  }

  async function loadDataRequests() {
    const rows = $("#data-request-rows");
    try {
      const { data_requests: requests } = await api("/api/data-requests");
      rows.replaceChildren(...requests.map((r) => el("tr", { "data-request-id": r.id },
        el("td", {}, when(r.received_at)),
        el("td", { class: "num" }, number(r.sessions)),
        deliveryCell(r),
        el("td", {}, el("button", { class: "btn plain", type: "button", "aria-expanded": "false",
          "aria-controls": "data-request-view", onclick: (event) => showDataRequest(r.id, event.currentTarget) },
        "View answer", el("span", { class: "visually-hidden" }, ` to request ${r.id}`))))));
      if (!requests.length) {
        rows.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" },
          "No customer data requests received in the last 30 days.")));
      }
      $("#data-requests-error").textContent = "";
    } catch (err) {
      rows.replaceChildren();
      $("#data-requests-error").textContent = err.message;
    }
    $("#data-requests").removeAttribute("aria-busy");
  }

  function privacy() {
    loadInventory();
    loadDataRequests();
    $("#close-data-request").addEventListener("click", () => {
      const view = $("#data-request-view");
      view.hidden = true;
      const opener = $(`#data-request-rows tr[data-request-id="${CSS.escape(view.dataset.requestId || "")}"] button`);
      if (opener) { opener.setAttribute("aria-expanded", "false"); opener.focus(); }
    });
    const form = $("#delete-form");
    const confirmBox = $("#delete-confirm");
    let chosen = [];
    const chosenNow = () => $$("input[name=category]:checked", form).map((i) => i.value);
    form.addEventListener("change", (event) => {
      if (event.target.value === "all" && event.target.checked) {
        $$("input[name=category]", form).forEach((i) => { i.checked = i.value === "all"; });
      } else if (event.target.checked) {
        $("input[value=all]", form).checked = false;
      }
      confirmBox.hidden = true;
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = $("#delete-error");
      chosen = chosenNow();
      error.textContent = chosen.length ? "" : "Choose at least one category.";
      if (!chosen.length) return;
      try {
        const { preview } = await api("/api/deletion-requests", { method: "POST", json: { categories: chosen } });
        const items = [];
        for (const [category, stores] of byCategory(preview)) {
          items.push(el("li", { "data-category": category }, el("strong", {}, categoryLabel(category)), ": ",
            Object.entries(stores).map(([store, n]) => `${store} (${number(n)})`).join(", ") || "nothing stored"));
        }
        $("#confirm-list").replaceChildren(...items);
        confirmBox.hidden = false;
        $("#delete-go").focus();
      } catch (err) {
        error.textContent = err.message;
      }
    });
    $("#delete-cancel").addEventListener("click", () => { confirmBox.hidden = true; });
    $("#delete-go").addEventListener("click", async () => {
      const go = $("#delete-go");
      go.disabled = true;
      try {
        const { deletion_request: request } = await api("/api/deletion-requests",
          { method: "POST", json: { categories: chosen, confirm: true } });
        confirmBox.hidden = true;
        $("#receipt").hidden = true;
        form.reset();
        await follow(request.id);
      } catch (err) {
        $("#delete-error").textContent = err.message;
      } finally {
        go.disabled = false;
      }
    });
  }

  ({ home, feeds, chat, analytics, privacy })[page]();
})();
