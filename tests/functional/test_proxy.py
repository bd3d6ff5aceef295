"""Storefront requests through devshop's real app proxy reach `/proxy/*` signed; unsigned or forged ones don't."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import requests
from flask import Flask, request, request_started

from shopify import shop_settings
from shopify.signatures import sign_proxy
from tests.conftest import DEMO_SHOP, OTHER_SHOP, TEST_API_SECRET, Stack, redis_snapshot

Pairs = list[tuple[str, str]]
PATH_PREFIX = "/apps/lumi"


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Set-Cookie" not in response.headers


@contextmanager
def seen_by_app(app: Flask) -> Iterator[list[dict[str, Any]]]:
    """What the app itself received (query pairs and cookies) for each request, observed with Flask's signal."""
    seen: list[dict[str, Any]] = []

    def record(sender: Flask, **_: object) -> None:
        seen.append({"path": request.path, "args": list(request.args.items(multi=True)),
                     "cookie": request.headers.get("Cookie"), "cookies": dict(request.cookies)})

    with request_started.connected_to(record, app):
        yield seen


def signed(shop: str = DEMO_SHOP, *, customer: str = "", timestamp: int | None = None,
           extra: Pairs | None = None) -> Pairs:
    """Query pairs exactly as Shopify's proxy signs them, with the test app's secret."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    pairs: Pairs = [*(extra or []), ("shop", shop), ("logged_in_customer_id", customer),
                    ("path_prefix", PATH_PREFIX), ("timestamp", stamp)]
    return [*pairs, ("signature", sign_proxy(pairs, TEST_API_SECRET))]


def flip(value: str, index: int = -1) -> str:
    ch = value[index]
    if ch.isdigit():
        new = str((int(ch) + 1) % 10)
    elif "a" <= ch <= "f":
        new = "0" if ch == "f" else chr(ord(ch) + 1)
    elif ch.isalpha():
        new = "a" if ch == "z" else chr(ord(ch.lower()) + 1)
    else:
        new = "x"
    index = index % len(value)
    return value[:index] + new + value[index + 1:]


def direct(stack: Stack, pairs: Pairs | None, path: str = "/proxy/config") -> requests.Response:
    return stack.http.get(f"{stack.url}{path}", params=pairs, allow_redirects=False, timeout=10)


@pytest.fixture
def installed(stack: Stack) -> Stack:
    stack.install(DEMO_SHOP)
    return stack


# --- through devshop's proxy -------------------------------------------------------------------------------


def test_config_through_the_app_proxy_returns_the_shops_widget_settings(installed: Stack) -> None:
    response = requests.get(installed.control.proxy_url(DEMO_SHOP, "config"), timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    defaults = shop_settings.defaults()
    assert body == {
        "shop": DEMO_SHOP,
        "feeds_enabled": defaults["feeds_enabled"],
        "chat_enabled": defaults["chat_enabled"],
        "widget": defaults["widget"],
        "language": defaults["language"],
        "settings_version": 1,
    }
    assert "Set-Cookie" not in response.headers

    # A merchant's change is what the storefront sees next.
    change = {"widget": {"primary_color": "#AA3300"}, "chat_enabled": False}
    patch = installed.api("PATCH", "/api/settings", json=change)
    assert patch.status_code == 200, patch.text
    after = requests.get(installed.control.proxy_url(DEMO_SHOP, "config"), timeout=10).json()
    assert after["widget"] == {**defaults["widget"], "primary_color": "#aa3300"}
    assert after["chat_enabled"] is False
    assert after["settings_version"] == 2


def test_logged_in_customer_reaches_the_app_signed_and_cookies_do_not(installed: Stack) -> None:
    url = installed.control.proxy_url(DEMO_SHOP, "config")
    with seen_by_app(installed.app) as seen:
        headers = {"X-Devshop-Customer-Id": "7001", "Cookie": "_secure_session_id=shopper-secret"}
        response = requests.get(url, params={"ref": "home"}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert "Set-Cookie" not in response.headers
    assert "shopper-secret" not in response.text
    (arrived,) = [s for s in seen if s["path"] == "/proxy/config"]
    args = dict(arrived["args"])
    assert args["logged_in_customer_id"] == "7001"
    assert args["shop"] == DEMO_SHOP and args["path_prefix"] == PATH_PREFIX and args["ref"] == "home"
    assert arrived["cookie"] is None and arrived["cookies"] == {}


def test_logged_out_customer_arrives_with_a_blank_customer_id(installed: Stack) -> None:
    with seen_by_app(installed.app) as seen:
        response = requests.get(installed.control.proxy_url(DEMO_SHOP, "config"), timeout=10)
    assert response.status_code == 200, response.text
    (arrived,) = [s for s in seen if s["path"] == "/proxy/config"]
    assert dict(arrived["args"])["logged_in_customer_id"] == ""


def test_the_app_itself_sets_no_cookie_and_no_shared_cache(installed: Stack) -> None:
    response = direct(installed, signed(customer="7001"))
    assert response.status_code == 200, response.text
    assert "Set-Cookie" not in response.headers
    assert "public" not in response.headers.get("Cache-Control", "")


# --- direct calls, bypassing the proxy ---------------------------------------------------------------------


def test_direct_call_without_signature_is_refused(installed: Stack, redis_client: redis.Redis) -> None:
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, None), 401, "missing_signature")
    # Everything the proxy would add, except the signature.
    assert_error(direct(installed, [p for p in signed() if p[0] != "signature"]), 401, "missing_signature")
    assert redis_snapshot(redis_client) == before


def test_direct_call_with_a_good_signature_is_served(installed: Stack) -> None:
    # The baseline for the forgeries below: the test's own signing is what the app accepts.
    response = direct(installed, signed(customer="7001", extra=[("ref", "home")]))
    assert response.status_code == 200, response.text
    assert response.json()["shop"] == DEMO_SHOP


@pytest.mark.parametrize("name", ["shop", "timestamp", "path_prefix", "logged_in_customer_id", "signature"])
def test_a_flipped_byte_in_any_signed_parameter_is_refused(
    installed: Stack, redis_client: redis.Redis, name: str
) -> None:
    pairs = signed(customer="7001")
    # First letter of the shop keeps it a valid domain; last digit of the timestamp keeps it fresh.
    index = 0 if name == "shop" else -1
    tampered = [(k, flip(v, index) if k == name else v) for k, v in pairs]
    assert tampered != pairs
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, tampered), 401, "bad_signature")
    assert redis_snapshot(redis_client) == before


def test_a_customer_id_added_to_a_logged_out_request_is_refused(installed: Stack, redis_client: redis.Redis) -> None:
    pairs = [(k, "7001" if k == "logged_in_customer_id" else v) for k, v in signed(customer="")]
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, pairs), 401, "bad_signature")
    assert redis_snapshot(redis_client) == before


def test_a_parameter_added_after_signing_is_refused(installed: Stack, redis_client: redis.Redis) -> None:
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, [*signed(), ("customer_id", "7001")]), 401, "bad_signature")
    assert_error(direct(installed, [("admin", "1"), *signed()]), 401, "bad_signature")
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize("name", ["shop", "timestamp", "signature", "logged_in_customer_id", "path_prefix"])
def test_a_repeated_single_valued_parameter_is_refused(
    installed: Stack, redis_client: redis.Redis, name: str
) -> None:
    pairs = signed(customer="7001")
    value = dict(pairs)[name]
    second = {"shop": OTHER_SHOP, "timestamp": str(int(time.time())), "signature": value,
              "logged_in_customer_id": "7002", "path_prefix": "/a/lumi"}[name]
    before = redis_snapshot(redis_client)
    # Repeated after signing, before the genuine value, and repeated *inside* what was signed: all refused.
    assert_error(direct(installed, [*pairs, (name, second)]), 401, "bad_signature")
    assert_error(direct(installed, [(name, second), *pairs]), 401, "bad_signature")
    if name != "signature":
        unsigned = [p for p in pairs if p[0] != "signature"] + [(name, second)]
        both_signed = [*unsigned, ("signature", sign_proxy(unsigned, TEST_API_SECRET))]
        assert_error(direct(installed, both_signed), 401, "bad_signature")
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize("offset", [-3600, -96, 96, 3600], ids=["hour-old", "just-stale", "future", "far-future"])
def test_a_stale_timestamp_is_refused_even_when_correctly_signed(
    installed: Stack, redis_client: redis.Redis, offset: int
) -> None:
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, signed(timestamp=int(time.time()) + offset)), 401, "stale_request")
    assert redis_snapshot(redis_client) == before


def test_signed_for_a_shop_that_is_not_installed(installed: Stack, redis_client: redis.Redis) -> None:
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, signed(OTHER_SHOP)), 404, "shop_not_installed")
    assert redis_snapshot(redis_client) == before


def test_signed_with_an_invalid_shop_domain_is_refused(installed: Stack, redis_client: redis.Redis) -> None:
    before = redis_snapshot(redis_client)
    assert_error(direct(installed, signed("evil.com")), 401, "invalid_shop")
    assert redis_snapshot(redis_client) == before
