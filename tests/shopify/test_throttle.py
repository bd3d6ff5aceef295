"""The cost-bucket maths, the read-only guard's lexer and the static cost estimate."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse
from hypothesis import given
from hypothesis import strategies as st

from shopify.throttle import ThrottleState, estimate_query_cost, operation_types

points = st.floats(min_value=0, max_value=10_000, allow_nan=False)
rates = st.floats(min_value=0.1, max_value=2_000, allow_nan=False)
seconds = st.floats(min_value=0, max_value=100, allow_nan=False)


def test_estimate_refills_at_restore_rate_and_caps_at_maximum() -> None:
    state = ThrottleState(maximum_available=200, currently_available=50, restore_rate=100, observed_at=10.0)
    assert state.estimate_available(10.0) == 50
    assert state.estimate_available(11.0) == 150
    assert state.estimate_available(99.0) == 200
    assert state.estimate_available(9.0) == 50  # a clock behind the observation never drains the bucket
    assert state.seconds_until(120, 10.0) == pytest.approx(0.7)
    assert state.seconds_until(500, 10.0) == pytest.approx(1.5)  # never more than a full refill
    assert state.seconds_until(40, 10.0) == 0


def test_from_cost_reads_shopify_extensions() -> None:
    cost = {
        "requestedQueryCost": 752,
        "actualQueryCost": None,
        "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 666, "restoreRate": 50.0},
    }
    state = ThrottleState.from_cost(cost, observed_at=3.0)
    assert state == ThrottleState(1000.0, 666.0, 50.0, 3.0)
    assert state.seconds_until(752, 3.0) == pytest.approx((752 - 666) / 50)
    assert ThrottleState.from_cost({"requestedQueryCost": 1}, 0.0) is None
    assert ThrottleState.from_cost(None, 0.0) is None


@given(maximum=points, current=points, rate=rates, waited=seconds, later=seconds)
def test_advanced_agrees_with_a_clock_that_moved(
    maximum: float, current: float, rate: float, waited: float, later: float
) -> None:
    state = ThrottleState(maximum, min(current, maximum), rate, observed_at=100.0)
    advanced = state.advanced(waited)
    # Real clock: the time slept has passed, and maybe more; same estimate either way.
    moved = 100.0 + waited + later
    assert advanced.estimate_available(moved) == pytest.approx(state.estimate_available(moved), abs=1e-6)
    # Fake clock that did not move: the wait still counts.
    assert advanced.estimate_available(100.0) == pytest.approx(state.estimate_available(100.0 + waited), abs=1e-6)


@given(maximum=points, current=points, rate=rates, cost=points)
def test_debit_reserves_cost_never_below_zero(maximum: float, current: float, rate: float, cost: float) -> None:
    state = ThrottleState(maximum, min(current, maximum), rate, observed_at=0.0)
    debited = state.debited(cost, now=0.0)
    assert debited.currently_available == pytest.approx(max(0.0, state.currently_available - cost))


TRICKY_DOCUMENTS = [
    "{ shop { name } }",
    "query { shop { name } }",
    'query A($q: String = "mutation { x }") { orders(query: $q) { nodes { id } } }',
    "# mutation M { x }\nquery A { shop { name } }",
    "mutation M { productDelete(input: {id: 1}) { deletedProductId } }",
    "query A { shop { name } }\nmutation B { x }",
    "fragment F on Mutation { x }\nquery A { ...F }",
    'query A { shop { description(text: """\nmutation { x }\n""") } }',
    "subscription S { x }",
    "query mutation { mutation: shop { name } }",
]


@pytest.mark.parametrize("document", TRICKY_DOCUMENTS)
def test_operation_types_match_graphql_core(document: str) -> None:
    expected = [d.operation.value for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)]
    assert operation_types(document) == expected


def test_estimate_follows_shopifys_published_example() -> None:
    # shopify.dev rate-limits page rules: connection 2 + first * item, object 1, scalar 0.
    document = "{ products(first: 10) { edges { node { title variants(first: 5) { edges { node { price } } } } } } }"
    assert estimate_query_cost(document) == 2 + 10 * (1 + 2 + 5 * 1)


def test_estimate_reads_first_from_variables_and_fragments() -> None:
    document = """
    query P($first: Int!) { products(first: $first) { pageInfo { hasNextPage } nodes { ...F } } }
    fragment F on Product { id featuredMedia { id } }
    """
    assert estimate_query_cost(document, {"first": 7}) == 2 + 7 * (1 + 1)
