"""One structured log line per request: method, path, status, duration, shop, request id.

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


def init_app(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        response.headers["X-Request-ID"] = g.get("request_id", "")
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "shop": current_shop(),
                "request_id": g.get("request_id"),
            },
        )
        return response
