"""The embedded admin's feed tools (`/api/feeds/preview/*`, `/api/products/search`, `/api/freshness`).

The preview renders a feed through the storefront's own path (feeds.service.render, its cache included), so
it shows the same products in the same order as `/proxy/feeds/<feed>`; explain only describes that ranking.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g, request
from meilisearch.errors import MeilisearchApiError, MeilisearchError

from feeds import freshness
from feeds.definitions import FeedParamError, parse_feed_path, parse_params
from feeds.index import PRODUCTS_INDEX
from feeds.service import (
    FeedUnavailable,
    ProductNotFound,
    SettingsUnavailable,
    explain,
    missing_pins,
    plain,
    render,
    shop_state,
)
from feeds.writer import shop_filter
from web.errors import APIError
from web.extensions import get_services
from web.guards import verify_bearer_session_token

bp = Blueprint("admin_feeds", __name__, url_prefix="/api")

SEARCH_LIMIT = 20
SEARCH_FIELDS = ["product_id", "title", "handle", "image", "available"]
# The preview's own names for the path argument of `collection/<handle>` and `similar/<product id>`.
PATH_ARGUMENTS = {"collection": "collection", "similar": "product"}


@bp.before_request
def authenticate() -> None:
    verify_bearer_session_token()
    if get_services().shops.get(g.shop) is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop. Open it from your admin.")


def _feed_path(feed_path: str, args: dict[str, str]) -> str:
    """`best-sellers`, `collection?collection=<handle>` or `similar?product=<id>` (or the storefront's path form)."""
    wanted = PATH_ARGUMENTS.get(feed_path)
    if wanted is not None and args.get(wanted):
        return f"{feed_path}/{args[wanted]}"
    return feed_path


@bp.get("/feeds/preview/<path:feed_path>")
def preview(feed_path: str) -> dict[str, Any]:
    services = get_services()
    args = dict(request.args.items())
    path = _feed_path(feed_path, args)
    query = {k: v for k, v in args.items() if k not in PATH_ARGUMENTS.values()}
    try:
        state = shop_state(services, g.shop)
    except SettingsUnavailable:
        raise APIError(503, "unavailable", "Feeds are briefly unavailable.", headers={"Retry-After": "30"}) from None
    if state is None:
        raise APIError(404, "shop_not_installed", "Lumi is not installed on this shop.")
    settings = state.settings
    try:
        definition, arg = parse_feed_path(path)
        params = parse_params(definition, query, int(settings.get("feed_default_limit") or 12))
    except FeedParamError as err:
        # The preview names the path arguments as query parameters: report them by those names.
        param = {"handle": "collection", "product_id": "product"}.get(err.param, err.param)
        raise APIError(404 if param == "feed" else 400, "unknown_feed" if param == "feed"
                       else "invalid_parameter", err.message, details={"param": param}) from None
    try:
        body = render(services, g.shop, definition, arg, params, state)
        products = json.loads(plain(body))["products"]
        reasons = explain(services, g.shop, definition, arg, params, settings, [p["id"] for p in products])
        left_out = missing_pins(services, g.shop, definition, params, settings, [p["id"] for p in products])
    except ProductNotFound:
        raise APIError(404, "product_not_found", "That product is not in this shop's catalogue.") from None
    except (FeedUnavailable, MeilisearchError, OSError):
        raise APIError(503, "feed_unavailable", "This feed is briefly unavailable.",
                       headers={"Retry-After": "30"}) from None
    return {
        "feed": definition.name if not arg else f"{definition.name}/{arg}",
        # A preview works while feeds are off (to check before turning them on); the storefront then gets 404.
        "feeds_enabled": bool(settings.get("feeds_enabled", True)),
        "products": products,
        "explain": reasons,
        "excluded": left_out,  # pinned products this page leaves out, and the rule that does
    }


@bp.get("/products/search")
def product_search() -> dict[str, Any]:
    """Products of this shop's index matching `q` (typo-tolerant), for picking products to exclude or pin; or
    `ids=1,2,…` (at most 20), the titles of products already excluded or pinned."""
    q = (request.args.get("q") or "").strip()
    if len(q) > 200:
        raise APIError(400, "invalid_parameter", "q must be at most 200 characters.", details={"param": "q"})
    where = shop_filter(g.shop)
    raw_ids = request.args.get("ids")
    if raw_ids is not None:
        ids = raw_ids.split(",")
        if not 0 < len(ids) <= SEARCH_LIMIT or not all(i.isdigit() and len(i) <= 20 for i in ids):
            raise APIError(400, "invalid_parameter", f"ids must be 1 to {SEARCH_LIMIT} product ids, comma-separated.",
                           details={"param": "ids"})
        where += f" AND product_id IN [{', '.join(str(int(i)) for i in ids)}]"
    try:
        hits = get_services().meili.index(PRODUCTS_INDEX).search(q, {
            "filter": where, "limit": SEARCH_LIMIT, "attributesToRetrieve": SEARCH_FIELDS,
        })["hits"]
    except MeilisearchApiError as err:
        if err.code != "index_not_found":
            raise APIError(503, "search_unavailable", "Product search is briefly unavailable.",
                           headers={"Retry-After": "30"}) from None
        hits = []  # nothing indexed yet, for any shop
    except (MeilisearchError, OSError):
        raise APIError(503, "search_unavailable", "Product search is briefly unavailable.",
                       headers={"Retry-After": "30"}) from None
    return {"products": [{"id": str(hit["product_id"]), "title": hit.get("title") or "", "handle": hit.get("handle"),
                          "image": hit.get("image"), "available": bool(hit.get("available"))} for hit in hits]}


@bp.get("/freshness")
def feed_freshness() -> dict[str, Any]:
    return freshness.summary(get_services().redis, g.shop)
