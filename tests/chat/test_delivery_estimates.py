"""A delivery estimate already gone is said as past ("It was expected on ..."), never as if still to come, and any
date outside this year carries its year, in all four languages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from chat.rules import RuleContext, respond

WHERE = {"en": "Where is my order?", "fr": "Où est ma commande ?", "de": "Wo ist meine Bestellung?",
         "es": "¿Dónde está mi pedido?"}
UPCOMING = {"en": "Estimated delivery", "fr": "Livraison estimée", "de": "Voraussichtliche Zustellung",
            "es": "Entrega estimada"}


def _reply(language: str, eta: date, status: str = "IN_TRANSIT") -> str:
    shipment: dict[str, Any] = {"status": status, "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
                                "tracking_url": None, "estimated_delivery_at": f"{eta.isoformat()}T12:00:00Z",
                                "delivered_at": None, "line_items": []}
    order = {"name": "#1001", "created_at": "2024-01-01T00:00:00Z", "financial_status": "PAID",
             "fulfillment_status": "FULFILLED", "cancelled": False,
             "line_items": [{"title": "Mug", "quantity": 1}], "fulfillments": [shipment]}
    context = RuleContext(language=language, shop_name="Maison Lune", orders=[order], verified=True)
    return respond(WHERE[language], context).text


def _today() -> date:
    return datetime.now(UTC).date()


@pytest.mark.parametrize(("language", "said"), [
    ("en", "It was expected on October 7, {year}."),
    ("fr", "La livraison était prévue le 7 octobre {year}."),
    ("de", "Sie war für den 7. Oktober {year} erwartet."),
    ("es", "Estaba prevista para el 7 de octubre de {year}."),
])
def test_a_past_estimate_from_another_year_is_said_as_past_with_its_year(language: str, said: str) -> None:
    last_year = _today().year - 1
    text = _reply(language, date(last_year, 10, 7))
    assert said.format(year=last_year) in text
    assert UPCOMING[language] not in text


@pytest.mark.parametrize(("language", "said"), [
    ("en", "It was expected on January 1."),
    ("fr", "La livraison était prévue le 1er janvier."),
    ("de", "Sie war für den 1. Januar erwartet."),
    ("es", "Estaba prevista para el 1 de enero."),
])
def test_a_past_estimate_from_this_year_is_said_as_past_without_a_year(language: str, said: str) -> None:
    today = _today()
    if today == date(today.year, 1, 1):
        pytest.skip("on January 1st no earlier day of this year exists")
    text = _reply(language, date(today.year, 1, 1))
    assert said in text and str(today.year) not in text
    assert UPCOMING[language] not in text


@pytest.mark.parametrize(("language", "said"), [
    ("en", "Estimated delivery: March 2, {year}."),
    ("fr", "Livraison estimée : 2 mars {year}."),
    ("de", "Voraussichtliche Zustellung: 2. März {year}."),
    ("es", "Entrega estimada: 2 de marzo de {year}."),
])
def test_a_future_estimate_next_year_says_the_year(language: str, said: str) -> None:
    next_year = _today().year + 1
    assert said.format(year=next_year) in _reply(language, date(next_year, 3, 2))


@pytest.mark.parametrize(("language", "said"), [
    ("en", "Estimated delivery: December 31."),
    ("fr", "Livraison estimée : 31 décembre."),
    ("de", "Voraussichtliche Zustellung: 31. Dezember."),
    ("es", "Entrega estimada: 31 de diciembre."),
])
def test_a_future_estimate_this_year_is_unchanged(language: str, said: str) -> None:
    today = _today()
    if today >= date(today.year, 12, 31):
        pytest.skip("on December 31st no later day of this year exists")
    text = _reply(language, date(today.year, 12, 31))
    assert said in text and str(today.year) not in text


def test_a_delivered_parcel_names_no_estimate_at_all() -> None:
    text = _reply("en", date(_today().year - 1, 10, 7), status="DELIVERED")
    assert "expected" not in text and "Estimated" not in text
