"""The answers to Shopify's `customers/data_request` webhooks, for the admin's "Data & privacy" page.

jobs.compliance keeps each answer (what was emailed to the merchant: the redacted transcripts of the chats found,
or the statement that there were none) for 30 days. `GET /api/data-requests` lists them without their text;
`GET /api/data-requests/<id>` is one answer with its text. Both act on the shop the session token proves: another
shop's request id is simply not found.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g

from core import keys
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_bearer_session_token

bp = Blueprint("data_requests_api", __name__, url_prefix="/api")

REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")  # as jobs.compliance names them


@bp.before_request
def authenticate() -> None:
    verify_bearer_session_token()


def _summary(answer: dict[str, Any], expires_at: int | None) -> dict[str, Any]:
    return {
        "id": answer["request_id"],
        "received_at": answer.get("received_at"),
        "answered_at": answer.get("answered_at"),
        "sessions": int(answer.get("sessions") or 0),
        "emailed": answer.get("delivered") == "email",
        # email, no_address (kept here only), email_failed, retrying or pending
        "delivered": answer.get("delivered"),
        "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z")
        if expires_at and expires_at > 0 else None,
    }


def _expiry(request_ids: list[str]) -> list[int | None]:
    """When each kept answer expires (Redis EXPIRETIME: a unix time; None when it is already gone)."""
    with get_services().redis.pipeline(transaction=False) as pipe:
        for request_id in request_ids:
            pipe.expiretime(keys.data_request_answer(g.shop, request_id))
        return [t if t > 0 else None for t in pipe.execute()]


@bp.get("/data-requests")
def data_requests() -> dict[str, Any]:
    answers = [a for a in get_services().chat.data_requests(g.shop) if a.get("request_id")]
    expiry = _expiry([a["request_id"] for a in answers])
    return {"data_requests": [_summary(a, t) for a, t in zip(answers, expiry, strict=True)]}


@bp.get("/data-requests/<request_id>")
def data_request(request_id: str) -> dict[str, Any]:
    answer = get_services().chat.data_request(g.shop, request_id) if REQUEST_ID.match(request_id) else None
    if answer is None:
        raise APIError(404, "not_found", "No customer data request with this id for this shop (answers are kept "
                       "30 days).")
    (expires_at,) = _expiry([request_id])
    return {"data_request": {**_summary(answer, expires_at), "subject": answer.get("subject"),
                             "answer": answer.get("text", "")}}
