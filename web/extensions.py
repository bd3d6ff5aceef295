"""External clients hung on the app, built once per process, fetched through tiny accessors."""

from __future__ import annotations

import meilisearch
import redis
from flask import Flask, current_app

from core.clients import make_meili, make_queue_redis, make_redis
from core.settings import Settings


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["lumi.redis"] = make_redis(settings)
    app.extensions["lumi.queue_redis"] = make_queue_redis(settings)
    app.extensions["lumi.meili"] = make_meili(settings)


def get_settings() -> Settings:
    settings: Settings = current_app.config["LUMI_SETTINGS"]
    return settings


def get_redis() -> redis.Redis:
    """Redis for Lumi's own keys (decoded strings)."""
    client: redis.Redis = current_app.extensions["lumi.redis"]
    return client


def get_queue_redis() -> redis.Redis:
    """Redis connection for RQ (raw bytes)."""
    client: redis.Redis = current_app.extensions["lumi.queue_redis"]
    return client


def get_meili() -> meilisearch.Client:
    client: meilisearch.Client = current_app.extensions["lumi.meili"]
    return client
