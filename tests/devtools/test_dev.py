"""`make dev` (devtools.dev): environment, start order, readiness, and stopping everything it started."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from devtools.dev import DEV_DEFAULTS, DEV_ONLY_FERNET_KEY, ChildExited, build_env
from devtools.services import REPO_ROOT, LinePrinter, ServiceError, free_port
from tests.devtools.fakes import FakeStack
from tests.devtools.helpers import LUMI_VARS, Driven, dev_args, pid_alive, wait_gone

# --- environment ------------------------------------------------------------------------------


def test_dev_defaults_are_complete_and_the_fernet_key_is_valid() -> None:
    env = build_env({}, dotenv_path=None)
    assert env["SHOPIFY_API_KEY"] == "lumi-dev-client-id"
    assert env["SHOPIFY_API_SECRET"] == "lumi-dev-client-secret-0123456789abcdef"
    assert env["PORT"] == "8000" and env["WEB_CONCURRENCY"] == "2" and env["LUMI_ENV"] == "development"
    assert env["APP_URL"] == "http://localhost:8000"
    assert env["LUMI_ENCRYPTION_KEYS"] == DEV_ONLY_FERNET_KEY
    Fernet(DEV_ONLY_FERNET_KEY.encode())
    assert "REDIS_URL" not in env and "MEILI_URL" not in env, "unset → make dev starts its own servers"


def test_real_environment_wins_over_dotenv_which_wins_over_defaults(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9100\nSHOPIFY_API_KEY=from-dotenv\nWEB_CONCURRENCY=3\n# a comment\n")
    env = build_env({"SHOPIFY_API_KEY": "from-env", "HOME": "/root"}, dotenv_path=dotenv)
    assert env["SHOPIFY_API_KEY"] == "from-env"
    assert env["WEB_CONCURRENCY"] == "3"
    assert env["PORT"] == "9100" and env["APP_URL"] == "http://localhost:9100", "APP_URL follows PORT"
    assert env["SHOPIFY_API_SECRET"] == DEV_DEFAULTS["SHOPIFY_API_SECRET"]
    assert env["HOME"] == "/root" and env["PYTHONUNBUFFERED"] == "1"


# --- the stack, in-process, with stand-ins for devshop, release, web and worker ---------------------


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in LUMI_VARS}
    environ["PORT"] = str(free_port())
    return build_env(environ, dotenv_path=None)


@pytest.fixture
def stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[FakeStack]:
    made = FakeStack(stack_env, LinePrinter(io.StringIO()), data_dir=tmp_path / "dev-data")
    yield made
    made.stop()


def output_of(stack: FakeStack) -> str:
    stream = stack.printer.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def started_pids(stack: FakeStack) -> list[int]:
    out = output_of(stack)
    return [int(p) for p in re.findall(r"\(pid (\d+)", out)]


def test_stack_starts_in_order_waits_for_readyz_and_stops_everything(stack: FakeStack, tmp_path: Path) -> None:
    stack.start()
    env = stack.env
    assert env["REDIS_URL"].startswith("redis://127.0.0.1:") and ":6379/" not in env["REDIS_URL"]
    assert env["MEILI_URL"].startswith("http://127.0.0.1:")
    assert env["SHOPIFY_ADMIN_BASE_URL"] == env["DEVSHOP_URL"] + "/shops/{shop}"
    assert [r.name for r in stack.running] == ["redis", "meilisearch", "devshop", "mailbox", "web", "worker"]
    assert (tmp_path / "dev-data" / "meilisearch" / "data.ms").is_dir()

    assert stack.wait_ready(timeout=20) == (200, '{"status":"ready"}')
    out = output_of(stack)
    assert "/readyz: 503" in out, "what /readyz says while waiting is shown"
    assert re.search(r"release +\| fake exiting with 0", out), "children's lines are prefixed with their name"
    assert "Lumi is running" in stack.banner()

    pids = started_pids(stack)
    assert len(pids) == 6 and all(pid_alive(p) for p in pids)
    stack.stop()
    assert stack.running == []
    assert all(wait_gone(p, 5) for p in pids)
    out = output_of(stack)
    order = re.findall(r"stopping (\w+)", out)
    assert order == ["worker", "web", "mailbox", "devshop", "meilisearch", "redis"], "reverse start order"


def test_a_failing_release_step_stops_start_up(stack: FakeStack) -> None:
    stack.env["FAKE_RELEASE_CODE"] = "3"
    with pytest.raises(ServiceError, match="release step .* exited with code 3"):
        stack.start()
    assert [r.name for r in stack.running] == ["redis", "meilisearch", "devshop", "mailbox"]
    pids = started_pids(stack)
    stack.stop()
    assert all(wait_gone(p, 5) for p in pids)


def test_a_child_that_exits_is_named(stack: FakeStack) -> None:
    stack.env["FAKE_WORKER_SECONDS"] = "0.2"
    stack.start()
    with pytest.raises(ChildExited, match="worker exited unexpectedly with code 0"):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stack.check_children()
            time.sleep(0.05)


def test_an_occupied_port_is_refused_before_anything_starts(stack: FakeStack) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", int(stack.env["PORT"])))
        sock.listen()
        with pytest.raises(ServiceError, match="already in use"):
            stack.start()
    assert stack.running == []


# --- `python -m devtools.dev` as a process ------------------------------------------------------


@pytest.fixture
def process_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LUMI_VARS}
    env["PORT"] = str(free_port())
    return env


def test_check_mode_prints_readyz_and_leaves_nothing_running(process_env: dict[str, str], tmp_path: Path) -> None:
    driven = Driven(["--check", *dev_args(tmp_path)], process_env)
    try:
        code = driven.finish(60)
    finally:
        driven.kill()
    assert code == 0, driven.output
    assert '/readyz: 200 {"status":"ready"}' in driven.output
    pids = [int(p) for p in re.findall(r"\(pid (\d+)", driven.output)]
    assert len(pids) == 6 and all(wait_gone(p, 5) for p in pids)


def test_sigterm_stops_everything_and_exits_zero(process_env: dict[str, str], tmp_path: Path) -> None:
    driven = Driven(dev_args(tmp_path), process_env)
    try:
        driven.wait_for("Ctrl-C stops everything", 60)
        pids = [int(p) for p in re.findall(r"\(pid (\d+)", driven.output)]
        assert len(pids) == 6 and all(pid_alive(p) for p in pids)
        driven.proc.send_signal(signal.SIGTERM)
        code = driven.finish(30)
    finally:
        driven.kill()
    assert code == 0, driven.output
    assert "SIGTERM: stopping" in driven.output
    assert all(wait_gone(p, 5) for p in pids)


def test_an_unexpected_exit_stops_everything_and_fails(process_env: dict[str, str], tmp_path: Path) -> None:
    process_env["FAKE_WORKER_SECONDS"] = "3"
    driven = Driven(dev_args(tmp_path), process_env)
    try:
        code = driven.finish(60)
    finally:
        driven.kill()
    assert code == 1, driven.output
    assert "worker exited unexpectedly with code 0: stopping everything" in driven.output
    pids = [int(p) for p in re.findall(r"\(pid (\d+)", driven.output)]
    assert all(wait_gone(p, 5) for p in pids)


REAL_STACK = [
    REPO_ROOT / "devshop" / "__main__.py",
    REPO_ROOT / "feeds" / "release.py",
    REPO_ROOT / "jobs" / "worker.py",
    REPO_ROOT / "gunicorn.conf.py",
]


@pytest.mark.slow
@pytest.mark.skipif(
    not all(p.exists() for p in REAL_STACK),
    reason="the real stack is not all there yet (needs devshop/__main__.py, feeds/release.py, jobs/worker.py, ...)",
)
def test_make_dev_check_smoke(process_env: dict[str, str], tmp_path: Path) -> None:
    """The real `python -m devtools.dev --check`: every process starts and /readyz turns 200."""
    driven = Driven(["--check", *dev_args(tmp_path)], process_env, fake=False)
    try:
        code = driven.finish(120)
    finally:
        driven.kill()
    assert code == 0, driven.output
    assert "/readyz: 200" in driven.output
