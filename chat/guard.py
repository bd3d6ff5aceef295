"""The rule the model is told and the engine enforces: no order fact that no tool returned.

A reply may name a tracking number only if this turn's tool results contain it, and may state an order
or shipping status only if a fetched order is in a state that phrase describes. Anything else is not
sent. The check is deliberately conservative (a false alarm costs a safe generic answer; a miss would
tell a shopper something untrue about their parcel).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Tokens that look like a tracking or order number: long runs of digits, or letter+digit mixes.
_CANDIDATE = re.compile(r"\b(?=[A-Z0-9]*\d)[A-Z0-9]{8,34}\b", re.IGNORECASE)

# Status phrases (en/fr/de/es, accents folded) → the Shopify states that make them true.
_SHIPPED = {"IN_TRANSIT", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELIVERED", "FULFILLED", "PARTIALLY_FULFILLED",
            "LABEL_PRINTED", "LABEL_PURCHASED", "CONFIRMED", "MARKED_AS_FULFILLED", "PICKED_UP", "READY_FOR_PICKUP",
            "SUCCESS"}
_PHRASES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(pattern), frozenset(states)) for pattern, states in (
        (r"\b(delivered|livree?s?|zugestellt|geliefert|entregad[oa]s?)\b", {"DELIVERED"}),
        (r"\b(out for delivery|en cours de livraison|in zustellung|en reparto)\b", {"OUT_FOR_DELIVERY"}),
        (r"\b(in transit|on (its|the) way|en transit|en route|en camino|unterwegs|en transito)\b",
         {"IN_TRANSIT", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY"}),
        (r"\b(shipped|has been sent|expediee?s?|versandt|verschickt|enviad[oa]s?)\b", _SHIPPED),
        (r"\b(cancell?ed|annulee?s?|storniert|cancelad[oa]s?)\b", {"CANCELLED"}),
        (r"\b(refunded|rembourse(e|es)?|erstattet|reembolsad[oa]s?)\b", {"REFUNDED", "PARTIALLY_REFUNDED"}),
    )
)
_NOT_SHIPPED = (re.compile(r"\b(not (yet )?(been )?shipped|unfulfilled|pas encore (ete )?expediee?|"
                           r"noch nicht (versandt|verschickt)|aun no (ha sido )?enviad[oa])\b"),
                frozenset({"UNFULFILLED", "PARTIALLY_FULFILLED", "SCHEDULED", "ON_HOLD"}))
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class Violation:
    kind: str  # "tracking_number" | "status"
    detail: str  # what kind of claim (never the reply text itself, which may hold shopper words)


def _fold(text: str) -> str:
    if text.isascii():  # nothing to decompose; casefold is lower for ASCII
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def known_facts(facts: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(tokens the reply may quote, states the orders are in) from this turn's order facts."""
    tokens: set[str] = set()
    states: set[str] = set()
    for order in facts:
        for value in (order.get("name"), order.get("id")):
            if value:
                tokens.update(t.upper() for t in _ALPHANUMERIC.findall(str(value)))
        states.update(str(order.get(k) or "") for k in ("financial_status", "fulfillment_status"))
        if order.get("cancelled"):
            states.add("CANCELLED")
        for fulfillment in order.get("fulfillments") or []:
            states.add(str(fulfillment.get("status") or ""))
            if fulfillment.get("tracking_number"):
                tokens.add(re.sub(r"\s", "", str(fulfillment["tracking_number"])).upper())
            for key in ("tracking_url", "estimated_delivery_at", "delivered_at"):
                if fulfillment.get(key):
                    tokens.update(t.upper() for t in _ALPHANUMERIC.findall(str(fulfillment[key])))
    states.discard("")
    return tokens, states


class FactCheck:
    """One turn's facts, read once, to check many replies (or streamed pieces of one) against: what `check`
    does, without re-reading the facts and the allowed text for every word."""

    def __init__(self, facts: Iterable[Mapping[str, Any]], allowed_text: str = "") -> None:
        tokens, states = known_facts(list(facts))
        self.quotable = tokens | {t.upper() for t in _CANDIDATE.findall(allowed_text)}
        negation, negation_states = _NOT_SHIPPED
        self._negation = negation
        self._negation_supported = bool(negation_states & states)
        # Phrases whose states no order is in, as one pattern: a reply matching any of them makes a claim.
        unsupported = [pattern.pattern for pattern, supported_by in _PHRASES if not supported_by & states]
        self._unsupported = re.compile("|".join(f"(?:{p})" for p in unsupported)) if unsupported else None

    def check(self, reply: str, context: str = "") -> Violation | None:
        """The first unsupported order fact in `reply`, or None. `context` is text just before `reply`, already
        checked (a streamed reply's previous words): it is read with `reply`, so a phrase or a negation that
        spans the boundary is seen whole, but a claim lying wholly inside it is not reported again (it was
        checked when it arrived, with its own context, some of which may since have been cut off)."""
        start = len(context)
        for match in _CANDIDATE.finditer(context + reply if context else reply):
            if match.end() <= start:
                continue
            token = match.group().upper()
            if token in self.quotable or (token.isdigit() and len(token) < 10):
                continue  # short plain numbers are quantities, prices, postcodes, order numbers
            return Violation("tracking_number", "a tracking-like number no tool returned")
        folded_context = _fold(context)
        folded = folded_context + _fold(reply)  # folding works character by character: the parts fold alike
        start = len(folded_context)
        # Negated phrases first, blanked once checked, so "not shipped yet" is not also read as "shipped".
        if self._negation_supported:
            folded = self._negation.sub(_blank, folded)
        elif _reaches(self._negation, folded, start):
            return Violation("status", "an order status no tool returned")
        if self._unsupported is not None and _reaches(self._unsupported, folded, start):
            return Violation("status", "an order status no tool returned")
        return None


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())  # the same length: positions after it stay comparable with `start`


def _reaches(pattern: re.Pattern[str], text: str, start: int) -> bool:
    """Whether `pattern` matches somewhere in `text` ending after `start`."""
    if not start:
        return pattern.search(text) is not None
    return any(match.end() > start for match in pattern.finditer(text))


def check(reply: str, facts: Iterable[Mapping[str, Any]], allowed_text: str = "") -> Violation | None:
    """The first unsupported order fact in `reply`, or None. `allowed_text` (e.g. the shopper's own message,
    or product search results) may be quoted back: numbers in it are not claims about an order."""
    return FactCheck(facts, allowed_text).check(reply)
