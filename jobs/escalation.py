"""Escalation: email the merchant the redacted transcript of a chat that needs a person.

Enqueued by the web process with the session id and, only if the shopper chose to leave one, an opaque
reference to their reply-to address. The address itself is sealed with the app's encryption key and stored
under its own key (`keys.escalation_reply_to`) that expires within an hour (and never after its session); the
job reads it, sends, and deletes it. So the address is never in the RQ job's arguments, never in the
failed-job registry (7 days) if every retry fails, and gone from Redis once the email is sent. If the key
expired before the send, the email goes without a Reply-To. The job record is deleted on success
(result_ttl=0); retried on transient SMTP errors.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from rq import Retry, get_current_job

from chat.mailer import Email, MailError, build_mailer, default_sender
from core import keys
from jobs.context import services
from jobs.queues import enqueue
from runtime.services import Services

log = logging.getLogger(__name__)

RETRY_INTERVALS = [10, 60, 300, 900]  # seconds between attempts after a transient SMTP failure


def store_reply_to(ctx: Services, shop: str, reply_to: str, session_expires_at: int | None = None) -> str:
    """Seal `reply_to` under a fresh random reference for at most ESCALATION_REPLY_TO_TTL seconds (and not past
    the session's own expiry); return the reference, the only thing the job is given."""
    ref = secrets.token_urlsafe(18)
    expires_at = int(time.time()) + keys.ESCALATION_REPLY_TO_TTL
    if session_expires_at:
        expires_at = min(expires_at, int(session_expires_at))
    key = keys.escalation_reply_to(shop, ref)
    with ctx.redis.pipeline() as pipe:
        pipe.set(key, ctx.box.encrypt(reply_to))
        pipe.expireat(key, max(expires_at, int(time.time()) + 1))
        pipe.execute()
    return ref


def enqueue_escalation(ctx: Services, shop: str, session_id: str, reply_to: str | None = None,
                       reason: str = "", session_expires_at: int | None = None) -> Any:
    ref = store_reply_to(ctx, shop, reply_to, session_expires_at) if reply_to else None
    return enqueue(ctx.queue_redis, keys.QUEUE_DEFAULT, "jobs.escalation.send_escalation", shop, session_id, ref,
                   reason[:40], retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS), result_ttl=0,
                   description="chat escalation email")


def _forget_reply_to(ctx: Services, shop: str, reply_ref: str | None) -> None:
    if reply_ref:
        ctx.redis.delete(keys.escalation_reply_to(shop, reply_ref))


def _body(shop_name: str, shop: str, session: Any, transcript: list[dict[str, Any]], reason: str) -> str:
    orders = ", ".join(o["name"] for o in session.orders) or "none verified"
    started = datetime.fromtimestamp(session.started, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"A shopper asked for help in the Lumi chat on {shop_name} ({shop}).",
        "",
        f"Order: {orders}",
        f"Started: {started}",
        f"Reason: {reason or 'the shopper asked for a person'}",
        f"Sentiment: {'n/a' if session.sentiment is None else f'{session.sentiment:+.2f}'}",
        "",
        "Lumi keeps no shopper email address. If the shopper left one, it is this message's Reply-To;",
        "otherwise they were asked to write to your store's contact address.",
        "",
        "Transcript (personal data redacted):",
    ]
    for entry in transcript:
        who = {"shopper": "Shopper", "assistant": "Assistant"}.get(entry.get("role", ""), "Note")
        lines.append(f"[{str(entry.get('at', ''))[11:19]}] {who}: {entry.get('text', '')}")
    return "\n".join(lines) + "\n"


def send_escalation(shop: str, session_id: str, reply_ref: str | None = None,
                    reason: str = "") -> dict[str, Any]:
    from chat.context import shop_profile

    ctx = services()
    session = ctx.chat.get(shop, session_id)
    if session is None:
        _forget_reply_to(ctx, shop, reply_ref)
        return {"skipped": "session_expired"}
    record = ctx.shops.get(shop)
    if record is None:
        _forget_reply_to(ctx, shop, reply_ref)
        return {"skipped": "not_installed"}
    name, contact = shop_profile(ctx, shop)
    to = record.settings.get("escalation_email") or contact
    if not to:
        log.warning("escalation without an address", extra={"shop": shop})
        _forget_reply_to(ctx, shop, reply_ref)
        return {"skipped": "no_escalation_address"}
    reply_to = None
    if reply_ref:
        sealed = ctx.redis.get(keys.escalation_reply_to(shop, reply_ref))
        if sealed is None:
            log.warning("escalation reply-to expired before the send: sending without Reply-To",
                        extra={"shop": shop})
        else:
            reply_to = ctx.box.decrypt(str(sealed))
    orders = ", ".join(o["name"] for o in session.orders)
    email = Email(to=to, subject=f"[Lumi] A shopper needs a reply{f' about {orders}' if orders else ''}",
                  text=_body(name, shop, session, ctx.chat.transcript(shop, session_id), reason), reply_to=reply_to)
    mailer = build_mailer(ctx.settings.smtp_url, default_sender(ctx.settings.app_url))
    try:
        message_id = mailer.send(email)
    except MailError as err:
        if err.transient:
            job = get_current_job()
            if job is None or not job.retries_left:
                _forget_reply_to(ctx, shop, reply_ref)  # the last attempt: nothing will read it again
            raise  # RQ retries on RETRY_INTERVALS
        log.error("escalation email refused", extra={"shop": shop, "smtp_code": err.code})
        _forget_reply_to(ctx, shop, reply_ref)
        return {"failed": "permanent"}
    _forget_reply_to(ctx, shop, reply_ref)
    log.info("escalation email sent", extra={"shop": shop})
    return {"sent": bool(message_id)}
