"""Helpers for tests: serve devshop on a free port in a thread, and drive its /_devshop API."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

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

    def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        response = requests.request(method, f"{self.url}/_devshop{path}", json=json, timeout=self.timeout)
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
                     seconds: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "count": count}
        if shop is not None:
            body["shop"] = shop
        if seconds is not None:
            body["seconds"] = seconds
        return self._call("POST", "/faults", body)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def stats(self, shop: str) -> dict[str, Any]:
        return self._call("GET", f"/shops/{shop}/stats")

    def send_webhook(self, shop: str, topic: str, payload: Any = None) -> dict[str, Any]:
        return self._call("POST", f"/shops/{shop}/webhooks", {"topic": topic, "payload": payload})

    def webhook_deliveries(self, shop: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/shops/{shop}/webhooks")["deliveries"]

    def uninstall(self, shop: str) -> dict[str, Any]:
        return self._call("POST", f"/shops/{shop}/uninstall")
