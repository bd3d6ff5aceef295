"""`GET /proxy/feeds/<feed>`: storefront feeds as small, edge-cacheable JSON.

Reached through the app proxy (signature checked, shop from the signed query) or directly with
`?shop=` (feeds are public catalogue data). Headers decide how much traffic reaches Python:
`Cache-Control` with s-maxage / stale-while-revalidate / stale-if-error, a strong ETag (304),
`Vary: Accept-Encoding`, and Surrogate-Key / Cache-Tag for precise CDN purges.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from flask import Blueprint, Response, current_app, g, request

from feeds.definitions import FeedParamError, parse_feed_path, parse_params
from feeds.service import FeedBody, FeedUnavailable, ProductNotFound, plain, render
from shopify.domains import valid_shop_domain
from web.errors import APIError
from web.extensions import get_services
from web.guards import proxy_request_is_signed, verify_proxy_request

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__, url_prefix="/proxy/feeds")

SNAPSHOT_FALLBACK = 3600.0  # how long the last known settings serve feeds while Redis is down

_snapshots_lock = threading.Lock()


def _snapshots() -> dict[str, tuple[float, dict[str, Any] | None, int]]:
    cache: dict[str, tuple[float, dict[str, Any] | None, int]] = current_app.extensions.setdefault(
        "lumi.feed_settings", {})
    return cache


def _shop_settings(shop: str) -> tuple[dict[str, Any] | None, int]:
    """(settings, version) of an installed shop, or (None, 0), read on every request so a change applies to
    the next one; while Redis is down, the last known settings (up to an hour old) keep feeds answering."""
    now = time.monotonic()
    snapshots = _snapshots()
    try:
        found = get_services().shops.settings_snapshot(shop)
    except redis.RedisError:
        with _snapshots_lock:
            known = snapshots.get(shop)
        if known and now - known[0] < SNAPSHOT_FALLBACK:
            return known[1], known[2]
        raise APIError(503, "unavailable", "Feeds are briefly unavailable.", headers={"Retry-After": "30"}) from None
    snapshot = (now, found[0] if found else None, found[1] if found else 0)
    with _snapshots_lock:
        snapshots[shop] = snapshot
    return snapshot[1], snapshot[2]


def _shop() -> str:
    if proxy_request_is_signed():
        return verify_proxy_request()
    shop = valid_shop_domain(request.args.get("shop"))
    if shop is None:
        raise APIError(400, "invalid_shop", "shop must be a domain like your-store.myshopify.com.",
                       details={"param": "shop"})
    g.shop = shop
    return shop


@bp.get("/<path:feed_path>")
def feed(feed_path: str) -> Response:
    shop = _shop()
    settings, version = _shop_settings(shop)
    if settings is None:
        raise APIError(404, "shop_not_found", "No feeds for this shop.")
    if not settings.get("feeds_enabled", True):
        raise APIError(404, "feeds_disabled", "The merchant has turned feeds off.")
    try:
        definition, arg = parse_feed_path(feed_path)
        params = parse_params(definition, request.args, int(settings.get("feed_default_limit") or 12))
    except FeedParamError as err:
        raise APIError(404 if err.param == "feed" else 400, "unknown_feed" if err.param == "feed"
                       else "invalid_parameter", str(err), details={"param": err.param}) from None
    try:
        body = render(get_services(), shop, definition, arg, params, settings, version)
    except ProductNotFound:
        raise APIError(404, "product_not_found", "That product is not in this shop's catalogue.") from None
    except FeedUnavailable:
        raise APIError(503, "feed_unavailable", "This feed is briefly unavailable.",
                       headers={"Retry-After": "30"}) from None
    return _respond(shop, definition.name, body)


def _respond(shop: str, feed_name: str, body: FeedBody) -> Response:
    settings = get_services().settings
    headers = {
        "ETag": body.etag,
        "Cache-Control": settings.feed_cache_control,
        "Vary": "Accept-Encoding",
        # Purge keys for a CDN: the shop, this feed, and every product shown.
        "Surrogate-Key": " ".join([f"shop-{shop}", f"feed-{shop}-{feed_name}",
                                   *(f"product-{shop}-{pid}" for pid in body.product_ids)]),
    }
    headers["Cache-Tag"] = headers["Surrogate-Key"].replace(" ", ",")
    origin = request.headers.get("Origin")
    if origin == f"https://{shop}":
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Accept-Encoding, Origin"
    if body.stale:
        # Served from the last good copy while Meilisearch is down: say so, and let caches keep it briefly only.
        headers["X-Lumi-Stale"] = "1"
        headers["Cache-Control"] = "public, max-age=10, s-maxage=10, stale-if-error=86400"
    if body.etag in _etags(request.headers.get("If-None-Match", "")):
        return Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = Response(body.gzip, mimetype="application/json", headers=headers)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(plain(body), mimetype="application/json", headers=headers)
    return response


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
