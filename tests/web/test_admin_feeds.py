"""The admin's feed tools over the real stack: preview + explain, product search, and catalogue freshness."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import meilisearch
import pytest

from devshop.catalogue import LOCATION_ID
from feeds.index import ensure_indexes
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack
from tests.helpers import graphql, indexed, synced, wait_until

LOCATION = f"gid://shopify/Location/{LOCATION_ID}"  # devshop's one location


@pytest.fixture
def shop_stack(make_stack, meili_client: meilisearch.Client, start_worker) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """Two installed, indexed shops; the demo shop has recent, skewed orders (so best sellers exist)."""
    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 120, "seed": 1, "orders": 300, "orders_recent": True},
                                     OTHER_SHOP: {"products": 30, "seed": 2}},
                              BUCKET_SIZE=20000, RESTORE_RATE=20000)
    start_worker(stack.env)
    stack.install(DEMO_SHOP)
    stack.install(OTHER_SHOP)
    wait_until(synced(stack, DEMO_SHOP), what="the demo shop's first sync")
    wait_until(synced(stack, OTHER_SHOP), what="the other shop's first sync")
    yield stack


def storefront(stack: Stack, feed: str, **params: Any) -> list[dict[str, Any]]:
    response = stack.http.get(f"{stack.url}/proxy/feeds/{feed}", params={"shop": DEMO_SHOP, **params}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["products"]


def preview(stack: Stack, feed: str, **params: Any) -> dict[str, Any]:
    response = stack.api("GET", f"/api/feeds/preview/{feed}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def sell_out(stack: Stack, meili: meilisearch.Client, pid: int) -> None:
    """Set every variant of a product to 0 available (the inventory webhook then reindexes it)."""
    token = stack.control.issue_token(DEMO_SHOP, scope="write_products,write_inventory,read_inventory")["access_token"]
    query = "query($id: ID!) { product(id: $id) { variants(first: 100) { nodes { inventoryItem { id } } } } }"
    nodes = graphql(stack, token, query, {"id": f"gid://shopify/Product/{pid}"})["product"]["variants"]["nodes"]
    result = graphql(
        stack, token,
        "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
        "{ userErrors { field message } } }",
        {"input": {"name": "available", "reason": "correction", "ignoreCompareQuantity": True,
                   "quantities": [{"inventoryItemId": n["inventoryItem"]["id"], "locationId": LOCATION, "quantity": 0}
                                  for n in nodes]}},
    )
    assert result["inventorySetQuantities"]["userErrors"] == []
    wait_until(lambda: not indexed(meili, DEMO_SHOP)[pid]["available"], timeout=20, what="sold out in the index")


def test_preview_of_best_sellers_is_the_storefront_feed_with_its_reasons(
        shop_stack: Stack, meili_client: meilisearch.Client) -> None:
    docs = indexed(meili_client, DEMO_SHOP)
    if not any(not doc["available"] and doc["units_30d"] for doc in docs.values()):
        top = max((doc for doc in docs.values() if doc["available"]), key=lambda doc: doc["units_30d"])
        sell_out(shop_stack, meili_client, top["product_id"])
        docs = indexed(meili_client, DEMO_SHOP)
    # Pin a product that sold nothing: only the pin can put it in best-sellers, and first. Pin one the merchant
    # also excluded: the exclusion wins, and the preview says why it is missing.
    unsold, excluded = [pid for pid, doc in sorted(docs.items()) if doc["available"] and not doc["units_30d"]][:2]
    response = shop_stack.api("PATCH", "/api/settings", json={"pinned_products": {"best-sellers": [unsold, excluded]},
                                                              "excluded_products": [excluded]})
    assert response.status_code == 200, response.text

    shown = preview(shop_stack, "best-sellers", limit=50)
    products = storefront(shop_stack, "best-sellers", limit=50)
    assert shown["feed"] == "best-sellers"
    assert shown["products"] == products  # the same cards, in the same order
    assert [e["id"] for e in shown["explain"]] == [p["id"] for p in products]
    assert [e["rank"] for e in shown["explain"]] == list(range(1, len(products) + 1))

    assert str(excluded) not in [p["id"] for p in products]
    assert shown["excluded"] == [{"id": str(excluded), "reasons": ["You excluded this product from every feed"]}]
    first = shown["explain"][0]
    assert first["id"] == str(unsold) and first["signals"]["pinned"] is True
    assert any("Pinned" in reason for reason in first["reasons"]), first
    for entry in shown["explain"]:
        doc = docs[int(entry["id"])]
        signals = entry["signals"]
        assert set(signals) == {"units_7d", "units_30d", "trending_score", "discount_pct", "restocked_at", "pinned",
                                "demoted", "available"}
        assert (signals["units_7d"], signals["units_30d"]) == (doc["units_7d"], doc["units_30d"])
        assert signals["trending_score"] == pytest.approx(doc["trend_score"])
        assert signals["discount_pct"] == doc["discount_pct"] and signals["available"] is doc["available"]
        assert entry["reasons"] and all(isinstance(r, str) and r for r in entry["reasons"])
        if not signals["pinned"]:
            assert any(f"{doc['units_30d']} units sold in the last 30 days" in r for r in entry["reasons"]), entry

    # The shop demotes out-of-stock products (the default): on the page where in-stock best sellers end, each
    # out-of-stock one says so, and comes after every in-stock one.
    in_stock = sum(1 for doc in docs.values() if doc["available"] and doc["units_30d"]) + 1  # + the pinned one
    page = in_stock // 50 + 1
    shown = preview(shop_stack, "best-sellers", limit=50, page=page)
    assert shown["products"] == storefront(shop_stack, "best-sellers", limit=50, page=page)
    assert [e["rank"] for e in shown["explain"]] == list(range((page - 1) * 50 + 1, (page - 1) * 50 + 1 +
                                                               len(shown["products"])))
    demoted = [e for e in shown["explain"] if not e["signals"]["available"]]
    assert demoted, "the demo catalogue should have an out-of-stock best seller"
    for entry in demoted:
        assert entry["signals"]["demoted"] is True and entry["signals"]["pinned"] is False
        assert any("Out of stock" in r and "demoted" in r for r in entry["reasons"]), entry
    for entry in shown["explain"]:
        if entry["signals"]["available"]:
            assert entry["signals"]["demoted"] is False
            assert any("In stock" in r for r in entry["reasons"]), entry
    available = [e["signals"]["available"] for e in shown["explain"]]
    assert available == sorted(available, reverse=True)


def test_preview_takes_the_storefront_parameters_and_refuses_bad_ones(shop_stack: Stack,
                                                                     meili_client: meilisearch.Client) -> None:
    docs = indexed(meili_client, DEMO_SHOP)
    collection = next(c for doc in docs.values() for c in doc["collections"])
    shown = preview(shop_stack, "collection", collection=collection, limit=5)
    assert shown["feed"] == f"collection/{collection}"
    assert shown["products"] == storefront(shop_stack, f"collection/{collection}", limit=5)
    pid = next(iter(sorted(docs)))
    similar = preview(shop_stack, "similar", product=pid, limit=5)
    assert similar["products"] == storefront(shop_stack, f"similar/{pid}", limit=5)
    assert all(any("Similarity" in r for r in e["reasons"]) for e in similar["explain"])
    found = preview(shop_stack, "search", q="shirt", limit=5)
    assert found["products"] == storefront(shop_stack, "search", q="shirt", limit=5)

    unknown = shop_stack.api("GET", "/api/feeds/preview/staff-picks")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_feed"
    for feed, param in (("collection", "collection"), ("similar", "product")):
        missing = shop_stack.api("GET", f"/api/feeds/preview/{feed}")
        assert missing.status_code == 400 and missing.json()["error"]["details"] == {"param": param}
    bad = shop_stack.api("GET", "/api/feeds/preview/best-sellers", params={"limit": 500})
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"param": "limit"}
    assert shop_stack.http.get(f"{shop_stack.url}/api/feeds/preview/best-sellers", timeout=10).status_code == 401


def test_preview_still_works_with_feeds_off_and_says_so(shop_stack: Stack) -> None:
    assert shop_stack.api("PATCH", "/api/settings", json={"feeds_enabled": False}).status_code == 200
    shown = preview(shop_stack, "new-arrivals", limit=3)
    assert shown["feeds_enabled"] is False and len(shown["products"]) == 3


def test_product_search_finds_only_this_shops_products(shop_stack: Stack, meili_client: meilisearch.Client) -> None:
    mine, theirs = indexed(meili_client, DEMO_SHOP), indexed(meili_client, OTHER_SHOP)
    target = next(iter(mine.values()))
    response = shop_stack.api("GET", "/api/products/search", params={"q": target["title"]})
    assert response.status_code == 200, response.text
    products = response.json()["products"]
    assert products and products[0]["id"] == str(target["product_id"])
    assert set(products[0]) == {"id", "title", "handle", "image", "available"}
    assert products[0]["handle"] == target["handle"] and products[0]["available"] is target["available"]

    # By ids (the titles of products already excluded or pinned): this shop's documents only, whatever the other
    # shop holds under the same ids.
    some = list(mine.values())[:3]
    by_ids = shop_stack.api("GET", "/api/products/search", params={"ids": ",".join(str(d["product_id"]) for d in some)})
    assert by_ids.status_code == 200, by_ids.text
    assert {(p["id"], p["title"]) for p in by_ids.json()["products"]} == {(str(d["product_id"]), d["title"])
                                                                         for d in some}
    for bad in ("", "1,x", ",".join(["1"] * 21), "1;2"):
        refused = shop_stack.api("GET", "/api/products/search", params={"ids": bad})
        assert refused.status_code == 400 and refused.json()["error"]["details"]["param"] == "ids", (bad, refused.text)

    # Every query, even one that only the other shop's titles match, stays in this shop (devshop numbers both
    # shops' products alike, so a product is told apart by its id *and* its title and handle).
    my_titles = {doc["title"] for doc in mine.values()}
    only_theirs = [doc for doc in theirs.values() if doc["title"] not in my_titles][:5]
    assert only_theirs
    for doc in only_theirs:
        for q in (doc["title"], doc["handle"], ""):
            found = shop_stack.api("GET", "/api/products/search", params={"q": q}).json()["products"]
            assert len(found) <= 20
            for product in found:
                own = mine[int(product["id"])]
                assert (product["title"], product["handle"]) == (own["title"], own["handle"]), q
            assert doc["title"] not in {p["title"] for p in found}, q


def test_freshness_measures_webhook_to_feed_for_real_product_updates(shop_stack: Stack) -> None:
    empty = shop_stack.api("GET", "/api/freshness")
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"p50_s": None, "p95_s": None, "samples": 0, "window_s": 86400}

    first = storefront(shop_stack, "new-arrivals", limit=3)
    token = shop_stack.control.issue_token(DEMO_SHOP, scope="write_products")["access_token"]
    for number, product in enumerate(first[:2]):
        graphql(shop_stack, token,
                "mutation($p: ProductUpdateInput!) { productUpdate(product: $p) { product { id } } }",
                {"p": {"id": f"gid://shopify/Product/{product['id']}", "title": f"Fresh title {number}"}})
    wait_until(lambda: {p["title"] for p in storefront(shop_stack, "new-arrivals", limit=3)} >=
               {"Fresh title 0", "Fresh title 1"}, timeout=30, what="the feed to show the new titles")
    wait_until(lambda: shop_stack.api("GET", "/api/freshness").json()["samples"] >= 2, timeout=10,
               what="freshness samples")
    body = shop_stack.api("GET", "/api/freshness").json()
    assert body["window_s"] == 86400 and body["samples"] >= 2
    assert 0 < body["p50_s"] <= body["p95_s"] < 30
    # The other shop's clock is its own.
    other = shop_stack.api("GET", "/api/freshness", shop=OTHER_SHOP).json()
    assert other["samples"] == 0
