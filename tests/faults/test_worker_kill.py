"""kill -9 of a worker (and its work horse) in the middle of a sync, and in the middle of a webhook burst."""

from __future__ import annotations

from collections.abc import Callable

from devtools.faults import FaultResult, scaled
from tests.faults.invariants import assert_whole


def test_a_worker_killed_mid_sync_is_resumed_and_the_index_equals_the_catalogue(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("worker-kill-sync")
    killed_at = result.details["killed_at"]
    assert killed_at["status"] == "running" and killed_at["cursor"], killed_at  # the kill landed mid-sync
    assert 0 < killed_at["done"] < killed_at["total"], killed_at
    assert_whole(result)


def test_a_worker_killed_mid_webhook_burst_loses_no_update(run_fault: Callable[[str], FaultResult]) -> None:
    result = run_fault("worker-kill-webhooks")
    assert result.details["updates"] == scaled(200)  # one update each for 200 different products
    assert result.details["at_kill"]["started"] >= 1  # a refresh was in flight when the worker died
    # Every one of the 200 updates is in the index at its latest version: the refresh the kill interrupted too.
    assert_whole(result)
