"""Feed prices in the shopper's market, end to end: devshop's markets → Admin API → index → `?country=` feeds.

A USD devshop shop sells in a second market, Europe (EUR, x.95 rounding, one product at a fixed price). The
expected prices come from devshop's own `devshop.markets.market_price` (what its storefront pages show), and
the card's variant is chosen here independently of Lumi's code: the cheapest available variant (the cheapest
when none is available; the most discounted among equally cheap ones).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import meilisearch
import pytest
import requests

from devshop.catalogue import LOCATION_ID
from devshop.markets import Market, market_for_country, market_price
from tests.conftest import DEMO_SHOP, Stack
from tests.helpers import graphql, indexed, synced, wait_until


@pytest.fixture
def usd_stack(make_stack, meili_client: meilisearch.Client, start_worker) -> Stack:  # type: ignore[no-untyped-def]
    from feeds.index import ensure_indexes

    ensure_indexes(meili_client)
    stack: Stack = make_stack(SHOPS={DEMO_SHOP: {"products": 40, "seed": 5, "currency": "USD"}},
                              BUCKET_SIZE=20000, RESTORE_RATE=20000)
    start_worker(stack.env)
    stack.install()
    wait_until(synced(stack), what="the first sync")
    return stack


def devshop_shop(stack: Stack) -> Any:
    return stack.devshop.app.extensions["devshop"].shops.get(DEMO_SHOP)


def expected_card(stack: Stack, pid: int, country: str) -> tuple[str, str | None, str, bool]:
    """(price, compare-at or None, currency, price varies) as devshop prices the product for `country`."""
    shop = devshop_shop(stack)
    market: Market = market_for_country(shop.markets, country)
    product = shop.catalogue.product(shop.catalogue.index_of(pid))
    priced = []
    for position, v in enumerate(product.variants):
        price, compare = market_price(market, pid, v.price, v.compare_at_price)
        priced.append((price, compare if compare is not None and compare > price else None, v.available_for_sale,
                       position))
    pool = [p for p in priced if p[2]] or priced
    price, compare, _, _ = min(pool, key=lambda p: (p[0], -(p[1] or 0), p[3]))
    return f"{price:.2f}", None if compare is None else f"{compare:.2f}", market.currency, len(
        {p[0] for p in priced}) > 1


def feed(stack: Stack, path: str = "new-arrivals", **params: Any) -> dict[str, Any]:
    response = stack.http.get(f"{stack.url}/proxy/feeds/{path}", params={"shop": DEMO_SHOP, "limit": 50, **params},
                              timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def spaces(text: str | None) -> str | None:
    return None if text is None else text.replace("\xa0", " ").replace("\u202f", " ")


def test_cards_carry_each_markets_own_prices(usd_stack: Stack, meili_client: meilisearch.Client) -> None:
    stack = usd_stack
    shop = devshop_shop(stack)
    europe = next(m for m in shop.markets if not m.primary)
    assert (shop.currency, europe.currency) == ("USD", "EUR") and "FR" in europe.countries
    fixed = next(iter(europe.fixed_prices))
    listed = set(indexed(meili_client, DEMO_SHOP))
    assert fixed in listed

    fr = feed(stack, country="FR", locale="fr")["products"]
    assert {int(c["id"]) for c in fr} == listed  # the whole (small) catalogue in one page
    for card in fr:
        price, compare, currency, varies = expected_card(stack, int(card["id"]), "FR")
        assert (card["price"], card["compare_at_price"], card["currency"], card["price_varies"]) == (
            price, compare, "EUR", varies), card["id"]
        assert spaces(card["price_formatted"]) == f"{price.replace('.', ',')} €"
        assert spaces(card["compare_at_price_formatted"]) == (None if compare is None else
                                                             f"{compare.replace('.', ',')} €")
        if int(card["id"]) == fixed:
            assert (card["price"], card["compare_at_price"]) == ("9.00", None)  # the market's fixed price
        else:
            assert card["price"].endswith(".95")  # converted and rounded up to x.95, as devshop's storefront does
    assert sum(c["compare_at_price"] is not None for c in fr) > 0

    us = {c["id"]: c for c in feed(stack, country="US")["products"]}
    for pid, card in us.items():
        price, compare, currency, varies = expected_card(stack, int(pid), "US")
        assert (card["price"], card["compare_at_price"], card["currency"]) == (price, compare, "USD")
        assert card["price_formatted"] == f"${Decimal(price):,.2f}"
    # No market covers Japan: the primary market's prices, as with no country at all.
    assert feed(stack, country="JP")["products"] == list(us.values()) == feed(stack)["products"]
    # Germany is in the same market as France: the same amounts (formatted for the default locale, en).
    de = feed(stack, country="de")["products"]
    assert [(c["price"], c["currency"]) for c in de] == [(c["price"], c["currency"]) for c in fr]
    assert de[0]["price_formatted"] == f"€{de[0]['price']}"


def test_the_cache_never_mixes_two_countries_or_locales(usd_stack: Stack) -> None:
    from feeds import service
    from web import feeds as web_feeds

    stack = usd_stack
    first = {country: feed(stack, country=country, locale="fr") for country in ("FR", "US")}
    for round_ in range(3):
        if round_:  # the second round from the Redis body cache, the third from this process's memory as well
            service._bodies.clear()
            web_feeds._answers.clear()
        for country, expected in first.items():
            again = feed(stack, country=country, locale="fr")
            assert again["products"] == expected["products"]
            assert {c["currency"] for c in again["products"]} == {"EUR" if country == "FR" else "USD"}
        english = feed(stack, country="FR", locale="en")["products"]
        assert [c["price"] for c in english] == [c["price"] for c in first["FR"]["products"]]
        assert english[0]["price_formatted"] != first["FR"]["products"][0]["price_formatted"]
    on_sale = feed(stack, "on-sale", country="FR")["products"]
    assert on_sale and all(c["compare_at_price"] and Decimal(c["compare_at_price"]) > Decimal(c["price"])
                           for c in on_sale)


def test_invalid_country_is_a_400_and_an_unknown_locale_is_english(usd_stack: Stack) -> None:
    stack = usd_stack
    for bad in ("FRA", "F", "12"):
        response = stack.http.get(f"{stack.url}/proxy/feeds/new-arrivals",
                                  params={"shop": DEMO_SHOP, "country": bad}, timeout=30)
        assert response.status_code == 400
        assert response.json()["error"]["details"]["param"] == "country"
    assert feed(stack, country="FR", locale="zz-nope")["products"] == feed(stack, country="FR", locale="en")[
        "products"]


def _set_variants(stack: Stack, token: str, pid: int, rows: list[dict[str, Any]]) -> None:
    result = graphql(stack, token, "mutation($id: ID!, $v: [ProductVariantsBulkInput!]!) { "
                     "productVariantsBulkUpdate(productId: $id, variants: $v) { userErrors { message } } }",
                     {"id": f"gid://shopify/Product/{pid}", "v": rows})
    assert result["productVariantsBulkUpdate"]["userErrors"] == []


def _set_stock(stack: Stack, token: str, variant_gid: str, quantity: int) -> None:
    item = graphql(stack, token, "query($id: ID!) { productVariant(id: $id) { inventoryItem { id } } }",
                   {"id": variant_gid})["productVariant"]["inventoryItem"]["id"]
    result = graphql(stack, token, "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities("
                     "input: $input) { userErrors { message } } }",
                     {"input": {"name": "available", "reason": "correction", "ignoreCompareQuantity": True,
                                "quantities": [{"inventoryItemId": item, "quantity": quantity,
                                                "locationId": f"gid://shopify/Location/{LOCATION_ID}"}]}})
    assert result["inventorySetQuantities"]["userErrors"] == []


def test_multi_variant_sale_and_sold_out_cards_through_webhooks(usd_stack: Stack,
                                                              meili_client: meilisearch.Client) -> None:
    stack = usd_stack
    shop = devshop_shop(stack)
    fixed = next(iter(next(m for m in shop.markets if not m.primary).fixed_prices))
    candidates = [pid for pid in sorted(indexed(meili_client, DEMO_SHOP)) if pid != fixed]
    pid = next(p for p in candidates
               if len((prod := shop.catalogue.product(shop.catalogue.index_of(p))).variants) >= 3
               and all(v.tracked and v.inventory_policy == "DENY" for v in prod.variants))
    variants = [f"gid://shopify/ProductVariant/{v.id}"
                for v in shop.catalogue.product(shop.catalogue.index_of(pid)).variants]
    token = stack.control.issue_token(DEMO_SHOP, scope="write_products,write_inventory,read_inventory")[
        "access_token"]
    for gid in variants:
        _set_stock(stack, token, gid, 5)
    # S is cheapest and not discounted; M is discounted but dearer; the rest dearer still.
    _set_variants(stack, token, pid, [{"id": variants[0], "price": "10.00", "compareAtPrice": None},
                                      {"id": variants[1], "price": "20.00", "compareAtPrice": "30.00"},
                                      *({"id": g, "price": "25.00", "compareAtPrice": None} for g in variants[2:])])

    def card(country: str, path: str = "new-arrivals") -> dict[str, Any] | None:
        found = [c for c in feed(stack, path, country=country, locale="fr")["products"] if c["id"] == str(pid)]
        return found[0] if found else None

    def indexed_card() -> tuple[Any, Any, Any]:
        doc = indexed(meili_client, DEMO_SHOP).get(pid) or {}
        return doc.get("card_price"), doc.get("card_compare_at_price"), doc.get("available")

    # The index first, then the feed (the refresh bumps the feed version right after its write is indexed).
    wait_until(lambda: indexed_card() == ("10.00", None, True), timeout=20, what="the price update")
    wait_until(lambda: (card("US") or {}).get("price") == "10.00", timeout=10, what="the feed to follow")
    us, fr = card("US"), card("FR")
    assert us and (us["price"], us["compare_at_price"], us["price_varies"]) == ("10.00", None, True)
    assert fr and (fr["price"], fr["compare_at_price"], fr["currency"]) == ("9.95", None, "EUR")  # 10 × 0.92 → 9.95
    assert card("US", "on-sale") is None and card("FR", "on-sale") is None  # its card shows no discount

    _set_stock(stack, token, variants[0], 0)  # S sells out: M is now the card, with its own discount
    wait_until(lambda: indexed_card() == ("20.00", "30.00", True), timeout=20, what="S selling out")
    wait_until(lambda: card("US", "on-sale") is not None, timeout=10, what="the feed to follow")
    us, fr = card("US", "on-sale"), card("FR", "on-sale")
    assert us and (us["price"], us["compare_at_price"]) == ("20.00", "30.00")
    assert spaces(us["price_formatted"]) == "20,00 $US"
    assert fr and (fr["price"], fr["compare_at_price"]) == ("18.95", "27.95")  # 18.40 → 18.95, 27.60 → 27.95
    assert (spaces(fr["price_formatted"]), spaces(fr["compare_at_price_formatted"])) == ("18,95 €", "27,95 €")
    assert (fr["price"], fr["compare_at_price"]) == expected_card(stack, pid, "FR")[:2]

    for gid in variants[1:]:
        _set_stock(stack, token, gid, 0)  # sold out entirely: the cheapest variant again, shown as unavailable
    wait_until(lambda: indexed_card() == ("10.00", None, False), timeout=20, what="the product selling out")
    wait_until(lambda: (card("US") or {}).get("available") is False, timeout=10, what="the feed to follow")
    us = card("US")
    assert us and (us["price"], us["compare_at_price"], us["available"]) == ("10.00", None, False)


def test_a_shop_whose_markets_are_unknown_prices_only_requests_without_a_country(usd_stack: Stack) -> None:
    from core import keys
    from feeds import markets

    stack = usd_stack
    before = feed(stack)["products"]
    markets.save(stack.services.redis, DEMO_SHOP, None)  # as if read_markets had not been granted
    stack.services.redis.incr(keys.feeds_version(DEMO_SHOP))
    assert feed(stack)["products"] == before
    unknown = feed(stack, country="FR")["products"]
    assert unknown and all(c["price"] is None and c["price_formatted"] is None and c["currency"] is None
                           for c in unknown)


def test_feed_responses_with_prices_match_the_openapi_schema(usd_stack: Stack) -> None:
    from tests.functional.test_feeds import _validator

    schema = _validator("FeedResponse")
    for params in ({"country": "FR", "locale": "fr"}, {"country": "US"}, {}):
        body = requests.get(f"{usd_stack.url}/proxy/feeds/on-sale", params={"shop": DEMO_SHOP, **params},
                            timeout=30).json()
        assert sorted(schema.iter_errors(body), key=str) == [], params
