"""The chat's direct stream: `POST /chat/<shop>/sessions/<id>/messages` on APP_URL, not through the app proxy.

Whether Shopify's app proxy passes a streamed response through unbuffered is not documented, so the widget may
send a session's messages here instead (the session's `stream_url`, null when the merchant turned the setting
`chat_direct_stream` off). Nothing here is signed by Shopify: the session secret alone authorises a request, for
a session that exists under that shop, and everything else comes from the session, which was created through
the signed proxy: its shop, its language and its logged-in customer (sealed in it), never this request's word.
CORS allows only the shop's storefront origins (its myshopify domain and its primary domain).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from chat.context import storefront_origins
from shopify.domains import valid_shop_domain
from web.chat import SECRET_HEADER, _session, run_turn
from web.errors import APIError
from web.extensions import get_services

bp = Blueprint("chat_direct", __name__, url_prefix="/chat")

ALLOWED_HEADERS = f"Content-Type, {SECRET_HEADER}, Accept"
PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight answer


@bp.after_request
def cors(response: Response) -> Response:
    """Every answer, errors included, names the origin it is for (when allowed), so the widget can read why."""
    response.headers.add("Vary", "Origin")
    origin = g.get("cors_origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


def _direct_settings(shop: str) -> dict[str, Any]:
    """The shop's settings if the direct stream is on for it; the request's Origin checked on the way."""
    domain = valid_shop_domain(shop)
    if domain is None or domain != shop:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop.")
    services = get_services()
    record = services.shops.get(shop)
    if record is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop.")
    g.shop, g.record = shop, record
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin not in storefront_origins(services, shop):
            raise APIError(403, "origin_not_allowed", "This origin is not one of the shop's storefronts.")
        g.cors_origin = origin  # from here on, errors are readable by the storefront's widget
    settings = record.settings
    if not settings.get("chat_enabled", True):
        raise APIError(404, "chat_disabled", "The merchant has turned the chat off.")
    if not settings.get("chat_direct_stream", True):
        raise APIError(404, "direct_stream_disabled", "Send chat messages through the app proxy.")
    return settings


@bp.route("/<shop>/sessions/<session_id>/messages", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def message(shop: str, session_id: str) -> Any:
    if request.method == "OPTIONS":
        _direct_settings(shop)
        if not g.get("cors_origin"):  # a preflight names its origin; without one there is nothing to allow
            raise APIError(403, "origin_not_allowed", "This origin is not one of the shop's storefronts.")
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response
    settings = _direct_settings(shop)
    session = _session(session_id)
    # The customer sealed at the signed creation: this request cannot name one.
    return run_turn(settings, session, get_services().chat.customer(session))
