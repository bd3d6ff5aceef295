"""Every signature Shopify puts on a request to us, checked exactly as Shopify documents, in constant time.

- OAuth callback / admin launch `hmac`: sorted, escaped `key=value` pairs joined by `&`, hex HMAC-SHA256.
- App proxy `signature`: sorted `key=value` pairs (repeated values joined by `,`), no separator, hex.
- Webhooks `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Sequence
from urllib.parse import quote

Pairs = Sequence[tuple[str, str]]


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _hex_matches(secret: str, message: bytes, given: str) -> bool:
    expected = _hmac_sha256(secret, message).hex()
    # compare_digest on equal-type str is constant-time for ASCII; a non-ASCII `given` is simply wrong.
    try:
        return hmac.compare_digest(expected, given.lower().encode("ascii").decode())
    except UnicodeEncodeError:
        return False


# --- OAuth callback and other admin-signed query strings (`hmac`) ----------------------------------


def oauth_message(pairs: Pairs) -> bytes:
    """The message Shopify signs for `hmac`, built as Shopify's Python library builds it.

    Every parameter except `hmac`/`signature`; `%` and `=` escaped in keys, `%` in values, `&` in the
    pair; array parameters (`ids[]=1&ids[]=2`) as `ids=["1", "2"]`; pairs sorted and joined by `&`.
    """
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in {"hmac", "signature"}:
            continue
        grouped.setdefault(key, []).append(value)
    encoded = []
    for key, values in grouped.items():
        if key.endswith("[]"):
            name, value = key[:-2], json.dumps(values)
        else:
            name, value = key, values[-1]
        name = name.replace("%", "%25").replace("=", "%3D")
        encoded.append(f"{name}={value.replace('%', '%25')}".replace("&", "%26"))
    return "&".join(sorted(encoded)).encode()


def oauth_message_encoded(pairs: Pairs) -> bytes:
    """The same message as Shopify's JavaScript library builds it: keys sorted, every key and value
    percent-encoded (URLSearchParams style, with space as %20 as Shopify documents)."""
    grouped: dict[str, str] = {}
    for key, value in pairs:
        if key not in {"hmac", "signature"}:
            grouped[key] = value
    return "&".join(f"{quote(k, safe='-_.*')}={quote(v, safe='-_.*')}" for k, v in sorted(grouped.items())).encode()


def sign_oauth(pairs: Pairs, secret: str) -> str:
    return _hmac_sha256(secret, oauth_message(pairs)).hex()


def verify_oauth_hmac(pairs: Pairs, secrets: Iterable[str]) -> bool:
    """True when the `hmac` parameter (exactly one) matches under one of `secrets` (rotation)."""
    given = [value for key, value in pairs if key == "hmac"]
    if len(given) != 1 or not given[0]:
        return False
    # A repeated plain parameter would be signed by its last value only: refuse the ambiguity.
    keys = [key for key, _ in pairs if not key.endswith("[]")]
    if len(keys) != len(set(keys)):
        return False
    # Shopify's Python and JavaScript libraries build the message differently; the two agree except
    # on values holding characters such as `=` (a padded `host`). Either construction is an HMAC
    # under our secret over every parameter, so accepting either never accepts an unsigned change.
    messages = (oauth_message(pairs), oauth_message_encoded(pairs))
    return any(_hex_matches(secret, message, given[0]) for secret in secrets for message in messages)


# --- App proxy (`signature`) ------------------------------------------------------------------------


def proxy_message(pairs: Pairs) -> bytes:
    """Sorted `key=value` strings, values decoded and repeated values joined with `,`, no separator."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key == "signature":
            continue
        grouped.setdefault(key, []).append(value)
    return "".join(sorted(f"{key}={','.join(values)}" for key, values in grouped.items())).encode()


def sign_proxy(pairs: Pairs, secret: str) -> str:
    return _hmac_sha256(secret, proxy_message(pairs)).hex()


# Parameters an attacker could repeat to confuse which value was signed (shopify-app-js rejects these too).
_SINGLE_VALUED = ("signature", "shop", "timestamp", "hmac", "logged_in_customer_id", "path_prefix")


def verify_proxy_signature(pairs: Pairs, secrets: Iterable[str]) -> bool:
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    if any(counts.get(name, 0) > 1 for name in _SINGLE_VALUED):
        return False
    given = next((value for key, value in pairs if key == "signature"), "")
    if not given:
        return False
    message = proxy_message(pairs)
    return any(_hex_matches(secret, message, given) for secret in secrets)


# --- Webhooks (`X-Shopify-Hmac-Sha256`) -------------------------------------------------------------


def sign_webhook(body: bytes, secret: str) -> str:
    return base64.b64encode(_hmac_sha256(secret, body)).decode()


def verify_webhook_hmac(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    if not header:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return any(hmac.compare_digest(_hmac_sha256(secret, body), given) for secret in secrets)


# --- Timestamps ---------------------------------------------------------------------------------------


def timestamp_is_fresh(value: str | None, max_age: int, *, now: float | None = None) -> bool:
    """Signed timestamps older (or further in the future) than `max_age` seconds are replays."""
    if not value or not value.isdigit():
        return False
    current = time.time() if now is None else now
    return abs(current - int(value)) <= max_age


def quote_value(value: str) -> str:
    """Percent-encode a query value the way our redirects build them (used by devshop and tests)."""
    return quote(value, safe="")
