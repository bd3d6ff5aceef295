"""Storefront chat API (`/proxy/chat/*`, through the app proxy: signature required).

A session is a random id plus a secret the widget keeps in memory or sessionStorage and sends back in
`X-Lumi-Session-Secret` (never a cookie: Shopify strips them, and shoppers are not tracked). Order
verification has its own endpoint so the email a shopper types never enters the transcript.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, request, stream_with_context

from chat import rules
from chat.context import order_lookup, shop_profile, turn_context
from chat.engine import ChatEngine, Reply
from chat.orders import normalize_order_name, order_digest
from chat.store import Session, SessionGone
from jobs.escalation import enqueue_escalation
from shopify.errors import ShopifyError
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_proxy_request

log = logging.getLogger(__name__)

bp = Blueprint("chat", __name__, url_prefix="/proxy/chat")

SECRET_HEADER = "X-Lumi-Session-Secret"
MAX_TEXT = 2000  # characters per shopper message
MAX_MESSAGES = 200  # shopper messages per session
MAX_FAILURES_PER_SESSION = 5  # failed verifications per session per hour
MAX_FAILURES_PER_ORDER = 10  # failed verifications naming one order per hour, across sessions
MAX_NEW_SESSIONS_PER_MINUTE = 600  # per shop: far above real traffic, low enough that a bot cannot fill Redis


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


def _retention_seconds() -> int:
    services = get_services()
    override = services.settings.chat_retention_seconds
    return override or services.shops.plan(g.record).retention_seconds


@bp.post("/sessions")
def create_session() -> tuple[dict[str, Any], int]:
    settings = _settings()
    _body()
    services = get_services()
    if services.chat.opened_this_minute(g.shop) > MAX_NEW_SESSIONS_PER_MINUTE:
        raise APIError(429, "too_many_sessions", "Too many chats are starting right now. Please try again shortly.",
                       headers={"Retry-After": str(60 - int(time.time()) % 60)})
    language = settings.get("language") or "en"
    session, secret = services.chat.create(g.shop, _retention_seconds(), language)
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
    }, 201


@bp.get("/sessions/<session_id>")
def transcript(session_id: str) -> dict[str, Any]:
    _settings()
    session = _session(session_id)
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
                         set_fields={"orders": json.dumps(orders[-5:])})
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
    enqueue_escalation(services, g.shop, session.id, reply_to=email, reason="escalation form")
    if not session.escalated:
        services.chat.append(session, {"role": "system", "text": "Passed to the store's team.", "at": _iso_now()},
                             set_fields={"escalated": 1})
        services.chat.count(session, escalated=1)
    return {"escalated": True}, 202


@bp.post("/sessions/<session_id>/messages")
def message(session_id: str) -> Any:
    settings = _settings()
    session = _session(session_id)
    body = _body()
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise APIError(400, "invalid_text", "text must be a non-empty string.", details={"param": "text"})
    if len(text) > MAX_TEXT:
        raise APIError(400, "text_too_long", f"text must be at most {MAX_TEXT} characters.", details={"param": "text"})
    if session.messages >= MAX_MESSAGES:
        raise APIError(429, "session_full", "This conversation is too long; please start a new one.")
    services = get_services()
    ctx = turn_context(services, g.shop, session, settings, g.logged_in_customer_id)
    engine = ChatEngine(services.chat, services.model)
    shop, was_escalated = g.shop, session.escalated

    def finish(reply: Reply) -> dict[str, Any]:
        if reply.escalate and not was_escalated:
            enqueue_escalation(services, shop, session.id, reason=reply.intent)
        return _reply_body(reply)

    if "text/event-stream" not in request.headers.get("Accept", ""):
        try:
            reply = engine.turn(ctx, text)
        except ShopifyError:
            raise APIError(503, "orders_unavailable", "Orders cannot be checked right now.",
                           headers={"Retry-After": "30"}) from None
        return finish(reply)
    return Response(stream_with_context(_stream(engine, ctx, text, finish)), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _stream(engine: ChatEngine, ctx: Any, text: str, finish: Any) -> Iterator[str]:
    """Server-Sent Events: `delta` events as the reply is written, then one `final` event with all of it."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            reply = engine.turn(ctx, text, on_delta=lambda delta: events.put(("delta", delta)))
            events.put(("final", finish(reply)))
        except ShopifyError:
            events.put(("error", {"code": "orders_unavailable", "message": "Orders cannot be checked right now."}))
        except Exception:  # noqa: BLE001 - reported to the client as an event, logged here
            log.exception("chat turn failed")
            events.put(("error", {"code": "internal_error", "message": "Something went wrong."}))

    worker = threading.Thread(target=run, name="chat-turn", daemon=True)
    worker.start()
    yield ": lumi\n\n"  # a first byte at once: proxies and the widget know the stream is alive
    while True:
        kind, data = events.get()
        if kind == "delta":
            yield f"event: delta\ndata: {json.dumps({'text': data}, ensure_ascii=False)}\n\n"
            continue
        yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        break
    worker.join(timeout=1)


def _reply_body(reply: Reply) -> dict[str, Any]:
    return {"message": {"role": "assistant", "text": reply.text, "parts": reply.parts, "intent": reply.intent,
                        "language": reply.language},
            "responder": reply.responder, "replaced": reply.blocked, "fallback": reply.fallback,
            "escalated": reply.escalate}


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
