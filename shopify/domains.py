"""Shop domain rules: Lumi accepts only `name.myshopify.com`, exactly, in lower case."""

from __future__ import annotations

import re

# Stricter than Shopify's own libraries on purpose (see ../shared/shopify/README.md): a production
# app never needs custom domains or other Shopify hosts here, and we do not "fix" input either —
# `SHOP.myshopify.com` or ` shop.myshopify.com` is refused, not lower-cased or trimmed.
_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$")


def valid_shop_domain(value: object) -> str | None:
    """`value` when it is a valid shop domain, else None."""
    if isinstance(value, str) and _SHOP_DOMAIN.fullmatch(value):
        return value
    return None
