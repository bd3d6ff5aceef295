"""What a chat turn needs from the rest of Lumi: the shop's public profile, its order lookup, product search.

The profile (store name and public contact address, both store configuration) is read from Shopify once
per process every few minutes; without it the chat still answers, naming the shop by its domain.
"""

from __future__ import annotations

import logging
from typing import Any

from meilisearch.errors import MeilisearchError

from chat.engine import TurnContext
from chat.orders import OrderLookup
from chat.store import Session
from core.localcache import LocalCache
from core.services import CoreServices
from feeds.definitions import FEEDS, card, parse_params, search_arguments
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
    )
