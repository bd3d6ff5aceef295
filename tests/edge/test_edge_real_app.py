"""The edge in front of Lumi's real feed endpoint (web/feeds.py) over the real stack: its headers cache as designed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import meilisearch
import pytest

from devtools.edge import EdgeServer
from feeds.index import ensure_indexes
from tests.conftest import DEMO_SHOP, Stack
from tests.edge.origin import fetch, fetch_until, wait_for
from tests.helpers import synced, wait_until

FEED = f"/proxy/feeds/new-arrivals?shop={DEMO_SHOP}&limit=5"
# The app's own knobs (core/settings.py), turned down so the test can watch an entry expire.
SHORT_FEED_CACHE = {"LUMI_FEED_MAX_AGE": "1", "LUMI_FEED_S_MAXAGE": "1", "LUMI_FEED_STALE_WHILE_REVALIDATE": "30",
                    "LUMI_FEED_STALE_IF_ERROR": "60"}


class FeedCounter:
    """WSGI middleware on the app: every /proxy/feeds/ request that reaches Python, with its answer's status."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.seen: list[tuple[str | None, str]] = []  # (If-None-Match, status line)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/proxy/feeds/"):
            return self.app(environ, start_response)
        condition = environ.get("HTTP_IF_NONE_MATCH")

        def counting_start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            with self._lock:
                self.seen.append((condition, status))
            return start_response(status, headers, *rest)

        return self.app(environ, counting_start)

    def statuses(self) -> list[int]:
        with self._lock:
            return [int(status.split()[0]) for _, status in self.seen]


@pytest.fixture
def real_stack(env: dict[str, str], meili_client: meilisearch.Client, start_worker: Any,
               request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The stack with the short feed cache above, or the cache settings a test passes (indirect parametrize)."""
    ensure_indexes(meili_client)
    cache = getattr(request, "param", SHORT_FEED_CACHE)
    stack = Stack({**env, **cache}, {"SHOPS": {DEMO_SHOP: {"products": 30, "seed": 1}}})
    try:
        start_worker(stack.env)
        stack.install()  # queues the first sync
        wait_until(synced(stack), what="the first sync")
        yield stack
    finally:
        stack.stop()


def test_the_real_feed_endpoint_is_cached_revalidated_with_its_etag_and_never_leaks_purge_tags(
    real_stack: Stack, tmp_path: Path
) -> None:
    counter = FeedCounter(real_stack.app.wsgi_app)
    real_stack.app.wsgi_app = counter  # type: ignore[method-assign]
    upstream = real_stack.url.removeprefix("http://")
    with EdgeServer(upstream=upstream, workdir=tmp_path / "edge", log_path=tmp_path / "edge.log") as edge:
        first = fetch(edge.port, FEED, headers={"Accept-Encoding": "gzip"})
        assert (first.status, first.cache) == (200, "MISS"), first.raw[:300]
        assert first.headers["Content-Encoding"] == "gzip" and len(first.json()["products"]) == 5
        assert first.headers["Cache-Control"] == (
            "public, max-age=1, s-maxage=1, stale-while-revalidate=30, stale-if-error=60")
        assert "Accept-Encoding" in first.headers["Vary"]
        assert first.headers.get("Surrogate-Key") is None and first.headers.get("Cache-Tag") is None
        etag = first.headers["ETag"]
        assert etag.startswith('"'), "a strong ETag"
        assert counter.statuses() == [200]

        # The shopper's own revalidation is answered by the edge while the entry is fresh (≥ 1 s after the MISS).
        conditional = fetch(edge.port, FEED, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert (conditional.status, conditional.cache) == (304, "HIT")
        assert counter.statuses() == [200]

        # Once s-maxage=1 has passed: STALE at once, one background request with the ETag, the app's 304.
        stale = fetch_until(edge.port, FEED, lambda a: a.cache not in {"HIT", "MISS"}, "the entry to expire",
                            headers={"Accept-Encoding": "gzip"})
        assert (stale.status, stale.cache, stale.body) == (200, "STALE", first.body)
        wait_for(lambda: len(counter.seen) >= 2, "the background revalidation to reach the app")
        assert counter.seen[1] == (etag, "304 NOT MODIFIED"), counter.seen
        assert len(counter.seen) == 2


# A minute of freshness: this test is about the cache key, not expiry (with s-maxage=1 a slow machine saw STALE).
@pytest.mark.parametrize("real_stack", [{**SHORT_FEED_CACHE, "LUMI_FEED_S_MAXAGE": "60"}], indirect=True)
def test_proxied_requests_share_one_edge_entry_whatever_their_signature(real_stack: Stack, tmp_path: Path) -> None:
    import time as _time
    from urllib.parse import urlencode

    from tests.functional.test_proxy import signed

    counter = FeedCounter(real_stack.app.wsgi_app)
    real_stack.app.wsgi_app = counter  # type: ignore[method-assign]
    upstream = real_stack.url.removeprefix("http://")
    path = "/proxy/feeds/best-sellers"
    with EdgeServer(upstream=upstream, workdir=tmp_path / "edge", log_path=tmp_path / "edge.log") as edge:
        now = int(_time.time())
        first = fetch(edge.port, f"{path}?{urlencode(signed(customer='', timestamp=now - 1, extra=[('limit', '4')]))}")
        assert (first.status, first.cache) == (200, "MISS"), first.raw[:300]
        # Another shopper, another timestamp, so another signature: the same entry.
        another = signed(customer="7700000424242", timestamp=now, extra=[("limit", "4")])
        second = fetch(edge.port, f"{path}?{urlencode(another)}")
        assert (second.status, second.cache, second.body) == (200, "HIT", first.body)
        assert counter.statuses() == [200]  # the second shopper never reached the app
        other = fetch(edge.port, f"{path}?{urlencode(signed(customer='', extra=[('limit', '5')]))}")
        assert other.cache == "MISS"  # the feed's own parameters still make their own entries


@pytest.mark.parametrize("real_stack", [{**SHORT_FEED_CACHE, "LUMI_FEED_S_MAXAGE": "60"}], indirect=True)
def test_each_country_and_locale_has_its_own_edge_entry_and_none_is_served_for_another(
        real_stack: Stack, tmp_path: Path) -> None:
    # devshop's demo shop sells in EUR at home and in USD in its second market (the United States).
    counter = FeedCounter(real_stack.app.wsgi_app)
    real_stack.app.wsgi_app = counter  # type: ignore[method-assign]
    upstream = real_stack.url.removeprefix("http://")
    with EdgeServer(upstream=upstream, workdir=tmp_path / "edge", log_path=tmp_path / "edge.log") as edge:
        answers = {}
        for query in ("country=US&locale=en", "country=FR&locale=fr", "country=FR&locale=en", "country=DE&locale=fr"):
            answer = fetch(edge.port, f"{FEED}&{query}", headers={"Accept-Encoding": "gzip"})
            assert (answer.status, answer.cache) == (200, "MISS"), (query, answer.raw[:300])
            assert answer.headers["Vary"] == "Accept-Encoding"  # nothing about the shopper: the URL says it all
            answers[query] = answer.json()["products"]
        assert len(counter.statuses()) == 4
        for query, products in answers.items():
            again = fetch(edge.port, f"{FEED}&{query}", headers={"Accept-Encoding": "gzip"})
            assert (again.status, again.cache) == (200, "HIT")
            assert again.json()["products"] == products
            assert {p["currency"] for p in products} == {"USD" if "US" in query else "EUR"}
        assert len(counter.statuses()) == 4
        assert answers["country=US&locale=en"][0]["price_formatted"].startswith("$")
        assert answers["country=FR&locale=fr"][0]["price_formatted"].endswith("€")
        assert answers["country=FR&locale=en"][0]["price_formatted"].startswith("€")
