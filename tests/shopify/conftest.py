"""Fixtures for the Admin API client tests: one devshop server per module, a client factory, a sleep recorder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from shopify.admin import AdminClient
from tests.shopify.support import CLIENT_SHOP, DEVSHOP_CONFIG, SleepRecorder

if TYPE_CHECKING:
    from devshop.testing import DevShopControl, DevShopServer


@pytest.fixture(scope="module")
def devshop() -> Iterator[DevShopServer]:
    from devshop.testing import DevShopServer

    with DevShopServer(DEVSHOP_CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def control(devshop: DevShopServer) -> DevShopControl:
    from devshop.testing import DevShopControl

    return DevShopControl(devshop.url)


@pytest.fixture(autouse=True)
def no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults injected by one test never leak into the next."""
    if "control" not in request.fixturenames:
        yield
        return
    control: DevShopControl = request.getfixturevalue("control")
    control.clear_faults()
    yield
    control.clear_faults()


@pytest.fixture
def token(control: DevShopControl) -> Callable[[str], str]:
    """`token(shop)`: a fresh, valid offline access token issued by devshop."""

    def issue(shop: str = CLIENT_SHOP) -> str:
        return str(control.issue_token(shop)["access_token"])

    return issue


@pytest.fixture
def make_client(devshop: DevShopServer, token: Callable[[str], str]) -> Iterator[Callable[..., AdminClient]]:
    """`make_client(shop=..., **options)`: an AdminClient pointed at devshop, with a valid token by default."""
    clients: list[AdminClient] = []
    sessions: list[requests.Session] = []

    def make(shop: str = CLIENT_SHOP, **options: Any) -> AdminClient:
        options.setdefault("sleep", SleepRecorder(real=False))
        if options.get("session") is not None:
            sessions.append(options["session"])  # a client never closes a session it was given
        access_token = options.pop("access_token", None) or token(shop)
        client = AdminClient(shop, access_token, base_url=devshop.admin_base_url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    for session in sessions:
        session.close()
