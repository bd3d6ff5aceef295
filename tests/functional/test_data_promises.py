"""Promises about what Lumi may do with a merchant's store, checked against the code and the app config.

Read-only scopes, declared exactly as the code requires them; one pinned API version; no GraphQL mutation
on merchant data anywhere in the app. The only mutation root field allowed is `bulkOperationRunQuery`:
it starts a read-only export (it needs no write scope) and is the documented way to read large catalogues.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import graphql
from graphql.language import OperationDefinitionNode, OperationType

from shopify import queries
from shopify.oauth import REQUIRED_SCOPES
from shopify.version import API_VERSION

ROOT = Path(__file__).resolve().parents[2]
# Every top-level package of the app (chat sends the order queries; runtime wires the data stores), found on
# disk so a new package is scanned too; the stand-ins, the dev tools, the benchmarks and the tests are not the app.
NOT_THE_APP = frozenset({"tests", "bench", "devshop", "devtools", "devmodel"})
APP_PACKAGES = tuple(sorted(path.parent.name for path in ROOT.glob("*/__init__.py")
                            if path.parent.name not in NOT_THE_APP))
# Mutation root fields that change no merchant data (a bulk *query*); anything else is a broken promise.
READ_ONLY_MUTATION_FIELDS = frozenset({"bulkOperationRunQuery"})

# `mutation`, an optional name, optional variables and directives, then the selection set.
MUTATION_TEXT = re.compile(
    r"(?<![\w$])mutation\b\s*(?:[_A-Za-z]\w*\s*)?(?:\([^)]*\)\s*)?(?:@\w+\s*(?:\([^)]*\)\s*)?)*\{\s*"
    r"(?:[_A-Za-z]\w*\s*:\s*)?(?P<field>[_A-Za-z]\w*)"
)


def app_toml() -> dict:  # type: ignore[type-arg]
    with open(ROOT / "shopify.app.toml", "rb") as handle:
        return tomllib.load(handle)


def test_declared_scopes_are_read_only_and_exactly_what_the_code_requires() -> None:
    declared = [scope.strip() for scope in app_toml()["access_scopes"]["scopes"].split(",")]
    assert declared, "no scopes declared"
    assert all(scope.startswith("read_") for scope in declared), declared
    assert len(declared) == len(set(declared)), declared
    assert set(declared) == set(REQUIRED_SCOPES)
    assert len(REQUIRED_SCOPES) == len(set(REQUIRED_SCOPES))
    optional = app_toml()["access_scopes"].get("optional_scopes") or []
    assert all(scope.startswith("read_") for scope in optional), optional


def test_webhooks_api_version_is_the_pinned_version() -> None:
    assert app_toml()["webhooks"]["api_version"] == API_VERSION
    assert re.fullmatch(r"\d{4}-(01|04|07|10)", API_VERSION), API_VERSION


def test_mandatory_compliance_topics_are_subscribed() -> None:
    subscriptions = app_toml()["webhooks"]["subscriptions"]
    subscribed = {topic for sub in subscriptions for topic in sub.get("compliance_topics", [])}
    assert subscribed == {"customers/data_request", "customers/redact", "shop/redact"}


def documents() -> dict[str, graphql.DocumentNode]:
    """Every GraphQL document defined in shopify/queries.py (public upper-case string constants)."""
    found: dict[str, graphql.DocumentNode] = {}
    for name, value in vars(queries).items():
        if name.isupper() and not name.startswith("_") and isinstance(value, str) and "{" in value:
            found[name] = graphql.parse(value)  # a document that does not parse is a bug of its own
    assert found, "found no GraphQL documents in shopify/queries.py"
    return found


def operations(document: graphql.DocumentNode) -> Iterator[OperationDefinitionNode]:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            yield definition


def root_fields(operation: OperationDefinitionNode) -> set[str]:
    return {selection.name.value for selection in operation.selection_set.selections
            if isinstance(selection, graphql.FieldNode)}


def test_every_query_document_is_read_only() -> None:
    for name, document in documents().items():
        ops = list(operations(document))
        assert ops, f"{name} has no operation"
        for operation in ops:
            assert operation.operation != OperationType.SUBSCRIPTION, name
            if operation.operation == OperationType.MUTATION:
                fields = root_fields(operation)
                assert fields and fields <= READ_ONLY_MUTATION_FIELDS, (
                    f"{name} is a mutation on {sorted(fields)}: Lumi promises never to change merchant data")
                assert not [s for s in operation.selection_set.selections if not isinstance(s, graphql.FieldNode)], (
                    f"{name}: fragments at a mutation's root hide what it changes")
            else:
                assert operation.operation == OperationType.QUERY, name


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """Every string in a module's code (f-strings with `{…}` for each placeholder); comments don't count."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{…}" for v in node.values]
            yield node.lineno, "".join(str(p) for p in parts)


def mutation_fields(text: str) -> set[str]:
    """Root fields of every mutation written in `text` (parsed when possible, else read off the text)."""
    if not MUTATION_TEXT.search(text):
        return set()
    try:
        document = graphql.parse(text)
    except graphql.GraphQLError:
        return {match.group("field") for match in MUTATION_TEXT.finditer(text)}
    fields: set[str] = set()
    for operation in operations(document):
        if operation.operation == OperationType.MUTATION:
            fields |= root_fields(operation) or {"<fragment>"}
    return fields


def test_the_mutation_detector_detects_mutations() -> None:
    assert mutation_fields("mutation { productDelete(input: {id: 1}) { deletedProductId } }") == {"productDelete"}
    assert mutation_fields('mutation Tag($id: ID!) @x { tagsAdd(id: $id, tags: ["a"]) { node { id } } }') == {
        "tagsAdd"}
    assert mutation_fields("\n  mutation\n  Del { del: productDelete(x: 1) { id } }") == {"productDelete"}
    assert mutation_fields("mutation Broken($a: Int) { webhookSubscriptionCreate(") == {"webhookSubscriptionCreate"}
    assert mutation_fields("query { shop { name } }") == set()
    assert mutation_fields("Lumi never calls a mutation on merchant data (no mutations).") == set()


def test_no_app_module_sends_a_mutation_on_merchant_data() -> None:
    assert {"chat", "core", "feeds", "jobs", "runtime", "shopify", "web"} <= set(APP_PACKAGES), APP_PACKAGES
    modules = [path for package in APP_PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(modules) > 10, modules
    offenders = []
    for path in modules:
        for line, text in string_literals(path):
            fields = mutation_fields(text)
            if fields - READ_ONLY_MUTATION_FIELDS:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {sorted(fields - READ_ONLY_MUTATION_FIELDS)}")
    assert not offenders, offenders
