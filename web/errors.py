"""JSON errors everywhere: `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Stable machine-readable codes for the HTTP errors Flask/werkzeug raise themselves.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class APIError(Exception):
    """Raise from any view or service to answer with a JSON error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: dict[str, object] | None = None,
) -> Response:
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(err: APIError) -> Response:
        return error_response(err.status, err.code, err.message, err.headers, err.details)

    @app.errorhandler(HTTPException)
    def handle_http_exception(err: HTTPException) -> Response:
        status = err.code or 500
        headers = {}
        if status == 405 and err.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
        return error_response(status, _HTTP_CODES.get(status, "http_error"), err.description or "", headers)

    @app.errorhandler(redis.RedisError)
    def handle_store_down(err: redis.RedisError) -> Response:
        # Redis is Lumi's store for sessions, settings and tokens: a short outage is a 503 to retry, not a bug.
        log.warning("redis unavailable", extra={"error_type": type(err).__name__})
        return error_response(503, "store_unavailable", "Lumi is briefly unavailable. Please try again shortly.",
                              {"Retry-After": "30"})

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception) -> Response:
        # The traceback goes to the log (scrubbed); the client learns nothing internal.
        log.exception("unhandled error", extra={"error_type": type(err).__name__})
        return error_response(500, "internal_error", "Something went wrong on our side. Please try again.")
