"""RQ queues by name, and the one way to enqueue work: by dotted path, with small payloads."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, Retry

from core import keys

# Webhook jobs are idempotent (a refresh re-reads the product from Shopify, a deletion deletes by id). One that
# fails (Shopify or Meilisearch briefly unavailable) or whose worker died mid-job (RQ's registry clean-up finds it
# abandoned) runs again, instead of leaving the product stale in the index until the nightly resync.
WEBHOOK_RETRY_INTERVALS = [5, 30, 120]


def queue(name: str, connection: redis.Redis) -> Queue:
    if name not in keys.QUEUES:
        raise ValueError(f"unknown queue {name!r}; queues are declared in core.keys")
    return Queue(name, connection=connection)


def all_queues(connection: redis.Redis) -> list[Queue]:
    """Every queue a worker serves, most urgent first."""
    return [Queue(name, connection=connection) for name in keys.QUEUES]


def enqueue(connection: redis.Redis, queue_name: str, func_path: str, *args: Any, **options: Any) -> Any:
    """Enqueue `func_path` (e.g. "jobs.sync.full_sync") so web never imports heavy job code."""
    options.setdefault("result_ttl", keys.JOB_RECORD_TTL)
    options.setdefault("failure_ttl", keys.JOB_RECORD_TTL)
    if queue_name == keys.QUEUE_WEBHOOKS:
        options.setdefault("retry", Retry(max=len(WEBHOOK_RETRY_INTERVALS), interval=WEBHOOK_RETRY_INTERVALS))
    return queue(queue_name, connection).enqueue(func_path, *args, **options)
