"""The generated catalogue: deterministic per seed, varied like a real shop, lazy enough for 200k products."""

from __future__ import annotations

import re
import time
from collections import Counter

from devshop.catalogue import MAX_VARIANTS, Catalogue
from devshop.testing import DevShopControl, DevShopServer

from .conftest import SHOP, Admin

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27bf]")
ACCENTED = re.compile(r"[À-ÿ]")

PAGE = """query($after: String) {
  products(first: 50, after: $after) {
    nodes { id title handle status vendor tags publishedAt updatedAt descriptionHtml totalInventory
            variants(first: 10) { nodes { id sku price compareAtPrice inventoryQuantity } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def test_same_seed_same_products_other_seed_other_products() -> None:
    a, b, c = (Catalogue(seed, 2000, "EUR", SHOP) for seed in (1, 1, 2))
    for index in (1, 2, 777, 1999, 2000):
        assert a.product(index) == b.product(index)
    assert [a.product(i).title for i in range(1, 40)] != [c.product(i).title for i in range(1, 40)]


def test_same_seed_answers_identically_over_http() -> None:
    config = {"SHOPS": {SHOP: {"products": 120, "seed": 42}}}
    pages = []
    for _ in range(2):
        with DevShopServer(config) as server:
            token = DevShopControl(server.url).issue_token(SHOP)["access_token"]
            admin = Admin(server.admin_base_url, SHOP, token)
            pages.append(admin.data(PAGE))
            admin.session.close()
    assert pages[0] == pages[1]
    assert len(pages[0]["products"]["nodes"]) == 50


def test_catalogue_has_the_variety_of_a_real_shop() -> None:
    cat = Catalogue(seed=1, size=2000, currency="EUR", shop_domain=SHOP)
    products = [cat.product(i) for i in range(1, 2001)]
    status = Counter(p.status for p in products)
    assert 60 <= status["DRAFT"] <= 140  # ~5 %
    assert 30 <= status["ARCHIVED"] <= 90  # ~3 %
    unpublished_active = sum(1 for p in products if p.status == "ACTIVE" and p.published_at is None)
    assert 25 <= unpublished_active <= 95  # ~3 %
    variants = [v for p in products for v in p.variants]
    assert sum(1 for v in variants if v.inventory_quantity == 0) > 100
    assert sum(1 for v in variants if v.inventory_quantity < 0) > 10
    assert sum(1 for v in variants if v.compare_at_price is not None) > 100
    assert any(v.sku is None for v in variants)
    counts = Counter(len(p.variants) for p in products)
    assert counts[1] > 900  # most products have one variant
    assert sum(n for k, n in counts.items() if 2 <= k <= 5) > 300
    assert max(counts) > 20 and max(counts) <= MAX_VARIANTS  # a long tail, capped like Shopify
    titles = [p.title for p in products]
    assert sum(1 for t in titles if CJK.search(t)) > 40
    assert sum(1 for t in titles if EMOJI.search(t)) > 20
    assert sum(1 for t in titles if ACCENTED.search(t)) > 40
    images = Counter(len(p.images) for p in products)
    assert images[0] > 100 and max(images) == 5
    assert all(img.width > 0 and img.height > 0 for p in products for img in p.images)
    assert any(img.alt is None for p in products for img in p.images)
    assert 15 <= len({p.vendor for p in products}) <= 25
    assert 12 <= len({p.product_type for p in products}) <= 18
    assert len({c for p in products for c in p.collections}) >= 25
    assert max(len(p.collections) for p in products) == 4 and min(len(p.collections) for p in products) == 0
    assert any("<p>" in p.description_html for p in products) and any(p.description_html == "" for p in products)
    assert len({p.handle for p in products}) == 2000  # handles are unique


def test_a_200k_catalogue_is_never_materialised(admin: Admin, control: DevShopControl) -> None:
    control.create_shop(SHOP, products=200_000, seed=3)
    started = time.monotonic()
    deep = admin.data('{ product(id: "gid://shopify/Product/8100000199999") { title updatedAt } }')["product"]
    assert deep is not None
    # A range filter on the sort key jumps straight to the end of the list.
    page = admin.data("query($q: String) { products(first: 5, sortKey: UPDATED_AT, query: $q) "
                      "{ nodes { id } pageInfo { hasNextPage } } }", {"q": f"updated_at:>='{deep['updatedAt']}'"})
    ids = [n["id"] for n in page["products"]["nodes"]]
    assert ids[0] == "gid://shopify/Product/8100000199999" and len(ids) == 2
    counts = admin.data("{ capped: productsCount { count precision } "
                        "all: productsCount(limit: null) { count precision } }")
    assert counts["capped"] == {"count": 10000, "precision": "AT_LEAST"}
    assert counts["all"] == {"count": 200_000, "precision": "EXACT"}
    assert time.monotonic() - started < 5
