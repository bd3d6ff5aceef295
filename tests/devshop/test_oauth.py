"""OAuth the way Shopify runs it: authorize + hmac'd callback, code/refresh/token-exchange grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlsplit

import jwt
import pytest
import requests

from devshop.testing import DevShopControl, DevShopServer

from .conftest import SHOP, Admin, FakeClock

KEY, SECRET = "test-client-id", "test-client-secret-long-enough-for-hs256"
APP = "http://127.0.0.1:1"  # never contacted: the test follows redirects by hand


def verify_callback_hmac(query: dict[str, str], secret: str) -> bool:
    """Written from the README's rule, independently of devshop's code."""
    message = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()) if k != "hmac")
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest, query["hmac"])


@pytest.fixture
def oauth_shop() -> Iterator[tuple[DevShopServer, FakeClock]]:
    clock = FakeClock()
    config = {"API_KEY": KEY, "API_SECRET": SECRET, "APP_URL": APP, "APP_TOML": "/nonexistent/shopify.app.toml",
              "TOKEN_TTL": 3600, "CLOCK": clock,
              "SHOPS": {SHOP: {"products": 20}}}
    with DevShopServer(config) as server:
        yield server, clock


def shop_url(server: DevShopServer, path: str) -> str:
    return server.admin_base_url.format(shop=SHOP) + path


def authorize(server: DevShopServer, **params: str) -> requests.Response:
    query = {"client_id": KEY, "scope": "read_products,read_orders", "redirect_uri": f"{APP}/auth/callback",
             "state": "nonce-123", **params}
    return requests.get(shop_url(server, "/admin/oauth/authorize"), params=query, allow_redirects=False, timeout=10)


def token_request(server: DevShopServer, body: dict[str, object], as_form: bool = False) -> requests.Response:
    body = {"client_id": KEY, "client_secret": SECRET, **body}
    url = shop_url(server, "/admin/oauth/access_token")
    if as_form:
        return requests.post(url, data=body, timeout=10)
    return requests.post(url, json=body, timeout=10)


def works(server: DevShopServer, token: str) -> bool:
    admin = Admin(server.admin_base_url, SHOP, token)
    try:
        return admin.post("{ shop { name } }").status_code == 200
    finally:
        admin.session.close()


def test_authorization_code_round_trip(oauth_shop: tuple[DevShopServer, FakeClock]) -> None:
    server, _ = oauth_shop
    response = authorize(server)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{APP}/auth/callback"
    query = dict(parse_qsl(location.query))
    assert set(query) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert query["shop"] == SHOP and query["state"] == "nonce-123"
    assert base64.b64decode(query["host"]).decode() == "admin.shopify.com/store/lumi-demo"
    assert abs(int(query["timestamp"]) - time.time()) < 90
    assert verify_callback_hmac(query, SECRET)
    assert not verify_callback_hmac({**query, "state": "tampered"}, SECRET)

    granted = token_request(server, {"code": query["code"]})
    assert granted.status_code == 200
    body = granted.json()
    assert set(body) == {"access_token", "scope"} and body["scope"] == "read_products,read_orders"
    assert works(server, body["access_token"])
    again = token_request(server, {"code": query["code"]})
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_request",
                            "error_description": "The authorization code was not found or was already used"}


def test_hmac_covers_awkward_state_values(oauth_shop: tuple[DevShopServer, FakeClock]) -> None:
    server, _ = oauth_shop
    location = authorize(server, state="a b&c=d%e/f+g").headers["Location"]
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["state"] == "a b&c=d%e/f+g"
    assert verify_callback_hmac(query, SECRET)


def test_authorize_rejects_strangers(oauth_shop: tuple[DevShopServer, FakeClock]) -> None:
    server, _ = oauth_shop
    assert authorize(server, client_id="someone-else").status_code == 400
    assert authorize(server, redirect_uri="https://evil.example/cb").status_code == 400
    bad_secret = token_request(server, {"code": "whatever", "client_secret": "wrong"})
    assert bad_secret.status_code == 400 and bad_secret.json()["error"] == "invalid_client"


def test_expiring_tokens_refresh_and_rotate(oauth_shop: tuple[DevShopServer, FakeClock]) -> None:
    server, clock = oauth_shop
    code = dict(parse_qsl(urlsplit(authorize(server).headers["Location"]).query))["code"]
    first = token_request(server, {"code": code, "expiring": "1"}, as_form=True).json()
    assert set(first) == {"access_token", "scope", "expires_in", "refresh_token", "refresh_token_expires_in"}
    assert first["expires_in"] == 3600
    assert works(server, first["access_token"])

    clock.advance(3601)
    assert not works(server, first["access_token"])  # expired after expires_in

    second = token_request(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    # The response got lost: the previous refresh token still works until the new pair is used.
    retry = token_request(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert retry.status_code == 200
    third = retry.json()
    assert works(server, third["access_token"])  # using the replacement retires the old refresh token
    retired = token_request(server, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert retired.status_code == 400 and retired.json()["error"] == "invalid_grant"
    fourth = token_request(server, {"grant_type": "refresh_token", "refresh_token": third["refresh_token"]})
    assert fourth.status_code == 200 and works(server, fourth.json()["access_token"])


def test_token_exchange(oauth_shop: tuple[DevShopServer, FakeClock]) -> None:
    server, _ = oauth_shop
    session_token = DevShopControl(server.url).session_token(SHOP)
    claims = jwt.decode(session_token, SECRET, algorithms=["HS256"], audience=KEY)
    assert claims["dest"] == f"https://{SHOP}" and claims["iss"] == f"https://{SHOP}/admin"
    exchange = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": session_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        "expiring": "1",
    }
    body = token_request(server, exchange).json()
    assert set(body) == {"access_token", "scope", "expires_in", "refresh_token", "refresh_token_expires_in"}
    assert works(server, body["access_token"])
    online = token_request(server, {**exchange, "requested_token_type":
                                    "urn:shopify:params:oauth:token-type:online-access-token"}).json()
    assert online["associated_user"]["id"] == 1 and "expires_in" in online

    forged = jwt.encode({**claims, "exp": int(time.time()) + 60}, "not-the-secret-but-long-enough-for-hs256",
                        algorithm="HS256")
    refused = token_request(server, {**exchange, "subject_token": forged})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_subject_token"
    stale = jwt.encode({**claims, "exp": int(time.time()) - 60, "nbf": int(time.time()) - 120}, SECRET,
                       algorithm="HS256")
    assert token_request(server, {**exchange, "subject_token": stale}).json()["error"] == "invalid_subject_token"


def test_per_user_grant_gives_an_online_token(oauth_shop: tuple[DevShopServer, FakeClock]) -> None:
    server, _ = oauth_shop
    location = authorize(server, **{"grant_options[]": "per-user"}).headers["Location"]
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    body = token_request(server, {"code": code}).json()
    assert {"access_token", "scope", "expires_in", "associated_user_scope", "associated_user"} <= set(body)
