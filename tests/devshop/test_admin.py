"""The admin side a merchant sees: the install approval page and the app page that embeds the app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import jwt
import pytest
import requests

from devshop.testing import DevShopControl, DevShopServer

from .conftest import SHOP

KEY, SECRET = "admin-test-client-id", "admin-test-client-secret-0123456789abcdef"
APP = "http://127.0.0.1:1"  # never contacted: the tests read the pages devshop serves
TOML = """
client_id = "admin-test-client-id"
name = "Lumi"
handle = "lumi"
application_url = "https://lumi.example.com/app"
[access_scopes]
scopes = "read_products,read_orders,read_inventory"
[auth]
redirect_urls = ["https://lumi.example.com/auth/callback"]
"""


def verify_hmac(query: dict[str, str], secret: str = SECRET) -> bool:
    message = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()) if k != "hmac")
    return hmac.compare_digest(hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest(), query["hmac"])


def make_config(tmp_path: Path, **extra: object) -> dict[str, object]:
    toml = tmp_path / "shopify.app.toml"
    toml.write_text(TOML, encoding="utf-8")
    return {"API_KEY": KEY, "API_SECRET": SECRET, "APP_URL": APP, "APP_TOML": str(toml),
            "SHOPS": {SHOP: {"products": 3, "name": "Lumi Demo"}}, **extra}


@pytest.fixture
def admin_shop(tmp_path: Path) -> Iterator[tuple[DevShopServer, DevShopControl]]:
    with DevShopServer(make_config(tmp_path)) as server:
        yield server, DevShopControl(server.url)


def iframe_src(page: str) -> str:
    found = re.search(r'<iframe id="app-iframe"[^>]*\ssrc="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


def authorize_url(server: DevShopServer, **params: str) -> tuple[str, dict[str, str]]:
    query = {"client_id": KEY, "scope": "read_products,read_orders", "state": "nonce-1",
             "redirect_uri": f"{APP}/auth/callback", **params}
    return f"{server.url}/shops/{SHOP}/admin/oauth/authorize", query


def test_the_app_page_embeds_the_app_with_a_signed_launch_query(admin_shop: tuple[DevShopServer, DevShopControl]
                                                                ) -> None:
    server, control = admin_shop
    control.issue_token(SHOP, expiring=True)
    url = control.admin_app_url(SHOP)
    assert url == f"{server.url}/shops/{SHOP}/admin/apps/{KEY}"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Lumi Demo" in page.text and SHOP in page.text, "the title bar names the shop"
    assert page.headers["Cache-Control"] == "no-store"

    src = urlsplit(iframe_src(page.text))
    assert f"{src.scheme}://{src.netloc}{src.path}" == f"{APP}/app", "application_url's path, on APP_URL"
    query = dict(parse_qsl(src.query))
    assert set(query) == {"embedded", "hmac", "host", "id_token", "locale", "session", "shop", "timestamp"}
    assert query["embedded"] == "1" and query["shop"] == SHOP
    assert base64.b64decode(query["host"]).decode() == "admin.shopify.com/store/lumi-demo"
    assert abs(int(query["timestamp"]) - time.time()) < 30
    assert verify_hmac(query) and not verify_hmac({**query, "shop": "other.myshopify.com"})
    claims = jwt.decode(query["id_token"], SECRET, algorithms=["HS256"], audience=KEY)
    assert claims["dest"] == f"https://{SHOP}" and claims["iss"] == f"https://{SHOP}/admin"
    assert claims["exp"] - claims["iat"] == 60

    again = dict(parse_qsl(urlsplit(iframe_src(requests.get(url, timeout=10).text)).query))
    assert again["id_token"] != query["id_token"], "a fresh session token on every load"


def test_the_app_page_by_handle_and_with_a_sub_path(admin_shop: tuple[DevShopServer, DevShopControl]) -> None:
    server, control = admin_shop
    control.issue_token(SHOP)
    page = requests.get(f"{server.url}/shops/{SHOP}/admin/apps/lumi/settings/widget", timeout=10)
    assert page.status_code == 200
    assert urlsplit(iframe_src(page.text)).path == "/app/settings/widget"


def test_no_app_page_without_an_install(admin_shop: tuple[DevShopServer, DevShopControl]) -> None:
    server, control = admin_shop
    url = control.admin_app_url(SHOP)
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 404 and "not installed" in missing.text and "<iframe" not in missing.text
    assert requests.get(f"{server.url}/shops/{SHOP}/admin/apps/someone-else", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/shops/nope.myshopify.com/admin/apps/{KEY}", timeout=10).status_code == 404
    control.issue_token(SHOP)
    assert requests.get(url, timeout=10).status_code == 200
    control.uninstall(SHOP)
    assert requests.get(url, timeout=10).status_code == 404, "uninstalled: gone again"


def test_no_app_url_means_nothing_to_embed(tmp_path: Path) -> None:
    with DevShopServer({**make_config(tmp_path), "APP_URL": None}) as server:
        control = DevShopControl(server.url)
        control.issue_token(SHOP)
        assert requests.get(control.admin_app_url(SHOP), timeout=10).status_code == 409


def test_authorize_auto_approves_by_default(admin_shop: tuple[DevShopServer, DevShopControl]) -> None:
    server, control = admin_shop
    assert control.app()["authorize_mode"] == "auto"
    url, query = authorize_url(server)
    assert requests.get(url, params=query, allow_redirects=False, timeout=10).status_code == 302


def test_authorize_page_asks_then_redirects_with_a_code(tmp_path: Path) -> None:
    with DevShopServer(make_config(tmp_path, AUTHORIZE_MODE="page")) as server:
        url, query = authorize_url(server, scope="read_products,read_orders,read_inventory")
        session = requests.Session()
        page = session.get(url, params=query, allow_redirects=False, timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        text = page.text
        assert "Install Lumi" in text and "Lumi Demo" in text and SHOP in text
        for scope in ("read_products", "read_orders", "read_inventory"):
            assert scope in text
        assert "Install app" in text
        form = re.search(r'<form id="devshop-approve" method="post" action="([^"]+)">(.*?)</form>', text, re.S)
        assert form, text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
        action = server.url + html.unescape(form.group(1))

        approved = session.post(action, data=fields, allow_redirects=False, timeout=10)
        assert approved.status_code == 302
        location = urlsplit(approved.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{APP}/auth/callback"
        callback = dict(parse_qsl(location.query))
        assert set(callback) == {"code", "hmac", "host", "shop", "state", "timestamp"}
        assert callback["state"] == "nonce-1" and verify_hmac(callback)
        token = requests.post(f"{server.url}/shops/{SHOP}/admin/oauth/access_token",
                              json={"client_id": KEY, "client_secret": SECRET, "code": callback["code"]}, timeout=10)
        assert token.status_code == 200 and token.json()["scope"] == "read_products,read_orders,read_inventory"

        replay = session.post(action, data=fields, allow_redirects=False, timeout=10)
        assert replay.status_code == 400, "an approval is answered once"
        assert session.post(action, data={"approval": "forged"}, allow_redirects=False, timeout=10).status_code == 400
        bad_client = session.get(url, params={**query, "client_id": "x"}, allow_redirects=False, timeout=10)
        assert bad_client.status_code == 400 and "<form" not in bad_client.text, "checked before asking"


def test_unknown_authorize_mode_is_refused() -> None:
    from devshop import create_app

    with pytest.raises(ValueError, match="AUTHORIZE_MODE"):
        create_app({"AUTHORIZE_MODE": "maybe"})
