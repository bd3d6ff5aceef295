"""One structured log line per request: method, path, status, duration, shop, request id; and the same duration
as a `Server-Timing: app;dur=<ms>` response header (W3C Server-Timing, which browsers' devtools and Built for
Shopify's web-vitals read, and bench.admin measures).

Only the path is logged, never the query string (app-proxy and OAuth queries carry
signatures, and chat requests could carry personal data) nor any header or body.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from shopify.domains import valid_shop_domain

log = logging.getLogger("lumi.request")

# Heroku's router sets X-Request-ID; accept a sane one, otherwise make our own.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,200}$")


def current_shop() -> str | None:
    """The shop this request acts for, once something verified it (or a well-formed `?shop=`)."""
    shop = g.get("shop")
    if shop:
        return str(shop)
    return valid_shop_domain(request.args.get("shop"))


def request_id(incoming: str | None) -> str:
    """The router's X-Request-ID when it is sane, else a new one."""
    return incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def log_line(method: str, path: str, status: int, duration_ms: float | None, shop: str | None,
             rid: str | None) -> None:
    log.info("request", extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms,
                               "shop": shop, "request_id": rid})


def server_timing(duration_ms: float, existing: str | None = None) -> str:
    """`app;dur=<ms>`, after any metrics a route already set (the header is a comma-separated list)."""
    metric = f"app;dur={duration_ms:.2f}"
    return f"{existing}, {metric}" if existing else metric


def init_app(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # A streamed body (SSE, the CSV export) is produced after this hook: its duration is not known here, and
        # a header-time figure would understate it, so such responses get none.
        if duration_ms is not None and not response.is_streamed:
            response.headers["Server-Timing"] = server_timing(duration_ms, response.headers.get("Server-Timing"))
        log_line(request.method, request.path, response.status_code, duration_ms, current_shop(), g.get("request_id"))
        return response
