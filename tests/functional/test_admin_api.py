"""The embedded admin's JSON API (`/api/shop`, `/api/settings`) over real HTTP with real session tokens."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest
import redis
import requests

from shopify import shop_settings
from shopify.oauth import REQUIRED_SCOPES
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack, redis_snapshot


@pytest.fixture
def installed(stack: Stack) -> Stack:
    stack.install(DEMO_SHOP)
    return stack


def patch(stack: Stack, body: Any = None, *, data: bytes | None = None, content_type: str = "application/json",
          session: requests.Session | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {stack.session_token()}", "Content-Type": content_type}
    payload = data if data is not None else json.dumps(body).encode()
    return (session or stack.http).patch(f"{stack.url}/api/settings", data=payload, headers=headers, timeout=30)


def current(stack: Stack) -> dict[str, Any]:
    response = stack.api("GET", "/api/settings")
    assert response.status_code == 200, response.text
    return response.json()


def test_get_shop_describes_the_installed_shop(stack: Stack) -> None:
    started = time.time()
    stack.install(DEMO_SHOP)
    finished = time.time()
    response = stack.api("GET", "/api/shop")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    shop = response.json()["shop"]
    assert shop["domain"] == DEMO_SHOP
    assert shop["status"] == "installed" and shop["needs_reauth"] is False and shop["reauth_reason"] is None
    assert set(REQUIRED_SCOPES) <= set(shop["scopes"])
    plan = shop["plan"]
    assert set(plan) == {"name", "label", "retention_days"}
    assert isinstance(plan["name"], str) and plan["name"] and isinstance(plan["label"], str) and plan["label"]
    assert isinstance(plan["retention_days"], int) and not isinstance(plan["retention_days"], bool)
    assert plan["retention_days"] > 0
    installed_at = shop["installed_at"]
    assert installed_at.endswith("Z"), installed_at
    parsed = datetime.fromisoformat(installed_at)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert started - 1 <= parsed.timestamp() <= finished + 1
    assert shop["settings"] == shop_settings.defaults()
    assert shop["settings_version"] == 1
    # The token never leaves the server.
    assert "token" not in {k.lower() for k in shop} and "refresh" not in response.text


def test_get_settings_matches_the_shop(installed: Stack) -> None:
    assert current(installed) == {"settings": shop_settings.defaults(), "settings_version": 1}


def test_patching_the_widget_colour_changes_only_that_field(installed: Stack) -> None:
    before = current(installed)
    response = patch(installed, {"widget": {"primary_color": "#AB12CD"}})
    assert response.status_code == 200, response.text
    expected = before["settings"]
    expected["widget"] = {**expected["widget"], "primary_color": "#ab12cd"}
    assert response.json() == {"settings": expected, "settings_version": before["settings_version"] + 1}
    assert current(installed) == response.json()
    shop = installed.api("GET", "/api/shop").json()["shop"]
    assert shop["settings"] == expected and shop["settings_version"] == 2


def test_successive_patches_merge_and_each_bumps_the_version_by_one(installed: Stack) -> None:
    changes: list[dict[str, Any]] = [
        {"chat_enabled": False},
        {"widget": {"greeting": "  Hello!  "}},
        {"feed_default_limit": 50, "out_of_stock": "hide"},
        {"pinned_products": {"trending": [3, "gid://shopify/Product/4", 3]}},
        {"escalation_email": "help@lumi-demo.example"},
        {"excluded_tags": ["sale", " sale ", "clearance"], "language": "fr"},
    ]
    for number, change in enumerate(changes, start=2):
        response = patch(installed, change)
        assert response.status_code == 200, (change, response.text)
        assert response.json()["settings_version"] == number
    settings = current(installed)["settings"]
    expected = shop_settings.defaults()
    expected.update({
        "chat_enabled": False, "feed_default_limit": 50, "out_of_stock": "hide",
        "pinned_products": {"trending": [3, 4]}, "escalation_email": "help@lumi-demo.example",
        "excluded_tags": ["sale", "clearance"], "language": "fr",
    })
    expected["widget"]["greeting"] = "Hello!"
    assert settings == expected


INVALID: dict[str, tuple[Any, str]] = {
    "unknown-key": ({"colour": "#000000"}, "colour"),
    "unknown-key-beside-a-valid-one": ({"chat_enabled": False, "nope": 1}, "nope"),
    "nested-unknown-key": ({"widget": {"font": "Comic Sans"}}, "widget.font"),
    "nested-unknown-beside-valid": ({"widget": {"primary_color": "#000000", "font": "x"}}, "widget.font"),
    "bool-as-string": ({"chat_enabled": "false"}, "chat_enabled"),
    "bool-as-int": ({"feeds_enabled": 0}, "feeds_enabled"),
    "limit-as-string": ({"feed_default_limit": "12"}, "feed_default_limit"),
    "limit-as-float": ({"feed_default_limit": 12.5}, "feed_default_limit"),
    "limit-as-bool": ({"feed_default_limit": True}, "feed_default_limit"),
    "limit-zero": ({"feed_default_limit": 0}, "feed_default_limit"),
    "limit-too-high": ({"feed_default_limit": 51}, "feed_default_limit"),
    "limit-negative": ({"feed_default_limit": -1}, "feed_default_limit"),
    "widget-not-object": ({"widget": "blue"}, "widget"),
    "widget-empty-object": ({"widget": {}}, "widget"),
    "colour-name": ({"widget": {"primary_color": "red"}}, "widget.primary_color"),
    "colour-short": ({"widget": {"text_color": "#fff"}}, "widget.text_color"),
    "colour-not-hex": ({"widget": {"primary_color": "#GGGGGG"}}, "widget.primary_color"),
    "colour-too-long": ({"widget": {"primary_color": "#1234567"}}, "widget.primary_color"),
    "colour-css-injection": ({"widget": {"primary_color": "#000000;background:url(x)"}}, "widget.primary_color"),
    "colour-number": ({"widget": {"primary_color": 123456}}, "widget.primary_color"),
    "colour-trailing-newline": ({"widget": {"primary_color": "#000000\n"}}, "widget.primary_color"),
    "position": ({"widget": {"position": "top"}}, "widget.position"),
    "greeting-too-long": ({"widget": {"greeting": "x" * 201}}, "widget.greeting"),
    "email-no-at": ({"escalation_email": "not-an-email"}, "escalation_email"),
    "email-no-dot": ({"escalation_email": "a@b"}, "escalation_email"),
    "email-space": ({"escalation_email": "a b@example.com"}, "escalation_email"),
    "email-two-ats": ({"escalation_email": "a@b@example.com"}, "escalation_email"),
    "email-number": ({"escalation_email": 5}, "escalation_email"),
    "pinned-unknown-feed": ({"pinned_products": {"staff-picks": [1]}}, "pinned_products.staff-picks"),
    "pinned-not-object": ({"pinned_products": [1, 2]}, "pinned_products"),
    "pinned-bad-id": ({"pinned_products": {"trending": [0]}}, "pinned_products.trending"),
    "excluded-tags-string": ({"excluded_tags": "sale"}, "excluded_tags"),
    "excluded-tags-empty-tag": ({"excluded_tags": ["  "]}, "excluded_tags"),
    "excluded-products-bad": ({"excluded_products": ["gid://shopify/Collection/1"]}, "excluded_products"),
    "out-of-stock": ({"out_of_stock": "delete"}, "out_of_stock"),
    "language": ({"language": "xx"}, "language"),
    "returns-policy-too-long": ({"returns_policy": "x" * 2001}, "returns_policy"),
    "body-list": ([{"chat_enabled": False}], "body"),
    "body-string": ("chat_enabled", "body"),
    "body-number": (5, "body"),
    "body-true": (True, "body"),
    "body-empty-object": ({}, "body"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_each_invalid_setting_is_refused_and_nothing_is_saved(
    installed: Stack, redis_client: redis.Redis, name: str
) -> None:
    body, field = INVALID[name]
    before = redis_snapshot(redis_client)
    response = patch(installed, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(response.json()) == {"error"}
    assert error["code"] == "invalid_setting", error
    assert error["details"] == {"field": field}, error
    assert isinstance(error["message"], str) and field in error["message"]
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize("data,content_type", [
    (b"{not json", "application/json"),
    (b'{"chat_enabled": false', "application/json"),
    (b"", "application/json"),
    (b'{"chat_enabled": false}', "text/plain"),
], ids=["broken", "truncated", "empty", "not-declared-json"])
def test_a_body_that_is_not_json_is_refused_and_nothing_is_saved(
    installed: Stack, redis_client: redis.Redis, data: bytes, content_type: str
) -> None:
    before = redis_snapshot(redis_client)
    response = patch(installed, data=data, content_type=content_type)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_json", error
    assert isinstance(error["message"], str) and error["message"]
    assert redis_snapshot(redis_client) == before


def test_concurrent_patches_of_different_fields_both_land(installed: Stack) -> None:
    rounds = 4
    for number in range(rounds):
        changes = [{"chat_enabled": number % 2 == 0}, {"widget": {"greeting": f"round {number}"}}]
        barrier = threading.Barrier(len(changes))
        statuses: list[int] = []
        errors: list[BaseException] = []

        def send(change: dict[str, Any], barrier: threading.Barrier = barrier,
                 statuses: list[int] = statuses, errors: list[BaseException] = errors) -> None:
            with requests.Session() as session:
                try:
                    barrier.wait(timeout=10)
                    statuses.append(patch(installed, change, session=session).status_code)
                except BaseException as err:  # noqa: BLE001 - reported below
                    errors.append(err)

        threads = [threading.Thread(target=send, args=(change,)) for change in changes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert statuses == [200, 200]
        state = current(installed)
        assert state["settings"]["chat_enabled"] is (number % 2 == 0)
        assert state["settings"]["widget"]["greeting"] == f"round {number}"
        assert state["settings_version"] == 1 + 2 * (number + 1)


def test_a_valid_token_for_a_shop_that_is_not_installed_gets_404_and_writes_nothing(
    installed: Stack, redis_client: redis.Redis
) -> None:
    before = redis_snapshot(redis_client)
    for method, kwargs in (("GET", {}), ("PATCH", {"json": {"chat_enabled": False}})):
        for path in ("/api/shop", "/api/settings"):
            if method == "PATCH" and path == "/api/shop":
                continue
            response = installed.api(method, path, shop=OTHER_SHOP, **kwargs)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "shop_not_installed"
    assert redis_snapshot(redis_client) == before
