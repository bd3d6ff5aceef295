"""The per-shop log of recent webhook deliveries (topic, id, time; never payloads) and its deletion entry."""

from __future__ import annotations

import json
import time

import redis

from core import keys
from core.purge import DataStore, register
from core.services import CoreServices


def log_delivery(client: redis.Redis, shop: str, topic: str, webhook_id: str) -> None:
    key = keys.webhook_topic_log(shop)
    entry = json.dumps({"topic": topic, "webhook_id": webhook_id, "received_at": time.time()})
    with client.pipeline() as pipe:
        pipe.lpush(key, entry)
        pipe.ltrim(key, 0, keys.WEBHOOK_LOG_LENGTH - 1)
        pipe.expire(key, keys.WEBHOOK_LOG_TTL)
        pipe.execute()


def _purge(services: CoreServices, shop: str) -> int:
    return int(services.redis.delete(keys.webhook_topic_log(shop)))


def _inventory(services: CoreServices, shop: str) -> dict[str, int]:
    key = keys.webhook_topic_log(shop)
    count = int(services.redis.llen(key))
    return {key: count} if count else {}


register(DataStore("webhook-log", "operational", "recent webhook deliveries: topic, id, time (no payloads)",
                   _purge, _inventory))
