"""devshop's Admin API for markets: `markets` (read_markets) and `ProductVariant.contextualPricing`, priced by the
same devshop.markets functions its storefront pages use, so the prices Lumi indexes are the ones a shopper sees."""

from __future__ import annotations

from decimal import Decimal

from devshop.markets import market_for_country, market_price
from devshop.testing import DevShopControl, DevShopServer
from shopify import queries
from tests.devshop.conftest import SHOP, Admin

USD_SHOP = "usd-markets.myshopify.com"


def test_markets_list_each_markets_currency_and_countries_and_need_read_markets(
        devshop: DevShopServer, control: DevShopControl, admin: Admin) -> None:
    control.create_shop(USD_SHOP, products=20, currency="USD")
    token = control.issue_token(USD_SHOP, scope="read_products,read_markets")["access_token"]
    client = Admin(devshop.admin_base_url, USD_SHOP, token)
    try:
        found, after = [], None
        while True:
            data = client.data(queries.MARKETS_PAGE, {"first": queries.MARKETS_PAGE_SIZE, "after": after})
            assert data["shop"]["currencyCode"] == "USD"
            found += data["markets"]["nodes"]
            if not data["markets"]["pageInfo"]["hasNextPage"]:
                break
            after = data["markets"]["pageInfo"]["endCursor"]
        home, europe = found
        assert (home["primary"], home["enabled"], home["currencySettings"]["baseCurrency"]["currencyCode"]) == (
            True, True, "USD")
        assert [r["code"] for r in home["regions"]["nodes"]] == ["US"]
        assert (europe["handle"], europe["primary"], europe["currencySettings"]["baseCurrency"]["currencyCode"]) == (
            "europe", False, "EUR")
        assert {r["code"] for r in europe["regions"]["nodes"]} >= {"FR", "DE"}
        assert {r["currency"]["currencyCode"] for r in europe["regions"]["nodes"]} == {"EUR"}
    finally:
        client.session.close()
    # Without read_markets: ACCESS_DENIED, as Shopify answers.
    denied = admin.gql(queries.MARKETS_PAGE, {"first": 1})
    assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_contextual_pricing_is_devshops_market_price_for_the_country(devshop: DevShopServer,
                                                                     control: DevShopControl) -> None:
    control.create_shop(USD_SHOP, products=20, currency="USD")
    token = control.issue_token(USD_SHOP, scope="read_products")["access_token"]  # read_products is enough
    client = Admin(devshop.admin_base_url, USD_SHOP, token)
    shop = devshop.app.extensions["devshop"].shops.get(USD_SHOP)
    plan = queries.catalogue_plan(["FR", "JP", "US"])
    try:
        products = client.data(plan.products_page, {"first": plan.page_size, "query": "status:active"})["products"]
    finally:
        client.session.close()
    seen_fixed = False
    for product in products["nodes"]:
        pid = int(product["id"].rsplit("/", 1)[1])
        for node in product["variants"]["nodes"]:
            for country in ("FR", "JP", "US"):
                market = market_for_country(shop.markets, country)
                price, compare = market_price(market, pid, Decimal(node["price"]),
                                              Decimal(node["compareAtPrice"]) if node["compareAtPrice"] else None)
                got = node[queries.pricing_alias(country)]
                assert got["price"] == {"amount": f"{price:.2f}", "currencyCode": market.currency}
                assert got["compareAtPrice"] == (None if compare is None else
                                                 {"amount": f"{compare:.2f}", "currencyCode": market.currency})
            seen_fixed |= pid in market_for_country(shop.markets, "FR").fixed_prices
            assert node[queries.pricing_alias("JP")]["price"]["currencyCode"] == "USD"  # no market: the primary
    assert seen_fixed  # the first listed product has Europe's fixed price


def test_a_eur_shop_prices_its_united_states_market_in_usd(admin: Admin) -> None:
    assert admin.shop == SHOP  # devshop's default currency is EUR; its second market is the United States
    plan = queries.catalogue_plan(["US"])
    node = admin.data(plan.product_by_id, {"id": admin.data(queries.PRODUCTS_PAGE, {"first": 1})["products"][
        "nodes"][0]["id"]})["product"]["variants"]["nodes"][0]
    assert node[queries.pricing_alias("US")]["price"]["currencyCode"] == "USD"
