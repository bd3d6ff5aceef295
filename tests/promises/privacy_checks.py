"""Checks of the privacy promises (docs/data-handling.md §1-3, §8, §10), one plain function per promise.

Each check drives the real code path in this process on a `Lumi` from this package's `make_lumi` fixture (the app
and devshop served by threads, queued RQ jobs run here by `Lumi.run_jobs`; see checks.py and conftest.py), or on a
stand-in it starts itself, and asserts the promise with literal values, raising AssertionError when it is broken.
test_mutations_privacy.py runs every check on the code as it is (it passes) and under in-process mutations that
break its promise (it fails).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
import requests
from rq.job import Job

from core import keys
from core.crypto import SecretBox
from devshop.orders import DEMO_CUSTOMER_ID, DEMO_ORDERS, ORDER_ID_BASE, OTHER_CUSTOMER_ID
from tests.conftest import DEMO_SHOP, Stack
from tests.promises.checks import Lumi

SHOP = DEMO_SHOP
CUSTOMER_HEADER = "X-Devshop-Customer-Id"  # devshop's proxy signs it in as logged_in_customer_id
SECRET_HEADER = "X-Lumi-Session-Secret"
ONE_HOUR = 3600  # seconds: the longest the escalation reply-to may be kept
FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_=-]{40,}")
DIGEST = re.compile(r"^[0-9a-f]{32}$")  # a keyed subject digest as the compliance jobs receive it


def order_id(name: str) -> int:
    """devshop's numeric id (legacyResourceId) of a demo order: #1001-#1003 belong to the demo customer."""
    return ORDER_ID_BASE + DEMO_ORDERS[name].number


# --- reading everything Lumi keeps in Redis -------------------------------------------------------------------


def _decoded_job_data(raw: bytes) -> bytes:
    """An RQ payload (a zlib-compressed pickle, or a plain pickle) as the repr of what it holds."""
    for load in (lambda b: pickle.loads(zlib.decompress(b)), pickle.loads):
        try:
            return repr(load(raw)).encode()
        except Exception:  # noqa: BLE001, S110 - not this encoding: try the next, else keep the bytes as they are
            pass
    return raw


def redis_dump(client: redis.Redis) -> dict[str, bytes]:
    """Every key → its name and every value under it (string, hash fields and values, list, set, zset, stream), with
    each value also decoded as an RQ payload where it is one (job `data`, `exc_info`, results)."""
    kwargs = client.connection_pool.connection_kwargs
    raw: Any = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0))  # bytes, not decoded
    out: dict[str, bytes] = {}
    try:
        for key in raw.scan_iter(count=1000):
            kind = raw.type(key).decode()
            parts: list[bytes] = [key]
            if kind == "string":
                parts.append(raw.get(key) or b"")
            elif kind == "hash":
                for field, value in raw.hgetall(key).items():
                    parts += [field, value]
            elif kind == "list":
                parts += raw.lrange(key, 0, -1)
            elif kind == "set":
                parts += list(raw.smembers(key))
            elif kind == "zset":
                parts += raw.zrange(key, 0, -1)
            elif kind == "stream":
                for _, fields in raw.xrange(key):
                    for field, value in fields.items():
                        parts += [field, value]
            parts += [_decoded_job_data(p) for p in parts[1:] if len(p) > 8]
            out[key.decode(errors="replace")] = b"\n".join(parts)
    finally:
        raw.close()
    return out


def holders(dump: dict[str, bytes], secret: str, box: SecretBox) -> list[str]:
    """The keys whose name or values hold `secret`, in clear (any case) or sealed: a Fernet token that the app's
    keys decrypt to a text holding it."""
    needle = secret.lower().encode()
    found = []
    for key, value in dump.items():
        if needle in value.lower():
            found.append(key)
            continue
        for token in FERNET_TOKEN.findall(value):
            try:
                plain = box.decrypt(token.decode())
            except Exception:  # noqa: BLE001 - not a token of ours
                continue
            if secret.lower() in plain.lower():
                found.append(key)
                break
    return sorted(found)


def session_keys(shop: str, session_id: str) -> list[str]:
    return [keys.chat_session(shop, session_id), keys.chat_transcript(shop, session_id)]


# --- driving the storefront and the jobs -------------------------------------------------------------------------


class Shopper:
    """A storefront visitor talking to the chat through devshop's app proxy (which signs every request)."""

    def __init__(self, stack: Stack, customer_id: int | None = None) -> None:
        self.stack = stack
        self.headers = {CUSTOMER_HEADER: str(customer_id)} if customer_id else {}
        self.http = requests.Session()
        self.id = self.secret = ""

    def _url(self, path: str) -> str:
        return self.stack.control.proxy_url(SHOP, f"chat/{path}")

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(self._url(path), json=body, headers={**self.headers, SECRET_HEADER: self.secret},
                              timeout=30)

    def start(self) -> Shopper:
        response = self.http.post(self._url("sessions"), json={}, headers=self.headers, timeout=30)
        assert response.status_code == 201, response.text
        created = response.json()
        self.id, self.secret = created["session"]["id"], created["session"]["secret"]
        return self

    def say(self, text: str) -> dict[str, Any]:
        response = self.post(f"sessions/{self.id}/messages", {"text": text})
        assert response.status_code == 200, response.text
        return response.json()["message"]

    def close(self) -> None:
        self.http.close()


def _queued(stack: Stack, func_name: str) -> list[Job]:
    from jobs.queues import queue

    found = queue(keys.QUEUE_DEFAULT, stack.services.queue_redis).get_jobs()
    return [job for job in found if job.func_name == func_name]


# --- 1. personal data typed in the chat is redacted before storage and before the model --------------------------

JANE_EMAIL = "jane.doe@example.com"
JANE_PHONE = "+1 415 555 0132"
JANE_CARD = "4111 1111 1111 1111"  # Luhn-valid test card
JANE_MESSAGE = (f"Hello, my name is Jane Doe. Email me at {JANE_EMAIL} or call {JANE_PHONE}. "
                f"My card is {JANE_CARD}.")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def check_chat_message_is_redacted_in_redis_and_for_the_model(lumi: Lumi, model: Any) -> None:
    """An email, a phone number, a card number and "my name is Jane Doe" typed in the chat are found in no Redis
    key or value (RQ payloads decoded) and in no request to the model; their placeholders are what is stored."""
    stack = lumi.stack
    model.control.script_text("Thanks, noted.")
    shopper = Shopper(stack).start()
    try:
        shopper.say(JANE_MESSAGE)
    finally:
        shopper.close()
    dump = redis_dump(stack.services.redis)
    sent = json.dumps(model.control.bodies(), ensure_ascii=False)
    assert "Hello, my name is" in sent, "the message never reached the model: nothing was checked"
    for where, text in [*((f"redis {key}", value.decode(errors="replace")) for key, value in dump.items()),
                        ("the model request", sent)]:
        assert JANE_EMAIL not in text.lower(), (where, "email")
        assert not re.search(r"(?<![\w-])(?:Jane|Doe)(?![\w-])", text), (where, "name")
        digits = _digits(text)
        assert _digits(JANE_PHONE) not in digits, (where, "phone")
        assert _digits(JANE_CARD) not in digits, (where, "card")
    transcript = stack.services.redis.lrange(keys.chat_transcript(SHOP, shopper.id), 0, -1)
    (stored,) = [json.loads(m)["text"] for m in transcript if json.loads(m)["role"] == "shopper"]
    assert stored == "Hello, my name is [name]. Email me at [email] or call [phone]. My card is [card].", stored


# --- 2. the escalation reply-to: only its own sealed key, <= 1 h, never in RQ job data ----------------------------

REPLY_TO = "jane.reply@example.com"
ESCALATION = "jobs.escalation.send_escalation"


def check_escalation_reply_to_is_only_in_its_sealed_key_for_at_most_an_hour(lumi: Lumi, mailbox: Any) -> None:
    """While the escalation job waits, the reply-to address is in exactly one key, `lumi:chat:<shop>:reply-to:*`,
    sealed (never in clear) and expiring within 3600 s; the queued job's data (decoded) holds neither the address
    nor its sealed form. The job puts it in the email's Reply-To, and then it is nowhere in Redis."""
    stack = lumi.stack
    shopper = Shopper(stack).start()
    try:
        response = shopper.post(f"sessions/{shopper.id}/escalate", {"email": REPLY_TO})
    finally:
        shopper.close()
    assert response.status_code == 202, response.text
    (job,) = _queued(stack, ESCALATION)
    dump = redis_dump(stack.services.redis)
    box = stack.services.box
    where = holders(dump, REPLY_TO, box)
    assert len(where) == 1, f"the reply-to is held by {where}"
    (key,) = where
    assert key.startswith(f"lumi:chat:{SHOP}:reply-to:"), f"the reply-to is in {key}, not in its own key"
    assert REPLY_TO.encode() not in dump[key].lower(), "kept in clear"
    assert 0 < stack.services.redis.ttl(key) <= ONE_HOUR, stack.services.redis.ttl(key)
    sealed = stack.services.redis.get(key)
    assert sealed and not [k for k, v in dump.items() if k != key and sealed.encode() in v], "sealed copy elsewhere"
    assert REPLY_TO not in repr((job.args, job.kwargs, job.description)).lower()

    lumi.run_jobs()
    (message,) = mailbox.wait_for(1, timeout=10)
    assert message["Reply-To"] == REPLY_TO  # used: the merchant can answer the shopper
    assert holders(redis_dump(stack.services.redis), REPLY_TO, box) == []


# --- 3. the email typed to verify an order is used and dropped -----------------------------------------------------

VERIFY_EMAIL = "shopper@example.com"  # devshop's demo customer, whose orders are #1001-#1003
WRONG_EMAIL = "not.the.buyer@example.com"


def check_verification_email_is_used_and_dropped(lumi: Lumi) -> None:
    """The email typed to verify an order proves the order (#1001 is verified with it, a wrong one is refused), and
    neither address is then anywhere in Redis, in clear or sealed."""
    stack = lumi.stack
    shopper = Shopper(stack).start()
    try:
        refused = shopper.post(f"sessions/{shopper.id}/verify", {"order_name": "#1002", "email": WRONG_EMAIL})
        verified = shopper.post(f"sessions/{shopper.id}/verify", {"order_name": "#1001", "email": VERIFY_EMAIL})
    finally:
        shopper.close()
    assert refused.status_code == 403, refused.text
    assert verified.status_code == 200 and verified.json()["verified"] is True, verified.text
    session = stack.services.chat.get(SHOP, shopper.id)
    assert session is not None and [o["name"] for o in session.orders] == ["#1001"]
    dump = redis_dump(stack.services.redis)
    for email in (VERIFY_EMAIL, WRONG_EMAIL):
        assert holders(dump, email, stack.services.box) == [], email


# --- 4. customers/redact finds logged-in chats through the subject index --------------------------------------------

REDACT = "jobs.compliance.customer_redact"


def _send_redact(stack: Stack, customer_id: int, orders: list[int]) -> None:
    payload = {"shop_id": 1, "shop_domain": SHOP, "orders_to_redact": orders,
               "customer": {"id": customer_id, "email": "sam.shopper@example.com", "phone": "+15555550199"}}
    assert stack.control.send_webhook(SHOP, "customers/redact", payload)["status"] == 200


def check_customer_redact_deletes_every_logged_in_chat_of_the_customer(lumi: Lumi) -> None:
    """customers/redact for the demo customer and their order #1003, run by the job: deletes the customer's
    logged-in chat that only said hello (found by the customer alone) and the one that looked #1003 up; an
    anonymous chat and another customer's chat stay."""
    stack = lumi.stack
    opened = Shopper(stack, DEMO_CUSTOMER_ID).start()  # logged in, never wrote: findable only by the customer
    asked = Shopper(stack, DEMO_CUSTOMER_ID).start()
    assert "#1003" in asked.say("Where is my order #1003?")["text"]
    stored = json.loads(stack.services.redis.hget(keys.chat_session(SHOP, asked.id), "orders") or "[]")
    assert f"gid://shopify/Order/{order_id('#1003')}" in {o["id"] for o in stored}
    anonymous = Shopper(stack).start()
    anonymous.say("Do you ship to Canada?")
    other = Shopper(stack, OTHER_CUSTOMER_ID).start()
    other.say("Where is my order #1004?")
    for shopper in (opened, asked, anonymous, other):
        shopper.close()

    _send_redact(stack, DEMO_CUSTOMER_ID, [order_id("#1003")])
    assert _queued(stack, REDACT), "customers/redact queued no job"
    lumi.run_jobs()
    client = stack.services.redis
    for gone in (opened, asked):
        assert not any(client.exists(k) for k in session_keys(SHOP, gone.id)), f"chat {gone.id} was not redacted"
        assert not [k for k, v in redis_dump(client).items() if gone.id.encode() in v], gone.id
    for kept in (anonymous, other):
        assert all(client.exists(k) for k in session_keys(SHOP, kept.id)), f"chat {kept.id} was deleted"


# --- 5. the subject index holds no raw customer or order id ---------------------------------------------------------


def check_subject_index_names_no_raw_customer_or_order_id(lumi: Lumi) -> None:
    """After a logged-in chat looked #1003 up and an anonymous one verified #1001, the compliance index exists,
    and no key name, nor the sessions' list of their index entries, holds the customer's or an order's id."""
    stack = lumi.stack
    asked = Shopper(stack, DEMO_CUSTOMER_ID).start()
    asked.say("Where is my order #1003?")
    verifier = Shopper(stack).start()
    response = verifier.post(f"sessions/{verifier.id}/verify", {"order_name": "#1001", "email": VERIFY_EMAIL})
    assert response.status_code == 200, response.text
    for shopper in (asked, verifier):
        shopper.close()
    client = stack.services.redis
    names = list(client.scan_iter(count=1000))
    assert [k for k in names if k.startswith(f"lumi:chat:{SHOP}:subject")], "no compliance index was written"
    subjects = " ".join(client.hget(keys.chat_session(SHOP, s.id), "subjects") or "" for s in (asked, verifier))
    raw_ids = [str(DEMO_CUSTOMER_ID), str(order_id("#1001")), str(order_id("#1003"))]
    for raw in raw_ids:
        assert not [k for k in names if raw in k], f"a key name holds the raw id {raw}"
        assert raw not in subjects, f"a session's index entries hold the raw id {raw}"


# --- 6. read-only Shopify access: mutations refused before any request ----------------------------------------------

WRITE_DOCUMENTS = (
    'mutation { productDelete(input: {id: "gid://shopify/Product/1"}) { deletedProductId } }',
    "query Fine { shop { name } }\nmutation Sneaky { shopUpdate { id } }",
    "subscription { orders { id } }",
)


class _Recorder(BaseHTTPRequestHandler):
    """Records every request body and answers like the Admin GraphQL API (a tiny successful query)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        answer = json.dumps({"data": {"shop": {"name": "Recorder"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass


@contextlib.contextmanager
def _recording_shopify() -> Iterator[tuple[str, list[bytes]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.bodies  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def check_admin_client_refuses_writes_before_any_request() -> None:
    """`AdminClient.execute` sends a query (the recorder sees it), but a mutation, a mutation after a query and a
    subscription are each refused with ValueError before anything reaches the server."""
    from shopify.admin import AdminClient
    from shopify.queries import SHOP_INFO

    with _recording_shopify() as (url, bodies), AdminClient(SHOP, "shpat_test", base_url=url, max_retries=0,
                                                            sleep=lambda s: None) as client:
        client.execute(SHOP_INFO)
        assert len(bodies) == 1, "the recorder saw no query: nothing would be seen"
        for document in WRITE_DOCUMENTS:
            outcome: BaseException | None = None
            try:
                client.execute(document)
            except Exception as err:  # noqa: BLE001 - which error it was is asserted below
                outcome = err
            assert len(bodies) == 1, f"sent to Shopify: {document!r}"
            assert isinstance(outcome, ValueError) and "read-only" in str(outcome), (document, outcome)


# --- 7. the edge access log: no client address, no query string -----------------------------------------------------

FORBIDDEN_LOG_VARIABLES = ("$remote_addr", "$binary_remote_addr", "$realip_remote_addr", "$http_x_forwarded_for",
                           "$proxy_add_x_forwarded_for", "$request_uri", "$args", "$query_string", "$is_args",
                           "$http_referer", "$arg_")


def check_edge_access_log_has_no_client_address_and_no_query_string(workdir: Path) -> None:
    """The nginx config rendered as devtools.edge renders it: every access_log writes the `edge` format (never
    nginx's default `combined`), and that format logs the method, the path and the status but no client address
    (`$remote_addr`, forwarded-for) and no query string (`$request`, `$request_uri`, `$args`, `$query_string`)."""
    from devtools.edge import EdgeServer

    config = EdgeServer(upstream="127.0.0.1:8000", port=8080).render(workdir)
    formats = re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", config)
    assert [name for name, _ in formats] == ["edge"], formats
    log_format = formats[0][1]
    for needed in ("$request_method", "$status"):
        assert needed in log_format, needed
    for variable in FORBIDDEN_LOG_VARIABLES:
        assert variable not in log_format, variable
    assert not re.search(r"\$request(?!_)", log_format), "$request: the request line with its query string"
    logs = [line.strip() for line in config.splitlines() if line.strip().startswith("access_log ")]
    assert logs, "no access_log directive"
    for line in logs:
        assert line == "access_log off;" or line.endswith(" edge;"), line


# --- 8. compliance job arguments carry only digests ---------------------------------------------------------------

CUSTOMER_EMAIL = "sam.private@example.com"
CUSTOMER_PHONE = "+15555550123"


def check_compliance_jobs_are_given_only_digests(lumi: Lumi) -> None:
    """customers/redact and customers/data_request, delivered with the customer's id, email and phone and their
    order ids, queue jobs whose arguments are the shop and keyed digests (plus the data request's id): no raw id,
    no email, no phone in the arguments or anywhere in the stored job."""
    stack = lumi.stack
    customer = {"id": DEMO_CUSTOMER_ID, "email": CUSTOMER_EMAIL, "phone": CUSTOMER_PHONE}
    orders = [order_id("#1001"), order_id("#1003")]
    for topic, payload in (
            ("customers/redact", {"shop_id": 1, "shop_domain": SHOP, "customer": customer,
                                  "orders_to_redact": orders}),
            ("customers/data_request", {"shop_id": 1, "shop_domain": SHOP, "customer": customer,
                                        "orders_requested": orders, "data_request": {"id": 9911}})):
        assert stack.control.send_webhook(SHOP, topic, payload)["status"] == 200, topic
    jobs = _queued(stack, REDACT) + _queued(stack, "jobs.compliance.customer_data_request")
    assert len(jobs) == 2, [job.func_name for job in jobs]
    dump = redis_dump(stack.services.redis)
    for job in jobs:
        assert job.args == (SHOP,), job.args
        assert set(job.kwargs) <= {"customer_digest", "order_digests", "request_id"}, job.kwargs
        assert DIGEST.match(job.kwargs["customer_digest"]), job.kwargs
        assert len(job.kwargs["order_digests"]) == 2 and all(DIGEST.match(d) for d in job.kwargs["order_digests"])
        stored = dump[f"rq:job:{job.id}"].decode(errors="replace") + repr((job.args, job.kwargs))
        for secret in (str(DEMO_CUSTOMER_ID), *map(str, orders), CUSTOMER_EMAIL, CUSTOMER_PHONE.lstrip("+")):
            assert secret not in stored, (job.func_name, secret)
