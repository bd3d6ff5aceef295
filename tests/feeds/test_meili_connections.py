"""Feeds reach Meilisearch over pooled keep-alive connections that survive a Meilisearch restart, time out,
and keep the stale-then-503 behaviour when Meilisearch is down."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from meilisearch.errors import MeilisearchApiError, MeilisearchTimeoutError

from core import clients, keys
from core.clients import PooledMeili, make_meili
from core.settings import load_settings
from devtools.services import MeiliServer, RedisServer
from feeds.index import PRODUCTS_INDEX, ensure_indexes, wait
from shopify.oauth import REQUIRED_SCOPES, TokenSet
from tests.conftest import make_env

SHOP = "pool-test.myshopify.com"
PRODUCTS = 20


def document(pid: int) -> dict[str, object]:
    return {"uid": f"{SHOP.split('.')[0]}-{pid}", "shop": SHOP, "generation": 1, "product_id": pid,
            "handle": f"p-{pid}", "title": f"Product {pid}", "vendor": "Lumi", "available": True,
            "published_at": 1_700_000_000 + pid, "currency": "USD", "card_price": "10.00", "price_min": 10.0}


@pytest.fixture
def own_meili(tmp_path: Path) -> Iterator[MeiliServer]:
    """A Meilisearch of this test's own, with its data on disk so that a restart keeps the index."""
    server = MeiliServer(workdir=tmp_path / "meili").start()
    yield server
    server.stop()


@pytest.fixture
def feeds_app(redis_client: redis.Redis, redis_server: RedisServer, own_meili: MeiliServer) -> Iterator[Flask]:
    from web import create_app

    app = create_app(make_env(redis_server.url, own_meili))
    services = app.extensions["lumi.services"]
    services.shops.install(SHOP, TokenSet(access_token="shpat_pool", scopes=REQUIRED_SCOPES, expires_at=None,
                                          refresh_token=None, refresh_expires_at=None))
    ensure_indexes(services.meili)
    index = services.meili.index(PRODUCTS_INDEX)
    wait(services.meili, index.add_documents([document(pid) for pid in range(1, PRODUCTS + 1)]).task_uid)
    yield app
    services.close()
    services.meili.close()


def feed(client: FlaskClient, limit: int, **params: str) -> tuple[int, dict[str, str], dict[str, object]]:
    query = "&".join(f"{k}={v}" for k, v in {"shop": SHOP, "limit": str(limit), **params}.items())
    answer = client.get(f"/proxy/feeds/new-arrivals?{query}")
    return answer.status_code, dict(answer.headers), answer.get_json()


def ids(body: dict[str, object]) -> list[str]:
    return [product["id"] for product in body["products"]]  # type: ignore[attr-defined, index]


def connections_to(port: int) -> set[int]:
    """Local ports of this process's established TCP connections to 127.0.0.1:`port` (from /proc)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if remote == f"0100007F:{port:04X}" and state == "01" and inode in inodes:  # 01: ESTABLISHED
            found.add(int(local.split(":")[1], 16))
    return found


def test_cold_feeds_reuse_one_connection_and_reconnect_after_meilisearch_restarts(
        feeds_app: Flask, own_meili: MeiliServer) -> None:
    meili: PooledMeili = feeds_app.extensions["lumi.services"].meili
    client = feeds_app.test_client()
    status, headers, first = feed(client, 5)
    assert status == 200 and ids(first) == ["20", "19", "18", "17", "16"]
    kept = connections_to(own_meili.port)
    assert len(kept) == 1  # the feed's query left its connection open for the next one

    status, _, second = feed(client, 5, exclude="20")  # another cache key: a second query
    assert status == 200 and ids(second) == ["19", "18", "17", "16", "15"]
    assert connections_to(own_meili.port) == kept  # ... sent over that same connection

    own_meili.restart()  # same port and data; every connection the pool holds is now closed by the server

    status, headers, third = feed(client, 5, exclude="19")
    assert status == 200, third
    assert "X-Lumi-Stale" not in headers
    assert ids(third) == ["20", "18", "17", "16", "15"]
    assert feeds_app.extensions["lumi.services"].meili is meili  # the same client and pool ...
    renewed = connections_to(own_meili.port)
    assert len(renewed) == 1 and renewed != kept  # ... on a new connection, the dead one closed


def test_meilisearch_down_serves_the_last_good_body_then_503_and_recovers(
        feeds_app: Flask, own_meili: MeiliServer, redis_client: redis.Redis) -> None:
    client = feeds_app.test_client()
    status, _, good = feed(client, 4)
    assert status == 200
    own_meili.stop()  # the pooled connection dies with it, and new ones are refused
    redis_client.incr(keys.feeds_version(SHOP))  # a miss: the body cache cannot answer

    status, headers, stale = feed(client, 4)
    assert status == 200 and headers["X-Lumi-Stale"] == "1"
    assert ids(stale) == ids(good)
    status, headers, never = feed(client, 3)  # never computed: nothing to fall back on
    assert status == 503 and headers["Retry-After"] == "30"
    assert never["error"]["code"] == "feed_unavailable"  # type: ignore[index]

    own_meili.start()
    status, headers, back = feed(client, 3)
    assert status == 200 and "X-Lumi-Stale" not in headers
    assert ids(back) == ["20", "19", "18"]


def test_a_meilisearch_that_accepts_but_never_answers_times_out_and_the_feed_is_503(feeds_app: Flask) -> None:
    meili: PooledMeili = feeds_app.extensions["lumi.services"].meili
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts connections; nobody ever answers
    original = meili.config.url
    try:
        meili.config.url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        raised: list[BaseException] = []

        def search() -> None:
            try:
                meili.index(PRODUCTS_INDEX).search("")
            except BaseException as err:  # noqa: BLE001 - checked below
                raised.append(err)

        # In a thread, so that a client without a timeout fails this test instead of hanging it.
        asking = threading.Thread(target=search, daemon=True)
        asking.start()
        asking.join(timeout=60)
        assert not asking.is_alive(), "no answer and no timeout"
        assert [type(err) for err in raised] == [MeilisearchTimeoutError]
        status, headers, body = feed(feeds_app.test_client(), 2)
        assert status == 503 and headers["Retry-After"] == "30"
        assert body["error"]["code"] == "feed_unavailable"  # type: ignore[index]
    finally:
        meili.config.url = original
        silent.close()


def test_errors_of_meilisearch_itself_keep_their_code_and_status(feeds_app: Flask) -> None:
    meili: PooledMeili = feeds_app.extensions["lumi.services"].meili
    with pytest.raises(MeilisearchApiError) as raised:
        meili.index("no_such_index").search("")
    assert (raised.value.status_code, raised.value.code) == (404, "index_not_found")
    with pytest.raises(MeilisearchApiError) as raised:
        meili.index(PRODUCTS_INDEX).search("", {"filter": "not_filterable = 1"})
    assert (raised.value.status_code, raised.value.code) == (400, "invalid_search_filter")


class _SlowHealth(BaseHTTPRequestHandler):
    """GET /health of a stand-in Meilisearch that answers only once `barrier` requests are in flight together."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server: _StandIn

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self.server.ports.append(self.client_address[1])
        self.server.barrier.wait(timeout=10)
        body = b'{"status":"available"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server signature
        pass


class _StandIn(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # all the threads connect at once (the default backlog of 5 drops SYNs)
    barrier: threading.Barrier
    ports: list[int]


def stand_in(handler: type[BaseHTTPRequestHandler], kind: type[ThreadingHTTPServer]) -> Any:
    server = kind(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


# WEB_WORKER_CONNECTIONS: the requests a gevent web worker serves at once.
@pytest.mark.parametrize(("worker_connections", "threads"), [("16", 16), ("24", 24)])
def test_every_request_a_worker_serves_at_once_keeps_its_connection_between_queries(
        env: dict[str, str], worker_connections: str, threads: int) -> None:
    server: _StandIn = stand_in(_SlowHealth, _StandIn)
    meili = make_meili(load_settings({**env, "MEILI_URL": f"http://127.0.0.1:{server.server_address[1]}",
                                      "WEB_WORKER_CONNECTIONS": worker_connections,
                                      "MEILI_TIMEOUT": "10"}))

    def ask(answers: list[object]) -> None:
        answers.append(meili.health())

    try:
        rounds: list[list[int]] = []
        for _ in range(2):
            # `threads` queries in flight at once, as from a web worker's threads under load.
            server.barrier, server.ports = threading.Barrier(threads), []
            answers: list[object] = []
            workers = [threading.Thread(target=ask, args=(answers,)) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert answers == [{"status": "available"}] * threads
            rounds.append(sorted(server.ports))
        assert len(set(rounds[0])) == threads
        assert rounds[1] == rounds[0]  # the second round came over the very same connections: none was dropped
    finally:
        meili.close()
        server.shutdown()
        server.server_close()


class _DropsSecondRequest(BaseHTTPRequestHandler):
    """A stand-in that closes each kept-alive connection when its second request arrives, unanswered: what a
    server closing an idle connection just as a request is sent on it looks like to the client."""

    protocol_version = "HTTP/1.1"
    server: _Counting

    def handle(self) -> None:
        self.served = 0
        super().handle()

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        self.served += 1
        self.server.seen.append((self.client_address[1], self.served))
        if self.served == 2:
            self.close_connection = True
            return
        body = b'{"status":"available"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server signature
        pass


class _Counting(ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[int, int]]


def test_a_query_on_a_connection_the_server_just_closed_is_sent_again_on_a_new_one(env: dict[str, str]) -> None:
    server: _Counting = stand_in(_DropsSecondRequest, _Counting)
    server.seen = []
    meili = make_meili(load_settings({**env, "MEILI_URL": f"http://127.0.0.1:{server.server_address[1]}"}))
    try:
        assert meili.health() == {"status": "available"}
        assert meili.health() == {"status": "available"}  # dropped on its kept-alive connection, then resent
        (first, _), (again, dropped), (fresh, number) = server.seen
        assert (again, dropped) == (first, 2) and fresh != first and number == 1
    finally:
        meili.close()
        server.shutdown()
        server.server_close()


def test_connections_a_burst_left_unused_for_a_minute_are_closed(env: dict[str, str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server: _StandIn = stand_in(_SlowHealth, _StandIn)
    port = server.server_address[1]
    meili = make_meili(load_settings({**env, "MEILI_URL": f"http://127.0.0.1:{port}", "MEILI_TIMEOUT": "10"}))
    now = [1000.0]
    monkeypatch.setattr(clients, "monotonic", lambda: now[0])
    try:
        server.barrier, server.ports = threading.Barrier(3), []
        workers = [threading.Thread(target=meili.health) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert len(connections_to(port)) == 3  # the burst's connections, all kept
        now[0] += 59
        server.barrier = threading.Barrier(1)
        assert meili.health() == {"status": "available"}
        assert len(connections_to(port)) == 3  # unused for 59 s: still kept
        now[0] += 61
        assert meili.health() == {"status": "available"}
        assert len(connections_to(port)) == 1  # the two unused since the burst (120 s) are closed
    finally:
        meili.close()
        server.shutdown()
        server.server_close()
