"""Private Redis and Meilisearch servers on free ports: start, answer, stop, restart, leave nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from devtools.services import (
    MEILISEARCH_VERSION,
    REPO_ROOT,
    LinePrinter,
    ManagedProcess,
    MeiliServer,
    RedisServer,
    ServiceError,
    free_port,
    http_get,
    meilisearch_binary,
    redis_binary,
)
from tests.devtools.helpers import pid_alive, wait_gone

SYSTEM_REDIS_PORT = 6379  # the machine's own Redis: never started, stopped or spoken to here


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_free_port_is_free_and_bindable() -> None:
    port = free_port()
    assert 1024 < port < 65536 and port != SYSTEM_REDIS_PORT
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_binaries_are_installed() -> None:
    assert Path(redis_binary()).name == "redis-server"
    out = subprocess.run([meilisearch_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    assert MEILISEARCH_VERSION == "1.21.0"
    assert out.split()[-1] == "1.21.0", out


def test_redis_starts_answers_stops_and_restarts_on_the_same_port() -> None:
    server = RedisServer()
    assert server.port != SYSTEM_REDIS_PORT
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    with server:
        assert server.is_running()
        first_pid, workdir = server.pid, server.workdir
        assert first_pid is not None and workdir is not None and workdir.is_dir()
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping()
            client.set("k", "v")
            assert client.get("k") == b"v"
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
            assert client.info("server")["process_id"] == first_pid

            server.stop()
            assert not server.is_running()
            assert not pid_alive(first_pid)
            assert not workdir.exists(), "the temp dir it made is removed"
            assert refuses_connections(server.port)
            server.stop()  # idempotent

            port = server.port
            server.start()
            assert server.port == port and server.pid != first_pid
            client.connection_pool.disconnect()
            assert client.ping()
            assert client.get("k") is None, "ephemeral: nothing survives a restart"
            second_pid = server.pid
            server.restart()
            assert server.port == port and server.pid != second_pid and client.ping()
        finally:
            client.close()
        last_pid = server.pid
    assert last_pid is not None and not pid_alive(last_pid)
    assert server.workdir is None


def test_redis_keeps_a_given_workdir(tmp_path: Path) -> None:
    with RedisServer(workdir=tmp_path / "redis") as server:
        assert server.workdir == tmp_path / "redis"
    assert (tmp_path / "redis").is_dir()


def test_meilisearch_starts_answers_stops_and_restarts_on_the_same_port() -> None:
    server = MeiliServer()
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.master_key == "lumi-dev-master-key-0123456789"
    with server:
        first_pid = server.pid
        assert first_pid is not None
        health = http_get(f"{server.url}/health")
        assert health is not None and json.loads(health[1]) == {"status": "available"}
        unauthorised = http_get(f"{server.url}/indexes")
        assert unauthorised is not None and unauthorised[0] == 401, "the master key is enforced"
        version = http_get(f"{server.url}/version", headers={"Authorization": f"Bearer {server.master_key}"})
        assert version is not None and version[0] == 200
        assert json.loads(version[1])["pkgVersion"] == "1.21.0"

        port = server.port
        server.restart()
        assert server.port == port and server.pid != first_pid
        assert not pid_alive(first_pid)
        health = http_get(f"{server.url}/health")
        assert health is not None and health[0] == 200
        last_pid = server.pid
    assert last_pid is not None and not pid_alive(last_pid)
    assert refuses_connections(server.port)


def _post_json(url: str, body: dict[str, object], headers: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={**headers, "Content-Type": "application/json"}, method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def test_meilisearch_data_survives_a_restart_in_a_given_workdir(tmp_path: Path) -> None:
    with MeiliServer(workdir=tmp_path, master_key="a-test-master-key-of-some-length") as server:
        auth = {"Authorization": f"Bearer {server.master_key}"}
        task = _post_json(f"{server.url}/indexes", {"uid": "kept"}, auth)["taskUid"]
        deadline = time.monotonic() + 10
        while True:
            answer = http_get(f"{server.url}/tasks/{task}", headers=auth)
            assert answer is not None
            if json.loads(answer[1])["status"] == "succeeded":
                break
            assert time.monotonic() < deadline, answer
            time.sleep(0.05)
        server.restart()
        indexes = http_get(f"{server.url}/indexes", headers=auth)
        assert indexes is not None
        assert [i["uid"] for i in json.loads(indexes[1])["results"]] == ["kept"]
    assert (tmp_path / "data.ms").is_dir(), "a given workdir is kept"


def test_a_process_that_dies_before_ready_raises_with_its_last_output() -> None:
    script = "import sys; print('starting'); print('boom: bad config', file=sys.stderr); sys.exit(3)"
    process = ManagedProcess("broken", [sys.executable, "-c", script], ready=lambda: False, ready_timeout=10)
    with pytest.raises(ServiceError) as caught:
        process.start()
    message = str(caught.value)
    assert "broken exited with code 3" in message
    assert "boom: bad config" in message and "starting" in message


def test_a_process_that_never_gets_ready_is_stopped_and_reported() -> None:
    script = "import time; print('waiting forever', flush=True); time.sleep(60)"
    process = ManagedProcess("slow", [sys.executable, "-c", script], ready=lambda: False)
    with pytest.raises(ServiceError, match=r"slow was not ready after 0.5 s(.|\n)*waiting forever"):
        process.start(timeout=0.5)
    assert process.pid is not None and not pid_alive(process.pid)


def test_readiness_by_url_and_prefixed_output() -> None:
    port = free_port()
    out = io.StringIO()
    script = textwrap.dedent(
        f"""
        import http.server, functools
        print("serving", flush=True)
        http.server.ThreadingHTTPServer(("127.0.0.1", {port}), http.server.SimpleHTTPRequestHandler).serve_forever()
        """
    )
    process = ManagedProcess(
        "files", [sys.executable, "-c", script], ready=f"http://127.0.0.1:{port}/", printer=LinePrinter(out)
    )
    process.start(timeout=15)
    try:
        assert process.is_running()
    finally:
        assert process.stop() is not None
    assert "files    | serving" in out.getvalue()
    assert "\033[" not in out.getvalue(), "no colour codes when the stream is not a terminal"


def test_stop_kills_the_whole_group_even_when_term_is_ignored(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        open({str(pids)!r} + ".tmp", "w").write(f"{{os.getpid()}} {{child.pid}}")
        os.rename({str(pids)!r} + ".tmp", {str(pids)!r})  # whole, once the name exists
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    process = ManagedProcess("stubborn", [sys.executable, "-c", script], ready=pids.exists, stop_timeout=0.5)
    process.start(timeout=15)
    try:
        leader, child = (int(p) for p in pids.read_text().split())
    finally:
        stopped = process.stop()
    assert stopped == -signal.SIGKILL
    assert not pid_alive(leader)
    assert wait_gone(child, 5), "the grandchild in the same process group is killed too"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sessions are read from /proc")
def test_stop_also_kills_a_grandchild_that_left_the_group(tmp_path: Path) -> None:
    # RQ's work horse calls setpgrp(): a group kill misses it, a session kill does not.
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        child = os.fork()
        if child == 0:
            os.setpgrp()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(60)
            os._exit(0)
        # Written whole, then renamed: the test reads it as soon as the name exists.
        open({str(pids)!r} + ".tmp", "w").write(f"{{os.getpid()}} {{child}}")
        os.rename({str(pids)!r} + ".tmp", {str(pids)!r})
        time.sleep(60)
        """
    )
    process = ManagedProcess("forker", [sys.executable, "-c", script], ready=pids.exists, stop_timeout=5)
    process.start(timeout=15)
    try:
        leader, child = (int(p) for p in pids.read_text().split())
        assert os.getpgid(child) == child != os.getpgid(leader)
    finally:
        process.stop()
    assert not pid_alive(leader)
    assert wait_gone(child, 5), "the grandchild in a process group of its own is killed too"


def test_servers_die_when_their_parent_is_killed() -> None:
    """A SIGKILLed test run (no chance to clean up) leaves no Redis or Meilisearch behind."""
    script = textwrap.dedent(
        """
        import time
        from devtools.services import MeiliServer, RedisServer
        r = RedisServer().start()
        m = MeiliServer().start()
        print(r.pid, m.pid, r.workdir, m.workdir, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        redis_pid, meili_pid, *dirs = line.split()
        assert pid_alive(int(redis_pid)) and pid_alive(int(meili_pid))
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(int(redis_pid), 10), "redis-server outlived its killed parent"
        assert wait_gone(int(meili_pid), 10), "meilisearch outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    for leftover in dirs:  # the killed parent could not remove its temp dirs
        shutil.rmtree(leftover, ignore_errors=True)


def test_missing_meilisearch_binary_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("devtools.services.REPO_ROOT", tmp_path)
    with pytest.raises(ServiceError, match=r"run `make dev` or scripts/bootstrap.sh"):
        meilisearch_binary()
