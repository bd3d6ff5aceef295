"""Bulk query operations: run, poll, download the JSONL, cancel, fail with partial data, the finish webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devshop.bulk import check_query
from devshop.catalogue import Catalogue
from devshop.graphql_api import schema
from devshop.testing import DevShopControl, DevShopServer

from .conftest import ALL_SCOPES, SHOP, Admin, WebhookSink

RUN = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status type query createdAt completedAt objectCount rootObjectCount url }
    userErrors { field message code }
  }
}"""
CANCEL = """mutation($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}"""
CURRENT = """{ currentBulkOperation { id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url
  partialDataUrl type } }"""
BY_ID = """query($id: ID!) { node(id: $id) { ... on BulkOperation { id status errorCode objectCount rootObjectCount
  fileSize url partialDataUrl } } }"""
ACTIVE_WITH_VARIANTS = """{
  products(query: "status:active") {
    edges { node { id title variants { edges { node { id price } } } } }
  }
}"""
PAGE = """query($after: String) {
  products(first: 8, after: $after, query: "status:active") {
    pageInfo { hasNextPage endCursor }
    nodes { id title variants(first: 100) { nodes { id price } } }
  }
}"""
TERMINAL = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")
SECRET = "bulk-webhook-secret"


@pytest.fixture
def shop500() -> Iterator[tuple[DevShopServer, DevShopControl, Admin]]:
    with DevShopServer({"SHOPS": {SHOP: {"products": 500, "seed": 11, "orders": 40}}}) as server:
        control = DevShopControl(server.url)
        control.set_throttle(SHOP, 1_000_000, 1_000_000)  # the comparison pages through every product
        token = control.issue_token(SHOP, scope="read_products")["access_token"]
        admin = Admin(server.admin_base_url, SHOP, token)
        yield server, control, admin
        admin.session.close()


def run_bulk(admin: Admin, query: str) -> dict[str, Any]:
    body = admin.gql(RUN, {"query": query})
    assert "errors" not in body, body
    return body["data"]["bulkOperationRunQuery"]


def poll_current(admin: Admin, timeout: float = 30.0) -> dict[str, Any]:
    """Poll currentBulkOperation, as an app does, until the operation has finished."""
    deadline = time.monotonic() + timeout
    while True:
        current = admin.data(CURRENT)["currentBulkOperation"]
        if current["status"] in TERMINAL:
            return current
        assert time.monotonic() < deadline, f"bulk operation still {current['status']} after {timeout} s"
        time.sleep(0.05)


def wait_status(admin: Admin, operation_id: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        node = admin.data(BY_ID, {"id": operation_id})["node"]
        if node["status"] == status:
            return node
        assert time.monotonic() < deadline, f"{operation_id} is {node['status']}, never {status}"
        time.sleep(0.02)


def download(url: str) -> list[dict[str, Any]]:
    with requests.get(url, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/jsonl")
        return [json.loads(line) for line in response.iter_lines() if line]


def rebuild(lines: list[dict[str, Any]], child_key: str = "variants") -> dict[str, dict[str, Any]]:
    """Products by id with their children, joined by __parentId; every child comes after its parent."""
    products: dict[str, dict[str, Any]] = {}
    for line in lines:
        parent = line.pop("__parentId", None)
        if parent is None:
            products[line["id"]] = {**line, child_key: []}
        else:
            assert parent in products, f"{line['id']} comes before its parent {parent}"
            products[parent][child_key].append(line)
    return products


def page_all(admin: Admin) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = admin.data(PAGE, {"after": after})["products"]
        out += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def test_bulk_export_equals_paging_active_products(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    _, control, admin = shop500
    body = admin.gql(RUN, {"query": ACTIVE_WITH_VARIANTS})
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10  # a mutation: 10 points, the export is free
    started = body["data"]["bulkOperationRunQuery"]
    assert started["userErrors"] == []
    op = started["bulkOperation"]
    assert op["id"].startswith("gid://shopify/BulkOperation/")
    assert op["status"] == "CREATED" and op["type"] == "QUERY" and op["query"] == ACTIVE_WITH_VARIANTS
    assert op["completedAt"] is None and op["objectCount"] == "0" and op["url"] is None

    done = poll_current(admin)
    assert done["id"] == op["id"] and done["status"] == "COMPLETED" and done["errorCode"] is None
    assert done["completedAt"] and done["partialDataUrl"] is None and done["type"] == "QUERY"
    lines = download(done["url"])
    assert done["objectCount"] == str(len(lines))
    with requests.get(done["url"], timeout=30) as whole:
        assert int(done["fileSize"]) == len(whole.content)
    assert all(set(line) <= {"id", "title", "__parentId"} | {"price"} for line in lines)
    bulk = rebuild(lines)
    assert done["rootObjectCount"] == str(len(bulk))

    paged = page_all(admin)
    assert 400 < len(paged) < 500  # status:active really filtered
    assert list(bulk) == [p["id"] for p in paged]  # same products, same order
    for product in paged:
        exported = bulk[product["id"]]
        assert exported["title"] == product["title"]
        assert [(v["id"], v["price"]) for v in exported["variants"]] == [
            (v["id"], v["price"]) for v in product["variants"]["nodes"]]
    assert node_by_id(admin, op["id"])["url"] == done["url"]
    assert control.bulk_operations(SHOP)[-1]["status"] == "COMPLETED"


def node_by_id(admin: Admin, operation_id: str) -> dict[str, Any]:
    return admin.data(BY_ID, {"id": operation_id})["node"]


def test_sort_key_reverse_and_nested_connections(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    _, _, admin = shop500
    query = """{
      products(sortKey: TITLE, reverse: true, query: "product_type:Mug", first: 3) {
        edges { node {
          id handle
          featuredMedia { id mediaContentType ... on MediaImage { image { url } } }
          media { edges { node { id mediaContentType } } }
          collections(first: 1) { edges { node { id handle } } }
        } }
      }
    }"""
    assert run_bulk(admin, query)["userErrors"] == []
    done = poll_current(admin)
    assert done["status"] == "COMPLETED"
    lines = download(done["url"])
    roots = [line for line in lines if "__parentId" not in line]
    expected = admin.data('{ products(first: 45, sortKey: TITLE, reverse: true, query: "product_type:Mug") '
                          '{ nodes { id featuredMedia { id } media(first: 5) { nodes { id } } '
                          'collections(first: 4) { nodes { id } } } } }')["products"]["nodes"]
    assert 3 < len(expected) < 45  # all of them, in one page
    assert [r["id"] for r in roots] == [p["id"] for p in expected]  # `first: 3` ignored, order kept
    children: dict[str, list[str]] = {}
    for line in lines:
        if "__parentId" in line:
            children.setdefault(line["__parentId"], []).append(line["id"])
    for product, root in zip(expected, roots, strict=True):
        assert "media" not in root and "collections" not in root  # connections become lines, not fields
        featured = root["featuredMedia"]
        if product["featuredMedia"] is None:
            assert featured is None
        else:
            assert featured["id"] == product["featuredMedia"]["id"] and featured["mediaContentType"] == "IMAGE"
            assert featured["image"]["url"].startswith("https://cdn.shopify.com/")
        assert children.get(product["id"], []) == [m["id"] for m in product["media"]["nodes"]] + [
            c["id"] for c in product["collections"]["nodes"]]


def test_lumis_own_bulk_documents_run(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    from shopify.queries import BULK_RUN, BULK_STATUS, PRODUCTS_BULK

    _, _, admin = shop500
    started = admin.data(BULK_RUN, {"query": PRODUCTS_BULK})["bulkOperationRunQuery"]
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    done = poll_current(admin)
    status = admin.data(BULK_STATUS, {"id": started["bulkOperation"]["id"]})["node"]
    assert status["status"] == "COMPLETED" and status["url"] == done["url"]
    kinds = {line["id"].split("/")[3] for line in download(status["url"])}
    assert kinds == {"Product", "ProductVariant", "Collection"}


def test_one_running_query_per_shop_and_cancel(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    _, control, admin = shop500
    control.set_bulk_delay(2.0)  # 2 s per 1,000 objects: the 2,600-object export takes ~5 s
    first = run_bulk(admin, ACTIVE_WITH_VARIANTS)["bulkOperation"]
    running = wait_status(admin, first["id"], "RUNNING")
    assert int(running["objectCount"]) < 2000

    second = run_bulk(admin, "{ products { edges { node { id } } } }")
    assert second["bulkOperation"] is None
    assert second["userErrors"] == [{
        "field": None, "code": "OPERATION_IN_PROGRESS",
        "message": f"A bulk query operation for this app and shop is already in progress: {first['id']}."}]

    canceling = admin.data(CANCEL, {"id": first["id"]})["bulkOperationCancel"]
    assert canceling == {"bulkOperation": {"id": first["id"], "status": "CANCELING"}, "userErrors": []}
    canceled = wait_status(admin, first["id"], "CANCELED")
    assert canceled["url"] is None and canceled["partialDataUrl"] is None and canceled["errorCode"] is None
    again = admin.data(CANCEL, {"id": first["id"]})["bulkOperationCancel"]
    assert again["userErrors"] == [{"field": None,
                                    "message": "A bulk operation cannot be canceled when it is canceled"}]
    missing = admin.data(CANCEL, {"id": "gid://shopify/BulkOperation/1"})["bulkOperationCancel"]
    assert missing == {"bulkOperation": None,
                       "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}]}

    control.set_bulk_delay(0)
    assert run_bulk(admin, "{ products { edges { node { id } } } }")["userErrors"] == []  # free again
    done = poll_current(admin)
    assert done["status"] == "COMPLETED" and done["rootObjectCount"] == "500"
    assert [o["status"] for o in control.bulk_operations(SHOP)] == ["CANCELED", "COMPLETED"]


def test_failure_midway_leaves_partial_data(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    _, control, admin = shop500
    control.inject_fault("bulk_fail", shop=SHOP)
    assert admin.data("{ shop { name } }")["shop"]["name"]  # GraphQL requests do not consume a bulk fault
    run_bulk(admin, ACTIVE_WITH_VARIANTS)
    failed = poll_current(admin)
    assert failed["status"] == "FAILED" and failed["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert failed["url"] is None and failed["fileSize"] is None and failed["partialDataUrl"]
    assert failed["rootObjectCount"] == "250"  # midway: half of the shop's 500 products
    partial = download(failed["partialDataUrl"])
    assert str(len(partial)) == failed["objectCount"]
    assert len(rebuild(partial)) == 250  # whole lines, every child after its parent

    control.inject_fault("bulk_fail", shop=SHOP, after=0)
    run_bulk(admin, ACTIVE_WITH_VARIANTS)
    nothing = poll_current(admin)
    assert nothing["status"] == "FAILED" and nothing["partialDataUrl"] is None and nothing["objectCount"] == "0"

    run_bulk(admin, ACTIVE_WITH_VARIANTS)  # faults are used up
    assert poll_current(admin)["status"] == "COMPLETED"
    assert control.clear_faults()["pending"] == []


def test_nothing_matched_completes_without_a_file(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    _, _, admin = shop500
    run_bulk(admin, '{ products(query: "title:zzz-no-such-product") { edges { node { id } } } }')
    done = poll_current(admin)
    assert done["status"] == "COMPLETED" and done["objectCount"] == "0" and done["rootObjectCount"] == "0"
    assert done["url"] is None and done["fileSize"] is None and done["partialDataUrl"] is None


def test_missing_scope_fails_with_access_denied(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    _, _, admin = shop500  # read_products only
    run_bulk(admin, "{ orders { edges { node { id name lineItems { edges { node { id title } } } } } } }")
    failed = poll_current(admin)
    assert failed["status"] == "FAILED" and failed["errorCode"] == "ACCESS_DENIED"
    assert failed["partialDataUrl"] is None and failed["objectCount"] == "0"


def test_orders_and_collections_roots(shop500: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    server, control, _ = shop500
    token = control.issue_token(SHOP, scope=ALL_SCOPES)["access_token"]
    admin = Admin(server.admin_base_url, SHOP, token)
    run_bulk(admin, "{ orders { edges { node { id name lineItems { edges { node { id quantity } } } } } } }")
    orders = rebuild(download(poll_current(admin)["url"]), "lineItems")
    assert len(orders) == 40 and all(o["lineItems"] for o in orders.values())
    run_bulk(admin, "{ collections { edges { node { id title products { edges { node { id } } } } } } }")
    collections = rebuild(download(poll_current(admin)["url"]), "products")
    assert len(collections) == 30
    first = next(iter(collections.values()))
    expected = admin.data('query($id: ID!) { collection(id: $id) { productsCount { count } } }',
                          {"id": first["id"]})["collection"]["productsCount"]["count"]
    assert len(first["products"]) == expected
    admin.session.close()


def test_node_and_current_before_any_operation(admin: Admin) -> None:
    assert admin.data(CURRENT)["currentBulkOperation"] is None
    assert admin.data("{ currentBulkOperation(type: MUTATION) { id } }")["currentBulkOperation"] is None
    assert admin.data(BY_ID, {"id": "gid://shopify/BulkOperation/4400000000999"})["node"] is None


def test_unknown_download_token_is_404(devshop: DevShopServer) -> None:
    response = requests.get(f"{devshop.url}/_bulk/not-a-token.jsonl", timeout=10)
    assert response.status_code == 404


@pytest.mark.parametrize(("query", "message"), [
    ("{ shop { name } }", "Bulk queries must contain at least one connection."),
    ('{ node(id: "gid://shopify/Product/1") { id } }', "Bulk queries cannot contain a top level `node` field."),
    ("{ products { nodes { id } } }",
     "All connection fields in a bulk query must select their contents using 'edges' > 'node', e.g: 'products { "
     "edges { node {'. Selecting via 'nodes' is not supported. Invalid connection fields: 'products'."),
    ("{ collections { edges { node { id products { edges { node { id variants { edges { node { id "
     "inventoryItem { inventoryLevels { edges { node { id } } } } } } } } } } } } } }",
     "Bulk queries cannot contain connections with a nesting depth greater than 2."),
    ("{ products { edges { node { id variants { edges { node { id } } } media { edges { node { id } } } "
     "images { edges { node { id } } } collections { edges { node { id } } } } } } collections { edges { node { id "
     "} } } }", "Bulk queries cannot contain more than 5 connections."),
    ("{ products { edges { node { title variants { edges { node { id } } } } } } }",
     "The parent 'node' field for a nested connection must select the 'id' field without an alias and must be of "
     "'ID' return type. Connection fields without 'id': products."),
    ("mutation { productDelete(input: {id: \"gid://shopify/Product/1\"}) { deletedProductId } }",
     "Invalid operation type. Only `query` operations are supported."),
    ("{ products { edges { node { id", "Invalid bulk query: syntax error, unexpected end of file"),
    ("", "Invalid bulk query: syntax error, unexpected end of file"),
    ("{ products { edges { node { id colour } } } }",
     "Invalid bulk query: Field 'colour' doesn't exist on type 'Product'"),
])
def test_invalid_bulk_queries_are_user_errors(query: str, message: str) -> None:
    problems, checked = check_query(query, schema())
    assert checked is None
    assert message in [p["message"] for p in problems]
    assert all(p["field"] == ["query"] and p["code"] == "INVALID" for p in problems)


def test_invalid_bulk_query_over_http(admin: Admin) -> None:
    answer = run_bulk(admin, "{ shop { name } }")
    assert answer == {"bulkOperation": None, "userErrors": [
        {"field": ["query"], "message": "Bulk queries must contain at least one connection.", "code": "INVALID"}]}
    assert admin.data(CURRENT)["currentBulkOperation"] is None


def test_streaming_catalogue_matches_the_cached_one() -> None:
    cat = Catalogue(5, 3000, "EUR", SHOP)
    view = cat.streaming()
    for index in (1, 2, 777, 2999, 3000):
        assert view.product(index) == cat.product(index) and view.core(index) == cat.core(index)
    assert view.product(3001) is None and view.live_count() == 3000


def signed(body: bytes, signature: str) -> bool:
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, signature)


@pytest.mark.parametrize("subscribed", [False, True])
def test_finish_webhook(sink: WebhookSink, tmp_path: Path, subscribed: bool) -> None:
    toml = tmp_path / "shopify.app.toml"
    extra = '\n  [[webhooks.subscriptions]]\n  topics = ["bulk_operations/finish"]\n  uri = "/webhooks/bulk"\n'
    toml.write_text('client_id = "lumi-dev-client-id"\n[webhooks]\napi_version = "2025-01"\n'
                    '  [[webhooks.subscriptions]]\n  topics = ["products/update"]\n  uri = "/webhooks"\n'
                    + (extra if subscribed else ""), encoding="utf-8")
    config = {"API_SECRET": SECRET, "APP_URL": sink.url, "APP_TOML": str(toml),
              "SHOPS": {SHOP: {"products": 60, "seed": 2, "orders": 0}}}
    with DevShopServer(config) as server:
        control = DevShopControl(server.url)
        admin = Admin(server.admin_base_url, SHOP, control.issue_token(SHOP, scope="read_products")["access_token"])
        op = run_bulk(admin, ACTIVE_WITH_VARIANTS)["bulkOperation"]
        done = poll_current(admin)
        hook = sink.next()
        assert hook.path == ("/webhooks/bulk" if subscribed else "/webhooks")
        assert hook.headers["X-Shopify-Topic"] == "bulk_operations/finish"
        assert hook.headers["X-Shopify-Shop-Domain"] == SHOP
        assert signed(hook.body, hook.headers["X-Shopify-Hmac-Sha256"])
        assert json.loads(hook.body) == {"admin_graphql_api_id": op["id"], "completed_at": done["completedAt"],
                                         "created_at": done["createdAt"], "error_code": None,
                                         "status": "completed", "type": "query"}

        control.inject_fault("bulk_fail", shop=SHOP)
        run_bulk(admin, ACTIVE_WITH_VARIANTS)
        assert poll_current(admin)["status"] == "FAILED"
        payload = json.loads(sink.next().body)
        assert payload["status"] == "failed" and payload["error_code"] == "internal_server_error"
        assert control.wait_for_deliveries(SHOP, "bulk_operations/finish", 2)[-1]["ok"]
        admin.session.close()


@pytest.mark.slow
def test_100k_products_stream_with_flat_memory() -> None:
    shop = "big-bulk.myshopify.com"
    with DevShopServer({"SHOPS": {shop: {"products": 100_000, "seed": 3, "orders": 0}}}) as server:
        control = DevShopControl(server.url)
        admin = Admin(server.admin_base_url, shop, control.issue_token(shop, scope="read_products")["access_token"])
        baseline = peak = rss_mb()
        started = time.monotonic()
        run_bulk(admin, "{ products { edges { node { id title handle status variants { edges { node { id price "
                        "sku inventoryQuantity } } } } } } }")
        while (op := control.bulk_operations(shop)[-1])["status"] not in TERMINAL:
            peak = max(peak, rss_mb())
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert op["status"] == "COMPLETED" and op["root_object_count"] == 100_000
        assert op["object_count"] > 300_000 and op["file_size"] > 30_000_000
        growth = peak - baseline
        # The export streams line by line through a cache-free view of the catalogue: memory stays flat.
        catalogue = server.app.extensions["devshop"].shops.get(shop).catalogue
        assert catalogue._full.cache_info().currsize == 0
        assert growth < 50, f"RSS grew {growth:.1f} MB (baseline {baseline:.1f} MB, peak {peak:.1f} MB)"
        assert elapsed < 120, f"100,000 products took {elapsed:.1f} s"
        with requests.get(op["url"], stream=True, timeout=60) as response:
            assert sum(1 for _ in response.iter_lines()) == op["object_count"]
        admin.session.close()


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status here: RSS not measurable")
