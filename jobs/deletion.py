"""Merchant deletion requests: the request record, the job that carries it out, and the emailed receipt.

A request names categories ("products", "settings", "chat", "operational", or "all": uninstall-grade). The web
answers 202 with a queued record, or 409 while another request of the shop is queued or running (one at a time: a
lock the job releases when it ends); this job runs the purge through the deletion registry (runtime.data), stores
the receipt on the record and in the shop's receipts list, and emails it to the merchant when SMTP is set.
Records and receipts hold no personal data: ids, categories, counts per store, times and a digest.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from core import keys
from core.services import CoreServices
from jobs.queues import enqueue
from runtime.data import purge_with_names

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read(client: redis.Redis, shop: str, request_id: str) -> dict[str, Any] | None:
    if not request_id.isalnum() or len(request_id) > 64:
        return None
    raw = client.get(keys.deletion_request(shop, request_id))
    return json.loads(raw) if raw else None


def _write(client: redis.Redis, shop: str, record: dict[str, Any]) -> None:
    client.set(keys.deletion_request(shop, record["id"]), json.dumps(record), ex=keys.RECEIPT_TTL)


class DeletionInProgress(Exception):
    """Another deletion request of the shop is queued or running; nothing was recorded or queued."""

    def __init__(self, request_id: str | None) -> None:
        super().__init__(f"deletion request {request_id} is queued or running")
        self.request_id = request_id


# Deletes the lock only while it still names this request: a late job never frees a newer request's lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def release_lock(client: redis.Redis, shop: str, request_id: str) -> None:
    client.eval(_RELEASE, 1, keys.deletion_lock(shop), request_id)


def create(services: CoreServices, shop: str, categories: list[str], *, now: float | None = None) -> dict[str, Any]:
    """Record a queued request and enqueue its job (arguments: the shop and the request id, nothing else).

    One request per shop at a time: the lock is taken with SET NX before anything is written, so of two concurrent
    confirms exactly one is queued and the other raises DeletionInProgress naming the one that was."""
    request_id = uuid.uuid4().hex
    lock = keys.deletion_lock(shop)
    while not services.redis.set(lock, request_id, nx=True, ex=keys.DELETION_LOCK_TTL):
        holder = services.redis.get(lock)
        if holder is not None:
            raise DeletionInProgress(str(holder))
        # Released between the SET and the GET: try again.
    record: dict[str, Any] = {"id": request_id, "status": "queued", "categories": categories,
                              "requested_at": iso(time.time() if now is None else now)}
    try:
        _write(services.redis, shop, record)
        enqueue(services.queue_redis, keys.QUEUE_DEFAULT, "jobs.deletion.run_deletion_request", shop, request_id,
                job_id=f"lumi-deletion-{request_id}")
    except Exception:
        release_lock(services.redis, shop, request_id)
        raise
    return record


def public_receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    """The receipt as the merchant sees it (API, page, email)."""
    return {"id": receipt["id"], "categories": receipt["categories"], "counts": receipt["deleted"],
            "finished_at": iso(receipt["completed_at"]), "digest": receipt["digest"]}


def run_deletion_request(shop: str, request_id: str) -> dict[str, Any]:
    from jobs.context import services

    return carry_out(services(), shop, request_id)


def carry_out(ctx: Any, shop: str, request_id: str) -> dict[str, Any]:
    try:
        return _carry_out(ctx, shop, request_id)
    finally:
        release_lock(ctx.redis, shop, request_id)  # whatever happened (a no-op when released already)


def _carry_out(ctx: Any, shop: str, request_id: str) -> dict[str, Any]:
    record = read(ctx.redis, shop, request_id)
    if record is None:
        log.warning("deletion request not found", extra={"shop": shop, "request_id": request_id})
        return {"skipped": "unknown request"}
    if record["status"] == "done":
        return record
    # The address is read before the purge (a settings or full deletion removes it) and never leaves this job.
    snapshot = ctx.shops.settings_snapshot(shop)
    contact = snapshot[0].get("escalation_email") if snapshot else None
    record.update(status="running", started_at=iso(time.time()))
    _write(ctx.redis, shop, record)
    try:
        receipt, _ = purge_with_names(ctx, shop, categories=record["categories"], reason="deletion_request",
                                      receipt_id=request_id)
    except Exception:
        # Released before the status says so: whoever reads "failed" may ask again at once.
        release_lock(ctx.redis, shop, request_id)
        record.update(status="failed", finished_at=iso(time.time()))
        _write(ctx.redis, shop, record)
        log.exception("deletion request failed", extra={"shop": shop, "request_id": request_id})
        raise
    release_lock(ctx.redis, shop, request_id)  # likewise before "done" (and before the email, which may be slow)
    record.update(status="done", receipt=public_receipt(receipt))
    _write(ctx.redis, shop, record)
    record["emailed"] = email_receipt(ctx, shop, record["receipt"], contact)
    _write(ctx.redis, shop, record)
    return record


def email_receipt(ctx: Any, shop: str, receipt: dict[str, Any], to: str | None) -> bool:
    """Best effort: the receipt is on the admin page whatever happens here."""
    from chat.mailer import Email, MailError, build_mailer, default_sender

    settings = ctx.settings
    if not to or not settings.smtp_url:
        log.info("deletion receipt not emailed", extra={"shop": shop, "reason": "no address" if not to else "no SMTP"})
        return False
    counts = "\n".join(f"  {store}: {n}" for store, n in sorted(receipt["counts"].items()))
    text = (f"Lumi deleted data of {shop} at your request.\n\n"
            f"Receipt: {receipt['id']}\nCategories: {', '.join(receipt['categories'])}\n"
            f"Finished: {receipt['finished_at']}\nDeleted per store:\n{counts}\n\n"
            f"SHA-256 of the sorted names of everything deleted:\n{receipt['digest']}\n\n"
            "Lumi keeps this receipt (it holds no personal data) for 400 days as the record of the deletion.\n")
    try:
        build_mailer(settings.smtp_url, default_sender(settings.app_url)).send(
            Email(to=to, subject=f"[Lumi] Data deletion receipt {receipt['id']}", text=text))
    except MailError as err:
        log.warning("deletion receipt email failed", extra={"shop": shop, "error": str(err)})
        return False
    log.info("deletion receipt emailed", extra={"shop": shop, "receipt": receipt["id"]})
    return True
