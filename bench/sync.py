"""Catalogue sync benchmarks: every number printed, every ratio measured side by side in this run.

(a) Unthrottled bulk sync of N products from devshop, through a real `python -m jobs.worker --burst`. The goal
    row is the indexing phase, from the bulk operation seen COMPLETED (its JSONL ready at its url; the sync
    record's `exported_at`) to every document searchable (the record completed: every Meilisearch task done,
    `finished_at`), against a raw Meilisearch ingest of exactly the documents that sync produced (read back from
    the index) into a fresh index with the same settings, in batches of the sync's size, all queued then waited.
    Goal: raw_time / indexing_time >= 0.5. The export (bulk operation started -> seen COMPLETED: devshop's cost,
    a stand-in for Shopify's) and the whole job are printed apart, for information. `--profile` runs the job in
    the worker process itself (RQ's SimpleWorker) under cProfile and prints the top functions.
(b) Paged sync (LUMI_BULK_THRESHOLD above the catalogue) under Shopify's standard-plan budget (bucket 2,000
    points, restoring 100/s) against the least time that budget allows for the queries the sync actually
    sent: a zero-latency replay of their (requested, actual) costs through the same leaky bucket.
    Goal: elapsed / minimum <= 1.2.
(c) Peak RSS of the worker (the RQ worker and its work horse, RUSAGE_CHILDREN in a fresh parent process) for
    bulk syncs of a small and a large catalogue, each in a new worker. Goal: flat within 20 %.

Private Redis, Meilisearch and devshop on free ports; nothing else is touched.
Run: `python -m bench.sync [--quick] [--only a,b,c] [--sync-products N] [--repeat N] [--profile]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import meilisearch
import requests
from cryptography.fernet import Fernet
from meilisearch.errors import MeilisearchApiError

from devtools.services import REPO_ROOT, MeiliServer, RedisServer

API_KEY = "lumi-bench-client-id"
API_SECRET = "lumi-bench-client-secret-0123456789abcdef"
SCOPES = "read_products,read_orders,read_inventory"
RAW_INDEX = "bench_raw_products"
HUGE = 1e9  # bucket size and restore rate for "unthrottled"
STANDARD_BUCKET, STANDARD_RATE = 2000.0, 100.0  # Shopify's standard plan
SYNC_TIMEOUT = 1800.0  # seconds for one sync before the bench gives up on it
WARM_UP_PRODUCTS = 2000  # (a) an untimed bulk sync first, so that the timed one meets a warm Meilisearch

# Goals from the issue.
GOAL_RAW_OVER_SYNC = 0.5  # (a) raw_time / indexing_time >= this
GOAL_PACING = 1.2  # (b) elapsed / minimum <= this
GOAL_RSS_SPREAD = 0.2  # (c) |large / small - 1| <= this


@dataclass(frozen=True)
class Sizes:
    sync: int  # (a) products in the devshop catalogue
    paged: int  # (b)
    rss_small: int  # (c)
    rss_large: int  # (c)


FULL = Sizes(sync=100_000, paged=400, rss_small=10_000, rss_large=200_000)
QUICK = Sizes(sync=20_000, paged=150, rss_small=2_000, rss_large=20_000)


# --- printing --------------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    say(f"\n{title}")
    say("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    say(line)
    for row in rows:
        say("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


GOAL_HEADER = ("measurement", "value", "baseline", "ratio", "goal", "result")


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def secs(value: float) -> str:
    return f"{value:.2f} s"


# --- the stack: Redis, Meilisearch, devshop, and Lumi's services in this process ------------------------------


def child_env(env: dict[str, str]) -> dict[str, str]:
    """A child Python process's environment: only what we pass, plus what Python needs (as tests/conftest)."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
    keep["PYTHONPATH"] = str(REPO_ROOT)
    keep["PYTHONUNBUFFERED"] = "1"
    keep.update(env)
    return keep


@dataclass
class SyncRun:
    shop: str
    products: int  # devshop catalogue size
    record: dict[str, Any]
    job_seconds: float  # RQ job started_at -> ended_at: the sync itself
    wall_seconds: float  # worker process start -> exit (adds interpreter start-up and queue checks)
    peak_rss_kib: int  # largest ru_maxrss of the worker and its work horse (RUSAGE_CHILDREN of a fresh parent)
    worker_hwm_kib: int  # VmHWM of the worker process, sampled from /proc every 0.1 s (0 when not seen)
    horse_hwm_kib: int  # VmHWM of the work horse (the job runs there), sampled likewise
    phases: dict[str, float]  # phase -> seconds spent in it (polled every 0.1 s)
    cpu_seconds: float  # CPU time (user + system) of the worker and its work horse, start-up included
    meili_cpu_seconds: float  # CPU time Meilisearch used while the worker ran
    stats: dict[str, Any]  # devshop's counters for the shop
    log_path: Path
    profile_path: Path | None = None  # cProfile stats of the worker (--profile)

    @property
    def documents(self) -> int:
        return int(self.record.get("done") or 0)

    def span(self, start: str, end: str) -> float:
        """Seconds between two timestamps the sync itself recorded (time.time() in the worker)."""
        first, last = self.record.get(start), self.record.get(end)
        if not first or not last:
            raise RuntimeError(f"the sync record lacks {start} or {end}: {self.record}")
        return float(last) - float(first)


class Stack:
    """Private Redis + Meilisearch (child processes), devshop (thread), Lumi's Services built from env."""

    def __init__(self, exit_stack: ExitStack, workdir: Path) -> None:
        from core.settings import load_settings
        from devshop.testing import DevShopControl, DevShopServer
        from runtime.services import build_services

        self.workdir = workdir
        self.redis = exit_stack.enter_context(RedisServer().start())
        self.meili = exit_stack.enter_context(MeiliServer().start())
        self.devshop = DevShopServer({"API_KEY": API_KEY, "API_SECRET": API_SECRET, "SHOPS": {}}).start()
        exit_stack.callback(self.devshop.stop)
        self.control = DevShopControl(self.devshop.url, timeout=120)
        self.env = {
            "LUMI_ENV": "development",
            "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET,
            "APP_URL": "http://127.0.0.1:9",  # no web process in these benchmarks (nothing calls back)
            "SHOPIFY_ADMIN_BASE_URL": self.devshop.admin_base_url,
            "REDIS_URL": self.redis.url,
            "MEILI_URL": self.meili.url,
            "MEILI_MASTER_KEY": self.meili.master_key,
            "LUMI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "LOG_LEVEL": "INFO",
        }
        self.services = build_services(load_settings(self.env))
        # A client with a long timeout for the bench's own bulk reads and writes (the app's is 2 s).
        self.meili_client = meilisearch.Client(self.meili.url, self.meili.master_key, timeout=300)
        self._runs = 0

    # -- shops ----------------------------------------------------------------------------------------------

    def create_shop(self, shop: str, products: int, *, bucket: float, rate: float, seed: int = 7) -> None:
        """A fresh devshop store, installed in Lumi with a non-expiring offline token."""
        from shopify.oauth import TokenSet

        self.control.create_shop(shop, products=products, seed=seed, plan="standard")
        self.control.set_throttle(shop, bucket, rate)
        issued = self.control.issue_token(shop, expiring=False, scope=SCOPES)
        scopes = tuple(s.strip() for s in str(issued.get("scope") or SCOPES).split(",") if s.strip())
        self.services.shops.install(shop, TokenSet(access_token=issued["access_token"], scopes=scopes,
                                                   expires_at=None, refresh_token=None, refresh_expires_at=None))

    # -- indexes --------------------------------------------------------------------------------------------

    def drop_index(self, uid: str) -> None:
        try:
            self.meili_client.get_raw_index(uid)
        except MeilisearchApiError as err:
            if err.code == "index_not_found":
                return
            raise
        self.wait_task(self.meili_client.delete_index(uid).task_uid)

    def fresh_products_index(self) -> None:
        """An empty products index with Lumi's settings, as a first deploy has (the sync then fills it)."""
        from feeds.index import PRODUCTS_INDEX, ensure_indexes

        self.drop_index(PRODUCTS_INDEX)
        ensure_indexes(self.meili_client)

    def fresh_raw_index(self) -> Any:
        """An empty index with the very same primary key and settings as the products index."""
        from feeds.index import PRODUCTS_PRIMARY_KEY, PRODUCTS_SETTINGS

        self.drop_index(RAW_INDEX)
        self.wait_task(self.meili_client.create_index(RAW_INDEX, {"primaryKey": PRODUCTS_PRIMARY_KEY}).task_uid)
        index = self.meili_client.index(RAW_INDEX)
        self.wait_task(index.update_settings(PRODUCTS_SETTINGS).task_uid)
        return index

    def wait_task(self, task_uid: int) -> None:
        task = self.meili_client.wait_for_task(task_uid, timeout_in_ms=600_000, interval_in_ms=20)
        if task.status != "succeeded":
            raise RuntimeError(f"Meilisearch task {task_uid} {task.status}: {task.error}")

    def shop_documents(self, shop: str) -> list[dict[str, Any]]:
        """Every document the sync wrote for `shop`, exactly as stored (the documents route, paged)."""
        from feeds.index import PRODUCTS_INDEX
        from feeds.writer import shop_filter

        out: list[dict[str, Any]] = []
        headers = {"Authorization": f"Bearer {self.meili.master_key}"}
        with requests.Session() as http:
            while True:
                response = http.post(f"{self.meili.url}/indexes/{PRODUCTS_INDEX}/documents/fetch", headers=headers,
                                     json={"filter": shop_filter(shop), "limit": 10_000, "offset": len(out)},
                                     timeout=300)
                response.raise_for_status()
                body = response.json()
                out.extend(body["results"])
                if not body["results"] or len(out) >= body["total"]:
                    return out

    # -- a sync, the way production runs one ------------------------------------------------------------------

    def sync(self, shop: str, products: int, *, bulk_threshold: int, log_level: str = "INFO",
             profile: bool = False) -> SyncRun:
        """request_sync() then a real `python -m jobs.worker --burst` until it exits; times from RQ's job.

        profile: the job runs in the worker process (no work horse) under cProfile, stats next to the log."""
        from rq import Queue
        from rq.job import Job

        from core import keys
        from jobs.sync import read_record, request_sync

        self._runs += 1
        log_path = self.workdir / f"worker-{self._runs}-{shop.split('.')[0]}.log"
        env = {**self.env, "LUMI_BULK_THRESHOLD": str(bulk_threshold), "LOG_LEVEL": log_level}
        queue = Queue(keys.QUEUE_SYNC, connection=self.services.queue_redis)
        finished_before = set(queue.finished_job_registry.get_job_ids())
        meili_cpu = cpu_seconds(self.meili.pid)
        request_sync(self.services, shop, reason="bench")
        phases: dict[str, float] = {}
        phase, phase_since = "queued", time.monotonic()
        hwm: dict[int, int] = {}  # pid -> VmHWM (KiB) of every process under the fresh parent
        result_path = log_path.with_suffix(".rusage.json")
        profile_path = log_path.with_suffix(".prof") if profile else None
        worker = [sys.executable, "-c", _PROFILED_WORKER, str(profile_path)] if profile_path else \
            [sys.executable, "-m", "jobs.worker"]
        with open(log_path, "wb") as log:
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-c", _FRESH_PARENT, str(result_path), *worker, "--burst"],
                                    cwd=REPO_ROOT, env=child_env(env), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                while True:
                    exited = proc.poll() is not None
                    now = time.monotonic()
                    current = read_record(self.services.redis, shop).get("phase") or phase
                    if current != phase:
                        phases[phase] = phases.get(phase, 0.0) + now - phase_since
                        phase, phase_since = current, now
                    if exited:
                        break
                    for pid in _descendants(proc.pid):
                        hwm[pid] = max(hwm.get(pid, 0), _vm_hwm_kib(pid))
                    if now - started > SYNC_TIMEOUT:
                        raise TimeoutError(f"sync of {shop} not done after {SYNC_TIMEOUT:.0f} s")
                    time.sleep(0.1)
            finally:
                if proc.returncode is None:
                    for pid in [*_descendants(proc.pid), proc.pid]:
                        _kill(pid)
                    proc.wait(30)
            wall = time.monotonic() - started
        meili_cpu = cpu_seconds(self.meili.pid) - meili_cpu
        record = read_record(self.services.redis, shop)
        usage = json.loads(result_path.read_text()) if result_path.exists() else {}
        if proc.returncode != 0 or usage.get("exit") != 0 or record.get("status") != "completed":
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"sync of {shop} ended {record.get('status')!r} (worker: {usage}):\n"
                               f"{record}\n--- worker log tail ---\n{tail}")
        new_jobs = [j for j in queue.finished_job_registry.get_job_ids() if j not in finished_before]
        job = Job.fetch(new_jobs[-1], connection=self.services.queue_redis)
        assert job.started_at and job.ended_at
        worker_pid = int(usage["worker_pid"])
        return SyncRun(shop=shop, products=products, record=record,
                       job_seconds=(job.ended_at - job.started_at).total_seconds(), wall_seconds=wall,
                       peak_rss_kib=int(usage["maxrss_kib"]), worker_hwm_kib=hwm.get(worker_pid, 0),
                       horse_hwm_kib=max((v for pid, v in hwm.items() if pid != worker_pid), default=0),
                       phases=phases, cpu_seconds=float(usage.get("cpu_s", 0.0)), meili_cpu_seconds=meili_cpu,
                       stats=self.control.stats(shop), log_path=log_path, profile_path=profile_path)


# The worker's parent: a small fresh Python that reports RUSAGE_CHILDREN's ru_maxrss (the largest RSS of the
# worker and of its work horse, which the worker reaps). Not the bench process itself: Linux counts in an exec'd
# child's ru_maxrss the RSS its parent had when it forked, and this process holds devshop and 100k documents.
_FRESH_PARENT = """
import json, resource, signal, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
code = proc.wait()
with open(sys.argv[1], "w") as out:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump({"exit": code, "worker_pid": proc.pid, "maxrss_kib": usage.ru_maxrss,
               "cpu_s": usage.ru_utime + usage.ru_stime}, out)
sys.exit(0 if code == 0 else 1)
"""


# `python -m jobs.worker` with the job run in the worker process itself (RQ's SimpleWorker: no fork) under cProfile.
_PROFILED_WORKER = """
import cProfile, sys
from rq.worker import SimpleWorker
from jobs import worker
worker.LumiWorker.execute_job = SimpleWorker.execute_job
worker.LumiWorker.get_heartbeat_ttl = SimpleWorker.get_heartbeat_ttl
profiler = cProfile.Profile()
code = profiler.runcall(worker.main, sys.argv[2:])
profiler.dump_stats(sys.argv[1])
sys.exit(code)
"""


def print_profile(path: Path, top: int = 25) -> None:
    import pstats

    for order in ("tottime", "cumulative"):
        say(f"\n  cProfile of the worker, top {top} by {order}:")
        stats = pstats.Stats(str(path), stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(top)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of each main thread, recursively), [] when /proc does not tell."""
    out: list[int] = []
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return out
    for child in children:
        out.append(child)
        out.extend(_descendants(child))
    return out


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) the process has used so far, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _vm_hwm_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def describe_run(run: SyncRun) -> None:
    record = run.record
    order = ["queued", "signals", "fetching", "exporting", "indexing", "finishing"]
    spent = ", ".join(f"{name} {run.phases[name]:.1f} s" for name in order + sorted(set(run.phases) - set(order))
                      if name in run.phases)
    say(f"  {run.shop}: {run.products:,} products in devshop, {record.get('total'):,} listed, "
        f"{run.documents:,} documents written, mode={record.get('mode')}")
    say(f"  job {secs(run.job_seconds)} (worker process {secs(run.wall_seconds)}); phases as polled: {spent}")
    say(f"  devshop: {run.stats}")


# --- (a) sync vs raw ingest ----------------------------------------------------------------------------------


@dataclass
class Timeline:
    """What Meilisearch did with one index's document additions (its task history, ns timestamps)."""

    tasks: int
    batches: int  # Meilisearch indexing batches (it merges queued tasks into one)
    busy: float  # seconds Meilisearch spent in those batches
    last_enqueued: float  # epoch seconds the last task was enqueued
    last_finished: float  # ... and the last one finished
    spans: list[tuple[int, int, float, float]]  # per indexing batch: tasks, documents, started, finished (epoch s)

    def describe(self, since: float, most: int = 12) -> str:
        parts = [f"{tasks}x/{docs:,} docs at +{start - since:.1f} s for {end - start:.2f} s"
                 for tasks, docs, start, end in self.spans]
        if len(parts) > most:
            parts[most // 2:-most // 2] = [f"... {len(parts) - most} more ..."]
        return "; ".join(parts)


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def timeline(stack: Stack, uid: str, since: float) -> Timeline:
    headers = {"Authorization": f"Bearer {stack.meili.master_key}"}
    tasks: list[dict[str, Any]] = []
    params: dict[str, Any] = {"indexUids": uid, "types": "documentAdditionOrUpdate", "limit": 1000,
                              "afterEnqueuedAt": datetime.fromtimestamp(since).astimezone().isoformat()}
    while True:
        body = requests.get(f"{stack.meili.url}/tasks", params=params, headers=headers, timeout=60).json()
        tasks += body["results"]
        if body.get("next") is None:
            break
        params["from"] = body["next"]
    spans: dict[Any, tuple[int, int, float, float]] = {}
    for task in tasks:
        if task.get("startedAt") and task.get("finishedAt"):
            count, docs, _, _ = spans.get(task.get("batchUid"), (0, 0, 0.0, 0.0))
            spans[task.get("batchUid")] = (count + 1, docs + int((task.get("details") or {}).get("receivedDocuments")
                                                                 or 0),
                                           _epoch(task["startedAt"]), _epoch(task["finishedAt"]))
    ordered = sorted(spans.values(), key=lambda span: span[2])
    return Timeline(tasks=len(tasks), batches=len(spans), busy=sum(end - start for _, _, start, end in ordered),
                    last_enqueued=max((_epoch(t["enqueuedAt"]) for t in tasks), default=0.0),
                    last_finished=max((end for _, _, _, end in ordered), default=0.0), spans=ordered)


def raw_ingest(stack: Stack, documents: list[dict[str, Any]], batch: int) -> float:
    """Seconds to add `documents` to a fresh index in batches of `batch`: every batch queued back to back, then
    every task waited for (Meilisearch may merge queued tasks into one indexing batch: the fastest a client can
    ingest)."""
    index = stack.fresh_raw_index()
    started = time.monotonic()
    tasks = [index.add_documents(documents[start:start + batch], primary_key="uid").task_uid
             for start in range(0, len(documents), batch)]
    for task in tasks:
        stack.wait_task(task)
    elapsed = time.monotonic() - started
    stats = index.get_stats()
    if stats.number_of_documents != len(documents):
        raise RuntimeError(f"raw index holds {stats.number_of_documents} documents, expected {len(documents)}")
    stack.drop_index(RAW_INDEX)
    return elapsed


def bench_sync_vs_raw(stack: Stack, products: int, repeat: int = 1, profile: bool = False) -> list[tuple[str, bool]]:
    from feeds.index import PRODUCTS_INDEX
    from jobs.sync import BATCH_SIZE

    shop = "bench-sync.myshopify.com"
    say(f"\n## (a) unthrottled bulk sync of {products:,} products: indexing (JSONL ready -> every document "
        f"searchable) vs raw Meilisearch ingest of the same documents{', under cProfile' if profile else ''}")
    # A long-running Meilisearch has indexed before; a fresh one's first indexing batch pays one-time set-up (measured:
    # 1000 documents in 3.6 s in a run's first sync, 1.3 s in its second), not to be charged to the timed sync alone.
    warm = "bench-warm-up.myshopify.com"
    stack.create_shop(warm, WARM_UP_PRODUCTS, bucket=HUGE, rate=HUGE)
    stack.fresh_products_index()
    warm_up = stack.sync(warm, WARM_UP_PRODUCTS, bulk_threshold=0)
    say(f"  warm-up: a bulk sync of {WARM_UP_PRODUCTS:,} products ({warm_up.documents:,} documents) in "
        f"{secs(warm_up.job_seconds)}, not timed")
    stack.create_shop(shop, products, bucket=HUGE, rate=HUGE)
    rows, ratios = [], []
    for attempt in range(1, repeat + 1):
        stack.fresh_products_index()
        run = stack.sync(shop, products, bulk_threshold=0, profile=profile)
        describe_run(run)
        export, indexing, whole = (run.span("exporting_at", "exported_at"), run.span("exported_at", "finished_at"),
                                   run.span("exporting_at", "finished_at"))
        sent = timeline(stack, PRODUCTS_INDEX, float(run.record["exported_at"]))
        exported = float(run.record["exported_at"])
        say(f"  Meilisearch: {sent.tasks} tasks in {sent.batches} indexing batches, busy {secs(sent.busy)}; "
            f"last batch sent {secs(sent.last_enqueued - exported)} and indexed {secs(sent.last_finished - exported)} "
            f"after the export was seen COMPLETED\n    batches: {sent.describe(exported)}")
        documents = stack.shop_documents(shop)
        if len(documents) != run.documents:
            raise RuntimeError(f"read back {len(documents)} documents, the sync says it wrote {run.documents}")
        if attempt == 1:
            size = len(json.dumps(documents).encode())
            say(f"  read back {len(documents):,} documents ({size / 1e6:.1f} MB as JSON) for the raw ingest")
        stack.drop_index(PRODUCTS_INDEX)  # only one index is being written while the raw ingest is timed
        raw_from, raw_cpu = time.time(), cpu_seconds(stack.meili.pid)
        raw = raw_ingest(stack, documents, BATCH_SIZE)
        raw_cpu = cpu_seconds(stack.meili.pid) - raw_cpu
        line = timeline(stack, RAW_INDEX, raw_from)
        say(f"  CPU: worker {secs(run.cpu_seconds)} (start-up and export polling included), Meilisearch "
            f"{secs(run.meili_cpu_seconds)} during the sync vs {secs(raw_cpu)} during the raw ingest")
        say(f"  raw ingest: {line.tasks} tasks in {line.batches} indexing batches, Meilisearch busy {secs(line.busy)}"
            f"\n    batches: {line.describe(raw_from)}")
        del documents
        ratio = raw / indexing
        ratios.append(ratio)
        n = run.documents
        tag = f" #{attempt}" if repeat > 1 else ""
        rows.append((f"indexing{tag}: bulk op COMPLETED -> {n:,} docs searchable ({n / indexing:,.0f} docs/s)",
                     secs(indexing), f"raw ingest, {BATCH_SIZE}-doc batches all queued, then waited: {secs(raw)} "
                     f"({n / raw:,.0f} docs/s)", f"{ratio:.2f}x raw/indexing", f">= {GOAL_RAW_OVER_SYNC}x",
                     met(ratio >= GOAL_RAW_OVER_SYNC)))
        rows.append((f"  export{tag}: bulk op started -> seen COMPLETED (devshop's cost)", secs(export), "", "",
                     "(info)", ""))
        rows.append((f"  end to end{tag}: bulk op started -> completed (RQ job {secs(run.job_seconds)})",
                     secs(whole), f"raw ingest: {secs(raw)}", f"{raw / whole:.2f}x", "(info)", ""))
        if run.profile_path:
            print_profile(run.profile_path)
    table("(a) results", GOAL_HEADER, rows)
    say("  ratio = raw_time / indexing_time: 1.0 would mean turning the finished export into searchable documents "
        "costs no more than Meilisearch ingesting them; the export is the stand-in's cost, not Lumi's.")
    if profile:
        say("  (under cProfile: the ratios are slowed by the profiler, not a verdict)")
    ratio = statistics.median(ratios)
    return [(f"(a) raw/indexing (median of {repeat}: {ratio:.2f}x)", ratio >= GOAL_RAW_OVER_SYNC)]


# --- (b) throttled paged sync vs the budget's minimum -----------------------------------------------------------


_CALL_LINE = re.compile(r"shopify graphql shop=\S+ op=(?P<op>\S+) outcome=(?P<outcome>\S+) "
                        r"requested_cost=(?P<requested>\S+) actual_cost=(?P<actual>\S+) available=\S+ "
                        r"duration=(?P<duration>[\d.]+)s retries=(?P<retries>\d+) throttle_waits=(?P<waits>\d+)")


@dataclass
class Call:
    op: str
    requested: float
    actual: float
    duration: float
    throttle_waits: int
    retries: int
    at: datetime | None = field(default=None)


def calls_from_log(path: Path) -> list[Call]:
    """The worker's DEBUG line for every Admin API call (AdminClient._finish_call), in order."""
    calls = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        match = _CALL_LINE.search(str(entry.get("msg", "")))
        if not match:
            continue
        if match["outcome"] != "ok" or match["requested"] == "None":
            raise RuntimeError(f"unexpected Admin API call in the worker log: {entry.get('msg')}")
        at = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")) if entry.get("ts") else None
        calls.append(Call(op=match["op"], requested=float(match["requested"]), actual=float(match["actual"]),
                          duration=float(match["duration"]), throttle_waits=int(match["waits"]),
                          retries=int(match["retries"]), at=at))
    return calls


def minimum_seconds(costs: Sequence[tuple[float, float]], maximum: float, rate: float) -> float:
    """Least time the leaky bucket allows for these queries, in this order, at zero latency.

    The bucket starts full. A query goes when `requested` points are available, is charged `requested` and
    at once refunded `requested - actual`; the bucket restores `rate` points/s up to `maximum`.
    """
    now, level = 0.0, maximum
    for requested, actual in costs:
        if requested > maximum:
            raise ValueError(f"a query requests {requested} points, more than the bucket's {maximum}")
        if level < requested:
            now += (requested - level) / rate
            level = requested
        level = min(maximum, level - actual)
    return now


def bench_paced(stack: Stack, products: int) -> list[tuple[str, bool]]:
    shop = "bench-paged.myshopify.com"
    say(f"\n## (b) paged sync of {products:,} products under the standard-plan budget "
        f"(bucket {STANDARD_BUCKET:g} points, restore {STANDARD_RATE:g}/s)")
    stack.create_shop(shop, products, bucket=STANDARD_BUCKET, rate=STANDARD_RATE)
    stack.fresh_products_index()
    run = stack.sync(shop, products, bulk_threshold=10_000_000, log_level="DEBUG")
    describe_run(run)
    calls = calls_from_log(run.log_path)
    if run.record.get("mode") != "paged":
        raise RuntimeError(f"expected a paged sync, got {run.record.get('mode')}")
    sent = len(calls) + int(run.stats.get("throttled", 0))
    if sent != run.stats.get("graphql_requests"):
        say(f"  warning: {len(calls)} calls logged + {run.stats.get('throttled')} throttled answers != "
            f"{run.stats.get('graphql_requests')} requests devshop saw")
    minimum = minimum_seconds([(c.requested, c.actual) for c in calls], STANDARD_BUCKET, STANDARD_RATE)
    by_op: Counter[str] = Counter(c.op for c in calls)
    requested = sum(c.requested for c in calls)
    actual = sum(c.actual for c in calls)
    say(f"  {len(calls)} queries ({', '.join(f'{op} x{n}' for op, n in by_op.most_common())}); "
        f"requested {requested:,.0f} points, actual {actual:,.0f}; THROTTLED answers: {run.stats.get('throttled')}; "
        f"client throttle waits: {sum(c.throttle_waits for c in calls)}; retries: {sum(c.retries for c in calls)}")
    latency = sum(c.duration for c in calls)
    span = 0.0
    if calls[0].at and calls[-1].at:
        span = (calls[-1].at - calls[0].at).total_seconds() + calls[0].duration
    say(f"  time inside AdminClient.execute (pacing sleeps + HTTP): {latency:.1f} s; first call start -> last call "
        f"end: {span:.1f} s (log timestamps, ms)")
    ratio = run.job_seconds / minimum if minimum > 0 else float("inf")
    ok = ratio <= GOAL_PACING
    rows = [(f"paged sync, {products:,} products ({run.documents:,} docs), standard budget", secs(run.job_seconds),
             f"zero-latency minimum for the {len(calls)} queries sent: {secs(minimum)}", f"{ratio:.2f}x elapsed/min",
             f"<= {GOAL_PACING}x", met(ok))]
    if span and minimum > 0:
        rows.append(("  the same, Admin API calls only (first start -> last end)", secs(span), secs(minimum),
                     f"{span / minimum:.2f}x", "(info)", ""))
    table("(b) results", GOAL_HEADER, rows)
    return [("(b) elapsed/minimum", ok)]


# --- (c) worker peak RSS, small vs large catalogue ---------------------------------------------------------------


def bench_rss(stack: Stack, small: int, large: int) -> list[tuple[str, bool]]:
    say(f"\n## (c) worker peak RSS, bulk sync of {small:,} vs {large:,} products (each in a fresh worker process)")
    runs = []
    for products in (small, large):
        shop = f"bench-rss-{products}.myshopify.com"
        stack.create_shop(shop, products, bucket=HUGE, rate=HUGE)
        stack.fresh_products_index()
        run = stack.sync(shop, products, bulk_threshold=0)
        describe_run(run)
        say(f"  peak RSS (ru_maxrss of worker + horse, from a fresh parent): {mib(run.peak_rss_kib)}; "
            f"VmHWM sampled: worker {mib(run.worker_hwm_kib)}, work horse {mib(run.horse_hwm_kib)}")
        runs.append(run)
    low, high = runs
    ratio = high.peak_rss_kib / low.peak_rss_kib
    ok = abs(ratio - 1) <= GOAL_RSS_SPREAD
    rows = [(f"peak RSS, {high.products:,} products ({high.documents:,} docs)", mib(high.peak_rss_kib),
             f"{low.products:,} products ({low.documents:,} docs): {mib(low.peak_rss_kib)}",
             f"{ratio:.2f}x", f"within {GOAL_RSS_SPREAD:.0%} (0.80-1.20x)", met(ok))]
    if low.horse_hwm_kib and high.horse_hwm_kib:
        horse = high.horse_hwm_kib / low.horse_hwm_kib
        rows.append(("  work horse VmHWM (sampled every 0.1 s)", mib(high.horse_hwm_kib), mib(low.horse_hwm_kib),
                     f"{horse:.2f}x", "(cross-check)", ""))
    table("(c) results", GOAL_HEADER, rows)
    return [("(c) peak RSS large/small", ok)]


# --- entry point ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"smaller sizes: {QUICK}")
    parser.add_argument("--only", default="a,b,c", help="sections to run, e.g. a,c (default a,b,c)")
    parser.add_argument("--sync-products", type=int, help="(a) catalogue size")
    parser.add_argument("--paged-products", type=int, help="(b) catalogue size")
    parser.add_argument("--rss-small", type=int, help="(c) small catalogue size")
    parser.add_argument("--rss-large", type=int, help="(c) large catalogue size")
    parser.add_argument("--repeat", type=int, default=1, help="(a) syncs and raw ingests to run (median judged)")
    parser.add_argument("--profile", action="store_true", help="(a) run the job under cProfile, print the top")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs (their path is printed)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(sync=args.sync_products or base.sync, paged=args.paged_products or base.paged,
                  rss_small=args.rss_small or base.rss_small, rss_large=args.rss_large or base.rss_large)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - {"a", "b", "c"}
    if unknown:
        parser.error(f"unknown sections {', '.join(sorted(unknown))}")
    say(f"bench.sync ({'quick' if args.quick else 'full'}): (a) {sizes.sync:,} products; (b) {sizes.paged:,} products; "
        f"(c) {sizes.rss_small:,} and {sizes.rss_large:,} products; sections {','.join(sorted(sections))}; "
        f"{os.cpu_count()} CPUs")
    workdir = Path(tempfile.mkdtemp(prefix="lumi-bench-sync-"))
    verdicts: list[tuple[str, bool]] = []
    started = time.monotonic()
    steps: list[tuple[str, Callable[[Stack], list[tuple[str, bool]]]]] = [
        ("a", lambda stack: bench_sync_vs_raw(stack, sizes.sync, max(1, args.repeat), args.profile)),
        ("b", lambda stack: bench_paced(stack, sizes.paged)),
        ("c", lambda stack: bench_rss(stack, sizes.rss_small, sizes.rss_large)),
    ]
    try:
        with ExitStack() as exit_stack:
            stack = Stack(exit_stack, workdir)
            for name, step in steps:
                if name in sections:
                    verdicts.extend(step(stack))
    finally:
        if args.keep_logs:
            say(f"\nworker logs kept in {workdir}")
        else:
            for path in _files(workdir):
                path.unlink()
            workdir.rmdir()
    table(f"summary ({'quick' if args.quick else 'full'} sizes, {time.monotonic() - started:.0f} s in all)",
          ("goal", "result"), [(name, met(ok)) for name, ok in verdicts])
    return 0


def _files(directory: Path) -> Iterator[Path]:
    yield from (p for p in directory.iterdir() if p.is_file())


if __name__ == "__main__":
    sys.exit(main())
