"""The storefront edge (real nginx, deploy/edge/) in front of a real HTTP origin: what it caches, what it never does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from devtools.edge import EdgeServer
from tests.edge.origin import SHORT_CACHE_CONTROL, Answer, Origin, fetch, fetch_until, wait_for

SHOP = "lumi-demo.myshopify.com"
FEED = f"/proxy/feeds/new-arrivals?shop={SHOP}"
# Where the app says "cache me for 5 minutes": a revalidated entry stays fresh for the rest of a test.
LONG_CACHE_CONTROL = "public, max-age=60, s-maxage=300, stale-while-revalidate=600, stale-if-error=86400"
CACHED_STATES = {"HIT", "STALE", "UPDATING", "REVALIDATED"}


def get(edge: EdgeServer, path: str = FEED, **headers: str) -> Answer:
    return fetch(edge.port, path, headers={k.replace("_", "-"): v for k, v in headers.items()})


def cache_files(edge: EdgeServer) -> list[Path]:
    assert edge.cache_dir is not None
    return [p for p in edge.cache_dir.rglob("*") if p.is_file()]


# --- the basics --------------------------------------------------------------------------------


def test_first_request_misses_and_the_second_is_a_hit_that_never_reaches_the_app(
    edge: EdgeServer, origin: Origin
) -> None:
    first = get(edge)
    assert (first.status, first.cache) == (200, "MISS")
    assert origin.hits() == 1
    second = get(edge)
    assert (second.status, second.cache) == (200, "HIT")
    assert origin.hits() == 1, "a HIT must be answered by the edge alone"
    assert second.body == first.body and second.json()["shop"] == SHOP
    # The app's headers reach the shopper unchanged; purge tags are for the CDN only.
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Cache-Control"] == LONG_CACHE_CONTROL
    assert second.headers["Vary"] == "Accept-Encoding"
    assert second.headers.get("Surrogate-Key") is None and second.headers.get("Cache-Tag") is None


def test_the_shop_and_every_query_parameter_are_part_of_the_key(edge: EdgeServer, origin: Origin) -> None:
    assert get(edge).cache == "MISS"
    other = get(edge, "/proxy/feeds/new-arrivals?shop=other-shop.myshopify.com")
    assert other.cache == "MISS" and other.json()["shop"] == "other-shop.myshopify.com"
    assert get(edge, f"{FEED}&limit=4").cache == "MISS"
    assert get(edge, f"/proxy/feeds/best-sellers?shop={SHOP}").cache == "MISS"
    assert origin.hits() == 4
    assert get(edge, "/proxy/feeds/new-arrivals?shop=other-shop.myshopify.com").cache == "HIT"
    assert origin.hits() == 4


def test_a_burst_of_misses_for_one_feed_reaches_the_app_once(edge: EdgeServer, origin: Origin) -> None:
    origin.gate = threading.Event()  # the first request waits in the app while the others arrive
    answers: list[Answer] = []

    def shopper() -> None:
        answers.append(get(edge))

    threads = [threading.Thread(target=shopper) for _ in range(6)]
    threads[0].start()
    wait_for(lambda: origin.in_flight() == 1, "the first miss to reach the app")
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.3)  # let the others reach nginx and queue on the cache lock (no assertion on time)
    origin.gate.set()
    for thread in threads:
        thread.join(15)
    assert origin.hits() == 1, "proxy_cache_lock: one upstream request for the whole burst"
    assert sorted(a.cache or "-" for a in answers) == ["HIT"] * 5 + ["MISS"]
    assert len({a.body for a in answers}) == 1 and all(a.status == 200 for a in answers)


# --- expiry: stale-while-revalidate, revalidation, stale-if-error -------------------------------


def wait_expired(edge: EdgeServer, origin: Origin) -> Answer:
    """Poll the feed until the entry has expired (s-maxage=1); every HIT before that must not reach the app."""
    hits_before = origin.hits()

    def still_fresh(answer: Answer) -> None:
        assert answer.cache == "HIT", (answer.status, answer.cache)
        assert origin.hits() == hits_before

    return fetch_until(edge.port, FEED, lambda a: a.cache != "HIT", "the entry to expire", each=still_fresh)


def test_an_expired_feed_is_served_stale_at_once_while_one_background_request_refreshes_it(
    edge: EdgeServer, origin: Origin
) -> None:
    origin.cache_control = SHORT_CACHE_CONTROL
    first = get(edge)
    assert first.cache == "MISS" and first.json()["version"] == 1
    old_etag = first.headers["ETag"]

    # The catalogue changes; the app will hold the refresh until we let it go.
    origin.version, origin.cache_control = 2, LONG_CACHE_CONTROL
    origin.gate = threading.Event()
    stale = wait_expired(edge, origin)
    assert (stale.status, stale.cache) == (200, "STALE")
    assert stale.json()["version"] == 1, "the old body, straight from the cache"
    wait_for(lambda: origin.in_flight() == 1, "the background refresh to reach the app")
    assert len(origin.answered()) == 1, "the STALE answer came while the refresh was still held in the app"
    refresh = origin.seen[-1]
    assert refresh.if_none_match == old_etag, "proxy_cache_revalidate: the refresh is conditional"

    during = get(edge)
    assert (during.cache, during.json()["version"]) == ("UPDATING", 1)
    assert origin.hits() == 2, "one background refresh, however many shoppers arrive meanwhile"

    origin.gate.set()
    wait_for(lambda: len(origin.answered()) == 2, "the refresh to finish")
    fresh = fetch_until(edge.port, FEED, lambda a: a.cache != "UPDATING", "the new body to be stored")
    assert (fresh.cache, fresh.json()["version"]) == ("HIT", 2)
    assert fresh.headers["ETag"] != old_etag
    assert origin.hits() == 2 and [s.status for s in origin.answered()] == [200, 200]


def test_an_unchanged_feed_is_refreshed_with_a_304_and_served_from_the_cache_again(
    edge: EdgeServer, origin: Origin
) -> None:
    origin.cache_control = SHORT_CACHE_CONTROL
    first = get(edge)
    assert first.cache == "MISS"
    origin.cache_control = LONG_CACHE_CONTROL  # same body: the app will answer the refresh with 304
    assert wait_expired(edge, origin).cache == "STALE"
    wait_for(lambda: len(origin.answered()) == 2, "the background refresh")
    assert [s.status for s in origin.answered()] == [200, 304]
    again = fetch_until(edge.port, FEED, lambda a: a.cache != "UPDATING", "the refreshed entry")
    assert again.cache == "HIT" and again.body == first.body and again.headers["ETag"] == first.headers["ETag"]
    assert origin.hits() == 2, "the 304's s-maxage=300 extended the entry"


def test_when_the_app_is_down_the_cached_feed_is_still_served_stale(edge: EdgeServer, origin: Origin) -> None:
    # No stale-* extensions at all: proxy_cache_use_stale `error` bridges the outage by itself.
    origin.cache_control = "public, max-age=1, s-maxage=1"
    first = get(edge)
    assert first.cache == "MISS"
    origin.stop()  # connection refused from now on
    stale = wait_expired(edge, origin)
    assert (stale.status, stale.cache) == (200, "STALE") and stale.body == first.body
    for _ in range(3):
        again = get(edge)
        assert (again.status, again.cache, again.body) == (200, "STALE", first.body)
    # A feed the edge never cached has nothing to fall back on.
    assert get(edge, "/proxy/feeds/on-sale?shop=x.myshopify.com").status == 502


def test_when_the_app_fails_the_cached_feed_is_served_stale(edge: EdgeServer, origin: Origin) -> None:
    origin.cache_control = SHORT_CACHE_CONTROL
    first = get(edge)
    origin.fail_with = 503
    stale = wait_expired(edge, origin)
    assert (stale.status, stale.cache) == (200, "STALE") and stale.body == first.body
    wait_for(lambda: len(origin.answered()) == 2, "the failed refresh")
    assert origin.answered()[-1].status == 503
    again = get(edge)
    assert again.status == 200 and again.cache in {"STALE", "UPDATING"} and again.body == first.body


def test_a_feed_the_app_stops_serving_leaves_the_edge_once_stale_while_revalidate_has_passed(
    edge: EdgeServer, origin: Origin
) -> None:
    """Feeds turned off or the shop uninstalled: the app answers 404, and the edge must not keep the old
    feed alive past the app's stale-while-revalidate window (why `updating` is not in proxy_cache_use_stale)."""
    origin.cache_control = "public, max-age=1, s-maxage=1, stale-while-revalidate=1"
    assert get(edge).cache == "MISS"
    origin.fail_with = 404  # an error body without caching headers, like the app's APIError

    def old_feed_meanwhile(answer: Answer) -> None:
        assert (answer.status, answer.cache) in {(200, "HIT"), (200, "STALE"), (200, "UPDATING")}

    gone = fetch_until(edge.port, FEED, lambda a: a.status != 200, "the 404 to reach shoppers",
                       each=old_feed_meanwhile)
    assert (gone.status, gone.cache) == (404, "EXPIRED")


# --- never cached ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "extra"),
    [
        ("private, max-age=60", {}),
        ("no-store", {}),
        ("public, no-cache", {}),
        (LONG_CACHE_CONTROL, {"Set-Cookie": "session=abc; Path=/; HttpOnly"}),
    ],
    ids=["private", "no-store", "no-cache", "set-cookie"],
)
def test_private_no_store_and_cookie_responses_are_never_cached(
    edge: EdgeServer, origin: Origin, cache_control: str, extra: dict[str, str]
) -> None:
    origin.cache_control, origin.extra_headers = cache_control, extra
    answers = [get(edge) for _ in range(3)]
    assert all(a.status == 200 and a.cache not in CACHED_STATES for a in answers), [a.cache for a in answers]
    assert origin.hits() == 3, "every request reached the app"
    assert cache_files(edge) == [], "nothing was written to the cache"
    if "Set-Cookie" in extra:
        assert answers[0].headers["Set-Cookie"] == extra["Set-Cookie"]


def test_requests_with_credentials_bypass_the_cache(edge: EdgeServer, origin: Origin) -> None:
    for _ in range(2):
        assert get(edge, Authorization="Bearer someone").cache == "BYPASS"
    assert origin.hits() == 2
    assert get(edge).cache == "MISS", "the bypassed answers were not stored either"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/index"),
        ("GET", "/app?shop=lumi-demo.myshopify.com"),
        ("GET", "/auth/install?shop=lumi-demo.myshopify.com"),
        ("POST", "/proxy/chat/sessions"),
        ("POST", "/webhooks"),
        ("GET", "/healthz"),
    ],
)
def test_everything_but_feeds_is_proxied_uncached(edge: EdgeServer, origin: Origin, method: str, path: str) -> None:
    # The origin answers these with `public, s-maxage=300` and an ETag: the edge must still not cache them.
    for n in range(1, 4):
        answer = fetch(edge.port, path, method=method, body=b"{}" if method == "POST" else None)
        assert answer.status == 200 and answer.json()["path"] == path.split("?")[0]
        assert answer.cache is None, f"{path}: X-Cache-Status {answer.cache}"
        assert origin.hits(path.split("?")[0]) == n
    assert cache_files(edge) == []


# --- conditional requests and gzip -------------------------------------------------------------


def test_if_none_match_gets_a_304(edge: EdgeServer, origin: Origin) -> None:
    first = get(edge)
    etag = first.headers["ETag"]
    cached = get(edge, If_None_Match=etag)
    assert (cached.status, cached.cache, cached.raw) == (304, "HIT", b"")
    assert cached.headers["ETag"] == etag
    assert get(edge, If_None_Match='"something-else"').status == 200
    assert origin.hits() == 1, "the edge answered the conditional requests itself"

    # Uncached paths pass the condition to the app and its 304 back to the client.
    assert get(edge, "/api/shop").status == 200
    passed = get(edge, "/api/shop", If_None_Match='"other-1"')
    assert (passed.status, passed.cache) == (304, None)
    assert origin.seen[-1].if_none_match == '"other-1"' and origin.seen[-1].status == 304


def test_gzip_and_plain_bodies_are_cached_as_separate_variants(edge: EdgeServer, origin: Origin) -> None:
    zipped = get(edge, Accept_Encoding="gzip")
    assert (zipped.cache, zipped.headers["Content-Encoding"]) == ("MISS", "gzip")
    assert origin.seen[-1].accept_encoding == "gzip", "Accept-Encoding is passed through"
    plain = get(edge, Accept_Encoding="identity")
    assert plain.cache == "MISS" and plain.headers.get("Content-Encoding") is None, "Vary: a separate variant"
    assert plain.raw == zipped.body and len(zipped.raw) < len(plain.raw)

    again_zipped, again_plain = get(edge, Accept_Encoding="gzip"), get(edge, Accept_Encoding="identity")
    assert (again_zipped.cache, again_zipped.raw) == ("HIT", zipped.raw)
    assert (again_plain.cache, again_plain.raw) == ("HIT", plain.raw)
    assert origin.hits() == 2
