"""Every document in shopify.queries is a read-only query valid in Shopify's 2025-01 and unstable Admin schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import (
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
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


def documents() -> dict[str, str]:
    """Every GraphQL document constant in shopify.queries (upper-case names holding a string)."""
    return {name: value for name, value in vars(queries).items() if name.isupper() and isinstance(value, str)}


DOCUMENTS = documents()


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
    sizes = {"PRODUCTS_PAGE": queries.PRODUCTS_PAGE_SIZE, "ORDERS_SALES_PAGE": queries.ORDERS_SALES_PAGE_SIZE,
             "CUSTOMER_ORDERS": queries.CUSTOMER_ORDERS_PAGE_SIZE}
    variables = {"first": sizes.get(name, 250)}
    assert estimate_query_cost(DOCUMENTS[name], variables) <= SINGLE_QUERY_MAX_COST
