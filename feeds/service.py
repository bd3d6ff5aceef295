"""Rendering a feed: Meilisearch query → compact JSON, cached in Redis by version, alive when a backend fails.

Cache layers, inside out: a Redis body cache keyed on (feed, parameters, settings version, index version)
— a product or settings change bumps a version, so stale entries are unreachable in O(1) — stored gzip-
compressed with a strong ETag; one request fills a missing entry while the others wait for it; the last
good body per (feed, parameters) is kept for a day and served, marked stale, when Meilisearch fails.
If Redis fails, feeds are computed straight from Meilisearch.

Prices follow the shopper's market: `country` and `locale` are request parameters like any other (so part of
every cache key), and a computed body resolves the country to a pricing zone through the shop's market map
(feeds.markets), read from Redis only when a body is computed under new versions.

Outermost, each web worker keeps recent bodies and the shop's parsed settings in memory (feeds.localcache),
keyed by the settings stamp and index version read from Redis on every request in one pipelined round
trip: a cache hit costs that round trip and nothing else, and a change still applies to the next request.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis
from meilisearch.errors import MeilisearchError

from core import keys
from core.fastreads import FastReads
from core.localcache import LocalCache
from core.purge import DataStore, register
from core.services import CoreServices
from feeds import markets
from feeds.definitions import (
    BASE_ZONE,
    PINNED,
    Feed,
    FeedParamError,
    FeedParams,
    card,
    encode_cursor,
    search_arguments,
)
from feeds.index import PRODUCTS_INDEX
from feeds.markets import BASE, Zone
from feeds.writer import shop_filter
from shopify.services import ShopifyServices

log = logging.getLogger(__name__)

SIMILAR_CANDIDATES = 200
FILL_WAIT_SECONDS = 2.0
SETTINGS_FALLBACK_SECONDS = 3600.0  # how long the last known settings serve feeds while Redis is down
LOCAL_BODIES = 512  # bodies kept in memory per web worker (a few KB each)
LOCAL_BODY_AGE = 300.0  # seconds; freshness comes from the versions in the key, this only bounds memory


class FeedUnavailable(Exception):
    """Meilisearch failed and no good body is cached: answer 503 with Retry-After."""


class ProductNotFound(LookupError):
    pass


@dataclass(frozen=True)
class FeedBody:
    json: bytes
    gzip: bytes
    etag: str
    product_ids: tuple[str, ...]
    stale: bool = False


@dataclass(frozen=True)
class ShopState:
    """What every feed request of a shop needs, read in one round trip."""

    stamp: str  # install time and settings version: changes on a reinstall and on every settings change
    settings: dict[str, Any]
    index_version: int | None  # None while Redis is down: no cache layer, straight to Meilisearch


class SettingsUnavailable(Exception):
    """Redis is down and this process has no recent copy of the shop's settings."""


# Per web worker: (shop) → (stamp, settings) and (shop, request, stamp, index version) → FeedBody.
_settings: LocalCache[tuple[str, dict[str, Any]]] = LocalCache(4096, SETTINGS_FALLBACK_SECONDS)
_bodies: LocalCache[FeedBody] = LocalCache(LOCAL_BODIES, LOCAL_BODY_AGE)


def shop_state(services: ShopifyServices, shop: str) -> ShopState | None:
    """The shop's settings and versions, or None when it is not installed. One pipelined round trip (the
    settings stamp and the index version); the settings document itself is read only after it changed.
    While Redis is down, the settings this process last saw (up to an hour old) keep feeds answering."""
    try:
        reads = FastReads(services.redis)
        services.shops.queue_settings_stamp(reads, shop)
        reads.get(keys.feeds_version(shop))
        (installed_at, version), index_version = reads.execute()
        if installed_at is None:
            return None
        stamp = f"{installed_at}:{version}"
        known = _settings.get((shop,))
        if known is None or known[0] != stamp:
            found = services.shops.settings_snapshot(shop)
            if found is None:
                return None
            stamp = f"{installed_at}:{found[1]}"
            known = (stamp, found[0])
        _settings.put((shop,), known)  # also marks it confirmed now, for the fallback's age
        return ShopState(stamp, known[1], int(index_version or 0))
    except redis.RedisError:
        known = _settings.get((shop,))
        if known is None:
            raise SettingsUnavailable(shop) from None
        return ShopState(known[0], known[1], None)


def bump_index_version(client: redis.Redis, shop: str) -> None:
    """Called after every index write for `shop`: its cached feed bodies become unreachable."""
    try:
        client.incr(keys.feeds_version(shop))
    except redis.RedisError:
        log.warning("could not bump the feeds version", extra={"shop": shop})


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), default=str).encode()).hexdigest()[:32]


def _pack(payload: dict[str, Any], product_ids: list[str], stale: bool = False) -> FeedBody:
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return FeedBody(json=raw, gzip=gzip.compress(raw, compresslevel=6, mtime=0),
                    etag='"' + hashlib.sha256(raw).hexdigest()[:40] + '"', product_ids=tuple(product_ids), stale=stale)


def _store(client: redis.Redis, key: str, body: FeedBody, ttl: int) -> None:
    with client.pipeline() as pipe:
        pipe.hset(key, mapping={"gzip": body.gzip, "etag": body.etag, "ids": ",".join(body.product_ids)})
        pipe.expire(key, ttl)
        pipe.execute()


def _load(client: redis.Redis, key: str, stale: bool = False) -> FeedBody | None:
    """Read a cached body: one HMGET (the JSON form is decompressed from gzip only when a client needs it)."""
    compressed, etag, ids = client.hmget(key, ["gzip", "etag", "ids"])
    if compressed is None or etag is None:
        return None
    return FeedBody(json=b"", gzip=compressed, etag=etag.decode(),
                    product_ids=tuple(i for i in (ids or b"").decode().split(",") if i), stale=stale)


def plain(body: FeedBody) -> bytes:
    """The uncompressed JSON (rarely needed: browsers and CDNs accept gzip)."""
    return body.json or gzip.decompress(body.gzip)


def render(services: CoreServices, shop: str, feed: Feed, arg: str, params: FeedParams, state: ShopState) -> FeedBody:
    settings = state.settings
    if state.index_version is None:  # Redis is down
        return _compute(services, shop, feed, arg, params, settings, None)
    request = (feed.name, arg, params.cache_key())
    local_key = (shop, *request, state.stamp, state.index_version)
    local = _bodies.get(local_key)
    if local is not None:
        return local
    cache = services.queue_redis  # bytes in and out: bodies are stored gzip-compressed
    request_key = _fingerprint(*request)
    try:
        fingerprint = _fingerprint(request_key, state.stamp, state.index_version)
        body_key = keys.feed_body(shop, fingerprint)
        cached = _load(cache, body_key)
        if cached is not None:
            _bodies.put(local_key, cached)
            return cached
        lock_key = keys.feed_fill_lock(shop, fingerprint)
        owner = bool(cache.set(lock_key, b"1", nx=True, ex=keys.FEED_FILL_LOCK_TTL))
        if not owner:
            # Someone else is computing this very body: wait for it rather than query Meilisearch again.
            deadline = time.monotonic() + FILL_WAIT_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.01)
                cached = _load(cache, body_key)
                if cached is not None:
                    _bodies.put(local_key, cached)
                    return cached
    except redis.RedisError:
        log.warning("feed cache unavailable; serving from Meilisearch", extra={"shop": shop})
        return _compute(services, shop, feed, arg, params, settings, None)
    try:
        body = _compute(services, shop, feed, arg, params, settings, (state.stamp, state.index_version))
        try:
            # Stored before the lock is released, so a request arriving in between finds the body.
            _store(cache, body_key, body, keys.FEED_BODY_TTL)
            _store(cache, keys.feed_last_good(shop, request_key), body, keys.FEED_LAST_GOOD_TTL)
        except redis.RedisError:
            pass
        _bodies.put(local_key, body)
        return body
    except FeedUnavailable:
        last = _load(cache, keys.feed_last_good(shop, request_key), stale=True)
        if last is None:
            raise
        return last
    finally:
        if owner:
            try:
                cache.delete(lock_key)
            except redis.RedisError:
                pass


def zone_for(services: CoreServices, shop: str, country: str | None,
             versions: tuple[str, int] | None) -> Zone | None:
    """The pricing zone of a shopper in `country`: the shop's own prices when no country is named; None when one
    is named but the shop's markets are unknown (cards then carry no price). Reads the market map only when a
    body is computed (feeds.markets caches it per index version), never on a cache hit."""
    if country is None:
        return BASE_ZONE
    market_map = markets.for_feeds(services.redis, shop, versions)
    return market_map.zone_for(country) if market_map is not None else None


def _compute(services: CoreServices, shop: str, feed: Feed, arg: str, params: FeedParams,
             settings: dict[str, Any], versions: tuple[str, int] | None) -> FeedBody:
    """`versions`: the shop's settings stamp and index version, None while Redis is down."""
    index = services.meili.index(PRODUCTS_INDEX)
    zone = zone_for(services, shop, params.country, versions)
    params = replace(params, zone=zone.key if zone is not None else BASE)
    try:
        if feed.name == "similar":
            hits, total = _similar(index, shop, int(arg), feed, params, settings)
        else:
            q, options = search_arguments(feed, arg, params, shop, settings, limit=params.limit,
                                          offset=params.offset)
            result = index.search(q, options)
            hits, total = result["hits"], int(result.get("estimatedTotalHits") or 0)
        if params.offset == 0:
            hits = _with_pinned(index, shop, feed, params, settings, hits)
    except MeilisearchError as err:
        log.warning("feed query failed", extra={"shop": shop, "feed": feed.name, "error": type(err).__name__})
        raise FeedUnavailable(str(err)) from err
    except OSError as err:  # connection refused / reset below the SDK
        raise FeedUnavailable(str(err)) from err
    products = [card(hit, zone, params.locale) for hit in hits[: params.limit]]
    log.info("feed computed", extra={"shop": shop, "feed": feed.name, "products": len(products)})
    next_offset = params.offset + params.limit
    payload = {
        "feed": feed.name if not arg else f"{feed.name}/{arg}",
        "shop": shop,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "products": products,
        "next_cursor": encode_cursor(next_offset) if next_offset < min(total, 1000) and products else None,
    }
    return _pack(payload, [p["id"] for p in products])


def _with_pinned(index: Any, shop: str, feed: Feed, params: FeedParams, settings: dict[str, Any],
                 hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pinned = [pid for pid in (settings.get("pinned_products") or {}).get(feed.name, []) if pid not in params.exclude]
    if not pinned:
        return hits
    # Pinned products still obey the shop filter, exclusions and stock rules: the feed's filters minus its own.
    _, options = search_arguments(PINNED, "", params, shop, settings, limit=len(pinned), offset=0)
    options["filter"] += f" AND (product_id IN [{', '.join(map(str, pinned))}])"
    options.pop("sort", None)
    found = {hit["product_id"]: hit for hit in index.search("", options)["hits"]}
    first = [found[pid] for pid in pinned if pid in found]
    rest = [hit for hit in hits if hit["product_id"] not in found]
    return first + rest


def _similar(index: Any, shop: str, pid: int, feed: Feed, params: FeedParams,
             settings: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    found = index.get_documents({"filter": f"{shop_filter(shop)} AND product_id = {pid}", "limit": 1}).results
    if not found:
        raise ProductNotFound(pid)
    base = dict(found[0])
    ors = []
    if base.get("product_type"):
        ors.append(f"product_type = {json.dumps(base['product_type'])}")
    if base.get("vendor"):
        ors.append(f"vendor = {json.dumps(base['vendor'])}")
    if base.get("tags"):
        ors.append(f"tags IN [{', '.join(json.dumps(t) for t in base['tags'][:20])}]")
    if base.get("collections"):
        ors.append(f"collections IN [{', '.join(json.dumps(c) for c in base['collections'][:20])}]")
    if not ors:
        return [], 0
    _, options = search_arguments(feed, "", params, shop, settings, limit=SIMILAR_CANDIDATES, offset=0)
    options["filter"] += f" AND (product_id != {pid}) AND ({' OR '.join(ors)})"
    price = base.get("price_min")
    if price:
        options["filter"] += f" AND (price_min >= {price * 0.5} AND price_min <= {price * 2})"
    candidates = index.search("", options)["hits"]

    def score(hit: dict[str, Any]) -> tuple[float, int]:
        points = 3.0 * (hit.get("product_type") == base.get("product_type"))
        points += 2.0 * (hit.get("vendor") == base.get("vendor"))
        points += len(set(hit.get("tags") or []) & set(base.get("tags") or []))
        points += 2.0 * len(set(hit.get("collections") or []) & set(base.get("collections") or []))
        if price and hit.get("price_min"):
            points += 1.0 - min(abs(hit["price_min"] - price) / price, 1.0)
        return (-points, hit["product_id"])

    ranked = sorted(candidates, key=score)
    return ranked[params.offset: params.offset + params.limit], len(ranked)


__all__ = ["FeedBody", "FeedParamError", "FeedUnavailable", "ProductNotFound", "SettingsUnavailable", "ShopState",
           "bump_index_version", "plain", "render", "shop_state"]


def _register() -> None:
    def shop_keys(ctx: CoreServices, shop: str) -> list[str]:
        found = [keys.feeds_version(shop)] if ctx.redis.exists(keys.feeds_version(shop)) else []
        for pattern in (keys.feed_body(shop, "*"), keys.feed_last_good(shop, "*"), keys.feed_fill_lock(shop, "*")):
            found.extend(ctx.redis.scan_iter(match=pattern, count=1000))
        return found

    def purge(ctx: CoreServices, shop: str) -> int:
        _bodies.discard_prefix(shop)  # this process's copies (others' are unreachable: new install stamp)
        _settings.discard_prefix(shop)
        markets.forget(shop)
        found = shop_keys(ctx, shop)
        return int(ctx.redis.delete(*found)) if found else 0

    def inventory(ctx: CoreServices, shop: str) -> dict[str, int]:
        found = shop_keys(ctx, shop)
        return {f"{keys.PREFIX}:feeds:*:{shop}:*": len(found)} if found else {}

    register(DataStore("feed-cache", "products", "cached feed bodies (public catalogue data) and their versions",
                       purge, inventory))


_register()
