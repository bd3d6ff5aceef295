"""The one owner of Meilisearch index names and settings, and of applying them.

One shared products index for every shop (Meilisearch keeps a bounded number of
indexes open at once, so an index per shop does not scale to thousands of shops);
`shop` is a filterable attribute that every query filters on.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import meilisearch
from meilisearch.errors import MeilisearchApiError

log = logging.getLogger(__name__)

PRODUCTS_INDEX = "lumi_products"
PRODUCTS_PRIMARY_KEY = "uid"

PRODUCTS_SETTINGS: dict[str, Any] = {
    # Order matters: a title match outranks a tag match.
    "searchableAttributes": ["title", "vendor", "product_type", "tags", "collections", "option_values"],
    "filterableAttributes": [
        "shop",
        "generation",
        "product_id",
        "available",
        "on_sale",
        "sale_zones",  # the market pricing zones where the card variant is discounted (the on-sale feed per market)
        "vendor",
        "product_type",
        "tags",
        "collections",
        "price_min",
        "units_7d",
        "units_30d",
        "back_in_stock_at",
    ],
    "sortableAttributes": [
        "available",
        "published_at",
        "created_at",
        "updated_at",
        "units_7d",
        "units_30d",
        "trend_score",
        "discount_pct",
        "back_in_stock_at",
        "price_min",
    ],
    "displayedAttributes": ["*"],
    "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
    "typoTolerance": {"enabled": True, "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8}},
    "pagination": {"maxTotalHits": 2000},
    "faceting": {"maxValuesPerFacet": 100},
}

INDEXES: dict[str, tuple[str, dict[str, Any]]] = {
    PRODUCTS_INDEX: (PRODUCTS_PRIMARY_KEY, PRODUCTS_SETTINGS),
}

TASK_TIMEOUT_MS = 120_000


class IndexTaskFailed(RuntimeError):
    """A Meilisearch task ended in `failed` or `canceled`; the message carries Meilisearch's reason."""


def wait(client: meilisearch.Client, task_uid: int, timeout_ms: int = TASK_TIMEOUT_MS) -> None:
    """Wait for a task and fail loudly if it did not succeed (no task left unchecked)."""
    task = client.wait_for_task(task_uid, timeout_in_ms=timeout_ms, interval_in_ms=20)
    if task.status != "succeeded":
        error = task.error or {}
        raise IndexTaskFailed(f"Meilisearch task {task_uid} {task.status}: {error.get('message', 'no reason given')}")


def ensure_indexes(client: meilisearch.Client) -> list[str]:
    """Create every index that is missing and apply its settings; returns what was done."""
    done = []
    for uid, (primary_key, settings) in INDEXES.items():
        try:
            client.get_raw_index(uid)
        except MeilisearchApiError as err:
            if err.code != "index_not_found":
                raise
            wait(client, client.create_index(uid, {"primaryKey": primary_key}).task_uid)
            done.append(f"created {uid}")
        wait(client, client.index(uid).update_settings(settings).task_uid)
        done.append(f"settings applied to {uid}")
        log.info("index ready", extra={"index": uid})
    return done


# --- Task history ------------------------------------------------------------------------------------------
# Meilisearch keeps every task (up to 1M) with its details, and a filtered delete keeps its filter text:
# `originalFilter: 'shop = "x.myshopify.com"'`. So the task history names the shops Lumi deleted documents for,
# long after their documents are gone. A shop's purge deletes the finished tasks of Lumi's indexes that name
# it (`delete_shop_tasks`); the daily sweep deletes every finished task older than a day
# (`delete_finished_tasks`), so no task history outlives a day whatever else happened.

FINISHED_STATUSES = ("succeeded", "failed", "canceled")
ACTIVE_STATUSES = ("enqueued", "processing")
TASK_PAGE = 1000
TASK_HISTORY_SECONDS = 24 * 3600


def _mentions(task: Any, needle: str) -> bool:
    return needle in json.dumps([task.details, task.error], default=str)


def _tasks(client: meilisearch.Client, statuses: tuple[str, ...]) -> list[Any]:
    """Every task of Lumi's indexes in `statuses`, following the pages."""
    found: list[Any] = []
    params: dict[str, Any] = {"indexUids": ",".join(INDEXES), "statuses": ",".join(statuses), "limit": TASK_PAGE}
    while True:
        page = client.get_tasks(dict(params))
        found += page.results
        if page.next_ is None:
            return found
        params["from"] = page.next_


def shop_task_uids(client: meilisearch.Client, shop: str, statuses: tuple[str, ...] = FINISHED_STATUSES) -> list[int]:
    """Uids of the tasks of Lumi's indexes whose details or error name `shop` (its domain)."""
    return [int(task.uid) for task in _tasks(client, statuses) if _mentions(task, shop)]


def delete_shop_tasks(client: meilisearch.Client, shop: str, timeout_ms: int = TASK_TIMEOUT_MS) -> int:
    """Delete every task that names `shop` from Meilisearch's task history; returns how many went.

    Tasks still enqueued or processing cannot be deleted: they are waited for first (a purge runs after the
    shop's documents are deleted, so these are only stragglers of a sync or webhook that was in flight)."""
    for uid in shop_task_uids(client, shop, ACTIVE_STATUSES):
        client.wait_for_task(uid, timeout_in_ms=timeout_ms, interval_in_ms=50)
    uids = shop_task_uids(client, shop)
    deleted = 0
    for start in range(0, len(uids), 500):  # the uids go in the query string: keep it a sane length
        batch = uids[start : start + 500]
        wait(client, client.delete_tasks({"uids": ",".join(map(str, batch))}).task_uid, timeout_ms)
        deleted += len(batch)
    if deleted:
        log.info("index task history of a shop deleted", extra={"shop": shop, "tasks": deleted})
    return deleted


def delete_finished_tasks(client: meilisearch.Client, older_than: float = TASK_HISTORY_SECONDS,
                          now: float | None = None) -> int:
    """Delete every finished task enqueued more than `older_than` seconds ago (all of them: taskDeletion and
    other global tasks hold no index uid); returns Meilisearch's count of deleted tasks."""
    cutoff = datetime.fromtimestamp((time.time() if now is None else now) - older_than, UTC)
    info = client.delete_tasks({"statuses": ",".join(FINISHED_STATUSES),
                                "beforeEnqueuedAt": cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    task = client.wait_for_task(info.task_uid, timeout_in_ms=TASK_TIMEOUT_MS, interval_in_ms=50)
    if task.status != "succeeded":
        raise IndexTaskFailed(f"Meilisearch task {info.task_uid} {task.status}: {(task.error or {}).get('message')}")
    return int((task.details or {}).get("deletedTasks") or 0)
