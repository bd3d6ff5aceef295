"""The rule responder: intents in four languages, replies built only from order facts, honest fallbacks."""

from __future__ import annotations

import json
import re
import string
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.messages import LANGUAGES, MESSAGES, MONTHS, format_date, message, supported_language
from chat.rules import (
    INTENTS,
    RuleContext,
    RuleReply,
    detect_intent,
    detect_language,
    greeting,
    honest_fallback_notice,
    order_refs,
    respond,
)

SHOP = "Maison Lune"


def fulfillment(status: str = "IN_TRANSIT", *, carrier: str | None = "UPS", number: str | None = "1Z999AA10123456784",
                url: str | None = "https://www.ups.com/track?tracknum=1Z999AA10123456784",
                eta: str | None = "2026-11-25T12:00:00Z", delivered_at: str | None = None,
                items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"status": status, "carrier": carrier, "tracking_number": number, "tracking_url": url,
            "estimated_delivery_at": eta, "delivered_at": delivered_at, "line_items": items or []}


def order(name: str = "#1001", *, status: str = "FULFILLED", financial: str = "PAID", cancelled: bool = False,
          created_at: str = "2026-11-20T10:00:00Z", items: list[dict[str, Any]] | None = None,
          fulfillments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "created_at": created_at, "financial_status": financial, "fulfillment_status": status,
            "cancelled": cancelled, "line_items": items or [{"title": "Linen shirt", "quantity": 2}],
            "fulfillments": fulfillments if fulfillments is not None else []}


def ctx(language: str = "en", orders: list[dict[str, Any]] | None = None, **kw: Any) -> RuleContext:
    values: dict[str, Any] = {"logged_in": False, "verified": bool(orders), "returns_policy": "",
                              "contact_email": None, "escalated": False}
    values.update(kw)
    return RuleContext(language=language, shop_name=SHOP, orders=orders or [], **values)


def parts_of(reply: RuleReply, kind: str) -> list[dict[str, Any]]:
    return [p for p in reply.parts if p["type"] == kind]


# Every localized status phrase ("on its way", "en route", "delivered on", ...), cut at placeholders; pieces
# shorter than 5 characters ("in" of "in {count} Paketen") would match any text.
STATUS_PHRASES = sorted({
    piece.strip()
    for lang in LANGUAGES for key, text in MESSAGES[lang].items() if key.startswith(("ful.", "order.", "payment."))
    for piece in re.split(r"\{\w+\}", text) if len(piece.strip()) >= 5
})


# --- Messages -----------------------------------------------------------------------------------------------------

def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_exists_in_every_language_with_the_same_placeholders() -> None:
    keys = set(MESSAGES["en"])
    sample = {"shop": SHOP, "name": "#1001", "status": "x", "count": 2, "items": "Mug", "n": 1, "label": "P",
              "date": "d", "carrier": "UPS", "number": "1Z", "email": "help@example.com", "names": "#1000",
              "asked": "#2000", "day": 25, "month": "m", "year": 2024, "query": "blue hoodies"}
    assert set(MESSAGES) == set(LANGUAGES)
    for lang in LANGUAGES:
        assert set(MESSAGES[lang]) == keys, lang
        assert len(MONTHS[lang]) == 12
        for key, template in MESSAGES[lang].items():
            assert placeholders(template) == placeholders(MESSAGES["en"][key]), (lang, key)
            assert message(lang, key, **sample).strip(), (lang, key)  # formats without KeyError


def test_unknown_and_regional_languages_fall_back_sensibly() -> None:
    assert supported_language("fr-CA") == "fr"
    assert supported_language("DE") == "de"
    assert supported_language("it") == "en"
    assert supported_language(None) == "en"


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "November 25"), ("fr", "25 novembre"), ("de", "25. November"), ("es", "25 de noviembre"),
])
def test_dates_are_formatted_per_language(lang: str, expected: str) -> None:
    assert format_date(date(2026, 11, 25), lang) == expected


def test_french_writes_the_first_of_the_month_as_an_ordinal() -> None:
    assert format_date(date(2026, 8, 1), "fr") == "1er août"
    assert format_date(date(2026, 3, 1), "de") == "1. März"


def test_greeting_and_fallback_notice_in_every_language() -> None:
    notices = {honest_fallback_notice(lang) for lang in LANGUAGES}
    assert len(notices) == 4
    for lang in LANGUAGES:
        assert SHOP in greeting(lang, SHOP)
    assert greeting("fr", SHOP, custom="  Bienvenue chez nous !  ") == "Bienvenue chez nous !"
    assert "unavailable" in honest_fallback_notice("en")


# --- Intents and language -----------------------------------------------------------------------------------------

INTENT_EXAMPLES = [
    # en
    ("Hi there", "greeting"), ("Good morning!", "greeting"), ("Where is my order?", "order_status"),
    ("Has my package shipped?", "order_status"), ("Can I get the tracking number?", "tracking"),
    ("When will my order arrive?", "delivery_time"), ("How long does delivery take?", "delivery_time"),
    ("I want to return my shoes", "returns"), ("Can I get a refund?", "returns"),
    ("I want to talk to a human", "human"), ("Let me speak with customer service", "human"),
    ("Thanks a lot!", "thanks"), ("Do you sell gift cards?", "product"),
    # fr
    ("Bonjour", "greeting"), ("OÙ EST MA COMMANDE ?", "order_status"),
    ("Mon colis a-t-il été expédié ?", "order_status"),
    ("Je voudrais le numéro de suivi", "tracking"), ("Quand vais-je recevoir mon colis ?", "delivery_time"),
    ("Comment faire un retour ?", "returns"), ("Je veux être remboursé", "returns"),
    ("Je voudrais parler à un conseiller", "human"), ("Merci beaucoup", "thanks"),
    ("Vous vendez des chapeaux ?", "product"),
    # de
    ("Hallo", "greeting"), ("Guten Tag", "greeting"), ("Wo ist meine Bestellung?", "order_status"),
    ("Wurde mein Paket schon versendet?", "order_status"), ("Ich brauche die Sendungsnummer", "tracking"),
    ("Wann kommt mein Paket an?", "delivery_time"), ("Wie funktioniert die Rücksendung?", "returns"),
    ("Ruecksendung bitte", "returns"), ("Ich möchte mit einem Mitarbeiter sprechen", "human"),
    ("Danke schön", "thanks"), ("Habt ihr Gutscheine?", "product"),
    # es
    ("Hola", "greeting"), ("Buenos días", "greeting"), ("¿Dónde está mi pedido?", "order_status"),
    ("¿Ya enviaron mi paquete?", "order_status"), ("Quiero rastrear mi envío", "tracking"),
    ("¿Cuándo llegará mi pedido?", "delivery_time"), ("Quiero hacer una devolución", "returns"),
    ("Quiero hablar con una persona", "human"), ("¡Muchas gracias!", "thanks"),
    ("¿Venden tarjetas regalo?", "product"),
    # mixed asks: the specific one wins
    ("Hello, where is my order?", "order_status"), ("Thanks, when will it arrive?", "delivery_time"),
    ("I want to talk to someone about my order", "human"), ("Je veux retourner ma commande", "returns"),
]


@pytest.mark.parametrize(("text", "intent"), INTENT_EXAMPLES)
@pytest.mark.parametrize("shop_language", ["en", "fr"])
def test_intents_in_all_four_languages_whatever_the_shop_language(text: str, intent: str, shop_language: str) -> None:
    assert detect_intent(text, shop_language) == intent


@pytest.mark.parametrize("text", ["#1234", "order 1234", "commande n° 1234", "Bestellung Nr. 1234", "pedido 1234",
                                  "my number is #1234 please"])
def test_an_order_name_pushes_towards_order_status(text: str) -> None:
    assert detect_intent(text, "en") == "order_status"
    assert order_refs(text) == ["1234"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_suggested_replies_lead_to_their_intents(lang: str) -> None:
    expected = {"where": "order_status", "track": "tracking", "when": "delivery_time", "returns": "returns",
                "human": "human"}
    for key, intent in expected.items():
        assert detect_intent(message(lang, f"suggest.{key}"), lang) == intent, (lang, key)
    assert all(intent in INTENTS for intent in expected.values())


@pytest.mark.parametrize(("text", "lang"), [
    ("Where is my order?", "en"), ("Où est ma commande ?", "fr"), ("Wo ist meine Bestellung?", "de"),
    ("¿Dónde está mi pedido?", "es"), ("Hola", "es"), ("merci !", "fr"), ("#1001", None), ("ok", None),
])
def test_detect_language(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang


def test_the_reply_language_follows_the_shopper_when_clear() -> None:
    facts = order(fulfillments=[fulfillment()])
    reply = respond("Où est ma commande ?", ctx("en", [facts]))
    assert reply.language == "fr"
    assert "en route" in reply.text
    reply = respond("Wo ist meine Bestellung?", ctx("es", [facts]))
    assert (reply.language, "unterwegs" in reply.text) == ("de", True)
    # Nothing to go by: the shop's language.
    assert respond("#1001", ctx("es", [facts])).language == "es"
    assert respond("#1001", ctx("it", [facts])).language == "en"


# --- Order replies ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "words", "eta"), [
    ("en", "on its way", "November 25"), ("fr", "en route", "25 novembre"),
    ("de", "unterwegs", "25. November"), ("es", "en camino", "25 de noviembre"),
])
def test_fulfilled_in_transit(lang: str, words: str, eta: str) -> None:
    facts = order(fulfillments=[fulfillment()])
    reply = respond(message(lang, "suggest.where"), ctx(lang, [facts]))
    assert reply.intent == "order_status" and reply.language == lang
    assert "#1001" in reply.text and words in reply.text and eta in reply.text
    assert "UPS" in reply.text and "1Z999AA10123456784" in reply.text
    assert parts_of(reply, "tracking_link") == [{"type": "tracking_link", "carrier": "UPS",
                                                 "number": "1Z999AA10123456784",
                                                 "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784"}]
    card = parts_of(reply, "order")[0]["order"]
    assert card["name"] == "#1001" and card["fulfillment_status"] == "FULFILLED"
    assert card["fulfillments"][0]["tracking_url"].startswith("https://www.ups.com/")
    assert not reply.escalate and not reply.needs_verification


def test_partially_fulfilled_says_what_shipped_and_what_is_still_prepared() -> None:
    facts = order(status="PARTIALLY_FULFILLED",
                  items=[{"title": "Linen shirt", "quantity": 2}, {"title": "Mug", "quantity": 1}],
                  fulfillments=[fulfillment(items=[{"title": "Linen shirt", "quantity": 2}])])
    text = respond("where is my order", ctx("en", [facts])).text
    assert "partly shipped" in text
    assert "Shipped: Linen shirt ×2." in text
    assert "Still being prepared: Mug." in text
    assert "on its way" in text


def test_partially_fulfilled_without_parcel_items_claims_no_split() -> None:
    facts = order(status="PARTIALLY_FULFILLED", fulfillments=[fulfillment(items=[])])
    text = respond("where is my order", ctx("en", [facts])).text
    assert "partly shipped" in text and "Still being prepared" not in text


@pytest.mark.parametrize(("lang", "words"), [
    ("en", "being prepared, not shipped yet"), ("fr", "en préparation"), ("de", "wird vorbereitet"),
    ("es", "en preparación"),
])
def test_unfulfilled(lang: str, words: str) -> None:
    reply = respond(message(lang, "suggest.where"), ctx(lang, [order(status="UNFULFILLED")]))
    assert words in reply.text
    assert not parts_of(reply, "tracking_link")


def test_cancelled_orders_say_so_and_nothing_about_shipping() -> None:
    facts = order(status="UNFULFILLED", cancelled=True, financial="REFUNDED")
    text = respond("where is my order?", ctx("en", [facts])).text
    assert "Order #1001 was cancelled." in text
    assert "refunded" in text
    assert "being prepared" not in text
    assert "annulée" in respond("Où est ma commande ?", ctx("en", [facts])).text


@pytest.mark.parametrize(("lang", "words"), [
    ("en", "delivered on November 23"), ("fr", "livraison effectuée le 23 novembre"),
    ("de", "zugestellt am 23. November"), ("es", "entrega realizada el 23 de noviembre"),
])
def test_delivered_gives_the_delivery_date_and_no_estimate(lang: str, words: str) -> None:
    facts = order(fulfillments=[fulfillment("DELIVERED", delivered_at="2026-11-23T15:00:00Z")])
    reply = respond(message(lang, "suggest.when"), ctx(lang, [facts]))
    assert reply.intent == "delivery_time"
    assert words in reply.text
    assert message(lang, "eta", date=format_date(date(2026, 11, 25), lang)) not in reply.text
    assert message(lang, "no_eta") not in reply.text


def test_tracking_details_only_when_present_in_the_facts() -> None:
    no_tracking = order(fulfillments=[fulfillment("MARKED_AS_FULFILLED", carrier=None, number=None, url=None,
                                                  eta=None)])
    reply = respond("Can I have the tracking number?", ctx("en", [no_tracking]))
    assert reply.intent == "tracking"
    assert "There is no tracking number for this order yet." in reply.text
    assert "Carrier" not in reply.text and not parts_of(reply, "tracking_link")

    number_only = order(fulfillments=[fulfillment(carrier="La Poste", number="6A12345678901", url=None)])
    reply = respond("suivi de mon colis", ctx("en", [number_only]))
    assert "Transporteur : La Poste, numéro de suivi 6A12345678901." in reply.text
    assert not parts_of(reply, "tracking_link")  # no URL in the facts, so no link


def test_delivery_time_without_an_estimate_never_guesses() -> None:
    facts = order(fulfillments=[fulfillment(eta=None)])
    reply = respond("When will it arrive?", ctx("en", [facts]))
    assert "There is no estimated delivery date yet." in reply.text
    assert "Estimated delivery" not in reply.text
    unfulfilled = respond("¿Cuándo llegará?", ctx("en", [order(status="UNFULFILLED")]))
    assert "Todavía no hay una fecha de entrega estimada." in unfulfilled.text


def test_several_parcels_each_get_their_status_and_link() -> None:
    facts = order(fulfillments=[
        fulfillment("DELIVERED", number="AAA111", url="https://t.example/AAA111", delivered_at="2026-11-22T09:00:00Z"),
        fulfillment("OUT_FOR_DELIVERY", carrier="DHL", number="BBB222", url="https://t.example/BBB222"),
    ])
    reply = respond("where is my order", ctx("en", [facts]))
    assert "shipped in 2 parcels" in reply.text
    assert "Parcel 1: delivered on November 22." in reply.text
    assert "Parcel 2: out for delivery." in reply.text
    assert [p["number"] for p in parts_of(reply, "tracking_link")] == ["AAA111", "BBB222"]


def test_unknown_statuses_are_not_described() -> None:
    reply = respond("where is my order", ctx("en", [order(status="SOMETHING_NEW")]))
    assert "can't describe its shipping status" in reply.text
    assert not any(phrase in reply.text for phrase in ("being prepared", "on its way", "delivered"))


def test_the_named_order_is_used_else_the_most_recent() -> None:
    older = order("#1000", created_at="2026-11-01T10:00:00Z", status="UNFULFILLED")
    newer = order("#1001", created_at="2026-11-20T10:00:00Z", fulfillments=[fulfillment()])
    session = ctx("en", [older, newer], logged_in=True)
    assert "Order #1001: on its way." in respond("where is my order?", session).text
    reply = respond("and order 1000?", session)
    assert "Order #1000: being prepared" in reply.text
    assert parts_of(reply, "order")[0]["order"]["name"] == "#1000"
    assert "Order #1001" in parts_of(reply, "suggested_replies")[0]["replies"]


def test_an_order_not_in_the_session_is_named_as_such() -> None:
    facts = order("#1001", fulfillments=[fulfillment()])
    reply = respond("where is #2000?", ctx("en", [facts]))
    assert "I can't see order #2000 in this conversation" in reply.text
    assert reply.needs_verification and parts_of(reply, "verify_order")
    assert "Order #1001: on its way." in reply.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_order_anonymous_asks_for_verification_and_states_no_status(lang: str) -> None:
    reply = respond(message(lang, "suggest.where"), ctx(lang, [], logged_in=False))
    assert reply.needs_verification
    assert parts_of(reply, "verify_order") == [{"type": "verify_order"}]
    assert not parts_of(reply, "order") and not parts_of(reply, "tracking_link")
    assert not any(phrase in reply.text for phrase in STATUS_PHRASES), reply.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_order_logged_in_says_none_was_found_and_offers_a_person(lang: str) -> None:
    reply = respond(message(lang, "suggest.track"), ctx(lang, [], logged_in=True))
    assert reply.text == message(lang, "no_orders", shop=SHOP)
    assert not reply.needs_verification and not parts_of(reply, "verify_order")
    assert parts_of(reply, "suggested_replies")[0]["replies"] == [message(lang, "suggest.human")]
    assert not any(phrase in reply.text for phrase in STATUS_PHRASES), reply.text


# --- Returns, human, small talk -----------------------------------------------------------------------------------

def test_returns_policy_is_quoted_verbatim() -> None:
    policy = "Returns within 30 days.\n  Items must be unworn — tags attached!\n\nEmail us first: returns@x.test"
    reply = respond("How do I return an item?", ctx("en", returns_policy=policy))
    assert reply.intent == "returns" and not reply.escalate
    assert policy in reply.text


def test_without_a_policy_the_store_will_tell_and_a_person_is_offered() -> None:
    reply = respond("Wie funktioniert die Rücksendung?", ctx("en"))
    assert reply.language == "de"
    assert reply.text == message("de", "returns_none", shop=SHOP)
    assert parts_of(reply, "suggested_replies")[0]["replies"] == ["Mit einem Menschen sprechen"]


def test_human_escalates_with_the_store_contact_email() -> None:
    reply = respond("I want to talk to a human", ctx("en", contact_email="hello@maisonlune.test"))
    assert reply.intent == "human" and reply.escalate
    assert "hello@maisonlune.test" in reply.text and "by email" in reply.text
    assert "doesn't keep your email address" in reply.text


def test_human_without_a_contact_email_points_to_the_form() -> None:
    reply = respond("Quiero hablar con una persona", ctx("en"))
    assert reply.escalate and reply.language == "es"
    assert reply.text.endswith(message("es", "human_form"))
    again = respond("talk to a person", ctx("en", escalated=True))
    assert again.escalate and "already been passed" in again.text


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("intent_key", ["greeting", "thanks", "fallback"])
def test_small_talk_is_short_localized_and_suggests_replies(lang: str, intent_key: str) -> None:
    text = {"greeting": {"en": "hello", "fr": "bonjour", "de": "hallo", "es": "hola"},
            "thanks": {"en": "thanks", "fr": "merci", "de": "danke", "es": "gracias"},
            "fallback": {"en": "blue", "fr": "bleu", "de": "blau", "es": "azul"}}[intent_key][lang]
    reply = respond(text, ctx(lang))
    assert reply.intent == intent_key and reply.language == lang
    assert not reply.escalate and not reply.needs_verification
    assert parts_of(reply, "suggested_replies")[0]["replies"] == [
        message(lang, f"suggest.{k}") for k in ("where", "track", "returns", "human")]


# --- Property: nothing beyond the facts ---------------------------------------------------------------------------

TRACKING = st.from_regex(r"TRK[0-9]{6}", fullmatch=True)
ISO = st.one_of(st.none(), st.dates(date(2026, 1, 1), date(2027, 12, 31)).map(lambda d: f"{d}T08:00:00Z"),
                st.just("not a date"))
FULFILLMENT_STATUSES = ["IN_TRANSIT", "DELIVERED", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "LABEL_PRINTED",
                        "LABEL_PURCHASED", "MARKED_AS_FULFILLED", "CONFIRMED", "SUBMITTED", "PICKED_UP",
                        "READY_FOR_PICKUP", "NOT_DELIVERED", "FAILURE", "CANCELED", "FULFILLED", "NEW_ONE"]


@st.composite
def fulfillments(draw: st.DrawFn) -> dict[str, Any]:
    number = draw(st.one_of(st.none(), TRACKING))
    return fulfillment(
        draw(st.sampled_from(FULFILLMENT_STATUSES)),
        carrier=draw(st.sampled_from([None, "UPS", "DHL", "Colissimo"])),
        number=number,
        url=draw(st.sampled_from([None, f"https://track.example/{number or 'x'}"])),
        eta=draw(ISO), delivered_at=draw(ISO),
        items=draw(st.lists(st.fixed_dictionaries({"title": st.sampled_from(["Mug", "Cap"]),
                                                   "quantity": st.integers(1, 3)}), max_size=2)),
    )


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    return order(
        f"#{draw(st.integers(1000, 1010))}",
        status=draw(st.sampled_from(["FULFILLED", "PARTIALLY_FULFILLED", "UNFULFILLED", "ON_HOLD", "OTHER"])),
        financial=draw(st.sampled_from(["PAID", "PENDING", "REFUNDED", "VOIDED", "AUTHORIZED"])),
        cancelled=draw(st.booleans()),
        created_at=draw(ISO) or "2026-11-20T10:00:00Z",
        items=[{"title": "Mug", "quantity": 2}, {"title": "Cap", "quantity": 1}],
        fulfillments=draw(st.lists(fulfillments(), max_size=3)),
    )


@settings(max_examples=300, deadline=None, database=None)  # database=None: no .hypothesis/ folder in the repo
@given(
    facts=st.lists(orders(), max_size=3, unique_by=lambda o: str(o["name"])),
    ask=st.sampled_from(["Where is my order?", "tracking please", "Quand arrive ma commande ?", "Sendungsnummer?",
                         "¿Dónde está el pedido 1003?", "order #1005", "hi", "track TRK000000 please"]),
    lang=st.sampled_from(LANGUAGES),
    logged_in=st.booleans(),
)
def test_replies_never_mention_tracking_not_in_the_facts(facts: list[dict[str, Any]], ask: str, lang: str,
                                                         logged_in: bool) -> None:
    reply = respond(ask, ctx(lang, facts, logged_in=logged_in))
    known_numbers = {f["tracking_number"] for o in facts for f in o["fulfillments"] if f["tracking_number"]}
    known_urls = {f["tracking_url"] for o in facts for f in o["fulfillments"] if f["tracking_url"]}
    rendered = reply.text + json.dumps(reply.parts, ensure_ascii=False)
    assert set(re.findall(r"TRK[0-9]{6}", rendered)) <= known_numbers
    assert {p["url"] for p in parts_of(reply, "tracking_link")} <= known_urls
    if not facts:
        assert "TRK" not in rendered and not parts_of(reply, "order")
    # Only the one order the reply is about is described, and only its own tracking numbers appear.
    cards = parts_of(reply, "order")
    assert len(cards) <= 1
    if cards:
        about = next(o for o in facts if o["name"] == cards[0]["order"]["name"])
        own = {f["tracking_number"] for f in about["fulfillments"] if f["tracking_number"]}
        assert set(re.findall(r"TRK[0-9]{6}", reply.text)) <= own
