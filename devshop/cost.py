"""Shopify's calculated query cost and the per-shop leaky bucket it is charged against."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values, get_directive_values
from graphql.type import GraphQLIncludeDirective, GraphQLSkipDirective

# Documented on shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: scalars and enums 0,
# objects 1, interfaces/unions the most expensive possible selection, connections sized by
# first/last; mutations 10. "2 + size x item" for connections matches observed responses
# (products(first:250){...} is requested at 252).
OBJECT_COST = 1
CONNECTION_BASE = 2
MUTATION_COST = 10
MAX_QUERY_COST = 1000
THROTTLE_DOCS = "https://shopify.dev/api/usage/rate-limits"

# Restore rate by plan (points/second), from the rate-limits page. Bucket = 20 x rate: the
# sizes seen in real throttleStatus payloads (2000/100, 4000/200, 20000/1000).
PLAN_RESTORE_RATES = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}
BUCKET_SECONDS = 20.0


def plan_bucket(plan: str) -> tuple[float, float]:
    rate = PLAN_RESTORE_RATES.get(plan, PLAN_RESTORE_RATES["standard"])
    return rate * BUCKET_SECONDS, rate


class LeakyBucket:
    """Points available for an app+shop pair, restoring continuously at `restore_rate`."""

    def __init__(self, maximum: float, restore_rate: float, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._level = self.maximum
        self._at = clock()

    def _refresh(self) -> None:
        now = self._clock()
        self._level = min(self.maximum, self._level + max(0.0, now - self._at) * self.restore_rate)
        self._at = now

    def try_take(self, points: float) -> bool:
        """Take `points` if available; a throttled request leaves the bucket untouched."""
        with self._lock:
            self._refresh()
            if points > self._level:
                return False
            self._level -= points
            return True

    def give_back(self, points: float) -> None:
        with self._lock:
            self._refresh()
            self._level = min(self.maximum, self._level + points)

    def configure(self, maximum: float, restore_rate: float) -> None:
        with self._lock:
            self.maximum = float(maximum)
            self.restore_rate = float(restore_rate)
            self._level = self.maximum
            self._at = self._clock()

    def available(self) -> float:
        with self._lock:
            self._refresh()
            return self._level

    def status(self) -> dict[str, Any]:
        # Shopify reports maximumAvailable/restoreRate as floats and currentlyAvailable as a
        # whole number (e.g. {"maximumAvailable":2000.0,"currentlyAvailable":1999,"restoreRate":100.0}).
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": int(math.floor(self.available())),
            "restoreRate": self.restore_rate,
        }


class CostCalculator:
    """Walks an operation with the schema: requested cost from arguments, actual from data."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: Any) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def operation(self, op: OperationDefinitionNode, data: dict[str, Any] | None = None,
                  actual: bool = False) -> int:
        root = self.schema.mutation_type if op.operation.value == "mutation" else self.schema.query_type
        assert root is not None
        in_mutation = op.operation.value == "mutation"
        total = 0
        for key, nodes in self._collect(root, op.selection_set).items():
            value = data.get(key) if (actual and isinstance(data, dict)) else None
            cost = self._field(root, nodes, value, actual, free_objects=in_mutation)
            if in_mutation:
                cost += MUTATION_COST
            total += cost
        return total

    # -- internals ---------------------------------------------------------------------

    def _collect(self, parent: GraphQLObjectType, selection_set: SelectionSetNode | None,
                 out: dict[str, list[FieldNode]] | None = None) -> dict[str, list[FieldNode]]:
        out = {} if out is None else out
        if selection_set is None:
            return out
        for sel in selection_set.selections:
            if not self._included(sel):
                continue
            if isinstance(sel, FieldNode):
                out.setdefault(sel.alias.value if sel.alias else sel.name.value, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                if sel.type_condition is None or self._applies(sel.type_condition.name.value, parent):
                    self._collect(parent, sel.selection_set, out)
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag and self._applies(frag.type_condition.name.value, parent):
                    self._collect(parent, frag.selection_set, out)
        return out

    def _applies(self, type_name: str, parent: GraphQLObjectType) -> bool:
        cond = self.schema.get_type(type_name)
        if cond is None:
            return False
        if cond is parent:
            return True
        return is_abstract_type(cond) and self.schema.is_sub_type(cond, parent)  # type: ignore[arg-type]

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)

    def _field(self, parent: GraphQLObjectType, nodes: list[FieldNode], value: Any, actual: bool,
               free_objects: bool = False) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 0
        field_def: GraphQLField | None = parent.fields.get(name)
        if field_def is None:
            return 0
        named = get_named_type(field_def.type)
        if is_leaf_type(named):
            return 0
        if named.name.endswith("Connection"):
            return self._connection(named, field_def, nodes, value, actual, free_objects)
        own = 0 if free_objects else OBJECT_COST
        if actual:
            if value is None or value == []:
                return 0
            items = value if isinstance(value, list) else [value]
            return own + max(self._children(named, nodes, item, True, free_objects) for item in items)
        return own + self._children(named, nodes, None, False, free_objects)

    def _children(self, named: Any, nodes: list[FieldNode], value: Any, actual: bool,
                  free_objects: bool) -> int:
        types = self.schema.get_possible_types(named) if is_abstract_type(named) else [named]
        best = 0
        for obj_type in types:
            merged: dict[str, list[FieldNode]] = {}
            for node in nodes:
                self._collect(obj_type, node.selection_set, merged)
            cost = 0
            for key, sub in merged.items():
                sub_value = value.get(key) if (actual and isinstance(value, dict)) else None
                cost += self._field(obj_type, sub, sub_value, actual, free_objects)
            best = max(best, cost)
        return best

    def _connection(self, conn_type: Any, field_def: GraphQLField, nodes: list[FieldNode], value: Any,
                    actual: bool, free_objects: bool) -> int:
        # edges{node}, nodes and pageInfo belong to the connection's own 2 points; each item
        # costs what its node selection costs.
        merged: dict[str, list[FieldNode]] = {}
        for node in nodes:
            self._collect(conn_type, node.selection_set, merged)
        item_type = get_named_type(conn_type.fields["nodes"].type)
        edge_type = get_named_type(conn_type.fields["edges"].type)
        if not actual:
            try:
                args = get_argument_values(field_def, nodes[0], self.variables)
            except Exception:  # invalid arguments are reported by execution, not here
                args = {}
            size = args.get("first") if args.get("first") is not None else args.get("last")
            size = size if isinstance(size, int) and size > 0 else 0
            per_item = 0
            for key, sub in merged.items():
                per_item += self._item_cost(key, sub, edge_type, item_type, None, False, free_objects)
            return CONNECTION_BASE + size * per_item
        if not isinstance(value, dict):
            return 0
        total = CONNECTION_BASE
        count = 0
        for key in merged:
            lst = value.get(key)
            if isinstance(lst, list):
                count = max(count, len(lst))
        for i in range(count):
            for key, sub in merged.items():
                lst = value.get(key)
                item = lst[i] if isinstance(lst, list) and i < len(lst) else None
                if item is not None:
                    total += self._item_cost(key, sub, edge_type, item_type, item, True, free_objects)
        return total

    def _item_cost(self, key: str, sub: list[FieldNode], edge_type: Any, item_type: Any, item: Any,
                   actual: bool, free_objects: bool) -> int:
        name = sub[0].name.value
        if name == "nodes":
            if actual and item is None:
                return 0
            return (0 if free_objects else OBJECT_COST) + self._children(item_type, sub, item, actual, free_objects)
        if name == "edges":
            edge_nodes: dict[str, list[FieldNode]] = {}
            for node in sub:
                self._collect(edge_type, node.selection_set, edge_nodes)
            cost = 0
            for ekey, esub in edge_nodes.items():
                if esub[0].name.value != "node":
                    continue
                node_value = item.get(ekey) if (actual and isinstance(item, dict)) else None
                if actual and node_value is None:
                    continue
                cost += (0 if free_objects else OBJECT_COST) + self._children(
                    item_type, esub, node_value, actual, free_objects)
            return cost
        return 0  # pageInfo, cursor, __typename

