"""A stand-in for the web process behind the edge: the feed contract's headers, counters, bodies changed on demand."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

# The app's contract (web/feeds.py) with its default values.
FEED_CACHE_CONTROL = "public, max-age=60, s-maxage=300, stale-while-revalidate=600, stale-if-error=86400"
# Expires a second after it is stored, then may be served stale for a while: what the tests wait out.
SHORT_CACHE_CONTROL = "public, max-age=1, s-maxage=1, stale-while-revalidate=30, stale-if-error=60"


class _Handler(WSGIRequestHandler):
    """No access log lines; HTTP/1.0 (one request per connection), so stopping the server really stops it:
    no kept-alive connection from nginx can outlive the listening socket."""

    protocol_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class Seen:
    """One request that reached the origin."""

    method: str
    path: str
    query: str
    if_none_match: str | None
    accept_encoding: str | None
    status: int | None = None  # set once answered


@dataclass
class Origin:
    """A tiny Flask app on a real (werkzeug, threaded) server on 127.0.0.1:<free port>.

    `GET /proxy/feeds/<feed>?shop=` answers JSON like the real endpoint: Cache-Control, a strong ETag,
    304 on If-None-Match, Vary: Accept-Encoding, gzip when accepted, Surrogate-Key / Cache-Tag. The
    test changes what it sends (`version`, `cache_control`, `extra_headers`, `fail_with`) and can hold
    feed requests in the app (`gate`). Everything else (/api, /proxy/chat, /auth, /webhooks) answers
    with cacheable-looking headers too, to prove the edge does not cache it anyway.
    """

    version: int = 1
    cache_control: str = FEED_CACHE_CONTROL
    extra_headers: dict[str, str] = field(default_factory=dict)
    fail_with: int | None = None
    gate: threading.Event | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.app = Flask("edge-test-origin")
        self.app.add_url_rule("/proxy/feeds/<path:feed>", view_func=self._feed, methods=["GET"])
        self.app.add_url_rule("/", "other_root", view_func=self._other, methods=["GET", "POST"])
        self.app.add_url_rule("/<path:rest>", view_func=self._other, methods=["GET", "POST"])
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Handler)
        self.port: int = self._server.server_port
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> Origin:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="edge-test-origin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting connections (nginx then gets 'connection refused'). Idempotent."""
        if self.gate is not None:
            self.gate.set()  # never leave a request thread parked
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server.server_close()
            self._thread = None

    # -- what reached the app --------------------------------------------------------------------
    def hits(self, prefix: str = "/proxy/feeds/") -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.path.startswith(prefix))

    def answered(self, prefix: str = "/proxy/feeds/") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(prefix) and s.status is not None]

    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.status is None)

    # -- views -----------------------------------------------------------------------------------
    def _arrive(self) -> Seen:
        seen = Seen(request.method, request.path, request.query_string.decode(),
                    request.headers.get("If-None-Match"), request.headers.get("Accept-Encoding"))
        with self._lock:
            self.seen.append(seen)
        return seen

    def _leave(self, seen: Seen, response: Response) -> Response:
        with self._lock:
            seen.status = response.status_code
        return response

    def _feed(self, feed: str) -> Response:
        seen = self._arrive()
        gate = self.gate
        if gate is not None:
            gate.wait(timeout=20)
        if self.fail_with is not None:
            return self._leave(seen, Response(b'{"error":{"code":"boom","message":"down"}}', self.fail_with,
                                              mimetype="application/json"))
        shop = request.args.get("shop", "")
        document: dict[str, Any] = {
            "feed": feed,
            "shop": shop,
            "version": self.version,
            # Enough repetitive JSON for gzip to matter, like a real row of products.
            "products": [{"id": i, "title": f"Product {i} of {shop}", "price": "19.99"} for i in range(40)],
        }
        raw = json.dumps(document, separators=(",", ":")).encode()
        etag = f'"{hashlib.sha256(raw).hexdigest()[:20]}"'
        headers = {
            "ETag": etag,
            "Cache-Control": self.cache_control,
            "Vary": "Accept-Encoding",
            "Surrogate-Key": f"shop-{shop} feed-{shop}-{feed}",
            "Cache-Tag": f"shop-{shop},feed-{shop}-{feed}",
            **self.extra_headers,
        }
        candidates = {t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")}
        if etag in candidates:
            return self._leave(seen, Response(status=304, headers=headers))
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response = Response(gzip.compress(raw), mimetype="application/json", headers=headers)
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = Response(raw, mimetype="application/json", headers=headers)
        return self._leave(seen, response)

    def _other(self, rest: str = "") -> Response:
        seen = self._arrive()
        raw = json.dumps({"path": request.path, "version": self.version}).encode()
        etag = f'"other-{self.version}"'
        headers = {"ETag": etag, "Cache-Control": FEED_CACHE_CONTROL, "Vary": "Accept-Encoding"}
        if request.headers.get("If-None-Match") == etag:
            return self._leave(seen, Response(status=304, headers=headers))
        return self._leave(seen, Response(raw, mimetype="application/json", headers=headers))


# --- talking to the edge ------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def cache(self) -> str | None:
        """X-Cache-Status (None when the edge did not consult its cache)."""
        return self.headers.get("X-Cache-Status")

    @property
    def body(self) -> bytes:
        """The body, un-gzipped if it came gzipped."""
        return gzip.decompress(self.raw) if self.headers.get("Content-Encoding") == "gzip" else self.raw

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(port: int, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | None = None) -> Answer:
    """One request on a fresh connection (raw bytes, no proxies, no automatic decompression)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers={"Accept-Encoding": "identity", **(headers or {})})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll predicate until it holds; AssertionError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def fetch_until(port: int, path: str, done: Callable[[Answer], bool], what: str, *, timeout: float = 10.0,
                each: Callable[[Answer], None] | None = None, headers: dict[str, str] | None = None) -> Answer:
    """Fetch path until done(answer); `each` checks every answer that is not yet done."""
    deadline = time.monotonic() + timeout
    while True:
        answer = fetch(port, path, headers=headers)
        if done(answer):
            return answer
        if each is not None:
            each(answer)
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {answer.status} "
                                 f"{answer.cache} {answer.raw[:200]!r}")
        time.sleep(0.05)
