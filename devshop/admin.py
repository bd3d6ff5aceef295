"""The admin's app page, /admin/apps/<client id>: a bare admin frame that loads the app in an iframe."""

from __future__ import annotations

import html
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, request

from devshop.app_bridge import asset
from devshop.oauth import host_param, oauth_hmac, session_token
from devshop.pages import admin_page, message_page, plain_error
from devshop.state import DevShopState, get_state
from devshop.webhooks import rebase

bp = Blueprint("devshop_admin", __name__)

DEFAULT_APP_PATH = "/app"  # where the app is loaded when shopify.app.toml has no application_url


def launch_params(state: DevShopState, shop: str, user_id: int = 1) -> dict[str, str]:
    """The query Shopify adds when it loads an embedded app, signed with `hmac` like the OAuth callback."""
    params = {
        "embedded": "1",
        "host": host_param(shop),
        "id_token": session_token(state.api_key, state.api_secret, shop, user_id, lifetime=state.session_token_ttl),
        "locale": "en",
        "session": secrets.token_hex(32),
        "shop": shop,
        "timestamp": str(int(time.time())),
    }
    params["hmac"] = oauth_hmac(params, state.api_secret)
    return params


def app_url(state: DevShopState, rest: str = "") -> str | None:
    """The app's application_url (from shopify.app.toml, rebased onto APP_URL), plus any admin sub-path."""
    if not state.app_url:
        return None
    configured = state.toml.application_url if state.toml and state.toml.application_url else None
    base = (rebase(configured, state.app_url) if configured else None) or state.app_url + DEFAULT_APP_PATH
    if rest:
        parts = urlsplit(base)
        base = parts._replace(path=parts.path.rstrip("/") + "/" + rest.lstrip("/")).geturl()
    return base


def is_this_app(state: DevShopState, app: str) -> bool:
    return app == state.api_key or bool(state.toml and state.toml.handle and app == state.toml.handle)


@bp.get("/shops/<shop_domain>/admin/apps/<app>")
@bp.get("/shops/<shop_domain>/admin/apps/<app>/<path:rest>")
def app_page(shop_domain: str, app: str, rest: str = "") -> Response:
    """The merchant opens the app in the admin: the sidebar with the app's nav, the title bar, the save bar and the
    app in an iframe, with App Bridge's admin side (assets/admin-frame.js) around it."""
    state = get_state()
    shop = state.shops.get(shop_domain)
    if shop is None:
        return plain_error("Store not found", f"There is no store at {shop_domain}.", 404)
    if not is_this_app(state, app):
        return message_page(shop.domain, shop.name, "App not found",
                            f"No app {app!r} is installed on this store.", 404)
    if not state.tokens.installed(shop.domain):
        return message_page(shop.domain, shop.name, "App not installed",
                            f"{state.app_name} is not installed on {shop.domain} (or was uninstalled): "
                            "install it through OAuth first.", 404)
    base = app_url(state, rest)
    if base is None:
        return message_page(shop.domain, shop.name, "No app URL",
                            "devshop was started without APP_URL, so it has nowhere to load the app from.", 409)
    # The admin URL's own query goes on to the app (as Shopify passes it), under fresh launch params.
    launch = launch_params(state, shop.domain)
    query = {k: v for k, v in request.args.items() if k not in launch}
    src = f"{base}{'&' if urlsplit(base).query else '?'}{urlencode({**query, **launch})}"
    admin_base = f"/shops/{shop.domain}/admin/apps/{app}"
    bridge = f"/shops/{shop.domain}/admin/app-bridge/{app}"
    root = app_url(state) or base
    parts = urlsplit(root)
    config = {
        "appOrigin": f"{parts.scheme}://{parts.netloc}", "appBase": parts._replace(query="", fragment="").geturl(),
        "adminBase": admin_base, "tokenUrl": f"{bridge}/id-token", "extensionsUrl": f"{bridge}/extensions",
        "shop": shop.domain, "shopName": shop.name, "host": launch["host"], "appName": state.app_name,
    }
    name, shop_name = html.escape(state.app_name), html.escape(shop.name)
    body = (
        "<div id=\"save-bar\" class=\"save-bar\" role=\"region\" aria-label=\"Contextual save bar\" hidden>"
        "<span class=\"save-bar-text\">Unsaved changes</span>"
        "<button type=\"button\" id=\"save-bar-discard\" class=\"secondary\">Discard</button>"
        "<button type=\"button\" id=\"save-bar-save\" class=\"primary\">Save</button></div>"
        "<div class=\"admin-body\">"
        "<nav class=\"sidebar\" aria-label=\"Shopify admin\">"
        "<ul class=\"admin-links\" aria-hidden=\"true\"><li>Home</li><li>Orders</li><li>Products</li>"
        "<li>Customers</li><li>Online Store</li></ul>"
        "<p class=\"sidebar-heading\">Apps</p>"
        f"<a id=\"app-home-link\" class=\"app-home\" href=\"{html.escape(admin_base)}\">{name}</a>"
        "<ul id=\"app-nav\" class=\"app-nav\"></ul></nav>"
        "<div class=\"app-area\">"
        f"<div class=\"titlebar\"><h1 id=\"app-title\">{name}</h1><small>{shop_name} · {html.escape(shop.domain)}"
        "</small><details class=\"nav-menu\"><summary>Menu</summary><ul id=\"app-nav-menu\"><li>"
        f"<a class=\"app-home\" href=\"{html.escape(admin_base)}\">{name}</a></li></ul></details></div>"
        f"<iframe id=\"app-iframe\" name=\"app-iframe\" title=\"{name}\" src=\"{html.escape(src)}\"></iframe>"
        "</div></div>"
        "<div id=\"toasts\" class=\"toasts\" role=\"status\" aria-live=\"polite\"></div>"
        "<dialog id=\"devshop-dialog\" aria-labelledby=\"devshop-dialog-heading\"><form method=\"dialog\">"
        "<h2 id=\"devshop-dialog-heading\"></h2><p id=\"devshop-dialog-text\"></p><div class=\"dialog-actions\">"
        "<button value=\"cancel\" class=\"secondary\">Cancel</button>"
        "<button value=\"ok\" id=\"devshop-dialog-ok\" class=\"critical\"></button></div></form></dialog>"
    )
    # </ cannot end the JSON's <script> element early: escape it.
    config_json = json.dumps(config).replace("</", "<\\/")
    head = (f"<style>{FRAME_STYLE}</style>"
            f"<script type=\"application/json\" id=\"devshop-admin-config\">{config_json}</script>"
            f"<script>{asset('admin-frame.js')}</script>")
    response = admin_page(shop.domain, shop.name, state.app_name, body, head_html=head)
    response.headers["Cache-Control"] = "no-store"  # every load gets a fresh id_token and hmac
    return response


# The admin around the app, after the admin's layout: a 240 px sidebar (hidden below 768 px, where the title bar's
# menu has the nav), the title bar, the contextual save bar over the top bar, and toasts at the bottom.
FRAME_STYLE = """
.frame{position:relative}
.admin-body{flex:1;display:flex;min-height:0}
.sidebar{flex:0 0 240px;background:#ebebeb;padding:12px 8px;overflow-y:auto}
.sidebar ul{list-style:none;margin:0;padding:0}
.admin-links li{padding:6px 8px;color:#616161}
.sidebar-heading{margin:16px 8px 4px;font-size:12px;font-weight:650;color:#616161}
.sidebar a{display:block;padding:6px 8px;border-radius:8px;color:#303030;text-decoration:none}
.sidebar a:hover{background:#f1f1f1}
.sidebar a[aria-current="page"]{background:#fff;font-weight:650}
.app-nav a{padding-left:24px}
.app-area{flex:1;display:flex;flex-direction:column;min-width:0}
.titlebar h1{font-size:16px;margin:0}
.nav-menu{display:none;margin-left:auto;position:relative}
.nav-menu ul{position:absolute;right:0;top:28px;list-style:none;margin:0;padding:8px;background:#fff;
  border-radius:12px;box-shadow:0 4px 12px rgba(0,0,0,.2);min-width:180px;z-index:3}
.nav-menu a{display:block;padding:6px 8px;color:#303030}
.nav-menu a[aria-current="page"]{font-weight:650}
.save-bar{position:absolute;top:0;left:0;right:0;height:56px;display:flex;align-items:center;gap:8px;
  padding:0 16px;background:#1a1a1a;color:#fff;z-index:2}
.save-bar[hidden]{display:none}
.save-bar-text{margin-right:auto;font-weight:650}
button.secondary{background:#fff;color:#303030;box-shadow:inset 0 0 0 1px #8a8a8a}
button.primary{background:#fff;color:#1a1a1a}
button.critical{background:#c70a24;color:#fff}
.toasts{position:fixed;left:50%;bottom:24px;transform:translateX(-50%);display:flex;flex-direction:column;gap:8px;
  z-index:4;max-width:calc(100vw - 32px)}
.toast{display:flex;align-items:center;gap:12px;padding:10px 12px 10px 16px;border-radius:10px;background:#1a1a1a;
  color:#fff;box-shadow:0 4px 12px rgba(0,0,0,.25)}
.toast-error{background:#8e0b21}
.toast button{background:transparent;padding:0 4px;font-size:18px;line-height:1}
dialog{border:0;border-radius:12px;padding:20px;max-width:420px;box-shadow:0 8px 24px rgba(0,0,0,.3)}
dialog h2{font-size:16px;margin:0 0 8px}
.dialog-actions{display:flex;justify-content:flex-end;gap:8px}
@media (max-width:767px){.sidebar{display:none}.nav-menu{display:block}.titlebar small{display:none}}
"""


def describe(state: DevShopState) -> dict[str, Any]:
    return {"application_url": app_url(state), "admin_path": f"/shops/{{shop}}/admin/apps/{state.api_key}"}
