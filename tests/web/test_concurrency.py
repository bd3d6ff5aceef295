"""The web process holds many streaming chat turns at once.

gunicorn.conf.py runs gevent workers: a turn waiting on the model holds a greenlet, not a thread, so one worker
serves far more turns at once than the old processes × threads (gthread, 8 threads) allowed, a feed request
is answered while they wait, and a quiet stream still sends its keep-alive comments.
"""

from __future__ import annotations

import http.client
import json
import runpy
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

import web.chat
from core.clients import make_redis
from core.settings import load_settings
from devmodel.server import GENERIC_REPLY
from devmodel.testing import DevModelServer
from devtools.services import REPO_ROOT, free_port
from feeds.index import ensure_indexes
from shopify.signatures import sign_proxy
from tests.conftest import DEMO_SHOP, TEST_API_SECRET, Stack, python_env

GUNICORN = [str(REPO_ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "web:create_app()"]
MODEL_DELAY_S = 3.0  # devmodel waits this long before answering each turn
TURNS = 40  # concurrent streamed turns against ONE worker
OLD_THREADS = 8  # what one gthread worker held at once (the former WEB_THREADS default)
QUESTION = "Do you ship to Canada?"  # answered by the model with text, no tool, nothing escalated
SLOW_QUESTION = "Do you ship to Canada by boat?"  # scripted to stay silent longer than the keep-alive interval
SLOW_REPLY = "Yes, we ship to Canada."
SECRET = "X-Lumi-Session-Secret"


def signed(path: str) -> str:
    pairs = [("shop", DEMO_SHOP), ("logged_in_customer_id", ""), ("path_prefix", "/apps/lumi"),
             ("timestamp", str(int(time.time())))]
    return f"{path}?" + urlencode([*pairs, ("signature", sign_proxy(pairs, TEST_API_SECRET))])


@dataclass
class Stream:
    """One shopper's streamed turn, on its own connection: what arrived, in order, and when it ended."""

    lines: list[str] = field(default_factory=list)
    ended: float = 0.0  # perf_counter when the stream closed
    error: str = ""

    @property
    def final(self) -> dict[str, Any] | None:
        for event, data in zip(self.lines, self.lines[1:], strict=False):
            if event == "event: final" and data.startswith("data: "):
                return json.loads(data[6:])  # type: ignore[no-any-return]
        return None


def stream_turn(port: int, session: tuple[str, str], text: str, out: Stream) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", signed(f"/proxy/chat/sessions/{session[0]}/messages"), body=json.dumps({"text": text}),
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream", SECRET: session[1]})
        response = conn.getresponse()
        if response.status != 200:
            out.error = f"{response.status} {response.read()[:300]!r}"
            return
        while line := response.readline():
            if line.strip():
                out.lines.append(line.decode().rstrip("\r\n"))
    except (OSError, http.client.HTTPException) as err:
        out.error = repr(err)
    finally:
        out.ended = time.perf_counter()
        conn.close()


@pytest.fixture
def devmodel() -> Iterator[DevModelServer]:
    with DevModelServer({"DELAY_S": MODEL_DELAY_S}) as server:
        yield server


@pytest.fixture
def gunicorn(stack: Stack, devmodel: DevModelServer, meili_client: Any, tmp_path: Path) -> Iterator[int]:
    """The real web process (gunicorn.conf.py, one worker) on the stack's Redis, Meilisearch and devshop."""
    ensure_indexes(meili_client)
    stack.install()
    port = free_port()
    env = {**stack.env, "PORT": str(port), "WEB_CONCURRENCY": "1", "OPENAI_API_KEY": devmodel.api_key,
           "OPENAI_BASE_URL": devmodel.base_url, "OPENAI_MODEL": "devmodel-test", "LOG_LEVEL": "WARNING"}
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 - closed below, read on failure
    proc = subprocess.Popen(GUNICORN, cwd=REPO_ROOT, env=python_env(env), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"gunicorn did not start:\n{log.read()}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
    assert "Traceback" not in output, output[-3000:]
    # Nothing the master imported (gunicorn.conf.py, core.settings) held ssl state the worker's patching missed.
    assert "MonkeyPatchWarning" not in output, output[-3000:]


def new_session(port: int) -> tuple[str, str]:
    response = requests.post(f"http://127.0.0.1:{port}" + signed("/proxy/chat/sessions"), json={}, timeout=30)
    assert response.status_code == 201, response.text
    session = response.json()["session"]
    return session["id"], session["secret"]


def model_seconds(devmodel: DevModelServer) -> float:
    """One streamed chat completion straight from devmodel: the model time every turn below waits for."""
    started = time.perf_counter()
    with requests.post(f"{devmodel.base_url}/chat/completions", stream=True, timeout=30,
                       headers={"Authorization": f"Bearer {devmodel.api_key}"},
                       json={"model": "devmodel-test", "stream": True,
                             "messages": [{"role": "user", "content": QUESTION}]}) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_content(None))
    assert b"[DONE]" in body
    return time.perf_counter() - started


def test_one_worker_streams_many_more_turns_at_once_than_threads_allowed_and_feeds_answer_meanwhile(
        gunicorn: int, devmodel: DevModelServer) -> None:
    port = gunicorn
    model_time = model_seconds(devmodel)
    assert model_time >= MODEL_DELAY_S
    devmodel.control.configure(delay_s=0)  # a first turn warms the worker up (imports, model client, shop profile)
    warm = Stream()
    stream_turn(port, new_session(port), QUESTION, warm)
    assert warm.final is not None, (warm.error, warm.lines[-3:])
    devmodel.control.reset()  # back to MODEL_DELAY_S
    devmodel.control.script_text(SLOW_REPLY, delay_s=web.chat.KEEPALIVE_S + 1.5, match=SLOW_QUESTION)
    sessions = [new_session(port) for _ in range(TURNS + 1)]

    streams = [Stream() for _ in sessions]
    texts = [QUESTION] * TURNS + [SLOW_QUESTION]
    threads = [threading.Thread(target=stream_turn, args=(port, s, t, out), daemon=True)
               for s, t, out in zip(sessions, texts, streams, strict=True)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    # Every turn is waiting on the model now (devmodel has their requests); a feed request meanwhile.
    devmodel.control.wait_for_requests(TURNS + 1, timeout=60)
    feed = requests.get(f"http://127.0.0.1:{port}/proxy/feeds/new-arrivals",
                        params={"shop": DEMO_SHOP, "limit": "12"}, timeout=60)
    feed_answered = time.perf_counter()
    for thread in threads:
        thread.join(90)

    turns, slow = streams[:TURNS], streams[TURNS]
    for stream in streams:
        final = stream.final
        assert final is not None, (stream.error, stream.lines[-3:])
        assert final["responder"] == "model" and not final["fallback"], final
    assert {s.final["message"]["text"] for s in turns} == {GENERIC_REPLY}  # type: ignore[index]
    # One worker had every turn waiting on the model at once: they all ended within about one model time, where
    # 8 threads would have needed TURNS / 8 = 5 model times back to back.
    took = max(s.ended for s in turns) - started
    assert took < (TURNS / OLD_THREADS) / 2 * model_time, (took, model_time)
    # The feed did not queue behind the turns: it was answered while every one of them still waited.
    assert feed.status_code == 200, feed.text[:300]
    assert feed_answered < min(s.ended for s in turns)
    # A turn quiet for longer than the keep-alive interval sent comments before its answer.
    first_delta = next(i for i, line in enumerate(slow.lines) if line == "event: delta")
    assert slow.lines[0] == ": lumi" and ": keep-alive" in slow.lines[1:first_delta], slow.lines[:4]
    assert slow.final["message"]["text"] == SLOW_REPLY  # type: ignore[index]


def test_the_default_web_process_holds_200_streaming_turns_per_dyno(env: dict[str, str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("WEB_CONCURRENCY", "WEB_WORKER_CONNECTIONS"):  # the defaults
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    assert config["worker_class"] == "gevent"
    assert config["workers"] * config["worker_connections"] >= 200


def test_one_web_workers_redis_client_serves_200_requests_waiting_on_replies_at_once(env: dict[str, str]) -> None:
    """A gevent worker may have a Redis command in flight for each of its requests at once: redis-py's default pool
    refused the 101st ("Too many connections"), and a pool capped far below would make them time out waiting."""
    client = make_redis(load_settings({**env, "WEB_CONCURRENCY": "1"}))
    holders = 200
    start = threading.Barrier(holders)
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            start.wait(timeout=30)
            client.wait(1, 200)  # no replica answers: holds its connection 0.2 s (under REDIS_TIMEOUT, 0.5 s)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            failures.append(err)

    threads = [threading.Thread(target=hold) for _ in range(holders)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        client.close()
    assert not failures, failures[:3]
