"""The Shopify objects devshop's storefront pages hand to Liquid (product, collection, localization...), every price
in the shopper's market, and the market price report of the control API (/_devshop/shops/<shop>/markets)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_name, get_currency_symbol

from devshop.catalogue import Collection, Product, iso, money
from devshop.markets import Market, market_for_country, market_price
from devshop.shopify_liquid import CollectionDropBase, Drop, ImageDrop, format_money, to_subunits
from devshop.shops import Shop

LANGUAGES = ("en", "fr", "de", "es")  # every devshop shop publishes these; en is the primary language
COLLECTION_PAGE_SIZE = 24
SCAN_LIMIT = 5000  # products looked at for a collection's members (devshop's catalogues have no membership index)


def listed_ok(product: Any) -> bool:
    """On the online store: active and published (Shopify answers 404 for the rest)."""
    return product.status == "ACTIVE" and product.published_at is not None


# ---- Liquid objects ------------------------------------------------------------------------------------------------

def image_drop(image: Any, fallback_alt: str) -> ImageDrop:
    return ImageDrop(id=image.id, src=image.url, url=image.url, width=image.width, height=image.height,
                     alt=image.alt or fallback_alt,
                     aspect_ratio=round(image.width / image.height, 4) if image.height else None)


def product_drop(product: Product, market: Market, root: str) -> Drop:
    """Shopify's `product`, with every price in `market`'s currency (devshop.markets.market_price)."""
    url = f"{root}products/{product.handle}"
    images = [image_drop(i, product.title) for i in product.images]
    by_id = {i["id"]: i for i in images}
    variants = []
    for v in product.variants:
        price, compare = market_price(market, product.id, v.price, v.compare_at_price)
        values = [value for _, value in v.options]
        variants.append(Drop(
            id=v.id, title=v.title, price=to_subunits(price), compare_at_price=to_subunits(compare),
            available=v.available_for_sale, sku=v.sku, url=f"{url}?variant={v.id}",
            image=by_id.get(v.image_id) if v.image_id else None, options=values,
            option1=values[0] if values else None, option2=values[1] if len(values) > 1 else None,
            option3=values[2] if len(values) > 2 else None))
    prices = [v["price"] for v in variants]
    compares = [v["compare_at_price"] for v in variants if v["compare_at_price"] is not None]
    first_available = next((v for v in variants if v["available"]), None)
    return Drop(
        id=product.id, handle=product.handle, title=product.title, vendor=product.vendor,
        type=product.product_type, tags=list(product.tags), description=product.description_html, url=url,
        available=first_available is not None,
        price=min(prices) if prices else None, price_min=min(prices) if prices else None,
        price_max=max(prices) if prices else None, price_varies=len(set(prices)) > 1,
        compare_at_price=min(compares) if compares else None,
        compare_at_price_min=min(compares) if compares else None,
        compare_at_price_max=max(compares) if compares else None, compare_at_price_varies=len(set(compares)) > 1,
        featured_image=images[0] if images else None, images=images, variants=variants,
        selected_or_first_available_variant=first_available or (variants[0] if variants else None),
        first_available_variant=first_available,
        has_only_default_variant=len(variants) == 1 and product.variants[0].title == "Default Title",
        options=[name for name, _ in product.options], created_at=iso(product.created_at),
        published_at=iso(product.published_at),
    )


class CollectionDrop(CollectionDropBase):
    """Shopify's `collection`; its products (listed members, first COLLECTION_PAGE_SIZE) are found when read."""

    def __init__(self, shop: Shop, collection: Collection, market: Market, root: str) -> None:
        super().__init__(
            id=collection.id, handle=collection.handle, title=collection.title,
            url=f"{root}collections/{collection.handle}", description=collection.description_html,
            image=image_drop(collection.image, collection.title) if collection.image else None)
        self._source = (shop, collection, market, root)

    def load_products(self) -> None:
        shop, collection, market, root = self._source
        members, count = collection_members(shop, collection, COLLECTION_PAGE_SIZE)
        self["products"] = [product_drop(p, market, root) for p in members]
        self["products_count"] = self["all_products_count"] = count


def collection_members(shop: Shop, collection: Collection, limit: int) -> tuple[list[Product], int]:
    cat, count = shop.catalogue, 0
    found: list[Product] = []
    for scanned, index in enumerate(cat.all_indexes()):
        if scanned >= SCAN_LIMIT:
            break
        core = cat.core(index)
        if core is not None and collection.index in core.collections and listed_ok(core):
            count += 1
            if len(found) < limit:
                product = cat.product(index)
                if product is not None:
                    found.append(product)
    return found, count


def currency_drop(code: str, locale: str) -> Drop:
    return Drop(iso_code=code, name=get_currency_name(code, locale=locale),
                symbol=get_currency_symbol(code, locale="en"))


def _babel(locale: str) -> Locale:
    try:
        return Locale.parse(locale)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def country_drop(code: str, market: Market, locale: str) -> Drop:
    return Drop(iso_code=code, name=_babel(locale).territories.get(code, code),
                currency=currency_drop(market.currency, locale), market=Drop(id=market.id, handle=market.handle))


def language_drop(code: str, locale: str, root: str) -> Drop:
    return Drop(iso_code=code, name=_babel(locale).languages.get(code, code),
                endonym_name=_babel(code).languages.get(code, code), primary=code == LANGUAGES[0], root_url=root)


# ---- prices per market (the control API's /markets) ---------------------------------------------------------------

def card_variant(product: Product) -> Any:
    """The variant a feed card shows (the contract of Lumi's cards): the cheapest available variant, or the cheapest
    variant when none is available; ties go to the first."""
    pool = [v for v in product.variants if v.available_for_sale] or list(product.variants)
    return min(pool, key=lambda v: (v.price, v.position)) if pool else None


def market_report(shop: Shop, country: str | None, handle: str | None) -> dict[str, Any]:
    """The shop's markets; with `country`, the market it buys in; with `handle`, that product's prices there."""
    report: dict[str, Any] = {"shop": shop.domain, "base_currency": shop.currency,
                              "markets": [m.describe() for m in shop.markets]}
    market = market_for_country(shop.markets, country)
    if country:
        report["country"] = country.upper()
        report["market"] = market.describe()
    if handle:
        product = shop.catalogue.by_handle(handle)
        if product is None:
            raise LookupError(f"no product with handle {handle!r}")
        report["product"] = product_prices(product, market)
    return report


def product_prices(product: Product, market: Market) -> dict[str, Any]:
    currency = market.currency

    def amount(value: Decimal | None) -> str | None:
        return money(value, currency) if value is not None else None

    variants = []
    for v in product.variants:
        price, compare = market_price(market, product.id, v.price, v.compare_at_price)
        variants.append({"id": v.id, "title": v.title, "available": v.available_for_sale, "price": amount(price),
                         "compare_at_price": amount(compare)})
    prices = [market_price(market, product.id, v.price, v.compare_at_price)[0] for v in product.variants]
    card = card_variant(product)
    card_prices = market_price(market, product.id, card.price, card.compare_at_price) if card else (None, None)
    low = min(prices) if prices else None
    return {
        "id": product.id, "handle": product.handle, "title": product.title, "listed": listed_ok(product),
        "market": market.handle, "currency": currency, "fixed_price": product.id in market.fixed_prices,
        "price": amount(low), "price_max": amount(max(prices) if prices else None),
        "price_varies": len(set(prices)) > 1,
        "money": format_money(to_subunits(low), currency) if low is not None else None,
        "money_with_currency": (format_money(to_subunits(low), currency, with_currency=True)
                                if low is not None else None),
        "card": {"variant_id": card.id if card else None, "price": amount(card_prices[0]),
                 "compare_at_price": amount(card_prices[1]), "price_varies": len(set(prices)) > 1},
        "variants": variants,
    }
