"""What a chat turn needs from the rest of Lumi: the shop's public profile, its order lookup, product search.

The profile (store name and public contact address, both store configuration) is read from Shopify once
per process every few minutes; without it the chat still answers, naming the shop by its domain. The
storefront origins the direct chat stream allows (CORS) come from the same query, cached in Redis briefly.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import redis
from meilisearch.errors import MeilisearchError

from chat.engine import ProductResults, TurnContext
from chat.orders import OrderLookup
from chat.rules import ProductQuery
from chat.store import Session
from core import keys
from core.localcache import LocalCache
from core.services import CoreServices
from feeds import markets
from feeds.definitions import BASE_ZONE, FEEDS, card, normalize_locale, parse_params, search_arguments
from feeds.index import PRODUCTS_INDEX
from shopify import queries
from shopify.errors import ShopifyError
from shopify.services import ShopifyServices

log = logging.getLogger(__name__)

PROFILE_MAX_AGE = 600.0
PRODUCT_RESULTS = 5

_profiles: LocalCache[tuple[str, str | None]] = LocalCache(4096, PROFILE_MAX_AGE)


def shop_profile(services: ShopifyServices, shop: str) -> tuple[str, str | None]:
    """(store name, public contact email or None)."""
    known = _profiles.get((shop,))
    if known is not None:
        return known
    try:
        with services.tokens.admin_client(shop) as admin:
            data = admin.execute(queries.SHOP_INFO)
        info = data.get("shop") or {}
        profile = (str(info.get("name") or shop), info.get("contactEmail") or None)
    except (ShopifyError, OSError) as err:
        log.warning("shop profile unavailable", extra={"shop": shop, "error": type(err).__name__})
        return shop.removesuffix(".myshopify.com"), None
    _profiles.put((shop,), profile)
    return profile


def storefront_origins(services: ShopifyServices, shop: str) -> frozenset[str]:
    """The origins the shop's storefront is served from: `https://<shop>.myshopify.com` and its primary domain's
    (Admin `shop { primaryDomain { url } }`). Cached in Redis for a few minutes; when Shopify cannot be read, the
    myshopify origin alone (not cached, so the primary domain comes back as soon as Shopify answers)."""
    key = keys.chat_origins(shop)
    try:
        cached = services.redis.get(key)
    except redis.RedisError:
        cached = None
    if cached:
        return frozenset(json.loads(cached))
    origins = {f"https://{shop}"}
    try:
        with services.tokens.admin_client(shop, max_retries=1, timeout=5.0) as admin:
            data = admin.execute(queries.SHOP_INFO)
    except (ShopifyError, OSError) as err:
        log.warning("storefront origins unavailable", extra={"shop": shop, "error": type(err).__name__})
        return frozenset(origins)
    primary = _origin(((data.get("shop") or {}).get("primaryDomain") or {}).get("url"))
    if primary:
        origins.add(primary)
    try:
        services.redis.set(key, json.dumps(sorted(origins)), ex=keys.CHAT_ORIGINS_TTL)
    except redis.RedisError:
        pass
    return frozenset(origins)


def _origin(url: Any) -> str | None:
    """scheme://host[:port] of a URL, lower-case, or None."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def find_products(services: CoreServices, shop: str, settings: dict[str, Any], query: ProductQuery,
                  language: str, country: str | None, limit: int = 3) -> ProductResults:
    """Cards for a shopper's product question, from the feeds index (public catalogue data), priced for the
    session's country when the shop's markets know it (else in the shop's currency), formatted for its language.

    Every search word must match first ("blue hoodies"); when nothing does, each word is tried alone in titles,
    types, tags and collections (not vendors: "blue" must not find every product of "Blue Fern Co."), so the
    shopper gets the hoodies, said to be a close match."""
    # Only a price ("anything under $30?"): the best sellers in that range.
    feed = FEEDS["search"] if query.terms else FEEDS["best-sellers"]
    args = {"limit": str(limit), **({"q": query.terms[:200]} if query.terms else {})}
    prices = {name: str(value) for name, value in (("max_price", query.max_price), ("min_price", query.min_price))
              if value is not None}
    try:
        params = parse_params(feed, {**args, **prices}, limit)
    except ValueError:  # an impossible range ("over 90 under 10"): searched without it
        params = parse_params(feed, args, limit)
    q, options = search_arguments(feed, "", params, shop, settings, limit=limit, offset=0)
    index = services.meili.index(PRODUCTS_INDEX)
    try:
        hits = index.search(q, {**options, "matchingStrategy": "all"})["hits"]
        match = "exact"
        if not hits and query.terms:
            match = "close"
            seen: set[Any] = set()
            for word in sorted(query.terms.split(), key=len, reverse=True):
                found = index.search(word, {**options, "matchingStrategy": "all", "attributesToSearchOn": [
                    "title", "product_type", "tags", "collections"]})["hits"]
                for hit in found:
                    if hit["product_id"] not in seen:
                        seen.add(hit["product_id"])
                        hits.append(hit)
                if len(hits) >= limit:
                    break
    except (MeilisearchError, OSError):
        log.warning("product search unavailable", extra={"shop": shop})
        return ProductResults([], "")
    zone = BASE_ZONE
    if country:
        try:
            market_map = markets.stored(services.redis, shop)
        except redis.RedisError:
            market_map = None
        zone = (market_map.zone_for(country) if market_map is not None else None) or BASE_ZONE
    locale = normalize_locale(f"{language}-{country}" if country else language)
    cards = [card(hit, zone, locale) for hit in hits[:limit]]
    return ProductResults(cards, match if cards else "")


def search_products(services: CoreServices, shop: str, settings: dict[str, Any], query: str) -> list[dict[str, Any]]:
    """Up to five product cards for a shopper's question, from the feeds index (public catalogue data)."""
    feed = FEEDS["search"]
    params = parse_params(feed, {"q": query[:200], "limit": str(PRODUCT_RESULTS)}, PRODUCT_RESULTS)
    q, options = search_arguments(feed, "", params, shop, settings, limit=PRODUCT_RESULTS, offset=0)
    try:
        hits = services.meili.index(PRODUCTS_INDEX).search(q, options)["hits"]
    except (MeilisearchError, OSError):
        return []
    return [{k: c[k] for k in ("title", "url", "price", "currency", "available")} for c in map(card, hits)]


def order_lookup(services: ShopifyServices, shop: str) -> OrderLookup:
    """Order reads for a shopper who is waiting: one retry and a short timeout, then an honest answer."""
    return OrderLookup(lambda: services.tokens.admin_client(shop, max_retries=1, timeout=5.0))


def turn_context(services: ShopifyServices, shop: str, session: Session, settings: dict[str, Any],
                 customer_id: str | None) -> TurnContext:
    name, contact = shop_profile(services, shop)
    return TurnContext(
        shop=shop, session=session, settings=settings, shop_name=name, contact_email=contact,
        customer_id=customer_id, lookup=order_lookup(services, shop),
        search=lambda query: search_products(services, shop, settings, query),
        products=lambda query: find_products(services, shop, settings, query, session.language, session.country),
    )
