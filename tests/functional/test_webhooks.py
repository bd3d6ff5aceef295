"""`POST /webhooks` over real HTTP: devshop's signed deliveries and hand-signed ones.

HMAC over the raw body first, then headers, then dedupe on the webhook id, then one RQ job with only the
ids it needs. Refused deliveries write nothing. RQ stores pickled bytes, so these tests snapshot Redis with
a bytes client (the shared `redis_snapshot` decodes every value as text).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from rq import Queue
from rq.job import Job

from chat.store import subject_digest
from core import keys
from runtime.data import receipts
from shopify.signatures import sign_webhook
from tests.conftest import DEMO_SHOP, OTHER_SHOP, TEST_API_SECRET, Stack

MIB = 1024 * 1024
EMAIL = "jane.redact-7f3a@example.com"
PHONE = "+15555550123"
PRODUCT = {
    "id": 632910392,
    "title": "Lumi Test Lamp",
    "handle": "lumi-test-lamp",
    "body_html": "<p>A lamp.</p>",
    "vendor": "Lumi",
    "status": "active",
    "updated_at": "2026-11-01T10:00:00-05:00",
    "variants": [{"id": 808950810, "price": "19.00", "inventory_quantity": 3, "sku": "LAMP-1"}],
    "admin_graphql_api_id": "gid://shopify/Product/632910392",
}


# --- helpers ---------------------------------------------------------------------------------------------------


@pytest.fixture
def raw(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """A bytes client on the test Redis (what RQ itself uses)."""
    pool = redis_client.connection_pool.connection_kwargs
    client = redis.Redis(host=pool.get("host", "localhost"), port=pool.get("port", 6379), db=pool.get("db", 0))
    yield client
    client.close()


@pytest.fixture
def installed(stack: Stack) -> Stack:
    stack.install(DEMO_SHOP)
    return stack


def snapshot(client: redis.Redis) -> dict[bytes, object]:
    """Every key with its type and value, as bytes."""
    out: dict[bytes, object] = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key)
        if kind == b"string":
            value: object = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"set":
            value = sorted(client.smembers(key))
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"stream":
            value = client.xrange(key)
        else:
            value = kind
        out[key] = value
    return out


def every_stored_byte(client: redis.Redis) -> list[bytes]:
    """Every key and value in Redis, RQ's zlib-compressed job data decompressed too."""
    blobs: list[bytes] = []
    for key, value in snapshot(client).items():
        blobs.append(key)
        items: list[object] = []
        if isinstance(value, dict):
            for field, field_value in value.items():
                items += [field, field_value]
                if field == b"data":
                    try:
                        items.append(zlib.decompress(field_value))
                    except zlib.error:
                        pass
        elif isinstance(value, list):
            items = [v[0] if isinstance(v, tuple) else v for v in value]
        else:
            items = [value]
        blobs += [item if isinstance(item, bytes) else repr(item).encode() for item in items]
    return blobs


def jobs(client: redis.Redis, queue: str) -> list[Job]:
    return Queue(queue, connection=client).get_jobs()


def wait_until_idle(client: redis.Redis, timeout: float = 30) -> None:
    """Every queue empty and no job running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queues = [Queue(name, connection=client) for name in keys.QUEUES]
        if all(q.count == 0 and q.started_job_registry.count == 0 for q in queues):
            return
        time.sleep(0.1)
    raise TimeoutError("the worker did not finish its jobs")


def headers_for(body: bytes, *, topic: str = "products/update", shop: str = DEMO_SHOP, webhook_id: str | None = None,
                prefix: str = "X-", hmac_value: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        f"{prefix}Shopify-Topic": topic,
        f"{prefix}Shopify-Hmac-Sha256": sign_webhook(body, TEST_API_SECRET) if hmac_value is None else hmac_value,
        f"{prefix}Shopify-Shop-Domain": shop,
        f"{prefix}Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        f"{prefix}Shopify-API-Version": "2026-10",
        f"{prefix}Shopify-Triggered-At": "2026-11-01T15:00:00.000000Z",
        f"{prefix}Shopify-Event-Id": str(uuid.uuid4()),
    }


def post(stack: Stack, body: bytes | Iterator[bytes], headers: dict[str, str], session: requests.Session | None = None
         ) -> requests.Response:
    return (session or stack.http).post(f"{stack.url}/webhooks", data=body, headers=headers, timeout=30,
                                        allow_redirects=False)


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def assert_ack(response: requests.Response, status: str) -> None:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert response.json() == {"status": status}


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# --- accepted deliveries ---------------------------------------------------------------------------------------


def test_devshop_products_update_enqueues_one_job_with_only_ids(installed: Stack, raw: redis.Redis) -> None:
    result = installed.control.send_webhook(DEMO_SHOP, "products/update", PRODUCT)
    assert result["statuses"] == [200], result
    (job,) = jobs(raw, keys.QUEUE_WEBHOOKS)
    assert job.func_name == "jobs.webhooks.product_changed"
    assert job.args == (DEMO_SHOP,)
    assert job.kwargs == {"product_id": PRODUCT["id"], "updated_at": PRODUCT["updated_at"]}
    assert job.id == f"webhook-{result['webhook_id']}"
    assert PRODUCT["title"].encode() not in b"".join(every_stored_byte(raw))  # never the payload itself


def test_hand_signed_products_update_is_accepted(installed: Stack, raw: redis.Redis) -> None:
    body = encode(PRODUCT)
    assert_ack(post(installed, body, headers_for(body)), "accepted")
    (job,) = jobs(raw, keys.QUEUE_WEBHOOKS)
    assert job.kwargs == {"product_id": PRODUCT["id"], "updated_at": PRODUCT["updated_at"]}


def test_headers_without_the_x_prefix_and_in_lower_case_are_accepted(installed: Stack, raw: redis.Redis) -> None:
    body = encode(PRODUCT)
    bare = headers_for(body, prefix="")
    assert not any(name.lower().startswith("x-") for name in bare)
    assert_ack(post(installed, body, bare), "accepted")
    lower = {name.lower(): value for name, value in headers_for(body).items()}
    assert_ack(post(installed, body, lower), "accepted")
    assert len(jobs(raw, keys.QUEUE_WEBHOOKS)) == 2


def test_a_body_of_exactly_one_mib_is_accepted(installed: Stack, raw: redis.Redis) -> None:
    head = json.dumps({**PRODUCT, "body_html": ""})[:-1] + ', "padding": "'
    body = (head + "x" * (MIB - len(head) - 2) + '"}').encode()
    assert len(body) == MIB
    assert_ack(post(installed, body, headers_for(body)), "accepted")


# --- refused deliveries write nothing --------------------------------------------------------------------------


def test_a_flipped_body_byte_is_refused(installed: Stack, raw: redis.Redis) -> None:
    body = encode(PRODUCT)
    headers = headers_for(body)
    index = body.index(b"632910392")
    tampered = body[:index] + b"7" + body[index + 1:]
    before = snapshot(raw)
    assert_error(post(installed, tampered, headers), 401, "bad_hmac")
    assert snapshot(raw) == before


@pytest.mark.parametrize("hmac_value", [
    sign_webhook(b"{}", TEST_API_SECRET),
    sign_webhook(json.dumps(PRODUCT).encode(), "another-secret-entirely-0123456789abcdef"),
    "",
    "not base64!",
    "0" * 64,
], ids=["other-body", "other-secret", "empty", "not-base64", "hex"])
def test_a_wrong_hmac_header_is_refused(installed: Stack, raw: redis.Redis, hmac_value: str) -> None:
    body = encode(PRODUCT)
    before = snapshot(raw)
    assert_error(post(installed, body, headers_for(body, hmac_value=hmac_value)), 401, "bad_hmac")
    assert snapshot(raw) == before


def test_a_missing_hmac_header_is_refused(installed: Stack, raw: redis.Redis) -> None:
    body = encode(PRODUCT)
    headers = {k: v for k, v in headers_for(body).items() if k != "X-Shopify-Hmac-Sha256"}
    before = snapshot(raw)
    assert_error(post(installed, body, headers), 401, "bad_hmac")
    assert snapshot(raw) == before


def test_compliance_topic_with_a_bad_hmac_gets_401(installed: Stack, raw: redis.Redis) -> None:
    # Shopify's compliance review checks exactly this.
    body = encode({"shop_id": 1, "shop_domain": DEMO_SHOP})
    before = snapshot(raw)
    response = post(installed, body, headers_for(body, topic="shop/redact", hmac_value=sign_webhook(b"x", "k" * 32)))
    assert_error(response, 401, "bad_hmac")
    assert snapshot(raw) == before


@pytest.mark.parametrize("header", ["X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"])
def test_a_missing_required_header_is_refused(installed: Stack, raw: redis.Redis, header: str) -> None:
    body = encode(PRODUCT)
    headers = {k: v for k, v in headers_for(body).items() if k != header}
    before = snapshot(raw)
    assert_error(post(installed, body, headers), 400, "bad_headers")
    assert snapshot(raw) == before


@pytest.mark.parametrize("shop", ["evil.com", "LUMI-DEMO.myshopify.com", ""])
def test_an_invalid_shop_header_is_refused(installed: Stack, raw: redis.Redis, shop: str) -> None:
    body = encode(PRODUCT)
    before = snapshot(raw)
    assert_error(post(installed, body, headers_for(body, shop=shop)), 400, "bad_headers")
    assert snapshot(raw) == before


def test_a_signed_body_that_is_not_a_json_object_is_refused(installed: Stack, raw: redis.Redis) -> None:
    before = snapshot(raw)
    for body in (b"not json", b"[1, 2, 3]"):
        assert_error(post(installed, body, headers_for(body)), 400, "invalid_json")
    assert snapshot(raw) == before


def test_a_body_over_one_mib_is_refused(installed: Stack, raw: redis.Redis) -> None:
    body = b'{"padding": "' + b"x" * MIB + b'"}'
    before = snapshot(raw)
    assert_error(post(installed, body, headers_for(body)), 413, "payload_too_large")
    assert snapshot(raw) == before


def test_a_chunked_body_over_one_mib_is_refused(installed: Stack, raw: redis.Redis) -> None:
    # No Content-Length to check up front: the limit must hold while reading.
    body = b'{"padding": "' + b"x" * MIB + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    before = snapshot(raw)
    response = post(installed, chunks(), headers_for(body))
    assert "Content-Length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")
    assert snapshot(raw) == before


def test_a_chunked_body_whose_signature_covers_only_its_first_mib_is_refused(
    installed: Stack, raw: redis.Redis
) -> None:
    # The HMAC must cover every byte received: bytes past the limit may not be dropped silently.
    head = '{"id": 1, "padding": "'
    signed = (head + "x" * (MIB - len(head) - 2) + '"}').encode()
    assert len(signed) == MIB
    body = signed + b" UNSIGNED TRAILING BYTES"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    before = snapshot(raw)
    assert_error(post(installed, chunks(), headers_for(signed)), 413, "payload_too_large")
    assert snapshot(raw) == before


def test_a_webhook_for_a_shop_that_is_not_installed_is_ignored(installed: Stack, raw: redis.Redis) -> None:
    before = snapshot(raw)
    # OTHER_SHOP exists at devshop but never installed Lumi; the ghost shop exists nowhere.
    result = installed.control.send_webhook(OTHER_SHOP, "products/update", PRODUCT)
    assert result["statuses"] == [200], result
    body = encode(PRODUCT)
    assert_ack(post(installed, body, headers_for(body, shop=OTHER_SHOP)), "ignored")
    assert_ack(post(installed, body, headers_for(body, shop="ghost-shop.myshopify.com")), "ignored")
    assert snapshot(raw) == before


# --- at-least-once delivery: dedupe on the webhook id ---------------------------------------------------------


def test_a_replayed_webhook_id_is_a_duplicate_with_exactly_one_job(installed: Stack, raw: redis.Redis) -> None:
    body = encode(PRODUCT)
    headers = headers_for(body)
    assert_ack(post(installed, body, headers), "accepted")
    after_first = snapshot(raw)
    assert_ack(post(installed, body, headers), "duplicate")
    assert snapshot(raw) == after_first
    assert len(jobs(raw, keys.QUEUE_WEBHOOKS)) == 1


def test_devshop_sending_the_same_delivery_twice_makes_one_job(installed: Stack, raw: redis.Redis) -> None:
    result = installed.control.send_webhook(DEMO_SHOP, "products/update", PRODUCT, copies=2)
    assert result["statuses"] == [200, 200], result
    assert len({d["webhook_id"] for d in result["deliveries"]}) == 1
    assert len(jobs(raw, keys.QUEUE_WEBHOOKS)) == 1


def test_two_identical_deliveries_at_the_same_instant_make_one_job(installed: Stack, raw: redis.Redis) -> None:
    result = installed.control.send_webhook(DEMO_SHOP, "products/update", PRODUCT, copies=2, concurrent=True)
    assert result["statuses"] == [200, 200], result
    (job,) = jobs(raw, keys.QUEUE_WEBHOOKS)
    assert job.id == f"webhook-{result['webhook_id']}"


def deliver_at_once(stack: Stack, body: bytes, headers: dict[str, str], copies: int = 2) -> list[str]:
    """Post the same delivery `copies` times, all released by one barrier; the `status` of each answer."""
    barrier = threading.Barrier(copies)
    answers: list[str] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        with requests.Session() as session:
            barrier.wait(timeout=10)
            try:
                response = post(stack, body, headers, session)
                assert response.status_code == 200, response.text
                answers.append(response.json()["status"])
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return answers


def test_two_identical_hand_signed_deliveries_at_once_answer_accepted_and_duplicate(
    installed: Stack, raw: redis.Redis
) -> None:
    for _ in range(3):
        body = encode(PRODUCT)
        assert sorted(deliver_at_once(installed, body, headers_for(body))) == ["accepted", "duplicate"]
    assert len(jobs(raw, keys.QUEUE_WEBHOOKS)) == 3


# --- compliance ------------------------------------------------------------------------------------------------


def test_customer_redact_stores_no_email_or_phone_anywhere(installed: Stack, raw: redis.Redis) -> None:
    customer = {"id": 207119551, "email": EMAIL, "phone": PHONE}
    redact = {"shop_id": 954889, "shop_domain": DEMO_SHOP, "customer": customer, "orders_to_redact": [299938, 280263]}
    result = installed.control.send_webhook(DEMO_SHOP, "customers/redact", redact)
    assert result["statuses"] == [200], result
    request = {"shop_id": 954889, "shop_domain": DEMO_SHOP, "orders_requested": [299938], "customer": customer,
               "data_request": {"id": 9999}}
    body = encode(request)
    assert_ack(post(installed, body, headers_for(body, topic="customers/data_request")), "accepted")

    by_func = {job.func_name: job for job in jobs(raw, keys.QUEUE_DEFAULT)
               if job.func_name.startswith("jobs.compliance.")}
    assert set(by_func) == {"jobs.compliance.customer_redact", "jobs.compliance.customer_data_request"}
    # Keyed digests of the ids (the names the compliance index uses), never the ids; the data request's id labels
    # the answer. tests/functional/test_compliance.py proves the jobs find and delete with them.
    def digest(kind: str, raw: int) -> str:
        return subject_digest(TEST_API_SECRET, DEMO_SHOP, kind, raw)

    assert by_func["jobs.compliance.customer_redact"].kwargs == {
        "customer_digest": digest("customer", 207119551),
        "order_digests": sorted([digest("order", 299938), digest("order", 280263)])}
    assert by_func["jobs.compliance.customer_data_request"].kwargs == {
        "customer_digest": digest("customer", 207119551), "order_digests": [digest("order", 299938)],
        "request_id": "9999"}
    for job in by_func.values():
        assert job.args == (DEMO_SHOP,)
        described = repr(job.args) + repr(job.kwargs) + (job.description or "")
        assert EMAIL not in described and PHONE not in described
    stored = every_stored_byte(raw)
    assert stored, "nothing in Redis at all?"
    for needle in (EMAIL.encode(), PHONE.encode(), b"redact-7f3a", PHONE.encode()[1:]):
        leaks = [blob[:200] for blob in stored if needle in blob]
        assert not leaks, (needle, leaks)


def test_shop_redact_after_uninstall_is_processed_by_a_worker_and_leaves_a_receipt(
    installed: Stack, raw: redis.Redis, start_worker
) -> None:  # type: ignore[no-untyped-def]
    installed.control.uninstall(DEMO_SHOP)
    assert not raw.sismember(keys.SHOPS_INSTALLED, DEMO_SHOP)
    result = installed.control.send_webhook(DEMO_SHOP, "shop/redact", {"shop_id": 954889, "shop_domain": DEMO_SHOP})
    assert result["statuses"] == [200], result
    assert any(job.func_name == "jobs.compliance.shop_redact" for job in jobs(raw, keys.QUEUE_DEFAULT))

    worker = start_worker(installed.env)
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [r for r in receipts(installed.services, DEMO_SHOP) if r["reason"] == "shop_redact"]
        if found:
            break
        time.sleep(0.1)
    assert found, worker.output()
    (receipt,) = found
    assert receipt["shop"] == DEMO_SHOP
    assert set(receipt) == {"id", "shop", "reason", "categories", "deleted", "completed_at", "digest"}
    assert worker.proc.poll() is None
    wait_until_idle(raw)  # whatever else was queued (the uninstall purge, an install sync) has run too
    leftover = [k for k in raw.scan_iter(f"*{DEMO_SHOP}*".encode()) if k != keys.deletion_receipts(DEMO_SHOP).encode()]
    assert leftover == [], leftover
