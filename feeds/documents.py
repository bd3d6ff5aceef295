"""Product → index document: only public catalogue data, in one shape for paged and bulk syncs.

The card's variant: a product card shows one variant's price, and its compare-at price from that same
variant (only when above the price). It is the cheapest available variant (the cheapest of all when none is
available; among equally cheap ones the one with the highest compare-at price, then the first), chosen per
pricing zone because a market's fixed prices can make another variant the cheapest. `price_varies` says the
variants do not all cost the same (the card then reads "From …"). `on_sale` and `discount_pct` are the card
variant's own discount, so a product in the on-sale feed always shows a real discount on its card: a product
whose only discount is on a dearer or sold-out variant is not "on sale" from the card's point of view (its
card could not show that discount without showing a price the shopper does not pay from). The on-sale feed
of a market filters on `sale_zones`, the zones where the card variant is discounted at that market's prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from feeds.markets import BASE, Zone
from shopify.queries import pricing_alias

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


class _Priced(NamedTuple):
    """One variant at one zone's prices (a tuple: built for every variant of every product a sync writes)."""

    price: Decimal
    compare_at: Decimal | None
    available: bool
    position: int


@dataclass(frozen=True)
class CardPrice:
    price: Decimal
    compare_at: Decimal | None  # only when above price
    varies: bool

    @property
    def discount_pct(self) -> Decimal:
        if self.compare_at is None or self.price <= 0:
            return Decimal(0)
        return (self.compare_at - self.price) / self.compare_at * 100

    def entry(self, currency: str | None) -> dict[str, Any]:
        return {"currency": currency, "price": _text(self.price), "compare_at_price": _text(self.compare_at),
                "price_varies": self.varies}


def card_price(variants: Sequence[_Priced]) -> CardPrice | None:
    """The card's price: the card variant's price and compare-at price (see the module docstring)."""
    if not variants:
        return None
    pool = [v for v in variants if v.available] or list(variants)
    best = min(pool, key=lambda v: (v.price, -(v.compare_at or 0), v.position))
    compare = best.compare_at if best.compare_at is not None and best.compare_at > best.price > 0 else None
    return CardPrice(best.price, compare, len({v.price for v in variants}) > 1)


def _base_prices(variants: list[dict[str, Any]]) -> list[_Priced]:
    out = []
    for position, variant in enumerate(variants):
        price = _decimal(variant.get("price"))
        if price is None:
            return []  # a variant without a price: no card price can be trusted
        out.append(_Priced(price, _decimal(variant.get("compareAtPrice")), bool(variant.get("availableForSale")),
                           position))
    return out


def _zone_prices(variants: list[dict[str, Any]], zone: Zone) -> tuple[list[_Priced], str | None]:
    """Every variant at `zone`'s prices and their currency, or ([], None) when any of them is missing."""
    out: list[_Priced] = []
    currencies = set()
    for position, variant in enumerate(variants):
        pricing = variant.get(pricing_alias(zone.country or "")) or {}
        price, currency = _money(pricing, "price")
        if price is None or not currency:
            return [], None
        compare, compare_currency = _money(pricing, "compareAtPrice")
        if compare is not None and compare_currency not in (None, currency):
            compare = None
        currencies.add(currency)
        out.append(_Priced(price, compare, bool(variant.get("availableForSale")), position))
    if len(currencies) != 1:
        return [], None
    return out, currencies.pop()


def to_document(
    shop: str, product: dict[str, Any], *, generation: int, signals: tuple[int, int] = (0, 0),
    previous: dict[str, Any] | None = None, now: int | None = None, zones: Sequence[Zone] = (),
) -> dict[str, Any]:
    """The index document for a listed product. `previous` (the indexed one) carries `back_in_stock_at`;
    `zones` are the shop's market pricing zones whose prices the product's variants carry (contextualPricing
    under `shopify.queries.pricing_alias`)."""
    pid = product_id(product["id"])
    variants = _nodes(product.get("variants"))
    price_min, currency = _money(product.get("priceRangeV2"), "minVariantPrice")
    price_max, _ = _money(product.get("priceRangeV2"), "maxVariantPrice")

    base = card_price(_base_prices(variants))
    if base is None and price_min is not None:  # no variant data: the range says what it can, no discount
        base = CardPrice(price_min, None, price_max is not None and price_max != price_min)
    on_sale = base is not None and base.compare_at is not None
    prices: dict[str, dict[str, Any]] = {}
    sale_zones = [BASE] if on_sale else []
    for zone in zones:
        priced, zone_currency = _zone_prices(variants, zone)
        found = card_price(priced)
        if found is None:
            continue  # unknown at this market's prices: the feed shows no price there rather than a wrong one
        prices[zone.key] = found.entry(zone_currency)
        if found.compare_at is not None:
            sale_zones.append(zone.key)

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
        # The card in the shop's own currency (the base zone), and in every market zone whose prices are known.
        "card_price": _text(base.price) if base else None,
        "card_compare_at_price": _text(base.compare_at) if base else None,
        "price_varies": bool(base and base.varies),
        "prices": prices,
        "sale_zones": sale_zones,
        "on_sale": on_sale,
        "discount_pct": int(base.discount_pct.quantize(Decimal(1))) if base and on_sale else 0,
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
