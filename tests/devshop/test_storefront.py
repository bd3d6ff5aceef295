"""devshop's storefront: pages from its theme with the real extension's app blocks in them, Shopify's wrapper and
<head> assets, money in the shopper's market, the control API, and a check that the extension's Liquid uses only
the tags, filters and objects devshop renders."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devshop import create_app
from devshop.markets import market_for_country, market_price
from devshop.shopify_liquid import Locales, check_extension, format_money, to_subunits
from devshop.storefront import EXTENSION_DIR

SHOP = "demo-store.myshopify.com"
EUR_SHOP = "euro-store.myshopify.com"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    in_head: bool


@dataclass
class Parsed:
    elements: list[Element] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and all(e.attrs.get(k.rstrip("_")) == v
                                                                  for k, v in attrs.items())]

    def with_class(self, name: str) -> list[Element]:
        return [e for e in self.elements if name in e.attrs.get("class", "").split()]


def parse(html: str) -> Parsed:
    parsed = Parsed(text=html)

    class Collector(HTMLParser):
        in_head = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "head":
                self.in_head = True
            parsed.elements.append(Element(tag, {k: v or "" for k, v in attrs}, self.in_head))

        def handle_endtag(self, tag: str) -> None:
            if tag == "head":
                self.in_head = False

    Collector().feed(html)
    return parsed


@pytest.fixture
def app() -> Iterator[Flask]:
    made = create_app({"SHOPS": {SHOP: {"products": 300, "seed": 3, "currency": "USD"},
                                 EUR_SHOP: {"products": 120, "seed": 5}}})
    yield made
    made.extensions["devshop"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert client.post(f"/_devshop/shops/{SHOP}/access-tokens", json={}).status_code == 201  # the app is installed
    return client


def storefront(client: FlaskClient, shop: str = SHOP) -> dict[str, Any]:
    answer = client.get(f"/_devshop/shops/{shop}/storefront")
    assert answer.status_code == 200, answer.text
    return answer.get_json()


def page(client: FlaskClient, path: str, status: int = 200) -> Parsed:
    answer = client.get(path)
    assert answer.status_code == status, answer.text[:2000]
    html = answer.get_data(as_text=True)
    assert "Liquid error" not in html and "translation missing" not in html, html
    return parse(html)


def scratch_extension(tmp_path: Path, blocks: dict[str, str], locales: dict[str, Any] | None = None) -> Path:
    root = tmp_path / "lumi-storefront"
    for sub in ("blocks", "snippets", "assets", "locales"):
        (root / sub).mkdir(parents=True)
    for name, source in blocks.items():
        (root / name).write_text(textwrap.dedent(source), encoding="utf-8")
    for name, data in (locales or {"en.default.json": {}}).items():
        (root / "locales" / name).write_text(json.dumps(data), encoding="utf-8")
    (root / "assets" / "feed.js").write_text("customElements.define('x-feed', class extends HTMLElement {});\n")
    (root / "assets" / "feed.css").write_text(".x-feed{display:block}\n")
    return root


# ---- the real extension -----------------------------------------------------------------------------------------

def test_the_extension_uses_only_tags_filters_and_objects_devshop_supports() -> None:
    assert (EXTENSION_DIR / "blocks").is_dir(), f"no theme app extension at {EXTENSION_DIR}"
    result = check_extension(EXTENSION_DIR)
    assert not result.problems, "\n".join(map(str, result.problems))
    assert "schema" in result.tags and "t" in result.filters and "routes.root_url" in result.objects


def test_the_check_names_each_thing_devshop_does_not_render(tmp_path: Path) -> None:
    root = scratch_extension(tmp_path, {
        "blocks/good.liquid": """
            {%- liquid
              assign n = block.settings.limit
              assign url = routes.root_url | append: 'apps/lumi/feeds/similar/' | append: block.settings.product.id
            -%}
            {% for i in (1..n) %}<i>{{ forloop.index }}</i>{% endfor %}{{ url }}{{ product.price | money }}
            {% schema %}{"name": "Good", "target": "section", "settings": [
              {"type": "range", "id": "limit", "label": "N", "min": 1, "max": 9, "default": 3},
              {"type": "product", "id": "product", "label": "P", "autofill": true}]}{% endschema %}
        """,
        "blocks/bad_filter.liquid": "{{ product.price | money_in_emojis }}{% schema %}{}{% endschema %}",
        "blocks/bad_object.liquid": "{{ product.metafields.custom.x }}{{ block.settings.nope }}"
                                    "{% schema %}{\"settings\": []}{% endschema %}",
        "blocks/bad_tag.liquid": "{% include 'x' %}{% schema %}{}{% endschema %}",
        "blocks/theme_tag.liquid": "{% section 'header' %}{% schema %}{}{% endschema %}",
        "blocks/unknown_tag.liquid": "{% paginate collection.products by 5 %}{% endpaginate %}",
        "snippets/helper.liquid": "{{ 'x' | escapejs }}",
    })
    problems = [str(p) for p in check_extension(root).problems]
    assert not [p for p in problems if p.startswith("blocks/good.liquid")], problems
    expected = {
        "blocks/bad_filter.liquid": "unsupported filter | money_in_emojis",
        "blocks/bad_object.liquid": "unsupported object product.metafields",
        "blocks/bad_tag.liquid": "include",
        "blocks/theme_tag.liquid": "section",
        "blocks/unknown_tag.liquid": "paginate",
        "snippets/helper.liquid": "unsupported filter | escapejs",
    }
    for file, what in expected.items():
        assert any(p.startswith(file) and what in p for p in problems), (file, what, problems)
    assert any("block.settings.nope" in p for p in problems), problems


# ---- pages and app blocks ------------------------------------------------------------------------------------------

def test_the_product_page_holds_the_similar_feed_in_shopifys_wrapper(client: FlaskClient) -> None:
    info = storefront(client)
    demo = info["demo_product"]
    assert info["pages"]["product"] == f"/shops/{SHOP}/products/{demo['handle']}"
    parsed = page(client, info["pages"]["product"])
    wrappers = parsed.with_class("shopify-app-block")
    assert len(wrappers) == 1
    wrapper = wrappers[0]
    assert wrapper.tag == "div" and wrapper.attrs["id"].startswith("shopify-block-")
    assert wrapper.attrs["data-block-handle"] == "product-feed" and "shopify-block" in wrapper.attrs["class"]
    feed = parsed.find("lumi-feed")[0]
    assert feed.attrs["data-feed"] == "similar" and feed.attrs["data-root"] == f"/shops/{SHOP}/"
    assert feed.attrs["data-url"].startswith(f"/shops/{SHOP}/apps/lumi/feeds/similar/{demo['id']}?")
    assert "country=US" in feed.attrs["data-url"] and "locale=en" in feed.attrs["data-url"]
    # The app block comes after the product's own information, inside the product section.
    html = parsed.text
    assert html.index('class="product__title"') < html.index("shopify-app-block") < html.index("</main>")
    assert 'id="shopify-section-template--devshop__main"' in html


def test_the_home_page_shows_new_arrivals_and_best_sellers(client: FlaskClient) -> None:
    parsed = page(client, f"/shops/{SHOP}/")
    assert [f.attrs["data-feed"] for f in parsed.find("lumi-feed")] == ["new-arrivals", "best-sellers"]
    ids = [w.attrs["id"] for w in parsed.with_class("shopify-app-block")]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_block_assets_go_in_the_head_once_per_page(client: FlaskClient) -> None:
    client.put(f"/_devshop/shops/{SHOP}/storefront", json={"product": [
        {"type": "product-feed", "settings": {"feed": "similar"}},
        {"type": "product-feed", "settings": {"feed": "on-sale", "layout": "scroller"}},
        {"type": "product-feed", "settings": {"feed": "best-sellers"}}]})
    parsed = page(client, storefront(client)["pages"]["product"])
    assert len(parsed.with_class("shopify-app-block")) == 3
    scripts = [e for e in parsed.find("script") if "lumi-feed.js" in e.attrs.get("src", "")]
    sheets = [e for e in parsed.find("link") if "lumi-feed.css" in e.attrs.get("href", "")]
    assert len(scripts) == 1 and len(sheets) == 1
    assert scripts[0].in_head and "defer" in scripts[0].attrs and sheets[0].in_head
    assert scripts[0].attrs["src"].startswith("/cdn/extensions/lumi-storefront/assets/lumi-feed.js")
    assert sheets[0].attrs["rel"] == "stylesheet"


def test_extension_assets_are_served_like_shopifys_cdn(client: FlaskClient) -> None:
    parsed = page(client, f"/shops/{SHOP}/")
    src = next(e.attrs["src"] for e in parsed.find("script") if "lumi-feed.js" in e.attrs.get("src", ""))
    with client.get(src) as answer:  # a file response: closed here, or its file stays open
        assert answer.status_code == 200
        assert answer.data == (EXTENSION_DIR / "assets" / "lumi-feed.js").read_bytes()
        assert answer.mimetype in ("text/javascript", "application/javascript")
        cache = answer.headers["Cache-Control"]
    assert "public" in cache and "max-age=31536000" in cache and "immutable" in cache
    assert client.get("/cdn/extensions/lumi-storefront/assets/nope.js").status_code == 404
    assert client.get("/cdn/extensions/lumi-storefront/assets/..%2Fblocks%2Fproduct-feed.liquid").status_code == 404
    assert client.get("/cdn/extensions/other/assets/lumi-feed.js").status_code == 404


def test_pages_without_app_blocks_for_a_comparison_or_an_uninstalled_app(app: Flask, client: FlaskClient) -> None:
    path = storefront(client)["pages"]["product"]
    for parsed in (page(client, path + "?lumi=off"), page(app.test_client(), f"/shops/{EUR_SHOP}/")):
        assert not parsed.with_class("shopify-app-block") and not parsed.find("lumi-feed")
        assert "lumi-feed.js" not in parsed.text and "lumi-feed.css" not in parsed.text
        assert parsed.find("main")  # the theme's page itself is all there


def test_query_parameters_override_block_settings(client: FlaskClient) -> None:
    path = storefront(client)["pages"]["product"]
    parsed = page(client, path + "?lumi_feed=on-sale&lumi_limit=3&lumi_layout=scroller")
    feed = parsed.find("lumi-feed")[0]
    assert feed.attrs["data-feed"] == "on-sale" and "limit=3" in feed.attrs["data-url"]
    assert "lumi-feed--scroller" in feed.attrs["class"] and parsed.with_class("lumi-feed__next")
    assert len(parsed.with_class("lumi-card--skeleton")) == 3
    for bad in ("lumi_feed=everything", "lumi_limit=lots", "lumi_limit=99"):
        assert client.get(f"{path}?{bad}").status_code == 400


def test_design_mode_tells_the_block_it_is_in_the_theme_editor(client: FlaskClient) -> None:
    path = storefront(client)["pages"]["product"]
    assert "Shopify.designMode" not in page(client, path).text
    parsed = page(client, path + "?design_mode=1")
    assert "Shopify.designMode=true;" in parsed.text
    assert parsed.find("lumi-feed")[0].attrs.get("data-shopify-editor-block")


def test_collection_pages_list_members_and_unknown_pages_answer_404(app: Flask, client: FlaskClient) -> None:
    shop = app.extensions["devshop"].shops.get(SHOP)
    collection = shop.catalogue.collections[2]
    parsed = page(client, f"/shops/{SHOP}/collections/{collection.handle}")
    links = [a.attrs["href"] for a in parsed.find("a") if "/products/" in a.attrs.get("href", "")]
    assert links
    for href in links:
        product = shop.catalogue.by_handle(href.rsplit("/", 1)[-1])
        assert product is not None and collection.index in product.collections and product.status == "ACTIVE"
    page(client, f"/shops/{SHOP}/products/no-such-product", 404)
    page(client, f"/shops/{SHOP}/collections/no-such-collection", 404)
    draft = next(shop.catalogue.product(i) for i in range(1, 300) if shop.catalogue.core(i).status == "DRAFT")
    page(client, f"/shops/{SHOP}/products/{draft.handle}", 404)
    assert client.get("/shops/nowhere.myshopify.com/").status_code == 404


# ---- markets and languages --------------------------------------------------------------------------------------

def shown_price(parsed: Parsed) -> str:
    match = re.search(r'class="price__amount">([^<]+)<', parsed.text)
    assert match, "no price on the page"
    return match.group(1)


def test_money_is_in_the_shoppers_market(app: Flask, client: FlaskClient) -> None:
    shop = app.extensions["devshop"].shops.get(SHOP)
    europe = market_for_country(shop.markets, "FR")
    fixed_id = next(iter(europe.fixed_prices))
    products = [shop.catalogue.product(fixed_id - 8_100_000_000_000)] + [
        p for p in (shop.catalogue.product(i) for i in range(1, 120))
        if p is not None and p.status == "ACTIVE" and p.published_at is not None and p.id != fixed_id][:6]
    for product in products:
        variant = next((v for v in product.variants if v.available_for_sale), product.variants[0])
        home = page(client, f"/shops/{SHOP}/products/{product.handle}")
        assert shown_price(home) == format_money(to_subunits(variant.price), "USD")
        fr = page(client, f"/shops/{SHOP}/products/{product.handle}?country=FR&locale=fr")
        price, compare = market_price(europe, product.id, variant.price, variant.compare_at_price)
        assert shown_price(fr) == format_money(to_subunits(price), "EUR")
        assert shown_price(fr).startswith("€") and "," in shown_price(fr)
        assert ('class="price__compare"' in fr.text) == (compare is not None and compare > price)
        report = client.get(f"/_devshop/shops/{SHOP}/markets?country=FR&handle={product.handle}").get_json()
        assert report["market"]["currency"] == "EUR" and report["product"]["currency"] == "EUR"
        assert Decimal(next(v["price"] for v in report["product"]["variants"] if v["id"] == variant.id)) == price
        assert 'Shopify.currency={"active":"EUR","rate":"0.92"}' in fr.text and 'Shopify.country="FR"' in fr.text
        assert "country=FR" in fr.find("lumi-feed")[0].attrs["data-url"]
    fixed = page(client, f"/shops/{SHOP}/products/{products[0].handle}?country=DE")
    assert shown_price(fixed) == "€9,00"  # the fixed market price, not a conversion


def test_a_euro_shop_sells_to_the_united_states_in_dollars(app: Flask) -> None:
    client = app.test_client()
    report = client.get(f"/_devshop/shops/{EUR_SHOP}/markets?country=US").get_json()
    assert report["base_currency"] == "EUR" and report["market"]["currency"] == "USD"
    handle = storefront(client, EUR_SHOP)["pages"]["product"].rsplit("/", 1)[-1]
    assert shown_price(page(client, f"/shops/{EUR_SHOP}/products/{handle}")).startswith("€")
    assert shown_price(page(client, f"/shops/{EUR_SHOP}/products/{handle}?country=US")).startswith("$")
    # A country no market covers buys in the primary market.
    assert 'Shopify.country="FR"' in page(client, f"/shops/{EUR_SHOP}/?country=JP").text


def test_links_and_forms_keep_the_market_and_language(client: FlaskClient) -> None:
    parsed = page(client, f"/shops/{SHOP}/?country=FR&locale=fr")
    assert parsed.find("html")[0].attrs["lang"] == "fr"
    nav = [a.attrs["href"] for a in parsed.find("a") if a.attrs.get("href", "").startswith(f"/shops/{SHOP}/")]
    assert nav and all("country=FR" in href and "locale=fr" in href for href in nav)
    form = parsed.with_class("localization")[0]
    assert form.attrs["method"] == "get"
    assert parsed.find("option", value="FR")[0].attrs.get("selected") is not None
    assert "Passer au contenu" in parsed.text and "Vous" not in parsed.text.split("<main")[0]
    plain = page(client, f"/shops/{SHOP}/")
    assert all("country=" not in a.attrs.get("href", "") for a in plain.find("a"))


def test_money_formats_follow_the_currency() -> None:
    assert format_money(1995, "USD") == "$19.95"
    assert format_money(1895, "EUR") == "€18,95"
    assert format_money(123456, "EUR") == "€1.234,56"
    assert format_money(1895, "EUR", with_currency=True) == "€18,95 EUR"
    assert format_money(1895, "EUR", without_currency=True) == "18,95"
    assert format_money(150000, "JPY") == "¥1,500"
    assert format_money(1900, "USD", strip_zeros=True) == "$19"
    assert format_money(None, "USD") == ""


def test_translations_fall_back_to_the_default_locale(tmp_path: Path) -> None:
    (tmp_path / "en.default.json").write_text(json.dumps(
        {"feed": {"title": "Hello {{ name }}", "count": {"one": "{{ count }} item", "other": "{{ count }} items"}}}))
    (tmp_path / "fr.json").write_text(json.dumps({"feed": {"title": "Bonjour {{ name }}"}}))
    (tmp_path / "fr.schema.json").write_text(json.dumps({"feed": {"title": "not for the storefront"}}))
    locales = Locales(tmp_path)
    locales.refresh()
    assert locales.translate("fr", "feed.title", {"name": "Sam"}) == "Bonjour Sam"
    assert locales.translate("fr-CA", "feed.title", {"name": "Sam"}) == "Bonjour Sam"
    assert locales.translate("fr", "feed.count", {"count": 1}) == "1 item"
    assert locales.translate("de", "feed.count", {"count": 3}) == "3 items"
    assert locales.translate("de", "feed.nope", {}) == "translation missing: de.feed.nope"


# ---- the control API ----------------------------------------------------------------------------------------------

def test_the_control_api_sets_validates_and_resets_the_blocks(client: FlaskClient) -> None:
    base = f"/_devshop/shops/{SHOP}/storefront"
    info = storefront(client)
    assert info["templates"]["product"] == [{"type": "product-feed", "settings": {"feed": "similar"}}]
    assert info["blocks"]["product-feed"]["target"] == "section"
    assert info["blocks"]["product-feed"]["settings"]["feed"] == "new-arrivals"
    answer = client.put(base, json={"index": [{"type": "product-feed", "id": "picks",
                                               "settings": {"feed": "collection", "collection": "staff-picks"}}]})
    assert answer.status_code == 200 and answer.get_json()["templates"]["index"][0]["id"] == "picks"
    assert answer.get_json()["templates"]["product"] == info["templates"]["product"]  # untouched
    feed = page(client, f"/shops/{SHOP}/").find("lumi-feed")
    assert len(feed) == 1 and "/feeds/collection/staff-picks?" in feed[0].attrs["data-url"]
    assert page(client, f"/shops/{SHOP}/").find("div", id="shopify-block-picks")
    bad = [
        {"nowhere": []},
        {"product": [{"type": "no-such-block"}]},
        {"product": [{"type": "product-feed", "settings": {"colour": "red"}}]},
        {"product": [{"type": "product-feed", "settings": {"feed": "everything"}}]},
        {"product": [{"type": "product-feed", "settings": {"limit": 500}}]},
        {"product": [{"type": "product-feed", "settings": {"show_vendor": "yes"}}]},
        {"embeds": [{"type": "product-feed"}]},
        {"product": {"type": "product-feed"}},
    ]
    for body in bad:
        answer = client.put(base, json=body)
        assert answer.status_code == 400, body
        assert answer.get_json()["error"]["message"]
    assert client.delete(base).get_json()["templates"] == info["templates"]
    assert client.get("/_devshop/shops/nowhere.myshopify.com/storefront").status_code == 404


def test_the_markets_endpoint_gives_each_markets_prices(app: Flask, client: FlaskClient) -> None:
    report = client.get(f"/_devshop/shops/{SHOP}/markets").get_json()
    assert [m["currency"] for m in report["markets"]] == ["USD", "EUR"] and report["base_currency"] == "USD"
    shop = app.extensions["devshop"].shops.get(SHOP)
    europe = market_for_country(shop.markets, "ES")
    sale = next(p for p in (shop.catalogue.product(i) for i in range(1, 300))
                if p is not None and len(p.variants) > 1 and any(v.compare_at_price for v in p.variants))
    got = client.get(f"/_devshop/shops/{SHOP}/markets?country=ES&handle={sale.handle}").get_json()
    assert got["country"] == "ES" and got["market"]["handle"] == europe.handle
    for variant, shown in zip(sale.variants, got["product"]["variants"], strict=True):
        price, compare = market_price(europe, sale.id, variant.price, variant.compare_at_price)
        assert Decimal(shown["price"]) == price
        assert (Decimal(shown["compare_at_price"]) if shown["compare_at_price"] else None) == compare
    card = got["product"]["card"]
    pool = [v for v in sale.variants if v.available_for_sale] or list(sale.variants)
    cheapest = min(pool, key=lambda v: (v.price, v.position))
    assert card["variant_id"] == cheapest.id
    assert Decimal(card["price"]) == market_price(europe, sale.id, cheapest.price, cheapest.compare_at_price)[0]
    assert client.get(f"/_devshop/shops/{SHOP}/markets?country=FR&handle=nope").status_code == 404


# ---- app embeds and settings in a scratch extension -------------------------------------------------------------

def test_app_embeds_render_before_the_end_of_body(tmp_path: Path) -> None:
    root = scratch_extension(tmp_path, {
        "blocks/chat.liquid": """
            <x-chat data-root="{{ routes.root_url }}" data-greeting="{{ block.settings.greeting }}"></x-chat>
            {% schema %}{"name": "Chat", "target": "body", "javascript": "feed.js",
              "settings": [{"type": "text", "id": "greeting", "label": "G", "default": "Hi"}]}{% endschema %}
        """,
        "snippets/price-note.liquid": "<small>{{ 'feed.title' | t }} {{ amount | money_with_currency }}</small>",
        "blocks/feed.liquid": """
            <x-feed data-n="{{ block.settings.limit }}">{{ 'feed.title' | t }}</x-feed>
            {% render 'price-note', amount: product.price %}
            {% schema %}{"name": "Feed", "target": "section", "javascript": "feed.js", "stylesheet": "feed.css",
              "enabled_on": {"templates": ["product"]},
              "settings": [{"type": "range", "id": "limit", "label": "N", "min": 1, "max": 9, "default": 4}]}
            {% endschema %}
        """,
    }, {"en.default.json": {"feed": {"title": "More"}}, "fr.json": {"feed": {"title": "Plus"}}})
    made = create_app({"SHOPS": {SHOP: {"products": 80, "seed": 2}}, "STOREFRONT_EXTENSION_DIR": str(root)})
    try:
        client = made.test_client()
        client.post(f"/_devshop/shops/{SHOP}/access-tokens", json={})
        assert client.put(f"/_devshop/shops/{SHOP}/storefront", json={"feed": []}).status_code == 400
        assert client.put(f"/_devshop/shops/{SHOP}/storefront", json={"product": [{"type": "chat"}]}).status_code == 400
        answer = client.put(f"/_devshop/shops/{SHOP}/storefront", json={
            "embeds": [{"type": "chat", "settings": {"greeting": "Bonjour"}}],
            "product": [{"type": "feed", "settings": {"limit": 2}}], "index": [{"type": "feed"}]})
        assert answer.status_code == 200, answer.text
        product = page(client, storefront(client)["pages"]["product"] + "?locale=fr")
        html = product.text
        assert html.index("<x-chat") > html.index("</footer>") and html.index("<x-chat") < html.index("</body>")
        assert product.find("x-chat")[0].attrs["data-greeting"] == "Bonjour"
        assert product.find("x-feed")[0].attrs["data-n"] == "2" and "Plus</x-feed>" in html
        assert re.search(r"<small>Plus €[\d.,]+ EUR</small>", html), "a snippet sees t, money and the market"
        assert len([e for e in product.find("script") if "feed.js" in e.attrs.get("src", "")]) == 1
        home = page(client, f"/shops/{SHOP}/")  # enabled_on: the feed block is for product pages only
        assert not home.find("x-feed") and home.find("x-chat")
    finally:
        made.extensions["devshop"].close()
