"""The product-feed block as a shopper meets it: devshop's product and home pages in real Chromium.

Every test loads devshop's storefront (which renders the repo's extension files with python-liquid) with Lumi's
real stack behind its app proxy, and checks what the shopper sees against what the feed API and devshop's own
market prices say: the right products in the right order and currency, no layout shift, nothing stored, no
request off the shop's origin, one feed request per block, a keyboard-operable scroller, no serious axe-core
violation, and nothing visible when there is nothing to show.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.storefront.conftest import BLOCK, SHOPIFY_CDN, Shopper, Storefront

pytestmark = pytest.mark.slow  # a synced stack per module and a real browser: about a minute in all

MAX_CLS = 0.01
FEED_PREFIX = "apps/lumi/feeds/"

# What the block shows, read from the DOM: one entry per lumi-feed element, in page order.
READ_BLOCKS = """
() => [...document.querySelectorAll('lumi-feed')].map((el) => {
  const text = (node) => node ? node.textContent.replace(/\\s+/g, ' ').trim() : null;
  const attr = (node, name) => node ? node.getAttribute(name) : null;
  const box = el.getBoundingClientRect();
  const wrapper = el.closest('.shopify-app-block');
  const heading = el.querySelector('.lumi-feed__heading');
  return {
    state: el.dataset.state || null, feed: el.dataset.feed || null, url: el.dataset.url || null,
    root: el.dataset.root || null, hidden: el.hidden, height: box.height, width: box.width,
    wrapper_height: wrapper ? wrapper.getBoundingClientRect().height : null,
    visible: !!(box.width && box.height) && getComputedStyle(el).visibility !== 'hidden',
    heading: text(heading), heading_tag: heading ? heading.tagName : null,
    region_label: attr(el.querySelector('[role=region]'), 'aria-label'),
    skeletons: el.querySelectorAll('.lumi-card--skeleton').length,
    cards: [...el.querySelectorAll('.lumi-card:not(.lumi-card--skeleton)')].map((card) => {
      const one = (selector) => card.querySelector(selector);
      const labelledby = card.getAttribute('aria-labelledby');
      const img = one('img');
      const cbox = card.getBoundingClientRect();
      return {
        tag: card.tagName, href: attr(one('.lumi-card__title a'), 'href'), title: text(one('.lumi-card__title')),
        label: text(labelledby ? document.getElementById(labelledby) : null), price: text(one('.lumi-card__price')),
        compare: text(one('.lumi-card__compare')),
        compare_tag: one('.lumi-card__compare') ? one('.lumi-card__compare').tagName : null,
        vendor: text(one('.lumi-card__vendor')),
        sale_badge: !!one('.lumi-card__badge--sale'), soldout_badge: !!one('.lumi-card__badge--soldout'),
        img: img ? Object.fromEntries(['src', 'srcset', 'sizes', 'width', 'height', 'loading']
          .map((name) => [name, attr(img, name)])) : null,
        top: cbox.top + window.scrollY, left: cbox.left,
      };
    }),
  };
})
"""


def feed_block(feed: str, **settings: Any) -> dict[str, Any]:
    """An app block as the theme editor saves it: the block's type and its settings (schema ids)."""
    base: dict[str, Any] = {"feed": feed, "heading": f"Lumi {feed}", "limit": 8, "layout": "grid",
                            "columns_desktop": 4, "columns_mobile": 2, "image_ratio": "square",
                            "show_vendor": True, "show_compare_at": True, "show_badges": True}
    base.update(settings)
    return {"type": BLOCK, "settings": base}


def blocks_on_page(shopper: Shopper) -> list[dict[str, Any]]:
    return shopper.page.evaluate(READ_BLOCKS)


def handle_of(href: str | None, root: str) -> str | None:
    path = urlsplit(href or "").path
    prefix = f"{root}products/"
    return path[len(prefix):] if path.startswith(prefix) else None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def money(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


# --- the data the page should show --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue(storefront: Storefront) -> dict[str, Any]:
    """Products worth pointing blocks at: the page's product, a collection, a search word, the fixed-price one."""
    products = storefront.products()
    by_id = {int(p["product_id"]): p for p in products}
    fixed = _fixed_price_product(storefront, by_id)
    available = sorted((p for p in products if p["available"] and p["collections"] and int(p["product_id"]) != fixed),
                       key=lambda p: int(p["product_id"]))
    page_product = available[len(available) // 2]
    collections = Counter(c for p in products for c in p["collections"])
    collection = next(c for c, n in collections.most_common() if 3 <= n)
    words = Counter(w.lower() for p in products for w in p["title"].split() if len(w) > 4)
    word = next(w for w, n in words.most_common() if 2 <= n <= 8)
    return {"by_id": by_id, "by_handle": {p["handle"]: p for p in products}, "page": page_product,
            "collection": collection, "word": word, "fixed": by_id.get(fixed) if fixed is not None else None}


def _fixed_price_product(storefront: Storefront, by_id: dict[int, dict[str, Any]]) -> int | None:
    """The product devshop gives a fixed price in the other market (from its markets description)."""
    described = storefront.markets()
    for market in described.get("markets", []):
        for pid in (market.get("fixed_prices") or {}):
            if int(pid) in by_id:
                return int(pid)
    return None


def devshop_price(storefront: Storefront, handle: str, country: str | None) -> dict[str, Any]:
    """devshop's prices for a product's card in the shopper's market (GET /_devshop/shops/<shop>/markets).

    The contract: price and compare-at price come from one variant, the cheapest available one (the cheapest of all
    when none is available). Several variants may share that price with different compare-at prices; `pairs` holds
    every (price, compare-at) such a variant has, `card` devshop's own pick among them (the first).
    """
    product = storefront.markets(country=country, handle=handle)["product"]
    variants = product["variants"]
    pool = [v for v in variants if v["available"]] or variants
    low = min(money(v["price"]) for v in pool)
    pairs = {shown_pair(money(v["price"]), money(v["compare_at_price"])) for v in pool if money(v["price"]) == low}
    card = product["card"]
    return {"currency": product["currency"], "pairs": pairs,
            "card": shown_pair(money(card["price"]), money(card["compare_at_price"])),
            "price_varies": card["price_varies"], "fixed_price": product["fixed_price"]}


def shown_pair(price: Decimal | None, compare: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """A compare-at price not above the price is no discount: themes show none, and neither do cards."""
    if compare is not None and price is not None and compare <= price:
        compare = None
    return price, compare


def check_prices_match_devshop(storefront: Storefront, product: dict[str, Any], country: str | None,
                               currency: str) -> dict[str, Any]:
    expected = devshop_price(storefront, product["handle"], country)
    pair = (money(product["price"]), money(product["compare_at_price"]))
    assert product["currency"] == expected["currency"] == currency, (product, expected)
    assert pair in expected["pairs"], ("price and compare-at of the card's variant", product, expected)
    assert product["price_varies"] == expected["price_varies"], (product, expected)
    return expected


def check_cards_match_feed(storefront: Storefront, shown: dict[str, Any], *, country: str | None = None
                           ) -> dict[str, Any]:
    """The block's cards are the feed's products, in order, with the feed's prices; returns the feed."""
    root = storefront.root
    feed = storefront.feed(shown["url"])
    products = feed["products"]
    handles = [handle_of(card["href"], root) for card in shown["cards"]]
    assert handles == [p["handle"] for p in products], (shown["url"], handles, [p["handle"] for p in products])
    for card, product in zip(shown["cards"], products, strict=True):
        assert card["tag"] == "ARTICLE" and card["label"] and product["title"] in card["label"], card
        assert product["title"] in (card["title"] or ""), (card, product)
        if product["price"] is None:
            assert not card["price"], (card, product)  # a price nobody knows is not shown
            continue
        assert product["price_formatted"] and product["price_formatted"] in (card["price"] or ""), (card, product)
        if product.get("price_varies"):
            assert card["price"] != product["price_formatted"], ("a varying price says so (From …)", card)
        if product["compare_at_price"] is not None:
            assert Decimal(product["compare_at_price"]) > Decimal(product["price"]), product
            assert card["compare_tag"] == "S" and product["compare_at_price_formatted"] in (card["compare"] or ""), \
                (card, product)
            assert card["sale_badge"] or (not product["available"] and card["soldout_badge"]), card
        else:
            assert card["compare"] is None, (card, product)
        if not product["available"]:
            assert card["soldout_badge"], card
    return feed


# --- which products, which prices ---------------------------------------------------------------------------

FEED_TYPES = ["new-arrivals", "best-sellers", "trending", "on-sale", "back-in-stock", "collection", "similar", "search"]


@pytest.mark.parametrize("feed", FEED_TYPES)
def test_each_feed_type_shows_the_feeds_products_with_their_prices(shopper: Shopper, storefront: Storefront,
                                                                   catalogue: dict[str, Any], feed: str) -> None:
    page_product = catalogue["page"]
    settings: dict[str, Any] = {}
    if feed == "collection":
        settings["collection"] = catalogue["collection"]
    if feed == "search":
        settings["search_terms"] = catalogue["word"]
    storefront.place_blocks("product", [feed_block(feed, **settings)])
    shopper.open(storefront.product_url(page_product["handle"]))
    [shown] = blocks_on_page(shopper)
    path = urlsplit(shown["url"]).path
    expected_path = {"collection": f"collection/{catalogue['collection']}",
                     "similar": f"similar/{page_product['product_id']}"}.get(feed, feed)
    assert path == f"{storefront.root}{FEED_PREFIX}{expected_path}", shown["url"]
    assert parse_qs(urlsplit(shown["url"]).query).get("limit") == ["8"], shown["url"]
    if feed == "search":
        assert parse_qs(urlsplit(shown["url"]).query).get("q") == [catalogue["word"]], shown["url"]
    body = storefront.feed(shown["url"])
    if not body["products"]:
        assert feed == "back-in-stock", f"the demo shop should have products for {feed}"
        assert shown["state"] == "empty" and shown["hidden"] and not shown["visible"], shown
        return
    assert shown["state"] == "ready" and not shown["hidden"] and shown["visible"], shown
    assert shown["heading"] == f"Lumi {feed}" and shown["heading_tag"] == "H2", shown
    feed_body = check_cards_match_feed(storefront, shown)
    by_handle = catalogue["by_handle"]
    docs = [by_handle[p["handle"]] for p in feed_body["products"]]
    if feed == "new-arrivals":
        order = [(d["available"], d["published_at"]) for d in docs]
        assert order == sorted(order, reverse=True), "in stock first, then newest first"
    elif feed == "best-sellers":
        assert all(d["units_30d"] > 0 for d in docs)
    elif feed == "trending":
        assert all(d["units_7d"] > 0 for d in docs)
    elif feed == "on-sale":
        assert all(p["compare_at_price"] is not None for p in feed_body["products"]), feed_body["products"]
        assert all(card["compare"] and card["sale_badge"] for card in shown["cards"]), shown["cards"]
    elif feed == "collection":
        assert all(catalogue["collection"] in d["collections"] for d in docs)
    elif feed == "similar":
        assert page_product["handle"] not in [d["handle"] for d in docs]
    elif feed == "search":
        assert any(catalogue["word"] in d["title"].lower() for d in docs)
    # The amounts are devshop's own (the shop's primary market, USD).
    for product in feed_body["products"]:
        check_prices_match_devshop(storefront, product, None, "USD")
    shopper.screenshot(f"feed-{feed}")


def test_the_home_page_feed_and_the_markup_a_theme_relies_on(shopper: Shopper, storefront: Storefront) -> None:
    storefront.place_blocks("index", [feed_block("best-sellers", limit=12, columns_desktop=4),
                                      feed_block("new-arrivals", layout="scroller", limit=10)])
    shopper.open(storefront.url())
    shown = blocks_on_page(shopper)
    assert [b["feed"] for b in shown] == ["best-sellers", "new-arrivals"], shown
    for block in shown:
        assert block["state"] == "ready", block
        assert block["region_label"], "the list is a region with a label"
        feed = check_cards_match_feed(storefront, block)
        for card, product in zip(block["cards"], feed["products"], strict=True):
            img = card["img"]
            if product["image"] is None:
                assert img is None, card  # a placeholder box, no broken image
                continue
            assert img and img["srcset"] and img["sizes"] and img["width"] and img["height"], card
    grid = shown[0]
    first_row = [c for c in grid["cards"] if abs(c["top"] - grid["cards"][0]["top"]) < 2]
    assert len(first_row) == 4, ("columns_desktop=4", [(c["top"], c["left"]) for c in grid["cards"]])
    below_fold = [c for b in shown for c in b["cards"] if c["top"] > 800 and c["img"]]
    assert below_fold and all(c["img"]["loading"] == "lazy" for c in below_fold), below_fold
    assert len(shopper.feed_requests()) == 2, shopper.describe()
    path = shopper.screenshot("home-grid-and-scroller", full_page=True)
    assert path.exists()


# --- no layout shift ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["grid", "scroller"])
def test_the_block_fills_without_layout_shift(browser: Any, storefront: Storefront, catalogue: dict[str, Any],
                                              tmp_path: Any, record_property: Any, layout: str) -> None:
    """CLS of the whole load, the block filling included, on a viewport tall enough to see every shift, with
    150 ms of latency per request so the skeleton is painted well before the feed arrives."""
    storefront.place_blocks("product", [feed_block("new-arrivals", layout=layout, limit=8),
                                        feed_block("similar", layout=layout, limit=4)])
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    try:
        shopper = Shopper(context, storefront, tmp_path)
        cdp = context.new_cdp_session(shopper.page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 150, "downloadThroughput": -1,
                                                      "uploadThroughput": -1})
        shopper.open(storefront.product_url(catalogue["page"]["handle"]))
        shown = blocks_on_page(shopper)
        assert [b["state"] for b in shown] == ["ready", "ready"], shown
        shopper.page.wait_for_load_state("networkidle")
        shopper.page.wait_for_timeout(300)
        # The skeletons were on screen before any feed answer arrived: the swap happened in view.
        timing = shopper.page.evaluate(
            "() => ({paint: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,"
            " feeds: performance.getEntriesByType('resource').filter(e => e.name.includes('/apps/lumi/feeds/'))"
            ".map(e => e.responseEnd)})")
        assert timing["paint"] and len(timing["feeds"]) == 2, timing
        assert all(end > timing["paint"] for end in timing["feeds"]), timing
        cls = shopper.cls()
        shot = shopper.screenshot(f"cls-{layout}", full_page=True)
        record_property(f"cls_{layout}", round(cls["value"], 5))
        assert "error" not in cls, cls
        assert cls["value"] <= MAX_CLS, (cls, str(shot))
        # The observer does see shifts on this page: a banner pushed in above everything is one.
        shopper.page.evaluate("() => { const p = document.createElement('p'); p.style.height = '200px';"
                              " p.textContent = 'late banner'; document.body.prepend(p); }")
        shopper.page.wait_for_function("() => window.__lumiTestCls.value > 0.01", timeout=5000)
    finally:
        context.close()


# --- privacy and network ------------------------------------------------------------------------------------


def test_no_cookie_no_storage_no_other_origin_and_one_request_per_block(shopper: Shopper, storefront: Storefront,
                                                                        catalogue: dict[str, Any]) -> None:
    storefront.place_blocks("product", [feed_block("new-arrivals"), feed_block("on-sale", layout="scroller"),
                                        feed_block("similar", limit=4)])
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    shopper.page.wait_for_load_state("networkidle")
    shown = blocks_on_page(shopper)
    assert [b["state"] for b in shown] == ["ready"] * 3, shown
    assert shopper.context.cookies() == [], shopper.context.cookies()
    assert shopper.storage() == {"local": [], "session": []}
    # The shop's own origin (devshop: storefront, app proxy, extension assets) and product images on Shopify's CDN.
    elsewhere = [r.url for r in shopper.requests if origin_of(r.url) != storefront.origin
                 and not (origin_of(r.url) == SHOPIFY_CDN and r.resource_type == "image")]
    assert elsewhere == [] and shopper.refused == [], shopper.describe()
    feed_requests = Counter(urlsplit(r.url).path + "?" + urlsplit(r.url).query for r in shopper.feed_requests())
    assert sorted(feed_requests) == sorted(b["url"] for b in shown), shopper.describe()
    assert set(feed_requests.values()) == {1}, feed_requests
    assert not shopper.page_errors, shopper.page_errors
    # The block's JavaScript and stylesheet are loaded once for three blocks.
    assets = Counter(urlsplit(r.url).path for r in shopper.requests if "/cdn/extensions/lumi-storefront/" in r.url)
    assert assets and set(assets.values()) == {1}, assets


def test_content_types_and_caching_of_the_page_and_its_assets(shopper: Shopper, storefront: Storefront,
                                                               catalogue: dict[str, Any]) -> None:
    storefront.place_blocks("product", [feed_block("new-arrivals")])
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    shopper.page.wait_for_load_state("networkidle")
    seen = {r.resource_type: [] for r in shopper.requests}
    for r in shopper.requests:
        seen[r.resource_type].append(r)
    [document] = seen["document"]
    assert document.content_type and document.content_type.startswith("text/html"), document
    scripts = [r for r in shopper.requests if urlsplit(r.url).path.endswith(".js")]
    styles = [r for r in shopper.requests if urlsplit(r.url).path.endswith(".css")]
    assert scripts and styles, shopper.describe()
    for r in scripts:
        assert (r.content_type or "").startswith("text/javascript"), (r.url, r.content_type)
    for r in styles:
        assert (r.content_type or "").startswith("text/css"), (r.url, r.content_type)
    for r in scripts + styles:
        if "/cdn/extensions/lumi-storefront/assets/" in r.url:
            assert "max-age" in r.headers.get("cache-control", ""), (r.url, r.headers)
    [feed] = shopper.feed_requests()
    assert feed.status == 200 and (feed.content_type or "").startswith("application/json"), feed


# --- keyboard -----------------------------------------------------------------------------------------------

FOCUSED = """
() => {
  const el = document.activeElement;
  const feed = el && el.closest('lumi-feed');
  const style = el ? getComputedStyle(el) : null;
  return el ? {tag: el.tagName, cls: String(el.className), in_feed: !!feed, label: el.getAttribute('aria-label'),
               scrollable: el.scrollWidth > el.clientWidth + 1, focus_visible: el.matches(':focus-visible'),
               outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
               shadow: style.boxShadow !== 'none'} : null;
}
"""


def _track_scroll(shopper: Shopper) -> float:
    return shopper.page.evaluate(
        "() => { const t = [...document.querySelectorAll('lumi-feed *')].find("
        "el => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible');"
        " return t ? t.scrollLeft : -1; }")


def _wait_scroll(shopper: Shopper, compare: str, value: float) -> None:
    shopper.page.wait_for_function(
        "([cmp, v]) => { const t = [...document.querySelectorAll('lumi-feed *')].find("
        "el => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible');"
        " return t && (cmp === '>' ? t.scrollLeft > v : t.scrollLeft < v); }", arg=[compare, value], timeout=5000)


@pytest.mark.parametrize("motion", ["no-preference", "reduce"])
def test_the_scroller_is_keyboard_operable_with_visible_focus(shopper: Shopper, storefront: Storefront,
                                                              catalogue: dict[str, Any], motion: str) -> None:
    storefront.place_blocks("product", [feed_block("new-arrivals", layout="scroller", limit=12)])
    shopper.page.emulate_media(reduced_motion=motion)
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    [shown] = blocks_on_page(shopper)
    assert shown["state"] == "ready" and len(shown["cards"]) == 12, shown
    assert _track_scroll(shopper) == 0, "the track overflows and starts at the left"

    # Tab through the page until focus has been on the track and on the next button.
    stops: list[dict[str, Any]] = []
    for _ in range(80):
        shopper.page.keyboard.press("Tab")
        focused = shopper.page.evaluate(FOCUSED)
        if focused and focused["in_feed"]:
            stops.append(focused)
            if any(s["scrollable"] for s in stops) and any("lumi-feed__next" in s["cls"] for s in stops):
                break
    track_stops = [s for s in stops if s["scrollable"]]
    next_stops = [s for s in stops if "lumi-feed__next" in s["cls"]]
    assert track_stops, ("Tab never reached the scroller's track", stops)
    assert next_stops and next_stops[0]["tag"] == "BUTTON" and next_stops[0]["label"], ("next button", stops)
    for stop in track_stops[:1] + next_stops[:1]:
        assert stop["focus_visible"] and (stop["outline"] or stop["shadow"]), ("no visible focus", stop)

    # Arrow keys scroll the focused track.
    shopper.page.focus("lumi-feed [tabindex]:not(button):not(a)")
    assert shopper.page.evaluate(FOCUSED)["scrollable"], "the focusable element with a tabindex is the track"
    if motion == "reduce":
        behaviour = shopper.page.evaluate("() => getComputedStyle(document.activeElement).scrollBehavior")
        assert behaviour == "auto", "prefers-reduced-motion: no smooth scrolling"
    shopper.page.keyboard.press("ArrowRight")
    _wait_scroll(shopper, ">", 0)

    # The buttons work from the keyboard: Enter on next, Space on previous.
    nxt, prev = shopper.page.locator("lumi-feed .lumi-feed__next"), shopper.page.locator("lumi-feed .lumi-feed__prev")
    for button in (nxt, prev):
        box = button.bounding_box()
        assert box and box["width"] >= 44 and box["height"] >= 44, ("touch target below 44 px", box)
        assert button.get_attribute("aria-label"), "buttons are named"
    before = _track_scroll(shopper)
    nxt.focus()
    shopper.page.keyboard.press("Enter")
    _wait_scroll(shopper, ">", before)
    shopper.page.wait_for_timeout(600 if motion == "no-preference" else 50)  # let a smooth scroll end
    after = _track_scroll(shopper)
    prev.focus()
    shopper.page.keyboard.press("Space")
    _wait_scroll(shopper, "<", after)
    shopper.screenshot(f"scroller-{motion}")


# --- the shopper's currency ---------------------------------------------------------------------------------


def test_france_sees_euro_amounts_equal_to_devshops_market_prices(shopper: Shopper, storefront: Storefront,
                                                                  catalogue: dict[str, Any]) -> None:
    fixed = catalogue["fixed"]
    assert fixed is not None, "devshop gives the first listed product a fixed price in its second market"
    storefront.place_blocks("product", [feed_block("new-arrivals", limit=8),
                                        feed_block("search", search_terms=fixed["title"], limit=12)])
    shopper.open(storefront.product_url(catalogue["page"]["handle"], country="FR"))
    shown = blocks_on_page(shopper)
    assert [b["state"] for b in shown] == ["ready", "ready"], shown
    fixed_seen = False
    for block in shown:
        assert parse_qs(urlsplit(block["url"]).query).get("country") == ["FR"], block["url"]
        feed = check_cards_match_feed(storefront, block, country="FR")
        for product, card in zip(feed["products"], block["cards"], strict=True):
            expected = check_prices_match_devshop(storefront, product, "FR", "EUR")
            assert "€" in card["price"] and "$" not in card["price"], card
            if product["handle"] == fixed["handle"]:
                fixed_seen = True
                assert expected["fixed_price"], expected
                assert money(product["price"]) == Decimal("9.00") and product["compare_at_price"] is None, product
    shot = shopper.screenshot("market-fr", full_page=True)
    assert fixed_seen, (f"the fixed-price product {fixed['handle']} should be in the search feed for its title",
                        str(shot))


# --- nothing to show: nothing visible -----------------------------------------------------------------------


def _assert_nothing_visible(shopper: Shopper) -> None:
    [shown] = blocks_on_page(shopper)
    assert shown["hidden"] and not shown["visible"] and not shown["cards"], shown
    assert shown["wrapper_height"] in (None, 0), ("no empty box where the block was", shown)
    assert not shopper.page.locator("lumi-feed").is_visible()


def test_feeds_turned_off_by_the_merchant_hide_the_block(shopper: Shopper, merchant_settings: Storefront,
                                                        catalogue: dict[str, Any]) -> None:
    storefront = merchant_settings
    storefront.place_blocks("product", [feed_block("new-arrivals")])
    assert storefront.patch_settings({"feeds_enabled": False})["feeds_enabled"] is False
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    _assert_nothing_visible(shopper)
    assert shopper.warnings() == [], "a shopper's console stays quiet"
    assert len(shopper.feed_requests()) == 1
    shopper.screenshot("feeds-off")
    shopper.open(storefront.product_url(catalogue["page"]["handle"], design_mode="1"))
    _assert_nothing_visible(shopper)
    assert len(shopper.warnings()) == 1, ("one warning in the theme editor", shopper.console)


def test_an_empty_feed_shows_nothing(shopper: Shopper, storefront: Storefront, catalogue: dict[str, Any]) -> None:
    storefront.place_blocks("product", [feed_block("search", search_terms="zqxjvw nothingmatches")])
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    _assert_nothing_visible(shopper)
    assert shopper.warnings() == [], shopper.console
    shopper.open(storefront.product_url(catalogue["page"]["handle"], design_mode="1"))
    _assert_nothing_visible(shopper)
    assert len(shopper.warnings()) == 1, ("one warning in the theme editor", shopper.console)


def test_an_unavailable_feed_shows_nothing(shopper: Shopper, storefront: Storefront,
                                          catalogue: dict[str, Any]) -> None:
    """The app answers 503 (or is down): the shopper sees no broken box and no console noise."""
    storefront.place_blocks("product", [feed_block("new-arrivals")])
    shopper.page.route("**/apps/lumi/feeds/**", lambda route: route.fulfill(
        status=503, content_type="application/json", headers={"Retry-After": "30"},
        body='{"error": {"code": "feed_unavailable", "message": "This feed is briefly unavailable."}}'))
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    _assert_nothing_visible(shopper)
    [shown] = blocks_on_page(shopper)
    assert shown["state"] == "error", shown
    assert shopper.warnings() == [] and not shopper.page_errors, (shopper.console, shopper.page_errors)
    shopper.open(storefront.product_url(catalogue["page"]["handle"], design_mode="1"))
    _assert_nothing_visible(shopper)
    assert len(shopper.warnings()) == 1, ("one warning in the theme editor", shopper.console)


# --- accessibility and small screens ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["grid", "scroller"])
def test_axe_finds_no_serious_violation_in_the_block(shopper: Shopper, storefront: Storefront,
                                                     catalogue: dict[str, Any], layout: str) -> None:
    storefront.place_blocks("product", [feed_block("on-sale", layout=layout, limit=8)])
    shopper.open(storefront.product_url(catalogue["page"]["handle"]))
    shopper.page.wait_for_load_state("networkidle")
    violations = shopper.axe(".shopify-app-block")
    shot = shopper.screenshot(f"axe-{layout}", full_page=True)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], (serious, str(shot))


@pytest.mark.parametrize("layout", ["grid", "scroller"])
def test_a_phone_has_no_horizontal_page_scroll(browser: Any, storefront: Storefront, catalogue: dict[str, Any],
                                               tmp_path: Any, layout: str) -> None:
    storefront.place_blocks("product", [feed_block("new-arrivals", layout=layout, limit=8, columns_mobile=2)])
    context = browser.new_context(viewport={"width": 360, "height": 800}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    try:
        shopper = Shopper(context, storefront, tmp_path)
        shopper.open(storefront.product_url(catalogue["page"]["handle"]))
        [shown] = blocks_on_page(shopper)
        assert shown["state"] == "ready", shown
        widths = shopper.page.evaluate("() => ({scroll: document.documentElement.scrollWidth,"
                                       " inner: window.innerWidth, body: document.body.scrollWidth})")
        shot = shopper.screenshot(f"mobile-{layout}", full_page=True)
        assert widths["scroll"] <= widths["inner"] and widths["body"] <= widths["inner"], (widths, str(shot))
        if layout == "grid":
            first_row = [c for c in shown["cards"] if abs(c["top"] - shown["cards"][0]["top"]) < 2]
            assert len(first_row) == 2, ("columns_mobile=2", [(c["top"], c["left"]) for c in shown["cards"]])
    finally:
        context.close()
