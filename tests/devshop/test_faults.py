"""Injected faults: 5xx answers, held requests, dropped connections; counted down and optionally per shop."""

from __future__ import annotations

import time

import pytest
import requests

from devshop.testing import DevShopControl

from .conftest import SHOP, Admin

QUERY = "{ shop { name } }"


def test_500_then_success(admin: Admin, control: DevShopControl) -> None:
    control.inject_fault("http_500", count=2)
    assert admin.post(QUERY).status_code == 500
    assert admin.post(QUERY).status_code == 500
    ok = admin.post(QUERY)
    assert ok.status_code == 200 and ok.json()["data"]["shop"]["name"] == "Lumi Demo"
    assert control.stats(SHOP)["faults_served"] == 2
    assert control.stats(SHOP)["graphql_requests"] == 3


def test_faults_can_target_one_shop(admin: Admin, control: DevShopControl) -> None:
    control.inject_fault("http_503", shop="someone-else.myshopify.com")
    assert admin.post(QUERY).status_code == 200
    control.inject_fault("http_502", shop=SHOP)
    assert admin.post(QUERY).status_code == 502
    control.inject_fault("http_500", count=5)
    control.clear_faults()
    assert admin.post(QUERY).status_code == 200


def test_timeout_holds_the_request(admin: Admin, control: DevShopControl) -> None:
    control.inject_fault("timeout", seconds=0.6)
    with pytest.raises(requests.Timeout):
        admin.post(QUERY, timeout=0.2)
    control.inject_fault("timeout", seconds=0.3)
    started = time.monotonic()
    response = admin.post(QUERY)
    assert response.status_code == 200 and time.monotonic() - started >= 0.3
    time.sleep(0.5)  # let the first held request finish before the server stops


def test_drop_closes_without_a_response(admin: Admin, control: DevShopControl) -> None:
    control.inject_fault("drop")
    with pytest.raises(requests.ConnectionError):
        requests.post(admin.endpoint, json={"query": QUERY}, headers={"X-Shopify-Access-Token": admin.token},
                      timeout=5)
    assert admin.post(QUERY).status_code == 200


def test_unknown_fault_kind_is_refused(control: DevShopControl) -> None:
    with pytest.raises(requests.HTTPError):
        control.inject_fault("meteor")
