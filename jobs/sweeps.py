"""Daily sweeps: whatever an uninstalled shop left behind is purged within 30 days, whatever else failed.

The purge job queued on `app/uninstalled` normally does it at once; the sweep is the guarantee
(a lost job, a worker killed mid-purge, Meilisearch down that day). The sweep also deletes Meilisearch's
finished tasks older than a day: their details keep delete filters that name shops (`shop = "..."`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue

from core import keys
from feeds.index import delete_finished_tasks
from jobs.context import services
from jobs.purge import UNINSTALL_CATEGORIES
from runtime.data import inventory, purge_shop
from runtime.services import Services

log = logging.getLogger(__name__)

FORGET_AFTER = 30 * 24 * 3600  # after 30 days the uninstalled marker itself goes
SWEEP_HOUR_UTC = 3
RESYNC_HOUR_UTC = 4


def sweep_uninstalled(now: float | None = None, ctx: Services | None = None) -> dict[str, Any]:
    ctx = ctx or services()
    current = time.time() if now is None else now
    purged, forgotten = [], []
    for shop, uninstalled_at in ctx.redis.zrange(keys.SHOPS_UNINSTALLED, 0, -1, withscores=True):
        if ctx.shops.is_installed(shop):
            ctx.redis.zrem(keys.SHOPS_UNINSTALLED, shop)
            continue
        held = inventory(ctx, shop)
        if any(held[name]["items"] for name in held if held[name]["category"] in UNINSTALL_CATEGORIES):
            purge_shop(ctx, shop, categories=UNINSTALL_CATEGORIES, reason="daily_sweep", now=current)
            purged.append(shop)
        if current - uninstalled_at > FORGET_AFTER:
            ctx.redis.zrem(keys.SHOPS_UNINSTALLED, shop)
            forgotten.append(shop)
    tasks = sweep_index_tasks(ctx, now=current)
    schedule_next_sweep(ctx.queue_redis, after=current)
    log.info("uninstalled shops swept", extra={"purged": len(purged), "forgotten": len(forgotten),
                                               "index_tasks_deleted": tasks})
    return {"purged": purged, "forgotten": forgotten, "index_tasks_deleted": tasks}


def sweep_index_tasks(ctx: Services, now: float | None = None) -> int | None:
    """Finished Meilisearch tasks older than a day go (None: Meilisearch did not answer; tomorrow's sweep will)."""
    try:
        return delete_finished_tasks(ctx.meili, now=now)
    except Exception:  # noqa: BLE001 - Meilisearch down must not stop the sweep or its rescheduling
        log.warning("index task history not swept", exc_info=True)
        return None


def nightly_resync(ctx: Services | None = None) -> dict[str, Any]:
    """Re-sync every installed shop once a night, so drift from missed webhooks heals."""
    from jobs.sync import request_sync

    ctx = ctx or services()
    shops = ctx.shops.installed_shops()
    for shop in shops:
        request_sync(ctx, shop, reason="nightly")  # joins a sync that is already running
    _schedule_daily(ctx.queue_redis, "resync", "jobs.sweeps.nightly_resync", RESYNC_HOUR_UTC)
    return {"shops": len(shops)}


def schedule_next_sweep(queue_redis: redis.Redis, after: float | None = None) -> str:
    """Schedule the next sweep and nightly re-sync (idempotent: one job id per day, however many ask)."""
    _schedule_daily(queue_redis, "resync", "jobs.sweeps.nightly_resync", RESYNC_HOUR_UTC, after)
    return _schedule_daily(queue_redis, "sweep-uninstalled", "jobs.sweeps.sweep_uninstalled", SWEEP_HOUR_UTC, after)


def _schedule_daily(queue_redis: redis.Redis, name: str, func: str, hour: int, after: float | None = None) -> str:
    start = datetime.fromtimestamp(time.time() if after is None else after, UTC)
    run_at = start.replace(hour=hour, minute=0, second=0, microsecond=0)
    if run_at <= start:
        run_at += timedelta(days=1)
    job_id = f"{name}-{run_at:%Y%m%d}"
    queue = Queue(keys.QUEUE_DEFAULT, connection=queue_redis)
    if queue.fetch_job(job_id) is None:
        queue.enqueue_at(run_at, func, job_id=job_id, result_ttl=keys.JOB_RECORD_TTL,
                         failure_ttl=keys.JOB_RECORD_TTL)
    return job_id
