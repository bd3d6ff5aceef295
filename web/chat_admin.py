"""The merchant's chat history, analytics and CSV export (`/api/chat/*`, App Bridge session token)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, g, request, stream_with_context

from chat.analytics import analytics, export_rows
from chat.charts import CHARTS
from chat.charts import render as render_chart
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_bearer_session_token

bp = Blueprint("chat_admin", __name__, url_prefix="/api/chat")

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_PAGE = 100
SENTIMENT_BANDS = {"negative": (-1.01, -0.05), "neutral": (-0.05, 0.05), "positive": (0.05, 1.01)}


@bp.before_request
def authenticate() -> None:
    verify_bearer_session_token()
    if get_services().shops.get(g.shop) is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop. Open it from your admin.")


def _day(name: str) -> date | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise APIError(400, "invalid_parameter", f"{name} must be a date like 2026-11-23.",
                       details={"param": name}) from None


def _range() -> tuple[float, float]:
    """[from, to] in whole UTC days, inclusive; default the last 30 days."""
    today = datetime.now(UTC).date()
    end = _day("to") or today
    start = _day("from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise APIError(400, "invalid_parameter", "from must not be after to.", details={"param": "from"})
    since = datetime.combine(start, datetime.min.time(), UTC).timestamp()
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    return since, until


def _flag(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise APIError(400, "invalid_parameter", f"{name} must be true or false.", details={"param": name})
    return raw == "true"


@bp.get("/sessions")
def sessions() -> dict[str, Any]:
    since, until = _range()
    escalated = _flag("escalated")
    band = request.args.get("sentiment")
    if band is not None and band not in SENTIMENT_BANDS:
        raise APIError(400, "invalid_parameter", "sentiment must be negative, neutral or positive.",
                       details={"param": "sentiment"})
    raw_limit = request.args.get("limit", "25")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise APIError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_PAGE}.",
                       details={"param": "limit"})
    limit = int(raw_limit)
    skip = _cursor(request.args.get("cursor"))
    page: list[dict[str, Any]] = []
    matched = 0
    more = False
    for session in get_services().chat.iter_sessions(g.shop, since, until):
        if escalated is not None and session.escalated != escalated:
            continue
        if band is not None:
            low, high = SENTIMENT_BANDS[band]
            if session.sentiment is None or not low < session.sentiment <= high:
                continue
        matched += 1
        if matched <= skip:
            continue
        if len(page) == limit:
            more = True
            break
        page.append(session.public())
    next_cursor = base64.urlsafe_b64encode(str(skip + limit).encode()).decode() if more else None
    return {"sessions": page, "next_cursor": next_cursor}


def _cursor(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        value = int(base64.urlsafe_b64decode(raw.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        value = -1
    if value < 0:
        raise APIError(400, "invalid_parameter", "cursor is not valid.", details={"param": "cursor"})
    return value


@bp.get("/sessions/<session_id>")
def session_detail(session_id: str) -> dict[str, Any]:
    store = get_services().chat
    session = store.get(g.shop, session_id)
    if session is None:
        raise APIError(404, "session_not_found", "This chat session does not exist or has expired.")
    return {"session": session.public(), "messages": store.transcript(g.shop, session_id)}


def _period() -> tuple[float, float, dict[str, Any]]:
    """The analytics period: `days` (default 30) ending today, clamped to the plan's retention, since nothing
    older is kept; or an explicit `from`/`to`. Also what the response says about it."""
    services = get_services()
    record = services.shops.get(g.shop)
    retention = max(1, services.shops.plan(record).retention_days) if record is not None else DEFAULT_DAYS
    if "days" not in request.args and ("from" in request.args or "to" in request.args):
        since, until = _range()
        return since, until, {"days": round((until - since) / 86400), "clamped": False, "retention_days": retention}
    raw = request.args.get("days", str(DEFAULT_DAYS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise APIError(400, "invalid_parameter", f"days must be an integer from 1 to {MAX_DAYS} (7, 30 or 90).",
                       details={"param": "days"})
    days = min(int(raw), retention)
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC).timestamp()
    until = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    return since, until, {"days": days, "clamped": days < int(raw), "retention_days": retention}


@bp.get("/analytics")
def chat_analytics() -> dict[str, Any]:
    since, until, period = _period()
    return {"analytics": analytics(get_services().chat, g.shop, since, until), **period}


@bp.get("/analytics.svg")
def chat_analytics_svg() -> Response:
    name = request.args.get("chart", "sessions")
    if name not in CHARTS:
        raise APIError(400, "invalid_parameter", f"chart must be one of {', '.join(CHARTS)}.",
                       details={"param": "chart"})
    since, until, period = _period()
    svg = render_chart(name, analytics(get_services().chat, g.shop, since, until))
    return Response(svg, mimetype="image/svg+xml", headers={
        "Cache-Control": "no-store", "X-Lumi-Days": str(period["days"]),
        "X-Lumi-Clamped": "1" if period["clamped"] else "0",
        # Inserted into the admin page: nothing in it may run or load anything.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
    })


@bp.get("/export.csv")
def export() -> Response:
    since, until = _range()
    store, shop = get_services().chat, g.shop
    stamp = time.strftime("%Y%m%d", time.gmtime())
    return Response(stream_with_context(export_rows(store, shop, since, until)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="lumi-chat-{stamp}.csv"',
                             "Cache-Control": "no-store"})
