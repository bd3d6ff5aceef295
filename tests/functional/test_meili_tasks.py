"""Meilisearch's task history forgets a purged shop (issue 15: "data outside Lumi's own stores").

Meilisearch keeps every task with its details, and a filtered delete keeps its filter text
(`originalFilter: 'shop = "lumi-demo.myshopify.com"'`), so the history would name a shop long after its
documents are gone. A shop's purge deletes the tasks that name it; the daily sweep deletes every finished task
older than a day (a day: 86400 s, the literal policy value). Real Meilisearch; the history is read over its
HTTP API (GET /tasks, every page, every status), not through the code under test.
"""

from __future__ import annotations

import json
import time
from typing import Any

import meilisearch
import requests

from feeds.index import delete_finished_tasks, delete_shop_tasks, ensure_indexes
from feeds.writer import ShopIndex, document_uid
from jobs.sweeps import sweep_index_tasks
from runtime.data import purge_shop
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack

ONE_DAY = 86400


def all_tasks(client: meilisearch.Client) -> list[dict[str, Any]]:
    """Every task Meilisearch still holds, read page by page over HTTP."""
    url = client.config.url.rstrip("/") + "/tasks"
    headers = {"Authorization": f"Bearer {client.config.api_key}"}
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = requests.get(url, params=params, headers=headers, timeout=10).json()
        found += page["results"]
        if page.get("next") is None:
            return found
        params["from"] = page["next"]


def naming(client: meilisearch.Client, shop: str) -> list[dict[str, Any]]:
    return [t for t in all_tasks(client) if shop in json.dumps(t)]


def index_some(client: meilisearch.Client, shop: str) -> None:
    """What a sync leaves in the history: additions, then a delete by filter naming the shop."""
    index = ShopIndex(client, shop)
    docs = [{"uid": document_uid(shop, pid), "shop": shop, "product_id": pid, "generation": 1, "title": f"P{pid}"}
            for pid in range(1, 6)]
    index.wait(index.submit(docs))
    index.delete_other_generations(1)
    assert index.count() == 5


def test_a_shop_purge_leaves_no_task_naming_the_shop(stack: Stack, meili_client: meilisearch.Client) -> None:
    ensure_indexes(meili_client)
    index_some(meili_client, DEMO_SHOP)
    index_some(meili_client, OTHER_SHOP)
    assert naming(meili_client, DEMO_SHOP)  # not vacuous: the history names the shop before the purge
    purge_shop(stack.services, DEMO_SHOP, categories=["products"], reason="deletion_request")
    assert ShopIndex(meili_client, DEMO_SHOP).count() == 0
    assert naming(meili_client, DEMO_SHOP) == []
    assert naming(meili_client, OTHER_SHOP)  # another shop's history is not the purged shop's to delete
    assert ShopIndex(meili_client, OTHER_SHOP).count() == 5


def test_delete_shop_tasks_deletes_exactly_the_tasks_naming_the_shop(stack: Stack,
                                                                      meili_client: meilisearch.Client) -> None:
    ensure_indexes(meili_client)
    index_some(meili_client, DEMO_SHOP)
    index_some(meili_client, OTHER_SHOP)
    ShopIndex(meili_client, DEMO_SHOP).purge()
    other_before = {t["uid"] for t in naming(meili_client, OTHER_SHOP)}
    total_before = len(all_tasks(meili_client))
    named = len(naming(meili_client, DEMO_SHOP))
    assert named >= 2  # the delete by generation and the purge's own delete, both by filter
    assert delete_shop_tasks(meili_client, DEMO_SHOP) == named
    assert naming(meili_client, DEMO_SHOP) == []
    assert {t["uid"] for t in naming(meili_client, OTHER_SHOP)} == other_before
    assert len(all_tasks(meili_client)) == total_before - named + 1  # + the taskDeletion task itself
    assert delete_shop_tasks(meili_client, DEMO_SHOP) == 0  # nothing left: no new task either


def test_the_daily_sweep_deletes_finished_tasks_older_than_a_day(stack: Stack,
                                                                 meili_client: meilisearch.Client) -> None:
    ensure_indexes(meili_client)
    index_some(meili_client, OTHER_SHOP)
    before = all_tasks(meili_client)
    assert before and all(t["status"] in ("succeeded", "failed", "canceled") for t in before)
    # Today's tasks are less than a day old: kept.
    assert delete_finished_tasks(meili_client) == 0
    assert {t["uid"] for t in before} <= {t["uid"] for t in all_tasks(meili_client)}
    # A day and a second later (the sweep's clock), every one of them is older than a day: gone.
    deleted = sweep_index_tasks(stack.services, now=time.time() + ONE_DAY + 1)
    assert deleted is not None and deleted >= len(before)
    left = all_tasks(meili_client)
    assert {t["uid"] for t in before} & {t["uid"] for t in left} == set()
    assert all(t["type"] == "taskDeletion" for t in left)  # only the deletions' own records, naming no shop
    assert naming(meili_client, OTHER_SHOP) == []


def test_the_sweep_survives_meilisearch_being_down(stack: Stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def down(*args: Any, **kwargs: Any) -> Any:
        raise requests.ConnectionError("meilisearch is down")

    monkeypatch.setattr(stack.services.meili, "delete_tasks", down)
    assert sweep_index_tasks(stack.services) is None
