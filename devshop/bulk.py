"""Bulk query operations: Shopify's checks on the inner query, a background export streamed to JSONL, its URL."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TextIO

from flask import Blueprint, Response, send_file
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_enum_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_directive_values
from graphql.type import GraphQLIncludeDirective, GraphQLSkipDirective

from devshop import errors
from devshop.catalogue import gid, iso
from devshop.faults import FaultInjector
from devshop.resolvers import Ctx, QueryRoot
from devshop.shops import Shop
from devshop.state import get_state

log = logging.getLogger("devshop.bulk")

FINISH_TOPIC = "bulk_operations/finish"
ID_BASE = 4_400_000_000_000  # BulkOperation ids look like Shopify's (13 digits)
ACTIVE = frozenset({"CREATED", "RUNNING", "CANCELING"})
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})
PAGE_SIZE = 250  # the exporter walks every connection through its own resolver, a page at a time
PAGING_ARGS = frozenset({"first", "last", "after", "before"})  # ignored inside a bulk query, as Shopify does
MAX_CONNECTIONS = 5
MAX_NESTING = 2  # nested connection levels below the top-level one
ROOTS = ("products", "collections", "orders")  # top-level connections devshop can export
DEFAULT_KEEP = 3  # finished operations per shop whose files are kept; older ones become EXPIRED
HISTORY = 50  # operations remembered per shop
WRITE_BUFFER = 1 << 20

# userError messages as Shopify words them (the in-progress and validation ones as captured from live stores).
IN_PROGRESS = "A bulk query operation for this app and shop is already in progress: {id}."
NO_CONNECTION = "Bulk queries must contain at least one connection."
TOP_LEVEL_NODE = "Bulk queries cannot contain a top level `{field}` field."
TOO_DEEP = f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_NESTING}."
TOO_MANY = f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
NODES_SELECTED = ("All connection fields in a bulk query must select their contents using 'edges' > 'node', e.g: "
                  "'products {{ edges {{ node {{'. Selecting via 'nodes' is not supported. Invalid connection "
                  "fields: {fields}.")
PARENT_WITHOUT_ID = ("The parent 'node' field for a nested connection must select the 'id' field without an alias "
                     "and must be of 'ID' return type. Connection fields without 'id': {fields}.")
CONNECTION_IN_LIST = "Queries that contain a connection field within a list field are not currently supported."
NOT_A_QUERY = "Invalid operation type. Only `query` operations are supported."
INVALID = "Invalid bulk query: {reason}"
# devshop's own limits (Shopify accepts more): one top-level field, and it must be a connection devshop serves.
SINGLE_ROOT = "devshop runs bulk queries with a single top level field."
UNSUPPORTED_ROOT = f"devshop runs bulk queries whose top level field is one of: {', '.join(ROOTS)}."
CANCEL_MISSING = "Bulk operation does not exist"
CANCEL_FINISHED = "A bulk operation cannot be canceled when it is {status}"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def user_error(message: str, field: list[str] | None = None, code: str | None = "INVALID") -> dict[str, Any]:
    return {"field": field, "message": message, "code": code}


# ---- the operation record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkSnapshot:
    """One consistent reading of an operation (what a GraphQL answer or the control API shows)."""

    number: int
    shop: str
    type: str
    status: str
    error_code: str | None
    created_at: datetime
    completed_at: datetime | None
    object_count: int
    root_object_count: int
    file_size: int | None
    url: str | None
    partial_data_url: str | None
    query: str


class BulkOperation:
    """One bulk query: its status and counters (updated by the exporting thread) and its JSONL file."""

    def __init__(self, number: int, shop: str, query: str, created_at: datetime, base_url: str, path: Path) -> None:
        self.number = number
        self.shop = shop
        self.query = query
        self.type = "QUERY"
        self.created_at = created_at
        self.base_url = base_url.rstrip("/")
        self.token = secrets.token_urlsafe(24)  # the download URL's only secret, like a signed storage URL
        self.path = path
        self.status = "CREATED"
        self.error_code: str | None = None
        self.completed_at: datetime | None = None
        self.object_count = 0
        self.root_object_count = 0
        self.file_size: int | None = None
        self.cancel_requested = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    @property
    def gid(self) -> str:
        return gid("BulkOperation", self.number)

    @property
    def download_path(self) -> str:
        return f"/_bulk/{self.token}.jsonl"

    def _file_url(self) -> str:
        return self.base_url + self.download_path

    def snapshot(self) -> BulkSnapshot:
        with self.lock:
            has_data = self.object_count > 0
            return BulkSnapshot(
                number=self.number, shop=self.shop, type=self.type, status=self.status, error_code=self.error_code,
                created_at=self.created_at, completed_at=self.completed_at, object_count=self.object_count,
                root_object_count=self.root_object_count, file_size=self.file_size,
                # No url when the query matched nothing (Shopify: "If the query produced no results, then the
                # url field will return null"); partial data only for a failure after some lines were written.
                url=self._file_url() if self.status == "COMPLETED" and has_data else None,
                partial_data_url=self._file_url() if self.status == "FAILED" and has_data else None,
                query=self.query,
            )

    def served(self) -> bool:
        snap = self.snapshot()
        return bool(snap.url or snap.partial_data_url)

    def webhook_payload(self) -> dict[str, Any]:
        """bulk_operations/finish: status and error_code lower-case, as Shopify sends them."""
        snap = self.snapshot()
        return {"admin_graphql_api_id": self.gid, "completed_at": iso(snap.completed_at),
                "created_at": iso(snap.created_at), "error_code": snap.error_code.lower() if snap.error_code else None,
                "status": snap.status.lower(), "type": snap.type.lower()}

    def describe(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {"id": self.gid, "shop": snap.shop, "type": snap.type, "status": snap.status,
                "error_code": snap.error_code, "created_at": iso(snap.created_at),
                "completed_at": iso(snap.completed_at), "object_count": snap.object_count,
                "root_object_count": snap.root_object_count, "file_size": snap.file_size, "url": snap.url,
                "partial_data_url": snap.partial_data_url, "query": snap.query}


# ---- checking the inner query ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkQuery:
    """A bulk query that passed the checks: its operation, fragments and top-level connection."""

    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    root: str


def collect(schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], parent: GraphQLObjectType,
            selection_set: SelectionSetNode | None, out: dict[str, list[FieldNode]]) -> dict[str, list[FieldNode]]:
    """The fields a selection set asks of an object type, by response key (fragments applied, @skip/@include)."""
    if selection_set is None:
        return out
    for sel in selection_set.selections:
        skip = get_directive_values(GraphQLSkipDirective, sel, {})
        include = get_directive_values(GraphQLIncludeDirective, sel, {})
        if (skip and skip.get("if") is True) or (include and include.get("if") is False):
            continue
        if isinstance(sel, FieldNode):
            out.setdefault(sel.alias.value if sel.alias else sel.name.value, []).append(sel)
        elif isinstance(sel, InlineFragmentNode):
            if sel.type_condition is None or _applies(schema, sel.type_condition.name.value, parent):
                collect(schema, fragments, parent, sel.selection_set, out)
        elif isinstance(sel, FragmentSpreadNode):
            frag = fragments.get(sel.name.value)
            if frag is not None and _applies(schema, frag.type_condition.name.value, parent):
                collect(schema, fragments, parent, frag.selection_set, out)
    return out


def _applies(schema: GraphQLSchema, type_name: str, parent: GraphQLObjectType) -> bool:
    cond = schema.get_type(type_name)
    if cond is parent:
        return True
    return cond is not None and is_abstract_type(cond) and schema.is_sub_type(cond, parent)  # type: ignore[arg-type]


def is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "edges" in named.fields


def concrete_types(schema: GraphQLSchema, named: GraphQLNamedType) -> list[GraphQLObjectType]:
    if isinstance(named, GraphQLObjectType):
        return [named]
    if is_abstract_type(named):
        return list(schema.get_possible_types(named))  # type: ignore[arg-type]
    return []


class _Analysis:
    """Walks a validated bulk query counting connections the way Shopify's bulk validator does."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.connections: dict[int, str] = {}
        self.deepest = -1
        self.nodes_selected: list[str] = []
        self.without_id: list[str] = []
        self.in_list = False

    def fields(self, parent: GraphQLObjectType, sets: Sequence[SelectionSetNode | None]) -> dict[str, list[FieldNode]]:
        out: dict[str, list[FieldNode]] = {}
        for selection_set in sets:
            collect(self.schema, self.fragments, parent, selection_set, out)
        return out

    def walk(self, types: list[GraphQLObjectType], sets: Sequence[SelectionSetNode | None], depth: int,
             in_list: bool) -> bool:
        """Returns whether a connection occurs below, short of another connection's items."""
        found = False
        for parent in types:
            for nodes in self.fields(parent, sets).values():
                field_def = parent.fields.get(nodes[0].name.value)
                if field_def is None:
                    continue
                named = get_named_type(field_def.type)
                child_sets = [n.selection_set for n in nodes]
                if is_connection(named):
                    found = True
                    self.connection(named, nodes, child_sets, depth, in_list)  # type: ignore[arg-type]
                elif not is_leaf_type(named):
                    found = self.walk(concrete_types(self.schema, named), child_sets, depth,
                                      in_list or _has_list(field_def.type)) or found
        return found

    def connection(self, conn: GraphQLObjectType, nodes: list[FieldNode], sets: list[SelectionSetNode | None],
                   depth: int, in_list: bool) -> None:
        name = nodes[0].name.value
        if id(nodes[0]) not in self.connections:
            self.connections[id(nodes[0])] = name
        self.deepest = max(self.deepest, depth)
        self.in_list = self.in_list or in_list
        own = self.fields(conn, sets)
        if any(n[0].name.value == "nodes" for n in own.values()) and name not in self.nodes_selected:
            self.nodes_selected.append(name)
        edge_type = get_named_type(conn.fields["edges"].type)
        assert isinstance(edge_type, GraphQLObjectType)
        edge_sets = [n.selection_set for key_nodes in own.values() for n in key_nodes if n.name.value == "edges"]
        node_sets = [n.selection_set for key_nodes in self.fields(edge_type, edge_sets).values() for n in key_nodes
                     if n.name.value == "node"]
        item_types = concrete_types(self.schema, get_named_type(edge_type.fields["node"].type))
        if self.walk(item_types, node_sets, depth + 1, False) and not self.plain_id(item_types, node_sets):
            if name not in self.without_id:
                self.without_id.append(name)

    def plain_id(self, types: list[GraphQLObjectType], sets: list[SelectionSetNode | None]) -> bool:
        for parent in types:
            found = self.fields(parent, sets).get("id")
            if not found or found[0].name.value != "id" or found[0].alias is not None:
                return False
        return True


def _has_list(gql_type: Any) -> bool:
    while is_non_null_type(gql_type):
        gql_type = gql_type.of_type
    return is_list_type(gql_type)


def check_query(source: str, schema: GraphQLSchema) -> tuple[list[dict[str, Any]], BulkQuery | None]:
    """The userErrors bulkOperationRunQuery answers for this inner query, or none and the parsed query."""
    try:
        document = parse(source)
    except GraphQLSyntaxError as err:
        reason = errors.syntax_error(err, source)["message"]
        if reason == "Unexpected end of document":
            reason = "syntax error, unexpected end of file"  # the bulk validator's own wording for this one
        return [user_error(INVALID.format(reason=reason), ["query"])], None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if any(op.operation != OperationType.QUERY for op in operations):
        return [user_error(NOT_A_QUERY, ["query"])], None
    if len(operations) != 1:
        reason = "no operation" if not operations else "more than one operation"
        return [user_error(INVALID.format(reason=reason), ["query"])], None
    problems = validate(schema, document)
    if problems:
        index = errors.DocumentIndex(document)
        return [user_error(INVALID.format(reason=errors.validation_error(problems[0], index)["message"]),
                           ["query"])], None
    operation = operations[0]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    query_type = schema.query_type
    assert query_type is not None
    analysis = _Analysis(schema, fragments)
    top = {k: v for k, v in analysis.fields(query_type, [operation.selection_set]).items()
           if v[0].name.value != "__typename"}
    found: list[dict[str, Any]] = []
    for nodes in top.values():
        if nodes[0].name.value in ("node", "nodes"):
            found.append(user_error(TOP_LEVEL_NODE.format(field=nodes[0].name.value), ["query"]))
    analysis.walk([query_type], [operation.selection_set], 0, False)
    if analysis.nodes_selected:
        fields = ", ".join(f"'{name}'" for name in analysis.nodes_selected)
        found.append(user_error(NODES_SELECTED.format(fields=fields), ["query"]))
    if analysis.deepest > MAX_NESTING:
        found.append(user_error(TOO_DEEP, ["query"]))
    if len(analysis.connections) > MAX_CONNECTIONS:
        found.append(user_error(TOO_MANY, ["query"]))
    if analysis.without_id:
        found.append(user_error(PARENT_WITHOUT_ID.format(fields=", ".join(analysis.without_id)), ["query"]))
    if analysis.in_list:
        found.append(user_error(CONNECTION_IN_LIST, ["query"]))
    if not analysis.connections:
        found.append(user_error(NO_CONNECTION, ["query"]))
    if found:
        return found, None
    if len(top) != 1:
        return [user_error(SINGLE_ROOT, ["query"])], None
    root = next(iter(top.values()))[0].name.value
    if root not in ROOTS:
        return [user_error(UNSUPPORTED_ROOT, ["query"])], None
    return [], BulkQuery(operation, fragments, root)


# ---- running it ------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Ends an export early."""


class _Canceled(_Stop):
    pass


class _Denied(_Stop):
    pass


class _Injected(_Stop):
    pass


@dataclass
class FieldPlan:
    """How to answer one response key of one object type: a value to complete, or a connection to walk."""

    key: str
    name: str
    info: Any = None
    args: dict[str, Any] = field(default_factory=dict)
    complete: Callable[[Any, list[tuple[Any, FieldPlan]]], Any] | None = None
    typename: str | None = None  # __typename: answered from the plan
    item_type: GraphQLNamedType | None = None  # connections: what edges.node is
    item_sets: tuple[SelectionSetNode, ...] = ()  # connections: the node selections
    item_plans: dict[str, list[FieldPlan]] = field(default_factory=dict)  # connections: by item type, when met

    @property
    def is_connection(self) -> bool:
        return self.item_type is not None


def _no_emit(topic: str, data: dict[str, Any]) -> None:
    """A bulk export fires no webhooks of its own."""


class Export:
    """Runs a checked bulk query over one shop with devshop's own resolvers, one JSONL line per object.

    Every connection is walked through its resolver a page at a time (list-backed ones answer at once), so
    `query:`, `sortKey:` and `reverse:` mean what they mean in an ordinary request; `first`/`last` are ignored.
    An object's line holds its selected fields except connections; each item of a nested connection is its own
    line, written after its parent's line (and before the parent's next sibling), with `__parentId` (the parent
    line's `id`) as its last key."""

    def __init__(self, op: BulkOperation, shop: Shop, scopes: frozenset[str], schema: GraphQLSchema,
                 query: BulkQuery, delay: Callable[[], float], fail_after: int | None) -> None:
        self.op = op
        self.schema = schema
        self.query = query
        self.ctx = Ctx(shop=shop, scopes=scopes, pagination_limit=None, emit=_no_emit, unbounded=True,
                       catalogue_view=shop.catalogue.streaming())
        self.delay = delay
        self.fail_after = fail_after
        self.owed = 0.0
        self.plans: dict[tuple[str, tuple[int, ...]], list[FieldPlan]] = {}
        self.encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
        self.out: TextIO | None = None

    # -- the thread ---------------------------------------------------------------------------------------

    def run(self, finished: Callable[[BulkOperation], None]) -> None:
        op = self.op
        status, code = "COMPLETED", None
        try:
            with op.lock:
                if op.cancel_requested.is_set():
                    raise _Canceled()
                op.status = "RUNNING"
            with open(op.path, "w", encoding="utf-8", buffering=WRITE_BUFFER) as self.out:
                self.export()
                if self.fail_after is not None:  # fewer roots than the fault waited for: fail at the end
                    raise _Injected()
        except _Canceled:
            status = "CANCELED"
        except _Denied:
            status, code = "FAILED", "ACCESS_DENIED"
        except _Injected:
            status, code = "FAILED", "INTERNAL_SERVER_ERROR"
        except Exception:
            log.exception("bulk operation %s on %s failed", op.gid, op.shop)
            status, code = "FAILED", "INTERNAL_SERVER_ERROR"
        finally:
            self.out = None
        size = op.path.stat().st_size if op.path.exists() else None
        if status == "CANCELED" or not op.object_count:
            op.path.unlink(missing_ok=True)
        with op.lock:
            op.status, op.error_code, op.completed_at = status, code, now_utc()
            op.file_size = size if status == "COMPLETED" and op.object_count else None
        log.info("bulk operation %s on %s: %s (%d objects, %d roots)", op.gid, op.shop, status, op.object_count,
                 op.root_object_count)
        finished(op)

    def export(self) -> None:
        query_type = self.schema.query_type
        assert query_type is not None
        self.check_fault()
        for plan in self.plan(query_type, (self.query.operation.selection_set,)):
            if plan.is_connection:
                self.connection(QueryRoot(self.ctx), plan, None)

    # -- walking ------------------------------------------------------------------------------------------

    def connection(self, parent: Any, plan: FieldPlan, parent_id: Any) -> None:
        after: str | None = None
        while True:
            args = {**plan.args, "first": PAGE_SIZE}
            if after:
                args["after"] = after
            conn = self.resolve(parent, plan, args)
            if not conn:
                return
            for node in conn["nodes"]:
                self.item(node, plan, parent_id)
            self.ctx.search.clear()  # search extensions are per request; an export makes thousands
            page_info = conn["pageInfo"]
            if not page_info["hasNextPage"] or not page_info["endCursor"]:
                return
            after = page_info["endCursor"]

    def item(self, node: Any, plan: FieldPlan, parent_id: Any) -> None:
        assert plan.item_type is not None
        obj_type = plan.item_type if isinstance(plan.item_type, GraphQLObjectType) else self.runtime_type(node)
        item_plans = plan.item_plans.get(obj_type.name)
        if item_plans is None:
            item_plans = plan.item_plans[obj_type.name] = self.plan(obj_type, plan.item_sets)
        children: list[tuple[Any, FieldPlan]] = []
        line = self.object_value(node, item_plans, children)
        if parent_id is not None:
            line["__parentId"] = parent_id
        self.write(line, root=parent_id is None)
        if children:
            own_id = line.get("id")
            for obj, child in children:
                self.connection(obj, child, own_id)
        if parent_id is None:
            self.check_fault()

    def object_value(self, value: Any, plans: list[FieldPlan], sink: list[tuple[Any, FieldPlan]]) -> dict[str, Any]:
        """One object's selected fields; connections found on the way go to `sink` (they become lines)."""
        out: dict[str, Any] = {}
        is_dict = isinstance(value, dict)
        for plan in plans:
            complete = plan.complete
            if complete is None:
                if plan.typename is not None:
                    out[plan.key] = plan.typename
                else:  # a connection: its items become lines of their own
                    sink.append((value, plan))
                continue
            # graphql-core's default resolver, inlined (this loop is the exporter's hot path)
            try:
                resolved = value.get(plan.name) if is_dict else getattr(value, plan.name, None)
                if callable(resolved):
                    resolved = resolved(plan.info, **plan.args)
            except GraphQLError as err:
                resolved = self.field_error(err)
            out[plan.key] = complete(resolved, sink)
        return out

    @staticmethod
    def field_error(err: GraphQLError) -> None:
        if (err.extensions or {}).get("code") == "ACCESS_DENIED":
            raise _Denied(err.message) from err
        return None  # a field error: null, as in an ordinary response

    def resolve(self, obj: Any, plan: FieldPlan, args: dict[str, Any]) -> Any:
        """graphql-core's default resolver: a dict key or attribute, called with (info, **args) if callable."""
        try:
            value = obj.get(plan.name) if isinstance(obj, dict) else getattr(obj, plan.name, None)
            if callable(value):
                value = value(plan.info, **args)
        except GraphQLError as err:
            return self.field_error(err)
        return value

    def runtime_type(self, value: Any) -> GraphQLObjectType:
        if isinstance(value, dict):
            name = value.get("__typename")
        else:  # resolver classes declare `__typename`, which Python name-mangles
            name = getattr(value, f"_{type(value).__name__}__typename", None)
        found = self.schema.get_type(name) if isinstance(name, str) else None
        if not isinstance(found, GraphQLObjectType):
            raise TypeError(f"cannot tell the GraphQL type of {type(value).__name__}")
        return found

    # -- planning -----------------------------------------------------------------------------------------

    def plan(self, obj_type: GraphQLObjectType, sets: tuple[SelectionSetNode, ...]) -> list[FieldPlan]:
        key = (obj_type.name, tuple(map(id, sets)))
        cached = self.plans.get(key)
        if cached is not None:
            return cached
        fields: dict[str, list[FieldNode]] = {}
        for selection_set in sets:
            collect(self.schema, self.query.fragments, obj_type, selection_set, fields)
        plans = []
        for out_key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                plans.append(FieldPlan(out_key, name, typename=obj_type.name))
                continue
            field_def = obj_type.fields[name]
            args = get_argument_values(field_def, nodes[0], {})
            info = SimpleNamespace(field_name=name, field_nodes=nodes, return_type=field_def.type,
                                   parent_type=obj_type, schema=self.schema, variable_values={})
            named = get_named_type(field_def.type)
            sub_sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
            if is_connection(named):
                assert isinstance(named, GraphQLObjectType)
                item_type, item_sets = self.connection_items(named, sub_sets)
                plans.append(FieldPlan(out_key, name, info, {k: v for k, v in args.items() if k not in PAGING_ARGS},
                                       item_type=item_type, item_sets=item_sets))
            else:
                plans.append(FieldPlan(out_key, name, info, args, complete=self.completer(field_def.type, sub_sets)))
        self.plans[key] = plans
        return plans

    def connection_items(self, conn: GraphQLObjectType, sets: tuple[SelectionSetNode, ...]
                         ) -> tuple[GraphQLNamedType, tuple[SelectionSetNode, ...]]:
        edge_type = get_named_type(conn.fields["edges"].type)
        assert isinstance(edge_type, GraphQLObjectType)
        own: dict[str, list[FieldNode]] = {}
        for selection_set in sets:
            collect(self.schema, self.query.fragments, conn, selection_set, own)
        edges: dict[str, list[FieldNode]] = {}
        for key_nodes in own.values():
            for n in key_nodes:
                if n.name.value == "edges":
                    collect(self.schema, self.query.fragments, edge_type, n.selection_set, edges)
        item_sets = tuple(n.selection_set for key_nodes in edges.values() for n in key_nodes
                          if n.name.value == "node" and n.selection_set is not None)
        return get_named_type(edge_type.fields["node"].type), item_sets

    def completer(self, gql_type: Any, sets: tuple[SelectionSetNode, ...]
                  ) -> Callable[[Any, list[tuple[Any, FieldPlan]]], Any]:
        """Turns a resolved value into JSON the way graphql-core completes it (compiled once per field)."""
        if is_non_null_type(gql_type):
            return self.completer(gql_type.of_type, sets)
        if is_list_type(gql_type):
            inner = self.completer(gql_type.of_type, sets)

            def complete_list(value: Any, sink: list[tuple[Any, FieldPlan]]) -> Any:
                return None if value is None else [inner(v, sink) for v in value]
            return complete_list
        if is_leaf_type(gql_type):
            serialize = gql_type.serialize
            # Values already in their output form skip serialize(): what it would return them unchanged.
            native = NATIVE.get(gql_type.name, str if is_enum_type(gql_type) else None)
            if native is None:  # a custom scalar: devshop's resolvers return its JSON form (serialize is identity)
                return _as_is

            def complete_leaf(value: Any, sink: list[tuple[Any, FieldPlan]]) -> Any:
                if value is None or type(value) is native:
                    return value
                return serialize(value)
            return complete_leaf
        by_type: dict[str, list[FieldPlan]] = {}  # planned on first use (plans may nest recursively)

        def plans_for(obj_type: GraphQLObjectType) -> list[FieldPlan]:
            found = by_type.get(obj_type.name)
            if found is None:
                found = by_type[obj_type.name] = self.plan(obj_type, sets)
            return found

        if is_object_type(gql_type):
            def complete_object(value: Any, sink: list[tuple[Any, FieldPlan]]) -> Any:
                return None if value is None else self.object_value(value, plans_for(gql_type), sink)
            return complete_object

        def complete_abstract(value: Any, sink: list[tuple[Any, FieldPlan]]) -> Any:
            return None if value is None else self.object_value(value, plans_for(self.runtime_type(value)), sink)
        return complete_abstract

    # -- output -------------------------------------------------------------------------------------------

    def write(self, line: dict[str, Any], root: bool) -> None:
        assert self.out is not None
        self.out.write(self.encode(line) + "\n")
        op = self.op
        op.object_count += 1
        if root:
            op.root_object_count += 1
        if op.cancel_requested.is_set():
            raise _Canceled()
        delay = self.delay()
        if delay > 0:  # BULK_DELAY seconds per 1,000 objects, slept in slices so cancel stays prompt
            self.owed += delay / 1000
            if self.owed >= 0.02:
                if op.cancel_requested.wait(self.owed):
                    raise _Canceled()
                self.owed = 0.0

    def check_fault(self) -> None:
        if self.fail_after is not None and self.op.root_object_count >= self.fail_after:
            raise _Injected()


NATIVE: dict[str, type] = {"String": str, "ID": str, "Int": int, "Float": float, "Boolean": bool}


def _as_is(value: Any, sink: list[tuple[Any, FieldPlan]]) -> Any:
    return value


def root_size(shop: Shop, root: str) -> int:
    """How many objects a top-level connection holds before any filter (for a fault that fails 'midway')."""
    if root == "orders":
        return shop.orders.count
    if root == "collections":
        return len(shop.catalogue.collections)
    return shop.catalogue.live_count()


# ---- the registry --------------------------------------------------------------------------------------


class BulkOperations:
    """Every bulk operation of one devshop, by shop; at most one query runs per shop at a time."""

    def __init__(self, faults: FaultInjector, on_finish: Callable[[BulkOperation], None], *, delay: float = 0.0,
                 directory: str | Path | None = None, keep: int = DEFAULT_KEEP) -> None:
        if delay < 0 or keep < 1:
            raise ValueError("BULK_DELAY must be >= 0 and BULK_KEEP >= 1")
        self.faults = faults
        self.on_finish = on_finish
        self.delay = float(delay)
        self.keep = int(keep)
        self._configured_dir = Path(directory) if directory else None
        self._dir: Path | None = None
        self._ops: dict[str, list[BulkOperation]] = {}
        self._by_token: dict[str, BulkOperation] = {}
        self._numbers = itertools.count(ID_BASE + 1)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def directory(self) -> Path:
        """Where result files go: BULK_DIR, or a temporary directory removed with this registry."""
        with self._lock:
            if self._dir is None:
                if self._configured_dir is not None:
                    self._configured_dir.mkdir(parents=True, exist_ok=True)
                    self._dir = self._configured_dir
                else:
                    self._dir = Path(tempfile.mkdtemp(prefix="devshop-bulk-"))
                    weakref.finalize(self, shutil.rmtree, str(self._dir), True)
            return self._dir

    def settings(self) -> dict[str, Any]:
        return {"delay": self.delay, "keep": self.keep, "directory": str(self._dir or self._configured_dir or "")}

    # -- GraphQL ------------------------------------------------------------------------------------------

    def run_query(self, ctx: Ctx, query: str, schema: GraphQLSchema) -> tuple[BulkSnapshot | None,
                                                                           list[dict[str, Any]]]:
        """Start an export; answers the operation as created (status CREATED) or the userErrors."""
        problems, checked = check_query(query, schema)
        if checked is None:
            return None, problems
        shop = ctx.shop
        directory = self.directory
        with self._lock:
            ops = self._ops.setdefault(shop.domain, [])
            running = next((o for o in reversed(ops) if o.type == "QUERY" and o.status in ACTIVE), None)
            if running is not None:
                return None, [user_error(IN_PROGRESS.format(id=running.gid), None, "OPERATION_IN_PROGRESS")]
            number = next(self._numbers)
            op = BulkOperation(number, shop.domain, query, ctx.now(), ctx.base_url, directory / f"{number}.jsonl")
            ops.append(op)
            self._by_token[op.token] = op
            self._trim(ops)
        fault = self.faults.take(shop.domain, bulk=True)
        fail_after = None
        if fault is not None:
            fail_after = fault.after if fault.after is not None else max(1, root_size(shop, checked.root) // 2)
        export = Export(op, shop, ctx.scopes, schema, checked, lambda: self.delay, fail_after)
        created = op.snapshot()
        op.thread = threading.Thread(target=export.run, args=(self._finished,), name=f"devshop-bulk-{number}",
                                     daemon=True)
        op.thread.start()
        return created, []

    def get(self, shop: str, number: int) -> BulkOperation | None:
        with self._lock:
            return next((o for o in self._ops.get(shop, ()) if o.number == number), None)

    def current(self, shop: str, op_type: str = "QUERY") -> BulkOperation | None:
        """The shop's most recent operation of that type, whatever its status (currentBulkOperation)."""
        with self._lock:
            return next((o for o in reversed(self._ops.get(shop, ())) if o.type == op_type), None)

    def cancel(self, shop: str, number: int | None) -> tuple[BulkSnapshot | None, list[dict[str, Any]]]:
        """Start canceling: the operation answers CANCELING, then CANCELED once its thread has stopped."""
        op = self.get(shop, number) if number is not None else None
        if op is None:
            return None, [user_error(CANCEL_MISSING, ["id"], None)]
        with op.lock:
            status = op.status
            if status not in TERMINAL:
                op.status = "CANCELING"  # the exporting thread notices at its next line and stops
                op.cancel_requested.set()
        if status in TERMINAL:
            return op.snapshot(), [user_error(CANCEL_FINISHED.format(status=status.lower()), None, None)]
        return op.snapshot(), []

    # -- devshop ------------------------------------------------------------------------------------------

    def by_token(self, token: str) -> BulkOperation | None:
        """The operation whose result file this download token names, while the file is served."""
        with self._lock:
            op = self._by_token.get(token)
        return op if op is not None and op.served() else None

    def list(self, shop: str) -> list[dict[str, Any]]:
        with self._lock:
            ops = list(self._ops.get(shop, ()))
        return [o.describe() for o in ops]

    def forget(self, shop: str) -> None:
        """A shop was reset: stop its running export and drop its operations and files."""
        with self._lock:
            ops = self._ops.pop(shop, [])
            for op in ops:
                self._by_token.pop(op.token, None)
        for op in ops:
            op.cancel_requested.set()
            if op.thread is None or not op.thread.is_alive():
                op.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop every export and remove the result files (the server is stopping)."""
        with self._lock:
            self._closed = True
            ops = [op for shop_ops in self._ops.values() for op in shop_ops]
        for op in ops:
            op.cancel_requested.set()
        for op in ops:
            if op.thread is not None and op.thread is not threading.current_thread():
                op.thread.join(timeout=10)
        for op in ops:
            op.path.unlink(missing_ok=True)
        if self._dir is not None and self._configured_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _finished(self, op: BulkOperation) -> None:
        with self._lock:
            ops = self._ops.get(op.shop, [])
            known = op in ops and not self._closed
            served = [o for o in ops if o.status in ("COMPLETED", "FAILED") and o.object_count]
            expired = served[:-self.keep] if len(served) > self.keep else []
        if not known:  # forgotten (shop reset) or shutting down: nobody is waiting for it
            op.path.unlink(missing_ok=True)
            return
        for old in expired:
            with old.lock:
                old.status = "EXPIRED"
            old.path.unlink(missing_ok=True)
        try:
            self.on_finish(op)
        except Exception:
            log.exception("bulk_operations/finish for %s failed", op.gid)

    def _trim(self, ops: list[BulkOperation]) -> None:
        """Forget the oldest finished operations beyond HISTORY (caller holds the lock)."""
        while len(ops) > HISTORY:
            old = next((o for o in ops if o.status in TERMINAL), None)
            if old is None:
                return
            ops.remove(old)
            self._by_token.pop(old.token, None)
            old.path.unlink(missing_ok=True)


# ---- the download --------------------------------------------------------------------------------------

bp = Blueprint("devshop_bulk", __name__)


@bp.get("/_bulk/<token>.jsonl")
def download(token: str) -> Response:
    """A result file, streamed from disk. No auth: the URL's random token is the secret, as with Shopify's
    signed storage URLs."""
    state = get_state()
    op = state.bulk.by_token(token)
    if op is None:
        return state.json({"errors": "Not Found"}, 404)
    try:
        return send_file(op.path, mimetype="application/jsonl", download_name=f"bulk-{op.number}.jsonl",
                         conditional=True, max_age=0)
    except OSError:  # expired between the lookup and the open
        return state.json({"errors": "Not Found"}, 404)
