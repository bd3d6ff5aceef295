"""The one owner of Meilisearch index names and settings, and of applying them.

One shared products index for every shop (Meilisearch keeps a bounded number of
indexes open at once, so an index per shop does not scale to thousands of shops);
`shop` is a filterable attribute that every query filters on.
"""

from __future__ import annotations

import logging
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
