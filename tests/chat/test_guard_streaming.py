"""The fact guard made cheap enough to run at every streamed word, without letting through anything the plain
rule would stop: FactCheck (facts read once, phrases in one pattern) against the rule written out plainly, and
the streamed guard (GuardedText) across tool rounds."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import guard
from chat.engine import Blocked, GuardedText, TurnContext

IN_TRANSIT = [{"name": "#1001", "id": "gid://shopify/Order/5001", "financial_status": "PAID",
               "fulfillment_status": "FULFILLED", "cancelled": False,
               "fulfillments": [{"status": "IN_TRANSIT", "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
                                 "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
                                 "estimated_delivery_at": "2026-11-25T12:00:00Z"}]}]
UNFULFILLED = [{"name": "#1003", "financial_status": "PAID", "fulfillment_status": "UNFULFILLED", "fulfillments": []}]
DELIVERED = [{"name": "#1002", "financial_status": "PARTIALLY_REFUNDED", "fulfillment_status": "FULFILLED",
              "fulfillments": [{"status": "DELIVERED", "tracking_number": "9400 1118 9922 3344 5566 77",
                                "delivered_at": "2026-11-20T09:30:00Z"}]}]
CANCELLED = [{"name": "#1005", "financial_status": "REFUNDED", "fulfillment_status": None, "cancelled": True}]


def plain_check(reply: str, facts: Iterable[Mapping[str, Any]], allowed_text: str = "") -> str | None:
    """The rule as first written (and as chat/guard.py's docstring states it), re-reading everything per call."""
    tokens, states = guard.known_facts(list(facts))
    allowed = {t.upper() for t in guard._CANDIDATE.findall(allowed_text)}
    for candidate in guard._CANDIDATE.findall(reply):
        token = candidate.upper()
        if token in tokens or token in allowed or (token.isdigit() and len(token) < 10):
            continue
        return "tracking_number"
    decomposed = unicodedata.normalize("NFKD", reply)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    for pattern, supported_by in (guard._NOT_SHIPPED, *guard._PHRASES):
        if pattern.search(folded) and not (supported_by & states):
            return "status"
        if pattern is guard._NOT_SHIPPED[0]:
            folded = pattern.sub(" ", folded)
    return None


# Words replies are made of: status phrases and their negations in four languages (accents and case varied),
# numbers the facts hold, numbers they do not, harmless words.
PIECES = ["Your order", "#1001", "#1003", "is", "was", "has", "not", "yet", "been", "shipped", "SHIPPED", "Shipped",
          "has been sent", "delivered", "livrée", "Livrée", "zugestellt", "entregado", "out for delivery",
          "in transit", "on its way", "unterwegs", "en camino", "en tránsito", "expédiée", "pas encore été expédiée",
          "noch nicht versandt", "aún no ha sido enviado", "unfulfilled", "cancelled", "canceled", "annulée",
          "refunded", "remboursée", "erstattet", "1Z999AA10123456784", "1z999aa10123456784",
          "1Z999AA19999999999", "3318810025", "94001118992233445566 77", "9400111899223344556677", "12345",
          "49.90", "2026-11-25", "UPS", "thanks", "Straße", "ﬁne", "I can check", ".", ",", "!", "\n"]


@settings(max_examples=400, deadline=None)
@given(words=st.lists(st.sampled_from(PIECES), min_size=1, max_size=14),
       facts=st.sampled_from([[], IN_TRANSIT, UNFULFILLED, DELIVERED, CANCELLED, IN_TRANSIT + UNFULFILLED]),
       allowed=st.sampled_from(["", "where is 3318810025?", "parcel 1Z999AA19999999999 please"]))
def test_fact_check_stops_exactly_what_the_plain_rule_stops(words: list[str], facts: list[dict[str, Any]],
                                                            allowed: str) -> None:
    reply = " ".join(words)
    expected = plain_check(reply, facts, allowed)
    found = guard.FactCheck(facts, allowed).check(reply)
    assert (found.kind if found else None) == expected
    once = guard.check(reply, facts, allowed)
    assert (once.kind if once else None) == expected


def _ctx(facts: list[dict[str, Any]]) -> TurnContext:
    return TurnContext(shop="s", session=None, settings={}, shop_name="S", contact_email=None,  # type: ignore[arg-type]
                       customer_id=None, lookup=None, search=lambda q: [], facts=facts)  # type: ignore[arg-type]


def _stream(guarded: GuardedText, reply: str) -> str:
    """Feeds `reply` a word at a time as a model streams it; what the guard let through."""
    sent = ""
    for word in reply.split(" "):
        sent += guarded.feed(word + " ")
    return sent + guarded.finish()


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(PIECES), min_size=1, max_size=30),  # past the guard's context window
       facts=st.sampled_from([[], IN_TRANSIT, UNFULFILLED, DELIVERED, CANCELLED]))
def test_a_streamed_reply_is_stopped_whenever_the_whole_reply_would_be(words: list[str],
                                                                       facts: list[dict[str, Any]]) -> None:
    reply = " ".join(words)
    guarded = GuardedText(_ctx(facts), "hello")
    released = ""
    try:
        for word in reply.split(" "):
            released += guarded.feed(word + " ")
        released += guarded.finish()
    except Blocked as blocked:
        assert plain_check(reply + " ", facts, "hello") is not None
        assert blocked.violation.kind in ("tracking_number", "status")
        # What went out before the stop holds no claim the rule refuses (the claim itself was never sent).
        assert plain_check(released, facts, "hello") is None
    else:
        assert plain_check(reply + " ", facts, "hello") is None
        assert released == reply + " "


@pytest.mark.parametrize(("facts", "reply"), [
    (UNFULFILLED, "Your order #1003 has not been shipped yet. We will email you the tracking link as soon as it "
                  "leaves our warehouse, usually within two business days of your order."),
    (UNFULFILLED, "Votre commande #1003 n'a pas encore été expédiée. Vous recevrez un e-mail avec le lien de suivi "
                  "dès qu'elle quittera notre entrepôt, en général sous deux jours ouvrés."),
    (IN_TRANSIT, "Your order #1001 is in transit with UPS, tracking number 1Z999AA10123456784. It should arrive "
                 "around 2026-11-25; the carrier's page shows every scan along the way."),
])
def test_a_true_answer_streams_whole_however_long_it_goes_on(facts: list[dict[str, Any]], reply: str) -> None:
    # The negation ("not ... yet", "pas encore") slides out of the context window while the reply goes on: the
    # phrase it negated must not be read again without it.
    assert plain_check(reply, facts) is None
    assert _stream(GuardedText(_ctx(facts), "where is my order?"), reply) == reply + " "


@pytest.mark.parametrize("how", ["new list", "list extended", "order replaced in the list"])
def test_facts_a_tool_fetched_count_from_the_next_round(how: str) -> None:
    ctx = _ctx([] if how != "order replaced in the list" else list(UNFULFILLED))
    guarded = GuardedText(ctx, "where is my order?")
    assert _stream(guarded, "Let me look that up.") == "Let me look that up. "
    # The order_status tool ran between the rounds: new facts, however the list holding them changed.
    if how == "new list":
        ctx.facts = list(IN_TRANSIT)
    elif how == "list extended":
        ctx.facts.extend(IN_TRANSIT)
    else:
        ctx.facts[0] = IN_TRANSIT[0]
    answer = "Your order #1001 is in transit, tracking number 1Z999AA10123456784."
    assert _stream(guarded, answer) == answer + " "


def test_numbers_a_search_tool_returned_may_be_quoted_in_the_next_round() -> None:
    guarded = GuardedText(_ctx([]), "do you have the XR-2000?")
    with pytest.raises(Blocked):
        _stream(guarded, "Item 9400111899223344556677 is in stock.")
    guarded = GuardedText(_ctx([]), "do you have the XR-2000?")
    _stream(guarded, "Searching.")
    guarded.allowed = "do you have the XR-2000? " + '[{"title": "XR-2000", "sku": "9400111899223344556677"}]'
    assert _stream(guarded, "Item 9400111899223344556677 is in stock.").startswith("Item 9400111899223344556677")


def test_the_check_always_uses_the_current_facts_and_allowed_text_even_mid_round() -> None:
    ctx = _ctx([])
    guarded = GuardedText(ctx, "hi")
    assert guarded.feed("Checking your order now. ") == "Checking your order now. "
    ctx.facts = list(IN_TRANSIT)  # facts that arrive while a round streams count from the next word
    assert guarded.feed("It is in transit. ") == "It is in transit. "
    guarded.allowed = "hi parcel 3318810025"  # so does a wider allowed text
    assert guarded.feed("Parcel 3318810025 too. ") == "Parcel 3318810025 too. "
    guarded.allowed = "hi"
    with pytest.raises(Blocked):  # and a narrower one
        guarded.feed("Parcel 3318810025 again. ")
