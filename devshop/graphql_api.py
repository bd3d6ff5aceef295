"""The Admin GraphQL endpoint: auth, faults, validation, cost and throttling, execution, Shopify error shapes."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request
from graphql import (
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    build_schema,
    execute,
    get_operation_ast,
    parse,
    print_ast,
    validate,
)
from graphql.execution.values import get_variable_values

from devshop import errors
from devshop.cost import MAX_QUERY_COST, THROTTLE_DOCS, CostCalculator
from devshop.resolvers import Ctx, MutationRoot, QueryRoot
from devshop.shops import Shop
from devshop.state import get_state
from shopify.version import API_VERSION

log = logging.getLogger("devshop.graphql")
SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
VERSION = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MAX_COST_MESSAGE = (
    "Query cost is {cost}, which exceeds the single query max cost limit ({limit}).\n\n"
    "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
    "cost of a query is calculated.\n\n"
    "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
    "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
)
INTERNAL_ERROR = ("Internal error. Looks like something went wrong on our end.\n"
                  "Request ID: {request_id} (include this in support requests).")

bp = Blueprint("devshop_graphql", __name__)


@cache
def schema() -> GraphQLSchema:
    return build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))


def supported_version(version: str) -> bool:
    return version in (API_VERSION, "unstable") or bool(VERSION.match(version))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json",
                    headers=headers)


@bp.post("/shops/<shop_domain>/admin/api/<version>/graphql.json")
def graphql_endpoint(shop_domain: str, version: str) -> Response:
    state = get_state()
    shop = state.shops.get(shop_domain)
    if shop is None or not supported_version(version):
        return json_response({"errors": "Not Found"}, 404)
    shop.stats.add(graphql_requests=1)
    fault = state.faults.take(shop.domain)
    if fault is not None:
        shop.stats.add(faults_served=1)
        if fault.kind == "timeout":
            time.sleep(fault.seconds)  # hold the request, then answer normally
        elif fault.kind == "drop":
            return drop_connection()
        else:
            return json_response({"errors": fault.message}, fault.status)
    token = state.tokens.authenticate(shop.domain, request.headers.get("X-Shopify-Access-Token", ""))
    if token is None:
        return json_response({"errors": INVALID_TOKEN}, 401)
    body = read_body()
    if body is None or not isinstance(body.get("query"), str) or not body["query"].strip():
        return json_response({"errors": {"query": "Required parameter missing or invalid"}}, 400)
    variables = body.get("variables")
    if isinstance(variables, str):
        try:
            variables = json.loads(variables) if variables.strip() else None
        except ValueError:
            variables = []
    if variables is not None and not isinstance(variables, dict):
        return json_response({"errors": {"variables": "Required parameter missing or invalid"}}, 400)
    ctx = Ctx(shop=shop, scopes=token.scopes, pagination_limit=state.pagination_limit,
              emit=lambda topic, data: state.webhooks.emit_later(shop, topic, data), bulk=state.bulk,
              base_url=request.host_url.rstrip("/"))
    payload = run(shop, ctx, body["query"], variables or {}, body.get("operationName") or None)
    return json_response(payload, 200, headers={"X-Shopify-API-Version": version,
                                                "X-Request-Id": str(uuid.uuid4())})


def read_body() -> dict[str, Any] | None:
    if request.mimetype == "application/graphql":
        return {"query": request.get_data(as_text=True)}
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def drop_connection() -> Response:
    """Close the socket without any HTTP response (werkzeug's dev server exposes it)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # Nothing reaches the client; werkzeug swallows the broken pipe when it writes this.
    return Response(b"", status=500)


def cost_block(shop: Shop, requested: int, actual: int | None) -> dict[str, Any]:
    return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": shop.bucket.status()}


def run(shop: Shop, ctx: Ctx, source: str, variables: dict[str, Any], operation_name: str | None
        ) -> dict[str, Any]:
    """One GraphQL request, answered the way Shopify answers it (always HTTP 200 from here)."""
    gql_schema = schema()
    try:
        document = parse(source)
    except GraphQLSyntaxError as err:
        return {"errors": [errors.syntax_error(err, source)], "extensions": {"cost": cost_block(shop, 0, 0)}}
    problems = validate(gql_schema, document)
    if problems:
        index = errors.DocumentIndex(document)
        return {"errors": [errors.validation_error(e, index) for e in problems],
                "extensions": {"cost": cost_block(shop, 0, 0)}}
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        message = (f'No operation named "{operation_name}"' if operation_name
                   else "An operation name is required when sending multiple operations.")
        return {"errors": [{"message": message}], "extensions": {"cost": cost_block(shop, 0, 0)}}
    coerced = get_variable_values(gql_schema, operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        types = {d.variable.name.value: print_ast(d.type) for d in operation.variable_definitions or ()}
        return {"errors": [errors.variable_error(e.message, types, variables) for e in coerced],
                "extensions": {"cost": cost_block(shop, 0, 0)}}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    calculator = CostCalculator(gql_schema, fragments, coerced)
    requested = calculator.operation(operation)
    if requested > MAX_QUERY_COST:
        return {
            "errors": [{
                "message": MAX_COST_MESSAGE.format(cost=requested, limit=MAX_QUERY_COST),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST,
                               "documentation": THROTTLE_DOCS},
            }],
            "extensions": {"cost": cost_block(shop, requested, None)},
        }
    if not shop.bucket.try_take(requested):
        shop.stats.add(throttled=1)
        return {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": THROTTLE_DOCS}}],
            "extensions": {"cost": cost_block(shop, requested, None)},
        }
    shop.stats.add(requested_cost_total=requested)
    root = MutationRoot(ctx) if operation.operation.value == "mutation" else QueryRoot(ctx)
    result = execute(gql_schema, document, root_value=root, context_value=ctx, variable_values=variables,
                     operation_name=operation_name)
    assert isinstance(result, ExecutionResult)  # resolvers are synchronous
    actual = calculator.operation(operation, result.data, actual=True)
    if actual < requested:
        shop.bucket.give_back(requested - actual)  # the refund Shopify makes after execution
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [_execution_error(e) for e in result.errors]
    body["data"] = result.data
    extensions: dict[str, Any] = {"cost": cost_block(shop, requested, actual)}
    if ctx.search:
        extensions["search"] = ctx.search
    body["extensions"] = extensions
    return body


def _execution_error(err: GraphQLError) -> dict[str, Any]:
    original = err.original_error
    if original is not None and not isinstance(original, GraphQLError):
        request_id = str(uuid.uuid4())
        log.error("resolver failed (request %s)", request_id, exc_info=original)
        shaped = errors.execution_error(err)
        shaped["message"] = INTERNAL_ERROR.format(request_id=request_id)
        shaped["extensions"] = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        return shaped
    return errors.execution_error(err)

