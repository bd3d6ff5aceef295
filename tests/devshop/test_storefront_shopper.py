"""What a shopper's browser meets on devshop's storefront: a logged-in customer (header or "log in as" cookie) as
Liquid's `customer` sees it, the fixed "Apply filters" button a test can ask a page for (?devshop_fixed=apply-filters),
and the storefront's origin as the Admin API's `shop.primaryDomain`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from devshop import create_app
from devshop.orders import DEMO_CUSTOMER_ID, OTHER_CUSTOMER_ID
from devshop.testing import DevShopControl, DevShopServer
from shopify.version import API_VERSION

from .test_storefront import page, parse, scratch_extension

SHOP = "login-store.myshopify.com"
TINY = "tiny-store.myshopify.com"  # one order: only Sam Shopper has one
ROOT = f"/shops/{SHOP}/"
# An embed that prints what it sees of the customer (as the chat embed reads customer.id).
WHO = """
    <x-who data-id="{{ customer.id }}" data-email="{{ customer.email }}" data-first="{{ customer.first_name }}"
           data-last="{{ customer.last_name }}" data-name="{{ customer.name }}"
           data-guest="{% if customer %}no{% else %}yes{% endif %}"></x-who>
    {% schema %}{"name": "Who", "target": "body", "settings": []}{% endschema %}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    root = scratch_extension(tmp_path, {"blocks/who.liquid": WHO})
    made = create_app({"SHOPS": {SHOP: {"products": 40, "seed": 2, "orders": 20}, TINY: {"products": 5, "orders": 1}},
                       "STOREFRONT_EXTENSION_DIR": str(root)})
    yield made
    made.extensions["devshop"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    for shop in (SHOP, TINY):
        assert client.post(f"/_devshop/shops/{shop}/access-tokens", json={}).status_code == 201
        assert client.put(f"/_devshop/shops/{shop}/storefront", json={"embeds": [{"type": "who"}]}).status_code == 200
    return client


def who(client: FlaskClient, path: str = ROOT, **headers: str) -> dict[str, str]:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text[:2000]
    [element] = parse(answer.get_data(as_text=True)).find("x-who")
    return {k.removeprefix("data-"): v for k, v in element.attrs.items()}


def test_a_guest_has_no_customer_and_a_log_in_link(client: FlaskClient) -> None:
    assert who(client)["guest"] == "yes" and who(client)["id"] == ""
    home = page(client, ROOT)
    [link] = [a for a in home.find("a") if a.attrs.get("href", "").startswith(f"{ROOT}account/login")]
    assert link.attrs["href"] == f"{ROOT}account/login?return_to=%2Fshops%2F{SHOP}%2F"


def test_log_in_as_a_demo_customer_then_log_out(client: FlaskClient) -> None:
    listing = client.get(f"{ROOT}account/login")
    assert listing.status_code == 200 and listing.headers["Cache-Control"] == "no-store"
    html = listing.get_data(as_text=True)
    assert "Log in as Sam Shopper" in html and "shopper@example.com" in html and "#1001, #1002, #1003" in html
    assert "Log in as Olive Other" in html and "You are a guest." in html
    assert f'href="{ROOT}account/login?customer={DEMO_CUSTOMER_ID}"' in html

    logged_in = client.get(f"{ROOT}account/login?customer={DEMO_CUSTOMER_ID}")
    assert logged_in.status_code == 303 and logged_in.headers["Location"] == ROOT
    cookie = logged_in.headers["Set-Cookie"]
    assert cookie.startswith(f"devshop_customer={DEMO_CUSTOMER_ID};") and f"Path={ROOT}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    product = client.get(f"/_devshop/shops/{SHOP}/storefront").get_json()["pages"]["product"]
    seen = who(client, product)  # every page of the shop
    assert seen == {"id": str(DEMO_CUSTOMER_ID), "email": "shopper@example.com", "first": "Sam", "last": "Shopper",
                    "name": "Sam Shopper", "guest": "no"}
    header = page(client, ROOT).text
    assert "Hi, Sam" in header and f'href="{ROOT}account/logout?return_to=' in header
    assert "Logged in as Sam Shopper" in client.get(f"{ROOT}account/login").get_data(as_text=True)

    # The header (a test hook) wins over the cookie.
    assert who(client, **{"X-Devshop-Customer-Id": str(OTHER_CUSTOMER_ID)})["email"] == "other@example.com"

    out = client.get(f"{ROOT}account/logout")
    assert out.status_code == 303 and out.headers["Location"] == ROOT
    assert who(client)["guest"] == "yes"


def test_return_to_brings_the_shopper_back_to_a_page_of_the_same_shop(client: FlaskClient) -> None:
    product = f"{ROOT}products/anything?locale=fr"
    back = client.get(f"{ROOT}account/login", query_string={"customer": DEMO_CUSTOMER_ID, "return_to": product})
    assert back.headers["Location"] == product
    for elsewhere in ("https://evil.example/", "//evil.example/", f"/shops/{TINY}/", "/_devshop/shops"):
        answer = client.get(f"{ROOT}account/logout", query_string={"return_to": elsewhere})
        assert answer.headers["Location"] == ROOT, elsewhere


def test_only_the_shops_demo_customers_can_log_in(client: FlaskClient) -> None:
    assert client.get(f"{ROOT}account/login?customer=12345").status_code == 404
    assert client.get(f"/shops/{TINY}/account/login?customer={OTHER_CUSTOMER_ID}").status_code == 404  # no #1004
    listing = client.get(f"/shops/{TINY}/account/login").get_data(as_text=True)
    assert "Sam Shopper" in listing and "#1001)" in listing and "Olive" not in listing
    assert client.get("/shops/nope.myshopify.com/account/login").status_code == 404
    # A cookie devshop did not set for a customer of this shop counts for nothing.
    client.set_cookie("devshop_customer", "12345", path=ROOT)
    assert who(client)["guest"] == "yes"


def test_the_header_plays_any_customer_id(client: FlaskClient) -> None:
    assert who(client, **{"X-Devshop-Customer-Id": str(DEMO_CUSTOMER_ID)})["name"] == "Sam Shopper"
    unknown = who(client, **{"X-Devshop-Customer-Id": "55"})
    assert unknown["id"] == "55" and unknown["guest"] == "no" and unknown["email"] == ""
    assert "Hi, Customer 55" in client.get(ROOT, headers={"X-Devshop-Customer-Id": "55"}).get_data(as_text=True)


def test_devshop_fixed_puts_an_apply_filters_button_at_the_bottom_right(client: FlaskClient) -> None:
    plain = page(client, ROOT)
    assert not [e for e in plain.elements if e.attrs.get("id") == "devshop-fixed-apply-filters"]
    for locale, label in (("en", "Apply filters"), ("fr", "Appliquer les filtres")):
        html = client.get(f"{ROOT}?devshop_fixed=apply-filters&locale={locale}").get_data(as_text=True)
        assert re.search(rf'<button type="button" id="devshop-fixed-apply-filters"[^>]*>{label}</button>', html)
        # The theme's own fixed element is in the page, before the app embeds (they go right before </body>).
        assert html.index('id="devshop-fixed-apply-filters"') < html.index("<x-who")
    css = re.search(r"\.devshop-fixed-apply-filters \{([^}]*)\}", html)
    assert css is not None
    rules = dict(part.strip().split(": ", 1) for part in css.group(1).split(";") if part.strip())
    assert rules["position"] == "fixed" and rules["right"] == "16px" and rules["bottom"] == "16px"
    assert rules["height"] == "56px" and rules["z-index"] == "4"
    bad = client.get(f"{ROOT}?devshop_fixed=cookie-bar")
    assert bad.status_code == 400 and "apply-filters" in bad.get_data(as_text=True)


def test_primary_domain_is_the_storefronts_origin(devshop: DevShopServer, control: DevShopControl) -> None:
    """A browser on devshop's storefront pages sends Origin: <primaryDomain.url>, so an app that allows its shop's
    primary domain for CORS allows devshop's storefront, on whichever host name devshop was reached."""
    from .conftest import SHOP as SERVED

    token = control.issue_token(SERVED)["access_token"]
    port = devshop.url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost"):
        origin = f"http://{host}:{port}"
        answer = requests.post(f"{origin}/shops/{SERVED}/admin/api/{API_VERSION}/graphql.json",
                               json={"query": "{ shop { myshopifyDomain primaryDomain { url host sslEnabled } } }"},
                               headers={"X-Shopify-Access-Token": token}, timeout=10)
        shop = answer.json()["data"]["shop"]
        assert shop["primaryDomain"] == {"url": origin, "host": f"{host}:{port}", "sslEnabled": False}
        assert shop["myshopifyDomain"] == SERVED
        home = requests.get(f"{origin}/shops/{SERVED}/", timeout=10).text
        assert f'<link rel="canonical" href="{origin}/shops/{SERVED}/">' in home, "the pages are on that origin"
