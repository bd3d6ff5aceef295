"""Session promises kept by the store and the engine against real Redis: a logged-in shopper's orders are recorded
like verified ones, the session's language answers, escalation clears resolution, first reply times give a true
median, the customer is sealed in the session, and a client_id's retry never runs a second turn."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import redis

from chat.analytics import analytics
from chat.engine import ChatEngine, TurnContext
from chat.orders import OrderLookup, OrderRef
from chat.store import ChatStore, bucket_width, sessions_with_orders
from core import keys
from core.crypto import SecretBox
from tests.conftest import TEST_FERNET_KEY

SHOP = "promises-shop.myshopify.com"
CUSTOMER = "7001"


class CustomerOrders(OrderLookup):
    """A logged-in customer's two orders, without Shopify."""

    ORDERS = {"#1002": "gid://shopify/Order/5002", "#1003": "gid://shopify/Order/5003"}

    def __init__(self) -> None:
        super().__init__(lambda: (_ for _ in ()).throw(AssertionError("no Admin call expected")))

    def _facts(self, name: str) -> dict[str, Any]:
        return {"name": name, "created_at": f"2026-01-0{name[-1]}T00:00:00Z", "financial_status": "PAID",
                "fulfillment_status": "UNFULFILLED", "cancelled": False,
                "line_items": [{"title": "Mug", "quantity": 1}], "fulfillments": []}

    def recent(self, customer_id: str) -> list[tuple[OrderRef, dict[str, Any]]]:
        assert customer_id == CUSTOMER
        return [(OrderRef(gid, name), self._facts(name)) for name, gid in self.ORDERS.items()]

    def facts_for(self, refs: list[OrderRef]) -> list[dict[str, Any]]:
        return [self._facts(r.name) for r in refs if self.ORDERS.get(r.name) == r.id]

    def owned(self, name: str, customer_id: str) -> OrderRef | None:
        return OrderRef(self.ORDERS[name], name) if name in self.ORDERS else None


def _ctx(store: ChatStore, session: Any, customer: str | None = None, language: str = "en") -> TurnContext:
    return TurnContext(shop=SHOP, session=session, settings={"language": language}, shop_name="Lune",
                       contact_email=None, customer_id=customer, lookup=CustomerOrders(), search=lambda q: [])


def test_a_logged_in_shoppers_lookups_are_recorded_in_the_session_for_retention_and_redact(
        redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    session, _ = store.create(SHOP, 3600, "en")
    reply = ChatEngine(store, None).turn(_ctx(store, session, CUSTOMER), "Where is my order #1003?")
    assert "#1003" in reply.text
    saved = store.get(SHOP, session.id)
    assert saved is not None and {o["name"] for o in saved.orders} == {"#1002", "#1003"}
    assert sessions_with_orders(store, SHOP, [5003]) == [session.id]
    # A second turn does not add them twice.
    ChatEngine(store, None).turn(_ctx(store, store.get(SHOP, session.id), CUSTOMER), "and #1002?")
    assert len(store.get(SHOP, session.id).orders) == 2  # type: ignore[union-attr]


def test_the_sessions_language_answers_not_the_shops_setting(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    session, _ = store.create(SHOP, 3600, "de")
    reply = ChatEngine(store, None).turn(_ctx(store, session, language="en"), "???")  # no language in the text
    assert reply.language == "de" and "Bestellungen" in reply.text


def test_escalating_a_resolved_session_clears_its_resolution_in_the_session_and_the_counters(
        redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    now = time.time()
    session, _ = store.create(SHOP, 3600, "en", now=now)
    ChatEngine(store, None).turn(_ctx(store, session, CUSTOMER), "where is my order #1003?")
    ChatEngine(store, None).turn(_ctx(store, session, CUSTOMER), "thanks!")
    assert store.get(SHOP, session.id).resolved  # type: ignore[union-attr]
    assert store.escalate(store.get(SHOP, session.id)) is True  # type: ignore[arg-type]
    assert store.escalate(store.get(SHOP, session.id)) is False  # type: ignore[arg-type]  # once
    saved = store.get(SHOP, session.id)
    assert saved is not None and saved.escalated and not saved.resolved
    stats = analytics(store, SHOP, now - 3600, now + 3600)
    assert stats["escalation_rate"] == 1.0 and stats["resolution_rate"] == 0.0


def test_the_median_first_reply_is_the_median_of_the_replies_not_a_bucket_bound(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    now = time.time()
    for _ in range(5):
        session, _ = store.create(SHOP, 3600, "en", now=now)
        ChatEngine(store, None).turn(_ctx(store, session), "hello")  # the rule responder: a few milliseconds
    width = bucket_width(3600)
    index = keys.chat_index(SHOP, int(now // width) * width)
    stored = [int(redis_client.hget(keys.chat_session(SHOP, sid), "first_reply_ms"))  # type: ignore[arg-type]
              for sid in redis_client.zrange(index, 0, -1)]
    assert len(stored) == 5
    median = analytics(store, SHOP, now - 3600, now + 3600)["median_first_reply_ms"]
    assert median is not None and median < 250 and median == statistics.median(stored)


def test_given_first_reply_times_report_their_exact_median(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    now = time.time()
    times = [12, 48, 31, 17, 44, 23, 39]
    for ms in times:
        session, _ = store.create(SHOP, 3600, "en", now=now)
        store.record_first_reply(session, ms)
    assert analytics(store, SHOP, now - 3600, now + 3600)["median_first_reply_ms"] == 31
    for key in redis_client.scan_iter(match=f"lumi:chat:{SHOP}:replies:*"):
        assert 0 < redis_client.expiretime(key) <= session.expires_at  # gone with the sessions it describes


def test_the_customer_is_sealed_in_the_session_and_bound_to_it(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client, SecretBox([TEST_FERNET_KEY]))
    session, _ = store.create(SHOP, 3600, "en", customer_id=CUSTOMER, country="FR")
    raw = redis_client.hgetall(keys.chat_session(SHOP, session.id))
    assert CUSTOMER not in json.dumps(raw)  # encrypted, not merely encoded
    loaded = store.get(SHOP, session.id)
    assert loaded is not None and store.customer(loaded) == CUSTOMER and loaded.country == "FR"
    other, _ = store.create(SHOP, 3600, "en")
    redis_client.hset(keys.chat_session(SHOP, other.id), "customer", raw["customer"])  # copied across sessions
    assert store.customer(store.get(SHOP, other.id)) is None  # type: ignore[arg-type]
    assert store.customer(other) is None


def test_a_client_id_is_claimed_once_answered_once_and_released_when_the_turn_fails(
        redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    session, _ = store.create(SHOP, 3600, "en")
    assert store.claim_turn(session, "m1") == ("claimed", None)
    assert store.claim_turn(session, "m1") == ("running", None)
    store.settle_turn(session, "m1", {"message": {"text": "hi"}})
    assert store.claim_turn(session, "m1") == ("done", {"message": {"text": "hi"}})
    assert store.claim_turn(session, "m2") == ("claimed", None)
    store.settle_turn(session, "m2", None)  # the turn failed: a retry runs it
    assert store.claim_turn(session, "m2") == ("claimed", None)
    redis_client.hset(keys.chat_session(SHOP, session.id), "turn_started", time.time() - 3600)
    assert store.claim_turn(session, "m2") == ("claimed", None)  # its process died long ago
