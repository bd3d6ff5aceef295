"""`GET /app`: the embedded admin page Shopify loads in its iframe (with an `id_token` session token)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from shopify.domains import valid_shop_domain
from shopify.install import InstallError, embedded_app_url, exchange_session_token
from shopify.session_tokens import SessionTokenError, decode_session_token
from web.auth import after_install
from web.errors import APIError
from web.extensions import get_services

bp = Blueprint("app_page", __name__)


@bp.get("/app")
def app_page() -> Response | str:
    services = get_services()
    id_token = request.args.get("id_token")
    if not id_token:
        # Opened outside the admin: send the merchant to the right door.
        shop = valid_shop_domain(request.args.get("shop"))
        if shop is None:
            raise APIError(400, "invalid_shop", "Open Lumi from your Shopify admin.")
        if services.shops.get(shop) is None:
            return redirect(url_for("auth.install", shop=shop), code=302)
        return redirect(embedded_app_url(services, shop), code=302)
    try:
        session = decode_session_token(
            id_token, api_key=services.settings.shopify_api_key, secrets=[services.settings.shopify_api_secret]
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
    response = Response(
        render_template(
            "app.html",
            api_key=services.settings.shopify_api_key,
            shop=record.domain,
            id_token=id_token,
        )
    )
    # The admin frames this page: allow exactly Shopify's admin and this shop (plus devshop's admin
    # origin when running against the stand-in), nobody else.
    ancestors = [f"https://{record.domain}", "https://admin.shopify.com"]
    admin_origin = _origin(services.settings.shopify_admin_base_url.format(shop=record.domain))
    if admin_origin not in ancestors:
        ancestors.append(admin_origin)
    response.headers["Content-Security-Policy"] = f"frame-ancestors {' '.join(ancestors)};"
    response.headers["Cache-Control"] = "no-store"
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
