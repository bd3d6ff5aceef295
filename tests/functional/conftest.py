"""Fixtures for the functional tests: a stack whose demo shop is installed and indexed."""

from __future__ import annotations

import meilisearch
import pytest

from feeds.index import ensure_indexes
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.helpers import synced, wait_until


@pytest.fixture
def synced_stack(make_stack, meili_client: meilisearch.Client, start_worker) -> Stack:  # type: ignore[no-untyped-def]
    ensure_indexes(meili_client)
    # A Plus-sized bucket refilling fast: these tests are about the index, not about waiting for Shopify.
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 300, "seed": 1}, OTHER_SHOP: {"products": 80, "seed": 2}},
                              BUCKET_SIZE=20000, RESTORE_RATE=20000)
    start_worker(stack.env)
    stack.install()  # the install queues the first sync
    wait_until(synced(stack), what="the first sync")
    return stack
