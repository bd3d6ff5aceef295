"""The chat's storefront half, over real HTTP: devshop's app proxy → Lumi, and the direct stream on APP_URL.

Sessions start through the signed proxy with the storefront's locale and country; their messages may then go
straight to `stream_url` (CORS for the shop's storefront origins only, the session secret as the only credential,
the customer taken from the session); a client_id makes a retry return the first answer instead of a second turn.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from chat.store import sessions_with_orders
from devshop.orders import DEMO_CUSTOMER_ID, OTHER_CUSTOMER_ID
from shopify import queries
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.functional.test_chat import UPS, chat_stack, mailbox  # noqa: F401 - fixtures

SECRET = "X-Lumi-Session-Secret"
CUSTOMER = "X-Devshop-Customer-Id"
STOREFRONT = f"https://{DEMO_SHOP}"


def start(stack: Stack, body: dict[str, Any] | None = None, customer: int | None = None,
          shop: str = DEMO_SHOP) -> dict[str, Any]:
    headers = {CUSTOMER: str(customer)} if customer else {}
    response = requests.post(stack.control.proxy_url(shop, "chat/sessions"), json=body or {}, headers=headers,
                             timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def proxy_say(stack: Stack, created: dict[str, Any], text: str, customer: int | None = None,
              **extra: Any) -> requests.Response:
    headers = {SECRET: created["session"]["secret"], **({CUSTOMER: str(customer)} if customer else {})}
    return requests.post(stack.control.proxy_url(DEMO_SHOP, f"chat/sessions/{created['session']['id']}/messages"),
                         json={"text": text, **extra}, headers=headers, timeout=30)


def direct(url: str, created: dict[str, Any], body: dict[str, Any], origin: str | None = STOREFRONT,
           secret: str | None = None, stream: bool = False, **kwargs: Any) -> requests.Response:
    headers = {SECRET: created["session"]["secret"] if secret is None else secret}
    if origin:
        headers["Origin"] = origin
    if stream:
        headers["Accept"] = "text/event-stream"
    return requests.post(url, json=body, headers=headers, timeout=30, **kwargs)


def preflight(url: str, origin: str) -> requests.Response:
    return requests.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type,x-lumi-session-secret"},
                            timeout=30)


def events(response: requests.Response) -> list[tuple[str, Any]]:
    found = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line.startswith(("event", "data")))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def transcript(stack: Stack, created: dict[str, Any], customer: int | None = None) -> requests.Response:
    headers = {SECRET: created["session"]["secret"], **({CUSTOMER: str(customer)} if customer else {})}
    return requests.get(stack.control.proxy_url(DEMO_SHOP, f"chat/sessions/{created['session']['id']}"),
                        headers=headers, timeout=30)


def test_a_session_speaks_the_storefronts_language_and_names_its_stream(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    french = start(stack, {"locale": "fr-CA", "country": "ca"})
    sid = french["session"]["id"]
    assert french["language"] == "fr" and french["greeting"].startswith("Bonjour")
    assert french["stream_url"] == f"{stack.url}/chat/{DEMO_SHOP}/sessions/{sid}/messages"
    reply = proxy_say(stack, french, "ok ???").json()["message"]  # nothing in the text says which language
    assert reply["language"] == "fr"
    assert start(stack, {"locale": "pt-BR"})["language"] == "en"  # a language the chat does not speak
    assert stack.api("PATCH", "/api/settings", json={"language": "de", "chat_direct_stream": False}).status_code == 200
    german = start(stack)
    assert german["language"] == "de" and german["stream_url"] is None
    bad = requests.post(stack.control.proxy_url(DEMO_SHOP, "chat/sessions"), json={"country": "France"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["param"] == "country"


def test_the_direct_stream_answers_only_the_sessions_secret_from_the_shops_storefronts(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    stack.install(OTHER_SHOP)
    created = start(stack)
    url = created["stream_url"]
    # CORS: the storefront's origins, nobody else.
    allowed = preflight(url, STOREFRONT)
    assert allowed.status_code == 204 and allowed.headers["Access-Control-Allow-Origin"] == STOREFRONT
    assert SECRET in allowed.headers["Access-Control-Allow-Headers"]
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"] and "Origin" in allowed.headers["Vary"]
    with stack.services.tokens.admin_client(DEMO_SHOP) as admin:
        primary = admin.execute(queries.SHOP_INFO)["shop"]["primaryDomain"]["url"].rstrip("/")
    assert preflight(url, primary).headers.get("Access-Control-Allow-Origin") == primary
    denied = preflight(url, "https://evil.example")
    assert denied.status_code == 403 and "Access-Control-Allow-Origin" not in denied.headers
    refused = direct(url, created, {"text": "hello"}, origin="https://evil.example")
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    # The secret is the credential; a session exists only under its own shop.
    assert direct(url, created, {"text": "hello"}, secret="wrong").status_code == 404
    assert direct(url, created, {"text": "hello"}, secret="").status_code == 404
    other_url = url.replace(f"/chat/{DEMO_SHOP}/", f"/chat/{OTHER_SHOP}/")
    assert direct(other_url, created, {"text": "hello"}, origin=f"https://{OTHER_SHOP}").status_code == 404
    # JSON, with the allowed origin echoed; then streamed.
    ok = direct(url, created, {"text": "hello"})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == STOREFRONT
    assert ok.json()["message"]["intent"] == "greeting"
    streamed = direct(url, created, {"text": "where is my order?"}, stream=True)
    assert streamed.status_code == 200 and streamed.text.startswith(": lumi")
    kinds = [kind for kind, _ in events(streamed)]
    assert kinds[0] == "delta" and kinds[-1] == "final" and kinds.count("final") == 1
    assert any(p["type"] == "verify_order" for p in events(streamed)[-1][1]["message"]["parts"])
    # Limits are the proxy route's.
    long = direct(url, created, {"text": "x" * 2001})
    assert long.status_code == 400 and long.json()["error"]["code"] == "text_too_long"
    assert long.headers["Access-Control-Allow-Origin"] == STOREFRONT  # errors are readable by the widget too
    # The merchant turns the direct stream off: the proxy route remains.
    assert stack.api("PATCH", "/api/settings", json={"chat_direct_stream": False}).status_code == 200
    assert direct(url, created, {"text": "hello"}).status_code == 404
    assert preflight(url, STOREFRONT).status_code == 404
    assert proxy_say(stack, created, "hello").status_code == 200


def test_the_direct_stream_takes_the_customer_from_the_session_never_from_the_request(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    logged_in = start(stack, customer=DEMO_CUSTOMER_ID)
    assert logged_in["logged_in"] is True
    answer = direct(logged_in["stream_url"], logged_in, {"text": "Where is my order #1001?"})
    assert UPS in answer.json()["message"]["text"]
    anonymous = start(stack)
    forged = direct(anonymous["stream_url"], anonymous, {"text": "Where is my order #1001?",
                                                         "logged_in_customer_id": str(DEMO_CUSTOMER_ID)},
                    params={"logged_in_customer_id": str(DEMO_CUSTOMER_ID)})
    body = forged.json()["message"]
    assert UPS not in json.dumps(body) and any(p["type"] == "verify_order" for p in body["parts"])
    # Through the proxy, another customer (or none) cannot continue a logged-in customer's session.
    stranger = proxy_say(stack, logged_in, "Where is my order #1001?", customer=OTHER_CUSTOMER_ID)
    assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "customer_mismatch"
    assert transcript(stack, logged_in).status_code == 403
    assert transcript(stack, logged_in, customer=DEMO_CUSTOMER_ID).status_code == 200


def test_a_retried_message_with_the_same_client_id_is_answered_once(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    created = start(stack, customer=DEMO_CUSTOMER_ID)
    first = proxy_say(stack, created, "Where is my order #1001?", customer=DEMO_CUSTOMER_ID, client_id="m-1")
    again = proxy_say(stack, created, "Where is my order #1001?", customer=DEMO_CUSTOMER_ID, client_id="m-1")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    replayed = direct(created["stream_url"], created, {"text": "Where is my order #1001?", "client_id": "m-1"},
                      stream=True)
    (delta, final) = events(replayed)
    assert delta == ("delta", {"text": first.json()["message"]["text"]}) and final == ("final", first.json())
    messages = transcript(stack, created, customer=DEMO_CUSTOMER_ID).json()["messages"]
    assert [m["role"] for m in messages].count("shopper") == 1
    # A new client_id is a new message; a bad one is refused.
    assert proxy_say(stack, created, "thanks", customer=DEMO_CUSTOMER_ID, client_id="m-2").status_code == 200
    bad = proxy_say(stack, created, "thanks", customer=DEMO_CUSTOMER_ID, client_id="no spaces allowed")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["param"] == "client_id"
    # While a client_id's turn is still running, its retry is told to wait.
    session = stack.services.chat.get(DEMO_SHOP, created["session"]["id"])
    assert stack.services.chat.claim_turn(session, "m-3") == ("claimed", None)
    busy = proxy_say(stack, created, "hello", customer=DEMO_CUSTOMER_ID, client_id="m-3")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "turn_in_progress"
    assert busy.headers["Retry-After"] == "1"


def test_escalating_after_a_resolved_answer_is_counted_as_escalated_only(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    created = start(stack, customer=DEMO_CUSTOMER_ID)
    proxy_say(stack, created, "Where is my order #1003?", customer=DEMO_CUSTOMER_ID)
    proxy_say(stack, created, "thanks, perfect!", customer=DEMO_CUSTOMER_ID)
    sid = created["session"]["id"]
    assert stack.api("GET", f"/api/chat/sessions/{sid}").json()["session"]["resolved"] is True
    escalated = requests.post(stack.control.proxy_url(DEMO_SHOP, f"chat/sessions/{sid}/escalate"), json={},
                              headers={SECRET: created["session"]["secret"], CUSTOMER: str(DEMO_CUSTOMER_ID)},
                              timeout=30)
    assert escalated.status_code == 202
    summary = stack.api("GET", f"/api/chat/sessions/{sid}").json()["session"]
    assert summary["escalated"] is True and summary["resolved"] is False
    stats = stack.api("GET", "/api/chat/analytics").json()["analytics"]
    assert stats["escalation_rate"] == 1.0 and stats["resolution_rate"] == 0.0
    # The logged-in lookups were recorded like verified orders: the shopper's view, the merchant's, redact's.
    assert "#1003" in transcript(stack, created, customer=DEMO_CUSTOMER_ID).json()["session"]["verified_orders"]
    assert "#1003" in summary["orders"]
    order_id = int(next(o["id"] for o in stack.services.chat.get(DEMO_SHOP, sid).orders
                        if o["name"] == "#1003").rsplit("/", 1)[1])
    assert sessions_with_orders(stack.services.chat, DEMO_SHOP, [order_id]) == [sid]
