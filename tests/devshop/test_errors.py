"""Errors come back in Shopify's shapes: graphql-ruby's wording, HTTP 200 for GraphQL errors, 401/404/400 otherwise."""

from __future__ import annotations

import requests

from devshop.testing import DevShopControl, DevShopServer

from .conftest import SHOP, Admin

INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_unknown_field_is_reported_like_graphql_ruby(admin: Admin) -> None:
    response = admin.post("query Catalogue {\n  products(first: 2) {\n    nodes { id foo }\n  }\n}")
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    assert body["errors"] == [{
        "message": "Field 'foo' doesn't exist on type 'Product'",
        "locations": [{"line": 3, "column": 16}],
        "path": ["query Catalogue", "products", "nodes", "foo"],
        "extensions": {"code": "undefinedField", "typeName": "Product", "fieldName": "foo"},
    }]
    assert set(body["extensions"]["cost"]) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}


def test_other_static_errors(admin: Admin) -> None:
    missing = admin.gql("{ product { id } }")["errors"][0]
    assert missing["message"] == "Field 'product' is missing required arguments: id"
    assert missing["extensions"]["code"] == "missingRequiredArguments"
    bad_arg = admin.gql("{ products(first: 2, colour: RED) { nodes { id } } }")["errors"][0]
    assert bad_arg["message"] == "Field 'products' doesn't accept argument 'colour'"
    literal = admin.gql('{ products(first: "two") { nodes { id } } }')["errors"][0]
    assert literal["extensions"]["code"] == "argumentLiteralsIncompatible"
    variable = admin.gql("query($n: Int!) { products(first: $n) { nodes { id } } }", {"n": "x"})["errors"][0]
    assert variable["message"] == "Variable $n of type Int! was provided invalid value"


def test_syntax_error(admin: Admin) -> None:
    body = admin.gql("{ shop { name } } }")
    assert body["errors"] == [{"message": 'Parse error on "}" (RCURLY) at [1, 19]',
                               "locations": [{"line": 1, "column": 19}]}]
    assert admin.gql("{ shop { name ")["errors"][0]["message"] == "Unexpected end of document"


def test_missing_query_is_a_400(admin: Admin) -> None:
    response = admin.session.post(admin.endpoint, json={"variables": {}},
                                  headers={"X-Shopify-Access-Token": admin.token}, timeout=10)
    assert response.status_code == 400
    assert response.json() == {"errors": {"query": "Required parameter missing or invalid"}}


def test_tokens_are_checked(devshop: DevShopServer, admin: Admin, control: DevShopControl) -> None:
    no_token = requests.post(admin.endpoint, json={"query": "{ shop { name } }"}, timeout=10)
    assert (no_token.status_code, no_token.json()) == (401, INVALID_TOKEN)
    wrong = admin.post("{ shop { name } }", token="shpat_" + "0" * 32)
    assert (wrong.status_code, wrong.json()) == (401, INVALID_TOKEN)
    control.create_shop("other-shop.myshopify.com", products=5)
    foreign = control.issue_token("other-shop.myshopify.com")["access_token"]
    assert admin.post("{ shop { name } }", token=foreign).status_code == 401  # tokens belong to one shop


def test_unknown_shop_and_version_are_404(devshop: DevShopServer, admin: Admin) -> None:
    headers = {"X-Shopify-Access-Token": admin.token}
    query = {"query": "{ shop { name } }"}
    unknown = requests.post(f"{devshop.url}/shops/nope.myshopify.com/admin/api/2026-10/graphql.json",
                            json=query, headers=headers, timeout=10)
    assert unknown.status_code == 404
    base = devshop.admin_base_url.format(shop=SHOP)
    for version in ("2026-13", "latest", "v1"):
        bad = requests.post(f"{base}/admin/api/{version}/graphql.json", json=query, headers=headers, timeout=10)
        assert bad.status_code == 404, version
    for version in ("2025-01", "2026-10", "unstable"):
        ok = requests.post(f"{base}/admin/api/{version}/graphql.json", json=query, headers=headers, timeout=10)
        assert ok.status_code == 200 and ok.headers["X-Shopify-API-Version"] == version


def test_scopes_are_enforced(devshop: DevShopServer, control: DevShopControl) -> None:
    token = control.issue_token(SHOP, scope="read_products")["access_token"]
    admin = Admin(devshop.admin_base_url, SHOP, token)
    body = admin.gql("{ products(first: 1) { nodes { id } } orders(first: 1) { nodes { id } } }")
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Access denied for orders field. Required access: `read_orders` access scope."
    assert error["extensions"]["code"] == "ACCESS_DENIED"
    mutation = admin.gql('mutation { productDelete(input: {id: "gid://shopify/Product/8100000000001"}) '
                         '{ deletedProductId } }')
    assert mutation["errors"][0]["extensions"]["requiredAccess"] == "`write_products` access scope."
    admin.session.close()


def test_unknown_search_fields_are_ignored_with_a_warning(admin: Admin) -> None:
    body = admin.gql('{ products(first: 1, query: "colour:red status:active") { nodes { status } } }')
    assert body["data"]["products"]["nodes"][0]["status"] == "ACTIVE"
    assert body["extensions"]["search"] == [{"path": ["products"], "query": "colour:red status:active",
                                             "warnings": [{"field": "colour",
                                                           "message": "Invalid search field for this query."}]}]
