"""The deletion registry: every store of per-shop data registers how to purge it and what it holds.

Uninstall, deletion requests, compliance webhooks and the data-inventory command all go through
`purge_shop` / `inventory`, so a store of data cannot be forgotten by deletion. Modules register
at import; `DATA_MODULES` lists them so the registry is complete whichever process asks.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core import keys
from core.services import Services

log = logging.getLogger(__name__)

# Categories a merchant can ask to delete one at a time.
CATEGORIES = ("products", "settings", "chat", "operational")

# Every module that stores per-shop data; each calls `register` at import.
DATA_MODULES = ("shopify.shops", "web.webhooks", "feeds.writer", "feeds.service", "jobs.sync", "chat.store")


@dataclass(frozen=True)
class DataStore:
    name: str
    category: str
    description: str
    purge: Callable[[Services, str], int]
    inventory: Callable[[Services, str], dict[str, int]]


_REGISTRY: dict[str, DataStore] = {}


def register(store: DataStore) -> None:
    if store.category not in CATEGORIES:
        raise ValueError(f"unknown category {store.category!r}")
    _REGISTRY[store.name] = store


def stores(categories: Iterable[str] | None = None) -> list[DataStore]:
    for module in DATA_MODULES:
        importlib.import_module(module)
    wanted = set(categories) if categories is not None else set(CATEGORIES)
    unknown = wanted - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
    return [store for store in _REGISTRY.values() if store.category in wanted]


def inventory(services: Services, shop: str) -> dict[str, dict[str, Any]]:
    """What Lumi holds for `shop`, per store: key names (or index filters) and counts. No values."""
    return {
        store.name: {"category": store.category, "description": store.description,
                     "items": store.inventory(services, shop)}
        for store in stores()
    }


def purge_shop(
    services: Services, shop: str, *, categories: Iterable[str] | None = None, reason: str,
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


def receipts(services: Services, shop: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in services.redis.lrange(keys.deletion_receipts(shop), 0, -1)]
