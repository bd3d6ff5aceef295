"""Shopify's calculated-query-cost bucket: throttle state, wait maths and a static cost estimate."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# A single query may not request more than this (Shopify rejects it with MAX_COST_EXCEEDED).
SINGLE_QUERY_MAX_COST = 1000.0


@dataclass(frozen=True)
class ThrottleState:
    """The bucket as Shopify last reported it (`extensions.cost.throttleStatus`), stamped with our clock."""

    maximum_available: float
    currently_available: float
    restore_rate: float
    observed_at: float

    @classmethod
    def from_cost(cls, cost: Mapping[str, Any] | None, observed_at: float) -> ThrottleState | None:
        """Read `extensions.cost`; None when the response carries no usable throttle status."""
        status = cost.get("throttleStatus") if isinstance(cost, Mapping) else None
        if not isinstance(status, Mapping):
            return None
        try:
            maximum = float(status["maximumAvailable"])
            current = float(status["currentlyAvailable"])
            rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return None
        return cls(maximum, current, rate, observed_at)

    def estimate_available(self, now: float) -> float:
        """Points in the bucket at `now`: it refills at `restore_rate` per second up to the maximum."""
        elapsed = max(0.0, now - self.observed_at)
        return min(self.maximum_available, self.currently_available + self.restore_rate * elapsed)

    def seconds_until(self, cost: float, now: float) -> float:
        """How long until `cost` points are available (never more than a full refill)."""
        needed = min(cost, self.maximum_available)
        missing = needed - self.estimate_available(now)
        if missing <= 0:
            return 0.0
        if self.restore_rate <= 0:
            return float("inf")
        return missing / self.restore_rate

    def advanced(self, seconds: float) -> ThrottleState:
        """The state after waiting `seconds`: correct whether or not the injected clock moved meanwhile."""
        refilled = min(self.maximum_available, self.currently_available + self.restore_rate * seconds)
        return dataclasses.replace(self, currently_available=refilled, observed_at=self.observed_at + seconds)

    def debited(self, cost: float, now: float) -> ThrottleState:
        """The state after sending a request that reserves `cost` points at `now`."""
        at = max(now, self.observed_at)
        left = max(0.0, self.estimate_available(at) - cost)
        return dataclasses.replace(self, currently_available=left, observed_at=at)


# --- a tiny GraphQL lexer: enough to find operation types and estimate cost without graphql-core,
# which is a dev-only dependency (the web and worker processes do not install it).

_TOKEN = re.compile(
    r"""
      (?P<ignored>[\s,\ufeff]+|\#[^\n\r]*)
    | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
    | (?P<string>"(?:\\.|[^"\\\n\r])*")
    | (?P<spread>\.\.\.)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    | (?P<punct>[!$&()\:=@\[\]{}|])
    """,
    re.VERBOSE,
)


def graphql_tokens(document: str) -> Iterator[tuple[str, str]]:
    """(kind, text) for each significant token; kinds: block, string, spread, number, name, punct."""
    position = 0
    while position < len(document):
        match = _TOKEN.match(document, position)
        if match is None:
            raise ValueError(f"cannot read GraphQL document at character {position}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "ignored":
            yield kind, match.group()


def operation_types(document: str) -> list[str]:
    """The type (query, mutation, subscription) of each operation in `document`; `{ ... }` counts as query."""
    types: list[str] = []
    depth = 0
    at_definition_start = True
    for kind, text in graphql_tokens(document):
        if depth == 0 and at_definition_start:
            if kind == "name" and text in {"query", "mutation", "subscription"}:
                types.append(text)
            elif text == "{":
                types.append("query")
            at_definition_start = False
        if kind != "punct":
            continue
        if text in {"{", "("}:
            depth += 1
        elif text in {"}", ")"}:
            depth -= 1
            if depth == 0 and text == "}":
                at_definition_start = True
    return types


@dataclass
class _Field:
    name: str
    limit: float | None  # the first:/last: argument, when given and known
    children: list[_Field | _Spread]


@dataclass
class _Spread:
    fragment: str | None  # None for an inline fragment (its fields are in children)
    children: list[_Field | _Spread]


class _CostParser:
    """Parse selections just far enough to apply Shopify's cost rules."""

    def __init__(self, document: str, variables: Mapping[str, Any]) -> None:
        self.tokens = list(graphql_tokens(document))
        self.position = 0
        self.variables = variables
        self.fragments: dict[str, list[_Field | _Spread]] = {}
        self.operations: list[list[_Field | _Spread]] = []

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def skip_balanced(self, opening: str, closing: str) -> None:
        depth = 0
        while self.position < len(self.tokens):
            _, text = self.take()
            if text == opening:
                depth += 1
            elif text == closing:
                depth -= 1
                if depth == 0:
                    return

    def parse_document(self) -> None:
        while self.peek() is not None:
            if self.peek() == "{":
                self.operations.append(self.parse_selections())
                continue
            _, keyword = self.take()
            if keyword == "fragment":
                _, name = self.take()
                while self.peek() not in {"{", None}:
                    self.take()
                self.fragments[name] = self.parse_selections()
            else:  # query/mutation/subscription Name($vars) @directives { ... }
                while self.peek() not in {"{", None}:
                    if self.peek() == "(":
                        self.skip_balanced("(", ")")
                    else:
                        self.take()
                self.operations.append(self.parse_selections())

    def parse_selections(self) -> list[_Field | _Spread]:
        selections: list[_Field | _Spread] = []
        self.take()  # {
        while self.peek() not in {"}", None}:
            kind, text = self.take()
            if kind == "spread":
                if self.peek() in {"on", "@", "{"}:
                    while self.peek() not in {"{", None}:
                        if self.peek() == "(":
                            self.skip_balanced("(", ")")
                        else:
                            self.take()
                    selections.append(_Spread(None, self.parse_selections()))
                else:
                    _, name = self.take()
                    self.skip_directives()
                    selections.append(_Spread(name, []))
                continue
            name = text
            if self.peek() == ":":  # alias
                self.take()
                _, name = self.take()
            limit = self.parse_arguments() if self.peek() == "(" else None
            self.skip_directives()
            children = self.parse_selections() if self.peek() == "{" else []
            selections.append(_Field(name, limit, children))
        if self.peek() == "}":
            self.take()
        return selections

    def parse_arguments(self) -> float | None:
        limit: float | None = None
        self.take()  # (
        while self.peek() not in {")", None}:
            _, argument = self.take()
            self.take()  # :
            if self.peek() in {"[", "{"}:
                opening = self.peek() or ""
                self.skip_balanced(opening, "]" if opening == "[" else "}")
                continue
            kind, value = self.take()
            if value == "$":
                _, variable = self.take()
                resolved = self.variables.get(variable)
                value, kind = str(resolved), "number" if isinstance(resolved, int) else "other"
            if argument in {"first", "last"} and kind == "number":
                limit = float(value)
        self.take()  # )
        return limit

    def skip_directives(self) -> None:
        while self.peek() == "@":
            self.take()
            self.take()
            if self.peek() == "(":
                self.skip_balanced("(", ")")


def estimate_query_cost(document: str, variables: Mapping[str, Any] | None = None) -> float:
    """A conservative requested-cost estimate by Shopify's published rules.

    Scalars and enums cost 0, objects 1, a connection 2 plus `first`/`last` times one item (`nodes` or
    `edges { node }`), and a list field with `first` the same; fragments on different types are summed
    (Shopify takes the most expensive one), so the estimate errs high. Used only until Shopify reports
    the real `requestedQueryCost` for the query.
    """
    parser = _CostParser(document, variables or {})
    parser.parse_document()

    def selections_cost(selections: list[_Field | _Spread], depth: int = 0) -> float:
        if depth > 32:  # a fragment cycle: invalid GraphQL, Shopify would refuse it anyway
            return 0.0
        total = 0.0
        for selection in selections:
            if isinstance(selection, _Spread):
                children = parser.fragments.get(selection.fragment, []) if selection.fragment else selection.children
                total += selections_cost(children, depth + 1)
            elif selection.children and selection.limit is not None:
                total += 2 + selection.limit * item_cost(selection.children, depth + 1)
            elif selection.children:
                total += 1 + selections_cost(selection.children, depth + 1)
        return total

    def item_cost(children: list[_Field | _Spread], depth: int) -> float:
        cost = 0.0
        direct: list[_Field | _Spread] = []
        for child in children:
            if isinstance(child, _Field) and child.name == "nodes":
                cost += 1 + selections_cost(child.children, depth + 1)
            elif isinstance(child, _Field) and child.name == "edges":
                for grandchild in child.children:
                    if isinstance(grandchild, _Field) and grandchild.name == "node":
                        cost += 1 + selections_cost(grandchild.children, depth + 1)
            elif isinstance(child, _Field) and child.name == "pageInfo":
                continue  # part of the connection's own 2 points
            else:
                direct.append(child)
        if direct:  # a plain list with `first` (e.g. Order.fulfillments): its items are the objects
            cost += 1 + selections_cost(direct, depth + 1)
        return cost

    return sum(selections_cost(operation) for operation in parser.operations)
