"""Escalation: email the merchant the redacted transcript of a chat that needs a person.

Enqueued by the web process with the session id and, only if the shopper chose to leave one, their
email address sealed with the app's encryption key (so no plaintext address ever sits in Redis, even
inside the job). The job record is deleted on success (result_ttl=0); retried on transient SMTP errors.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from rq import Retry

from chat.mailer import Email, MailError, build_mailer, default_sender
from core import keys
from jobs.context import services
from jobs.queues import enqueue
from runtime.services import Services

log = logging.getLogger(__name__)

RETRY_INTERVALS = [10, 60, 300, 900]  # seconds between attempts after a transient SMTP failure


def enqueue_escalation(ctx: Services, shop: str, session_id: str, reply_to: str | None = None,
                       reason: str = "") -> Any:
    sealed = ctx.box.encrypt(reply_to) if reply_to else None
    return enqueue(ctx.queue_redis, keys.QUEUE_DEFAULT, "jobs.escalation.send_escalation", shop, session_id, sealed,
                   reason[:40], retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS), result_ttl=0,
                   description="chat escalation email")


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


def send_escalation(shop: str, session_id: str, sealed_reply_to: str | None = None,
                    reason: str = "") -> dict[str, Any]:
    from chat.context import shop_profile

    ctx = services()
    session = ctx.chat.get(shop, session_id)
    if session is None:
        return {"skipped": "session_expired"}
    record = ctx.shops.get(shop)
    if record is None:
        return {"skipped": "not_installed"}
    name, contact = shop_profile(ctx, shop)
    to = record.settings.get("escalation_email") or contact
    if not to:
        log.warning("escalation without an address", extra={"shop": shop})
        return {"skipped": "no_escalation_address"}
    reply_to = ctx.box.decrypt(sealed_reply_to) if sealed_reply_to else None
    orders = ", ".join(o["name"] for o in session.orders)
    email = Email(to=to, subject=f"[Lumi] A shopper needs a reply{f' about {orders}' if orders else ''}",
                  text=_body(name, shop, session, ctx.chat.transcript(shop, session_id), reason), reply_to=reply_to)
    mailer = build_mailer(ctx.settings.smtp_url, default_sender(ctx.settings.app_url))
    try:
        message_id = mailer.send(email)
    except MailError as err:
        if err.transient:
            raise  # RQ retries on RETRY_INTERVALS
        log.error("escalation email refused", extra={"shop": shop, "smtp_code": err.code})
        return {"failed": "permanent"}
    log.info("escalation email sent", extra={"shop": shop})
    return {"sent": bool(message_id)}
