"""Every door refuses a forged or malformed request with a JSON error, the right status, and writes nothing.

Install (`/auth/install`), OAuth callback (`/auth/callback`) and App Bridge session tokens (`/api/*`), all over
real HTTP against devshop. Only the callback may change Redis when refused, and only by consuming its
one-time `state` (that is what a one-time state is for).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import redis
import requests

from core import keys
from shopify.session_tokens import REQUIRED_CLAIMS, encode_session_token
from shopify.signatures import sign_oauth
from tests.conftest import DEMO_SHOP, OTHER_SHOP, TEST_API_KEY, TEST_API_SECRET, Stack, redis_snapshot

Pairs = list[tuple[str, str]]

OTHER_SECRET = "not-the-app-secret-but-long-enough-0123456789"


# --- helpers ---------------------------------------------------------------------------------------------------


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert "Location" not in response.headers
    return error


def flip(value: str, index: int | None = None) -> str:
    """`value` with one character changed to another of its kind (digit → digit, letter → letter, same case)."""
    positions = [i for i, ch in enumerate(value) if ch.isascii() and ch.isalnum()]
    assert positions, value
    i = positions[0] if index is None else positions[index]
    ch = value[i]
    if ch.isdigit():
        new = str((int(ch) + 1) % 10)
    elif ch.islower():
        new = chr((ord(ch) - ord("a") + 1) % 26 + ord("a"))
    else:
        new = chr((ord(ch) - ord("A") + 1) % 26 + ord("A"))
    return value[:i] + new + value[i + 1:]


def flip_hex(value: str, index: int = 0) -> str:
    """One hex digit of a hex string changed to another hex digit."""
    digits = "0123456789abcdef"
    ch = value[index].lower()
    return value[:index] + digits[(digits.index(ch) + 1) % 16] + value[index + 1:]


def replace(pairs: Pairs, name: str, value: str) -> Pairs:
    assert name in dict(pairs), (name, pairs)
    return [(k, value if k == name else v) for k, v in pairs]


def without(pairs: Pairs, name: str) -> Pairs:
    return [(k, v) for k, v in pairs if k != name]


def resign(pairs: Pairs) -> Pairs:
    """Sign the (modified) parameters with the app's real secret, so only the check under test can refuse them."""
    unsigned = without(pairs, "hmac")
    return [*unsigned, ("hmac", sign_oauth(unsigned, TEST_API_SECRET))]


def install_location(stack: Stack, shop: str) -> str:
    start = stack.http.get(f"{stack.url}/auth/install", params={"shop": shop}, allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    return start.headers["Location"]


def state_of(authorize_url: str) -> str:
    return dict(parse_qsl(urlsplit(authorize_url).query))["state"]


def real_callback(stack: Stack, shop: str = DEMO_SHOP) -> Pairs:
    """The callback query devshop's authorize screen really sends (merchant clicked Install)."""
    authorize = stack.http.get(install_location(stack, shop), allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, authorize.text
    location = urlsplit(authorize.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{stack.url}/auth/callback"
    pairs = parse_qsl(location.query, keep_blank_values=True)
    assert {k for k, _ in pairs} == {"code", "hmac", "host", "shop", "state", "timestamp"}, pairs
    return pairs


def call_back(stack: Stack, pairs: Pairs) -> requests.Response:
    return stack.http.get(f"{stack.url}/auth/callback", params=pairs, allow_redirects=False, timeout=30)


def assert_only_states_consumed(before: dict[str, object], after: dict[str, object], *states: str) -> None:
    """Nothing written; at most the given one-time states were consumed (deleted, not changed)."""
    allowed = {keys.oauth_state(state) for state in states}
    assert set(after) <= set(before), sorted(set(after) - set(before))
    assert set(before) - set(after) <= allowed, sorted(set(before) - set(after) - allowed)
    assert after == {k: v for k, v in before.items() if k in after}


def assert_not_installed(client: redis.Redis, shop: str) -> None:
    assert not client.exists(keys.shop(shop))
    assert not client.sismember(keys.SHOPS_INSTALLED, shop)


# --- /auth/install ---------------------------------------------------------------------------------------------

BAD_SHOP_QUERIES = {
    "other-domain": "shop=evil.com",
    "suffix-attack": "shop=shop.myshopify.com.evil.com",
    "upper-case": "shop=SHOP.myshopify.com",
    "path-traversal": "shop=shop.myshopify.com/../x",
    "with-scheme": "shop=https%3A%2F%2Fshop.myshopify.com",
    "empty": "shop=",
    "missing": "",
    "leading-space": "shop=%20shop.myshopify.com",
    "leading-plus-space": "shop=+shop.myshopify.com",
    "trailing-nul": "shop=shop.myshopify.com%00",
    "trailing-literal-%00": "shop=shop.myshopify.com%2500",
    "trailing-newline": "shop=shop.myshopify.com%0A",
    "trailing-dot": "shop=shop.myshopify.com.",
    "admin-store-url": "shop=admin.shopify.com%2Fstore%2Fshop",
}


@pytest.mark.parametrize("query", list(BAD_SHOP_QUERIES.values()), ids=list(BAD_SHOP_QUERIES))
def test_install_refuses_an_invalid_shop_without_redirect_or_write(
    stack: Stack, redis_client: redis.Redis, query: str
) -> None:
    before = redis_snapshot(redis_client)
    url = f"{stack.url}/auth/install" + (f"?{query}" if query else "")
    response = stack.http.get(url, allow_redirects=False, timeout=10)
    assert_error(response, 400, "invalid_shop")
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize("query", list(BAD_SHOP_QUERIES.values()), ids=list(BAD_SHOP_QUERIES))
def test_app_page_refuses_an_invalid_shop_without_redirect_or_write(
    stack: Stack, redis_client: redis.Redis, query: str
) -> None:
    before = redis_snapshot(redis_client)
    url = f"{stack.url}/app" + (f"?{query}" if query else "")
    assert_error(stack.http.get(url, allow_redirects=False, timeout=10), 400, "invalid_shop")
    assert redis_snapshot(redis_client) == before


def test_install_with_a_valid_shop_redirects_to_its_authorize_screen(stack: Stack, redis_client: redis.Redis) -> None:
    # The counterpart of the refusals above: the same request with a good shop is accepted.
    location = install_location(stack, DEMO_SHOP)
    assert location.startswith(stack.devshop.admin_base_url.format(shop=DEMO_SHOP) + "/admin/oauth/authorize?")
    assert redis_client.get(keys.oauth_state(state_of(location))) == DEMO_SHOP


# --- /auth/callback --------------------------------------------------------------------------------------------


def test_the_real_callback_installs(stack: Stack, redis_client: redis.Redis) -> None:
    # Baseline for the refusals below: the untouched callback is accepted.
    response = call_back(stack, real_callback(stack))
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == stack.control.admin_app_url(DEMO_SHOP)
    assert redis_client.sismember(keys.SHOPS_INSTALLED, DEMO_SHOP)


def test_callback_with_a_tampered_hmac_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    given = dict(pairs)["hmac"]
    for index in (0, len(given) - 1):
        before = redis_snapshot(redis_client)
        assert_error(call_back(stack, replace(pairs, "hmac", flip_hex(given, index))), 400, "bad_hmac")
        assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


@pytest.mark.parametrize("name", ["code", "shop", "state", "timestamp", "host"])
def test_callback_with_one_signed_parameter_changed_is_refused(
    stack: Stack, redis_client: redis.Redis, name: str
) -> None:
    pairs = real_callback(stack)
    # The last digit of the timestamp keeps it fresh; the first letter of the shop keeps it a valid domain:
    # only the signature can tell.
    tampered = replace(pairs, name, flip(dict(pairs)[name], -1 if name == "timestamp" else 0))
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, tampered), 400, "bad_hmac")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"], dict(tampered)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)
    assert_not_installed(redis_client, dict(tampered)["shop"])


def test_callback_without_hmac_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, without(pairs, "hmac")), 400, "bad_hmac")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


def test_callback_with_an_extra_unsigned_parameter_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, [*pairs, ("admin", "1")]), 400, "bad_hmac")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


def test_callback_with_a_repeated_parameter_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    # `shop=A&shop=B`: which one was signed would be ambiguous.
    pairs = real_callback(stack)
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, [("shop", OTHER_SHOP), *pairs]), 400, "bad_hmac")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)
    assert_not_installed(redis_client, OTHER_SHOP)


def test_callback_without_state_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, resign(without(pairs, "state"))), 400, "missing_state")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


def test_callback_with_an_unknown_state_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, resign(replace(pairs, "state", "never-issued-" + "x" * 30))), 400, "invalid_state")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


def test_replayed_callback_is_refused_because_its_state_was_used(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    first = call_back(stack, pairs)
    assert first.status_code == 302, first.text
    assert redis_client.sismember(keys.SHOPS_INSTALLED, DEMO_SHOP)
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, pairs), 400, "invalid_state")
    assert redis_snapshot(redis_client) == before  # the installed record is not touched either


def test_callback_with_a_state_issued_for_another_shop_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack, DEMO_SHOP)
    foreign_state = state_of(install_location(stack, OTHER_SHOP))
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, resign(replace(pairs, "state", foreign_state))), 400, "state_mismatch")
    assert_only_states_consumed(before, redis_snapshot(redis_client), foreign_state)
    assert redis_client.get(keys.oauth_state(dict(pairs)["state"])) == DEMO_SHOP
    assert_not_installed(redis_client, DEMO_SHOP)
    assert_not_installed(redis_client, OTHER_SHOP)


@pytest.mark.parametrize("offset", [-3600, -120, 120, 3600], ids=["hour-old", "minutes-old", "future", "far-future"])
def test_callback_with_a_stale_timestamp_is_refused(stack: Stack, redis_client: redis.Redis, offset: int) -> None:
    pairs = real_callback(stack)
    stale = resign(replace(pairs, "timestamp", str(int(time.time()) + offset)))
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, stale), 400, "stale_callback")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


def test_callback_with_a_host_of_another_shop_is_refused(stack: Stack, redis_client: redis.Redis) -> None:
    pairs = real_callback(stack)
    foreign_host = base64.b64encode(b"admin.shopify.com/store/other-shop").decode()
    before = redis_snapshot(redis_client)
    assert_error(call_back(stack, resign(replace(pairs, "host", foreign_host))), 400, "invalid_host")
    assert_only_states_consumed(before, redis_snapshot(redis_client), dict(pairs)["state"])
    assert_not_installed(redis_client, DEMO_SHOP)


# --- Session tokens on /api/* ----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(shop: str = DEMO_SHOP, now: int | None = None, **overrides: object) -> dict[str, object]:
    current = int(time.time()) if now is None else now
    base: dict[str, object] = {
        "iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": TEST_API_KEY, "sub": "42",
        "exp": current + 60, "nbf": current, "iat": current, "jti": f"jti-{current}", "sid": "sid-42",
    }
    base.update(overrides)
    return base


def hand_made(header: dict[str, object], payload: dict[str, object], signature: bytes = b"") -> str:
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), b64url(signature)])


def token(now: int | None = None, **overrides: object) -> str:
    current = int(time.time()) if now is None else now
    return encode_session_token(DEMO_SHOP, api_key=TEST_API_KEY, secret=TEST_API_SECRET, now=current, **overrides)


def _without_claim(name: str) -> str:
    payload = claims()
    del payload[name]
    return jwt.encode(payload, TEST_API_SECRET, algorithm="HS256")


def signed_hs256(payload: bytes) -> str:
    """Correctly signed with the app secret, but the payload is not a JSON object of claims."""
    signing_input = f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64url(payload)}"
    mac = hmac.new(TEST_API_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _hs512() -> str:
    header = b64url(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64url(json.dumps(claims()).encode())}"
    mac = hmac.new(TEST_API_SECRET.encode(), signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{b64url(mac)}"


# name → (Authorization header or None, expected code); tokens are built at call time (they age).
REFUSED_TOKENS = {
    "expired": (lambda: token(now=int(time.time()) - 71, lifetime=60), "token_expired"),
    "expired-far": (lambda: token(now=int(time.time()) - 3600), "token_expired"),
    "not-yet-valid": (lambda: token(nbf=math.ceil(time.time()) + 11), "token_not_yet_valid"),
    "wrong-audience": (lambda: token(aud="someone-elses-client-id"), "wrong_audience"),
    "wrong-secret": (lambda: encode_session_token(DEMO_SHOP, api_key=TEST_API_KEY, secret=OTHER_SECRET,
                                                  now=int(time.time())), "bad_signature"),
    "alg-none": (lambda: hand_made({"alg": "none", "typ": "JWT"}, claims()), "unsupported_algorithm"),
    "alg-none-upper": (lambda: hand_made({"alg": "None", "typ": "JWT"}, claims()), "unsupported_algorithm"),
    "alg-rs256": (lambda: hand_made({"alg": "RS256", "typ": "JWT"}, claims(), b"\x01" * 256), "unsupported_algorithm"),
    "alg-hs512": (_hs512, "unsupported_algorithm"),
    "dest-not-iss": (lambda: token(dest=f"https://{OTHER_SHOP}"), "issuer_mismatch"),
    "iss-not-admin": (lambda: token(iss=f"https://{DEMO_SHOP}/"), "issuer_mismatch"),
    "iss-other-path": (lambda: token(iss=f"https://{DEMO_SHOP}/admin/apps"), "issuer_mismatch"),
    "iss-http": (lambda: token(iss=f"http://{DEMO_SHOP}/admin"), "issuer_mismatch"),
    "dest-not-a-shop": (lambda: token(dest="https://evil.com", iss="https://evil.com/admin"), "invalid_shop"),
    **{f"missing-{name}": ((lambda name=name: _without_claim(name)), "missing_claim") for name in REQUIRED_CLAIMS},
    "garbage": (lambda: "garbage", "malformed_token"),
    "three-garbage-parts": (lambda: "a.b.c", "malformed_token"),
    "signed-non-json-payload": (lambda: signed_hs256(b"not json"), "malformed_token"),
    "signed-list-payload": (lambda: signed_hs256(b"[1, 2]"), "malformed_token"),
}


@pytest.fixture
def installed(stack: Stack) -> Stack:
    stack.install(DEMO_SHOP)
    return stack


def get_shop(stack: Stack, headers: dict[str, str]) -> requests.Response:
    return stack.http.get(f"{stack.url}/api/shop", headers=headers, timeout=10)


@pytest.mark.parametrize("name", list(REFUSED_TOKENS))
def test_refused_session_tokens(installed: Stack, redis_client: redis.Redis, name: str) -> None:
    make, code = REFUSED_TOKENS[name]
    before = redis_snapshot(redis_client)
    response = get_shop(installed, {"Authorization": f"Bearer {make()}"})
    error = assert_error(response, 401, code)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers
    assert TEST_API_SECRET not in response.text and OTHER_SECRET not in response.text
    assert TEST_API_SECRET not in error["message"]
    if name.startswith("missing-"):
        assert repr(name.removeprefix("missing-")) in error["message"]
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer   "},
     {"Authorization": "Basic " + base64.b64encode(b"lumi:" + TEST_API_SECRET.encode()).decode()},
     {"Authorization": "Token abc.def.ghi"}],
    ids=["no-header", "empty", "bearer-without-token", "bearer-blank", "basic", "other-scheme"],
)
def test_requests_without_a_bearer_session_token_are_refused(
    installed: Stack, redis_client: redis.Redis, headers: dict[str, str]
) -> None:
    before = redis_snapshot(redis_client)
    response = get_shop(installed, headers)
    assert_error(response, 401, "missing_session_token")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert TEST_API_SECRET not in response.text
    assert redis_snapshot(redis_client) == before


def test_token_a_few_seconds_expired_is_accepted_within_the_leeway(installed: Stack) -> None:
    # Shopify's libraries allow 10 s of clock skew; expired 9 s ago (at most, see the ceiling) is still fine.
    now = math.ceil(time.time())
    response = get_shop(installed, {"Authorization": f"Bearer {token(now=now - 69, lifetime=60)}"})
    assert response.status_code == 200, response.text
    assert response.json()["shop"]["domain"] == DEMO_SHOP


def test_token_valid_a_few_seconds_from_now_is_accepted_within_the_leeway(installed: Stack) -> None:
    now = int(time.time())
    response = get_shop(installed, {"Authorization": f"Bearer {token(nbf=now + 9, iat=now)}"})
    assert response.status_code == 200, response.text
    assert response.json()["shop"]["domain"] == DEMO_SHOP


def test_a_good_token_with_a_lower_case_scheme_is_accepted(installed: Stack) -> None:
    # RFC 7235: the auth scheme is case-insensitive.
    response = get_shop(installed, {"Authorization": f"bearer {installed.session_token()}"})
    assert response.status_code == 200, response.text
