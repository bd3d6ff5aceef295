"""The embedded admin page: `/app` (Home), `/app/feeds`, `/app/chat`, `/app/analytics`, `/app/privacy`.

Each is a server-rendered shell that holds no shop data: App Bridge (loaded first in <head>) patches `fetch`
so every `/api/*` call carries a fresh session token, and the page's own script (web/static/admin/admin.js)
fills it in. The page never keeps a token, so it keeps working long after the launch token expired.
Shopify loads it with an `id_token` launch param: on the first load of a shop without a usable offline
token, that token is exchanged for one (managed install). Opened outside the admin, it is a page saying
where to open Lumi (or how to install it), never JSON or a redirect loop.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, g, render_template, request, send_from_directory, url_for
from werkzeug.wrappers import Response

from shopify.domains import valid_shop_domain
from shopify.install import InstallError, embedded_app_url, exchange_session_token
from shopify.session_tokens import SessionTokenError, decode_session_token
from web.auth import after_install
from web.errors import APIError
from web.extensions import get_services

bp = Blueprint("app_page", __name__)

ASSETS = Path(__file__).parent / "static" / "admin"
SHOPIFY_ADMIN = "https://admin.shopify.com"
# The pages of the App Bridge nav (<s-app-nav>), in order: path under /app, template, title.
PAGES = {
    "home": ("", "admin/home.html", "Home"),
    "feeds": ("/feeds", "admin/feeds.html", "Feeds"),
    "chat": ("/chat", "admin/chat.html", "Chat"),
    "analytics": ("/analytics", "admin/analytics.html", "Analytics"),
    "privacy": ("/privacy", "admin/privacy.html", "Data & privacy"),
}


@bp.get("/app", defaults={"page": "home"})
@bp.get("/app/<any(feeds, chat, analytics, privacy):page>")
def app_page(page: str) -> Response:
    id_token = request.args.get("id_token")
    if id_token:
        shop = _launch(id_token)
    else:
        shop = valid_shop_domain(request.args.get("shop"))
        if shop is None:
            raise APIError(400, "invalid_shop", "Open Lumi from your Shopify admin.")
        # Inside the admin frame without launch params (App Bridge navigation): the shell holds no data and
        # every API call proves its shop, so it is served. A browser tab gets the way into the admin instead.
        if request.headers.get("Sec-Fetch-Dest") != "iframe":
            return _outside(shop)
    _path, template, title = PAGES[page]
    body = render_template(template, page=page, title=title, pages=PAGES, **_shell_context())
    return _html(body, shop)


def _launch(id_token: str) -> str:
    """Verify the launch session token; exchange it for an offline token when the shop has none."""
    services = get_services()
    try:
        session = decode_session_token(
            id_token, api_key=services.settings.shopify_api_key, secrets=services.settings.shopify_secrets
        )
    except SessionTokenError as err:
        raise APIError(401, err.code, err.message) from None
    g.shop = session.shop
    record = services.shops.get(session.shop)
    if record is None or record.needs_reauth or "token" not in record._encrypted:
        # Managed install (or lost tokens): trade this session token for an expiring offline token.
        try:
            record = after_install(services, exchange_session_token(services, session.shop, id_token))
        except InstallError as err:
            raise APIError(err.status, err.code, err.message) from None
    return record.domain


def _outside(shop: str) -> Response:
    """Opened in a browser tab: a link into the admin, or an Install button when Lumi is not installed."""
    services = get_services()
    installed = services.shops.get(shop) is not None
    body = render_template(
        "admin/outside.html",
        shop=shop,
        installed=installed,
        admin_url=admin_app_url(shop),
        install_url=url_for("auth.install", shop=shop),
        **_shell_context(),
    )
    return _html(body, shop)


def admin_app_url(shop: str) -> str:
    """Where the merchant opens Lumi: admin.shopify.com in production, devshop's admin in make dev."""
    settings = get_services().settings
    if settings.shopify_admin_base_url == "https://{shop}":
        return f"{SHOPIFY_ADMIN}/store/{shop.removesuffix('.myshopify.com')}/apps/{settings.shopify_api_key}"
    return embedded_app_url(get_services(), shop)


def _shell_context() -> dict[str, object]:
    settings = get_services().settings
    return {
        "api_key": settings.shopify_api_key,
        "app_bridge_url": settings.shopify_app_bridge_url,
        "asset": asset_url,
    }


def _html(body: str, shop: str | None) -> Response:
    response = Response(body, mimetype="text/html")  # charset=utf-8 is added by werkzeug
    response.headers["Content-Security-Policy"] = f"frame-ancestors {' '.join(_ancestors(shop))};"
    response.headers["Cache-Control"] = "no-store"
    return response


def _ancestors(shop: str | None) -> list[str]:
    """Who may frame the page: Shopify's admin and this shop's own admin (plus devshop's admin origin when
    running against the stand-in), nobody else. No known shop: Shopify's admin only."""
    ancestors = [SHOPIFY_ADMIN]
    if shop is None:
        return ancestors
    ancestors.insert(0, f"https://{shop}")
    admin_origin = _origin(get_services().settings.shopify_admin_base_url.format(shop=shop))
    if admin_origin not in ancestors:
        ancestors.append(admin_origin)
    return ancestors


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- the page's own CSS and JS: versioned URLs, cached for a year -----------------------------------------


def _digest(name: str) -> str:
    path = ASSETS / name
    return _hash(path, path.stat().st_mtime_ns)  # an edited file (make dev) gets a new URL at once


@cache
def _hash(path: Path, _mtime: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    return url_for("app_page.asset", name=name, v=_digest(name))


@bp.get("/app/assets/<any('admin.css', 'admin.js'):name>")
def asset(name: str) -> Response:
    response = send_from_directory(ASSETS, name, max_age=0)
    if request.args.get("v") == _digest(name):
        # The URL names the content: a new version gets a new URL, so browsers may keep this one.
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response
