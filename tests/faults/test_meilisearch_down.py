"""Meilisearch down in the middle of a sync, and while feeds are requested."""

from __future__ import annotations

from collections.abc import Callable

from devtools.faults import FaultResult
from tests.faults.invariants import assert_whole


def test_meilisearch_down_mid_sync_reschedules_the_sync_which_then_completes(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("meili-down-sync")
    during = result.details["record_during"]
    # Not failed: queued again from its cursor, saying why.
    assert (during["status"], during["phase"]) == ("queued", "retrying"), during
    assert "Meilisearch" in during["error"] and during["cursor"], during
    assert result.details["same_generation"]  # the retry finished the very sync that was interrupted
    assert_whole(result)  # feeds answered throughout (stale while Meilisearch was down)


def test_meilisearch_down_feeds_served_before_keep_answering_and_a_cold_one_is_a_503(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("meili-down-feeds")
    status, retry_after, body = result.details["cold"]
    # A feed nobody asked for before cannot be computed: an honest 503 in JSON, with when to try again.
    assert (status, retry_after) == (503, "30"), result.details["cold"]
    assert body["error"]["code"] == "feed_unavailable", body
    # Every feed the storefront had been requesting kept answering 200 (maybe stale) meanwhile.
    assert_whole(result)
