"""Fault tests: each runs one devtools.faults scenario on a fresh stack of its own (Redis, Meilisearch, devshop,
gunicorn, RQ workers) while traffic runs, then checks what it returned. The stack's logs stay in the test's
tmp_path (kept by pytest) for a failure to be read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.faults import FaultResult, run_scenario


@pytest.fixture
def run_fault(tmp_path: Path) -> Callable[[str], FaultResult]:
    def run(name: str) -> FaultResult:
        return run_scenario(name, tmp_path / name)

    return run


# The slowest tests here, longest first: started first, the others run beside them under xdist, not after them.
_LONGEST_FIRST = ("test_a_worker_killed_mid_webhook_burst_loses_no_update",  # ~100 s: RQ finds the dead job
                  "test_a_paged_sync_through_5xx_drops_and_a_throttled_storm_completes_with_every_product")


@pytest.hookimpl(trylast=True)  # after any shuffling plugin (pytest-randomly)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Reorder this folder's tests among their own places only (the rest of a session keeps its order)."""
    here = Path(__file__).parent
    places = [n for n, item in enumerate(items) if Path(str(item.path)).parent == here]

    def rank(item: pytest.Item) -> int:
        return _LONGEST_FIRST.index(item.name) if item.name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    ours = sorted((items[n] for n in places), key=rank)  # stable: the others keep their order
    for n, item in zip(places, ours, strict=True):
        items[n] = item
