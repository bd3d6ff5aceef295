"""Product → index document: only public catalogue data, in one shape for paged and bulk syncs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

GID_PREFIX = "gid://shopify/Product/"


def product_id(gid_or_id: str | int) -> int:
    return int(str(gid_or_id).removeprefix(GID_PREFIX))


def document_uid(shop: str, pid: int) -> str:
    """Unique across shops: shop names are unique and hold only [a-z0-9-] (Meilisearch id alphabet)."""
    return f"{shop.removesuffix('.myshopify.com')}__{pid}"


def is_listed(product: dict[str, Any]) -> bool:
    """Only active, published products are ever indexed (never drafts, archived or unpublished ones)."""
    return product.get("status") == "ACTIVE" and bool(product.get("publishedAt"))


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _money(node: dict[str, Any] | None, key: str) -> tuple[Decimal | None, str | None]:
    money = (node or {}).get(key) or {}
    return _decimal(money.get("amount")), money.get("currencyCode")


def _epoch(value: str | None) -> int | None:
    if not value:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if not connection:
        return []
    if "nodes" in connection:
        return list(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges", [])]


def _image(product: dict[str, Any]) -> dict[str, Any] | None:
    media = product.get("featuredMedia") or {}
    image = (media.get("preview") or {}).get("image") or (media.get("image") or {})
    if not image or not image.get("url"):
        return None
    return {
        "url": image["url"],
        "width": image.get("width"),
        "height": image.get("height"),
        "alt": image.get("altText") or media.get("alt") or "",
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def to_document(
    shop: str, product: dict[str, Any], *, generation: int, signals: tuple[int, int] = (0, 0),
    previous: dict[str, Any] | None = None, now: int | None = None,
) -> dict[str, Any]:
    """The index document for a listed product. `previous` (the indexed one) carries `back_in_stock_at`."""
    pid = product_id(product["id"])
    variants = _nodes(product.get("variants"))
    price_min, currency = _money(product.get("priceRangeV2"), "minVariantPrice")
    price_max, _ = _money(product.get("priceRangeV2"), "maxVariantPrice")
    compare_min, _ = _money(product.get("compareAtPriceRange"), "minVariantCompareAtPrice")
    compare_max, _ = _money(product.get("compareAtPriceRange"), "maxVariantCompareAtPrice")

    # Discount from the variants themselves: a compare-at price only counts when above that variant's price.
    best_discount = Decimal(0)
    for variant in variants:
        price, compare = _decimal(variant.get("price")), _decimal(variant.get("compareAtPrice"))
        if price is not None and compare is not None and compare > price > 0:
            best_discount = max(best_discount, (compare - price) / compare * 100)
    on_sale = best_discount > 0

    total_inventory = product.get("totalInventory")
    available = any(v.get("availableForSale") for v in variants) if variants else (total_inventory or 0) > 0

    options: dict[str, list[str]] = {}
    for variant in variants:
        for option in variant.get("selectedOptions") or []:
            values = options.setdefault(option["name"], [])
            if option["value"] not in values:
                values.append(option["value"])

    back_in_stock_at = (previous or {}).get("back_in_stock_at")
    if previous is not None and not previous.get("available") and available:
        back_in_stock_at = now
    units_7d, units_30d = signals
    return {
        "uid": document_uid(shop, pid),
        "shop": shop,
        "generation": generation,
        "product_id": pid,
        "handle": product["handle"],
        "title": product["title"],
        "vendor": product.get("vendor") or "",
        "product_type": product.get("productType") or "",
        "tags": list(product.get("tags") or []),
        "collections": [c["handle"] for c in _nodes(product.get("collections"))],
        "options": options,
        "option_values": [value for values in options.values() for value in values],
        "currency": currency,
        "price_min": float(price_min) if price_min is not None else None,
        "price_max": float(price_max) if price_max is not None else None,
        "price_min_text": _text(price_min),
        "price_max_text": _text(price_max),
        "compare_at_min_text": _text(compare_min) if on_sale else None,
        "compare_at_max_text": _text(compare_max) if on_sale else None,
        "on_sale": on_sale,
        "discount_pct": int(best_discount.quantize(Decimal(1))) if on_sale else 0,
        "available": bool(available),
        "total_inventory": total_inventory,
        "image": _image(product),
        "published_at": _epoch(product.get("publishedAt")),
        "created_at": _epoch(product.get("createdAt")),
        "updated_at": _epoch(product.get("updatedAt")),
        "updated_at_iso": product.get("updatedAt"),
        "units_7d": units_7d,
        "units_30d": units_30d,
        # Velocity of the last week against the month's weekly average (+1 smoothing): > 1 means speeding up.
        "trend_score": round((units_7d + 1) / (units_30d / 30 * 7 + 1), 4),
        "back_in_stock_at": back_in_stock_at,
    }
