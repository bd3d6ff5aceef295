"""`Server-Timing: app;dur=<ms>` on every response whose duration is known when its headers go out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NoReturn

import pytest
from flask import Flask, Response, stream_with_context
from flask.testing import FlaskClient
from werkzeug.wrappers import Response as AnyResponse

from web import errors, requestlog
from web.errors import APIError
from web.requestlog import server_timing

APP_METRIC = re.compile(r"(?:^|,\s*)app;dur=(\d+(?:\.\d+)?)(?:,|$)")


def app_duration(response: AnyResponse) -> float:
    match = APP_METRIC.search(response.headers.get("Server-Timing", ""))
    assert match, f"no app;dur= in {response.headers.get('Server-Timing')!r}"
    return float(match.group(1))


@pytest.fixture
def bare() -> Flask:
    """Only the error handlers and the request log, as create_app installs them: no Redis or Meilisearch."""
    app = Flask(__name__)
    errors.init_app(app)
    requestlog.init_app(app)

    @app.get("/_t/json")
    def json_route() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/_t/refused")
    def refused() -> NoReturn:
        raise APIError(422, "bad", "no")

    @app.get("/_t/crash")
    def crash() -> NoReturn:
        raise RuntimeError("boom")

    @app.get("/_t/sse")
    def sse() -> Response:
        def events() -> Iterator[str]:
            yield ": hello\n\n"
            yield "event: done\ndata: {}\n\n"
        return Response(stream_with_context(events()), mimetype="text/event-stream")

    @app.get("/_t/preset")
    def preset() -> Response:
        return Response("{}", mimetype="application/json", headers={"Server-Timing": "cache;desc=hit"})

    return app


def test_a_json_route_reports_its_server_time(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert 0 <= app_duration(response) < 60_000


@pytest.mark.parametrize(("path", "status"), [("/_t/json", 200), ("/_t/refused", 422), ("/_t/crash", 500),
                                              ("/no/such/route", 404)])
def test_answers_and_errors_alike_carry_it(bare: Flask, path: str, status: int) -> None:
    response = bare.test_client().get(path)
    assert response.status_code == status
    assert response.headers["Server-Timing"].startswith("app;dur=")
    assert 0 <= app_duration(response) < 60_000


def test_a_streamed_response_has_none_and_still_streams(bare: Flask) -> None:
    response = bare.test_client().get("/_t/sse")
    assert response.status_code == 200
    assert "Server-Timing" not in response.headers
    assert response.get_data(as_text=True) == ": hello\n\nevent: done\ndata: {}\n\n"


def test_a_routes_own_metrics_are_kept() -> None:
    assert server_timing(1.5) == "app;dur=1.50"
    assert server_timing(0.0, "cache;desc=hit") == "cache;desc=hit, app;dur=0.00"


def test_a_preset_header_is_extended(bare: Flask) -> None:
    response = bare.test_client().get("/_t/preset")
    assert response.headers["Server-Timing"].startswith("cache;desc=hit, app;dur=")
    assert app_duration(response) >= 0
