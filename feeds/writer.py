"""Writes to the shared products index for one shop; every query is filtered on `shop`.

Also the deletion entries of everything a shop's index consists of: its documents in Meilisearch
and its bookkeeping in Redis (sync job record, index state, webhook bookkeeping, sales counts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import meilisearch
from meilisearch.errors import MeilisearchApiError

from core import keys
from core.purge import DataStore, register
from core.services import CoreServices
from feeds.documents import document_uid
from feeds.index import ACTIVE_STATUSES, PRODUCTS_INDEX, IndexTaskFailed, wait

_FIELDS = ["uid", "product_id", "available", "back_in_stock_at", "updated_at", "generation"]


def shop_filter(shop: str) -> str:
    # json.dumps quotes safely; shop domains are validated anyway ([a-z0-9-] + .myshopify.com).
    return f"shop = {json.dumps(shop)}"


class ShopIndex:
    def __init__(self, client: meilisearch.Client, shop: str) -> None:
        self.client = client
        self.shop = shop
        self.index = client.index(PRODUCTS_INDEX)

    def existing(self, product_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """What the index holds now for these products (a few small fields), by product id."""
        ids = sorted(set(product_ids))
        if not ids:
            return {}
        result = self.index.get_documents(
            {"filter": f"{shop_filter(self.shop)} AND product_id IN [{', '.join(map(str, ids))}]",
             "fields": _FIELDS, "limit": len(ids)}
        )
        return {doc.product_id: dict(doc) for doc in result.results}  # type: ignore[attr-defined]

    def submit(self, documents: list[dict[str, Any]]) -> int | None:
        """Start indexing a batch; returns the task uid to wait for (None when there is nothing to write)."""
        if not documents:
            return None
        return int(self.index.add_documents(documents, primary_key="uid").task_uid)

    def submit_generation_bump(self, product_ids: Iterable[int], generation: int) -> int | None:
        """Keep newer documents (written by webhooks during a sync) in the new generation."""
        docs = [{"uid": document_uid(self.shop, pid), "generation": generation} for pid in product_ids]
        if not docs:
            return None
        return int(self.index.update_documents(docs, primary_key="uid").task_uid)

    def finished(self, task_uid: int | None) -> bool:
        """Whether Meilisearch is done with the task (succeeded or not: `wait` tells which), without waiting."""
        return task_uid is None or self.client.get_task(task_uid).status not in ACTIVE_STATUSES

    def wait(self, task_uid: int | None) -> None:
        if task_uid is not None:
            wait(self.client, task_uid)

    def delete_other_generations(self, generation: int) -> None:
        """One filtered delete: what the finished sync did not see is gone from the catalogue.

        `!=` rather than `<`: a generation counter that restarts (its record expired) still cleans up.
        """
        task = self.index.delete_documents(filter=f"{shop_filter(self.shop)} AND generation != {int(generation)}")
        wait(self.client, task.task_uid)

    def delete_products(self, product_ids: Iterable[int]) -> None:
        uids = [document_uid(self.shop, pid) for pid in product_ids]
        if uids:
            wait(self.client, self.index.delete_documents(uids).task_uid)

    def count(self) -> int:
        # Not a search: its hit count is capped by maxTotalHits; the documents route counts exactly.
        return int(self.index.get_documents({"filter": shop_filter(self.shop), "limit": 1, "fields": ["uid"]}).total)

    def purge(self) -> int:
        before = self.count()
        wait(self.client, self.index.delete_documents(filter=shop_filter(self.shop)).task_uid)
        return before


# The shop's index bookkeeping in Redis (written by jobs.sync, jobs.catalogue and jobs.signals).
_INDEX_KEYS = (keys.sync_record, keys.sync_lock, keys.index_state, keys.index_touched, keys.index_tombstones,
               keys.index_pending, keys.sales_signals)


def _register() -> None:
    def purge(services: CoreServices, shop: str) -> int:
        try:
            return ShopIndex(services.meili, shop).purge()
        except (MeilisearchApiError, IndexTaskFailed) as err:
            if getattr(err, "code", None) == "index_not_found":
                return 0
            raise

    def inventory(services: CoreServices, shop: str) -> dict[str, int]:
        try:
            count = ShopIndex(services.meili, shop).count()
        except MeilisearchApiError:
            return {}
        return {f"meilisearch:{PRODUCTS_INDEX} ({shop_filter(shop)})": count} if count else {}

    register(DataStore("product-index", "products", "indexed products (public catalogue data) in Meilisearch",
                       purge, inventory))

    def purge_records(services: CoreServices, shop: str) -> int:
        return int(services.redis.delete(*(make(shop) for make in _INDEX_KEYS)))

    def records_inventory(services: CoreServices, shop: str) -> dict[str, int]:
        return {make(shop): 1 for make in _INDEX_KEYS if services.redis.exists(make(shop))}

    register(DataStore("index-jobs", "products", "sync job record, index state, sales counts per product",
                       purge_records, records_inventory))


_register()
