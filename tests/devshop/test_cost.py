"""Query cost and the leaky bucket: Shopify's numbers, throttling, refunds and restore over time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devshop.testing import DevShopControl, DevShopServer

from .conftest import ALL_SCOPES, SHOP, Admin, FakeClock

KNOWN = """{
  shop { name }
  products(first: 10) {
    edges { cursor node { id title variants(first: 5) { nodes { id price } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture
def clocked() -> Iterator[tuple[DevShopServer, Admin, FakeClock]]:
    clock = FakeClock()
    with DevShopServer({"SHOPS": {SHOP: {"products": 100, "seed": 5}}, "CLOCK": clock}) as server:
        admin = Admin(server.admin_base_url, SHOP, DevShopControl(server.url).issue_token(SHOP)["access_token"])
        yield server, admin, clock
        admin.session.close()


def test_cost_of_a_known_query(devshop: DevShopServer, admin: Admin) -> None:
    body = admin.gql(KNOWN)
    cost = body["extensions"]["cost"]
    # shop 1; products: 2 + 10 x (product 1 + variants(2 + 5 x 1)) = 82
    assert cost["requestedQueryCost"] == 83
    catalogue = devshop.app.extensions["devshop"].shops.get(SHOP).catalogue
    returned = [catalogue.product(i) for i in range(1, 11)]
    actual = 1 + 2 + sum(1 + 2 + min(len(p.variants), 5) for p in returned)
    assert cost["actualQueryCost"] == actual < 83
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0 and status["restoreRate"] == 100.0
    assert isinstance(status["maximumAvailable"], float) and isinstance(status["restoreRate"], float)
    assert 2000 - actual <= status["currentlyAvailable"] <= 2000  # refunded down to the actual cost


def test_mutations_cost_ten(admin: Admin) -> None:
    body = admin.gql('mutation { productUpdate(product: {id: "gid://shopify/Product/8100000000001", title: "X"}) '
                     "{ product { id } userErrors { field message } } }")
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10


def test_bucket_empties_and_refills_at_the_restore_rate(clocked: tuple[DevShopServer, Admin, FakeClock]) -> None:
    server, admin, clock = clocked
    control = DevShopControl(server.url)
    control.set_throttle(SHOP, maximum_available=600, restore_rate=50)
    query = "{ products(first: 100) { nodes { id } } }"  # requested 102, actual 102 (100 products)
    levels = [admin.gql(query)["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for _ in range(5)]
    assert levels == [498, 396, 294, 192, 90]
    throttled = admin.gql(query)
    assert throttled == {
        "errors": [{"message": "Throttled", "extensions": {
            "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": 102, "actualQueryCost": None, "throttleStatus": {
            "maximumAvailable": 600.0, "currentlyAvailable": 90, "restoreRate": 50.0}}},
    }
    clock.advance(0.5)
    assert control.throttle(SHOP)["currently_available"] == pytest.approx(115.0)
    assert "data" in admin.gql(query)
    clock.advance(60)
    assert control.throttle(SHOP)["currently_available"] == 600.0  # capped at the maximum
    assert control.stats(SHOP)["throttled"] == 1


def test_bucket_restores_in_real_time(admin: Admin, control: DevShopControl) -> None:
    control.set_throttle(SHOP, maximum_available=1000, restore_rate=200)
    for _ in range(3):
        admin.gql("{ products(first: 250) { nodes { id } } }")  # 252 each
    started = time.monotonic()
    left = admin.gql("{ shop { name } }")["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    time.sleep(0.5)
    level = control.throttle(SHOP)["currently_available"]
    elapsed = time.monotonic() - started
    # At least 0.5 s of restore; at most what the measured wait (plus slack for the round trip) allows.
    assert left + 0.5 * 200 - 1 <= level <= min(1000, left + (elapsed + 0.25) * 200 + 1)


def test_a_query_over_1000_points_is_refused(admin: Admin, control: DevShopControl) -> None:
    body = admin.gql("{ products(first: 250) { nodes { id variants(first: 10) { nodes { id } } } } }")
    [error] = body["errors"]
    assert error["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": 3252, "maxCost": 1000,
                                   "documentation": "https://shopify.dev/api/usage/rate-limits"}
    assert error["message"].startswith("Query cost is 3252, which exceeds the single query max cost limit (1000).")
    assert body["extensions"]["cost"]["actualQueryCost"] is None and "data" not in body
    assert control.throttle(SHOP)["currently_available"] == pytest.approx(2000.0)


def test_plans_set_the_bucket(devshop: DevShopServer, control: DevShopControl) -> None:
    for plan, expected in (("standard", (2000.0, 100.0)), ("advanced", (4000.0, 200.0)),
                           ("plus", (20000.0, 1000.0)), ("enterprise", (40000.0, 2000.0))):
        shop = f"{plan}-shop.myshopify.com"
        control.create_shop(shop, products=1, plan=plan)
        token = control.issue_token(shop, scope=ALL_SCOPES)["access_token"]
        status = Admin(devshop.admin_base_url, shop, token).gql("{ shop { plan { displayName shopifyPlus } } }")
        throttle = status["extensions"]["cost"]["throttleStatus"]
        assert (throttle["maximumAvailable"], throttle["restoreRate"]) == expected


def test_configured_bucket_overrides_the_plan() -> None:
    with DevShopServer({"SHOPS": {SHOP: {"products": 1}}, "BUCKET_SIZE": 50, "RESTORE_RATE": 5}) as server:
        assert DevShopControl(server.url).throttle(SHOP) == {"maximum_available": 50.0,
                                                             "currently_available": 50.0, "restore_rate": 5.0}
