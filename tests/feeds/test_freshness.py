"""Catalogue freshness samples in real Redis: percentiles over the last 24 h, one clock per burst, deletable."""

from __future__ import annotations

import pytest
import redis

from core import keys
from feeds import freshness
from runtime.data import inventory, purge_shop

SHOP = "fresh-shop.myshopify.com"
NOW = 1_800_000_000.0


def test_p50_and_p95_are_measured_values_over_the_last_24_hours(redis_client: redis.Redis) -> None:
    assert freshness.summary(redis_client, SHOP, now=NOW) == {"p50_s": None, "p95_s": None, "samples": 0,
                                                               "window_s": 86400}
    for seconds in range(1, 21):  # 1 s … 20 s, all within the day
        freshness.record(redis_client, SHOP, NOW - 3600 - seconds, now=NOW - 3600)
    body = freshness.summary(redis_client, SHOP, now=NOW)
    assert body == {"p50_s": 10.0, "p95_s": 19.0, "samples": 20, "window_s": 86400}
    # A day later those samples no longer count, and a new slow one is all there is.
    later = NOW + 86400
    freshness.record(redis_client, SHOP, later - 42.5, now=later)
    assert freshness.summary(redis_client, SHOP, now=later) == {"p50_s": 42.5, "p95_s": 42.5, "samples": 1,
                                                                 "window_s": 86400}
    assert 0 < redis_client.ttl(keys.feed_freshness(SHOP)) <= 86400


def test_a_burst_of_webhooks_for_one_product_is_timed_from_its_first(redis_client: redis.Redis) -> None:
    freshness.note_arrival(redis_client, SHOP, 7, NOW - 9)
    freshness.note_arrival(redis_client, SHOP, 7, NOW - 2)  # same product, refresh still pending
    assert freshness.take_arrival(redis_client, SHOP, 7) == NOW - 9
    assert freshness.take_arrival(redis_client, SHOP, 7) is None  # taken: a later webhook starts a new clock
    freshness.note_arrival(redis_client, SHOP, 7, NOW - 1)
    assert freshness.take_arrival(redis_client, SHOP, 7) == NOW - 1


def test_freshness_data_is_in_the_inventory_and_deleted_with_the_shop(app, redis_client: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    services = app.extensions["lumi.services"]
    freshness.record(redis_client, SHOP, NOW - 3)
    freshness.note_arrival(redis_client, SHOP, 8, NOW)
    held = inventory(services, SHOP)["feed-freshness"]
    assert held["category"] == "operational"
    assert held["items"] == {keys.feed_freshness(SHOP): 1, keys.index_pending_since(SHOP): 1}
    receipt = purge_shop(services, SHOP, categories=["operational"], reason="test")
    assert receipt["deleted"]["feed-freshness"] == 2
    assert not redis_client.exists(keys.feed_freshness(SHOP), keys.index_pending_since(SHOP))
    assert inventory(services, SHOP)["feed-freshness"]["items"] == {}


def test_a_refresh_that_fails_keeps_its_first_arrival_for_the_retry(
        app, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A refresh that fails (Shopify throttled, a worker problem) is retried by RQ: the retry that succeeds must
    be timed from the webhook's arrival, or the slowest updates would vanish from the merchant's freshness."""
    from jobs import catalogue

    services = app.extensions["lumi.services"]
    freshness.note_arrival(redis_client, SHOP, 9, NOW - 30)

    def throttled(*_args: object) -> None:
        raise RuntimeError("Shopify still throttled")

    monkeypatch.setattr(catalogue, "_refresh", throttled)
    with pytest.raises(RuntimeError):
        catalogue.refresh_product(SHOP, 9, ctx=services)
    assert freshness.take_arrival(redis_client, SHOP, 9) == NOW - 30
