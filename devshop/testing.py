"""Helpers for tests: serve devshop on a free port in a thread, and drive its /_devshop API."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from devshop import create_app


class QuietHandler(WSGIRequestHandler):
    """No access log lines in test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class DevShopServer:
    """`with DevShopServer(config) as shop:` serves create_app(config) on 127.0.0.1:<free port>."""

    def __init__(self, config: Mapping[str, Any] | None = None, host: str = "127.0.0.1") -> None:
        self.app: Flask = create_app(config)
        self._server = make_server(host, 0, self.app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self.admin_base_url = self.url + "/shops/{shop}"
        self._thread: threading.Thread | None = None

    def start(self) -> DevShopServer:
        if self._thread is None:
            # A short poll interval keeps stop() (and so every test teardown) quick.
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="devshop-test-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self.app.extensions["devshop"].close()  # pending webhook retries and bulk exports end with the server
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DevShopServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class DevShopControl:
    """A thin client for /_devshop; every method raises on a non-2xx answer."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._app: dict[str, Any] | None = None

    def _call(self, method: str, path: str, json: Any = None, params: Mapping[str, str] | None = None
              ) -> dict[str, Any]:
        response = requests.request(method, f"{self.url}/_devshop{path}", json=json, params=params,
                                    timeout=self.timeout)
        try:
            response.raise_for_status()
            return response.json()
        finally:
            response.close()

    def create_shop(self, shop: str, products: int = 2000, seed: int = 1, plan: str = "standard",
                    orders: int = 300, **extra: Any) -> dict[str, Any]:
        body = {"shop": shop, "products": products, "seed": seed, "plan": plan, "orders": orders, **extra}
        return self._call("POST", "/shops", body)

    def issue_token(self, shop: str, expiring: bool = False, scope: str = "read_products,read_orders"
                    ) -> dict[str, Any]:
        return self._call("POST", f"/shops/{shop}/access-tokens", {"expiring": expiring, "scope": scope})

    def session_token(self, shop: str, user_id: int = 1, lifetime: int = 60) -> str:
        return self._call("POST", f"/shops/{shop}/session-token",
                          {"user_id": user_id, "lifetime": lifetime})["session_token"]

    def set_throttle(self, shop: str, maximum_available: float, restore_rate: float) -> dict[str, Any]:
        return self._call("PUT", f"/shops/{shop}/throttle",
                          {"maximum_available": maximum_available, "restore_rate": restore_rate})

    def throttle(self, shop: str) -> dict[str, Any]:
        return self._call("GET", f"/shops/{shop}/throttle")

    def inject_fault(self, kind: str, count: int = 1, shop: str | None = None,
                     seconds: float | None = None, after: int | None = None) -> dict[str, Any]:
        """Arm a fault. `bulk_fail` fails the next bulk operation(s) after `after` root objects (default: half)."""
        body: dict[str, Any] = {"kind": kind, "count": count}
        if shop is not None:
            body["shop"] = shop
        if seconds is not None:
            body["seconds"] = seconds
        if after is not None:
            body["after"] = after
        return self._call("POST", "/faults", body)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def stats(self, shop: str) -> dict[str, Any]:
        return self._call("GET", f"/shops/{shop}/stats")

    def send_webhook(self, shop: str, topic: str, payload: Any = None, *, copies: int = 1,
                     concurrent: bool = False, retry: bool = False) -> dict[str, Any]:
        """Deliver now → {status, statuses, webhook_id, deliveries}. copies/concurrent: the same delivery
        (same webhook id) several times, at the same instant; retry: retry on the schedule if it fails."""
        body = {"topic": topic, "payload": payload, "copies": copies, "concurrent": concurrent, "retry": retry}
        return self._call("POST", f"/shops/{shop}/webhooks", body)

    def update_products(self, shop: str, ids: list[int], title_suffix: str, concurrency: int = 8
                        ) -> dict[str, Any]:
        """Append `title_suffix` to each product's title and deliver its products/update webhook, `concurrency`
        at a time → {started_at, finished_at, updates: [{product_id, title, status, ok, error, webhook_id,
        elapsed_ms, answered_at}]} (times in Unix seconds)."""
        return self._call("POST", f"/shops/{shop}/product-updates",
                          {"ids": ids, "title_suffix": title_suffix, "concurrency": concurrency})

    def webhook_deliveries(self, shop: str, topic: str | None = None, webhook_id: str | None = None
                           ) -> list[dict[str, Any]]:
        """Every delivery attempt (attempt, status, ok, webhook_id, retry_in, ...), oldest first."""
        params = {k: v for k, v in (("topic", topic), ("webhook_id", webhook_id)) if v}
        return self._call("GET", f"/shops/{shop}/webhooks", params=params)["deliveries"]

    def wait_for_deliveries(self, shop: str, topic: str | None = None, count: int = 1, timeout: float = 10.0,
                            webhook_id: str | None = None) -> list[dict[str, Any]]:
        """Poll the delivery log until at least `count` attempts match; TimeoutError (naming them) if not."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.webhook_deliveries(shop, topic, webhook_id)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(found)} of {count} deliveries of {topic or 'any topic'} to {shop} "
                                   f"after {timeout:g} s: {found}")
            time.sleep(0.02)

    def bulk_operations(self, shop: str) -> list[dict[str, Any]]:
        """The shop's bulk operations, oldest first: id, status, error_code, object_count, url, partial_data_url..."""
        return self._call("GET", f"/shops/{shop}/bulk-operations")["bulk_operations"]

    def bulk_settings(self) -> dict[str, Any]:
        return self._call("GET", "/bulk")

    def set_bulk_delay(self, seconds: float) -> dict[str, Any]:
        """Slow every bulk export down by `seconds` per 1,000 objects (0 for full speed)."""
        return self._call("PUT", "/bulk", {"delay": seconds})

    def wait_for_bulk_operation(self, shop: str, operation_id: str | None = None, timeout: float = 60.0
                                ) -> dict[str, Any]:
        """Poll until the operation (default: the shop's latest) is finished; TimeoutError if it is not."""
        deadline = time.monotonic() + timeout
        while True:
            ops = self.bulk_operations(shop)
            op = next((o for o in ops if o["id"] == operation_id), None) if operation_id else (ops[-1] if ops else None)
            if op is not None and op["status"] in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED"):
                return op
            if time.monotonic() >= deadline:
                raise TimeoutError(f"bulk operation {operation_id or 'latest'} on {shop} not finished after "
                                   f"{timeout:g} s: {op}")
            time.sleep(0.05)

    def app(self) -> dict[str, Any]:
        """devshop's view of the app: api_key, app_url, application_url, app_proxy, authorize_mode, webhooks."""
        if self._app is None:
            self._app = self._call("GET", "/app")
        return self._app

    def proxy_url(self, shop: str, path: str = "") -> str:
        """The storefront URL that reaches the app through the app proxy, e.g. proxy_url(shop, "feeds/new")
        → http://127.0.0.1:<port>/shops/<shop>/apps/lumi/feeds/new. Add a query string as usual."""
        proxy = self.app()["app_proxy"]
        if not proxy:
            raise LookupError("devshop has no app proxy: set APP_URL and [app_proxy] in shopify.app.toml")
        base = f"{self.url}/shops/{shop}{proxy['path_prefix']}"
        return f"{base}/{path.lstrip('/')}" if path else base

    def proxy_settings(self) -> dict[str, Any]:
        """The app proxy's mode: {"buffer": bool, "timeout": seconds, "app_proxy": {...} or None}."""
        return self._call("GET", "/proxy")

    def set_proxy_buffer(self, buffer: bool) -> dict[str, Any]:
        """True: the proxy reads the app's whole answer, then sends it with a Content-Length; False: it streams."""
        return self._call("POST", "/proxy", {"buffer": buffer})

    def login_url(self, shop: str, customer_id: int | str | None = None, return_to: str | None = None) -> str:
        """devshop's "log in as" page (customer_id None: the list), which sets its login cookie and redirects."""
        params = {k: str(v) for k, v in (("customer", customer_id), ("return_to", return_to)) if v is not None}
        query = "?" + "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items()) if params else ""
        return f"{self.url}/shops/{shop}/account/login{query}"

    def logout_url(self, shop: str) -> str:
        return f"{self.url}/shops/{shop}/account/logout"

    def admin_app_url(self, shop: str, path: str = "") -> str:
        """The admin page that loads the app in its iframe (what OAuth's callback redirects to); `path` is a page
        under the app's application_url, e.g. admin_app_url(shop, "feeds") loads <application_url>/feeds."""
        base = f"{self.url}/shops/{shop}/admin/apps/{self.app()['api_key']}"
        return f"{base}/{path.lstrip('/')}" if path.strip("/") else base

    def app_bridge_url(self) -> str:
        """devshop's App Bridge stand-in: what the app's SHOPIFY_APP_BRIDGE_URL points at in tests and make dev."""
        return f"{self.url}/_devshop/app-bridge.js"

    def storefront(self, shop: str) -> dict[str, Any]:
        """The shop's storefront: app blocks per template, the extension's blocks, `pages` (home, product, collection
        paths) and `demo_product`."""
        return self._call("GET", f"/shops/{shop}/storefront")

    def set_storefront(self, shop: str, **templates: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace the app blocks of the templates given, e.g. set_storefront(shop, product=[{"type": "product-feed",
        "settings": {"feed": "on-sale", "layout": "scroller"}}], index=[]); `embeds=[...]` for app embeds."""
        return self._call("PUT", f"/shops/{shop}/storefront", templates)

    def reset_storefront(self, shop: str) -> dict[str, Any]:
        return self._call("DELETE", f"/shops/{shop}/storefront")

    def markets(self, shop: str, country: str | None = None, handle: str | None = None) -> dict[str, Any]:
        """The shop's markets; with country (and handle) the market there (and that product's prices in it)."""
        params = {k: v for k, v in (("country", country), ("handle", handle)) if v}
        return self._call("GET", f"/shops/{shop}/markets", params=params)

    def storefront_url(self, shop: str, path: str = "") -> str:
        """A storefront page: storefront_url(shop) is the home page, storefront_url(shop, "products/<handle>")."""
        return f"{self.url}/shops/{shop}/{path.lstrip('/')}"

    def uninstall(self, shop: str) -> dict[str, Any]:
        return self._call("POST", f"/shops/{shop}/uninstall")
