"""Catalogue freshness: seconds from a product webhook's arrival to the feed reflecting it.

jobs.catalogue notes when a product webhook arrived (`note_arrival`, kept with the pending refresh) and, once
the refresh's index write is visible (its Meilisearch task succeeded), records the elapsed seconds here
(`record`). The admin reads p50/p95 over the last 24 h (`summary`). Only numbers are kept: no product ids.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

import redis

from core import keys
from core.services import CoreServices


def note_arrival(client: redis.Redis, shop: str, pid: int, arrived_at: float) -> None:
    """Remember the oldest arrival not yet reflected (a burst of webhooks is measured from its first)."""
    key = keys.index_pending_since(shop)
    with client.pipeline(transaction=True) as pipe:
        pipe.hsetnx(key, str(pid), repr(arrived_at))
        pipe.expire(key, keys.JOB_RECORD_TTL)
        pipe.execute()


def take_arrival(client: redis.Redis, shop: str, pid: int) -> float | None:
    """The arrival a refresh starting now will reflect, removed so a webhook arriving later starts a new clock."""
    key = keys.index_pending_since(shop)
    with client.pipeline(transaction=True) as pipe:
        pipe.hget(key, str(pid))
        pipe.hdel(key, str(pid))
        raw, _ = pipe.execute()
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def record(client: redis.Redis, shop: str, arrived_at: float, now: float | None = None) -> float:
    """Record one sample (seconds from arrival to visible) and drop samples older than the window."""
    now = time.time() if now is None else now
    seconds = max(0.0, now - arrived_at)
    key = keys.feed_freshness(shop)
    with client.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {f"{seconds:.3f}:{secrets.token_hex(4)}": now})
        pipe.zremrangebyscore(key, "-inf", f"({now - keys.FRESHNESS_WINDOW}")
        pipe.expire(key, keys.FRESHNESS_WINDOW)
        pipe.execute()
    return seconds


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(client: redis.Redis, shop: str, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    members: list[bytes | str] = list(client.zrangebyscore(keys.feed_freshness(shop), now - keys.FRESHNESS_WINDOW,
                                                          "+inf"))  # type: ignore[arg-type]
    values = [float((m.decode() if isinstance(m, bytes) else m).split(":", 1)[0]) for m in members]
    return {
        "p50_s": round(_percentile(values, 50), 3) if values else None,
        "p95_s": round(_percentile(values, 95), 3) if values else None,
        "samples": len(values),
        "window_s": keys.FRESHNESS_WINDOW,
    }


def purge(ctx: CoreServices, shop: str) -> int:
    return int(ctx.redis.delete(keys.feed_freshness(shop), keys.index_pending_since(shop)))


def inventory(ctx: CoreServices, shop: str) -> dict[str, int]:
    found = {}
    for key in (keys.feed_freshness(shop), keys.index_pending_since(shop)):
        size = int(ctx.redis.zcard(key) if key == keys.feed_freshness(shop) else ctx.redis.hlen(key))
        if size:
            found[key] = size
    return found
