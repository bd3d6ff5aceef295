"""Storefront feeds over the real stack: contents, parameters, merchant settings, caching, degraded modes."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import meilisearch
import pytest
import requests

from core import keys
from feeds.definitions import FEEDS
from tests.conftest import DEMO_SHOP, Stack
from tests.helpers import graphql, indexed, wait_until

FEED_PATHS = ["new-arrivals", "best-sellers", "trending", "on-sale", "back-in-stock", "search?q=shirt"]


def get(stack: Stack, path: str, **params: Any) -> requests.Response:
    sep = "&" if "?" in path else "?"
    query = "&".join(f"{k}={v}" for k, v in {"shop": DEMO_SHOP, **params}.items())
    return stack.http.get(f"{stack.url}/proxy/feeds/{path}{sep}{query}", timeout=30)


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [int(p["id"]) for p in response.json()["products"]]


def test_new_arrivals_are_newest_first_and_cards_are_compact(synced_stack: Stack,
                                                             meili_client: meilisearch.Client) -> None:
    docs = indexed(meili_client, DEMO_SHOP)
    response = get(synced_stack, "new-arrivals", limit=10)
    body = response.json()
    assert set(body) == {"feed", "shop", "generated_at", "products", "next_cursor"}
    got = ids(response)
    expected = sorted(docs, key=lambda pid: (docs[pid]["available"], docs[pid]["published_at"]), reverse=True)[:10]
    # Default settings demote out-of-stock products: in stock first, each part newest first.
    assert got == expected
    card = body["products"][0]
    assert set(card) == {"id", "handle", "url", "title", "vendor", "price", "compare_at_price", "currency",
                         "price_formatted", "compare_at_price_formatted", "price_varies", "available", "image"}
    assert card["url"] == f"/products/{card['handle']}"
    assert body["next_cursor"]
    following = ids(get(synced_stack, "new-arrivals", limit=10, cursor=body["next_cursor"]))
    assert not set(following) & set(got) and following == expected[10:20] if len(expected) > 10 else True


def test_on_sale_and_similar(synced_stack: Stack, meili_client: meilisearch.Client) -> None:
    docs = indexed(meili_client, DEMO_SHOP)
    response = get(synced_stack, "on-sale", limit=50)
    sale = ids(response)
    assert sale and all(docs[pid]["on_sale"] for pid in sale)
    # Every card in the on-sale feed shows a real discount: price and compare-at from one variant, the latter above.
    assert all(float(c["compare_at_price"]) > float(c["price"]) for c in response.json()["products"])
    pid = sale[0]
    similar = ids(get(synced_stack, f"similar/{pid}", limit=20))
    assert pid not in similar
    base = docs[pid]
    for other in similar:
        shared = (docs[other]["product_type"] == base["product_type"] or docs[other]["vendor"] == base["vendor"]
                  or set(docs[other]["tags"]) & set(base["tags"]) or set(docs[other]["collections"])
                  & set(base["collections"]))
        assert shared
    assert get(synced_stack, "similar/999999999").json()["error"]["code"] == "product_not_found"


BAD_PARAMETERS = [
    ("new-arrivals", {"limit": "0"}, "limit"),
    ("new-arrivals", {"limit": "51"}, "limit"),
    ("new-arrivals", {"limit": "ten"}, "limit"),
    ("new-arrivals", {"page": "0"}, "page"),
    ("new-arrivals", {"cursor": "garbage!"}, "cursor"),
    ("new-arrivals", {"exclude": "1,x"}, "exclude"),
    ("new-arrivals", {"available": "maybe"}, "available"),
    ("new-arrivals", {"min_price": "-1"}, "min_price"),
    ("new-arrivals", {"min_price": "20", "max_price": "10"}, "min_price"),
    ("new-arrivals", {"colour": "red"}, "colour"),
    ("new-arrivals", {"country": "FRA"}, "country"),
    ("new-arrivals", {"country": "1"}, "country"),
    ("on-sale", {"order": "cheapest"}, "order"),
    ("search", {}, "q"),
    ("similar/abc", {}, "product_id"),
]


def test_bad_parameters_get_a_json_400_naming_them(synced_stack: Stack) -> None:
    for path, params, param in BAD_PARAMETERS:  # one stack for all: a sync per case would be slow
        response = get(synced_stack, path, **params)
        assert response.status_code == 400, (path, params)
        assert response.json()["error"]["code"] == "invalid_parameter"
        assert response.json()["error"]["details"]["param"] == param, (path, params)


def test_every_feed_answers_and_never_shows_excluded_tags(synced_stack: Stack,
                                                          meili_client: meilisearch.Client) -> None:
    docs = indexed(meili_client, DEMO_SHOP)
    tag = max({t for d in docs.values() for t in d["tags"]}, key=lambda t: sum(t in d["tags"] for d in docs.values()))
    assert synced_stack.api("PATCH", "/api/settings", json={"excluded_tags": [tag]}).status_code == 200
    for path in FEED_PATHS:
        for pid in ids(get(synced_stack, path, limit=50)):
            assert tag not in docs[pid]["tags"], (path, pid)
    assert set(FEEDS) >= {p.split("?")[0] for p in FEED_PATHS}


def test_etag_304_and_gzip(synced_stack: Stack) -> None:
    first = get(synced_stack, "new-arrivals", limit=5)
    etag = first.headers["ETag"]
    assert first.headers["Content-Encoding"] == "gzip"  # requests asks for gzip and decodes it
    assert "s-maxage=" in first.headers["Cache-Control"] and "stale-if-error=" in first.headers["Cache-Control"]
    assert f"shop-{DEMO_SHOP}" in first.headers["Surrogate-Key"]
    again = synced_stack.http.get(first.url, headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.headers["ETag"] == etag
    raw = synced_stack.http.get(first.url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in raw.headers and json.loads(raw.content) == first.json()
    assert gzip.decompress(synced_stack.http.get(first.url, stream=True, timeout=10).raw.read()) == raw.content


def test_product_update_changes_feed_and_etag_within_seconds(synced_stack: Stack) -> None:
    before = get(synced_stack, "new-arrivals", limit=5)
    pid = before.json()["products"][0]["id"]
    token = synced_stack.control.issue_token(DEMO_SHOP, scope="write_products")["access_token"]
    graphql(synced_stack, token, "mutation($p: ProductUpdateInput!) { productUpdate(product: $p) { product { id } } }",
            {"p": {"id": f"gid://shopify/Product/{pid}", "title": "Fresh title"}})
    wait_until(lambda: get(synced_stack, "new-arrivals", limit=5).json()["products"][0]["title"] == "Fresh title",
               timeout=15, what="the feed to change")
    assert get(synced_stack, "new-arrivals", limit=5).headers["ETag"] != before.headers["ETag"]


def test_feeds_off_unknown_and_uninstalled_shops_are_404(synced_stack: Stack) -> None:
    assert get(synced_stack, "nope").json()["error"]["code"] == "unknown_feed"
    response = synced_stack.http.get(f"{synced_stack.url}/proxy/feeds/new-arrivals?shop=unknown.myshopify.com",
                                     timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "shop_not_found"
    synced_stack.api("PATCH", "/api/settings", json={"feeds_enabled": False})
    off = get(synced_stack, "new-arrivals")
    assert off.status_code == 404 and off.json()["error"]["code"] == "feeds_disabled"


def test_meilisearch_down_serves_stale_then_503(synced_stack: Stack, redis_client) -> None:  # type: ignore[no-untyped-def]
    good = get(synced_stack, "new-arrivals", limit=7)
    assert good.status_code == 200
    meili = synced_stack.services.meili
    # Point the app at a Meilisearch that is not there (the shared test server keeps running).
    original = meili.config.url
    meili.config.url = "http://127.0.0.1:1"
    try:
        redis_client.incr(keys.feeds_version(DEMO_SHOP))  # force a miss: the body cache cannot answer
        stale = get(synced_stack, "new-arrivals", limit=7)
        assert stale.status_code == 200 and stale.headers["X-Lumi-Stale"] == "1"
        assert stale.json()["products"] == good.json()["products"]
        never = get(synced_stack, "new-arrivals", limit=8)
        assert never.status_code == 503 and never.headers["Retry-After"]
        assert never.json()["error"]["code"] == "feed_unavailable"
    finally:
        meili.config.url = original


def _validator(name: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    spec = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
    registry = Registry().with_resource("urn:openapi", Resource.opaque(spec))
    schema = {"$ref": f"urn:openapi#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


def test_every_feed_response_matches_the_openapi_schema(synced_stack: Stack) -> None:
    feed_schema = _validator("FeedResponse")
    for path in [*FEED_PATHS, "on-sale?order=newest"]:
        response = get(synced_stack, path, limit=20)
        assert response.status_code == 200, response.text
        assert sorted(feed_schema.iter_errors(response.json()), key=str) == [], path
    error = get(synced_stack, "new-arrivals", limit=0).json()
    assert list(_validator("Error").iter_errors(error)) == []


def test_redis_down_feeds_still_answer_from_meilisearch(env: dict[str, str], meili_client: meilisearch.Client,
                                                        start_worker) -> None:  # type: ignore[no-untyped-def]

    from devtools.services import RedisServer
    from feeds.index import ensure_indexes
    from tests.helpers import synced

    ensure_indexes(meili_client)
    own = RedisServer().start()  # this test stops its Redis; nobody else uses it
    stack = Stack({**env, "REDIS_URL": own.url}, {"SHOPS": {DEMO_SHOP: {"products": 60, "seed": 9}},
                                                 "BUCKET_SIZE": 20000, "RESTORE_RATE": 20000})
    try:
        start_worker(stack.env)
        stack.install()
        wait_until(synced(stack), what="the first sync")
        warm = get(stack, "new-arrivals", limit=6)
        assert warm.status_code == 200
        own.stop()
        cold = get(stack, "new-arrivals", limit=6)
        assert cold.status_code == 200, cold.text
        assert [p["id"] for p in cold.json()["products"]] == [p["id"] for p in warm.json()["products"]]
    finally:
        stack.stop()
        own.stop()


def test_concurrent_misses_for_one_feed_run_one_query(synced_stack: Stack, redis_client,
                                                      caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    import logging
    import threading

    caplog.set_level(logging.INFO, logger="feeds.service")
    redis_client.incr(keys.feeds_version(DEMO_SHOP))  # a fresh miss for everyone
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    def shopper() -> None:
        session = requests.Session()
        barrier.wait()
        statuses.append(session.get(f"{synced_stack.url}/proxy/feeds/on-sale?shop={DEMO_SHOP}&limit=9",
                                    timeout=30).status_code)

    threads = [threading.Thread(target=shopper) for _ in range(12)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 12
    computed = sorted((r for r in caplog.records if r.getMessage() == "feed computed" and r.feed == "on-sale"),  # type: ignore[attr-defined]
                      key=lambda r: r.created)
    assert computed
    # One query; a waiter queries itself only after waiting its full bound for an owner that is still busy (a
    # loaded machine), never sooner.
    from feeds.service import FILL_WAIT_SECONDS

    assert all(r.created - started >= FILL_WAIT_SECONDS for r in computed[1:]), [r.created - started for r in computed]


def test_repeat_requests_are_answered_before_flask_exactly_as_the_view_answers_them(
        synced_stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from flask import request_started

    caplog.set_level(logging.INFO, logger="lumi.request")
    reached: list[str] = []

    def seen(sender: object, **extra: object) -> None:
        from flask import request

        reached.append(request.path)

    url = f"{synced_stack.url}/proxy/feeds/new-arrivals?shop={DEMO_SHOP}&limit=6"
    gz = {"Accept-Encoding": "gzip"}
    with request_started.connected_to(seen, synced_stack.app):
        first = requests.get(url, headers=gz, timeout=30)  # computed by the view, answer stored
        second = requests.get(url, headers=gz, timeout=30)  # the fast path
        assert reached == ["/proxy/feeds/new-arrivals"]
        assert (second.status_code, second.content) == (first.status_code, first.content)
        ignore = {"x-request-id", "date", "server", "connection", "server-timing"}  # per request (Flask only)
        assert {k.lower(): v for k, v in first.headers.items() if k.lower() not in ignore} == {
            k.lower(): v for k, v in second.headers.items() if k.lower() not in ignore}
        not_modified = requests.get(url, headers={**gz, "If-None-Match": first.headers["ETag"]}, timeout=30)
        assert not_modified.status_code == 304 and not_modified.content == b""
        cors = requests.get(url, headers={**gz, "Origin": f"https://{DEMO_SHOP}"}, timeout=30)
        assert cors.headers["Access-Control-Allow-Origin"] == f"https://{DEMO_SHOP}"
        plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
        assert plain.json() == first.json() and "Content-Encoding" not in plain.headers
        assert reached == ["/proxy/feeds/new-arrivals"]  # none of these reached Flask
        # A settings change: the next request goes to the view again and the answer changes.
        hidden = first.json()["products"][0]["id"]
        response = synced_stack.api("PATCH", "/api/settings", json={"excluded_products": [int(hidden)]})
        assert response.status_code == 200
        after = requests.get(url, headers=gz, timeout=30)
        assert reached[-1] == "/proxy/feeds/new-arrivals" and len(reached) == 3  # the PATCH and this one
        assert hidden not in [p["id"] for p in after.json()["products"]]
    fast_lines = [r for r in caplog.records if r.getMessage() == "request" and r.path == "/proxy/feeds/new-arrivals"]  # type: ignore[attr-defined]
    assert len(fast_lines) == 6 and {r.status for r in fast_lines} == {200, 304}  # type: ignore[attr-defined]
