"""The /_devshop control API (not part of Shopify): shops, tokens, throttle, faults, stats, webhooks, bulk, app,
storefront and markets."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from devshop.catalogue import Product
from devshop.oauth import session_token
from devshop.shops import Shop
from devshop.state import DevShopState, get_state

bp = Blueprint("devshop_control", __name__, url_prefix="/_devshop")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _error(message: str, status: int = 400) -> Response:
    return DevShopState.json({"error": {"code": "bad_request" if status == 400 else "not_found", "message": message}},
                             status)


def _shop(state: DevShopState, domain: str) -> Shop | None:
    return state.shops.get(domain)


@bp.get("/shops")
def list_shops() -> Response:
    return DevShopState.json({"shops": [s.describe() for s in get_state().shops.all()]})


@bp.post("/shops")
def create_shop() -> Response:
    """Create or reset a shop: a fresh catalogue, orders and bucket from the given seed."""
    state = get_state()
    body = _body()
    domain = body.get("shop")
    if not isinstance(domain, str):
        return _error("shop is required (name.myshopify.com)")
    keys = ("products", "seed", "plan", "orders", "currency", "timezone", "name", "orders_recent", "orders_anchor")
    spec: dict[str, Any] = {k: body[k] for k in keys if k in body}
    try:
        shop = state.shops.create(domain, spec)
    except (ValueError, TypeError) as err:
        return _error(str(err))
    state.bulk.forget(shop.domain)  # a reset shop starts with no bulk operations
    return DevShopState.json(shop.describe(), 201)


@bp.post("/shops/<domain>/access-tokens")
def issue_token(domain: str) -> Response:
    """A token as a custom-app install would get it, same shape as the OAuth token endpoint."""
    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    body = _body()
    scope = body.get("scope") or state.app_scopes
    if isinstance(scope, list):
        scope = ",".join(scope)
    return DevShopState.json(state.tokens.issue(shop.domain, str(scope), bool(body.get("expiring")), "shpat_"), 201)


@bp.post("/shops/<domain>/session-token")
def mint_session_token(domain: str) -> Response:
    """An App Bridge session token for this shop, signed with the app's secret (for embedded-app tests)."""
    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    body = _body()
    token = session_token(state.api_key, state.api_secret, shop.domain, int(body.get("user_id", 1)),
                          int(body.get("lifetime", 60)))
    return DevShopState.json({"session_token": token})


@bp.route("/shops/<domain>/throttle", methods=["GET", "PUT"])
def throttle(domain: str) -> Response:
    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    if request.method == "PUT":
        body = _body()
        try:
            maximum = float(body.get("maximum_available", shop.bucket.maximum))
            rate = float(body.get("restore_rate", shop.bucket.restore_rate))
        except (TypeError, ValueError):
            return _error("maximum_available and restore_rate must be numbers")
        if maximum <= 0 or rate < 0:
            return _error("maximum_available must be > 0 and restore_rate >= 0")
        shop.bucket.configure(maximum, rate)
    status = shop.bucket.status()
    return DevShopState.json({"maximum_available": status["maximumAvailable"],
                              "currently_available": shop.bucket.available(),
                              "restore_rate": status["restoreRate"]})


@bp.post("/faults")
def arm_fault() -> Response:
    state = get_state()
    body = _body()
    try:
        fault = state.faults.arm(str(body.get("kind")), int(body.get("count", 1)), body.get("shop"),
                                 body.get("seconds"), body.get("after"))
    except (ValueError, TypeError) as err:
        return _error(str(err))
    return DevShopState.json({"armed": fault.as_dict(), "pending": state.faults.pending()}, 201)


@bp.get("/faults")
def list_faults() -> Response:
    return DevShopState.json({"pending": get_state().faults.pending()})


@bp.delete("/faults")
def clear_faults() -> Response:
    get_state().faults.clear()
    return DevShopState.json({"pending": []})


@bp.get("/shops/<domain>/stats")
def stats(domain: str) -> Response:
    shop = _shop(get_state(), domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    return DevShopState.json(shop.stats.as_dict())


@bp.get("/shops/<domain>/bulk-operations")
def bulk_operations(domain: str) -> Response:
    """The shop's bulk operations, oldest first: id, status, error_code, counts, url, partial_data_url."""
    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    return DevShopState.json({"bulk_operations": state.bulk.list(shop.domain)})


@bp.route("/bulk", methods=["GET", "PUT"])
def bulk_settings() -> Response:
    """Read / set how bulk exports run: `delay` (seconds per 1,000 objects written) and `keep` (files per shop)."""
    bulk = get_state().bulk
    if request.method == "PUT":
        body = _body()
        try:
            delay = float(body.get("delay", bulk.delay))
            keep = int(body.get("keep", bulk.keep))
        except (TypeError, ValueError):
            return _error("delay must be a number of seconds and keep an integer")
        if delay < 0 or keep < 1:
            return _error("delay must be >= 0 and keep >= 1")
        bulk.delay, bulk.keep = delay, keep
    return DevShopState.json(bulk.settings())


MAX_COPIES = 10


@bp.post("/shops/<domain>/webhooks")
def send_webhook(domain: str) -> Response:
    """Deliver a signed webhook now and report how the app answered.

    `copies` sends the very same delivery (same X-Shopify-Webhook-Id and body) several times, all at the
    same instant when `concurrent`; `retry` retries it later on the schedule when no copy got a 2xx."""
    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    body = _body()
    topic = body.get("topic")
    if not isinstance(topic, str) or not topic:
        return _error("topic is required, e.g. products/update")
    copies = body.get("copies", 1)
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= MAX_COPIES:
        return _error(f"copies must be an integer from 1 to {MAX_COPIES}")
    if not state.webhooks.destinations(topic):
        return _error(f"nowhere to deliver {topic}: set APP_URL (and a subscription in shopify.app.toml)", 409)
    deliveries = state.webhooks.send_now(shop, topic, body.get("payload"), retry=bool(body.get("retry")),
                                         copies=copies, concurrent=bool(body.get("concurrent")))
    first = deliveries[0]
    return DevShopState.json({"status": first.status, "webhook_id": first.webhook_id, "error": first.error,
                              "statuses": [d.status for d in deliveries],
                              "deliveries": [d.as_dict() for d in deliveries]})


MAX_PRODUCT_UPDATES = 10_000
MAX_UPDATE_CONCURRENCY = 64


@bp.post("/shops/<domain>/product-updates")
def product_updates(domain: str) -> Response:
    """Many merchant edits at once (a bulk editor save, an import): each product in `ids` gets `title_suffix`
    appended to its title, then its signed products/update webhook is delivered, `concurrency` products in
    flight at a time (retried on the schedule if the app does not take it, as any Shopify-triggered webhook).
    Answers when every first attempt has: one row per product with the delivery's status and `answered_at`
    (Unix seconds when that attempt ended: the app's answer arrived, or it failed), for measuring what happens
    after acceptance."""
    from devshop.webhooks import rest_product

    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    body = _body()
    ids = body.get("ids")
    if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_PRODUCT_UPDATES
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        return _error(f"ids must be a list of 1 to {MAX_PRODUCT_UPDATES} product ids (integers)")
    suffix = body.get("title_suffix")
    if not isinstance(suffix, str) or not suffix.strip():
        return _error("title_suffix is required: the text appended to each title")
    concurrency = body.get("concurrency", 8)
    if (not isinstance(concurrency, int) or isinstance(concurrency, bool)
            or not 1 <= concurrency <= MAX_UPDATE_CONCURRENCY):
        return _error(f"concurrency must be an integer from 1 to {MAX_UPDATE_CONCURRENCY}")
    if not state.webhooks.destinations("products/update"):
        return _error("nowhere to deliver products/update: set APP_URL (and a subscription in shopify.app.toml)", 409)
    cat = shop.catalogue
    with cat.lock:
        missing = [pid for pid in ids if cat.index_of(pid) is None or cat.product(cat.index_of(pid)) is None]
    if missing:
        return _error(f"no such products: {missing[:10]}", 404)

    def update(pid: int) -> Product:
        with cat.lock:
            index = cat.index_of(pid)
            current = cat.product(index) if index is not None else None
            if current is None:  # deleted since the check above
                raise LookupError(pid)
            record = replace(current, title=current.title + suffix,
                             updated_at=datetime.now(UTC).replace(microsecond=0))
            cat.put(record)
        return record

    def one(pid: int) -> dict[str, Any]:
        try:
            record = update(pid)
        except LookupError:
            return {"product_id": pid, "title": None, "status": None, "ok": False, "error": "product deleted",
                    "webhook_id": None, "elapsed_ms": 0.0, "answered_at": None}
        delivery = state.webhooks.send_now(shop, "products/update", rest_product(shop, record), retry=True)[0]
        return {"product_id": pid, "title": record.title, "status": delivery.status, "ok": delivery.ok,
                "error": delivery.error, "webhook_id": delivery.webhook_id, "elapsed_ms": delivery.elapsed_ms,
                "answered_at": time.time()}

    started = time.time()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="devshop-product-update") as pool:
        rows = list(pool.map(one, ids))
    return DevShopState.json({"started_at": started, "finished_at": time.time(), "updates": rows})


@bp.get("/shops/<domain>/webhooks")
def webhook_log(domain: str) -> Response:
    """Every delivery attempt to the app, oldest first; ?topic= and ?webhook_id= filter it."""
    return DevShopState.json({"deliveries": get_state().webhooks.deliveries(
        domain.lower(), topic=request.args.get("topic") or None, webhook_id=request.args.get("webhook_id") or None)})


@bp.route("/shops/<domain>/storefront", methods=["GET", "PUT", "DELETE"])
def storefront_settings(domain: str) -> Response:
    """The shop's storefront: which app blocks each template shows (PUT replaces the templates it names, DELETE
    restores the defaults), the extension's blocks and their setting defaults, and the pages worth opening."""
    from devshop.storefront import StorefrontError

    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    if request.method == "PUT":
        try:
            state.storefront.configure(shop, _body())
        except StorefrontError as err:
            return _error(str(err))
    elif request.method == "DELETE":
        shop.storefront = {}
    return DevShopState.json(state.storefront.describe(shop))


@bp.get("/shops/<domain>/markets")
def markets(domain: str) -> Response:
    """The shop's markets; ?country=XX adds the market a shopper there buys in, &handle=H that product's prices in
    it (what its storefront pages and contextualPricing show)."""
    from devshop.storefront_objects import market_report

    shop = _shop(get_state(), domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    try:
        report = market_report(shop, request.args.get("country") or None, request.args.get("handle") or None)
    except LookupError as err:
        return _error(str(err), 404)
    return DevShopState.json(report)


@bp.get("/app")
def app_settings() -> Response:
    """What this devshop believes about the app: client id, URLs, proxy, install mode, webhook policy."""
    from devshop.admin import describe

    state = get_state()
    return DevShopState.json({
        "api_key": state.api_key, "app_name": state.app_name, "app_url": state.app_url,
        "scopes": state.app_scopes, "authorize_mode": state.authorize_mode, **describe(state),
        "session_token_ttl": state.session_token_ttl, "app_bridge_url": "/_devshop/app-bridge.js",
        "app_proxy": state.app_proxy.describe() if state.app_proxy else None,
        "webhooks": {"timeout": state.webhooks.timeout, "retry_schedule": list(state.webhooks.retry_schedule),
                     "api_version": state.webhooks.api_version},
    })


@bp.route("/proxy", methods=["GET", "POST", "PUT"])
def proxy_settings() -> Response:
    """The app proxy's mode for this devshop process: `{"buffer": true}` reads the app's whole answer before
    sending it with a Content-Length (as Shopify's proxy might), `false` (the default) streams it through."""
    state = get_state()
    if request.method != "GET":
        buffer = _body().get("buffer")
        if not isinstance(buffer, bool):
            return _error("buffer must be true or false")
        state.app_proxy_buffer = buffer
    return DevShopState.json({"buffer": state.app_proxy_buffer, "timeout": state.app_proxy_timeout,
                              "app_proxy": state.app_proxy.describe() if state.app_proxy else None})


@bp.get("/health")
def health() -> Response:
    return DevShopState.json({"ok": True})


@bp.post("/shops/<domain>/uninstall")
def uninstall(domain: str) -> Response:
    """The merchant removes the app: tokens are revoked first, then app/uninstalled is sent."""
    state = get_state()
    shop = _shop(state, domain)
    if shop is None:
        return _error(f"no shop {domain}", 404)
    revoked = state.tokens.revoke_shop(shop.domain)
    # Shopify sends app/uninstalled like any event it triggers: retried on the schedule until it gets a 2xx.
    deliveries = state.webhooks.send_now(shop, "app/uninstalled", None, retry=True) if state.webhooks.destinations(
        "app/uninstalled") else []
    return DevShopState.json({"revoked_tokens": revoked, "deliveries": [d.as_dict() for d in deliveries]})
