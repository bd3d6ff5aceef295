"""A session token for shop A can never read or change shop B, whatever the request says about B.

The walk discovers every `/api/` route from the app's url_map, so a new route is covered the day it is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from werkzeug.routing import BuildError, Rule

from core import keys
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack

A, B = DEMO_SHOP, OTHER_SHOP
B_NAME = B.removesuffix(".myshopify.com")
IGNORED_METHODS = {"HEAD", "OPTIONS"}

# Every way a request could try to name a shop other than the one its token proves.
B_QUERY = {"shop": B, "domain": B, "shop_domain": B, "myshopify_domain": B, "host": B}
B_HEADERS = {
    "X-Shopify-Shop-Domain": B,
    "Shopify-Shop-Domain": B,
    "X-Shop-Domain": B,
    "X-Shop": B,
    "X-Forwarded-Host": B,
    "Origin": f"https://{B}",
    "Referer": f"https://{B}/admin/apps/lumi",
}
B_BODY = {"shop": B, "domain": B, "shop_domain": B, "myshopify_domain": B, "chat_enabled": False}
# A body that is valid on its own (so a write happens) while B is named everywhere else.
VALID_BODIES: list[dict[str, Any]] = [
    {"chat_enabled": False},
    {"widget": {"primary_color": "#000000", "greeting": "hello"}},
    {"feeds_enabled": False, "feed_default_limit": 7},
]


@dataclass(frozen=True)
class Route:
    rule: Rule
    method: str

    def path(self, app_url_map: Any) -> str:
        """The rule's URL with B in every path argument that takes text (or 1 where only a number fits)."""
        adapter = app_url_map.bind("localhost")
        values: dict[str, Any] = {}
        for argument in self.rule.arguments:
            values[argument] = B
        try:
            return adapter.build(self.rule.endpoint, values, method=self.method)
        except BuildError:
            return adapter.build(self.rule.endpoint, {name: 1 for name in self.rule.arguments}, method=self.method)

    def __str__(self) -> str:
        return f"{self.method} {self.rule.rule}"


def api_routes(stack: Stack) -> list[Route]:
    routes = [
        Route(rule, method)
        for rule in stack.app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]
    assert routes, "found no /api/ routes in the url_map: the walk would prove nothing"
    return routes


@pytest.fixture
def two_shops(stack: Stack) -> Iterator[Stack]:
    stack.install(A)
    stack.install(B)
    # B gets settings of its own, so a write aimed at it would show.
    response = stack.api("PATCH", "/api/settings", shop=B,
                         json={"chat_enabled": True, "widget": {"greeting": "B's own greeting"}})
    assert response.status_code == 200, response.text
    yield stack


def send(stack: Stack, route: Route, token_shop: str, *, params: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, body: Any = None) -> requests.Response:
    all_headers = {"Authorization": f"Bearer {stack.session_token(token_shop)}", **(headers or {})}
    kwargs: dict[str, Any] = {"params": params, "headers": all_headers, "timeout": 30, "allow_redirects": False}
    if body is not None and route.method not in {"GET", "DELETE"}:
        kwargs["json"] = body
    return stack.http.request(route.method, f"{stack.url}{route.path(stack.app.url_map)}", **kwargs)


def attempts(route: Route) -> list[tuple[str, dict[str, Any]]]:
    tries: list[tuple[str, dict[str, Any]]] = [
        ("query", {"params": B_QUERY}),
        ("headers", {"headers": B_HEADERS}),
        ("everywhere", {"params": B_QUERY, "headers": B_HEADERS, "body": B_BODY}),
    ]
    if route.method not in {"GET", "DELETE"}:
        tries.append(("body", {"body": B_BODY}))
        tries += [(f"valid-body-{i}", {"params": B_QUERY, "headers": B_HEADERS, "body": {**body, "shop": B}})
                  for i, body in enumerate(VALID_BODIES)]
        tries += [(f"valid-body-{i}-b-elsewhere", {"params": B_QUERY, "headers": B_HEADERS, "body": body})
                  for i, body in enumerate(VALID_BODIES)]
    return tries


def test_a_token_for_a_never_reaches_b_on_any_api_route(two_shops: Stack, redis_client: redis.Redis) -> None:
    stack = two_shops
    b_key = keys.shop(B)
    b_before = redis_client.hgetall(b_key)
    assert b_before, "B must be installed for this test to mean anything"
    others_before = {key: redis_client.type(key) for key in redis_client.scan_iter(f"*{B}*")}
    tried = 0
    for route in api_routes(stack):
        for label, attempt in attempts(route):
            response = send(stack, route, A, **attempt)
            where = f"{route} ({label}) → {response.status_code}"
            assert response.status_code < 500, (where, response.text[:500])
            assert B not in response.text and B_NAME not in response.text, (where, response.text[:500])
            if response.status_code == 200 and response.headers.get("Content-Type", "").startswith("application/json"):
                shown = _domains(response.json())
                assert shown <= {A}, (where, shown)
            assert redis_client.hgetall(b_key) == b_before, where
            tried += 1
    assert tried >= 3
    # Nothing else about B appeared or changed type either.
    assert {key: redis_client.type(key) for key in redis_client.scan_iter(f"*{B}*")} == others_before


def test_a_token_for_b_only_sees_b(two_shops: Stack, redis_client: redis.Redis) -> None:
    stack = two_shops
    a_before = redis_client.hgetall(keys.shop(A))
    seen = stack.http.get(f"{stack.url}/api/shop", params={"shop": A}, timeout=10,
                          headers={"Authorization": f"Bearer {stack.session_token(B)}", "X-Shopify-Shop-Domain": A})
    assert seen.status_code == 200, seen.text
    shop = seen.json()["shop"]
    assert shop["domain"] == B
    assert shop["settings"]["widget"]["greeting"] == "B's own greeting"
    assert A not in seen.text

    for route in api_routes(stack):
        for _label, attempt in attempts(route):
            swapped = {
                "params": {k: A for k in attempt.get("params", {})} or None,
                "headers": {k: (f"https://{A}" if v.startswith("https://") else A)
                            for k, v in attempt.get("headers", {}).items()},
                "body": ({k: (A if v == B else v) for k, v in attempt["body"].items()}
                         if isinstance(attempt.get("body"), dict) else None),
            }
            response = send(stack, route, B, **swapped)
            assert A not in response.text, (str(route), response.text[:500])
            assert redis_client.hgetall(keys.shop(A)) == a_before, str(route)


def test_each_shop_reads_its_own_settings_after_both_change_them(two_shops: Stack) -> None:
    stack = two_shops
    assert stack.api("PATCH", "/api/settings", shop=A, json={"language": "fr"}).status_code == 200
    assert stack.api("PATCH", "/api/settings", shop=B, json={"language": "de"}).status_code == 200
    assert stack.api("GET", "/api/settings", shop=A).json()["settings"]["language"] == "fr"
    assert stack.api("GET", "/api/settings", shop=B).json()["settings"]["language"] == "de"


def _domains(value: Any) -> set[str]:
    """Every string in a JSON document that looks like a shop domain."""
    found: set[str] = set()
    if isinstance(value, dict):
        for item in value.values():
            found |= _domains(item)
    elif isinstance(value, list):
        for item in value:
            found |= _domains(item)
    elif isinstance(value, str) and value.endswith(".myshopify.com"):
        found.add(value)
    return found
