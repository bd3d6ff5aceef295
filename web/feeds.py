"""`GET /proxy/feeds/<feed>`: storefront feeds as small, edge-cacheable JSON.

Reached through the app proxy (signature checked, shop from the signed query) or directly with
`?shop=` (feeds are public catalogue data). Headers decide how much traffic reaches Python:
`Cache-Control` with s-maxage / stale-while-revalidate / stale-if-error, a strong ETag (304),
`Vary: Accept-Encoding`, and Surrogate-Key / Cache-Tag for precise CDN purges.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request

from core.localcache import LocalCache
from feeds.definitions import FeedParamError, parse_feed_path, parse_params
from feeds.service import (
    FeedBody,
    FeedUnavailable,
    ProductNotFound,
    SettingsUnavailable,
    plain,
    render,
    shop_state,
)
from shopify.domains import valid_shop_domain
from web.errors import APIError
from web.extensions import get_services
from web.guards import proxy_request_is_signed, verify_proxy_request

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__, url_prefix="/proxy/feeds")

Headers = list[tuple[str, str]]
# Per web worker: the answer to an unsigned request, keyed by its exact path and query string and by the
# versions read for this request (so never served after a change): a repeat skips parameter parsing, the
# body lookup and header building. Signed proxy requests (a new timestamp each) take the normal path.
_answers: LocalCache[tuple[FeedBody, Headers]] = LocalCache(512, 300.0)

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
    try:
        state = shop_state(get_services(), shop)
    except SettingsUnavailable:
        raise APIError(503, "unavailable", "Feeds are briefly unavailable.", headers={"Retry-After": "30"}) from None
    if state is None:
        raise APIError(404, "shop_not_found", "No feeds for this shop.")
    answer_key = None
    if state.index_version is not None and not proxy_request_is_signed():
        answer_key = (shop, feed_path, request.query_string, state.stamp, state.index_version)
        ready = _answers.get(answer_key)
        if ready is not None:
            return _respond(shop, *ready)
    settings = state.settings
    if not settings.get("feeds_enabled", True):
        raise APIError(404, "feeds_disabled", "The merchant has turned feeds off.")
    try:
        definition, arg = parse_feed_path(feed_path)
        params = parse_params(definition, request.args, int(settings.get("feed_default_limit") or 12))
    except FeedParamError as err:
        raise APIError(404 if err.param == "feed" else 400, "unknown_feed" if err.param == "feed"
                       else "invalid_parameter", str(err), details={"param": err.param}) from None
    try:
        body = render(get_services(), shop, definition, arg, params, state)
    except ProductNotFound:
        raise APIError(404, "product_not_found", "That product is not in this shop's catalogue.") from None
    except FeedUnavailable:
        raise APIError(503, "feed_unavailable", "This feed is briefly unavailable.",
                       headers={"Retry-After": "30"}) from None
    headers = _headers(shop, definition.name, body)
    if answer_key is not None and not body.stale:
        _answers.put(answer_key, (body, headers))
    return _respond(shop, body, headers)


def _headers(shop: str, feed_name: str, body: FeedBody) -> Headers:
    # Purge keys for a CDN: the shop, this feed, and every product shown.
    surrogate = " ".join([f"shop-{shop}", f"feed-{shop}-{feed_name}",
                          *(f"product-{shop}-{pid}" for pid in body.product_ids)])
    cache_control = get_services().settings.feed_cache_control
    stale: Headers = []
    if body.stale:
        # Served from the last good copy while Meilisearch is down: say so, and let caches keep it briefly only.
        cache_control = "public, max-age=10, s-maxage=10, stale-if-error=86400"
        stale = [("X-Lumi-Stale", "1")]
    return [("ETag", body.etag), ("Cache-Control", cache_control), ("Surrogate-Key", surrogate),
            ("Cache-Tag", surrogate.replace(" ", ",")), *stale]


def _respond(shop: str, body: FeedBody, headers: Headers) -> Response:
    origin = request.headers.get("Origin")
    if origin == f"https://{shop}":
        headers = [*headers, ("Access-Control-Allow-Origin", origin), ("Vary", "Accept-Encoding, Origin")]
    else:
        headers = [*headers, ("Vary", "Accept-Encoding")]
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
