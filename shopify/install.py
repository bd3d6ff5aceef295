"""Installing Lumi on a shop: authorization code grant and embedded token exchange.

Nothing is written before every check has passed: a refused callback leaves Redis as it was
(apart from consuming its one-time `state`, which is the point of a one-time state). An install
reports whether it was the shop's first; the caller (web) starts the first catalogue sync.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core import keys
from core.services import CoreServices
from shopify.domains import valid_shop_domain
from shopify.oauth import OAuthError, TokenSet
from shopify.services import ShopifyServices
from shopify.shops import ShopRecord
from shopify.signatures import timestamp_is_fresh, verify_oauth_hmac

log = logging.getLogger(__name__)

CALLBACK_MAX_AGE = 90  # seconds between Shopify signing the callback and us checking it (Shopify's lib: ±90 s)
_HOST = re.compile(r"^[0-9a-zA-Z+/]+={0,2}$")


@dataclass(frozen=True)
class Installed:
    record: ShopRecord
    first: bool  # no record existed before: the shop's catalogue has never been synced


class InstallError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def require_shop(value: object) -> str:
    shop = valid_shop_domain(value)
    if shop is None:
        raise InstallError(400, "invalid_shop", "shop must be a domain like your-store.myshopify.com (lower case).")
    return shop


def begin_install(services: ShopifyServices, shop_param: object) -> str:
    """Store a one-time state and return the shop's authorize URL."""
    shop = require_shop(shop_param)
    state = secrets.token_urlsafe(32)
    services.redis.set(keys.oauth_state(state), shop, ex=keys.OAUTH_STATE_TTL)
    return services.oauth.authorize_url(shop, state=state, redirect_uri=callback_url(services))


def callback_url(services: CoreServices) -> str:
    return f"{services.settings.app_url}/auth/callback"


def embedded_app_url(services: CoreServices, shop: str) -> str:
    """Where Shopify shows the installed app inside the admin (Shopify redirects to admin.shopify.com)."""
    base = services.settings.shopify_admin_base_url.format(shop=shop)
    return f"{base}/admin/apps/{services.settings.shopify_api_key}"


def valid_host(value: str | None, shop: str) -> bool:
    """`host` is base64 of `admin.shopify.com/store/<name>` or `<shop>/admin`."""
    if not value or not _HOST.match(value):
        return False
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    name = shop.removesuffix(".myshopify.com")
    return decoded in {f"admin.shopify.com/store/{name}", f"{shop}/admin"}


def complete_install(
    services: ShopifyServices, pairs: Sequence[tuple[str, str]], *, now: float | None = None
) -> Installed:
    """Verify the callback exactly as Shopify specifies, exchange the code, store the token."""
    params = dict(pairs)
    current = time.time() if now is None else now
    if not verify_oauth_hmac(pairs, services.settings.shopify_secrets):
        raise InstallError(400, "bad_hmac", "The callback signature is not valid.")
    shop = require_shop(params.get("shop"))
    if not timestamp_is_fresh(params.get("timestamp"), CALLBACK_MAX_AGE, now=current):
        raise InstallError(400, "stale_callback", "The callback is too old; start the install again.")
    if "host" in params and not valid_host(params["host"], shop):
        raise InstallError(400, "invalid_host", "The callback's host parameter does not belong to this shop.")
    state = params.get("state") or ""
    if not state:
        raise InstallError(400, "missing_state", "The callback has no state; start the install again.")
    issued_for = services.redis.getdel(keys.oauth_state(state))  # single use, atomically
    if issued_for is None:
        raise InstallError(400, "invalid_state", "The install state is unknown, expired or already used.")
    if issued_for != shop:
        raise InstallError(400, "state_mismatch", "The install state was issued for another shop.")
    code = params.get("code") or ""
    if not code:
        raise InstallError(400, "missing_code", "The callback has no authorization code.")
    tokens = _redeem(lambda: services.oauth.exchange_code(shop, code))
    return _store(services, shop, tokens)


def exchange_session_token(services: ShopifyServices, shop: str, session_token: str) -> Installed:
    """Embedded install: trade a verified session token for an expiring offline token."""
    tokens = _redeem(lambda: services.oauth.exchange_session_token(shop, session_token))
    return _store(services, shop, tokens)


def _redeem(call: Callable[[], TokenSet]) -> TokenSet:
    try:
        return call()
    except OAuthError as err:
        status = 400 if err.permanent else 502
        raise InstallError(status, f"token_{err.code}", f"Shopify did not issue a token: {err.message}") from err


def _store(services: ShopifyServices, shop: str, tokens: TokenSet) -> Installed:
    missing = tokens.missing_scopes()
    if missing:
        # An install that cannot do its job is refused, not half-made.
        needed = ", ".join(missing)
        raise InstallError(403, "missing_scopes", f"Lumi needs these scopes, which were not granted: {needed}.")
    first_install = services.shops.get(shop) is None
    record = services.shops.install(shop, tokens)
    log.info("shop installed", extra={"shop": shop, "expiring": tokens.expires_at is not None})
    return Installed(record, first_install)
