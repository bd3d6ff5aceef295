"""App Bridge session tokens (JWT): verified with PyJWT exactly as Shopify's own libraries do.

HS256 only, signed with the app secret, `aud` = client id, 10 s leeway on `exp`/`nbf`, and
`dest` a valid shop whose host equals `iss`'s. The shop in `dest` is the only shop the token speaks for.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from shopify.domains import valid_shop_domain
from shopify.signatures import Secrets, matching_secret, note_previous_secret

LEEWAY_SECONDS = 10
REQUIRED_CLAIMS = ("iss", "dest", "aud", "sub", "exp", "nbf", "iat", "jti", "sid")


class SessionTokenError(Exception):
    """Why a session token was refused; `code` is stable for clients, `message` leaks no secret."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SessionToken:
    shop: str
    user_id: str | None
    session_id: str | None
    expires_at: int
    raw: str


def _host_shop(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    return valid_shop_domain(parts.hostname)


def decode_session_token(token: str, *, api_key: str, secrets: Secrets) -> SessionToken:
    """Verify `token` or raise SessionTokenError with a code that says why.

    `secrets`: the current client secret, then the previous one during a rotation (Settings.shopify_secrets).
    """
    if not token or token.count(".") != 2:
        raise SessionTokenError("malformed_token", "The session token is not a JWT.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise SessionTokenError("malformed_token", "The session token is not a JWT.") from None
    if header.get("alg") != "HS256":
        # Refuse before verifying: `none`, RS256 (key confusion) and anything else are never accepted.
        raise SessionTokenError("unsupported_algorithm", "Session tokens must be signed with HS256.")

    # The HS256 signature is checked here, under every secret at once (rotation, no early exit); PyJWT then
    # checks it again under the secret that matched, along with the claims.
    signing_input, _, encoded = token.rpartition(".")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise SessionTokenError("malformed_token", "The session token is not a JWT.") from None
    position = matching_secret(secrets, signature, signing_input.encode())
    if position is None:
        raise SessionTokenError("bad_signature", "The session token signature is not valid.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secrets[position],
            algorithms=["HS256"],
            audience=api_key,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.InvalidSignatureError:
        raise SessionTokenError("bad_signature", "The session token signature is not valid.") from None
    except jwt.ExpiredSignatureError:
        raise SessionTokenError("token_expired", "The session token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise SessionTokenError("token_not_yet_valid", "The session token is not valid yet.") from None
    except jwt.InvalidAudienceError:
        raise SessionTokenError("wrong_audience", "The session token was issued for another app.") from None
    except jwt.MissingRequiredClaimError as err:
        raise SessionTokenError("missing_claim", f"The session token lacks the '{err.claim}' claim.") from None
    except jwt.PyJWTError:
        raise SessionTokenError("malformed_token", "The session token could not be decoded.") from None

    dest_shop = _host_shop(claims.get("dest"))
    if dest_shop is None:
        raise SessionTokenError("invalid_shop", "The session token's destination is not a valid shop.")
    iss = claims.get("iss")
    iss_shop = _host_shop(iss)
    if iss_shop != dest_shop or not isinstance(iss, str) or urlsplit(iss).path.rstrip("/") != "/admin":
        raise SessionTokenError("issuer_mismatch", "The session token's issuer does not match its destination.")
    note_previous_secret("session_token", position)
    return SessionToken(
        shop=dest_shop,
        user_id=str(claims["sub"]) if claims.get("sub") is not None else None,
        session_id=str(claims["sid"]) if claims.get("sid") is not None else None,
        expires_at=int(claims["exp"]),
        raw=token,
    )


def encode_session_token(
    shop: str, *, api_key: str, secret: str, now: int, lifetime: int = 60, user_id: str = "1", **overrides: Any
) -> str:
    """Sign a session token the way Shopify does (used by devshop and tests, never by the app itself)."""
    claims: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": api_key,
        "sub": user_id,
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": f"{shop}-{now}-{user_id}",
        "sid": f"sid-{shop}-{user_id}",
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")
