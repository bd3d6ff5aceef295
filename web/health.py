"""Liveness (`/healthz`) and readiness (`/readyz`: Redis, Meilisearch, a live RQ worker)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from core.health import readiness
from web.extensions import get_meili, get_queue_redis, get_redis, get_settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    response = jsonify({"status": "ok"})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> Response:
    report = readiness(
        get_redis(),
        get_queue_redis(),
        get_meili(),
        max_heartbeat_age=get_settings().worker_heartbeat_max_age,
    )
    body: dict[str, object] = {"status": "ready" if report.ready else "unavailable", "components": report.components}
    if not report.ready:
        down = " and ".join(report.down) or "a component"
        verb = "are" if len(report.down) > 1 else "is"
        body["error"] = {"code": "not_ready", "message": f"Not ready: {down} {verb} down."}
    response = jsonify(body)
    response.status_code = 200 if report.ready else 503
    response.headers["Cache-Control"] = "no-store"
    if not report.ready:
        response.headers["Retry-After"] = "5"
    return response
