"""orders_recent: orders over the 60 days before the shop's anchor, with steady best sellers and trending products;
the default (fixed past span, uniform products) is unchanged."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from devshop.__main__ import parse_args
from devshop.orders import ORDER_EPOCH, ORDER_STEP_S
from devshop.testing import DevShopControl, DevShopServer
from shopify import queries

from .conftest import ALL_SCOPES, SHOP, Admin

ANCHOR = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEFAULT_SHOP = "plain-shop.myshopify.com"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def server() -> Iterator[DevShopServer]:
    shops = {SHOP: {"products": 200, "seed": 1, "orders": 400, "orders_recent": True, "orders_anchor": _iso(ANCHOR)},
             DEFAULT_SHOP: {"products": 200, "seed": 1, "orders": 400}}
    with DevShopServer({"SHOPS": shops, "BUCKET_SIZE": 50_000, "RESTORE_RATE": 50_000}) as devshop:
        yield devshop


def admin_for(server: DevShopServer, shop: str) -> Admin:
    token = DevShopControl(server.url).issue_token(shop, scope=ALL_SCOPES)["access_token"]
    return Admin(server.admin_base_url, shop, token)


def sales_orders(admin: Admin, since: datetime) -> list[dict[str, Any]]:
    """What Lumi's signals job reads: ORDERS_SALES_PAGE with a created_at lower bound, sorted by CREATED_AT."""
    out, after = [], None
    while True:
        page = admin.data(queries.ORDERS_SALES_PAGE, {"first": queries.ORDERS_SALES_PAGE_SIZE, "after": after,
                                                     "query": f"created_at:>='{_iso(since)}'"})["orders"]
        out += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def units(orders: list[dict[str, Any]], since: datetime) -> Counter[str]:
    counts: Counter[str] = Counter()
    for order in orders:
        if order["cancelledAt"] or datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00")) < since:
            continue
        for item in order["lineItems"]["nodes"]:
            if item["product"]:
                counts[item["product"]["id"]] += item["quantity"]
    return counts


def test_recent_orders_are_filtered_sorted_and_skewed(server: DevShopServer) -> None:
    admin = admin_for(server, SHOP)
    month_ago, week_ago = ANCHOR - timedelta(days=30), ANCHOR - timedelta(days=7)
    everything = sales_orders(admin, ANCHOR - timedelta(days=61))
    assert len(everything) == 400
    created = [o["createdAt"] for o in everything]
    assert created == sorted(created) and len(set(created)) == 400  # sortKey: CREATED_AT, strictly increasing
    assert _iso(ANCHOR - timedelta(days=60)) <= created[0] and created[-1] < _iso(ANCHOR)

    month = sales_orders(admin, month_ago)
    assert month, "no orders in the last 30 days"
    assert [o["createdAt"] for o in month] == [c for c in created if c >= _iso(month_ago)]  # the filter is exact
    assert 150 <= len(month) <= 250  # about half of 60 days' orders

    month_units, week_units = units(month, month_ago), units(month, week_ago)
    assert all(q > 0 for q in month_units.values()) and all(p.startswith("gid://shopify/Product/") for p in month_units)

    def velocity(pid: str) -> float:  # the last week against the month's weekly rate (+1 smoothing, as Lumi's)
        return (week_units[pid] + 1) / (month_units[pid] / 30 * 7 + 1)

    top_month = max(month_units, key=lambda p: (month_units[p], p))
    top_velocity = max(month_units, key=lambda p: (velocity(p), p))
    assert top_month != top_velocity
    assert velocity(top_month) < 1.6  # a steady seller: its last week is about its usual week
    assert velocity(top_velocity) > 2.5 and month_units[top_velocity] < month_units[top_month]
    # Skewed, not uniform: the best seller sells several times what a typical product does.
    typical = sorted(month_units.values())[len(month_units) // 2]
    assert month_units[top_month] >= 5 * typical


def test_recent_orders_are_deterministic_given_seed_and_anchor(server: DevShopServer) -> None:
    control = DevShopControl(server.url)
    spec = {"products": 60, "seed": 3, "orders": 25, "orders_recent": True, "orders_anchor": _iso(ANCHOR)}
    query = "{ orders(first: 25, sortKey: CREATED_AT) { nodes { createdAt lineItems(first: 10) " \
            "{ nodes { quantity product { id } } } } } }"
    runs = []
    for _ in range(2):
        described = control.create_shop("again-shop.myshopify.com", **spec)
        assert described["orders_recent"] is True and described["orders_anchor"] == _iso(ANCHOR)
        runs.append(admin_for(server, "again-shop.myshopify.com").data(query)["orders"]["nodes"])
    assert runs[0] == runs[1] and len(runs[0]) == 25


def test_the_anchor_defaults_to_when_the_shop_is_created(server: DevShopServer) -> None:
    control = DevShopControl(server.url)
    before = datetime.now(UTC).replace(microsecond=0)
    described = control.create_shop("now-shop.myshopify.com", products=30, orders=20, orders_recent=True)
    anchor = datetime.fromisoformat(described["orders_anchor"].replace("Z", "+00:00"))
    assert before <= anchor <= datetime.now(UTC)
    query = "{ orders(first: 20, reverse: true, sortKey: CREATED_AT) { nodes { createdAt updatedAt } } }"
    nodes = admin_for(server, "now-shop.myshopify.com").data(query)["orders"]["nodes"]
    assert nodes and all(_iso(anchor - timedelta(days=61)) < n["createdAt"] <= n["updatedAt"] < _iso(anchor)
                         for n in nodes)


def test_default_orders_keep_the_fixed_past_span(server: DevShopServer) -> None:
    admin = admin_for(server, DEFAULT_SHOP)
    shops = requests.get(f"{server.url}/_devshop/shops", timeout=10).json()["shops"]
    described = next(s for s in shops if s["shop"] == DEFAULT_SHOP)
    assert described["orders_recent"] is False and described["orders_anchor"] is None
    orders = sales_orders(admin, ORDER_EPOCH)
    assert len(orders) == 400
    first, last = (datetime.fromisoformat(o["createdAt"].replace("Z", "+00:00")) for o in (orders[0], orders[-1]))
    assert ORDER_EPOCH <= first < ORDER_EPOCH + timedelta(seconds=ORDER_STEP_S)
    assert last < ORDER_EPOCH + timedelta(seconds=400 * ORDER_STEP_S)
    # Uniform products: no product dominates the way a best seller does.
    counts = units(orders, ORDER_EPOCH)
    assert max(counts.values()) < 5 * sorted(counts.values())[len(counts) // 2]


def test_cli_flag() -> None:
    assert parse_args(["--orders-recent"]).orders_recent is True
    assert parse_args([]).orders_recent is False


def test_orders_recent_must_be_a_boolean(server: DevShopServer) -> None:
    control = DevShopControl(server.url)
    with pytest.raises(requests.HTTPError, match="400"):
        control.create_shop("bad-shop.myshopify.com", products=5, orders=5, orders_recent="sometimes")
