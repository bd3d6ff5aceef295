"""Shopify's signed timestamps 60 s off Lumi's clock: what a clock skewed by 60 s means to Lumi."""

from __future__ import annotations

from collections.abc import Callable

from devtools.faults import FaultResult
from tests.faults.invariants import assert_whole


def test_a_60_second_skew_is_within_every_tolerance_shopify_allows_except_session_tokens(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("clock-skew")
    outcomes = result.details["outcomes"]
    for skew in ("-60s", "+60s"):
        # App-proxy requests and OAuth callbacks allow ±90 s (as Shopify's own libraries): accepted.
        assert outcomes[f"proxy feed {skew}"] == 200, outcomes
        assert outcomes[f"chat session {skew}"] == 201, outcomes
        assert outcomes[f"oauth callback {skew}"] == 302, outcomes
        # Webhooks carry no timestamp Lumi checks: accepted, and the edit reached the index (assert_whole).
        assert outcomes[f"webhook {skew}"] == 200, outcomes
    # Session tokens: Shopify's libraries allow a few seconds (5-10 s), and so does Lumi (10 s).
    assert outcomes["session token -5s"] == 200 and outcomes["session token +5s"] == 200, outcomes
    # A token from a clock 60 s ahead is not valid yet for 50 s more: refused cleanly with a JSON 401, never a
    # 500. (60 s behind, a one-minute token expires as it arrives: within the 10 s leeway it is still taken.)
    status, code = outcomes["session token +60s"]
    assert status == 401 and code, outcomes
    assert outcomes["session token -60s"] == 200, outcomes
    assert_whole(result)
