"""The compliance webhooks find every chat that touched a customer or an order, end to end: devshop signs and
delivers customers/redact and customers/data_request, a real worker runs the jobs, the storefront chat goes through
devshop's app proxy (logged in as devshop's demo customer, rules or the devmodel stand-in calling tools), the
merchant's answer arrives in a real SMTP mailbox.

The policy (../shared/DESIGN.md "Data promises"): "The compliance webhooks (customers/data_request, customers/redact,
shop/redact) are honoured"; chat session data, order references included, "expires automatically after the plan's
retention period"; "Never stored: customer email addresses, phone numbers or other personal information". Shopify
gives the merchant 30 days to answer a data request: the answer is kept for the admin page for exactly that long.
"""

from __future__ import annotations

import json
import time
import zlib
from datetime import datetime
from typing import Any

import pytest
import redis
from rq.job import Job

from core import keys
from devshop.orders import DEMO_CUSTOMER_ID, DEMO_ORDERS, ORDER_ID_BASE, OTHER_CUSTOMER_ID
from tests.conftest import DEMO_SHOP, OTHER_SHOP
from tests.functional import test_chat
from tests.helpers import wait_until

# The chat suite's fixtures: a stack with a worker and the merchant's escalation email, a mailbox, the devmodel.
chat_stack, mailbox, devmodel, Shopper = test_chat.chat_stack, test_chat.mailbox, test_chat.devmodel, test_chat.Shopper


def order_id(name: str) -> int:
    """devshop's numeric order id (Order.legacyResourceId) of a demo order: #1001-#1003 are the demo customer's."""
    return ORDER_ID_BASE + DEMO_ORDERS[name].number


ORDER_1003 = order_id("#1003")
DEMO_ORDER_IDS = [order_id(name) for name in ("#1001", "#1002", "#1003")]
THIRTY_DAYS = 2_592_000  # seconds: Shopify's deadline for answering a data request, the answer's lifetime
QUESTION = "Where is my order #1003?"


def _redact(stack: Any, customer_id: int, orders: list[int]) -> None:
    payload = {"shop_id": 1, "shop_domain": DEMO_SHOP, "orders_to_redact": orders,
               "customer": {"id": customer_id, "email": "sam.shopper-c0ffee@example.com", "phone": "+15555550199"}}
    assert stack.control.send_webhook(DEMO_SHOP, "customers/redact", payload)["status"] == 200


def _data_request(stack: Any, customer_id: int, orders: list[int], request_id: int) -> None:
    payload = {"shop_id": 1, "shop_domain": DEMO_SHOP, "orders_requested": orders, "data_request": {"id": request_id},
               "customer": {"id": customer_id, "email": "sam.shopper-c0ffee@example.com", "phone": None}}
    assert stack.control.send_webhook(DEMO_SHOP, "customers/data_request", payload)["status"] == 200


def _session_keys(client: redis.Redis, sid: str) -> list[str]:
    return [keys.chat_session(DEMO_SHOP, sid), keys.chat_transcript(DEMO_SHOP, sid)]


def _subject_keys(client: redis.Redis) -> list[str]:
    return sorted(client.scan_iter(match=f"{keys.PREFIX}:chat:{DEMO_SHOP}:subject*", count=1000))


def _talk_about_1003(stack: Any, model: Any = None) -> Shopper:
    """The demo customer, logged in, asks about #1003 and is answered from the order: never verified by email."""
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    if model is not None:
        model.control.script_tool_calls([("order_status", {"order_name": "#1003"})])
        model.control.script_text("Your order #1003 has not shipped yet.")
    reply = shopper.say(QUESTION)
    assert reply.status_code == 200, reply.text
    assert "#1003" in json.dumps(reply.json()["message"])
    return shopper


def _bystanders(stack: Any) -> list[Shopper]:
    """An anonymous chat and the other customer's chat about their own order: nothing to do with the demo one."""
    anonymous = Shopper(stack)
    anonymous.start()
    assert anonymous.say("Do you ship to Canada?").status_code == 200
    other = Shopper(stack, customer_id=OTHER_CUSTOMER_ID)
    other.start()
    assert other.say("Where is my order #1004?").status_code == 200
    return [anonymous, other]


# --- customers/redact ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("named", ["customer", "order"])
def test_customer_redact_deletes_a_logged_in_chat_about_1003_and_nothing_else(
        chat_stack, redis_client: redis.Redis, named: str) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = _talk_about_1003(stack)
    others = _bystanders(stack)
    stored = json.loads(redis_client.hget(keys.chat_session(DEMO_SHOP, shopper.id), "orders") or "[]")
    assert f"gid://shopify/Order/{ORDER_1003}" in {o["id"] for o in stored}  # the order card's order, looked up

    if named == "customer":  # Shopify names the customer; no order listed
        _redact(stack, DEMO_CUSTOMER_ID, [])
    else:  # only order #1003 (with a customer Lumi never saw)
        _redact(stack, 424_242_424, [ORDER_1003])
    wait_until(lambda: not any(redis_client.exists(k) for k in _session_keys(redis_client, shopper.id)),
               timeout=30, what="customers/redact to delete the logged-in chat")
    # Transcript, metadata, history and compliance index entries: nothing names the session any more.
    assert shopper.transcript().status_code == 404
    assert not any(shopper.id in k for k in redis_client.scan_iter(count=1000))
    for subject in _subject_keys(redis_client):
        if redis_client.type(subject) == "set":
            assert shopper.id not in redis_client.smembers(subject)
    listed = [s["id"] for s in stack.api("GET", "/api/chat/sessions").json()["sessions"]]
    assert shopper.id not in listed
    # The bystanders' chats are untouched, and still findable for their own requests.
    for other in others:
        assert all(redis_client.exists(k) for k in _session_keys(redis_client, other.id)), other.id
        assert other.transcript().status_code == 200
        assert other.id in listed


def test_customer_redact_finds_a_chat_whose_order_the_model_looked_up_with_a_tool(
        chat_stack, devmodel, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(model=devmodel)
    shopper = _talk_about_1003(stack, model=devmodel)
    assert any(m["role"] == "tool" for body in devmodel.control.bodies() for m in body["messages"])
    _redact(stack, 424_242_424, [ORDER_1003])
    wait_until(lambda: not any(redis_client.exists(k) for k in _session_keys(redis_client, shopper.id)),
               timeout=30, what="customers/redact to delete the chat the model looked #1003 up in")


def test_a_shopper_who_logs_in_during_a_chat_is_found_by_their_customer_id(
        chat_stack, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)  # anonymous when the chat starts
    shopper.start()
    shopper.headers = {"X-Devshop-Customer-Id": str(DEMO_CUSTOMER_ID)}  # then logs in, same chat
    assert shopper.say("Hello, I need help with a return").status_code == 200
    _redact(stack, DEMO_CUSTOMER_ID, [])
    wait_until(lambda: not redis_client.exists(keys.chat_transcript(DEMO_SHOP, shopper.id)), timeout=30,
               what="customers/redact to delete the chat of a shopper who logged in mid-chat")


# --- no raw ids ----------------------------------------------------------------------------------------------


def test_no_raw_customer_or_order_id_in_any_key_name_or_compliance_job(
        chat_stack, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    _talk_about_1003(stack)
    verified = Shopper(stack)
    verified.start()
    assert verified.verify("#1001", "shopper@example.com").status_code == 200
    _bystanders(stack)
    assert _subject_keys(redis_client), "no compliance index at all?"
    _data_request(stack, DEMO_CUSTOMER_ID, DEMO_ORDER_IDS, 77001)
    _redact(stack, DEMO_CUSTOMER_ID, DEMO_ORDER_IDS)
    wait_until(lambda: redis_client.exists(keys.data_request_answer(DEMO_SHOP, "77001")), timeout=30,
               what="the data request's answer")
    wait_until(lambda: not redis_client.exists(keys.chat_session(DEMO_SHOP, verified.id)), timeout=30,
               what="the redact")

    raw_ids = [str(DEMO_CUSTOMER_ID), str(OTHER_CUSTOMER_ID), *map(str, DEMO_ORDER_IDS), str(order_id("#1004"))]
    names = list(redis_client.scan_iter(count=1000))
    for raw in raw_ids:
        assert not [k for k in names if raw in k], raw
    # The compliance jobs' stored records (RQ keeps them zlib-compressed and pickled) name digests, never the ids,
    # and nothing else from the payload.
    binary = redis.Redis(**{k: v for k, v in redis_client.connection_pool.connection_kwargs.items()
                            if k in ("host", "port", "db")})
    ids = [k.decode().removeprefix("rq:job:") for k in binary.scan_iter(match=b"rq:job:*", count=1000)
           if binary.type(k) == b"hash"]
    compliance = [job for job in Job.fetch_many(ids, connection=binary)
                  if job is not None and job.func_name.startswith("jobs.compliance.customer_")]
    assert len(compliance) == 2, "both compliance jobs' records should still be there"
    for job in compliance:
        stored = repr(job.args) + repr(job.kwargs) + repr(binary.hgetall(f"rq:job:{job.id}"))
        stored += zlib.decompress(binary.hget(f"rq:job:{job.id}", "data")).decode("latin-1")
        for raw in raw_ids + ["sam.shopper-c0ffee", "5555550199"]:
            assert raw not in stored, (job.func_name, raw)
        assert set(job.kwargs) <= {"customer_digest", "order_digests", "previous_digests", "request_id"}, job.kwargs


# --- customers/data_request ----------------------------------------------------------------------------------


def test_data_request_emails_the_merchant_the_redacted_transcript_and_keeps_it_thirty_days(
        chat_stack, mailbox, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    from runtime.data import inventory

    stack = chat_stack()
    shopper = _talk_about_1003(stack)
    assert shopper.say("You can reach me at sam.private-77@example.com").status_code == 200
    _bystanders(stack)
    _data_request(stack, DEMO_CUSTOMER_ID, [ORDER_1003], 88001)
    wait_until(lambda: any("88001" in m["Subject"] for m in mailbox.messages), timeout=30,
               what="the data request email")
    (email,) = [m for m in mailbox.messages if "88001" in m["Subject"]]
    assert email["To"] == "support@demo-merchant.example"  # the merchant, never the customer
    text = email.text
    assert "Chat sessions found: 1." in text
    assert QUESTION in text and "#1003" in text
    assert "sam.private-77@example.com" not in text and "[email]" in text.lower()  # redacted as stored
    assert "Canada" not in text and "#1004" not in text  # the bystanders' chats are not theirs
    assert "sam.shopper-c0ffee" not in text
    # Kept for the admin page: the same text, for the 30 days Shopify gives the merchant, then gone.
    key = keys.data_request_answer(DEMO_SHOP, "88001")
    answer = json.loads(redis_client.get(key))
    assert answer["text"] == text.replace("\r\n", "\n") and answer["sessions"] == 1 and answer["delivered"] == "email"
    assert THIRTY_DAYS - 120 < redis_client.ttl(key) <= THIRTY_DAYS
    assert stack.services.chat.data_requests(DEMO_SHOP)[0]["request_id"] == "88001"
    # In the deletion registry, category chat: a chat deletion removes it, the inventory counts it.
    held = inventory(stack.services, DEMO_SHOP)
    assert held["chat-data-requests"]["category"] == "chat"
    assert sum(held["chat-data-requests"]["items"].values()) == 1


def test_data_request_says_none_when_lumi_holds_nothing_about_the_customer(
        chat_stack, mailbox, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    _bystanders(stack)
    _data_request(stack, 424_242_424, [ORDER_ID_BASE + 10], 88002)
    wait_until(lambda: any("88002" in m["Subject"] for m in mailbox.messages), timeout=30,
               what="the data request email")
    (email,) = [m for m in mailbox.messages if "88002" in m["Subject"]]
    assert "Chat sessions found: none." in email.text
    assert "Canada" not in email.text and "#1004" not in email.text


# --- the answers on the admin page (/api/data-requests) ---------------------------------------------------------

SUMMARY_FIELDS = {"id", "received_at", "answered_at", "sessions", "emailed", "delivered", "expires_at"}


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_data_requests_are_listed_for_the_merchant_and_each_answer_is_kept_thirty_days(
        chat_stack, mailbox) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = _talk_about_1003(stack)
    assert shopper.say("You can reach me at sam.private-77@example.com").status_code == 200
    _bystanders(stack)
    assert stack.api("GET", "/api/data-requests").json() == {"data_requests": []}
    _data_request(stack, DEMO_CUSTOMER_ID, [ORDER_1003], 99001)
    _data_request(stack, 424_242_424, [ORDER_ID_BASE + 10], 99002)  # a customer Lumi knows nothing about
    wait_until(lambda: all(any(f"request {n}:" in m["Subject"] for m in mailbox.messages) for n in (99001, 99002)),
               timeout=30, what="both data request emails")

    listed = stack.api("GET", "/api/data-requests")
    assert listed.status_code == 200 and listed.headers["Content-Type"] == "application/json"
    requests_ = {r["id"]: r for r in listed.json()["data_requests"]}
    assert set(requests_) == {"99001", "99002"}
    assert requests_["99001"]["sessions"] == 1 and requests_["99002"]["sessions"] == 0
    for request in requests_.values():
        assert set(request) == SUMMARY_FIELDS
        assert request["emailed"] is True and request["delivered"] == "email"
        assert _at(request["received_at"]) <= _at(request["answered_at"])
        # Kept 30 days from when it came, then deleted.
        assert abs((_at(request["expires_at"]) - _at(request["received_at"])).total_seconds() - THIRTY_DAYS) <= 5
    # The list names no chat content; only the answer itself holds the (redacted) transcripts.
    assert QUESTION not in listed.text and "#1003" not in listed.text

    detail = stack.api("GET", "/api/data-requests/99001")
    assert detail.status_code == 200, detail.text
    answer = detail.json()["data_request"]
    assert {k: answer[k] for k in SUMMARY_FIELDS} == requests_["99001"]
    (email,) = [m for m in mailbox.messages if "request 99001:" in m["Subject"]]
    assert answer["answer"] == email.text.replace("\r\n", "\n") and answer["subject"] == email["Subject"]
    assert QUESTION in answer["answer"] and "[email]" in answer["answer"].lower()
    assert "sam.private-77" not in detail.text and "sam.shopper-c0ffee" not in detail.text
    assert "Canada" not in detail.text and "#1004" not in detail.text  # the bystanders' chats are not theirs
    none = stack.api("GET", "/api/data-requests/99002").json()["data_request"]
    assert "Chat sessions found: none." in none["answer"] and none["sessions"] == 0


@pytest.mark.parametrize("path", ["/api/data-requests", "/api/data-requests/99003"])
def test_data_requests_need_a_session_token_and_belong_to_one_shop(
        chat_stack, mailbox, path: str) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    _data_request(stack, DEMO_CUSTOMER_ID, [ORDER_1003], 99003)
    wait_until(lambda: stack.api("GET", "/api/data-requests/99003").status_code == 200, timeout=30,
               what="the data request's answer")
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": f"Bearer {stack.session_token(exp=int(time.time()) - 120)}"}):
        refused = stack.http.get(f"{stack.url}{path}", headers=headers, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"]["code"], (headers, refused.text)
    # Another shop's session token finds nothing of this shop's.
    other = stack.api("GET", path, shop=OTHER_SHOP)
    if path == "/api/data-requests":
        assert other.status_code == 200 and other.json() == {"data_requests": []}
    else:
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found", other.text
    for missing in ("/api/data-requests/99004", "/api/data-requests/..%2F..%2F99003", "/api/data-requests/9900*"):
        response = stack.api("GET", missing)
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/json", missing
        assert response.json()["error"]["code"] in ("not_found",), (missing, response.text)


# --- expiry --------------------------------------------------------------------------------------------------


def test_index_entries_expire_with_their_sessions(chat_stack, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    retention = 12
    stack = chat_stack(retention=retention)
    first = _talk_about_1003(stack)
    time.sleep(1.1)  # a later expiry for the second chat
    second = _talk_about_1003(stack)
    expiry = {s.id: int(redis_client.hget(keys.chat_session(DEMO_SHOP, s.id), "expires_at")) for s in (first, second)}
    assert expiry[first.id] < expiry[second.id]
    subjects = _subject_keys(redis_client)
    sets = [k for k in subjects if redis_client.type(k) == "set"]
    zsets = [k for k in subjects if redis_client.type(k) == "zset"]
    assert sets and zsets
    for key in sets:  # each entry expires exactly when every session it names does
        members = redis_client.smembers(key)
        assert members and {expiry[sid] for sid in members} == {redis_client.expiretime(key)}, key
        assert redis_client.expiretime(key) == int(key.rsplit(":", 1)[1])
    for key in zsets:  # the list of expiry times (no session ids) lasts as long as the latest session
        times = [int(t) for t in redis_client.zrange(key, 0, -1)]
        assert redis_client.expiretime(key) == max(times) <= expiry[second.id]
    # The first session's expiry passes: its entries go with it, the second's stay findable.
    wait_until(lambda: not redis_client.exists(keys.chat_session(DEMO_SHOP, first.id)), timeout=retention + 5,
               what="the first session to expire")
    remaining = [k for k in _subject_keys(redis_client) if redis_client.type(k) == "set"]
    assert remaining and all(redis_client.smembers(k) == {second.id} for k in remaining)
    wait_until(lambda: not redis_client.exists(keys.chat_session(DEMO_SHOP, second.id)), timeout=5,
               what="the second session to expire")
    assert [k for k in _subject_keys(redis_client) if redis_client.exists(k)] == []
