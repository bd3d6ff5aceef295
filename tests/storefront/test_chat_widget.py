"""The "Support chat" app embed as a shopper meets it: devshop's storefront in real Chromium, Lumi's stack behind it.

Each test opens devshop's home page with the embed switched on and talks to the real chat API, through devshop's
signed app proxy (streaming or buffering whole answers) or straight to Lumi's APP_URL (the session's stream_url,
CORS): keyboard use, order verification, the streamed tracking answer, a logged-in shopper, French, privacy (only
Lumi's sessionStorage key; no cookie; no other origin), retries without a duplicate, clear error states, axe-core,
no layout shift, and a launcher that clears a theme's fixed mobile button.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devshop.orders import DEMO_CUSTOMER
from tests.conftest import DEMO_SHOP
from tests.storefront.conftest import SHOPIFY_CDN, Shopper, Storefront

pytestmark = pytest.mark.slow  # one synced stack for the module and a real browser

ORDER, EMAIL = "#1001", "shopper@example.com"  # devshop's demo order: shipped with UPS, in transit
TRACKING_NUMBER = "1Z999AA10123456784"
STORAGE_KEY = f"lumi-chat:{DEMO_SHOP}"
LAUNCHER = "#lumi-chat .lumi-chat__launcher"
DIALOG = "#lumi-chat dialog"
INPUT = "#lumi-chat-input"

# What the panel shows: its messages (role, text, busy), links, cards, forms and notes.
READ_PANEL = """
() => {
  const d = document.querySelector('#lumi-chat dialog');
  if (!d) return null;
  const text = (n) => n ? n.textContent.replace(/\\s+/g, ' ').trim() : null;
  return {
    open: d.open, modal: d.matches(':modal'),
    messages: [...d.querySelectorAll('.lumi-msg')].map((m) => ({
      role: m.classList.contains('lumi-msg--shopper') ? 'shopper' : 'assistant',
      text: text(m.querySelector('.lumi-msg__text')), busy: m.hasAttribute('aria-busy'),
      links: [...m.querySelectorAll('a')].map((a) => ({href: a.href, text: text(a), target: a.target, rel: a.rel})),
      cards: [...m.querySelectorAll('.lumi-card')].map(text),
      forms: [...m.querySelectorAll('form')].map((f) => text(f.querySelector('.lumi-form__title'))),
      buttons: [...m.querySelectorAll('.lumi-suggest button')].map(text),
    })),
    notes: [...d.querySelectorAll('.lumi-note')].map(text),
    log: {role: d.querySelector('.lumi-panel__log').getAttribute('role'),
          live: d.querySelector('.lumi-panel__log').getAttribute('aria-live')},
  };
}
"""


# --- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_store(storefront: Storefront) -> Iterator[Storefront]:
    """The embed on with its default settings, and no feed blocks (so nothing else on the page moves)."""
    storefront.place_blocks("index", [])
    storefront.place_blocks("product", [])
    storefront.enable_chat()
    storefront.proxy_buffering(False)
    yield storefront
    storefront.disable_chat_embed()


@pytest.fixture
def direct_off(chat_store: Storefront, merchant_settings: Storefront) -> Storefront:
    """The merchant turned the direct stream off: every chat request goes through the app proxy."""
    assert merchant_settings.patch_settings({"chat_direct_stream": False})["chat_direct_stream"] is False
    return chat_store


def panel(shopper: Shopper) -> dict[str, Any]:
    return shopper.page.evaluate(READ_PANEL)


def wait_launcher(shopper: Shopper) -> None:
    shopper.page.wait_for_selector(LAUNCHER, state="visible", timeout=15_000)


def open_with_keyboard(shopper: Shopper) -> None:
    """Tab from the top of the page to the launcher, then Enter; the panel opens with focus in its input."""
    wait_launcher(shopper)
    for _ in range(60):
        shopper.page.keyboard.press("Tab")
        if shopper.page.evaluate("() => document.activeElement.matches('.lumi-chat__launcher')"):
            break
    else:
        pytest.fail("Tab never reached the chat launcher")
    shopper.page.keyboard.press("Enter")
    shopper.page.wait_for_function("() => document.activeElement && document.activeElement.id === 'lumi-chat-input'",
                                   timeout=10_000)
    wait_greeting(shopper)


def open_with_click(shopper: Shopper) -> None:
    wait_launcher(shopper)
    shopper.page.click(LAUNCHER)
    wait_greeting(shopper)


def wait_greeting(shopper: Shopper) -> None:
    shopper.page.wait_for_function(
        "() => document.querySelector('#lumi-chat dialog .lumi-msg--assistant .lumi-msg__text')?.textContent",
        timeout=10_000)


def ask(shopper: Shopper, text: str) -> dict[str, Any]:
    """Type a message, send it with Enter, and wait for the whole reply; returns the reply as shown."""
    before = len(panel(shopper)["messages"])
    shopper.page.fill(INPUT, text)
    shopper.page.press(INPUT, "Enter")
    return wait_reply(shopper, before + 2)


def wait_reply(shopper: Shopper, count: int) -> dict[str, Any]:
    shopper.page.wait_for_function(
        "(n) => { const m = [...document.querySelectorAll('#lumi-chat .lumi-msg')];"
        " return m.length >= n && !m[m.length - 1].hasAttribute('aria-busy'); }", arg=count, timeout=15_000)
    return panel(shopper)["messages"][-1]


def verify(shopper: Shopper, order: str, email: str) -> None:
    form = shopper.page.locator(f"{DIALOG} form.lumi-form").last
    form.get_by_label("Order number").fill(order)
    form.get_by_label("Email used for the order").fill(email)
    form.locator("button").click()


def message_requests(shopper: Shopper) -> list[Any]:
    return [r for r in shopper.requests if r.method == "POST" and urlsplit(r.url).path.endswith("/messages")]


def origins(shopper: Shopper) -> set[str]:
    """Where the page sent requests, besides the theme's product images on Shopify's CDN."""
    return {origin_of(r.url) for r in shopper.requests
            if not (origin_of(r.url) == SHOPIFY_CDN and r.resource_type == "image")}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def tracking_links(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in reply["links"] if TRACKING_NUMBER in link["text"]]


# --- the order question, verified, answered with the tracking link ---------------------------------------------


def test_keyboard_open_verify_and_streamed_tracking_answer_over_the_direct_stream(shopper: Shopper,
                                                                                    chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)  # the session's stream_url: Lumi's own URL, CORS
    shopper.open(chat_store.url())
    open_with_keyboard(shopper)
    shown = panel(shopper)
    assert shown["open"] and shown["modal"], shown
    assert shown["log"] == {"role": "log", "live": "polite"}, shown["log"]

    reply = ask(shopper, "Where is my order?")
    assert reply["forms"] == ["Find your order"], reply
    verify(shopper, ORDER, EMAIL)
    answer = wait_reply(shopper, len(panel(shopper)["messages"]) + 1)
    assert ORDER in answer["text"] and "UPS" in answer["text"], answer
    [link] = tracking_links(answer)
    assert "UPS" in link["text"] and link["target"] == "_blank" and "noopener" in link["rel"], link
    assert urlsplit(link["href"]).scheme == "https" and TRACKING_NUMBER in link["href"], link
    assert any(ORDER in card for card in answer["cards"]), answer
    assert f"Order {ORDER} verified." in panel(shopper)["notes"], panel(shopper)["notes"]
    # Both turns went straight to Lumi's APP_URL and came back as Server-Sent Events; nothing else left devshop.
    sent = message_requests(shopper)
    assert len(sent) == 2 and {origin_of(r.url) for r in sent} == {chat_store.app_origin}, shopper.describe()
    assert all((r.content_type or "").startswith("text/event-stream") for r in sent), shopper.describe()
    assert origins(shopper) == {chat_store.origin, chat_store.app_origin}, shopper.describe()
    assert shopper.refused == [] and not shopper.page_errors, (shopper.refused, shopper.page_errors)
    shopper.screenshot("chat-verified-answer")


def test_a_wrong_email_is_refused_inline(shopper: Shopper, chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url())
    open_with_click(shopper)
    ask(shopper, "Where is my order?")
    verify(shopper, ORDER, "someone.else@example.com")
    refusal = shopper.page.locator(f"{DIALOG} form.lumi-form .lumi-err:not(:empty)")
    refusal.wait_for(timeout=10_000)
    assert refusal.inner_text().startswith("We couldn't match that order number and email"), refusal.inner_text()
    refusal_id = refusal.get_attribute("id")
    for label in ("Order number", "Email used for the order"):
        described = shopper.page.locator(DIALOG).get_by_label(label).get_attribute("aria-describedby") or ""
        assert refusal_id in described.split(), (label, described, refusal_id)
    shown = panel(shopper)
    assert not any(tracking_links(m) or m["cards"] for m in shown["messages"]), shown
    assert f"Order {ORDER} verified." not in shown["notes"]


def test_a_logged_in_customer_gets_their_orders_without_verifying(shopper: Shopper, chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.log_in(DEMO_CUSTOMER.id)
    shopper.open(chat_store.url())
    open_with_click(shopper)
    reply = ask(shopper, "Where is my order?")
    assert reply["forms"] == [], ("no verify form for a logged-in customer", reply)
    assert reply["cards"] and any(name in reply["text"] for name in ("#1001", "#1002", "#1003")), reply


def test_a_french_page_gets_a_french_chat(shopper: Shopper, chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url(locale="fr"))
    wait_launcher(shopper)
    assert shopper.page.locator(LAUNCHER).get_attribute("aria-haspopup") == "dialog"
    assert shopper.page.locator(LAUNCHER).inner_text().strip() == "Discuter avec nous"
    open_with_click(shopper)
    created = [r for r in shopper.requests if r.method == "POST" and urlsplit(r.url).path.endswith("/chat/sessions")]
    assert len(created) == 1, shopper.describe()
    greeting = panel(shopper)["messages"][0]["text"]
    assert "Bonjour" in greeting or "bienvenue" in greeting.lower(), greeting
    reply = ask(shopper, "Où est ma commande ?")
    assert reply["forms"] == ["Retrouver votre commande"] and "commande" in reply["text"], reply
    assert shopper.page.locator(DIALOG).get_by_label("Numéro de commande (ex. #1001)").count() == 1


# --- keyboard and focus -----------------------------------------------------------------------------------------


def test_focus_stays_in_the_panel_and_escape_returns_it_to_the_launcher(shopper: Shopper,
                                                                        chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url())
    open_with_keyboard(shopper)
    for _ in range(8):  # the modal dialog keeps the page inert: Tab never reaches anything behind it
        shopper.page.keyboard.press("Tab")
        outside = shopper.page.evaluate(
            "() => { const a = document.activeElement; return a && a !== document.body"
            " && !a.closest('#lumi-chat dialog') ? a.outerHTML.slice(0, 120) : null; }")
        assert outside is None, outside
    shopper.page.keyboard.press("Escape")
    # The dialog's `close` event (which updates the launcher) is a task queued after `open` turns false.
    shopper.page.wait_for_function("() => !document.querySelector('#lumi-chat dialog').open && document"
                                   ".querySelector('.lumi-chat__launcher').getAttribute('aria-expanded') === 'false'",
                                   timeout=5000)
    assert shopper.page.evaluate("() => document.activeElement.matches('.lumi-chat__launcher')")
    box = shopper.page.locator(LAUNCHER).bounding_box()
    assert box and box["width"] >= 44 and box["height"] >= 44, box


# --- privacy, origins, sessions ---------------------------------------------------------------------------------


def test_only_a_lumi_session_key_in_session_storage_no_cookie_no_other_origin(shopper: Shopper,
                                                                                direct_off: Storefront) -> None:
    shopper.open(direct_off.url())
    open_with_click(shopper)
    ask(shopper, "Where is my order?")
    assert shopper.context.cookies() == [], shopper.context.cookies()
    assert shopper.storage() == {"local": [], "session": [STORAGE_KEY]}, shopper.storage()
    kept = shopper.page.evaluate("(k) => JSON.parse(sessionStorage.getItem(k))", STORAGE_KEY)
    assert set(kept) == {"id", "secret", "stream_url"} and kept["stream_url"] is None, kept
    assert origins(shopper) == {direct_off.origin}, shopper.describe()
    assert shopper.refused == [], shopper.refused
    assert all(urlsplit(r.url).path.startswith(direct_off.root) for r in message_requests(shopper))

    # The same tab on another page: the same conversation. A new tab: a new session.
    shopper.open(direct_off.url())
    open_with_click(shopper)
    shopper.page.wait_for_function("() => document.querySelectorAll('#lumi-chat .lumi-msg--shopper').length === 1")
    assert panel(shopper)["messages"][1]["text"] == "Where is my order?"
    assert shopper.page.evaluate("(k) => JSON.parse(sessionStorage.getItem(k)).id", STORAGE_KEY) == kept["id"]
    shopper.page.close()
    shopper.page = shopper.context.new_page()  # a new tab of the same browser
    shopper.page.on("request", shopper._on_request)
    shopper.open(direct_off.url())
    open_with_click(shopper)
    new_id = shopper.page.evaluate("(k) => JSON.parse(sessionStorage.getItem(k)).id", STORAGE_KEY)
    assert new_id and new_id != kept["id"], (new_id, kept["id"])
    assert [m["role"] for m in panel(shopper)["messages"]] == ["assistant"], "a new conversation: the greeting only"


def test_a_lost_answer_is_retried_with_the_same_client_id_and_shown_once(shopper: Shopper,
                                                                           direct_off: Storefront) -> None:
    lost: list[int] = []
    client_ids: list[str] = []

    def lose_first(route: Any) -> None:
        client_ids.append(route.request.post_data_json["client_id"])
        if not lost:  # the app answers, but the answer never reaches the browser
            lost.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.continue_()

    shopper.page.route("**/apps/lumi/chat/sessions/*/messages", lose_first)
    shopper.open(direct_off.url())
    open_with_click(shopper)
    reply = ask(shopper, "Where is my order?")
    assert reply["forms"] == ["Find your order"], reply
    sent = message_requests(shopper)
    assert len(sent) == 2 and lost == [200], (lost, shopper.describe())
    assert len(client_ids) == 2 and client_ids[0] == client_ids[1], client_ids
    kept = shopper.page.evaluate("(k) => JSON.parse(sessionStorage.getItem(k))", STORAGE_KEY)
    transcript = requests.get(direct_off.url(f"apps/lumi/chat/sessions/{kept['id']}"),
                              headers={"X-Lumi-Session-Secret": kept["secret"]}, timeout=30).json()
    shopper_texts = [m["text"] for m in transcript["messages"] if m["role"] == "shopper"]
    assert shopper_texts == ["Where is my order?"], transcript["messages"]
    assert [m["role"] for m in panel(shopper)["messages"]] == ["assistant", "shopper", "assistant"]


# --- both delivery paths ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffered", [False, True], ids=["streaming-proxy", "buffering-proxy"])
def test_the_proxy_path_answers_whether_it_streams_or_buffers(shopper: Shopper, direct_off: Storefront,
                                                              buffered: bool) -> None:
    direct_off.proxy_buffering(buffered)
    try:
        shopper.log_in(DEMO_CUSTOMER.id)
        shopper.open(direct_off.url())
        open_with_click(shopper)
        reply = ask(shopper, f"Where is my order {ORDER}?")
    finally:
        direct_off.proxy_buffering(False)
    assert ORDER in reply["text"] and tracking_links(reply), reply
    [sent] = message_requests(shopper)
    assert origin_of(sent.url) == direct_off.origin and (sent.content_type or "").startswith("text/event-stream")
    assert ("content-length" in sent.headers) is buffered, sent.headers


def test_the_direct_stream_falls_back_to_the_proxy_when_the_app_url_is_unreachable(shopper: Shopper,
                                                                                     chat_store: Storefront) -> None:
    shopper.open(chat_store.url())  # APP_URL not allowed: the direct request fails before any byte
    open_with_click(shopper)
    reply = ask(shopper, "Where is my order?")
    assert reply["forms"] == ["Find your order"], reply
    assert [origin_of(url) for url in shopper.refused] == [chat_store.app_origin], shopper.refused
    assert [origin_of(r.url) for r in message_requests(shopper)] == [chat_store.app_origin, chat_store.origin]
    assert message_requests(shopper)[1].status == 200, shopper.describe()
    assert len([m for m in panel(shopper)["messages"] if m["role"] == "shopper"]) == 1


# --- states ---------------------------------------------------------------------------------------------------------


def test_no_launcher_when_the_merchant_turned_the_chat_off(shopper: Shopper, merchant_settings: Storefront,
                                                           chat_store: Storefront) -> None:
    assert merchant_settings.patch_settings({"chat_enabled": False})["chat_enabled"] is False
    shopper.open(chat_store.url())
    shopper.page.wait_for_selector("#lumi-chat[data-state=off]", state="attached", timeout=15_000)
    assert not shopper.page.locator(LAUNCHER).is_visible()
    assert not [r for r in shopper.requests if "lumi-chat-panel" in r.url], "no panel code for a chat that is off"


@pytest.mark.parametrize(("status", "code", "headers", "expected"), [
    (429, "too_many_sessions", {"Retry-After": "30"}, "Please try again in 30 seconds."),
    (503, "orders_unavailable", {"Retry-After": "30"}, "Orders can't be checked right now."),
    (404, "chat_disabled", {}, "The chat is not available right now."),
])
def test_clear_states_when_a_chat_cannot_start(shopper: Shopper, chat_store: Storefront, status: int, code: str,
                                               headers: dict[str, str], expected: str) -> None:
    shopper.page.route("**/apps/lumi/chat/sessions", lambda route: route.fulfill(
        status=status, content_type="application/json", headers=headers,
        body=f'{{"error": {{"code": "{code}", "message": "x"}}}}'))
    shopper.open(chat_store.url())
    wait_launcher(shopper)
    shopper.page.click(LAUNCHER)
    shopper.page.wait_for_selector(f"{DIALOG} .lumi-note", timeout=10_000)
    notes = panel(shopper)["notes"]
    assert any(expected in note for note in notes), notes
    assert shopper.page.locator(f"{DIALOG} .lumi-panel__form").is_visible() is (code != "chat_disabled")


# --- accessibility, layout, weight ----------------------------------------------------------------------------------


def test_axe_finds_no_serious_violation_with_the_panel_open(shopper: Shopper, chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url())
    open_with_click(shopper)
    ask(shopper, "Where is my order?")  # the verify form and suggestions are in the panel too
    violations = shopper.axe("#lumi-chat")
    shot = shopper.screenshot("chat-axe")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], (serious, str(shot))


def test_no_layout_shift_and_the_panel_loads_only_when_opened(shopper: Shopper, chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url())
    wait_launcher(shopper)
    shopper.page.wait_for_load_state("networkidle")
    assert shopper.cls()["value"] == 0, shopper.cls()
    assets = {urlsplit(r.url).path.rsplit("/", 1)[-1] for r in shopper.requests if "/lumi-storefront/" in r.url}
    assert assets == {"lumi-chat.js", "lumi-chat.css"}, assets
    box = shopper.page.locator(LAUNCHER).bounding_box()
    position = shopper.page.evaluate(f"() => getComputedStyle(document.querySelector('{LAUNCHER}')).position")
    z_index = shopper.page.evaluate(f"() => +getComputedStyle(document.querySelector('{LAUNCHER}')).zIndex")
    assert position == "fixed" and box and box["width"] >= 44 and box["height"] >= 44, (position, box)
    assert 0 < z_index < 1000, ("below a theme's drawers and modals", z_index)
    shopper.page.click(LAUNCHER)
    wait_greeting(shopper)
    assets = {urlsplit(r.url).path.rsplit("/", 1)[-1] for r in shopper.requests if "/lumi-storefront/" in r.url}
    assert {"lumi-chat-panel.js", "lumi-chat-panel.css", "lumi-chat-parts.js"} <= assets, assets


@pytest.mark.parametrize(("offset", "clear"), [(16, False), (88, True)])
def test_the_mobile_offset_setting_clears_a_fixed_apply_filters_button(browser: Any, chat_store: Storefront,
                                                                        tmp_path: Any, offset: int,
                                                                        clear: bool) -> None:
    chat_store.enable_chat(offset_y_mobile=offset)
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    try:
        shopper = Shopper(context, chat_store, tmp_path)
        shopper.allow(chat_store.app_origin)
        shopper.open(chat_store.url(devshop_fixed="apply-filters"))
        wait_launcher(shopper)
        launcher = shopper.page.locator(LAUNCHER).bounding_box()
        fixed = shopper.page.locator("#devshop-fixed-apply-filters").bounding_box()
        assert launcher and fixed, (launcher, fixed)
        overlap = not (launcher["y"] + launcher["height"] <= fixed["y"]
                       or fixed["y"] + fixed["height"] <= launcher["y"]
                       or launcher["x"] + launcher["width"] <= fixed["x"]
                       or fixed["x"] + fixed["width"] <= launcher["x"])
        shot = shopper.screenshot(f"mobile-offset-{offset}")
        assert overlap is not clear, (launcher, fixed, str(shot))
        if clear:  # the panel opens full screen at 320-375 px, its input visible
            shopper.page.tap(LAUNCHER)
            wait_greeting(shopper)
            dialog = shopper.page.locator(DIALOG).bounding_box()
            field = shopper.page.locator(INPUT).bounding_box()
            assert dialog and dialog["width"] == 375 and field and field["y"] + field["height"] <= 740, (dialog, field)
            widths = shopper.page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
            assert widths[0] <= widths[1], widths
    finally:
        context.close()
        chat_store.enable_chat()


# --- product questions and the hand-over to a person -------------------------------------------------------------


def test_a_product_question_gets_product_cards_that_link_to_the_shops_pages(shopper: Shopper,
                                                                             chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url())
    open_with_click(shopper)
    reply = ask(shopper, "Do you have hoodies?")
    cards = shopper.page.locator(f"{DIALOG} .lumi-msg--assistant >> nth=-1").locator(".lumi-products li a")
    assert 1 <= cards.count() <= 3, reply
    for i in range(cards.count()):
        card = cards.nth(i)
        href = card.get_attribute("href") or ""
        assert href.startswith(f"{chat_store.root}products/"), href  # the storefront's own product page
        assert "hoodie" in card.inner_text().lower() and "$" in card.inner_text(), card.inner_text()
        box = card.bounding_box()
        assert box and box["height"] >= 44, box  # a touch target
        assert requests.get(chat_store.origin + href, timeout=30).status_code == 200, href
    first = cards.first.get_attribute("href")
    with shopper.page.expect_navigation(timeout=10_000):
        cards.first.click()  # a plain link: the shopper lands on the product page
    assert urlsplit(shopper.page.url).path == first, shopper.page.url


def test_asking_for_a_person_offers_the_escalation_form_with_an_optional_explained_email(
        shopper: Shopper, chat_store: Storefront) -> None:
    shopper.allow(chat_store.app_origin)
    shopper.open(chat_store.url())
    open_with_click(shopper)
    reply = ask(shopper, "I want to talk to a person")
    assert reply["forms"] == ["Ask the team"], reply
    form = shopper.page.locator(f"{DIALOG} form.lumi-form").last
    field = form.get_by_label("Your email (optional)")
    note = "Only used so the team can reply to you; this chat does not keep it."
    described = (field.get_attribute("aria-describedby") or "").split()
    assert any(shopper.page.locator(f"#{i}").inner_text() == note for i in described), described
    field.fill("not an email")
    form.locator("button").click()
    error = form.locator(".lumi-err:not(:empty)").first
    error.wait_for(timeout=10_000)
    assert error.inner_text() == "Enter a valid email address.", error.inner_text()
    field.fill("jane@example.com")
    form.locator("button").click()
    shopper.page.wait_for_function("() => [...document.querySelectorAll('#lumi-chat .lumi-note')]"
                                   ".some((n) => n.textContent.startsWith('Sent.'))", timeout=10_000)
    escalations = [r for r in shopper.requests if urlsplit(r.url).path.endswith("/escalate")]
    assert len(escalations) == 2 and escalations[-1].status == 202, shopper.describe()
    # The address went into that one request; the browser keeps nothing of it.
    assert shopper.storage() == {"local": [], "session": [STORAGE_KEY]}, shopper.storage()
    kept = shopper.page.evaluate("(k) => sessionStorage.getItem(k)", STORAGE_KEY)
    assert "jane@example.com" not in kept


def test_at_320_px_with_the_on_screen_keyboard_open_the_input_and_send_stay_visible(
        browser: Any, chat_store: Storefront, tmp_path: Any) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 568}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    try:
        shopper = Shopper(context, chat_store, tmp_path)
        shopper.allow(chat_store.app_origin)
        shopper.open(chat_store.url())
        wait_launcher(shopper)
        shopper.page.tap(LAUNCHER)
        wait_greeting(shopper)
        # The keyboard takes the lower part of the screen: what is left is the visual viewport.
        shopper.page.set_viewport_size({"width": 320, "height": 290})
        shopper.page.wait_for_function(
            "() => { const r = document.querySelector('#lumi-chat-input').getBoundingClientRect();"
            " return r.bottom <= visualViewport.height && r.top >= 0; }", timeout=5000)
        for selector in (INPUT, f"{DIALOG} .lumi-panel__form button"):
            box = shopper.page.locator(selector).first.bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 290 and box["x"] + box["width"] <= 320, \
                (selector, box)
            assert box["height"] >= 44, (selector, box)
        reply = ask(shopper, "Where is my order?")
        assert reply["forms"] == ["Find your order"], reply
        widths = shopper.page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
        assert widths[0] <= widths[1], widths
        shopper.screenshot("chat-320-keyboard")
    finally:
        context.close()
