"""JSON errors everywhere, and one structured, scrubbed log line per request."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.logs import JsonFormatter
from web.errors import APIError


def test_unknown_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"
    assert response.get_json()["error"]["message"]


def test_wrong_method_is_a_json_405_with_allow(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_api_error_and_unexpected_error_shapes(app: Flask) -> None:
    @app.get("/_test/api-error")
    def api_error() -> None:
        raise APIError(422, "bad_limit", "limit must be between 1 and 50", headers={"X-Extra": "1"})

    @app.get("/_test/crash")
    def crash() -> None:
        raise RuntimeError("secret internals: customer jane@example.com")

    client = app.test_client()
    response = client.get("/_test/api-error")
    assert response.status_code == 422
    assert response.get_json() == {"error": {"code": "bad_limit", "message": "limit must be between 1 and 50"}}
    assert response.headers["X-Extra"] == "1"

    response = client.get("/_test/crash")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert "secret" not in body["error"]["message"]


def test_body_too_large_is_json_413(app: Flask) -> None:
    from flask import request

    @app.post("/_test/echo")
    def echo() -> dict[str, int]:
        return {"size": len(request.get_data())}

    client = app.test_client()
    assert client.post("/_test/echo", data=b"x" * 1000).get_json() == {"size": 1000}
    response = client.post("/_test/echo", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_one_log_line_per_request_with_shop_path_status_duration(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lumi.request")
    client.get("/healthz?shop=demo-shop.myshopify.com&signature=abc123&email=jane@example.com")
    lines = [r for r in caplog.records if r.name == "lumi.request"]
    assert len(lines) == 1
    record = lines[0]
    assert record.path == "/healthz"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.shop == "demo-shop.myshopify.com"  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    rendered = JsonFormatter().format(record)
    assert "abc123" not in rendered and "jane@example.com" not in rendered
    entry = json.loads(rendered)
    assert entry["msg"] == "request" and entry["method"] == "GET" and entry["request_id"]


def test_invalid_shop_parameter_is_not_logged_as_a_shop(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lumi.request")
    client.get("/healthz?shop=evil.example.com")
    (record,) = [r for r in caplog.records if r.name == "lumi.request"]
    assert record.shop is None  # type: ignore[attr-defined]


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abcd-1234-efgh"}).headers["X-Request-ID"] == (
        "abcd-1234-efgh"
    )
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert len(generated) == 32


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ("lookup for Jane.Doe+x@Example.co.uk failed", "Jane.Doe+x@Example.co.uk"),
        ("Authorization: Bearer eyJhbGciOi.abc.def", "eyJhbGciOi.abc.def"),
        ("token shpat_0123456789abcdef0123456789abcdef", "shpat_0123456789abcdef"),
        ("key sk-proj-abcdefghijk", "sk-proj-abcdefghijk"),
    ],
)
def test_formatter_scrubs_personal_data_and_secrets(message: str, leak: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, (), None)
    record.detail = message
    rendered = JsonFormatter().format(record)
    assert leak not in rendered
