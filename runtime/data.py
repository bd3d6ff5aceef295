"""What Lumi holds for a shop, and its deletion: the deletion registry made complete.

Every module that stores per-shop data registers a `DataStore` at import (core.purge). This
module imports all of them, so uninstall, deletion requests, compliance webhooks and the
data-inventory command, which all come through here, cannot forget one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import chat.store
import feeds.service
import feeds.writer
import shopify.shops
import shopify.webhook_log
from core import keys
from core.purge import CATEGORIES, stores
from core.services import CoreServices

log = logging.getLogger(__name__)

# Every module that registers a data store at import (tests/test_layering.py checks none is missing).
DATA_MODULES = (shopify.shops, shopify.webhook_log, feeds.writer, feeds.service, chat.store)


def inventory(services: CoreServices, shop: str) -> dict[str, dict[str, Any]]:
    """What Lumi holds for `shop`, per store: key names (or index filters) and counts. No values."""
    return {
        store.name: {"category": store.category, "description": store.description,
                     "items": store.inventory(services, shop)}
        for store in stores()
    }


def purge_shop(
    services: CoreServices, shop: str, *, categories: Iterable[str] | None = None, reason: str,
    now: float | None = None,
) -> dict[str, Any]:
    """Delete the shop's data in `categories` (default: all) and keep a receipt without personal data."""
    chosen = list(categories) if categories is not None else list(CATEGORIES)
    deleted: dict[str, int] = {}
    for store in stores(chosen):
        deleted[store.name] = int(store.purge(services, shop))
    receipt = {
        "id": uuid.uuid4().hex,
        "shop": shop,
        "reason": reason,
        "categories": sorted(chosen),
        "deleted": deleted,
        "completed_at": time.time() if now is None else now,
    }
    key = keys.deletion_receipts(shop)
    with services.redis.pipeline() as pipe:
        pipe.lpush(key, json.dumps(receipt))
        pipe.ltrim(key, 0, 99)
        pipe.expire(key, keys.RECEIPT_TTL)
        pipe.execute()
    log.info("shop data purged", extra={"shop": shop, "reason": reason, "deleted": deleted})
    return receipt


def receipts(services: CoreServices, shop: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in services.redis.lrange(keys.deletion_receipts(shop), 0, -1)]
