"""External clients hung on the app, built once per process, fetched through tiny accessors."""

from __future__ import annotations

import meilisearch
import redis
from flask import Flask, current_app

from core.settings import Settings
from runtime.services import Services, build_services


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["lumi.services"] = build_services(settings)


def get_services() -> Services:
    services: Services = current_app.extensions["lumi.services"]
    return services


def get_settings() -> Settings:
    return get_services().settings


def get_redis() -> redis.Redis:
    """Redis for Lumi's own keys (decoded strings)."""
    return get_services().redis


def get_queue_redis() -> redis.Redis:
    """Redis connection for RQ (raw bytes)."""
    return get_services().queue_redis


def get_meili() -> meilisearch.Client:
    return get_services().meili
