"""Full catalogue sync: Shopify → Meilisearch, one generation at a time, resumable, one per shop.

A sync writes every listed product with a new generation number (documents are replaced in place,
so readers never see a half-empty shop), then removes what the new generation did not see in one
filtered delete. The job record (shop, status, phase, cursor, counts, times) is saved after every
page whose documents Meilisearch has indexed, so a new worker resumes where a killed one stopped.
Above `LUMI_BULK_THRESHOLD` products the catalogue comes from a bulk operation (Shopify stops cursor
pagination at 25,000 objects) streamed from its JSONL file. Each sync first reads the shop's markets and
stores them (feeds.markets); pages, bulk exports and webhook refreshes then read every variant's price in
each market (contextualPricing), with page sizes computed from the query cost (shopify.queries.catalogue_plan).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
import requests
from meilisearch.errors import MeilisearchCommunicationError, MeilisearchTimeoutError
from rq import Queue, Retry, get_current_job

from core import keys
from feeds import markets
from feeds.documents import is_listed, product_id, to_document
from feeds.markets import MarketMap, Zone
from feeds.service import bump_index_version
from feeds.writer import ShopIndex
from jobs.context import services as default_services
from jobs.signals import compute_sales_signals
from runtime.services import Services
from shopify import queries
from shopify.admin import AdminClient, connection_nodes
from shopify.errors import ShopifyGraphQLError, ShopifyThrottled, ShopifyUnavailable

log = logging.getLogger(__name__)

LISTED_QUERY = "status:active published_status:published"
# Above `LUMI_BULK_THRESHOLD` listed products (default 1,000) a bulk operation replaces cursor paging. Paging
# costs ~64 points per product (+60 per market beyond the primary one), i.e. 0.64 s per product at the Standard
# plan's 100 points/s (2,000 products: ~21 minutes; twice that with one more market), while a bulk export costs
# 10 points whatever the size; and paging cannot pass 25,000 objects.
BATCH_SIZE = 1000  # documents per Meilisearch write in bulk mode (paged mode writes one page at a time)
# Bulk-mode batches Meilisearch may hold queued before the oldest is waited for. Meilisearch indexes every queued
# task in one batch, so the oldest finishes only with all those queued with it: reaching this cap stalls the sync
# while Meilisearch works (with 32, a 100k-product sync took 9 indexing batches and 19 s of Meilisearch CPU instead
# of 5 and 11 s). It bounds the queue a sync leaves in front of other shops' writes (200,000 documents) and costs
# the worker nothing but the uids.
TASKS_IN_FLIGHT = 200
BULK_POLL_SECONDS = 1.0
ACTIVE = ("queued", "running")
# A sync that Shopify could not serve (5xx, timeouts, dropped connections after the client's own retries, or still
# THROTTLED after the client's waits: another app drains the shop's bucket), or that could not reach Meilisearch
# (restarting, unreachable), is tried again later from its saved cursor, before it is called failed.
RETRY_INTERVALS = [10, 60, 300]
TRANSIENT_ERRORS = (ShopifyUnavailable, MeilisearchCommunicationError, MeilisearchTimeoutError)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SyncAlreadyRunning(RuntimeError):
    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__("a sync is already running for this shop")
        self.record = record


# --- job records ---------------------------------------------------------------------------------------


def read_record(client: redis.Redis, shop: str) -> dict[str, Any]:
    raw = client.hgetall(keys.sync_record(shop))
    out: dict[str, Any] = dict(raw)
    for name in ("done", "total", "generation", "skipped"):
        out[name] = int(out[name]) if out.get(name) else 0
    for name in ("started_at", "updated_at", "finished_at", "exporting_at", "exported_at"):
        out[name] = float(out[name]) if out.get(name) else None
    return out


def _save(client: redis.Redis, shop: str, **fields: Any) -> None:
    key = keys.sync_record(shop)
    values = {name: ("" if value is None else str(value)) for name, value in fields.items()}
    values["shop"] = shop
    values["updated_at"] = repr(time.time())
    with client.pipeline() as pipe:
        pipe.hset(key, mapping=values)
        pipe.expire(key, keys.JOB_RECORD_TTL)
        pipe.execute()


def progress(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Rate and ETA derived from the record (never stored)."""
    current = time.time() if now is None else now
    done, total = record.get("done", 0), record.get("total", 0)
    started = record.get("started_at")
    rate = None
    eta = None
    if started and record.get("status") == "running" and done:
        rate = done / max(current - started, 1e-6)
        eta = max(total - done, 0) / rate if rate and total else None
    return {
        "state": record.get("status", "never"),
        "phase": record.get("phase"),
        "done": done,
        "total": total,
        "rate_per_s": round(rate, 1) if rate else None,
        "eta_s": round(eta, 1) if eta is not None else None,
        "mode": record.get("mode"),
        "started_at": started,
        "finished_at": record.get("finished_at"),
        "error": record.get("error") or None,
    }


# --- requesting a sync -----------------------------------------------------------------------------------


def request_sync(ctx: Services, shop: str, *, reason: str = "manual", exclusive: bool = False) -> dict[str, Any]:
    """Queue a full sync. If one is queued or running it is joined (or refused when `exclusive`)."""
    record = read_record(ctx.redis, shop)
    running = record.get("status") in ACTIVE
    alive = bool(ctx.redis.exists(keys.sync_lock(shop))) or record.get("status") == "queued"
    if running and alive:
        if exclusive:
            raise SyncAlreadyRunning(record)
        return record
    resume = running and not alive  # the worker died: continue from the saved cursor
    if not resume:
        _save(ctx.redis, shop, status="queued", phase="queued", cursor="", done=0, total=0,
              skipped=0, mode="", error="", started_at=time.time(), finished_at="", reason=reason,
              exporting_at="", exported_at="", generation=_next_generation(ctx.redis, shop))
    job_id = f"sync-{shop.removesuffix('.myshopify.com')}-{secrets.token_hex(4)}"
    Queue(keys.QUEUE_SYNC, connection=ctx.queue_redis).enqueue(
        "jobs.sync.full_sync", shop, job_id=job_id, job_timeout=6 * 3600,
        result_ttl=keys.JOB_RECORD_TTL, failure_ttl=keys.JOB_RECORD_TTL,
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
    )
    return read_record(ctx.redis, shop)


def resume_abandoned(ctx: Services) -> list[str]:
    """Re-queue syncs whose worker died (record says running, lock expired). Called by workers."""
    resumed = []
    for shop in ctx.shops.installed_shops():
        record = read_record(ctx.redis, shop)
        if record.get("status") == "running" and not ctx.redis.exists(keys.sync_lock(shop)):
            request_sync(ctx, shop, reason="resume")
            resumed.append(shop)
            log.warning("resuming abandoned sync", extra={"shop": shop, "done": record.get("done")})
    return resumed


def _next_generation(client: redis.Redis, shop: str) -> int:
    """Milliseconds since the epoch: unique per sync even if the shop's index state expired meanwhile."""
    live = int(client.hget(keys.index_state(shop), "generation") or 0)
    return max(int(time.time() * 1000), live + 1)


# --- market pricing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pricing:
    """The shop's pricing zones and the catalogue documents (and page sizes) that read their prices."""

    zones: tuple[Zone, ...]
    plan: queries.CataloguePlan

    @classmethod
    def of(cls, market_map: MarketMap | None) -> Pricing:
        zones = market_map.priced() if market_map is not None else ()
        return cls(zones, queries.catalogue_plan([zone.country for zone in zones if zone.country]))


def fetch_markets(client: AdminClient, shop: str) -> MarketMap | None:
    """The shop's markets from the Admin API, or None when the token may not read them (no `read_markets`):
    feeds then price only requests that name no country."""
    found: list[dict[str, Any]] = []
    variables: dict[str, Any] = {"first": queries.MARKETS_PAGE_SIZE, "after": None}
    try:
        while True:
            data = client.execute(queries.MARKETS_PAGE, variables)
            connection = data["markets"]
            found.extend(connection_nodes(connection))
            info = connection["pageInfo"]
            if not info["hasNextPage"] or not info.get("endCursor"):
                break
            variables["after"] = info["endCursor"]
    except ShopifyGraphQLError as err:
        if "ACCESS_DENIED" not in err.codes:
            raise
        log.warning("markets not readable (read_markets not granted); market prices unknown", extra={"shop": shop})
        return None
    return markets.from_admin(str(data["shop"]["currencyCode"]), found)


def fetch_product(client: AdminClient, pid: int, pricing: Pricing) -> dict[str, Any] | None:
    """One product with all its variants, at every pricing zone's prices (None when Shopify has no such product)."""
    product = client.execute(pricing.plan.product_by_id, {"id": f"gid://shopify/Product/{pid}"}).get("product")
    if product is not None and is_listed(product):
        complete_variants(client, [product], pricing)
    return product


# --- the job ------------------------------------------------------------------------------------------------


@contextmanager
def _sync_lock(client: redis.Redis, shop: str) -> Iterator[None]:
    """Held while the sync runs, renewed every few seconds; a killed worker's lock expires by itself."""
    key, owner = keys.sync_lock(shop), secrets.token_hex(8)
    if not client.set(key, owner, nx=True, ex=keys.SYNC_LOCK_TTL):
        raise SyncAlreadyRunning(read_record(client, shop))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(keys.SYNC_LOCK_TTL / 3):
            try:
                client.set(key, owner, xx=True, ex=keys.SYNC_LOCK_TTL)
            except redis.RedisError:
                log.warning("could not renew sync lock", extra={"shop": shop})

    thread = threading.Thread(target=renew, daemon=True, name=f"sync-lock-{shop}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        client.eval(_RELEASE, 1, key, owner)


def full_sync(shop: str, ctx: Services | None = None, *, bulk_threshold: int | None = None) -> dict[str, Any]:
    ctx = ctx or default_services()
    record = read_record(ctx.redis, shop)
    if record.get("status") not in ACTIVE:
        return {"skipped": "no sync requested"}
    with _sync_lock(ctx.redis, shop), ctx.tokens.admin_client(shop) as client:
        index = ShopIndex(ctx.meili, shop)
        generation = int(record["generation"])
        try:
            total = int(client.execute(queries.PRODUCTS_COUNT, {"query": LISTED_QUERY})["productsCount"]["count"])
            threshold = ctx.settings.bulk_threshold if bulk_threshold is None else bulk_threshold
            mode = record.get("mode") or ("bulk" if total > threshold else "paged")
            _save(ctx.redis, shop, status="running", phase="signals", total=total, mode=mode)
            if not record.get("cursor"):
                compute_sales_signals(client, ctx.redis, shop)
            signals = load_signals(ctx.redis, shop)
            _save(ctx.redis, shop, phase="fetching")
            # The markets decide which prices each product is read at; stored first, so webhook refreshes
            # during the sync read the same ones.
            market_map = fetch_markets(client, shop)
            markets.save(ctx.redis, shop, market_map)
            bump_index_version(ctx.redis, shop)  # feed bodies computed with the previous map become unreachable
            pricing = Pricing.of(market_map)
            if mode == "bulk":
                done = _bulk_sync(ctx, client, index, shop, generation, signals, pricing)
            else:
                done = _paged_sync(ctx, client, index, shop, generation, signals, record, pricing)
            _save(ctx.redis, shop, phase="finishing")
            _finish(ctx, client, index, shop, generation, signals, pricing)
        except Exception as err:
            job = get_current_job()
            if _transient(err) and job is not None and job.retries_left:
                # RQ runs the job again later; the record stays active and keeps its cursor.
                _save(ctx.redis, shop, status="queued", phase="retrying", error=_reason(err))
                log.warning("sync will be retried", extra={"shop": shop, "error": type(err).__name__})
                raise
            _save(ctx.redis, shop, status="failed", phase="failed", error=_reason(err), finished_at=time.time())
            ctx.redis.hset(keys.index_state(shop), "last_error", _reason(err))
            ctx.redis.expire(keys.index_state(shop), keys.JOB_RECORD_TTL)
            raise
        _save(ctx.redis, shop, status="completed", phase="completed", finished_at=time.time(), cursor="")
        with ctx.redis.pipeline() as pipe:
            pipe.hset(keys.index_state(shop), mapping={"generation": generation, "last_completed_at": time.time(),
                                                       "last_error": ""})
            pipe.expire(keys.index_state(shop), keys.JOB_RECORD_TTL)
            pipe.execute()
        log.info("sync completed", extra={"shop": shop, "products": done, "mode": mode})
        return {"shop": shop, "status": "completed", "done": done, "generation": generation}


def _transient(err: BaseException) -> bool:
    """Worth trying again later. A query too dear for the bucket is refused before any wait: that never passes."""
    if isinstance(err, ShopifyThrottled):
        return err.waits > 0
    return isinstance(err, TRANSIENT_ERRORS)


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]


def _paged_sync(ctx: Services, client: AdminClient, index: ShopIndex, shop: str, generation: int,
                signals: dict[int, tuple[int, int]], record: dict[str, Any], pricing: Pricing) -> int:
    cursor = record.get("cursor") or None
    done = int(record.get("done") or 0)
    pending: tuple[int | None, str | None, int] | None = None  # (task, cursor after it, done after it)
    variables: dict[str, Any] = {"query": LISTED_QUERY, "after": cursor}
    plan = pricing.plan
    for page in client.paginate(plan.products_page, variables, ["products"], page_size=plan.page_size):
        products = [p for p in connection_nodes(page) if is_listed(p)]
        complete_variants(client, products, pricing)
        task = write_products(ctx, index, shop, products, generation, signals, pricing.zones)
        # Meilisearch indexes this page while the next one is fetched; the cursor only moves once the
        # previous page's task succeeded, so a resumed sync never skips a product.
        if pending is not None:
            _commit(ctx, index, shop, pending)
        done += len(products)
        pending = (task, page["pageInfo"]["endCursor"], done)
    if pending is not None:
        _commit(ctx, index, shop, pending)
    return done


def complete_variants(client: AdminClient, products: list[dict[str, Any]], pricing: Pricing | None = None) -> None:
    """Fetch the variants beyond the first page for the (few) products that have more."""
    plan = (pricing or Pricing.of(None)).plan
    for product in products:
        variants = product.get("variants") or {}
        info = variants.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            continue
        more = client.paginate(plan.variants_page, {"id": product["id"], "after": info.get("endCursor")},
                               ["product", "variants"], page_size=plan.variants_page_size)
        for page in more:
            variants["nodes"].extend(connection_nodes(page))
        variants["pageInfo"] = {"hasNextPage": False}


def _commit(ctx: Services, index: ShopIndex, shop: str, pending: tuple[int | None, str | None, int]) -> None:
    task, cursor, done = pending
    index.wait(task)
    bump_index_version(ctx.redis, shop)
    _save(ctx.redis, shop, cursor=cursor or "", done=done)


def write_products(ctx: Services, index: ShopIndex, shop: str, products: list[dict[str, Any]], generation: int,
                   signals: dict[int, tuple[int, int]], zones: tuple[Zone, ...] = ()) -> int | None:
    """Write a batch, never overwriting a newer document (from a webhook) nor reviving a deleted product."""
    if not products:
        return None
    ids = [product_id(p["id"]) for p in products]
    existing = index.existing(ids)
    tombstones = set(map(int, ctx.redis.hkeys(keys.index_tombstones(shop))))
    now = int(time.time())
    documents, keep = [], []
    for product, pid in zip(products, ids, strict=True):
        if pid in tombstones:
            continue
        previous = existing.get(pid)
        doc = to_document(shop, product, generation=generation, signals=signals.get(pid, (0, 0)),
                          previous=previous, now=now, zones=zones)
        if previous and (previous.get("updated_at") or 0) > (doc["updated_at"] or 0):
            keep.append(pid)  # the index already holds a newer version: keep it, in this generation
            continue
        documents.append(doc)
    bump = index.submit_generation_bump(keep, generation)
    index.wait(bump)
    return index.submit(documents)


def _finish(ctx: Services, client: AdminClient, index: ShopIndex, shop: str, generation: int,
            signals: dict[int, tuple[int, int]], pricing: Pricing) -> None:
    """Re-fetch products webhooks touched during the sync, then drop what this generation did not see."""
    touched = [int(pid) for pid in ctx.redis.smembers(keys.index_touched(shop))]
    for pid in touched:
        product = fetch_product(client, pid, pricing)
        if product and is_listed(product):
            index.wait(write_products(ctx, index, shop, [product], generation, signals, pricing.zones))
    if touched:
        ctx.redis.srem(keys.index_touched(shop), *touched)
    index.delete_other_generations(generation)
    # Deleted products that the sync could have seen are gone now; their tombstones have done their job.
    tomb_key = keys.index_tombstones(shop)
    stale = [pid for pid in ctx.redis.hkeys(tomb_key)]
    if stale:
        index.delete_products(int(pid) for pid in stale)
    bump_index_version(ctx.redis, shop)


def load_signals(client: redis.Redis, shop: str) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for pid, value in client.hgetall(keys.sales_signals(shop)).items():
        week, _, month = value.partition(",")
        out[int(pid)] = (int(week or 0), int(month or 0))
    return out


# --- bulk operations ----------------------------------------------------------------------------------------


def _bulk_sync(ctx: Services, client: AdminClient, index: ShopIndex, shop: str, generation: int,
               signals: dict[int, tuple[int, int]], pricing: Pricing) -> int:
    record = read_record(ctx.redis, shop)
    operation = record.get("bulk_operation") or ""
    if not operation:
        # exporting_at / exported_at: when the export was started and seen finished (bench.sync times the
        # export and the indexing phases apart from them).
        operation = client.start_bulk_query(pricing.plan.bulk)
        ctx.redis.hset(keys.sync_record(shop), mapping={"bulk_operation": operation,
                                                        "exporting_at": repr(time.time())})
    _save(ctx.redis, shop, phase="exporting")
    while True:
        status = client.bulk_status(operation)
        if status["status"] == "COMPLETED":
            break
        if status["status"] in {"FAILED", "CANCELED", "EXPIRED"}:
            raise RuntimeError(f"bulk operation {status['status'].lower()}: {status.get('errorCode')}")
        time.sleep(BULK_POLL_SECONDS)
    _save(ctx.redis, shop, phase="indexing", exported_at=time.time())
    done = 0
    # Many batches in flight: Meilisearch merges the tasks queued when it starts an indexing batch, and fewer,
    # larger indexing batches cost it far less (at 100k products, 4 in flight meant 40 indexing batches and twice
    # the Meilisearch CPU of a queued raw ingest: 0.46x its speed). Those Meilisearch has finished are committed,
    # oldest first, as each batch is sent, without waiting.
    in_flight: deque[tuple[int | None, str | None, int]] = deque()
    batch: list[dict[str, Any]] = []
    late: set[int] = set()
    for product in _products_from_jsonl(status.get("url"), late):
        if not is_listed(product):
            continue
        batch.append(product)
        if len(batch) >= BATCH_SIZE:
            done += len(batch)
            in_flight.append((write_products(ctx, index, shop, batch, generation, signals, pricing.zones), "", done))
            batch = []
            while in_flight and (len(in_flight) > TASKS_IN_FLIGHT or index.finished(in_flight[0][0])):
                _commit(ctx, index, shop, in_flight.popleft())
    if batch:
        done += len(batch)
        in_flight.append((write_products(ctx, index, shop, batch, generation, signals, pricing.zones), "", done))
    while in_flight:
        _commit(ctx, index, shop, in_flight.popleft())
    if late:  # re-read by id in _finish, like products touched by webhooks during the sync
        ctx.redis.sadd(keys.index_touched(shop), *late)
        ctx.redis.expire(keys.index_touched(shop), keys.JOB_RECORD_TTL)
    ctx.redis.hdel(keys.sync_record(shop), "bulk_operation")
    return done


JOIN_WINDOW = 200  # products held open for their child lines while the JSONL streams by


def _products_from_jsonl(url: str | None, late: set[int]) -> Iterator[dict[str, Any]]:
    """Stream the JSONL export, joining `__parentId` lines to their product without loading the file.

    Shopify writes a product's children after it, normally right after; a small window of open products
    joins children that come a little later, and a child whose product already left the window is noted
    in `late` so that product is re-read by id at the end of the sync (memory stays bounded either way).
    """
    if not url:
        return
    window: OrderedDict[str, dict[str, Any]] = OrderedDict()
    decode = json.JSONDecoder().decode  # on str: json.loads(bytes) sniffs the encoding of every line first
    with requests.get(url, stream=True, timeout=(5, 60)) as response:
        response.raise_for_status()
        for raw in response.iter_lines(chunk_size=1 << 16):  # the default 512-byte reads dominate otherwise
            if not raw:
                continue
            line = decode(raw.decode())
            parent = line.pop("__parentId", None)
            if parent is None:
                line.setdefault("variants", {"nodes": []})
                line.setdefault("collections", {"nodes": []})
                window[line["id"]] = line
                if len(window) > JOIN_WINDOW:
                    yield window.popitem(last=False)[1]
                continue
            product = window.get(parent)
            if product is None:
                late.add(product_id(parent))
                continue
            gid = str(line.get("id", ""))
            if "/ProductVariant/" in gid:
                product["variants"]["nodes"].append(line)
            elif "/Collection/" in gid:
                product["collections"]["nodes"].append(line)
    yield from window.values()
