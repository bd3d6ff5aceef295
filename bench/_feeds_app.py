"""The WSGI app bench.feeds serves from gunicorn: Lumi's real app plus two bench-only baselines.

`gunicorn -c gunicorn.conf.py "bench._feeds_app:create_app()"` serves exactly what `web:create_app()` serves,
and in the same worker processes:

- `GET /bench/hello`: a Flask route on the real app returning a tiny JSON body. It goes through everything any
  route of the app goes through (request id, the structured request log, error handlers): the floor a feed
  answered from its cache could reach.
- `GET /bench/hello-raw`: the same body from a WSGI function in front of Flask (no request context, no hooks):
  what gunicorn itself costs, for reference.

Never imported by the app; only bench.feeds points gunicorn here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response

from web import create_app as create_lumi_app

HELLO = b'{"hello":"world","ok":true}'
_RAW_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(HELLO)))]


def _hello() -> Response:
    return Response(HELLO, mimetype="application/json")


class _RawHello:
    """WSGI middleware: /bench/hello-raw answered before Flask sees the request; the rest passed through."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/bench/hello-raw":
            start_response("200 OK", _RAW_HEADERS)
            return [HELLO]
        return self.app(environ, start_response)


def create_app() -> Flask:
    app = create_lumi_app()
    app.add_url_rule("/bench/hello", "bench_hello", _hello, methods=["GET"])
    app.wsgi_app = _RawHello(app.wsgi_app)  # type: ignore[method-assign]
    return app
