"""Product questions get an answer from the catalogue, not the generic fallback: the intent and the search words in
four languages, and the reply built from the cards the engine found (or a helpful sentence when none)."""

from __future__ import annotations

from typing import Any

import pytest

from chat.rules import RuleContext, detect_intent, detect_language, product_query, respond


@pytest.mark.parametrize(("text", "language", "terms", "max_price"), [
    ("Do you have blue hoodies?", "en", "blue hoodies", None),
    ("I'm looking for a gift under $50", "en", "gift", 50.0),
    ("Avez-vous des sweats bleus ?", "fr", "sweats bleus", None),
    ("Je cherche un cadeau à moins de 30 €", "fr", "cadeau", 30.0),
    ("Habt ihr blaue Hoodies?", "de", "blaue hoodies", None),
    ("Gibt es Socken unter 20 Euro?", "de", "socken", 20.0),
    ("¿Tienen sudaderas azules?", "es", "sudaderas azules", None),
    ("Busco un regalo por menos de 40 euros", "es", "regalo", 40.0),
])
def test_product_questions_in_four_languages(text: str, language: str, terms: str, max_price: float | None) -> None:
    assert detect_intent(text) == "product"
    query = product_query(text)
    assert query.terms == terms and query.max_price == max_price
    assert detect_language(text) in (language, None)


@pytest.mark.parametrize("text", ["Do you have my order #1001?", "Haben Sie meine Bestellung verschickt?",
                                  "¿Tienen el número de seguimiento?", "Do you have a returns policy?"])
def test_an_order_or_returns_question_is_not_taken_for_a_product_search(text: str) -> None:
    assert detect_intent(text) != "product"


def _card(n: int) -> dict[str, Any]:
    return {"id": str(n), "title": f"Cozy Hoodie {n}", "url": f"/products/cozy-hoodie-{n}", "image": None,
            "price_formatted": f"€{n}0.00", "available": True, "handle": f"cozy-hoodie-{n}", "vendor": "Acme"}


@pytest.mark.parametrize(("language", "text", "intro"), [
    ("en", "Do you have hoodies?", "Here is what I found"),
    ("fr", "Avez-vous des hoodies ?", "Voici ce que j'ai trouvé"),
    ("de", "Habt ihr Hoodies?", "Das habe ich gefunden"),
    ("es", "¿Tienen hoodies?", "Esto es lo que he encontrado"),
])
def test_found_products_come_as_at_most_three_cards(language: str, text: str, intro: str) -> None:
    reply = respond(text, RuleContext(language=language, shop_name="Lune", products=[_card(n) for n in range(1, 6)],
                                      product_match="exact"))
    assert reply.intent == "product" and reply.language == language and reply.text.startswith(intro)
    (part,) = [p for p in reply.parts if p["type"] == "products"]
    assert [c["title"] for c in part["products"]] == ["Cozy Hoodie 1", "Cozy Hoodie 2", "Cozy Hoodie 3"]
    assert set(part["products"][0]) >= {"id", "title", "url", "image", "price_formatted"}
    assert "Cozy Hoodie 1 (€10.00)" in reply.text


@pytest.mark.parametrize(("language", "text", "said"), [
    ("en", "Do you have unicorn saddles?", "couldn't find a product matching “unicorn saddles”"),
    ("fr", "Avez-vous des selles de licorne ?", "pas trouvé de produit correspondant à « selles licorne »"),
    ("de", "Habt ihr Einhornsättel?", "kein Produkt zu „einhornsattel“ gefunden"),
    ("es", "¿Tienen sillas de unicornio?", "ningún producto que coincida con «sillas unicornio»"),
])
def test_no_product_found_gets_a_helpful_sentence_not_the_fallback(language: str, text: str, said: str) -> None:
    reply = respond(text, RuleContext(language=language, shop_name="Lune"))
    assert reply.intent == "product" and said in reply.text
    assert not [p for p in reply.parts if p["type"] == "products"]
