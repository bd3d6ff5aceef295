"""devshop's App Bridge stand-in in Chromium: a tiny embedded app (its own server and origin) loaded in devshop's
admin frame, using shopify.idToken(), fetch, the save bar, the nav, toasts and app.extensions() as Lumi's pages do."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from devshop.testing import DevShopControl, DevShopServer, QuietHandler

from .conftest import SHOP

KEY, SECRET = "bridge-test-client-id", "bridge-test-client-secret-0123456789abcdef"
SESSION_TOKEN_TTL = 2  # seconds: short, so a test outlives the launch token
TOML = f"""
client_id = "{KEY}"
name = "Lumi"
handle = "lumi"
application_url = "https://lumi.example.com/app"
"""

APP_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="shopify-api-key" content="{key}">
<script src="{bridge}"></script>
<title>{title}</title></head><body>
<s-app-nav><a href="/app" rel="home">Home</a><a href="/app/feeds">Feeds</a><a href="/app/chat">Chat</a></s-app-nav>
<h1>{title}</h1>
<form id="settings" data-save-bar>
  <label>Greeting <input name="greeting" value="Hello"></label>
  <label><input type="checkbox" name="enabled" checked> Enabled</label>
  <button type="submit">Save</button>
</form>
<p id="saved"></p>
<ui-save-bar id="custom-bar"><button variant="primary" id="custom-save">Save</button><button>Discard</button>
</ui-save-bar>
<p id="custom"></p>
<script>
  window.submits = 0;
  document.getElementById('settings').addEventListener('submit', async (event) => {{
    event.preventDefault();
    window.submits += 1;
    const body = JSON.stringify(Object.fromEntries(new FormData(event.target)));
    const headers = {{ 'Content-Type': 'application/json' }};
    const answer = await fetch('/api/save', {{ method: 'POST', body, headers }});
    document.getElementById('saved').textContent = answer.ok ? 'Saved ' + body : 'Failed ' + answer.status;
  }});
  document.getElementById('custom-save').addEventListener('click', () => {{
    document.getElementById('custom').textContent = 'custom saved';
    shopify.saveBar.hide('custom-bar');
  }});
</script></body></html>"""

# A page on another origin that pretends to be the app: to its parent and to the top window.
FORGED = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>forged</title></head><body><script>
  const forge = (message) => {{ for (const target of new Set([parent, top])) target.postMessage(
    {{ source: 'devshop-app-bridge', ...message }}, '*'); }};
  forge({{ type: 'toast', id: 'forged', message: 'Forged toast', isError: false, duration: 5000 }});
  forge({{ type: 'title', title: 'Forged title' }});
  forge({{ type: 'saveBarAction', id: null, action: '{action}' }});
  document.title = 'posted';
</script></body></html>"""


@dataclass
class EmbeddedApp:
    """The embedded app: /app pages that load App Bridge, /api/* that check the bearer token like Lumi."""

    bridge_url: str = ""
    saved: list[dict[str, Any]] = field(default_factory=list)
    flask: Flask = field(default_factory=lambda: Flask("bridge-test-app"))

    def __post_init__(self) -> None:
        app = self.flask

        @app.get("/app")
        @app.get("/app/<path:rest>")
        def page(rest: str = "") -> Response:
            title = rest.split("/")[0].capitalize() or "Home"
            return Response(APP_PAGE.format(key=KEY, bridge=self.bridge_url, title=title), mimetype="text/html")

        @app.route("/api/echo", methods=["GET", "OPTIONS"])
        def echo() -> Response:
            response = Response(json.dumps({"authorization": request.headers.get("Authorization")}),
                                mimetype="application/json")
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Headers"] = "Authorization"
            return response

        @app.post("/api/save")
        def save() -> Response:
            claims = verify(request.headers.get("Authorization", ""))
            if claims is None:
                return Response('{"error":"unauthorized"}', status=401, mimetype="application/json")
            self.saved.append({"body": request.get_json(), "claims": claims})
            return Response('{"ok":true}', mimetype="application/json")

        @app.get("/forged")
        def forged() -> Response:
            return Response(FORGED.format(action=request.args.get("action", "save")), mimetype="text/html")


def verify(header: str) -> dict[str, Any] | None:
    """As Lumi checks a session token: HS256 with the app's secret, for this app, not expired (no leeway here)."""
    if not header.startswith("Bearer "):
        return None
    try:
        return jwt.decode(header.removeprefix("Bearer "), SECRET, algorithms=["HS256"], audience=KEY)
    except jwt.PyJWTError:
        return None


class Served:
    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


@dataclass
class Admin:
    devshop: DevShopServer
    control: DevShopControl
    app: EmbeddedApp
    app_url: str
    other_url: str  # the same test app on another origin
    page: Any = None

    @property
    def admin_url(self) -> str:
        return f"{self.devshop.url}/shops/{SHOP}/admin/apps/{KEY}"

    @property
    def frame(self) -> Any:
        return self.page.frame(name="app-iframe")

    def open(self, path: str = "") -> Any:
        self.page.goto(self.admin_url + path)
        self.page.locator("#app-nav a", has_text="Feeds").wait_for()  # the app reported its nav: App Bridge is up
        return self.frame




@pytest.fixture
def admin(browser: Any, tmp_path: Path) -> Iterator[Admin]:
    test_app = EmbeddedApp()
    served, other = Served(test_app.flask), Served(test_app.flask)
    toml = tmp_path / "shopify.app.toml"
    toml.write_text(TOML, encoding="utf-8")
    config = {"API_KEY": KEY, "API_SECRET": SECRET, "APP_URL": served.url, "APP_TOML": str(toml),
              "SESSION_TOKEN_TTL": SESSION_TOKEN_TTL, "SHOPS": {SHOP: {"products": 3, "name": "Lumi Demo"}}}
    context = None
    try:
        with DevShopServer(config) as devshop:
            control = DevShopControl(devshop.url)
            control.issue_token(SHOP)  # installed
            test_app.bridge_url = f"{devshop.url}/_devshop/app-bridge.js"
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            made = Admin(devshop, control, test_app, served.url, other.url, context.new_page())
            yield made
    finally:
        if context is not None:
            context.close()
        served.stop()
        other.stop()


def test_the_stand_in_is_served_as_javascript(admin: Admin) -> None:
    assert admin.control.app_bridge_url() == f"{admin.devshop.url}/_devshop/app-bridge.js"
    answer = requests.get(admin.control.app_bridge_url(), timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/javascript")
    assert "window.shopify" in answer.text or "'shopify'" in answer.text
    assert admin.control.app()["session_token_ttl"] == SESSION_TOKEN_TTL


def test_id_token_is_a_valid_session_token_and_a_fresh_one_after_its_lifetime(admin: Admin) -> None:
    frame = admin.open()
    launch = dict(parse_qsl(urlsplit(frame.url).query))["id_token"]
    first = frame.evaluate("shopify.idToken()")
    claims = verify(f"Bearer {first}")
    assert claims is not None, "signed with the app's secret, for this app"
    assert claims["dest"] == f"https://{SHOP}" and claims["iss"] == f"https://{SHOP}/admin"
    assert claims["exp"] - claims["iat"] == SESSION_TOKEN_TTL, "devshop's SESSION_TOKEN_TTL"

    time.sleep(SESSION_TOKEN_TTL + 1.5)
    assert verify(f"Bearer {launch}") is None and verify(f"Bearer {first}") is None, "both have expired"
    later = frame.evaluate("shopify.idToken()")
    assert later != first and verify(f"Bearer {later}") is not None, "a fresh token, after the old ones' lifetime"
    # The page keeps working: Save goes through with a token minted for the request.
    frame.fill("input[name=greeting]", "Hi there")
    admin.page.click("#save-bar-save")
    frame.locator("#saved", has_text="Saved").wait_for()
    assert admin.app.saved and admin.app.saved[-1]["body"]["greeting"] == "Hi there"


def test_fetch_adds_the_bearer_token_to_the_apps_own_origin_only(admin: Admin) -> None:
    frame = admin.open()
    own = frame.evaluate("fetch('/api/echo').then((r) => r.json())")["authorization"]
    assert own.startswith("Bearer ") and verify(own) is not None
    absolute = frame.evaluate(f"fetch('{admin.app_url}/api/echo').then((r) => r.json())")["authorization"]
    assert verify(absolute) is not None, "an absolute URL on the app's origin too"
    other = frame.evaluate(f"fetch('{admin.other_url}/api/echo').then((r) => r.json())")["authorization"]
    assert other is None, "no session token for another origin"
    kept = frame.evaluate("fetch('/api/echo', {headers: {Authorization: 'Basic abc'}}).then((r) => r.json())")
    assert kept["authorization"] == "Basic abc", "an Authorization the page set itself is kept"


def test_the_save_bar_shows_on_change_save_submits_and_discard_resets(admin: Admin) -> None:
    frame = admin.open()
    bar = admin.page.locator("#save-bar")
    assert bar.is_hidden()
    frame.fill("input[name=greeting]", "Hello!")
    bar.wait_for(state="visible")
    assert "Unsaved changes" in bar.inner_text()
    frame.fill("input[name=greeting]", "Hello")
    bar.wait_for(state="hidden")  # back to its initial value: nothing to save

    frame.uncheck("input[name=enabled]")
    bar.wait_for(state="visible")
    admin.page.click("#save-bar-save")
    frame.locator("#saved", has_text="Saved").wait_for()
    bar.wait_for(state="hidden")
    assert admin.app.saved[-1]["body"] == {"greeting": "Hello"}, "the unchecked box is not sent"
    assert admin.app.saved[-1]["claims"]["dest"] == f"https://{SHOP}", "saved with a session token for the shop"

    frame.fill("input[name=greeting]", "Discard me")
    bar.wait_for(state="visible")
    admin.page.click("#save-bar-discard")
    bar.wait_for(state="hidden")
    assert frame.input_value("input[name=greeting]") == "Hello", "Discard resets the form"
    assert frame.evaluate("window.submits") == 1

    # <ui-save-bar>: shown and hidden by the app; Save clicks its primary button.
    frame.evaluate("shopify.saveBar.show('custom-bar')")
    bar.wait_for(state="visible")
    admin.page.click("#save-bar-save")
    frame.locator("#custom", has_text="custom saved").wait_for()
    bar.wait_for(state="hidden")


def test_the_nav_renders_in_the_sidebar_and_navigates_with_fresh_launch_params(admin: Admin) -> None:
    frame = admin.open()
    sidebar = admin.page.locator("nav.sidebar")
    assert sidebar.locator("#app-nav a").all_inner_texts() == ["Feeds", "Chat"], "rel=home is the app's name"
    assert admin.page.locator("#app-home-link").get_attribute("aria-current") == "page"
    assert admin.page.locator("#app-title").inner_text() == "Home", "the page's <title> in the title bar"
    first_launch = dict(parse_qsl(urlsplit(frame.url).query))

    sidebar.locator("a", has_text="Feeds").click()
    admin.page.wait_for_url(f"{admin.admin_url}/feeds")
    admin.page.locator("#app-title", has_text="Feeds").wait_for()
    frame = admin.frame
    assert urlsplit(frame.url).path == "/app/feeds"
    launch = dict(parse_qsl(urlsplit(frame.url).query))
    assert launch["shop"] == SHOP and launch["id_token"] != first_launch["id_token"], "fresh launch params"
    assert sidebar.locator("a", has_text="Feeds").get_attribute("aria-current") == "page"
    assert admin.page.locator("#app-home-link").get_attribute("aria-current") is None

    # With unsaved changes, leaving asks first.
    frame.fill("input[name=greeting]", "unsaved")
    admin.page.locator("#save-bar").wait_for(state="visible")
    sidebar.locator("a", has_text="Chat").click()
    dialog = admin.page.locator("#devshop-dialog")
    dialog.wait_for(state="visible")
    dialog.locator("button", has_text="Cancel").click()
    assert admin.page.url == f"{admin.admin_url}/feeds"
    sidebar.locator("a", has_text="Chat").click()
    dialog.locator("button", has_text="Leave page").click()
    admin.page.wait_for_url(f"{admin.admin_url}/chat")


def test_toasts_show_in_the_admin(admin: Admin) -> None:
    frame = admin.open()
    frame.evaluate("shopify.toast.show('Settings saved')")
    admin.page.locator("#toasts .toast", has_text="Settings saved").wait_for()
    frame.evaluate("shopify.toast.show('Could not save', {isError: true, duration: 300})")
    error = admin.page.locator("#toasts .toast-error", has_text="Could not save")
    error.wait_for()
    error.wait_for(state="detached")  # after its duration


def test_messages_from_another_origin_are_ignored(admin: Admin) -> None:
    frame = admin.open()
    frame.fill("input[name=greeting]", "dirty")
    admin.page.locator("#save-bar").wait_for(state="visible")
    # A frame from another origin inside the app posts to the app (Save!) and to the admin (a toast, a title).
    frame.evaluate("""(url) => new Promise((resolve) => {
        const child = document.createElement('iframe');
        child.onload = resolve;
        child.src = url;
        document.body.appendChild(child);
    })""", f"{admin.other_url}/forged?action=save")
    time.sleep(0.5)
    assert frame.evaluate("window.submits") == 0, "the app ignored a save from another origin"
    assert admin.page.locator("#toasts .toast").count() == 0, "the admin ignored a toast from another origin"
    assert admin.page.locator("#app-title").inner_text() == "Home"
    # The app's iframe itself navigated to another origin: still not the app.
    frame.goto(f"{admin.other_url}/forged?action=discard")
    time.sleep(0.5)
    assert admin.page.locator("#toasts .toast").count() == 0 and admin.page.locator("#app-title").inner_text() == "Home"


def test_extensions_report_the_theme_extension_from_the_storefront(admin: Admin) -> None:
    frame = admin.open()
    admin.control.set_storefront(SHOP, embeds=[], product=[], collection=[],
                                 index=[{"type": "product-feed", "settings": {"feed": "best-sellers"}}])
    [extension] = frame.evaluate("shopify.app.extensions()")
    assert extension["handle"] == "lumi-storefront" and extension["type"] == "theme_app_extension"
    blocks = {a["handle"]: a for a in extension["activations"]}
    feed, chat = blocks["product-feed"], blocks["support-chat"]
    assert feed["name"] == "Product feed" and feed["target"] == "section" and feed["status"] == "active"
    assert [p["target"] for p in feed["activations"]] == ["template--index/apps/product_feed_index_1"]
    assert feed["activations"][0]["themeId"].startswith("gid://shopify/OnlineStoreTheme/")
    assert chat["name"] == "Support chat" and chat["target"] == "body"
    assert chat["status"] == "available" and chat["activations"] == [], "the embed is off"

    admin.control.set_storefront(SHOP, embeds=[{"type": "support-chat"}], index=[])
    blocks = {a["handle"]: a for a in frame.evaluate("shopify.app.extensions()")[0]["activations"]}
    assert blocks["support-chat"]["status"] == "active"
    assert [p["target"] for p in blocks["support-chat"]["activations"]] == ["theme"]
    assert blocks["product-feed"]["status"] == "available", "no block placed in any template"


def test_the_admin_endpoints_need_an_installed_app(admin: Admin) -> None:
    base = f"{admin.devshop.url}/shops/{SHOP}/admin/app-bridge/{KEY}"
    assert requests.post(f"{base}/id-token", timeout=10).status_code == 200
    assert requests.post(f"{admin.devshop.url}/shops/{SHOP}/admin/app-bridge/other/id-token",
                         timeout=10).status_code == 404
    admin.control.uninstall(SHOP)
    assert requests.post(f"{base}/id-token", timeout=10).status_code == 404
    assert requests.get(f"{base}/extensions", timeout=10).status_code == 404
