"""Storefront routes behind the Shopify app proxy (`/apps/lumi/*` → `/proxy/*`), signature required.

Feeds (`/proxy/feeds/*`) and chat (`/proxy/chat/*`) join this blueprint in their own issues.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from web.errors import APIError
from web.extensions import get_services
from web.guards import require_proxy_signature

bp = Blueprint("proxy", __name__, url_prefix="/proxy")


@bp.get("/config")
@require_proxy_signature
def storefront_config() -> Response:
    """What the theme extension needs to render: which features are on, and the widget's look."""
    record = get_services().shops.get(g.shop)
    if record is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop.")
    settings = record.settings
    response = jsonify(
        {
            "shop": record.domain,
            "feeds_enabled": settings["feeds_enabled"],
            "chat_enabled": settings["chat_enabled"],
            "widget": settings["widget"],
            "language": settings["language"],
            "settings_version": record.settings_version,
        }
    )
    # Signed per request and cheap: not for shared caches; settings take effect within seconds.
    response.headers["Cache-Control"] = "private, max-age=10"
    return response
