"""devshop's SDL must be a subset of Shopify's 2025-01 Admin schema, name for name and type for type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    print_ast,
)
from graphql.pyutils import Undefined

from devshop.graphql_api import schema as devshop_schema

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "shopify" / "admin-2025-01.json"


@pytest.fixture(scope="module")
def shopify() -> GraphQLSchema:
    if not REFERENCE.is_file():
        pytest.skip(f"Shopify's 2025-01 schema is not at {REFERENCE} (CI puts shared/ beside the checkout); "
                    "the subset proof needs it")
    return build_client_schema(json.loads(REFERENCE.read_text(encoding="utf-8"))["data"])


def default_of(value: Any) -> str | None:
    default = getattr(value, "default", None)
    if default is not None:
        if getattr(default, "literal", None) is not None:
            return print_ast(default.literal)
        if getattr(default, "value", Undefined) is not Undefined:
            return repr(default.value)
    legacy = getattr(value, "default_value", Undefined)
    return None if legacy is Undefined else repr(legacy)


def kind(t: Any) -> str:
    return type(t).__name__


def test_devshop_schema_is_a_subset_of_shopify_2025_01(shopify: GraphQLSchema) -> None:
    ours = devshop_schema()
    problems: list[str] = []
    assert ours.query_type and shopify.query_type and ours.query_type.name == shopify.query_type.name
    assert ours.mutation_type and shopify.mutation_type and ours.mutation_type.name == shopify.mutation_type.name
    for name, mine in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = shopify.get_type(name)
        if theirs is None:
            problems.append(f"type {name} is not in Shopify's schema")
            continue
        if kind(theirs) != kind(mine):
            problems.append(f"{name} is a {kind(mine)} here but a {kind(theirs)} in Shopify's schema")
            continue
        if isinstance(mine, GraphQLEnumType):
            extra = set(mine.values) - set(theirs.values)
            problems += [f"enum value {name}.{v} is not Shopify's" for v in sorted(extra)]
        elif isinstance(mine, GraphQLUnionType):
            extra = {t.name for t in mine.types} - {t.name for t in theirs.types}
            problems += [f"union {name} member {t} is not Shopify's" for t in sorted(extra)]
        elif isinstance(mine, GraphQLInputObjectType):
            for field_name, field in mine.fields.items():
                other = theirs.fields.get(field_name)
                if other is None:
                    problems.append(f"input field {name}.{field_name} is not Shopify's")
                elif str(other.type) != str(field.type) or default_of(other) != default_of(field):
                    problems.append(f"input field {name}.{field_name}: {field.type} = {default_of(field)} here, "
                                    f"{other.type} = {default_of(other)} in Shopify's")
        elif isinstance(mine, (GraphQLObjectType, GraphQLInterfaceType)):
            extra_ifaces = {i.name for i in mine.interfaces} - {i.name for i in theirs.interfaces}
            problems += [f"{name} implements {i} here but not in Shopify's schema" for i in sorted(extra_ifaces)]
            for field_name, field in mine.fields.items():
                other = theirs.fields.get(field_name)
                if other is None:
                    problems.append(f"field {name}.{field_name} is not Shopify's")
                    continue
                if str(other.type) != str(field.type):
                    problems.append(f"field {name}.{field_name}: {field.type} here, {other.type} in Shopify's")
                for arg_name, arg in field.args.items():
                    their_arg = other.args.get(arg_name)
                    if their_arg is None:
                        problems.append(f"argument {name}.{field_name}({arg_name}:) is not Shopify's")
                    elif str(their_arg.type) != str(arg.type) or default_of(their_arg) != default_of(arg):
                        problems.append(f"argument {name}.{field_name}({arg_name}:): {arg.type} = {default_of(arg)} "
                                        f"here, {their_arg.type} = {default_of(their_arg)} in Shopify's")
                if bool(field.deprecation_reason) != bool(other.deprecation_reason):
                    problems.append(f"field {name}.{field_name} deprecation differs from Shopify's")
        elif not isinstance(mine, GraphQLScalarType):
            problems.append(f"{name}: unexpected kind {kind(mine)}")
    assert problems == []


def test_the_check_catches_a_field_shopify_does_not_have(shopify: GraphQLSchema) -> None:
    product = shopify.get_type("Product")
    assert isinstance(product, GraphQLObjectType)
    assert "fulfillments" not in product.fields  # the kind of slip the subset test exists to catch
    order = shopify.get_type("Order")
    assert isinstance(order, GraphQLObjectType)
    assert str(order.fields["fulfillments"].type) == "[Fulfillment!]!"  # a plain list in 2025-01
