"""The admin's chat tools over the real stack: analytics by period and as SVG charts, and the test email."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from devtools.mailbox import MailboxServer
from tests.conftest import Stack
from tests.functional.test_chat import MERCHANT_EMAIL, Shopper, chat_stack, mailbox  # noqa: F401 - fixtures

SVG = "{http://www.w3.org/2000/svg}"


def scripted_sessions(stack: Stack) -> None:
    """Four storefront chats through the app proxy: two ask for a person, one is angry (and so escalated)."""
    for text in ("Hello, what do you sell?", "I want to talk to a human", "Do you ship to France?",
                 "I want to talk to a human please"):
        shopper = Shopper(stack)
        shopper.start()
        assert shopper.say(text).status_code == 200


def analytics(stack: Stack, **params: Any) -> dict[str, Any]:
    response = stack.api("GET", "/api/chat/analytics", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def chart(stack: Stack, **params: Any) -> ET.Element:
    response = stack.api("GET", "/api/chat/analytics.svg", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert "http://" not in response.text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing external
    assert "<script" not in response.text and "href" not in response.text
    return ET.fromstring(response.text)


def marks(svg: ET.Element) -> dict[str, float]:
    return {el.attrib["data-date"]: float(el.attrib["data-value"]) for el in svg.iter()
            if "data-date" in el.attrib and el.tag in (f"{SVG}rect", f"{SVG}circle")}


def test_analytics_periods_are_clamped_to_the_plans_retention(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    retention = stack.api("GET", "/api/shop").json()["shop"]["plan"]["retention_days"]
    assert retention == 7  # the default (free) plan keeps chats for a week
    week = analytics(stack, days=7)
    assert (week["days"], week["clamped"], week["retention_days"]) == (7, False, 7)
    assert len(week["analytics"]["daily"]) == 7
    assert week["analytics"]["daily"][-1]["date"] == datetime.now(UTC).date().isoformat()
    quarter = analytics(stack, days=90)
    assert (quarter["days"], quarter["clamped"]) == (7, True)
    assert quarter["analytics"]["daily"] == week["analytics"]["daily"]
    for bad in ("0", "abc", "-7", "1000"):
        response = stack.api("GET", "/api/chat/analytics", params={"days": bad})
        assert response.status_code == 400 and response.json()["error"]["details"] == {"param": "days"}, bad


def test_charts_draw_exactly_the_analytics_totals(chat_stack) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()
    scripted_sessions(stack)
    body = analytics(stack, days=7)["analytics"]
    assert body["sessions"] == 4
    assert body["escalation_rate"] == 0.5
    today = datetime.now(UTC).date().isoformat()
    daily = {day["date"]: day for day in body["daily"]}
    assert daily[today]["sessions"] == 4 and daily[today]["escalated"] == 2

    sessions = chart(stack, days=7, chart="sessions")
    assert sessions.attrib["role"] == "img" and sessions.attrib["width"] == "100%" and "viewBox" in sessions.attrib
    assert sessions.find(f"{SVG}title").text == "Chat sessions per day"
    assert "4" in sessions.find(f"{SVG}desc").text
    labels = [t.text for t in sessions.iter(f"{SVG}text")]
    assert "Day (UTC)" in labels and "Sessions" in labels
    drawn = marks(sessions)
    assert len(drawn) == 7  # a bar per day, zero days included
    assert sum(drawn.values()) == body["sessions"] and drawn[today] == 4
    assert float(sessions.attrib["data-total"]) == body["sessions"]

    for name, field, total in (("escalation_rate", "escalation_rate", "escalation_rate"),
                               ("resolution_rate", "resolution_rate", "resolution_rate"),
                               ("sentiment", "average_sentiment", "average_sentiment")):
        svg = chart(stack, days=7, chart=name)
        assert svg.find(f"{SVG}title").text and svg.find(f"{SVG}desc").text
        expected = {d["date"]: d[field] for d in body["daily"] if d[field] is not None}
        assert marks(svg) == expected, name  # a point per day with sessions; none invented for empty days
        assert svg.attrib["data-total"] == ("" if body[total] is None else str(body[total])), name

    bad = stack.api("GET", "/api/chat/analytics.svg", params={"chart": "pie"})
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/json"
    assert bad.json()["error"]["details"] == {"param": "chart"}


def test_test_email_reaches_the_escalation_address(chat_stack, mailbox: MailboxServer) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack = chat_stack()  # its escalation email is MERCHANT_EMAIL
    response = stack.api("POST", "/api/settings/test-email")
    assert response.status_code == 202, response.text
    assert response.json() == {"sent_to": MERCHANT_EMAIL}
    message = mailbox.wait_for(1, timeout=10)[0]
    assert message["To"] == MERCHANT_EMAIL and "Test" in message["Subject"]
    assert "lumi-demo.myshopify.com" in message.text

    mailbox.fail_next(1, 550)
    refused = stack.api("POST", "/api/settings/test-email")
    assert refused.status_code == 502 and refused.json()["error"]["code"] == "email_failed"
    assert "550" in refused.json()["error"]["message"]

    assert stack.api("PATCH", "/api/settings", json={"escalation_email": None}).status_code == 200
    none = stack.api("POST", "/api/settings/test-email")
    assert none.status_code == 400 and none.json()["error"]["code"] == "no_escalation_email"
    assert len(mailbox.messages) == 1
