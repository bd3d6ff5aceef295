"""Client-secret rotation and app-proxy re-splitting, through the real app (Flask test client, real Redis).

During a rotation (docs/secret-rotation.md) SHOPIFY_API_SECRET holds the new secret and SHOPIFY_API_SECRET_PREVIOUS
the old one: webhooks, app-proxy requests, session tokens and OAuth callbacks signed with either are accepted, and
each use of the old one is logged so the operator can tell when to drop it. Without the variable the old secret
signs nothing. A signed proxy query that can be re-read as another parameter set is refused.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shopify.oauth import REQUIRED_SCOPES, TokenSet
from shopify.session_tokens import encode_session_token
from shopify.signatures import sign_oauth, sign_proxy, sign_webhook
from tests.conftest import DEMO_SHOP, TEST_API_KEY, TEST_API_SECRET, redis_snapshot

NEW_SECRET = "shpss_rotated-client-secret-fedcba9876543210"
OLD_SECRET = TEST_API_SECRET  # what the app was deployed with before the rotation
STRANGER = "shpss_never-this-apps-secret-0123456789abc"
PATH_PREFIX = "/apps/lumi"
Pairs = list[tuple[str, str]]


@pytest.fixture
def make_app(env: dict[str, str]) -> Iterator[Callable[..., FlaskClient]]:
    """`make_app(previous=...)`: the real app with SHOPIFY_API_SECRET=NEW_SECRET, DEMO_SHOP installed."""
    apps: list[Flask] = []

    def make(previous: str | None) -> FlaskClient:
        from web import create_app

        app_env = {**env, "SHOPIFY_API_SECRET": NEW_SECRET}
        if previous is not None:
            app_env["SHOPIFY_API_SECRET_PREVIOUS"] = previous
        app = create_app(app_env)
        apps.append(app)
        tokens = TokenSet(access_token="shpat_rotation", scopes=REQUIRED_SCOPES, expires_at=None,
                          refresh_token=None, refresh_expires_at=None)
        app.extensions["lumi.services"].shops.install(DEMO_SHOP, tokens)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["lumi.services"].close()


def send_webhook(client: FlaskClient, secret: str) -> TestResponse:
    body = json.dumps({"id": 632910392, "updated_at": "2026-11-01T10:00:00-05:00"}).encode()
    headers = {"X-Shopify-Hmac-Sha256": sign_webhook(body, secret), "X-Shopify-Topic": "products/update",
               "X-Shopify-Shop-Domain": DEMO_SHOP, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
               "X-Shopify-API-Version": "2026-10", "Content-Type": "application/json"}
    return client.post("/webhooks", data=body, headers=headers)


def proxy_pairs(secret: str, sent: Pairs | None = None, customer: str = "") -> Pairs:
    """What Shopify's proxy forwards: the shopper's parameters plus its own, signed with `secret`."""
    pairs = [*(sent or []), ("shop", DEMO_SHOP), ("logged_in_customer_id", customer),
             ("path_prefix", PATH_PREFIX), ("timestamp", str(int(time.time())))]
    return [*pairs, ("signature", sign_proxy(pairs, secret))]


def proxy_get(client: FlaskClient, pairs: Pairs) -> TestResponse:
    return client.get("/proxy/config", query_string=pairs)


def admin_get(client: FlaskClient, secret: str) -> TestResponse:
    token = encode_session_token(DEMO_SHOP, api_key=TEST_API_KEY, secret=secret, now=int(time.time()))
    return client.get("/api/shop", headers={"Authorization": f"Bearer {token}"})


def oauth_callback(client: FlaskClient, secret: str) -> TestResponse:
    pairs = [("code", "0907a61c0c8d55e99db179b68161bc00"), ("shop", DEMO_SHOP), ("state", "never-issued"),
             ("timestamp", str(int(time.time())))]
    return client.get("/auth/callback", query_string=[*pairs, ("hmac", sign_oauth(pairs, secret))])


def error_code(response: TestResponse, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json, response.headers.get("Content-Type")
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return str(body["error"]["code"])


def previous_secret_uses(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.surface for r in caplog.records if getattr(r, "event", None) == "previous_secret_used"]  # type: ignore[attr-defined]


def test_during_a_rotation_requests_signed_with_the_old_secret_are_accepted_and_logged(
    make_app: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(previous=OLD_SECRET)
    caplog.set_level(logging.INFO, logger="shopify.signatures")

    webhook = send_webhook(client, OLD_SECRET)
    assert webhook.status_code == 200, webhook.get_data(as_text=True)
    assert webhook.get_json() == {"status": "accepted"}
    proxied = proxy_get(client, proxy_pairs(OLD_SECRET, customer="7001"))
    assert proxied.status_code == 200, proxied.get_data(as_text=True)
    assert proxied.get_json()["shop"] == DEMO_SHOP
    admin = admin_get(client, OLD_SECRET)
    assert admin.status_code == 200, admin.get_data(as_text=True)
    assert admin.get_json()["shop"]["domain"] == DEMO_SHOP
    # The callback's hmac passes; what stops it next is the state this test never issued.
    assert error_code(oauth_callback(client, OLD_SECRET), 400) == "invalid_state"

    # One log line per request verified with the old secret, naming the surface, never a secret.
    assert previous_secret_uses(caplog) == ["webhook", "app_proxy", "session_token", "oauth"]
    logged = caplog.text + "".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert OLD_SECRET not in logged and NEW_SECRET not in logged


def test_during_a_rotation_the_new_secret_is_accepted_and_not_counted_as_old(
    make_app: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(previous=OLD_SECRET)
    caplog.set_level(logging.INFO, logger="shopify.signatures")
    assert send_webhook(client, NEW_SECRET).status_code == 200
    assert proxy_get(client, proxy_pairs(NEW_SECRET)).status_code == 200
    assert admin_get(client, NEW_SECRET).status_code == 200
    assert error_code(oauth_callback(client, NEW_SECRET), 400) == "invalid_state"
    assert previous_secret_uses(caplog) == []


@pytest.mark.parametrize("previous", [None, "   "], ids=["unset", "blank"])
def test_without_a_previous_secret_the_old_secret_signs_nothing(
    make_app: Callable[..., FlaskClient], redis_client: redis.Redis, caplog: pytest.LogCaptureFixture,
    previous: str | None
) -> None:
    client = make_app(previous=previous)
    caplog.set_level(logging.INFO, logger="shopify.signatures")
    before = redis_snapshot(redis_client)
    assert error_code(send_webhook(client, OLD_SECRET), 401) == "bad_hmac"
    assert error_code(proxy_get(client, proxy_pairs(OLD_SECRET, customer="7001")), 401) == "bad_signature"
    assert error_code(admin_get(client, OLD_SECRET), 401) == "bad_signature"
    assert error_code(oauth_callback(client, OLD_SECRET), 400) == "bad_hmac"
    assert redis_snapshot(redis_client) == before  # refused requests write nothing
    assert previous_secret_uses(caplog) == []


def test_during_a_rotation_a_third_secret_signs_nothing(
    make_app: Callable[..., FlaskClient], redis_client: redis.Redis
) -> None:
    client = make_app(previous=OLD_SECRET)
    before = redis_snapshot(redis_client)
    assert error_code(send_webhook(client, STRANGER), 401) == "bad_hmac"
    assert error_code(proxy_get(client, proxy_pairs(STRANGER)), 401) == "bad_signature"
    assert error_code(admin_get(client, STRANGER), 401) == "bad_signature"
    assert error_code(oauth_callback(client, STRANGER), 400) == "bad_hmac"
    assert redis_snapshot(redis_client) == before


@pytest.mark.parametrize("secret", [NEW_SECRET, OLD_SECRET], ids=["new", "old"])
def test_a_proxy_query_resplit_to_smuggle_a_customer_id_is_refused(
    make_app: Callable[..., FlaskClient], redis_client: redis.Redis, secret: str
) -> None:
    client = make_app(previous=OLD_SECRET)
    assert proxy_get(client, proxy_pairs(secret, [("ref", "home")])).status_code == 200  # the honest baseline

    # A logged-out shopper asks the storefront for …/apps/lumi/config?a=1logged_&in_customer_id=999m; Shopify
    # signs `a=1logged_in_customer_id=999mlogged_in_customer_id=path_prefix=…`, which also reads as a=1,
    # logged_in_customer_id=999 and mlogged_in_customer_id= — the same signature, another customer.
    signed = proxy_pairs(secret, [("a", "1logged_"), ("in_customer_id", "999m")])
    values = dict(signed)
    forged = [("a", "1"), ("logged_in_customer_id", "999"), ("mlogged_in_customer_id", ""),
              ("path_prefix", PATH_PREFIX), ("shop", DEMO_SHOP), ("timestamp", values["timestamp"]),
              ("signature", values["signature"])]
    assert sign_proxy(forged[:-1], secret) == values["signature"]  # the forgery carries a valid HMAC
    before = redis_snapshot(redis_client)
    assert error_code(proxy_get(client, forged), 401) == "ambiguous_proxy_query"
    assert error_code(proxy_get(client, signed), 401) == "ambiguous_proxy_query"  # and so is what was signed
    # A value holding '=' re-reads too (`b=2` inside `a`): refused although correctly signed.
    assert error_code(proxy_get(client, proxy_pairs(secret, [("a", "1b=2")])), 401) == "ambiguous_proxy_query"
    # Tampering is still a bad signature, not an ambiguity.
    tampered = [(k, "7002" if k == "logged_in_customer_id" else v) for k, v in proxy_pairs(secret, customer="7001")]
    assert error_code(proxy_get(client, tampered), 401) == "bad_signature"
    assert redis_snapshot(redis_client) == before


# --- compliance across a rotation -----------------------------------------------------------------------------


def test_a_chat_indexed_before_the_switch_is_found_by_a_redact_sent_after_it(
        make_app: Callable[..., FlaskClient], env: dict[str, str], redis_client: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The compliance index keys its digests with the client secret. A logged-in chat from before the rotation
    is listed under the old secret's digest; a customers/redact signed and received after the switch must still
    find it (and the job carries digests only, never the customer id)."""
    from chat.store import ChatStore
    from core import keys
    from jobs import compliance, context

    customer = 7_300_112
    before = ChatStore(redis.Redis.from_url(env["REDIS_URL"], decode_responses=True), None, OLD_SECRET)
    session, _secret = before.create(DEMO_SHOP, 3600, "en", customer_id=str(customer))
    assert redis_client.exists(keys.chat_session(DEMO_SHOP, session.id))

    client = make_app(previous=OLD_SECRET)
    body = json.dumps({"shop_id": 1, "shop_domain": DEMO_SHOP, "orders_to_redact": [],
                       "customer": {"id": customer, "email": "gone@example.com", "phone": None}}).encode()
    headers = {"X-Shopify-Hmac-Sha256": sign_webhook(body, NEW_SECRET), "X-Shopify-Topic": "customers/redact",
               "X-Shopify-Shop-Domain": DEMO_SHOP, "X-Shopify-Webhook-Id": str(uuid.uuid4()),
               "X-Shopify-API-Version": "2026-10", "Content-Type": "application/json"}
    assert client.post("/webhooks", data=body, headers=headers).status_code == 200
    from rq import Queue

    (job,) = [job for name in ("lumi-default", "lumi-high", "lumi-low")
              for job in Queue(name, connection=redis.Redis.from_url(env["REDIS_URL"])).jobs
              if job.func_name == "jobs.compliance.customer_redact"]
    assert str(customer) not in repr(job.kwargs)
    assert job.kwargs["previous_digests"], job.kwargs

    # Run the job as a worker configured like the web process would (current and previous secret).
    for name, value in {**env, "SHOPIFY_API_SECRET": NEW_SECRET, "SHOPIFY_API_SECRET_PREVIOUS": OLD_SECRET}.items():
        monkeypatch.setenv(name, value)
    context.services.cache_clear()
    try:
        result = compliance.customer_redact(*job.args, **job.kwargs)
    finally:
        context.services().close()
        context.services.cache_clear()
    assert result
    assert not redis_client.exists(keys.chat_session(DEMO_SHOP, session.id))
    assert not redis_client.exists(keys.chat_transcript(DEMO_SHOP, session.id))
