"""What every fault test checks after its fault."""

from __future__ import annotations

from devtools.faults import FaultResult


def assert_whole(result: FaultResult) -> None:
    """The invariants after every fault: the index equals the published catalogue at its latest versions, the
    sync record is completed with the index's count, nothing is left pending; and every storefront request made
    while the fault lasted was answered, bar the errors the scenario names as unavoidable."""
    assert result.differences == [], result
    assert result.errors == result.honest_errors, result
    assert result.served > 0, result
    assert result.details["after_recovery"].errors == 0, result
