"""Schemathesis fuzzes every operation of docs/openapi.json against a real Lumi over HTTP.

The promise: whatever a client sends to a documented route (inputs drawn from the schema, and inputs that break it),
Lumi never answers 5xx, and every answer stays inside the document: a documented status code, its documented content
type, a body that matches its schema. A bad input gets a clear JSON 4xx, never a 500.

The target is the real thing: Lumi's app served on a real port next to devshop (tests.conftest.Stack), on the private
Redis and Meilisearch, the demo shop installed through OAuth and its catalogue synced by a real worker process. The
worker is stopped before the fuzzing, so the deletion requests and rebuilds the fuzzer confirms stay queued and the
shared shop keeps its data for every operation.

Generated requests get past each door, so the fuzzing reaches the handlers. The `before_call` hook below runs on every
case just before it is sent: real chat session and request ids, a fresh App Bridge session token, the storefront
origin; the app proxy signature and the webhook HMAC are added on the wire (requests auth), over the exact query and
body that go out. A refusal at a door then fails the test: it would mean the fuzzer never reached the code.

- test_operation_never_fails_and_stays_inside_the_schema: every operation, positive and negative cases.
- test_refusals_at_each_door_are_documented: the same operations with each door closed again (no credentials, forged
  ones, a shop Lumi is not installed on): refused in 4xx, inside the document.
- test_public_pages_redirect_render_or_refuse_in_json: the public routes the document cannot describe (the install
  redirects, the admin's HTML pages), fuzzed with Hypothesis: a redirect, a page or a JSON error, never a 5xx.

Bounded for `make test`: LUMI_FUZZ_EXAMPLES (default 25) generated examples per operation, plus schemathesis's
boundary-value cases, derandomized so every run sends the same requests; `make fuzz` raises it. A schemathesis
failure's "Reproduce with" curl line lacks the signature added on the wire: rerun the test, it sends the same case.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import meilisearch
import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, HookContext
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.mailbox import MailboxServer
from devtools.services import MeiliServer, RedisServer
from feeds.index import ensure_indexes
from jobs import deletion
from shopify.session_tokens import encode_session_token
from shopify.signatures import PROXY_ADDED, sign_oauth, sign_proxy, sign_webhook
from tests.conftest import DEMO_SHOP, OTHER_SHOP, TEST_API_KEY, TEST_API_SECRET, Stack, WorkerProcess, make_env
from tests.helpers import synced, wait_until

SPEC_PATH = Path(__file__).parents[2] / "docs" / "openapi.json"
EXAMPLES = int(os.environ.get("LUMI_FUZZ_EXAMPLES", "25"))
SECRET_HEADER = "X-Lumi-Session-Secret"
ABSENT_SHOP = "absent-shop.myshopify.com"  # a valid shop domain Lumi was never installed on
WRONG_SECRET = "not-the-client-secret-but-just-as-long-0123"
FEED_ORDERS = {"on-sale": ("discount", "newest"), "collection": ("newest", "best-selling", "price-asc", "price-desc")}
CHAT_REQUESTS_PER_SESSION = 4  # below the five failed verifications a session may make in an hour

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# /readyz answers its documented 503 here: the stack runs no worker while it is fuzzed, so no heartbeat is fresh.
CHECKS_FOR = {"/readyz": [status_code_conformance, content_type_conformance, response_schema_conformance]}
# Error codes that mean a request was turned away before its handler: at a door the hook should have opened, or
# because a feature the prepared settings turn on was off.
DOOR_REFUSALS = {"missing_signature", "bad_signature", "stale_request", "invalid_shop", "invalid_customer",
                 "missing_session_token", "malformed_token", "unsupported_algorithm", "token_expired",
                 "token_not_yet_valid", "wrong_audience", "missing_claim", "issuer_mismatch", "bad_hmac",
                 "shop_not_installed", "shop_not_found", "session_not_found", "customer_mismatch",
                 "origin_not_allowed", "chat_disabled", "feeds_disabled", "direct_stream_disabled"}

SCHEMA = schemathesis.openapi.from_path(SPEC_PATH)
SCHEMA.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@dataclass
class Target:
    """The running stack and the real ids the fuzzer's requests refer to."""

    stack: Stack
    chat_session_id: str
    deletion_request_id: str
    data_request_id: str
    settings: dict[str, Any]  # the demo shop's settings before the fuzzing: chat, feeds and escalation email on
    _chat: tuple[str, str] = ("", "")
    _chat_uses: int = 0

    def storefront_chat(self) -> tuple[str, str]:
        """A chat session (id, secret) for the next storefront request; a new one every few requests, as shoppers
        come and go. One session for all would soon answer only 429 (five failed verifications an hour, 200
        messages); one per request would hit the 600 new chats a minute a shop may open."""
        if self._chat_uses % CHAT_REQUESTS_PER_SESSION == 0:
            self._chat = new_chat(self.stack)
        self._chat_uses += 1
        return self._chat


# --- the doors, opened (or closed again) on each request ----------------------------------------------------------


class ProxySignature(requests.auth.AuthBase):
    """Shopify's app proxy, on the wire: it adds shop, customer, path prefix and timestamp to the query the client
    sent, then signs every pair (a forged signature: the right one reversed)."""

    def __init__(self, shop: str, *, forged: bool = False) -> None:
        self.shop = shop
        self.forged = forged

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url or "")
        pairs = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True)
                 if k not in {*PROXY_ADDED, "signature"}]
        pairs += [("shop", self.shop), ("logged_in_customer_id", ""), ("path_prefix", "/apps/lumi"),
                  ("timestamp", str(int(time.time())))]
        signature = sign_proxy(pairs, TEST_API_SECRET)
        pairs.append(("signature", signature[::-1] if self.forged else signature))
        request.url = urlunsplit(url._replace(query=urlencode(pairs)))
        return request


class WebhookHmac(requests.auth.AuthBase):
    """Shopify's webhook signature, on the wire: the HMAC of the exact body sent (forged: of another body)."""

    def __init__(self, *, forged: bool = False) -> None:
        self.forged = forged

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        signed = b"another body" if self.forged else body if isinstance(body, bytes) else body.encode()
        request.headers["X-Shopify-Hmac-Sha256"] = sign_webhook(signed, TEST_API_SECRET)
        return request


def feed_query_in_context(feed_path: str, query: dict[str, Any]) -> None:
    """Fit a positive case's query to its feed: the schema allows every feed `q` and `order`, but only search takes
    `q` and only on-sale and collection sort; a drawn cursor is never one Lumi issued. So positive cases reach the
    feed itself with all their other filters, prices and locales, rather than stopping at the first cross-parameter
    400. Negative cases are sent as drawn."""
    feed = feed_path.partition("/")[0]
    if feed == "search":
        query["q"] = query.get("q") if str(query.get("q") or "").strip() else "shirt"
    else:
        query.pop("q", None)
    if query.get("order") not in FEED_ORDERS.get(feed, ()):
        query.pop("order", None)
    query.pop("cursor", None)  # `page` pages instead
    low, high = query.get("min_price"), query.get("max_price")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        query["min_price"], query["max_price"] = high, low


def open_doors(case: Case, target: Target, kwargs: dict[str, Any]) -> None:
    """What a real client of each door sends along with the generated request."""
    path = case.operation.path
    params = dict(case.path_parameters or {})
    positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if "feed" in params and positive:
        feed_query_in_context(params["feed"], case.query)
    if path.startswith("/api/"):
        case.headers["Authorization"] = f"Bearer {target.stack.session_token(DEMO_SHOP)}"
        if "session_id" in params:
            params["session_id"] = target.chat_session_id
        if "request_id" in params and positive:  # negative cases keep theirs: a documented 404 not_found
            params["request_id"] = target.deletion_request_id if "deletion" in path else target.data_request_id
    elif path.startswith("/chat/"):
        params["shop"] = DEMO_SHOP
        params["session_id"], case.headers[SECRET_HEADER] = target.storefront_chat()
        case.headers["Origin"] = f"https://{DEMO_SHOP}"  # the storefront's own origin (CORS)
        case.headers["Accept"] = "text/event-stream"  # the widget streams on this route
    elif path.startswith("/proxy/"):
        if "session_id" in params:
            params["session_id"], case.headers[SECRET_HEADER] = target.storefront_chat()
        if path.startswith("/proxy/feeds/") and "shop" in case.query:
            case.query["shop"] = DEMO_SHOP  # feeds are public catalogue data: the unsigned `?shop=` form
        else:
            kwargs["auth"] = ProxySignature(DEMO_SHOP)
    elif path == "/webhooks":
        # The uninstall topic goes to the second shop: the demo shop stays installed for every other operation.
        topic = case.headers.get("X-Shopify-Topic")
        case.headers["X-Shopify-Shop-Domain"] = OTHER_SHOP if topic == "app/uninstalled" else DEMO_SHOP
        case.headers["X-Shopify-Webhook-Id"] = str(uuid.uuid4())  # a new delivery each time, never a duplicate
        kwargs["auth"] = WebhookHmac()
    case.path_parameters = params


def close_door(case: Case, target: Target, kwargs: dict[str, Any], door: str) -> None:
    """Undo the credentials open_doors gave: drop them, forge them, or make them name ABSENT_SHOP."""
    path = case.operation.path
    if path.startswith("/api/"):
        token = {"no credentials": None,
                 "forged credentials": encode_session_token(DEMO_SHOP, api_key=TEST_API_KEY, secret=WRONG_SECRET,
                                                            now=int(time.time())),
                 "another shop": target.stack.session_token(ABSENT_SHOP)}[door]
        case.headers.pop("Authorization", None)
        if token is not None:
            case.headers["Authorization"] = f"Bearer {token}"
    elif path.startswith("/proxy/"):
        (case.query or {}).pop("shop", None)  # no unsigned `?shop=` either
        kwargs["auth"] = {"no credentials": None, "forged credentials": ProxySignature(DEMO_SHOP, forged=True),
                          "another shop": ProxySignature(ABSENT_SHOP)}[door]
    elif path.startswith("/chat/"):
        if door == "another shop":
            case.path_parameters["shop"] = ABSENT_SHOP
        elif door == "forged credentials":
            case.headers[SECRET_HEADER] = WRONG_SECRET
        else:
            case.headers.pop(SECRET_HEADER, None)
    elif path == "/webhooks":
        if door == "another shop":
            case.headers["X-Shopify-Shop-Domain"] = ABSENT_SHOP
        else:
            kwargs["auth"] = WebhookHmac(forged=True) if door == "forged credentials" else None


@schemathesis.hook("before_call")
def lumi_doors(context: HookContext, case: Case, kwargs: dict[str, Any]) -> None:
    """Runs on every case right before it is sent, after generation (schemathesis builds its boundary-value cases at
    collection time, before the stack exists) and before serialization: a signature covers the final query or body
    with a fresh timestamp, and a header restored here reaches the server even when the generated case left it out.
    Inert for any call that does not pass `lumi_target`."""
    target = kwargs.pop("lumi_target", None)
    door = kwargs.pop("lumi_door", None)
    if target is None:
        return
    if case.headers is None:
        case.headers = {}
    if case.query is None:
        case.query = {}
    open_doors(case, target, kwargs)
    if door is not None:
        close_door(case, target, kwargs, door)


def new_chat(stack: Stack) -> tuple[str, str]:
    """A chat session opened through the signed app proxy: its id and secret."""
    created = stack.http.post(f"{stack.url}/proxy/chat/sessions", json={}, auth=ProxySignature(DEMO_SHOP),
                              timeout=30)
    assert created.status_code == 201, created.text
    session = created.json()["session"]
    return session["id"], session["secret"]


# --- the stack, shared by every operation of this module ------------------------------------------------------------


@pytest.fixture(scope="module")
def target(redis_server: RedisServer, meili_server: MeiliServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    wipe = redis.Redis.from_url(redis_server.url)
    wipe.flushdb()
    meili = meilisearch.Client(meili_server.url, meili_server.master_key)
    for index in meili.get_raw_indexes({"limit": 1000})["results"]:
        meili.wait_for_task(meili.delete_index(index["uid"]).task_uid)
    ensure_indexes(meili)
    with MailboxServer() as mailbox:
        env = make_env(redis_server.url, meili_server, SMTP_URL=mailbox.url)
        stack = Stack(env, {"SHOPS": {DEMO_SHOP: {"products": 12, "seed": 1, "orders": 5},
                                      OTHER_SHOP: {"products": 4, "seed": 2}}})
        try:
            worker = WorkerProcess(stack.env, tmp_path_factory.mktemp("fuzz") / "worker.log")
            try:
                stack.install()
                stack.install(OTHER_SHOP)
                wait_until(synced(stack), what="the demo shop's first sync")
            finally:
                worker.stop()  # from here on, queued jobs stay queued: nothing the fuzzer confirms is carried out
            # The conftest collects garbage after every test (to pin a leaked socket on the test that leaked it); with
            # schemathesis's schema and cases in memory a full collection takes most of a second. Freezing what exists
            # now leaves those collections only the objects the fuzzing itself creates.
            gc.collect()
            gc.freeze()
            yield _prepare(stack)
        finally:
            gc.unfreeze()
            stack.stop()
            wipe.flushdb()
            wipe.close()


def _prepare(stack: Stack) -> Target:
    assert stack.api("PATCH", "/api/settings", json={"escalation_email": "help@lumi-demo.example"}).ok
    session_id, _ = new_chat(stack)  # for the admin's transcript view
    queued = stack.api("POST", "/api/deletion-requests", json={"categories": ["operational"], "confirm": True})
    assert queued.status_code == 202, queued.text
    request_id = queued.json()["deletion_request"]["id"]
    deletion.release_lock(stack.services.redis, DEMO_SHOP, request_id)  # the fuzzer's own confirmations queue too
    stack.services.chat.save_data_request(DEMO_SHOP, "4242", {
        "request_id": "4242", "received_at": "2026-11-01T10:00:00Z", "sessions": 0, "delivered": "no_address",
        "subject": "[Lumi] Customer data request 4242: no chat sessions", "text": "Chat sessions found: none.\n"})
    settings = stack.api("GET", "/api/settings").json()["settings"]
    return Target(stack, session_id, request_id, "4242", settings)


@pytest.fixture(autouse=True)
def _settings_as_prepared(target: Target) -> None:
    """Each operation starts from the prepared settings: fuzzing PATCH /api/settings turns chat and feeds off and
    clears the escalation address, which would leave later operations answering 404 chat_disabled and the like."""
    assert target.stack.api("PATCH", "/api/settings", json=target.settings).status_code == 200


# --- the fuzzing ---------------------------------------------------------------------------------------------------


def _error_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _send(case: Case, target: Target, door: str | None = None) -> Any:
    return case.call_and_validate(base_url=target.stack.url, session=target.stack.http, timeout=30,
                                  checks=CHECKS_FOR.get(case.operation.path, CHECKS), lumi_target=target,
                                  lumi_door=door)


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_operation_never_fails_and_stays_inside_the_schema(case: Case, target: Target) -> None:
    response = _send(case, target)
    code = _error_code(response)
    assert code not in DOOR_REFUSALS, (
        f"{case.method} {response.request.url} was refused at the door ({response.status_code} {code}): "
        "the fuzzing did not reach the handler")


DOORS = ("no credentials", "forged credentials", "another shop")
UNGUARDED = {"/healthz", "/readyz"}


@SCHEMA.parametrize()
@settings(max_examples=2, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_refusals_at_each_door_are_documented(case: Case, target: Target) -> None:
    for door in DOORS:
        response = _send(case.derive(), target, door)
        # A CORS preflight carries no credentials by design; the health routes have no door.
        if door != "another shop" and case.method != "OPTIONS" and case.operation.path not in UNGUARDED:
            assert 400 <= response.status_code < 500, (door, case.method, response.request.url,
                                                       response.status_code, response.text[:300])


# --- public routes outside the document: install redirects and the admin pages ------------------------------------
# docs/openapi.json describes JSON APIs (tests/test_routes_contract.py wants a 2xx for each operation); the install
# door only redirects and /app serves HTML. They take query strings from anyone, so they are fuzzed here: a redirect
# with a Location, an HTML page, or a JSON error; never a 5xx.

TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
SHOPS = st.one_of(st.sampled_from([DEMO_SHOP, OTHER_SHOP, DEMO_SHOP.upper(), f"https://{DEMO_SHOP}", ""]), TEXT,
                  st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\.myshopify\.com\Z"))


def _host(shop: str) -> str:
    return base64.b64encode(f"{shop}/admin".encode()).decode().rstrip("=")


CALLBACK_PARTS = ("shop", "state", "timestamp", "host", "hmac", "a missing parameter")


@st.composite
def callback_queries(draw: st.DrawFn, target: Target) -> list[tuple[str, str]]:
    """Shopify's OAuth redirect with at most two parts broken (the code is always junk: only Shopify can issue one),
    so the fuzzing gets past the signature to the timestamp, host, state, code and token exchange checks."""
    broken = draw(st.sets(st.sampled_from(CALLBACK_PARTS), max_size=2))
    shop = draw(SHOPS) if "shop" in broken else DEMO_SHOP
    if "state" in broken:
        state = draw(TEXT)
    else:  # a real one, as a merchant's install started it
        started = target.stack.http.get(f"{target.stack.url}/auth/install", params={"shop": DEMO_SHOP},
                                        allow_redirects=False, timeout=30)
        state = dict(parse_qsl(urlsplit(started.headers["Location"]).query))["state"]
    pairs = [("shop", shop), ("state", state), ("code", draw(TEXT)),
             ("timestamp", draw(TEXT) if "timestamp" in broken else str(int(time.time()))),
             ("host", draw(TEXT) if "host" in broken else _host(shop))]
    if "a missing parameter" in broken:
        del pairs[draw(st.integers(0, len(pairs) - 1))]
    return [*pairs, ("hmac", draw(TEXT) if "hmac" in broken else sign_oauth(pairs, TEST_API_SECRET))]


@st.composite
def app_queries(draw: st.DrawFn, target: Target) -> list[tuple[str, str]]:
    """How the admin opens the app page: a launch session token (valid, expired, forged or junk), or a bare shop."""
    now = int(time.time())
    token = draw(st.one_of(
        st.just(target.stack.session_token(DEMO_SHOP)),
        st.just(encode_session_token(DEMO_SHOP, api_key=TEST_API_KEY, secret=TEST_API_SECRET, now=now - 3600)),
        st.just(encode_session_token(DEMO_SHOP, api_key=TEST_API_KEY, secret=WRONG_SECRET, now=now)),
        TEXT, st.none()))
    pairs = [("shop", draw(SHOPS)), ("host", draw(st.one_of(st.just(_host(DEMO_SHOP)), TEXT)))]
    return [*pairs, ("id_token", token)] if token is not None else pairs


PUBLIC_PAGES = {"/auth/install": None, "/auth/callback": callback_queries, "/app": app_queries,
                "/app/feeds": app_queries, "/app/chat": app_queries, "/app/analytics": app_queries,
                "/app/privacy": app_queries}


@pytest.mark.parametrize("path", sorted(PUBLIC_PAGES))
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data(), in_frame=st.booleans())
def test_public_pages_redirect_render_or_refuse_in_json(path: str, data: st.DataObject, in_frame: bool,
                                                        target: Target) -> None:
    queries = PUBLIC_PAGES[path]
    query = data.draw(queries(target) if queries else st.lists(st.tuples(st.just("shop"), SHOPS), max_size=2))
    headers = {"Sec-Fetch-Dest": "iframe"} if in_frame else {}
    response = target.stack.http.get(f"{target.stack.url}{path}", params=query, headers=headers,
                                     allow_redirects=False, timeout=30)
    where = (path, query, response.status_code, response.text[:300])
    assert response.status_code < 500, where
    content_type = response.headers.get("Content-Type", "")
    if response.is_redirect:
        assert response.headers.get("Location"), where
    elif response.status_code < 300:
        assert content_type == "text/html; charset=utf-8", where
    else:
        assert content_type == "application/json", where
        assert set(response.json()["error"]) >= {"code", "message"}, where
