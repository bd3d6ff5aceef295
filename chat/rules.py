"""Rule responder: keyword intents and replies built only from the order facts, used when no model answers.

Pure functions (no Redis, no HTTP): the engine looks the orders up, redacts the shopper's message and passes both in.
Every sentence about an order comes from its facts; when a fact is missing the reply says it is not known.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from chat.messages import LANGUAGES, format_date, message, supported_language

Facts = Mapping[str, Any]

INTENTS: tuple[str, ...] = (
    "greeting", "order_status", "tracking", "delivery_time", "returns", "human", "product", "thanks", "fallback",
)
ORDER_INTENTS = frozenset({"order_status", "tracking", "delivery_time"})


@dataclass
class RuleContext:
    """What the engine knows about this session; `orders` holds only verified orders' facts."""

    language: str
    shop_name: str
    orders: list[dict[str, Any]] = field(default_factory=list)
    logged_in: bool = False
    verified: bool = False
    returns_policy: str = ""
    contact_email: str | None = None
    escalated: bool = False
    # Product questions: the engine searched the catalogue (product_query) and passes the cards it found; "exact"
    # when every search word matched, "close" when only some did, "" when nothing was found or searched.
    products: list[dict[str, Any]] = field(default_factory=list)
    product_match: str = ""


@dataclass
class RuleReply:
    """A reply for the widget: plain text plus structured parts (order card, tracking links, suggestions, forms)."""

    text: str
    intent: str
    language: str
    parts: list[dict[str, Any]] = field(default_factory=list)
    escalate: bool = False
    needs_verification: bool = False


# --- Intent detection -------------------------------------------------------------------------------------------

def normalize(text: str) -> str:
    """Lower-case, accent-free, single-spaced text, so "Où", "ou" and "OU" match the same pattern."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'").casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped).strip()


# Patterns are regex fragments on normalized text, matched as whole words. All four languages are always tried:
# a French shopper on an English shop writes French. German "ue" spellings of "ü" are listed where common.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "human": (
        # en
        r"human", r"real person", r"a person", r"agent", r"representative", r"customer (?:service|support)",
        r"(?:talk|speak|chat) (?:to|with)", r"operator", r"contact (?:you|us|the (?:store|shop)|support)",
        # fr
        r"humain", r"(?:vraie|une) personne", r"conseill\w*", r"service client\w*", r"parler (?:a|avec)",
        r"contacter", r"joindre",
        # de
        r"mensch\w*", r"mitarbeiter\w*", r"kundenservice", r"kundendienst", r"ansprechpartner\w*",
        r"echten? person", r"mit jemandem", r"kontakt\w*",
        # es
        r"humano", r"persona real", r"una persona", r"agente", r"asesor\w*", r"atencion al cliente",
        r"servicio al cliente", r"operador\w*", r"hablar con", r"contactar\w*",
    ),
    "returns": (
        r"return\w*", r"refund\w*", r"exchang\w*", r"send (?:it )?back", r"money back",
        r"retour\w*", r"retourner", r"rembours\w*", r"echang\w*", r"renvoy\w*",
        r"ru(?:e)?cksend\w*", r"ru(?:e)?ckgabe\w*", r"zuru(?:e)?ck\w*", r"retoure\w*", r"umtausch\w*",
        r"(?:ru(?:e)?ck)?erstattung\w*", r"widerruf\w*",
        r"devol\w*", r"reembols\w*", r"retorno", r"cambi(?:o|ar) (?:de |la )?talla",
    ),
    "tracking": (
        r"track\w*", r"carrier", r"shipment number", r"parcel number",
        r"suivi\w*", r"suivre", r"transporteur", r"numero de colis",
        r"sendungsverfolgung", r"sendungsnummer", r"verfolg\w*", r"paketnummer",
        r"seguimiento", r"rastre\w*", r"numero de guia", r"guia de envio", r"localizar",
    ),
    "delivery_time": (
        r"when", r"how long", r"eta", r"arriv\w*", r"delivery date", r"expected", r"estimated",
        r"quand", r"combien de temps", r"delai\w*", r"date de livraison", r"recevoir", r"recevrai\w*",
        r"wann", r"wie lange", r"lieferzeit\w*", r"liefertermin\w*", r"lieferdatum", r"ankommen", r"ankunft",
        r"kommt \w+ an",
        r"cuando", r"cuanto (?:tarda\w*|tiempo)", r"plazo\w*", r"fecha de entrega", r"llegar\w*", r"llega",
    ),
    "order_status": (
        r"order\w*", r"package", r"parcel", r"shipping", r"shipped", r"status", r"where is", r"delivery",
        r"commande\w*", r"colis", r"ou en est", r"ou est", r"statut", r"expedi\w*", r"livraison", r"envoye\w*",
        r"bestell\w*", r"paket\w*", r"wo ist", r"wo bleibt", r"versand\w*", r"versendet", r"verschickt", r"lieferung",
        r"pedido\w*", r"paquete\w*", r"donde esta", r"estado", r"envio", r"enviado", r"compra", r"orden",
    ),
    "thanks": (
        r"thanks?", r"thank you", r"thx", r"cheers", r"much appreciated",
        r"merci\w*",
        r"danke\w*", r"vielen dank",
        r"gracias",
    ),
    "product": (
        # en
        r"do you (?:have|sell|carry|stock|make)", r"have you got", r"(?:i'?m |i am )?looking for",
        r"searching for", r"(?:can|could) you (?:recommend|suggest)", r"show me", r"in stock", r"gift\w*",
        r"(?:under|below|less than) \$?\d+",
        # fr
        r"avez[- ]vous", r"vous avez", r"vendez[- ]vous", r"vous vendez", r"(?:je )?cherche\w*", r"recherche\w*",
        r"en stock", r"cadeau\w*", r"moins de \d+",
        # de
        r"habt ihr", r"haben sie", r"gibt es", r"verkauf(?:t ihr|en sie)", r"(?:ich )?suche\w*",
        r"auf lager", r"geschenk\w*", r"unter \d+",
        # es
        r"tienen", r"tienes", r"venden", r"vendes", r"busco", r"buscando", r"en stock", r"regalo\w*",
        r"menos de \d+",
    ),
    "greeting": (
        r"hi", r"hello", r"hey", r"hiya", r"good (?:morning|afternoon|evening)",
        r"bonjour", r"bonsoir", r"salut", r"coucou",
        r"hallo", r"guten (?:morgen|tag|abend)", r"moin", r"servus", r"gruss gott", r"gruezi",
        r"hola", r"buen(?:os|as) (?:dias|tardes|noches)", r"buenas",
    ),
}
_INTENT_PATTERNS: dict[str, re.Pattern[str]] = {
    intent: re.compile(r"\b(?:" + "|".join(words) + r")\b") for intent, words in _KEYWORDS.items()
}
# Specific asks win over generic ones: "talk to a person about my order" is a human request, "thanks, when will it
# arrive?" a delivery question, "hello, where is my order?" an order question.
# A product question ("do you have blue hoodies?") yields to any order or returns question that names one.
_PRIORITY: tuple[str, ...] = ("human", "returns", "tracking", "delivery_time", "order_status", "product", "thanks",
                              "greeting")

# "#1001", "order 1001", "commande n° 1001", "Bestellung Nr. 1001", "pedido 1001" (on normalized text).
_ORDER_REF = re.compile(
    r"#\s?(\d{3,})\b"
    r"|\b(?:order|commande|bestellung|bestellnummer|auftrag|pedido|orden)\s*"
    r"(?:(?:n[o°]|nr|no|num|number|numero|nummer)\.?\s*)?[#:]?\s*(\d{3,})\b"
)


def order_refs(text: str) -> list[str]:
    """The order numbers (digits only) the shopper mentions, in order of appearance."""
    return [a or b for a, b in _ORDER_REF.findall(normalize(text))]


def detect_intent(text: str, language: str = "en") -> str:
    """One of INTENTS, from keywords in any of the four languages.

    `language` (the shop's) is accepted so callers need not care which languages are covered; every language's
    patterns are tried whatever it is, so it does not change the result today.
    """
    normalized = normalize(text)
    found = {intent for intent, pattern in _INTENT_PATTERNS.items() if pattern.search(normalized)}
    if order_refs(text):  # a named order makes it an order question unless something more specific is asked
        found.add("order_status")
    return next((intent for intent in _PRIORITY if intent in found), "fallback")


# Words frequent in short support messages and (mostly) specific to one language. Words listed for several
# languages ("la", "de", "en") count for none, so only distinctive words decide.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("""the is my where when order i you it to and of what how please hello hi hey thanks thank
        package has have not can your will did arrive want with for this that me delivery return refund yet
        still talk speak person human track shipped received get looking sell""".split()),
    "fr": frozenset("""le la les est ou ma mon mes je vous commande colis quand bonjour merci salut pas une un et
        pour avec suivi livraison retour svp ne j qu que elle il des du au sera toujours encore recu parler
        personne vais recevoir rembourser avez cherche vendez""".split()),
    "de": frozenset("""ist wo mein meine meinen ich bestellung paket wann die der das und nicht hallo danke bitte
        sie mit wie noch sendung lieferung haben habe eine ein zu kann wurde schon sprechen menschen verfolgen
        bekomme geliefert zuruck habt ihr gibt suche""".split()),
    "es": frozenset("""donde esta mi mis pedido cuando el los las que hola gracias por favor paquete con una un no
        llegara envio quiero se lo del para como todavia aun hablar persona rastrear devolver cuanto llegado
        recibido tienen tienes venden busco buscando""".split()),
}
_AMBIGUOUS = frozenset(w for lang, words in _STOPWORDS.items() for w in words
                       if any(w in other for o, other in _STOPWORDS.items() if o != lang))


def detect_language(text: str) -> str | None:
    """A guess from distinctive stopwords, or None when the text does not clearly read as one language."""
    words = re.findall(r"[a-z]+", normalize(text))
    tokens = [w for w in words if w not in _AMBIGUOUS]
    scores = Counter({lang: sum(t in _STOPWORDS[lang] for t in tokens) for lang in LANGUAGES})
    ranked = scores.most_common()
    (best, top), (_, second) = ranked[0], ranked[1]
    if top == 0 or top == second:
        return None
    # One lone hit decides only short messages ("Hola", "merci !"); longer text in a language hits several words.
    if top == 1 and len(words) > 3:
        return None
    return best


def reply_language(text: str, shop_language: str) -> str:
    """The shopper's language when clear, else the shop's."""
    return detect_language(text) or supported_language(shop_language)


# --- Product questions --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProductQuery:
    """What a shopper asks the catalogue for: search words and an optional price range (shop currency)."""

    terms: str
    max_price: float | None = None
    min_price: float | None = None


# Words that carry no product meaning in a question ("do you have", "je cherche", "habt ihr", "¿tienen?"), in all four
# languages at once, on normalized (accent-free, lower-case) text.
_PRODUCT_STOPWORDS = frozenset("""
    do you have has had got sell sells carry stock stocks make any some a an the for me my i im i'm am is are there
    looking look search searching find show recommend suggest could can would please something anything products
    product items item in of with and or to what which that this these those your yours store shop thanks hi hello
    hey want need buy like would love get one ones kind sort type
    avez vous avez-vous vendez vendez-vous cherche cherchons recherche je j' des de du la le les un une en au aux
    pour et ou avec sans quelque chose est-ce que qu est ce il y a t-il bonjour merci svp s'il plait voudrais veux
    acheter produit produits article articles
    habt ihr haben sie gibt es verkauft verkaufen suche suchen ich einen eine ein der die das den dem des und oder
    mit fur von zu im am auf lager etwas hallo danke bitte mochte will kaufen produkt produkte artikel
    tienen tienes venden vendes busco buscando estoy hay unos unas uno una el los las de del y o con sin para por
    algo hola gracias quiero quisiera comprar producto productos articulo articulos me
""".split())
_PRICE_UNDER = re.compile(r"\b(?:under|below|less than|up to|max(?:imum)?|moins de|jusqu'a|unter|bis|menos de|"
                          r"hasta)\s*[$€£]?\s*(\d+(?:[.,]\d+)?)\s*(?:[$€£]|eur\w*|euro?s?|dollars?|usd|gbp)?")
_PRICE_OVER = re.compile(r"\b(?:over|above|more than|plus de|uber|mehr als|mas de)\s*[$€£]?\s*(\d+(?:[.,]\d+)?)"
                         r"\s*(?:[$€£]|eur\w*|euro?s?|dollars?|usd|gbp)?")


def product_query(text: str) -> ProductQuery:
    """The search words and price range of a product question ("looking for a gift under $50" → "gift", ≤ 50)."""
    normalized = normalize(text)
    under, over = _PRICE_UNDER.search(normalized), _PRICE_OVER.search(normalized)
    normalized = _PRICE_OVER.sub(" ", _PRICE_UNDER.sub(" ", normalized))
    words = re.findall(r"[a-z0-9][a-z0-9'-]*", normalized)
    kept = [w for w in words if w not in _PRODUCT_STOPWORDS and w.strip("'-") not in _PRODUCT_STOPWORDS
            and len(w) > 1 and not w.isdigit()]
    return ProductQuery(
        terms=" ".join(w.strip("'-") for w in kept)[:200],
        max_price=float(under.group(1).replace(",", ".")) if under else None,
        min_price=float(over.group(1).replace(",", ".")) if over else None,
    )


# --- Order facts --------------------------------------------------------------------------------------------------

def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date(value: Any) -> date | None:
    # The facts carry no shop time zone: the date is the one in the timestamp as Shopify sent it (UTC).
    parsed = _parse_time(value)
    return parsed.date() if parsed else None


def _digits(name: str) -> str:
    return re.sub(r"\D", "", name)


def select_order(text: str, orders: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The order the shopper names if it is among `orders`, else the most recent one.

    Also returns the order reference the shopper asked for when it is not among `orders` (e.g. "#2000"), so the
    reply can say it is showing another order instead.
    """
    if not orders:
        return None, None
    normalized = normalize(text)
    for order in orders:
        name = normalize(str(order.get("name") or ""))
        if name and re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", normalized):
            return order, None
    refs = order_refs(text)
    for ref in refs:
        for order in orders:
            if _digits(str(order.get("name") or "")) == ref:
                return order, None
    oldest = datetime.min.replace(tzinfo=UTC)
    latest = max(orders, key=lambda o: _parse_time(o.get("created_at")) or oldest)
    return latest, (f"#{refs[0]}" if refs else None)


def _items_text(items: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for item in items:
        title, qty = str(item.get("title") or "").strip(), item.get("quantity") or 1
        if title:
            parts.append(f"{title} ×{qty}" if qty != 1 else title)
    return ", ".join(parts)


def _unshipped(order: Facts) -> list[dict[str, Any]]:
    """Line items not covered by any fulfillment's line items (by title and quantity)."""
    shipped: Counter[str] = Counter()
    for ful in order.get("fulfillments") or []:
        for item in ful.get("line_items") or []:
            shipped[str(item.get("title"))] += int(item.get("quantity") or 0)
    pending = []
    for item in order.get("line_items") or []:
        title, qty = str(item.get("title")), int(item.get("quantity") or 0)
        taken = min(qty, shipped[title])
        shipped[title] -= taken
        if qty - taken > 0:
            pending.append({"title": title, "quantity": qty - taken})
    return pending


# Each Shopify FulfillmentDisplayStatus mapped to a message key ("ful.<key>"); unknown ones read as shipped.
_FULFILLMENT_PHRASE: dict[str, str] = {
    "IN_TRANSIT": "IN_TRANSIT",
    "OUT_FOR_DELIVERY": "OUT_FOR_DELIVERY",
    "ATTEMPTED_DELIVERY": "ATTEMPTED_DELIVERY",
    "DELIVERED": "DELIVERED",
    "LABEL_PRINTED": "LABEL_PRINTED",
    "LABEL_PURCHASED": "LABEL_PRINTED",
    "CONFIRMED": "CONFIRMED",
    "SUBMITTED": "CONFIRMED",
    "FULFILLED": "SHIPPED",
    "MARKED_AS_FULFILLED": "SHIPPED",
    "READY_FOR_PICKUP": "READY_FOR_PICKUP",
    "PICKED_UP": "PICKED_UP",
    "NOT_DELIVERED": "NOT_DELIVERED",
    "FAILURE": "FAILURE",
    "CANCELED": "CANCELED",
    "LABEL_VOIDED": "CANCELED",
}
# Fulfillments that are over: no estimated delivery date is shown for them.
_FINISHED = frozenset({"DELIVERED", "PICKED_UP", "CANCELED", "LABEL_VOIDED", "NOT_DELIVERED", "FAILURE"})
_ARRIVED = frozenset({"DELIVERED", "PICKED_UP"})
# Shopify OrderDisplayFulfillmentStatus mapped to a message key ("order.<key>").
_ORDER_PHRASE: dict[str, str] = {
    "UNFULFILLED": "UNFULFILLED",
    "OPEN": "UNFULFILLED",
    "IN_PROGRESS": "UNFULFILLED",
    "PENDING_FULFILLMENT": "UNFULFILLED",
    "ON_HOLD": "ON_HOLD",
    "SCHEDULED": "SCHEDULED",
    "REQUEST_DECLINED": "REQUEST_DECLINED",
    "RESTOCKED": "RESTOCKED",
    "PARTIALLY_FULFILLED": "PARTIALLY_FULFILLED",
    "FULFILLED": "FULFILLED",
}
# Payment states worth telling a shopper; PAID and AUTHORIZED are the normal case and stay unsaid.
_PAYMENT_NOTES = frozenset({"PENDING", "PARTIALLY_PAID", "REFUNDED", "PARTIALLY_REFUNDED", "VOIDED"})


def _fulfillment_status(ful: Facts, lang: str) -> str:
    status = str(ful.get("status") or "")
    key = _FULFILLMENT_PHRASE.get(status, "SHIPPED")
    if key == "DELIVERED":
        delivered = _date(ful.get("delivered_at"))
        if delivered is None:
            return message(lang, "ful.DELIVERED_NO_DATE")
        return message(lang, "ful.DELIVERED", date=format_date(delivered, lang, _today()))
    return message(lang, f"ful.{key}")


def _tracking_sentences(ful: Facts, lang: str) -> list[str]:
    carrier, number = ful.get("carrier"), ful.get("tracking_number")
    sentences = []
    if carrier and number:
        sentences.append(message(lang, "tracking_carrier_number", carrier=carrier, number=number))
    elif number:
        sentences.append(message(lang, "tracking_number", number=number))
    elif carrier:
        sentences.append(message(lang, "tracking_carrier", carrier=carrier))
    eta = _date(ful.get("estimated_delivery_at"))
    if eta is not None and ful.get("status") not in _FINISHED:
        today = _today()
        # A date already gone is never said as if it were still to come (the parcel is late, or its carrier's
        # estimate was never updated); the year is said whenever it is not this one.
        key = "eta_past" if eta < today else "eta"
        sentences.append(message(lang, key, date=format_date(eta, lang, today)))
    return sentences


def _today() -> date:
    # Same calendar as _date: the facts' timestamps are compared as UTC dates.
    return datetime.now(UTC).date()


def order_part(order: Facts) -> dict[str, Any]:
    """The order card for the widget: status, items and fulfillments, no personal data."""
    return {
        "type": "order",
        "order": {
            "name": order.get("name"),
            "fulfillment_status": order.get("fulfillment_status"),
            "financial_status": order.get("financial_status"),
            "cancelled": bool(order.get("cancelled")),
            "line_items": [{"title": i.get("title"), "quantity": i.get("quantity")}
                           for i in order.get("line_items") or []],
            "fulfillments": [
                {key: ful.get(key) for key in ("status", "carrier", "tracking_number", "tracking_url",
                                               "estimated_delivery_at", "delivered_at")}
                for ful in order.get("fulfillments") or []
            ],
        },
    }


def _tracking_parts(order: Facts) -> list[dict[str, Any]]:
    return [
        {"type": "tracking_link", "url": ful["tracking_url"], "carrier": ful.get("carrier"),
         "number": ful.get("tracking_number")}
        for ful in order.get("fulfillments") or []
        if ful.get("tracking_url")
    ]


def describe_order(order: Facts, lang: str, shop: str, intent: str = "order_status") -> list[str]:
    """Sentences about one order, from its facts only."""
    name = str(order.get("name") or "")
    payment = str(order.get("financial_status") or "")
    payment_note = [message(lang, f"payment.{payment}")] if payment in _PAYMENT_NOTES else []
    if order.get("cancelled"):
        return [message(lang, "order_cancelled", name=name), *payment_note]

    status = str(order.get("fulfillment_status") or "")
    fulfillments: list[Facts] = list(order.get("fulfillments") or [])
    lines: list[str] = []
    if status == "FULFILLED" and len(fulfillments) == 1:
        # One parcel for the whole order: its carrier status is the order's status.
        lines.append(message(lang, "order_line", name=name, status=_fulfillment_status(fulfillments[0], lang)))
        lines.extend(_tracking_sentences(fulfillments[0], lang))
    else:
        if status in _ORDER_PHRASE:
            phrase = message(lang, f"order.{_ORDER_PHRASE[status]}")
            if status == "FULFILLED" and len(fulfillments) > 1:
                phrase = message(lang, "order.multi", count=len(fulfillments))
            lines.append(message(lang, "order_line", name=name, status=phrase))
        else:
            lines.append(message(lang, "order_unknown", name=name, shop=shop))
        if status == "PARTIALLY_FULFILLED":
            shipped = _items_text(i for ful in fulfillments for i in ful.get("line_items") or [])
            if shipped:  # Without per-parcel items the split is unknown, so none is claimed.
                lines.append(message(lang, "shipped_items", items=shipped))
                pending = _items_text(_unshipped(order))
                if pending:
                    lines.append(message(lang, "pending_items", items=pending))
        for n, ful in enumerate(fulfillments, start=1):
            label = message(lang, "parcel", n=n)
            items = _items_text(ful.get("line_items") or [])
            if items:
                label = f"{label} ({items})"
            lines.append(message(lang, "parcel_line", label=label, status=_fulfillment_status(ful, lang)))
            lines.extend(_tracking_sentences(ful, lang))
    lines.extend(payment_note)

    if intent == "tracking" and not any(ful.get("tracking_number") for ful in fulfillments):
        lines.append(message(lang, "no_tracking"))
    if intent == "delivery_time":
        open_fulfillments = [ful for ful in fulfillments if ful.get("status") not in _FINISHED]
        has_eta = any(_date(ful.get("estimated_delivery_at")) for ful in open_fulfillments)
        all_done = status == "FULFILLED" and bool(fulfillments) and all(
            ful.get("status") in _ARRIVED for ful in fulfillments)
        if not has_eta and not all_done:
            lines.append(message(lang, "no_eta"))
    return lines


# --- Replies ------------------------------------------------------------------------------------------------------

def greeting(language: str, shop_name: str, custom: str = "") -> str:
    """The opening message: the merchant's own greeting when set, else the localized default."""
    return custom.strip() or message(language, "greeting", shop=shop_name)


def honest_fallback_notice(language: str) -> str:
    """Said first when the model failed and the rule responder answers instead."""
    return message(language, "fallback_notice")


def _suggestions(lang: str, *keys: str, extra: Iterable[str] = ()) -> dict[str, Any]:
    return {"type": "suggested_replies", "replies": [*extra, *(message(lang, f"suggest.{k}") for k in keys)]}


def _order_reply(text: str, ctx: RuleContext, lang: str, intent: str) -> RuleReply:
    if not ctx.orders:
        if ctx.logged_in or ctx.verified:
            # The engine found none for this customer: say so rather than guess, and offer a person.
            return RuleReply(message(lang, "no_orders", shop=ctx.shop_name), intent, lang,
                             [_suggestions(lang, "human")])
        return RuleReply(message(lang, "verify"), intent, lang, [{"type": "verify_order"}], needs_verification=True)

    order, asked = select_order(text, ctx.orders)
    if order is None:  # unreachable: ctx.orders is not empty; keeps the type checker honest
        return RuleReply(message(lang, "verify"), intent, lang, [{"type": "verify_order"}], needs_verification=True)
    lines: list[str] = []
    parts: list[dict[str, Any]] = []
    needs_verification = False
    if asked:
        lines.append(message(lang, "unknown_order", asked=asked))
        if not ctx.logged_in:
            lines.append(message(lang, "unknown_order_verify", asked=asked))
            parts.append({"type": "verify_order"})
            needs_verification = True
    lines.extend(describe_order(order, lang, ctx.shop_name, intent))
    others = [str(o.get("name")) for o in ctx.orders if o is not order and o.get("name")][:2]
    if others:
        lines.append(message(lang, "other_orders", names=", ".join(others)))
    parts.append(order_part(order))
    if not order.get("cancelled"):
        parts.extend(_tracking_parts(order))
    parts.append(_suggestions(lang, "human", extra=[message(lang, "order_ref", name=n) for n in others]))
    return RuleReply("\n".join(lines), intent, lang, parts, needs_verification=needs_verification)


def _returns_reply(ctx: RuleContext, lang: str) -> RuleReply:
    policy = ctx.returns_policy.strip()
    if policy:
        text = message(lang, "returns_policy", shop=ctx.shop_name) + "\n\n" + ctx.returns_policy
    else:
        text = message(lang, "returns_none", shop=ctx.shop_name)
    return RuleReply(text, "returns", lang, [_suggestions(lang, "human")])


def _human_reply(ctx: RuleContext, lang: str) -> RuleReply:
    intro = message(lang, "human_intro_again" if ctx.escalated else "human_intro", shop=ctx.shop_name)
    if ctx.contact_email:
        how = message(lang, "human_email", email=ctx.contact_email)
    else:
        how = message(lang, "human_form")
    return RuleReply(f"{intro} {how}", "human", lang, [], escalate=True)


def products_part(cards: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The widget's product cards (at most three): public catalogue data only."""
    return {"type": "products", "products": [
        {key: card.get(key) for key in ("id", "title", "url", "image", "price_formatted", "available")}
        for card in list(cards)[:3]]}


def _product_reply(text: str, ctx: RuleContext, lang: str) -> RuleReply:
    query = product_query(text)
    if not ctx.products:
        if not query.terms and query.max_price is None and query.min_price is None:
            return RuleReply(message(lang, "products_ask"), "product", lang, [])
        return RuleReply(message(lang, "products_none", query=query.terms or text.strip()[:60], shop=ctx.shop_name),
                         "product", lang, [_suggestions(lang, "human")])
    part = products_part(ctx.products)
    intro = message(lang, "products_close" if ctx.product_match == "close" else "products_found")
    lines = [intro] + [f"- {c['title']}" + (f" ({c['price_formatted']})" if c.get("price_formatted") else "")
                       for c in part["products"]]
    return RuleReply("\n".join(lines), "product", lang, [part])


def respond(text: str, ctx: RuleContext) -> RuleReply:
    """The rule responder's reply to one (already redacted) shopper message."""
    lang = reply_language(text, ctx.language)
    intent = detect_intent(text, ctx.language)
    if intent in ORDER_INTENTS:
        return _order_reply(text, ctx, lang, intent)
    if intent == "returns":
        return _returns_reply(ctx, lang)
    if intent == "human":
        return _human_reply(ctx, lang)
    if intent == "product":
        return _product_reply(text, ctx, lang)
    general = _suggestions(lang, "where", "track", "returns", "human")
    if intent == "greeting":
        return RuleReply(greeting(lang, ctx.shop_name), intent, lang, [general])
    if intent == "thanks":
        return RuleReply(message(lang, "thanks"), intent, lang, [general])
    return RuleReply(message(lang, "fallback", shop=ctx.shop_name), intent, lang, [general])
