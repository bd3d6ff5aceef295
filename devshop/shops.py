"""The shops one devshop serves: catalogue, orders, rate-limit bucket and counters for each."""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devshop.catalogue import EPOCH, Catalogue
from devshop.cost import LeakyBucket, plan_bucket
from devshop.markets import Market, default_markets
from devshop.orders import OrderBook

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
PLANS = {
    # plan -> (displayName, shopifyPlus)
    "standard": ("Basic", False),
    "advanced": ("Advanced", False),
    "plus": ("Shopify Plus", True),
    "enterprise": ("Commerce Components", True),
}
CURRENCY_TIMEZONES = {"EUR": "Europe/Paris", "USD": "America/New_York", "GBP": "Europe/London",
                      "CAD": "America/Toronto", "JPY": "Asia/Tokyo", "AUD": "Australia/Sydney",
                      "CHF": "Europe/Zurich"}
DEFAULT_SHOP = "lumi-demo.myshopify.com"
DEFAULT_PRODUCTS = 2000
DEFAULT_ORDERS = 300


@dataclass
class Stats:
    graphql_requests: int = 0
    throttled: int = 0
    faults_served: int = 0
    requested_cost_total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {"graphql_requests": self.graphql_requests, "throttled": self.throttled,
                "faults_served": self.faults_served, "requested_cost_total": self.requested_cost_total}


class Shop:
    """One dev store. Everything in it derives from (domain, seed) plus mutations since."""

    def __init__(self, domain: str, spec: Mapping[str, Any], bucket: tuple[float, float] | None,
                 clock: Callable[[], float]) -> None:
        self.domain = domain
        self.seed = int(spec.get("seed", 1))
        self.plan = str(spec.get("plan", "standard"))
        if self.plan not in PLANS:
            raise ValueError(f"unknown plan {self.plan!r}; one of {', '.join(PLANS)}")
        self.currency = str(spec.get("currency", "EUR")).upper()
        self.timezone = str(spec.get("timezone") or CURRENCY_TIMEZONES.get(self.currency, "Etc/UTC"))
        handle = domain.split(".", 1)[0]
        self.name = str(spec.get("name") or handle.replace("-", " ").title())
        self.id = 60_000_000_000 + zlib.crc32(domain.encode()) % 1_000_000_000
        self.created_at = EPOCH
        products = int(spec.get("products", DEFAULT_PRODUCTS))
        orders = int(spec.get("orders", DEFAULT_ORDERS))
        if products < 0 or orders < 0:
            raise ValueError("products and orders must be >= 0")
        self.catalogue = Catalogue(self.seed, products, self.currency, domain)
        # orders_recent: orders over the 60 days before now, fixed when the shop is created (or orders_anchor,
        # an ISO time or epoch seconds), favouring a few best sellers and a few trending products.
        self.orders_recent = _flag(spec.get("orders_recent", False))
        anchor = _anchor(spec.get("orders_anchor")) if self.orders_recent else None
        self.orders = OrderBook(self.seed, orders, self.catalogue, self.currency, domain,
                                recent=self.orders_recent, anchor=anchor)
        # `"markets": false` in the spec: the primary market only (tests about syncing, not prices, go faster:
        # each extra market adds contextual prices to every variant of every catalogue page).
        self.markets: tuple[Market, ...] = default_markets(self.currency, self._first_listed_product_id(),
                                                           extra=_flag(spec.get("markets", True), "markets"))
        # App blocks per storefront template ("index", "product", "collection", "embeds"), set through the control
        # API; a template not in it shows devshop.storefront.DEFAULT_BLOCKS.
        self.storefront: dict[str, list[dict[str, Any]]] = {}
        maximum, rate = bucket if bucket else plan_bucket(self.plan)
        self.bucket = LeakyBucket(maximum, rate, clock)
        self.stats = Stats()
        self.inventory_groups = 0  # InventoryAdjustmentGroup ids
        self.lock = threading.Lock()

    def _first_listed_product_id(self) -> int | None:
        """The product that gets a fixed price in the shop's second market (devshop.markets)."""
        for index in range(min(self.catalogue.live_count(), 200)):
            core = self.catalogue.core(index)
            if core is not None and core.status == "ACTIVE" and core.published_at is not None:
                return core.id
        return None

    @property
    def plan_display_name(self) -> str:
        return PLANS[self.plan][0]

    @property
    def shopify_plus(self) -> bool:
        return PLANS[self.plan][1]

    @property
    def email(self) -> str:
        return f"owner@{self.domain.split('.', 1)[0]}.example.com"

    def describe(self) -> dict[str, Any]:
        return {
            "shop": self.domain, "name": self.name, "plan": self.plan, "seed": self.seed,
            "products": self.catalogue.live_count(), "orders": self.orders.count, "currency": self.currency,
            "orders_recent": self.orders_recent,
            "orders_anchor": self.orders.anchor.strftime("%Y-%m-%dT%H:%M:%SZ") if self.orders.anchor else None,
            "timezone": self.timezone, "throttle": self.bucket.status(),
            "markets": [market.describe() for market in self.markets],
        }


def _flag(value: Any, name: str = "orders_recent") -> bool:
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "1", "yes", "false", "0", "no", ""):
            raise ValueError(f"{name} must be a boolean, got {value!r}")
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _anchor(value: Any) -> datetime:
    """When a recent-orders shop's orders end: now, unless the spec pins it."""
    if value is None or value == "":
        return datetime.now(UTC).replace(microsecond=0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ShopRegistry:
    def __init__(self, clock: Callable[[], float], bucket: tuple[float, float] | None) -> None:
        self._shops: dict[str, Shop] = {}
        self._lock = threading.Lock()
        self.clock = clock
        self.bucket = bucket

    def create(self, domain: str, spec: Mapping[str, Any]) -> Shop:
        domain = domain.lower()
        if not SHOP_DOMAIN.match(domain):
            raise ValueError(f"shop must look like name.myshopify.com, got {domain!r}")
        shop = Shop(domain, spec, self.bucket, self.clock)
        with self._lock:
            self._shops[domain] = shop
        return shop

    def get(self, domain: str) -> Shop | None:
        return self._shops.get(domain.lower())

    def all(self) -> list[Shop]:
        return list(self._shops.values())
