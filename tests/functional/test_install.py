"""Install through the real HTTP flows against devshop: OAuth code grant, token exchange, refresh, uninstall."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from core import keys
from jobs.sync import read_record
from runtime.data import receipts
from shopify import queries
from shopify.oauth import REQUIRED_SCOPES
from shopify.shops import ShopStore
from shopify.tokens import ReauthRequired, TokenManager
from tests.conftest import DEMO_SHOP, OTHER_SHOP, Stack


def test_install_stores_an_encrypted_expiring_token_and_lands_in_the_admin(
    stack: Stack, redis_client: redis.Redis
) -> None:
    landing = stack.install()
    assert landing.url == stack.control.admin_app_url(DEMO_SHOP)
    assert DEMO_SHOP in landing.text

    record = stack.services.shops.require(DEMO_SHOP)
    assert set(REQUIRED_SCOPES) <= set(record.scopes)
    assert record.token_expires_at is not None and record.token_expires_at > time.time() + 3000
    assert record.has_refresh_token
    token = stack.services.shops.access_token(record)
    assert token
    # The stored value never holds the token (or refresh token) in clear.
    raw = redis_client.hgetall(keys.shop(DEMO_SHOP))
    assert token not in str(raw) and stack.services.shops.refresh_token(record) not in str(raw)
    # The token works against the Admin API.
    data = stack.services.tokens.admin_client(DEMO_SHOP).execute(queries.SHOP_INFO)
    assert data["shop"]["myshopifyDomain"] == DEMO_SHOP
    # The one-time state is gone.
    assert not list(redis_client.scan_iter(keys.oauth_state("*")))
    # The first catalogue sync was requested by the web layer once the install was stored.
    assert read_record(redis_client, DEMO_SHOP)["reason"] == "install"


def test_embedded_app_page_exchanges_the_session_token_for_an_offline_token(stack: Stack) -> None:
    assert stack.services.shops.get(OTHER_SHOP) is None
    id_token = stack.control.session_token(OTHER_SHOP)
    page = stack.http.get(f"{stack.url}/app", params={"shop": OTHER_SHOP, "embedded": "1", "id_token": id_token},
                          timeout=30)
    assert page.status_code == 200, page.text
    assert "frame-ancestors https://other-shop.myshopify.com https://admin.shopify.com " in page.headers[
        "Content-Security-Policy"]
    record = stack.services.shops.require(OTHER_SHOP)
    assert record.token_expires_at is not None
    assert stack.services.tokens.admin_client(OTHER_SHOP).execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == (
        OTHER_SHOP)
    assert read_record(stack.services.redis, OTHER_SHOP)["reason"] == "install"  # its first sync is queued


def test_app_page_opened_outside_the_admin_offers_install_then_the_admin_link(stack: Stack) -> None:
    # A browser tab (no launch token, not framed): a page, never JSON or a redirect loop.
    response = stack.http.get(f"{stack.url}/app", params={"shop": DEMO_SHOP}, allow_redirects=False, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'href="/auth/install?shop={DEMO_SHOP}"' in response.text and "Install Lumi" in response.text
    stack.install()
    response = stack.http.get(f"{stack.url}/app", params={"shop": DEMO_SHOP}, allow_redirects=False, timeout=10)
    assert response.status_code == 200
    assert f'href="{stack.control.admin_app_url(DEMO_SHOP)}"' in response.text
    assert "Open Lumi in your Shopify admin" in response.text


def test_expiring_token_is_refreshed_before_use_without_a_failed_admin_call(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack(TOKEN_TTL=2)
    stack.install()
    services = stack.services
    first = services.shops.access_token(services.shops.require(DEMO_SHOP))
    time.sleep(1.2)  # within the 1.5 s margin below: due for refresh, not yet expired at Shopify
    manager = TokenManager(services.shops, services.oauth, services.redis, margin=1.5)
    before = stack.control.stats(DEMO_SHOP)["graphql_requests"]
    client = manager.admin_client(DEMO_SHOP)
    assert client.execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == DEMO_SHOP
    assert client.last_call is not None and client.last_call.retries == 0
    assert stack.control.stats(DEMO_SHOP)["graphql_requests"] == before + 1  # one call, and it succeeded
    second = services.shops.access_token(services.shops.require(DEMO_SHOP))
    assert second != first


def test_a_401_triggers_one_refresh_and_the_call_succeeds(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack(TOKEN_TTL=1)
    stack.install()
    services = stack.services
    expired = services.shops.access_token(services.shops.require(DEMO_SHOP))
    time.sleep(1.3)  # expired at devshop; a negative margin makes us believe it fresh until Shopify says 401
    manager = TokenManager(services.shops, services.oauth, services.redis, margin=-3600)
    client = manager.admin_client(DEMO_SHOP)
    assert client.execute(queries.SHOP_INFO)["shop"]["myshopifyDomain"] == DEMO_SHOP
    assert services.shops.access_token(services.shops.require(DEMO_SHOP)) != expired


def test_two_workers_refreshing_at_once_end_with_one_valid_pair(stack: Stack, redis_server) -> None:  # type: ignore[no-untyped-def]
    stack.install()
    services = stack.services
    old = services.shops.access_token(services.shops.require(DEMO_SHOP))
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        # Each "worker" has its own Redis connection and stores, like two RQ worker processes.
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        store = ShopStore(client, services.box, services.plans)
        manager = TokenManager(store, services.oauth, client)
        barrier.wait()
        try:
            results.append(manager.refresh(DEMO_SHOP, rejected=old))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(results) == 2 and results[0] == results[1] != old
    record = services.shops.require(DEMO_SHOP)
    assert services.shops.access_token(record) == results[0]
    # The stored refresh token is the live one: refreshing again works.
    assert services.tokens.refresh(DEMO_SHOP, rejected=results[0]) != results[0]


def test_refused_refresh_marks_the_shop_for_reauth(stack: Stack, redis_client: redis.Redis) -> None:
    stack.install()
    services = stack.services
    box = services.box
    redis_client.hset(keys.shop(DEMO_SHOP), "refresh", box.encrypt("not-a-real-refresh-token"))
    with pytest.raises(ReauthRequired):
        services.tokens.refresh(DEMO_SHOP, rejected=services.shops.access_token(services.shops.require(DEMO_SHOP)))
    record = services.shops.require(DEMO_SHOP)
    assert record.needs_reauth
    shop = stack.api("GET", "/api/shop").json()["shop"]
    assert shop["needs_reauth"] is True and "refused" in shop["reauth_reason"]


def test_uninstall_deletes_config_and_token_before_the_webhook_answers(stack: Stack, redis_client: redis.Redis,
                                                                      start_worker) -> None:  # type: ignore[no-untyped-def]
    stack.install()
    stack.api("PATCH", "/api/settings", json={"chat_enabled": False})
    assert redis_client.exists(keys.shop(DEMO_SHOP))
    result = stack.control.uninstall(DEMO_SHOP)
    # devshop's uninstall delivers app/uninstalled synchronously: by now the app has answered it.
    assert result
    assert not redis_client.exists(keys.shop(DEMO_SHOP))
    assert not redis_client.sismember(keys.SHOPS_INSTALLED, DEMO_SHOP)
    assert redis_client.zscore(keys.SHOPS_UNINSTALLED, DEMO_SHOP) is not None

    # The purge job runs on a real worker and leaves a receipt without personal data.
    worker = start_worker(stack.env)
    deadline = time.monotonic() + 30
    while not receipts(stack.services, DEMO_SHOP) and time.monotonic() < deadline:
        time.sleep(0.1)
    (receipt,) = receipts(stack.services, DEMO_SHOP)
    assert receipt["reason"] == "app_uninstalled"
    assert set(receipt) == {"id", "shop", "reason", "categories", "deleted", "completed_at", "digest"}
    assert worker.proc.poll() is None
    leftover = [k for k in redis_client.scan_iter(f"*{DEMO_SHOP}*")
                if k not in {keys.deletion_receipts(DEMO_SHOP)}]
    assert leftover == [], leftover


def test_install_refused_when_a_required_scope_is_not_granted(stack: Stack, redis_client: redis.Redis) -> None:
    # Ask devshop to grant less than Lumi needs by rewriting the authorize URL's scope.
    start = stack.http.get(f"{stack.url}/auth/install", params={"shop": DEMO_SHOP}, allow_redirects=False,
                           timeout=10)
    authorize = start.headers["Location"].replace("read_inventory", "read_themes")
    callback = stack.http.get(authorize, allow_redirects=False, timeout=10)
    response = stack.http.get(callback.headers["Location"], allow_redirects=False, timeout=10)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scopes"
    assert not redis_client.exists(keys.shop(DEMO_SHOP))
