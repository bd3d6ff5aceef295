"""The support chat's demo orders (#1001-#1004), read over HTTP with Lumi's real AdminClient and the real documents
(ORDER_BY_NAME, CUSTOMER_ORDERS), as the chat reads them from Shopify."""

from __future__ import annotations

from collections.abc import Iterator
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
