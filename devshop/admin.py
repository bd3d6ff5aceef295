"""The admin's app page, /admin/apps/<client id>: a bare admin frame that loads the app in an iframe."""

from __future__ import annotations

import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response

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
        "id_token": session_token(state.api_key, state.api_secret, shop, user_id),
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
    """The merchant opens the app in the admin: the title bar, then the app in an iframe."""
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
    src = f"{base}{'&' if urlsplit(base).query else '?'}{urlencode(launch_params(state, shop.domain))}"
    body = (
        f"<div class=\"titlebar\"><span id=\"app-name\">{html.escape(state.app_name)}</span>"
        f"<small>{html.escape(shop.name)} · {html.escape(shop.domain)}</small></div>"
        f"<iframe id=\"app-iframe\" name=\"app-iframe\" title=\"{html.escape(state.app_name)}\" "
        f"src=\"{html.escape(src)}\"></iframe>"
    )
    response = admin_page(shop.domain, shop.name, state.app_name, body)
    response.headers["Cache-Control"] = "no-store"  # every load gets a fresh id_token and hmac
    return response


def describe(state: DevShopState) -> dict[str, Any]:
    return {"application_url": app_url(state), "admin_path": f"/shops/{{shop}}/admin/apps/{state.api_key}"}
