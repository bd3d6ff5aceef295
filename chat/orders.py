"""Order lookups for the chat: read-only Admin GraphQL, reduced to the facts an answer needs.

The email a shopper types to verify an order is normalized, compared in constant time with the order's
and dropped: it is never stored, logged or returned. What leaves this module is an `OrderRef` (id and
name: all a verified session keeps) or the order's facts (status, items, shipments), never an address,
a name, an email, a phone or payment details.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopify import queries
from shopify.admin import AdminClient

_ORDER_NAME = re.compile(r"^#?\s*([A-Za-z0-9][A-Za-z0-9_-]{0,31})$")


@dataclass(frozen=True)
class OrderRef:
    id: str  # gid://shopify/Order/...
    name: str  # "#1001"

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


def normalize_order_name(raw: object) -> str | None:
    """'#1001', '1001', ' # 1001 ' → '#1001'; None when it cannot be an order name."""
    if not isinstance(raw, str):
        return None
    match = _ORDER_NAME.match(raw.strip())
    return f"#{match.group(1)}" if match else None


def _normalize_email(raw: str) -> bytes:
    return hashlib.sha256(raw.strip().casefold().encode()).digest()


def order_digest(shop_secret: str, shop: str, name: str) -> str:
    """A keyed digest of an order name, for failure counters that must not hold the name itself."""
    return hmac.new(shop_secret.encode(), f"{shop}|{name.upper()}".encode(), hashlib.sha256).hexdigest()[:32]


def facts(node: dict[str, Any]) -> dict[str, Any]:
    """The answerable facts of one order node (see shopify.queries._order_status_fields)."""
    shipments = []
    for fulfillment in node.get("fulfillments") or []:
        tracking = (fulfillment.get("trackingInfo") or [{}])[0] if fulfillment.get("trackingInfo") else {}
        shipments.append({
            "status": fulfillment.get("displayStatus") or fulfillment.get("status"),
            "carrier": tracking.get("company"),
            "tracking_number": tracking.get("number"),
            "tracking_url": tracking.get("url"),
            "estimated_delivery_at": fulfillment.get("estimatedDeliveryAt"),
            "delivered_at": fulfillment.get("deliveredAt"),
            "line_items": [],
        })
    return {
        "name": node.get("name"),
        "created_at": node.get("createdAt"),
        "financial_status": node.get("displayFinancialStatus"),
        "fulfillment_status": node.get("displayFulfillmentStatus"),
        "cancelled": bool(node.get("cancelledAt")),
        "line_items": [{"title": item.get("title"), "quantity": item.get("quantity")}
                       for item in ((node.get("lineItems") or {}).get("nodes") or [])],
        "fulfillments": shipments,
    }


def _customer_gid(customer_id: str | int) -> str:
    return f"gid://shopify/Customer/{customer_id}"


class OrderLookup:
    """One shop's order reads. `client` builds the shop's AdminClient (tokens handled there)."""

    def __init__(self, client: Callable[[], AdminClient]) -> None:
        self._client = client

    def _by_name(self, name: str) -> dict[str, Any] | None:
        with self._client() as admin:
            data = admin.execute(queries.ORDER_BY_NAME, {"query": f'name:"{name}"'})
        nodes = (data.get("orders") or {}).get("nodes") or []
        found = nodes[0] if nodes else None
        # Shopify's search is fuzzy about '#' and case; only the exact name counts.
        return found if found and str(found.get("name", "")).upper() == name.upper() else None

    def verify(self, name: str, email: str) -> OrderRef | None:
        """The order if `email` is its email; None otherwise (same answer whether or not it exists)."""
        node = self._by_name(name)
        expected = _normalize_email(str(node.get("email") or "")) if node else _normalize_email("\0absent")
        matches = hmac.compare_digest(expected, _normalize_email(email))
        if node is None or not matches or not node.get("email"):
            return None
        return OrderRef(str(node["id"]), str(node["name"]))

    def owned(self, name: str, customer_id: str) -> OrderRef | None:
        """A logged-in customer's own order by name, or None."""
        node = self._by_name(name)
        owner = ((node or {}).get("customer") or {}).get("id")
        if node is None or owner != _customer_gid(customer_id):
            return None
        return OrderRef(str(node["id"]), str(node["name"]))

    def facts_for(self, refs: list[OrderRef]) -> list[dict[str, Any]]:
        """Fresh facts for the session's verified orders (read each turn: the session keeps only refs)."""
        found = []
        for ref in refs:
            node = self._by_name(ref.name)
            if node is not None and node.get("id") == ref.id:
                found.append(facts(node))
        return found

    def recent(self, customer_id: str) -> list[tuple[OrderRef, dict[str, Any]]]:
        """A logged-in customer's most recent orders, newest first."""
        with self._client() as admin:
            data = admin.execute(queries.CUSTOMER_ORDERS, {"first": queries.CUSTOMER_ORDERS_PAGE_SIZE,
                                                           "query": f"customer_id:{int(customer_id)}"})
        nodes = (data.get("orders") or {}).get("nodes") or []
        owned = [n for n in nodes if ((n.get("customer") or {}).get("id")) == _customer_gid(customer_id)]
        return [(OrderRef(str(n["id"]), str(n["name"])), facts(n)) for n in owned]
