"""A card's price: one variant (the card's) gives price and compare-at price, per market, formatted per locale."""

from __future__ import annotations

from typing import Any

import pytest

from feeds import markets
from feeds.definitions import FEEDS, FeedParamError, card, normalize_locale, parse_params, search_arguments
from feeds.documents import to_document
from feeds.markets import BASE, MarketMap, Zone
from shopify.queries import pricing_alias

SHOP = "cards.myshopify.com"
EUROPE = Zone("europe:EUR", "EUR", "FR")


def variant(price: str, compare: str | None = None, available: bool = True, title: str = "v",
            **zones: tuple[str, str | None, str]) -> dict[str, Any]:
    """A variant as the Admin API returns it; `zones` maps a country to its (price, compare-at, currency)."""
    node: dict[str, Any] = {"id": f"gid://shopify/ProductVariant/{abs(hash((price, title))) % 10**9}",
                            "title": title, "price": price, "compareAtPrice": compare, "availableForSale": available,
                            "inventoryQuantity": 5 if available else 0, "selectedOptions": [{"name": "Size",
                                                                                             "value": title}]}
    for country, (amount, cmp, currency) in zones.items():
        node[pricing_alias(country)] = {
            "price": {"amount": amount, "currencyCode": currency},
            "compareAtPrice": None if cmp is None else {"amount": cmp, "currencyCode": currency},
        }
    return node


def product(*variants: dict[str, Any], currency: str = "USD") -> dict[str, Any]:
    prices = [float(v["price"]) for v in variants]
    return {
        "id": "gid://shopify/Product/42", "handle": "tee", "title": "Tee", "vendor": "Acme", "productType": "Shirt",
        "tags": [], "status": "ACTIVE", "publishedAt": "2026-01-01T00:00:00Z", "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-02T00:00:00Z", "totalInventory": 10,
        "priceRangeV2": {"minVariantPrice": {"amount": f"{min(prices):.2f}", "currencyCode": currency},
                         "maxVariantPrice": {"amount": f"{max(prices):.2f}", "currencyCode": currency}},
        "featuredMedia": None, "collections": {"nodes": []}, "variants": {"nodes": list(variants)},
    }


def doc(*variants: dict[str, Any], zones: tuple[Zone, ...] = ()) -> dict[str, Any]:
    return to_document(SHOP, product(*variants), generation=1, zones=zones)


def test_the_issue_case_price_and_compare_at_come_from_one_variant() -> None:
    # The discount is on a dearer variant: the card shows the cheapest variant's price and no compare-at price
    # (not "19.95, compare at 19.95" mixed from two variants), and the product is not "on sale" from its card.
    d = doc(variant("19.95", title="S"), variant("24.95", "34.95", title="XL"))
    assert (d["card_price"], d["card_compare_at_price"], d["price_varies"]) == ("19.95", None, True)
    assert (d["on_sale"], d["discount_pct"], d["sale_zones"]) == (False, 0, [])
    shown = card(d)
    assert (shown["price"], shown["compare_at_price"], shown["price_varies"]) == ("19.95", None, True)


def test_on_sale_card_variant_shows_its_own_discount() -> None:
    d = doc(variant("19.95", "29.95", title="S"), variant("24.95", "29.95", title="M"))
    assert (d["card_price"], d["card_compare_at_price"]) == ("19.95", "29.95")
    assert d["on_sale"] and d["discount_pct"] == 33 and d["sale_zones"] == [BASE]
    shown = card(d)
    assert float(shown["compare_at_price"]) > float(shown["price"])


def test_among_equally_cheap_variants_the_discounted_one_is_the_card() -> None:
    d = doc(variant("20.00", title="S"), variant("20.00", "30.00", title="M"))
    assert (d["card_price"], d["card_compare_at_price"], d["price_varies"]) == ("20.00", "30.00", False)
    assert d["on_sale"]


def test_a_compare_at_price_not_above_the_price_is_no_discount() -> None:
    d = doc(variant("19.95", "19.95"), variant("19.95", "18.00"))
    assert (d["card_compare_at_price"], d["on_sale"], d["price_varies"]) == (None, False, False)


def test_sold_out_variants_are_not_the_card_unless_all_are() -> None:
    d = doc(variant("9.95", "19.95", available=False, title="S"), variant("14.95", title="M"))
    assert (d["card_price"], d["card_compare_at_price"], d["on_sale"], d["available"]) == ("14.95", None, False, True)
    sold_out = doc(variant("9.95", "19.95", available=False, title="S"), variant("14.95", available=False, title="M"))
    assert (sold_out["card_price"], sold_out["card_compare_at_price"]) == ("9.95", "19.95")
    assert sold_out["on_sale"] and not sold_out["available"]


def test_market_prices_are_indexed_per_zone_with_their_own_card_variant() -> None:
    # In Europe a fixed price makes M the cheapest, and it carries no compare-at price there.
    d = doc(variant("19.95", "29.95", title="S", FR=("22.95", "33.95", "EUR")),
            variant("24.95", title="M", FR=("18.00", None, "EUR")), zones=(EUROPE,))
    assert d["prices"] == {"europe:EUR": {"currency": "EUR", "price": "18.00", "compare_at_price": None,
                                          "price_varies": True}}
    assert d["sale_zones"] == [BASE]  # on sale at home, not in Europe
    shown = card(d, EUROPE, "fr")
    assert (shown["price"], shown["currency"], shown["compare_at_price"]) == ("18.00", "EUR", None)
    assert shown["price_formatted"].replace("\xa0", " ").replace("\u202f", " ") == "18,00 €"
    discounted = doc(variant("19.95", "29.95", FR=("18.95", "27.95", "EUR")), zones=(EUROPE,))
    assert discounted["sale_zones"] == [BASE, "europe:EUR"]
    shown = card(discounted, EUROPE, "de")
    assert (shown["price"], shown["compare_at_price"]) == ("18.95", "27.95")
    assert shown["compare_at_price_formatted"].replace("\xa0", " ") == "27,95 €"


def test_a_market_price_missing_for_any_variant_leaves_the_market_unpriced() -> None:
    d = doc(variant("19.95", FR=("18.95", None, "EUR")), variant("24.95"), zones=(EUROPE,))
    assert d["prices"] == {}
    shown = card(d, EUROPE, "fr")
    assert shown["price"] is None and shown["price_formatted"] is None and shown["compare_at_price"] is None
    assert shown["currency"] == "EUR"  # the shopper's currency, with no amount: never the base price instead


def test_a_zone_whose_currency_changed_since_indexing_is_unpriced() -> None:
    d = doc(variant("19.95", FR=("18.95", None, "EUR")), zones=(EUROPE,))
    moved = Zone("europe:EUR", "CHF", "FR")  # not a real change of key, but a currency check all the same
    assert card(d, moved)["price"] is None


def test_unknown_markets_and_a_named_country_give_no_price() -> None:
    d = doc(variant("19.95"))
    shown = card(d, None)
    assert (shown["price"], shown["currency"], shown["price_formatted"]) == (None, None, None)


def test_documents_indexed_before_card_variants_fall_back_to_the_lowest_price_without_compare_at() -> None:
    old = {"product_id": 1, "handle": "h", "title": "t", "currency": "USD", "price_min_text": "10.00",
           "price_max_text": "12.00", "compare_at_min_text": "10.00", "available": True, "image": None}
    shown = card(old)
    assert (shown["price"], shown["compare_at_price"], shown["price_varies"]) == ("10.00", None, True)
    assert shown["price_formatted"] == "$10.00"


def test_card_shape_and_locale_formatting() -> None:
    d = doc(variant("1234.50", "1500.00"))
    shown = card(d, Zone(BASE, None), "de")
    assert set(shown) == {"id", "handle", "url", "title", "vendor", "price", "compare_at_price", "currency",
                          "price_formatted", "compare_at_price_formatted", "price_varies", "available", "image"}
    assert shown["price_formatted"].replace("\xa0", " ") == "1.234,50 $"
    assert card(d)["price_formatted"] == "$1,234.50"


@pytest.mark.parametrize(("raw", "expected"), [
    (None, "en"), ("", "en"), ("fr", "fr"), ("fr-CA", "fr_CA"), ("pt_BR", "pt_BR"), ("EN", "en"),
    ("xx", "en"), ("fr;drop", "en"), ("a" * 100, "en"), ("zz-ZZ", "en"),
])
def test_locales_are_normalised_and_unknown_ones_are_english(raw: str | None, expected: str) -> None:
    assert normalize_locale(raw) == expected


def test_country_must_be_two_letters_and_is_part_of_the_cache_key() -> None:
    feed = FEEDS["new-arrivals"]
    for bad in ("FRA", "F", "1X", "f-"):
        with pytest.raises(FeedParamError) as err:
            parse_params(feed, {"country": bad}, 12)
        assert err.value.param == "country"
    fr = parse_params(feed, {"country": "fr", "locale": "fr-FR"}, 12)
    assert (fr.country, fr.locale) == ("FR", "fr_FR")
    assert parse_params(feed, {"country": ""}, 12).country is None
    keys = {parse_params(feed, args, 12).cache_key() for args in (
        {}, {"country": "FR"}, {"country": "DE"}, {"country": "FR", "locale": "fr"}, {"locale": "fr"})}
    assert len(keys) == 5
    assert parse_params(feed, {"locale": "nonsense!"}, 12).cache_key() == parse_params(feed, {}, 12).cache_key()


def test_the_on_sale_feed_filters_on_the_shoppers_zone() -> None:
    feed = FEEDS["on-sale"]
    params = parse_params(feed, {"country": "FR"}, 12)
    from dataclasses import replace

    _, base = search_arguments(feed, "", params, SHOP, {}, limit=12, offset=0)
    assert "(on_sale = true)" in base["filter"]
    _, europe = search_arguments(feed, "", replace(params, zone="europe:EUR"), SHOP, {}, limit=12, offset=0)
    assert '(sale_zones = "europe:EUR")' in europe["filter"] and "on_sale" not in europe["filter"]


def test_market_map_from_the_admin_api() -> None:
    nodes = [
        {"handle": "us", "enabled": True, "primary": True,
         "currencySettings": {"baseCurrency": {"currencyCode": "USD"}},
         "regions": {"nodes": [{"code": "US", "currency": {"currencyCode": "USD"}},
                               {"code": "CA", "currency": {"currencyCode": "CAD"}}]}},
        {"handle": "europe", "enabled": True, "primary": False,
         "currencySettings": {"baseCurrency": {"currencyCode": "EUR"}},
         "regions": {"nodes": [{"code": "FR", "currency": {"currencyCode": "EUR"}},
                               {"code": "DE", "currency": {"currencyCode": "EUR"}},
                               {"code": "DK", "currency": {"currencyCode": "DKK"}}]}},
        {"handle": "japan", "enabled": False, "primary": False,
         "currencySettings": {"baseCurrency": {"currencyCode": "JPY"}},
         "regions": {"nodes": [{"code": "JP", "currency": {"currencyCode": "JPY"}}]}},
    ]
    found = markets.from_admin("USD", nodes)
    assert found.zone_for("US").key == BASE and found.zone_for(None).key == BASE
    assert found.zone_for("JP").key == BASE  # a disabled market's countries buy in the primary market
    assert found.zone_for("ZW").key == BASE  # so do countries no market covers
    assert found.zone_for("CA") == Zone("us:CAD", "CAD", "CA")  # a local currency in the primary market
    assert found.zone_for("DE") == found.zone_for("FR") == Zone("europe:EUR", "EUR", "FR")
    assert found.zone_for("DK") == Zone("europe:DKK", "DKK", "DK")
    assert found.pricing_countries() == ("CA", "DK", "FR")
    assert MarketMap.from_json(found.to_json()) == found
