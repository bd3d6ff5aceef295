"""Every signature Shopify puts on a request to us, checked exactly as Shopify documents, in constant time.

- OAuth callback / admin launch `hmac`: sorted, escaped `key=value` pairs joined by `&`, hex HMAC-SHA256.
- App proxy `signature`: sorted `key=value` pairs (repeated values joined by `,`), no separator, hex.
- Webhooks `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body.
(Session tokens, HS256 JWTs under the same secret, are in shopify.session_tokens and use `matching_secret`.)

Every check takes the tuple of secrets a signature may be made with (`Settings.shopify_secrets`: the current
client secret, then the previous one during a rotation, docs/secret-rotation.md). Whatever Lumi signs itself
uses the current secret only.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Sequence
from urllib.parse import quote

log = logging.getLogger(__name__)

Pairs = Sequence[tuple[str, str]]
Secrets = Sequence[str]

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def matching_secret(secrets: Secrets, given: bytes, *messages: bytes) -> int | None:
    """The position in `secrets` of the secret whose HMAC-SHA256 of one of `messages` is `given`, else None.

    Every (secret, message) digest is computed and compared with hmac.compare_digest before any result is
    looked at, and the results are combined with `|`: the work done does not depend on whether, or under
    which secret, the signature matched, so timing tells an attacker nothing about either secret.
    """
    if not secrets or not all(secrets):
        # An empty key is a key everyone knows; settings never produce one, so this is a programming error.
        raise ValueError("signature checks need at least one non-empty secret")
    hits = [[hmac.compare_digest(_hmac_sha256(secret, message), given) for message in messages] for secret in secrets]
    matched = [False] * len(secrets)
    for position, row in enumerate(hits):
        for hit in row:
            matched[position] |= hit
    return next((position for position, hit in enumerate(matched) if hit), None)


def note_previous_secret(surface: str, position: int | None) -> None:
    """Log (no secret, no signature) that a request verified only under a previous secret, so the operator
    can see when no one still signs with it and SHOPIFY_API_SECRET_PREVIOUS can go."""
    if position:
        log.info("signature verified with previous secret", extra={"event": "previous_secret_used", "surface": surface})


def _hex_digest(given: str) -> bytes | None:
    """A hex HMAC-SHA256 as bytes (either case, as before), or None when it cannot be one."""
    if not _HEX_SHA256.fullmatch(given):
        return None
    return bytes.fromhex(given)


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


def verify_oauth_hmac(pairs: Pairs, secrets: Secrets) -> bool:
    """True when the `hmac` parameter (exactly one) matches under one of `secrets` (rotation)."""
    given = [value for key, value in pairs if key == "hmac"]
    digest = _hex_digest(given[0]) if len(given) == 1 else None
    if digest is None:
        return False
    # A repeated plain parameter would be signed by its last value only: refuse the ambiguity.
    keys = [key for key, _ in pairs if not key.endswith("[]")]
    if len(keys) != len(set(keys)):
        return False
    # Shopify's Python and JavaScript libraries build the message differently; the two agree except
    # on values holding characters such as `=` (a padded `host`). Either construction is an HMAC
    # under our secret over every parameter, so accepting either never accepts an unsigned change.
    position = matching_secret(secrets, digest, oauth_message(pairs), oauth_message_encoded(pairs))
    note_previous_secret("oauth", position)
    return position is not None


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
# What Shopify's proxy adds to every request it forwards (logged_in_customer_id blank when logged out).
PROXY_ADDED = ("logged_in_customer_id", "path_prefix", "shop", "timestamp")
_PROXY_NAME = re.compile(r"[a-z_]+")


class ProxyCheck(enum.Enum):
    VALID = "valid"
    BAD_SIGNATURE = "bad_signature"
    AMBIGUOUS = "ambiguous"  # signed, but the signed string also spells a different set of parameters


def proxy_query_ambiguity(pairs: Pairs) -> str | None:
    """Why the proxy signature of `pairs` would not pin Shopify's own parameters, or None when it does.

    The signed string is every `name=value` glued together with no separator, so one signed string can be
    re-split into another parameter set: Shopify signs `a=1logged_` + `in_customer_id=999m` +
    `logged_in_customer_id=` (a logged-out shopper) as `a=1logged_in_customer_id=999mlogged_in_customer_id=…`,
    and the same string, with the same signature, reads `a=1` + `logged_in_customer_id=999` +
    `mlogged_in_customer_id=`. Refusing `=` alone does not stop that; these rules do. Every parameter but
    `signature` must have
      1. no `=` in its name or value, so each `=` of the signed string ends exactly one name;
      2. a name of lower-case letters and `_` only (Shopify's and ours are), so no name holds a digit or `.`;
      3. a name that neither ends with one of PROXY_ADDED (`mlogged_in_customer_id`) nor is the end of one
         (`customer_id`, `id`, `hop`, `stamp`, `prefix`), unless it is that very name.
    Why that is enough: Shopify adds each name t of PROXY_ADDED to every request, once. In the string it
    signed, the `=` after t ends, in any re-split that obeys 1, a name that is a suffix of "whatever precedes
    t" + t, so that name ends with t or is a suffix of t: rule 3 leaves only t itself, and the single-valued
    rule leaves no other t, so t's value starts where Shopify's did. Where it ends: `logged_in_customer_id`
    and `timestamp` must be ASCII digits (the guard and timestamp_is_fresh check); Shopify's value is
    followed by a name (no digits, rule 2) or by the next piece of its own sorted list, which sorts after
    `logged_in_customer_id=`/`timestamp=` and so starts with no ASCII digit; a shorter value would make the
    next name start with a digit. `shop` must be `name.myshopify.com` (the guard checks): a dot-free
    extension or a shorter prefix can never end in `.myshopify.com` again. So shop, customer and timestamp
    are exactly what Shopify signed. Not pinned: where `path_prefix` ends, when a parameter of the request
    sorts between it and `shop` (Lumi decides nothing on path_prefix), and how the shopper's own parameters
    split (they could have sent any split through the proxy themselves).
    """
    for name, value in pairs:
        if name == "signature":
            continue
        if "=" in name or "=" in value:
            return "A parameter name or value contains '='."
        if not _PROXY_NAME.fullmatch(name):
            return "Parameter names may hold only lower-case letters and '_'."
        if any(name != added and (name.endswith(added) or added.endswith(name)) for added in PROXY_ADDED):
            return "A parameter name overlaps one the app proxy adds."
    return None


def check_proxy_query(pairs: Pairs, secrets: Secrets) -> ProxyCheck:
    """The signature first (under every secret), then whether the signed string pins Shopify's parameters."""
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    if any(counts.get(name, 0) > 1 for name in _SINGLE_VALUED):
        return ProxyCheck.BAD_SIGNATURE
    given = next((value for key, value in pairs if key == "signature"), "")
    digest = _hex_digest(given)
    if digest is None:
        return ProxyCheck.BAD_SIGNATURE
    position = matching_secret(secrets, digest, proxy_message(pairs))
    if position is None:
        return ProxyCheck.BAD_SIGNATURE
    if proxy_query_ambiguity(pairs) is not None:
        return ProxyCheck.AMBIGUOUS
    note_previous_secret("app_proxy", position)
    return ProxyCheck.VALID


def verify_proxy_signature(pairs: Pairs, secrets: Secrets) -> bool:
    """True only for a valid signature over a query that cannot be re-split (see check_proxy_query)."""
    return check_proxy_query(pairs, secrets) is ProxyCheck.VALID


# --- Webhooks (`X-Shopify-Hmac-Sha256`) -------------------------------------------------------------


def sign_webhook(body: bytes, secret: str) -> str:
    return base64.b64encode(_hmac_sha256(secret, body)).decode()


def verify_webhook_hmac(body: bytes, header: str | None, secrets: Secrets) -> bool:
    if not header:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    position = matching_secret(secrets, given, body)
    note_previous_secret("webhook", position)
    return position is not None


# --- Timestamps ---------------------------------------------------------------------------------------


def timestamp_is_fresh(value: str | None, max_age: int, *, now: float | None = None) -> bool:
    """Signed timestamps older (or further in the future) than `max_age` seconds are replays."""
    if not value or not (value.isascii() and value.isdigit()):  # int() would also take other scripts' digits
        return False
    current = time.time() if now is None else now
    return abs(current - int(value)) <= max_age


def quote_value(value: str) -> str:
    """Percent-encode a query value the way our redirects build them (used by devshop and tests)."""
    return quote(value, safe="")
