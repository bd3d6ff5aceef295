"""Webhook-driven index updates: a changed product is re-read from Shopify and rewritten within seconds.

The webhook handler queues one job per product (a burst of deliveries for the same product is one
fetch: `core.keys.index_pending`); the job reads the product by id (webhook payloads are REST-shaped
and may be truncated) and writes it in the generation a running sync will keep.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from rq import get_current_job

from core import keys
from feeds import freshness, markets
from feeds.documents import is_listed, product_id
from feeds.service import bump_index_version
from feeds.writer import ShopIndex
from jobs.context import services as default_services
from jobs.queues import enqueue
from jobs.sync import Pricing, fetch_product, load_signals, read_record, write_products
from runtime.services import Services
from shopify import queries

log = logging.getLogger(__name__)


def _arrival() -> float | None:
    """When the webhook behind this job reached Lumi: the web process enqueues its job as it answers, so the
    job's enqueue time is the arrival (None outside a job)."""
    job = get_current_job()
    return job.enqueued_at.timestamp() if job is not None and job.enqueued_at is not None else None


def queue_product_refresh(ctx: Services, shop: str, pid: int) -> bool:
    """Queue a refresh of one product unless one is already queued (returns whether one was queued)."""
    freshness.note_arrival(ctx.redis, shop, pid, _arrival() or time.time())
    if not ctx.redis.sadd(keys.index_pending(shop), pid):
        return False
    try:
        ctx.redis.expire(keys.index_pending(shop), keys.JOB_RECORD_TTL)
        _mark_touched(ctx.redis, shop, pid)
        enqueue(ctx.queue_redis, keys.QUEUE_WEBHOOKS, "jobs.catalogue.refresh_product", args=(shop, pid),
                job_id=f"product-{shop.removesuffix('.myshopify.com')}-{pid}-{int(time.time() * 1000)}")
    except BaseException:
        # Nothing was queued: drop the mark, or this product's later webhooks (and this one's retry) would all be
        # taken for duplicates of a refresh that does not exist.
        ctx.redis.srem(keys.index_pending(shop), pid)
        raise
    return True


def _mark_touched(client: redis.Redis, shop: str, pid: int) -> None:
    if read_record(client, shop).get("status") in ("queued", "running"):
        client.sadd(keys.index_touched(shop), pid)
        client.expire(keys.index_touched(shop), keys.JOB_RECORD_TTL)


def _generation(client: redis.Redis, shop: str) -> int:
    record = read_record(client, shop)
    live = int(client.hget(keys.index_state(shop), "generation") or 0)
    if record.get("status") in ("queued", "running"):
        return max(live, int(record.get("generation") or 0))
    return live


def refresh_product(shop: str, pid: int, ctx: Services | None = None) -> dict[str, Any]:
    ctx = ctx or default_services()
    ctx.redis.srem(keys.index_pending(shop), pid)  # from here on, a new webhook queues a new refresh
    arrived_at = freshness.take_arrival(ctx.redis, shop, pid)
    try:
        return _refresh(ctx, shop, pid, arrived_at)
    except BaseException:
        # Retried later (jobs.queues): keep the clock running from the first arrival, or the slowest refreshes
        # (the ones that failed first) would be missing from the freshness figures.
        if arrived_at is not None:
            freshness.note_arrival(ctx.redis, shop, pid, arrived_at)
        raise


def _refresh(ctx: Services, shop: str, pid: int, arrived_at: float | None) -> dict[str, Any]:
    if not ctx.shops.is_installed(shop):
        return {"skipped": "not installed"}
    # At the prices of the markets the last sync stored (a sync re-reads them; a product alone does not).
    pricing = Pricing.of(markets.stored(ctx.redis, shop))
    with ctx.tokens.admin_client(shop) as client:
        product = fetch_product(client, pid, pricing)
    index = ShopIndex(ctx.meili, shop)
    if product is None or not is_listed(product):
        index.delete_products([pid])
        bump_index_version(ctx.redis, shop)
        _record_freshness(ctx, shop, arrived_at)
        return {"shop": shop, "product_id": pid, "action": "removed"}
    index.wait(write_products(ctx, index, shop, [product], _generation(ctx.redis, shop), load_signals(ctx.redis, shop),
                              pricing.zones))
    bump_index_version(ctx.redis, shop)
    _record_freshness(ctx, shop, arrived_at)
    return {"shop": shop, "product_id": pid, "action": "indexed"}


def _record_freshness(ctx: Services, shop: str, arrived_at: float | None) -> None:
    """Called once the index write is visible (its task succeeded) and the feed version is bumped."""
    if arrived_at is not None:
        freshness.record(ctx.redis, shop, arrived_at)


def delete_product(shop: str, pid: int, ctx: Services | None = None) -> dict[str, Any]:
    ctx = ctx or default_services()
    with ctx.redis.pipeline() as pipe:
        pipe.hset(keys.index_tombstones(shop), str(pid), repr(time.time()))
        pipe.expire(keys.index_tombstones(shop), keys.TOMBSTONE_TTL)
        pipe.execute()
    ShopIndex(ctx.meili, shop).delete_products([pid])
    bump_index_version(ctx.redis, shop)
    _record_freshness(ctx, shop, _arrival())  # a deletion is applied by its own webhook's job
    return {"shop": shop, "product_id": pid, "action": "deleted"}


def inventory_changed(shop: str, inventory_item_id: int, ctx: Services | None = None) -> dict[str, Any]:
    ctx = ctx or default_services()
    with ctx.tokens.admin_client(shop) as client:
        item = client.execute(queries.INVENTORY_ITEM_PRODUCT,
                              {"id": f"gid://shopify/InventoryItem/{inventory_item_id}"}).get("inventoryItem")
    variant = (item or {}).get("variant") or {}
    product = variant.get("product") or {}
    if not product.get("id"):
        return {"skipped": "unknown inventory item"}
    queued = queue_product_refresh(ctx, shop, product_id(product["id"]))
    return {"shop": shop, "product_id": product_id(product["id"]), "queued": queued}
