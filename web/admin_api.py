"""The embedded admin page's JSON API (`/api/*`): every route acts on the shop its session token proves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, request

from core import keys
from shopify.shop_settings import SettingsError
from shopify.shops import ShopNotFound, ShopRecord
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_bearer_session_token

bp = Blueprint("admin_api", __name__, url_prefix="/api")


@bp.before_request
def authenticate() -> None:
    verify_bearer_session_token()


def _record() -> ShopRecord:
    record = get_services().shops.get(g.shop)
    if record is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop. Open it from your admin.")
    return record


def _shop_body(record: ShopRecord) -> dict[str, Any]:
    plan = get_services().shops.plan(record)
    return {
        "domain": record.domain,
        "status": record.status,
        "needs_reauth": record.needs_reauth,
        "reauth_reason": record.reauth_reason,
        "installed_at": datetime.fromtimestamp(record.installed_at, UTC).isoformat().replace("+00:00", "Z"),
        "scopes": list(record.scopes),
        "plan": {"name": plan.name, "label": plan.label, "retention_days": plan.retention_days},
        "settings": record.settings,
        "settings_version": record.settings_version,
    }


@bp.get("/shop")
def shop() -> dict[str, Any]:
    return {"shop": _shop_body(_record())}


@bp.get("/settings")
def get_settings() -> dict[str, Any]:
    record = _record()
    return {"settings": record.settings, "settings_version": record.settings_version}


@bp.patch("/settings")
def patch_settings() -> dict[str, Any]:
    _record()
    patch = request.get_json(silent=True)
    if patch is None:
        raise APIError(400, "invalid_json", "Send the settings to change as a JSON object.")
    try:
        record = get_services().shops.update_settings(g.shop, patch)
    except SettingsError as err:
        raise APIError(400, "invalid_setting", str(err), details={"field": err.field}) from None
    except ShopNotFound:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop.") from None
    return {"settings": record.settings, "settings_version": record.settings_version}


@bp.get("/index")
def index_status() -> dict[str, Any]:
    """The catalogue index: the sync's state, phase, progress and ETA, documents indexed, last sync."""
    from feeds.writer import ShopIndex
    from jobs.sync import progress, read_record

    _record()
    services = get_services()
    state = services.redis.hgetall(keys.index_state(g.shop))
    try:
        documents: int | None = ShopIndex(services.meili, g.shop).count()
    except Exception:  # noqa: BLE001 - the page still shows progress when Meilisearch is down
        documents = None
    last = state.get("last_completed_at")
    return {
        "index": {
            **progress(read_record(services.redis, g.shop)),
            "documents": documents,
            "generation": int(state.get("generation") or 0),
            "last_completed_at": float(last) if last else None,
            "last_error": state.get("last_error") or None,
        }
    }


@bp.post("/index/rebuild")
def rebuild_index() -> tuple[dict[str, Any], int]:
    from jobs.sync import SyncAlreadyRunning, progress, request_sync

    _record()
    try:
        record = request_sync(get_services(), g.shop, reason="merchant", exclusive=True)
    except SyncAlreadyRunning as err:
        raise APIError(409, "sync_running", "A rebuild is already running.",
                       details={"index": progress(err.record)}) from None
    return {"index": progress(record)}, 202


@bp.post("/settings/test-email")
def test_email() -> tuple[dict[str, Any], int]:
    """Send a short test email to the escalation address now, so the merchant sees a delivery problem at once
    (inline, with the server's reason) rather than on a shopper's first escalation."""
    from chat.mailer import Email, MailError, build_mailer, default_sender

    record = _record()
    to = record.settings.get("escalation_email")
    if not to:
        raise APIError(400, "no_escalation_email", "Set an escalation email address first, then send a test.")
    settings = get_services().settings
    email = Email(to=to, subject="[Lumi] Test email: escalations reach this address",
                  text=f"This is a test from Lumi on {record.domain}.\n\n"
                       "When a shopper in the chat asks for a person, Lumi emails the conversation to this address.\n"
                       "Nothing needs doing: this message only shows that delivery works.\n")
    try:
        build_mailer(settings.smtp_url, default_sender(settings.app_url)).send(email)
    except MailError as err:
        if not settings.smtp_url:
            raise APIError(503, "email_not_configured", "Lumi cannot send email: SMTP_URL is not set.") from None
        raise APIError(502, "email_failed", f"The test email was not sent: {err}",
                       details={"transient": err.transient}) from None
    return {"sent_to": to}, 202
