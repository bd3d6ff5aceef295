"""The embedded admin page, used as a merchant uses it: in Chromium, inside devshop's admin frame, through App
Bridge (devshop's stand-in): its nav, contextual save bar, toasts and fresh session tokens."""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.admin.conftest import PAGES, Merchant
from tests.conftest import DEMO_SHOP
from tests.helpers import wait_until
from tests.storefront.conftest import Storefront

TOKEN_TTL = 3  # seconds devshop's session tokens live here (Shopify: 60), so a test can outlive one
DEVSHOP_CONFIG = {"SESSION_TOKEN_TTL": TOKEN_TTL}
NAV = ["Home", "Feeds", "Chat", "Analytics", "Data & privacy"]
LCP_LIMIT_MS = 1000  # issue 14 (Built for Shopify allows 2500 at p75)
CLS_LIMIT = 0.05  # issue 14 (Built for Shopify allows 0.1)


def proxy(storefront: Storefront, path: str) -> requests.Response:
    """What the storefront gets from Lumi through devshop's app proxy."""
    return requests.get(storefront.stack.control.proxy_url(DEMO_SHOP, path), timeout=30)


@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_is_html_with_the_nav_in_the_admin(merchant: Merchant, page: str) -> None:
    app = merchant.open(page)
    document = merchant.app_document()
    assert document.headers["content-type"] == "text/html; charset=utf-8"
    assert document.headers["cache-control"] == "no-store"
    assert f"frame-ancestors https://{DEMO_SHOP} " in document.headers["content-security-policy"]
    # The admin draws the app's <s-app-nav> in its sidebar, Home first, and the page's title in its title bar.
    # (rel=home is the app's own entry, named after the app; the other links are listed under it.)
    merchant.page.wait_for_function("document.querySelectorAll('#app-nav a').length === 4")
    assert merchant.page.locator("#app-nav a").all_inner_texts() == NAV[1:]
    assert merchant.page.locator("#app-home-link").inner_text() == "Lumi"
    assert merchant.page.locator("#app-title").inner_text() == NAV[list(PAGES).index(page)]
    assert app.locator("s-app-nav").is_hidden(), "the nav is the admin's, not drawn in the page"
    assert not merchant.errors and not merchant.refused, (merchant.errors, merchant.refused)


def test_the_nav_moves_between_pages(merchant: Merchant) -> None:
    merchant.open("home")
    merchant.page.wait_for_function("document.querySelectorAll('#app-nav a').length === 4")
    merchant.page.click("#app-nav a:text-is('Feeds')")
    merchant.page.frame_locator("#app-iframe").locator("body[data-page=feeds]").wait_for()
    assert merchant.app.url.split("?")[0].endswith("/app/feeds")


def test_turning_feeds_off_and_on_through_the_save_bar(merchant: Merchant, merchant_settings: Storefront) -> None:
    storefront = merchant_settings
    assert proxy(storefront, "feeds/best-sellers").status_code == 200
    app = merchant.open("feeds")
    checkbox = app.locator("#feeds_enabled")
    app.wait_for_selector("#settings-form[data-loaded]")
    assert checkbox.is_checked()
    checkbox.uncheck()
    merchant.save()
    app.wait_for_selector("#save-status:text('Saved.')")
    off = proxy(storefront, "feeds/best-sellers")
    assert off.status_code == 404 and off.json()["error"]["code"] == "feeds_disabled", off.text[:300]
    # Saved means saved: the page reloaded shows it off, and turning it on restores the feeds.
    app = merchant.open("feeds")
    app.wait_for_selector("#settings-form[data-loaded]")
    assert not app.locator("#feeds_enabled").is_checked()
    app.locator("#feeds_enabled").check()
    merchant.save()
    app.wait_for_selector("#save-status:text('Saved.')")
    assert proxy(storefront, "feeds/best-sellers").status_code == 200


def test_discard_puts_the_form_back(merchant: Merchant) -> None:
    app = merchant.open("feeds")
    app.wait_for_selector("#settings-form[data-loaded]")
    app.locator("#feed_default_limit").fill("7")
    merchant.page.locator("#save-bar").wait_for(state="visible")
    merchant.page.click("#save-bar-discard")
    merchant.page.locator("#save-bar").wait_for(state="hidden")
    saved = str(merchant.storefront.settings()["feed_default_limit"])
    assert saved != "7"
    app.wait_for_function(f"document.querySelector('#feed_default_limit').value === '{saved}'", timeout=5000)


def test_a_refused_setting_is_shown_inline_and_stays(merchant: Merchant, merchant_settings: Storefront) -> None:
    app = merchant.open("feeds")
    app.wait_for_selector("#settings-form[data-loaded]")
    app.locator("#feed_default_limit").fill("99")
    merchant.save()
    error = app.locator("#error-feed_default_limit")
    error.wait_for(state="visible")
    assert "1 to 50" in error.inner_text()
    assert app.locator("#feed_default_limit").get_attribute("aria-invalid") == "true"
    time.sleep(1)  # not a toast: still there
    assert error.is_visible()
    assert merchant_settings.settings()["feed_default_limit"] != 99


def test_the_widget_colour_reaches_the_storefront_config(merchant: Merchant, merchant_settings: Storefront) -> None:
    app = merchant.open("chat")
    app.wait_for_selector("#settings-form[data-loaded]")
    app.locator("#primary_color").fill("#aa3300")
    # The live preview follows before saving.
    assert app.locator("#preview-launcher").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(170, 51, 0)"
    merchant.save()
    app.wait_for_selector("#save-status:text('Saved.')")
    config = proxy(merchant_settings, "config")
    assert config.status_code == 200, config.text[:300]
    assert "#aa3300" in config.text


def test_rebuild_shows_progress_to_completion(merchant: Merchant) -> None:
    app = merchant.open("home")
    app.wait_for_selector("#index-progress[data-state=completed]")
    app.click("#rebuild")
    # The bar leaves "completed" (queued or running, with progress), then completes again.
    app.wait_for_selector("#index-progress:not([data-state=completed])", timeout=10_000)
    seen = app.locator("#index-text").inner_text()
    app.wait_for_selector("#index-progress[data-state=completed]", timeout=120_000)
    assert app.locator("#index-progress").get_attribute("aria-valuenow") == "100"
    assert "products indexed" in app.locator("#index-text").inner_text(), seen
    assert app.locator("#index-last").inner_text().startswith("Last sync")
    assert not merchant.errors, merchant.errors


def test_the_page_still_works_after_the_session_token_expired(merchant: Merchant, merchant_settings: Storefront
                                                              ) -> None:
    app = merchant.open("feeds")
    app.wait_for_selector("#settings-form[data-loaded]")
    time.sleep(TOKEN_TTL + 2)  # the launch token (and any token fetched so far) has expired
    app.locator("#feed_default_limit").fill("11")
    merchant.save()
    app.wait_for_selector("#save-status:text('Saved.')")
    assert merchant_settings.settings()["feed_default_limit"] == 11


def test_preview_and_explain_match_the_storefronts_best_sellers(merchant: Merchant) -> None:
    storefront_feed = proxy(merchant.storefront, "feeds/best-sellers?limit=8")
    assert storefront_feed.status_code == 200
    expected = [str(p["id"]) for p in storefront_feed.json()["products"]]
    app = merchant.open("feeds")
    app.select_option("#preview-feed", "best-sellers")
    app.fill("#preview-limit", "8")
    app.click("#preview-form button[type=submit]")
    app.wait_for_selector("#preview-table tbody tr[data-product-id]")
    rows = app.locator("#preview-table tbody tr[data-product-id]")
    assert [rows.nth(i).get_attribute("data-product-id") for i in range(rows.count())] == expected
    assert "sold in 7 days" in rows.first.inner_text()


def test_load_is_fast_and_stable(merchant: Merchant) -> None:
    for page in PAGES:
        app = merchant.open(page)
        app.wait_for_timeout(800)  # the API's answers have landed and any late shift is counted
        vitals = merchant.vitals()
        assert vitals["lcp"] is not None, vitals
        assert vitals["lcp"] <= LCP_LIMIT_MS, (page, vitals)
        assert vitals["cls"] <= CLS_LIMIT, (page, vitals)
        sys.stderr.write(f"{page}: LCP {vitals['lcp']:.0f} ms, CLS {vitals['cls']:.4f}\n")


@pytest.mark.parametrize("page", list(PAGES))
def test_screenshots_no_sideways_scroll_and_no_serious_axe_violations(merchant: Merchant, page: str) -> None:
    merchant.open(page)
    merchant.app.wait_for_timeout(500)
    merchant.screenshot(f"{page}-1280")
    violations = [v for v in merchant.axe() if v["impact"] in ("serious", "critical")]
    assert not violations, violations
    for width, name in ((375, "375"), (360, None)):
        merchant.page.set_viewport_size({"width": width, "height": 800})
        merchant.app.wait_for_timeout(200)
        assert merchant.horizontal_overflow() <= 0, (page, width)
        if name:
            merchant.screenshot(f"{page}-{name}")


def _csv_rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_chat_session_appears_in_history_with_its_transcript_and_in_the_csv(merchant: Merchant) -> None:
    base = merchant.stack.control.proxy_url(DEMO_SHOP, "chat/sessions")
    started = requests.post(base, json={}, timeout=30)
    assert started.status_code == 201, started.text
    session = started.json()["session"]
    said = requests.post(f"{base}/{session['id']}/messages", json={"text": "Do you ship to Canada?"},
                         headers={"X-Lumi-Session-Secret": session["secret"]}, timeout=30)
    assert said.status_code == 200, said.text
    app = merchant.open("chat")
    row = app.locator(f"#history-table tr[data-session-id='{session['id']}']")
    row.wait_for()
    row.locator("button").click()
    app.locator("#transcript-card").wait_for(state="visible")
    wait_until(lambda: "Do you ship to Canada?" in app.locator("#transcript").inner_text(), timeout=10,
               what="the transcript")
    with merchant.page.expect_download() as download_info:
        app.click("#export-csv")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    rows = _csv_rows(Path(download.path()).read_text(encoding="utf-8"))
    (exported,) = [r for r in rows if r["session_id"] == session["id"]]
    assert "Do you ship to Canada?" in exported["transcript"]



def test_analytics_shows_charts_and_totals_of_the_scripted_sessions(merchant: Merchant) -> None:
    before = merchant.stack.api("GET", "/api/chat/analytics", params={"days": "7"}).json()["analytics"]["sessions"]
    base = merchant.stack.control.proxy_url(DEMO_SHOP, "chat/sessions")
    for _ in range(3):
        assert requests.post(base, json={}, timeout=30).status_code == 201
    app = merchant.open("analytics")
    app.wait_for_function(f"document.querySelector('#a-sessions').textContent === '{before + 3}'", timeout=10_000)
    for chart in ("sessions", "escalation_rate", "resolution_rate", "sentiment"):
        app.wait_for_selector(f"#chart-{chart} svg", timeout=10_000)
    # The table alternative says the same: today's row counts every session of today.
    table = app.locator("#table-sessions tbody tr")
    assert sum(int(table.nth(i).locator("td").nth(1).text_content() or 0) for i in range(table.count())) == before + 3
    assert "never" in app.locator("#sum-h + .stats + .help").inner_text(), "the page defines resolution"


def test_the_pages_own_script_stays_within_30_kb_gzipped() -> None:
    import gzip

    from web.app_page import ASSETS

    size = len(gzip.compress((ASSETS / "admin.js").read_bytes(), compresslevel=9))
    assert size <= 30 * 1024, size


def test_send_test_email_reaches_the_saved_address_and_failures_stay_on_the_page(
        merchant: Merchant, merchant_settings: Storefront) -> None:
    mailbox = merchant_settings.mailbox
    assert mailbox is not None
    mailbox.clear()
    merchant_settings.patch_settings({"escalation_email": "help@demo-merchant.example"})
    app = merchant.open("chat")
    app.wait_for_selector("#settings-form[data-loaded]")
    status = app.locator("#test-email-status")
    app.locator("#test-email").click()
    wait_until(lambda: "sent" in status.inner_text().lower(), timeout=15, what="the test email's confirmation")
    [message] = mailbox.wait_for(1, timeout=10)
    assert message["To"] == "help@demo-merchant.example", message["To"]

    mailbox.fail_next(1, 550)  # the merchant's mail server refuses it: the reason stays on the page, in red
    app.locator("#test-email").click()
    wait_until(lambda: "550" in status.inner_text(), timeout=15, what="the refusal")
    assert "field-error" in (status.get_attribute("class") or "")
    time.sleep(1)  # not a toast: still there
    assert "550" in status.inner_text()
    assert len(mailbox.messages) == 1


def test_home_shows_what_the_theme_has_the_freshness_and_todays_chats(merchant: Merchant) -> None:
    store = merchant.storefront
    before = requests.get(f"{store.origin}/_devshop/shops/{DEMO_SHOP}/storefront", timeout=30).json()
    store.place_blocks("product", [{"type": "product-feed", "settings": {"feed": "similar"}}])
    store.disable_chat_embed()
    base = merchant.stack.control.proxy_url(DEMO_SHOP, "chat/sessions")
    for _ in range(2):  # two shoppers open the chat today; one asks for a person
        started = requests.post(base, json={}, timeout=30)
        assert started.status_code == 201, started.text
    session = started.json()["session"]
    escalated = requests.post(f"{base}/{session['id']}/escalate", json={},
                              headers={"X-Lumi-Session-Secret": session["secret"]}, timeout=30)
    assert escalated.status_code == 202, escalated.text
    try:
        app = merchant.open("home")
        key = merchant.stack.env["SHOPIFY_API_KEY"]
        editor = f"https://{DEMO_SHOP}/admin/themes/current/editor"
        app.wait_for_function("() => !document.querySelector('#embed-status').textContent.includes('Checking')")
        assert app.locator("#block-status").inner_text().strip() == "Added"
        assert app.locator("#embed-status").inner_text().strip() == "Not added"
        assert app.locator("#block-link").get_attribute("href") == (
            f"{editor}?template=product&addAppBlockId={key}/product-feed&target=mainSection")
        assert app.locator("#embed-link").get_attribute("href") == (
            f"{editor}?context=apps&template=index&activateAppId={key}/support-chat")
        assert app.locator("#embed-link").get_attribute("target") == "_top"  # the editor opens in the admin

        today = merchant.stack.api("GET", "/api/chat/analytics", params={"days": 1}).json()["analytics"]
        app.wait_for_function("() => document.querySelector('#today-sessions').textContent.trim() !== '–'")
        shown = int(app.locator("#today-sessions").inner_text())
        assert shown == today["sessions"] and shown >= 2, (shown, today)
        assert int(app.locator("#today-escalated").inner_text()) >= 1

        freshness = merchant.stack.api("GET", "/api/freshness").json()
        app.wait_for_function("() => document.querySelector('#fresh-note').textContent.trim().length > 1")
        note = app.locator("#fresh-note").inner_text()
        if freshness["samples"]:
            assert f"From {freshness['samples']} product updates" in note, (note, freshness)
        else:
            assert note == "No product updates in the last 24 hours." and app.locator("#fresh-p50").inner_text() == "–"

        store.enable_chat()  # the merchant turns the embed on in the theme editor, then comes back
        app = merchant.open("home")
        app.wait_for_function("() => document.querySelector('#embed-status').textContent.trim() === 'Active'")
    finally:
        store.place_blocks("embeds", before["embeds"])
        store.place_blocks("product", before["templates"]["product"])
