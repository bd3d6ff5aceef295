"""Resolvers: Python objects whose attributes and methods are the GraphQL fields devshop serves."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from graphql import GraphQLResolveInfo

from devshop import search
from devshop.catalogue import (
    COLLECTION_ID_BASE,
    EPOCH,
    LOCATION_ID,
    OPTION_ID_BASE,
    OPTION_SLOTS,
    PRODUCT_ID_BASE,
    Catalogue,
    Collection,
    Image,
    Product,
    ProductCore,
    Variant,
    gid,
    iso,
    money,
    rng_for,
)
from devshop.errors import access_denied, user_error
from devshop.markets import Market, market_for_country, market_price
from devshop.orders import Fulfillment, LineItem, Order, OrderBook
from devshop.paging import Page, PageError, Segment, list_segment, paginate
from devshop.shops import Shop

if TYPE_CHECKING:
    from devshop.bulk import BulkOperations, BulkSnapshot

DEFAULT_COUNT_LIMIT = 10_000  # count fields cap here unless `limit: null` (changelog 2025-05 "uncapped counts")
GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(?:\?.*)?$")
INVENTORY_NAMES = ("available", "on_hand", "committed", "incoming", "reserved", "damaged",
                   "quality_control", "safety_stock")
INVENTORY_REASONS = {"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
                     "movement_received", "movement_canceled", "other", "promotion", "quality_control",
                     "received", "reservation_created", "reservation_deleted", "reservation_updated",
                     "restock", "safety_stock", "shrinkage"}


@dataclass
class Ctx:
    """Per-request context: the shop, the token's scopes and where side effects go."""

    shop: Shop
    scopes: frozenset[str]
    pagination_limit: int | None
    emit: Callable[[str, dict[str, Any]], None]
    now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0)
    search: list[dict[str, Any]] = field(default_factory=list)
    bulk: BulkOperations | None = None  # the process's bulk operations (bulkOperationRunQuery and friends)
    base_url: str = ""  # scheme://host[:port] the client called, for URLs devshop serves itself (bulk results)
    # Bulk exports: list-backed connections (variants, media, collections...) answer every item at once,
    # ignoring first/last, and the catalogue is read through a cache-free view.
    unbounded: bool = False
    catalogue_view: Any = None

    def can(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        return scope.startswith("read_") and "write_" + scope[5:] in self.scopes

    def require(self, field_name: str, *scopes: str) -> None:
        if not any(self.can(s) for s in scopes):
            raise access_denied(field_name, scopes[0])

    @property
    def catalogue(self) -> Catalogue:
        if self.catalogue_view is not None:
            return cast(Catalogue, self.catalogue_view)
        return self.shop.catalogue


# ---- helpers ------------------------------------------------------------------------------


def parse_gid(value: Any, kind: str) -> int | None:
    m = GID.match(str(value))
    if not m:
        raise user_error(f"Invalid global id '{value}'", "argumentLiteralsIncompatible")
    return int(m.group(2)) if m.group(1) == kind else None


def money_v2(ctx: Ctx, amount: Decimal) -> dict[str, str]:
    return {"amount": money(amount, ctx.shop.currency), "currencyCode": ctx.shop.currency}


def money_bag(ctx: Ctx, amount: Decimal) -> dict[str, Any]:
    bag = money_v2(ctx, amount)
    return {"shopMoney": bag, "presentmentMoney": bag}


def count(n: int, limit: int | None) -> dict[str, Any]:
    if limit is not None and n > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": n, "precision": "EXACT"}


def strip_html(text: str, truncate: int | None = None) -> str:
    plain = html.unescape(re.sub(r"<[^>]+>", " ", text))
    plain = re.sub(r"\s+", " ", plain).strip()
    if truncate is not None and len(plain) > truncate:
        plain = plain[: max(truncate - 3, 0)].rstrip() + "..."
    return plain


def connection(page: Page, wrap: Callable[[int], Any]) -> dict[str, Any]:
    nodes = [wrap(ref) for ref in page.refs]
    return {
        "edges": [{"cursor": c, "node": n} for c, n in zip(page.cursors, nodes, strict=True)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": page.has_next,
            "hasPreviousPage": page.has_previous,
            "startCursor": page.cursors[0] if page.cursors else None,
            "endCursor": page.cursors[-1] if page.cursors else None,
        },
    }


def run_page(ctx: Ctx, info: GraphQLResolveInfo, segments: list[Segment], match: Callable[[int], bool],
             sort: str, kw: dict[str, Any], seek: tuple | None = None) -> Page:
    try:
        return paginate(
            segments, match, sort=sort, field=info.field_name, first=kw.get("first"), after=kw.get("after"),
            last=kw.get("last"), before=kw.get("before"), descending=bool(kw.get("reverse")),
            limit=ctx.pagination_limit, seek=seek,
        )
    except PageError as err:
        raise user_error(err.message, err.code) from err


def list_connection(ctx: Ctx, info: GraphQLResolveInfo, items: list[Any], key: Callable[[Any], tuple],
                    wrap: Callable[[Any], Any], kw: dict[str, Any], sort: str) -> dict[str, Any]:
    if ctx.unbounded:  # a bulk export: every item, in the connection's order, no cursors
        nodes = [wrap(item) for item in sorted(items, key=key, reverse=bool(kw.get("reverse")))]
        return {"edges": [{"cursor": None, "node": n} for n in nodes], "nodes": nodes,
                "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None}}
    segment, _ = list_segment(items, key)
    page = run_page(ctx, info, [segment], lambda ref: True, sort, kw)
    return connection(page, lambda ref: wrap(items[ref]))


def parse_query(ctx: Ctx, info: GraphQLResolveInfo, raw: str | None, fields: dict[str, search.FieldSpec],
                text: Callable[[Any], str]) -> search.Query:
    query = search.parse(raw, fields, text)
    extension = search.search_extension(info.field_name, query)
    if extension:
        ctx.search.append(extension)
    return query


def product_fields(cat: Catalogue) -> dict[str, search.FieldSpec]:
    def full(c: ProductCore) -> Product:
        product = cat.product(c.index)
        assert product is not None
        return product

    def published(c: ProductCore) -> tuple[str, ...]:
        if c.published_at is not None:
            return ("published", "approved", "visible", "any")
        return ("unpublished", "not approved", "hidden", "unset", "any")

    S = search.FieldSpec
    return {
        "status": S(search.KEYWORD, lambda c: c.status),
        "published_status": S(search.KEYWORD, published),
        "publishable_status": S(search.KEYWORD, published),
        "title": S(search.TEXT, lambda c: c.title),
        "vendor": S(search.KEYWORD, lambda c: c.vendor),
        "product_type": S(search.KEYWORD, lambda c: c.product_type),
        "handle": S(search.KEYWORD, lambda c: c.handle),
        "tag": S(search.TAGS, lambda c: c.tags),
        "tag_not": S(search.TAGS_NOT, lambda c: c.tags),
        "id": S(search.NUMBER, lambda c: c.id, normalise=_gid_number),
        "created_at": S(search.TIME, lambda c: c.created_at),
        "updated_at": S(search.TIME, lambda c: c.updated_at),
        "published_at": S(search.TIME, lambda c: c.published_at),
        "collection_id": S(search.KEYWORD, lambda c: tuple(str(COLLECTION_ID_BASE + i) for i in c.collections),
                           normalise=_gid_number),
        "gift_card": S(search.BOOL, lambda c: False),
        "inventory_total": S(search.NUMBER, lambda c: full(c).total_inventory),
        "sku": S(search.KEYWORD, lambda c: tuple(v.sku for v in full(c).variants if v.sku)),
        "barcode": S(search.KEYWORD, lambda c: tuple(v.barcode for v in full(c).variants if v.barcode)),
        "variant_id": S(search.KEYWORD, lambda c: tuple(str(v.id) for v in full(c).variants), normalise=_gid_number),
        "out_of_stock_somewhere": S(search.BOOL, lambda c: any(
            v.tracked and v.inventory_quantity <= 0 for v in full(c).variants)),
        "is_price_reduced": S(search.BOOL, lambda c: any(
            v.compare_at_price is not None and v.compare_at_price > v.price for v in full(c).variants)),
    }


def _gid_number(value: str) -> str:
    m = GID.match(value)
    return m.group(2) if m else value


def order_fields() -> dict[str, search.FieldSpec]:
    def status(o: Order) -> tuple[str, ...]:
        labels = ["any"]
        if o.cancelled_at:
            labels.append("cancelled")
        if o.closed_at:
            labels.append("closed")
        else:
            labels += ["open", "not_closed"]
        return tuple(labels)

    fulfillment = {"UNFULFILLED": ("unshipped", "unfulfilled"), "PARTIALLY_FULFILLED": ("partial",),
                   "FULFILLED": ("shipped", "fulfilled")}
    S = search.FieldSpec
    return {
        "name": S(search.KEYWORD, lambda o: (o.name.lstrip("#"),), normalise=lambda v: v.lstrip("#")),
        "email": S(search.KEYWORD, lambda o: o.email),
        "status": S(search.KEYWORD, status),
        "financial_status": S(search.KEYWORD, lambda o: (o.financial_status.lower(), "any")),
        "fulfillment_status": S(search.KEYWORD, lambda o: (*fulfillment[o.fulfillment_status], "any")),
        "created_at": S(search.TIME, lambda o: o.created_at),
        "processed_at": S(search.TIME, lambda o: o.processed_at),
        "updated_at": S(search.TIME, lambda o: o.updated_at),
        "id": S(search.NUMBER, lambda o: o.id, normalise=_gid_number),
        "customer_id": S(search.NUMBER, lambda o: o.customer_id, normalise=_gid_number),
        "test": S(search.BOOL, lambda o: o.test),
        "tag": S(search.TAGS, lambda o: o.tags),
        "sku": S(search.KEYWORD, lambda o: tuple(li.sku for li in o.line_items if li.sku)),
    }


def order_candidates(query: search.Query, book: OrderBook) -> set[int] | None:
    """The only order numbers `query` can match when it pins them (`name:`, or `customer_id:` of a demo customer);
    None when any order might. A superset: the query itself still decides each one."""
    found: set[int] | None = None

    def narrow(numbers: Iterable[int]) -> None:
        nonlocal found
        found = set(numbers) if found is None else found & set(numbers)

    for term in query.required("name"):
        if term.op == ":":
            numbers = (book.number_of(v.strip().lstrip("#")) for v in term.value.split(","))
            narrow(n for n in numbers if n is not None)
    for term in query.required("customer_id"):
        try:
            wanted = float(_gid_number(term.value))
        except ValueError:
            continue
        demo = book.demo_numbers_of(int(wanted)) if term.op == ":" and wanted.is_integer() else None
        if demo is not None:
            narrow(demo)
    return found


def collection_fields() -> dict[str, search.FieldSpec]:
    S = search.FieldSpec
    return {
        "title": S(search.TEXT, lambda c: c.title),
        "handle": S(search.KEYWORD, lambda c: c.handle),
        "id": S(search.NUMBER, lambda c: c.id, normalise=_gid_number),
        "updated_at": S(search.TIME, lambda c: c.updated_at),
        "collection_type": S(search.KEYWORD, lambda c: "custom"),
    }


def image_transform(url: str, transform: dict[str, Any] | None) -> str:
    if not transform:
        return url
    params = []
    if transform.get("maxWidth"):
        params.append(f"width={transform['maxWidth'] * (transform.get('scale') or 1)}")
    if transform.get("maxHeight"):
        params.append(f"height={transform['maxHeight'] * (transform.get('scale') or 1)}")
    if transform.get("crop"):
        params.append(f"crop={str(transform['crop']).lower()}")
    if transform.get("preferredContentType"):
        params.append(f"format={str(transform['preferredContentType']).lower()}")
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(params)


# ---- node types -------------------------------------------------------------------------


class ImageNode:
    __typename = "Image"

    def __init__(self, image: Image, kind: str = "ProductImage") -> None:
        self.image = image
        self.kind = kind

    @property
    def id(self) -> str:
        return gid(self.kind, self.image.id)

    @property
    def altText(self) -> str | None:
        return self.image.alt

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    def url(self, info: GraphQLResolveInfo, transform: dict[str, Any] | None = None) -> str:
        return image_transform(self.image.url, transform)


class MediaImageNode:
    __typename = "MediaImage"

    def __init__(self, image: Image, product: Product) -> None:
        self.image_record = image
        self.product = product

    id = property(lambda self: gid("MediaImage", self.image_record.id))
    alt = property(lambda self: self.image_record.alt)
    mediaContentType = "IMAGE"
    status = "READY"
    mimeType = "image/jpeg"
    createdAt = property(lambda self: iso(self.product.created_at))
    updatedAt = property(lambda self: iso(self.product.updated_at))

    @property
    def image(self) -> ImageNode:
        return ImageNode(self.image_record)

    @property
    def preview(self) -> dict[str, Any]:
        return {"image": ImageNode(self.image_record), "status": "READY"}


class ProductNode:
    __typename = "Product"

    def __init__(self, ctx: Ctx, index: int, core: ProductCore | None = None) -> None:
        self.ctx = ctx
        self.index = index
        if core is not None:
            self.__dict__["core"] = core

    @cached_property
    def core(self) -> ProductCore:
        core = self.ctx.catalogue.core(self.index)
        assert core is not None
        return core

    @cached_property
    def full(self) -> Product:
        product = self.ctx.catalogue.product(self.index)
        if product is None:  # deleted mid-request: answer from what we had
            raise user_error("Product does not exist", "NOT_FOUND")
        return product

    id = property(lambda self: gid("Product", self.core.id))
    legacyResourceId = property(lambda self: str(self.core.id))
    title = property(lambda self: self.core.title)
    handle = property(lambda self: self.core.handle)
    vendor = property(lambda self: self.core.vendor)
    productType = property(lambda self: self.core.product_type)
    tags = property(lambda self: list(self.core.tags))
    status = property(lambda self: self.core.status)
    createdAt = property(lambda self: iso(self.core.created_at))
    updatedAt = property(lambda self: iso(self.core.updated_at))
    publishedAt = property(lambda self: iso(self.core.published_at))
    descriptionHtml = property(lambda self: self.full.description_html)
    totalInventory = property(lambda self: self.full.total_inventory)
    tracksInventory = property(lambda self: self.full.tracks_inventory)
    isGiftCard = False
    templateSuffix = None
    seo = property(lambda self: {"title": None, "description": None})

    def description(self, info: GraphQLResolveInfo, truncateAt: int | None = None) -> str:
        return strip_html(self.full.description_html, truncateAt)

    @property
    def hasOnlyDefaultVariant(self) -> bool:
        return len(self.full.variants) == 1 and self.full.variants[0].title == "Default Title"

    @property
    def hasOutOfStockVariants(self) -> bool:
        return any(v.tracked and v.inventory_quantity <= 0 for v in self.full.variants)

    @property
    def onlineStoreUrl(self) -> str | None:
        core = self.core
        if core.status != "ACTIVE" or core.published_at is None:
            return None
        return f"https://{self.ctx.shop.domain}/products/{core.handle}"

    def _range(self, prices: list[Decimal]) -> dict[str, Any] | None:
        if not prices:
            return None
        return {"minVariantPrice": money_v2(self.ctx, min(prices)), "maxVariantPrice": money_v2(self.ctx, max(prices))}

    @property
    def priceRangeV2(self) -> dict[str, Any]:
        return self._range([v.price for v in self.full.variants]) or self._range([Decimal("0")])  # type: ignore[return-value]

    priceRange = priceRangeV2

    @property
    def compareAtPriceRange(self) -> dict[str, Any] | None:
        prices = [v.compare_at_price for v in self.full.variants if v.compare_at_price is not None]
        rng = self._range(prices)  # type: ignore[arg-type]
        if rng is None:
            return None
        return {"minVariantCompareAtPrice": rng["minVariantPrice"], "maxVariantCompareAtPrice": rng["maxVariantPrice"]}

    @property
    def featuredMedia(self) -> MediaImageNode | None:
        images = self.full.images
        return MediaImageNode(images[0], self.full) if images else None

    @property
    def featuredImage(self) -> ImageNode | None:
        images = self.full.images
        return ImageNode(images[0]) if images else None

    def media(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        product = self.full
        return list_connection(self.ctx, info, list(product.images), lambda i: (i.position, i.id),
                               lambda i: MediaImageNode(i, product), kw, "POSITION")

    def images(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        return list_connection(self.ctx, info, list(self.full.images), lambda i: (i.position, i.id),
                               ImageNode, kw, "POSITION")

    @property
    def mediaCount(self) -> dict[str, Any]:
        return count(len(self.full.images), None)

    @property
    def variantsCount(self) -> dict[str, Any]:
        return count(len(self.full.variants), None)

    def options(self, info: GraphQLResolveInfo, first: int | None = None) -> list[dict[str, Any]]:
        product = self.full
        out = []
        for k, (name, values) in enumerate(product.options[: first if first is not None else None], start=1):
            option_id = OPTION_ID_BASE + product.index * OPTION_SLOTS + k
            out.append({
                "id": gid("ProductOption", option_id), "name": name, "position": k, "values": list(values),
                "optionValues": [{"id": gid("ProductOptionValue", option_id * 1000 + j), "name": v, "hasVariants": True}
                                 for j, v in enumerate(values, start=1)],
            })
        return out

    def variants(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        product = self.full
        sort = kw.get("sortKey") or "POSITION"
        keys: dict[str, Callable[[Variant], tuple]] = {
            "ID": lambda v: (v.id, v.id), "SKU": lambda v: (v.sku or "", v.id), "TITLE": lambda v: (v.title, v.id),
            "INVENTORY_QUANTITY": lambda v: (v.inventory_quantity, v.id),
        }
        key = keys.get(sort, lambda v: (v.position, v.id))
        return list_connection(self.ctx, info, list(product.variants), key,
                               lambda v: VariantNode(self.ctx, v, product), kw, sort)

    def collections(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        cat = self.ctx.catalogue
        members = [cat.collections[c] for c in self.core.collections]
        query = parse_query(self.ctx, info, kw.get("query"), collection_fields(), lambda c: c.title)
        members = [c for c in members if query(c)]
        return collection_connection(self.ctx, info, members, kw)

    def inCollection(self, info: GraphQLResolveInfo, id: str) -> bool:
        number = parse_gid(id, "Collection")
        return number is not None and (number - COLLECTION_ID_BASE) in self.core.collections


class VariantNode:
    __typename = "ProductVariant"

    def __init__(self, ctx: Ctx, variant: Variant, product: Product) -> None:
        self.ctx, self.variant, self.product_record = ctx, variant, product

    id = property(lambda self: gid("ProductVariant", self.variant.id))
    legacyResourceId = property(lambda self: str(self.variant.id))
    title = property(lambda self: self.variant.title)
    sku = property(lambda self: self.variant.sku)
    barcode = property(lambda self: self.variant.barcode)
    position = property(lambda self: self.variant.position)
    taxable = property(lambda self: self.variant.taxable)
    inventoryPolicy = property(lambda self: self.variant.inventory_policy)
    inventoryQuantity = property(lambda self: self.variant.inventory_quantity)
    availableForSale = property(lambda self: self.variant.available_for_sale)
    createdAt = property(lambda self: iso(self.variant.created_at))
    updatedAt = property(lambda self: iso(self.variant.updated_at))
    price = property(lambda self: money(self.variant.price, self.ctx.shop.currency))

    @property
    def compareAtPrice(self) -> str | None:
        cap = self.variant.compare_at_price
        return None if cap is None else money(cap, self.ctx.shop.currency)

    @property
    def displayName(self) -> str:
        return f"{self.product_record.title} - {self.variant.title}"

    def contextualPricing(self, info: GraphQLResolveInfo, context: dict[str, Any]) -> dict[str, Any]:
        """The price a buyer in `context.country` pays: their market's (devshop.markets), as the storefront shows it."""
        market = market_for_country(self.ctx.shop.markets, context.get("country"))
        price, compare = market_price(market, self.product_record.id, self.variant.price,
                                      self.variant.compare_at_price)
        return {"price": market_money(market, price),
                "compareAtPrice": None if compare is None else market_money(market, compare)}

    @property
    def selectedOptions(self) -> list[dict[str, str]]:
        return [{"name": n, "value": v} for n, v in self.variant.options]

    @property
    def sellableOnlineQuantity(self) -> int:
        return max(self.variant.inventory_quantity, 0) if self.product_record.published_at else 0

    @property
    def image(self) -> ImageNode | None:
        for image in self.product_record.images:
            if image.id == self.variant.image_id:
                return ImageNode(image)
        return None

    @property
    def product(self) -> ProductNode:
        return ProductNode(self.ctx, self.product_record.index)

    @property
    def inventoryItem(self) -> InventoryItemNode:
        return InventoryItemNode(self.ctx, self.variant, self.product_record)


def market_money(market: Market, amount: Decimal) -> dict[str, str]:
    return {"amount": money(amount, market.currency), "currencyCode": market.currency}


def currency_setting(code: str) -> dict[str, Any]:
    from babel.numbers import get_currency_name

    return {"currencyCode": code, "currencyName": get_currency_name(code, locale="en"), "enabled": True,
            "rateUpdatedAt": None}


def country_name(code: str) -> str:
    from babel import Locale

    return str(Locale("en").territories.get(code, code))


class MarketNode:
    __typename = "Market"

    def __init__(self, ctx: Ctx, market: Market) -> None:
        self.ctx, self.market = ctx, market

    id = property(lambda self: gid("Market", self.market.id))
    handle = property(lambda self: self.market.handle)
    name = property(lambda self: self.market.name)
    primary = property(lambda self: self.market.primary)
    enabled = True

    @property
    def currencySettings(self) -> dict[str, Any]:
        # Every country of a devshop market pays in the market's currency (no local currencies).
        return {"baseCurrency": currency_setting(self.market.currency), "localCurrencies": False}

    def regions(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        market = self.market
        countries = [{"__typename": "MarketRegionCountry", "id": gid("MarketRegionCountry", market.id * 1000 + n),
                      "code": code, "name": country_name(code), "currency": currency_setting(market.currency),
                      "position": n} for n, code in enumerate(market.countries, start=1)]
        return list_connection(self.ctx, info, countries, lambda c: (c["position"], c["position"]), lambda c: c, kw,
                               "POSITION")


class InventoryItemNode:
    __typename = "InventoryItem"

    def __init__(self, ctx: Ctx, variant: Variant, product: Product) -> None:
        self.ctx, self.variant_record, self.product = ctx, variant, product

    id = property(lambda self: gid("InventoryItem", self.variant_record.inventory_item_id))
    legacyResourceId = property(lambda self: str(self.variant_record.inventory_item_id))
    sku = property(lambda self: self.variant_record.sku)
    tracked = property(lambda self: self.variant_record.tracked)
    requiresShipping = True
    createdAt = property(lambda self: iso(self.variant_record.created_at))
    updatedAt = property(lambda self: iso(self.variant_record.updated_at))

    @property
    def variant(self) -> VariantNode:
        return VariantNode(self.ctx, self.variant_record, self.product)

    def inventoryLevel(self, info: GraphQLResolveInfo, locationId: str) -> InventoryLevelNode | None:
        self.ctx.require("inventoryLevel", "read_inventory")
        if parse_gid(locationId, "Location") != LOCATION_ID:
            return None
        return InventoryLevelNode(self.ctx, self.variant_record, self.product)

    def inventoryLevels(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        self.ctx.require("inventoryLevels", "read_inventory")
        level = InventoryLevelNode(self.ctx, self.variant_record, self.product)
        return list_connection(self.ctx, info, [level], lambda _: (LOCATION_ID, LOCATION_ID), lambda x: x, kw, "ID")


class InventoryLevelNode:
    __typename = "InventoryLevel"

    def __init__(self, ctx: Ctx, variant: Variant, product: Product) -> None:
        self.ctx, self.variant, self.product = ctx, variant, product

    @property
    def id(self) -> str:
        return f"gid://shopify/InventoryLevel/{LOCATION_ID}?inventory_item_id={self.variant.inventory_item_id}"

    createdAt = property(lambda self: iso(self.variant.created_at))
    updatedAt = property(lambda self: iso(self.variant.updated_at))

    @property
    def item(self) -> InventoryItemNode:
        return InventoryItemNode(self.ctx, self.variant, self.product)

    @property
    def location(self) -> LocationNode:
        return LocationNode(self.ctx)

    def quantities(self, info: GraphQLResolveInfo, names: list[str]) -> list[dict[str, Any]]:
        available = self.variant.inventory_quantity
        values = {"available": available, "on_hand": available}
        return [{"id": f"gid://shopify/InventoryQuantity/{LOCATION_ID}?inventory_item_id="
                       f"{self.variant.inventory_item_id}&name={name}",
                 "name": name, "quantity": values.get(name, 0), "updatedAt": iso(self.variant.updated_at)}
                for name in names]


class LocationNode:
    __typename = "Location"

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    id = gid("Location", LOCATION_ID)
    legacyResourceId = str(LOCATION_ID)
    name = "Entrepôt principal"
    isActive = True
    fulfillsOnlineOrders = True
    shipsInventory = True
    createdAt = iso(EPOCH)
    updatedAt = iso(EPOCH)

    def inventoryLevel(self, info: GraphQLResolveInfo, inventoryItemId: str) -> InventoryLevelNode | None:
        self.ctx.require("inventoryLevel", "read_inventory")
        number = parse_gid(inventoryItemId, "InventoryItem")
        variant = self.ctx.catalogue.variant_by_inventory_item(number) if number else None
        if variant is None:
            return None
        product = self.ctx.catalogue.product(variant.product_index)
        return InventoryLevelNode(self.ctx, variant, product) if product else None


class CollectionNode:
    __typename = "Collection"

    def __init__(self, ctx: Ctx, collection: Collection) -> None:
        self.ctx, self.collection = ctx, collection

    id = property(lambda self: gid("Collection", self.collection.id))
    legacyResourceId = property(lambda self: str(self.collection.id))
    title = property(lambda self: self.collection.title)
    handle = property(lambda self: self.collection.handle)
    descriptionHtml = property(lambda self: self.collection.description_html)
    updatedAt = property(lambda self: iso(self.collection.updated_at))
    sortOrder = property(lambda self: self.collection.sort_order)
    templateSuffix = None
    seo = property(lambda self: {"title": None, "description": None})

    def description(self, info: GraphQLResolveInfo, truncateAt: int | None = None) -> str:
        return strip_html(self.collection.description_html, truncateAt)

    @property
    def image(self) -> ImageNode | None:
        return ImageNode(self.collection.image, "CollectionImage") if self.collection.image else None

    def _member(self, ref: int) -> bool:
        core = self.ctx.catalogue.core(ref)
        return core is not None and self.collection.index in core.collections

    def products(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        sort = kw.get("sortKey") or "COLLECTION_DEFAULT"
        if sort == "COLLECTION_DEFAULT":  # the collection's own sort order decides
            sort = {"ALPHA_ASC": "TITLE", "ALPHA_DESC": "TITLE", "BEST_SELLING": "BEST_SELLING",
                    "CREATED": "CREATED", "CREATED_DESC": "CREATED", "PRICE_ASC": "PRICE",
                    "PRICE_DESC": "PRICE"}.get(self.collection.sort_order, "MANUAL")
            if self.collection.sort_order in ("ALPHA_DESC", "CREATED_DESC", "PRICE_DESC"):
                kw = {**kw, "reverse": not kw.get("reverse")}
        catalogue_sort = {"CREATED": "CREATED_AT", "MANUAL": "ID", "ID": "ID", "RELEVANCE": "ID"}.get(sort, sort)
        page = run_page(self.ctx, info, self.ctx.catalogue.segments(catalogue_sort), self._member, catalogue_sort, kw)
        return connection(page, lambda ref: ProductNode(self.ctx, ref))

    @property
    def productsCount(self) -> dict[str, Any]:
        n = 0
        for i in self.ctx.catalogue.all_indexes():
            if self._member(i):
                n += 1
                if n > DEFAULT_COUNT_LIMIT:
                    break
        return count(n, DEFAULT_COUNT_LIMIT)

    def hasProduct(self, info: GraphQLResolveInfo, id: str) -> bool:
        number = parse_gid(id, "Product")
        index = self.ctx.catalogue.index_of(number) if number else None
        return index is not None and self._member(index)


def collection_connection(ctx: Ctx, info: GraphQLResolveInfo, items: list[Collection],
                          kw: dict[str, Any]) -> dict[str, Any]:
    sort = kw.get("sortKey") or "ID"
    key: Callable[[Collection], tuple] = {
        "TITLE": lambda c: (c.title.casefold(), c.id),
        "UPDATED_AT": lambda c: (iso(c.updated_at), c.id),
    }.get(sort, lambda c: (c.id, c.id))
    return list_connection(ctx, info, items, key, lambda c: CollectionNode(ctx, c), kw, sort)


class CustomerNode:
    __typename = "Customer"

    def __init__(self, order: Order) -> None:
        self.order = order

    id = property(lambda self: gid("Customer", self.order.customer_id))
    legacyResourceId = property(lambda self: str(self.order.customer_id))
    email = property(lambda self: self.order.email)
    firstName = property(lambda self: self.order.customer_first)
    lastName = property(lambda self: self.order.customer_last)
    displayName = property(lambda self: f"{self.order.customer_first} {self.order.customer_last}")
    numberOfOrders = "1"


class LineItemNode:
    __typename = "LineItem"

    def __init__(self, ctx: Ctx, item: LineItem, order: Order) -> None:
        self.ctx, self.item, self.order = ctx, item, order

    id = property(lambda self: gid("LineItem", self.item.id))
    title = property(lambda self: self.item.title)
    quantity = property(lambda self: self.item.quantity)
    sku = property(lambda self: self.item.sku)
    vendor = property(lambda self: self.item.vendor)
    variantTitle = property(lambda self: self.item.variant_title)
    requiresShipping = True
    currentQuantity = property(lambda self: 0 if self.order.cancelled_at else self.item.quantity)
    unfulfilledQuantity = property(lambda self: 0 if self.order.cancelled_at
                                   else self.item.quantity - self.item.fulfilled_quantity)

    @property
    def name(self) -> str:
        return f"{self.item.title} - {self.item.variant_title}" if self.item.variant_title else self.item.title

    @property
    def originalUnitPriceSet(self) -> dict[str, Any]:
        return money_bag(self.ctx, self.item.unit_price)

    @property
    def originalTotalSet(self) -> dict[str, Any]:
        return money_bag(self.ctx, self.item.unit_price * self.item.quantity)

    def _product(self) -> Product | None:
        if self.item.product_index is None:
            return None
        return self.ctx.catalogue.product(self.item.product_index)

    @property
    def product(self) -> ProductNode | None:
        product = self._product()
        return ProductNode(self.ctx, product.index) if product else None

    @property
    def variant(self) -> VariantNode | None:
        product = self._product()
        if product is None or self.item.variant_id is None:
            return None
        variant = next((v for v in product.variants if v.id == self.item.variant_id), None)
        return VariantNode(self.ctx, variant, product) if variant else None

    @property
    def image(self) -> ImageNode | None:
        product = self._product()
        return ImageNode(product.images[0]) if product and product.images else None


class FulfillmentNode:
    __typename = "Fulfillment"

    def __init__(self, ctx: Ctx, fulfillment: Fulfillment, order: Order) -> None:
        self.ctx, self.f, self.order_record = ctx, fulfillment, order

    id = property(lambda self: gid("Fulfillment", self.f.id))
    legacyResourceId = property(lambda self: str(self.f.id))
    name = property(lambda self: self.f.name)
    status = property(lambda self: self.f.status)
    displayStatus = property(lambda self: self.f.display_status)
    createdAt = property(lambda self: iso(self.f.created_at))
    updatedAt = property(lambda self: iso(self.f.updated_at))
    estimatedDeliveryAt = property(lambda self: iso(self.f.estimated_delivery_at))
    inTransitAt = property(lambda self: iso(self.f.in_transit_at))
    deliveredAt = property(lambda self: iso(self.f.delivered_at))

    @property
    def totalQuantity(self) -> int:
        return sum(li.quantity for li in self.order_record.line_items if li.id in self.f.line_item_ids)

    def trackingInfo(self, info: GraphQLResolveInfo, first: int | None = None) -> list[dict[str, Any]]:
        rows = [{"company": t.company, "number": t.number, "url": t.url} for t in self.f.tracking]
        return rows[:first] if first is not None else rows

    @property
    def location(self) -> LocationNode:
        return LocationNode(self.ctx)

    @property
    def order(self) -> OrderNode:
        return OrderNode(self.ctx, self.order_record)


class OrderNode:
    __typename = "Order"

    def __init__(self, ctx: Ctx, order: Order) -> None:
        self.ctx, self.o = ctx, order

    id = property(lambda self: gid("Order", self.o.id))
    legacyResourceId = property(lambda self: str(self.o.id))
    name = property(lambda self: self.o.name)
    email = property(lambda self: self.o.email)
    phone = property(lambda self: self.o.phone)
    note = property(lambda self: self.o.note)
    test = property(lambda self: self.o.test)
    tags = property(lambda self: list(self.o.tags))
    createdAt = property(lambda self: iso(self.o.created_at))
    processedAt = property(lambda self: iso(self.o.processed_at))
    updatedAt = property(lambda self: iso(self.o.updated_at))
    cancelledAt = property(lambda self: iso(self.o.cancelled_at))
    cancelReason = property(lambda self: self.o.cancel_reason)
    closedAt = property(lambda self: iso(self.o.closed_at))
    closed = property(lambda self: self.o.closed_at is not None)
    confirmed = True
    displayFinancialStatus = property(lambda self: self.o.financial_status)
    displayFulfillmentStatus = property(lambda self: self.o.fulfillment_status)
    currencyCode = property(lambda self: self.o.currency)
    presentmentCurrencyCode = property(lambda self: self.o.currency)
    fullyPaid = property(lambda self: self.o.financial_status in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED"))
    unpaid = property(lambda self: self.o.financial_status in ("PENDING", "AUTHORIZED", "EXPIRED"))
    subtotalLineItemsQuantity = property(lambda self: sum(li.quantity for li in self.o.line_items))
    returnStatus = "NO_RETURN"
    totalPriceSet = property(lambda self: money_bag(self.ctx, self.o.total))
    subtotalPriceSet = property(lambda self: money_bag(self.ctx, self.o.subtotal))
    totalShippingPriceSet = property(lambda self: money_bag(self.ctx, self.o.shipping))
    totalTaxSet = property(lambda self: money_bag(self.ctx, self.o.tax))
    totalRefundedSet = property(lambda self: money_bag(self.ctx, self.o.refunded))
    currentTotalPriceSet = property(lambda self: money_bag(self.ctx, self.o.total - self.o.refunded))

    @property
    def statusPageUrl(self) -> str:
        key = rng_for(self.ctx.shop.seed, "status", self.o.number).getrandbits(64)
        return f"https://{self.ctx.shop.domain}/{self.ctx.shop.id}/orders/{key:016x}/authenticate?key={key:x}"

    @property
    def customer(self) -> CustomerNode:
        return CustomerNode(self.o)

    def lineItems(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        return list_connection(self.ctx, info, list(self.o.line_items), lambda li: (li.id, li.id),
                               lambda li: LineItemNode(self.ctx, li, self.o), kw, "ID")

    def fulfillments(self, info: GraphQLResolveInfo, first: int | None = None) -> list[FulfillmentNode]:
        rows = [FulfillmentNode(self.ctx, f, self.o) for f in self.o.fulfillments]
        return rows[:first] if first is not None else rows


def primary_domain(ctx: Ctx) -> dict[str, Any]:
    """The domain shoppers see the store on: devshop's storefront, on the origin the caller reached devshop at
    (where /shops/<shop>/ pages are served), so a browser on those pages sends exactly this as its Origin (an app
    can allow it for CORS as it would the shop's own domain). `https://<shop>` when there is no request."""
    if not ctx.base_url:
        return {"id": gid("Domain", ctx.shop.id), "host": ctx.shop.domain, "url": f"https://{ctx.shop.domain}",
                "sslEnabled": True}
    parts = urlsplit(ctx.base_url)
    return {"id": gid("Domain", ctx.shop.id), "host": parts.netloc, "url": f"{parts.scheme}://{parts.netloc}",
            "sslEnabled": parts.scheme == "https"}


def shop_node(ctx: Ctx) -> dict[str, Any]:
    shop = ctx.shop
    zone = ZoneInfo(shop.timezone)
    now = datetime.now(zone)
    offset = now.utcoffset()
    url = f"https://{shop.domain}"
    return {
        "__typename": "Shop",
        "id": gid("Shop", shop.id), "name": shop.name, "email": shop.email, "contactEmail": shop.email,
        "myshopifyDomain": shop.domain, "currencyCode": shop.currency, "ianaTimezone": shop.timezone,
        "timezoneAbbreviation": now.tzname(),
        "timezoneOffsetMinutes": int(offset.total_seconds() // 60) if offset else 0,
        "enabledPresentmentCurrencies": [shop.currency],
        "weightUnit": "KILOGRAMS" if shop.currency != "USD" else "POUNDS",
        "url": url, "description": f"{shop.name} — a devshop store", "shopOwnerName": "Dev Owner",
        "createdAt": iso(shop.created_at), "updatedAt": iso(shop.created_at),
        "primaryDomain": primary_domain(ctx),
        "plan": {"displayName": shop.plan_display_name, "partnerDevelopment": False, "shopifyPlus": shop.shopify_plus},
    }


# ---- roots ---------------------------------------------------------------------------------


class QueryRoot:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    # products
    def products(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("products", "read_products")
        cat = ctx.catalogue
        sort = kw.get("sortKey") or "ID"
        query = parse_query(ctx, info, kw.get("query"), product_fields(cat), lambda c: c.title)
        seek = None
        bound_field = {"UPDATED_AT": "updated_at", "CREATED_AT": "created_at"}.get(sort)
        if bound_field and (bound := query.lower_bound(bound_field)):
            seek = (bound[0], -1)

        def match(ref: int) -> bool:
            core = cat.core(ref)
            return core is not None and query(core)

        page = run_page(ctx, info, cat.segments(sort), match, sort, kw, seek=seek)
        return connection(page, lambda ref: ProductNode(ctx, ref))

    def productsCount(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("productsCount", "read_products")
        cat = ctx.catalogue
        limit = kw["limit"] if "limit" in kw else DEFAULT_COUNT_LIMIT
        query = parse_query(ctx, info, kw.get("query"), product_fields(cat), lambda c: c.title)
        if query.root is None:
            return count(cat.live_count(), limit)
        n = 0
        for i in cat.all_indexes():
            core = cat.core(i)
            if core is not None and query(core):
                n += 1
                if limit is not None and n > limit:
                    break
        return count(n, limit)

    def product(self, info: GraphQLResolveInfo, id: str) -> ProductNode | None:
        self.ctx.require("product", "read_products")
        number = parse_gid(id, "Product")
        index = self.ctx.catalogue.index_of(number) if number else None
        return ProductNode(self.ctx, index) if index else None

    def productByHandle(self, info: GraphQLResolveInfo, handle: str) -> ProductNode | None:
        self.ctx.require("productByHandle", "read_products")
        product = self.ctx.catalogue.by_handle(handle)
        return ProductNode(self.ctx, product.index) if product else None

    def productByIdentifier(self, info: GraphQLResolveInfo, identifier: dict[str, Any]) -> ProductNode | None:
        if identifier.get("id"):
            return self.product(info, identifier["id"])
        if identifier.get("handle"):
            return self.productByHandle(info, identifier["handle"])
        raise user_error("One of id, handle or customId must be provided", "BAD_REQUEST")

    def productVariant(self, info: GraphQLResolveInfo, id: str) -> VariantNode | None:
        self.ctx.require("productVariant", "read_products")
        number = parse_gid(id, "ProductVariant")
        variant = self.ctx.catalogue.variant(number) if number else None
        if variant is None:
            return None
        product = self.ctx.catalogue.product(variant.product_index)
        return VariantNode(self.ctx, variant, product) if product else None

    # collections
    def collections(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        self.ctx.require("collections", "read_products")
        query = parse_query(self.ctx, info, kw.get("query"), collection_fields(), lambda c: c.title)
        items = [c for c in self.ctx.catalogue.collections if query(c)]
        return collection_connection(self.ctx, info, items, kw)

    def collectionsCount(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        self.ctx.require("collectionsCount", "read_products")
        query = parse_query(self.ctx, info, kw.get("query"), collection_fields(), lambda c: c.title)
        return count(sum(1 for c in self.ctx.catalogue.collections if query(c)), None)

    def collection(self, info: GraphQLResolveInfo, id: str) -> CollectionNode | None:
        self.ctx.require("collection", "read_products")
        number = parse_gid(id, "Collection")
        found = self.ctx.catalogue.collection(number) if number else None
        return CollectionNode(self.ctx, found) if found else None

    def collectionByHandle(self, info: GraphQLResolveInfo, handle: str) -> CollectionNode | None:
        self.ctx.require("collectionByHandle", "read_products")
        found = next((c for c in self.ctx.catalogue.collections if c.handle == handle), None)
        return CollectionNode(self.ctx, found) if found else None

    # orders
    def orders(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("orders", "read_orders")
        book = ctx.shop.orders
        sort = kw.get("sortKey") or "PROCESSED_AT"
        query = parse_query(ctx, info, kw.get("query"), order_fields(), lambda o: f"{o.name} {o.email}")
        seek = None
        bound_field = {"CREATED_AT": "created_at", "PROCESSED_AT": "processed_at", "UPDATED_AT": "updated_at"}.get(sort)
        if bound_field and (bound := query.lower_bound(bound_field)):
            seek = (bound[0], -1)  # these keys grow with the order number: start at the bound, not at #1001
        segments = book.segments(sort, only=order_candidates(query, book))
        page = run_page(ctx, info, segments, lambda n: query(book.get(n)), sort, kw, seek=seek)
        return connection(page, lambda n: OrderNode(ctx, book.get(n)))

    def ordersCount(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("ordersCount", "read_orders")
        book = ctx.shop.orders
        limit = kw["limit"] if "limit" in kw else DEFAULT_COUNT_LIMIT
        query = parse_query(ctx, info, kw.get("query"), order_fields(), lambda o: f"{o.name} {o.email}")
        n = sum(1 for i in range(1, book.count + 1) if query(book.get(i))) if query.root else book.count
        return count(n, limit)

    def order(self, info: GraphQLResolveInfo, id: str) -> OrderNode | None:
        self.ctx.require("order", "read_orders")
        number = parse_gid(id, "Order")
        index = self.ctx.shop.orders.index_of(number) if number else None
        return OrderNode(self.ctx, self.ctx.shop.orders.get(index)) if index else None

    # markets
    def markets(self, info: GraphQLResolveInfo, **kw: Any) -> dict[str, Any]:
        self.ctx.require("markets", "read_markets")
        return list_connection(self.ctx, info, list(self.ctx.shop.markets), lambda m: (m.id, m.id),
                               lambda m: MarketNode(self.ctx, m), kw, "ID")

    # misc
    def shop(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        return shop_node(self.ctx)

    def inventoryItem(self, info: GraphQLResolveInfo, id: str) -> InventoryItemNode | None:
        self.ctx.require("inventoryItem", "read_inventory")
        number = parse_gid(id, "InventoryItem")
        variant = self.ctx.catalogue.variant_by_inventory_item(number) if number else None
        product = self.ctx.catalogue.product(variant.product_index) if variant else None
        return InventoryItemNode(self.ctx, variant, product) if variant and product else None

    def location(self, info: GraphQLResolveInfo, id: str | None = None) -> LocationNode | None:
        self.ctx.require("location", "read_inventory", "read_locations")
        if id is not None and parse_gid(id, "Location") != LOCATION_ID:
            return None
        return LocationNode(self.ctx)

    def node(self, info: GraphQLResolveInfo, id: str) -> Any:
        m = GID.match(str(id))
        if not m:
            raise user_error(f"Invalid global id '{id}'", "argumentLiteralsIncompatible")
        kind = m.group(1)
        lookups: dict[str, Callable[[], Any]] = {
            "Product": lambda: self.product(info, id),
            "ProductVariant": lambda: self.productVariant(info, id),
            "Collection": lambda: self.collection(info, id),
            "Order": lambda: self.order(info, id),
            "InventoryItem": lambda: self.inventoryItem(info, id),
            "Location": lambda: self.location(info, id),
            "Shop": lambda: shop_node(self.ctx) if int(m.group(2)) == self.ctx.shop.id else None,
            "MediaImage": lambda: self._media(int(m.group(2))),
            "BulkOperation": lambda: self._bulk_operation(int(m.group(2))),
        }
        lookup = lookups.get(kind)
        return lookup() if lookup else None

    def nodes(self, info: GraphQLResolveInfo, ids: list[str]) -> list[Any]:
        if len(ids) > 250:
            raise user_error("The input array size of 251 is greater than the maximum allowed of 250.",
                             "MAX_INPUT_SIZE_EXCEEDED")
        return [self.node(info, i) for i in ids]

    # bulk operations (the app's own; no scope needed to read them)
    def currentBulkOperation(self, info: GraphQLResolveInfo, type: str = "QUERY") -> dict[str, Any] | None:
        bulk = self.ctx.bulk
        op = bulk.current(self.ctx.shop.domain, type) if bulk is not None else None
        return bulk_operation_node(op.snapshot()) if op else None

    def _bulk_operation(self, number: int) -> dict[str, Any] | None:
        bulk = self.ctx.bulk
        op = bulk.get(self.ctx.shop.domain, number) if bulk is not None else None
        return bulk_operation_node(op.snapshot()) if op else None

    def _media(self, media_id: int) -> MediaImageNode | None:
        from devshop.catalogue import MEDIA_ID_BASE, MEDIA_SLOTS

        self.ctx.require("node", "read_products")
        index = (media_id - MEDIA_ID_BASE) // MEDIA_SLOTS
        product = self.ctx.catalogue.product(index)
        image = next((i for i in product.images if i.id == media_id), None) if product else None
        return MediaImageNode(image, product) if image and product else None


def bulk_operation_node(snap: BulkSnapshot) -> dict[str, Any]:
    """A BulkOperation as GraphQL answers it, from one consistent snapshot; counters are UnsignedInt64 strings."""
    return {
        "__typename": "BulkOperation", "id": gid("BulkOperation", snap.number), "status": snap.status,
        "errorCode": snap.error_code, "createdAt": iso(snap.created_at), "completedAt": iso(snap.completed_at),
        "objectCount": str(snap.object_count), "rootObjectCount": str(snap.root_object_count),
        "fileSize": None if snap.file_size is None else str(snap.file_size), "url": snap.url,
        "partialDataUrl": snap.partial_data_url, "query": snap.query, "type": snap.type,
    }


class MutationRoot:
    """Writes to the shop's catalogue overlay; each fires the webhooks Shopify would. The bulk operation
    mutations change no merchant data: they start or stop a read-only export."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def _bulk(self) -> BulkOperations:
        if self.ctx.bulk is None:
            raise user_error("Bulk operations are not available here.", "INTERNAL_SERVER_ERROR")
        return self.ctx.bulk

    def bulkOperationRunQuery(self, info: GraphQLResolveInfo, query: str) -> dict[str, Any]:
        created, errors = self._bulk().run_query(self.ctx, query, info.schema)
        return {"bulkOperation": bulk_operation_node(created) if created else None, "userErrors": errors}

    def bulkOperationCancel(self, info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
        number = parse_gid(id, "BulkOperation")
        snap, errors = self._bulk().cancel(self.ctx.shop.domain, number)
        return {"bulkOperation": bulk_operation_node(snap) if snap else None, "userErrors": errors}

    def _product_payload(self, product: Product | None, errors: list[dict[str, Any]],
                         with_shop: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"product": ProductNode(self.ctx, product.index) if product else None,
                               "userErrors": errors}
        if with_shop:
            out["shop"] = shop_node(self.ctx)
        return out

    def _collections(self, ids: Iterable[str] | None) -> list[int]:
        out = []
        for raw in ids or ():
            number = parse_gid(raw, "Collection")
            if number is not None and self.ctx.catalogue.collection(number) is not None:
                out.append(number - COLLECTION_ID_BASE)
        return out

    def productCreate(self, info: GraphQLResolveInfo, product: dict[str, Any] | None = None) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("productCreate", "write_products")
        fields = product or {}
        title = (fields.get("title") or "").strip()
        if not title:
            return self._product_payload(None, [{"field": ["title"], "message": "Title can't be blank"}])
        cat = ctx.catalogue
        now = ctx.now()
        with cat.lock:
            index = cat.new_index()
            handle = cat.unique_handle(fields.get("handle") or title, index)
            record = Product(
                index=index, id=PRODUCT_ID_BASE + index, title=title, handle=handle,
                vendor=fields.get("vendor") or ctx.shop.name, product_type=fields.get("productType") or "",
                tags=tuple(sorted({t.strip() for t in fields.get("tags") or () if t.strip()})),
                status=fields.get("status") or "ACTIVE", created_at=now, updated_at=now, published_at=None,
                collections=tuple(sorted(set(self._collections(fields.get("collectionsToJoin"))))),
                description_html=fields.get("descriptionHtml") or "", options=(("Title", ("Default Title",)),),
                variants=(cat.blank_variant(index, now),), images=(),
            )
            cat.put(record)
        ctx.emit("products/create", {"product": record})
        return self._product_payload(record, [])

    def productUpdate(self, info: GraphQLResolveInfo, product: dict[str, Any] | None = None) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("productUpdate", "write_products")
        fields = product or {}
        if not fields.get("id"):
            return self._product_payload(None, [{"field": ["id"], "message": "Product id is required"}], False)
        number = parse_gid(fields["id"], "Product")
        cat = ctx.catalogue
        with cat.lock:
            index = cat.index_of(number) if number else None
            current = cat.product(index) if index else None
            if current is None:
                return self._product_payload(None, [{"field": ["id"], "message": "Product does not exist"}], False)
            if "title" in fields and not (fields.get("title") or "").strip():
                return self._product_payload(None, [{"field": ["title"], "message": "Title can't be blank"}], False)
            changes: dict[str, Any] = {"updated_at": ctx.now()}
            simple = {"title": "title", "vendor": "vendor", "productType": "product_type",
                      "descriptionHtml": "description_html", "status": "status"}
            for gql_name, attr in simple.items():
                if fields.get(gql_name) is not None:
                    changes[attr] = fields[gql_name].strip() if gql_name == "title" else fields[gql_name]
            if fields.get("tags") is not None:
                changes["tags"] = tuple(sorted({t.strip() for t in fields["tags"] if t.strip()}))
            if fields.get("handle"):
                changes["handle"] = cat.unique_handle(fields["handle"], current.index)
            joined = set(current.collections) | set(self._collections(fields.get("collectionsToJoin")))
            joined -= set(self._collections(fields.get("collectionsToLeave")))
            changes["collections"] = tuple(sorted(joined))
            record = replace(current, **changes)
            cat.put(record)
        ctx.emit("products/update", {"product": record})
        return self._product_payload(record, [], False)

    def productDelete(self, info: GraphQLResolveInfo, input: dict[str, Any],
                      synchronous: bool = True) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("productDelete", "write_products")
        number = parse_gid(input["id"], "Product")
        cat = ctx.catalogue
        with cat.lock:
            index = cat.index_of(number) if number else None
            if index is None:
                return {"deletedProductId": None, "shop": shop_node(ctx),
                        "userErrors": [{"field": ["id"], "message": "Product does not exist"}]}
            cat.delete(index)
        assert number is not None  # index_of found it
        ctx.emit("products/delete", {"id": number})
        return {"deletedProductId": gid("Product", number), "shop": shop_node(ctx), "userErrors": []}

    def productVariantsBulkUpdate(self, info: GraphQLResolveInfo, productId: str, variants: list[dict[str, Any]],
                                  allowPartialUpdates: bool = False) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require("productVariantsBulkUpdate", "write_products")
        cat = ctx.catalogue
        number = parse_gid(productId, "Product")
        with cat.lock:
            index = cat.index_of(number) if number else None
            product = cat.product(index) if index else None
            if product is None:
                return {"product": None, "productVariants": None, "userErrors": [
                    {"field": ["productId"], "message": "Product does not exist", "code": "PRODUCT_DOES_NOT_EXIST"}]}
            now = ctx.now()
            errors: list[dict[str, Any]] = []
            updated = product
            changed: list[Variant] = []
            for k, fields in enumerate(variants):
                vid = parse_gid(fields.get("id") or "", "ProductVariant") if fields.get("id") else None
                current = next((v for v in updated.variants if v.id == vid), None)
                if current is None:
                    errors.append({"field": ["variants", str(k), "id"], "message": "Product variant does not exist",
                                   "code": "PRODUCT_VARIANT_DOES_NOT_EXIST"})
                    continue
                try:
                    price = Decimal(str(fields["price"])) if fields.get("price") is not None else current.price
                    compare = current.compare_at_price
                    if "compareAtPrice" in fields:
                        raw = fields["compareAtPrice"]
                        compare = Decimal(str(raw)) if raw not in (None, "") else None
                except InvalidOperation:
                    errors.append({"field": ["variants", str(k), "price"], "message": "Price is invalid",
                                   "code": "INVALID_INPUT"})
                    continue
                if price < 0:
                    errors.append({"field": ["variants", str(k), "price"], "message": "Price must be greater than "
                                   "or equal to 0", "code": "NEGATIVE_PRICE_VALUE"})
                    continue
                new = replace(current, price=price, compare_at_price=compare, updated_at=now,
                              barcode=fields.get("barcode", current.barcode),
                              inventory_policy=fields.get("inventoryPolicy") or current.inventory_policy,
                              taxable=current.taxable if fields.get("taxable") is None else fields["taxable"])
                updated = cat.with_variant(updated, new, now)
                changed.append(new)
            if errors and not allowPartialUpdates:
                return {"product": ProductNode(ctx, product.index), "productVariants": None, "userErrors": errors}
            if changed:
                cat.put(updated)
        if changed:
            ctx.emit("products/update", {"product": updated})
        return {"product": ProductNode(ctx, updated.index),
                "productVariants": [VariantNode(ctx, v, updated) for v in changed], "userErrors": errors}

    def _inventory(self, field_name: str, input: dict[str, Any], rows: list[dict[str, Any]],
                   absolute: bool) -> dict[str, Any]:
        ctx = self.ctx
        ctx.require(field_name, "write_inventory")
        errors: list[dict[str, Any]] = []
        name = input.get("name")
        if name not in ("available", "on_hand"):
            errors.append({"field": ["input", "name"], "code": "INVALID_NAME",
                           "message": "The quantity name must be either 'available' or 'on_hand'."})
        if input.get("reason") not in INVENTORY_REASONS:
            errors.append({"field": ["input", "reason"], "code": "INVALID_REASON",
                           "message": "The specified reason is invalid."})
        cat = ctx.catalogue
        changes: list[dict[str, Any]] = []
        updates: list[tuple[Variant, int]] = []
        list_name = "quantities" if absolute else "changes"
        with cat.lock:
            for k, row in enumerate(rows):
                item = parse_gid(row["inventoryItemId"], "InventoryItem")
                variant = cat.variant_by_inventory_item(item) if item else None
                if variant is None:
                    errors.append({"field": ["input", list_name, str(k), "inventoryItemId"],
                                   "code": "INVALID_INVENTORY_ITEM",
                                   "message": "The specified inventory item could not be found."})
                    continue
                if parse_gid(row["locationId"], "Location") != LOCATION_ID:
                    errors.append({"field": ["input", list_name, str(k), "locationId"],
                                   "code": "INVALID_LOCATION", "message": "The specified location could not be found."})
                    continue
                if absolute:
                    compare = row.get("compareQuantity")
                    if not input.get("ignoreCompareQuantity"):
                        if compare is None:
                            errors.append({"field": ["input", list_name, str(k), "compareQuantity"],
                                           "code": "COMPARE_QUANTITY_REQUIRED",
                                           "message": "The compareQuantity argument must be given to each quantity or "
                                                      "ignored using ignoreCompareQuantity."})
                            continue
                        if compare != variant.inventory_quantity:
                            errors.append({"field": ["input", list_name, str(k), "compareQuantity"],
                                           "code": "COMPARE_QUANTITY_STALE",
                                           "message": "The compareQuantity argument no longer matches the persisted "
                                                      "quantity."})
                            continue
                    target = int(row["quantity"])
                else:
                    target = variant.inventory_quantity + int(row["delta"])
                updates.append((variant, target))
            if errors:
                return {"inventoryAdjustmentGroup": None, "userErrors": errors}
            now = ctx.now()
            touched: dict[int, Product] = {}
            for variant, target in updates:
                product = touched.get(variant.product_index) or cat.product(variant.product_index)
                assert product is not None
                new = replace(variant, inventory_quantity=target, updated_at=now)
                touched[product.index] = cat.with_variant(product, new, now)
                changes.append({"name": name, "delta": target - variant.inventory_quantity,
                                "quantityAfterChange": target, "ledgerDocumentUri": None,
                                "item": InventoryItemNode(ctx, new, touched[product.index]),
                                "location": LocationNode(ctx), "_variant": new})
            for product in touched.values():
                cat.put(product)
            with ctx.shop.lock:
                ctx.shop.inventory_groups += 1
                group_id = ctx.shop.inventory_groups
        for change in changes:
            ctx.emit("inventory_levels/update", {"variant": change.pop("_variant")})
        for product in touched.values():
            # Shopify also reports inventory changes as product updates.
            ctx.emit("products/update", {"product": product})
        group = {"id": gid("InventoryAdjustmentGroup", 9_000_000_000 + group_id), "createdAt": iso(now),
                 "reason": input.get("reason"), "referenceDocumentUri": input.get("referenceDocumentUri"),
                 "changes": lambda info, **kw: changes}
        return {"inventoryAdjustmentGroup": group, "userErrors": []}

    def inventorySetQuantities(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        return self._inventory("inventorySetQuantities", input, input.get("quantities") or [], absolute=True)

    def inventoryAdjustQuantities(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        return self._inventory("inventoryAdjustQuantities", input, input.get("changes") or [], absolute=False)

