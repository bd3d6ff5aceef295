"""The storefront chat end to end: devshop's app proxy → Lumi → devshop's Admin API, the devmodel stand-in
through the real openai SDK, escalation emails to a real SMTP server, retention by Redis expiry."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from core import keys
from devmodel.testing import DevModelServer
from devshop.orders import DEMO_CUSTOMER_ID, DEMO_ORDERS, OTHER_CUSTOMER_ID
from devtools.mailbox import MailboxServer
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.helpers import wait_until

SECRET = "X-Lumi-Session-Secret"
CUSTOMER = "X-Devshop-Customer-Id"
SHOPPER_EMAIL = "shopper@example.com"
UPS = DEMO_ORDERS["#1001"].shipment.number  # type: ignore[union-attr]
USPS = DEMO_ORDERS["#1004"].shipment.number  # type: ignore[union-attr]
MERCHANT_EMAIL = "support@demo-merchant.example"


@pytest.fixture
def mailbox() -> Iterator[MailboxServer]:
    with MailboxServer() as box:
        yield box


@pytest.fixture
def devmodel() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        yield server


@pytest.fixture
def chat_stack(env: dict[str, str], mailbox: MailboxServer, start_worker, request) -> Iterator:  # type: ignore[no-untyped-def]
    """make(model=None|DevModelServer, retention=None|seconds) → an installed stack with a worker."""
    stacks: list[Stack] = []

    def make(model: DevModelServer | None = None, retention: int | None = None, model_timeout: int = 5) -> Stack:
        overrides = {"SMTP_URL": mailbox.url}
        if model is not None:
            overrides |= {"OPENAI_API_KEY": model.api_key, "OPENAI_BASE_URL": model.base_url,
                          "OPENAI_MODEL": "devmodel-test", "OPENAI_TIMEOUT": str(model_timeout)}
        if retention is not None:
            overrides["LUMI_CHAT_RETENTION_SECONDS"] = str(retention)
        stack = Stack({**env, **overrides}, {"SHOPS": {DEMO_SHOP: {"products": 40, "seed": 1, "orders": 20},
                                                      OTHER_SHOP: {"products": 10, "seed": 2, "orders": 10}}})
        stacks.append(stack)
        start_worker(stack.env)
        stack.install()
        response = stack.api("PATCH", "/api/settings", json={"escalation_email": MERCHANT_EMAIL})
        assert response.status_code == 200, response.text
        return stack

    yield make
    # Workers first: the install's catalogue sync may still be running, and against a stopped devshop it
    # would retry until the worker's warm shutdown gives up on it.
    for worker in start_worker.started:
        worker.stop()
    for stack in stacks:
        stack.stop()


class Shopper:
    """A storefront visitor talking to the chat through devshop's app proxy."""

    def __init__(self, stack: Stack, customer_id: int | None = None, shop: str = DEMO_SHOP) -> None:
        self.stack, self.shop = stack, shop
        self.headers = {CUSTOMER: str(customer_id)} if customer_id else {}
        self.http = requests.Session()
        self.id = self.secret = ""

    def url(self, path: str) -> str:
        return self.stack.control.proxy_url(self.shop, f"chat/{path}")

    def start(self) -> dict[str, Any]:
        response = self.http.post(self.url("sessions"), json={}, headers=self.headers, timeout=30)
        assert response.status_code == 201, response.text
        body = response.json()
        self.id, self.secret = body["session"]["id"], body["session"]["secret"]
        return body

    def _headers(self) -> dict[str, str]:
        return {**self.headers, SECRET: self.secret}

    def say(self, text: str) -> requests.Response:
        return self.http.post(self.url(f"sessions/{self.id}/messages"), json={"text": text},
                              headers=self._headers(), timeout=30)

    def verify(self, order_name: str, email: str) -> requests.Response:
        return self.http.post(self.url(f"sessions/{self.id}/verify"), json={"order_name": order_name, "email": email},
                              headers=self._headers(), timeout=30)

    def transcript(self) -> requests.Response:
        return self.http.get(self.url(f"sessions/{self.id}"), headers=self._headers(), timeout=30)


def _all_values(client: redis.Redis) -> str:
    """Every key name and value in Redis, as one string (bytes decoded leniently)."""
    raw = redis.Redis(**{k: v for k, v in client.connection_pool.connection_kwargs.items()
                         if k in ("host", "port", "db")})
    out: list[str] = []
    for key in raw.scan_iter(count=1000):
        kind = raw.type(key).decode()
        value: Any = {"string": raw.get, "hash": raw.hgetall, "list": lambda k: raw.lrange(k, 0, -1),
                      "set": raw.smembers, "zset": lambda k: raw.zrange(k, 0, -1, withscores=True)}.get(
            kind, lambda k: b"")(key)
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


# --- order answers -----------------------------------------------------------------------------------------


def test_a_logged_in_shopper_gets_their_orders_status_and_tracking_link(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    greeting = shopper.start()
    assert greeting["logged_in"] is True and greeting["greeting"]
    reply = shopper.say("Where is my order #1001?")
    assert reply.status_code == 200, reply.text
    message = reply.json()["message"]
    assert UPS in message["text"] and "UPS" in message["text"]
    links = [p for p in message["parts"] if p["type"] == "tracking_link"]
    assert links and links[0]["number"] == UPS and links[0]["url"].startswith("https://")
    (card,) = [p for p in message["parts"] if p["type"] == "order"]
    assert card["order"]["name"] == "#1001" and card["order"]["fulfillments"][0]["status"] == "IN_TRANSIT"


def test_an_anonymous_shopper_verifies_with_order_name_and_email_then_gets_the_same_answer(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    before = shopper.say("where is my order?").json()["message"]
    assert any(p["type"] == "verify_order" for p in before["parts"])
    assert UPS not in before["text"]
    verified = shopper.verify("1001", "  Shopper@Example.COM ")
    assert verified.status_code == 200 and verified.json() == {"verified": True, "order": {"name": "#1001"}}
    after = shopper.say("where is my order?").json()["message"]
    assert UPS in after["text"]
    assert any(p["type"] == "tracking_link" and p["number"] == UPS for p in after["parts"])
    # The transcript shows the verification as an event, never the email typed.
    transcript = shopper.transcript().json()
    assert "Order #1001 verified." in json.dumps(transcript)
    assert SHOPPER_EMAIL not in json.dumps(transcript).lower()


def test_wrong_email_unknown_order_and_another_customers_order_are_refused_alike(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    wrong_email = shopper.verify("#1001", "someone@example.com")
    no_such_order = shopper.verify("#99999", SHOPPER_EMAIL)
    others_order = shopper.verify("#1004", SHOPPER_EMAIL)
    for response in (wrong_email, no_such_order, others_order):
        assert response.status_code == 403
    assert wrong_email.json() == no_such_order.json() == others_order.json()
    # A logged-in customer naming someone else's order learns nothing about it.
    logged_in = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    logged_in.start()
    reply = logged_in.say("What is the status of order #1004?").json()["message"]
    assert USPS not in json.dumps(reply) and "#1004" not in json.dumps(reply["parts"])


def test_brute_force_verification_is_stopped_with_429_and_retry_after(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    statuses = [shopper.verify("#1001", f"guess{i}@example.com").status_code for i in range(5)]
    assert statuses == [403] * 5
    blocked = shopper.verify("#1001", SHOPPER_EMAIL)  # even the right email: the session is locked out
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.json()["error"]["code"] == "too_many_attempts"
    # Per order name across sessions: new sessions cannot keep guessing the same order.
    other = Shopper(stack)
    other.start()
    assert [other.verify("#1001", f"x{i}@example.com").status_code for i in range(5)] == [403] * 5
    last = Shopper(stack)
    last.start()
    assert last.verify("#1001", SHOPPER_EMAIL).status_code == 429


def test_bad_input_gets_json_errors_and_a_wrong_secret_finds_nothing(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    empty = shopper.say("   ")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_text"
    long = shopper.say("x" * 2001)
    assert long.status_code == 400 and long.json()["error"]["code"] == "text_too_long"
    bad_name = shopper.verify("not an order!", SHOPPER_EMAIL)
    assert bad_name.status_code == 400 and bad_name.json()["error"]["details"]["param"] == "order_name"
    shopper.secret = "wrong" + shopper.secret
    assert shopper.say("hello").status_code == 404
    assert shopper.transcript().status_code == 404
    # Unsigned direct calls never reach a session.
    direct = requests.post(f"{stack.url}/proxy/chat/sessions", json={}, timeout=10)
    assert direct.status_code == 401


def test_chat_turned_off_answers_404_with_a_code(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    assert stack.api("PATCH", "/api/settings", json={"chat_enabled": False}).status_code == 200
    response = requests.post(stack.control.proxy_url(DEMO_SHOP, "chat/sessions"), json={}, timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "chat_disabled"


# --- the model -----------------------------------------------------------------------------------------------


def test_model_answers_with_tool_results_streamed_as_server_sent_events(chat_stack, devmodel) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(model=devmodel)
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    devmodel.control.script_tool_calls([("order_status", {"order_name": "#1001"})])
    devmodel.control.script_text(f"Your order #1001 is on its way with UPS, tracking number {UPS}.")
    # SSE straight to the app (devshop's proxy buffers whole bodies), signed as the proxy would sign it.
    from tests.functional.test_proxy import signed

    pairs = signed(customer=str(DEMO_CUSTOMER_ID))
    response = requests.post(f"{stack.url}/proxy/chat/sessions/{shopper.id}/messages", params=pairs,
                             json={"text": "where is #1001?"}, stream=True, timeout=30,
                             headers={SECRET: shopper.secret, "Accept": "text/event-stream"})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = _sse(response)
    deltas = "".join(json.loads(data)["text"] for kind, data in events if kind == "delta")
    final = json.loads([data for kind, data in events if kind == "final"][0])
    assert len([1 for kind, _ in events if kind == "delta"]) > 3  # token by token, not one blob
    assert deltas.strip() == final["message"]["text"]
    assert UPS in final["message"]["text"] and final["responder"] == "model" and not final["replaced"]
    assert any(p["type"] == "tracking_link" for p in final["message"]["parts"])
    # The tool result the model saw holds order facts, no personal data.
    tool_messages = [m for body in devmodel.control.bodies() for m in body["messages"] if m["role"] == "tool"]
    assert UPS in tool_messages[0]["content"] and SHOPPER_EMAIL not in tool_messages[0]["content"]


def _sse(response: requests.Response) -> list[tuple[str, str]]:
    events, kind, data = [], "message", []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            events.append((kind, "\n".join(data)))
            kind, data = "message", []
    return events


def test_a_hallucinated_tracking_number_is_never_sent(chat_stack, devmodel, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    stack = chat_stack(model=devmodel)
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    fake = "1Z999AA19999999999"
    devmodel.control.script_tool_calls([("order_status", {"order_name": "#1001"})])
    devmodel.control.script_text(f"Good news: order #1001 was delivered yesterday, tracking {fake}.")
    body = shopper.say("where is #1001?").json()
    assert body["replaced"] is True
    assert fake not in json.dumps(body) and "delivered yesterday" not in body["message"]["text"]
    assert UPS in body["message"]["text"]  # the safe answer is built from the facts alone
    assert fake not in json.dumps(shopper.transcript().json())
    blocked = [r for r in caplog.records if r.getMessage() == "model reply blocked"]
    assert blocked and all(fake not in json.dumps(vars(r), default=str) for r in caplog.records)


def test_an_unverified_status_claim_is_blocked_too(chat_stack, devmodel) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(model=devmodel)
    shopper = Shopper(stack)
    shopper.start()
    devmodel.control.script_text("Your order has been shipped and is in transit!")
    body = shopper.say("did my order ship?").json()
    assert body["replaced"] is True and "in transit" not in body["message"]["text"]
    assert any(p["type"] == "verify_order" for p in body["message"]["parts"])


def test_model_down_falls_back_to_the_rule_responder_honestly(chat_stack, devmodel) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(model=devmodel)
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    for _ in range(2):  # the first try and the SDK's one retry
        devmodel.control.script_error(500)
    body = shopper.say("where is my order #1001?").json()
    assert body["fallback"] is True and body["responder"] == "rules"
    assert "unavailable" in body["message"]["text"].lower()
    assert UPS in body["message"]["text"]


# --- escalation and personal data --------------------------------------------------------------------------


def test_escalation_emails_the_merchant_and_no_shopper_email_is_stored(chat_stack, mailbox, redis_client,
                                                                       caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    assert shopper.verify("#1001", SHOPPER_EMAIL).status_code == 200
    reply = shopper.say("I want to talk to a human please").json()
    assert reply["escalated"] is True
    assert "email" in reply["message"]["text"].lower()
    left = "me.reply+chat@example.org"
    response = shopper.http.post(shopper.url(f"sessions/{shopper.id}/escalate"), json={"email": left},
                                 headers={SECRET: shopper.secret}, timeout=30)
    assert response.status_code == 202
    mailbox.wait_for(2, timeout=30)
    first, second = mailbox.messages[:2]
    assert first["To"] == MERCHANT_EMAIL and "#1001" in first["Subject"]
    assert "talk to a human" in first.text and "Order: #1001" in first.text
    assert second["Reply-To"] == left
    everything = _all_values(redis_client).lower()
    for secret in (SHOPPER_EMAIL, left, "me.reply"):
        assert secret not in everything
        assert secret not in caplog.text.lower()
    session_keys = [k for k in redis_client.scan_iter(match=f"lumi:chat:{DEMO_SHOP}:session:*")]
    assert session_keys and redis_client.hget(session_keys[0], "escalated") == "1"


def test_personal_data_typed_in_the_chat_is_redacted_everywhere(chat_stack, devmodel, redis_client,
                                                                caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    stack = chat_stack(model=devmodel)
    shopper = Shopper(stack)
    shopper.start()
    pii = {"email": "jane.doe+shop@example.net", "phone": "+33 6 12 34 56 78", "card": "4111 1111 1111 1111"}
    text = f"Hi, I'm {pii['email']}, call me on {pii['phone']}, I paid with {pii['card']}. Where is my parcel?"
    devmodel.control.script_text("I can check that once you verify your order in the form below.")
    assert shopper.say(text).status_code == 200
    sent_to_model = json.dumps(devmodel.control.bodies())
    stored = _all_values(redis_client)
    digits = {k: "".join(c for c in v if c.isdigit()) for k, v in pii.items() if k != "email"}
    for name, value in pii.items():
        for haystack, where in ((sent_to_model, "model request"), (stored, "redis"), (caplog.text, "logs")):
            assert value not in haystack, (name, where)
    for name, value in digits.items():
        assert value not in stored.replace(" ", ""), name
    assert "[email]" in sent_to_model and "[card]" in sent_to_model
    assert "Where is my parcel" not in caplog.text  # no message text in logs


# --- retention -----------------------------------------------------------------------------------------------


def test_every_chat_key_expires_with_its_session_and_nothing_brings_it_back(chat_stack, redis_client) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(retention=4)
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    assert shopper.verify("#1001", SHOPPER_EMAIL).status_code == 200
    assert shopper.say("where is my order #1001?").status_code == 200
    shopper.verify("#1002", "wrong@example.com")  # a failure counted in the session's metadata
    expires_at = int(redis_client.hget(keys.chat_session(DEMO_SHOP, shopper.id), "expires_at"))
    chat_keys = list(redis_client.scan_iter(match=f"lumi:chat:{DEMO_SHOP}:*"))
    own = [k for k in chat_keys if shopper.id in k]
    assert len(own) == 2  # metadata (with the failure counter), transcript
    for key in own:
        assert redis_client.expiretime(key) == expires_at, key
    for key in chat_keys:
        expiry = redis_client.expiretime(key)
        # Per-order failure and per-minute flood counters hold no session data; everything else ends with it.
        assert 0 < expiry <= expires_at or ":verify-fail-order:" in key or ":rate:" in key, key
        assert expiry > 0, key  # and every key expires
    listed = stack.api("GET", "/api/chat/sessions").json()["sessions"]
    assert [s["id"] for s in listed] == [shopper.id]
    wait_until(lambda: time.time() > expires_at + 1, timeout=15, what="the retention period")
    # What may remain holds no session data: per-order failure counters and per-minute flood counters.
    left = [k for k in redis_client.scan_iter(match="lumi:chat:*") if ":verify-fail-order:" not in k
            and ":rate:" not in k]
    assert left == []
    assert all(shopper.id not in k for k in redis_client.scan_iter(count=1000))
    assert shopper.say("hello again").status_code == 404  # gone for the shopper too, and not recreated
    assert list(redis_client.scan_iter(match=f"lumi:chat:{DEMO_SHOP}:session:*")) == []
    assert stack.api("GET", "/api/chat/sessions").json()["sessions"] == []
    assert stack.api("GET", "/api/chat/analytics").json()["analytics"]["sessions"] == 0
    export = stack.api("GET", "/api/chat/export.csv").text
    assert shopper.id not in export and len(export.strip().splitlines()) == 1


# --- the merchant's side -------------------------------------------------------------------------------------


def test_history_analytics_and_a_formula_safe_csv_export(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    happy = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    happy.start()
    happy.say("where is my order #1001?")
    happy.say("thanks, perfect!")
    angry = Shopper(stack)
    angry.start()
    angry.say('=HYPERLINK("http://evil.example","click")')
    angry.say("this is terrible, I am furious, worst shop ever, I want a human")
    sessions = stack.api("GET", "/api/chat/sessions").json()["sessions"]
    assert {s["id"] for s in sessions} == {happy.id, angry.id}
    escalated = stack.api("GET", "/api/chat/sessions", params={"escalated": "true"}).json()["sessions"]
    assert [s["id"] for s in escalated] == [angry.id]
    negative = stack.api("GET", "/api/chat/sessions", params={"sentiment": "negative"}).json()["sessions"]
    assert [s["id"] for s in negative] == [angry.id]
    page = stack.api("GET", "/api/chat/sessions", params={"limit": "1"}).json()
    assert len(page["sessions"]) == 1 and page["next_cursor"]
    rest = stack.api("GET", "/api/chat/sessions", params={"limit": "1", "cursor": page["next_cursor"]}).json()
    assert len(rest["sessions"]) == 1 and rest["sessions"][0]["id"] != page["sessions"][0]["id"]
    detail = stack.api("GET", f"/api/chat/sessions/{happy.id}").json()
    assert [m["role"] for m in detail["messages"]][:2] == ["assistant", "shopper"]
    # The logged-in shopper's lookups are recorded as order references (names only), like verified ones.
    assert "#1001" in detail["session"]["orders"] and detail["session"]["resolved"] is True
    stats = stack.api("GET", "/api/chat/analytics").json()["analytics"]
    assert stats["sessions"] == 2 and stats["escalation_rate"] == 0.5
    assert stats["sessions_per_day"][-1]["sessions"] == 2
    assert stats["average_sentiment"] is not None and stats["median_first_reply_ms"] is not None
    assert {i["intent"] for i in stats["top_intents"]} >= {"order_status", "human"}
    export = stack.api("GET", "/api/chat/export.csv")
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {r["session_id"] for r in rows} == {happy.id, angry.id}
    angry_row = next(r for r in rows if r["session_id"] == angry.id)
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())
    assert "'=HYPERLINK" not in angry_row["transcript"][:1] and "=HYPERLINK" in angry_row["transcript"]
    bad = stack.api("GET", "/api/chat/sessions", params={"from": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["param"] == "from"


def test_one_shop_never_reads_another_shops_chat(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    stack.install(OTHER_SHOP)
    shopper = Shopper(stack)
    shopper.start()
    shopper.say("hello")
    assert stack.api("GET", f"/api/chat/sessions/{shopper.id}", shop=OTHER_SHOP).status_code == 404
    assert stack.api("GET", "/api/chat/sessions", shop=OTHER_SHOP).json()["sessions"] == []
    other = Shopper(stack, shop=OTHER_SHOP)
    other.id, other.secret = shopper.id, shopper.secret  # the same id and secret, on the other shop's storefront
    assert other.transcript().status_code == 404


def test_customer_redact_and_shop_purge_delete_chat_data(chat_stack, redis_client) -> None:  # type: ignore[no-untyped-def]
    from runtime.data import purge_shop

    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    assert shopper.verify("#1001", SHOPPER_EMAIL).status_code == 200
    keep = Shopper(stack, customer_id=OTHER_CUSTOMER_ID)
    keep.start()
    keep.say("hello")
    (ref,) = json.loads(redis_client.hget(keys.chat_session(DEMO_SHOP, shopper.id), "orders"))
    order_id = int(ref["id"].rsplit("/", 1)[1])
    payload = {"shop_id": 1, "shop_domain": DEMO_SHOP, "customer": {"id": DEMO_CUSTOMER_ID},
               "orders_to_redact": [order_id]}
    assert stack.control.send_webhook(DEMO_SHOP, "customers/redact", payload)["status"] == 200
    wait_until(lambda: not redis_client.exists(keys.chat_session(DEMO_SHOP, shopper.id)), timeout=30,
               what="customers/redact to delete the session")
    assert not any(shopper.id in k for k in redis_client.scan_iter(count=1000))
    assert redis_client.exists(keys.chat_session(DEMO_SHOP, keep.id))
    purge_shop(stack.services, DEMO_SHOP, categories=["chat"], reason="deletion_request")
    assert list(redis_client.scan_iter(match=f"lumi:chat:{DEMO_SHOP}:*")) == []


def test_a_transient_smtp_failure_is_retried_later(chat_stack, mailbox, redis_client) -> None:  # type: ignore[no-untyped-def]
    from rq.registry import ScheduledJobRegistry

    from jobs.queues import queue

    stack = chat_stack()
    mailbox.fail_next(1, 451)
    shopper = Shopper(stack)
    shopper.start()
    assert shopper.say("I want to talk to a human").json()["escalated"] is True
    jobs_queue = queue(keys.QUEUE_DEFAULT, stack.services.queue_redis)
    registry = ScheduledJobRegistry(queue=jobs_queue)

    def scheduled_emails() -> list:  # type: ignore[type-arg]
        found = [jobs_queue.fetch_job(i) for i in registry.get_job_ids()]
        return [j for j in found if j is not None and j.func_name == "jobs.escalation.send_escalation"]

    wait_until(lambda: len(scheduled_emails()) == 1, timeout=30, what="the failed email to be scheduled again")
    assert mailbox.messages == []
    assert scheduled_emails()[0].retries_left == 3  # of 4: one used


def test_the_tool_loop_is_bounded_and_a_hanging_model_times_out(chat_stack, devmodel) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(model=devmodel, model_timeout=1)
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    for _ in range(5):
        devmodel.control.script_tool_calls([("search_products", {"query": "shirt"})])
    looping = shopper.say("where is my order #1001?").json()
    assert looping["fallback"] is True and UPS in looping["message"]["text"]
    devmodel.control.reset()
    devmodel.control.script_hang(10)
    devmodel.control.script_hang(10)
    started = time.monotonic()
    hung = shopper.say("where is my order #1001?").json()
    assert hung["fallback"] is True and UPS in hung["message"]["text"]
    assert time.monotonic() - started < 9  # gave up on the hung model instead of waiting it out


def test_a_logged_in_shopper_can_ask_for_their_recent_orders(chat_stack, devmodel) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack(model=devmodel)
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    devmodel.control.script_tool_calls([("list_recent_orders", {})])
    devmodel.control.script_text("You have three recent orders: #1001 (on its way), #1002 (partly shipped) and "
                                 "#1003 (not shipped yet).")
    body = shopper.say("what did I order recently?").json()
    assert body["replaced"] is False, body
    assert {p["order"]["name"] for p in body["message"]["parts"] if p["type"] == "order"} == {"#1001", "#1002", "#1003"}
    offered = {t["function"]["name"] for t in devmodel.control.bodies()[0]["tools"]}
    assert offered == {"order_status", "list_recent_orders", "search_products", "escalate_to_human"}
    anonymous = Shopper(stack)
    anonymous.start()
    devmodel.control.script_text("Hello!")
    anonymous.say("hi")
    assert "list_recent_orders" not in {t["function"]["name"] for t in devmodel.control.bodies()[-1]["tools"]}


def test_shopify_down_gets_an_honest_answer_not_a_guess(chat_stack) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    shopper.start()
    stack.control.inject_fault("http_503", count=10, shop=DEMO_SHOP)
    reply = shopper.say("where is my order #1001?")
    assert reply.status_code == 200
    text = reply.json()["message"]["text"]
    assert "can't check orders right now" in text and UPS not in text
    assert shopper.verify("#1002", SHOPPER_EMAIL).status_code == 503  # not counted as a failed attempt
    stack.control.clear_faults()
    assert shopper.verify("#1002", SHOPPER_EMAIL).status_code == 200
    assert UPS in shopper.say("and #1001?").json()["message"]["text"]


def test_chat_responses_match_the_openapi_schema(chat_stack) -> None:  # type: ignore[no-untyped-def]
    from tests.functional.test_feeds import _validator

    stack = chat_stack()
    shopper = Shopper(stack, customer_id=DEMO_CUSTOMER_ID)
    created = shopper.start()
    assert list(_validator("ChatSessionCreated").iter_errors(created)) == []
    reply = shopper.say("where is my order #1001?").json()
    assert list(_validator("ChatReply").iter_errors(reply)) == []
    assert list(_validator("ChatTranscript").iter_errors(shopper.transcript().json())) == []
    for session in stack.api("GET", "/api/chat/sessions").json()["sessions"]:
        assert list(_validator("ChatSessionSummary").iter_errors(session)) == []
    analytics = stack.api("GET", "/api/chat/analytics").json()["analytics"]
    assert list(_validator("ChatAnalytics").iter_errors(analytics)) == []
    error = shopper.say("").json()
    assert list(_validator("Error").iter_errors(error)) == []


def test_a_flood_of_new_sessions_is_refused_with_429(chat_stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import web.chat

    monkeypatch.setattr(web.chat, "MAX_NEW_SESSIONS_PER_MINUTE", 3)
    stack = chat_stack()
    url = stack.control.proxy_url(DEMO_SHOP, "chat/sessions")
    statuses = [requests.post(url, json={}, timeout=10).status_code for _ in range(4)]
    if statuses[-1] == 201:  # the minute turned over between the calls: one more try
        statuses = [requests.post(url, json={}, timeout=10).status_code for _ in range(4)]
    assert statuses[-1] == 429
    refused = requests.post(url, json={}, timeout=10)
    assert refused.json()["error"]["code"] == "too_many_sessions" and 0 < int(refused.headers["Retry-After"]) <= 60


def test_a_clearly_unhappy_shopper_is_escalated_without_asking(chat_stack, mailbox) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    first = shopper.say("This is terrible.").json()
    assert first["escalated"] is False  # one message is not enough to judge
    second = shopper.say("Worst service ever, I am furious and disgusted, this is awful!").json()
    assert second["escalated"] is True and second["message"]["intent"] != "human"
    assert any(p["type"] == "escalated" for p in second["message"]["parts"])
    mailbox.wait_for(1, timeout=30)
    assert "Worst service ever" in mailbox.messages[0].text
    summary = stack.api("GET", f"/api/chat/sessions/{shopper.id}").json()["session"]
    assert summary["escalated"] is True and summary["sentiment"] <= -0.5


@pytest.mark.parametrize("tamper", ["signature", "shop", "logged_in_customer_id", "timestamp"])
def test_tampered_proxy_requests_reach_no_chat_route_and_write_nothing(chat_stack, redis_client,
                                                                      tamper: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import redis_snapshot
    from tests.functional.test_proxy import signed

    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    before = redis_snapshot(redis_client)
    pairs = signed(customer=str(DEMO_CUSTOMER_ID))
    forged = {"signature": "0" * 64, "shop": OTHER_SHOP, "logged_in_customer_id": str(OTHER_CUSTOMER_ID),
              "timestamp": str(int(time.time()) - 3600)}[tamper]
    pairs = [(k, forged if k == tamper else v) for k, v in pairs]
    if tamper == "timestamp":  # a stale timestamp, correctly signed: refused for its age
        from shopify.signatures import sign_proxy
        from tests.conftest import TEST_API_SECRET

        unsigned = [(k, v) for k, v in pairs if k != "signature"]
        pairs = [*unsigned, ("signature", sign_proxy(unsigned, TEST_API_SECRET))]
    base = f"{stack.url}/proxy/chat/sessions"
    calls = [("POST", base, {}), ("POST", f"{base}/{shopper.id}/messages", {"text": "hi"}),
             ("POST", f"{base}/{shopper.id}/verify", {"order_name": "#1001", "email": SHOPPER_EMAIL}),
             ("POST", f"{base}/{shopper.id}/escalate", {}), ("GET", f"{base}/{shopper.id}", None)]
    for method, url, body in calls:
        response = requests.request(method, url, params=pairs, json=body, headers={SECRET: shopper.secret},
                                    timeout=10)
        assert response.status_code == 401, (tamper, url, response.text)
        assert response.json()["error"]["code"] in {"bad_signature", "stale_request"}
    assert redis_snapshot(redis_client) == before


def test_redis_down_mid_chat_is_a_503_to_retry(env, mailbox, start_worker) -> None:  # type: ignore[no-untyped-def]
    from devtools.services import RedisServer

    own = RedisServer().start()  # this test stops its Redis; nobody else uses it
    stack = Stack({**env, "REDIS_URL": own.url, "SMTP_URL": mailbox.url}, {"SHOPS": {DEMO_SHOP: {"products": 10}}})
    try:
        stack.install()
        shopper = Shopper(stack)
        shopper.start()
        own.stop()
        response = shopper.say("hello")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "store_unavailable" and response.headers["Retry-After"]
    finally:
        stack.stop()
        own.stop()
