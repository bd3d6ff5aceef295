"""Fixtures for the functional tests: a stack whose demo shop is installed and indexed."""

from __future__ import annotations

import meilisearch
import pytest

from feeds.index import ensure_indexes
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.helpers import synced, wait_until


@pytest.fixture
def synced_stack(make_stack, meili_client: meilisearch.Client, start_worker,  # type: ignore[no-untyped-def]
                 request: pytest.FixtureRequest) -> Stack:
    ensure_indexes(meili_client)
    # A Plus-sized bucket refilling fast: these tests are about the index, not about waiting for Shopify.
    # One market each unless the test is marked `with_markets`: most of these tests are about the index and
    # feeds (test_feed_prices.py covers markets), and every extra market makes each catalogue page dearer.
    markets = request.node.get_closest_marker("with_markets") is not None
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 300, "seed": 1, "markets": markets},
                                     OTHER_SHOP: {"products": 80, "seed": 2, "markets": markets}},
                              BUCKET_SIZE=20000, RESTORE_RATE=20000)
    start_worker(stack.env)
    stack.install()  # the install queues the first sync
    wait_until(synced(stack), what="the first sync")
    return stack
