"""Catalogue sync against devshop, real Meilisearch, Redis and RQ worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import meilisearch
import pytest
import redis
from rq import Queue

from core import keys
from devshop.catalogue import LOCATION_ID
from feeds.documents import document_uid, product_id
from feeds.index import ensure_indexes
from feeds.writer import ShopIndex
from jobs import sync
from jobs.sync import full_sync, read_record, request_sync
from runtime.data import inventory, receipts
from shopify import queries
from shopify.admin import connection_nodes
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.helpers import graphql, indexed, listed_products, synced, wait_until

ALL_RECORD_FIELDS = {"shop", "status", "phase", "cursor", "done", "total", "skipped", "mode", "error", "started_at",
                     "finished_at", "updated_at", "reason", "generation", "exporting_at", "exported_at"}


def test_sync_indexes_exactly_the_listed_products(synced_stack: Stack, meili_client: meilisearch.Client) -> None:
    stack = synced_stack
    expected = listed_products(stack)
    docs = indexed(meili_client, DEMO_SHOP)
    assert set(docs) == set(expected)
    assert 150 < len(docs) < 300  # devshop's variety: drafts, archived and unpublished are left out

    client = stack.services.tokens.admin_client(DEMO_SHOP)
    hidden = set()
    for status in ("status:draft", "status:archived", "published_status:unpublished"):
        for page in client.paginate(queries.PRODUCTS_PAGE, {"query": status}, ["products"], page_size=12):
            hidden |= {product_id(p["id"]) for p in connection_nodes(page)}
    assert hidden and not hidden & set(docs)

    for pid, product in expected.items():
        doc = docs[pid]
        assert doc["uid"] == document_uid(DEMO_SHOP, pid)
        assert doc["title"] == product["title"] and doc["handle"] == product["handle"]
        price = product["priceRangeV2"]["minVariantPrice"]
        assert doc["price_min_text"] == f"{float(price['amount']):.2f}" and doc["currency"] == price["currencyCode"]
        variants = product["variants"]["nodes"]
        assert doc["available"] == any(v["availableForSale"] for v in variants)
        media = product["featuredMedia"]
        if media and media["preview"]["image"]:
            assert doc["image"]["url"] == media["preview"]["image"]["url"]
            assert doc["image"]["width"] == media["preview"]["image"]["width"]
        else:
            assert doc["image"] is None
        # The card's variant: the cheapest available one (the cheapest when none is), the most discounted among
        # equals; on sale when that variant's own compare-at price is above its price.
        pool = [v for v in variants if v["availableForSale"]] or variants
        card = min(pool, key=lambda v: (float(v["price"]), -float(v["compareAtPrice"] or 0)))
        sale = bool(card["compareAtPrice"]) and float(card["compareAtPrice"]) > float(card["price"])
        assert doc["on_sale"] == sale and doc["card_price"] == f"{float(card['price']):.2f}"
        assert doc["card_compare_at_price"] == (f"{float(card['compareAtPrice']):.2f}" if sale else None)
    # The record shows completion with counts and holds nothing else.
    record = read_record(stack.services.redis, DEMO_SHOP)
    assert record["done"] == len(docs) and record["total"] >= len(docs)
    assert set(stack.services.redis.hkeys(keys.sync_record(DEMO_SHOP))) <= ALL_RECORD_FIELDS


def test_second_shops_sync_never_touches_the_first(synced_stack: Stack, meili_client: meilisearch.Client) -> None:
    stack = synced_stack
    before = indexed(meili_client, DEMO_SHOP)
    stack.install(OTHER_SHOP)
    wait_until(synced(stack, OTHER_SHOP), what="the other shop's sync")
    assert indexed(meili_client, DEMO_SHOP) == before
    other = indexed(meili_client, OTHER_SHOP)
    assert other and all(doc["shop"] == OTHER_SHOP for doc in other.values())
    # And a rebuild of the other shop leaves the first alone, generation included.
    request_sync(stack.services, OTHER_SHOP)
    wait_until(synced(stack, OTHER_SHOP), what="the rebuild")
    assert indexed(meili_client, DEMO_SHOP) == before


def test_rebuild_never_shows_fewer_products_than_either_generation(
    synced_stack: Stack, meili_client: meilisearch.Client
) -> None:
    stack = synced_stack
    old = len(indexed(meili_client, DEMO_SHOP))
    # Change the catalogue (one product fewer) so the two generations differ.
    token = stack.control.issue_token(DEMO_SHOP, scope="write_products")["access_token"]
    victim = next(iter(indexed(meili_client, DEMO_SHOP)))
    graphql(stack, token, "mutation($id: ID!) { productDelete(input: {id: $id}) { deletedProductId } }",
            {"id": f"gid://shopify/Product/{victim}"})
    counts: list[int] = []
    stop = threading.Event()
    index = ShopIndex(meili_client, DEMO_SHOP)

    def reader() -> None:
        while not stop.is_set():
            counts.append(index.count())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        request_sync(stack.services, DEMO_SHOP)
        wait_until(synced(stack), what="the rebuild")
    finally:
        stop.set()
        thread.join()
    new = len(indexed(meili_client, DEMO_SHOP))
    assert new == old - 1
    assert len(counts) > 5
    assert min(counts) >= min(old, new)


def test_product_changes_reach_the_index_within_seconds(synced_stack: Stack, meili_client: meilisearch.Client) -> None:
    stack = synced_stack
    docs = indexed(meili_client, DEMO_SHOP)
    pid, deleted = list(docs)[:2]
    token = stack.control.issue_token(DEMO_SHOP, scope="write_products")["access_token"]
    graphql(stack, token, "mutation($p: ProductUpdateInput!) { productUpdate(product: $p) { product { id } } }",
            {"p": {"id": f"gid://shopify/Product/{pid}", "title": "Renamed by the merchant ✨"}})
    wait_until(lambda: indexed(meili_client, DEMO_SHOP)[pid]["title"] == "Renamed by the merchant ✨", timeout=15,
               what="the update")
    graphql(stack, token, "mutation($id: ID!) { productDelete(input: {id: $id}) { deletedProductId } }",
            {"id": f"gid://shopify/Product/{deleted}"})
    wait_until(lambda: deleted not in indexed(meili_client, DEMO_SHOP), timeout=15, what="the deletion")


def test_a_burst_of_webhooks_for_one_product_is_one_fetch(synced_stack: Stack) -> None:
    stack = synced_stack
    services = stack.services
    before = stack.control.stats(DEMO_SHOP)["graphql_requests"]
    pid = next(iter(listed_products(stack)))
    after_listing = stack.control.stats(DEMO_SHOP)["graphql_requests"]
    from jobs.catalogue import queue_product_refresh

    queued = [queue_product_refresh(services, DEMO_SHOP, pid) for _ in range(10)]
    # While a refresh is pending, more webhooks queue nothing. On a loaded machine the worker may start the
    # refresh in the middle of the burst; a webhook after that start rightly queues one more (its change may
    # have come after the fetch), so the burst is one fetch per refresh that was queued, and far fewer than 10.
    refreshes = queued.count(True)
    assert queued[0] is True and refreshes <= 2, queued

    def fetches() -> int:
        return stack.control.stats(DEMO_SHOP)["graphql_requests"] - after_listing

    # The pending mark is cleared when the refresh starts, before it fetches: wait for the fetches themselves,
    # then give another one time to show up.
    wait_until(lambda: fetches() >= refreshes, what="the refresh's fetch")
    time.sleep(0.5)
    assert fetches() == refreshes
    assert after_listing > before


def test_throttled_shop_syncs_without_an_unhandled_throttle(make_stack, meili_client, start_worker) -> None:  # type: ignore[no-untyped-def]
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 150, "seed": 3}}, BUCKET_SIZE=1000, RESTORE_RATE=2000)
    start_worker(stack.env)
    stack.install()
    wait_until(synced(stack), what="the throttled sync")
    assert len(indexed(meili_client, DEMO_SHOP)) == len(listed_products(stack))
    assert stack.control.stats(DEMO_SHOP)["throttled"] == 0


def test_a_sync_shopify_could_not_serve_is_retried_later_not_failed(make_stack, meili_client, start_worker) -> None:  # type: ignore[no-untyped-def]
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 60, "seed": 4}}, BUCKET_SIZE=20000, RESTORE_RATE=20000)
    stack.install()  # queues the sync; no worker yet
    stack.control.inject_fault("http_503", count=5, shop=DEMO_SHOP)  # every attempt of the first call
    start_worker(stack.env)
    wait_until(lambda: read_record(stack.services.redis, DEMO_SHOP).get("phase") == "retrying", timeout=30,
               what="the sync to be rescheduled")
    record = read_record(stack.services.redis, DEMO_SHOP)
    assert record["status"] == "queued" and "ShopifyUnavailable" in record["error"]
    wait_until(synced(stack), timeout=60, what="the retried sync")
    assert len(indexed(meili_client, DEMO_SHOP)) == len(listed_products(stack))


def test_sigkill_mid_sync_then_a_new_worker_resumes_and_indexes_every_product_once(
    make_stack, meili_client: meilisearch.Client, start_worker
) -> None:  # type: ignore[no-untyped-def]
    ensure_indexes(meili_client)
    # A bucket that refills slowly makes the sync take a few seconds: time to kill it midway.
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 400, "seed": 4}}, BUCKET_SIZE=1000, RESTORE_RATE=800)
    worker = start_worker(stack.env)
    stack.install()
    redis_client = stack.services.redis
    wait_until(lambda: read_record(redis_client, DEMO_SHOP).get("done", 0) >= 60, what="some progress")
    os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker and its work horse, no goodbye
    worker.proc.wait()
    killed_at = read_record(redis_client, DEMO_SHOP)
    assert killed_at["status"] == "running" and killed_at["cursor"]
    requests_before = stack.control.stats(DEMO_SHOP)["graphql_requests"]
    stack.control.set_throttle(DEMO_SHOP, maximum_available=20000, restore_rate=20000)  # no need to wait now

    start_worker(stack.env)  # finds the abandoned sync once its lock expires, resumes from the cursor
    wait_until(synced(stack), timeout=90, what="the resumed sync")
    resumed_requests = stack.control.stats(DEMO_SHOP)["graphql_requests"] - requests_before
    docs = indexed(meili_client, DEMO_SHOP)  # raises if any product is there twice
    assert set(docs) == set(listed_products(stack))
    # Baseline measured the same way: a rebuild from the start sends clearly more requests.
    before_full = stack.control.stats(DEMO_SHOP)["graphql_requests"]
    request_sync(stack.services, DEMO_SHOP)
    wait_until(synced(stack), timeout=90, what="the full rebuild")
    full_requests = stack.control.stats(DEMO_SHOP)["graphql_requests"] - before_full
    assert resumed_requests < full_requests * 0.9, (resumed_requests, full_requests)


def test_every_job_system_key_expires_within_seven_days(synced_stack: Stack) -> None:
    raw = redis.Redis.from_url(synced_stack.env["REDIS_URL"])
    # Every job and result the sync (and the webhook updates) wrote, plus our own records. The daily sweep
    # waiting in the scheduler is not a sync record: RQ sets its TTL once it has run.
    job_keys = [k.decode() for k in raw.scan_iter(count=1000)
                if k.startswith((b"rq:job:", b"rq:results:", b"lumi:sync:", b"lumi:index:"))
                and not k.startswith((b"rq:job:sweep-uninstalled-", b"rq:job:resync-"))]
    assert any(k.startswith("rq:job:sync-") for k in job_keys) and any(k.startswith("lumi:sync:") for k in job_keys)
    for key in job_keys:
        ttl = raw.ttl(key)
        assert 0 < ttl <= keys.JOB_RECORD_TTL, (key, ttl)


def test_index_status_and_rebuild_api(synced_stack: Stack) -> None:
    stack = synced_stack
    status = stack.api("GET", "/api/index").json()["index"]
    assert status["state"] == "completed" and status["documents"] == status["done"] > 0
    assert status["last_completed_at"] and status["last_error"] is None
    started = stack.api("POST", "/api/index/rebuild")
    assert started.status_code == 202, started.text
    again = stack.api("POST", "/api/index/rebuild")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "sync_running"
    assert again.json()["error"]["details"]["index"]["state"] in ("queued", "running")
    wait_until(synced(stack), what="the rebuild")


def test_uninstall_purges_the_shops_documents_and_job_records(
    synced_stack: Stack, meili_client: meilisearch.Client, redis_client: redis.Redis
) -> None:
    stack = synced_stack
    stack.install(OTHER_SHOP)
    wait_until(synced(stack, OTHER_SHOP), what="the other shop's sync")
    other = indexed(meili_client, OTHER_SHOP)
    for feed in ("new-arrivals", "on-sale"):  # leave cached feed bodies behind for the purge to find
        response = stack.http.get(f"{stack.url}/proxy/feeds/{feed}?shop={DEMO_SHOP}", timeout=30)
        assert response.status_code == 200
    assert inventory(stack.services, DEMO_SHOP)["feed-cache"]["items"]
    stack.control.uninstall(DEMO_SHOP)
    wait_until(lambda: bool(receipts(stack.services, DEMO_SHOP)), what="the purge's receipt")
    assert not indexed(meili_client, DEMO_SHOP)
    assert not redis_client.exists(keys.sync_record(DEMO_SHOP), keys.index_state(DEMO_SHOP))
    # The data inventory (the same registry the purge used) finds nothing left for the shop.
    left = {name: store["items"] for name, store in inventory(stack.services, DEMO_SHOP).items() if store["items"]}
    assert left == {}
    assert not [k for k in redis_client.scan_iter(f"*{DEMO_SHOP}*") if k != keys.deletion_receipts(DEMO_SHOP)]
    assert indexed(meili_client, OTHER_SHOP) == other


def comparable(docs: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {pid: {k: v for k, v in doc.items() if k not in {"generation", "back_in_stock_at"}}
            for pid, doc in docs.items()}


def test_a_bulk_sync_in_many_small_batches_indexes_every_listed_product_once(
    make_stack, meili_client: meilisearch.Client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 120, "seed": 6}}, BUCKET_SIZE=20000, RESTORE_RATE=20000)
    stack.install()  # queues the first sync; no worker here: it runs in this process, in batches of 7 products
    monkeypatch.setattr(sync, "BATCH_SIZE", 7)
    monkeypatch.setattr(sync, "TASKS_IN_FLIGHT", 2)  # more batches than may be in flight: the oldest is waited for
    monkeypatch.setattr(sync, "JOIN_WINDOW", 1)  # a product leaves the join window as soon as the next one starts
    result = full_sync(DEMO_SHOP, stack.services, bulk_threshold=0)
    Queue(keys.QUEUE_SYNC, connection=stack.services.queue_redis).empty()  # the install's job: already done here
    expected = listed_products(stack)
    docs = indexed(meili_client, DEMO_SHOP)  # raises if any product is there twice
    assert len(expected) > 7 * 3 and len(expected) % 7  # several batches, the last one partial
    assert set(docs) == set(expected)
    assert all(doc["title"] == expected[pid]["title"] for pid, doc in docs.items())
    record = read_record(stack.services.redis, DEMO_SHOP)
    assert record["mode"] == "bulk" and record["status"] == "completed"
    assert result["done"] == record["done"] == len(expected)
    # The export and the indexing phases are timed from the record itself (bench.sync reads them).
    assert record["started_at"] <= record["exporting_at"] <= record["exported_at"] <= record["finished_at"]
    assert set(stack.services.redis.hkeys(keys.sync_record(DEMO_SHOP))) <= ALL_RECORD_FIELDS


@pytest.mark.with_markets
def test_bulk_operation_sync_gives_the_same_documents_as_the_paged_sync(
    synced_stack: Stack, meili_client: meilisearch.Client, start_worker
) -> None:  # type: ignore[no-untyped-def]
    stack = synced_stack
    paged = indexed(meili_client, DEMO_SHOP)
    assert read_record(stack.services.redis, DEMO_SHOP)["mode"] == "paged"
    # A worker configured to use bulk operations for any catalogue size takes the rebuild.
    bulk_worker = start_worker({**stack.env, "LUMI_BULK_THRESHOLD": "0"})
    for worker in list(start_worker.started)[:-1]:  # type: ignore[attr-defined]
        worker.stop()
    request_sync(stack.services, DEMO_SHOP)
    wait_until(synced(stack), what="the bulk sync")
    assert read_record(stack.services.redis, DEMO_SHOP)["mode"] == "bulk"
    assert bulk_worker.proc.poll() is None
    assert stack.control.bulk_operations(DEMO_SHOP)[-1]["status"] == "COMPLETED"
    bulk = comparable(indexed(meili_client, DEMO_SHOP))
    paged = comparable(paged)
    assert set(bulk) == set(paged)
    # Both read the second market's prices (devshop's EUR shop also sells in the United States, in USD).
    assert all(set(doc["prices"]) == {"us:USD"} for doc in paged.values())
    differing = {pid: {k: (paged[pid][k], bulk[pid].get(k)) for k in paged[pid] if paged[pid][k] != bulk[pid].get(k)}
                 for pid in paged if paged[pid] != bulk[pid]}
    assert differing == {}


def test_a_webhook_during_a_sync_is_not_overwritten_by_older_page_data(
    make_stack, meili_client: meilisearch.Client, start_worker
) -> None:  # type: ignore[no-untyped-def]
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 300, "seed": 5}}, BUCKET_SIZE=1000, RESTORE_RATE=1500)
    start_worker(stack.env)
    start_worker(stack.env)  # a second worker serves webhook jobs while the first one syncs
    stack.install()
    redis_client = stack.services.redis
    wait_until(lambda: read_record(redis_client, DEMO_SHOP).get("done", 0) >= 24, what="some progress")
    first_page = sorted(indexed(meili_client, DEMO_SHOP))[:3]
    token = stack.control.issue_token(DEMO_SHOP, scope="write_products")["access_token"]
    for pid in first_page:  # already written by this sync: the webhook's newer version must win
        graphql(stack, token, "mutation($p: ProductUpdateInput!) { productUpdate(product: $p) { product { id } } }",
                {"p": {"id": f"gid://shopify/Product/{pid}", "title": f"Changed mid-sync {pid}"}})
    assert read_record(redis_client, DEMO_SHOP)["status"] == "running"
    wait_until(synced(stack), what="the sync")
    docs = indexed(meili_client, DEMO_SHOP)
    assert [docs[pid]["title"] for pid in first_page] == [f"Changed mid-sync {pid}" for pid in first_page]
    assert not redis_client.exists(keys.index_touched(DEMO_SHOP))


def test_inventory_webhook_brings_a_product_back_in_stock(
    synced_stack: Stack, meili_client: meilisearch.Client
) -> None:
    stack = synced_stack
    docs = indexed(meili_client, DEMO_SHOP)
    pid = next(pid for pid, doc in sorted(docs.items()) if not doc["available"])
    token = stack.control.issue_token(DEMO_SHOP, scope="write_products,write_inventory,read_inventory")["access_token"]
    query = "query($id: ID!) { product(id: $id) { variants(first: 1) { nodes { inventoryItem { id } } } } }"
    variant = graphql(stack, token, query, {"id": f"gid://shopify/Product/{pid}"})["product"]["variants"]["nodes"][0]
    item = variant["inventoryItem"]["id"]
    location = f"gid://shopify/Location/{LOCATION_ID}"  # devshop's one location
    result = graphql(
        stack, token,
        "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
        "{ userErrors { field message } } }",
        {"input": {"name": "available", "reason": "correction", "ignoreCompareQuantity": True,
                   "quantities": [{"inventoryItemId": item, "locationId": location, "quantity": 5}]}},
    )
    assert result["inventorySetQuantities"]["userErrors"] == []
    wait_until(lambda: indexed(meili_client, DEMO_SHOP)[pid]["available"], timeout=15, what="back in stock")
    doc = indexed(meili_client, DEMO_SHOP)[pid]
    assert doc["back_in_stock_at"] and abs(doc["back_in_stock_at"] - time.time()) < 60


def test_make_dev_follows_the_first_sync_to_completion(synced_stack: Stack, capsys) -> None:  # type: ignore[no-untyped-def]
    from devtools.dev import watch_demo_index

    assert watch_demo_index({"DEVSHOP_URL": synced_stack.devshop.url, "APP_URL": synced_stack.url}, timeout=30)
    assert f"✓ indexed {len(listed_products(synced_stack))} products of {DEMO_SHOP}" in capsys.readouterr().out
