"""What Lumi holds for a shop, and its deletion: the deletion registry made complete.

Every module that stores per-shop data registers a `DataStore` at import (core.purge). This
module imports all of them, so uninstall, deletion requests, compliance webhooks and the
data-inventory command, which all come through here, cannot forget one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from meilisearch.errors import MeilisearchApiError

import chat.store
import feeds.service
import feeds.writer
import shopify.shops
import shopify.webhook_log
from core import keys
from core.purge import expand, stores
from core.services import CoreServices
from feeds.index import PRODUCTS_INDEX, delete_shop_tasks
from feeds.writer import shop_filter

log = logging.getLogger(__name__)

PRODUCTS = "products"  # the category whose purge also clears the index's task history

# Every module that registers a data store at import (tests/test_layering.py checks none is missing).
DATA_MODULES = (shopify.shops, shopify.webhook_log, feeds.writer, feeds.service, chat.store)


def inventory(services: CoreServices, shop: str) -> dict[str, dict[str, Any]]:
    """What Lumi holds for `shop`, per store: key names (or index filters) and counts. No values."""
    return {
        store.name: {"category": store.category, "description": store.description,
                     "items": store.inventory(services, shop)}
        for store in stores()
    }


def preview(services: CoreServices, shop: str, categories: Iterable[str] | None) -> dict[str, dict[str, int]]:
    """What a deletion of `categories` would remove: {category: {store: count}}. Deletes nothing."""
    chosen = expand(categories)
    out: dict[str, dict[str, int]] = {category: {} for category in chosen}
    for store in stores(chosen):
        out[store.category][store.name] = sum(int(n) for n in store.inventory(services, shop).values())
    return out


def held_names(services: CoreServices, shop: str) -> set[str]:
    """Every name Lumi holds for `shop`, observed rather than declared: its Redis keys (any key with the shop
    domain as a segment), `<shop key>#settings` while its settings differ from the defaults, its membership of
    the installed set, and its documents in the products index."""
    found = {key for key in services.redis.scan_iter(match=f"{keys.PREFIX}:*{shop}*", count=1000)
             if shop in key.split(":")}
    if shopify.shops.changed_settings(services.redis, shop):
        found.add(f"{keys.shop(shop)}#settings")
    if services.redis.sismember(keys.SHOPS_INSTALLED, shop):
        found.add(f"{keys.SHOPS_INSTALLED}#{shop}")
    index = services.meili.index(PRODUCTS_INDEX)
    offset = 0
    while True:
        try:
            page = index.get_documents({"filter": shop_filter(shop), "fields": ["uid"], "limit": 1000,
                                        "offset": offset})
        except MeilisearchApiError:
            break  # no index yet: no documents
        found.update(document_name(str(doc.uid)) for doc in page.results)  # type: ignore[attr-defined]
        offset += len(page.results)
        if not page.results or offset >= page.total:
            break
    return found


def document_name(uid: str) -> str:
    """How a receipt names a deleted Meilisearch document."""
    return f"meilisearch:{PRODUCTS_INDEX}/{uid}"


def digest(names: Iterable[str]) -> str:
    """SHA-256 (hex) over the sorted names joined by newlines: what a receipt proves went."""
    return hashlib.sha256("\n".join(sorted(set(names))).encode()).hexdigest()


def purge_with_names(
    services: CoreServices, shop: str, *, categories: Iterable[str] | None = None, reason: str,
    now: float | None = None, receipt_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Delete the shop's data in `categories` (default: all, the install too) and keep a receipt without
    personal data. Returns the receipt and, per store, the names of what really went: the names held before a
    store's purge and not after it, so a store whose purge deletes nothing shows nothing on the receipt, whatever
    it returns."""
    chosen = expand(categories)
    names: dict[str, list[str]] = {}
    before = held_names(services, shop)
    for store in stores(chosen):
        store.purge(services, shop)
        after = held_names(services, shop)
        names[store.name] = sorted(before - after)
        before = after
    if PRODUCTS in chosen:
        # Meilisearch's task history keeps the delete filters (`shop = "..."`): they go with the documents.
        try:
            delete_shop_tasks(services.meili, shop)
        except Exception:  # the daily sweep deletes finished tasks older than a day anyway
            log.warning("index task history of a purged shop not deleted", extra={"shop": shop}, exc_info=True)
    everything = [name for gone in names.values() for name in gone]
    receipt = {
        "id": receipt_id or uuid.uuid4().hex,
        "shop": shop,
        "reason": reason,
        "categories": sorted(chosen),
        "deleted": {store: len(gone) for store, gone in names.items()},
        "completed_at": time.time() if now is None else now,
        "digest": digest(everything),
    }
    key = keys.deletion_receipts(shop)
    with services.redis.pipeline() as pipe:
        pipe.lpush(key, json.dumps(receipt))
        pipe.ltrim(key, 0, 99)
        pipe.expire(key, keys.RECEIPT_TTL)
        pipe.execute()
    log.info("shop data purged", extra={"shop": shop, "reason": reason, "deleted": receipt["deleted"]})
    return receipt, names


def purge_shop(
    services: CoreServices, shop: str, *, categories: Iterable[str] | None = None, reason: str,
    now: float | None = None,
) -> dict[str, Any]:
    """Delete the shop's data in `categories` (default: all) and keep a receipt without personal data."""
    return purge_with_names(services, shop, categories=categories, reason=reason, now=now)[0]


def receipts(services: CoreServices, shop: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in services.redis.lrange(keys.deletion_receipts(shop), 0, -1)]
