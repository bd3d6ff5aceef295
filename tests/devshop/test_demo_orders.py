"""The support chat's demo orders (#1001-#1004), read over HTTP with Lumi's real AdminClient and the real documents
(ORDER_BY_NAME, CUSTOMER_ORDERS), as the chat reads them from Shopify."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devshop.orders import DEMO_CUSTOMER_ID, DEMO_ORDERS, OTHER_CUSTOMER_ID
from devshop.testing import DevShopControl, DevShopServer
from shopify import queries
from shopify.admin import AdminClient
from shopify.throttle import SINGLE_QUERY_MAX_COST, estimate_query_cost

from .conftest import ALL_SCOPES

PLAIN = "demo-plain.myshopify.com"  # the default fixed past span
RECENT = "demo-recent.myshopify.com"  # orders_recent: the last 60 days, skewed towards best sellers
TINY = "demo-tiny.myshopify.com"  # only two orders: only #1001 and #1002 exist
NOW = "demo-now.myshopify.com"  # orders_recent anchored when the test creates it, as `make dev` runs
SHOPS = {
    PLAIN: {"products": 120, "seed": 7, "orders": 120},
    RECENT: {"products": 120, "seed": 1, "orders": 200, "orders_recent": True, "orders_anchor": "2026-11-20T12:00:00Z"},
    TINY: {"products": 20, "seed": 5, "orders": 2},
}


def customer_gid(customer_id: int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


@pytest.fixture(scope="module")
def server() -> Iterator[DevShopServer]:
    with DevShopServer({"SHOPS": SHOPS, "BUCKET_SIZE": 20_000, "RESTORE_RATE": 1_000}) as devshop:
        yield devshop


@pytest.fixture(scope="module")
def clients(server: DevShopServer) -> Iterator[dict[str, AdminClient]]:
    control = DevShopControl(server.url)
    made = {shop: AdminClient(shop, control.issue_token(shop, scope=ALL_SCOPES)["access_token"],
                              base_url=server.admin_base_url) for shop in SHOPS}
    yield made
    for client in made.values():
        client.close()


def by_name(client: AdminClient, query: str) -> list[dict[str, Any]]:
    return list(client.execute(queries.ORDER_BY_NAME, {"query": query})["orders"]["nodes"])


def customer_orders(client: AdminClient, customer_id: int) -> list[dict[str, Any]]:
    variables = {"first": queries.CUSTOMER_ORDERS_PAGE_SIZE, "query": f"customer_id:{customer_id}"}
    return list(client.execute(queries.CUSTOMER_ORDERS, variables)["orders"]["nodes"])


def assert_in_transit_with_tracking(fulfillment: dict[str, Any], company: str, number: str) -> None:
    assert fulfillment["status"] == "SUCCESS" and fulfillment["displayStatus"] == "IN_TRANSIT"
    assert fulfillment["createdAt"] <= fulfillment["inTransitAt"] < fulfillment["estimatedDeliveryAt"]
    assert fulfillment["deliveredAt"] is None
    [tracking] = fulfillment["trackingInfo"]
    assert tracking["company"] == company and tracking["number"] == number
    assert tracking["url"].startswith("https://") and number in tracking["url"]


@pytest.mark.parametrize("shop", [PLAIN, RECENT])
def test_the_demo_customer_has_three_orders_in_three_states(clients: dict[str, AdminClient], shop: str) -> None:
    client = clients[shop]
    orders = {name: by_name(client, f"name:{name}")[0] for name in ("#1001", "#1002", "#1003")}
    for name, order in orders.items():
        assert order["name"] == name
        assert order["email"] == "shopper@example.com"
        assert order["customer"] == {"id": customer_gid(DEMO_CUSTOMER_ID)}
        assert order["displayFinancialStatus"] == "PAID" and order["cancelledAt"] is None
        assert order["lineItems"]["nodes"] and all(li["title"] and li["quantity"] >= 1
                                                   for li in order["lineItems"]["nodes"])
        assert not {"phone", "shippingAddress", "billingAddress", "firstName", "lastName"} & order.keys()

    shipped = orders["#1001"]
    assert shipped["displayFulfillmentStatus"] == "FULFILLED"
    [fulfillment] = shipped["fulfillments"]
    assert_in_transit_with_tracking(fulfillment, "UPS", "1Z999AA10123456784")
    assert fulfillment["trackingInfo"][0]["url"] == "https://www.ups.com/track?tracknum=1Z999AA10123456784"

    partial = orders["#1002"]
    assert partial["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert len(partial["lineItems"]["nodes"]) >= 2
    [fulfillment] = partial["fulfillments"]
    assert_in_transit_with_tracking(fulfillment, "DHL Express", "3318810025")
    # Exactly one line item is still to ship (ORDER_BY_NAME does not say which: ask for unfulfilledQuantity).
    items = client.execute('{ orders(first: 1, query: "name:1002") { nodes { lineItems(first: 50) '
                           "{ nodes { quantity unfulfilledQuantity } } } } }")["orders"]["nodes"][0]["lineItems"]
    unshipped = [li for li in items["nodes"] if li["unfulfilledQuantity"]]
    assert len(unshipped) == 1 and unshipped[0]["unfulfilledQuantity"] == unshipped[0]["quantity"]

    waiting = orders["#1003"]
    assert waiting["displayFulfillmentStatus"] == "UNFULFILLED" and waiting["fulfillments"] == []


@pytest.mark.parametrize("shop", [PLAIN, RECENT])
def test_customer_orders_returns_exactly_the_demo_customers_newest_first(clients: dict[str, AdminClient],
                                                                       shop: str) -> None:
    client = clients[shop]
    orders = customer_orders(client, DEMO_CUSTOMER_ID)
    assert [o["name"] for o in orders] == ["#1003", "#1002", "#1001"]
    created = [o["createdAt"] for o in orders]
    assert created == sorted(created, reverse=True)
    assert {o["customer"]["id"] for o in orders} == {customer_gid(DEMO_CUSTOMER_ID)}
    # The same order as by name, field for field.
    assert orders[-1] == by_name(client, 'name:"#1001"')[0]

    # devshop charges both documents, within the single-query limit and no more than the client's conservative
    # estimate (which prices the plain lists fulfillments/trackingInfo at `first` items, as connections).
    for document, variables in ((queries.ORDER_BY_NAME, {"query": "name:#1001"}),
                                (queries.CUSTOMER_ORDERS, {"first": queries.CUSTOMER_ORDERS_PAGE_SIZE,
                                                           "query": f"customer_id:{DEMO_CUSTOMER_ID}"})):
        client.execute(document, variables)
        cost = client.last_cost
        assert cost is not None
        assert 0 < cost["actualQueryCost"] <= cost["requestedQueryCost"] <= estimate_query_cost(document, variables)
        assert estimate_query_cost(document, variables) <= SINGLE_QUERY_MAX_COST


@pytest.mark.parametrize("shop", [PLAIN, RECENT])
def test_1004_is_another_customers_order(clients: dict[str, AdminClient], shop: str) -> None:
    client = clients[shop]
    [order] = by_name(client, "name:#1004")
    assert order["email"] == "other@example.com"
    assert order["customer"] == {"id": customer_gid(OTHER_CUSTOMER_ID)} != {"id": customer_gid(DEMO_CUSTOMER_ID)}
    assert order["displayFulfillmentStatus"] == "FULFILLED" and order["displayFinancialStatus"] == "PAID"
    [fulfillment] = order["fulfillments"]
    assert_in_transit_with_tracking(fulfillment, "USPS", "9400111899223344556677")
    assert [o["name"] for o in customer_orders(client, OTHER_CUSTOMER_ID)] == ["#1004"]


def test_name_search_matches_with_or_without_the_hash(clients: dict[str, AdminClient]) -> None:
    client = clients[PLAIN]
    ids = {by_name(client, query)[0]["id"] for query in ("name:#1002", "name:1002", 'name:"#1002"', "name:'1002'")}
    assert len(ids) == 1
    for missing in ("name:#999999", "name:#1000", 'name:"#10020"', "name:#100"):
        assert by_name(client, missing) == []
    assert customer_orders(client, DEMO_CUSTOMER_ID + 1_000_000) == []


def test_demo_orders_exist_only_as_far_as_the_shop_has_orders(clients: dict[str, AdminClient]) -> None:
    client = clients[TINY]
    assert [o["name"] for o in customer_orders(client, DEMO_CUSTOMER_ID)] == ["#1002", "#1001"]
    assert by_name(client, "name:#1003") == [] and by_name(client, "name:#1004") == []
    assert customer_orders(client, OTHER_CUSTOMER_ID) == []


def test_demo_orders_describes_what_is_served(clients: dict[str, AdminClient]) -> None:
    client = clients[PLAIN]
    assert sorted(DEMO_ORDERS) == ["#1001", "#1002", "#1003", "#1004"]
    for name, demo in DEMO_ORDERS.items():
        [order] = by_name(client, f"name:{name}")
        assert demo.name == name and order["email"] == demo.customer.email
        assert order["customer"]["id"] == customer_gid(demo.customer.id)
        assert order["displayFinancialStatus"] == demo.financial_status
        assert order["displayFulfillmentStatus"] == demo.fulfillment_status
        shipments = [(f["displayStatus"], t["company"], t["number"], t["url"])
                     for f in order["fulfillments"] for t in f["trackingInfo"]]
        expected = demo.shipment
        assert shipments == ([] if expected is None else
                             [(expected.display_status, expected.company, expected.number, expected.url)])


def test_pinned_searches_match_what_a_full_walk_finds(clients: dict[str, AdminClient]) -> None:
    """`name:` and a demo customer's `customer_id:` skip the walk over every order; the answers are unchanged."""
    client = clients[PLAIN]
    nodes = '{{ orders(first: {first}, query: "{query}", sortKey: {sort}, reverse: {reverse}) ' \
            "{{ nodes {{ name }} pageInfo {{ hasNextPage hasPreviousPage }} }} }}"
    cases = [
        ("name:1001,#1003,1004", "CREATED_AT", 2),  # several names at once; a second page exists
        (f"name:1002 customer_id:{DEMO_CUSTOMER_ID}", "PROCESSED_AT", 5),
        (f"name:1002 customer_id:{OTHER_CUSTOMER_ID}", "ID", 5),  # contradictory: nothing
        (f"customer_id:{DEMO_CUSTOMER_ID} created_at:>=2026-05-01T04:00:00Z", "CREATED_AT", 5),
        (f"customer_id:{DEMO_CUSTOMER_ID}", "TOTAL_PRICE", 2),  # a sort devshop keeps as a sorted list
        ("name:1001 OR name:1050", "ID", 5),  # OR: not pinned, walked as before
        (f"-name:1001 customer_id:{DEMO_CUSTOMER_ID}", "ID", 5),
    ]
    for query, sort, first in cases:
        for reverse in ("false", "true"):
            pinned = client.execute(nodes.format(first=first, query=query, sort=sort, reverse=reverse))["orders"]
            # The same filter with a no-op alternative is not pinned, so devshop walks every order.
            walked = client.execute(nodes.format(first=first, query=f"({query}) OR name:nonesuch", sort=sort,
                                                 reverse=reverse))["orders"]
            assert pinned == walked, (query, sort, reverse)
    assert client.execute(nodes.format(first=5, query="name:1001 OR name:1050", sort="ID", reverse="false"))[
        "orders"]["nodes"] == [{"name": "#1001"}, {"name": "#1050"}]


def test_a_lookup_by_name_or_demo_customer_does_not_generate_every_order() -> None:
    shop = "demo-big.myshopify.com"
    with DevShopServer({"SHOPS": {shop: {"products": 50, "seed": 2, "orders": 50_000}}}) as server:
        control = DevShopControl(server.url)
        with AdminClient(shop, control.issue_token(shop, scope=ALL_SCOPES)["access_token"],
                         base_url=server.admin_base_url) as client:
            assert [o["name"] for o in by_name(client, "name:#1002")] == ["#1002"]
            assert [o["name"] for o in customer_orders(client, DEMO_CUSTOMER_ID)] == ["#1003", "#1002", "#1001"]
            assert by_name(client, "name:#51001") == []  # past the last order
        book = server.app.extensions["devshop"].shops.get(shop).orders
        assert book.get.cache_info().currsize <= 10


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_in_a_recent_shop_the_demo_orders_are_days_old_with_deliveries_still_to_come(server: DevShopServer) -> None:
    """`make dev` runs an orders_recent shop anchored at start-up: a chat tried today must find #1001 shipped a few
    days ago and due in the coming days, never "estimated delivery" on a date already past."""
    control = DevShopControl(server.url)
    control.create_shop(NOW, products=60, seed=4, orders=150, orders_recent=True)
    before = datetime.now(UTC)
    with AdminClient(NOW, control.issue_token(NOW, scope=ALL_SCOPES)["access_token"],
                     base_url=server.admin_base_url) as client:
        orders = {o["name"]: o for o in customer_orders(client, DEMO_CUSTOMER_ID)}
        [other] = customer_orders(client, OTHER_CUSTOMER_ID)
    assert list(orders) == ["#1003", "#1002", "#1001"]
    for order in [*orders.values(), other]:
        assert before - timedelta(days=7) < _at(order["createdAt"]) < before, order["name"]
        for fulfillment in order["fulfillments"]:
            assert _at(order["createdAt"]) <= _at(fulfillment["createdAt"]) <= _at(fulfillment["inTransitAt"]) < before
            assert _at(fulfillment["estimatedDeliveryAt"]) > before + timedelta(days=1), (order["name"], fulfillment)
    [shipped] = orders["#1001"]["fulfillments"]
    assert shipped["displayStatus"] == "IN_TRANSIT" and shipped["trackingInfo"][0]["number"] == "1Z999AA10123456784"
    assert orders["#1003"]["displayFulfillmentStatus"] == "UNFULFILLED" and orders["#1003"]["fulfillments"] == []


@pytest.mark.parametrize("sort", ["CREATED_AT", "PROCESSED_AT", "UPDATED_AT"])
def test_date_orders_place_the_redated_demo_orders_by_their_dates(clients: dict[str, AdminClient], sort: str) -> None:
    """In a recent shop #1001-#1004 are younger than #1005...: walked page by page either way, every order comes
    once, in date order, with the demo orders among the last ones."""
    client = clients[RECENT]
    field = {"CREATED_AT": "createdAt", "PROCESSED_AT": "processedAt", "UPDATED_AT": "updatedAt"}[sort]
    document = (f"query($after: String, $before: String, $first: Int, $last: Int, $query: String) {{ "
                f"orders(first: $first, after: $after, last: $last, before: $before, sortKey: {sort}, "
                f"query: $query) {{ nodes {{ name {field} }} pageInfo {{ hasNextPage hasPreviousPage startCursor "
                f"endCursor }} }} }}")

    def walk(backwards: bool, query: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = client.execute(document, {"last" if backwards else "first": 37,
                                             "before" if backwards else "after": cursor, "query": query})["orders"]
            found = page["nodes"] + found if backwards else found + page["nodes"]
            if not page["pageInfo"]["hasPreviousPage" if backwards else "hasNextPage"]:
                return found
            cursor = page["pageInfo"]["startCursor" if backwards else "endCursor"]

    forward = walk(False)
    assert walk(True) == forward
    assert len(forward) == SHOPS[RECENT]["orders"] and len({o["name"] for o in forward}) == len(forward)
    keys = [o[field] for o in forward]
    assert keys == sorted(keys)
    last_week = [o["name"] for o in forward if o[field] >= "2026-11-13T12:00:00Z"]
    assert {"#1001", "#1002", "#1003", "#1004"} <= set(last_week)
    assert forward[0]["name"] == "#1005", "the oldest order is the first one the schedule placed"
    # A lower bound on the sort field starts the walk there, demo orders included.
    assert [o["name"] for o in walk(False, f"{field_filter(sort)}:>='2026-11-13T12:00:00Z'")] == last_week


def field_filter(sort: str) -> str:
    return {"CREATED_AT": "created_at", "PROCESSED_AT": "processed_at", "UPDATED_AT": "updated_at"}[sort]
