"""AdminClient against a real devshop server: pacing, throttling, retries, auth, errors, read-only guard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
import requests

from shopify import queries
from shopify.admin import MIN_THROTTLE_WAIT, AdminClient, connection_nodes
from shopify.errors import (
    ShopifyAuthError,
    ShopifyGraphQLError,
    ShopifyNotFound,
    ShopifyQueryCostError,
    ShopifyThrottled,
    ShopifyUnavailable,
)
from tests.shopify.support import (
    CLIENT_SHOP,
    DRAIN_PRODUCTS,
    DRAIN_SHOP,
    THROTTLE_SHOP,
    RecordingSession,
    SleepRecorder,
)

if TYPE_CHECKING:
    from devshop.testing import DevShopControl

MakeClient = Callable[..., AdminClient]

# The drain's bucket: a page of 12 products requests 770 points, so a 1,000-point bucket holds one page at a
# time, and the drain spends ~19,000 points in all (~19 refills; pacing sleeps before most pages). The
# restore rate only sets how long that takes: the margin pacing works with is restore rate x the few
# milliseconds between devshop reporting the bucket and the next request arriving, tiny at any rate.
DRAIN_BUCKET = 1000.0
DRAIN_RESTORE = 5000.0


def test_paginate_drains_the_catalogue_without_being_throttled(
    make_client: MakeClient, control: DevShopControl
) -> None:
    control.set_throttle(DRAIN_SHOP, maximum_available=DRAIN_BUCKET, restore_rate=DRAIN_RESTORE)
    sleeps = SleepRecorder(real=True)  # devshop's bucket refills in wall-clock time
    client = make_client(DRAIN_SHOP, sleep=sleeps)
    active = client.execute(queries.PRODUCTS_COUNT, {"query": "status:active"})["productsCount"]["count"]

    ids: list[str] = []
    spent = 0.0  # points actually taken from the bucket (after Shopify's refund of requested - actual)
    for page in client.paginate(
        queries.PRODUCTS_PAGE, {"query": "status:active"}, ["products"], page_size=queries.PRODUCTS_PAGE_SIZE
    ):
        assert client.last_cost is not None
        spent += client.last_cost["actualQueryCost"]
        for product in connection_nodes(page):
            assert product["status"] == "ACTIVE"
            ids.append(product["id"])

    assert 0 < active <= DRAIN_PRODUCTS
    assert len(ids) == len(set(ids)) == active
    stats = control.stats(DRAIN_SHOP)
    # The client would wait out a THROTTLED answer and carry on, so handled ones would not break the drain;
    # but pacing by the reported bucket should make them unnecessary: not a single one is allowed here.
    assert stats["throttled"] == 0
    assert spent > 10 * DRAIN_BUCKET, "the drain should need many bucket refills"
    # Whether the client had to sleep depends on how fast this machine is (a slow run refills the bucket
    # between requests by itself), so it is not asserted here; test_paces_before_sending_when_the_bucket_is_low
    # proves the waiting with a controlled clock.


def test_throttled_response_is_waited_out_and_retried(make_client: MakeClient, control: DevShopControl) -> None:
    # Learn what one product page requests, then shrink the bucket to exactly that, refilling slowly.
    other_process = make_client(THROTTLE_SHOP)
    control.set_throttle(THROTTLE_SHOP, maximum_available=1000, restore_rate=100)
    other_process.execute(queries.PRODUCTS_PAGE, {"first": 1})
    assert other_process.last_cost is not None
    requested = other_process.last_cost["requestedQueryCost"]
    control.set_throttle(THROTTLE_SHOP, maximum_available=requested, restore_rate=50)
    # Another client (think: the web process next to the worker) spends the bucket; ours has not seen that.
    other_process.execute(queries.PRODUCTS_PAGE, {"first": 1})
    before = control.stats(THROTTLE_SHOP)["throttled"]
    sleeps = SleepRecorder(real=True)  # the wait must really pass for devshop's bucket to refill
    session = RecordingSession()
    client = make_client(THROTTLE_SHOP, sleep=sleeps, session=session)

    data = client.execute(queries.PRODUCTS_PAGE, {"first": 1})

    assert connection_nodes(data["products"])
    throttled = [body for body in session.bodies if _is_throttled(body)]
    assert throttled, "devshop should have answered THROTTLED first"
    assert control.stats(THROTTLE_SHOP)["throttled"] - before == len(throttled)
    assert client.last_call is not None and client.last_call.throttle_waits == len(throttled)
    cost = throttled[0]["extensions"]["cost"]
    status = cost["throttleStatus"]
    expected = (cost["requestedQueryCost"] - status["currentlyAvailable"]) / status["restoreRate"]
    assert expected > MIN_THROTTLE_WAIT
    assert sleeps.calls[0] == pytest.approx(expected, rel=1e-6)
    assert len(sleeps.calls) == len(throttled), "no extra pacing sleep on top of the throttle wait"


def test_query_larger_than_the_bucket_raises_throttled_without_waiting(
    make_client: MakeClient, control: DevShopControl
) -> None:
    control.set_throttle(THROTTLE_SHOP, maximum_available=10, restore_rate=1)
    client = make_client(THROTTLE_SHOP)
    with pytest.raises(ShopifyThrottled, match="at most 10"):
        client.execute(queries.PRODUCTS_PAGE, {"first": 5})
    control.set_throttle(THROTTLE_SHOP, maximum_available=1000, restore_rate=100)


def test_5xx_twice_then_success_returns_data_after_two_retries(
    make_client: MakeClient, control: DevShopControl
) -> None:
    control.inject_fault("http_503", count=2, shop=CLIENT_SHOP)
    sleeps = SleepRecorder(real=False)
    client = make_client(sleep=sleeps)

    data = client.execute(queries.SHOP_INFO)

    assert data["shop"]["myshopifyDomain"] == CLIENT_SHOP
    assert client.last_call is not None and client.last_call.retries == 2
    assert len(sleeps.calls) == 2
    assert all(0 <= wait <= 0.5 * 2**attempt for attempt, wait in enumerate(sleeps.calls))  # full jitter
    assert control.stats(CLIENT_SHOP)["faults_served"] >= 2


@pytest.mark.parametrize("kind, status", [("http_500", 500), ("http_502", 502), ("http_503", 503)])
def test_5xx_beyond_max_retries_raises_unavailable_naming_the_status(
    make_client: MakeClient, control: DevShopControl, kind: str, status: int
) -> None:
    control.inject_fault(kind, count=10, shop=CLIENT_SHOP)
    client = make_client(max_retries=3)

    with pytest.raises(ShopifyUnavailable, match=f"HTTP {status}") as caught:
        client.execute(queries.SHOP_INFO)

    assert caught.value.attempts == 4
    assert caught.value.status == status
    assert isinstance(caught.value.__cause__, requests.HTTPError)


def test_timeouts_are_retried_then_raise_unavailable(make_client: MakeClient, control: DevShopControl) -> None:
    control.inject_fault("timeout", count=3, shop=CLIENT_SHOP, seconds=1.0)
    client = make_client(timeout=0.3, max_retries=2)

    with pytest.raises(ShopifyUnavailable, match="ReadTimeout") as caught:
        client.execute(queries.SHOP_INFO)

    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_cause, requests.Timeout)
    assert caught.value.__cause__ is caught.value.last_cause


def test_timeout_once_then_success(make_client: MakeClient, control: DevShopControl) -> None:
    control.inject_fault("timeout", count=1, shop=CLIENT_SHOP, seconds=1.0)
    client = make_client(timeout=0.3)
    assert client.execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == CLIENT_SHOP
    assert client.last_call is not None and client.last_call.retries == 1


def test_dropped_connections_are_retried_then_raise_unavailable(
    make_client: MakeClient, control: DevShopControl
) -> None:
    control.inject_fault("drop", count=1, shop=CLIENT_SHOP)
    client = make_client(max_retries=2)
    assert client.execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == CLIENT_SHOP
    assert client.last_call is not None and client.last_call.retries == 1

    control.inject_fault("drop", count=3, shop=CLIENT_SHOP)
    with pytest.raises(ShopifyUnavailable) as caught:
        client.execute(queries.SHOP_INFO)
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_cause, requests.ConnectionError | requests.exceptions.ChunkedEncodingError)


def test_bad_token_raises_auth_error_without_leaking_it(make_client: MakeClient) -> None:
    bad_token = "shpat_not-a-real-token-0123456789"
    client = make_client(access_token=bad_token)

    with pytest.raises(ShopifyAuthError) as caught:
        client.execute(queries.SHOP_INFO)

    assert caught.value.status == 401
    assert bad_token not in str(caught.value)
    assert bad_token not in repr(caught.value.__cause__)


def test_on_unauthorized_supplies_a_fresh_token_once(make_client: MakeClient, token: Callable[[str], str]) -> None:
    calls: list[str] = []

    def refresh() -> str:
        calls.append("refresh")
        return token(CLIENT_SHOP)

    client = make_client(access_token="shpat_revoked", on_unauthorized=refresh)

    assert client.execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == CLIENT_SHOP
    assert client.execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == CLIENT_SHOP  # keeps the new token
    assert calls == ["refresh"]


def test_on_unauthorized_is_called_only_once_per_call(make_client: MakeClient) -> None:
    calls: list[str] = []

    def refresh() -> str:
        calls.append("refresh")
        return "shpat_still-wrong"

    client = make_client(access_token="shpat_revoked", on_unauthorized=refresh)
    with pytest.raises(ShopifyAuthError):
        client.execute(queries.SHOP_INFO)
    assert calls == ["refresh"]


def test_unknown_shop_raises_not_found(make_client: MakeClient, token: Callable[[str], str]) -> None:
    client = make_client("no-such-shop.myshopify.com", access_token=token(CLIENT_SHOP))
    with pytest.raises(ShopifyNotFound):
        client.execute(queries.SHOP_INFO)


def test_unknown_field_raises_graphql_error_with_shopifys_message(
    make_client: MakeClient, control: DevShopControl
) -> None:
    session = RecordingSession()
    client = make_client(session=session)

    with pytest.raises(ShopifyGraphQLError) as caught:
        client.execute("query Broken { shop { name nameInKlingon } }")

    server_messages = [error["message"] for error in session.bodies[-1]["errors"]]
    assert [error["message"] for error in caught.value.errors] == server_messages
    # Shopify (graphql-ruby) words it like this, with code undefinedField.
    assert server_messages == ["Field 'nameInKlingon' doesn't exist on type 'Shop'"]
    assert caught.value.codes == ["undefinedField"]
    assert server_messages[0] in str(caught.value)


def test_query_over_the_single_query_limit_raises_cost_error_without_retrying(
    make_client: MakeClient, control: DevShopControl
) -> None:
    client = make_client()
    before = control.stats(CLIENT_SHOP)["graphql_requests"]

    with pytest.raises(ShopifyQueryCostError, match="exceeds the single query max cost limit") as caught:
        client.execute(queries.PRODUCTS_PAGE, {"first": 250})

    assert caught.value.codes == ["MAX_COST_EXCEEDED"]
    assert control.stats(CLIENT_SHOP)["graphql_requests"] - before == 1


def test_paginates_a_collection_in_the_merchants_order(make_client: MakeClient) -> None:
    client = make_client(DRAIN_SHOP)
    found = client.execute(queries.COLLECTION_BY_HANDLE, {"query": "handle:summer-collection"})
    (collection,) = found["collections"]["nodes"]
    size = client.execute(
        "query Size($id: ID!) { collection(id: $id) { productsCount { count } } }", {"id": collection["id"]}
    )["collection"]["productsCount"]["count"]

    pages = list(
        client.paginate(
            queries.COLLECTION_PRODUCTS_PAGE, {"id": collection["id"]}, ["collection", "products"], page_size=20
        )
    )

    ids = [product["id"] for page in pages for product in connection_nodes(page)]
    assert size > 20 and len(pages) == -(-size // 20)
    assert len(ids) == len(set(ids)) == size


def test_paginate_yields_nothing_when_the_object_on_the_path_is_gone(make_client: MakeClient) -> None:
    client = make_client(DRAIN_SHOP)
    gone = {"id": "gid://shopify/Collection/1"}
    assert list(client.paginate(queries.COLLECTION_PRODUCTS_PAGE, gone, ["collection", "products"], page_size=5)) == []


def test_order_lookup_returns_status_and_tracking(make_client: MakeClient) -> None:
    client = make_client(DRAIN_SHOP)
    (order,) = client.execute(queries.ORDER_BY_NAME, {"query": 'name:"#1001"'})["orders"]["nodes"]
    assert order["name"] == "#1001"
    assert {"displayFulfillmentStatus", "lineItems", "fulfillments", "email"} <= order.keys()


def test_mutation_is_refused_before_any_request(make_client: MakeClient, control: DevShopControl) -> None:
    client = make_client()
    client.execute(queries.SHOP_INFO)
    before = control.stats(CLIENT_SHOP)

    with pytest.raises(ValueError, match="read-only"):
        client.execute('mutation { productDelete(input: {id: "gid://shopify/Product/1"}) { deletedProductId } }')
    with pytest.raises(ValueError, match="read-only"):
        client.execute("query Fine { shop { name } }\nmutation Sneaky { shopUpdate { id } }")

    assert control.stats(CLIENT_SHOP) == before


def test_log_line_has_cost_but_no_token_or_variables(
    make_client: MakeClient, token: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    secret_token = token(CLIENT_SHOP)
    client = make_client(access_token=secret_token)
    caplog.set_level(logging.DEBUG, logger="shopify.admin")

    client.execute(queries.PRODUCTS_COUNT, {"query": "title:shopper@example.com"})

    lines = [record.getMessage() for record in caplog.records if record.name == "shopify.admin"]
    assert len(lines) == 1
    assert f"shop={CLIENT_SHOP}" in lines[0] and "requested_cost=" in lines[0] and "op=ProductsCount" in lines[0]
    assert secret_token not in caplog.text
    assert "shopper@example.com" not in caplog.text


def test_paces_before_sending_when_the_bucket_is_low(make_client: MakeClient, control: DevShopControl) -> None:
    # Deterministic pacing maths with an injected clock that never moves and a sleep that only records.
    control.set_throttle(CLIENT_SHOP, maximum_available=1000, restore_rate=100)
    sleeps = SleepRecorder(real=False)
    client = make_client(clock=lambda: 1000.0, sleep=sleeps)
    client.execute(queries.PRODUCTS_PAGE, {"first": queries.PRODUCTS_PAGE_SIZE})
    state = client.throttle
    assert state is not None and state.maximum_available == 1000 and state.restore_rate == 100
    assert state.currently_available <= 900

    client.execute(queries.SHOP_INFO, expected_cost=state.currently_available + 100)

    assert sleeps.calls == [pytest.approx(1.0)]  # 100 missing points at 100 points/s


def _is_throttled(body: object) -> bool:
    if not isinstance(body, dict):
        return False
    return any((error.get("extensions") or {}).get("code") == "THROTTLED" for error in body.get("errors") or [])
