"""Every feed, defined in one place: a named, documented query over the shop's index, plus its parameters.

A feed turns validated parameters and the merchant's settings into a Meilisearch search (filters, sort,
query text); `similar` additionally re-ranks candidates by how much they share with the product.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feeds.writer import shop_filter

MAX_LIMIT = 50
MAX_OFFSET = 1000  # deep pages are not what a product row needs (and stay under maxTotalHits)


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

    def cache_key(self) -> str:
        return json.dumps([self.limit, self.offset, self.exclude, self.available_only, self.min_price, self.max_price,
                           self.q, self.order, self.extra], separators=(",", ":"))


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
        "on-sale", "Products whose compare-at price is above their price; `order=discount` (default) or `newest`.",
        lambda p, arg: Search(filters=["on_sale = true"],
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


KNOWN = {"limit", "cursor", "page", "exclude", "available", "min_price", "max_price", "q", "order"}
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
    return FeedParams(limit=limit, offset=offset, exclude=tuple(sorted(set(exclude))),
                      available_only=_bool("available", args["available"]) if "available" in args else False,
                      min_price=min_price, max_price=max_price, q=q.strip() if q else None, order=order)


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


CARD_FIELDS = ["product_id", "handle", "title", "vendor", "price_min_text", "compare_at_min_text", "currency",
               "available", "image", "product_type", "tags", "collections", "price_min"]


def card(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What a product card needs, nothing more."""
    return {
        "id": str(doc["product_id"]),
        "handle": doc["handle"],
        "url": f"/products/{doc['handle']}",
        "title": doc["title"],
        "vendor": doc.get("vendor") or "",
        "price": doc.get("price_min_text"),
        "compare_at_price": doc.get("compare_at_min_text"),
        "currency": doc.get("currency"),
        "available": bool(doc.get("available")),
        "image": doc.get("image"),
    }
