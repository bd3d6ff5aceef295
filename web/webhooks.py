"""`POST /webhooks`: HMAC over the raw body first → dedupe on the webhook id → enqueue → 200, fast.

Uninstall is the one topic handled in the request: the shop's configuration and token are
deleted before the response returns (a data promise); the rest of its data is purged by a job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from chat.store import subject_digest
from core import keys
from jobs.queues import enqueue
from runtime.services import Services
from shopify.domains import valid_shop_domain
from shopify.signatures import verify_webhook_hmac
from shopify.webhook_log import log_delivery
from web.errors import APIError
from web.extensions import get_services

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")

# topic → (queue, job function by dotted path). Topics absent here are acknowledged and logged only.
JOBS: dict[str, tuple[str, str]] = {
    "app/uninstalled": (keys.QUEUE_DEFAULT, "jobs.purge.purge_uninstalled_shop"),
    "products/create": (keys.QUEUE_WEBHOOKS, "jobs.webhooks.product_changed"),
    "products/update": (keys.QUEUE_WEBHOOKS, "jobs.webhooks.product_changed"),
    "products/delete": (keys.QUEUE_WEBHOOKS, "jobs.webhooks.product_deleted"),
    "inventory_levels/update": (keys.QUEUE_WEBHOOKS, "jobs.webhooks.inventory_changed"),
    "customers/data_request": (keys.QUEUE_DEFAULT, "jobs.compliance.customer_data_request"),
    "customers/redact": (keys.QUEUE_DEFAULT, "jobs.compliance.customer_redact"),
    "shop/redact": (keys.QUEUE_DEFAULT, "jobs.compliance.shop_redact"),
}


def _header(name: str) -> str | None:
    # Shopify's header names are case-insensitive, and some deliveries omit the `X-` prefix.
    return request.headers.get(f"X-{name}") or request.headers.get(name)


def job_arguments(topic: str, payload: dict[str, Any], shop: str = "",
                  app_secrets: Sequence[str] = ("",)) -> dict[str, Any]:
    """Only what the job needs, never personal data: compliance payloads carry customer emails/phones. The
    customer jobs get keyed digests of the customer id and order ids (chat.store.subject_digest), the names their
    sessions are indexed under, never the ids themselves; a data request also gets its request id (no personal
    data) to label the answer. During a client-secret rotation (`app_secrets` = current, previous) sessions indexed
    before the switch are listed under the previous secret's digests, which go along as `previous_digests`."""
    if topic.startswith("products/"):
        return {"product_id": payload.get("id"), "updated_at": payload.get("updated_at")}
    if topic == "inventory_levels/update":
        return {"inventory_item_id": payload.get("inventory_item_id"), "updated_at": payload.get("updated_at")}
    if topic in {"customers/data_request", "customers/redact"}:
        customer = payload.get("customer")
        customer_id = customer.get("id") if isinstance(customer, dict) else None
        orders = payload.get("orders_requested") or payload.get("orders_to_redact") or []
        order_ids = [o for o in orders if _numeric_id(o)][:250] if isinstance(orders, list) else []
        customer_ids = [customer_id] if _numeric_id(customer_id) else []

        def digests(secret: str, kind: str, ids: list[Any]) -> list[str]:
            return sorted({subject_digest(secret, shop, kind, raw) for raw in ids})

        current, *previous = app_secrets
        found: dict[str, Any] = {
            "customer_digest": next(iter(digests(current, "customer", customer_ids)), None),
            "order_digests": digests(current, "order", order_ids),
        }
        if previous:
            found["previous_digests"] = sorted({d for secret in previous for kind, ids in
                                                (("customer", customer_ids), ("order", order_ids))
                                                for d in digests(secret, kind, ids)})
        if topic == "customers/data_request":
            request = payload.get("data_request")
            request_id = request.get("id") if isinstance(request, dict) else None
            found["request_id"] = str(request_id) if _numeric_id(request_id) else None
        return found
    return {}


def _numeric_id(value: object) -> bool:
    """Shopify's REST ids are JSON numbers; a numeric string is taken too."""
    if isinstance(value, str):
        return value.isascii() and value.isdigit() and len(value) <= 20
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@bp.post("/webhooks")
def receive() -> Response:
    services = get_services()
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        raise APIError(413, "payload_too_large", "Webhook body too large.")
    # Read one byte past the limit: a chunked body (no Content-Length) is otherwise cut at the limit
    # silently, and the HMAC would be checked against a prefix of what was sent.
    request.max_content_length = MAX_WEBHOOK_BYTES + 1
    body = request.stream.read(MAX_WEBHOOK_BYTES + 1)
    if len(body) > MAX_WEBHOOK_BYTES:
        raise APIError(413, "payload_too_large", "Webhook body too large.")
    if not verify_webhook_hmac(body, _header("Shopify-Hmac-Sha256"), services.settings.shopify_secrets):
        raise APIError(401, "bad_hmac", "The webhook signature is not valid.")

    topic = _header("Shopify-Topic") or ""
    shop = valid_shop_domain(_header("Shopify-Shop-Domain"))
    webhook_id = _header("Shopify-Webhook-Id") or ""
    if not topic or shop is None or not webhook_id or len(webhook_id) > 200:
        raise APIError(
            400, "bad_headers", "X-Shopify-Topic, X-Shopify-Shop-Domain and X-Shopify-Webhook-Id are required."
        )
    g.shop = shop
    try:
        payload = json.loads(body)
    except ValueError:
        raise APIError(400, "invalid_json", "The webhook body is not JSON.") from None
    if not isinstance(payload, dict):
        raise APIError(400, "invalid_json", "The webhook body is not a JSON object.")

    # Compliance topics arrive for shops that already left (shop/redact comes 48 h after uninstall).
    if topic not in COMPLIANCE_TOPICS and topic != "app/uninstalled" and not services.shops.is_installed(shop):
        log.info("webhook for unknown shop dropped", extra={"topic": topic, "webhook_id": webhook_id})
        return _ack("ignored")

    seen_key = keys.webhook_seen(webhook_id)
    if not services.redis.set(seen_key, topic, nx=True, ex=keys.WEBHOOK_DEDUPE_TTL):
        log.info("duplicate webhook", extra={"topic": topic, "webhook_id": webhook_id})
        return _ack("duplicate")
    try:
        handle(services, shop, topic, webhook_id, payload)
    except Exception:
        # Forget the id so Shopify's retry is processed, then let the error answer 500.
        services.redis.delete(seen_key)
        raise
    return _ack("accepted")


def handle(services: Services, shop: str, topic: str, webhook_id: str, payload: dict[str, Any]) -> None:
    if topic == "app/uninstalled":
        services.shops.uninstall(shop)  # configuration and token gone before we answer
    log_delivery(services.redis, shop, topic, webhook_id)
    job = JOBS.get(topic)
    if job is None:
        log.info("webhook topic has no handler yet", extra={"topic": topic})
        return
    queue_name, func = job
    kwargs = job_arguments(topic, payload, shop, services.settings.shopify_secrets)
    enqueue(services.queue_redis, queue_name, func, args=(shop,), kwargs=kwargs, job_id=_job_id(webhook_id))


def _job_id(webhook_id: str) -> str:
    # RQ job ids may not contain ':'; Shopify's webhook ids are UUID-like.
    return "webhook-" + "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in webhook_id)


def _ack(status: str) -> Response:
    response = jsonify({"status": status})
    response.headers["Cache-Control"] = "no-store"
    return response

