"""Services for job functions: built once per worker process from the environment (never a Flask app)."""

from __future__ import annotations

from functools import lru_cache

from core.settings import load_settings
from runtime.services import Services, build_services


@lru_cache(maxsize=1)
def services() -> Services:
    return build_services(load_settings())
