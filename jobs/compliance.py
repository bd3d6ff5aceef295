"""The mandatory privacy-law webhooks, honoured through the deletion registry.

Lumi never stores customer personal data, so a customer's request finds nothing of theirs beyond
order references in chat sessions (handled by the chat module when it exists); shop/redact
erases everything, chat included.
"""

from __future__ import annotations

import logging
from typing import Any

from core.purge import purge_shop
from jobs.context import services

log = logging.getLogger(__name__)


def shop_redact(shop: str) -> dict[str, Any]:
    ctx = services()
    if ctx.shops.is_installed(shop):
        log.warning("shop/redact for an installed shop ignored", extra={"shop": shop})
        return {"skipped": "installed"}
    return purge_shop(ctx, shop, reason="shop_redact")


def customer_redact(shop: str, customer_id: int | None = None, order_ids: list[int] | None = None,
                    request_id: int | None = None) -> dict[str, Any]:
    # No store holds customer data yet; the chat issue registers its order references here.
    log.info("customer redact processed", extra={"shop": shop, "orders": len(order_ids or [])})
    return {"shop": shop, "customer_data_found": 0}


def customer_data_request(shop: str, customer_id: int | None = None, order_ids: list[int] | None = None,
                          request_id: int | None = None) -> dict[str, Any]:
    log.info("customer data request processed", extra={"shop": shop, "orders": len(order_ids or [])})
    return {"shop": shop, "customer_data_found": 0}
