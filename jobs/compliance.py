"""The mandatory privacy-law webhooks: customers/redact, customers/data_request, shop/redact.

Lumi never stores a customer's contact data; what it holds about a customer is the chat sessions that touched
them: a logged-in shopper's chats, and chats that verified or looked up their orders (redacted transcripts and
metadata). chat.store lists each such session under keyed digests of the customer id and of each order id, and
the web process gives these jobs only those digests (web.webhooks.job_arguments), so neither the job arguments
nor the failed-job registry hold a Shopify id. customers/redact deletes every session found; customers/data_request
emails the merchant the redacted transcripts found (or says there are none) and keeps that answer for the admin
page for 30 days; shop/redact erases everything, chat included, with a receipt.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from rq import Retry, get_current_job

from chat.mailer import Email, MailError, build_mailer, default_sender
from chat.store import subject_digest
from core import keys
from jobs.context import services
from jobs.queues import enqueue
from runtime.data import purge_shop
from runtime.services import Services

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
RETRY_INTERVALS = [60, 300, 900, 3600]  # seconds between data request emails after a transient SMTP failure


def shop_redact(shop: str) -> dict[str, Any]:
    ctx = services()
    if ctx.shops.is_installed(shop):
        log.warning("shop/redact for an installed shop ignored", extra={"shop": shop})
        return {"skipped": "installed"}
    return purge_shop(ctx, shop, reason="shop_redact")


def _digests(ctx: Services, shop: str, customer_digest: str | None, order_digests: list[str] | None,
             previous_digests: list[str] | None, customer_id: int | None, order_ids: list[int] | None) -> list[str]:
    """The subject digests a job names (under the current secret, and the previous one during a rotation); raw ids
    only from jobs queued before the web process sent digests."""
    found = [d for d in [customer_digest, *(order_digests or []), *(previous_digests or [])]
             if isinstance(d, str) and d]
    for secret in ctx.settings.shopify_secrets:
        if customer_id is not None:
            found.append(subject_digest(secret, shop, "customer", customer_id))
        found += [subject_digest(secret, shop, "order", o) for o in order_ids or []]
    return sorted(set(found))


def customer_redact(shop: str, customer_digest: str | None = None, order_digests: list[str] | None = None,
                    previous_digests: list[str] | None = None,
                    customer_id: int | None = None, order_ids: list[int] | None = None,
                    request_id: int | None = None) -> dict[str, Any]:
    ctx = services()
    digests = _digests(ctx, shop, customer_digest, order_digests, previous_digests, customer_id, order_ids)
    found = ctx.chat.sessions_about(shop, digests)
    for session_id in found:
        ctx.chat.delete(shop, session_id)
    ctx.chat.forget_subjects(shop, digests)
    log.info("customer redact processed", extra={"shop": shop, "subjects": len(digests),
                                                  "sessions_deleted": len(found)})
    return {"shop": shop, "chat_sessions_deleted": len(found)}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def answer_text(shop_name: str, shop: str, request_id: str, sessions: list[tuple[Any, list[dict[str, Any]]]]
                ) -> str:
    """The email (and admin record) answering one data request: every session found, with its redacted
    transcript, or the statement that Lumi holds nothing about the customer."""
    lines = [
        f"Shopify sent Lumi a customer data request (request {request_id}) for {shop_name} ({shop}).",
        "",
        "What Lumi holds about a customer is only the support chats linked to them: chats they had while logged",
        "in, and chats that verified or looked up their orders. Lumi stores no customer email, phone or address;",
        "transcripts are kept with personal data redacted and expire with your plan's chat retention.",
        "",
    ]
    if not sessions:
        lines += [
            "Chat sessions found: none.",
            "Lumi holds no data about this customer: no chat session it keeps is linked to them or to the",
            "orders named in the request.",
        ]
        return "\n".join(lines) + "\n"
    lines.append(f"Chat sessions found: {len(sessions)}.")
    for number, (session, transcript) in enumerate(sessions, 1):
        orders = ", ".join(o["name"] for o in session.orders) or "none"
        lines += [
            "",
            f"--- Chat {number} of {len(sessions)} ---",
            f"Started: {_iso(session.started)}; last activity: {_iso(session.last)}; "
            f"deleted automatically: {_iso(session.expires_at)}",
            f"Orders referenced: {orders}; escalated: {'yes' if session.escalated else 'no'}",
            "Transcript (personal data redacted):",
        ]
        for entry in transcript:
            who = {"shopper": "Shopper", "assistant": "Assistant"}.get(entry.get("role", ""), "Note")
            lines.append(f"[{str(entry.get('at', ''))[:19].replace('T', ' ')}] {who}: {entry.get('text', '')}")
    return "\n".join(lines) + "\n"


def customer_data_request(shop: str, customer_digest: str | None = None, order_digests: list[str] | None = None,
                          previous_digests: list[str] | None = None,
                          request_id: str | int | None = None, customer_id: int | None = None,
                          order_ids: list[int] | None = None) -> dict[str, Any]:
    from chat.context import shop_profile

    ctx = services()
    digests = _digests(ctx, shop, customer_digest, order_digests, previous_digests, customer_id, order_ids)
    request = str(request_id) if request_id is not None and _REQUEST_ID.match(str(request_id)) else None
    request = request or datetime.now(UTC).strftime("received-%Y%m%d%H%M%S")
    found = []
    for sid in ctx.chat.sessions_about(shop, digests):
        session = ctx.chat.get(shop, sid)
        if session is not None:
            found.append((session, ctx.chat.transcript(shop, sid)))
    found.sort(key=lambda pair: pair[0].started)

    record = ctx.shops.get(shop)
    name, _ = shop_profile(ctx, shop) if record is not None else (shop.removesuffix(".myshopify.com"), None)
    text = answer_text(name, shop, request, found)
    subject = f"[Lumi] Customer data request {request}: {len(found) or 'no'} chat session{'s' * (len(found) != 1)}"
    now = datetime.now(UTC)
    # Kept first (the admin page shows it whatever happens to the email), then sent.
    ctx.chat.save_data_request(shop, request, {
        "request_id": request, "received_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "sessions": len(found), "delivered": "pending", "subject": subject, "text": text,
    })
    delivered = _deliver(ctx, shop, request, last_attempt=False)
    if delivered == "retrying":
        enqueue(ctx.queue_redis, keys.QUEUE_DEFAULT, "jobs.compliance.send_data_request_answer", shop, request,
                retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS), description="data request email")
    log.info("customer data request processed", extra={"shop": shop, "subjects": len(digests),
                                                       "chat_sessions": len(found), "delivered": delivered})
    return {"shop": shop, "request_id": request, "chat_sessions": len(found), "delivered": delivered}


def _deliver(ctx: Services, shop: str, request: str, last_attempt: bool = True) -> str:
    """Email a kept answer to the merchant (escalation email, else the store's contact email); the outcome is
    written on the answer: "email", "no_address", "email_failed" or "retrying" (a transient failure)."""
    from chat.context import shop_profile

    answer = ctx.chat.data_request(shop, request)
    if answer is None:
        return "expired"
    record = ctx.shops.get(shop)
    to = None
    if record is not None:
        to = record.settings.get("escalation_email") or shop_profile(ctx, shop)[1]
    if not to:
        log.warning("data request answer kept for the admin page only: no merchant address", extra={"shop": shop})
        outcome = "no_address"
    else:
        mailer = build_mailer(ctx.settings.smtp_url, default_sender(ctx.settings.app_url))
        try:
            mailer.send(Email(to=to, subject=answer["subject"], text=answer["text"]))
            outcome = "email"
        except MailError as err:
            log.warning("data request email not sent", extra={"shop": shop, "transient": err.transient})
            outcome = "retrying" if err.transient and not last_attempt else "email_failed"
        except ValueError:
            log.warning("data request email not sent: the merchant address is not valid", extra={"shop": shop})
            outcome = "email_failed"
    update = {"delivered": outcome}
    if outcome == "email":  # when the merchant got it, for the admin page
        update["answered_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    ctx.chat.save_data_request(shop, request, {**answer, **update})
    return outcome


def send_data_request_answer(shop: str, request: str) -> dict[str, Any]:
    """Retries of a data request email after a transient SMTP failure (only the shop and request id as arguments:
    the answer itself is read from its record)."""
    ctx = services()
    job = get_current_job()
    outcome = _deliver(ctx, shop, request, last_attempt=job is None or not job.retries_left)
    if outcome == "retrying":
        raise MailError("transient SMTP failure: retried later", transient=True)
    return {"shop": shop, "request_id": request, "delivered": outcome}
