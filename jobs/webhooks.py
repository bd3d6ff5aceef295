"""Catalogue webhooks. The index is built by the catalogue issue; until then deliveries are recorded only."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def product_changed(shop: str, product_id: int | None = None, updated_at: str | None = None) -> dict[str, object]:
    log.info("product change recorded (catalogue index not built yet)", extra={"shop": shop, "product_id": product_id})
    return {"shop": shop, "product_id": product_id, "indexed": False}


def product_deleted(shop: str, product_id: int | None = None, updated_at: str | None = None) -> dict[str, object]:
    log.info("product deletion recorded (index not built yet)", extra={"shop": shop, "product_id": product_id})
    return {"shop": shop, "product_id": product_id, "indexed": False}


def inventory_changed(shop: str, inventory_item_id: int | None = None,
                      updated_at: str | None = None) -> dict[str, object]:
    log.info("inventory change recorded (catalogue index not built yet)", extra={"shop": shop})
    return {"shop": shop, "inventory_item_id": inventory_item_id, "indexed": False}
