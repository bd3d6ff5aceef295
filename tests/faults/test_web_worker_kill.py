"""kill -9 of a gunicorn worker while feed requests are in flight: the master replaces it, feeds keep answering."""

from __future__ import annotations

from collections.abc import Callable

from devtools.faults import FaultResult
from tests.faults.invariants import assert_whole


def test_a_killed_web_worker_costs_at_most_the_requests_it_was_serving(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("web-worker-kill")
    killed, workers_after = result.details["replaced"]
    assert killed not in workers_after and len(workers_after) == 2  # the master started a new worker
    # Unavoidable: a request the killed process was serving gets no answer (a connection reset, never an HTTP
    # error); each traffic client has one request in flight at a time, so at most one each.
    assert result.honest_errors <= result.details["clients"], result
    assert all(failure.status == 0 for failure in result.details["during"].failures), result
    assert result.details["after"].errors == 0, result  # from the replacement on, every request is answered
    assert_whole(result)
