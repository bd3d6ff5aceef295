"""The merchant's settings: one validated schema with defaults, and partial updates that are all-or-nothing."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
# A merchant's escalation address (store configuration, not customer data). Deliberately simple:
# one @, a dot in the domain, no spaces; the SMTP server has the last word.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
FEEDS = ("new-arrivals", "best-sellers", "trending", "on-sale", "back-in-stock", "collection", "similar", "search")
LANGUAGES = ("en", "fr", "de", "es")

DEFAULTS: dict[str, Any] = {
    "feeds_enabled": True,
    "chat_enabled": True,
    # Chat replies stream from APP_URL directly (CORS, session secret) instead of through the app proxy,
    # whose buffering of streamed responses Shopify does not document.
    "chat_direct_stream": True,
    "feed_default_limit": 12,
    "out_of_stock": "demote",  # show | demote | hide
    "excluded_tags": [],
    "excluded_products": [],
    "pinned_products": {},  # feed name → product ids shown first
    "widget": {
        "primary_color": "#1f6feb",
        "text_color": "#ffffff",
        "position": "bottom-right",
        "greeting": "",
    },
    "escalation_email": None,
    "returns_policy": "",
    "language": "en",
}


class SettingsError(ValueError):
    """A field is unknown or its value is invalid; `field` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


Check = Callable[[str, Any], Any]


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(field, "must be true or false")
    return value


def _int_range(low: int, high: int) -> Check:
    def check(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingsError(field, f"must be an integer from {low} to {high}")
        return value

    return check


def _choice(*options: str) -> Check:
    def check(field: str, value: Any) -> str:
        if value not in options:
            raise SettingsError(field, f"must be one of {', '.join(options)}")
        return str(value)

    return check


def _text(max_length: int) -> Check:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_length:
            raise SettingsError(field, f"must be text of at most {max_length} characters")
        return value.strip()

    return check


def _colour(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _HEX_COLOUR.fullmatch(value):
        raise SettingsError(field, "must be a colour like #1f6feb")
    return value.lower()


def _email_or_none(field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value.strip()):
        raise SettingsError(field, "must be an email address or null")
    return value.strip()


def _tags(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 100:
        raise SettingsError(field, "must be a list of at most 100 tags")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 255:
            raise SettingsError(field, "each tag must be non-empty text of at most 255 characters")
        if item.strip() not in out:
            out.append(item.strip())
    return out


def _product_ids(field: str, value: Any, limit: int = 250) -> list[int]:
    if not isinstance(value, list) or len(value) > limit:
        raise SettingsError(field, f"must be a list of at most {limit} product ids")
    out: list[int] = []
    for item in value:
        number = _product_id(item)
        if number is None:
            raise SettingsError(field, "each product id must be a positive integer or a Product GID")
        if number not in out:
            out.append(number)
    return out


def _product_id(item: Any) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item > 0 else None
    if isinstance(item, str):
        digits = item.removeprefix("gid://shopify/Product/")
        if digits.isdigit() and int(digits) > 0:
            return int(digits)
    return None


def _pinned(field: str, value: Any) -> dict[str, list[int]]:
    if not isinstance(value, dict):
        raise SettingsError(field, "must be an object of feed name → product ids")
    out = {}
    for feed, ids in value.items():
        if feed not in FEEDS:
            raise SettingsError(f"{field}.{feed}", f"unknown feed; feeds are {', '.join(FEEDS)}")
        out[feed] = _product_ids(f"{field}.{feed}", ids, limit=50)
    return out


SCHEMA: dict[str, Check | dict[str, Check]] = {
    "feeds_enabled": _bool,
    "chat_enabled": _bool,
    "chat_direct_stream": _bool,
    "feed_default_limit": _int_range(1, 50),
    "out_of_stock": _choice("show", "demote", "hide"),
    "excluded_tags": _tags,
    "excluded_products": _product_ids,
    "pinned_products": _pinned,
    "widget": {
        "primary_color": _colour,
        "text_color": _colour,
        "position": _choice("bottom-right", "bottom-left"),
        "greeting": _text(200),
    },
    "escalation_email": _email_or_none,
    "returns_policy": _text(2000),
    "language": _choice(*LANGUAGES),
}


def defaults() -> dict[str, Any]:
    return copy.deepcopy(DEFAULTS)


def apply_patch(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """Validate `patch` fully and return the merged settings; raises SettingsError and changes nothing."""
    if not isinstance(patch, dict) or not patch:
        raise SettingsError("body", "must be a non-empty JSON object of settings to change")
    merged = defaults()
    merged.update(copy.deepcopy(dict(current)))
    for key, value in patch.items():
        rule = SCHEMA.get(key)
        if rule is None:
            raise SettingsError(key, "is not a setting")
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not value:
                raise SettingsError(key, "must be an object")
            nested = dict(merged.get(key) or {})
            for sub_key, sub_value in value.items():
                sub_rule = rule.get(sub_key)
                if sub_rule is None:
                    raise SettingsError(f"{key}.{sub_key}", "is not a setting")
                nested[sub_key] = sub_rule(f"{key}.{sub_key}", sub_value)
            merged[key] = nested
        else:
            merged[key] = rule(key, value)
    return merged


def load(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Stored settings over the defaults (new settings appear with their default)."""
    merged = defaults()
    for key, value in (stored or {}).items():
        if key in merged and isinstance(merged[key], dict) and isinstance(value, dict) and key == "widget":
            merged[key].update(value)
        elif key in merged:
            merged[key] = value
    return merged
