"""Every route keeps two promises, discovered from the app's url_map so a new route is covered the day it is added:

1. docs/openapi.json documents every `/api/*` and `/proxy/*` route and method, and nothing that does not exist;
   each documented success response names the content type the route's kind answers with.
2. Each route answers with the content type of its kind, exercised with a real, authenticated request over HTTP:
   app pages HTML, stylesheets CSS, scripts JavaScript, `.csv` CSV, `.svg` SVG, chat replies asked for as
   Server-Sent Events SSE, everything else JSON (errors included).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import meilisearch
import pytest
import requests
from flask import Flask
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from werkzeug.routing import AnyConverter, Rule

from devtools.mailbox import MailboxServer
from feeds.index import ensure_indexes
from shopify.signatures import sign_proxy, sign_webhook
from tests.conftest import DEMO_SHOP, TEST_API_SECRET, Stack

SPEC = json.loads((Path(__file__).parents[1] / "docs" / "openapi.json").read_text())
DOCUMENTED_PREFIXES = ("/api/", "/proxy/")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}
NOT_EXERCISED = {"/static/<path:filename>"}  # Flask's default static route: Lumi serves no files from it

HTML = "text/html; charset=utf-8"
JSON = "application/json"
CSV = "text/csv; charset=utf-8"
SVG = "image/svg+xml; charset=utf-8"
SSE = "text/event-stream; charset=utf-8"
CSS = "text/css; charset=utf-8"
JS = "text/javascript; charset=utf-8"


def shape(path: str) -> str:
    """A path with its parameters blanked: `/proxy/feeds/<path:feed_path>` and `/proxy/feeds/{feed}` agree."""
    return re.sub(r"\{[^}]+\}", "{}", re.sub(r"<[^<>]+>", "{}", path))


def kind(rule: str, url: str, accept: str = "") -> str:
    """The content type a route of this kind answers with (for the concrete `url` built from `rule`)."""
    if rule.startswith("/app/assets/"):
        return CSS if url.split("?")[0].endswith(".css") else JS
    if rule == "/app" or rule.startswith("/app/"):
        return HTML
    if rule.endswith(".csv"):
        return CSV
    if rule.endswith(".svg"):
        return SVG
    if rule.endswith("/messages") and "text/event-stream" in accept:
        return SSE
    return JSON


def media(content_type: str) -> str:
    return content_type.split(";")[0].strip()


def app_routes(app: Flask) -> list[tuple[Rule, str]]:
    return sorted(((rule, method) for rule in app.url_map.iter_rules() if rule.rule not in NOT_EXERCISED
                   for method in (rule.methods or set()) - IGNORED_METHODS), key=lambda rm: (rm[0].rule, rm[1]))


# --- 1. the OpenAPI document and the url_map agree -------------------------------------------------------------


def test_openapi_documents_every_api_and_proxy_route_and_nothing_else(app: Flask) -> None:
    served = {(shape(rule.rule), method.lower()) for rule, method in app_routes(app)
              if rule.rule.startswith(DOCUMENTED_PREFIXES)}
    documented = {(shape(path), method) for path, operations in SPEC["paths"].items()
                  for method in operations if method in HTTP_METHODS and path.startswith(DOCUMENTED_PREFIXES)}
    assert served, "no /api or /proxy routes found: the walk would prove nothing"
    assert sorted(served - documented) == [], "routes missing from docs/openapi.json"
    assert sorted(documented - served) == [], "docs/openapi.json documents routes the app does not serve"
    # Every documented path, whatever its prefix, is served with its methods (OPTIONS: Flask answers it).
    all_served = {(shape(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
                  for method in (rule.methods or set())}
    for path, operations in SPEC["paths"].items():
        for method in operations:
            if method in HTTP_METHODS | {"options"}:
                assert (shape(path), method) in all_served, f"{method.upper()} {path} is documented, not served"


def test_openapi_names_each_routes_content_type_and_admin_auth(app: Flask) -> None:
    by_shape = {shape(rule.rule): rule.rule for rule, _ in app_routes(app)}
    for path, operations in SPEC["paths"].items():
        rule = by_shape[shape(path)]
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            assert successes, f"{where} documents no success response"
            for response in successes.values():
                types = set(response.get("content", {}))
                accept = "text/event-stream" if SSE.split(";")[0] in types else ""
                assert media(kind(rule, path, accept)) in types, (where, types)
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert set(response.get("content", {})) == {JSON}, f"{where} {code}: errors are JSON"
            if path.startswith("/api/"):
                assert operation.get("security") == [{"sessionToken": []}], f"{where} must need a session token"


# --- 2. every route answers with its kind's content type -------------------------------------------------------


@dataclass
class Call:
    method: str
    url: str
    expected: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    statuses: tuple[int, ...] = (200, 201, 202)
    schema: str | None = None  # the OpenAPI path whose success response the JSON body must match


@pytest.fixture
def mailbox() -> Iterator[MailboxServer]:
    with MailboxServer() as box:
        yield box


@pytest.fixture
def installed(env: dict[str, str], mailbox: MailboxServer, meili_client: meilisearch.Client) -> Iterator[Stack]:
    ensure_indexes(meili_client)
    stack = Stack({**env, "SMTP_URL": mailbox.url}, {"SHOPS": {DEMO_SHOP: {"products": 10, "seed": 1}}})
    try:
        stack.install()
        assert stack.api("PATCH", "/api/settings", json={"escalation_email": "help@lumi-demo.example"}).ok
        yield stack
    finally:
        stack.stop()


def signed(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An app proxy query as Shopify signs it."""
    pairs = [("shop", DEMO_SHOP), ("path_prefix", "/apps/lumi"), ("timestamp", str(int(time.time()))),
             ("logged_in_customer_id", ""), *(extra or {}).items()]
    return {**dict(pairs), "signature": sign_proxy(pairs, TEST_API_SECRET)}


def new_session(stack: Stack) -> dict[str, Any]:
    response = requests.post(f"{stack.url}/proxy/chat/sessions", params=signed(), json={}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["session"]


def webhook(stack: Stack) -> dict[str, Any]:
    body = json.dumps({"id": 1, "updated_at": "2026-11-01T10:00:00Z"}).encode()
    return {"data": body, "headers": {
        "Content-Type": "application/json", "X-Shopify-Topic": "products/update", "X-Shopify-Shop-Domain": DEMO_SHOP,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Hmac-Sha256": sign_webhook(body, TEST_API_SECRET)}}


def calls(stack: Stack, rule: Rule, method: str) -> list[Call]:
    """The real requests that exercise `rule`: one per value of an `any(...)` argument, and per answer format."""
    session = new_session(stack)  # a fresh one each time: escalating or messaging one changes it
    samples: dict[str, list[Any]] = {"session_id": [session["id"]], "shop": [DEMO_SHOP], "feed_path": ["new-arrivals"]}
    if rule.rule.startswith("/api/deletion-requests/"):  # one of the operational records (queued: no worker here)
        created = stack.api("POST", "/api/deletion-requests", json={"categories": ["operational"], "confirm": True})
        samples["request_id"] = [created.json()["deletion_request"]["id"]]
    if rule.rule.startswith("/api/data-requests/"):  # an answered customers/data_request, as the job stores it
        stack.services.chat.save_data_request(DEMO_SHOP, "4242", {
            "request_id": "4242", "received_at": "2026-11-01T10:00:00Z", "sessions": 0, "delivered": "no_address",
            "subject": "[Lumi] Customer data request 4242: no chat sessions", "text": "Chat sessions found: none.\n"})
        samples["request_id"] = ["4242"]
    choices = {}
    for name in sorted(rule.arguments - set(rule.defaults or {})):
        converter = rule._converters.get(name)  # noqa: SLF001 - the only way to read an any() rule's options
        choices[name] = sorted(converter.items) if isinstance(converter, AnyConverter) else samples[name]
    adapter = stack.app.url_map.bind("localhost")
    out = []
    for values in product(*choices.values()) if choices else [()]:
        path = adapter.build(rule.endpoint, {**(rule.defaults or {}), **dict(zip(choices, values, strict=True))},
                             method=method)
        url = f"{stack.url}{path}"
        secret = {"X-Lumi-Session-Secret": session["secret"]}
        if rule.rule.startswith("/api/"):
            bearer = {"Authorization": f"Bearer {stack.session_token()}"}
            body: dict[str, Any] = {"json": {"chat_enabled": True}} if method == "PATCH" else {}
            if rule.rule == "/api/deletion-requests":  # a preview: deletes nothing
                body = {"json": {"categories": ["products", "chat"]}}
            params = {"q": "a"} if rule.rule.endswith("/search") else {}
            # The install queued the first sync and no worker runs here: a rebuild is refused as already running.
            statuses = (202, 409) if rule.rule.endswith("/rebuild") else (200, 201, 202)
            out.append(Call(method, url, kind(rule.rule, path),
                            {"headers": bearer, "params": params, **body}, statuses=statuses, schema=rule.rule))
        elif rule.rule.startswith("/proxy/"):
            body = {"json": {"text": "Hello"} if rule.rule.endswith("/messages") else
                    {"order_name": "#1001", "email": "a@example.com"} if rule.rule.endswith("/verify") else {}}
            accepts = ["application/json", "text/event-stream"] if rule.rule.endswith("/messages") else [""]
            for accept in accepts:
                out.append(Call(method, url, kind(rule.rule, path, accept), {
                    "params": signed(), "headers": {**secret, "Accept": accept}, **(body if method == "POST" else {}),
                }, statuses=(200, 201, 202, 400, 401, 403) if rule.rule.endswith("/verify") else (200, 201, 202)))
        elif rule.rule.startswith("/chat/"):
            for accept in ("application/json", "text/event-stream"):
                out.append(Call(method, url, kind(rule.rule, path, accept), {
                    "json": {"text": "Hello"}, "headers": {**secret, "Accept": accept,
                                                           "Origin": f"https://{DEMO_SHOP}"}}))
        elif rule.rule == "/webhooks":
            out.append(Call(method, url, JSON, webhook(stack)))
        elif rule.rule == "/auth/install":
            out.append(Call(method, url, JSON, {"params": {"shop": DEMO_SHOP}, "allow_redirects": False},
                            statuses=(302,)))
        elif rule.rule == "/auth/callback":
            out.append(Call(method, url, JSON, {"params": {"shop": DEMO_SHOP}}, statuses=(400, 401, 403)))
        elif rule.rule == "/app" or rule.rule.startswith("/app/"):
            # Opened outside the admin (no id_token): still a page, never JSON.
            out.append(Call(method, url, kind(rule.rule, path), {"params": {"shop": DEMO_SHOP}}))
        else:  # health and anything new: a plain request
            out.append(Call(method, url, kind(rule.rule, path), statuses=(200, 503)))
    return out


def _validator(path: str, status: int, method: str) -> Draft202012Validator | None:
    documented = {shape(p): ops for p, ops in SPEC["paths"].items()}.get(shape(path), {}).get(method.lower())
    response = (documented or {}).get("responses", {}).get(str(status))
    schema = (response or {}).get("content", {}).get(JSON, {}).get("schema")
    if schema is None:
        return None
    registry = Registry().with_resource("urn:openapi", Resource.opaque(SPEC))
    resolved = json.loads(json.dumps(schema).replace('"#/components/', '"urn:openapi#/components/'))
    return Draft202012Validator(resolved, registry=registry)


def test_every_route_answers_with_the_content_type_of_its_kind(installed: Stack) -> None:
    stack = installed
    seen = set()
    for rule, method in app_routes(stack.app):
        for call in calls(stack, rule, method):
            response = stack.http.request(call.method, call.url, timeout=30, **call.kwargs)
            where = f"{call.method} {call.url.removeprefix(stack.url)} (expects {call.expected})"
            assert response.status_code in call.statuses, (where, response.status_code, response.text[:300])
            if response.status_code in (301, 302, 303, 307, 308):
                assert response.headers.get("Location"), where
            else:
                assert response.headers.get("Content-Type") == call.expected, (where, response.headers)
                seen.add(media(call.expected))
            if call.expected == HTML:
                assert response.headers.get("Cache-Control") == "no-store", where
                assert "frame-ancestors" in response.headers.get("Content-Security-Policy", ""), where
            if call.schema is not None and call.expected == JSON:
                validator = _validator(call.schema, response.status_code, call.method)
                assert validator is not None, f"{where}: no documented {response.status_code} JSON response"
                errors = sorted(validator.iter_errors(response.json()), key=str)
                assert errors == [], (where, [e.message for e in errors][:5])
    # The walk reached every kind the app serves today (a kind that vanished would be a silent gap).
    assert {media(t) for t in (HTML, JSON, CSV, SVG, SSE)} <= seen, seen
