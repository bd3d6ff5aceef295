"""Webhooks duplicated, reordered and delayed past a full sync."""

from __future__ import annotations

from collections.abc import Callable

from devtools.faults import FaultResult, scaled
from tests.faults.invariants import assert_whole


def test_duplicated_reordered_and_late_webhooks_leave_the_latest_version_of_each_product(
    run_fault: Callable[[str], FaultResult],
) -> None:
    # Each product edited twice; the newer delivery sent three times at once, then the older one after it, then
    # the older ones again after a full sync; and an old update of a product deleted meanwhile.
    result = run_fault("webhook-disorder")
    assert result.details["edited"] == scaled(10)
    # The index holds the second edit of every product, and the deleted product is not revived.
    assert_whole(result)
