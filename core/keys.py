"""The one owner of Redis key names, their TTLs and RQ queue names.

Every key Lumi writes is built here and starts with `lumi:`, so an operator can
see at a glance what belongs to us. Key parts never contain `:` from user input
(shop domains cannot), and RQ job ids built here never contain `:` (RQ 2.1+).
"""

from __future__ import annotations

PREFIX = "lumi"

# RQ queues, in the order a worker serves them (most urgent first).
QUEUE_WEBHOOKS = "lumi-webhooks"  # incremental updates from webhooks: seconds matter
QUEUE_DEFAULT = "lumi-default"  # deletion requests, compliance, emails
QUEUE_SYNC = "lumi-sync"  # full catalogue syncs: long, may wait
QUEUES: tuple[str, ...] = (QUEUE_WEBHOOKS, QUEUE_DEFAULT, QUEUE_SYNC)

# RQ worker liveness: an idle worker heartbeats every WORKER_TTL - 15 s (RQ's rule),
# so /readyz can require a heartbeat within a minute.
WORKER_TTL = 45


def health_probe() -> str:
    """A throwaway key /readyz may write to prove Redis accepts writes."""
    return f"{PREFIX}:health:probe"

# Job records (RQ results and failures, and our own sync records) expire after 7 days: a data promise.
JOB_RECORD_TTL = 7 * 24 * 3600
