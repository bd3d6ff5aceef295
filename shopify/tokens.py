"""Usable offline access tokens: refreshed before expiry and on a 401, one refresh at a time per shop.

Shopify rotates the refresh token on every refresh, so two workers refreshing at once could burn
it; a Redis lock (auto-expiring, so a dead worker cannot hold it) serialises refreshes per shop, and
the new pair is persisted before anyone uses it. A refresh Shopify refuses for good marks the shop
as needing re-authentication (visible in /api/shop and the admin page) instead of failing silently.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

import redis

from core import keys
from shopify.admin import AdminClient
from shopify.errors import ShopifyAuthError, ShopifyUnavailable
from shopify.oauth import OAuthClient, OAuthError
from shopify.shops import ShopRecord, ShopStore

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300  # seconds before expiry at which a token is refreshed ahead of use

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ReauthRequired(ShopifyAuthError):
    """The shop's tokens are gone or refused for good: the merchant must open the app again."""


class TokenManager:
    def __init__(
        self,
        store: ShopStore,
        oauth: OAuthClient,
        client: redis.Redis,
        *,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.oauth = oauth
        self.redis = client
        self.margin = margin
        self.clock = clock
        self.sleep = sleep

    def access_token(self, shop: str) -> str:
        """A token that is valid for at least `margin` more seconds (refreshing if needed)."""
        record = self._record(shop)
        if self._fresh(record):
            token = self.store.access_token(record)
            assert token is not None
            return token
        return self.refresh(shop, rejected=self.store.access_token(record))

    def refresh(self, shop: str, *, rejected: str | None = None) -> str:
        """Refresh the pair under the shop's lock; if another process already did, use its result."""
        lock_key = keys.token_refresh_lock(shop)
        owner = secrets.token_hex(16)
        deadline = self.clock() + keys.TOKEN_REFRESH_LOCK_TTL + 5
        while not self.redis.set(lock_key, owner, nx=True, ex=keys.TOKEN_REFRESH_LOCK_TTL):
            if self.clock() > deadline:
                raise ShopifyUnavailable("timed out waiting for another token refresh", shop=shop, attempts=1)
            self.sleep(0.05)
            # Someone else is refreshing: once they are done, their fresh token is ours too.
            done = self._record(shop)
            if self._fresh(done) and self.store.access_token(done) != rejected:
                token = self.store.access_token(done)
                assert token is not None
                return token
        try:
            record = self._record(shop)  # re-read under the lock: the pair may have changed meanwhile
            current = self.store.access_token(record)
            if current is not None and current != rejected and self._fresh(record):
                return current
            refresh_token = self.store.refresh_token(record)
            if not refresh_token:
                self.store.mark_reauth(shop, "the access token was refused and there is no refresh token")
                raise ReauthRequired("the shop must re-authenticate (no refresh token)", shop=shop, status=401)
            try:
                tokens = self.oauth.refresh(shop, refresh_token)
            except OAuthError as err:
                if err.permanent:
                    self.store.mark_reauth(shop, f"token refresh refused ({err.code})")
                    log.warning("token refresh refused; shop needs re-auth", extra={"shop": shop, "code": err.code})
                    raise ReauthRequired(f"token refresh refused ({err.code})", shop=shop, status=401) from err
                raise ShopifyUnavailable(f"token refresh failed: {err.message}", shop=shop, attempts=1,
                                         last_cause=err) from err
            self.store.save_tokens(shop, tokens)  # persist first, then use
            log.info("token refreshed", extra={"shop": shop})
            return tokens.access_token
        finally:
            self.redis.eval(_RELEASE, 1, lock_key, owner)

    def admin_client(self, shop: str, **options: object) -> AdminClient:
        """An Admin API client for `shop` that always sends a usable token and refreshes once on a 401."""
        last: dict[str, str] = {}

        def current() -> str:
            last["token"] = self.access_token(shop)
            return last["token"]

        def on_unauthorized() -> str:
            last["token"] = self.refresh(shop, rejected=last.get("token"))
            return last["token"]

        return AdminClient(
            shop,
            current,
            base_url=self.oauth.admin_base_url,
            on_unauthorized=on_unauthorized,
            **options,  # type: ignore[arg-type]
        )

    def _record(self, shop: str) -> ShopRecord:
        record = self.store.get(shop)
        if record is None:
            raise ReauthRequired("the shop is not installed", shop=shop, status=401)
        return record

    def _fresh(self, record: ShopRecord) -> bool:
        if record.needs_reauth or "token" not in record._encrypted:
            return False
        return record.token_expires_at is None or record.token_expires_at - self.margin > self.clock()
