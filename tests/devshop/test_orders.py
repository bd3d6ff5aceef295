"""Orders: found by name, with the fulfillment and tracking states a support chat has to explain."""

from __future__ import annotations

from collections import Counter
from typing import Any

from devshop.orders import DEMO_ORDERS
from devshop.testing import DevShopControl

from .conftest import SHOP, Admin

ORDER_FIELDS = """
  id name email createdAt processedAt cancelledAt displayFinancialStatus displayFulfillmentStatus
  totalPriceSet { shopMoney { amount currencyCode } } customer { id }
  lineItems(first: 10) { nodes { title quantity sku variant { id product { id } } } }
  fulfillments(first: 10) { status displayStatus createdAt estimatedDeliveryAt inTransitAt deliveredAt
                            trackingInfo(first: 5) { company number url } }
"""


def all_orders(admin: Admin) -> list[dict[str, Any]]:
    out, after = [], None
    while True:
        page = admin.data(f"query($after: String) {{ orders(first: 20, after: $after) "
                          f"{{ nodes {{ {ORDER_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}",
                          {"after": after})["orders"]
        out += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def test_order_by_name(admin: Admin) -> None:
    query = f"query($q: String) {{ orders(first: 1, query: $q) {{ nodes {{ {ORDER_FIELDS} }} }} }}"
    [order] = admin.data(query, {"q": "name:#1001"})["orders"]["nodes"]
    assert order["name"] == "#1001" and order["email"] == DEMO_ORDERS["#1001"].customer.email  # a demo order
    [generated] = admin.data(query, {"q": "name:#1005"})["orders"]["nodes"]
    assert generated["email"] == "buyer1005@example.com"
    assert order["totalPriceSet"]["shopMoney"]["currencyCode"] == "EUR"
    assert admin.data(query, {"q": "name:1001"})["orders"]["nodes"][0]["id"] == order["id"]
    assert admin.data(query, {"q": "name:#999999"})["orders"]["nodes"] == []
    again = admin.data("query($id: ID!) { order(id: $id) { name } }", {"id": order["id"]})
    assert again["order"]["name"] == "#1001"


def test_orders_cover_the_fulfillment_cases(control: DevShopControl, admin: Admin) -> None:
    control.set_throttle(SHOP, maximum_available=50_000, restore_rate=50_000)  # six ~760-point pages
    orders = all_orders(admin)
    assert len(orders) == 120
    assert [o["name"] for o in orders[:3]] == ["#1001", "#1002", "#1003"]  # PROCESSED_AT order
    statuses = Counter(o["displayFulfillmentStatus"] for o in orders)
    assert statuses["UNFULFILLED"] and statuses["FULFILLED"] and statuses["PARTIALLY_FULFILLED"]
    # Generated partial orders: one parcel delivered, one in transit (demo #1002 has one parcel and one item to go).
    partial = next(o for o in orders if o["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
                   and o["name"] not in DEMO_ORDERS)
    assert len(partial["fulfillments"]) == 2
    fulfillments = [f for o in orders for f in o["fulfillments"]]
    displays = Counter(f["displayStatus"] for f in fulfillments)
    assert displays["IN_TRANSIT"] and displays["DELIVERED"]
    in_transit = next(f for f in fulfillments if f["displayStatus"] == "IN_TRANSIT" and f["trackingInfo"]
                      and f["trackingInfo"][0]["url"])
    assert in_transit["inTransitAt"] and in_transit["estimatedDeliveryAt"] and in_transit["deliveredAt"] is None
    assert in_transit["trackingInfo"][0]["number"]
    delivered = next(f for f in fulfillments if f["displayStatus"] == "DELIVERED")
    assert delivered["deliveredAt"] >= delivered["inTransitAt"]
    carriers = {t["company"] for f in fulfillments for t in f["trackingInfo"]}
    assert len(carriers) >= 4
    assert any(o["cancelledAt"] for o in orders)
    assert {"PAID", "REFUNDED"} <= {o["displayFinancialStatus"] for o in orders}
    line = next(li for o in orders for li in o["lineItems"]["nodes"] if li["variant"])
    assert line["variant"]["product"]["id"].startswith("gid://shopify/Product/")
    filtered = admin.data('{ orders(first: 250, query: "fulfillment_status:unshipped") '
                          "{ nodes { displayFulfillmentStatus } } }")["orders"]["nodes"]
    assert filtered and {o["displayFulfillmentStatus"] for o in filtered} == {"UNFULFILLED"}
