"""Readiness checks shared by /readyz and the CLI: is each component we depend on usable now?"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import meilisearch
import redis
from meilisearch.errors import MeilisearchError
from rq import Worker

log = logging.getLogger(__name__)


@dataclass
class Readiness:
    components: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def down(self) -> list[str]:
        return [name for name, state in self.components.items() if state["status"] == "down"]

    @property
    def ready(self) -> bool:
        return all(state["status"] == "up" for state in self.components.values())


def check_redis(client: redis.Redis) -> dict[str, object]:
    try:
        client.ping()
    except redis.RedisError as err:
        return {"status": "down", "reason": type(err).__name__}
    return {"status": "up"}


def check_meilisearch(client: meilisearch.Client) -> dict[str, object]:
    try:
        health = client.health()
    except (MeilisearchError, OSError) as err:
        return {"status": "down", "reason": type(err).__name__}
    if health.get("status") != "available":
        return {"status": "down", "reason": f"status {health.get('status')!r}"}
    return {"status": "up"}


def check_workers(queue_redis: redis.Redis, max_heartbeat_age: int) -> dict[str, object]:
    """Up when at least one RQ worker sent a heartbeat within `max_heartbeat_age` seconds."""
    try:
        workers = Worker.all(connection=queue_redis)
    except redis.RedisError as err:
        return {"status": "unknown", "reason": f"cannot read workers: {type(err).__name__}"}
    now = datetime.now(UTC)
    ages = []
    for worker in workers:
        beat = worker.last_heartbeat
        if beat is None:
            continue
        if beat.tzinfo is None:  # RQ stores naive UTC timestamps
            beat = beat.replace(tzinfo=UTC)
        ages.append((now - beat).total_seconds())
    alive = [age for age in ages if age <= max_heartbeat_age]
    if not alive:
        return {"status": "down", "reason": f"no worker heartbeat in the last {max_heartbeat_age} s", "workers": 0}
    return {"status": "up", "workers": len(alive), "last_heartbeat_age_s": round(min(alive), 1)}


def readiness(
    app_redis: redis.Redis,
    queue_redis: redis.Redis,
    meili: meilisearch.Client,
    *,
    max_heartbeat_age: int = 60,
) -> Readiness:
    report = Readiness()
    report.components["redis"] = check_redis(app_redis)
    report.components["meilisearch"] = check_meilisearch(meili)
    if report.components["redis"]["status"] == "up":
        report.components["worker"] = check_workers(queue_redis, max_heartbeat_age)
    else:
        # Without Redis no worker can run; naming Redis alone tells the operator what to fix.
        report.components["worker"] = {"status": "unknown", "reason": "redis is down"}
    if not report.ready:
        log.warning("not ready", extra={"down": report.down})
    return report
