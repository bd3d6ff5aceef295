"""`make dev` installs the app on the demo shop through the real OAuth flow, against a real devshop."""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests
from flask import Flask, Response, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.serving import make_server

from devshop.testing import DevShopControl, DevShopServer, QuietHandler
from devtools.dev import DEMO_SHOP, DevStack, admin_app_url, after_ready, build_env, install_demo_shop
from devtools.services import LinePrinter, ServiceError

KEY, SECRET = "install-test-client-id", "install-test-client-secret-0123456789abcdef"


@dataclass
class FakeLumi:
    """Just enough of Lumi's /auth routes to install: authorize redirect, hmac'd callback, code exchange."""

    admin_base: str = ""  # SHOPIFY_ADMIN_BASE_URL, set once devshop is up
    routes: bool = True
    callback_status: int | None = None  # answer the callback with this instead of finishing the install
    tokens: dict[str, dict[str, object]] = field(default_factory=dict)
    app_loads: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = Flask("fake-lumi")

        @app.get("/auth/install")
        def install() -> ResponseReturnValue:
            if not self.routes:
                return Response("{}", status=404, mimetype="application/json")
            shop = request.args["shop"]
            state = secrets.token_urlsafe(8)
            query = {"client_id": KEY, "scope": "read_products,read_orders", "state": state, "expiring": "1",
                     "redirect_uri": f"{self.url}/auth/callback"}
            response = redirect(f"{self.admin_base.format(shop=shop)}/admin/oauth/authorize?{urlencode(query)}")
            response.set_cookie("lumi_oauth_state", state, httponly=True)
            return response

        @app.get("/auth/callback")
        def callback() -> ResponseReturnValue:
            args = request.args.to_dict()
            if self.callback_status:
                return Response("broken", status=self.callback_status)
            assert args["state"] == request.cookies.get("lumi_oauth_state"), "state cookie round trip"
            message = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(args.items())
                               if k != "hmac")
            expected = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
            assert hmac.compare_digest(expected, args["hmac"]), "callback hmac"
            base = self.admin_base.format(shop=args["shop"])
            token = requests.post(f"{base}/admin/oauth/access_token", timeout=10,
                                  json={"client_id": KEY, "client_secret": SECRET, "code": args["code"],
                                        "expiring": "1"})
            token.raise_for_status()
            self.tokens[args["shop"]] = token.json()
            return redirect(f"{base}/admin/apps/{KEY}")

        @app.get("/app")
        def embedded() -> str:
            self.app_loads.append(request.args.to_dict())
            return "<h1>Lumi</h1>"

        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture
def lumi() -> Iterator[FakeLumi]:
    app = FakeLumi()
    yield app
    app.stop()


def stack_env(lumi: FakeLumi, devshop: DevShopServer) -> dict[str, str]:
    lumi.admin_base = devshop.admin_base_url
    return {"APP_URL": lumi.url, "DEVSHOP_URL": devshop.url, "SHOPIFY_ADMIN_BASE_URL": devshop.admin_base_url,
            "SHOPIFY_API_KEY": KEY, "SHOPIFY_API_SECRET": SECRET}


def devshop_config(lumi: FakeLumi, tmp_path: Path, mode: str) -> dict[str, object]:
    return {"API_KEY": KEY, "API_SECRET": SECRET, "APP_URL": lumi.url, "APP_TOML": str(tmp_path / "none.toml"),
            "AUTHORIZE_MODE": mode, "SHOPS": {DEMO_SHOP: {"products": 3}}}


@pytest.mark.parametrize("mode", ["page", "auto"])
def test_after_ready_installs_the_demo_shop(lumi: FakeLumi, tmp_path: Path, mode: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with DevShopServer(devshop_config(lumi, tmp_path, mode)) as devshop:
        env = stack_env(lumi, devshop)
        control = DevShopControl(devshop.url)
        assert requests.get(control.admin_app_url(DEMO_SHOP), timeout=10).status_code == 404, "not yet installed"
        install_demo_shop(env)  # after_ready also follows the first sync, which this fake app has not
        admin = f"{devshop.url}/shops/{DEMO_SHOP}/admin/apps/{KEY}"
        assert capsys.readouterr().out.strip() == f"✓ installed {DEMO_SHOP} (open {admin})"
        assert set(lumi.tokens[DEMO_SHOP]) >= {"access_token", "refresh_token", "expires_in"}, "expiring=1 honoured"
        assert requests.get(admin, timeout=10).status_code == 200
        assert lumi.app_loads and lumi.app_loads[0]["shop"] == DEMO_SHOP and lumi.app_loads[0]["embedded"] == "1"

        install_demo_shop(env)  # every `make dev` runs it again: installing twice is fine
        assert "✓ installed" in capsys.readouterr().out


def test_an_app_without_oauth_routes_only_warns(lumi: FakeLumi, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    lumi.routes = False
    with DevShopServer(devshop_config(lumi, tmp_path, "page")) as devshop:
        after_ready(stack_env(lumi, devshop))
    out = capsys.readouterr().out
    assert "not installing lumi-demo.myshopify.com" in out and "404" in out


def test_a_broken_callback_stops_start_up_naming_where(lumi: FakeLumi, tmp_path: Path) -> None:
    lumi.callback_status = 500
    with DevShopServer(devshop_config(lumi, tmp_path, "page")) as devshop:
        with pytest.raises(ServiceError, match=r"installing lumi-demo.myshopify.com: .*/auth/callback.* HTTP 500"):
            after_ready(stack_env(lumi, devshop))


def test_an_unreachable_app_stops_start_up(tmp_path: Path) -> None:
    env = {"APP_URL": "http://127.0.0.1:9", "DEVSHOP_URL": "http://127.0.0.1:8",
           "SHOPIFY_ADMIN_BASE_URL": "http://127.0.0.1:8/shops/{shop}", "SHOPIFY_API_KEY": KEY}
    with pytest.raises(ServiceError, match="/auth/install"):
        after_ready(env)


def test_no_install_when_the_admin_is_not_devshop(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"APP_URL": "http://127.0.0.1:9", "DEVSHOP_URL": "http://127.0.0.1:8",
           "SHOPIFY_ADMIN_BASE_URL": "https://{shop}", "SHOPIFY_API_KEY": KEY}
    after_ready(env)
    assert "SHOPIFY_ADMIN_BASE_URL is not devshop's" in capsys.readouterr().out


def test_devshop_gets_the_apps_credentials_and_the_banner_names_the_admin_page() -> None:
    env = build_env({"SHOPIFY_API_KEY": "from-env-key", "SHOPIFY_API_SECRET": "from-env-secret-0123456789abcdef",
                     "PORT": "8123"}, dotenv_path=None)
    env.update({"DEVSHOP_URL": "http://127.0.0.1:9100", "SHOPIFY_ADMIN_BASE_URL": "http://127.0.0.1:9100/shops/{shop}",
                "MEILI_URL": "http://127.0.0.1:7700", "REDIS_URL": "redis://127.0.0.1:6390/0"})
    stack = DevStack(env, LinePrinter(io.StringIO()))
    argv = stack.devshop_argv(9100)
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--api-key"] == "from-env-key" and pairs["--api-secret"] == "from-env-secret-0123456789abcdef"
    assert pairs["--app-url"] == "http://localhost:8123" and pairs["--shop"] == DEMO_SHOP
    assert pairs["--authorize-mode"] == "page"
    assert "--orders-recent" in argv  # the demo shop's orders are recent, so the sales feeds have content
    assert pairs["--currency"] == "USD"  # the demo shop sells in dollars; its Europe market in euros
    admin = "http://127.0.0.1:9100/shops/lumi-demo.myshopify.com/admin/apps/from-env-key"
    assert admin_app_url(env) == admin
    assert admin in stack.banner()


def test_the_banner_names_the_demo_shops_storefront_pages() -> None:
    """`storefront page  <URL>`: a devshop product page with the feed block; `storefront home  <URL>` with two."""
    with DevShopServer({"SHOPS": {DEMO_SHOP: {"products": 200, "seed": 1, "currency": "USD"}}}) as devshop:
        env = build_env({"PORT": "8123"}, dotenv_path=None)
        env.update({"DEVSHOP_URL": devshop.url, "SHOPIFY_ADMIN_BASE_URL": f"{devshop.url}/shops/{{shop}}",
                    "MEILI_URL": "http://127.0.0.1:7700", "REDIS_URL": "redis://127.0.0.1:6390/0"})
        stack = DevStack(env, LinePrinter(io.StringIO()))
        stack.find_storefront_pages(devshop.url)
        banner = stack.banner()
        rows = dict(line.strip("│ ").split("  ", 1) for line in banner.splitlines() if "  http" in line)
        product, home = rows["storefront page"].strip(), rows["storefront home"].strip()
        assert product.startswith(f"{devshop.url}/shops/{DEMO_SHOP}/products/")
        assert home == f"{devshop.url}/shops/{DEMO_SHOP}/"
        DevShopControl(devshop.url).issue_token(DEMO_SHOP)  # blocks show while the app is installed
        for url, blocks in ((product, 1), (home, 2)):
            answer = requests.get(url, timeout=10)
            assert answer.status_code == 200 and answer.text.count('class="shopify-block shopify-app-block"') == blocks
