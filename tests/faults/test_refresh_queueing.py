"""A webhook's product refresh that could not be queued must not swallow the product's later webhooks.

The one fault here that real processes cannot aim at: Redis failing between marking a refresh pending and
queueing it. The worker's retry of the webhook job (and every later webhook for the product) must queue it.
"""

from __future__ import annotations

import pytest
import redis
from flask import Flask

from core import keys
from jobs import catalogue

SHOP = "lumi-demo.myshopify.com"
PRODUCT = 8100000000007


def test_a_refresh_that_could_not_be_queued_leaves_no_pending_mark_behind(
    app: Flask, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = app.extensions["lumi.services"]

    def redis_gone(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("Redis went away")

    with monkeypatch.context() as patched:
        patched.setattr(catalogue, "enqueue", redis_gone)
        with pytest.raises(redis.ConnectionError):
            catalogue.queue_product_refresh(services, SHOP, PRODUCT)
    assert not redis_client.sismember(keys.index_pending(SHOP), PRODUCT)
    # The webhook job's retry queues the refresh (it is not taken for a duplicate of one that does not exist).
    assert catalogue.queue_product_refresh(services, SHOP, PRODUCT) is True
    assert redis_client.sismember(keys.index_pending(SHOP), PRODUCT)
    assert catalogue.queue_product_refresh(services, SHOP, PRODUCT) is False  # and a burst is still one fetch
