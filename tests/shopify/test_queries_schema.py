"""Every document in shopify.queries is a read-only query valid in Shopify's 2025-01 and unstable Admin schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import (
    FieldNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_client_schema,
    build_schema,
    parse,
    validate,
)

from shopify import queries
from shopify.throttle import SINGLE_QUERY_MAX_COST, estimate_query_cost, operation_types

SHOPIFY_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "shopify"
STABLE_SCHEMA = SHOPIFY_REFERENCE / "admin-2025-01.json"
UNSTABLE_SCHEMA = SHOPIFY_REFERENCE / "admin-schema.graphql"
SKIP_REASON = "../shared/shopify not present: schema files live outside the repo"


# Pricing countries the catalogue documents are built for in these checks: one market, several, and enough to
# shrink the variants per page (the builders only ever add aliased contextualPricing fields per country).
PRICING_COUNTRIES = [("FR",), ("DE", "FR", "GB", "JP"),
                     ("AE", "AR", "AU", "BR", "CA", "CH", "CN", "DK", "GB", "HK", "IN", "JP", "KR", "MX", "NO", "NZ",
                      "PL", "SE", "SG", "ZA")]


def documents() -> tuple[dict[str, str], dict[str, int]]:
    """Every GraphQL document in shopify.queries: the constants (upper-case names holding a string) and the
    per-shop catalogue documents `catalogue_plan` builds, with the page size each is sent with."""
    found = {name: value for name, value in vars(queries).items() if name.isupper() and isinstance(value, str)}
    sizes = {"PRODUCTS_PAGE": queries.PRODUCTS_PAGE_SIZE, "ORDERS_SALES_PAGE": queries.ORDERS_SALES_PAGE_SIZE,
             "CUSTOMER_ORDERS": queries.CUSTOMER_ORDERS_PAGE_SIZE, "MARKETS_PAGE": queries.MARKETS_PAGE_SIZE}
    for countries in PRICING_COUNTRIES:
        plan = queries.catalogue_plan(countries)
        tag = f"{len(countries)} countries"
        found[f"products_page[{tag}]"] = plan.products_page
        sizes[f"products_page[{tag}]"] = plan.page_size
        found[f"product_by_id[{tag}]"] = plan.product_by_id
        found[f"variants_page[{tag}]"] = plan.variants_page
        sizes[f"variants_page[{tag}]"] = plan.variants_page_size
        found[f"products_bulk[{tag}]"] = plan.bulk
    return found, sizes


DOCUMENTS, PAGE_SIZES = documents()


@pytest.fixture(scope="module")
def stable_schema() -> GraphQLSchema:
    if not STABLE_SCHEMA.exists():
        pytest.skip(SKIP_REASON)
    with STABLE_SCHEMA.open() as f:
        # assume_valid: Shopify's own schema breaks a graphql-core 3.3 rule about deprecated interface
        # fields; that says nothing about our queries, which `validate` still checks in full.
        return build_client_schema(json.load(f)["data"], assume_valid=True)


@pytest.fixture(scope="module")
def unstable_schema() -> GraphQLSchema:
    if not UNSTABLE_SCHEMA.exists():
        pytest.skip(SKIP_REASON)
    return build_schema(UNSTABLE_SCHEMA.read_text(), assume_valid=True)


def test_discovers_the_documents_the_app_needs() -> None:
    assert {
        "SHOP_INFO",
        "PRODUCTS_PAGE",
        "PRODUCTS_COUNT",
        "COLLECTION_BY_HANDLE",
        "COLLECTION_PRODUCTS_PAGE",
        "ORDER_BY_NAME",
        "MARKETS_PAGE",
        "PRODUCT_BY_ID",
        "PRODUCTS_BULK",
    } <= DOCUMENTS.keys()


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_valid_against_2025_01(name: str, stable_schema: GraphQLSchema) -> None:
    errors = validate(stable_schema, parse(DOCUMENTS[name]))
    assert [error.message for error in errors] == []


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_valid_against_unstable(name: str, unstable_schema: GraphQLSchema) -> None:
    errors = validate(unstable_schema, parse(DOCUMENTS[name]))
    assert [error.message for error in errors] == []


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_is_a_query_not_a_mutation(name: str) -> None:
    if name == "BULK_RUN":
        # The one exception: starting a bulk *query* (a read-only export) goes through a mutation.
        (operation,) = parse(DOCUMENTS[name]).definitions
        assert isinstance(operation, OperationDefinitionNode) and operation.operation is OperationType.MUTATION
        assert [f.name.value for f in operation.selection_set.selections] == ["bulkOperationRunQuery"]  # type: ignore[attr-defined]
        return
    operations = [d for d in parse(DOCUMENTS[name]).definitions if isinstance(d, OperationDefinitionNode)]
    assert operations, f"{name} has no operation"
    assert all(operation.operation is OperationType.QUERY for operation in operations)
    # The client's own guard (no graphql-core at runtime) reads it the same way.
    assert operation_types(DOCUMENTS[name]) == ["query"] * len(operations)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_requested_cost_fits_a_single_query(name: str) -> None:
    if name.startswith("products_bulk"):
        return  # a bulk query has no requested-cost limit (and no `first:` to size it)
    variables = {"first": PAGE_SIZES.get(name, 250)}
    assert estimate_query_cost(DOCUMENTS[name], variables) <= SINGLE_QUERY_MAX_COST


@pytest.mark.parametrize("markets", [0, 1, 2, 3, 5, 10, 20, 60, 245])
def test_catalogue_pages_are_sized_from_their_cost_for_any_number_of_markets(markets: int) -> None:
    countries = [f"{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"][:markets]
    plan = queries.catalogue_plan(countries)
    assert plan.countries == tuple(sorted(countries))
    assert 1 <= plan.page_size <= queries.PRODUCTS_PAGE_SIZE and 1 <= plan.variants <= queries.VARIANTS_PER_PRODUCT
    assert plan.page_cost <= queries.PAGE_COST_BUDGET
    assert estimate_query_cost(plan.variants_page, {"first": plan.variants_page_size}) <= queries.PAGE_COST_BUDGET
    assert estimate_query_cost(plan.product_by_id) <= queries.PAGE_COST_BUDGET
    for country in countries:
        assert f"{queries.pricing_alias(country)}: contextualPricing(context: {{country: {country}}})" in plan.bulk
    if markets == 0:  # a shop with only its primary market pays what it always did: 12 products, 770 points
        assert (plan.page_size, plan.variants, plan.page_cost) == (12, 20, 770)
        assert plan.products_page == queries.PRODUCTS_PAGE
    if markets == 1:  # one more market: 60 points per product more, so half the products per page
        assert (plan.page_size, plan.variants, plan.page_cost) == (6, 20, 746)


def test_pricing_countries_are_never_anything_but_country_codes() -> None:
    with pytest.raises(ValueError):
        queries.catalogue_plan(["FR) { id } x: shop(", "DE"])


# Shopify's protected customer data: name, email, phone and address are Level 2 fields. Lumi reads none of them
# except an order's `email`, compared with the one a shopper types to verify an order and then dropped.
PERSONAL_FIELDS = {"phone", "firstName", "lastName", "displayName", "addresses", "defaultAddress", "shippingAddress",
                   "billingAddress", "address1", "address2", "zip", "email", "note", "customerJourneySummary",
                   "paymentGatewayNames", "transactions", "clientIp"}
ORDER_EMAIL_ALLOWED = {"ORDER_BY_NAME", "CUSTOMER_ORDERS"}


def _fields(selection_set: SelectionSetNode | None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            here = (*path, selection.name.value)
            yield here
            yield from _fields(selection.selection_set, here)
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, path)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_no_document_reads_protected_personal_data(name: str) -> None:
    """S5: order lookups read status, items and tracking; a customer is read as its id only; the order's email
    only in the two order lookups (for the verify check). `plan.displayName` is the shop's plan, not a person."""
    paths = [path for definition in parse(DOCUMENTS[name]).definitions
             if isinstance(definition, OperationDefinitionNode) for path in _fields(definition.selection_set)]
    assert paths
    for path in paths:
        if "customer" in path[:-1]:
            assert path[-1] == "id", (name, path)
        if path[-1] == "email":
            assert name in ORDER_EMAIL_ALLOWED and path[-2:] == ("nodes", "email"), (name, path)
        elif path[-1] in PERSONAL_FIELDS:
            assert path == ("shop", "plan", "displayName"), (name, path)
