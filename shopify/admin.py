"""Shopify Admin GraphQL client: read-only, cost-aware pacing, retries, errors mapped to shopify.errors."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from shopify.errors import (
    ShopifyAuthError,
    ShopifyError,
    ShopifyGraphQLError,
    ShopifyNotFound,
    ShopifyQueryCostError,
    ShopifyThrottled,
    ShopifyUnavailable,
)
from shopify.queries import BULK_RUN, BULK_STATUS
from shopify.throttle import (
    SINGLE_QUERY_MAX_COST,
    ThrottleState,
    estimate_query_cost,
    graphql_tokens,
    operation_types,
)
from shopify.version import API_VERSION

log = logging.getLogger(__name__)

ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"
USER_AGENT = "Lumi/0.1 (Shopify app; Admin GraphQL client)"
CONNECT_TIMEOUT = 5.0  # seconds; the read timeout is the client's `timeout`
MAX_BACKOFF = 30.0  # seconds; cap for one retry wait (exponential backoff, Retry-After)
MIN_THROTTLE_WAIT = 0.05  # seconds; when Shopify says THROTTLED but its numbers say we could go now
_NEGLIGIBLE_WAIT = 0.001  # pacing waits shorter than this are not worth a sleep call

# Failures where the request may not have reached Shopify or the answer was lost: safe to retry,
# because the client only ever sends queries (see the mutation guard in `execute`).
_TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,  # includes ConnectTimeout and dropped connections (RemoteDisconnected)
    requests.Timeout,  # ReadTimeout
    requests.exceptions.ChunkedEncodingError,  # connection dropped mid-body
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class CallInfo:
    """What the last `execute` call took: for logs, metrics and tests."""

    operation: str | None
    retries: int
    throttle_waits: int
    duration: float
    requested_cost: float | None
    actual_cost: float | None


class AdminClient:
    """One shop's Admin GraphQL API, read-only.

    Paces itself by the cost bucket Shopify reports on every response, so it is rarely throttled; waits
    out THROTTLED answers; retries 5xx, timeouts and dropped connections with jittered exponential
    backoff; maps every failure to `shopify.errors`. Keep one per shop and process; threads may share
    it (pacing state is locked; `last_cost`/`last_call` describe the latest call of any thread).

    `access_token` is the token or a callable returning it (read before every request). On 401/403,
    `on_unauthorized` (if given) is called once for a new token, which then replaces `access_token`.
    """

    def __init__(
        self,
        shop: str,
        access_token: str | Callable[[], str],
        *,
        base_url: str = "https://{shop}",
        api_version: str = API_VERSION,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_throttle_waits: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_unauthorized: Callable[[], str] | None = None,
    ) -> None:
        self.shop = shop
        self.api_version = api_version
        self.url = base_url.format(shop=shop).rstrip("/") + f"/admin/api/{api_version}/graphql.json"
        self._access_token = access_token
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_throttle_waits = max_throttle_waits
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._on_unauthorized = on_unauthorized
        self._random = random.Random()
        self._lock = threading.Lock()
        # Pacing state lives in this instance (one process). A later issue can share it across web and
        # worker processes by keeping ThrottleState and the learned costs in Redis under the shop's key.
        self._state: ThrottleState | None = None
        self._learned_costs: dict[tuple[str, tuple[tuple[str, int], ...]], float] = {}
        self._last_cost: dict[str, Any] | None = None
        self._last_call: CallInfo | None = None

    # --- public state ---

    @property
    def throttle(self) -> ThrottleState | None:
        """The bucket as last reported by Shopify (None before the first response)."""
        with self._lock:
            return self._state

    @property
    def last_cost(self) -> dict[str, Any] | None:
        """`extensions.cost` of the last response that had one."""
        with self._lock:
            return self._last_cost

    @property
    def last_call(self) -> CallInfo | None:
        """Retries, throttle waits, duration and cost of the last `execute` call."""
        with self._lock:
            return self._last_call

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- queries ---

    def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        expected_cost: float | None = None,
    ) -> dict[str, Any]:
        """Run one GraphQL query and return its `data`.

        Refuses mutations and subscriptions with ValueError before any request: Lumi's Shopify access is
        read-only, and that is also what makes retrying every request safe. Variables are sent to Shopify
        and nowhere else (never logged, never put in an error message).
        """
        operation = _check_read_only(query)
        sent_variables: dict[str, Any] = dict(variables or {})
        payload = {"query": query, "variables": sent_variables}
        key = _cost_key(query, sent_variables)
        started = self._clock()
        retries = 0
        throttle_waits = 0
        refreshed_token = False
        outcome = "error"
        call_cost: dict[str, Any] = {}
        try:
            while True:
                self._pace(self._expected_cost(key, query, sent_variables, expected_cost))
                try:
                    response = self._post(payload)
                except _TRANSIENT_ERRORS as err:
                    retries = self._retry_or_raise(retries, type(err).__name__, None, err, None)
                    continue
                except requests.RequestException as err:
                    raise ShopifyError(
                        f"request to Shopify for {self.shop} failed: {type(err).__name__}", shop=self.shop
                    ) from err

                status = response.status_code
                if status in (401, 403):
                    if self._on_unauthorized is not None and not refreshed_token:
                        refreshed_token = True
                        self._access_token = self._on_unauthorized()
                        continue
                    raise ShopifyAuthError(
                        f"Shopify refused the access token for {self.shop} (HTTP {status}){_summary(response)}",
                        shop=self.shop,
                        status=status,
                    ) from _http_error(response)
                if status == 404:
                    raise ShopifyNotFound(
                        f"Shopify answered 404 for {self.shop}: unknown shop or API version {self.api_version}",
                        shop=self.shop,
                        status=status,
                    ) from _http_error(response)
                if status == 429:
                    call_cost = self._observe(_json_or_none(response), key) or call_cost
                    throttle_waits = self._wait_throttled(throttle_waits, call_cost, _retry_after(response), status)
                    continue
                if status >= 500:
                    retries = self._retry_or_raise(
                        retries, f"HTTP {status}", status, _http_error(response), _retry_after(response)
                    )
                    continue
                if status != 200:
                    raise ShopifyError(
                        f"unexpected HTTP {status} from Shopify for {self.shop}{_summary(response)}",
                        shop=self.shop,
                        status=status,
                    ) from _http_error(response)

                try:
                    body = response.json()
                    if not isinstance(body, dict):
                        raise ValueError("GraphQL response is not a JSON object")
                except ValueError as err:
                    retries = self._retry_or_raise(retries, "invalid JSON in HTTP 200", status, err, None)
                    continue

                call_cost = self._observe(body, key) or call_cost
                errors = _error_list(body.get("errors"))
                if any(_code(error) == "THROTTLED" for error in errors):
                    throttle_waits = self._wait_throttled(throttle_waits, call_cost, None, status)
                    continue
                data = body.get("data")
                if errors:
                    error_class = (
                        ShopifyQueryCostError
                        if any(_code(error) == "MAX_COST_EXCEEDED" for error in errors)
                        else ShopifyGraphQLError
                    )
                    raise error_class(
                        errors, shop=self.shop, status=status, data=data if isinstance(data, dict) else None
                    )
                if not isinstance(data, dict):
                    raise ShopifyGraphQLError(
                        [{"message": "response has neither data nor errors"}], shop=self.shop, status=status
                    )
                outcome = "ok"
                return data
        finally:
            self._finish_call(operation, outcome, started, retries, throttle_waits, call_cost)

    def start_bulk_query(self, inner_query: str) -> str:
        """Start a bulk export of `inner_query` (a read-only query document); returns the operation's id."""
        data = self.execute(BULK_RUN, {"query": inner_query})
        payload = data.get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        if errors or not payload.get("bulkOperation"):
            reasons = [{"message": str(e.get("message"))} for e in errors] or [{"message": "no bulk operation"}]
            raise ShopifyGraphQLError(reasons, shop=self.shop)
        return str(payload["bulkOperation"]["id"])

    def bulk_status(self, operation_id: str) -> dict[str, Any]:
        """The bulk operation's status, counts and result URLs."""
        node = self.execute(BULK_STATUS, {"id": operation_id}).get("node")
        if not node:
            raise ShopifyNotFound(f"bulk operation {operation_id} not found", shop=self.shop, status=404)
        return dict(node)

    def paginate(
        self,
        query: str,
        variables: Mapping[str, Any] | None,
        path: Sequence[str],
        *,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each page's connection object (the dict at `path` in `data`), following `$after`.

        The query must select `pageInfo { hasNextPage endCursor }` on that connection and take
        `$after: String` (and `$first`, set from `page_size` when given). Read items with
        `connection_nodes(page)`; `page["pageInfo"]["endCursor"]` is where to resume (pass it as
        `variables["after"]`). Stops without yielding when an object on `path` is null (e.g. a deleted
        collection).
        """
        if not path:
            raise ValueError("paginate needs the path to a connection, e.g. ['products']")
        page_variables = dict(variables or {})
        if page_size is not None:
            page_variables["first"] = page_size
        while True:
            connection: Any = self.execute(query, page_variables)
            for name in path:
                if not isinstance(connection, Mapping) or name not in connection:
                    raise ValueError(f"no {'.'.join(path)} in the response: check the query and path")
                connection = connection[name]
                if connection is None:
                    return
            page_info = connection.get("pageInfo") if isinstance(connection, Mapping) else None
            if not isinstance(page_info, Mapping) or "hasNextPage" not in page_info:
                raise ValueError(f"{'.'.join(path)} must select pageInfo {{ hasNextPage endCursor }}")
            yield connection
            if not page_info["hasNextPage"]:
                return
            cursor = page_info.get("endCursor")
            if not cursor or cursor == page_variables.get("after"):
                raise ShopifyError(f"pagination of {'.'.join(path)} for {self.shop} did not advance", shop=self.shop)
            page_variables["after"] = cursor

    # --- internals ---

    def _post(self, payload: Mapping[str, Any]) -> requests.Response:
        token = self._access_token() if callable(self._access_token) else self._access_token
        return self._session.post(
            self.url,
            json=payload,
            headers={
                ACCESS_TOKEN_HEADER: token,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=self._timeout,
            # Never follow a redirect: the token header would go along to wherever it points.
            allow_redirects=False,
        )

    def _expected_cost(
        self,
        key: tuple[str, tuple[tuple[str, int], ...]],
        query: str,
        variables: Mapping[str, Any],
        expected_cost: float | None,
    ) -> float:
        if expected_cost is not None:
            return expected_cost
        with self._lock:
            learned = self._learned_costs.get(key)
        if learned is not None:
            return learned
        try:
            return min(estimate_query_cost(query, variables), SINGLE_QUERY_MAX_COST)
        except (ValueError, IndexError):
            return SINGLE_QUERY_MAX_COST

    def _pace(self, cost: float) -> None:
        """Sleep until the bucket should hold `cost` points, then reserve them."""
        with self._lock:
            state = self._state
            if state is None:
                return
            wait = state.seconds_until(cost, self._clock())
        if wait == float("inf"):
            raise ShopifyThrottled(
                f"Shopify's bucket for {self.shop} does not refill (restore rate 0)",
                shop=self.shop,
                waits=0,
                requested_cost=cost,
            )
        if wait >= _NEGLIGIBLE_WAIT:
            self._sleep(wait)
        with self._lock:
            current = self._state or state
            if current is state and wait >= _NEGLIGIBLE_WAIT:
                current = current.advanced(wait)
            self._state = current.debited(cost, self._clock())

    def _observe(self, body: Mapping[str, Any] | None, key: tuple[str, tuple[tuple[str, int], ...]]) -> dict[str, Any]:
        """Record `extensions.cost` from a response; returns it ({} when absent)."""
        extensions = body.get("extensions") if isinstance(body, Mapping) else None
        cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
        if not isinstance(cost, dict):
            return {}
        state = ThrottleState.from_cost(cost, self._clock())
        requested = cost.get("requestedQueryCost")
        with self._lock:
            self._last_cost = cost
            if state is not None:
                self._state = state
            if isinstance(requested, int | float):
                if len(self._learned_costs) > 512:  # only our own constant documents are expected here
                    self._learned_costs.clear()
                self._learned_costs[key] = float(requested)
        return cost

    def _wait_throttled(self, waits: int, cost: Mapping[str, Any], retry_after: float | None, status: int) -> int:
        """Sleep out a THROTTLED answer; returns the new wait count or raises ShopifyThrottled."""
        requested = cost.get("requestedQueryCost")
        requested = float(requested) if isinstance(requested, int | float) else None
        state = self.throttle
        if state is not None and requested is not None and requested > state.maximum_available:
            raise ShopifyThrottled(
                f"query for {self.shop} requests {requested:g} points but the bucket holds at most "
                f"{state.maximum_available:g}: make the query smaller",
                shop=self.shop,
                status=status,
                waits=waits,
                requested_cost=requested,
            )
        if waits >= self._max_throttle_waits:
            raise ShopifyThrottled(
                f"Shopify still throttled {self.shop} after {waits} waits (HTTP {status})",
                shop=self.shop,
                status=status,
                waits=waits,
                requested_cost=requested,
            )
        if retry_after is not None:
            wait = retry_after
        elif state is not None and requested is not None and state.restore_rate > 0:
            wait = max(MIN_THROTTLE_WAIT, (requested - state.currently_available) / state.restore_rate)
        else:
            wait = self._backoff_delay(waits)
        self._sleep(wait)
        with self._lock:
            if self._state is not None:
                self._state = self._state.advanced(wait)
        return waits + 1

    def _retry_or_raise(
        self, retries: int, reason: str, status: int | None, cause: BaseException | None, retry_after: float | None
    ) -> int:
        """Back off before another attempt, or raise ShopifyUnavailable when the retries are used up."""
        if retries >= self._max_retries:
            raise ShopifyUnavailable(
                f"Shopify unavailable for {self.shop} after {retries + 1} attempts: {reason}",
                shop=self.shop,
                status=status,
                attempts=retries + 1,
                last_cause=cause,
            ) from cause
        delay = self._backoff_delay(retries)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF))
        self._sleep(delay)
        return retries + 1

    def _backoff_delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(MAX_BACKOFF, backoff * 2**attempt)]."""
        return self._random.uniform(0.0, min(MAX_BACKOFF, self._backoff * 2**attempt))

    def _finish_call(
        self, operation: str | None, outcome: str, started: float, retries: int, waits: int, cost: Mapping[str, Any]
    ) -> None:
        duration = self._clock() - started
        with self._lock:
            state = self._state
            self._last_call = CallInfo(
                operation=operation,
                retries=retries,
                throttle_waits=waits,
                duration=duration,
                requested_cost=cost.get("requestedQueryCost"),
                actual_cost=cost.get("actualQueryCost"),
            )
        log.debug(
            "shopify graphql shop=%s op=%s outcome=%s requested_cost=%s actual_cost=%s available=%s "
            "duration=%.3fs retries=%d throttle_waits=%d",
            self.shop,
            operation,
            outcome,
            cost.get("requestedQueryCost"),
            cost.get("actualQueryCost"),
            f"{state.currently_available:g}/{state.maximum_available:g}" if state else None,
            duration,
            retries,
            waits,
        )


def connection_nodes(connection: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items of a connection page, whether the query selected `nodes` or `edges { node }`."""
    if isinstance(connection.get("nodes"), list):
        return list(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges") or [] if isinstance(edge, Mapping)]


def _check_read_only(query: str) -> str | None:
    """Raise ValueError unless every operation in `query` is a query; returns the first operation's name.

    The single exception is the exact text of `queries.BULK_RUN`, which starts a read-only bulk export.
    """
    types = operation_types(query)
    if not types:
        raise ValueError("the GraphQL document has no operation")
    if query == BULK_RUN:
        return "BulkRun"
    refused = sorted({kind for kind in types if kind != "query"})
    if refused:
        raise ValueError(
            f"AdminClient is read-only: refusing a GraphQL {' and '.join(refused)} (Lumi only ever reads from Shopify)"
        )
    tokens = list(graphql_tokens(query))
    for (kind, text), (next_kind, next_text) in zip(tokens, tokens[1:], strict=False):
        if kind == "name" and text == "query" and next_kind == "name":
            return next_text
    return None


def _cost_key(query: str, variables: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, int], ...]]:
    # Requested cost depends on the text and on integer variables such as $first, not on the rest.
    sizes = tuple(sorted((k, v) for k, v in variables.items() if isinstance(v, int) and not isinstance(v, bool)))
    return query, sizes


def _error_list(errors: Any) -> list[Mapping[str, Any]]:
    if not errors:
        return []
    if isinstance(errors, str):
        return [{"message": errors}]
    if isinstance(errors, list):
        return [error if isinstance(error, Mapping) else {"message": str(error)} for error in errors]
    return [{"message": str(errors)}]


def _code(error: Mapping[str, Any]) -> str | None:
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return code if isinstance(code, str) else None


def _json_or_none(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _summary(response: requests.Response) -> str:
    """Shopify's own short error text from a non-200 body, for the exception message."""
    body = _json_or_none(response)
    errors = _error_list(body.get("errors")) if body else []
    messages = "; ".join(str(error.get("message", "")) for error in errors)[:300]
    return f": {messages}" if messages else ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), MAX_BACKOFF))
    except ValueError:
        return None  # an HTTP-date; Shopify sends seconds


def _http_error(response: requests.Response) -> requests.HTTPError:
    """The requests exception for a non-2xx response, to chain our own error from."""
    return requests.HTTPError(f"HTTP {response.status_code} from {response.url}", response=response)
