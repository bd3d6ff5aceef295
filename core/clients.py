"""Builds the external clients (Redis, Meilisearch) from settings, once per process."""

from __future__ import annotations

import meilisearch
import redis

from core.settings import Settings


def make_redis(settings: Settings) -> redis.Redis:
    """Redis for Lumi's own data: str in, str out, short timeouts so a sick Redis fails fast."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
    )


def make_queue_redis(settings: Settings) -> redis.Redis:
    """Redis for RQ, which stores pickled bytes and must not decode responses."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
    )


def make_meili(settings: Settings) -> meilisearch.Client:
    return meilisearch.Client(settings.meili_url, settings.meili_master_key, timeout=settings.meili_timeout)
