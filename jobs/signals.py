"""Ranking signals: units sold per product over 7 and 30 days, from orders, kept only as counts."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import redis

from core import keys
from feeds.documents import product_id
from shopify import queries
from shopify.admin import AdminClient, connection_nodes

log = logging.getLogger(__name__)


def compute_sales_signals(client: AdminClient, redis_client: redis.Redis, shop: str,
                          now: float | None = None) -> int:
    """Count units per product (no order, customer or price detail is kept); returns products counted."""
    current = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    month_ago, week_ago = current - timedelta(days=30), current - timedelta(days=7)
    week: Counter[int] = Counter()
    month: Counter[int] = Counter()
    variables = {"query": f"created_at:>='{month_ago:%Y-%m-%dT%H:%M:%SZ}'"}
    for page in client.paginate(queries.ORDERS_SALES_PAGE, variables, ["orders"],
                                page_size=queries.ORDERS_SALES_PAGE_SIZE):
        for order in connection_nodes(page):
            if order.get("cancelledAt"):
                continue
            created = datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00"))
            if created < month_ago:
                continue  # the search filter should exclude it already; the count must not depend on it
            for item in connection_nodes(order.get("lineItems") or {}):
                product = item.get("product") or {}
                if not product.get("id"):
                    continue
                pid, quantity = product_id(product["id"]), int(item.get("quantity") or 0)
                month[pid] += quantity
                if created >= week_ago:
                    week[pid] += quantity
    key = keys.sales_signals(shop)
    with redis_client.pipeline() as pipe:
        pipe.delete(key)
        if month:
            pipe.hset(key, mapping={str(pid): f"{week[pid]},{count}" for pid, count in month.items()})
            pipe.expire(key, keys.SIGNALS_TTL)
        pipe.execute()
    log.info("sales signals computed", extra={"shop": shop, "products": len(month)})
    return len(month)
