"""Shared test helpers for the Admin API client tests: shop names, devshop config, recorders."""

from __future__ import annotations

import time
from typing import Any

import requests

# One shop per concern, so a test that drains one bucket or injects faults cannot disturb another.
CLIENT_SHOP = "client-test.myshopify.com"  # faults, auth, errors: a small catalogue
THROTTLE_SHOP = "throttle-test.myshopify.com"  # bucket forced empty
DRAIN_SHOP = "drain-test.myshopify.com"  # the 1,000-product catalogue drained through pagination
DRAIN_PRODUCTS = 1000

DEVSHOP_CONFIG: dict[str, Any] = {
    "API_KEY": "lumi-shopify-client-tests",
    "API_SECRET": "lumi-shopify-client-tests-secret",
    "SHOPS": {
        CLIENT_SHOP: {"products": 5, "seed": 11},
        THROTTLE_SHOP: {"products": 5, "seed": 12},
        DRAIN_SHOP: {"products": DRAIN_PRODUCTS, "seed": 13},
    },
    "BUCKET_SIZE": 1000,
    "RESTORE_RATE": 100,
    "PAGINATION_LIMIT": 25_000,  # Shopify stops cursor pagination after 25,000 objects
}


class SleepRecorder:
    """An injectable `sleep` that records every wait; really sleeps only when `real` (devshop's bucket runs on
    wall-clock time, so waits that must refill it have to pass for real)."""

    def __init__(self, *, real: bool) -> None:
        self.real = real
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


class RecordingSession(requests.Session):
    """A real requests session that keeps every response's JSON body, so tests can read what Shopify said."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(*args, **kwargs)
        try:
            self.bodies.append(response.json())
        except ValueError:
            self.bodies.append(None)
        return response
