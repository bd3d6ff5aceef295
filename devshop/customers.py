"""A logged-in shopper on devshop's storefront, so the logged-in path of an app can be tried in a browser.

Shopify knows its customer from its own session cookie; devshop plays one of two ways:
- the request header `X-Devshop-Customer-Id: <id>` (any numeric id; a test hook, never forwarded), or
- `GET /shops/<shop>/account/login?customer=<id>`: sets devshop's cookie `devshop_customer` (path /shops/<shop>/,
  HttpOnly, SameSite=Lax) and redirects to the shop's home page (or to `return_to`, a path of that shop);
  without `customer` it lists the shop's demo customers with "log in as" links. `/shops/<shop>/account/logout`
  clears it. Only the shop's demo customers (DEMO_ORDERS) can log in this way.

The header wins over the cookie. Storefront pages then get a Liquid `customer` object and the app proxy sends
`logged_in_customer_id`; like Shopify's proxy, devshop's never passes the cookie on to the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from devshop.orders import DEMO_ORDERS, DemoCustomer
from devshop.pages import plain_error
from devshop.shops import Shop
from devshop.state import get_state

CUSTOMER_HEADER = "X-Devshop-Customer-Id"
COOKIE = "devshop_customer"
COOKIE_MAX_AGE = 14 * 86400  # Shopify's customer sessions last days; the exact span does not matter here

bp = Blueprint("devshop_customers", __name__)


@dataclass(frozen=True)
class Customer:
    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    orders: tuple[str, ...]  # order names, oldest first

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or f"Customer {self.id}"


def shop_customers(shop: Shop) -> list[Customer]:
    """The shop's demo customers that have at least one order in it (a shop with 2 orders has only #1001-#1002)."""
    people: dict[int, DemoCustomer] = {d.customer.id: d.customer for d in DEMO_ORDERS.values()}
    found = []
    for person in people.values():
        numbers = shop.orders.demo_numbers_of(person.id) or ()
        if numbers:
            names = tuple(order.name for order in DEMO_ORDERS.values() if order.number in numbers)
            found.append(Customer(person.id, person.email, person.first_name, person.last_name, names))
    return found


def customer_for(shop: Shop, customer_id: str) -> Customer | None:
    """The customer with that id: a demo customer in full, any other numeric id (the header's) with its id only."""
    if not customer_id.isdigit():
        return None
    known = next((c for c in shop_customers(shop) if str(c.id) == customer_id), None)
    return known or Customer(int(customer_id), None, None, None, ())


def cookie_customer_id(shop: Shop) -> str | None:
    """The id in devshop's login cookie when it names a customer of this shop (a reset shop may have fewer)."""
    value = (request.cookies.get(COOKIE) or "").strip()
    return value if any(str(c.id) == value for c in shop_customers(shop)) else None


def current_customer_id(shop: Shop) -> str:
    """The request's logged-in customer id: the header, else the login cookie; "" for a guest."""
    return request.headers.get(CUSTOMER_HEADER, "").strip() or cookie_customer_id(shop) or ""


def current_customer(shop: Shop) -> Customer | None:
    wanted = current_customer_id(shop)
    return customer_for(shop, wanted) if wanted else None


# ---- routes --------------------------------------------------------------------------------------------------------

def _root(shop: Shop) -> str:
    return f"/shops/{shop.domain}/"


def _return_to(shop: Shop) -> str:
    """Where to go after logging in or out: `return_to` when it is a path of this shop's storefront, else home."""
    wanted = request.args.get("return_to") or ""
    return wanted if wanted.startswith(_root(shop)) and "//" not in wanted and "\\" not in wanted else _root(shop)


@bp.get("/shops/<shop_domain>/account/login")
def login(shop_domain: str) -> BaseResponse:
    shop = get_state().shops.get(shop_domain)
    if shop is None:
        return plain_error("Not found", f"There is no store at {shop_domain}.", 404)
    wanted = request.args.get("customer")
    if wanted is None:
        return _login_page(shop)
    customer = next((c for c in shop_customers(shop) if str(c.id) == wanted.strip()), None)
    if customer is None:
        return plain_error("Not found", f"{shop.domain} has no demo customer {wanted!r}; "
                           f"open {_root(shop)}account/login for the list.", 404)
    response = redirect(_return_to(shop), 303)
    response.set_cookie(COOKIE, str(customer.id), max_age=COOKIE_MAX_AGE, path=_root(shop), httponly=True,
                        samesite="Lax")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/shops/<shop_domain>/account/logout")
def logout(shop_domain: str) -> BaseResponse:
    shop = get_state().shops.get(shop_domain)
    if shop is None:
        return plain_error("Not found", f"There is no store at {shop_domain}.", 404)
    response = redirect(_return_to(shop), 303)
    response.delete_cookie(COOKIE, path=_root(shop), httponly=True, samesite="Lax")
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_page(shop: Shop) -> Response:
    root = _root(shop)
    current = current_customer(shop)
    extra = {"return_to": request.args["return_to"]} if "return_to" in request.args else {}
    items = "".join(
        f'<li><a href="{escape(root)}account/login?{escape(urlencode({"customer": c.id, **extra}))}">'
        f"Log in as {escape(c.name)}</a> <span>({escape(c.email or '')}; orders "
        f"{escape(', '.join(c.orders))})</span></li>" for c in shop_customers(shop))
    status = (f'<p>Logged in as {escape(current.name)} (customer {current.id}). '
              f'<a href="{escape(root)}account/logout">Log out</a></p>' if current else "<p>You are a guest.</p>")
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Log in · {escape(shop.name)} (devshop)</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        "li{margin:.5rem 0}a{display:inline-block;min-height:44px;padding:.6rem 0}</style></head>"
        f"<body><main><h1>Log in to {escape(shop.name)}</h1>"
        "<p>devshop plays a logged-in customer: pick one of the shop's demo customers. The storefront and the app "
        "proxy (<code>logged_in_customer_id</code>) then see that customer until you log out.</p>"
        f"{status}<ul>{items or '<li>This shop has no demo customers (it has no orders).</li>'}</ul>"
        f'<p><a href="{escape(root)}">Back to the store</a></p></main></body></html>'
    )
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response
