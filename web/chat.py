"""Storefront chat API (`/proxy/chat/*`, through the app proxy: signature required).

A session is a random id plus a secret the widget keeps in memory or sessionStorage and sends back in
`X-Lumi-Session-Secret` (never a cookie: Shopify strips them, and shoppers are not tracked). Order
verification has its own endpoint so the email a shopper types never enters the transcript.

A session is created through the signed proxy only: its shop, language and logged-in customer (sealed in
the session) come from there. Its turns may then also reach Lumi directly (web.chat_direct), sharing
`run_turn` with the proxy's messages route. A message may carry a `client_id`: its retry returns the stored
reply instead of a second turn.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, request, stream_with_context

from chat import rules
from chat.context import order_lookup, shop_profile, turn_context
from chat.engine import ChatEngine, Reply
from chat.messages import supported_language
from chat.orders import normalize_order_name, order_digest
from chat.store import MAX_SESSION_ORDERS, Session, SessionGone
from jobs.escalation import enqueue_escalation
from shopify.errors import ShopifyError
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_proxy_request

log = logging.getLogger(__name__)

bp = Blueprint("chat", __name__, url_prefix="/proxy/chat")

SECRET_HEADER = "X-Lumi-Session-Secret"
KEEPALIVE_S = 4.0  # seconds of silence before an SSE comment (proxies cut idle reads, devshop's after 10 s)
MAX_TEXT = 2000  # characters per shopper message
MAX_MESSAGES = 200  # shopper messages per session
MAX_FAILURES_PER_SESSION = 5  # failed verifications per session per hour
MAX_FAILURES_PER_ORDER = 10  # failed verifications naming one order per hour, across sessions
MAX_NEW_SESSIONS_PER_MINUTE = 600  # per shop: far above real traffic, low enough that a bot cannot fill Redis
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COUNTRY = re.compile(r"^[A-Za-z]{2}$")


@bp.before_request
def signed() -> None:
    verify_proxy_request()


def _settings() -> dict[str, Any]:
    record = get_services().shops.get(g.shop)
    if record is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop.")
    if not record.settings.get("chat_enabled", True):
        raise APIError(404, "chat_disabled", "The merchant has turned the chat off.")
    g.record = record
    return record.settings


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and request.get_data():
        raise APIError(400, "invalid_json", "The request body must be a JSON object.")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise APIError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def _session(session_id: str) -> Session:
    try:
        return get_services().chat.authorized(g.shop, session_id, request.headers.get(SECRET_HEADER))
    except SessionGone:
        raise APIError(404, "session_not_found", "This chat session does not exist or has expired.") from None


def _proxy_customer(session: Session) -> str | None:
    """The signed request's customer; refused when the session was opened by another one (or by a logged-in
    customer who has since logged out): a shared computer must not show one shopper's orders to the next."""
    if session.sealed_customer and get_services().chat.customer(session) != g.logged_in_customer_id:
        raise APIError(403, "customer_mismatch", "This chat belongs to another customer. Please start a new chat.")
    return g.logged_in_customer_id


def _retention_seconds() -> int:
    services = get_services()
    override = services.settings.chat_retention_seconds
    return override or services.shops.plan(g.record).retention_seconds


@bp.post("/sessions")
def create_session() -> tuple[dict[str, Any], int]:
    settings = _settings()
    body = _body()
    locale, country = body.get("locale"), body.get("country")
    if locale is not None and (not isinstance(locale, str) or len(locale) > 35):
        raise APIError(400, "invalid_locale", "locale must be a language tag such as fr or fr-CA.",
                       details={"param": "locale"})
    if country is not None and (not isinstance(country, str) or not COUNTRY.match(country)):
        raise APIError(400, "invalid_country", "country must be a two-letter country code such as FR.",
                       details={"param": "country"})
    services = get_services()
    if services.chat.opened_this_minute(g.shop) > MAX_NEW_SESSIONS_PER_MINUTE:
        raise APIError(429, "too_many_sessions", "Too many chats are starting right now. Please try again shortly.",
                       headers={"Retry-After": str(60 - int(time.time()) % 60)})
    # The storefront's language (request.locale) when given: "fr-CA" → fr, one we do not speak → en.
    language = supported_language(locale if locale and locale.strip() else settings.get("language"))
    session, secret = services.chat.create(g.shop, _retention_seconds(), language,
                                           country=country.upper() if country else None,
                                           customer_id=g.logged_in_customer_id)
    name, _ = shop_profile(services, g.shop)
    greeting = rules.greeting(language, name, (settings.get("widget") or {}).get("greeting") or "")
    services.chat.append(session, {"role": "assistant", "text": greeting, "intent": "greeting",
                                   "parts": [], "at": _iso_now()})
    return {
        "session": {"id": session.id, "secret": secret, "expires_at": session.public()["expires_at"]},
        "greeting": greeting,
        "language": language,
        "widget": settings.get("widget") or {},
        "logged_in": g.logged_in_customer_id is not None,
        "stream_url": (f"{services.settings.app_url}/chat/{g.shop}/sessions/{session.id}/messages"
                       if settings.get("chat_direct_stream", True) else None),
    }, 201


@bp.get("/sessions/<session_id>")
def transcript(session_id: str) -> dict[str, Any]:
    _settings()
    session = _session(session_id)
    _proxy_customer(session)
    return {
        "session": {"id": session.id, "expires_at": session.public()["expires_at"],
                    "verified_orders": [o["name"] for o in session.orders], "escalated": session.escalated},
        "messages": get_services().chat.transcript(g.shop, session.id),
    }


@bp.post("/sessions/<session_id>/verify")
def verify(session_id: str) -> tuple[dict[str, Any], int] | dict[str, Any]:
    _settings()
    session = _session(session_id)
    body = _body()
    name = normalize_order_name(body.get("order_name"))
    email = body.get("email")
    if name is None:
        raise APIError(400, "invalid_order_name", "order_name must look like #1001.", details={"param": "order_name"})
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise APIError(400, "invalid_email", "email must be the address used for the order.",
                       details={"param": "email"})
    services = get_services()
    digest = order_digest(services.settings.shopify_api_secret, g.shop, name)
    by_session, by_order = services.chat.failures(session, digest)
    if by_session >= MAX_FAILURES_PER_SESSION or by_order >= MAX_FAILURES_PER_ORDER:
        wait = services.chat.failure_wait(session, digest)
        raise APIError(429, "too_many_attempts", "Too many verification attempts. Please try again later.",
                       headers={"Retry-After": str(wait)})
    lookup = order_lookup(services, g.shop)
    try:
        ref = lookup.verify(name, email)
    except ShopifyError:
        raise APIError(503, "orders_unavailable", "Orders cannot be checked right now. Please try again shortly.",
                       headers={"Retry-After": "30"}) from None
    finally:
        del email  # compared, never kept
    if ref is None:
        services.chat.record_failure(session, digest)
        raise APIError(403, "verification_failed", "We could not match that order name and email.")
    orders = [o for o in session.orders if o["id"] != ref.id] + [ref.as_dict()]
    services.chat.append(session, {"role": "system", "text": f"Order {ref.name} verified.", "at": _iso_now()},
                         set_fields={"orders": json.dumps(orders[-MAX_SESSION_ORDERS:])})
    return {"verified": True, "order": {"name": ref.name}}


@bp.post("/sessions/<session_id>/escalate")
def escalate(session_id: str) -> tuple[dict[str, Any], int]:
    """The shopper asks for a person, optionally leaving an email that goes only into that one email."""
    _settings()
    session = _session(session_id)
    body = _body()
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254
                              or any(c in email for c in "\r\n ,;<>")):
        raise APIError(400, "invalid_email", "email must be one email address.", details={"param": "email"})
    services = get_services()
    # The address is sealed under its own key (≤ 1 h, never past the session) and the job gets only a reference.
    enqueue_escalation(services, g.shop, session.id, reply_to=email, reason="escalation form",
                       session_expires_at=session.expires_at)
    # Escalating clears a resolution the session had ("thanks" before asking for a person): never both.
    if services.chat.escalate(session):
        services.chat.append(session, {"role": "system", "text": "Passed to the store's team.", "at": _iso_now()})
    return {"escalated": True}, 202


@bp.post("/sessions/<session_id>/messages")
def message(session_id: str) -> Any:
    settings = _settings()
    session = _session(session_id)
    return run_turn(settings, session, _proxy_customer(session))


def run_turn(settings: dict[str, Any], session: Session, customer_id: str | None) -> Any:
    """One shopper message → the reply, as JSON or Server-Sent Events (`Accept: text/event-stream`). Shared by the
    proxy route and the direct one: the caller has authorised the session and chosen the customer."""
    body = _body()
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise APIError(400, "invalid_text", "text must be a non-empty string.", details={"param": "text"})
    if len(text) > MAX_TEXT:
        raise APIError(400, "text_too_long", f"text must be at most {MAX_TEXT} characters.", details={"param": "text"})
    client_id = body.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID.match(client_id)):
        raise APIError(400, "invalid_client_id", "client_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -.",
                       details={"param": "client_id"})
    services = get_services()
    stream = "text/event-stream" in request.headers.get("Accept", "")
    if client_id:
        state, stored = services.chat.claim_turn(session, client_id)
        if state == "gone":
            raise APIError(404, "session_not_found", "This chat session does not exist or has expired.")
        if state == "running":
            raise APIError(409, "turn_in_progress", "This message is still being answered.",
                           headers={"Retry-After": "1"})
        if state == "done" and stored is not None:
            return _replay(stored) if stream else stored  # a retry: the same reply, no second turn
    try:
        if session.messages >= MAX_MESSAGES:
            raise APIError(429, "session_full", "This conversation is too long; please start a new one.")
        ctx = turn_context(services, g.shop, session, settings, customer_id)
    except BaseException:
        if client_id:
            services.chat.settle_turn(session, client_id, None)
        raise
    engine = ChatEngine(services.chat, services.model)
    shop, was_escalated = g.shop, session.escalated

    def finish(reply: Reply) -> dict[str, Any]:
        if reply.escalate and not was_escalated:
            enqueue_escalation(services, shop, session.id, reason=reply.intent)
        result = _reply_body(reply)
        if client_id:
            services.chat.settle_turn(session, client_id, result)
        return result

    def failed() -> None:
        if client_id:  # nothing was answered: a retry may run the turn again
            services.chat.settle_turn(session, client_id, None)

    if not stream:
        try:
            reply = engine.turn(ctx, text)
        except ShopifyError:
            failed()
            raise APIError(503, "orders_unavailable", "Orders cannot be checked right now.",
                           headers={"Retry-After": "30"}) from None
        except BaseException:
            failed()
            raise
        return finish(reply)
    return _sse(_stream(engine, ctx, text, finish, failed))


def _sse(events: Iterator[str]) -> Response:
    return Response(stream_with_context(events), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _replay(stored: dict[str, Any]) -> Response:
    """A stored reply as the stream a first answer would have been: the whole text in one delta, then final."""
    def events() -> Iterator[str]:
        yield ": lumi\n\n"
        text = (stored.get("message") or {}).get("text") or ""
        yield _delta_event(text)
        yield f"event: final\ndata: {json.dumps(stored, ensure_ascii=False)}\n\n"

    return _sse(events())


def _stream(engine: ChatEngine, ctx: Any, text: str, finish: Any, failed: Any) -> Iterator[str]:
    """Server-Sent Events: `delta` events as the reply is written, then one `final` event with all of it."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            reply = engine.turn(ctx, text, on_delta=lambda delta: events.put(("delta", delta)))
            events.put(("final", finish(reply)))
        except ShopifyError:
            failed()
            events.put(("error", {"code": "orders_unavailable", "message": "Orders cannot be checked right now."}))
        except Exception:  # noqa: BLE001 - reported to the client as an event, logged here
            log.exception("chat turn failed")
            failed()
            events.put(("error", {"code": "internal_error", "message": "Something went wrong."}))

    worker = threading.Thread(target=run, name="chat-turn", daemon=True)
    worker.start()
    yield ": lumi\n\n"  # a first byte at once: proxies and the widget know the stream is alive
    while True:
        try:
            kind, data = events.get(timeout=KEEPALIVE_S)
        except queue.Empty:  # a slow model or Shopify call: a comment keeps proxies from timing the stream out
            yield ": keep-alive\n\n"
            continue
        if kind == "delta":
            # Every delta already waiting goes out in one write: a busy worker (hundreds of streams on one
            # thread) wakes this stream once for several words instead of once per word.
            chunk = [_delta_event(data)]
            while not events.empty() and events.queue[0][0] == "delta":
                chunk.append(_delta_event(events.get_nowait()[1]))
            yield "".join(chunk)
            continue
        yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        break
    worker.join(timeout=1)


def _delta_event(text: str) -> str:
    return f"event: delta\ndata: {json.dumps({'text': text}, ensure_ascii=False)}\n\n"


def _reply_body(reply: Reply) -> dict[str, Any]:
    return {"message": {"role": "assistant", "text": reply.text, "parts": reply.parts, "intent": reply.intent,
                        "language": reply.language},
            "responder": reply.responder, "replaced": reply.blocked, "fallback": reply.fallback,
            "escalated": reply.escalate}


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
