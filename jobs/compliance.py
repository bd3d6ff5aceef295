"""The mandatory privacy-law webhooks, honoured through the deletion registry.

Lumi never stores customer personal data, so a customer's request finds nothing of theirs beyond
order references in chat sessions (and those sessions' redacted transcripts): customers/redact deletes
those sessions, customers/data_request counts them; shop/redact erases everything, chat included.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.context import services
from runtime.data import purge_shop

log = logging.getLogger(__name__)


def shop_redact(shop: str) -> dict[str, Any]:
    ctx = services()
    if ctx.shops.is_installed(shop):
        log.warning("shop/redact for an installed shop ignored", extra={"shop": shop})
        return {"skipped": "installed"}
    return purge_shop(ctx, shop, reason="shop_redact")


def customer_redact(shop: str, customer_id: int | None = None, order_ids: list[int] | None = None,
                    request_id: int | None = None) -> dict[str, Any]:
    from chat.store import sessions_with_orders

    ctx = services()
    found = sessions_with_orders(ctx.chat, shop, order_ids or [])
    for session_id in found:
        ctx.chat.delete(shop, session_id)
    log.info("customer redact processed", extra={"shop": shop, "orders": len(order_ids or []),
                                                  "sessions_deleted": len(found)})
    return {"shop": shop, "chat_sessions_deleted": len(found)}


def customer_data_request(shop: str, customer_id: int | None = None, order_ids: list[int] | None = None,
                          request_id: int | None = None) -> dict[str, Any]:
    from chat.store import sessions_with_orders

    found = sessions_with_orders(services().chat, shop, order_ids or [])
    log.info("customer data request processed", extra={"shop": shop, "orders": len(order_ids or []),
                                                       "chat_sessions": len(found)})
    # What Lumi holds about this customer: chat sessions that reference their orders (redacted transcripts,
    # no contact data). The merchant can read and export them from the chat history before they expire.
    return {"shop": shop, "customer_data_found": 0, "chat_sessions_referencing_orders": len(found)}
