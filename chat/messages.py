"""Localized strings for the rule responder, in the four shop languages (en, fr, de, es)."""

from __future__ import annotations

from datetime import date

LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es")
DEFAULT_LANGUAGE = "en"

# Fulfillment and order phrases are written to follow "Order #1001: ..." / "Parcel 1 (...): ...", so they are
# noun-like or invariant where the languages would otherwise need gender/number agreement with the subject.
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "Hi! I'm the {shop} assistant. I can tell you where your order is, share tracking and delivery "
        "dates, and help with returns.",
        "fallback_notice": "Our assistant is unavailable right now, so here is what I can tell you:",
        "thanks": "You're welcome! Is there anything else I can help with?",
        "fallback": "I can help with your orders: where they are, tracking, delivery dates and returns. For anything "
        "else, I can pass your question to the {shop} team.",
        "verify": "To look up your order, please enter its number (it starts with # and is in your confirmation "
        "email) and the email address used at checkout. The address is only used for this check and is not kept.",
        "no_orders": "I couldn't find a recent order on your account. If you ordered with another email address, the "
        "{shop} team can help: just ask to talk to a person.",
        "unknown_order": "I can't see order {asked} in this conversation; here is your most recent order.",
        "unknown_order_verify": "To look up order {asked}, enter its number and the email address used at checkout.",
        "order_line": "Order {name}: {status}.",
        "order_cancelled": "Order {name} was cancelled.",
        "order_unknown": "I can see order {name}, but I can't describe its shipping status from here. The {shop} "
        "team can tell you more.",
        "order.UNFULFILLED": "being prepared, not shipped yet",
        "order.ON_HOLD": "on hold, not shipped yet",
        "order.SCHEDULED": "scheduled to ship later",
        "order.REQUEST_DECLINED": "not shipped yet (the shipping request was declined)",
        "order.RESTOCKED": "its items were returned to stock",
        "order.PARTIALLY_FULFILLED": "partly shipped",
        "order.FULFILLED": "shipped",
        "order.multi": "shipped in {count} parcels",
        "shipped_items": "Shipped: {items}.",
        "pending_items": "Still being prepared: {items}.",
        "parcel": "Parcel {n}",
        "parcel_line": "{label}: {status}.",
        "ful.IN_TRANSIT": "on its way",
        "ful.OUT_FOR_DELIVERY": "out for delivery",
        "ful.ATTEMPTED_DELIVERY": "the carrier tried to deliver it, without success",
        "ful.DELIVERED": "delivered on {date}",
        "ful.DELIVERED_NO_DATE": "delivered",
        "ful.LABEL_PRINTED": "shipping label created, waiting for the carrier",
        "ful.CONFIRMED": "being handed over for shipping",
        "ful.SHIPPED": "shipped",
        "ful.READY_FOR_PICKUP": "ready for pickup",
        "ful.PICKED_UP": "picked up",
        "ful.NOT_DELIVERED": "could not be delivered",
        "ful.FAILURE": "there was a problem with this shipment",
        "ful.CANCELED": "shipment cancelled",
        "tracking_carrier_number": "Carrier: {carrier}, tracking number {number}.",
        "tracking_number": "Tracking number: {number}.",
        "tracking_carrier": "Carrier: {carrier}.",
        "eta": "Estimated delivery: {date}.",
        "eta_past": "It was expected on {date}.",
        "no_eta": "There is no estimated delivery date yet.",
        "no_tracking": "There is no tracking number for this order yet.",
        "payment.PENDING": "The payment is still pending.",
        "payment.PARTIALLY_PAID": "The order is only partly paid.",
        "payment.REFUNDED": "The payment has been refunded.",
        "payment.PARTIALLY_REFUNDED": "Part of the payment has been refunded.",
        "payment.VOIDED": "The payment was voided, so nothing was charged.",
        "other_orders": "I can also tell you about {names}.",
        "order_ref": "Order {name}",
        "returns_policy": "Here is the returns policy of {shop}:",
        "returns_none": "I don't have the returns policy of {shop} here. The store will tell you how returns work: I "
        "can pass your question to the team.",
        "human_intro": "I'm passing your question to the {shop} team, who will reply by email.",
        "human_intro_again": "Your question has already been passed to the {shop} team, who will reply by email.",
        "human_email": "This chat doesn't keep your email address, so please write to the store at {email}, or leave "
        "your address in the form below: it only goes into the message sent to the store.",
        "human_form": "This chat doesn't keep your email address, so please leave it in the form below: it only goes "
        "into the message sent to the store.",
        "suggest.where": "Where is my order?",
        "suggest.track": "Track my package",
        "suggest.when": "When will it arrive?",
        "suggest.returns": "Returns",
        "suggest.human": "Talk to a person",
        "date": "{month} {day}",
        "date_year": "{month} {day}, {year}",
        "products_found": "Here is what I found:",
        "products_close": "I couldn't find an exact match, but these come close:",
        "products_none": "I couldn't find a product matching “{query}”. Try other words, or browse the "
        "store's collections; I can also pass your question to the {shop} team.",
        "products_ask": "What are you looking for? Tell me the kind of product, and a colour or budget if you like.",
    },
    "fr": {
        "greeting": "Bonjour ! Je suis l'assistant de {shop}. Je peux vous dire où en est votre commande, vous "
        "donner le suivi et la date de livraison, et vous renseigner sur les retours.",
        "fallback_notice": "Notre assistant n'est pas disponible pour le moment ; voici ce que je peux vous dire :",
        "thanks": "Avec plaisir ! Puis-je vous aider pour autre chose ?",
        "fallback": "Je peux vous aider pour vos commandes : où elles en sont, le suivi, les dates de livraison et "
        "les retours. Pour toute autre question, je peux transmettre votre demande à l'équipe de {shop}.",
        "verify": "Pour retrouver votre commande, indiquez son numéro (il commence par # et figure dans l'e-mail de "
        "confirmation) et l'adresse e-mail utilisée lors de l'achat. L'adresse sert uniquement à cette vérification "
        "et n'est pas conservée.",
        "no_orders": "Je ne trouve pas de commande récente sur votre compte. Si vous avez commandé avec une autre "
        "adresse e-mail, l'équipe de {shop} peut vous aider : demandez simplement à parler à une personne.",
        "unknown_order": "Je ne vois pas la commande {asked} dans cette conversation ; voici votre commande la plus "
        "récente.",
        "unknown_order_verify": "Pour consulter la commande {asked}, indiquez son numéro et l'adresse e-mail "
        "utilisée lors de l'achat.",
        "order_line": "Commande {name} : {status}.",
        "order_cancelled": "La commande {name} a été annulée.",
        "order_unknown": "Je vois la commande {name}, mais je ne peux pas décrire son état d'expédition d'ici. "
        "L'équipe de {shop} pourra vous renseigner.",
        "order.UNFULFILLED": "en préparation, pas encore expédiée",
        "order.ON_HOLD": "en attente, pas encore expédiée",
        "order.SCHEDULED": "expédition prévue plus tard",
        "order.REQUEST_DECLINED": "pas encore expédiée (la demande d'expédition a été refusée)",
        "order.RESTOCKED": "articles remis en stock",
        "order.PARTIALLY_FULFILLED": "expédiée en partie",
        "order.FULFILLED": "expédiée",
        "order.multi": "expédiée en {count} colis",
        "shipped_items": "Expédié : {items}.",
        "pending_items": "Encore en préparation : {items}.",
        "parcel": "Colis {n}",
        "parcel_line": "{label} : {status}.",
        "ful.IN_TRANSIT": "en route",
        "ful.OUT_FOR_DELIVERY": "en cours de livraison",
        "ful.ATTEMPTED_DELIVERY": "le transporteur a tenté de livrer, sans succès",
        "ful.DELIVERED": "livraison effectuée le {date}",
        "ful.DELIVERED_NO_DATE": "livraison effectuée",
        "ful.LABEL_PRINTED": "étiquette d'expédition créée, en attente du transporteur",
        "ful.CONFIRMED": "en cours d'expédition",
        "ful.SHIPPED": "expédition effectuée",
        "ful.READY_FOR_PICKUP": "disponible au retrait",
        "ful.PICKED_UP": "retrait effectué",
        "ful.NOT_DELIVERED": "livraison impossible",
        "ful.FAILURE": "problème avec cet envoi",
        "ful.CANCELED": "envoi annulé",
        "tracking_carrier_number": "Transporteur : {carrier}, numéro de suivi {number}.",
        "tracking_number": "Numéro de suivi : {number}.",
        "tracking_carrier": "Transporteur : {carrier}.",
        "eta": "Livraison estimée : {date}.",
        "eta_past": "La livraison était prévue le {date}.",
        "no_eta": "Il n'y a pas encore de date de livraison estimée.",
        "no_tracking": "Il n'y a pas encore de numéro de suivi pour cette commande.",
        "payment.PENDING": "Le paiement est encore en attente.",
        "payment.PARTIALLY_PAID": "La commande n'est payée qu'en partie.",
        "payment.REFUNDED": "Le paiement a été remboursé.",
        "payment.PARTIALLY_REFUNDED": "Une partie du paiement a été remboursée.",
        "payment.VOIDED": "Le paiement a été annulé : rien n'a été débité.",
        "other_orders": "Je peux aussi vous renseigner sur : {names}.",
        "order_ref": "Commande {name}",
        "returns_policy": "Voici la politique de retour de {shop} :",
        "returns_none": "Je n'ai pas la politique de retour de {shop} ici. La boutique vous expliquera comment faire "
        "un retour : je peux transmettre votre question à l'équipe.",
        "human_intro": "Je transmets votre demande à l'équipe de {shop}, qui vous répondra par e-mail.",
        "human_intro_again": "Votre demande a déjà été transmise à l'équipe de {shop}, qui vous répondra par e-mail.",
        "human_email": "Ce chat ne conserve pas votre adresse e-mail : écrivez à la boutique à {email}, ou laissez "
        "votre adresse dans le formulaire ci-dessous ; elle sert uniquement au message envoyé à la boutique.",
        "human_form": "Ce chat ne conserve pas votre adresse e-mail : laissez-la dans le formulaire ci-dessous ; elle "
        "sert uniquement au message envoyé à la boutique.",
        "suggest.where": "Où est ma commande ?",
        "suggest.track": "Suivre mon colis",
        "suggest.when": "Quand vais-je la recevoir ?",
        "suggest.returns": "Retours",
        "suggest.human": "Parler à une personne",
        "date": "{day} {month}",
        "date_year": "{day} {month} {year}",
        "products_found": "Voici ce que j'ai trouvé :",
        "products_close": "Je n'ai pas trouvé exactement cela, mais ces produits s'en approchent :",
        "products_none": "Je n'ai pas trouvé de produit correspondant à « {query} ». Essayez d'autres mots ou "
        "parcourez les collections de la boutique ; je peux aussi transmettre votre question à l'équipe de {shop}.",
        "products_ask": "Que recherchez-vous ? Indiquez le type de produit, et une couleur ou un budget si vous "
        "le souhaitez.",
    },
    "de": {
        "greeting": "Hallo! Ich bin der Assistent von {shop}. Ich kann Ihnen sagen, wo Ihre Bestellung ist, "
        "Sendungsverfolgung und Liefertermine nennen und bei Rücksendungen helfen.",
        "fallback_notice": "Unser Assistent ist gerade nicht erreichbar; das kann ich Ihnen sagen:",
        "thanks": "Gern geschehen! Kann ich sonst noch helfen?",
        "fallback": "Ich helfe bei Ihren Bestellungen: wo sie sind, Sendungsverfolgung, Liefertermine und "
        "Rücksendungen. Bei allem anderen kann ich Ihre Frage an das Team von {shop} weitergeben.",
        "verify": "Um Ihre Bestellung zu finden, geben Sie bitte die Bestellnummer (sie beginnt mit # und steht in "
        "der Bestellbestätigung) und die beim Kauf verwendete E-Mail-Adresse ein. Die Adresse wird nur für diese "
        "Prüfung verwendet und nicht gespeichert.",
        "no_orders": "Ich finde keine aktuelle Bestellung in Ihrem Kundenkonto. Wenn Sie mit einer anderen "
        "E-Mail-Adresse bestellt haben, hilft Ihnen das Team von {shop}: Fragen Sie einfach nach einem Menschen.",
        "unknown_order": "Die Bestellung {asked} sehe ich in diesem Gespräch nicht; hier ist Ihre neueste Bestellung.",
        "unknown_order_verify": "Um die Bestellung {asked} abzufragen, geben Sie ihre Nummer und die beim Kauf "
        "verwendete E-Mail-Adresse ein.",
        "order_line": "Bestellung {name}: {status}.",
        "order_cancelled": "Die Bestellung {name} wurde storniert.",
        "order_unknown": "Ich sehe die Bestellung {name}, kann ihren Versandstatus von hier aus aber nicht "
        "beschreiben. Das Team von {shop} kann Ihnen mehr sagen.",
        "order.UNFULFILLED": "wird vorbereitet, noch nicht versandt",
        "order.ON_HOLD": "zurückgestellt, noch nicht versandt",
        "order.SCHEDULED": "Versand für später geplant",
        "order.REQUEST_DECLINED": "noch nicht versandt (die Versandanfrage wurde abgelehnt)",
        "order.RESTOCKED": "Artikel wurden wieder eingelagert",
        "order.PARTIALLY_FULFILLED": "teilweise versandt",
        "order.FULFILLED": "versandt",
        "order.multi": "in {count} Paketen versandt",
        "shipped_items": "Versandt: {items}.",
        "pending_items": "Noch in Vorbereitung: {items}.",
        "parcel": "Paket {n}",
        "parcel_line": "{label}: {status}.",
        "ful.IN_TRANSIT": "unterwegs",
        "ful.OUT_FOR_DELIVERY": "in Zustellung",
        "ful.ATTEMPTED_DELIVERY": "Zustellversuch ohne Erfolg",
        "ful.DELIVERED": "zugestellt am {date}",
        "ful.DELIVERED_NO_DATE": "zugestellt",
        "ful.LABEL_PRINTED": "Versandetikett erstellt, wartet auf den Versanddienstleister",
        "ful.CONFIRMED": "wird an den Versand übergeben",
        "ful.SHIPPED": "versandt",
        "ful.READY_FOR_PICKUP": "zur Abholung bereit",
        "ful.PICKED_UP": "abgeholt",
        "ful.NOT_DELIVERED": "konnte nicht zugestellt werden",
        "ful.FAILURE": "Problem mit dieser Sendung",
        "ful.CANCELED": "Sendung storniert",
        "tracking_carrier_number": "Versanddienstleister: {carrier}, Sendungsnummer {number}.",
        "tracking_number": "Sendungsnummer: {number}.",
        "tracking_carrier": "Versanddienstleister: {carrier}.",
        "eta": "Voraussichtliche Zustellung: {date}.",
        "eta_past": "Sie war für den {date} erwartet.",
        "no_eta": "Es gibt noch kein voraussichtliches Lieferdatum.",
        "no_tracking": "Für diese Bestellung gibt es noch keine Sendungsnummer.",
        "payment.PENDING": "Die Zahlung steht noch aus.",
        "payment.PARTIALLY_PAID": "Die Bestellung ist erst teilweise bezahlt.",
        "payment.REFUNDED": "Die Zahlung wurde erstattet.",
        "payment.PARTIALLY_REFUNDED": "Ein Teil der Zahlung wurde erstattet.",
        "payment.VOIDED": "Die Zahlung wurde storniert; es wurde nichts abgebucht.",
        "other_orders": "Ich kann Ihnen auch etwas sagen zu: {names}.",
        "order_ref": "Bestellung {name}",
        "returns_policy": "Hier sind die Rückgaberichtlinien von {shop}:",
        "returns_none": "Die Rückgaberichtlinien von {shop} liegen mir nicht vor. Der Shop erklärt Ihnen, wie "
        "Rücksendungen funktionieren: Ich kann Ihre Frage an das Team weitergeben.",
        "human_intro": "Ich gebe Ihre Anfrage an das Team von {shop} weiter, das Ihnen per E-Mail antwortet.",
        "human_intro_again": "Ihre Anfrage wurde bereits an das Team von {shop} weitergegeben, das Ihnen per E-Mail "
        "antwortet.",
        "human_email": "Dieser Chat speichert Ihre E-Mail-Adresse nicht: Schreiben Sie dem Shop an {email} oder "
        "tragen Sie Ihre Adresse in das Formular unten ein; sie wird nur in die Nachricht an den Shop übernommen.",
        "human_form": "Dieser Chat speichert Ihre E-Mail-Adresse nicht: Tragen Sie sie in das Formular unten ein; "
        "sie wird nur in die Nachricht an den Shop übernommen.",
        "suggest.where": "Wo ist meine Bestellung?",
        "suggest.track": "Sendung verfolgen",
        "suggest.when": "Wann kommt sie an?",
        "suggest.returns": "Rücksendung",
        "suggest.human": "Mit einem Menschen sprechen",
        "date": "{day}. {month}",
        "date_year": "{day}. {month} {year}",
        "products_found": "Das habe ich gefunden:",
        "products_close": "Genau das habe ich nicht gefunden, aber diese Produkte kommen nah heran:",
        "products_none": "Ich habe kein Produkt zu „{query}“ gefunden. Versuchen Sie andere Wörter oder "
        "stöbern Sie in den Kollektionen des Shops; ich kann Ihre Frage auch an das Team von {shop} weitergeben.",
        "products_ask": "Wonach suchen Sie? Nennen Sie die Art des Produkts und gern eine Farbe oder ein Budget.",
    },
    "es": {
        "greeting": "¡Hola! Soy el asistente de {shop}. Puedo decirte dónde está tu pedido, darte el seguimiento y "
        "la fecha de entrega, y ayudarte con las devoluciones.",
        "fallback_notice": "Nuestro asistente no está disponible en este momento; esto es lo que puedo decirte:",
        "thanks": "¡De nada! ¿Puedo ayudarte con algo más?",
        "fallback": "Puedo ayudarte con tus pedidos: dónde están, el seguimiento, las fechas de entrega y las "
        "devoluciones. Para cualquier otra cosa, puedo pasar tu pregunta al equipo de {shop}.",
        "verify": "Para buscar tu pedido, escribe su número (empieza por # y aparece en el correo de confirmación) "
        "y el correo electrónico usado en la compra. El correo solo se usa para esta comprobación y no se guarda.",
        "no_orders": "No encuentro ningún pedido reciente en tu cuenta. Si hiciste el pedido con otro correo "
        "electrónico, el equipo de {shop} puede ayudarte: solo pide hablar con una persona.",
        "unknown_order": "No veo el pedido {asked} en esta conversación; este es tu pedido más reciente.",
        "unknown_order_verify": "Para consultar el pedido {asked}, escribe su número y el correo electrónico usado "
        "en la compra.",
        "order_line": "Pedido {name}: {status}.",
        "order_cancelled": "El pedido {name} fue cancelado.",
        "order_unknown": "Veo el pedido {name}, pero no puedo describir su estado de envío desde aquí. El equipo de "
        "{shop} puede darte más información.",
        "order.UNFULFILLED": "en preparación, aún no enviado",
        "order.ON_HOLD": "en espera, aún no enviado",
        "order.SCHEDULED": "envío programado para más adelante",
        "order.REQUEST_DECLINED": "aún no enviado (la solicitud de envío fue rechazada)",
        "order.RESTOCKED": "los artículos se devolvieron al inventario",
        "order.PARTIALLY_FULFILLED": "enviado en parte",
        "order.FULFILLED": "enviado",
        "order.multi": "enviado en {count} paquetes",
        "shipped_items": "Enviado: {items}.",
        "pending_items": "Aún en preparación: {items}.",
        "parcel": "Paquete {n}",
        "parcel_line": "{label}: {status}.",
        "ful.IN_TRANSIT": "en camino",
        "ful.OUT_FOR_DELIVERY": "en reparto",
        "ful.ATTEMPTED_DELIVERY": "el transportista intentó entregarlo, sin éxito",
        "ful.DELIVERED": "entrega realizada el {date}",
        "ful.DELIVERED_NO_DATE": "entrega realizada",
        "ful.LABEL_PRINTED": "etiqueta de envío creada, a la espera del transportista",
        "ful.CONFIRMED": "en proceso de envío",
        "ful.SHIPPED": "envío realizado",
        "ful.READY_FOR_PICKUP": "disponible para recoger",
        "ful.PICKED_UP": "recogida realizada",
        "ful.NOT_DELIVERED": "no se pudo entregar",
        "ful.FAILURE": "hubo un problema con este envío",
        "ful.CANCELED": "envío cancelado",
        "tracking_carrier_number": "Transportista: {carrier}, número de seguimiento {number}.",
        "tracking_number": "Número de seguimiento: {number}.",
        "tracking_carrier": "Transportista: {carrier}.",
        "eta": "Entrega estimada: {date}.",
        "eta_past": "Estaba prevista para el {date}.",
        "no_eta": "Todavía no hay una fecha de entrega estimada.",
        "no_tracking": "Todavía no hay número de seguimiento para este pedido.",
        "payment.PENDING": "El pago aún está pendiente.",
        "payment.PARTIALLY_PAID": "El pedido solo está pagado en parte.",
        "payment.REFUNDED": "El pago ha sido reembolsado.",
        "payment.PARTIALLY_REFUNDED": "Se ha reembolsado parte del pago.",
        "payment.VOIDED": "El pago fue anulado; no se cobró nada.",
        "other_orders": "También puedo darte información sobre: {names}.",
        "order_ref": "Pedido {name}",
        "returns_policy": "Esta es la política de devoluciones de {shop}:",
        "returns_none": "No tengo aquí la política de devoluciones de {shop}. La tienda te explicará cómo hacer una "
        "devolución: puedo pasar tu pregunta al equipo.",
        "human_intro": "Paso tu consulta al equipo de {shop}, que te responderá por correo electrónico.",
        "human_intro_again": "Tu consulta ya se pasó al equipo de {shop}, que te responderá por correo electrónico.",
        "human_email": "Este chat no guarda tu correo electrónico: escribe a la tienda a {email} o deja tu correo en "
        "el formulario de abajo; solo se incluirá en el mensaje enviado a la tienda.",
        "human_form": "Este chat no guarda tu correo electrónico: déjalo en el formulario de abajo; solo se incluirá "
        "en el mensaje enviado a la tienda.",
        "suggest.where": "¿Dónde está mi pedido?",
        "suggest.track": "Rastrear mi paquete",
        "suggest.when": "¿Cuándo llegará?",
        "suggest.returns": "Devoluciones",
        "suggest.human": "Hablar con una persona",
        "date": "{day} de {month}",
        "date_year": "{day} de {month} de {year}",
        "products_found": "Esto es lo que he encontrado:",
        "products_close": "No he encontrado exactamente eso, pero estos productos se acercan:",
        "products_none": "No he encontrado ningún producto que coincida con «{query}». Prueba con otras palabras o "
        "mira las colecciones de la tienda; también puedo pasar tu pregunta al equipo de {shop}.",
        "products_ask": "¿Qué estás buscando? Dime el tipo de producto y, si quieres, un color o un presupuesto.",
    },
}

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
}


def supported_language(language: str | None) -> str:
    """Map a shop/browser locale ("fr", "fr-CA", "DE") to one of LANGUAGES, English otherwise."""
    base = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def message(language: str, key: str, **values: object) -> str:
    """The message `key` in `language`, formatted with `values`."""
    return MESSAGES[supported_language(language)][key].format(**values)


def format_date(day: date, language: str, today: date | None = None) -> str:
    """A short day-and-month date ("November 25", "25 novembre", "25. November", "25 de noviembre"), with the
    year when `today` is given and falls in another year ("October 7, 2024")."""
    lang = supported_language(language)
    # French writes the first of the month as an ordinal ("1er novembre"); no locale library needed for that.
    day_text = "1er" if lang == "fr" and day.day == 1 else str(day.day)
    key = "date_year" if today is not None and day.year != today.year else "date"
    return message(lang, key, day=day_text, month=MONTHS[lang][day.month - 1], year=day.year)
