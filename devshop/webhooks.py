"""Signed webhook deliveries to the app, with REST-shaped payloads, routed by shopify.app.toml."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import logging
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import requests

from devshop.catalogue import LOCATION_ID, OPTION_ID_BASE, OPTION_SLOTS, PRODUCT_ID_BASE, Product, Variant, gid
from devshop.orders import DEMO_CUSTOMER, DEMO_ORDERS, ORDER_ID_BASE
from devshop.shops import Shop

log = logging.getLogger("devshop.webhooks")
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
# Topics devshop delivers to APP_URL/webhooks even when shopify.app.toml does not subscribe to them. A real app
# must subscribe (a `[[webhooks.subscriptions]]` entry with topics = ["bulk_operations/finish"]) to get them.
IMPLICIT_TOPICS = ("bulk_operations/finish",)
CONNECT_TIMEOUT = 1.0  # Shopify: connect within 1 s


@dataclass
class AppToml:
    """The parts of shopify.app.toml devshop needs."""

    application_url: str | None = None
    client_id: str | None = None
    name: str | None = None
    handle: str | None = None
    scopes: str | None = None
    redirect_urls: list[str] = field(default_factory=list)
    api_version: str | None = None
    subscriptions: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (topics, uri)
    app_proxy: dict[str, str] | None = None  # [app_proxy] url, prefix, subpath

    @classmethod
    def load(cls, path: str | Path | None) -> AppToml | None:
        if not path or not Path(path).is_file():
            return None
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        hooks = data.get("webhooks") or {}
        subs = []
        for sub in hooks.get("subscriptions") or []:
            topics = tuple(sub.get("topics") or ()) + tuple(sub.get("compliance_topics") or ())
            if sub.get("uri"):
                subs.append((topics, str(sub["uri"])))
        proxy = data.get("app_proxy")
        return cls(
            application_url=data.get("application_url"), client_id=data.get("client_id"),
            name=data.get("name"), handle=data.get("handle"),
            app_proxy={k: str(v) for k, v in proxy.items()} if isinstance(proxy, dict) else None,
            scopes=(data.get("access_scopes") or {}).get("scopes"),
            redirect_urls=list((data.get("auth") or {}).get("redirect_urls") or []),
            api_version=hooks.get("api_version"), subscriptions=subs,
        )


def rebase(uri: str, app_url: str) -> str | None:
    """Point a subscription uri at the running app: relative paths and http(s) URLs keep their path."""
    if uri.startswith(("pubsub://", "arn:")):
        return None  # other transports: nothing to deliver locally
    parts = urlsplit(uri)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return urljoin(app_url.rstrip("/") + "/", path.lstrip("/"))


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def rest_time(shop: Shop, moment: datetime | None) -> str | None:
    if moment is None:
        return None
    try:
        zone = ZoneInfo(shop.timezone)
    except Exception:  # unknown zone names fall back to UTC rather than failing a delivery
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).isoformat(timespec="seconds")


def _money(amount: Any) -> str | None:
    return None if amount is None else f"{amount:.2f}"


def rest_variant(shop: Shop, variant: Variant) -> dict[str, Any]:
    options = [v for _, v in variant.options] + [None, None, None]
    return {
        "admin_graphql_api_id": gid("ProductVariant", variant.id), "barcode": variant.barcode,
        "compare_at_price": _money(variant.compare_at_price), "created_at": rest_time(shop, variant.created_at),
        "id": variant.id, "inventory_policy": variant.inventory_policy.lower(), "position": variant.position,
        "price": _money(variant.price), "product_id": PRODUCT_ID_BASE + variant.product_index,
        "sku": variant.sku or "", "taxable": variant.taxable, "title": variant.title,
        "updated_at": rest_time(shop, variant.updated_at), "option1": options[0], "option2": options[1],
        "option3": options[2], "image_id": variant.image_id, "inventory_item_id": variant.inventory_item_id,
        "inventory_quantity": variant.inventory_quantity, "old_inventory_quantity": variant.inventory_quantity,
    }


def rest_product(shop: Shop, product: Product) -> dict[str, Any]:
    """The REST Product resource, as products/create and products/update deliver it."""
    images = [{
        "id": img.id, "alt": img.alt, "position": img.position, "product_id": product.id,
        "created_at": rest_time(shop, product.created_at), "updated_at": rest_time(shop, product.updated_at),
        "admin_graphql_api_id": gid("ProductImage", img.id), "width": img.width, "height": img.height,
        "src": img.url, "variant_ids": [v.id for v in product.variants if v.image_id == img.id],
    } for img in product.images]
    return {
        "admin_graphql_api_id": gid("Product", product.id), "body_html": product.description_html,
        "created_at": rest_time(shop, product.created_at), "handle": product.handle, "id": product.id,
        "product_type": product.product_type, "published_at": rest_time(shop, product.published_at),
        "template_suffix": None, "title": product.title, "updated_at": rest_time(shop, product.updated_at),
        "vendor": product.vendor, "status": product.status.lower(), "published_scope": "global",
        "tags": ", ".join(product.tags),
        "variants": [rest_variant(shop, v) for v in product.variants],
        "options": [{"name": name, "id": OPTION_ID_BASE + product.index * OPTION_SLOTS + k, "product_id": product.id,
                     "position": k, "values": list(values)} for k, (name, values) in enumerate(product.options, 1)],
        "images": images, "image": images[0] if images else None,
        "variant_gids": [{"admin_graphql_api_id": gid("ProductVariant", v.id),
                          "updated_at": rest_time(shop, v.updated_at)} for v in product.variants],
        "has_variants_that_requires_components": False, "category": None,
    }


def rest_inventory_level(shop: Shop, variant: Variant) -> dict[str, Any]:
    item = variant.inventory_item_id
    return {
        "inventory_item_id": item, "location_id": LOCATION_ID, "available": variant.inventory_quantity,
        "updated_at": rest_time(shop, variant.updated_at),
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{LOCATION_ID}?inventory_item_id={item}",
    }


def rest_shop(shop: Shop) -> dict[str, Any]:
    return {
        "id": shop.id, "name": shop.name, "email": shop.email, "domain": shop.domain, "province": None,
        "country": "FR" if shop.currency == "EUR" else "US", "address1": "1 Dev Street", "zip": "75001",
        "city": "Paris", "source": None, "phone": None, "primary_locale": "en",
        "created_at": rest_time(shop, shop.created_at), "updated_at": rest_time(shop, shop.created_at),
        "country_code": "FR" if shop.currency == "EUR" else "US", "currency": shop.currency,
        "customer_email": shop.email, "timezone": shop.timezone, "iana_timezone": shop.timezone,
        "shop_owner": "Dev Owner", "plan_display_name": shop.plan_display_name, "plan_name": shop.plan,
        "myshopify_domain": shop.domain, "weight_unit": "kg", "taxes_included": True,
        "has_storefront": True, "password_enabled": False, "setup_required": False,
        "enabled_presentment_currencies": [shop.currency],
    }


def default_payload(shop: Shop, topic: str) -> dict[str, Any]:
    """A plausible payload for a topic sent from the control API without one."""
    base = {"shop_id": shop.id, "shop_domain": shop.domain}
    if topic == "shop/redact":
        return base
    # The demo customer (devshop.orders: shopper@example.com, orders #1001-#1003), so that a redact sent from
    # `make dev` names orders the chat may really have referenced.
    customer = {"id": DEMO_CUSTOMER.id, "email": DEMO_CUSTOMER.email, "phone": None}
    demo_order_ids = [ORDER_ID_BASE + o.number for o in DEMO_ORDERS.values() if o.customer == DEMO_CUSTOMER]
    if topic == "customers/redact":
        return {**base, "customer": customer, "orders_to_redact": demo_order_ids}
    if topic == "customers/data_request":
        return {**base, "customer": customer, "orders_requested": demo_order_ids, "data_request": {"id": 9_999}}
    if topic in ("app/uninstalled", "shop/update"):
        return rest_shop(shop)
    if topic == "bulk_operations/finish":
        return {"admin_graphql_api_id": gid("BulkOperation", 4_400_000_000_001), "completed_at": "2024-08-29T17:23:25Z",
                "created_at": "2024-08-29T17:16:35Z", "error_code": None, "status": "completed", "type": "query"}
    product = next((p for p in map(shop.catalogue.product, shop.catalogue.all_indexes()) if p), None)
    if product is not None:
        if topic in ("products/create", "products/update"):
            return rest_product(shop, product)
        if topic == "products/delete":
            return {"id": product.id}
        if topic == "inventory_levels/update" and product.variants:
            return rest_inventory_level(shop, product.variants[0])
    return {}


# Shopify retries a failed delivery 8 times over 4 hours with exponential backoff (changelog 2024-09-10,
# "Updates to webhook retry mechanism"). The exact intervals are not published: these double from one
# minute (15 minutes where doubling would overshoot) and add up to exactly 4 hours.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (60, 120, 240, 480, 900, 1800, 3600, 7200)
DEFAULT_TIMEOUT = 5.0  # seconds for the whole answer (Shopify: connect within 1 s, answer within 5 s)


@dataclass
class Message:
    """One webhook for one address: what every attempt at it sends, byte for byte."""

    shop: str
    topic: str
    url: str
    body: bytes
    event_id: str
    webhook_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    triggered_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


@dataclass
class Delivery:
    """One attempt at delivering a message, as the delivery log records it."""

    shop: str
    topic: str
    url: str
    webhook_id: str
    event_id: str
    attempt: int = 1
    copy: int = 1
    status: int | None = None
    error: str | None = None
    sent_at: str = ""
    elapsed_ms: float = 0.0
    retry_in: float | None = None  # seconds until the next attempt, when one is scheduled

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {"shop": self.shop, "topic": self.topic, "url": self.url, "webhook_id": self.webhook_id,
                "event_id": self.event_id, "attempt": self.attempt, "copy": self.copy, "status": self.status,
                "ok": self.ok, "error": self.error, "sent_at": self.sent_at, "elapsed_ms": self.elapsed_ms,
                "retry_in": self.retry_in}


class WebhookDispatcher:
    """Builds, signs and posts webhooks. Shopify-triggered ones go out on a background thread and are
    retried on any non-2xx answer, timeout or connection error, following the retry schedule."""

    def __init__(self, api_secret: str, app_url: str | None, toml: AppToml | None, api_version: str,
                 timeout: float = DEFAULT_TIMEOUT, retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE
                 ) -> None:
        self.api_secret = api_secret
        self.app_url = app_url
        self.toml = toml
        self.api_version = (toml.api_version if toml and toml.api_version else None) or api_version
        self.timeout = float(timeout)
        self.retry_schedule = tuple(float(s) for s in retry_schedule)
        if self.timeout <= 0 or any(s < 0 for s in self.retry_schedule):
            raise ValueError("WEBHOOK_TIMEOUT must be > 0 and WEBHOOK_RETRY_SCHEDULE entries >= 0")
        self.log: collections.deque[Delivery] = collections.deque(maxlen=5000)
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def close(self) -> None:
        """Cancel every pending retry (the server is stopping)."""
        self._closed.set()

    def destinations(self, topic: str) -> list[str]:
        if not self.app_url:
            return []
        if self.toml is None or not self.toml.subscriptions:
            return [self.app_url.rstrip("/") + "/webhooks"]
        urls = []
        for topics, uri in self.toml.subscriptions:
            if topic in topics and (url := rebase(uri, self.app_url)) and url not in urls:
                urls.append(url)
        if not urls and topic in IMPLICIT_TOPICS:
            urls.append(self.app_url.rstrip("/") + "/webhooks")
        return urls

    def payload(self, shop: Shop, topic: str, data: dict[str, Any]) -> dict[str, Any]:
        if "product" in data:
            return rest_product(shop, data["product"])
        if "variant" in data:
            return rest_inventory_level(shop, data["variant"])
        return data

    def _messages(self, shop: Shop, topic: str, body: bytes) -> list[Message]:
        # One event, delivered to every subscription that wants it, each delivery with its own webhook id.
        event_id = str(uuid.uuid4())
        return [Message(shop.domain, topic, url, body, event_id) for url in self.destinations(topic)]

    def emit_later(self, shop: Shop, topic: str, data: dict[str, Any]) -> None:
        """Fire and forget, like Shopify: the mutation answers before the app hears about it."""
        body = json.dumps(self.payload(shop, topic, data), ensure_ascii=False).encode()
        for message in self._messages(shop, topic, body):
            self._in_background(self._deliver_with_retries, message, f"devshop-webhook-{topic}")

    def send_now(self, shop: Shop, topic: str, payload: dict[str, Any] | None, *, retry: bool = False,
                 copies: int = 1, concurrent: bool = False) -> list[Delivery]:
        """Deliver at once and report every answer. `copies` sends the same message (same webhook id and
        body) several times, all at the same instant when `concurrent`; `retry` schedules retries in the
        background when no copy got a 2xx."""
        body = json.dumps(payload if payload is not None else default_payload(shop, topic),
                          ensure_ascii=False).encode()
        deliveries: list[Delivery] = []
        for message in self._messages(shop, topic, body):
            sent = self._send_copies(message, copies, concurrent, retry)
            deliveries.extend(sent)
            if retry and not any(d.ok for d in sent) and self.retry_schedule:
                self._in_background(self._retry, message, f"devshop-webhook-retry-{topic}")
        return deliveries

    def _send_copies(self, message: Message, copies: int, concurrent: bool, retry: bool) -> list[Delivery]:
        if copies <= 1 or not concurrent:
            return [self._attempt(message, 1, copy, retrying=retry and copy == copies) for copy in
                    range(1, copies + 1)]
        # Every copy waits at the barrier so all of them hit the app at the same instant.
        barrier = threading.Barrier(copies)
        results: list[Delivery | None] = [None] * copies

        def send(index: int) -> None:
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            results[index] = self._attempt(message, 1, index + 1, retrying=retry and index == copies - 1)

        threads = [threading.Thread(target=send, args=(i,), name=f"devshop-webhook-copy-{i + 1}", daemon=True)
                   for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [d for d in results if d is not None]

    def _in_background(self, target: Callable[[Message], object], message: Message, name: str) -> None:
        threading.Thread(target=target, args=(message,), name=name, daemon=True).start()

    def _deliver_with_retries(self, message: Message) -> None:
        if not self._attempt(message, 1, retrying=True).ok:
            self._retry(message)

    def _retry(self, message: Message) -> None:
        """Attempts 2.. after the first one failed, with the original body, webhook id and address."""
        for attempt, delay in enumerate(self.retry_schedule, start=2):
            if self._closed.wait(delay):
                return
            if self._attempt(message, attempt, retrying=True).ok:
                return

    def _attempt(self, message: Message, attempt: int, copy: int = 1, *, retrying: bool = False) -> Delivery:
        delivery = Delivery(message.shop, message.topic, message.url, message.webhook_id, message.event_id,
                            attempt=attempt, copy=copy,
                            sent_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": message.topic,
            "X-Shopify-Hmac-Sha256": sign(self.api_secret, message.body),
            "X-Shopify-Shop-Domain": message.shop,
            "X-Shopify-Webhook-Id": message.webhook_id,
            "X-Shopify-Event-Id": message.event_id,
            "X-Shopify-Triggered-At": message.triggered_at,
            "X-Shopify-API-Version": self.api_version,
        }
        started = time.monotonic()
        try:
            # Shopify does not follow redirects: a 3xx is a failed delivery like any other non-2xx.
            response = requests.post(message.url, data=message.body, headers=headers, allow_redirects=False,
                                     timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout))
            delivery.status = response.status_code
            response.close()
        except requests.RequestException as err:
            delivery.error = f"{type(err).__name__}: {err}"
        except Exception as err:  # never let a delivery thread die noisily
            delivery.error = f"{type(err).__name__}: {err}"
            log.exception("webhook %s to %s crashed", message.topic, message.url)
        delivery.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        if not delivery.ok:
            if retrying and attempt <= len(self.retry_schedule) and not self._closed.is_set():
                delivery.retry_in = self.retry_schedule[attempt - 1]
            log.warning("webhook %s to %s attempt %d failed: %s%s", message.topic, message.url, attempt,
                        delivery.error or f"HTTP {delivery.status}",
                        f"; retrying in {delivery.retry_in:g} s" if delivery.retry_in is not None else "")
        with self._lock:
            self.log.append(delivery)
        return delivery

    def deliveries(self, shop_domain: str | None = None, topic: str | None = None,
                   webhook_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [d.as_dict() for d in self.log
                    if (shop_domain is None or d.shop == shop_domain) and (topic is None or d.topic == topic)
                    and (webhook_id is None or d.webhook_id == webhook_id)]
