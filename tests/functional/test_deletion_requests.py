"""Deletion on request (the policy's "Merchants can ask for deletion of everything or of one category (indexed
products, app settings, chat data) and get a confirmation receipt. Receipts hold no personal data and are the
only thing kept after deletion"), through `/api/deletion-requests` and a real worker.

Each category's test takes the data inventory before and after and checks that only that category changed, then
checks the promise in the merchant's terms (the feed is empty, the settings are the defaults and the shop is
still installed, ...), and recomputes the receipt's digest from what the test itself saw disappear from Redis and
Meilisearch: a purge that deletes nothing, or the wrong thing, cannot produce the right receipt.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import meilisearch
import pytest
import redis
import requests
from rq import Queue

from chat.store import ChatStore
from core import keys
from devtools.mailbox import MailboxServer
from feeds import freshness
from feeds.index import PRODUCTS_INDEX, ensure_indexes
from shopify import shop_settings
from shopify.webhook_log import log_delivery
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.helpers import indexed, synced, wait_until

MERCHANT_EMAIL = "privacy@demo-merchant.example"
# The policy's retention for receipts and request records (docs/data-handling.md §7): 400 days.
RECEIPT_RETENTION_S = 400 * 24 * 3600
# What a merchant may name, and the stores each category consists of (the policy's words: indexed products,
# app settings, chat data, operational records).
CATEGORY_STORES = {
    "products": {"product-index", "feed-cache", "index-jobs"},
    "settings": {"shop-settings"},
    "chat": {"chat"},
    "operational": {"webhook-log", "feed-freshness"},
}


@pytest.fixture
def mailbox() -> Iterator[MailboxServer]:
    with MailboxServer() as box:
        yield box


@pytest.fixture
def held(make_stack, meili_client: meilisearch.Client, start_worker, mailbox: MailboxServer) -> Stack:  # type: ignore[no-untyped-def]
    """An installed, indexed shop holding data in every category (and another shop that must not be touched)."""
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 30, "seed": 1}, OTHER_SHOP: {"products": 10, "seed": 2}})
    stack.env["SMTP_URL"] = mailbox.url
    start_worker(stack.env)
    for shop in (DEMO_SHOP, OTHER_SHOP):
        stack.install(shop)
        wait_until(synced(stack, shop), what=f"{shop}'s first sync")
    fill(stack, DEMO_SHOP)
    fill(stack, OTHER_SHOP)
    wait_idle(stack)
    return stack


def fill(stack: Stack, shop: str) -> None:
    response = stack.api("PATCH", "/api/settings", shop=shop, json={
        "escalation_email": MERCHANT_EMAIL, "widget": {"primary_color": "#ab12cd"}, "feed_default_limit": 8})
    assert response.status_code == 200, response.text
    for feed in ("new-arrivals", "on-sale"):
        assert stack.http.get(f"{stack.url}/proxy/feeds/{feed}?shop={shop}", timeout=30).status_code == 200
    chat = ChatStore(stack.services.redis)
    session, _ = chat.create(shop, 3600, "en")
    chat.append(session, {"role": "user", "text": "where is my order?"})
    log_delivery(stack.services.redis, shop, "products/update", f"wh-{shop}")
    freshness.record(stack.services.redis, shop, time.time() - 2)


def wait_idle(stack: Stack, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queues = [Queue(name, connection=stack.services.queue_redis) for name in keys.QUEUES]
        if all(q.count == 0 and q.started_job_registry.count == 0 for q in queues):
            return
        time.sleep(0.1)
    raise AssertionError("the worker did not finish its jobs")


def names(stack: Stack, meili: meilisearch.Client, shop: str) -> set[str]:
    """The test's own list of what Lumi holds for `shop`, named as the receipt's digest names things."""
    client = stack.services.redis
    found = {k for k in client.scan_iter(count=1000) if shop in k.split(":")}
    found -= {k for k in found if k.startswith((f"lumi:receipts:{shop}", f"lumi:deletion:{shop}:"))}
    raw = client.hget(f"lumi:shop:{shop}", "settings")
    if raw is not None and shop_settings.load(json.loads(raw)) != shop_settings.defaults():
        found.add(f"lumi:shop:{shop}#settings")
    if client.sismember("lumi:shops:installed", shop):
        found.add(f"lumi:shops:installed#{shop}")
    found |= {f"meilisearch:{PRODUCTS_INDEX}/{doc['uid']}" for doc in indexed(meili, shop).values()}
    return found


def sha256_of(items: set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()


def stores_by_category(stack: Stack, shop: str) -> dict[str, dict[str, dict[str, int]]]:
    """The data inventory, as the admin page shows it: category → store → {name: count}."""
    response = stack.api("GET", "/api/data-inventory", shop=shop)
    assert response.status_code == 200, response.text
    return {category: {store: held["items"] for store, held in stores.items()}
            for category, stores in response.json()["inventory"].items()}


def request_deletion(stack: Stack, categories: list[str], shop: str = DEMO_SHOP) -> dict[str, Any]:
    response = stack.api("POST", "/api/deletion-requests", shop=shop, json={"categories": categories, "confirm": True})
    assert response.status_code == 202, response.text
    created = response.json()["deletion_request"]
    assert created["status"] == "queued" and created["categories"] == categories and created["id"]
    assert created["requested_at"].endswith("Z")
    final: dict[str, Any] = {}

    def done() -> bool:
        nonlocal final
        got = stack.api("GET", f"/api/deletion-requests/{created['id']}", shop=shop)
        assert got.status_code == 200, got.text
        final = got.json()["deletion_request"]
        assert final["status"] in ("queued", "running", "done"), final
        return final["status"] == "done"

    wait_until(done, timeout=60, what="the deletion request")
    return final


def check_receipt(request: dict[str, Any], gone: set[str], categories: list[str]) -> dict[str, Any]:
    receipt = request["receipt"]
    assert set(receipt) == {"id", "categories", "counts", "finished_at", "digest"}
    assert receipt["id"] == request["id"]
    assert set(categories) <= set(receipt["categories"])
    assert sum(receipt["counts"].values()) == len(gone), (receipt["counts"], sorted(gone))
    assert receipt["digest"] == sha256_of(gone)
    assert receipt["finished_at"].endswith("Z")
    return receipt


@pytest.mark.parametrize("category", ["products", "settings", "chat", "operational"])
def test_deleting_one_category_deletes_exactly_that_category(
    held: Stack, meili_client: meilisearch.Client, category: str
) -> None:
    stack = held
    before_inventory = stores_by_category(stack, DEMO_SHOP)
    assert all(before_inventory[category].get(store) for store in CATEGORY_STORES[category]), before_inventory
    before = names(stack, meili_client, DEMO_SHOP)
    other_before = names(stack, meili_client, OTHER_SHOP)
    record_before = stack.services.shops.require(DEMO_SHOP)
    token_before = stack.services.shops.access_token(record_before)

    request = request_deletion(stack, [category])
    wait_idle(stack)  # anything the deletion might have set off (it must set off nothing: see products)

    after_inventory = stores_by_category(stack, DEMO_SHOP)
    changed = {c for c in set(before_inventory) | set(after_inventory)
               if before_inventory.get(c) != after_inventory.get(c)}
    assert changed == {category}, (before_inventory, after_inventory)
    assert not any(after_inventory[category].values()), after_inventory[category]
    after = names(stack, meili_client, DEMO_SHOP)
    assert after <= before, sorted(after - before)
    check_receipt(request, before - after, [category])
    assert names(stack, meili_client, OTHER_SHOP) == other_before

    # The promise in the merchant's terms.
    record = stack.services.shops.require(DEMO_SHOP)
    assert stack.services.shops.is_installed(DEMO_SHOP)
    assert stack.services.shops.access_token(record) == token_before  # still installed, tokens kept
    assert stack.api("GET", "/api/shop").status_code == 200
    feed = stack.http.get(f"{stack.url}/proxy/feeds/new-arrivals?shop={DEMO_SHOP}", timeout=30)
    assert feed.status_code == 200
    if category == "settings":
        assert record.settings == shop_settings.defaults()
        assert record.settings_version == record_before.settings_version + 1
        assert record.plan_override == record_before.plan_override and record.scopes == record_before.scopes
    else:
        assert record.settings == record_before.settings
        assert record.settings_version == record_before.settings_version
    if category == "products":
        assert feed.json()["products"] == []
        assert indexed(meili_client, DEMO_SHOP) == {}
        # No re-sync behind the merchant's back: the index stays empty until they ask for a rebuild.
        time.sleep(1)
        wait_idle(stack)
        assert indexed(meili_client, DEMO_SHOP) == {}
        assert not stack.services.redis.exists(keys.sync_record(DEMO_SHOP))
    else:
        assert feed.json()["products"]


def test_full_deletion_is_uninstall_grade_and_leaves_only_the_receipt(
    held: Stack, meili_client: meilisearch.Client, mailbox: MailboxServer
) -> None:
    stack = held
    before = names(stack, meili_client, DEMO_SHOP)
    assert {f"lumi:shop:{DEMO_SHOP}", f"lumi:shops:installed#{DEMO_SHOP}"} <= before
    request = request_deletion(stack, ["all"])
    receipt = check_receipt(request, before, ["products", "settings", "chat", "operational"])
    assert names(stack, meili_client, DEMO_SHOP) == set()
    assert not stack.services.shops.is_installed(DEMO_SHOP)
    assert stack.services.shops.get(DEMO_SHOP) is None
    # Only the receipts and the request record are kept, each for the policy's 400 days.
    kept = {k for k in stack.services.redis.scan_iter(count=1000) if DEMO_SHOP in k.split(":")}
    assert kept == {f"lumi:receipts:{DEMO_SHOP}", f"lumi:deletion:{DEMO_SHOP}:{request['id']}"}
    for key in kept:
        assert RECEIPT_RETENTION_S - 60 <= stack.services.redis.ttl(key) <= RECEIPT_RETENTION_S
    # No personal data: the escalation email and any chat text appear nowhere in what is kept.
    for key in kept:
        raw = stack.services.redis.get(key) if key.startswith("lumi:deletion:") else \
            json.dumps(stack.services.redis.lrange(key, 0, -1))
        assert MERCHANT_EMAIL not in raw and "where is my order" not in raw
    # The merchant gets the receipt by email too (sent to the escalation address read before the purge).
    (message,) = mailbox.wait_for(1, timeout=30)
    assert message["To"] == MERCHANT_EMAIL
    assert receipt["id"] in message["Subject"]
    assert receipt["digest"] in message.text
    # The request stays readable after the shop's record is gone (and says the email went); the other shop is
    # untouched.
    wait_until(lambda: "emailed" in stack.api("GET", f"/api/deletion-requests/{request['id']}").json()[
        "deletion_request"], what="the email's outcome on the request")
    final = stack.api("GET", f"/api/deletion-requests/{request['id']}").json()["deletion_request"]
    assert final["emailed"] is True and final["receipt"] == receipt
    assert stack.services.shops.is_installed(OTHER_SHOP) and indexed(meili_client, OTHER_SHOP)


def test_preview_counts_per_category_and_store_and_deletes_nothing(
    held: Stack, meili_client: meilisearch.Client
) -> None:
    stack = held
    before = names(stack, meili_client, DEMO_SHOP)
    response = stack.api("POST", "/api/deletion-requests", json={"categories": ["products", "chat"]})
    assert response.status_code == 200, response.text
    preview = response.json()["preview"]
    assert set(preview) == {"products", "chat"}
    assert set(preview["products"]) == CATEGORY_STORES["products"]
    assert preview["products"]["product-index"] == len(indexed(meili_client, DEMO_SHOP)) > 0
    assert preview["chat"]["chat"] > 0
    everything = stack.api("POST", "/api/deletion-requests", json={"categories": ["all"]}).json()["preview"]
    assert {"products", "settings", "chat", "operational"} <= set(everything)
    assert everything["settings"] == {"shop-settings": 3}  # escalation_email, feed_default_limit, widget colour
    assert names(stack, meili_client, DEMO_SHOP) == before
    assert not list(stack.services.redis.scan_iter(match=f"lumi:deletion:{DEMO_SHOP}:*"))


@pytest.mark.parametrize("body", [
    None, [], "products", {}, {"categories": []}, {"categories": "products"}, {"categories": ["everything"]},
    {"categories": [1]}, {"categories": ["chat"], "confirm": "yes"}, {"categories": ["chat"], "shop": OTHER_SHOP},
])
def test_bad_requests_are_refused_with_json_and_write_nothing(stack: Stack, body: Any) -> None:
    stack.install()
    before = set(stack.services.redis.scan_iter(count=1000))
    data = b"{not json" if body is None else json.dumps(body).encode()
    response = stack.http.post(f"{stack.url}/api/deletion-requests", data=data, timeout=30,
                               headers={"Authorization": f"Bearer {stack.session_token()}",
                                        "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) >= {"code", "message"}
    after = set(stack.services.redis.scan_iter(count=1000))
    assert not [k for k in after - before if str(k).startswith("lumi:deletion") or str(k).startswith("rq:job")]


def test_requests_need_a_session_token_and_belong_to_one_shop(stack: Stack, redis_client: redis.Redis) -> None:
    stack.install(DEMO_SHOP)
    stack.install(OTHER_SHOP)
    assert stack.http.post(f"{stack.url}/api/deletion-requests", json={"categories": ["chat"]},
                           timeout=30).status_code == 401
    created = stack.api("POST", "/api/deletion-requests", json={"categories": ["operational"], "confirm": True})
    assert created.status_code == 202, created.text
    request_id = created.json()["deletion_request"]["id"]
    assert stack.api("GET", f"/api/deletion-requests/{request_id}").status_code == 200
    for path, shop in ((f"/api/deletion-requests/{request_id}", OTHER_SHOP),
                       ("/api/deletion-requests/0123456789abcdef0123456789abcdef", DEMO_SHOP),
                       ("/api/deletion-requests/..%2F..%2Fshop", DEMO_SHOP)):
        response = stack.api("GET", path, shop=shop)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] in ("not_found",)


def test_one_deletion_at_a_time_per_shop_a_concurrent_confirm_is_refused_and_queues_nothing(
    make_stack, start_worker  # type: ignore[no-untyped-def]
) -> None:
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 5, "seed": 1}, OTHER_SHOP: {"products": 5, "seed": 2}})
    stack.install(DEMO_SHOP)
    stack.install(OTHER_SHOP)
    client = stack.services.redis
    # No worker yet: whichever confirm wins stays queued while the other one arrives.
    start = threading.Barrier(2)

    def confirm() -> requests.Response:
        start.wait(timeout=10)
        return requests.post(f"{stack.url}/api/deletion-requests", json={"categories": ["operational"],
                             "confirm": True}, headers={"Authorization": f"Bearer {stack.session_token()}"},
                             timeout=30)

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = [future.result() for future in [pool.submit(confirm), pool.submit(confirm)]]
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    (won,) = [a.json()["deletion_request"] for a in answers if a.status_code == 202]
    (refused,) = [a for a in answers if a.status_code == 409]
    assert refused.headers["Content-Type"] == "application/json"
    error = refused.json()["error"]
    assert error["code"] == "deletion_in_progress" and error["message"]
    assert error["details"] == {"request_id": won["id"]}
    # The refused confirm left nothing behind: one request record, one job.
    assert list(client.scan_iter(match=f"lumi:deletion:{DEMO_SHOP}:*")) == [f"lumi:deletion:{DEMO_SHOP}:{won['id']}"]
    queued = [j for j in Queue(keys.QUEUE_DEFAULT, connection=stack.services.queue_redis).job_ids
              if j.startswith("lumi-deletion-")]
    assert queued == [f"lumi-deletion-{won['id']}"]
    # The guard expires by itself (a worker killed mid-purge cannot block the shop for more than an hour) and is
    # per shop: another shop may ask meanwhile.
    assert 0 < client.ttl(f"lumi:deletion-lock:{DEMO_SHOP}") <= 3600
    later = stack.api("POST", "/api/deletion-requests", json={"categories": ["chat"], "confirm": True})
    assert later.status_code == 409 and later.json()["error"]["details"] == {"request_id": won["id"]}
    other = stack.api("POST", "/api/deletion-requests", shop=OTHER_SHOP, json={"categories": ["operational"],
                                                                                 "confirm": True})
    assert other.status_code == 202, other.text

    # Once the request is done, the shop may ask again at once.
    start_worker(stack.env)
    wait_until(lambda: stack.api("GET", f"/api/deletion-requests/{won['id']}").json()["deletion_request"]["status"]
               == "done", timeout=60, what="the first deletion request")
    again = stack.api("POST", "/api/deletion-requests", json={"categories": ["chat"], "confirm": True})
    assert again.status_code == 202, again.text
