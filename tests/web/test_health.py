"""/healthz and /readyz against real Redis, Meilisearch and RQ worker processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from devtools.services import MeiliServer, RedisServer
from tests.conftest import make_env
from web import create_app


def wait_for(predicate: Callable[[], bool], timeout: float = 20, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def make_app() -> Iterator[Callable[[dict[str, str]], Flask]]:
    """create_app for tests that build their own environment; each app's clients are closed afterwards."""
    apps: list[Flask] = []

    def make(env: dict[str, str]) -> Flask:
        apps.append(create_app(env))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["lumi.services"].close()


def test_healthz_is_up_without_any_backend(meili_server: MeiliServer, make_app) -> None:  # type: ignore[no-untyped-def]
    # Liveness must not depend on Redis: point the app at a port where nothing listens.
    app = make_app(make_env("redis://127.0.0.1:1/0", meili_server))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_names_the_missing_worker(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["components"]["redis"]["status"] == "up"
    assert body["components"]["meilisearch"]["status"] == "up"
    assert body["components"]["worker"]["status"] == "down"
    assert body["error"]["code"] == "not_ready"
    assert "worker" in body["error"]["message"]
    assert response.headers["Retry-After"]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis for this test alone, so stopping it cannot disturb other tests."""
    server = RedisServer().start()
    yield server
    server.stop()


def test_readyz_follows_redis_down_and_back(own_redis: RedisServer, meili_server: MeiliServer, start_worker,
                                            make_app) -> None:  # type: ignore[no-untyped-def]
    env = make_env(own_redis.url, meili_server)
    client = make_app(env).test_client()
    worker = start_worker(env)
    with redis.Redis.from_url(own_redis.url) as connection:
        worker.wait_registered(connection)

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["components"]["worker"]["workers"] == 1

    own_redis.stop()
    down = client.get("/readyz")
    assert down.status_code == 503
    body = down.get_json()
    assert body["components"]["redis"]["status"] == "down"
    assert body["error"]["message"] == "Not ready: redis is down."

    own_redis.start()
    # The worker reconnects and re-announces itself on its next heartbeat (jobs.worker.LumiWorker).
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
    assert worker.proc.poll() is None, worker.output()


def test_readyz_follows_meilisearch_down_and_back(redis_server: RedisServer, start_worker, redis_client,
                                                  make_app) -> None:  # type: ignore[no-untyped-def]
    meili = MeiliServer().start()
    try:
        env = make_env(redis_server.url, meili)
        client = make_app(env).test_client()
        worker = start_worker(env)
        worker.wait_registered(redis_client)
        assert client.get("/readyz").status_code == 200

        meili.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.get_json()["components"]["meilisearch"]["status"] == "down"
        assert down.get_json()["error"]["message"] == "Not ready: meilisearch is down."

        meili.start()
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
    finally:
        meili.stop()


def test_readyz_reports_a_stale_worker_as_down(redis_server: RedisServer, client: FlaskClient) -> None:
    # A worker that died without deregistering leaves an old heartbeat behind: not a live worker.
    from rq import Worker

    from core import keys

    with redis.Redis.from_url(redis_server.url) as connection:
        ghost = Worker(list(keys.QUEUES), connection=connection, name="ghost")
        ghost.register_birth()
        connection.hset(ghost.key, "last_heartbeat", "2020-01-01T00:00:00.000000Z")
    body = client.get("/readyz").get_json()
    assert body["components"]["worker"]["status"] == "down"
    assert "no worker heartbeat" in body["components"]["worker"]["reason"]
