"""Test harness: private Redis and Meilisearch servers on free ports, the app, real workers.

The harness only ever talks to servers it started itself (never the machine's
Redis on 6379), wipes them between tests and stops them at the end.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import meilisearch
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from devtools.services import REPO_ROOT, MeiliServer, RedisServer

# A fixed, test-only Fernet key (never used outside tests).
TEST_FERNET_KEY = "oUJZp-nXq2F4uydU4C9ekvATopcoYOF3I1XYNAzgNMY="
TEST_API_KEY = "lumi-test-client-id"
TEST_API_SECRET = "lumi-test-client-secret-0123456789abcdef"
SHARED_DIR = REPO_ROOT.parent / "shared"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than there are cores. Much of a test's time is spent waiting on its
    subprocesses (worker, devshop, Chromium), so a third worker on two cores keeps both busy."""
    return (os.cpu_count() or 1) + 1


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage after every test, so an unclosed socket or file fails the test that leaked it.

    Without this, a leak held in a reference cycle surfaces whenever the collector next runs:
    often at interpreter shutdown, as a warning (an error here) that names no test.
    """
    yield
    gc.collect()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def meili_server() -> Iterator[MeiliServer]:
    server = MeiliServer().start()
    yield server
    server.stop()


def make_env(redis_url: str, meili: MeiliServer, **overrides: str) -> dict[str, str]:
    """A complete, valid environment for a Lumi process under test."""
    env = {
        "LUMI_ENV": "test",
        "SHOPIFY_API_KEY": TEST_API_KEY,
        "SHOPIFY_API_SECRET": TEST_API_SECRET,
        "APP_URL": "http://localhost:8000",
        "REDIS_URL": redis_url,
        "MEILI_URL": meili.url,
        "MEILI_MASTER_KEY": meili.master_key,
        "LUMI_ENCRYPTION_KEYS": TEST_FERNET_KEY,
        "LOG_LEVEL": "INFO",
        # Fail fast in tests where a component is stopped on purpose.
        "REDIS_TIMEOUT": "0.5",
        "MEILI_TIMEOUT": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def meili_client(meili_server: MeiliServer) -> Iterator[meilisearch.Client]:
    client = meilisearch.Client(meili_server.url, meili_server.master_key)
    _drop_indexes(client)
    yield client
    _drop_indexes(client)


def _drop_indexes(client: meilisearch.Client) -> None:
    for index in client.get_raw_indexes({"limit": 1000})["results"]:
        client.wait_for_task(client.delete_index(index["uid"]).task_uid)


@pytest.fixture
def env(redis_client: redis.Redis, redis_server: RedisServer, meili_server: MeiliServer) -> dict[str, str]:
    """Environment for the app and workers, pointing at the (wiped) private servers."""
    return make_env(redis_server.url, meili_server)


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[Flask]:
    from web import create_app

    app = create_app(env)
    yield app
    app.extensions["lumi.services"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def python_env(env: dict[str, str]) -> dict[str, str]:
    """The environment for a child Python process: only what we pass, plus what Python needs."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}}
    keep["PYTHONPATH"] = str(REPO_ROOT)
    keep["PYTHONUNBUFFERED"] = "1"
    keep.update(env)
    return keep


class WorkerProcess:
    """A real `python -m jobs.worker` process (forking RQ worker) for end-to-end tests."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.worker"],
            cwd=REPO_ROOT,
            env=python_env(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_registered(self, queue_redis: redis.Redis, timeout: float = 20) -> None:
        from rq import Worker

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.output()}")
            if any(w.pid == self.proc.pid for w in Worker.all(connection=queue_redis)):
                return
            time.sleep(0.05)
        raise TimeoutError(f"worker did not register within {timeout} s: {self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self._log.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # RQ's warm shutdown: the current job may finish
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # The work horse RQ forks for a job outlives a killed main process; left running, it would write into
        # the next test's Redis (same shop names). The worker has its own session: end the whole group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator:
    """Start real worker processes: `start_worker(env)`; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(worker_env: dict[str, str]) -> WorkerProcess:
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    start.started = started  # type: ignore[attr-defined]
    yield start
    for worker in started:
        worker.stop()


# --- The whole stack over real HTTP: devshop ⇄ Lumi -----------------------------------------------

DEMO_SHOP = "lumi-demo.myshopify.com"
OTHER_SHOP = "other-shop.myshopify.com"


class AppServer:
    """Lumi's Flask app served on a real port in a thread, so devshop can call it (webhooks, proxy)."""

    def __init__(self, app: Flask, listener: socket.socket) -> None:
        import threading

        from werkzeug.serving import make_server

        from devshop.testing import QuietHandler

        self.app = app
        port = listener.getsockname()[1]
        # Serve on the socket reserved before devshop was configured with this URL: picking a "free" port
        # and binding it later races with every other connection on the machine.
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler,
                                   fd=listener.fileno())
        listener.close()  # werkzeug serves on its own duplicate of the descriptor
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


class Stack:
    """devshop and Lumi talking to each other over HTTP, with helpers for multi-step flows."""

    def __init__(self, env: dict[str, str], devshop_config: dict[str, object] | None = None) -> None:
        import requests

        from devshop.testing import DevShopControl, DevShopServer

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        app_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config: dict[str, object] = {
            "API_KEY": TEST_API_KEY,
            "API_SECRET": TEST_API_SECRET,
            "APP_URL": app_url,
            "SHOPS": {DEMO_SHOP: {"products": 50, "seed": 1}, OTHER_SHOP: {"products": 20, "seed": 2}},
            "WEBHOOK_RETRY_SCHEDULE": [0.05, 0.1],
        }
        config.update(devshop_config or {})
        self.devshop = DevShopServer(config).start()
        try:
            self.control = DevShopControl(self.devshop.url)
            # As in make dev: devshop's admin and its App Bridge stand-in (Shopify's CDN is neither reachable
            # offline nor able to talk to devshop's admin frame).
            self.env = {**env, "APP_URL": app_url, "SHOPIFY_ADMIN_BASE_URL": self.devshop.admin_base_url,
                        "SHOPIFY_APP_BRIDGE_URL": f"{self.devshop.url}/_devshop/app-bridge.js"}
            from web import create_app

            self.app = create_app(self.env)
            self.server = AppServer(self.app, listener)
        except BaseException:
            # Never leave a half-built stack behind: a failed set-up must not poison later tests.
            self.devshop.stop()
            listener.close()
            raise
        self.url = app_url
        self.http = requests.Session()

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.app.extensions["lumi.services"]

    def install(self, shop: str = DEMO_SHOP):  # type: ignore[no-untyped-def]
        """The merchant clicks Install: app → devshop authorize → app callback → admin app page."""
        response = self.http.get(f"{self.url}/auth/install", params={"shop": shop}, timeout=30)
        assert response.status_code == 200, (response.status_code, response.text[:500])
        assert [r.status_code for r in response.history] == [302, 302, 302], response.history
        return response

    def session_token(self, shop: str = DEMO_SHOP, **claims: object) -> str:
        import time as _time

        from shopify.session_tokens import encode_session_token

        return encode_session_token(shop, api_key=TEST_API_KEY, secret=TEST_API_SECRET, now=int(_time.time()),
                                    **claims)

    def api(self, method: str, path: str, shop: str = DEMO_SHOP, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.session_token(shop)}"}
        return self.http.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        self.server.stop()
        self.services.close()
        self.devshop.stop()
        self.http.close()


@pytest.fixture
def make_stack(env: dict[str, str]) -> Iterator:
    stacks: list[Stack] = []

    def make(**devshop_config: object) -> Stack:
        stack = Stack(env, devshop_config)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def stack(make_stack) -> Stack:  # type: ignore[no-untyped-def]
    return make_stack()


def redis_snapshot(client: redis.Redis) -> dict[str, object]:
    """Every key with its type and value, to prove a refused request wrote nothing (RQ's values are bytes)."""
    kwargs = client.connection_pool.connection_kwargs
    client = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0))
    snapshot: dict[str, object] = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key).decode()
        if kind == "string":
            value: object = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        else:
            value = kind
        snapshot[key.decode()] = value
    return snapshot


# --- the browser: one Playwright and one Chromium per xdist worker, shared by every browser test package --------
# (Playwright's sync API refuses a second instance in a process while one runs, so no package may start its own.)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps", "--mute-audio"]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless system Chromium, one per xdist worker (session scope is per worker process)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: the browser tests need Debian's chromium (`make bootstrap` "
                    "installs it; `apt-get install chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
