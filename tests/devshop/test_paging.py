"""Cursor pagination: every product exactly once, Shopify's page-size rules, the pagination limit."""

from __future__ import annotations

import pytest

from devshop.testing import DevShopControl, DevShopServer

from .conftest import SHOP, Admin

ACTIVE_PAGE = """query($n: Int!, $after: String) {
  products(first: $n, after: $after, query: "status:active") {
    edges { cursor node { id status } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def walk(admin: Admin, size: int) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = admin.data(ACTIVE_PAGE, {"n": size, "after": after})["products"]
        for edge in page["edges"]:
            assert edge["node"]["status"] == "ACTIVE"
            seen.append(edge["node"]["id"])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]


@pytest.mark.parametrize("size", [1, 7, 250])
def test_status_active_pages_return_every_active_product_once(devshop: DevShopServer, admin: Admin,
                                                              size: int) -> None:
    catalogue = devshop.app.extensions["devshop"].shops.get(SHOP).catalogue
    expected = [f"gid://shopify/Product/{p.id}" for p in map(catalogue.product, catalogue.all_indexes())
                if p.status == "ACTIVE"]
    assert 250 < len(expected) < 300  # some drafts and archived products are left out
    seen = walk(admin, size)
    assert seen == expected  # ID order, no gaps, no repeats


def test_last_before_and_reverse_mirror_the_forward_order(admin: Admin) -> None:
    forward = admin.data('{ products(first: 20) { nodes { id } pageInfo { endCursor } } }')["products"]
    ids = [n["id"] for n in forward["nodes"]]
    back = admin.data('query($b: String) { products(last: 5, before: $b) { nodes { id } '
                      'pageInfo { hasNextPage hasPreviousPage } } }', {"b": forward["pageInfo"]["endCursor"]})
    assert [n["id"] for n in back["products"]["nodes"]] == ids[14:19]
    assert back["products"]["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": True}
    reverse = admin.data('{ products(first: 3, reverse: true) { nodes { id } } }')["products"]["nodes"]
    tail = admin.data('{ products(last: 3) { nodes { id } } }')["products"]["nodes"]
    assert [n["id"] for n in reverse] == [n["id"] for n in reversed(tail)]


def test_updated_at_order_moves_edited_products_to_the_end(admin: Admin) -> None:
    first = admin.data('{ products(first: 1, sortKey: UPDATED_AT) { nodes { id } } }')["products"]["nodes"][0]
    admin.data('mutation($p: ProductUpdateInput) { productUpdate(product: $p) { userErrors { message } } }',
               {"p": {"id": first["id"], "tags": ["edited"]}})
    last = admin.data('{ products(last: 1, sortKey: UPDATED_AT) { nodes { id tags updatedAt } } }')
    node = last["products"]["nodes"][0]
    assert node["id"] == first["id"] and node["tags"] == ["edited"]
    since = admin.data('query($q: String) { products(first: 10, sortKey: UPDATED_AT, query: $q) { nodes { id } } }',
                       {"q": f"updated_at:>='{node['updatedAt']}'"})
    assert [n["id"] for n in since["products"]["nodes"]] == [first["id"]]


def test_first_over_250_is_refused(admin: Admin) -> None:
    body = admin.gql("{ products(first: 251) { nodes { id } } }")
    assert body["data"] is None
    [error] = body["errors"]
    assert error["path"] == ["products"]
    assert "251" in error["message"] and "250" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 3}]


def test_first_and_last_together_or_neither_are_refused(admin: Admin) -> None:
    both = admin.gql("{ products(first: 2, last: 2) { nodes { id } } }")
    assert both["errors"][0]["message"] == "providing both first and last is not supported"
    neither = admin.gql("{ products { nodes { id } } }")
    assert neither["errors"][0]["message"] == "you must provide one of first or last"
    assert neither["data"] is None and "cost" in neither["extensions"]


def test_pagination_stops_at_the_limit() -> None:
    with DevShopServer({"SHOPS": {SHOP: {"products": 60, "seed": 2}}, "PAGINATION_LIMIT": 10}) as server:
        admin = Admin(server.admin_base_url, SHOP, DevShopControl(server.url).issue_token(SHOP)["access_token"])
        query = "query($after: String) { products(first: 5, after: $after) { nodes { id } pageInfo { endCursor } } }"
        one = admin.data(query)["products"]
        two = admin.data(query, {"after": one["pageInfo"]["endCursor"]})["products"]
        assert len(two["nodes"]) == 5  # items 6-10: still inside the limit
        three = admin.gql(query, {"after": two["pageInfo"]["endCursor"]})
        assert three["data"] is None
        assert "first 10 items" in three["errors"][0]["message"]
        assert three["errors"][0]["path"] == ["products"]
        # A filter narrows the list, which is the way through.
        narrowed = admin.data('{ products(first: 5, query: "id:>8100000000050") { nodes { id } } }')
        assert len(narrowed["products"]["nodes"]) == 5
        admin.session.close()


def test_garbage_cursor_is_an_error_not_a_crash(admin: Admin) -> None:
    body = admin.gql('{ products(first: 2, after: "bm90IGEgY3Vyc29y") { nodes { id } } }')
    assert body["errors"][0]["message"] == "Invalid cursor for current pagination sort."
