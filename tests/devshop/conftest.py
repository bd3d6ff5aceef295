"""Fixtures for devshop tests: a served devshop, its control client, a token'd Admin API client, a webhook sink."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server

from devshop.testing import DevShopControl, DevShopServer, QuietHandler
from shopify.version import API_VERSION

SHOP = "lumi-demo.myshopify.com"
ALL_SCOPES = "read_products,write_products,read_orders,read_inventory,write_inventory"


class FakeClock:
    """A monotonic clock the test moves by hand, for exact bucket and expiry arithmetic."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Admin:
    """Posts GraphQL to one shop the way Lumi's client does (only the base URL is devshop's)."""

    base_url: str
    shop: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def endpoint(self) -> str:
        return self.base_url.format(shop=self.shop) + f"/admin/api/{API_VERSION}/graphql.json"

    def post(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
             **kwargs: Any) -> requests.Response:
        headers = {"X-Shopify-Access-Token": self.token if token is None else token}
        return self.session.post(self.endpoint, json={"query": query, "variables": variables}, headers=headers,
                                 timeout=kwargs.pop("timeout", 30), **kwargs)

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.gql(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture
def devshop() -> Iterator[DevShopServer]:
    with DevShopServer({"SHOPS": {SHOP: {"products": 300, "seed": 7, "orders": 120}}}) as server:
        yield server


@pytest.fixture
def control(devshop: DevShopServer) -> DevShopControl:
    return DevShopControl(devshop.url)


@pytest.fixture
def admin(devshop: DevShopServer, control: DevShopControl) -> Iterator[Admin]:
    token = control.issue_token(SHOP, scope=ALL_SCOPES)["access_token"]
    client = Admin(devshop.admin_base_url, SHOP, token)
    yield client
    client.session.close()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.monotonic() when the request arrived


class WebhookSink:
    """A tiny app on a free port that records every POST, answering with a status of our choosing.

    `script` holds (status, seconds to wait first) answers used one per request, before `status`."""

    def __init__(self) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        self.status = 200
        self.script: list[tuple[int, float]] = []
        self._script_lock = threading.Lock()
        app = Flask("webhook-sink")

        @app.post("/<path:path>")
        def hook(path: str) -> tuple[str, int]:
            self.received.put(Received("/" + path, dict(request.headers), request.get_data(), time.monotonic()))
            with self._script_lock:
                status, wait = self.script.pop(0) if self.script else (self.status, 0.0)
            if wait:
                time.sleep(wait)
            return "", status

        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def next(self, timeout: float = 10.0) -> Received:
        return self.received.get(timeout=timeout)

    def take(self, count: int, timeout: float = 10.0) -> list[Received]:
        return [self.next(timeout) for _ in range(count)]

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    receiver = WebhookSink()
    yield receiver
    receiver.stop()
