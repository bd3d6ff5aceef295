"""Storefront chat benchmarks: every number printed, every ratio measured side by side in this run.

One private stack (Redis, Meilisearch, devshop, as bench.sync builds it; one installed shop, no catalogue: these
questions call no tool), the devmodel stand-in as its own process answering every request after a fixed delay
(`python -m devmodel --delay 0.2 --token-delay 0.005`: its canned ~44-token reply, streamed token by token), and
Lumi's real app under gunicorn on loopback (gunicorn.conf.py: gevent workers, WEB_CONCURRENCY=2,
LOG_LEVEL=WARNING, serving `web:create_app()` as the Procfile does). Every shopper question is a plain one the
model answers with text and no tool ("Do you ship to Canada?"); conversations are three turns long.

The model baseline is the very request Lumi sends: the chat completion bodies Lumi sent devmodel for a warm-up
conversation (system prompt, history, tools, temperature) are replayed, streamed, through the real openai SDK
from this process, for the same position in the conversation.

(1) Server overhead per turn: sequential non-streamed turns (`POST /proxy/chat/sessions/<id>/messages`, JSON)
    interleaved one to one with the model alone (the same request straight to devmodel).
    Goal: (p50 turn - p50 model) / p50 model <= 10 %. The same at p90 is printed for information.
(2) Time to first streamed byte (`Accept: text/event-stream`): send -> first `event: delta` line through Lumi,
    against send -> first content chunk from devmodel via the SDK, interleaved one to one. The `: lumi` comment
    (sent at once) and the model's first whole word (the earliest text Lumi's fact guard can release: it lets
    text through at word boundaries) are printed for information.
(3) Turns/s with concurrent shoppers (16 threads, each its own keep-alive connection and its own sessions,
    starts staggered over one model time) through gunicorn on this machine, against devmodel's own throughput
    at the same concurrency straight through the SDK, and the ceiling the fixed delay allows (concurrency /
    model time). Turns are counted as they complete inside a fixed window while every shopper is busy. A
    keep-alive connection stays with the worker that accepted it, so how the 16 connections fell on the two
    workers is printed (read from /proc mid-window); a waiting turn holds a greenlet, not a thread, so an
    uneven split (10 + 6) queues nothing. `--reconnect` opens a new connection per turn instead.
(4) Concurrent streaming turns: 200 shoppers each open one streamed turn (`Accept: text/event-stream`, through
    the signed proxy route, each on a new connection), all started within 1 s, against a second devmodel
    answering after 5 s (`python -m devmodel --delay 5 --token-delay 0.005`) and a second gunicorn with the
    DEFAULT web settings (no WEB_CONCURRENCY: core.settings' default), its own shop with a synced catalogue.
    A shopper's socket gives up after 30 s without a byte, as Heroku's router does (H12). Printed: turns
    completed / 200 (goal all); server overhead per turn, (turn - model) / model at p50 and p99 against the
    same request sent 200 at once straight to devmodel through the SDK (goal <= 10 %); feed cache-hit p99
    (one keep-alive connection, sequential, warmed and ETag-checked) while all 200 turns are in flight, against
    the idle p99 measured just before (goal <= 2x); the peak RSS sum of the gunicorn master and workers,
    sampled from /proc every 0.1 s (goal <= 512 MiB); CPU per turn and peak Redis clients for information.
    `--quick` runs it unchanged (about two model times).

Run: `python -m bench.chat [--quick] [--only 1,2,3,4] [--reconnect] [--profile]`.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import itertools
import json
import os
import pstats
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import openai

from bench.feeds import _pct, loadavg, ms, tree_cpu_seconds
from bench.sync import GOAL_HEADER, HUGE, Stack, _descendants, child_env, met, say, table
from devtools.services import REPO_ROOT, ManagedProcess, free_port, http_ok

SHOP = "bench-chat.myshopify.com"
PATH_PREFIX = "/apps/lumi"
SECRET_HEADER = "X-Lumi-Session-Secret"
MODEL_KEY = "sk-bench-chat-0123456789"
MODEL_NAME = "devmodel-bench"
MODEL_DELAY_S = 0.2  # devmodel: before the first byte of every answer
MODEL_TOKEN_DELAY_S = 0.005  # devmodel: before each streamed token
# Plain shopper questions: text answers, no tool, no order, no unhappy words (nothing escalates). All three score
# exactly 0.0 with chat.sentiment on purpose: ChatStore.count sends an integral float delta (0.0) as HINCRBY, which
# Redis refuses once the bucket's sentiment_sum holds a float (any earlier non-neutral shopper), so a neutral turn
# would answer 500 (e.g. "Can I pay with PayPal?" scores -0.1027, and the next neutral turn fails).
QUESTIONS = ("Do you ship to Canada?", "How long does shipping take to Canada?",
             "Is there a shop in Lyon I could visit?")
TURNS_PER_SESSION = len(QUESTIONS)

# Goals from the issue.
GOAL_OVERHEAD = 0.10  # (1) (p50 turn - p50 model) / p50 model <= this

WEB_ENV = {"WEB_CONCURRENCY": "2", "LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Sizes:
    turns: int  # (1) sequential measured turns (and as many direct model calls)
    streams: int  # (2) sequential measured streamed turns (and as many direct streams)
    seconds: float  # (3) counting window of one load phase
    rounds: int  # (3) load phases per target, interleaved (best reported)
    concurrency: int  # (3) concurrent shoppers


FULL = Sizes(turns=45, streams=25, seconds=5.0, rounds=2, concurrency=16)
QUICK = Sizes(turns=10, streams=6, seconds=3.0, rounds=1, concurrency=16)
WARMUP_TURNS = TURNS_PER_SESSION  # turns (and model calls) sent and discarded before (1) and (2)


# --- Lumi's storefront chat, signed as Shopify's app proxy signs ------------------------------------------------


class Lumi:
    """One keep-alive connection to gunicorn, speaking the chat API with freshly signed query strings."""

    def __init__(self, port: int, api_secret: str, timeout: float = 30, shop: str = SHOP) -> None:
        self.port = port
        self.api_secret = api_secret
        self.shop = shop
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def path(self, suffix: str) -> str:
        from shopify.signatures import sign_proxy

        pairs = [("shop", self.shop), ("logged_in_customer_id", ""), ("path_prefix", PATH_PREFIX),
                 ("timestamp", str(int(time.time())))]
        return f"/proxy/chat/{suffix}?" + urlencode([*pairs, ("signature", sign_proxy(pairs, self.api_secret))])

    def _post(self, suffix: str, body: dict[str, Any], headers: dict[str, str]) -> http.client.HTTPResponse:
        self.conn.request("POST", self.path(suffix), body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", **headers})
        return self.conn.getresponse()

    def create_session(self) -> tuple[str, str]:
        response = self._post("sessions", {}, {})
        data = response.read()
        if response.status != 201:
            raise RuntimeError(f"POST sessions: {response.status} {data[:500]!r}")
        session = json.loads(data)["session"]
        return session["id"], session["secret"]

    def turn(self, session: tuple[str, str], text: str) -> dict[str, Any]:
        """One non-streamed turn; the JSON answer (raises on anything but a model reply)."""
        response = self._post(f"sessions/{session[0]}/messages", {"text": text}, {SECRET_HEADER: session[1]})
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST messages: {response.status} {data[:500]!r}")
        answer = json.loads(data)
        check_answer(answer)
        return answer

    def stream_turn(self, session: tuple[str, str], text: str) -> tuple[float, float, float]:
        """One streamed turn: seconds from sending to the `: lumi` comment, to the first `event: delta` line, and
        to the end of the stream (whose `final` event is checked)."""
        t0 = time.perf_counter()
        response = self._post(f"sessions/{session[0]}/messages", {"text": text},
                              {SECRET_HEADER: session[1], "Accept": "text/event-stream"})
        if response.status != 200 or "text/event-stream" not in (response.getheader("Content-Type") or ""):
            raise RuntimeError(f"streamed POST messages: {response.status} {response.read()[:500]!r}")
        comment = delta = 0.0
        event = ""
        final: dict[str, Any] | None = None
        text_seen = ""
        while True:
            line = response.readline()
            if not line:
                break
            now = time.perf_counter() - t0
            line = line.rstrip(b"\r\n")
            if line.startswith(b":") and not comment:
                comment = now
            elif line.startswith(b"event: "):
                event = line[7:].decode()
                if event == "delta" and not delta:
                    delta = now
            elif line.startswith(b"data: "):
                data = json.loads(line[6:])
                if event == "delta":
                    text_seen += data["text"]
                elif event == "final":
                    final = data
                else:
                    raise RuntimeError(f"stream event {event!r}: {data}")
        total = time.perf_counter() - t0
        if final is None or not comment or not delta:
            raise RuntimeError(f"incomplete stream (comment {comment}, delta {delta}, final {final})")
        check_answer(final)
        if text_seen.strip() != final["message"]["text"]:
            raise RuntimeError("the deltas do not add up to the final text")
        return comment, delta, total


def check_answer(answer: dict[str, Any]) -> None:
    from devmodel.server import GENERIC_REPLY

    if (answer.get("responder") != "model" or answer.get("fallback") or answer.get("replaced")
            or answer.get("escalated") or answer["message"]["text"] != GENERIC_REPLY):
        raise RuntimeError(f"not the model's plain answer: {json.dumps(answer)[:600]}")


class Sessions:
    """Pre-created sessions, handed out one per conversation (more are created if the pool runs dry)."""

    def __init__(self, lumi: Lumi, count: int) -> None:
        self.lumi = lumi
        self.pool = [lumi.create_session() for _ in range(count)]

    def take(self) -> tuple[str, str]:
        return self.pool.pop() if self.pool else self.lumi.create_session()


# --- the model alone ------------------------------------------------------------------------------------------------


class Model:
    """The same chat completion requests Lumi sends, straight to devmodel through the openai SDK."""

    def __init__(self, base_url: str) -> None:
        # As chat.llm.ModelClient builds its client (one per process, shared by every thread).
        self.client = openai.OpenAI(api_key=MODEL_KEY, base_url=base_url, timeout=20.0, max_retries=1)

    def call(self, body: dict[str, Any]) -> tuple[float, float, float]:
        """Seconds from sending to the first content chunk, to the first whole word, and to the end."""
        t0 = time.perf_counter()
        first = word = 0.0
        text = ""
        stream = self.client.chat.completions.create(**body)
        with stream:
            for chunk in stream:
                if not chunk.choices or not chunk.choices[0].delta.content:
                    continue
                now = time.perf_counter() - t0
                text += chunk.choices[0].delta.content
                if not first:
                    first = now
                if not word and (" " in text or "\n" in text):
                    word = now
        total = time.perf_counter() - t0
        if not first or not text:
            raise RuntimeError("the model streamed no text")
        return first, word or total, total


def recorded_bodies(control: Any) -> list[dict[str, Any]]:
    bodies = control.bodies()
    for body in bodies:
        if not body.get("stream"):
            raise RuntimeError("Lumi sent a non-streamed chat completion request")
    return bodies


# --- CPU --------------------------------------------------------------------------------------------------------------


class Cpu:
    """CPU seconds used by named process trees (and this process) between start() and stop()."""

    def __init__(self, trees: dict[str, Callable[[], int | None]]) -> None:
        self.trees = trees
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {**{name: tree_cpu_seconds(pid()) for name, pid in self.trees.items()},
                "bench process": usage.ru_utime + usage.ru_stime}

    def start(self) -> Cpu:
        self.before = self._now()
        return self

    def stop(self) -> dict[str, float]:
        now = self._now()
        self.used = {name: now[name] - self.before[name] for name in now}
        return self.used

    def per(self, count: int, names: Sequence[str]) -> str:
        return ", ".join(f"{name} {1000 * self.used[name] / max(count, 1):.1f} ms" for name in names
                         if name in self.used)


# --- (1) and (2): sequential ------------------------------------------------------------------------------------------


@dataclass
class Sequential:
    lumi: list[float] = field(default_factory=list)  # (1) turn seconds / (2) first delta seconds
    model: list[float] = field(default_factory=list)  # (1) model seconds / (2) first content chunk seconds
    comment: list[float] = field(default_factory=list)  # (2) first byte (the `: lumi` comment)
    word: list[float] = field(default_factory=list)  # (2) model's first whole word
    lumi_total: list[float] = field(default_factory=list)  # (2) whole stream through Lumi
    model_total: list[float] = field(default_factory=list)  # (2) whole stream from the model
    cpu: dict[str, float] = field(default_factory=dict)


def bench_sequential(lumi: Lumi, model: Model, bodies: list[dict[str, Any]], count: int, *, streamed: bool,
                     cpu: Cpu) -> Sequential:
    """`count` Lumi turns interleaved one to one with the same request straight to the model."""
    sessions = Sessions(lumi, -(-(WARMUP_TURNS + count) // TURNS_PER_SESSION) + 1)
    out = Sequential()
    session = sessions.take()
    for i in range(WARMUP_TURNS + count):
        position = i % TURNS_PER_SESSION
        if position == 0 and i:
            session = sessions.take()
        if i == WARMUP_TURNS:
            cpu.start()
        measured = i >= WARMUP_TURNS
        if streamed:
            comment, delta, total = lumi.stream_turn(session, QUESTIONS[position])
            first, word, model_total = model.call(bodies[position])
            if measured:
                out.comment.append(comment)
                out.lumi.append(delta)
                out.lumi_total.append(total)
                out.model.append(first)
                out.word.append(word)
                out.model_total.append(model_total)
        else:
            t0 = time.perf_counter()
            lumi.turn(session, QUESTIONS[position])
            took = time.perf_counter() - t0
            _, _, model_total = model.call(bodies[position])
            if measured:
                out.lumi.append(took)
                out.model.append(model_total)
    out.cpu = cpu.stop()
    return out


# --- (3): concurrent shoppers -------------------------------------------------------------------------------------


@dataclass
class Load:
    label: str
    concurrency: int
    window: float  # seconds in which completions were counted
    counted: int  # turns completed inside the window
    total: int  # turns completed in the whole phase (ramp and tail included)
    latencies: list[float]  # sorted, of the counted turns
    cpu: Cpu
    probed: str = ""  # what the probe saw in the middle of the window

    @property
    def rate(self) -> float:
        return self.counted / self.window

    @property
    def mean(self) -> float:
        return sum(self.latencies) / len(self.latencies) if self.latencies else 0.0


def run_load(label: str, concurrency: int, seconds: float, ramp: float, stagger: float, cpu: Cpu,
             make_worker: Callable[[int], Callable[[], Callable[[int], None]]],
             probe: Callable[[], str] | None = None) -> Load:
    """`concurrency` threads doing one unit of work after another, thread i starting at i * stagger / n.

    make_worker(slot) runs before the clock starts (connections, sessions) and returns the thread's body, which
    is called once when the thread starts and returns `one(turn_no)`. Completions are counted in
    [start + ramp, start + ramp + seconds]; every thread keeps starting work until the window closes.
    """
    setups = [make_worker(slot) for slot in range(concurrency)]
    done: list[list[tuple[float, float]]] = [[] for _ in range(concurrency)]  # (end, latency)
    failures: list[BaseException] = []
    barrier = threading.Barrier(concurrency + 1)
    clock = {"start": 0.0, "end": 0.0}

    def thread(slot: int) -> None:
        try:
            one = setups[slot]()
            barrier.wait()
            time.sleep(slot * stagger / concurrency)
            for turn_no in itertools.count():
                t0 = time.perf_counter()
                if t0 >= clock["end"]:
                    return
                one(turn_no)
                t1 = time.perf_counter()
                done[slot].append((t1, t1 - t0))
        except BaseException as err:  # noqa: BLE001 - re-raised by the caller
            failures.append(err)
            clock["end"] = 0.0  # the others stop too

    threads = [threading.Thread(target=thread, args=(slot,), name=f"shopper-{slot}", daemon=True)
               for slot in range(concurrency)]
    for t in threads:
        t.start()
    cpu.start()
    clock["start"] = time.perf_counter()
    clock["end"] = clock["start"] + ramp + seconds
    barrier.wait()
    seen = ""
    if probe is not None:
        time.sleep(max(0.0, clock["start"] + ramp + seconds / 2 - time.perf_counter()))
        seen = probe()
    for t in threads:
        t.join(ramp + seconds + 60)
    cpu.stop()
    if failures:
        raise RuntimeError(f"{label}: {len(failures)} shopper(s) failed") from failures[0]
    low, high = clock["start"] + ramp, clock["start"] + ramp + seconds
    counted = sorted(lat for part in done for end, lat in part if low <= end <= high)
    return Load(label, concurrency, seconds, len(counted), sum(len(p) for p in done), counted, cpu, seen)


def worker_connections(master: int | None, port: int) -> str:
    """Established client connections on `port` held by each gunicorn worker, from /proc (e.g. "9 + 7")."""
    if master is None:
        return "?"
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    counts = []
    for pid in _descendants(master):
        held = 0
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held += 1
        except OSError:
            continue
        counts.append(held)
    return " + ".join(str(c) for c in sorted(counts, reverse=True)) or "?"


def bench_throughput(port: int, api_secret: str, model_url: str, bodies: list[dict[str, Any]], sizes: Sizes,
                     model_time: float, trees: dict[str, Callable[[], int | None]], *, reconnect: bool = False
                     ) -> dict[str, list[Load]]:
    ramp = 2 * model_time  # staggered starts (one model time), then one more turn each before counting
    per_thread = int((ramp + sizes.seconds + 2 * model_time) / model_time) + 2
    sessions_per_thread = -(-per_thread // TURNS_PER_SESSION) + 1
    shared_model = Model(model_url)

    def lumi_worker(slot: int) -> Callable[[], Callable[[int], None]]:
        lumi = Lumi(port, api_secret)
        sessions = Sessions(lumi, sessions_per_thread)

        def body() -> Callable[[int], None]:
            current: dict[str, tuple[str, str]] = {}

            def one(turn_no: int) -> None:
                position = turn_no % TURNS_PER_SESSION
                if position == 0:
                    current["s"] = sessions.take()
                lumi.turn(current["s"], QUESTIONS[position])
                if reconnect:
                    lumi.conn.close()  # the next request opens a new connection (http.client reconnects)

            return one

        return body

    def model_worker(slot: int) -> Callable[[], Callable[[int], None]]:
        def body() -> Callable[[int], None]:
            def one(turn_no: int) -> None:
                shared_model.call(bodies[turn_no % TURNS_PER_SESSION])

            return one

        return body

    results: dict[str, list[Load]] = {"model": [], "lumi": []}
    names = ("gunicorn", "devmodel", "redis", "bench process")
    for round_no in range(1, sizes.rounds + 1):
        for key, label, maker in (("model", "devmodel direct (SDK)", model_worker),
                                  ("lumi", "Lumi turns (gunicorn)", lumi_worker)):
            probe = (lambda: worker_connections(trees["gunicorn"](), port)) if key == "lumi" else None
            load = run_load(label, sizes.concurrency, sizes.seconds, ramp, model_time, Cpu(trees), maker, probe)
            results[key].append(load)
            say(f"  round {round_no} {label}: {load.rate:.1f} turns/s ({load.counted} in {load.window:g} s; "
                f"latency p50 {ms(1000 * _pct(load.latencies, 50))}, p90 {ms(1000 * _pct(load.latencies, 90))}, "
                f"mean {ms(1000 * load.mean)}); CPU per turn: {load.cpu.per(load.total, names)}; "
                + (f"shopper connections per gunicorn worker mid-window: {load.probed}; " if load.probed else "")
                + f"load avg {loadavg()}")
    return results


def warm_up(port: int, api_secret: str, concurrency: int) -> None:
    """One conversation per shopper, all at once, so both workers have served turns (shop profile fetched, model
    client built, code paths warm) before anything is measured."""
    failures: list[BaseException] = []

    def shopper() -> None:
        lumi = Lumi(port, api_secret)
        try:
            session = lumi.create_session()
            for text in QUESTIONS:
                lumi.turn(session, text)
        except BaseException as err:  # noqa: BLE001 - re-raised below
            failures.append(err)
        finally:
            lumi.close()

    threads = [threading.Thread(target=shopper, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if failures:
        raise RuntimeError("warm-up failed") from failures[0]


# --- (4): many concurrent streaming turns -------------------------------------------------------------------------


@dataclass(frozen=True)
class Many:
    turns: int  # concurrent shoppers, each opening one streamed turn
    stagger: float  # seconds over which their turns start
    idle_feed_seconds: float  # feed cache hits measured alone, just before the turns


MANY = Many(turns=200, stagger=1.0, idle_feed_seconds=2.0)  # --quick too: about two model times
MANY_SHOP = "bench-chat-many.myshopify.com"  # its own shop: a shop may open only so many sessions a minute
MANY_PRODUCTS = 60  # synced into the index, so the probed feed answers products
MANY_MODEL_DELAY_S = 5.0  # devmodel of section (4): before the first byte of every answer
ROUTER_FIRST_BYTE_S = 30.0  # Heroku's router gives up on a request whose first byte takes longer (H12)
GOAL_MANY_OVERHEAD = 0.10  # (4) (turn - model) / model at p50 and p99 <= this
GOAL_FEED_UNDER_LOAD = 2.0  # (4) feed hit p99 during the turns / idle feed hit p99 <= this
GOAL_PEAK_RSS_MIB = 512  # (4) gunicorn master + workers, summed


@dataclass
class Shopper:
    sent: float = 0.0  # perf_counter when the turn was sent
    first_byte: float = 0.0  # seconds to the `: lumi` comment
    total: float = 0.0  # seconds to the end of a complete stream (0: not completed)
    error: str = ""


def all_at_once(count: int, stagger: float, one: Callable[[int], None], limit: float) -> tuple[float, float]:
    """one(i) in `count` threads, thread i starting i * stagger / count after a common start. Waits for all
    (at most `limit` seconds); returns (start, the moment the last one started), perf_counter seconds."""
    barrier = threading.Barrier(count + 1)
    clock = {"start": 0.0, "last": 0.0}

    def thread(slot: int) -> None:
        barrier.wait()
        time.sleep(max(0.0, clock["start"] + slot * stagger / count - time.perf_counter()))
        clock["last"] = max(clock["last"], time.perf_counter())
        one(slot)

    threads = [threading.Thread(target=thread, args=(slot,), name=f"shopper-{slot}", daemon=True)
               for slot in range(count)]
    for t in threads:
        t.start()
    clock["start"] = time.perf_counter() + 0.05
    barrier.wait()
    deadline = time.monotonic() + limit
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return clock["start"], clock["last"]


class FeedProbe:
    """Sequential feed cache hits on one keep-alive connection (in a thread between start() and stop()), each
    checked: 200 and the warmed body's ETag (the same body, so a hit)."""

    def __init__(self, port: int, path: str, etag: str) -> None:
        self.port, self.path, self.etag = port, path, etag
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                conn.request("GET", self.path, headers={"Accept-Encoding": "gzip"})
                response = conn.getresponse()
                response.read()
                took = time.perf_counter() - t0
                if response.status != 200 or response.getheader("ETag") != self.etag:
                    self.errors.append(f"{response.status} ETag {response.getheader('ETag')}")
                    return
                self.latencies.append(took)
        except (OSError, http.client.HTTPException) as err:
            self.errors.append(repr(err))
        finally:
            conn.close()

    def start(self) -> FeedProbe:
        self._thread = threading.Thread(target=self._run, name="feed-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops sending and waits for the request in flight."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(130)

    def result(self) -> list[float]:
        """The latencies (seconds, sorted), raising on any failure."""
        if self.errors or not self.latencies:
            raise RuntimeError(f"feed probe: {self.errors[:3] or 'no request answered'}")
        return sorted(self.latencies)

    def run_for(self, seconds: float) -> list[float]:
        self.start()
        time.sleep(seconds)
        self.stop()
        return self.result()


def _vm_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Sampler:
    """Every 0.1 s, in a thread: the RSS of gunicorn's master and workers summed (from /proc) and Redis's
    connected clients; the peaks are kept."""

    def __init__(self, master: int, redis_client: Any) -> None:
        self.master = master
        self.redis = redis_client
        self.peak_rss_kib = 0
        self.peak_clients = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = [self.master, *_descendants(self.master)]
            rss = sum(_vm_rss_kib(pid) for pid in pids)
            if rss > self.peak_rss_kib:
                self.peak_rss_kib, self.processes = rss, len(pids)
            self.peak_clients = max(self.peak_clients, int(self.redis.info("clients")["connected_clients"]))
            self._stop.wait(0.1)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def streamed_turns(port: int, api_secret: str, sessions: list[tuple[str, str]], stagger: float,
                   first_done: threading.Event) -> tuple[list[Shopper], float, float]:
    """One streamed turn per session, all at once (staggered over `stagger` s), each on its own new connection.
    A shopper's socket gives up after ROUTER_FIRST_BYTE_S without a byte, as the router would. Returns the
    shoppers, the start and the moment the last turn was sent (perf_counter)."""
    shoppers = [Shopper() for _ in sessions]

    def one(slot: int) -> None:
        shopper = shoppers[slot]
        lumi = Lumi(port, api_secret, timeout=ROUTER_FIRST_BYTE_S, shop=MANY_SHOP)
        shopper.sent = time.perf_counter()
        try:
            comment, _, total = lumi.stream_turn(sessions[slot], QUESTIONS[0])
            shopper.first_byte, shopper.total = comment, total
        except Exception as err:  # noqa: BLE001 - counted as not completed, the first reason printed
            shopper.error = f"{type(err).__name__}: {err}"[:300]
        finally:
            lumi.close()
            first_done.set()

    start, last = all_at_once(len(sessions), stagger, one, limit=ROUTER_FIRST_BYTE_S + 120)
    return shoppers, start, last


def direct_streams(model: Model, body: dict[str, Any], count: int, stagger: float) -> list[float]:
    """The same request Lumi sends, straight to devmodel through the SDK, `count` at once: seconds each."""
    totals = [0.0] * count
    failures: list[BaseException] = []

    def one(slot: int) -> None:
        try:
            totals[slot] = model.call(body)[2]
        except Exception as err:  # noqa: BLE001 - re-raised below
            failures.append(err)

    all_at_once(count, stagger, one, limit=120)
    if failures or not all(totals):
        raise RuntimeError(f"direct model streams: {len(failures)} failed") from (failures[0] if failures else None)
    return totals


def bench_many(stack: Stack, workdir: Path, many: Many, rows: list[tuple[str, str, str, str, str, str]],
               verdicts: list[tuple[str, bool]]) -> None:
    """(4): `many.turns` streamed turns at once against gunicorn with the default web settings."""
    from core.settings import load_settings
    from devmodel.testing import DevModelControl

    say(f"\n## (4) {many.turns} concurrent streamed turns (started within {many.stagger:g} s), devmodel answering "
        f"after {MANY_MODEL_DELAY_S:g} s, gunicorn with the default web settings")
    stack.create_shop(MANY_SHOP, MANY_PRODUCTS, bucket=HUGE, rate=HUGE)
    stack.fresh_products_index()
    run = stack.sync(MANY_SHOP, MANY_PRODUCTS, bulk_threshold=10 * MANY_PRODUCTS, log_level="WARNING")
    with ExitStack() as exit_stack:
        devmodel, model_root = start_devmodel(workdir, delay=MANY_MODEL_DELAY_S, name="devmodel-many")
        exit_stack.callback(devmodel.stop)
        control = DevModelControl(model_root)
        env = {**stack.env, "OPENAI_API_KEY": MODEL_KEY, "OPENAI_BASE_URL": f"{model_root}/v1",
               "OPENAI_MODEL": MODEL_NAME}
        # Only the log level is set: WEB_CONCURRENCY and the rest are the defaults core.settings gives.
        web, port = start_gunicorn(env, workdir, web_env={"LOG_LEVEL": "WARNING"}, name="gunicorn-many")
        exit_stack.callback(web.stop)

        def on_error(exc_type: type[BaseException] | None, *_: object) -> bool:
            if exc_type is not None:
                say(f"--- gunicorn output, last lines ---\n{web.tail(12)}")
            return False

        exit_stack.push(on_error)
        assert web.pid is not None
        api_secret = stack.env["SHOPIFY_API_SECRET"]
        feed = "/proxy/feeds/new-arrivals?" + urlencode({"shop": MANY_SHOP, "limit": "12"})
        etags = set()
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", feed, headers={"Accept-Encoding": "gzip"})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status != 200:
                raise RuntimeError(f"GET {feed}: {response.status}")
            etags.add(response.getheader("ETag") or "")
        if len(etags) != 1 or not next(iter(etags)):
            raise RuntimeError(f"the feed is not a stable cache hit (ETags {etags})")
        etag = next(iter(etags))

        # Warm every worker (model client, imports, shop profile) with a zero-delay model, then record the request
        # Lumi sends for a first turn: the direct baseline replays it.
        control.configure(delay_s=0)
        lumi = Lumi(port, api_secret, shop=MANY_SHOP)
        exit_stack.callback(lumi.close)
        warm = [lumi.create_session() for _ in range(16)]
        shoppers, _, _ = streamed_turns(port, api_secret, warm, 0.0, threading.Event())
        if any(s.error for s in shoppers):
            raise RuntimeError(f"warm-up turn failed: {next(s.error for s in shoppers if s.error)}")
        workers = len(_descendants(web.pid))
        say(f"  gunicorn at http://127.0.0.1:{port} (pid {web.pid}, {workers} workers: WEB_CONCURRENCY's default "
            f"{load_settings(env).web_concurrency}); devmodel at {model_root}; {run.documents} products synced for "
            "the probed feed")
        body = recorded_bodies(control)[0]
        control.reset()  # the start-up delays again
        sessions = [lumi.create_session() for _ in range(many.turns)]
        lumi.close()

        say(f"  model alone: {many.turns} streams at once straight through the SDK")
        model = Model(f"{model_root}/v1")
        exit_stack.callback(model.client.close)
        trees: dict[str, Callable[[], int | None]] = {"gunicorn": lambda: web.pid, "devmodel": lambda: devmodel.pid,
                                                      "redis": lambda: stack.redis.pid}
        model_cpu = Cpu(trees).start()
        model_times = sorted(direct_streams(model, body, many.turns, many.stagger))
        model_cpu.stop()
        # The probe's own gunicorn CPU, alone: the turns' CPU below is measured with the probe running beside them.
        idle_cpu = Cpu(trees).start()
        idle = FeedProbe(port, feed, etag).run_for(many.idle_feed_seconds)
        idle_cpu.stop()
        say(f"  model alone: p50 {ms(pct_ms(model_times, 50))}, p99 {ms(pct_ms(model_times, 99))}; idle feed hits: "
            f"{len(idle)} in {many.idle_feed_seconds:g} s, p50 {ms(pct_ms(idle, 50))}, p99 {ms(pct_ms(idle, 99))}")

        first_done = threading.Event()
        lumi_cpu = Cpu(trees).start()
        with Sampler(web.pid, stack.services.redis) as sampler:
            probe = FeedProbe(port, feed, etag)
            # The probe starts once every turn is sent and stops when the first turn ends: only requests made
            # while all of them were in flight are counted.

            def watch() -> None:
                time.sleep(many.stagger + 0.1)
                probe.start()
                first_done.wait(ROUTER_FIRST_BYTE_S + 120)
                probe.stop()

            watcher = threading.Thread(target=watch, name="probe-window", daemon=True)
            watcher.start()
            shoppers, start, last = streamed_turns(port, api_secret, sessions, many.stagger, first_done)
            watcher.join(130)
        lumi_cpu.stop()
        loaded = probe.result()

    done = [s for s in shoppers if s.total]
    failed = [s for s in shoppers if not s.total]
    totals = sorted(s.total for s in done)
    say(f"  Lumi: {len(done)}/{many.turns} turns completed (sent within {last - start:.2f} s); "
        + (f"first failure: {failed[0].error}; " if failed else "")
        + (f"turn p50 {ms(pct_ms(totals, 50))}, p99 {ms(pct_ms(totals, 99))}, max {ms(1000 * totals[-1])}; "
           f"first byte p99 {ms(pct_ms([s.first_byte for s in done], 99))}" if done else "no turn completed"))
    names = ("gunicorn", "devmodel", "redis", "bench process")
    say(f"  CPU per turn: {lumi_cpu.per(many.turns, names)}; per direct model stream: "
        f"{model_cpu.per(many.turns, names)}")
    per_hit = idle_cpu.used.get("gunicorn", 0.0) / len(idle)
    turns_only = lumi_cpu.used.get("gunicorn", 0.0) - per_hit * len(loaded)
    say(f"  gunicorn CPU per turn without the {len(loaded)} feed hits served meanwhile (at their idle cost, "
        f"{1000 * per_hit:.2f} ms each): {1000 * turns_only / many.turns:.1f} ms")
    say(f"  feed hits while the turns were in flight: {len(loaded)}, p50 {ms(pct_ms(loaded, 50))}, p99 "
        f"{ms(pct_ms(loaded, 99))}, max {ms(1000 * loaded[-1])}; peak RSS of gunicorn ({sampler.processes} "
        f"processes) {sampler.peak_rss_kib / 1024:.0f} MiB; peak Redis clients {sampler.peak_clients}; "
        f"load avg {loadavg()}")

    ok = len(done) == many.turns
    verdicts.append((f"(4) {many.turns} concurrent streamed turns all complete", ok))
    rows.append((f"(4) streamed turns completed, {many.turns} at once", f"{len(done)}/{many.turns}",
                 f"{workers} workers (defaults)", f"{len(done) / many.turns:.0%}", "all", met(ok)))
    m50, m99 = pct_ms(model_times, 50), pct_ms(model_times, 99)
    for p, m in ((50, m50), (99, m99)):
        if not done:
            break
        t = pct_ms(totals, p)
        over = (t - m) / m
        ok = over <= GOAL_MANY_OVERHEAD and len(done) == many.turns
        verdicts.append((f"(4) server overhead per concurrent turn, p{p}", ok))
        rows.append((f"    turn p{p} (whole stream)", ms(t), f"model alone at once p{p}: {ms(m)}",
                     f"+{over:.1%}", f"<= +{GOAL_MANY_OVERHEAD:.0%}", met(ok)))
    if done:
        rows.append(("    first byte p99 (`: lumi`)", ms(pct_ms([s.first_byte for s in done], 99)),
                     f"router limit: {ROUTER_FIRST_BYTE_S:g} s", "", "(info)", ""))
    i99, l99 = pct_ms(idle, 99), pct_ms(loaded, 99)
    ok = l99 / i99 <= GOAL_FEED_UNDER_LOAD
    verdicts.append(("(4) feed hit p99 during the turns / idle", ok))
    rows.append(("(4) feed cache hit p99 during the turns", ms(l99), f"idle p99: {ms(i99)}", f"{l99 / i99:.2f}x",
                 f"<= {GOAL_FEED_UNDER_LOAD:g}x", met(ok)))
    peak = sampler.peak_rss_kib / 1024
    ok = peak <= GOAL_PEAK_RSS_MIB
    verdicts.append(("(4) peak RSS of gunicorn (master + workers)", ok))
    rows.append((f"(4) peak RSS, gunicorn master + {workers} workers", f"{peak:.0f} MiB", "", "",
                 f"<= {GOAL_PEAK_RSS_MIB} MiB", met(ok)))
    rows.append(("    peak Redis connected clients", str(sampler.peak_clients), "", "", "(info)", ""))


# --- optional: where the time goes, in process ------------------------------------------------------------------


def profile_in_process(stack: Stack, env: dict[str, str], control: Any, model_url: str,
                       bodies: list[dict[str, Any]], turns: int) -> None:
    """Where a turn's time and CPU go, through Flask's test client in this process (no gunicorn):

    - with devmodel answering at once: wall time of a turn against the same request straight to the model;
    - with the bench's delays (as gunicorn sees the model): CPU time of a turn against the direct SDK call's, and a
      cProfile of `turns` turns timed by CPU (time.process_time), so waiting on the model does not count.
    """
    from shopify.signatures import sign_proxy
    from web import create_app

    app = create_app({**env, "LOG_LEVEL": "WARNING"})
    client = app.test_client()
    secret = stack.env["SHOPIFY_API_SECRET"]

    def path(suffix: str) -> str:
        pairs = [("shop", SHOP), ("logged_in_customer_id", ""), ("path_prefix", PATH_PREFIX),
                 ("timestamp", str(int(time.time())))]
        return f"/proxy/chat/{suffix}?" + urlencode([*pairs, ("signature", sign_proxy(pairs, secret))])

    def new_session() -> tuple[str, str]:
        answer = client.post(path("sessions"), json={})
        if answer.status_code != 201:
            raise RuntimeError(f"profile: {answer.status_code} {answer.data[:300]!r}")
        data = answer.get_json()["session"]
        return data["id"], data["secret"]

    def turns_of(count: int) -> list[tuple[tuple[str, str], str]]:
        sessions = [new_session() for _ in range(-(-count // TURNS_PER_SESSION))]
        return [(sessions[i // TURNS_PER_SESSION], QUESTIONS[i % TURNS_PER_SESSION]) for i in range(count)]

    def one(session: tuple[str, str], text: str) -> None:
        answer = client.post(path(f"sessions/{session[0]}/messages"), json={"text": text},
                             headers={SECRET_HEADER: session[1]})
        if answer.status_code != 200:
            raise RuntimeError(f"profile: {answer.status_code} {answer.data[:300]!r}")
        check_answer(answer.get_json())

    def side_by_side(count: int, clock: Callable[[], float]) -> tuple[float, float]:
        """p50 of `clock` spent on a turn and on the same request straight to the model, interleaved (ms)."""
        lumi_times, model_times = [], []
        for i, (session, text) in enumerate(turns_of(count)):
            t0 = clock()
            one(session, text)
            lumi_times.append(clock() - t0)
            t0 = clock()
            model.call(bodies[i % TURNS_PER_SESSION])
            model_times.append(clock() - t0)
        return pct_ms(lumi_times, 50), pct_ms(model_times, 50)

    model = Model(model_url)
    for session, text in turns_of(2 * TURNS_PER_SESSION):
        one(session, text)
    control.configure(delay_s=0, token_delay_s=0)
    try:
        l50, m50 = side_by_side(3 * turns, time.perf_counter)
    finally:
        control.configure(delay_s=MODEL_DELAY_S, token_delay_s=MODEL_TOKEN_DELAY_S)
    say(f"  devmodel without delays, {3 * turns} turns: wall time p50 {ms(l50)} per turn, {ms(m50)} for the same "
        f"request straight to the model: Lumi adds {ms(l50 - m50)} (one thread)")
    l50, m50 = side_by_side(turns, time.process_time)
    say(f"  with the bench's delays, {turns} turns: CPU time p50 {ms(l50)} per turn, {ms(m50)} for the same request "
        f"through the SDK alone: the SDK call (request + stream) is {m50 / l50:.0%} of a turn's CPU; Lumi's own work "
        f"is {ms(l50 - m50)}")
    work = turns_of(turns)
    profiler = cProfile.Profile(time.process_time)
    started = time.process_time()
    profiler.enable()
    for session, text in work:
        one(session, text)
    profiler.disable()
    took = time.process_time() - started
    own, lumi = io.StringIO(), io.StringIO()
    pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(14)
    pstats.Stats(profiler, stream=lumi).sort_stats("cumulative").print_stats(
        rf"{re.escape(str(REPO_ROOT))}/(web|chat|core|shopify)/|openai/_(streaming|models|utils/_transform)\.py:"
        r"\d+\((__stream__|construct_type|transform)\)", 26)
    say(f"\n  cProfile (CPU time), {turns} turns with the bench's delays ({1000 * took / turns:.1f} ms CPU each under "
        "cProfile)")
    for title, out in (("top by own CPU", own), ("Lumi's functions (and the SDK's stream parsing) by cumulative CPU",
                                                  lumi)):
        say(f"  {title}:")
        for line in out.getvalue().splitlines():
            if re.match(r"\s+\d", line) and "function calls" not in line or "ncalls" in line:
                say("   " + line)


# --- processes --------------------------------------------------------------------------------------------------------


def start_devmodel(workdir: Path, delay: float = MODEL_DELAY_S, name: str = "devmodel"
                   ) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = [sys.executable, "-m", "devmodel", "--port", str(port), "--api-key", MODEL_KEY,
            "--delay", str(delay), "--token-delay", str(MODEL_TOKEN_DELAY_S), "--quiet"]
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(name, argv, env=child_env({}), cwd=REPO_ROOT,
                             ready=http_ok(f"{url}/_devmodel/health"), ready_timeout=30,
                             log_path=workdir / f"{name}.log", stop_timeout=10)
    process.start()
    return process, url


def start_gunicorn(env: dict[str, str], workdir: Path, web_env: dict[str, str] = WEB_ENV, name: str = "gunicorn"
                   ) -> tuple[ManagedProcess, int]:
    """gunicorn with the repo's config on a free port, serving the app as the Procfile does."""
    port = free_port()
    gunicorn = REPO_ROOT / ".venv" / "bin" / "gunicorn"
    argv = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
    # No worker recycling in the middle of a phase (the command line beats the config file).
    argv += ["-c", "gunicorn.conf.py", "--max-requests", "0", "web:create_app()"]
    process = ManagedProcess(name, argv, env=child_env({**env, **web_env, "PORT": str(port)}),
                             cwd=REPO_ROOT, ready=http_ok(f"http://127.0.0.1:{port}/healthz"), ready_timeout=60,
                             log_path=workdir / f"{name}.log", stop_timeout=25)
    process.start()
    return process, port


# --- (1)-(3) on their own stack of processes ------------------------------------------------------------------------


def bench_sections_123(stack: Stack, workdir: Path, sizes: Sizes, sections: set[str], args: argparse.Namespace,
                       rows: list[tuple[str, str, str, str, str, str]], verdicts: list[tuple[str, bool]]) -> None:
    """Sections (1)-(3) (and --profile) against their own devmodel and gunicorn, stopped on return."""
    from devmodel.server import GENERIC_REPLY, tokens
    from devmodel.testing import DevModelControl

    reply_tokens = len(tokens(GENERIC_REPLY))
    with ExitStack() as exit_stack:
        devmodel, model_root = start_devmodel(workdir)
        exit_stack.callback(devmodel.stop)
        control = DevModelControl(model_root)
        env = {**stack.env, "OPENAI_API_KEY": MODEL_KEY, "OPENAI_BASE_URL": f"{model_root}/v1",
               "OPENAI_MODEL": MODEL_NAME}
        web, port = start_gunicorn(env, workdir)
        exit_stack.callback(web.stop)

        def on_error(exc_type: type[BaseException] | None, *_: object) -> bool:
            if exc_type is not None:  # what the app logged is usually the reason (e.g. a 500's traceback)
                say(f"--- gunicorn output, last lines ---\n{web.tail(12)}")
            return False

        exit_stack.push(on_error)
        api_secret = stack.env["SHOPIFY_API_SECRET"]
        say(f"  gunicorn at http://127.0.0.1:{port} (pid {web.pid}, {WEB_ENV['WEB_CONCURRENCY']} gevent workers, "
            f"no worker recycling); devmodel at {model_root} (pid "
            f"{devmodel.pid}); Redis pid {stack.redis.pid}; Meilisearch idle (no tool is called)")

        # The requests Lumi sends for each position of a conversation, recorded from a warm-up conversation
        # per worker (a turn's request depends only on its position: the same questions, the same replies).
        warm_up(port, api_secret, sizes.concurrency)
        lumi = Lumi(port, api_secret)
        exit_stack.callback(lumi.close)
        control.reset()
        warm = Sessions(lumi, 2)
        for _ in range(2):
            session = warm.take()
            for text in QUESTIONS:
                lumi.turn(session, text)
        sent = recorded_bodies(control)
        bodies = sent[:TURNS_PER_SESSION]
        if len(sent) != 2 * TURNS_PER_SESSION or sent[TURNS_PER_SESSION:] != bodies:
            raise RuntimeError(f"{len(sent)} model requests for {2 * TURNS_PER_SESSION} turns, or their bodies "
                               "differ between two identical conversations")
        shapes = ", ".join(f"{len(body['messages'])} messages / {len(json.dumps(body)):,} B" for body in bodies)
        say(f"  model requests replayed as the baseline, by position in the conversation: {shapes}; "
            f"keys {sorted(bodies[0])}")
        model = Model(f"{model_root}/v1")
        trees: dict[str, Callable[[], int | None]] = {"gunicorn": lambda: web.pid,
                                                      "devmodel": lambda: devmodel.pid,
                                                      "redis": lambda: stack.redis.pid}
        names = ("gunicorn", "redis", "devmodel")
        nominal = MODEL_DELAY_S + MODEL_TOKEN_DELAY_S * reply_tokens
        model_time = nominal  # replaced by the model's measured p50 (sequential, through the SDK)

        if "1" in sections:
            say(f"\n## (1) server overhead per turn: {sizes.turns} sequential non-streamed turns, interleaved with "
                "the same request straight to the model")
            control.reset()
            seq = bench_sequential(lumi, model, bodies, sizes.turns, streamed=False, cpu=Cpu(trees))
            t50, t90 = pct_ms(seq.lumi, 50), pct_ms(seq.lumi, 90)
            m50, m90 = pct_ms(seq.model, 50), pct_ms(seq.model, 90)
            model_time = m50 / 1000
            over50, over90 = (t50 - m50) / m50, (t90 - m90) / m90
            cpu_text = Cpu(trees)
            cpu_text.used = seq.cpu
            say(f"  turn through Lumi: p50 {ms(t50)}, p90 {ms(t90)}, max {ms(1000 * max(seq.lumi))}")
            say(f"  model alone (SDK): p50 {ms(m50)}, p90 {ms(m90)}, max {ms(1000 * max(seq.model))}")
            say(f"  CPU per turn (model calls of both paths included for devmodel): "
                f"{cpu_text.per(sizes.turns, names)}")
            ok = over50 <= GOAL_OVERHEAD
            verdicts.append(("(1) server overhead per turn, p50", ok))
            rows.append(("(1) chat turn p50 (JSON)", ms(t50), f"model alone p50: {ms(m50)}",
                         f"+{over50:.1%} ({ms(t50 - m50)})", f"<= +{GOAL_OVERHEAD:.0%}", met(ok)))
            rows.append(("    chat turn p90 (JSON)", ms(t90), f"model alone p90: {ms(m90)}",
                         f"+{over90:.1%} ({ms(t90 - m90)})", "(info)", ""))
            paired = pct_ms([t - m for t, m in zip(seq.lumi, seq.model, strict=True)], 50)
            rows.append(("    median of paired differences (turn i - model i)", ms(paired), "",
                         f"+{paired / m50:.1%}", "(info)", ""))
            gcpu = seq.cpu.get("gunicorn", 0.0)
            rows.append(("    gunicorn CPU per turn", ms(1000 * gcpu / sizes.turns),
                         f"Redis: {ms(1000 * seq.cpu.get('redis', 0.0) / sizes.turns)}", "", "(info)", ""))

        if "2" in sections:
            say(f"\n## (2) time to first streamed byte: {sizes.streams} sequential streamed turns, interleaved "
                "with the same request streamed straight from the model")
            control.reset()
            seq = bench_sequential(lumi, model, bodies, sizes.streams, streamed=True, cpu=Cpu(trees))
            d50, d90 = pct_ms(seq.lumi, 50), pct_ms(seq.lumi, 90)
            c50 = pct_ms(seq.comment, 50)
            f50, f90 = pct_ms(seq.model, 50), pct_ms(seq.model, 90)
            w50 = pct_ms(seq.word, 50)
            lt50, mt50 = pct_ms(seq.lumi_total, 50), pct_ms(seq.model_total, 50)
            say(f"  Lumi: `: lumi` comment p50 {ms(c50)}; first `event: delta` p50 {ms(d50)}, p90 {ms(d90)}; "
                f"whole stream p50 {ms(lt50)}")
            say(f"  model alone (SDK): first content chunk p50 {ms(f50)}, p90 {ms(f90)}; first whole word p50 "
                f"{ms(w50)}; whole stream p50 {ms(mt50)}")
            rows.append(("(2) first `event: delta` p50 (SSE)", ms(d50), f"model's first chunk p50: {ms(f50)}",
                         f"{d50 / f50:.2f}x (+{ms(d50 - f50)})", "(info)", ""))
            rows.append(("    first `event: delta` p90", ms(d90), f"model's first chunk p90: {ms(f90)}",
                         f"{d90 / f90:.2f}x", "(info)", ""))
            paired = pct_ms([d - f for d, f in zip(seq.lumi, seq.model, strict=True)], 50)
            rows.append(("    median of paired differences (delta i - chunk i)", ms(paired), "", "", "(info)", ""))
            rows.append(("    first delta vs the model's first whole word", ms(d50), f"first word p50: {ms(w50)}",
                         f"{d50 / w50:.2f}x (+{ms(d50 - w50)})", "(info)", ""))
            rows.append(("    first byte (`: lumi` comment) p50", ms(c50), "", "", "(info)", ""))
            rows.append(("    whole stream p50", ms(lt50), f"model's whole stream p50: {ms(mt50)}",
                         f"+{(lt50 - mt50) / mt50:.1%}", "(info)", ""))

        if "3" in sections:
            say(f"\n## (3) turns/s with {sizes.concurrency} concurrent shoppers, {sizes.rounds} interleaved "
                f"round(s) per target, window {sizes.seconds:g} s, best round reported")
            if "1" not in sections:  # the model time the ceiling is computed from: measured, not nominal
                model_time = sorted(model.call(bodies[i % TURNS_PER_SESSION])[2] for i in range(6))[2]
            control.reset()
            loads = bench_throughput(port, api_secret, f"{model_root}/v1", bodies, sizes, model_time, trees,
                                     reconnect=args.reconnect)
            control.reset()
            lumi_best = max(loads["lumi"], key=lambda load: load.rate)
            model_best = max(loads["model"], key=lambda load: load.rate)
            ceiling = sizes.concurrency / nominal
            measured = sizes.concurrency / model_time
            rows.append((f"(3) turns/s, {sizes.concurrency} shoppers, Lumi", f"{lumi_best.rate:.1f}/s",
                         f"devmodel direct: {model_best.rate:.1f}/s", f"{lumi_best.rate / model_best.rate:.2f}x",
                         "(info)", ""))
            rows.append(("    against the fixed-delay ceiling", f"{lumi_best.rate:.1f}/s",
                         f"{sizes.concurrency} / {ms(1000 * nominal)} nominal = {ceiling:.1f}/s",
                         f"{lumi_best.rate / ceiling:.2f}x", "(info)", ""))
            rows.append(("    against the measured model time", f"{lumi_best.rate:.1f}/s",
                         f"{sizes.concurrency} / {ms(1000 * model_time)} (p50, sequential) = {measured:.1f}/s",
                         f"{lumi_best.rate / measured:.2f}x", "(info)", ""))
            rows.append(("    latency p50 under load", ms(1000 * _pct(lumi_best.latencies, 50)),
                         f"devmodel direct: {ms(1000 * _pct(model_best.latencies, 50))}",
                         f"{_pct(lumi_best.latencies, 50) / _pct(model_best.latencies, 50):.2f}x", "(info)", ""))
            rows.append(("    gunicorn CPU per turn under load",
                         ms(1000 * lumi_best.cpu.used.get("gunicorn", 0.0) / max(lumi_best.total, 1)),
                         f"devmodel CPU per request: "
                         f"{ms(1000 * model_best.cpu.used.get('devmodel', 0.0) / max(model_best.total, 1))}",
                         "", "(info)", ""))

        if args.profile:
            say("\n## profile (in process, Flask test client)")
            profile_in_process(stack, env, control, f"{model_root}/v1", bodies, turns=20)


# --- entry point ------------------------------------------------------------------------------------------------------


def pct_ms(values: Sequence[float], p: float) -> float:
    return 1000 * _pct(sorted(values), p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"smaller sizes: {QUICK}")
    parser.add_argument("--only", default="1,2,3,4", help="sections to run, e.g. 1,3 (default 1,2,3,4)")
    parser.add_argument("--turns", type=int, help="(1) sequential turns")
    parser.add_argument("--streams", type=int, help="(2) sequential streamed turns")
    parser.add_argument("--seconds", type=float, help="(3) counting window of one load phase")
    parser.add_argument("--rounds", type=int, help="(3) load phases per target (interleaved; best reported)")
    parser.add_argument("--concurrency", type=int, help="(3) concurrent shoppers")
    parser.add_argument("--reconnect", action="store_true",
                        help="(3) a new connection per Lumi turn instead of one keep-alive connection per shopper "
                             "(keep-alive pins a shopper to one gunicorn worker)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile turns in process (Flask test client): wall time with a zero-delay model, "
                             "CPU time and a CPU-timed cProfile with the bench's delays")
    parser.add_argument("--keep-logs", action="store_true", help="keep the gunicorn and devmodel logs")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(turns=args.turns or base.turns, streams=args.streams or base.streams,
                  seconds=args.seconds or base.seconds, rounds=args.rounds or base.rounds,
                  concurrency=args.concurrency or base.concurrency)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if sections - {"1", "2", "3", "4"}:
        parser.error(f"unknown sections {', '.join(sorted(sections - {'1', '2', '3', '4'}))}")
    from devmodel.server import GENERIC_REPLY, tokens

    reply_tokens = len(tokens(GENERIC_REPLY))
    mode = "quick" if args.quick else "full"
    say(f"bench.chat ({mode}): devmodel delay {MODEL_DELAY_S:g} s + {MODEL_TOKEN_DELAY_S:g} s x {reply_tokens} "
        f"tokens = {MODEL_DELAY_S + MODEL_TOKEN_DELAY_S * reply_tokens:.3f} s nominal per reply; (1) {sizes.turns} "
        f"turns; (2) {sizes.streams} streamed turns; (3) {sizes.concurrency} shoppers, {sizes.rounds} round(s) of "
        f"{sizes.seconds:g} s; (4) {MANY.turns} streamed turns at once; sections {','.join(sorted(sections))}; "
        f"{os.cpu_count()} CPUs; load avg {loadavg()}")
    workdir = Path(tempfile.mkdtemp(prefix="lumi-bench-chat-"))
    started = time.monotonic()
    rows: list[tuple[str, str, str, str, str, str]] = []
    verdicts: list[tuple[str, bool]] = []
    try:
        with ExitStack() as exit_stack:
            stack = Stack(exit_stack, workdir)
            if sections & {"1", "2", "3"} or args.profile:
                stack.create_shop(SHOP, 5, bucket=HUGE, rate=HUGE)
                bench_sections_123(stack, workdir, sizes, sections, args, rows, verdicts)
            if "4" in sections:
                bench_many(stack, workdir, MANY, rows, verdicts)
    finally:
        if args.keep_logs:
            say(f"\nlogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table(f"results ({mode} sizes, {time.monotonic() - started:.0f} s in all, {os.cpu_count()} CPUs, "
          f"load avg now {loadavg()})", GOAL_HEADER, rows)
    say("  (1) ratio = (p50 turn - p50 model) / p50 model, sequential, interleaved; (2) first delta / first content "
        "chunk; (3) Lumi turns/s / devmodel turns/s at the same concurrency; (4) (turn - model) / model, both 200 at "
        "once. Lumi, devmodel, Redis and the shoppers share this machine's CPUs.")
    table("summary", ("goal", "result"), [(name, met(ok)) for name, ok in verdicts])
    return 0


if __name__ == "__main__":
    sys.exit(main())
