"""Fault injection against Lumi's real processes, under traffic, and the invariants that must hold afterwards.

A `FaultStack` is the whole system on free ports: a private Redis (optionally with AOF persistence) and
Meilisearch, devshop (in a thread of this process, so the test can read the catalogue it serves), the web
process under gunicorn with the repo's gunicorn.conf.py, and real `python -m jobs.worker` processes. `Traffic`
requests feeds (and chat turns) from background threads the whole time and counts what came back. After each
fault the invariants are checked against devshop's own catalogue:

- the index holds every published product exactly once, at its latest version (product id, `updated_at`,
  title and lowest price, which every index document carries: feeds.documents.to_document), and nothing else;
- no webhook is lost: every product update sent is reflected (the same comparison, after the edits);
- no half-written record: the sync record says completed with the index's document count, the live generation
  is the record's, every document carries it, and no refresh is left pending;
- feeds answered throughout: every answer during the fault was 200 or 304 (stale allowed; chat: 200/201),
  except where a scenario says which errors are unavoidable and why (`FaultResult.honest`).

Each scenario (`scenarios()`) starts its own stack, injects its fault while traffic runs and returns a
`FaultResult`; tests/faults assert on it and `python -m bench.faults` prints it as a table. Nothing here
asserts wall-clock times: recovery time is measured for the bench only. `LUMI_FAULTS_SCALE` (default 1)
multiplies catalogue sizes, traffic durations and burst sizes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import meilisearch
import requests

from devtools.services import REPO_ROOT, ManagedProcess, MeiliServer, RedisServer, free_port, http_get, session_pids

SHOP = "fault-shop.myshopify.com"
# Test-only credentials (never used anywhere else).
API_KEY = "lumi-faults-client-id"
API_SECRET = "lumi-faults-client-secret-0123456789abcdef"
FERNET_KEY = "4NqUZ2l9mC8xD6b0nLh1W3YtRr5sVe7aKfJgHpQoIuc="
PROXY_PREFIX = "/apps/lumi"  # shopify.app.toml [app_proxy]: prefix "apps", subpath "lumi"
WRITE_SCOPES = "read_products,write_products"
FEEDS = ("new-arrivals", "best-sellers", "on-sale", "trending", "search?q=shirt")
OK_STATUSES = frozenset({200, 304})
DAILY_JOBS = (b"sweep-", b"resync-")  # jobs.sweeps schedules these once a day


def scale() -> float:
    """LUMI_FAULTS_SCALE: 1 in the test suite, e.g. 10 for `make faults`."""
    try:
        value = float(os.environ.get("LUMI_FAULTS_SCALE") or 1)
    except ValueError:
        value = 1.0
    return value if value > 0 else 1.0


def scaled(value: float) -> int:
    return max(1, round(value * scale()))


def scaled_seconds(value: float) -> float:
    return value * scale()


def _child_env(env: dict[str, str]) -> dict[str, str]:
    """A child Python process's environment: only what we pass, plus what Python needs."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}}
    keep.update({"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"})
    keep.update(env)
    return keep


@dataclass(frozen=True)
class Fingerprint:
    """What must match between devshop's product and its index document."""

    updated_at: int | None
    title: str
    price_min: float | None


# --------------------------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------------------------


class FaultStack:
    """Redis, Meilisearch, devshop, gunicorn and RQ workers on free ports, each a real server or process."""

    def __init__(self, *, products: int = 120, seed: int = 11, redis_aof: bool = False, bucket: float = 20000.0,
                 restore_rate: float = 20000.0, web_workers: int = 2,
                 workdir: Path | None = None) -> None:
        self.products, self.seed = products, seed
        self.bucket, self.restore_rate = bucket, restore_rate
        self.web_workers = web_workers
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="lumi-faults-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Explicit data directories: a server stopped on purpose comes back with its data.
        self.redis = RedisServer(workdir=self.workdir / "redis", appendonly=redis_aof,
                                 log_path=self.workdir / "redis.log")
        self.meili = MeiliServer(workdir=self.workdir / "meili", log_path=self.workdir / "meili.log")
        self.devshop: Any = None
        self.control: Any = None
        self.web: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.services: Any = None
        self.env: dict[str, str] = {}
        self.url = ""
        self._worker_count = 0
        self._write_token: str | None = None

    # -- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> FaultStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from core.settings import load_settings
        from devshop.testing import DevShopControl, DevShopServer
        from feeds.index import ensure_indexes
        from runtime.services import build_services

        self.redis.start()
        self.meili.start()
        web_port = free_port()
        self.url = f"http://127.0.0.1:{web_port}"
        self.devshop = DevShopServer({
            "API_KEY": API_KEY, "API_SECRET": API_SECRET, "APP_URL": self.url,
            "SHOPS": {SHOP: {"products": self.products, "seed": self.seed, "markets": False}},
            "BUCKET_SIZE": self.bucket, "RESTORE_RATE": self.restore_rate,
            # Shopify retries a failed delivery for hours; here within seconds, so a test sees the retries.
            "WEBHOOK_RETRY_SCHEDULE": [0.5, 1.0, 2.0, 4.0],
        }).start()
        self.control = DevShopControl(self.devshop.url)
        self.env = {
            "LUMI_ENV": "test",
            "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET,
            "APP_URL": self.url,
            "SHOPIFY_ADMIN_BASE_URL": self.devshop.admin_base_url,
            "SHOPIFY_APP_BRIDGE_URL": f"{self.devshop.url}/_devshop/app-bridge.js",
            "REDIS_URL": self.redis.url,
            "MEILI_URL": self.meili.url,
            "MEILI_MASTER_KEY": self.meili.master_key,
            "LUMI_ENCRYPTION_KEYS": FERNET_KEY,
            "LOG_LEVEL": "INFO",
            "REDIS_TIMEOUT": "0.5",  # fail fast while a server is down on purpose
            "MEILI_TIMEOUT": "1",
            "PORT": str(web_port),
            "WEB_CONCURRENCY": str(self.web_workers),
            # Paged syncs at every scale (the bulk path has its own tests): the faults here are about pages.
            "LUMI_BULK_THRESHOLD": "1000000",
        }
        self.services = build_services(load_settings(self.env))
        ensure_indexes(self.meili_client())  # what the release process does
        gunicorn = REPO_ROOT / ".venv" / "bin" / "gunicorn"
        argv = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        self.web = ManagedProcess("web", [*argv, "-c", "gunicorn.conf.py", "web:create_app()"],
                                  env=_child_env({**self.env, "LOG_LEVEL": "WARNING"}), cwd=REPO_ROOT,
                                  ready=f"{self.url}/healthz", ready_timeout=60, log_path=self.workdir / "web.log",
                                  stop_timeout=10)
        self.web.start()
        self.start_worker()

    def stop(self) -> None:
        """Stop everything that was started, each step even if an earlier one failed (the first error is raised)."""
        steps: list[Callable[[], object]] = [lambda w=w: w.stop(5) for w in self.workers]  # type: ignore[misc]
        if self.web is not None:
            steps.append(lambda: self.web.stop(10) if self.web is not None else None)
        if self.devshop is not None:
            steps.append(self.devshop.stop)
        if self.services is not None:
            steps.append(self.services.close)
        steps += [self.meili.stop, self.redis.stop]
        errors: list[BaseException] = []
        for step in steps:
            try:
                step()
            except Exception as err:  # noqa: BLE001 - the others must still stop
                errors.append(err)
        if self._own_workdir and not os.environ.get("LUMI_FAULTS_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise errors[0]

    def __enter__(self) -> FaultStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def meili_client(self, timeout: float = 30) -> meilisearch.Client:
        return meilisearch.Client(self.meili.url, self.meili.master_key, timeout=timeout)

    def logs(self, lines: int = 40) -> str:
        """The tail of every process's output, for a failure message."""
        parts = []
        for process in [self.web, *self.workers]:
            if process is not None:
                parts.append(f"--- {process.name} (exit {process.poll()}) ---\n{process.tail(lines)}")
        return "\n".join(parts)

    # -- processes ----------------------------------------------------------------------------------------------

    def start_worker(self, **env: str) -> ManagedProcess:
        """One more `python -m jobs.worker`, returned once it registered with RQ."""
        from rq import Worker

        self._worker_count += 1
        worker = ManagedProcess(f"worker-{self._worker_count}", [sys.executable, "-m", "jobs.worker"],
                                env=_child_env({**self.env, **env}), cwd=REPO_ROOT,
                                log_path=self.workdir / f"worker-{self._worker_count}.log", stop_timeout=5)
        worker.start()
        self.workers.append(worker)
        deadline = time.monotonic() + 30
        while not any(w.pid == worker.pid for w in Worker.all(connection=self.services.queue_redis)):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{worker.name} did not register with RQ:\n{worker.tail()}")
            time.sleep(0.05)
        return worker

    def kill_worker(self, worker: ManagedProcess) -> None:
        """kill -9 the worker and its work horse (RQ's horse leaves the worker's process group, not its session)."""
        assert worker.pid is not None
        for pid in session_pids(worker.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.stop(5)  # reaps it; nothing is left to stop

    def log_count(self, text: str) -> int:
        """How many lines of the workers' logs contain `text`."""
        return sum(line.count(text) for path in self.workdir.glob("worker-*.log")
                   for line in path.read_text(errors="replace").splitlines())

    def web_worker_pids(self) -> list[int]:
        """gunicorn's worker processes (children of the master)."""
        assert self.web is not None and self.web.pid is not None
        master, found = self.web.pid, []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if int(fields[1]) == master and fields[0] not in ("Z", "X"):
                    found.append(int(entry.name))
        return sorted(found)

    # -- the app, from the outside ------------------------------------------------------------------------------

    def install(self) -> None:
        """The merchant installs Lumi through the real OAuth flow (it queues the first sync)."""
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(f"{self.url}/auth/install", params={"shop": SHOP}, timeout=30)
        if response.status_code != 200 or SHOP not in response.text:
            raise RuntimeError(f"install ended with HTTP {response.status_code} at {response.url}")

    def session_token(self, now: int | None = None) -> str:
        from shopify.session_tokens import encode_session_token

        return encode_session_token(SHOP, api_key=API_KEY, secret=API_SECRET,
                                    now=int(time.time()) if now is None else now)

    def api(self, method: str, path: str, *, now: int | None = None) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False
            return session.request(method, f"{self.url}{path}", timeout=30,
                                   headers={"Authorization": f"Bearer {self.session_token(now)}"})

    def readyz(self) -> tuple[int, dict[str, Any]]:
        answer = http_get(f"{self.url}/readyz", timeout=5)
        if answer is None:
            return 0, {}
        try:
            return answer[0], json.loads(answer[1])
        except ValueError:
            return answer[0], {}

    def record(self) -> dict[str, Any]:
        from jobs.sync import read_record

        return read_record(self.services.redis, SHOP)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll until predicate() holds (exceptions count as "not yet"); seconds waited, or TimeoutError. Timeouts
        are for scale 1 and grow with LUMI_FAULTS_SCALE."""
        timeout *= max(1.0, scale())
        started = time.monotonic()
        while True:
            try:
                if predicate():
                    return time.monotonic() - started
            except Exception:  # noqa: BLE001 - a server down on purpose makes checks fail for a while
                pass
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}; record {self._safe_record()}\n"
                                   f"{self.logs()}")
            time.sleep(0.2)

    def _safe_record(self) -> dict[str, Any]:
        try:
            return self.record()
        except Exception:  # noqa: BLE001 - only for the message
            return {}

    def wait_synced(self, timeout: float = 120) -> None:
        def completed() -> bool:
            record = self.record()
            if record.get("status") == "failed":
                raise RuntimeError(f"the sync failed: {record}")
            return record.get("status") == "completed"

        self.wait_for(completed, timeout, "the sync to complete")

    def install_and_sync(self, timeout: float = 120) -> None:
        self.install()
        self.wait_synced(timeout)

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A merchant's Admin API call to devshop (their own token, write scope): catalogue edits."""
        from shopify.version import API_VERSION

        if self._write_token is None:
            self._write_token = self.control.issue_token(SHOP, scope=WRITE_SCOPES)["access_token"]
        url = self.devshop.admin_base_url.format(shop=SHOP) + f"/admin/api/{API_VERSION}/graphql.json"
        response = requests.post(url, json={"query": query, "variables": variables}, timeout=30,
                                 headers={"X-Shopify-Access-Token": self._write_token})
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"devshop refused the edit: {body['errors']}")
        return body["data"]

    def rename(self, pid: int, title: str) -> None:
        """The merchant renames a product; devshop sends products/update to the app."""
        self.graphql("mutation($p: ProductUpdateInput!) { productUpdate(product: $p) { userErrors { message } } }",
                     {"p": {"id": f"gid://shopify/Product/{pid}", "title": title}})

    def delete_product(self, pid: int) -> None:
        self.graphql("mutation($id: ID!) { productDelete(input: {id: $id}) { deletedProductId } }",
                     {"id": f"gid://shopify/Product/{pid}"})

    # -- the truth and the index --------------------------------------------------------------------------------

    def _devshop_shop(self) -> Any:
        return self.devshop.app.extensions["devshop"].shops.get(SHOP)

    def devshop_product(self, pid: int) -> Any:
        catalogue = self._devshop_shop().catalogue
        with catalogue.lock:
            index = catalogue.index_of(pid)
            return catalogue.product(index) if index else None

    def rest_payload(self, product: Any) -> dict[str, Any]:
        """The products/update body Shopify sends for this version of a product."""
        from devshop.webhooks import rest_product

        return rest_product(self._devshop_shop(), product)

    def catalogue(self) -> dict[int, Fingerprint]:
        """Every published product devshop serves now (active, published), by id."""
        catalogue = self._devshop_shop().catalogue
        out: dict[int, Fingerprint] = {}
        with catalogue.lock:
            for index in list(catalogue.all_indexes()):
                product = catalogue.product(index)
                if product is None or product.status != "ACTIVE" or product.published_at is None:
                    continue
                prices = [v.price for v in product.variants]
                out[product.id] = Fingerprint(int(product.updated_at.timestamp()), product.title,
                                              float(min(prices)) if prices else 0.0)
        return out

    def index_documents(self) -> list[dict[str, Any]]:
        from feeds.index import PRODUCTS_INDEX
        from feeds.writer import shop_filter

        index = self.meili_client().index(PRODUCTS_INDEX)
        docs: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = index.get_documents({"filter": shop_filter(SHOP), "limit": 1000, "offset": offset,
                                        "fields": ["uid", "product_id", "updated_at", "title", "price_min",
                                                   "generation"]})
            docs.extend({k: v for k, v in dict(doc).items() if not k.startswith("_")} for doc in page.results)
            offset += 1000
            if offset >= page.total:
                return docs

    def queue_state(self) -> dict[str, int]:
        """Jobs waiting, scheduled (retries) and failed, summed over Lumi's queues; read without running RQ's own
        registry clean-up (which would do a worker's maintenance for it)."""
        from rq import Queue

        from core import keys

        conn = self.services.queue_redis
        state = Counter[str]()
        for name in keys.QUEUES:
            queue = Queue(name, connection=conn)
            state["queued"] += int(conn.llen(queue.key))
            # The daily sweeps wait in the scheduled registry all the time; anything else there is a retry.
            state["scheduled"] += sum(1 for job_id in conn.zrange(queue.scheduled_job_registry.key, 0, -1)
                                      if not job_id.startswith(DAILY_JOBS))
            state["started"] += int(conn.zcard(queue.started_job_registry.key))
            state["failed"] += int(conn.zcard(queue.failed_job_registry.key))
        return dict(state)

    def differences(self) -> list[str]:
        """Every way the index, the sync record and the index bookkeeping differ from devshop's catalogue."""
        from core import keys

        truth = self.catalogue()
        docs = self.index_documents()
        problems: list[str] = []
        seen: Counter[int] = Counter(int(doc["product_id"]) for doc in docs)
        problems += [f"product {pid} indexed {n} times" for pid, n in sorted(seen.items()) if n > 1]
        indexed = {int(doc["product_id"]): doc for doc in docs}
        problems += [f"product {pid} missing from the index" for pid in sorted(set(truth) - set(indexed))]
        problems += [f"product {pid} indexed but not published" for pid in sorted(set(indexed) - set(truth))]
        for pid in sorted(set(truth) & set(indexed)):
            doc, want = indexed[pid], truth[pid]
            got = Fingerprint(doc.get("updated_at"), doc.get("title") or "",
                              float(doc["price_min"]) if doc.get("price_min") is not None else None)
            if got != want:
                problems.append(f"product {pid} stale: index {got}, Shopify {want}")
        record = self.record()
        live = int(self.services.redis.hget(keys.index_state(SHOP), "generation") or 0)
        if record.get("status") != "completed":
            problems.append(f"sync record {record.get('status')!r} (phase {record.get('phase')!r}), not completed")
        elif record.get("done") != len(docs):
            problems.append(f"sync record counts {record.get('done')} products, the index holds {len(docs)}")
        if record.get("status") == "completed" and live != record.get("generation"):
            problems.append(f"live generation {live} is not the completed sync's {record.get('generation')}")
        stray = sorted({int(doc.get("generation") or 0) for doc in docs} - {live})
        if stray:
            problems.append(f"documents of other generations than the live one ({live}): {stray}")
        pending = self.services.redis.scard(keys.index_pending(SHOP))
        if pending:
            problems.append(f"{pending} product refreshes still marked pending")
        touched = self.services.redis.scard(keys.index_touched(SHOP))
        if touched and record.get("status") == "completed":
            problems.append(f"{touched} products touched during the sync were not re-read")
        return problems

    def consistent(self) -> bool:
        state = self.queue_state()
        return not state["queued"] and not state["scheduled"] and not self.differences()

    def wait_consistent(self, timeout: float) -> float | None:
        """The time.monotonic() at which the invariants held with no job waiting (still holding 0.5 s later), or
        None when they did not within `timeout` (the caller reports the differences left)."""
        held: list[float] = []

        def settled() -> bool:
            if not self.consistent():
                return False
            held.append(time.monotonic())
            time.sleep(0.5)
            return self.consistent()

        try:
            self.wait_for(settled, timeout, "the invariants to hold")
        except TimeoutError:
            return None
        return held[-1]


# --------------------------------------------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the answer (or the failure) came
    kind: str  # "feed" or "chat"
    status: int  # HTTP status; 0 when nothing answered (connection refused/reset, timeout)
    stale: bool = False
    detail: str = ""


@dataclass(frozen=True)
class Window:
    """What the traffic saw between two instants."""

    requests: int
    ok: int
    errors: int
    stale: int
    statuses: dict[int, int]
    examples: tuple[str, ...]
    failures: tuple[Sample, ...] = field(default=(), repr=False)


def signed_query(pairs: list[tuple[str, str]], secret: str = API_SECRET, skew: float = 0.0) -> str:
    """An app-proxy query string as Shopify signs it, its timestamp `skew` seconds off this clock."""
    from shopify.signatures import sign_proxy

    signed = [*pairs, ("path_prefix", PROXY_PREFIX), ("timestamp", str(int(time.time() + skew)))]
    return urlencode([*signed, ("signature", sign_proxy(signed, secret))])


class Traffic:
    """Background storefront traffic: feed requests from `feed_clients` threads (each opens a new connection
    every few requests, so every gunicorn worker gets some), and chat turns from `chat_clients` threads."""

    def __init__(self, base_url: str, *, feed_clients: int = 2, chat_clients: int = 0, pause: float = 0.05,
                 feeds: tuple[str, ...] = FEEDS) -> None:
        self.base_url = base_url
        self.feed_clients, self.chat_clients = feed_clients, chat_clients
        self.pause, self.feeds = pause, feeds
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Traffic:
        for n in range(self.feed_clients):
            self._threads.append(threading.Thread(target=self._feeds, args=(n,), daemon=True, name=f"feeds-{n}"))
        for n in range(self.chat_clients):
            self._threads.append(threading.Thread(target=self._chat, daemon=True, name=f"chat-{n}"))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _add(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def _feeds(self, n: int) -> None:
        k = n
        while not self._stop.is_set():
            with requests.Session() as session:
                session.trust_env = False
                for _ in range(10):  # then a new connection (another gunicorn worker, maybe)
                    if self._stop.is_set():
                        break
                    feed = self.feeds[k % len(self.feeds)]
                    k += 1
                    joiner = "&" if "?" in feed else "?"
                    url = f"{self.base_url}/proxy/feeds/{feed}{joiner}shop={SHOP}"
                    try:
                        response = session.get(url, timeout=10)
                        self._add(Sample(time.monotonic(), "feed", response.status_code,
                                         response.headers.get("X-Lumi-Stale") == "1",
                                         "" if response.status_code in OK_STATUSES else f"{feed}: "
                                         f"{response.status_code} {response.text[:160]}"))
                    except requests.RequestException as err:
                        self._add(Sample(time.monotonic(), "feed", 0, False, f"{feed}: {type(err).__name__}"))
                    self._stop.wait(self.pause)

    def _chat(self) -> None:
        texts = ("Hello!", "Do you ship to France?", "What is your returns policy?")
        while not self._stop.is_set():
            with requests.Session() as session:
                session.trust_env = False
                query = signed_query([("shop", SHOP), ("logged_in_customer_id", "")])
                try:
                    response = session.post(f"{self.base_url}/proxy/chat/sessions?{query}", json={}, timeout=15)
                except requests.RequestException as err:
                    self._add(Sample(time.monotonic(), "chat", 0, False, f"session: {type(err).__name__}"))
                    self._stop.wait(0.2)
                    continue
                ok = response.status_code == 201
                self._add(Sample(time.monotonic(), "chat", 200 if ok else response.status_code, False,
                                 "" if ok else f"session: {response.status_code} {response.text[:160]}"))
                if not ok:
                    self._stop.wait(0.2)
                    continue
                chat = response.json()["session"]
                for text in texts:
                    if self._stop.is_set():
                        break
                    query = signed_query([("shop", SHOP), ("logged_in_customer_id", "")])
                    try:
                        answer = session.post(f"{self.base_url}/proxy/chat/sessions/{chat['id']}/messages?{query}",
                                              json={"text": text}, headers={"X-Lumi-Session-Secret": chat["secret"]},
                                              timeout=30)
                        self._add(Sample(time.monotonic(), "chat", answer.status_code, False,
                                         "" if answer.status_code == 200 else
                                         f"turn: {answer.status_code} {answer.text[:160]}"))
                    except requests.RequestException as err:
                        self._add(Sample(time.monotonic(), "chat", 0, False, f"turn: {type(err).__name__}"))
                    self._stop.wait(self.pause * 5)

    def window(self, start: float, end: float | None = None, kind: str | None = None) -> Window:
        end = time.monotonic() if end is None else end
        with self._lock:
            chosen = [s for s in self.samples if start <= s.at <= end and (kind is None or s.kind == kind)]
        ok = [s for s in chosen if s.status in OK_STATUSES]
        bad = [s for s in chosen if s.status not in OK_STATUSES]
        return Window(len(chosen), len(ok), len(bad), sum(s.stale for s in ok), dict(Counter(s.status for s in chosen)),
                      tuple(dict.fromkeys(f"{s.kind} {s.detail}" for s in bad))[:5], tuple(bad))


# --------------------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------------------


@dataclass
class FaultResult:
    fault: str
    served: int  # storefront requests (feeds, chat) answered 200/201/304 while the fault lasted
    errors: int  # every other answer, or none at all, while the fault lasted
    honest_errors: int  # of those, the ones this fault makes unavoidable (see `honest`); the rest are bugs
    honest: str  # which errors are unavoidable and why ("" when none are)
    recovery_s: float | None  # from the end of the fault to the invariants holding (None: they never did)
    differences: list[str]  # what the index and its records got wrong (goal: none)
    details: dict[str, Any] = field(default_factory=dict)


Honest = tuple[str, Callable[[Sample], bool]]  # (why, which failed requests that covers)


def _finish(stack: FaultStack, traffic: Traffic, fault: str, fault_start: float, fault_end: float,
            timeout: float, *, honest: Honest | None = None, recovered_at: float | None = None,
            **details: Any) -> FaultResult:
    """Wait for recovery with the traffic still running (unless the scenario saw it already: `recovered_at`), then
    stop the traffic and collect the result."""
    if recovered_at is None:
        recovered_at = stack.wait_consistent(timeout)
    after_start = time.monotonic()
    time.sleep(min(1.0, scaled_seconds(0.5)))  # some traffic after recovery too
    traffic.stop()
    during = traffic.window(fault_start, fault_end)
    why, covered = honest if honest is not None else ("", lambda sample: False)
    differences = stack.differences()
    recovery = round(max(0.0, recovered_at - fault_end), 2) if recovered_at is not None and not differences else None
    return FaultResult(fault, during.ok, during.errors, sum(1 for f in during.failures if covered(f)), why,
                       recovery, differences,
                       {"during": during, "after": traffic.window(fault_end, None),
                        "after_recovery": traffic.window(after_start, None), "queues": stack.queue_state(),
                        **details})


def worker_kill_mid_sync(stack: FaultStack) -> FaultResult:
    """kill -9 the worker (and its work horse) while the first sync runs; a new worker resumes it."""
    from core import keys

    with Traffic(stack.url) as traffic:
        stack.install()
        total = stack.products
        stack.wait_for(lambda: stack.record().get("done", 0) >= max(12, total // 4), 120, "a quarter of the sync")
        fault_start = time.monotonic()
        stack.kill_worker(stack.workers[0])
        killed_at = stack.record()
        # Down until the dead sync's lock has lapsed: the new worker's first look for abandoned syncs resumes it
        # (started sooner, it finds the lock still held and looks again at its next heartbeat, 30 s later).
        time.sleep(keys.SYNC_LOCK_TTL + 1)
        stack.start_worker()
        fault_end = time.monotonic()
        return _finish(stack, traffic, "kill -9 worker mid-sync", fault_start, fault_end, 180,
                       killed_at=killed_at)


def worker_kill_mid_webhook_burst(stack: FaultStack) -> FaultResult:
    """200 product updates (webhooks), one per product; kill -9 the worker while a refresh is in flight; a new
    worker starts. No product is edited twice, so no later webhook can make up for a refresh the kill lost."""
    stack.install_and_sync()
    ids = sorted(stack.catalogue())
    burst = min(scaled(200), len(ids))
    with Traffic(stack.url) as traffic:
        time.sleep(0.5)
        fault_start = time.monotonic()
        sent = []
        for n, pid in enumerate(ids[:burst]):
            stack.rename(pid, f"Burst edit {n} of {pid}")
            sent.append(pid)
        # The refreshes are still queued. A slow Shopify answer (devshop's faults apply to the shop's next GraphQL
        # request, which is now a refresh's fetch) holds one in flight: the kill lands inside a job.
        faults_before = stack.control.stats(SHOP)["faults_served"]
        stack.control.inject_fault("timeout", count=1, shop=SHOP, seconds=3.0)
        stack.wait_for(lambda: stack.control.stats(SHOP)["faults_served"] > faults_before, 60,
                       "a refresh to be in flight")
        in_flight = stack.queue_state()
        stack.kill_worker(stack.workers[0])
        time.sleep(scaled_seconds(1.0))
        stack.start_worker()
        fault_end = time.monotonic()
        return _finish(stack, traffic, "kill -9 worker mid-webhook-burst", fault_start, fault_end, 240,
                       updates=len(sent), at_kill=in_flight)


def web_worker_kill(stack: FaultStack) -> FaultResult:
    """kill -9 one gunicorn worker while feed requests are in flight; the master starts another."""
    stack.install_and_sync()
    feed_clients, chat_clients = 4, 1
    clients = feed_clients + chat_clients
    with Traffic(stack.url, feed_clients=feed_clients, chat_clients=chat_clients, pause=0.005) as traffic:
        time.sleep(scaled_seconds(1.0))
        before = stack.web_worker_pids()
        fault_start = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        stack.wait_for(lambda: len(stack.web_worker_pids()) == len(before) and before[0] not in
                       stack.web_worker_pids(), 30, "gunicorn to replace the worker")
        fault_end = time.monotonic()
        recovered_at = stack.wait_consistent(60)
        time.sleep(scaled_seconds(2.0))  # traffic through the new worker too
        return _finish(stack, traffic, "kill -9 gunicorn worker", fault_start, fault_end, 60, recovered_at=recovered_at,
                       honest=(f"a request in flight on the killed worker gets no answer (at most one per client: "
                               f"{clients})", lambda sample: sample.status == 0),
                       clients=clients, replaced=[before[0], stack.web_worker_pids()])


def redis_restart(stack: FaultStack) -> FaultResult:
    """Redis crashes (kill -9) and comes back from its AOF: installs and tokens survive; feeds answer throughout."""
    from shopify import queries

    stack.install_and_sync()
    outage = scaled_seconds(3.0)
    edited = sorted(stack.catalogue())[:scaled(5)]
    with Traffic(stack.url, chat_clients=1) as traffic:
        time.sleep(2.0)  # every gunicorn worker has served the shop (and keeps its settings for an hour)
        time.sleep(1.1)  # AOF fsyncs every second: what was written before now is on disk
        assert stack.redis.pid is not None
        fault_start = time.monotonic()
        os.kill(stack.redis.pid, signal.SIGKILL)
        stack.redis.stop()
        # The merchant edits products meanwhile: Lumi cannot take their webhooks now, so Shopify (devshop) retries.
        for pid in edited:
            stack.rename(pid, f"Edited while Redis was down {pid}")
        time.sleep(outage / 2)
        down = stack.readyz()
        time.sleep(outage / 2)
        stack.redis.start()
        fault_end = time.monotonic()
        shop_record = stack.services.shops.get(SHOP)
        with stack.services.tokens.admin_client(SHOP) as client:  # decrypts the stored token and uses it
            count = client.execute(queries.PRODUCTS_COUNT, {"query": "status:active"})["productsCount"]["count"]
        ready_after = stack.wait_for(lambda: stack.readyz()[0] == 200, 90, "/readyz to say ready")
        recovered_at = stack.wait_consistent(60)
        stack.install()  # a reinstall (OAuth again) still works (and queues a sync, which _finish waits for)
        stack.wait_synced()
        result = _finish(stack, traffic, "Redis kill -9 + restart (AOF)", fault_start, fault_end, 60,
                         recovered_at=recovered_at,
                         honest=("chat sessions live in Redis: chat answers 503 store_unavailable while it is down",
                                 lambda s: s.kind == "chat" and s.status == 503 and "store_unavailable" in s.detail),
                         down=down, shop_survived=shop_record is not None, token_works=count > 0,
                         ready_after_s=round(ready_after, 2), edited=edited,
                         workers_alive=all(w.poll() is None for w in stack.workers),
                         deliveries=Counter(d["status"] for d in stack.control.webhook_deliveries(SHOP,
                                                                                                    "products/update")))
        result.details["feeds_during"] = traffic.window(fault_start, fault_end, "feed")
        return result


def meili_down_during_sync(stack: FaultStack) -> FaultResult:
    """Meilisearch stops midway through a sync and comes back; the sync is retried from its cursor and completes."""
    stack.install_and_sync()
    # A slow bucket for the rebuild, so Meilisearch goes down in the middle of it.
    stack.control.set_throttle(SHOP, maximum_available=1000, restore_rate=600)
    with Traffic(stack.url) as traffic:
        time.sleep(1.0)
        started = stack.api("POST", "/api/index/rebuild")
        if started.status_code != 202:
            raise RuntimeError(f"rebuild refused: {started.status_code} {started.text[:300]}")
        generation = stack.record()["generation"]
        stack.wait_for(lambda: stack.record().get("done", 0) >= 12, 60, "the rebuild's first pages")
        fault_start = time.monotonic()
        stack.meili.stop()
        # The sync's next write finds Meilisearch gone: it is rescheduled (status queued, phase retrying).
        stack.wait_for(lambda: stack.record().get("phase") in ("retrying", "failed", "completed"), 60,
                       "the sync to meet the outage")
        during = stack.record()
        time.sleep(scaled_seconds(1.0))
        stack.meili.start()
        stack.control.set_throttle(SHOP, maximum_available=20000, restore_rate=20000)
        fault_end = time.monotonic()
        result = _finish(stack, traffic, "Meilisearch down during a sync", fault_start, fault_end, 120,
                         record_during=during)
        result.details["same_generation"] = stack.record()["generation"] == generation
        return result


def meili_down_during_feeds(stack: FaultStack) -> FaultResult:
    """Meilisearch down while feeds are requested: feeds served before answer 200 (maybe stale), a feed nobody
    asked for yet answers 503 JSON with Retry-After."""
    stack.install_and_sync()
    with Traffic(stack.url) as traffic:
        time.sleep(1.5)  # every feed of the traffic has been computed once
        fault_start = time.monotonic()
        stack.meili.stop()
        time.sleep(scaled_seconds(1.0))
        with requests.Session() as http:
            http.trust_env = False
            cold = http.get(f"{stack.url}/proxy/feeds/search?shop={SHOP}&q=never-asked-before", timeout=10)
        time.sleep(scaled_seconds(2.0))
        stack.meili.start()
        fault_end = time.monotonic()
        return _finish(stack, traffic, "Meilisearch down during feed traffic", fault_start, fault_end, 60,
                       cold=(cold.status_code, cold.headers.get("Retry-After"), cold.json()))


def shopify_storm_during_sync(stack: FaultStack) -> FaultResult:
    """5xx answers, dropped connections and THROTTLED answers (another app drains the shop's bucket) during a
    paged sync: it completes, and the index equals the catalogue."""
    stack.control.set_throttle(SHOP, maximum_available=1000, restore_rate=500)
    stop = threading.Event()
    competitor_requests = Counter[str]()
    storm = scaled_seconds(15.0)
    gave_up: list[dict[str, Any]] = []

    def competitor() -> None:
        """Another app on the same shop draining the bucket Lumi paces against, until Lumi's sync gives up once
        (still THROTTLED after its client's waits: it is rescheduled) or for `storm` seconds at most."""
        from shopify.version import API_VERSION

        token = stack.control.issue_token(SHOP, scope="read_products")["access_token"]
        url = stack.devshop.admin_base_url.format(shop=SHOP) + f"/admin/api/{API_VERSION}/graphql.json"
        query = "{ products(first: 40) { nodes { id title variants(first: 5) { nodes { id } } } } }"  # ~200 points
        ends = time.monotonic() + storm
        with requests.Session() as session:
            while not stop.is_set() and time.monotonic() < ends:
                try:
                    session.post(url, json={"query": query}, headers={"X-Shopify-Access-Token": token}, timeout=10)
                    competitor_requests["sent"] += 1
                except requests.RequestException:
                    pass
                if competitor_requests["sent"] % 10 == 0 and (record := stack.record()).get("phase") == "retrying":
                    gave_up.append(record)
                    return
                stop.wait(0.005)

    with Traffic(stack.url) as traffic:
        stack.install()
        fault_start = time.monotonic()
        drain = threading.Thread(target=competitor, name="competitor", daemon=True)
        drain.start()
        kinds = ["http_500", "http_502", "http_503", "drop"] * scaled(2)
        armed = 0
        try:
            for n, kind in enumerate(kinds):
                # One fault per few pages: each call meets at most one, well within the client's retries.
                stack.wait_for(lambda n=n: stack.record().get("done", 0) >= 8 * (n + 1)  # type: ignore[misc]
                               or stack.record().get("status") in ("completed", "failed"), 120, "more pages")
                if stack.record().get("status") in ("completed", "failed"):
                    break
                stack.control.inject_fault(kind, count=1, shop=SHOP)
                armed += 1
        finally:
            stack.wait_for(lambda: stack.record().get("status") in ("completed", "failed"), 240, "the sync to end")
            stop.set()
            drain.join(15)
        fault_end = time.monotonic()
        stats = stack.control.stats(SHOP)
        stack.control.clear_faults()
        return _finish(stack, traffic, "Shopify 5xx/drops/THROTTLED in a paged sync", fault_start, fault_end, 120,
                       armed=armed, faults_served=stats["faults_served"], throttled=stats["throttled"],
                       competitor_requests=competitor_requests["sent"], gave_up=gave_up,
                       retried=stack.log_count("sync will be retried"))


def webhook_disorder(stack: FaultStack) -> FaultResult:
    """Webhooks duplicated, reordered (an older products/update after a newer one) and delayed past a full
    sync, plus a stale update for a deleted product: the index keeps the latest version of each."""
    stack.install_and_sync()
    ids = sorted(stack.catalogue())
    count = min(len(ids) - 1, scaled(10))
    chosen, gone = ids[:count], ids[count]
    with Traffic(stack.url) as traffic:
        fault_start = time.monotonic()
        old_payloads = []
        for pid in chosen:
            stack.rename(pid, f"First edit of {pid}")
            old_payloads.append(stack.rest_payload(stack.devshop_product(pid)))
        time.sleep(1.1)  # Shopify's updated_at has one-second precision: the second edit is strictly newer
        new_payloads = []
        for pid in chosen:
            stack.rename(pid, f"Latest edit of {pid}")
            new_payloads.append(stack.rest_payload(stack.devshop_product(pid)))
        gone_payload = stack.rest_payload(stack.devshop_product(gone))
        stack.delete_product(gone)
        # Duplicates of the newest delivery (same webhook id, at the same instant)...
        for payload in new_payloads:
            stack.control.send_webhook(SHOP, "products/update", payload, copies=3, concurrent=True)
        # ...and the older ones arriving after them, and an update for the product deleted since.
        for payload in old_payloads:
            stack.control.send_webhook(SHOP, "products/update", payload)
        stack.control.send_webhook(SHOP, "products/update", gone_payload)
        stack.wait_for(lambda: not stack.queue_state()["queued"], 60, "the webhooks to be processed")
        # A full sync, then the old deliveries once more, delayed past it.
        rebuild = stack.api("POST", "/api/index/rebuild")
        if rebuild.status_code != 202:
            raise RuntimeError(f"rebuild refused: {rebuild.status_code} {rebuild.text[:300]}")
        stack.wait_synced()
        for payload in [*old_payloads, gone_payload]:
            stack.control.send_webhook(SHOP, "products/update", payload)
        fault_end = time.monotonic()
        return _finish(stack, traffic, "webhooks duplicated/reordered/delayed", fault_start, fault_end, 60,
                       edited=len(chosen), deleted=gone)


SKEWS = (-60, 60)


def clock_skew(stack: FaultStack) -> FaultResult:
    """Shopify's signed timestamps 60 s off Lumi's clock (what a skewed clock means to Lumi): app-proxy requests,
    chat sessions, webhooks and the OAuth callback are accepted within Shopify's tolerance (±90 s);
    session tokens, whose tolerance is a few seconds in Shopify's own libraries, are refused cleanly."""
    from shopify.signatures import sign_oauth, sign_webhook

    stack.install_and_sync()
    outcomes: dict[str, Any] = {}
    ids = sorted(stack.catalogue())
    with Traffic(stack.url) as traffic, requests.Session() as http:
        http.trust_env = False
        fault_start = time.monotonic()
        for skew in SKEWS:
            query = signed_query([("shop", SHOP), ("logged_in_customer_id", "")], skew=skew)
            outcomes[f"proxy feed {skew:+d}s"] = http.get(f"{stack.url}/proxy/feeds/new-arrivals?{query}",
                                                          timeout=10).status_code
            outcomes[f"chat session {skew:+d}s"] = http.post(f"{stack.url}/proxy/chat/sessions?{query}", json={},
                                                             timeout=10).status_code
            # A products/update triggered `skew` seconds off our clock (its body and headers carry the time).
            pid = ids[SKEWS.index(skew)]
            stack.rename(pid, f"Skewed {skew:+d} s edit of {pid}")
            payload = stack.rest_payload(stack.devshop_product(pid))
            body = json.dumps(payload).encode()
            triggered = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() + skew))
            answer = http.post(f"{stack.url}/webhooks", data=body, timeout=10, headers={
                "Content-Type": "application/json", "X-Shopify-Topic": "products/update",
                "X-Shopify-Hmac-Sha256": sign_webhook(body, API_SECRET), "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-Webhook-Id": f"skew-{skew}-{time.time_ns()}", "X-Shopify-Triggered-At": triggered,
                "X-Shopify-API-Version": "2025-01"})
            outcomes[f"webhook {skew:+d}s"] = answer.status_code
            outcomes[f"oauth callback {skew:+d}s"] = _skewed_callback(stack, http, skew, sign_oauth)
            outcomes[f"session token {skew:+d}s"] = _api_outcome(stack, skew)
        for skew in (-5, 5):  # within Shopify's own libraries' tolerance
            outcomes[f"session token {skew:+d}s"] = _api_outcome(stack, skew)
        fault_end = time.monotonic()
        return _finish(stack, traffic, "clock skewed 60 s", fault_start, fault_end, 60, outcomes=outcomes)


def _api_outcome(stack: FaultStack, skew: int) -> int | tuple[int, str]:
    """GET /api/shop with a session token minted `skew` seconds off: 200, or (status, error code)."""
    answer = stack.api("GET", "/api/shop", now=int(time.time() + skew))
    if answer.status_code == 200:
        return 200
    try:
        return answer.status_code, str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return answer.status_code, answer.text[:100]


def _skewed_callback(stack: FaultStack, http: requests.Session, skew: int, sign: Callable[..., str]) -> int:
    """Install again, but deliver devshop's OAuth callback with its timestamp `skew` seconds off (re-signed as
    Shopify would sign it): the status of Lumi's answer (302 to the admin when accepted)."""
    from urllib.parse import parse_qsl, urlsplit

    url = f"{stack.url}/auth/install?shop={SHOP}"
    for _ in range(6):
        response = http.get(url, allow_redirects=False, timeout=30)
        location = response.headers.get("Location", "")
        if not response.is_redirect:
            raise RuntimeError(f"the install flow stopped at {url}: {response.status_code}")
        if urlsplit(location).path.endswith("/auth/callback"):
            pairs = [(k, v) for k, v in parse_qsl(urlsplit(location).query, keep_blank_values=True) if k != "hmac"]
            pairs = [(k, str(int(time.time() + skew)) if k == "timestamp" else v) for k, v in pairs]
            pairs.append(("hmac", sign(pairs, API_SECRET)))
            return http.get(f"{location.split('?')[0]}?{urlencode(pairs)}", allow_redirects=False,
                            timeout=30).status_code
        url = location if location.startswith("http") else f"{stack.url}{location}"
    raise RuntimeError("no OAuth callback in the install flow")


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[FaultStack], FaultResult]
    stack: dict[str, Any]


def scenarios() -> dict[str, Scenario]:
    """Every fault, in priority order, with the stack it needs (sizes scaled by LUMI_FAULTS_SCALE)."""
    found = [
        # A slow bucket makes the first sync take seconds: time to kill the worker in the middle of it.
        Scenario("worker-kill-sync", worker_kill_mid_sync,
                 {"products": scaled(160), "bucket": 1000.0, "restore_rate": 800.0}),
        # More products than updates: each update is for another product.
        Scenario("worker-kill-webhooks", worker_kill_mid_webhook_burst, {"products": scaled(240)}),
        Scenario("web-worker-kill", web_worker_kill, {"products": scaled(120)}),
        Scenario("redis-restart", redis_restart, {"products": scaled(120), "redis_aof": True}),
        Scenario("meili-down-sync", meili_down_during_sync, {"products": scaled(120)}),
        Scenario("meili-down-feeds", meili_down_during_feeds, {"products": scaled(120)}),
        Scenario("shopify-storm", shopify_storm_during_sync, {"products": scaled(120)}),
        Scenario("webhook-disorder", webhook_disorder, {"products": scaled(80)}),
        Scenario("clock-skew", clock_skew, {"products": scaled(60)}),
    ]
    return {s.name: s for s in found}


@contextlib.contextmanager
def scenario_stack(name: str, workdir: Path | None = None) -> Iterator[tuple[Scenario, FaultStack]]:
    scenario = scenarios()[name]
    with FaultStack(workdir=workdir, **scenario.stack) as stack:
        yield scenario, stack


def run_scenario(name: str, workdir: Path | None = None) -> FaultResult:
    """Start the scenario's stack, inject its fault under traffic, check the invariants, stop everything."""
    with scenario_stack(name, workdir) as (scenario, stack):
        return scenario.run(stack)


__all__ = ["SHOP", "FaultResult", "FaultStack", "Fingerprint", "Scenario", "Traffic", "Window", "run_scenario",
           "scale", "scaled", "scenarios", "signed_query"]
