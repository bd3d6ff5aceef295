"""`make dev`'s demo storefront (devtools.dev against a served devshop): the chat app embed switched on, which devshop
(like Shopify) leaves off until told, and the "log in as" page in the banner."""

from __future__ import annotations

import io
import re
from pathlib import Path

import requests

from devshop.testing import DevShopControl, DevShopServer
from devtools.dev import DEMO_SHOP, DevStack, app_bridge_url
from devtools.services import LinePrinter

from .test_storefront import scratch_extension


def dev_stack(tmp_path: Path) -> DevStack:
    env = {"PORT": "8000", "APP_URL": "http://localhost:8000", "MEILI_URL": "http://127.0.0.1:7700",
           "REDIS_URL": "redis://127.0.0.1:6379/0", "SHOPIFY_API_KEY": "k"}
    return DevStack(env, LinePrinter(io.StringIO()), data_dir=tmp_path)


def said(stack: DevStack) -> str:
    stream = stack.printer.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_make_dev_turns_the_chat_embed_on_and_names_the_login_page(tmp_path: Path) -> None:
    with DevShopServer({"SHOPS": {DEMO_SHOP: {"products": 30, "seed": 1, "orders": 10}}}) as server:
        control = DevShopControl(server.url)
        assert control.storefront(DEMO_SHOP)["embeds"] == [], "embeds are off until the merchant turns them on"
        stack = dev_stack(tmp_path)
        stack.find_storefront_pages(server.url)
        assert stack.enable_embeds(server.url) is True
        assert control.storefront(DEMO_SHOP)["embeds"] == [{"type": "support-chat", "settings": {}}]
        control.issue_token(DEMO_SHOP)  # embeds show while the app is installed (make dev installs it next)
        home = requests.get(control.storefront_url(DEMO_SHOP), timeout=10).text
        assert 'data-block-handle="support-chat"' in home
        assert home.index('data-block-handle="support-chat"') > home.index("</footer>"), "an embed: before </body>"
        login = f"{server.url}/shops/{DEMO_SHOP}/account/login"
        assert "Log in as Sam Shopper" in requests.get(login, timeout=10).text
    banner = stack.banner()
    assert re.search(rf"│ +log in as {{2,}}{re.escape(login)} +│", banner), banner  # `label  URL`, as the others


def test_an_extension_without_the_embed_is_reported_not_fatal(tmp_path: Path) -> None:
    root = scratch_extension(tmp_path / "ext", {"blocks/other.liquid": '{% schema %}{"target": "body"}{% endschema %}'})
    with DevShopServer({"SHOPS": {DEMO_SHOP: {"products": 5, "orders": 1}},
                        "STOREFRONT_EXTENSION_DIR": str(root)}) as server:
        stack = dev_stack(tmp_path)
        assert stack.enable_embeds(server.url) is False
        assert DevShopControl(server.url).storefront(DEMO_SHOP)["embeds"] == []
    assert "! app embeds not enabled on the storefront (400)" in said(stack) and "support-chat" in said(stack)


def test_make_dev_points_the_app_at_devshops_app_bridge() -> None:
    with DevShopServer({"SHOPS": {DEMO_SHOP: {"products": 1, "orders": 0}}}) as server:
        url = app_bridge_url(server.url + "/")
        assert url == f"{server.url}/_devshop/app-bridge.js"
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/javascript")
