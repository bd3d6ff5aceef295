"""Shopify's OAuth token endpoint: authorization code, token exchange and refresh grants (expiring tokens)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

log = logging.getLogger(__name__)

# Read-only, and only what the features need (the same list as shopify.app.toml; a test keeps them equal).
REQUIRED_SCOPES: tuple[str, ...] = ("read_products", "read_orders", "read_inventory", "read_markets")

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"


class OAuthError(Exception):
    """A token request failed. `permanent` means retrying with the same input cannot succeed."""

    def __init__(self, code: str, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent
        self.status = status


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    scopes: tuple[str, ...]
    expires_at: float | None  # epoch seconds; None for a non-expiring token
    refresh_token: str | None
    refresh_expires_at: float | None

    def missing_scopes(self, required: tuple[str, ...] = REQUIRED_SCOPES) -> list[str]:
        granted = set(self.scopes)
        # Shopify's write_X implies read_X.
        granted |= {"read_" + scope.removeprefix("write_") for scope in self.scopes if scope.startswith("write_")}
        return [scope for scope in required if scope not in granted]


def parse_token_response(body: Mapping[str, Any], now: float | None = None) -> TokenSet:
    current = time.time() if now is None else now
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthError("invalid_response", "Shopify's token response has no access_token.", permanent=False)
    scope = body.get("scope") or ""
    expires_in = body.get("expires_in")
    refresh_in = body.get("refresh_token_expires_in")
    return TokenSet(
        access_token=token,
        scopes=tuple(s.strip() for s in str(scope).split(",") if s.strip()),
        expires_at=current + float(expires_in) if isinstance(expires_in, int | float) else None,
        refresh_token=body.get("refresh_token") or None,
        refresh_expires_at=current + float(refresh_in) if isinstance(refresh_in, int | float) else None,
    )


class OAuthClient:
    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        admin_base_url: str = "https://{shop}",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.api_key = api_key
        self._secret = api_secret
        self.admin_base_url = admin_base_url
        self.timeout = timeout
        self.session = session or requests.Session()

    def admin_url(self, shop: str, path: str) -> str:
        return self.admin_base_url.format(shop=shop) + path

    def authorize_url(self, shop: str, *, state: str, redirect_uri: str,
                      scopes: tuple[str, ...] = REQUIRED_SCOPES) -> str:
        query = urlencode(
            {"client_id": self.api_key, "scope": ",".join(scopes), "redirect_uri": redirect_uri, "state": state}
        )
        return self.admin_url(shop, f"/admin/oauth/authorize?{query}")

    def exchange_code(self, shop: str, code: str) -> TokenSet:
        return self._request(shop, {"code": code, "expiring": "1"})

    def exchange_session_token(self, shop: str, session_token: str) -> TokenSet:
        return self._request(
            shop,
            {
                "grant_type": TOKEN_EXCHANGE_GRANT,
                "subject_token": session_token,
                "subject_token_type": ID_TOKEN_TYPE,
                "requested_token_type": OFFLINE_TOKEN_TYPE,
                "expiring": "1",
            },
        )

    def refresh(self, shop: str, refresh_token: str) -> TokenSet:
        return self._request(shop, {"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _request(self, shop: str, grant: dict[str, str]) -> TokenSet:
        body = {"client_id": self.api_key, "client_secret": self._secret, **grant}
        url = self.admin_url(shop, "/admin/oauth/access_token")
        try:
            response = self.session.post(
                url, json=body, timeout=self.timeout, allow_redirects=False, headers={"Accept": "application/json"}
            )
        except requests.RequestException as err:
            raise OAuthError("unreachable", f"Shopify's token endpoint is unreachable ({type(err).__name__}).",
                             permanent=False) from err
        if response.status_code >= 500 or response.status_code == 429:
            raise OAuthError("unavailable", f"Shopify's token endpoint answered {response.status_code}.",
                             permanent=False, status=response.status_code)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code != 200:
            code = str(payload.get("error") or "rejected") if isinstance(payload, dict) else "rejected"
            # 4xx: the code, token or refresh token is not (or no longer) acceptable. Never log the body:
            # it may echo what we sent.
            log.warning("token request refused", extra={"shop": shop, "status": response.status_code, "code": code})
            raise OAuthError(code, f"Shopify refused the token request ({code}).", permanent=True,
                             status=response.status_code)
        if not isinstance(payload, dict):
            raise OAuthError("invalid_response", "Shopify's token response is not JSON.", permanent=False)
        return parse_token_response(payload)
