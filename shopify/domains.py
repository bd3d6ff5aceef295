"""Shop domain rules: Lumi accepts only `name.myshopify.com`, lower-case."""

from __future__ import annotations

import re

# Stricter than Shopify's own libraries on purpose (see ../shared/shopify/README.md):
# a production app never needs custom domains or other Shopify hosts here.
_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


def normalize_shop_domain(value: str | None) -> str | None:
    """The canonical shop domain, or None when `value` is not a valid one."""
    if not value:
        return None
    candidate = value.strip().lower()
    if len(candidate) > 255 or not _SHOP_DOMAIN.match(candidate):
        return None
    return candidate
