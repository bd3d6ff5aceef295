"""Request guards: App Bridge session tokens for /api/*, app-proxy signatures for /proxy/*.

Each guard verifies first and only then puts the shop it proved on `g.shop`; views read the shop
from there and nowhere else, so no path, query or body field can point a request at another shop.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from shopify.domains import valid_shop_domain
from shopify.session_tokens import SessionTokenError, decode_session_token
from shopify.signatures import ProxyCheck, check_proxy_query, timestamp_is_fresh
from web.errors import APIError
from web.extensions import get_settings

F = TypeVar("F", bound=Callable[..., Any])

PROXY_MAX_AGE = 90  # seconds; Shopify's own library allows ±90 s on proxy timestamps


def _secrets() -> tuple[str, ...]:
    return get_settings().shopify_secrets  # current, then previous during a rotation


def verify_bearer_session_token() -> str:
    """The shop proved by `Authorization: Bearer <session token>`, or a JSON 401 saying why."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, "missing_session_token", "Send the App Bridge session token as 'Authorization: Bearer'.",
                       headers={"WWW-Authenticate": 'Bearer realm="lumi"'})
    try:
        session = decode_session_token(token.strip(), api_key=get_settings().shopify_api_key, secrets=_secrets())
    except SessionTokenError as err:
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        raise APIError(401, err.code, err.message, headers=challenge) from None
    g.shop = session.shop
    g.session_token = session
    return session.shop


def require_session_token(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_bearer_session_token()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def proxy_request_is_signed() -> bool:
    return "signature" in request.args


def verify_proxy_request() -> str:
    """Check the app-proxy signature; then (and only then) trust shop, customer id and path prefix."""
    pairs = list(request.args.items(multi=True))
    if not proxy_request_is_signed():
        raise APIError(401, "missing_signature", "This endpoint is only reachable through the Shopify app proxy.")
    check = check_proxy_query(pairs, _secrets())
    if check is ProxyCheck.BAD_SIGNATURE:
        raise APIError(401, "bad_signature", "The app proxy signature is not valid.")
    if check is ProxyCheck.AMBIGUOUS:
        # Signed, but the signed string also spells another parameter set (shopify.signatures.proxy_query_ambiguity).
        raise APIError(401, "ambiguous_proxy_query", "The app proxy query can be read more than one way; refused.")
    if not timestamp_is_fresh(request.args.get("timestamp"), PROXY_MAX_AGE, now=time.time()):
        raise APIError(401, "stale_request", "The app proxy request is too old (or from the future).")
    shop = valid_shop_domain(request.args.get("shop"))
    if shop is None:
        raise APIError(401, "invalid_shop", "The signed shop is not a valid shop domain.")
    customer = request.args.get("logged_in_customer_id") or None
    if customer is not None and not (customer.isascii() and customer.isdigit()):
        raise APIError(401, "invalid_customer", "The signed customer id is not valid.")
    g.shop = shop
    g.logged_in_customer_id = customer
    g.path_prefix = request.args.get("path_prefix")
    return shop


def require_proxy_signature(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_proxy_request()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
