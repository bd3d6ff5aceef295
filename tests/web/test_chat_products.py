"""Product questions through the app proxy, answered from the real feeds index (Meilisearch) in four languages."""

from __future__ import annotations

from typing import Any

import meilisearch

from feeds.index import PRODUCTS_INDEX, ensure_indexes
from tests.conftest import DEMO_SHOP, Stack
from tests.functional.test_chat import chat_stack, mailbox  # noqa: F401 - fixtures
from tests.helpers import synced, wait_until
from tests.web.test_chat_direct import proxy_say, start


def _types(meili: meilisearch.Client, cards: list[dict[str, Any]]) -> set[str]:
    index = meili.index(PRODUCTS_INDEX)
    found = index.search("", {"filter": f"shop = '{DEMO_SHOP}' AND product_id IN [{', '.join(c['id'] for c in cards)}]",
                              "attributesToRetrieve": ["product_type"], "limit": 10})["hits"]
    return {hit["product_type"] for hit in found}


def _prices(meili: meilisearch.Client, cards: list[dict[str, Any]]) -> list[float]:
    index = meili.index(PRODUCTS_INDEX)
    found = index.search("", {"filter": f"shop = '{DEMO_SHOP}' AND product_id IN [{', '.join(c['id'] for c in cards)}]",
                              "attributesToRetrieve": ["price_min"], "limit": 10})["hits"]
    return [float(hit["price_min"]) for hit in found]


def _ask(stack: Stack, locale: str, text: str, country: str | None = None) -> dict[str, Any]:
    from tests.functional.test_feeds import _validator

    created = start(stack, {"locale": locale, **({"country": country} if country else {})})
    assert list(_validator("ChatSessionCreated").iter_errors(created)) == []
    response = proxy_say(stack, created, text)
    assert response.status_code == 200, response.text
    assert list(_validator("ChatReply").iter_errors(response.json())) == []  # the products part is documented
    return response.json()["message"]


def test_product_questions_get_product_cards_from_the_index_in_four_languages(
        chat_stack, meili_client: meilisearch.Client) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ensure_indexes(meili_client)
    stack = chat_stack()
    wait_until(synced(stack), what="the first sync")
    for locale, text, intro in (("en", "Do you have blue hoodies?", "I couldn't find an exact match"),
                                ("fr", "Avez-vous des hoodies bleus ?", "Je n'ai pas trouvé exactement cela"),
                                ("de", "Habt ihr blaue Hoodies?", "Genau das habe ich nicht gefunden"),
                                ("es", "¿Tienen hoodies azules?", "No he encontrado exactamente eso")):
        message = _ask(stack, locale, text)
        assert message["intent"] == "product" and message["language"] == locale, message
        assert message["text"].startswith(intro), message["text"]
        (part,) = [p for p in message["parts"] if p["type"] == "products"]
        cards = part["products"]
        assert 1 <= len(cards) <= 3 and _types(meili_client, cards) == {"Hoodie"}, cards
        for card in cards:
            assert card["url"].startswith("/products/") and card["title"] in message["text"]
            assert card["price_formatted"]
    # A budget is a price filter; a French shopper's prices are written the French way.
    gift = _ask(stack, "en", "I'm looking for a gift under $50")
    (part,) = [p for p in gift["parts"] if p["type"] == "products"]
    assert all(price <= 50 for price in _prices(meili_client, part["products"]))
    mugs = _ask(stack, "fr", "Avez-vous des mugs ?", country="FR")
    (part,) = [p for p in mugs["parts"] if p["type"] == "products"]
    assert _types(meili_client, part["products"]) == {"Mug"}
    assert all(c["price_formatted"].endswith("\xa0€") for c in part["products"])  # "27,00 €"
    none = _ask(stack, "de", "Habt ihr Einhornsättel?")
    assert none["text"].startswith("Ich habe kein Produkt zu „einhornsattel“ gefunden")
    assert not [p for p in none["parts"] if p["type"] == "products"]
