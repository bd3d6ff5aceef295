"""The app proxy forwards storefront requests to the app as Shopify does: signed, cookie-free, headers filtered."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

from devshop.orders import DEMO_CUSTOMER_ID, OTHER_CUSTOMER_ID
from devshop.proxy import proxy_signature
from devshop.testing import DevShopControl, DevShopServer, QuietHandler

from .conftest import SHOP

SECRET = "proxy-test-secret-0123456789abcdef"
TOML = """
client_id = "lumi-dev-client-id"
name = "Lumi"
application_url = "https://lumi.example.com/app"
[app_proxy]
url = "https://lumi.example.com/proxy"
prefix = "apps"
subpath = "lumi"
"""


def independent_signature(pairs: list[tuple[str, str]], secret: str) -> str:
    """Shopify's documented recipe, written here without devshop's code."""
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        if key != "signature":
            values.setdefault(key, []).append(value)
    message = "".join(sorted(key + "=" + ",".join(vals) for key, vals in values.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_ok(pairs: list[tuple[str, str]], secret: str = SECRET) -> bool:
    given = [v for k, v in pairs if k == "signature"]
    return len(given) == 1 and hmac.compare_digest(independent_signature(pairs, secret), given[0])


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


Reply = Callable[[Seen], Response]


def default_reply(seen: Seen) -> Response:
    response = Response(json.dumps({"path": seen.path}), status=201, mimetype="application/json")
    response.headers["Set-Cookie"] = "tracker=1; Path=/"
    response.headers.add("Set-Cookie", "other=2; Path=/")
    response.headers["X-Lumi-Feed"] = "new"
    response.headers["Cache-Control"] = "public, max-age=60"
    response.headers["ETag"] = '"abc"'
    return response


class ProxyTarget:
    """The app end of the proxy, on a free port: records each request and answers with `reply`."""

    def __init__(self) -> None:
        self.seen: queue.Queue[Seen] = queue.Queue()
        self.reply: Reply = default_reply
        app = Flask("proxy-target")

        @app.route("/proxy", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @app.route("/proxy/", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @app.route("/proxy/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def target(rest: str = "") -> Response:
            seen = Seen(request.method, request.path, parse_qsl(request.query_string.decode(), keep_blank_values=True),
                        dict(request.headers), request.get_data())
            self.seen.put(seen)
            return self.reply(seen)

        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def next(self) -> Seen:
        return self.seen.get(timeout=10)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture
def target() -> Iterator[ProxyTarget]:
    app = ProxyTarget()
    yield app
    app.stop()


@pytest.fixture
def storefront(target: ProxyTarget, tmp_path: Path) -> Iterator[DevShopControl]:
    toml = tmp_path / "shopify.app.toml"
    toml.write_text(TOML, encoding="utf-8")
    config = {"API_SECRET": SECRET, "APP_URL": target.url, "APP_TOML": str(toml), "SHOPS": {SHOP: {"products": 3}},
              "APP_PROXY_TIMEOUT": 0.5}
    with DevShopServer(config) as server:
        control = DevShopControl(server.url)
        control.issue_token(SHOP)  # the app is installed
        yield control


def test_shopifys_documented_example() -> None:
    pairs = [("extra", "1"), ("extra", "2"), ("shop", "shop-name.myshopify.com"), ("logged_in_customer_id", "1"),
             ("path_prefix", "/apps/awesome_reviews"), ("timestamp", "1317327555")]
    expected = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
    assert proxy_signature(pairs, "hush") == expected
    assert independent_signature(pairs, "hush") == expected
    assert expected.startswith("4c68c8624d737112c91818c11017d24d334b")


def test_the_documented_request_end_to_end(target: ProxyTarget, tmp_path: Path) -> None:
    config = {"API_SECRET": "hush", "APP_URL": target.url, "APP_TOML": str(tmp_path / "none.toml"),
              "APP_PROXY": {"url": "/proxy", "prefix": "apps", "subpath": "awesome_reviews"},
              "SHOPS": {"shop-name.myshopify.com": {"products": 1}}}
    with DevShopServer(config) as server:
        control = DevShopControl(server.url)
        control.issue_token("shop-name.myshopify.com")
        url = control.proxy_url("shop-name.myshopify.com", "extra/path/components")
        assert url == f"{server.url}/shops/shop-name.myshopify.com/apps/awesome_reviews/extra/path/components"
        cookie = "csrftoken=01234456789abcdef0123456789abcde; _session_id=1234456789abcdef0123456789abcdef"
        answer = requests.get(url, params=[("extra", "1"), ("extra", "2")],
                              headers={"Cookie": cookie, "X-Devshop-Customer-Id": "1"}, timeout=10)
    assert answer.status_code == 201
    seen = target.next()
    assert seen.path == "/proxy/extra/path/components"
    assert [k for k, _ in seen.query] == ["extra", "extra", "shop", "logged_in_customer_id", "path_prefix",
                                          "timestamp", "signature"]
    query = dict(seen.query)
    assert query["shop"] == "shop-name.myshopify.com" and query["logged_in_customer_id"] == "1"
    assert query["path_prefix"] == "/apps/awesome_reviews"
    assert abs(int(query["timestamp"]) - time.time()) < 30
    assert signature_ok(seen.query, "hush")
    # With the documented timestamp, the same parameters give the documented signature.
    documented = [(k, "1317327555" if k == "timestamp" else v) for k, v in seen.query if k != "signature"]
    assert independent_signature(documented, "hush").startswith("4c68c8624d737112c91818c11017d24d334b")
    assert "Cookie" not in seen.headers and "X-Devshop-Customer-Id" not in seen.headers
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["X-Forwarded-Host"] == "shop-name.myshopify.com"


def test_get_is_forwarded_signed_and_the_answer_filtered(storefront: DevShopControl, target: ProxyTarget) -> None:
    url = storefront.proxy_url(SHOP, "feeds/new-arrivals")
    answer = requests.get(url, params={"limit": "8", "q": "a b&c=d/é"},
                          headers={"Cookie": "_shopify_y=abc", "X-Request-Id": "r-1", "Accept": "application/json"},
                          timeout=10)
    seen = target.next()
    assert seen.method == "GET" and seen.path == "/proxy/feeds/new-arrivals"
    query = dict(seen.query)
    assert query["limit"] == "8" and query["q"] == "a b&c=d/é", "the shopper's query arrives intact"
    assert query["shop"] == SHOP and query["path_prefix"] == "/apps/lumi"
    assert query["logged_in_customer_id"] == "", "logged out: present and empty"
    assert signature_ok(seen.query)
    assert not signature_ok([*seen.query[:-1], ("signature", "0" * 64)])
    assert "Cookie" not in seen.headers
    assert seen.headers["X-Request-Id"] == "r-1" and seen.headers["Accept"] == "application/json"
    assert seen.headers["Host"] == target.url.removeprefix("http://")

    assert answer.status_code == 201 and answer.json() == {"path": "/proxy/feeds/new-arrivals"}
    assert "Set-Cookie" not in answer.headers and not answer.cookies
    assert answer.headers["X-Lumi-Feed"] == "new"
    assert answer.headers["Cache-Control"] == "public, max-age=60" and answer.headers["ETag"] == '"abc"'
    assert answer.headers["Content-Type"] == "application/json"
    assert len(answer.raw.headers.getlist("Server")) == len(answer.raw.headers.getlist("Date")) == 1


def test_bodies_and_methods_are_forwarded(storefront: DevShopControl, target: ProxyTarget) -> None:
    url = storefront.proxy_url(SHOP, "chat/sessions")
    posted = requests.post(url, json={"message": "Where is my order #1001?"},
                           headers={"X-Devshop-Customer-Id": "7700000000001"}, timeout=10)
    assert posted.status_code == 201
    seen = target.next()
    assert seen.method == "POST" and json.loads(seen.body) == {"message": "Where is my order #1001?"}
    assert seen.headers["Content-Type"] == "application/json"
    assert dict(seen.query)["logged_in_customer_id"] == "7700000000001" and signature_ok(seen.query)
    for method in ("PUT", "PATCH", "DELETE"):
        assert requests.request(method, url, data=b"x=1", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                timeout=10).status_code == 201
        seen = target.next()
        assert (seen.method, seen.body, seen.headers["Content-Type"]) == (
            method, b"x=1", "application/x-www-form-urlencoded")


def test_the_proxy_root_and_trailing_slashes(storefront: DevShopControl, target: ProxyTarget) -> None:
    assert requests.get(storefront.proxy_url(SHOP), timeout=10).status_code == 201
    assert target.next().path == "/proxy"
    assert requests.get(storefront.proxy_url(SHOP) + "/", timeout=10).status_code == 201
    assert target.next().path == "/proxy/"
    assert requests.get(storefront.proxy_url(SHOP, "a/b/"), timeout=10).status_code == 201
    assert target.next().path == "/proxy/a/b/"


def test_shoppers_cannot_supply_the_signed_parameters(storefront: DevShopControl, target: ProxyTarget) -> None:
    forged = [("shop", "evil.myshopify.com"), ("logged_in_customer_id", "99"), ("signature", "f" * 64),
              ("timestamp", "1"), ("path_prefix", "/x"), ("page", "2")]
    requests.get(storefront.proxy_url(SHOP, "feeds/x"), params=forged, timeout=10)
    seen = target.next()
    keys = [k for k, _ in seen.query]
    assert keys == ["page", "shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature"]
    assert dict(seen.query)["shop"] == SHOP and dict(seen.query)["logged_in_customer_id"] == ""
    assert signature_ok(seen.query)


def test_redirects_errors_and_encodings_pass_through(storefront: DevShopControl, target: ProxyTarget) -> None:
    target.reply = lambda seen: Response("", status=302, headers={"Location": "/apps/lumi/elsewhere"})
    moved = requests.get(storefront.proxy_url(SHOP, "old"), allow_redirects=False, timeout=10)
    assert moved.status_code == 302 and moved.headers["Location"] == "/apps/lumi/elsewhere"

    target.reply = lambda seen: Response('{"error":{"code":"bad_signature"}}', status=401,
                                         mimetype="application/json")
    refused = requests.get(storefront.proxy_url(SHOP, "chat"), timeout=10)
    assert refused.status_code == 401 and refused.json() == {"error": {"code": "bad_signature"}}

    packed = gzip.compress(b'{"products":[]}')
    target.reply = lambda seen: Response(packed, headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
                                         mimetype="application/json")
    zipped = requests.get(storefront.proxy_url(SHOP, "feeds/x"), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.json() == {"products": []}
    assert [target.next().headers.get("Accept-Encoding") for _ in range(3)][-1] == "gzip"


def test_slow_or_absent_apps_give_gateway_errors(storefront: DevShopControl, target: ProxyTarget) -> None:
    def slow(seen: Seen) -> Response:
        time.sleep(1.0)
        return Response("late")

    target.reply = slow
    assert requests.get(storefront.proxy_url(SHOP, "slow"), timeout=10).status_code == 504
    target.stop()
    target.stop = lambda: None  # type: ignore[method-assign]
    assert requests.get(storefront.proxy_url(SHOP, "gone"), timeout=10).status_code == 502


def test_only_shops_with_the_app_installed_are_proxied(storefront: DevShopControl, target: ProxyTarget) -> None:
    storefront.create_shop("bare.myshopify.com", products=1)
    missing = requests.get(storefront.proxy_url("bare.myshopify.com", "feeds/x"), timeout=10)
    assert missing.status_code == 404 and "not installed" in missing.text
    assert requests.get(storefront.proxy_url("nope.myshopify.com", "x"), timeout=10).status_code == 404
    assert requests.get(storefront.proxy_url(SHOP, "x"), timeout=10).status_code == 201
    storefront.uninstall(SHOP)
    assert requests.get(storefront.proxy_url(SHOP, "x"), timeout=10).status_code == 404
    target.next()
    assert target.seen.empty()


def test_configuration_comes_from_the_toml(storefront: DevShopControl, target: ProxyTarget) -> None:
    proxy = storefront.app()["app_proxy"]
    assert proxy == {"url": f"{target.url}/proxy", "prefix": "apps", "subpath": "lumi", "path_prefix": "/apps/lumi",
                     "storefront_path": "/shops/{shop}/apps/lumi"}


@pytest.mark.parametrize("bad", [{"url": "/p", "prefix": "shop", "subpath": "lumi"},
                                 {"url": "/p", "prefix": "apps", "subpath": "admin"},
                                 {"url": "/p", "prefix": "apps", "subpath": "has/slash"},
                                 {"url": "/p", "prefix": "apps", "subpath": "x" * 31}])
def test_bad_proxy_settings_are_refused(bad: dict[str, str]) -> None:
    from devshop import create_app

    with pytest.raises(ValueError, match="app_proxy"):
        create_app({"APP_URL": "http://127.0.0.1:1", "APP_PROXY": bad, "SHOPS": {}})


def test_no_app_url_means_no_proxy(tmp_path: Path) -> None:
    toml = tmp_path / "shopify.app.toml"
    toml.write_text(TOML, encoding="utf-8")
    with DevShopServer({"APP_TOML": str(toml), "SHOPS": {SHOP: {"products": 1}}}) as server:
        control = DevShopControl(server.url)
        assert control.app()["app_proxy"] is None
        with pytest.raises(LookupError):
            control.proxy_url(SHOP, "x")
        assert requests.get(f"{server.url}/shops/{SHOP}/apps/lumi/x", timeout=10).status_code == 404


# ---- streaming and buffering -------------------------------------------------------------------------------------

SSE_FIRST = b": lumi\n\n"
SSE_REST = (b'event: delta\ndata: {"text": "Your order"}\n\n', b'event: final\ndata: {"done": true}\n\n')


class SlowEvents:
    """An app answer that writes the first event of a Server-Sent Events stream, then waits (for `gate`, at most
    `wait` seconds), then writes the rest: `finished` is set once the app has written its last byte."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.gate = threading.Event()
        self.finished = threading.Event()

    def __call__(self, seen: Seen) -> Response:
        def events() -> Iterator[bytes]:
            yield SSE_FIRST
            self.gate.wait(self.wait)
            yield from SSE_REST
            self.finished.set()

        return Response(events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


def test_a_streamed_answer_reaches_the_shopper_as_the_app_writes_it(storefront: DevShopControl,
                                                                    target: ProxyTarget) -> None:
    assert storefront.proxy_settings()["buffer"] is False, "streaming is the default"
    target.reply = events = SlowEvents(wait=10)
    with requests.post(storefront.proxy_url(SHOP, "chat/sessions/s1/messages"), json={"text": "hi"},
                       headers={"Accept": "text/event-stream"}, stream=True, timeout=10) as answer:
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
        assert "Content-Length" not in answer.headers and answer.headers["Transfer-Encoding"] == "chunked"
        chunks = answer.iter_content(chunk_size=None)
        first = next(chunks)
        # The app is still waiting for the test: only an unbuffered proxy could have passed its first event on.
        assert first == SSE_FIRST and not events.finished.is_set()
        events.gate.set()
        rest = b"".join(chunks)
    assert first + rest == SSE_FIRST + b"".join(SSE_REST) and events.finished.is_set()
    assert answer.headers["Cache-Control"] == "no-cache"


def test_buffering_sends_the_whole_answer_at_once_with_a_content_length(storefront: DevShopControl,
                                                                        target: ProxyTarget) -> None:
    assert storefront.set_proxy_buffer(True)["buffer"] is True
    assert storefront.proxy_settings()["buffer"] is True
    target.reply = events = SlowEvents(wait=0.3)  # writes, sleeps 0.3 s, writes
    with requests.post(storefront.proxy_url(SHOP, "chat/sessions/s1/messages"), json={"text": "hi"},
                       headers={"Accept": "text/event-stream"}, stream=True, timeout=10) as answer:
        # Nothing, not even the status line, came before the app had written its last byte.
        assert events.finished.is_set()
        body = answer.raw.read()
    whole = SSE_FIRST + b"".join(SSE_REST)
    assert answer.status_code == 200 and body == whole
    assert answer.headers["Content-Length"] == str(len(whole)) and "Transfer-Encoding" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/event-stream")

    # Switched back, the same answer streams again.
    assert storefront.set_proxy_buffer(False)["buffer"] is False
    target.reply = events = SlowEvents(wait=10)
    with requests.post(storefront.proxy_url(SHOP, "chat/x"), stream=True, timeout=10) as answer:
        assert next(answer.iter_content(chunk_size=None)) == SSE_FIRST and not events.finished.is_set()
        events.gate.set()


def test_the_proxy_switch_takes_only_a_boolean(storefront: DevShopControl) -> None:
    for bad in ({"buffer": "yes"}, {"buffer": 1}, {}):
        answer = requests.post(f"{storefront.url}/_devshop/proxy", json=bad, timeout=10)
        assert answer.status_code == 400 and "buffer" in answer.json()["error"]["message"]
    assert storefront.proxy_settings()["buffer"] is False


def test_either_way_cookies_are_stripped_and_the_request_signed(storefront: DevShopControl,
                                                                 target: ProxyTarget) -> None:
    for buffer in (False, True):
        storefront.set_proxy_buffer(buffer)
        answer = requests.get(storefront.proxy_url(SHOP, "feeds/x"), headers={"Cookie": "_shopify_y=abc"},
                              timeout=10)
        seen = target.next()
        assert "Cookie" not in seen.headers and signature_ok(seen.query)
        assert answer.status_code == 201 and answer.json() == {"path": "/proxy/feeds/x"}
        assert "Set-Cookie" not in answer.headers and answer.headers["X-Lumi-Feed"] == "new"
        assert answer.headers["Content-Length"] == str(len(answer.content)), "the app's length, or devshop's"


def test_an_answer_cut_short_while_streaming_is_not_passed_off_as_complete(storefront: DevShopControl,
                                                                          target: ProxyTarget) -> None:
    def hangs_up(seen: Seen) -> Response:
        def events() -> Iterator[bytes]:
            yield SSE_FIRST
            raise ConnectionAbortedError("the app died mid-answer")

        return Response(events(), mimetype="text/event-stream")

    target.reply = hangs_up
    with requests.get(storefront.proxy_url(SHOP, "chat/x"), stream=True, timeout=10) as answer:
        assert answer.status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            b"".join(answer.iter_content(chunk_size=None))


# ---- the logged-in customer --------------------------------------------------------------------------------------

def test_a_shopper_logged_in_on_devshop_reaches_the_app_as_logged_in_customer_id(storefront: DevShopControl,
                                                                                 target: ProxyTarget) -> None:
    url = storefront.proxy_url(SHOP, "chat/sessions")

    def customer_seen(session: requests.Session, **headers: str) -> str:
        assert session.post(url, json={}, headers=headers, timeout=10).status_code == 201
        seen = target.next()
        assert signature_ok(seen.query) and "Cookie" not in seen.headers, "devshop's cookie stays with devshop"
        return dict(seen.query)["logged_in_customer_id"]

    with requests.Session() as shopper:
        login = shopper.get(storefront.login_url(SHOP, DEMO_CUSTOMER_ID), allow_redirects=False, timeout=10)
        assert login.status_code == 303 and login.headers["Location"] == f"/shops/{SHOP}/"
        assert customer_seen(shopper) == str(DEMO_CUSTOMER_ID)
        assert customer_seen(shopper, **{"X-Devshop-Customer-Id": "42"}) == "42", "the header wins"
        assert shopper.get(storefront.logout_url(SHOP), timeout=10).status_code == 200  # back on the home page
        assert customer_seen(shopper) == ""
    with requests.Session() as forger:
        forger.cookies.set("devshop_customer", str(OTHER_CUSTOMER_ID + 1))
        assert customer_seen(forger) == "", "a cookie devshop did not set logs nobody in"
