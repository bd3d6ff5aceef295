"""`GET /proxy/feeds/<feed>`: storefront feeds as small, edge-cacheable JSON.

Reached through the app proxy (signature checked, shop from the signed query) or directly with
`?shop=` (feeds are public catalogue data). Headers decide how much traffic reaches Python:
`Cache-Control` with s-maxage / stale-while-revalidate / stale-if-error, a strong ETag (304),
`Vary: Accept-Encoding`, and Surrogate-Key / Cache-Tag for precise CDN purges. A body depends only on the
path and query (`country` and `locale` are query parameters), so every cache keys on the URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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
from runtime.services import Services
from shopify.domains import valid_shop_domain
from web.errors import APIError
from web.extensions import get_services
from web.guards import proxy_request_is_signed, verify_proxy_request
from web.requestlog import log_line, request_id

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__, url_prefix="/proxy/feeds")

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Answer:
    """A rendered feed answer and the versions it was computed under."""

    shop: str
    stamp: str
    index_version: int
    body: FeedBody
    headers: Headers


# Per web worker: the answer to an unsigned request, keyed by its exact path and query string. It is served
# again only while the shop's settings stamp and index version (read from Redis for every request) are the
# ones it was computed under, so never after a change. FeedHits serves these before Flask; signed proxy
# requests (a new timestamp each) are never stored.
_answers: LocalCache[Answer] = LocalCache(512, 300.0)


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
    # Stored for FeedHits, which serves repeats of this exact request before Flask while the versions hold.
    if state.index_version is not None and not body.stale and not proxy_request_is_signed():
        _answers.put((request.environ.get("PATH_INFO", ""), request.environ.get("QUERY_STRING", "")),
                     Answer(shop, state.stamp, state.index_version, body, headers))
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


def negotiate(shop: str, body: FeedBody, headers: Headers, origin: str | None, if_none_match: str,
              accept_encoding: str) -> tuple[int, Headers, bytes]:
    """(status, headers, payload) for this client: CORS for the shop's own domain, 304 on a matching ETag,
    the stored gzip form when accepted. Shared by the Flask view and the FeedHits fast path."""
    if origin == f"https://{shop}":
        headers = [*headers, ("Access-Control-Allow-Origin", origin), ("Vary", "Accept-Encoding, Origin")]
    else:
        headers = [*headers, ("Vary", "Accept-Encoding")]
    if body.etag in _etags(if_none_match):
        return 304, headers, b""
    if "gzip" in accept_encoding:
        return 200, [*headers, ("Content-Type", "application/json"), ("Content-Encoding", "gzip")], body.gzip
    return 200, [*headers, ("Content-Type", "application/json")], plain(body)


def _respond(shop: str, body: FeedBody, headers: Headers) -> Response:
    status, headers, payload = negotiate(shop, body, headers, request.headers.get("Origin"),
                                         request.headers.get("If-None-Match", ""),
                                         request.headers.get("Accept-Encoding", ""))
    response = Response(payload, status=status, headers=headers)
    if status == 304:
        response.headers.pop("Content-Type", None)
    return response


class FeedHits:
    """WSGI middleware answering repeat feed requests before Flask (the hottest path of the service).

    Only a GET whose exact path and query string have a stored answer, and only while the shop's versions
    (one Redis round trip, as in the view) are the ones it was computed under; everything else, including
    every error, goes to the Flask view, which computes, validates and stores answers. The request gets the
    same headers, status and request log line as from the view.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], services: Services) -> None:
        self.app = app
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or not path.startswith("/proxy/feeds/"):
            return self.app(environ, start_response)
        answer = _answers.get((path, environ.get("QUERY_STRING", "")))
        if answer is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            state = shop_state(self.services, answer.shop)
        except SettingsUnavailable:
            state = None
        if state is None or (state.stamp, state.index_version) != (answer.stamp, answer.index_version):
            return self.app(environ, start_response)  # changed, gone or Redis down: the view decides
        status, headers, payload = negotiate(answer.shop, answer.body, answer.headers, environ.get("HTTP_ORIGIN"),
                                             environ.get("HTTP_IF_NONE_MATCH", ""),
                                             environ.get("HTTP_ACCEPT_ENCODING", ""))
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers = [*headers, ("Content-Length", str(len(payload))), ("X-Request-ID", rid)]
        start_response("200 OK" if status == 200 else "304 NOT MODIFIED", headers)
        log_line("GET", path, status, round((time.perf_counter() - started) * 1000, 2), answer.shop, rid)
        return [payload]


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
