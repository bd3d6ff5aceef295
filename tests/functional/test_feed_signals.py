"""Sales signals over the real stack: a shop with recent, skewed orders fills best-sellers and trending differently."""

from __future__ import annotations

from typing import Any

import meilisearch

from feeds.index import ensure_indexes
from tests.conftest import DEMO_SHOP, Stack
from tests.helpers import indexed, synced, wait_until


def feed(stack: Stack, name: str) -> list[dict[str, Any]]:
    response = stack.http.get(f"{stack.url}/proxy/feeds/{name}", params={"shop": DEMO_SHOP, "limit": 10}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["products"]


def test_best_sellers_and_trending_come_from_recent_orders(make_stack, start_worker,  # type: ignore[no-untyped-def]
                                                           meili_client: meilisearch.Client) -> None:
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 200, "seed": 1, "orders": 400, "orders_recent": True}},
                              BUCKET_SIZE=20000, RESTORE_RATE=20000)
    start_worker(stack.env)
    stack.install()  # the install queues the first sync, which computes the sales signals
    wait_until(synced(stack), what="the first sync")
    docs = indexed(meili_client, DEMO_SHOP)
    assert any(d["units_30d"] for d in docs.values()), "no sales signals indexed"

    best = feed(stack, "best-sellers")
    trending = feed(stack, "trending")
    assert best and trending
    best_ids, trending_ids = [int(p["id"]) for p in best], [int(p["id"]) for p in trending]
    assert all(docs[pid]["units_30d"] > 0 for pid in best_ids)
    assert all(docs[pid]["units_7d"] > 0 for pid in trending_ids)

    # Default settings demote out-of-stock products: in stock first, then by the feed's own order.
    for ids in (best_ids, trending_ids):
        available = [docs[pid]["available"] for pid in ids]
        assert available == sorted(available, reverse=True)
    in_stock_best = [docs[pid]["units_30d"] for pid in best_ids if docs[pid]["available"]]
    assert in_stock_best and in_stock_best == sorted(in_stock_best, reverse=True)
    in_stock_trending = [docs[pid]["trend_score"] for pid in trending_ids if docs[pid]["available"]]
    assert in_stock_trending and in_stock_trending == sorted(in_stock_trending, reverse=True)

    # Steady best sellers lead one feed, products speeding up lead the other.
    assert best_ids != trending_ids
    assert best_ids[0] != trending_ids[0]
    assert docs[trending_ids[0]]["trend_score"] > docs[best_ids[0]]["trend_score"]
    assert docs[best_ids[0]]["units_30d"] > docs[trending_ids[0]]["units_30d"]
