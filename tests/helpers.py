"""Helpers shared by the functional tests: waiting, reading the index, listing what devshop publishes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import meilisearch
import requests

from feeds.documents import product_id
from feeds.index import PRODUCTS_INDEX
from feeds.writer import shop_filter
from jobs.sync import read_record
from shopify import queries
from shopify.admin import connection_nodes
from tests.conftest import DEMO_SHOP, Stack


def wait_until(predicate: Callable[[], bool], timeout: float = 60, interval: float = 0.1, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def synced(stack: Stack, shop: str = DEMO_SHOP) -> Callable[[], bool]:
    def check() -> bool:
        record = read_record(stack.services.redis, shop)
        assert record.get("status") != "failed", record
        return record.get("status") == "completed"

    return check


def indexed(meili: meilisearch.Client, shop: str) -> dict[int, dict[str, Any]]:
    index = meili.index(PRODUCTS_INDEX)
    out: dict[int, dict[str, Any]] = {}
    offset = 0
    while True:
        page = index.get_documents({"filter": shop_filter(shop), "limit": 1000, "offset": offset})
        for doc in page.results:
            data = dict(doc)
            data.pop("_Document__doc", None)
            assert data["product_id"] not in out, f"product {data['product_id']} indexed twice"
            out[data["product_id"]] = data
        offset += 1000
        if offset >= page.total:
            return out


def listed_products(stack: Stack, shop: str = DEMO_SHOP) -> dict[int, dict[str, Any]]:
    client = stack.services.tokens.admin_client(shop)
    products: dict[int, dict[str, Any]] = {}
    for page in client.paginate(queries.PRODUCTS_PAGE, {"query": "status:active"}, ["products"], page_size=12):
        for product in connection_nodes(page):
            if product["publishedAt"]:
                products[product_id(product["id"])] = product
    return products


def graphql(stack: Stack, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    from shopify.version import API_VERSION

    url = stack.devshop.admin_base_url.format(shop=DEMO_SHOP) + f"/admin/api/{API_VERSION}/graphql.json"
    response = requests.post(url, json={"query": query, "variables": variables},
                             headers={"X-Shopify-Access-Token": token}, timeout=30)
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]
