"""The conversation engine: one turn in, one reply out, through the model or the rule responder.

A turn: redact the shopper's text, store it, score sentiment, answer (model with tools when configured,
the rule responder otherwise or when the model fails), check the answer against this turn's order facts
(chat.guard: nothing a tool did not return is sent), store it, count it, escalate when asked or when
the shopper is clearly unhappy. The model sees only this conversation, redacted; order facts are read
fresh from Shopify each turn (a session keeps only order ids and names).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chat import guard, rules, sentiment
from chat.llm import LLMUnavailable, ModelClient, ToolCall
from chat.messages import message
from chat.orders import OrderLookup, OrderRef, normalize_order_name
from chat.redaction import redact
from chat.store import FIRST_REPLY_BOUNDS_MS, MAX_SESSION_ORDERS, ChatStore, Session
from shopify.errors import ShopifyError

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4  # model ↔ tools round trips per turn, then the engine answers by rule
HISTORY_MESSAGES = 20  # earlier messages sent to the model
ORDER_INTENTS = {"order_status", "tracking", "delivery_time"}
GUARD_CONTEXT = 80  # characters of already-sent text re-checked with each new word

SYSTEM_PROMPT = """You are the support assistant of the online store "{shop_name}". Answer in {language_name}, \
briefly and kindly.
Rules you must follow:
- Never state an order's status, shipping state, carrier, tracking number or delivery date unless a tool \
returned it in this conversation. If you have no tool result, say you can check once the shopper verifies \
their order (order name and email in the form shown in the chat) or is logged in.
- Use order_status for verified orders{recent_hint}. Use search_products for product questions. Use \
escalate_to_human when the shopper asks for a person or you cannot help.
- Never ask for or repeat personal data (email, phone, address, card numbers).
Shopper: {who}.{policy}"""

LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish"}
# When Shopify cannot be read: said plainly, never guessed around.
ORDERS_UNAVAILABLE = {
    "en": "I can't check orders right now. Please try again in a minute.",
    "fr": "Je ne peux pas consulter les commandes pour le moment. Réessayez dans une minute.",
    "de": "Ich kann Bestellungen gerade nicht abrufen. Bitte versuchen Sie es in einer Minute erneut.",
    "es": "Ahora mismo no puedo consultar los pedidos. Inténtalo de nuevo en un minuto.",
}


@dataclass
class Reply:
    text: str
    parts: list[dict[str, Any]]
    intent: str
    language: str
    responder: str  # "model" | "rules"
    escalate: bool = False
    blocked: bool = False  # a model reply was replaced by the guard
    fallback: bool = False  # the model failed; the rule responder answered


@dataclass
class ProductResults:
    cards: list[dict[str, Any]]  # feeds.definitions.card dicts, best first
    match: str  # "exact" (every search word matched), "close" (some did), "" (nothing found)


def _no_products(query: rules.ProductQuery) -> ProductResults:
    return ProductResults([], "")


@dataclass
class TurnContext:
    shop: str
    session: Session
    settings: dict[str, Any]
    shop_name: str
    contact_email: str | None
    # The logged-in customer: sealed in the session at its signed creation, or (proxy route, no sealed one)
    # the signed request's logged_in_customer_id.
    customer_id: str | None
    lookup: OrderLookup
    search: Callable[[str], list[dict[str, Any]]]
    products: Callable[[rules.ProductQuery], ProductResults] = _no_products
    facts: list[dict[str, Any]] = field(default_factory=list)  # every order fact fetched this turn
    refs: list[OrderRef] = field(default_factory=list)
    looked_up: list[OrderRef] = field(default_factory=list)  # a logged-in customer's orders read this turn

    @property
    def language(self) -> str:
        """The default language of replies: the session's (the widget's locale at creation, then the language
        the shopper writes in), not the shop's setting."""
        return self.session.language or self.settings.get("language") or "en"


class Blocked(Exception):
    def __init__(self, violation: guard.Violation) -> None:
        super().__init__(violation.kind)
        self.violation = violation


class GuardedText:
    """Lets streamed text through word by word, each prefix checked against the turn's facts first."""

    def __init__(self, ctx: TurnContext, shopper_text: str) -> None:
        self.ctx = ctx
        self._allowed = shopper_text
        self._check: guard.FactCheck | None = None
        self._checked_facts: list[dict[str, Any]] | None = None  # the facts list _check was built from
        self._checked_count = 0
        self.sent = ""
        self.pending = ""

    @property
    def allowed(self) -> str:
        """Text the reply may quote numbers from (the shopper's message, then also tool results)."""
        return self._allowed

    @allowed.setter
    def allowed(self, text: str) -> None:
        self._allowed = text
        self._check = None

    def feed(self, delta: str) -> str:
        self.pending += delta
        cut = max(self.pending.rfind(" "), self.pending.rfind("\n"))
        if cut < 0:
            return ""
        ready, self.pending = self.pending[: cut + 1], self.pending[cut + 1:]
        return self._release(ready)

    def finish(self) -> str:
        ready, self.pending = self.pending, ""
        released = self._release(ready)
        violation = self._fact_check().check(self.sent)  # once over the whole reply
        self._check = None  # tools may fetch more facts before the next round
        if violation is not None:
            raise Blocked(violation)
        return released

    def _fact_check(self) -> guard.FactCheck:
        # Built once per round, not per word: reading the facts and the allowed text (tool results included)
        # costs more than checking a word. Rebuilt if the turn's facts changed all the same.
        facts = self.ctx.facts
        if self._check is None or self._checked_facts is not facts or self._checked_count != len(facts):
            self._check = guard.FactCheck(facts, self._allowed)
            self._checked_facts, self._checked_count = facts, len(facts)
        return self._check

    def _release(self, ready: str) -> str:
        # Only the new words, read after a little context (a status phrase or its negation may span the
        # boundary): checking the whole reply at every word would cost O(n²) for a long reply. Claims wholly in
        # the context were checked when they arrived (their negation may have slid out of the window since).
        tail = self.sent[-GUARD_CONTEXT:]
        if len(self.sent) > GUARD_CONTEXT and " " in tail:
            tail = tail[tail.index(" ") + 1:]  # start on a word boundary, never inside a number
        violation = self._fact_check().check(ready, context=tail)
        if violation is not None:
            raise Blocked(violation)
        self.sent += ready
        return ready


class ChatEngine:
    def __init__(self, store: ChatStore, model: ModelClient | None) -> None:
        self.store = store
        self.model = model

    # --- one turn -----------------------------------------------------------------------------------

    def turn(self, ctx: TurnContext, raw_text: str, on_delta: Callable[[str], None] | None = None) -> Reply:
        started = time.monotonic()
        session = ctx.session
        text = redact(raw_text)
        now = time.time()
        history = self.store.transcript(ctx.shop, session.id)
        if ctx.customer_id and ctx.customer_id != self.store.customer(session):
            # A customer who logged in after the session was created (the proxy route): listed for compliance
            # before anything they say is stored (one created logged in was listed at creation).
            self.store.index_customer(session, ctx.customer_id)
        self.store.append(session, {"role": "shopper", "text": text, "at": _iso(now)},
                          set_fields={"last": repr(now)}, incr={"messages": 1})
        shopper_texts = [m["text"] for m in history if m.get("role") == "shopper"] + [text]
        score = sentiment.score(shopper_texts)
        ctx.refs = [OrderRef(o["id"], o["name"]) for o in session.orders]

        reply = self._answer(ctx, text, history, on_delta)
        if not session.escalated and not reply.escalate and score <= sentiment.NEGATIVE_THRESHOLD \
                and len(shopper_texts) >= 2:
            reply.escalate = True  # clearly unhappy: a person should look, even if nobody asked
            reply.text += "\n\n" + escalation_notice(reply.language, ctx.shop_name, ctx.contact_email)
            reply.parts.append({"type": "escalated"})
        self._record(ctx, reply, score, started)
        return reply

    def _answer(self, ctx: TurnContext, text: str, history: list[dict[str, Any]],
                on_delta: Callable[[str], None] | None) -> Reply:
        if self.model is not None:
            try:
                return self._model_reply(ctx, text, history, on_delta)
            except LLMUnavailable:
                try:
                    reply = self._rule_reply(ctx, text)
                except ShopifyError:
                    reply = self._orders_unavailable(ctx, text)
                reply.text = rules.honest_fallback_notice(reply.language) + " " + reply.text
                reply.fallback = True
                if on_delta:
                    on_delta(reply.text)
                return reply
            except Blocked as blocked:
                log.warning("model reply blocked", extra={"shop": ctx.shop, "violation": blocked.violation.kind})
                try:
                    reply = self._rule_reply(ctx, text)
                except ShopifyError:
                    reply = self._orders_unavailable(ctx, text)
                reply.blocked = True
                return reply
        try:
            reply = self._rule_reply(ctx, text)
        except ShopifyError:
            reply = self._orders_unavailable(ctx, text)
        if on_delta:
            for word in _words(reply.text):
                on_delta(word)
        return reply

    def _orders_unavailable(self, ctx: TurnContext, text: str) -> Reply:
        log.warning("orders unavailable for a chat turn", extra={"shop": ctx.shop})
        language = rules.reply_language(text, ctx.language)
        return Reply(ORDERS_UNAVAILABLE.get(language, ORDERS_UNAVAILABLE["en"]), [], "order_status", language,
                     "rules")

    # --- rule responder -----------------------------------------------------------------------------

    def _rule_reply(self, ctx: TurnContext, text: str) -> Reply:
        language = ctx.language
        intent = rules.detect_intent(text, language)
        if intent in ORDER_INTENTS and not ctx.facts:
            self._load_orders(ctx, text)
        found = ProductResults([], "")
        if intent == "product":
            query = rules.product_query(text)
            if query.terms or query.max_price is not None or query.min_price is not None:
                found = ctx.products(query)
        answer = rules.respond(text, rules.RuleContext(
            language=language, shop_name=ctx.shop_name, orders=ctx.facts, logged_in=ctx.customer_id is not None,
            verified=bool(ctx.refs), returns_policy=ctx.settings.get("returns_policy") or "",
            contact_email=ctx.contact_email, escalated=ctx.session.escalated, products=found.cards,
            product_match=found.match,
        ))
        return Reply(answer.text, answer.parts, answer.intent, answer.language, "rules", escalate=answer.escalate)

    def _load_orders(self, ctx: TurnContext, text: str) -> None:
        """This turn's order facts: the session's verified orders, a logged-in shopper's recent ones and any of
        their own orders named in the text. Nothing is read for an anonymous, unverified shopper."""
        facts = ctx.lookup.facts_for(ctx.refs) if ctx.refs else []
        if ctx.customer_id:
            names = {f["name"] for f in facts}
            for ref, order in ctx.lookup.recent(ctx.customer_id):
                if ref.name not in names:
                    facts.append(order)
                    names.add(ref.name)
                    ctx.looked_up.append(ref)
            for name in rules.order_refs(text):
                normalized = normalize_order_name(name)
                if normalized and normalized not in names:
                    owned = ctx.lookup.owned(normalized, ctx.customer_id)
                    if owned is not None:
                        owned_facts = ctx.lookup.facts_for([owned])
                        facts.extend(owned_facts)
                        if owned_facts:
                            ctx.looked_up.append(owned)
        ctx.facts = facts

    # --- model responder ----------------------------------------------------------------------------

    def _tools(self, ctx: TurnContext) -> list[dict[str, Any]]:
        tools = [
            _tool("order_status", "Status, items and shipments of the shopper's verified (or own) orders.",
                  {"order_name": {"type": "string", "description": "e.g. #1001; empty for all"}}),
            _tool("search_products", "Search the store's catalogue.", {"query": {"type": "string"}}, ["query"]),
            _tool("escalate_to_human", "Hand the conversation to the store's staff by email.",
                  {"reason": {"type": "string"}}),
        ]
        if ctx.customer_id:
            tools.insert(1, _tool("list_recent_orders", "The logged-in shopper's most recent orders.", {}))
        return tools

    def _system(self, ctx: TurnContext) -> str:
        language = ctx.language
        verified = ", ".join(r.name for r in ctx.refs)
        who = ("logged in" if ctx.customer_id else "anonymous") + (f"; verified orders: {verified}" if verified
                                                                   else "; no verified order")
        policy = ctx.settings.get("returns_policy") or ""
        return SYSTEM_PROMPT.format(
            shop_name=ctx.shop_name, language_name=LANGUAGE_NAMES.get(language, "English"),
            recent_hint=" and list_recent_orders for a logged-in shopper" if ctx.customer_id else "", who=who,
            policy=f"\nReturns policy (quote it when asked): {policy}" if policy else "",
        )

    def _model_reply(self, ctx: TurnContext, text: str, history: list[dict[str, Any]],
                     on_delta: Callable[[str], None] | None) -> Reply:
        assert self.model is not None
        messages: list[dict[str, Any]] = [{"role": "system", "content": self._system(ctx)}]
        for entry in history[-HISTORY_MESSAGES:]:
            role = {"shopper": "user", "assistant": "assistant"}.get(entry.get("role", ""))
            if role:
                messages.append({"role": role, "content": entry["text"]})
        messages.append({"role": "user", "content": text})
        tools = self._tools(ctx)
        guarded = GuardedText(ctx, text)
        escalate = False
        parts: list[dict[str, Any]] = []
        searched = ""
        shown: list[dict[str, Any]] = []  # product cards the search tool returned: cards for those the answer names
        for _ in range(MAX_TOOL_ROUNDS):
            calls: list[ToolCall] = []
            for item in self.model.stream(messages, tools):
                if isinstance(item, list):
                    calls = item
                    continue
                released = guarded.feed(item)
                if released and on_delta:
                    on_delta(released)
            if not calls:
                tail = guarded.finish()
                if tail and on_delta:
                    on_delta(tail)
                language = rules.reply_language(text, ctx.language)
                if escalate:
                    parts.append({"type": "escalated"})
                parts.extend(_order_parts(ctx.facts, guarded.sent))
                named = [c for c in shown if c.get("title") and c["title"] in guarded.sent]
                if named:
                    parts.append(rules.products_part(named))
                return Reply(guarded.sent.strip(), parts, "human" if escalate else rules.detect_intent(text),
                             language, "model", escalate=escalate)
            guarded.finish()  # text before a tool call is checked too, but the final answer is what counts
            messages.append({"role": "assistant", "content": guarded.sent or None,
                             "tool_calls": [c.message() for c in calls]})
            for call in calls:
                result, escalated, found = self._run_tool(ctx, call)
                shown.extend(result.get("_cards") or [])
                result.pop("_cards", None)
                escalate = escalate or escalated
                searched += found
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
            guarded.allowed = text + " " + searched
        raise LLMUnavailable("tool-call loop limit")

    def _run_tool(self, ctx: TurnContext, call: ToolCall) -> tuple[dict[str, Any], bool, str]:
        """(result for the model, escalated, text the reply may quote)."""
        try:
            return self._tool_result(ctx, call)
        except ShopifyError:
            log.warning("orders unavailable for a tool call", extra={"shop": ctx.shop})
            return ({"error": "orders_unavailable", "message": "Orders cannot be read right now; say so and "
                     "suggest trying again in a minute. Do not guess."}, False, "")

    def _tool_result(self, ctx: TurnContext, call: ToolCall) -> tuple[dict[str, Any], bool, str]:
        if call.name == "order_status":
            if not ctx.facts:
                self._load_orders(ctx, str(call.arguments.get("order_name") or ""))
            name = normalize_order_name(str(call.arguments.get("order_name") or ""))
            chosen = [f for f in ctx.facts if not name or f["name"] == name] or ctx.facts
            if not chosen:
                return ({"error": "not_verified", "message": "No verified order in this conversation. Ask the "
                         "shopper to verify with the order form (order name and email) or to log in."}, False, "")
            return {"orders": chosen}, False, ""
        if call.name == "list_recent_orders" and ctx.customer_id:
            if not ctx.facts:
                self._load_orders(ctx, "")
            return {"orders": ctx.facts}, False, ""
        if call.name == "search_products":
            query = redact(str(call.arguments.get("query") or ""))[:200]
            cards = ctx.products(rules.ProductQuery(query)).cards if query.strip() else []
            products = ([{k: c.get(k) for k in ("title", "url", "price_formatted", "available")} for c in cards]
                        if cards else ctx.search(query))
            return {"products": products, "_cards": cards}, False, json.dumps(products, ensure_ascii=False)
        if call.name == "escalate_to_human":
            return ({"escalated": True, "contact_email": ctx.contact_email,
                     "tell_the_shopper": "The store's staff will reply by email. Lumi keeps no shopper email: "
                     "they can write to the contact address or leave an email in the escalation form."}, True, "")
        return {"error": "unknown_tool"}, False, ""

    # --- bookkeeping --------------------------------------------------------------------------------

    def _record(self, ctx: TurnContext, reply: Reply, score: float, started: float) -> None:
        session = ctx.session
        now = time.time()
        elapsed_ms = int((time.monotonic() - started) * 1000)
        intents = (session.intents + [reply.intent])[-50:]
        resolved = not (session.escalated or reply.escalate) and (
            session.resolved or reply.intent == "thanks"
            or (reply.intent in ORDER_INTENTS and any(p.get("type") == "order" for p in reply.parts)))
        fields: dict[str, Any] = {"last": repr(now), "sentiment": f"{score:.4f}", "intents": json.dumps(intents),
                                  "resolved": int(resolved), "language": reply.language}
        counters: dict[str, float] = {f"intent:{reply.intent}": 1, "messages": 1}
        known = {o.get("id") for o in session.orders}
        new_refs = [r.as_dict() for r in ctx.looked_up if r.id not in known]
        if new_refs:
            # Orders read for a logged-in customer are kept like verified ones (and listed in the compliance index
            # by ChatStore.append before they are written), so customers/redact finds the session that showed them.
            fields["orders"] = json.dumps((session.orders + new_refs)[-MAX_SESSION_ORDERS:])
        if session.first_reply_ms is None:
            fields["first_reply_ms"] = elapsed_ms
            bound = next((b for b in FIRST_REPLY_BOUNDS_MS if elapsed_ms <= b), 0)
            counters[f"first_reply:{bound}"] = 1
        if session.sentiment is None:
            counters["sentiment_n"] = 1
        counters["sentiment_sum"] = score - (session.sentiment or 0.0)
        if reply.escalate and not session.escalated:
            fields["escalated"] = 1
            counters["escalated"] = 1
        if resolved != session.resolved:
            counters["resolved"] = 1 if resolved else -1
        if reply.blocked:
            counters["blocked"] = 1
        if reply.fallback:
            counters["model_fallback"] = 1
        entry = {"role": "assistant", "text": reply.text, "parts": reply.parts, "at": _iso(now),
                 "intent": reply.intent}
        # One line per turn for operators: what answered and how, never what was said.
        log.info("chat turn", extra={"shop": ctx.shop, "responder": reply.responder, "intent": reply.intent,
                                     "duration_ms": elapsed_ms, "escalated": reply.escalate,
                                     "blocked": reply.blocked, "fallback": reply.fallback})
        if self.store.append(session, entry, set_fields=fields, incr={"replies": 1}):
            self.store.count(session, **counters)
            if session.first_reply_ms is None:
                self.store.record_first_reply(session, elapsed_ms)
            if new_refs:
                session.orders = json.loads(fields["orders"])
            session.sentiment, session.resolved = score, resolved
            session.escalated = session.escalated or reply.escalate
            session.intents = intents
            if session.first_reply_ms is None:
                session.first_reply_ms = elapsed_ms


def escalation_notice(language: str, shop_name: str, contact_email: str | None) -> str:
    """The honest hand-over: staff reply by email, and Lumi keeps no shopper email."""
    how = message(language, "human_email", email=contact_email) if contact_email else message(language, "human_form")
    return f"{message(language, 'human_intro', shop=shop_name)} {how}"


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str] | None = None) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required or [], "additionalProperties": False}}}


def _order_parts(facts: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Structured parts for the orders the model's answer talks about (by name)."""
    parts: list[dict[str, Any]] = []
    for order in facts:
        if order.get("name") and order["name"] in text:
            parts.append({"type": "order", "order": rules.order_part(order)["order"]})
            for shipment in order.get("fulfillments") or []:
                if shipment.get("tracking_url"):
                    parts.append({"type": "tracking_link", "url": shipment["tracking_url"],
                                  "carrier": shipment.get("carrier"), "number": shipment.get("tracking_number")})
    return parts


def _words(text: str) -> Iterator[str]:
    start = 0
    for index, char in enumerate(text):
        if char == " ":
            yield text[start: index + 1]
            start = index + 1
    if start < len(text):
        yield text[start:]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
