"""Every GraphQL document Lumi sends to Shopify: read-only queries, and one mutation that starts a bulk export."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from shopify.throttle import estimate_query_cost

# Each document here is checked by tests/shopify/test_queries_schema.py against two Admin schemas
# (stable 2025-01 and a newer unstable one), so it runs on the pinned API version, not only on devshop.
# Costs quoted below follow Shopify's rule: object 1, scalar/enum 0, connection 2 + first * item.

# The shop's identity, currency and timezone (feeds format prices and dates with them). `plan.displayName` is
# deprecated for `publicDisplayName` (new in 2025-07), which 2025-01 lacks; switch once 2025-01 is dropped.
SHOP_INFO = """
query ShopInfo {
  shop {
    name
    contactEmail
    myshopifyDomain
    currencyCode
    ianaTimezone
    primaryDomain { url host }
    plan { displayName partnerDevelopment shopifyPlus }
  }
}
"""

# One page of the catalogue for the search index; paginate with $after, filter with $query ("status:active").
#
# Requested cost is charged for the worst case, per product: about 24 + V * (2 + 3 * C) points for V variants
# and C market pricing contexts (the product 1, price ranges 3 + 3, featuredMedia 3, collections 2 + 10,
# variants 2 + V * (variant 1 + selectedOptions 1 + C * contextualPricing 3)). With no market beyond the
# primary one, V = 20 makes 64 points and PRODUCTS_PAGE_SIZE products fit a page; every further market adds
# 60 points per product, so `catalogue_plan` computes the page size (and, for shops with very many markets,
# fewer variants per page) from the estimate instead of a constant. 20 variants cover ordinary size x colour
# grids; `variants.pageInfo` tells the indexer a product has more, and PRODUCT_VARIANTS_PAGE fetches them.
def _product_fields(collections: str, variants: str) -> str:
    """The catalogue fields the index needs, with the nested connections written as given."""
    return f"""
      id
      title
      handle
      vendor
      productType
      tags
      status
      publishedAt
      updatedAt
      createdAt
      totalInventory
      onlineStoreUrl
      priceRangeV2 {{
        minVariantPrice {{ amount currencyCode }}
        maxVariantPrice {{ amount currencyCode }}
      }}
      compareAtPriceRange {{
        minVariantCompareAtPrice {{ amount currencyCode }}
        maxVariantCompareAtPrice {{ amount currencyCode }}
      }}
      featuredMedia {{
        id
        alt
        mediaContentType
        preview {{ image {{ url width height altText }} }}
      }}
      {collections}
      {variants}"""


# --- market prices ---------------------------------------------------------------------------------------
#
# A shopper's price depends on their market: Shopify converts and rounds the base price for a market's currency,
# or applies the market's fixed prices (price lists). `ProductVariant.contextualPricing(context: {country: XX})`
# answers the final price and compare-at price a buyer in XX sees (read_products is enough for it). Lumi asks
# once per pricing context (a market and the currency its countries pay in; one country stands for the rest),
# each under its own alias in the variant's fields, so one catalogue page carries every market's prices.
COUNTRY = re.compile(r"^[A-Z]{2}$")
VARIANTS_PER_PRODUCT = 20  # variants per product on a catalogue page (fewer only for shops with many markets)
VARIANTS_PAGE_MAX = 100  # variants per PRODUCT_VARIANTS_PAGE request, at most
# The requested cost Lumi allows one catalogue request: under Shopify's 1,000-point single-query limit with room
# for estimate error, and small enough to fit a partly drained bucket.
PAGE_COST_BUDGET = 800


def pricing_alias(country: str) -> str:
    """The alias a variant's contextualPricing for `country` is read under (e.g. `price_FR`)."""
    return f"price_{country}"


def _pricing_fields(countries: Sequence[str]) -> str:
    for country in countries:
        if not COUNTRY.match(country):  # they are written into the document: never anything but a country code
            raise ValueError(f"not a country code: {country!r}")
    return "".join(
        f" {pricing_alias(c)}: contextualPricing(context: {{country: {c}}})"
        " { price { amount currencyCode } compareAtPrice { amount currencyCode } }"
        for c in countries
    )


def _variant_fields(countries: Sequence[str]) -> str:
    return ("id title price compareAtPrice inventoryQuantity availableForSale selectedOptions { name value }"
            + _pricing_fields(countries))


def _paged_fields(countries: Sequence[str], variants: int) -> str:
    return _product_fields(
        "collections(first: 10) { nodes { id handle title } }",
        f"variants(first: {int(variants)}) {{ pageInfo {{ hasNextPage endCursor }} "
        f"nodes {{ {_variant_fields(countries)} }} }}",
    )


@lru_cache(maxsize=64)
def products_page(countries: tuple[str, ...] = (), variants: int = VARIANTS_PER_PRODUCT) -> str:
    """One page of the catalogue with each variant's price in every country of `countries`."""
    fields = _paged_fields(countries, variants)
    return f"""
query ProductsPage($first: Int!, $after: String, $query: String) {{
  products(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{{fields}
    }}
  }}
}}
"""


@lru_cache(maxsize=64)
def product_by_id(countries: tuple[str, ...] = (), variants: int = VARIANTS_PER_PRODUCT) -> str:
    """One product, for webhook-driven updates (the webhook payload is REST-shaped and may be truncated)."""
    fields = _paged_fields(countries, variants)
    return f"""
query ProductById($id: ID!) {{
  product(id: $id) {{{fields}
  }}
}}
"""


@lru_cache(maxsize=64)
def product_variants_page(countries: tuple[str, ...] = ()) -> str:
    """The rest of a product's variants when it has more than a catalogue page carries."""
    return f"""
query ProductVariantsPage($id: ID!, $first: Int!, $after: String) {{
  product(id: $id) {{
    variants(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {_variant_fields(countries)} }}
    }}
  }}
}}
"""


@lru_cache(maxsize=64)
def products_bulk(countries: tuple[str, ...] = ()) -> str:
    """The bulk-operation document for large catalogues: no `first:` inside, edges/node form, every variant and
    collection as its own JSONL line with `__parentId` (joined back to the product by the sync). Literal
    arguments only (contextualPricing's country), as a bulk query takes no variables."""
    fields = _product_fields(
        "collections { edges { node { id handle title } } }",
        f"variants {{ edges {{ node {{ {_variant_fields(countries)} }} }} }}",
    )
    return f"""
{{
  products(query: "status:active published_status:published") {{
    edges {{
      node {{{fields}
      }}
    }}
  }}
}}
"""


# Products per PRODUCTS_PAGE request with no market pricing: 2 + 12 * 64 = 770 requested points. With markets,
# catalogue_plan computes a smaller page from the same budget.
PRODUCTS_PAGE_SIZE = 12

# The documents for a shop with no market beyond the primary one (and what the schema tests check first).
PRODUCTS_PAGE = products_page()
PRODUCT_BY_ID = product_by_id()
# The rest of a product's variants when it has more than the 20 a catalogue page carries (100 ≈ 202 points).
PRODUCT_VARIANTS_PAGE = product_variants_page()
PRODUCTS_BULK = products_bulk()


@dataclass(frozen=True)
class CataloguePlan:
    """The catalogue documents for one shop's pricing countries, and page sizes that keep each request within
    PAGE_COST_BUDGET (computed from the documents' own cost estimate, so a new field or market is priced in)."""

    countries: tuple[str, ...]
    page_size: int  # products per products_page request
    variants: int  # variants per product on a page
    variants_page_size: int  # variants per product_variants_page request
    products_page: str
    product_by_id: str
    variants_page: str
    bulk: str

    @property
    def page_cost(self) -> float:
        """The requested cost of one full catalogue page (what the throttle plans for)."""
        return estimate_query_cost(self.products_page, {"first": self.page_size})


def catalogue_plan(countries: Sequence[str] = ()) -> CataloguePlan:
    """Documents and page sizes for a shop whose market prices are read for `countries` (one per context)."""
    key = tuple(sorted(set(countries)))
    return _plan(key)


@lru_cache(maxsize=64)
def _plan(countries: tuple[str, ...]) -> CataloguePlan:
    variants = VARIANTS_PER_PRODUCT
    while True:
        page = products_page(countries, variants)
        per_product = estimate_query_cost(page, {"first": 1}) - estimate_query_cost(page, {"first": 0})
        overhead = estimate_query_cost(page, {"first": 0})
        if overhead + per_product <= PAGE_COST_BUDGET or variants == 1:
            break
        variants = max(1, int(variants * (PAGE_COST_BUDGET - overhead) // per_product))  # shrink, then re-check
    page_size = int(max(1, min(PRODUCTS_PAGE_SIZE, (PAGE_COST_BUDGET - overhead) // per_product)))
    more = product_variants_page(countries)
    per_variant = estimate_query_cost(more, {"first": 1}) - estimate_query_cost(more, {"first": 0})
    variants_page_size = int(max(1, min(VARIANTS_PAGE_MAX, (PAGE_COST_BUDGET - estimate_query_cost(more, {"first": 0}))
                                        // per_variant)))
    return CataloguePlan(countries, page_size, variants, variants_page_size, page, product_by_id(countries, variants),
                         more, products_bulk(countries))


# The shop's markets: which countries buy in which currency, so feeds can price a `?country=XX` request the way
# the storefront does. Needs `read_markets` (the only query that does).
#
# Schema notes, checked against both reference schemas (stable 2025-01 and unstable Oct 2025):
# - Market.regions is the only field valid in both that lists a market's countries. It is deprecated in both
#   ("use conditions.regionConditions"), but `Market.conditions` (MarketConditions.regionsCondition.regions)
#   exists only in the unstable schema; switch to it once 2025-01 is no longer supported.
# - Market.enabled and Market.primary are deprecated in both (newer versions: `status`, and a shop-wide backup
#   region instead of a primary market, per the 2025-04 "New Markets APIs" changelog); `status` is unstable
#   only. Both are still served and are what 2025-01 has.
# - Market.currencySettings is non-null in 2025-01 and nullable in unstable: a null is read as "the shop's
#   currency". MarketRegionCountry.currency is the currency that country actually pays in (with local currencies
#   on, countries of one market can differ), so pricing contexts are (market, country currency) pairs.
# - QueryRoot.markets takes first/after in both (unstable adds filters such as `enabled`, `type`, unused here).
# Cost: shop 1 + markets 2 + per market (1 + currencySettings 2 + regions 2 + 250 x (country 1 + currency 1))
# = 3 + 505 per market, so MARKETS_PAGE_SIZE markets per request.
MARKETS_PAGE = """
query MarketsPage($first: Int!, $after: String) {
  shop { currencyCode }
  markets(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      handle
      name
      enabled
      primary
      currencySettings { baseCurrency { currencyCode } }
      regions(first: 250) {
        nodes { ... on MarketRegionCountry { code currency { currencyCode } } }
      }
    }
  }
}
"""


def _fit(document: str, budget: float = PAGE_COST_BUDGET) -> int:
    overhead = estimate_query_cost(document, {"first": 0})
    per_item = estimate_query_cost(document, {"first": 1}) - overhead
    return int(max(1, (budget - overhead) // per_item))


MARKETS_PAGE_SIZE = _fit(MARKETS_PAGE)

# How many products match a search (e.g. "status:active"), for index-build progress; limit: null = uncapped.
PRODUCTS_COUNT = """
query ProductsCount($query: String) {
  productsCount(query: $query, limit: null) { count precision }
}
"""

# A collection's id from its handle (collectionByHandle is deprecated and collectionByIdentifier is newer
# than 2025-01, so the search filter is the form valid in both schemas).
COLLECTION_BY_HANDLE = """
query CollectionByHandle($query: String!) {
  collections(first: 1, query: $query) {
    nodes { id handle title }
  }
}
"""

# One page of a collection's product ids in the merchant's own order (COLLECTION_DEFAULT); 250 ids cost ~252.
COLLECTION_PRODUCTS_PAGE = """
query CollectionProductsPage($id: ID!, $first: Int!, $after: String) {
  collection(id: $id) {
    id
    handle
    products(first: $first, after: $after, sortKey: COLLECTION_DEFAULT) {
      pageInfo { hasNextPage endCursor }
      nodes { id handle }
    }
  }
}
"""

# What the support chat reads about an order: status, line items and tracking, plus `email` and `customer { id }`
# only so the chat can check the order is the shopper's (the typed email, or the app proxy's logged_in_customer_id):
# they are compared and dropped, never stored or logged. No other personal field (name, phone, address, payment).
# Requested cost as the client estimates it (plain lists priced like connections, so high): ~136 points per order,
# lineItems 2 + 50, fulfillments 2 + 10 * (1 + trackingInfo 2 + 5), customer 1, the order 1.
_order_status_fields = """
      id
      name
      email
      customer { id }
      createdAt
      processedAt
      cancelledAt
      displayFinancialStatus
      displayFulfillmentStatus
      lineItems(first: 50) {
        nodes { title quantity }
      }
      fulfillments(first: 10) {
        status
        displayStatus
        createdAt
        estimatedDeliveryAt
        inTransitAt
        deliveredAt
        trackingInfo(first: 5) { company number url }
      }"""

# One order by name ($query = 'name:"#1001"'; Shopify matches the name with or without the '#'); ~138 points.
ORDER_BY_NAME = f"""
query OrderByName($query: String!) {{
  orders(first: 1, query: $query) {{
    nodes {{{_order_status_fields}
    }}
  }}
}}
"""

# A logged-in customer's most recent orders, newest first ($query = "customer_id:<numeric id>", the app proxy's
# logged_in_customer_id). $first = CUSTOMER_ORDERS_PAGE_SIZE: 2 + 5 * 136 = 682 requested points.
CUSTOMER_ORDERS = f"""
query CustomerOrders($first: Int!, $query: String!) {{
  orders(first: $first, sortKey: CREATED_AT, reverse: true, query: $query) {{
    nodes {{{_order_status_fields}
    }}
  }}
}}
"""

CUSTOMER_ORDERS_PAGE_SIZE = 5

# Which product an inventory item belongs to (inventory_levels/update webhooks name only the item).
INVENTORY_ITEM_PRODUCT = """
query InventoryItemProduct($id: ID!) {
  inventoryItem(id: $id) {
    id
    variant { id product { id } }
  }
}
"""

# Units sold per product for ranking signals: one page of recent orders' line items, counts only
# (no customer, address or price field is requested). $query e.g. "created_at:>='2026-10-24T00:00:00Z'".
# 10 line items per order keeps a 40-order page at ~922 points; larger orders are undercounted (a ranking
# signal, not accounting).
ORDERS_SALES_PAGE = """
query OrdersSalesPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      createdAt
      cancelledAt
      lineItems(first: 10) {
        nodes { quantity product { id } }
      }
    }
  }
}
"""

ORDERS_SALES_PAGE_SIZE = 40

# Start a bulk query: the only mutation Lumi sends, and only through AdminClient.start_bulk_query, which
# sends exactly this text. It starts a read-only export of the catalogue and changes no merchant data.
BULK_RUN = """
mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

# A bulk operation's progress and result location.
BULK_STATUS = """
query BulkStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl }
  }
}
"""
