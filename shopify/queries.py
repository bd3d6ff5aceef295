"""Every GraphQL document Lumi sends to Shopify: read-only queries, and one mutation that starts a bulk export."""

from __future__ import annotations

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
# variants(first: 20), not 100: the requested cost is charged for the worst case, per product. A product
# costs about 24 + 2 * V points (itself 1, price ranges 3 + 3, featuredMedia 3, collections 2 + 10, variants
# 2 + V * (variant 1 + selectedOptions 1)), so V = 100 makes one product 224 points and a page could hold only
# 4 products under the 1,000-point single-query limit. V = 20 (64 points) covers ordinary size x colour
# grids and allows PRODUCTS_PAGE_SIZE products per page; feeds use the product-level price ranges and
# totalInventory for the rest, and `variants.pageInfo` tells the indexer a product has more variants.
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


_variant_fields = "id title price compareAtPrice inventoryQuantity availableForSale selectedOptions { name value }"
_paged_fields = _product_fields(
    "collections(first: 10) { nodes { id handle title } }",
    f"variants(first: 20) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {_variant_fields} }} }}",
)

PRODUCTS_PAGE = f"""
query ProductsPage($first: Int!, $after: String, $query: String) {{
  products(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{{_paged_fields}
    }}
  }}
}}
"""

# One product, for webhook-driven updates (the webhook payload is REST-shaped and may be truncated).
PRODUCT_BY_ID = f"""
query ProductById($id: ID!) {{
  product(id: $id) {{{_paged_fields}
  }}
}}
"""

# The rest of a product's variants when it has more than the 20 a catalogue page carries (100 ≈ 202 points).
PRODUCT_VARIANTS_PAGE = f"""
query ProductVariantsPage($id: ID!, $first: Int!, $after: String) {{
  product(id: $id) {{
    variants(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {_variant_fields} }}
    }}
  }}
}}
"""

# The bulk-operation document for large catalogues: no `first:` inside, edges/node form, every variant and
# collection as its own JSONL line with `__parentId` (joined back to the product by the sync).
PRODUCTS_BULK = f"""
{{
  products(query: "status:active published_status:published") {{
    edges {{
      node {{{_product_fields(
        "collections { edges { node { id handle title } } }",
        f"variants {{ edges {{ node {{ {_variant_fields} }} }} }}",
    )}
      }}
    }}
  }}
}}
"""

# Products per PRODUCTS_PAGE request: 2 + 12 * 64 = 770 requested points, under the 1,000 single-query
# limit with room for estimate error, and small enough to fit a partly drained bucket.
PRODUCTS_PAGE_SIZE = 12

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
