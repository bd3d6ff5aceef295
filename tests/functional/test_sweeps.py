"""The daily sweep purges what an uninstalled shop left behind and schedules itself once a day."""

from __future__ import annotations

import time

import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from core import keys
from jobs.sweeps import FORGET_AFTER, schedule_next_sweep, sweep_uninstalled
from runtime.data import receipts
from tests.conftest import DEMO_SHOP, Stack


def test_sweep_purges_leftovers_and_forgets_after_30_days(stack: Stack, redis_client: redis.Redis) -> None:
    stack.install()
    services = stack.services
    # A lost purge job: the shop is uninstalled but its webhook log (operational data) is still there.
    stack.control.send_webhook(DEMO_SHOP, "products/update", {"id": 1, "updated_at": "2026-11-01T00:00:00Z"})
    services.shops.uninstall(DEMO_SHOP, now=time.time() - 3600)
    assert redis_client.exists(keys.webhook_topic_log(DEMO_SHOP))

    result = sweep_uninstalled(ctx=services)
    assert result["purged"] == [DEMO_SHOP]
    assert not redis_client.exists(keys.webhook_topic_log(DEMO_SHOP))
    assert receipts(services, DEMO_SHOP)[0]["reason"] == "daily_sweep"
    # Nothing left: a second sweep writes no new receipt.
    assert sweep_uninstalled(ctx=services)["purged"] == []
    assert len(receipts(services, DEMO_SHOP)) == 1
    # After 30 days the uninstalled marker goes too.
    assert sweep_uninstalled(now=time.time() + FORGET_AFTER, ctx=services)["forgotten"] == [DEMO_SHOP]
    assert redis_client.zscore(keys.SHOPS_UNINSTALLED, DEMO_SHOP) is None


def test_next_sweep_is_scheduled_once_per_day(redis_server) -> None:  # type: ignore[no-untyped-def]
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushdb()
    first = schedule_next_sweep(connection)
    second = schedule_next_sweep(connection)
    assert first == second
    registry = ScheduledJobRegistry(keys.QUEUE_DEFAULT, connection=connection)
    scheduled = sorted(registry.get_job_ids())
    assert len(scheduled) == 2 and first in scheduled
    assert [job_id for job_id in scheduled if job_id.startswith("resync-")]
    job = Queue(keys.QUEUE_DEFAULT, connection=connection).fetch_job(first)
    assert job is not None and job.func_name == "jobs.sweeps.sweep_uninstalled"


def test_nightly_resync_queues_a_sync_for_every_installed_shop(stack: Stack) -> None:
    from jobs.sweeps import nightly_resync
    from jobs.sync import read_record

    stack.install()
    services = stack.services
    services.redis.delete(keys.sync_record(DEMO_SHOP))  # as if the install's sync had long finished
    assert nightly_resync(ctx=services) == {"shops": 1}
    assert read_record(services.redis, DEMO_SHOP)["status"] == "queued"
    assert read_record(services.redis, DEMO_SHOP)["reason"] == "nightly"
