"""Catalogue webhook jobs: turn a delivery into an index update (see jobs.catalogue)."""

from __future__ import annotations

from typing import Any

from jobs import catalogue
from jobs.context import services


def product_changed(shop: str, product_id: int | None = None, updated_at: str | None = None) -> dict[str, Any]:
    if not product_id:
        return {"skipped": "no product id"}
    return {"queued": catalogue.queue_product_refresh(services(), shop, int(product_id))}


def product_deleted(shop: str, product_id: int | None = None, updated_at: str | None = None) -> dict[str, Any]:
    if not product_id:
        return {"skipped": "no product id"}
    return catalogue.delete_product(shop, int(product_id))


def inventory_changed(shop: str, inventory_item_id: int | None = None, updated_at: str | None = None
                      ) -> dict[str, Any]:
    if not inventory_item_id:
        return {"skipped": "no inventory item id"}
    return catalogue.inventory_changed(shop, int(inventory_item_id))
