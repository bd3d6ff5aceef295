"""Browser fixtures: devshop's storefront pages in the system's Chromium, with Lumi's real stack behind them.

- `storefront`: one synced stack per test module (devshop + Lumi on real ports + an RQ worker; a USD demo shop
  with recent orders, so every feed has products), with helpers to place app blocks on devshop's pages, read
  its market prices and change the merchant's settings. Built once per module: a sync per test would cost
  more CPU than the browser itself. Tests that change something put it back (`merchant_settings`).
- `browser` (tests/conftest.py, shared with tests/admin and tests/devshop): one headless Chromium per xdist worker.
- `shopper`: a fresh browser context per test (no cookies, no storage, no cache), which records every
  request, response and console message and measures the page's cumulative layout shift (CLS) with a
  `PerformanceObserver` installed before any page script runs. Nothing leaves the machine: product images on
  Shopify's CDN get a placeholder, and a request to any other origin but devshop's is recorded and refused
  (`shopper.allow(origin)` lets one more through: Lumi's APP_URL, for the chat's direct stream).
- Chat (the "Support chat" app embed): `storefront.enable_chat(...)` switches the embed on with its settings,
  `storefront.proxy_buffering(True)` makes devshop's app proxy buffer whole answers, `shopper.log_in(id)` logs
  the shopper in as a demo customer through devshop's login page (a devshop cookie, as Shopify's own).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import meilisearch
import pytest
import redis
import requests

from devtools.mailbox import MailboxServer
from devtools.services import REPO_ROOT, MeiliServer, RedisServer
from tests.conftest import DEMO_SHOP, Stack, WorkerProcess, make_env
from tests.helpers import synced, wait_until

# Shopify's CDN: the catalogue's product images (devshop's products carry cdn.shopify.com URLs, as Shopify's do).
# The issue allows it beside the shop's own origin; offline, the browser gets a placeholder image from here.
SHOPIFY_CDN = "https://cdn.shopify.com"
PLACEHOLDER_IMAGE = ('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
                     '<rect width="8" height="8" fill="#ccc"/></svg>')
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCK = "product-feed"  # extensions/lumi-storefront/blocks/product-feed.liquid
EMBED = "support-chat"  # extensions/lumi-storefront/blocks/support-chat.liquid (app embed, target body)
# The demo shop of these tests: in USD (so ?country=FR is a real currency change), with orders over the last
# 60 days (best sellers and trending have products) and a catalogue big enough for every feed.
SHOP_SPEC = {"products": 120, "seed": 1, "currency": "USD", "orders": 400, "orders_recent": True}

# Installed before any page script: the sum of layout shifts without recent input (the CLS of the load).
CLS_OBSERVER = """
(() => {
  const cls = { value: 0, entries: [] };
  const describe = (node) => !node ? null : node.nodeType !== 1 ? node.nodeName
    : node.tagName.toLowerCase() + (node.className ? '.' + String(node.className).trim().split(/\\s+/).join('.') : '');
  Object.defineProperty(window, '__lumiTestCls', { value: cls });
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (entry.hadRecentInput) continue;
        cls.value += entry.value;
        cls.entries.push({ value: entry.value, at: entry.startTime,
          sources: (entry.sources || []).map((s) => describe(s.node)) });
      }
    }).observe({ type: 'layout-shift', buffered: true });
  } catch (err) { cls.error = String(err); }
})();
"""


# --- the stack ----------------------------------------------------------------------------------------------


class Storefront:
    """devshop's storefront for the demo shop, with Lumi installed and synced behind its app proxy."""

    def __init__(self, stack: Stack, shop: str = DEMO_SHOP) -> None:
        self.stack = stack
        self.shop = shop
        self.origin = stack.devshop.url  # devshop plays the shop's storefront, its app proxy and Shopify's CDN
        self.root = f"/shops/{shop}/"  # routes.root_url
        self.mailbox: MailboxServer | None = None  # set by the fixture

    # pages ------------------------------------------------------------------------------------------------

    def url(self, path: str = "", **query: str) -> str:
        """A storefront URL: url("products/<handle>", country="FR")."""
        return f"{self.origin}{self.root}{path.lstrip('/')}" + (f"?{urlencode(query)}" if query else "")

    def product_url(self, handle: str, **query: str) -> str:
        return self.url(f"products/{handle}", **query)

    def place_blocks(self, page: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        """Put these app blocks (each {"type": "product-feed", "settings": {...}}) on a page template
        ("product" or "index"), replacing what was there: what a merchant does in the theme editor."""
        response = requests.put(f"{self.origin}/_devshop/shops/{self.shop}/storefront",
                                json={page: blocks}, timeout=30)
        assert response.status_code == 200, (response.status_code, response.text[:1000])
        return response.json()

    def enable_chat(self, **settings: Any) -> dict[str, Any]:
        """Switch the "Support chat" app embed on (theme editor → App embeds) with these settings."""
        return self.place_blocks("embeds", [{"type": EMBED, "settings": settings}])

    def disable_chat_embed(self) -> dict[str, Any]:
        return self.place_blocks("embeds", [])

    def proxy_buffering(self, buffer: bool) -> None:
        """devshop's app proxy: stream answers through as they come (False) or read them whole first (True)."""
        response = requests.post(f"{self.origin}/_devshop/proxy", json={"buffer": buffer}, timeout=30)
        assert response.status_code == 200 and response.json()["buffer"] is buffer, response.text[:500]

    @property
    def app_origin(self) -> str:
        """Lumi's own origin (APP_URL), where a chat session's stream_url points."""
        return _origin(self.stack.url)

    # devshop's own prices ---------------------------------------------------------------------------------

    def markets(self, country: str | None = None, handle: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("country", country), ("handle", handle)) if v}
        response = requests.get(f"{self.origin}/_devshop/shops/{self.shop}/markets", params=params, timeout=30)
        assert response.status_code == 200, (response.status_code, response.text[:1000])
        return response.json()

    # Lumi -----------------------------------------------------------------------------------------------

    def feed(self, data_url: str) -> dict[str, Any]:
        """The feed a block reads, fetched like the block does (its data-url, through devshop's app proxy)."""
        response = requests.get(self.origin + data_url, timeout=30)
        assert response.status_code == 200, (data_url, response.status_code, response.text[:500])
        assert response.headers["Content-Type"].startswith("application/json"), response.headers
        return response.json()

    def patch_settings(self, patch: dict[str, Any]) -> dict[str, Any]:
        response = self.stack.api("PATCH", "/api/settings", shop=self.shop, json=patch)
        assert response.status_code == 200, (response.status_code, response.text[:500])
        return response.json()["settings"]

    def settings(self) -> dict[str, Any]:
        response = self.stack.api("GET", "/api/settings", shop=self.shop)
        assert response.status_code == 200, response.text[:500]
        return response.json()["settings"]

    def products(self) -> list[dict[str, Any]]:
        """Every product of the demo shop as Lumi indexed it (id, handle, title, collections, on_sale…)."""
        from tests.helpers import indexed

        client = meilisearch.Client(self.stack.env["MEILI_URL"], self.stack.env["MEILI_MASTER_KEY"])
        return list(indexed(client, self.shop).values())


def _wipe(redis_url: str, meili: MeiliServer) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    meili_client = meilisearch.Client(meili.url, meili.master_key)
    for index in meili_client.get_raw_indexes({"limit": 1000})["results"]:
        meili_client.wait_for_task(meili_client.delete_index(index["uid"]).task_uid)


@pytest.fixture(scope="module")
def storefront(redis_server: RedisServer, meili_server: MeiliServer, tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[Storefront]:
    """One synced stack for the module: devshop + Lumi (real ports) + a real RQ worker, the demo shop installed.

    A module may set DEVSHOP_CONFIG (merged into devshop's config), e.g. another STOREFRONT_EXTENSION_DIR.
    """
    from feeds.index import ensure_indexes

    _wipe(redis_server.url, meili_server)
    ensure_indexes(meilisearch.Client(meili_server.url, meili_server.master_key))
    config = {"SHOPS": {DEMO_SHOP: SHOP_SPEC}, "BUCKET_SIZE": 20000, "RESTORE_RATE": 20000,
              **getattr(request.module, "DEVSHOP_CONFIG", {})}
    mailbox = MailboxServer().start()  # the merchant's inbox: escalations and test emails arrive here over SMTP
    stack = Stack(make_env(redis_server.url, meili_server, SMTP_URL=mailbox.url), config)
    worker = WorkerProcess(stack.env, tmp_path_factory.mktemp("storefront-worker") / "worker.log")
    try:
        stack.install()  # the install queues the first sync
        wait_until(synced(stack), timeout=120, what="the first sync")
        store = Storefront(stack)
        store.mailbox = mailbox
        yield store
    finally:
        worker.stop()
        stack.stop()
        mailbox.stop()
        _wipe(redis_server.url, meili_server)


@pytest.fixture
def merchant_settings(storefront: Storefront) -> Iterator[Storefront]:
    """The merchant may change Lumi's settings in this test; they are put back afterwards."""
    before = storefront.settings()
    yield storefront
    storefront.patch_settings(before)


# --- the browser --------------------------------------------------------------------------------------------




@dataclass
class Seen:
    method: str
    url: str
    resource_type: str
    status: int | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Shopper:
    """One shopper's fresh browser context on devshop's storefront, with everything the page did recorded."""

    def __init__(self, context: Any, storefront: Storefront, tmp_path: Path) -> None:
        self.context = context
        self.storefront = storefront
        self.tmp_path = tmp_path
        self.requests: list[Seen] = []
        self.console: list[tuple[str, str]] = []  # (type, text)
        self.page_errors: list[str] = []
        self.refused: list[str] = []  # requests to another origin (recorded, never sent)
        self._by_request: dict[Any, Seen] = {}
        self.allowed = {storefront.origin}
        context.add_init_script(CLS_OBSERVER)

        def guard(route: Any) -> None:
            where = _origin(route.request.url)
            if where in self.allowed:
                route.continue_()
            elif where == SHOPIFY_CDN and route.request.resource_type == "image":
                route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER_IMAGE,
                              headers={"Cache-Control": "public, max-age=31536000"})
            else:
                self.refused.append(route.request.url)
                route.abort("blockedbyclient")

        context.route("**/*", guard)
        self.page = context.new_page()
        self.page.on("request", self._on_request)
        self.page.on("response", self._on_response)
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_request(self, req: Any) -> None:
        seen = Seen(req.method, req.url, req.resource_type)
        self._by_request[req] = seen
        self.requests.append(seen)

    def _on_response(self, response: Any) -> None:
        seen = self._by_request.get(response.request)
        if seen is not None:
            seen.status = response.status
            seen.headers = response.headers
            seen.content_type = response.headers.get("content-type")

    def allow(self, origin: str) -> None:
        """Let this origin through too (every other one stays refused and recorded)."""
        self.allowed.add(origin)

    # navigating ----------------------------------------------------------------------------------------------

    def open(self, url: str, *, wait_ready: bool = True, timeout: float = 15_000) -> Any:
        """Load a storefront page; by default wait until every feed block has settled (ready/empty/error)."""
        response = self.page.goto(url, wait_until="load", timeout=timeout)
        assert response is not None and response.status == 200, (url, response and response.status)
        if wait_ready:
            self.wait_settled(timeout=timeout)
        return response

    def log_in(self, customer_id: int) -> None:
        """Log in as a demo customer with devshop's "log in as" page (it sets devshop's customer cookie)."""
        response = self.page.goto(self.storefront.url("account/login", customer=str(customer_id)))
        assert response is not None and response.status == 200, response and response.status

    def wait_settled(self, timeout: float = 15_000) -> None:
        """Every lumi-feed on the page has left `loading`, then two frames more (late layout shifts land).

        The block fetches its feed as it nears the viewport, so a block still loading is scrolled into view
        (one at a time, top to bottom) and the page is scrolled back to the top at the end, if it moved.
        """
        self.page.evaluate(_SETTLE, timeout)

    def wait_ready(self, selector: str = "lumi-feed", timeout: float = 15_000) -> None:
        self.page.wait_for_selector(f"{selector}[data-state=ready]", state="attached", timeout=timeout)

    # what happened ------------------------------------------------------------------------------------------

    def cls(self) -> dict[str, Any]:
        return self.page.evaluate("() => JSON.parse(JSON.stringify(window.__lumiTestCls))")

    def storage(self) -> dict[str, Any]:
        return self.page.evaluate("() => ({local: Object.keys(localStorage), session: Object.keys(sessionStorage)})")

    def feed_requests(self) -> list[Seen]:
        return [r for r in self.requests if "/apps/lumi/feeds/" in r.url]

    def warnings(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("warning", "warn")]

    def screenshot(self, name: str, **options: Any) -> Path:
        path = self.tmp_path / f"{name}.png"
        self.page.screenshot(path=str(path), **options)
        return path

    def axe(self, context: str = ".shopify-app-block") -> list[dict[str, Any]]:
        """axe-core's violations within `context` (every match), WCAG 2.x A/AA and best practices."""
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate(
            "async (selector) => { const r = await axe.run(selector, {resultTypes: ['violations']});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => ({target: n.target, html: n.html.slice(0, 200),"
            " summary: n.failureSummary}))})); }", context)
        return result

    def describe(self) -> str:
        """For failure messages: what the page requested and logged."""
        lines = [f"{r.method} {r.url} -> {r.status} {r.content_type}" for r in self.requests]
        lines += [f"console.{kind}: {text}" for kind, text in self.console]
        lines += [f"pageerror: {text}" for text in self.page_errors]
        return "\n".join(lines)


_SETTLE = """
async (timeout) => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const deadline = performance.now() + timeout;
  const loading = (el) => !el.dataset.state || el.dataset.state === 'loading';
  let scrolled = false;
  for (const el of document.querySelectorAll('lumi-feed')) {
    for (let waited = 0; loading(el); waited++) {
      if (performance.now() > deadline) {
        throw new Error(`lumi-feed#${el.id} still ${el.dataset.state} after ${timeout} ms`);
      }
      if (waited === 20) { el.scrollIntoView({block: 'center'}); scrolled = true; }  // ~1/3 s in view first
      await frame();
    }
  }
  if (scrolled) window.scrollTo(0, 0);
  await frame(); await frame();
}
"""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, Any]]()


@pytest.fixture
def shopper(browser: Any, storefront: Storefront, tmp_path: Path, request: pytest.FixtureRequest
            ) -> Iterator[Shopper]:
    """A fresh context (no cookies, storage or cache) at 1280×800; on failure a screenshot of the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US",
                                  service_workers="block")
    shopper = Shopper(context, storefront, tmp_path)
    try:
        yield shopper
        call = request.node.stash.get(_REPORTS, {}).get("call")
        if call is not None and call.failed:
            try:
                path = shopper.screenshot("failure", full_page=True)
                sys.stderr.write(f"\nscreenshot of the page at failure: {path}\nwhat the page did:\n"
                                 f"{shopper.describe()}\n")
            except Exception as err:  # noqa: BLE001 - a failed screenshot must not hide the test's own failure
                sys.stderr.write(f"\nno screenshot: {err}\n")
    finally:
        context.close()

