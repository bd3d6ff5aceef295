"""Shopify 5xx answers, dropped connections and a THROTTLED storm during a paged sync."""

from __future__ import annotations

from collections.abc import Callable

from devtools.faults import FaultResult, scaled
from tests.faults.invariants import assert_whole


def test_a_paged_sync_through_5xx_drops_and_a_throttled_storm_completes_with_every_product(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("shopify-storm")
    details = result.details
    # Every fault armed (500, 502, 503, dropped connection, twice each) met a request of the sync.
    assert details["armed"] == details["faults_served"] == 8 * scaled(1), details
    # Another app drained the shop's bucket until the sync, still THROTTLED after its client's waits, gave up
    # once: it was rescheduled from its cursor, not failed.
    (gave_up,) = details["gave_up"]
    assert gave_up["status"] == "queued" and "ShopifyThrottled" in gave_up["error"], gave_up
    assert details["retried"] >= 1 and details["throttled"] > 0, details
    assert_whole(result)
