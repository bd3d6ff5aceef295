"""The errors the Admin API client raises; callers catch these, never `requests` exceptions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# Shopify echoes query fragments and search strings in some messages; an email typed by a shopper must
# never reach a log line or an error report through them.
_EMAIL = re.compile(r"[^\s\"'<>@]+@[^\s\"'<>@]+\.[A-Za-z]{2,}")


def redact(text: str) -> str:
    """`text` with anything shaped like an email address replaced."""
    return _EMAIL.sub("[redacted email]", text)


class ShopifyError(Exception):
    """Base class: any failure talking to the Shopify Admin API.

    Raised as is for unexpected 4xx answers (400 bad request, 402 frozen shop, 423 locked shop, ...).
    """

    def __init__(self, message: str, *, shop: str | None = None, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.shop = shop
        self.status = status


class ShopifyUnavailable(ShopifyError):
    """Shopify did not answer usefully (5xx, network error, timeout, invalid JSON) after all retries."""

    def __init__(
        self,
        message: str,
        *,
        shop: str | None = None,
        status: int | None = None,
        attempts: int,
        last_cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, shop=shop, status=status)
        self.attempts = attempts
        self.last_cause = last_cause


class ShopifyThrottled(ShopifyError):
    """Still throttled after the allowed waits (or the query can never fit the shop's bucket)."""

    def __init__(
        self,
        message: str,
        *,
        shop: str | None = None,
        status: int | None = None,
        waits: int,
        requested_cost: float | None = None,
    ) -> None:
        super().__init__(message, shop=shop, status=status)
        self.waits = waits
        self.requested_cost = requested_cost


class ShopifyAuthError(ShopifyError):
    """401/403: the access token is invalid, expired or revoked, or lacks the scope."""


class ShopifyNotFound(ShopifyError):
    """404: unknown shop, or an API version Shopify does not serve."""


class ShopifyGraphQLError(ShopifyError):
    """Top-level GraphQL `errors` other than throttling; `errors` holds them (sanitised), `data` any partial data."""

    def __init__(
        self,
        errors: Sequence[Mapping[str, Any]],
        *,
        shop: str | None = None,
        status: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.errors = [sanitize_error(error) for error in errors]
        self.data = data
        messages = "; ".join(error["message"] for error in self.errors) or "unknown GraphQL error"
        super().__init__(f"Shopify GraphQL error for {shop}: {messages}", shop=shop, status=status)

    @property
    def codes(self) -> list[str]:
        """The `extensions.code` of each error that has one."""
        return [error["code"] for error in self.errors if error.get("code")]


class ShopifyQueryCostError(ShopifyGraphQLError):
    """MAX_COST_EXCEEDED: the query's requested cost is over Shopify's single-query limit; make it smaller."""


def sanitize_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a GraphQL error safe to keep and log: message (redacted), code, path.

    Extensions such as `value`/`problems` can echo variable values, so they are dropped.
    """
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    clean: dict[str, Any] = {"message": redact(str(error.get("message", "")))}
    if isinstance(code, str):
        clean["code"] = code
    path = error.get("path")
    if isinstance(path, list):
        clean["path"] = [part for part in path if isinstance(part, str | int)]
    return clean
