"""Every feed, defined in one place: a named, documented query over the shop's index, plus its parameters.

A feed turns validated parameters and the merchant's settings into a Meilisearch search (filters, sort,
query text); `similar` additionally re-ranks candidates by how much they share with the product.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency

from feeds.markets import BASE, Zone
from feeds.writer import shop_filter

MAX_LIMIT = 50
MAX_OFFSET = 1000  # deep pages are not what a product row needs (and stay under maxTotalHits)
DEFAULT_LOCALE = "en"
COUNTRY = re.compile(r"^[A-Za-z]{2}$")
LOCALE_SHAPE = re.compile(r"^[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8}){0,3}$")
BASE_ZONE = Zone(BASE, None)  # the shop's own prices, in the currency each document carries


class FeedParamError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class FeedParams:
    limit: int
    offset: int
    exclude: tuple[int, ...] = ()
    available_only: bool = False
    min_price: float | None = None
    max_price: float | None = None
    q: str | None = None
    order: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    country: str | None = None  # the shopper's country (upper case); None: the shop's own prices
    locale: str = DEFAULT_LOCALE  # a locale Babel knows, for formatted prices
    # The pricing zone the country resolves to (feeds.markets), set by the service before the query is built.
    # Not part of the cache key: it follows from the country and the index version, which both are.
    zone: str = BASE

    def cache_key(self) -> str:
        return json.dumps([self.limit, self.offset, self.exclude, self.available_only, self.min_price, self.max_price,
                           self.q, self.order, self.extra, self.country, self.locale], separators=(",", ":"))


@dataclass(frozen=True)
class Search:
    q: str = ""
    filters: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Feed:
    name: str
    description: str
    build: Callable[[FeedParams, str], Search]
    orders: tuple[str, ...] = ()
    needs_q: bool = False


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


FEEDS: dict[str, Feed] = {
    "new-arrivals": Feed("new-arrivals", "Most recently published products first.",
                         lambda p, arg: Search(sort=["published_at:desc"])),
    "best-sellers": Feed(
        "best-sellers", "Most units sold over the last 30 days (ties: newest).",
        lambda p, arg: Search(filters=["units_30d > 0"], sort=["units_30d:desc", "published_at:desc"]),
    ),
    "trending": Feed(
        "trending",
        "Sales velocity: the last 7 days against the 30-day weekly rate (a steady best seller is not trending).",
        lambda p, arg: Search(filters=["units_7d > 0"], sort=["trend_score:desc", "units_7d:desc"]),
    ),
    "on-sale": Feed(
        "on-sale", "Products whose card variant's compare-at price is above its price, at the shopper's market's "
        "prices; `order=discount` (default) or `newest`.",
        lambda p, arg: Search(filters=["on_sale = true" if p.zone == BASE else f"sale_zones = {_quote(p.zone)}"],
                              sort=["published_at:desc"] if p.order == "newest" else ["discount_pct:desc",
                                                                                     "published_at:desc"]),
        orders=("discount", "newest"),
    ),
    "back-in-stock": Feed("back-in-stock", "Products that recently became available again, most recent first.",
                          lambda p, arg: Search(filters=["back_in_stock_at > 0", "available = true"],
                                                sort=["back_in_stock_at:desc"])),
    "collection": Feed(
        "collection", "A collection's products by handle; `order=newest` (default), `best-selling`, `price-asc`, "
        "`price-desc`.",
        lambda p, arg: Search(filters=[f"collections = {_quote(arg)}"], sort={
            "best-selling": ["units_30d:desc"], "price-asc": ["price_min:asc"], "price-desc": ["price_min:desc"],
        }.get(p.order or "", ["published_at:desc"])),
        orders=("newest", "best-selling", "price-asc", "price-desc"),
    ),
    "similar": Feed("similar", "Products sharing type, vendor, tags, collections and price band; never the product.",
                    lambda p, arg: Search()),  # built by feeds.service from the product's own document
    "search": Feed("search", "Typo-tolerant search in titles, vendors, types, tags, collections and options.",
                   lambda p, arg: Search(q=p.q or ""), needs_q=True),
}


# The merchant's pinned products: the same shop, exclusion and stock filters as any feed, no feed filter.
PINNED = Feed("pinned", "Products the merchant pinned to the top of a feed.", lambda p, arg: Search())


def parse_feed_path(path: str) -> tuple[Feed, str]:
    """`collection/<handle>` and `similar/<product id>` carry an argument; the rest do not."""
    name, _, arg = path.partition("/")
    feed = FEEDS.get(name)
    if feed is None:
        raise FeedParamError("feed", f"unknown feed; feeds are {', '.join(FEEDS)}")
    if name == "collection":
        if not arg or len(arg) > 255 or "/" in arg:
            raise FeedParamError("handle", "collection/<handle> needs a collection handle")
    elif name == "similar":
        if not arg.isdigit() or len(arg) > 20:
            raise FeedParamError("product_id", "similar/<product id> needs a numeric product id")
    elif arg:
        raise FeedParamError("feed", f"{name} takes no path argument")
    return feed, arg


def _bool(name: str, value: str) -> bool:
    if value.lower() in {"1", "true", "yes"}:
        return True
    if value.lower() in {"0", "false", "no"}:
        return False
    raise FeedParamError(name, "must be true or false")


def _price(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FeedParamError(name, "must be a number") from None
    if not 0 <= number <= 1e9 or number != number:
        raise FeedParamError(name, "must be between 0 and 1000000000")
    return number


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _cursor(value: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        offset = int(data["o"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise FeedParamError("cursor", "is not a cursor this feed returned") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise FeedParamError("cursor", "is out of range")
    return offset


KNOWN = {"limit", "cursor", "page", "exclude", "available", "min_price", "max_price", "q", "order", "country",
         "locale"}
# Added by Shopify's app proxy (signed) or by caches; never feed parameters.
IGNORED = {"shop", "signature", "timestamp", "path_prefix", "logged_in_customer_id", "_"}


def parse_params(feed: Feed, args: Mapping[str, str], default_limit: int) -> FeedParams:
    unknown = sorted(set(args) - KNOWN - IGNORED)
    if unknown:
        raise FeedParamError(unknown[0], "is not a parameter of this feed")
    limit = default_limit
    if "limit" in args:
        if not args["limit"].isdigit() or not 1 <= int(args["limit"]) <= MAX_LIMIT:
            raise FeedParamError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        limit = int(args["limit"])
    offset = 0
    if "cursor" in args and "page" in args:
        raise FeedParamError("cursor", "use either cursor or page, not both")
    if "cursor" in args:
        offset = _cursor(args["cursor"])
    elif "page" in args:
        if not args["page"].isdigit() or int(args["page"]) < 1:
            raise FeedParamError("page", "must be a positive integer")
        offset = (int(args["page"]) - 1) * limit
        if offset > MAX_OFFSET:
            raise FeedParamError("page", "is out of range")
    exclude: list[int] = []
    if args.get("exclude"):
        for item in args["exclude"].split(","):
            if not item.strip().isdigit():
                raise FeedParamError("exclude", "must be comma-separated product ids")
            exclude.append(int(item))
        if len(exclude) > 100:
            raise FeedParamError("exclude", "may list at most 100 products")
    min_price = _price("min_price", args["min_price"]) if "min_price" in args else None
    max_price = _price("max_price", args["max_price"]) if "max_price" in args else None
    if min_price is not None and max_price is not None and min_price > max_price:
        raise FeedParamError("min_price", "must not be above max_price")
    q = args.get("q")
    if feed.needs_q and not (q and q.strip()):
        raise FeedParamError("q", "is required for search")
    if q is not None and (not feed.needs_q or len(q) > 200):
        raise FeedParamError("q", "is only for search, at most 200 characters")
    order = args.get("order")
    if order is not None and order not in feed.orders:
        raise FeedParamError("order", f"must be one of {', '.join(feed.orders)}" if feed.orders
                             else "is not a parameter of this feed")
    country = args.get("country") or None  # an empty value names no country
    if country is not None and not COUNTRY.match(country):
        raise FeedParamError("country", "must be a two-letter country code (ISO 3166-1 alpha-2), e.g. FR")
    return FeedParams(limit=limit, offset=offset, exclude=tuple(sorted(set(exclude))),
                      available_only=_bool("available", args["available"]) if "available" in args else False,
                      min_price=min_price, max_price=max_price, q=q.strip() if q else None, order=order,
                      country=country.upper() if country else None, locale=normalize_locale(args.get("locale")))


@lru_cache(maxsize=512)
def normalize_locale(value: str | None) -> str:
    """A locale Babel knows (`fr`, `fr-CA` → `fr_CA`), or `en` for anything it does not know: a formatting
    preference is never worth an error."""
    if not value or not LOCALE_SHAPE.match(value):
        return DEFAULT_LOCALE
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT_LOCALE


def search_arguments(feed: Feed, arg: str, params: FeedParams, shop: str, settings: Mapping[str, Any],
                     *, limit: int, offset: int) -> tuple[str, dict[str, Any]]:
    """The Meilisearch query for a feed page, with the merchant's settings and the shop filter applied."""
    search = feed.build(params, arg)
    filters = [shop_filter(shop), *search.filters]
    excluded_ids = set(params.exclude) | set(settings.get("excluded_products") or [])
    if excluded_ids:
        filters.append(f"product_id NOT IN [{', '.join(map(str, sorted(excluded_ids)))}]")
    tags = settings.get("excluded_tags") or []
    if tags:
        filters.append(f"tags NOT IN [{', '.join(_quote(t) for t in tags)}]")
    if params.available_only or settings.get("out_of_stock") == "hide":
        filters.append("available = true")
    if params.min_price is not None:
        filters.append(f"price_min >= {params.min_price}")
    if params.max_price is not None:
        filters.append(f"price_min <= {params.max_price}")
    sort = list(search.sort)
    if settings.get("out_of_stock") == "demote":
        sort = ["available:desc", *sort]  # in stock first, each half in the feed's own order
    options: dict[str, Any] = {"filter": " AND ".join(f"({f})" for f in filters), "limit": limit, "offset": offset,
                               "attributesToRetrieve": CARD_FIELDS}
    if sort:
        options["sort"] = sort
    return search.q, options


CARD_FIELDS = ["product_id", "handle", "title", "vendor", "currency", "available", "image", "product_type", "tags",
               "collections", "price_min", "price_min_text", "price_max_text", "card_price", "card_compare_at_price",
               "price_varies", "prices"]


@lru_cache(maxsize=4096)
def format_money(amount: str | None, currency: str | None, locale: str) -> str | None:
    """`amount` in `currency` the way `locale` writes it (CLDR, through Babel): 18.95 EUR in fr → "18,95 €"."""
    if amount is None or not currency:
        return None
    try:
        return format_currency(Decimal(amount), currency, locale=locale)
    except (InvalidOperation, ValueError, UnknownLocaleError):
        return None


def card(doc: Mapping[str, Any], zone: Zone | None = BASE_ZONE, locale: str = DEFAULT_LOCALE) -> dict[str, Any]:
    """What a product card needs, nothing more, priced for `zone` (None: a country was named but the shop's
    markets are unknown, so no price can be trusted). Price and compare-at price always come from one variant,
    the card's (feeds.documents); a price that is not known for the zone is null, never another currency's."""
    price: str | None = None
    compare: str | None = None
    varies = False
    currency: str | None = None
    if zone is not None and zone.key == BASE:
        currency = doc.get("currency")
        if "card_price" in doc:
            price, compare = doc.get("card_price"), doc.get("card_compare_at_price")
            varies = bool(doc.get("price_varies"))
        else:  # indexed before cards had a variant of their own: the lowest price, without a compare-at price
            price = doc.get("price_min_text")
            varies = doc.get("price_max_text") not in (None, price)
    elif zone is not None:
        currency = zone.currency
        entry = (doc.get("prices") or {}).get(zone.key)
        if entry and entry.get("currency") == zone.currency:
            price, compare = entry.get("price"), entry.get("compare_at_price")
            varies = bool(entry.get("price_varies"))
    return {
        "id": str(doc["product_id"]),
        "handle": doc["handle"],
        "url": f"/products/{doc['handle']}",
        "title": doc["title"],
        "vendor": doc.get("vendor") or "",
        "price": price,
        "compare_at_price": compare,
        "currency": currency,
        "price_formatted": format_money(price, currency, locale),
        "compare_at_price_formatted": format_money(compare, currency, locale),
        "price_varies": varies if price is not None else False,
        "available": bool(doc.get("available")),
        "image": doc.get("image"),
    }
