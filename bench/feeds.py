"""Storefront feed benchmarks: every number printed, every ratio measured side by side in this run.

One private stack (Redis, Meilisearch, devshop; a catalogue synced by a real `python -m jobs.worker --burst`,
as bench.sync does it), then Lumi's real app under gunicorn on loopback (gunicorn.conf.py: gevent workers,
WEB_CONCURRENCY=2, LOG_LEVEL=WARNING) through bench/_feeds_app.py, which adds two bench-only baselines to the same
app in the same workers. Load comes from `wrk` when it is on PATH, else from threads of keep-alive
`http.client` connections (slower: on a small machine it may be the bottleneck, which the header says).

(1) Feed cache hits (`/proxy/feeds/new-arrivals?shop=...&limit=12`, Accept-Encoding: gzip, warmed) against
    `/bench/hello`, a tiny JSON route on the same app and server: requests/s, interleaved rounds, best round
    of each. Goal: feed / hello >= 0.8.
(2) Cold feeds: sequential requests that each compute (a random absent product id in `exclude=` makes every
    cache key new) against the raw Meilisearch query behind them (the same filter, sort, limit and fields,
    from feeds.definitions.search_arguments) sent over one keep-alive http.client connection: the floor of
    that query. Goal: p99 feed / p99 keep-alive raw query <= 3. For information, the same query through the
    stock meilisearch SDK (a new connection per call) and through the app's own client (core.clients.make_meili,
    pooled keep-alive connections). All four interleaved one to one.
(3) Feed cache hits through the nginx edge (devtools.edge.EdgeServer in front of the same gunicorn) against
    feed cache hits straight to gunicorn: requests/s. Information only.

gunicorn's worker recycling (max_requests) is turned off for the run unless --recycle: a worker restart in
the middle of a few-second phase (about every 5,000 requests) would be measured as the endpoint's cost.
Run: `python -m bench.feeds [--quick] [--only 1,2,3]`.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import math
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import meilisearch
import requests

from bench.sync import GOAL_HEADER, HUGE, Stack, _descendants, child_env, met, say, table
from devtools.services import REPO_ROOT, ManagedProcess, free_port, http_ok

SHOP = "bench-feeds.myshopify.com"
FEED = "new-arrivals"
LIMIT = 12
GZIP = {"Accept-Encoding": "gzip"}
ABSENT_IDS = (10**15, 10**16)  # product ids no catalogue has: harmless values for `exclude=`

# Goals from the issue.
GOAL_HIT_OVER_HELLO = 0.8  # (1) feed hit req/s / hello req/s >= this
GOAL_COLD_P99 = 3.0  # (2) p99 cold feed / p99 raw Meilisearch query over one keep-alive connection <= this

WEB_ENV = {"WEB_CONCURRENCY": "2", "LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Sizes:
    products: int  # devshop catalogue, synced into the index
    seconds: float  # one load phase
    rounds: int  # load phases per target, interleaved across targets (best one reported)
    cold: int  # sequential cold feed requests, and as many raw queries
    connections: int  # concurrent keep-alive connections of the load generator


FULL = Sizes(products=10_000, seconds=3.0, rounds=3, cold=500, connections=16)
QUICK = Sizes(products=2_000, seconds=2.0, rounds=2, cold=200, connections=16)
WARMUP_SECONDS = 1.0  # once per target, before its first measured phase
COLD_WARMUP = 20  # cold requests (and raw queries) sent and discarded first


# --- measuring --------------------------------------------------------------------------------------------


@dataclass
class Load:
    """One fixed-duration load phase against one URL."""

    label: str
    requests: int
    seconds: float
    errors: int  # non-2xx/3xx answers + socket errors
    p50_ms: float | None
    p99_ms: float | None
    cpu: dict[str, float]  # process tree name -> CPU seconds it used during the phase

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def cpu_ms_per_request(self, name: str) -> float | None:
        if name not in self.cpu or not self.requests:
            return None
        return 1000 * self.cpu[name] / self.requests


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int | None) -> float:
    """utime + stime of `root` and every process below it (workers), from /proc; 0 for what is gone."""
    if root is None:
        return 0.0
    total = 0
    for pid in [root, *_descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            continue
    return total / _CLK_TCK


class Generator:
    """Fixed-duration keep-alive load against one URL: wrk when available, else Python threads."""

    def __init__(self, kind: str, connections: int, trees: dict[str, Callable[[], int | None]]) -> None:
        self.kind = kind
        self.connections = connections
        self.trees = trees  # name -> pid of a process tree whose CPU is sampled around each phase

    def describe(self) -> str:
        if self.kind == "wrk":
            return f"wrk (1 thread, {self.connections} keep-alive connections)"
        return (f"Python threads + http.client ({self.connections} keep-alive connections; on {os.cpu_count()} "
                "CPUs this generator may be the bottleneck: install wrk for sharper numbers)")

    def run(self, label: str, url: str, seconds: float, headers: dict[str, str]) -> Load:
        before = {name: tree_cpu_seconds(pid()) for name, pid in self.trees.items()}
        if self.kind == "wrk":
            load = _wrk(label, url, seconds, self.connections, headers)
        else:
            load = _python_load(label, url, seconds, self.connections, headers)
        load.cpu = {name: tree_cpu_seconds(pid()) - before[name] for name, pid in self.trees.items()}
        return load


_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
_WRK_PCT = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk(label: str, url: str, seconds: float, connections: int, headers: dict[str, str]) -> Load:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    out = done.stdout
    total = _WRK_TOTAL.search(out)
    if done.returncode != 0 or total is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {out}\n{done.stderr}")
    pct = {p: float(v) * _UNIT_MS[u] for p, v, u in _WRK_PCT.findall(out)}
    errors = int(m.group(1)) if (m := _WRK_NON2XX.search(out)) else 0
    if m := _WRK_SOCKET.search(out):
        errors += sum(int(g) for g in m.groups())
    return Load(label, int(total.group(1)), float(total.group(2)) * _UNIT_MS[total.group(3)] / 1000, errors,
                pct.get("50"), pct.get("99"), {})


def _python_load(label: str, url: str, seconds: float, connections: int, headers: dict[str, str]) -> Load:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start = threading.Barrier(connections + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        start.wait()
        mine = latencies[slot]
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= deadline[0]:
                    return
                try:
                    conn.request("GET", target, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = 200 <= response.status < 400
                except (OSError, http.client.HTTPException):
                    conn.close()
                    ok = False
                t1 = time.perf_counter()
                if t1 > deadline[0]:
                    return
                if ok:
                    mine.append(t1 - t0)
                else:
                    errors[slot] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join(seconds + 30)
    merged = sorted(x for part in latencies for x in part)
    return Load(label, len(merged), seconds, sum(errors), _pct(merged, 50) * 1000 if merged else None,
                _pct(merged, 99) * 1000 if merged else None, {})


def _pct(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def rps(value: float) -> str:
    return f"{value:,.0f} req/s"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- the web process ----------------------------------------------------------------------------------------


def start_gunicorn(stack: Stack, workdir: Path, *, recycle: bool) -> tuple[ManagedProcess, str]:
    """gunicorn with the repo's config on a free port, serving bench._feeds_app (the real app + baselines)."""
    port = free_port()
    gunicorn = REPO_ROOT / ".venv" / "bin" / "gunicorn"
    argv = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
    argv += ["-c", "gunicorn.conf.py"]
    if not recycle:
        argv += ["--max-requests", "0"]  # command line beats the config file
    argv.append("bench._feeds_app:create_app()")
    base = f"http://127.0.0.1:{port}"
    process = ManagedProcess("gunicorn", argv, env=child_env({**stack.env, **WEB_ENV, "PORT": str(port)}),
                             cwd=REPO_ROOT, ready=http_ok(f"{base}/healthz"), ready_timeout=60,
                             log_path=workdir / "gunicorn.log", stop_timeout=25)
    process.start()
    return process, base


def feed_path(**extra: str) -> str:
    return f"/proxy/feeds/{FEED}?" + urlencode({"shop": SHOP, "limit": str(LIMIT), **extra})


def get(base: str, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.get(base + path, headers=headers or {}, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:500]}")
    return response


def check_app(base: str) -> tuple[str, int, int]:
    """The baselines answer, the feed answers gzip with LIMIT products, and a second request is a cache hit.

    Returns (ETag, gzip bytes, JSON bytes) of the warmed feed body.
    """
    for path in ("/bench/hello", "/bench/hello-raw"):
        if get(base, path).json() != {"hello": "world", "ok": True}:
            raise RuntimeError(f"{path} answered something else")
    first = get(base, feed_path(), GZIP)
    if first.headers.get("Content-Encoding") != "gzip" or len(first.json()["products"]) != LIMIT:
        raise RuntimeError(f"feed answered {first.headers} {first.text[:300]}")
    second = get(base, feed_path(), GZIP)
    if second.headers["ETag"] != first.headers["ETag"]:
        raise RuntimeError("a second identical feed request was computed again (ETag changed): no cache hit")
    raw = requests.get(base + feed_path(), headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    size = len(raw.raw.read())
    return first.headers["ETag"], size, len(first.content)


def same_etag(base: str, etag: str, where: str) -> None:
    now = get(base, feed_path(), GZIP).headers["ETag"]
    if now != etag:
        raise RuntimeError(f"the feed body changed during {where} ({etag} -> {now}): the load was not all hits")


# --- (1) and (3): throughput --------------------------------------------------------------------------------


def bench_throughput(generator: Generator, base: str, edge_url: str | None, edge_log: Path | None,
                     sizes: Sizes, etag: str, sections: set[str]) -> dict[str, list[Load]]:
    targets: list[tuple[str, str, str]] = []  # (key, label, url)
    if "1" in sections:
        targets += [("hello", "/bench/hello (Flask route, same app)", base + "/bench/hello"),
                    ("raw", "/bench/hello-raw (WSGI, before Flask)", base + "/bench/hello-raw")]
    targets.append(("feed", "feed hit, direct to gunicorn", base + feed_path()))
    if edge_url is not None:
        targets.append(("edge", "feed hit, through the nginx edge", edge_url + feed_path()))
    results: dict[str, list[Load]] = {key: [] for key, _, _ in targets}
    for _key, label, url in targets:
        warm = generator.run(label, url, WARMUP_SECONDS, GZIP)
        say(f"  warm-up {label}: {rps(warm.rps)}")
    edge_lines = _count_lines(edge_log)
    for round_no in range(1, sizes.rounds + 1):
        for key, label, url in targets:
            load = generator.run(label, url, sizes.seconds, GZIP)
            if load.errors:
                raise RuntimeError(f"{label}: {load.errors} errors in {load.requests} requests")
            results[key].append(load)
            cpu = ", ".join(f"{name} {1000 * sec / max(load.requests, 1):.3f} ms CPU/req"
                            for name, sec in load.cpu.items() if sec > 0)
            say(f"  round {round_no} {label}: {rps(load.rps)} ({load.requests:,} in {load.seconds:.2f} s; "
                f"p50 {ms(load.p50_ms)}, p99 {ms(load.p99_ms)}; {cpu or 'no CPU sampled'}) "
                f"load avg {loadavg()}")
    same_etag(base, etag, "the throughput phases")
    if edge_log is not None:
        statuses = _edge_statuses(edge_log, edge_lines)
        say(f"  edge cache status over the measured phases: {dict(statuses)}")
        if set(statuses) - {"HIT"}:
            say("  warning: not every edge request was a HIT")
    return results


def _count_lines(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def _edge_statuses(path: Path, skip: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            if number < skip:
                continue
            match = re.search(r"cache=(\S+)", line)
            status = match.group(1) if match else "?"
            counts[status] = counts.get(status, 0) + 1
    return counts


def best(loads: list[Load]) -> Load:
    return max(loads, key=lambda load: load.rps)


# --- (2) cold feeds vs raw Meilisearch ----------------------------------------------------------------------


@dataclass
class Cold:
    feed: list[float]  # seconds per request, sorted
    raw: list[float]  # the stock SDK's index.search (a new connection per call), sorted
    keepalive: list[float]  # the same query over one keep-alive http.client connection (the floor), sorted
    app_client: list[float]  # the same query through the app's client (core.clients.make_meili), sorted
    feed_bytes: int


def bench_cold(stack: Stack, base: str, count: int) -> Cold:
    from core.clients import make_meili
    from feeds.definitions import FEEDS, parse_params, search_arguments
    from feeds.index import PRODUCTS_INDEX

    record = stack.services.shops.get(SHOP)
    if record is None:
        raise RuntimeError(f"{SHOP} is not installed")
    settings = record.settings
    feed = FEEDS[FEED]
    # The stock SDK with the app's timeout, and the app's own client (pooled keep-alive connections).
    client = meilisearch.Client(stack.meili.url, stack.meili.master_key, timeout=stack.services.settings.meili_timeout)
    index = client.index(PRODUCTS_INDEX)
    app_client = make_meili(stack.services.settings)
    meili = urlsplit(stack.meili.url)
    # The floor for the same query: one keep-alive http.client connection. (Not requests.Session: over a kept-alive
    # urllib3 connection Meilisearch's answers above a few KB arrive ~40 ms late; see core.clients.)
    direct = http.client.HTTPConnection(meili.hostname or "127.0.0.1", meili.port, timeout=10)
    search_path = f"/indexes/{PRODUCTS_INDEX}/search"
    search_headers = {"Authorization": f"Bearer {stack.meili.master_key}", "Content-Type": "application/json"}
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    rng = random.Random(20240611)
    used: set[int] = set()

    def absent_id() -> int:
        while True:
            pid = rng.randrange(*ABSENT_IDS)
            if pid not in used:
                used.add(pid)
                return pid

    def query(pid: int) -> tuple[str, dict[str, Any]]:
        params = parse_params(feed, {"limit": str(LIMIT), "exclude": str(pid)},
                              int(settings.get("feed_default_limit") or 12))
        return search_arguments(feed, "", params, SHOP, settings, limit=params.limit, offset=params.offset)

    def one_feed() -> tuple[float, int]:
        path = feed_path(exclude=str(absent_id()))
        t0 = time.perf_counter()
        conn.request("GET", path, headers=GZIP)
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 200 or response.getheader("X-Lumi-Stale"):
            raise RuntimeError(f"cold feed answered {response.status}: {body[:300]!r}")
        return elapsed, len(body)

    def one_raw(target: Any) -> float:
        q, options = query(absent_id())
        t0 = time.perf_counter()
        hits = target().search(q, options)["hits"]
        elapsed = time.perf_counter() - t0
        if len(hits) != LIMIT:
            raise RuntimeError(f"raw query found {len(hits)} hits")
        return elapsed

    def one_keepalive() -> float:
        q, options = query(absent_id())
        body = json.dumps({"q": q, **options}).encode()
        t0 = time.perf_counter()
        direct.request("POST", search_path, body=body, headers=search_headers)
        response = direct.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 200 or len(json.loads(answer)["hits"]) != LIMIT:
            raise RuntimeError(f"keep-alive raw query answered {response.status}: {answer[:300]!r}")
        return elapsed

    feed_times: list[float] = []
    raw_times: list[float] = []
    keep_times: list[float] = []
    app_times: list[float] = []
    size = 0
    try:
        for i in range(COLD_WARMUP + count):
            # Interleaved one to one, so drift and neighbours' load fall on all four alike.
            took, size = one_feed()
            raw = one_raw(lambda: index)
            keep = one_keepalive()
            mine = one_raw(lambda: app_client.index(PRODUCTS_INDEX))  # as feeds.service asks for it
            if i >= COLD_WARMUP:
                feed_times.append(took)
                raw_times.append(raw)
                keep_times.append(keep)
                app_times.append(mine)
    finally:
        conn.close()
        direct.close()
        app_client.close()
    return Cold(sorted(feed_times), sorted(raw_times), sorted(keep_times), sorted(app_times), size)


# --- optional: where the time goes, in process ----------------------------------------------------------------


def profile_in_process(stack: Stack, hits: int, colds: int) -> None:
    """cProfile of the feed view through Flask's test client (no gunicorn): hits, then cold requests."""
    from web import create_app

    app = create_app({**stack.env, "LOG_LEVEL": "WARNING"})
    client = app.test_client()
    path = feed_path()
    client.get(path, headers=GZIP)
    for label, count, make in (("cache hits", hits, lambda i: path),
                               ("cold requests", colds, lambda i: feed_path(exclude=str(ABSENT_IDS[0] + 7 * i + 3)))):
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for i in range(count):
            answer = client.get(make(i), headers=GZIP)
            if answer.status_code != 200:
                raise RuntimeError(f"profile: {answer.status_code} {answer.data[:300]!r}")
        profiler.disable()
        took = time.perf_counter() - started
        own, lumi = io.StringIO(), io.StringIO()
        pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(10)
        pstats.Stats(profiler, stream=lumi).sort_stats("cumulative").print_stats(
            rf"{re.escape(str(REPO_ROOT))}/(web|feeds|core|shopify)/", 12)
        say(f"\n  profile, {count} {label} in process ({1000 * took / count:.2f} ms each under cProfile)")
        for title, out in (("top by own time", own), ("Lumi's own functions by cumulative time", lumi)):
            say(f"  {title}:")
            for line in out.getvalue().splitlines():
                if re.match(r"\s+\d", line) and "function calls" not in line or "ncalls" in line:
                    say("   " + line)


# --- entry point ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feeds", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"smaller sizes: {QUICK}")
    parser.add_argument("--only", default="1,2,3", help="sections to run, e.g. 1,3 (default 1,2,3)")
    parser.add_argument("--products", type=int, help="catalogue size")
    parser.add_argument("--seconds", type=float, help="length of one load phase")
    parser.add_argument("--rounds", type=int, help="load phases per target (interleaved; best reported)")
    parser.add_argument("--cold", type=int, help="sequential cold feed requests (and raw queries)")
    parser.add_argument("--connections", type=int, help="load generator connections")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (auto: wrk if on PATH, else Python threads)")
    parser.add_argument("--recycle", action="store_true",
                        help="keep gunicorn.conf.py's max_requests worker recycling (off by default)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the feed view in process")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker and gunicorn logs")
    args = parser.parse_args(argv)
    base_sizes = QUICK if args.quick else FULL
    sizes = Sizes(products=args.products or base_sizes.products, seconds=args.seconds or base_sizes.seconds,
                  rounds=args.rounds or base_sizes.rounds, cold=args.cold or base_sizes.cold,
                  connections=args.connections or base_sizes.connections)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if sections - {"1", "2", "3"}:
        parser.error(f"unknown sections {', '.join(sorted(sections - {'1', '2', '3'}))}")
    kind = args.generator
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    elif kind == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not on PATH (Debian: apt-get install wrk)")
    mode = "quick" if args.quick else "full"
    say(f"bench.feeds ({mode}): {sizes.products:,} products; load phases of {sizes.seconds:g} s x {sizes.rounds} "
        f"round(s); {sizes.cold} cold requests; sections {','.join(sorted(sections))}; {os.cpu_count()} CPUs; "
        f"load avg {loadavg()}")
    workdir = Path(tempfile.mkdtemp(prefix="lumi-bench-feeds-"))
    started = time.monotonic()
    rows: list[tuple[str, str, str, str, str, str]] = []
    verdicts: list[tuple[str, bool]] = []
    try:
        with ExitStack() as exit_stack:
            stack = Stack(exit_stack, workdir)
            stack.create_shop(SHOP, sizes.products, bucket=HUGE, rate=HUGE)
            stack.fresh_products_index()
            run = stack.sync(SHOP, sizes.products, bulk_threshold=0, log_level="WARNING")
            say(f"  synced {run.documents:,} documents for {SHOP} in {run.job_seconds:.1f} s "
                f"(mode {run.record.get('mode')})")
            web, base = start_gunicorn(stack, workdir, recycle=args.recycle)
            exit_stack.callback(web.stop)
            etag, gzip_bytes, json_bytes = check_app(base)
            say(f"  gunicorn at {base} (pid {web.pid}, {WEB_ENV['WEB_CONCURRENCY']} gevent workers, "
                f"worker recycling {'on' if args.recycle else 'off'}); "
                f"feed body {gzip_bytes:,} B gzip / {json_bytes:,} B JSON")
            edge = None
            if "3" in sections:
                from devtools.edge import EdgeServer

                edge = EdgeServer(upstream=base.removeprefix("http://")).start()
                exit_stack.callback(edge.stop)
                first = requests.get(edge.url + feed_path(), headers=GZIP, timeout=10)
                again = requests.get(edge.url + feed_path(), headers=GZIP, timeout=10)
                say(f"  nginx {edge.version_text} edge at {edge.url}: first {first.headers.get('X-Cache-Status')}, "
                    f"then {again.headers.get('X-Cache-Status')}")
                if again.headers.get("X-Cache-Status") != "HIT":
                    raise RuntimeError("the edge does not cache the feed")
            trees: dict[str, Callable[[], int | None]] = {"gunicorn": lambda: web.pid, "redis": lambda: stack.redis.pid}
            if edge is not None:
                trees["nginx"] = lambda: edge.pid
            generator = Generator(kind, sizes.connections, trees)
            say(f"  load generator: {generator.describe()}")

            if sections & {"1", "3"}:
                say(f"\n## (1)/(3) requests/s on cache hits, {sizes.rounds} interleaved round(s) of "
                    f"{sizes.seconds:g} s per target, best round reported")
                loads = bench_throughput(generator, base, edge.url if edge else None,
                                         edge.access_log_path if edge else None, sizes, etag, sections)
                feed = best(loads["feed"])
                if "1" in sections:
                    hello, raw = best(loads["hello"]), best(loads["raw"])
                    ratio = feed.rps / hello.rps
                    ok = ratio >= GOAL_HIT_OVER_HELLO
                    verdicts.append(("(1) feed hit / hello req/s", ok))
                    rows.append((f"(1) feed cache hit, {gzip_bytes:,} B gzip", rps(feed.rps),
                                 f"/bench/hello: {rps(hello.rps)}", f"{ratio:.2f}x", f">= {GOAL_HIT_OVER_HELLO}x",
                                 met(ok)))
                    rows.append(("    the same vs hello outside Flask", rps(feed.rps),
                                 f"/bench/hello-raw: {rps(raw.rps)}", f"{feed.rps / raw.rps:.2f}x", "(info)", ""))
                    feed_cpu, hello_cpu = feed.cpu_ms_per_request("gunicorn"), hello.cpu_ms_per_request("gunicorn")
                    raw_cpu = raw.cpu_ms_per_request("gunicorn")
                    if feed_cpu and hello_cpu and raw_cpu:
                        rows.append(("    gunicorn CPU per request, feed hit", f"{feed_cpu:.3f} ms",
                                     f"hello {hello_cpu:.3f} ms; hello-raw {raw_cpu:.3f} ms",
                                     f"{feed_cpu / hello_cpu:.2f}x", "(info)", ""))
                    redis_cpu = feed.cpu_ms_per_request("redis")
                    if redis_cpu:
                        rows.append(("    Redis CPU per request, feed hit", f"{redis_cpu:.3f} ms",
                                     f"hello {ms(hello.cpu_ms_per_request('redis'))}", "", "(info)", ""))
                if "3" in sections and edge is not None:
                    through = best(loads["edge"])
                    rows.append(("(3) feed cache hit through the nginx edge", rps(through.rps),
                                 f"direct to gunicorn: {rps(feed.rps)}", f"{through.rps / feed.rps:.2f}x", "(info)",
                                 ""))
                    nginx_cpu = through.cpu_ms_per_request("nginx")
                    if nginx_cpu:
                        rows.append(("    nginx CPU per request on hits", f"{nginx_cpu:.3f} ms",
                                     f"gunicorn on direct hits: {ms(feed.cpu_ms_per_request('gunicorn'))}", "",
                                     "(info)", ""))

            if "2" in sections:
                say(f"\n## (2) cold feed latency: {sizes.cold} sequential requests, each a new cache key, interleaved "
                    "with the raw Meilisearch query behind it")
                cold = bench_cold(stack, base, sizes.cold)
                f50, f99 = _pct(cold.feed, 50) * 1000, _pct(cold.feed, 99) * 1000
                r50, r99 = _pct(cold.raw, 50) * 1000, _pct(cold.raw, 99) * 1000
                k50, k99 = _pct(cold.keepalive, 50) * 1000, _pct(cold.keepalive, 99) * 1000
                a50, a99 = _pct(cold.app_client, 50) * 1000, _pct(cold.app_client, 99) * 1000
                say(f"  cold feed: p50 {ms(f50)}, p99 {ms(f99)}, max {ms(cold.feed[-1] * 1000)} "
                    f"({cold.feed_bytes:,} B gzip)")
                say(f"  raw query, one keep-alive http.client connection: p50 {ms(k50)}, p99 {ms(k99)}, "
                    f"max {ms(cold.keepalive[-1] * 1000)}")
                say(f"  raw query, stock meilisearch SDK: p50 {ms(r50)}, p99 {ms(r99)}, max {ms(cold.raw[-1] * 1000)}")
                say(f"  raw query, the app's client (pooled): p50 {ms(a50)}, p99 {ms(a99)}, "
                    f"max {ms(cold.app_client[-1] * 1000)}")
                ok = f99 / k99 <= GOAL_COLD_P99
                verdicts.append(("(2) cold feed p99 / keep-alive raw query p99", ok))
                rows.append(("(2) cold feed latency p99", ms(f99), f"raw query (keep-alive) p99: {ms(k99)}",
                             f"{f99 / k99:.2f}x", f"<= {GOAL_COLD_P99:g}x", met(ok)))
                rows.append(("    cold feed latency p50", ms(f50), f"raw query (keep-alive) p50: {ms(k50)}",
                             f"{f50 / k50:.2f}x", "(info)", ""))
                rows.append(("    cold feed p99 vs the stock SDK's query", ms(f99),
                             f"raw query (SDK, new connection) p99: {ms(r99)}", f"{f99 / r99:.2f}x", "(info)", ""))
                rows.append(("    the app's client vs keep-alive, p99", ms(a99),
                             f"raw query (keep-alive) p99: {ms(k99)}", f"{a99 / k99:.2f}x", "(info)", ""))

            if args.profile:
                say("\n## profile (in process, Flask test client)")
                profile_in_process(stack, hits=2000, colds=300)
    finally:
        if args.keep_logs:
            say(f"\nlogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table(f"results ({mode} sizes, {time.monotonic() - started:.0f} s in all, load avg now {loadavg()})",
          GOAL_HEADER, rows)
    say("  (1) ratio = feed hit req/s / hello req/s on the same gunicorn; (2) ratio = p99 cold feed / p99 raw query "
        "over one keep-alive connection; (3) ratio = edge req/s / direct req/s. All three share this machine's "
        "CPUs with the load generator.")
    table("summary", ("goal", "result"), [(name, met(ok)) for name, ok in verdicts])
    return 0


if __name__ == "__main__":
    sys.exit(main())
