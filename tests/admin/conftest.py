"""The merchant's admin page in Chromium, inside devshop's admin frame (as `make dev` shows it).

- `storefront` (from tests/storefront): one synced stack per module (devshop + Lumi + an RQ worker, the demo shop
  installed). Modules here set DEVSHOP_CONFIG: devshop's session tokens live SESSION_TOKEN_TTL seconds (short, so a
  test can outlive one), and Lumi loads devshop's App Bridge stand-in (tests.conftest.Stack sets
  SHOPIFY_APP_BRIDGE_URL).
- `merchant`: a fresh browser context on devshop's admin page for Lumi, `merchant.open("feeds")`; `merchant.app` is
  the app's iframe (a Playwright Frame). It records the app's console errors and every request, measures LCP and
  CLS inside the app's document with PerformanceObservers installed before any script runs, and refuses any
  origin but devshop's and Lumi's (no CDN: App Bridge is devshop's stand-in, the stylesheet is Lumi's own).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.services import REPO_ROOT
from tests.conftest import DEMO_SHOP
from tests.storefront.conftest import (  # noqa: F401 - fixtures and the failure-report hook, shared
    _REPORTS,
    AXE,
    CLS_OBSERVER,
    Storefront,
    merchant_settings,
    pytest_runtest_makereport,
    storefront,
)

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots" / "admin"  # README names it; .gitignore keeps it out of git
PAGES = {"home": "", "feeds": "feeds", "chat": "chat", "analytics": "analytics", "privacy": "privacy"}

# The largest contentful paint of the document, as App Bridge's Web Vitals measure it inside the app's iframe.
LCP_OBSERVER = """
(() => {
  const lcp = { value: null };
  Object.defineProperty(window, '__lumiTestLcp', { value: lcp });
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) lcp.value = entry.startTime;
    }).observe({ type: 'largest-contentful-paint', buffered: true });
  } catch (err) { lcp.error = String(err); }
})();
"""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Merchant:
    """The merchant in devshop's admin with Lumi open."""

    def __init__(self, context: Any, storefront: Storefront, tmp_path: Path) -> None:  # noqa: F811
        self.context = context
        self.storefront = storefront
        self.stack = storefront.stack
        self.tmp_path = tmp_path
        self.allowed = {_origin(self.stack.devshop.url), _origin(self.stack.url)}
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.responses: list[Any] = []
        context.add_init_script(CLS_OBSERVER)
        context.add_init_script(LCP_OBSERVER)

        def guard(route: Any) -> None:
            if _origin(route.request.url) in self.allowed:
                route.continue_()
            else:
                self.refused.append(route.request.url)
                route.abort("blockedbyclient")

        context.route("**/*", guard)
        self.page = context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: self.responses.append(r))

    @property
    def admin_url(self) -> str:
        return self.stack.control.admin_app_url(DEMO_SHOP)

    def open(self, page: str = "home") -> Any:
        """Open Lumi's page in the admin (the admin's own URL, as a merchant's bookmark or the nav would)."""
        path = PAGES[page]
        response = self.page.goto(self.admin_url + (f"/{path}" if path else ""), wait_until="load")
        assert response is not None and response.status == 200, response and response.status
        frame = self.app
        frame.wait_for_load_state("load")
        frame.wait_for_selector(f"body[data-page={page}]")
        return frame

    @property
    def app(self) -> Any:
        frame = self.page.frame(name="app-iframe")
        assert frame is not None, "the admin has no app iframe"
        return frame

    def app_document(self) -> Any:
        """The response that delivered the app's document (the iframe's last navigation)."""
        documents = [r for r in self.responses if r.request.resource_type == "document"
                     and _origin(r.url) == _origin(self.stack.url)]
        assert documents, "the app's document was never loaded"
        return documents[-1]

    def save(self) -> None:
        """Click Save in the admin's contextual save bar."""
        bar = self.page.locator("#save-bar")
        bar.wait_for(state="visible")
        self.page.click("#save-bar-save")
        bar.wait_for(state="hidden")

    def vitals(self) -> dict[str, Any]:
        return self.app.evaluate("() => ({lcp: window.__lumiTestLcp.value, lcpError: window.__lumiTestLcp.error,"
                                 " cls: window.__lumiTestCls.value, shifts: window.__lumiTestCls.entries})")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe(self) -> list[dict[str, Any]]:
        self.app.add_script_tag(path=str(AXE))
        return self.app.evaluate(
            "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => ({target: n.target, html: n.html.slice(0, 200)}))})); }")

    def horizontal_overflow(self) -> int:
        """How far the app's page scrolls sideways (0: it does not)."""
        return self.app.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.fixture
def merchant(browser: Any, storefront: Storefront, tmp_path: Path, request: pytest.FixtureRequest  # noqa: F811
             ) -> Iterator[Merchant]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US", service_workers="block",
                                  accept_downloads=True)
    merchant = Merchant(context, storefront, tmp_path)
    try:
        yield merchant
        call = request.node.stash.get(_REPORTS, {}).get("call")
        if call is not None and call.failed:
            path = tmp_path / "failure.png"
            merchant.page.screenshot(path=str(path), full_page=True)
            sys.stderr.write(f"\nscreenshot at failure: {path}\nconsole: {merchant.errors}\n")
    finally:
        context.close()

