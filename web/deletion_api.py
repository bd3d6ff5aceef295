"""The data inventory (`/api/data-inventory`) and merchant deletion requests (`/api/deletion-requests`).

POST {"categories": [...]} previews what would go (counts per category and store; nothing deleted); the same with
"confirm": true queues the deletion (202), or answers 409 `deletion_in_progress` (naming that request) while
another request of the shop is queued or running. GET /<id> reports the status and, once done, the receipt. Every
route acts on the shop its session token proves; another shop's request id is simply not found.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from core.purge import ALL, CATEGORIES
from jobs import deletion
from runtime.data import inventory, preview
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_bearer_session_token

bp = Blueprint("deletion_api", __name__, url_prefix="/api")

CHOICES = (*CATEGORIES, ALL)


@bp.before_request
def authenticate() -> None:
    verify_bearer_session_token()


def _categories(body: Any) -> tuple[list[str], bool]:
    if not isinstance(body, dict):
        raise APIError(400, "invalid_json", 'Send a JSON object: {"categories": [...], "confirm": true}.')
    unknown = sorted(set(body) - {"categories", "confirm"})
    if unknown:
        raise APIError(400, "invalid_field", f"Unknown field: {unknown[0]}.", details={"field": unknown[0]})
    categories = body.get("categories")
    if (not isinstance(categories, list) or not categories
            or not all(isinstance(c, str) and c in CHOICES for c in categories)):
        raise APIError(400, "invalid_categories", f"categories: a non-empty list of {', '.join(CHOICES)}.",
                       details={"field": "categories"})
    confirm = body.get("confirm", False)
    if not isinstance(confirm, bool):
        raise APIError(400, "invalid_field", "confirm must be true or false.", details={"field": "confirm"})
    chosen = [ALL] if ALL in categories else [c for c in CATEGORIES if c in categories]
    return chosen, confirm


@bp.get("/data-inventory")
def data_inventory() -> dict[str, Any]:
    """What Lumi holds for the shop, per category and store: names (keys, index filters) and counts, no values."""
    out: dict[str, dict[str, Any]] = {category: {} for category in CATEGORIES}
    for store, held in inventory(get_services(), g.shop).items():
        out.setdefault(held["category"], {})[store] = {"description": held["description"], "items": held["items"]}
    return {"inventory": out}


@bp.post("/deletion-requests")
def create() -> tuple[dict[str, Any], int]:
    chosen, confirm = _categories(request.get_json(silent=True))
    services = get_services()
    if services.shops.get(g.shop) is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop. Open it from your admin.")
    if not confirm:
        return {"preview": preview(services, g.shop, chosen)}, 200
    try:
        created = deletion.create(services, g.shop, chosen)
    except deletion.DeletionInProgress as busy:
        raise APIError(409, "deletion_in_progress", "Another deletion request of this shop is still queued or "
                       "running. Wait for its receipt, then ask again.",
                       details={"request_id": busy.request_id}) from None
    return {"deletion_request": created}, 202


@bp.get("/deletion-requests/<request_id>")
def status(request_id: str) -> dict[str, Any]:
    # Readable after a full deletion too (the shop record is gone, the request record is the receipt).
    record = deletion.read(get_services().redis, g.shop, request_id)
    if record is None:
        raise APIError(404, "not_found", "No deletion request with this id for this shop.")
    return {"deletion_request": record}
