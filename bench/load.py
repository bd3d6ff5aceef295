"""Mixed load: storefront feeds, support chat and a webhook burst at once, against one stack like `make dev`'s.

The stack is devtools.dev.DevStack, the very one `make dev` runs, in a temporary directory: private Redis,
Meilisearch, devshop (`python -m devshop`, the demo shop with --products N, USD, recent orders), the release
step, gunicorn serving `web:create_app()` with the repo's gunicorn.conf.py and make dev's settings
(WEB_CONCURRENCY=2; whatever worker class and connection limits gunicorn.conf.py says at run time), the nginx
edge (devtools.edge.EdgeServer, deploy/edge/) in front, and `python -m jobs.worker`; this bench adds a second
`python -m jobs.worker`, and the devmodel stand-in as the model (`--delay 1.0 --token-delay 0.015`: about 1.7 s
per streamed reply). LOG_LEVEL=WARNING everywhere, as in the other benches (every child's output is piped
through this process). The demo shop is installed through the real OAuth flow and its first catalogue sync
(queued by the install) is awaited, as `make dev` does.

Then, for --seconds (default 300; --quick 30), all at once:
- feeds through the edge at a steady offered rate (an open loop: a request is due every 1/rate s whether or not
  the last one answered), each URL drawn from a Zipf distribution (s = 1.1) over a few hundred distinct feed
  URLs (feed types, collections, similar products and searches x limits x markets), signed as Shopify's app
  proxy signs them (the edge's cache key leaves the signature out), gzip accepted, one in five revalidating
  with the ETag it last saw for that URL: most requests are edge hits, the tail is cold;
- a steady number of shoppers chatting with the stand-in model: each creates a session through the signed
  proxy route (`POST /proxy/chat/sessions`), sends 2 or 3 streamed turns (`Accept: text/event-stream`) with
  0.5-2 s of thought between them, then starts over;
- in the middle of the run, a burst of 1,000 product updates (--quick: 200): devshop's
  `POST /_devshop/shops/<shop>/product-updates` appends a marker word to each title and delivers its signed
  products/update webhook to the web process, 8 products in flight (as a bulk edit in the Shopify admin would).

Reported per route (feeds via the edge, chat create, chat turn, webhooks): offered and achieved rates,
requests, errors (anything but 2xx/304; deliberate 429s counted apart), p50/p99 latency. Webhook-to-feed
freshness, two ways: (1) observed: from each webhook's acceptance (the moment devshop got the app's 2xx) to the
first feed response showing the new title, polled once a second with `search?q=<marker>` straight to gunicorn
(the origin: the edge would add its s-maxage), paging through every match, during the load and for a grace
period after it; (2) the app's own measure (feeds/freshness.py: webhook arrival to the index write being
visible, p50/p95 as the admin page shows them). The machine's CPU count and load average, and each process
tree's CPU over the run, are printed so neighbours' noise is visible.

Goals: no errors on any route (429s apart); every accepted update visible in a feed before the grace period
ends; the achieved feed rate within 5 % of the offered one (below means the stack, or this generator, fell
behind). Latencies and freshness are printed for information: no wall-clock goal.
Run: `python -m bench.load [--quick] [--seconds N] [--feed-rate R] [--shoppers N] [--burst N]`.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import os
import queue
import random
import shutil
import string
import sys
import tempfile
import threading
import time
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from bench.feeds import _pct, loadavg
from bench.sync import GOAL_HEADER, _descendants, child_env, met, say, table
from devshop.testing import DevShopControl
from devtools.dev import DEMO_SHOP, DevStack, build_env, install_demo_shop, watch_demo_index
from devtools.services import REPO_ROOT, LinePrinter, ManagedProcess, MeiliServer, RedisServer, free_port, http_ok

SHOP = DEMO_SHOP
PATH_PREFIX = "/apps/lumi"
SECRET_HEADER = "X-Lumi-Session-Secret"
MODEL_KEY = "sk-bench-load-0123456789"
MODEL_NAME = "devmodel-bench"
MODEL_DELAY_S = 1.0  # devmodel: before the first byte of every answer
MODEL_TOKEN_DELAY_S = 0.015  # devmodel: before each streamed token (~44 tokens: ~0.7 s)
ZIPF_S = 1.1
LIMITS = ("4", "8", "12", "24")
COUNTRIES = (None, "FR", "DE")  # the shop's own prices (USD), and its Europe market (EUR)
REVALIDATE_SHARE = 0.2  # feed requests sent with If-None-Match (the ETag last seen for that URL)
THINK_S = (0.5, 2.0)  # a shopper's pause between turns
QUESTIONS = ("Do you ship to Canada?", "How long does shipping take to Canada?",
             "Is there a shop in Lyon I could visit?", "Can I pay with PayPal?",
             "Do you have gift cards?", "What is your return policy?")
POLL_INTERVAL_S = 1.0  # freshness: one round of search pages per second
SEARCH_PAGE = 50  # feeds.definitions.MAX_LIMIT
GENERATOR_LAG_S = 0.1  # a feed request sent this late after its due time counts as "sent late"
GOAL_ACHIEVED_SHARE = 0.95  # achieved feed rate / offered rate >= this
WEB_ENV = {"LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Sizes:
    seconds: float  # the mixed load
    products: int  # devshop's demo catalogue, synced before the load
    feed_rate: float  # offered feed requests per second through the edge
    feed_threads: int  # connections of the feed generator (enough that a slow answer does not hold up the next)
    shoppers: int  # concurrent chat shoppers
    burst: int  # products updated (and webhooks delivered) in the middle of the run
    burst_concurrency: int  # products in flight in devshop's burst
    grace: float  # seconds after the load to keep polling for updates not yet visible


FULL = Sizes(seconds=300, products=3000, feed_rate=100, feed_threads=32, shoppers=16, burst=1000,
             burst_concurrency=8, grace=480)
QUICK = Sizes(seconds=30, products=2000, feed_rate=60, feed_threads=16, shoppers=6, burst=200,
              burst_concurrency=8, grace=90)


# --- recording ----------------------------------------------------------------------------------------------


@dataclass
class Route:
    """Every answer on one route: (end time, latency seconds, status); status 0 = no HTTP answer."""

    name: str
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # the first few failures, for the report
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, end: float, latency: float, status: int, failure: str = "") -> None:
        with self.lock:
            self.samples.append((end, latency, status))
            if failure and len(self.examples) < 5:
                self.examples.append(failure[:300])

    def between(self, low: float, high: float) -> list[tuple[float, float, int]]:
        with self.lock:
            return [s for s in self.samples if low <= s[0] < high]


def ok_status(status: int) -> bool:
    return 200 <= status < 300 or status == 304


def summarise(samples: Sequence[tuple[float, float, int]]) -> dict[str, Any]:
    good = sorted(lat for _, lat, status in samples if ok_status(status))
    limited = sum(1 for *_, status in samples if status == 429)
    errors = sum(1 for *_, status in samples if not ok_status(status) and status != 429)
    statuses = Counter(status for *_, status in samples if not ok_status(status))
    return {"count": len(samples), "ok": len(good), "errors": errors, "limited": limited, "statuses": statuses,
            "p50": _pct(good, 50) if good else None, "p99": _pct(good, 99) if good else None,
            "max": good[-1] if good else None}


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:,.0f} ms" if seconds >= 1 else f"{1000 * seconds:.1f} ms"


def secs(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"


# --- signing, as Shopify's app proxy does ---------------------------------------------------------------------


def signed_query(params: Sequence[tuple[str, str]], secret: str) -> str:
    from shopify.signatures import sign_proxy

    pairs = [*params, ("shop", SHOP), ("logged_in_customer_id", ""), ("path_prefix", PATH_PREFIX),
             ("timestamp", str(int(time.time())))]
    return urlencode([*pairs, ("signature", sign_proxy(pairs, secret))])


# --- CPU per process tree -----------------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int | None) -> float:
    """CPU seconds of `root` and every live process below it, plus what their reaped children used (cutime,
    cstime: RQ runs each job in a forked work horse that is gone by the time we look)."""
    if root is None:
        return 0.0
    ticks = 0
    for pid in [root, *_descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / _CLK_TCK


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


# --- the stack ------------------------------------------------------------------------------------------------------


class LoadStack(DevStack):
    """`make dev`'s stack with a catalogue of the bench's size, remembering each process so its CPU can be read."""

    def __init__(self, env: dict[str, str], printer: LinePrinter, data_dir: Path, products: int) -> None:
        super().__init__(env, printer, data_dir=data_dir)
        self.products = products
        self.pids: dict[str, Callable[[], int | None]] = {}

    def devshop_argv(self, port: int) -> list[str]:
        return [*super().devshop_argv(port), "--products", str(self.products)]

    def _track(self, server: RedisServer | MeiliServer) -> None:
        super()._track(server)
        self.pids[server.name] = lambda: server.pid

    def _start(self, process: ManagedProcess) -> None:
        super()._start(process)
        self.pids[process.name] = lambda: process.pid

    def add_worker(self, name: str) -> None:
        self._start(ManagedProcess(name, self.worker_argv(), env=self.env, cwd=REPO_ROOT, printer=self.printer))


def start_devmodel(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = [sys.executable, "-m", "devmodel", "--port", str(port), "--api-key", MODEL_KEY, "--delay",
            str(MODEL_DELAY_S), "--token-delay", str(MODEL_TOKEN_DELAY_S), "--quiet"]
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess("devmodel", argv, env=child_env({}), cwd=REPO_ROOT,
                             ready=http_ok(f"{url}/_devmodel/health"), ready_timeout=30,
                             log_path=workdir / "devmodel.log", stop_timeout=10)
    process.start()
    return process, url


def shop_documents(env: dict[str, str]) -> list[dict[str, Any]]:
    """The demo shop's documents as indexed (id, title, collections, availability), for building the URL set."""
    from feeds.index import PRODUCTS_INDEX
    from feeds.writer import shop_filter

    out: list[dict[str, Any]] = []
    with requests.Session() as http:
        while True:
            answer = http.post(f"{env['MEILI_URL']}/indexes/{PRODUCTS_INDEX}/documents/fetch",
                               headers={"Authorization": f"Bearer {env['MEILI_MASTER_KEY']}"},
                               json={"filter": shop_filter(SHOP), "limit": 5000, "offset": len(out),
                                     "fields": ["product_id", "title", "collections", "available"]}, timeout=60)
            answer.raise_for_status()
            body = answer.json()
            out.extend(body["results"])
            if not body["results"] or len(out) >= body["total"]:
                return out


def feed_urls(documents: list[dict[str, Any]], rng: random.Random) -> list[list[tuple[str, str]]]:
    """A few hundred distinct feed requests as (path, query pairs) lists, in Zipf rank order (shuffled)."""
    collections = Counter(handle for doc in documents for handle in doc.get("collections") or [])
    words = Counter(word.lower() for doc in documents for word in str(doc["title"]).split()
                    if word.isalpha() and len(word) > 3)
    available = [doc for doc in documents if doc.get("available")]
    paths = ["new-arrivals", "best-sellers", "trending", "on-sale", "back-in-stock"]
    paths += [f"collection/{handle}" for handle, _ in collections.most_common(8)]
    paths += [f"similar/{doc['product_id']}" for doc in rng.sample(available, min(6, len(available)))]
    searches = [word for word, _ in words.most_common(3)]
    urls: list[list[tuple[str, str]]] = []
    for country in COUNTRIES:
        market = [("country", country)] if country else []
        for limit in LIMITS:
            for path in paths:
                urls.append([("path", path), ("limit", limit), *market])
            for word in searches:
                urls.append([("path", "search"), ("q", word), ("limit", limit), *market])
    rng.shuffle(urls)
    return urls


# --- feeds through the edge, open loop ------------------------------------------------------------------------------


class FeedLoad:
    """Requests due every 1/rate s (a dispatcher thread), sent by a pool of keep-alive connections to the edge."""

    def __init__(self, edge_url: str, urls: list[list[tuple[str, str]]], rate: float, threads: int, secret: str,
                 route: Route, seed: int) -> None:
        parts = urlsplit(edge_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port
        self.urls = urls
        self.cum = list(accumulate(1 / rank ** ZIPF_S for rank in range(1, len(urls) + 1)))
        self.rate = rate
        self.threads = threads
        self.secret = secret
        self.route = route
        self.rng = random.Random(seed)
        self.due: queue.Queue[tuple[float, int] | None] = queue.Queue()
        self.cache = Counter[str]()
        self.etags: dict[int, str] = {}
        self.late = 0
        self.reconnects = 0
        self.sent = 0
        self.hits_per_rank = Counter[int]()
        self.lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None

    def start(self, until: float) -> FeedLoad:
        self._workers = [threading.Thread(target=self._work, args=(i,), name=f"feeds-{i}", daemon=True)
                         for i in range(self.threads)]
        for thread in self._workers:
            thread.start()
        self._dispatcher = threading.Thread(target=self._dispatch, args=(until,), name="feeds-due", daemon=True)
        self._dispatcher.start()
        return self

    def join(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.join()
        for thread in self._workers:
            thread.join(60)

    def _dispatch(self, until: float) -> None:
        start = time.time()
        total = self.cum[-1]
        for n in range(math.ceil((until - start) * self.rate)):
            due = start + n / self.rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            self.due.put((due, bisect(self.cum, self.rng.random() * total)))
        for _ in self._workers:
            self.due.put(None)

    def _target(self, index: int) -> str:
        pairs = self.urls[index]
        path = dict(pairs)["path"]
        return f"/proxy/feeds/{path}?" + signed_query([p for p in pairs if p[0] != "path"], self.secret)

    def _work(self, slot: int) -> None:
        rng = random.Random(slot)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        last_used = 0.0
        try:
            while (item := self.due.get()) is not None:
                due, index = item
                headers = {"Accept-Encoding": "gzip"}
                etag = self.etags.get(index)
                if etag and rng.random() < REVALIDATE_SHARE:
                    headers["If-None-Match"] = etag
                sent = time.time()
                if sent - due > GENERATOR_LAG_S:
                    with self.lock:
                        self.late += 1
                target = self._target(index)
                t0 = time.perf_counter()
                status, failure, cache = 0, "", ""
                for attempt in (1, 2):
                    try:
                        conn.request("GET", target, headers=headers)
                        response = conn.getresponse()
                        body = response.read()
                        status = response.status
                        cache = response.getheader("X-Cache-Status") or "-"
                        if response.getheader("ETag"):
                            self.etags[index] = response.getheader("ETag") or ""
                        if not ok_status(status):
                            failure = f"{status} {body[:200]!r}"
                        break
                    except (OSError, http.client.HTTPException) as err:
                        conn.close()
                        # A keep-alive connection the edge closed while idle: open a new one, once.
                        if attempt == 1 and last_used and time.time() - last_used > 1.0:
                            with self.lock:
                                self.reconnects += 1
                            continue
                        failure = f"{type(err).__name__}: {err}"
                        break
                latency = time.perf_counter() - t0
                last_used = time.time()
                self.route.add(last_used, latency, status, failure)
                with self.lock:
                    self.sent += 1
                    self.cache[cache] += 1
                    self.hits_per_rank[index] += 1
        finally:
            conn.close()


# --- chat shoppers --------------------------------------------------------------------------------------------------


class Shoppers:
    """`count` shoppers, each on its own keep-alive connection to gunicorn: a session, 2-3 streamed turns, again."""

    def __init__(self, port: int, secret: str, count: int, create: Route, turn: Route, seed: int) -> None:
        self.port, self.secret, self.count = port, secret, count
        self.create, self.turn = create, turn
        self.seed = seed
        self.first_delta: list[float] = []
        self.sessions = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, stagger: float) -> Shoppers:
        self._threads = [threading.Thread(target=self._shop, args=(i, i * stagger / self.count),
                                          name=f"shopper-{i}", daemon=True) for i in range(self.count)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _post(self, conn: http.client.HTTPConnection, suffix: str, body: dict[str, Any],
              headers: dict[str, str]) -> http.client.HTTPResponse:
        conn.request("POST", f"/proxy/chat/{suffix}?" + signed_query([], self.secret),
                     body=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers})
        return conn.getresponse()

    def _shop(self, slot: int, delay: float) -> None:
        rng = random.Random(self.seed + slot)
        if self._stop.wait(delay):
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while not self._stop.is_set():
                session = self._create(conn)
                if session is None:
                    conn.close()
                    self._stop.wait(1.0)
                    continue
                for n in range(rng.choice((2, 3))):
                    if n and self._stop.wait(rng.uniform(*THINK_S)):
                        return
                    if not self._turn(conn, session, rng.choice(QUESTIONS)):
                        conn.close()
                        break
        finally:
            conn.close()

    def _create(self, conn: http.client.HTTPConnection) -> tuple[str, str] | None:
        t0 = time.perf_counter()
        try:
            response = self._post(conn, "sessions", {}, {})
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            self.create.add(time.time(), time.perf_counter() - t0, 0, f"{type(err).__name__}: {err}")
            return None
        latency = time.perf_counter() - t0
        if response.status != 201:
            self.create.add(time.time(), latency, response.status, f"{response.status} {data[:200]!r}")
            return None
        self.create.add(time.time(), latency, response.status)
        with self.lock:
            self.sessions += 1
        session = json.loads(data)["session"]
        return session["id"], session["secret"]

    def _turn(self, conn: http.client.HTTPConnection, session: tuple[str, str], text: str) -> bool:
        """One streamed turn, recorded whole (send -> end of stream); True when it completed."""
        t0 = time.perf_counter()
        status, failure, delta = 0, "", 0.0
        try:
            response = self._post(conn, f"sessions/{session[0]}/messages", {"text": text},
                                  {SECRET_HEADER: session[1], "Accept": "text/event-stream"})
            status = response.status
            if status != 200 or "text/event-stream" not in (response.getheader("Content-Type") or ""):
                failure = f"{status} {response.read()[:200]!r}"
                status = status if status != 200 else 0
            else:
                event, final = "", False
                while line := response.readline():
                    line = line.rstrip(b"\r\n")
                    if line.startswith(b"event: "):
                        event = line[7:].decode()
                        if event == "delta" and not delta:
                            delta = time.perf_counter() - t0
                        elif event == "final":
                            final = True
                        elif event != "delta":
                            failure = f"stream event {event!r}"
                    elif line.startswith(b"data: ") and failure.startswith("stream event"):
                        failure += f": {line[6:200].decode(errors='replace')}"
                if not final and not failure:
                    failure = "the stream ended without a final event"
                if failure:
                    status = 0  # a 200 whose stream failed is a failed turn
        except (OSError, http.client.HTTPException) as err:
            failure = f"{type(err).__name__}: {err}"
            status = 0
        self.turn.add(time.time(), time.perf_counter() - t0, status, failure)
        if delta and not failure:
            with self.lock:
                self.first_delta.append(delta)
        return not failure


# --- the webhook burst and freshness ---------------------------------------------------------------------------------


@dataclass
class Burst:
    marker: str
    ids: list[int]
    started: float = 0.0
    finished: float = 0.0
    answered: dict[int, float] = field(default_factory=dict)  # product id -> acceptance (Unix s), 2xx only
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def run_burst(devshop_url: str, burst: Burst, concurrency: int, route: Route) -> None:
    """devshop updates every product and delivers its webhook (devshop's own clock for each delivery)."""
    control = DevShopControl(devshop_url, timeout=900)
    burst.started = time.time()
    try:
        answer = control.update_products(SHOP, burst.ids, f" {burst.marker}", concurrency=concurrency)
    except requests.RequestException as err:
        burst.error = f"{type(err).__name__}: {err}"
        return
    finally:
        burst.finished = time.time()
    burst.rows = answer["updates"]
    for row in burst.rows:
        status = int(row["status"] or 0)
        route.add(float(row["answered_at"] or time.time()), float(row["elapsed_ms"]) / 1000, status,
                  "" if row["ok"] else f"{status} {row.get('error') or ''}")
        if row["ok"]:
            burst.answered[int(row["product_id"])] = float(row["answered_at"])


class FreshnessPoller:
    """Once a second, every page of `search?q=<marker>` straight from gunicorn: when each product id first shows
    a title with the marker."""

    def __init__(self, port: int, burst: Burst, route: Route) -> None:
        self.port, self.burst, self.route = port, burst, route
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deadline: float) -> FreshnessPoller:
        self._thread = threading.Thread(target=self._run, args=(deadline,), name="freshness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def wait(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, deadline: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        wanted = set(self.burst.ids)
        try:
            while not self._stop.is_set() and time.time() < deadline and not wanted <= self.seen.keys():
                round_start = time.time()
                for page in range(1, len(wanted) // SEARCH_PAGE + 2):
                    found = self._page(conn, page)
                    if found is None:
                        conn.close()
                        break
                    if found < SEARCH_PAGE:
                        break
                self._stop.wait(max(0.0, round_start + POLL_INTERVAL_S - time.time()))
        finally:
            conn.close()

    def _page(self, conn: http.client.HTTPConnection, page: int) -> int | None:
        query = urlencode({"shop": SHOP, "q": self.burst.marker, "limit": str(SEARCH_PAGE), "page": str(page)})
        t0 = time.perf_counter()
        try:
            conn.request("GET", f"/proxy/feeds/search?{query}", headers={"Accept-Encoding": "gzip"})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as err:
            self.route.add(time.time(), time.perf_counter() - t0, 0, f"{type(err).__name__}: {err}")
            return None
        now = time.time()
        self.route.add(now, time.perf_counter() - t0, response.status,
                       "" if response.status == 200 else f"{response.status} {body[:200]!r}")
        if response.status != 200:
            return None
        if response.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        products = json.loads(body)["products"]
        for card in products:
            if self.burst.marker in card["title"]:
                self.seen.setdefault(int(card["id"]), now)
        return len(products)


# --- entry point ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"smaller sizes: {QUICK}")
    parser.add_argument("--seconds", type=float, help="length of the mixed load")
    parser.add_argument("--products", type=int, help="devshop catalogue size (synced before the load)")
    parser.add_argument("--feed-rate", type=float, help="offered feed requests per second through the edge")
    parser.add_argument("--shoppers", type=int, help="concurrent chat shoppers")
    parser.add_argument("--burst", type=int, help="product updates (webhooks) in the middle of the run")
    parser.add_argument("--grace", type=float, help="seconds after the load to wait for updates to show in feeds")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's logs (their path is printed)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(seconds=args.seconds or base.seconds, products=args.products or base.products,
                  feed_rate=args.feed_rate or base.feed_rate,
                  feed_threads=max(base.feed_threads, math.ceil((args.feed_rate or 0) / 4)),
                  shoppers=args.shoppers or base.shoppers, burst=args.burst or base.burst,
                  burst_concurrency=base.burst_concurrency, grace=args.grace if args.grace is not None else base.grace)
    mode = "quick" if args.quick else "full"
    say(f"bench.load ({mode}): {sizes.seconds:g} s of mixed load; {sizes.products:,} products; feeds offered at "
        f"{sizes.feed_rate:g}/s through the edge; {sizes.shoppers} chat shoppers; a burst of {sizes.burst:,} product "
        f"updates at {sizes.seconds / 2:g} s; {os.cpu_count()} CPUs; load avg {loadavg()}")
    workdir = Path(tempfile.mkdtemp(prefix="lumi-bench-load-"))
    started = time.monotonic()
    try:
        with ExitStack() as exit_stack:
            report = run(exit_stack, workdir, sizes)
    finally:
        if args.keep_logs:
            say(f"\nlogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows, verdicts, per_route = report
    table(f"per route ({mode}, {sizes.seconds:g} s of load; {os.cpu_count()} CPUs, load avg now {loadavg()})",
          ("route", "requests", "offered", "achieved", "errors", "429s", "p50", "p99", "max"), per_route)
    table(f"results ({mode} sizes, {time.monotonic() - started:.0f} s in all)", GOAL_HEADER, rows)
    say("  errors: any answer but 2xx/304 (a streamed turn must also end with its `final` event), and requests "
        "that got no answer; 429s are counted apart. Everything (stack, generator, model stand-in) shares this "
        "machine's CPUs.")
    table("summary", ("goal", "result"), [(name, met(ok)) for name, ok in verdicts])
    return 0


def run(exit_stack: ExitStack, workdir: Path, sizes: Sizes
        ) -> tuple[list[tuple[str, ...]], list[tuple[str, bool]], list[tuple[str, ...]]]:
    """Start the stack, run the load, return (goal rows, verdicts, per-route rows)."""
    say("\n## the stack (make dev's, devtools.dev.DevStack)")
    devmodel, model_url = start_devmodel(workdir)
    exit_stack.callback(devmodel.stop)
    port = free_port()
    env = build_env(child_env({"PORT": str(port), "OPENAI_API_KEY": MODEL_KEY, "OPENAI_BASE_URL": f"{model_url}/v1",
                               "OPENAI_MODEL": MODEL_NAME, **WEB_ENV}), dotenv_path=None)
    log = open(workdir / "stack.log", "w", encoding="utf-8")  # noqa: SIM115 - closed by the exit stack
    exit_stack.callback(log.close)
    stack = LoadStack(env, LinePrinter(log, colour=False), workdir / "data", sizes.products)
    exit_stack.callback(stack.stop)

    def on_error(exc_type: type[BaseException] | None, *_: object) -> bool:
        if exc_type is not None:
            log.flush()
            lines = (workdir / "stack.log").read_text(errors="replace").splitlines()
            say("--- the stack's output, last lines ---\n" + "\n".join(lines[-25:]))
        return False

    exit_stack.push(on_error)
    stack.start()
    stack.add_worker("worker-2")
    stack.wait_ready()
    edge = stack.start_edge()
    if edge is None:
        raise RuntimeError("nginx is not installed: the edge cannot run (scripts/bootstrap.sh installs it)")
    if not install_demo_shop(env) or not watch_demo_index(env, timeout=600):
        raise RuntimeError("the demo shop was not installed and synced")
    secret = env["SHOPIFY_API_SECRET"]
    documents = shop_documents(env)
    rng = random.Random(20240611)
    urls = feed_urls(documents, rng)
    available = [int(doc["product_id"]) for doc in documents if doc.get("available")]
    if len(available) < sizes.burst:
        raise RuntimeError(f"only {len(available)} available products for a burst of {sizes.burst}")
    burst = Burst("".join(rng.choices(string.ascii_lowercase, k=12)), rng.sample(available, sizes.burst))
    gunicorn_pid = stack.pids["web"]()
    workers = len(_descendants(gunicorn_pid)) if gunicorn_pid else 0
    conf = _gunicorn_conf(env)
    say(f"  gunicorn on :{port} ({workers} workers, {conf}); 2 RQ workers; nginx {edge.version_text} edge at "
        f"{edge.url}; devmodel {MODEL_DELAY_S:g} s + {MODEL_TOKEN_DELAY_S:g} s/token; {len(documents):,} documents "
        f"indexed for {SHOP}")
    say(f"  feed URL set: {len(urls)} distinct requests (feeds x limits {'/'.join(LIMITS)} x markets "
        f"{'/'.join(c or 'shop' for c in COUNTRIES)}), Zipf s={ZIPF_S}: the top 10 URLs draw "
        f"{_share(len(urls), 10):.0%} of requests, the top 50 {_share(len(urls), 50):.0%}")

    routes = {name: Route(name) for name in ("feeds via edge", "chat create", "chat turn", "webhooks",
                                             "freshness probe (origin search)")}
    trees = {"gunicorn": stack.pids["web"], "worker": stack.pids["worker"], "worker-2": stack.pids["worker-2"],
             "redis": stack.pids["redis"], "meilisearch": stack.pids["meilisearch"],
             "devshop": stack.pids["devshop"], "nginx": lambda: edge.pid, "devmodel": lambda: devmodel.pid}
    control = DevShopControl(stack.urls["devshop"].rstrip("/"), timeout=60)
    admin_before = control.stats(SHOP)
    cpu_before = {name: tree_cpu(pid()) for name, pid in trees.items()}
    own_before = own_cpu()

    say(f"\n## the load: {sizes.seconds:g} s (load avg {loadavg()})")
    begin = time.time()
    end = begin + sizes.seconds
    feeds = FeedLoad(edge.url, urls, sizes.feed_rate, sizes.feed_threads, secret, routes["feeds via edge"],
                     seed=7).start(end)
    shoppers = Shoppers(port, secret, sizes.shoppers, routes["chat create"], routes["chat turn"], seed=11)
    shoppers.start(stagger=min(5.0, sizes.seconds / 10))
    poller = FreshnessPoller(port, burst, routes["freshness probe (origin search)"])
    burst_at = begin + sizes.seconds / 2
    time.sleep(max(0.0, burst_at - time.time()))
    say(f"  t={time.time() - begin:.0f} s: the burst of {sizes.burst:,} product updates starts (load avg {loadavg()})")
    poller.start(deadline=end + sizes.grace)
    burst_thread = threading.Thread(target=run_burst, args=(stack.urls["devshop"].rstrip("/"), burst,
                                                            sizes.burst_concurrency, routes["webhooks"]),
                                    name="burst", daemon=True)
    burst_thread.start()
    while time.time() < end:
        time.sleep(min(10.0, max(0.0, end - time.time())))
        now = time.time()
        if now < end - 1:
            say(f"  t={now - begin:.0f} s: {len(routes['feeds via edge'].samples):,} feed answers, "
                f"{len(routes['chat turn'].samples):,} turns, {len(poller.seen):,}/{sizes.burst:,} updates seen in "
                f"feeds; load avg {loadavg()}")
    feeds.join()
    shoppers.stop()
    load_end = time.time()
    cpu_used = {name: tree_cpu(pid()) - cpu_before[name] for name, pid in trees.items()}
    cpu_used["bench (generator)"] = own_cpu() - own_before
    burst_thread.join(600)
    seen_during_load = sum(1 for t in poller.seen.values() if t <= load_end)
    say(f"  load over at t={load_end - begin:.0f} s (load avg {loadavg()}); {seen_during_load:,}/{sizes.burst:,} "
        f"updates visible by then; waiting up to {sizes.grace:g} s more for the rest")
    poller.wait(max(0.0, end + sizes.grace - time.time()) + 5)
    poller.stop()
    app_freshness = _app_freshness(env)
    jobs = _refresh_jobs(env, burst.started)
    admin_after = control.stats(SHOP)
    admin = {k: admin_after.get(k, 0) - admin_before.get(k, 0) for k in ("graphql_requests", "throttled",
                                                                          "requested_cost_total")}
    log.flush()
    problems = _log_problems(workdir / "stack.log")
    return _report(sizes, routes, feeds, shoppers, burst, poller, begin, load_end, cpu_used, app_freshness,
                   problems, len(urls), jobs, admin)


def _share(n: int, top: int) -> float:
    weights = [1 / rank ** ZIPF_S for rank in range(1, n + 1)]
    return sum(weights[:top]) / sum(weights)


def _gunicorn_conf(env: dict[str, str]) -> str:
    """What gunicorn.conf.py says under this environment (read in a child: it validates the settings on import)."""
    import subprocess

    code = ("import runpy, json; c = runpy.run_path('gunicorn.conf.py'); "
            "print(json.dumps({k: c.get(k) for k in ('worker_class', 'worker_connections', 'threads')}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "gunicorn.conf.py unreadable"
    return ", ".join(f"{k}={v}" for k, v in found.items() if v is not None)


def _app_freshness(env: dict[str, str]) -> dict[str, Any]:
    import redis

    from feeds import freshness

    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        return freshness.summary(client, SHOP)
    finally:
        client.close()


def _refresh_jobs(env: dict[str, str], since: float) -> dict[str, Any]:
    """The product refresh jobs queued since `since` (RQ's registries): how long each waited and ran."""
    import redis
    from rq import Queue
    from rq.job import Job

    from core import keys

    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        queue = Queue(keys.QUEUE_WEBHOOKS, connection=client)
        failed_ids = queue.failed_job_registry.get_job_ids()
        ids = queue.finished_job_registry.get_job_ids() + failed_ids
        waits, runs, failures = [], [], []
        for job in Job.fetch_many(ids, connection=client):
            if job is None or job.func_name != "jobs.catalogue.refresh_product" or job.enqueued_at is None:
                continue
            enqueued = _epoch(job.enqueued_at)
            if enqueued < since:
                continue
            if job.id in failed_ids:
                result = job.latest_result()
                failures.append(f"{job.id}: {((result.exc_string if result else '') or '')[-300:]}")
            elif job.started_at and job.ended_at:
                waits.append(_epoch(job.started_at) - enqueued)
                runs.append(_epoch(job.ended_at) - _epoch(job.started_at))
        return {"waits": sorted(waits), "runs": sorted(runs), "failures": failures,
                "queued_now": queue.count}
    finally:
        client.close()


def _epoch(moment: Any) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _log_problems(path: Path) -> list[str]:
    """The error lines the stack wrote (core.logs' JSON with level error/critical, gunicorn's [ERROR], worker
    timeouts), each as `process | message`, a traceback shortened to its first and last lines."""
    found: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        name, _, text = line.partition(" | ")
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            if str(entry.get("level", "")).lower() not in ("error", "critical"):
                continue
            msg = str(entry.get("msg", "")) + ("\n" + str(entry["exc"]) if entry.get("exc") else "")
        elif any(word in text for word in ("[ERROR]", "[CRITICAL]", "WORKER TIMEOUT", "Traceback")):
            msg = text
        else:
            continue
        lines = [part for part in msg.splitlines() if part.strip()]
        short = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1].strip()}"
        found.append(f"{name.split(maxsplit=1)[-1].strip()} | {short[:600]}")
    return found


def _report(sizes: Sizes, routes: dict[str, Route], feeds: FeedLoad, shoppers: Shoppers, burst: Burst,
            poller: FreshnessPoller, begin: float, load_end: float, cpu_used: dict[str, float],
            app_freshness: dict[str, Any], problems: list[str], distinct: int, jobs: dict[str, Any],
            admin: dict[str, Any]) -> tuple[list[tuple[str, ...]], list[tuple[str, bool]], list[tuple[str, ...]]]:
    window = load_end - begin
    per_route: list[tuple[str, ...]] = []
    rows: list[tuple[str, ...]] = []
    verdicts: list[tuple[str, bool]] = []

    def route_row(name: str, samples: list[tuple[float, float, int]], offered: str, seconds: float) -> dict[str, Any]:
        s = summarise(samples)
        rate = f"{s['count'] / seconds:,.1f}/s" if seconds > 0 else "n/a"
        per_route.append((name, f"{s['count']:,}", offered, rate,
                          f"{s['errors']:,}" + (f" {dict(s['statuses'])}" if s["errors"] else ""), f"{s['limited']:,}",
                          ms(s["p50"]), ms(s["p99"]), ms(s["max"])))
        return s

    say("\n## what happened")
    feed_samples = routes["feeds via edge"].between(begin, load_end + 60)
    # Over the schedule (the dispatcher's sizes.seconds): the last answers of it arrive a moment after.
    fs = route_row("feeds via edge", feed_samples, f"{sizes.feed_rate:g}/s", sizes.seconds)
    before = summarise([s for s in feed_samples if s[0] < burst.started])
    during = summarise([s for s in feed_samples if s[0] >= burst.started])
    creates = route_row("chat create", routes["chat create"].samples, f"{sizes.shoppers} shoppers", window)
    turns = route_row("chat turn", routes["chat turn"].samples, f"{sizes.shoppers} shoppers", window)
    burst_seconds = max(burst.finished - burst.started, 1e-9)
    hooks = route_row("webhooks (devshop -> gunicorn)", routes["webhooks"].samples,
                      f"{sizes.burst:,} in a burst", burst_seconds)
    route_row("freshness probe (origin search)", routes["freshness probe (origin search)"].samples,
              f"every {POLL_INTERVAL_S:g} s", max(time.time() - burst.started, 1e-9))

    hits = sum(n for status, n in feeds.cache.items() if status == "HIT")
    say(f"  feeds: {feeds.sent:,} sent for {math.ceil(sizes.seconds * sizes.feed_rate):,} due; {feeds.late:,} sent "
        f"more than "
        f"{1000 * GENERATOR_LAG_S:.0f} ms late; {feeds.reconnects} idle keep-alive connections reopened; edge cache "
        f"status {dict(feeds.cache.most_common())} ({hits / max(feeds.sent, 1):.0%} hits); "
        f"{len(feeds.hits_per_rank)} of {distinct} URLs requested")
    say(f"  feeds p50/p99 before the burst {ms(before['p50'])} / {ms(before['p99'])} ({before['count']:,}), from the "
        f"burst on {ms(during['p50'])} / {ms(during['p99'])} ({during['count']:,})")
    delta = sorted(shoppers.first_delta)
    say(f"  chat: {shoppers.sessions:,} sessions, {turns['ok']:,} turns completed; first `event: delta` p50 "
        f"{ms(_pct(delta, 50) if delta else None)}, p99 {ms(_pct(delta, 99) if delta else None)} (the model alone: "
        f"{MODEL_DELAY_S:g} s to its first token)")
    if burst.error:
        say(f"  burst FAILED: {burst.error}")
    say(f"  webhooks: {len(burst.answered):,}/{sizes.burst:,} accepted in {burst_seconds:.1f} s "
        f"({hooks['count'] / burst_seconds:,.0f}/s, {sizes.burst_concurrency} in flight)")
    for route in routes.values():
        for example in route.examples:
            say(f"  ! {route.name}: {example}")

    fresh = sorted(poller.seen[pid] - burst.answered[pid] for pid in burst.answered if pid in poller.seen)
    unseen = len(burst.answered) - len(fresh)
    last = max(poller.seen.values(), default=burst.started) - burst.started
    say(f"  freshness observed (acceptance -> first origin search response with the new title, polled every "
        f"{POLL_INTERVAL_S:g} s): {len(fresh):,} of {len(burst.answered):,} seen, "
        f"p50 {secs(_pct(fresh, 50) if fresh else None)}, p95 {secs(_pct(fresh, 95) if fresh else None)}, "
        f"max {secs(fresh[-1] if fresh else None)}; the last update "
        f"showed {last:.0f} s after the burst began; {unseen} not seen within the grace period")
    say(f"  freshness as the app records it (feeds/freshness.py, arrival -> index write visible, the admin's numbers): "
        f"p50 {secs(app_freshness.get('p50_s'))}, p95 {secs(app_freshness.get('p95_s'))}, "
        f"{app_freshness.get('samples')} samples")
    waits, runs = jobs["waits"], jobs["runs"]
    if runs:
        say(f"  refresh jobs (lumi-webhooks): {len(runs):,} finished, {len(jobs['failures'])} failed, "
            f"{jobs['queued_now']} still queued; queue wait p50 {secs(_pct(waits, 50))}, p95 {secs(_pct(waits, 95))}; "
            f"run time p50 {ms(_pct(runs, 50))}, p95 {ms(_pct(runs, 95))}, sum {sum(runs):.0f} s over 2 workers")
    for failure in jobs["failures"][:3]:
        say(f"  ! refresh job failed: {failure}")
    say(f"  Admin API from the burst on (devshop's counters): {admin['graphql_requests']:,} GraphQL requests, "
        f"{admin['throttled']:,} THROTTLED, {admin['requested_cost_total']:,.0f} points requested (standard plan: "
        f"a 2,000-point bucket restoring 100/s)")
    total_cpu = sum(cpu_used.values())
    say("  CPU over the load: " + ", ".join(f"{name} {sec:.0f} s" for name, sec in
                                             sorted(cpu_used.items(), key=lambda kv: -kv[1]))
        + f"; {total_cpu:.0f} s in all = {total_cpu / window:.2f} of {os.cpu_count()} CPUs on average")
    if problems:
        say(f"  the stack logged {len(problems)} error line(s); the first:")
        for line in problems[:8]:
            say(f"    {line}")
    else:
        say("  the stack logged no error lines")

    achieved = fs["count"] / sizes.seconds
    ok = achieved >= GOAL_ACHIEVED_SHARE * sizes.feed_rate
    verdicts.append(("feeds: achieved rate >= 95 % of offered", ok))
    rows.append(("feeds via edge: achieved rate", f"{achieved:,.1f}/s", f"offered {sizes.feed_rate:g}/s",
                 f"{achieved / sizes.feed_rate:.2f}x", f">= {GOAL_ACHIEVED_SHARE:.2f}x", met(ok)))
    for label, s in (("feeds via edge", fs), ("chat create", creates), ("chat turn", turns), ("webhooks", hooks)):
        ok = s["errors"] == 0 and s["count"] > 0
        verdicts.append((f"{label}: no errors (429s apart)", ok))
        rows.append((f"{label}: errors", f"{s['errors']:,} of {s['count']:,}", f"429s: {s['limited']:,}",
                     f"{s['errors'] / max(s['count'], 1):.2%}", "0", met(ok)))
        rows.append(("    p50 / p99", f"{ms(s['p50'])} / {ms(s['p99'])}", "", "", "(info)", ""))
    ok = not burst.error and len(burst.answered) == sizes.burst and unseen == 0
    verdicts.append(("webhook burst: every update accepted and visible in a feed", ok))
    rows.append(("updates visible in a feed", f"{len(fresh):,}", f"burst of {sizes.burst:,}",
                 f"{len(fresh) / sizes.burst:.0%}", "all, within the grace period", met(ok)))
    rows.append(("    freshness observed p50 / p95", f"{secs(_pct(fresh, 50) if fresh else None)} / "
                 f"{secs(_pct(fresh, 95) if fresh else None)}", "acceptance -> feed", "", "(info)", ""))
    rows.append(("    freshness recorded by the app p50 / p95", f"{secs(app_freshness.get('p50_s'))} / "
                 f"{secs(app_freshness.get('p95_s'))}", "arrival -> index", "", "(info)", ""))
    return rows, verdicts, per_route


if __name__ == "__main__":
    sys.exit(main())
