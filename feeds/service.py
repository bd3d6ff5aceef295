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
from feeds import freshness, markets
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


def _load(client: redis.Redis, key: str, stale: bool = False) -> FeedBody | None:
    """Read a cached body: one HMGET (the JSON form is decompressed from gzip only when a client needs it)."""
    compressed, etag, ids = client.hmget(key, ["gzip", "etag", "ids"])
    if compressed is None or etag is None:
        return None
    return FeedBody(json=b"", gzip=compressed, etag=etag.decode(),
                    product_ids=tuple(i for i in (ids or b"").decode().split(",") if i), stale=stale)


# A miss costs two Redis round trips besides the versions: one script reads the body or else takes the fill
# lock, and once the body is computed another stores it (and the last good copy) and releases the lock.
_LOAD_OR_LOCK = """
local found = redis.call('HMGET', KEYS[1], 'gzip', 'etag', 'ids')
if found[1] and found[2] then return {found[1], found[2], found[3] or ''} end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 1 end
return 0
"""
_STORE = """
redis.call('HSET', KEYS[1], 'gzip', ARGV[1], 'etag', ARGV[2], 'ids', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HSET', KEYS[2], 'gzip', ARGV[1], 'etag', ARGV[2], 'ids', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
if ARGV[6] == '1' then redis.call('DEL', KEYS[3]) end
return 1
"""


def _run(client: redis.Redis, script: str, names: list[str], args: list[Any]) -> Any:
    """EVALSHA, loading the script with EVAL on its first use on this Redis (or after a restart)."""
    try:
        return client.evalsha(_SHAS[script], len(names), *names, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(script, len(names), *names, *args)


_SHAS = {script: hashlib.sha1(script.encode()).hexdigest() for script in (_LOAD_OR_LOCK, _STORE)}


def _load_or_lock(client: redis.Redis, body_key: str, lock_key: str) -> tuple[FeedBody | None, bool]:
    """(the cached body, False) when there is one, else (None, whether this request now holds the fill lock)."""
    found = _run(client, _LOAD_OR_LOCK, [body_key, lock_key], [keys.FEED_FILL_LOCK_TTL])
    if not isinstance(found, list):
        return None, bool(found)
    compressed, etag, ids = found
    return FeedBody(json=b"", gzip=compressed, etag=etag.decode(),
                    product_ids=tuple(i for i in ids.decode().split(",") if i)), False


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
        lock_key = keys.feed_fill_lock(shop, fingerprint)
        cached, owner = _load_or_lock(cache, body_key, lock_key)
        if cached is not None:
            _bodies.put(local_key, cached)
            return cached
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
            # One atomic script (a body is never without its TTL). The lock goes after the body is stored, so a
            # request arriving in between finds the body.
            _run(cache, _STORE, [body_key, keys.feed_last_good(shop, request_key), lock_key],
                 [body.gzip, body.etag, ",".join(body.product_ids), keys.FEED_BODY_TTL, keys.FEED_LAST_GOOD_TTL,
                  int(owner)])
            owner = False
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
    ranked = sorted(candidates, key=lambda hit: (-similarity(hit, base), hit["product_id"]))
    return ranked[params.offset: params.offset + params.limit], len(ranked)


def similarity(hit: dict[str, Any], base: dict[str, Any]) -> float:
    """How much a candidate shares with the product `similar` is about (higher ranks first)."""
    price = base.get("price_min")
    points = 3.0 * (hit.get("product_type") == base.get("product_type"))
    points += 2.0 * (hit.get("vendor") == base.get("vendor"))
    points += len(set(hit.get("tags") or []) & set(base.get("tags") or []))
    points += 2.0 * len(set(hit.get("collections") or []) & set(base.get("collections") or []))
    if price and hit.get("price_min"):
        points += 1.0 - min(abs(hit["price_min"] - price) / price, 1.0)
    return points


# --- explain: why each product of a rendered feed is there, in that place ------------------------------------

EXPLAIN_FIELDS = ["product_id", "available", "units_7d", "units_30d", "trend_score", "discount_pct",
                  "back_in_stock_at", "published_at", "price_min", "product_type", "vendor", "tags", "collections"]


def _when(ts: Any) -> str | None:
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if ts else None


def _sort_reason(attribute: str, direction: str, doc: dict[str, Any]) -> str | None:
    value = doc.get(attribute)
    most = "highest first" if direction == "desc" else "lowest first"
    if attribute == "units_30d":
        return f"{int(value or 0)} units sold in the last 30 days (ranked by 30-day sales, {most})"
    if attribute == "units_7d":
        return f"{int(value or 0)} units sold in the last 7 days (ranked by 7-day sales, {most})"
    if attribute == "trend_score":
        return (f"Trending score {float(value or 0):.2f}: the last 7 days' sales against the 30-day weekly rate "
                f"({most})")
    if attribute == "discount_pct":
        return f"{int(value or 0)}% off (ranked by discount, {most})"
    if attribute == "back_in_stock_at":
        return f"Back in stock since {_when(value) or 'unknown'} (most recent first)"
    if attribute == "published_at":
        return f"Published {_when(value) or 'at an unknown time'} ({'newest' if direction == 'desc' else 'oldest'} " \
               "first)"
    if attribute == "price_min":
        return f"Price from {value} ({'most expensive' if direction == 'desc' else 'cheapest'} first)"
    return None


def explain(services: CoreServices, shop: str, feed: Feed, arg: str, params: FeedParams, settings: dict[str, Any],
            product_ids: list[str]) -> list[dict[str, Any]]:
    """For each product of a rendered feed page (in its order), the signals and rules that placed it there.

    Reads the products' own index documents and the feed's sort and filters from `search_arguments` (the query
    `render` ran); it describes the ranking, never re-ranks, so the order is always the storefront's.
    """
    index = services.meili.index(PRODUCTS_INDEX)
    ids = [int(pid) for pid in product_ids]
    docs: dict[int, dict[str, Any]] = {}
    if ids:
        found = index.search("", {"filter": f"{shop_filter(shop)} AND product_id IN [{', '.join(map(str, ids))}]",
                                  "limit": len(ids), "attributesToRetrieve": EXPLAIN_FIELDS})["hits"]
        docs = {hit["product_id"]: hit for hit in found}
    _, options = search_arguments(feed, arg, params, shop, settings, limit=params.limit, offset=params.offset)
    sort = [tuple(key.split(":", 1)) for key in options.get("sort", [])]
    pinned = [pid for pid in (settings.get("pinned_products") or {}).get(feed.name, []) if pid not in params.exclude]
    demote = settings.get("out_of_stock") == "demote"
    base: dict[str, Any] | None = None
    if feed.name == "similar":
        base_hits = index.search("", {"filter": f"{shop_filter(shop)} AND product_id = {int(arg)}", "limit": 1,
                                      "attributesToRetrieve": EXPLAIN_FIELDS})["hits"]
        base = base_hits[0] if base_hits else None
    out = []
    for rank, pid in enumerate(ids, start=params.offset + 1):
        doc = docs.get(pid, {"product_id": pid})
        available = bool(doc.get("available"))
        is_pinned = params.offset == 0 and pid in pinned
        is_demoted = demote and not available and not is_pinned
        reasons: list[str] = []
        if is_pinned:
            reasons.append(f"Pinned by you: shown first in this feed (pin {pinned.index(pid) + 1} of {len(pinned)})")
        if is_demoted:
            reasons.append("Out of stock: demoted below every in-stock product (your out-of-stock setting)")
        elif demote and available and not is_pinned:
            reasons.append("In stock: shown before out-of-stock products")
        if feed.name == "search" and params.q:
            reasons.append(f"Matches the search \u201c{params.q}\u201d (best matches first)")
        if base is not None:
            reasons.append(f"Similarity {similarity(doc, base):.1f} to product {arg}: shared type, vendor, tags, "
                           "collections and price band (most similar first)")
        for attribute, direction in sort:
            if attribute != "available" and not is_pinned:
                reason = _sort_reason(attribute, direction, doc)
                if reason:
                    reasons.append(reason)
        out.append({
            "id": str(pid),
            "rank": rank,
            "reasons": reasons,
            "signals": {
                "units_7d": int(doc.get("units_7d") or 0),
                "units_30d": int(doc.get("units_30d") or 0),
                "trending_score": float(doc.get("trend_score") or 0),
                "discount_pct": int(doc.get("discount_pct") or 0),
                "restocked_at": _when(doc.get("back_in_stock_at")),
                "pinned": is_pinned,
                "demoted": is_demoted,
                "available": available,
            },
        })
    return out


__all__ = ["FeedBody", "FeedParamError", "FeedUnavailable", "ProductNotFound", "SettingsUnavailable", "ShopState",
           "bump_index_version", "explain", "missing_pins", "plain", "render", "shop_state", "similarity"]


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
    # Registered here rather than in feeds.freshness, so runtime.data's imports stay complete.
    register(DataStore("feed-freshness", "operational",
                       "seconds from product webhooks to the feed reflecting them (numbers only, 24 h)",
                       freshness.purge, freshness.inventory))


_register()


def missing_pins(services: CoreServices, shop: str, feed: Feed, params: FeedParams, settings: dict[str, Any],
                 shown: list[str]) -> list[dict[str, Any]]:
    """The merchant's pins for this feed that the first page does not show, each with the rule that keeps it out
    (pinned products obey the same exclusions and stock rules as every product)."""
    pinned = (settings.get("pinned_products") or {}).get(feed.name, [])
    missing = [pid for pid in pinned if str(pid) not in set(shown)]
    if params.offset or not missing:
        return []
    hits = services.meili.index(PRODUCTS_INDEX).search("", {
        "filter": f"{shop_filter(shop)} AND product_id IN [{', '.join(map(str, missing))}]", "limit": len(missing),
        "attributesToRetrieve": ["product_id", "available", "tags", "price_min"]})["hits"]
    docs = {hit["product_id"]: hit for hit in hits}
    excluded_tags = set(settings.get("excluded_tags") or [])
    out = []
    for pid in missing:
        doc = docs.get(pid)
        reasons = []
        if pid in params.exclude:
            reasons.append("Excluded by this request's exclude parameter")
        if pid in (settings.get("excluded_products") or []):
            reasons.append("You excluded this product from every feed")
        if doc is None:
            reasons.append("Not in the catalogue index (unpublished, deleted, or not synced yet)")
        else:
            tags = sorted(set(doc.get("tags") or []) & excluded_tags)
            if tags:
                reasons.append(f"Has a tag you excluded: {', '.join(tags)}")
            if not doc.get("available") and (params.available_only or settings.get("out_of_stock") == "hide"):
                reasons.append("Out of stock, and out-of-stock products are hidden")
            price = doc.get("price_min") or 0
            if (params.min_price is not None and price < params.min_price) or \
                    (params.max_price is not None and price > params.max_price):
                reasons.append("Outside the price range asked for")
        if not reasons:
            reasons.append("Beyond this page: more products are pinned than the page shows")
        out.append({"id": str(pid), "reasons": reasons})
    return out
