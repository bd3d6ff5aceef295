"""Webhooks reach the app signed, REST-shaped and routed by shopify.app.toml; mutations change the shop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devshop.testing import DevShopControl, DevShopServer

from .conftest import ALL_SCOPES, SHOP, Admin, WebhookSink

SECRET = "webhook-test-secret"
TOML = """
client_id = "lumi-dev-client-id"
name = "Lumi"
application_url = "https://lumi.example.com/"
[access_scopes]
scopes = "read_products,read_orders"
[webhooks]
api_version = "2026-10"
  [[webhooks.subscriptions]]
  topics = ["app/uninstalled", "products/create", "products/update", "products/delete", "inventory_levels/update"]
  uri = "/webhooks"
  [[webhooks.subscriptions]]
  compliance_topics = ["customers/data_request", "customers/redact", "shop/redact"]
  uri = "https://lumi.example.com/webhooks/compliance"
"""
HEADERS = ("X-Shopify-Topic", "X-Shopify-Hmac-Sha256", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id",
           "X-Shopify-Event-Id", "X-Shopify-Triggered-At", "X-Shopify-Api-Version")


@pytest.fixture
def wired(sink: WebhookSink, tmp_path: Path) -> Iterator[tuple[DevShopServer, Admin]]:
    toml = tmp_path / "shopify.app.toml"
    toml.write_text(TOML, encoding="utf-8")
    config = {"API_SECRET": SECRET, "APP_URL": sink.url, "APP_TOML": str(toml),
              "SHOPS": {SHOP: {"products": 50, "seed": 9}}}
    with DevShopServer(config) as server:
        token = DevShopControl(server.url).issue_token(SHOP, scope=ALL_SCOPES)["access_token"]
        admin = Admin(server.admin_base_url, SHOP, token)
        yield server, admin
        admin.session.close()


def signed(received_body: bytes, signature: str) -> bool:
    digest = base64.b64encode(hmac.new(SECRET.encode(), received_body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, signature)


def test_product_update_sends_a_signed_webhook(wired: tuple[DevShopServer, Admin], sink: WebhookSink) -> None:
    _, admin = wired
    result = admin.data('mutation($p: ProductUpdateInput) { productUpdate(product: $p) '
                        '{ product { id title updatedAt } userErrors { field message } } }',
                        {"p": {"id": "gid://shopify/Product/8100000000003", "title": "Renamed ✨",
                               "tags": ["b", "a"]}})["productUpdate"]
    assert result["userErrors"] == [] and result["product"]["title"] == "Renamed ✨"
    hook = sink.next()
    assert hook.path == "/webhooks"
    assert all(h in hook.headers for h in HEADERS)
    assert hook.headers["X-Shopify-Topic"] == "products/update"
    assert hook.headers["X-Shopify-Shop-Domain"] == SHOP
    assert hook.headers["X-Shopify-Api-Version"] == "2026-10"
    assert hook.headers["Content-Type"] == "application/json"
    assert signed(hook.body, hook.headers["X-Shopify-Hmac-Sha256"])
    payload = json.loads(hook.body)
    assert payload["id"] == 8100000000003 and payload["title"] == "Renamed ✨" and payload["tags"] == "a, b"
    assert payload["admin_graphql_api_id"] == "gid://shopify/Product/8100000000003"
    assert payload["variants"] and {"id", "price", "inventory_quantity", "inventory_item_id"} <= set(
        payload["variants"][0])
    assert isinstance(payload["variants"][0]["price"], str)


def test_create_delete_and_inventory(wired: tuple[DevShopServer, Admin], sink: WebhookSink) -> None:
    _, admin = wired
    created = admin.data('mutation { productCreate(product: {title: "Brand new", status: ACTIVE, tags: ["new"]}) '
                         '{ product { id handle variants(first: 1) { nodes { id inventoryItem { id } } } } '
                         'userErrors { message } } }')["productCreate"]
    product_id = created["product"]["id"]
    assert created["product"]["handle"] == "brand-new"
    hook = sink.next()
    assert hook.headers["X-Shopify-Topic"] == "products/create"
    assert json.loads(hook.body)["title"] == "Brand new"
    count = admin.data("{ productsCount(limit: null) { count } }")["productsCount"]["count"]
    assert count == 51
    item = created["product"]["variants"]["nodes"][0]["inventoryItem"]["id"]
    location = admin.data("{ location { id } }")["location"]["id"]
    adjusted = admin.data(
        "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
        "{ inventoryAdjustmentGroup { reason changes { name delta quantityAfterChange } } "
        "userErrors { code message } } }",
        {"input": {"name": "available", "reason": "correction", "quantities": [
            {"inventoryItemId": item, "locationId": location, "quantity": 7, "compareQuantity": 0}]}},
    )["inventorySetQuantities"]
    assert adjusted["userErrors"] == []
    assert adjusted["inventoryAdjustmentGroup"]["changes"] == [{"name": "available", "delta": 7,
                                                                "quantityAfterChange": 7}]
    topics = {}
    for _ in range(2):
        got = sink.next()
        topics[got.headers["X-Shopify-Topic"]] = json.loads(got.body)
    assert topics["inventory_levels/update"]["available"] == 7
    assert topics["inventory_levels/update"]["inventory_item_id"] == int(item.rsplit("/", 1)[1])
    assert topics["products/update"]["variants"][0]["inventory_quantity"] == 7
    stale = admin.data(
        "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) "
        "{ userErrors { code } } }",
        {"input": {"name": "available", "reason": "correction", "quantities": [
            {"inventoryItemId": item, "locationId": location, "quantity": 1, "compareQuantity": 0}]}})
    assert stale["inventorySetQuantities"]["userErrors"] == [{"code": "COMPARE_QUANTITY_STALE"}]

    deleted = admin.data('mutation($id: ID!) { productDelete(input: {id: $id}) { deletedProductId } }',
                         {"id": product_id})
    assert deleted["productDelete"]["deletedProductId"] == product_id
    hook = sink.next()
    assert hook.headers["X-Shopify-Topic"] == "products/delete"
    assert json.loads(hook.body) == {"id": int(product_id.rsplit("/", 1)[1])}
    assert admin.data('query($id: ID!) { product(id: $id) { id } }', {"id": product_id})["product"] is None


def test_variant_prices_and_user_errors(wired: tuple[DevShopServer, Admin], sink: WebhookSink) -> None:
    _, admin = wired
    product = admin.data('{ product(id: "gid://shopify/Product/8100000000001") '
                         "{ variants(first: 1) { nodes { id } } } }")["product"]
    variant = product["variants"]["nodes"][0]["id"]
    updated = admin.data(
        'mutation($v: [ProductVariantsBulkInput!]!) { productVariantsBulkUpdate(productId: '
        '"gid://shopify/Product/8100000000001", variants: $v) { productVariants { price compareAtPrice } '
        "product { priceRangeV2 { minVariantPrice { amount currencyCode } } } userErrors { code } } }",
        {"v": [{"id": variant, "price": "1.00", "compareAtPrice": "2.00"}]})["productVariantsBulkUpdate"]
    assert updated["productVariants"] == [{"price": "1.00", "compareAtPrice": "2.00"}]
    assert updated["product"]["priceRangeV2"]["minVariantPrice"] == {"amount": "1.00", "currencyCode": "EUR"}
    assert sink.next().headers["X-Shopify-Topic"] == "products/update"
    missing = admin.data('mutation { productUpdate(product: {id: "gid://shopify/Product/1", title: "x"}) '
                         "{ product { id } userErrors { field message } } }")["productUpdate"]
    assert missing == {"product": None, "userErrors": [{"field": ["id"], "message": "Product does not exist"}]}


def test_control_sends_compliance_webhooks_to_their_own_uri(wired: tuple[DevShopServer, Admin],
                                                            sink: WebhookSink) -> None:
    server, _ = wired
    control = DevShopControl(server.url)
    sink.status = 401
    answer = control.send_webhook(SHOP, "customers/redact", {"shop_domain": SHOP, "customer": {"id": 1}})
    assert answer["status"] == 401 and answer["webhook_id"]
    hook = sink.next()
    assert hook.path == "/webhooks/compliance"  # the toml's absolute uri, rebased onto APP_URL
    assert json.loads(hook.body) == {"shop_domain": SHOP, "customer": {"id": 1}}
    assert signed(hook.body, hook.headers["X-Shopify-Hmac-Sha256"])
    assert hook.headers["X-Shopify-Webhook-Id"] == answer["webhook_id"]


def test_without_a_toml_every_topic_goes_to_app_url_webhooks(sink: WebhookSink, tmp_path: Path) -> None:
    config = {"API_SECRET": SECRET, "APP_URL": sink.url, "APP_TOML": str(tmp_path / "absent.toml"),
              "SHOPS": {SHOP: {"products": 3}}}
    with DevShopServer(config) as server:
        control = DevShopControl(server.url)
        answer = control.uninstall(SHOP)
        assert answer["deliveries"][0]["status"] == 200
        hook = sink.next()
        assert hook.path == "/webhooks" and hook.headers["X-Shopify-Topic"] == "app/uninstalled"
        assert json.loads(hook.body)["myshopify_domain"] == SHOP
        assert control.webhook_deliveries(SHOP)[0]["topic"] == "app/uninstalled"


def test_no_app_url_means_no_deliveries() -> None:
    with DevShopServer({"SHOPS": {SHOP: {"products": 3}}, "APP_TOML": "/nonexistent"}) as server:
        token = DevShopControl(server.url).issue_token(SHOP, scope=ALL_SCOPES)["access_token"]
        admin = Admin(server.admin_base_url, SHOP, token)
        admin.data('mutation { productUpdate(product: {id: "gid://shopify/Product/8100000000001", title: "x"}) '
                   "{ userErrors { message } } }")
        admin.session.close()
        assert DevShopControl(server.url).webhook_deliveries(SHOP) == []
