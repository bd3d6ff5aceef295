"""chat.redaction: personal data never survives `redact`, the app's own references do.

Property-based: hypothesis builds emails, phones, cards, IBANs and addresses in
many shapes (check digits computed, so every generated number is valid), hides
them in random text and checks that neither the exact string nor its digits come
out again.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chat.redaction import ADDRESS, CARD, EMAIL, IBAN, PHONE, PLACEHOLDERS, contains_pii, redact

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DIGITS = "0123456789"
LOWER = "abcdefghijklmnopqrstuvwxyz"
# Surrounding text: letters (with accents) and spaces only, so it cannot form PII
# itself; the PII gets punctuation or a space on each side, or sits at an end.
FILLER = st.text(alphabet=LOWER + LOWER.upper() + "éèàçüöäßñ   ", max_size=40)
BEFORE = st.sampled_from([" ", "\n", ": ", ", ", " (", ' "', " «", "\t"])
AFTER = st.sampled_from([" ", ".", ",", "!", "?", ")", ";", ":", "\n", ". ", '" '])


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=DIGITS, min_size=n, max_size=n)


def digits_only(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


@st.composite
def embedded(draw: st.DrawFn, pii: st.SearchStrategy[str]) -> tuple[str, str]:
    """(message, pii): the PII with random text before and after it, or at an end."""
    value = draw(pii)
    head = draw(FILLER)
    tail = draw(FILLER)
    before = draw(BEFORE) if head else ""
    after = draw(AFTER) if tail else draw(st.sampled_from(["", ".", "!", ")"]))
    return head + before + value + after + tail, value


def assert_gone(message: str, pii: str, placeholder: str) -> None:
    out = redact(message)
    assert pii not in out, (message, out)
    assert placeholder in out, (message, out)
    number = digits_only(pii)
    if len(number) >= 7:
        assert number not in digits_only(out), (message, out)


# --- generators -------------------------------------------------------------------


@st.composite
def emails(draw: st.DrawFn) -> str:
    atom = st.text(alphabet=LOWER + DIGITS, min_size=1, max_size=10)
    local = draw(atom)
    for _ in range(draw(st.integers(0, 2))):
        local += draw(st.sampled_from(".-_")) + draw(atom)
    if draw(st.booleans()):
        local += "+" + draw(atom)  # plus-addressing
    label = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,5})?", fullmatch=True)
    domain = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    tld = draw(st.sampled_from(["com", "fr", "de", "es", "co.uk", "io", "shop", "online", "museum"]))
    email = f"{local}@{domain}.{tld}"
    return email.upper() if draw(st.booleans()) else email


@st.composite
def phones(draw: st.DrawFn) -> str:
    sep = draw(st.sampled_from([" ", ".", "-"]))

    def pairs(n: int) -> str:
        return sep.join(draw(digits(2)) for _ in range(n))

    area = draw(st.integers(2, 9)).__str__() + draw(digits(2))
    exchange = draw(st.integers(2, 9)).__str__() + draw(digits(2))
    line = draw(digits(4))
    kind = draw(st.integers(0, 13))
    if kind == 0:  # French national: 06 12 34 56 78
        return "0" + draw(st.sampled_from("123456789")) + sep + pairs(4)
    if kind == 1:  # French international: +33 6 12 34 56 78, +33 (0)6 12 ...
        trunk = draw(st.sampled_from(["", "(0)"]))
        return "+33 " + trunk + draw(st.sampled_from("1234679")) + " " + pairs(4).replace(sep, " ")
    if kind == 2:  # US: (415) 555-0132
        return f"({area}) {exchange}-{line}"
    if kind == 3:  # US: 415.555.0132 / 415-555-0132 / 415 555 0132
        return sep.join([area, exchange, line])
    if kind == 4:  # US international: +1 415 555 0132, +1 (415) 555-0132, 1-415-555-0132
        return draw(st.sampled_from([f"+1 {area} {exchange} {line}", f"+1 ({area}) {exchange}-{line}",
                                     f"1-{area}-{exchange}-{line}"]))  # fmt: skip
    if kind == 5:  # German: +49 30 1234567, 030 12345678
        city = draw(st.sampled_from(["30", "40", "89", "221", "6221"]))
        number = draw(digits(draw(st.integers(6, 11 - len(city)))))  # at most 11 digits after the 0
        return draw(st.sampled_from([f"+49 {city} {number}", f"0{city} {number}", f"0{city}/{number}"]))
    if kind == 6:  # UK: 0044 20 7946 0958, +44 (0)20 7946 0958, 020 7946 0958, 07700 900123
        a, b = draw(digits(4)), draw(digits(4))
        return draw(st.sampled_from([f"0044 20 {a} {b}", f"+44 (0)20 {a} {b}", f"020 {a} {b}",
                                     f"07700 {draw(digits(6))}"]))  # fmt: skip
    if kind == 7:  # Spanish: 612 34 56 78, 91 123 45 67, +34 612 345 678
        first = draw(st.sampled_from("6789"))
        return draw(st.sampled_from([f"{first}{draw(digits(2))} {pairs(3).replace(sep, ' ')}",
                                     f"9{draw(digits(1))} {draw(digits(3))} {draw(digits(2))} {draw(digits(2))}",
                                     f"+34 {first}{draw(digits(2))} {draw(digits(3))} {draw(digits(3))}"]))  # fmt: skip
    if kind == 8:  # Italian mobile: 333 123 4567, +39 333 1234567
        return draw(st.sampled_from([f"3{draw(digits(2))} {draw(digits(3))} {draw(digits(4))}",
                                     f"+39 3{draw(digits(2))} {draw(digits(7))}"]))  # fmt: skip
    if kind == 9:  # compact with country code: +14155550132
        country = draw(st.sampled_from(["1", "33", "44", "49", "34", "351"]))
        return "+" + country + draw(digits(draw(st.integers(8, 10))))
    if kind == 10:  # Dutch / Belgian: 06-12345678, 0470 12 34 56
        return draw(st.sampled_from([f"06-{draw(digits(8))}", f"04{draw(digits(2))} {pairs(3).replace(sep, ' ')}"]))
    if kind == 11:  # Swiss / Austrian with 00: 0041 44 668 18 00
        return f"00{draw(st.sampled_from(['41', '43']))} {draw(digits(2))} {draw(digits(3))} {pairs(2)}"
    if kind == 12:  # international with dashes or dots: +33-6-12-34-56-78
        return "+33" + sep + draw(st.sampled_from("67")) + sep + pairs(4)
    # Irish / Portuguese: +353 87 123 4567, +351 912 345 678
    return draw(st.sampled_from([f"+353 8{draw(digits(1))} {draw(digits(3))} {draw(digits(4))}",
                                 f"+351 9{draw(digits(2))} {draw(digits(3))} {draw(digits(3))}"]))  # fmt: skip


def luhn_complete(partial: str) -> str:
    """`partial` + the digit that makes it pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return partial + str((10 - total % 10) % 10)


@st.composite
def cards(draw: st.DrawFn) -> str:
    brand = draw(st.sampled_from(["visa13", "visa16", "visa19", "mc", "mc2", "amex"]))
    prefix, length = {
        "visa13": ("4", 13), "visa16": ("4", 16), "visa19": ("4", 19),
        "mc": (str(draw(st.integers(51, 55))), 16), "mc2": (str(draw(st.integers(2221, 2720))), 16),
        "amex": (draw(st.sampled_from(["34", "37"])), 15),
    }[brand]  # fmt: skip
    number = luhn_complete(prefix + draw(digits(length - len(prefix) - 1)))
    layout = draw(st.sampled_from(["compact", "fours", "amex"] if length == 15 else ["compact", "fours"]))
    if layout == "compact":
        return number
    sep = draw(st.sampled_from([" ", "-"]))
    if layout == "amex":
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, length, 4))


# BBAN layouts per country: (length, allowed characters per position class)
BBANS = {
    "DE": [DIGITS] * 18,
    "FR": [DIGITS] * 10 + [DIGITS + "ABCDEFGHJ"] * 11 + [DIGITS] * 2,
    "GB": ["ABCDEFGHIJKLMNOPQRSTUVWXYZ"] * 4 + [DIGITS] * 14,
    "ES": [DIGITS] * 20,
    "IT": ["ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + [DIGITS] * 10 + [DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] * 12,
    "NL": ["ABCDEFGHIJKLMNOPQRSTUVWXYZ"] * 4 + [DIGITS] * 10,
    "BE": [DIGITS] * 12,
    "CH": [DIGITS] * 5 + [DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] * 12,
    "PL": [DIGITS] * 24,
    "NO": [DIGITS] * 11,
}


def iban_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(BBANS)))
    bban = "".join(draw(st.sampled_from(chars)) for chars in BBANS[country])
    iban = country + iban_check_digits(country, bban) + bban
    if draw(st.booleans()):
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if draw(st.booleans()) else iban


HOUSE = st.integers(1, 2500).map(str)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    language = draw(st.sampled_from(["en", "fr", "de", "es"]))
    number = draw(HOUSE)
    if language == "en":
        number += draw(st.sampled_from(["", "", "B", "a"]))
        name = draw(st.sampled_from(["Baker", "Main", "Oak", "Elm Park", "Pennsylvania", "5th", "Saint John's"]))
        kind = draw(st.sampled_from(["Street", "St", "St.", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd",
                                     "Lane", "Drive", "Way", "Court", "street", "avenue"]))  # fmt: skip
        return f"{number} {name} {kind}"
    if language == "fr":
        kind = draw(st.sampled_from(["rue", "avenue", "boulevard", "chemin", "allée", "place", "impasse", "Rue"]))
        article = draw(st.sampled_from(["", "de la ", "du ", "des ", "de l'"]))
        name = draw(st.sampled_from(["Paix", "Victor Hugo", "Lilas", "Moulin", "Église", "Gare"]))
        comma = draw(st.sampled_from(["", ","]))
        return f"{number}{comma} {kind} {article}{name}"
    if language == "de":
        number += draw(st.sampled_from(["", "", "a", "b"]))
        if draw(st.booleans()):
            stem = draw(st.sampled_from(["Haupt", "Linden", "Bahnhof", "Schiller", "Goethe", "Kirch"]))
            suffix = draw(st.sampled_from(["straße", "strasse", "str.", "weg", "allee", "platz", "gasse"]))
            return f"{stem}{suffix} {number}"
        stem = draw(st.sampled_from(["Berliner", "Am", "Alte", "Neuer"]))
        kind = draw(st.sampled_from(["Straße", "Strasse", "Weg", "Allee", "Platz", "Gasse"]))
        return f"{stem} {kind} {number}"
    kind = draw(st.sampled_from(["Calle", "calle", "Avenida", "Plaza", "Paseo", "Carrera"]))
    article = draw(st.sampled_from(["", "de ", "del ", "de la "]))
    name = draw(st.sampled_from(["Mayor", "Alcalá", "Sol", "Gracia", "Constitución", "Castellana"]))
    comma = draw(st.sampled_from(["", ","]))
    return f"{kind} {article}{name}{comma} {number}"


# --- properties -------------------------------------------------------------------


@FAST
@given(embedded(emails()))
def test_emails_are_redacted(case: tuple[str, str]) -> None:
    assert_gone(*case, EMAIL)


@FAST
@given(embedded(phones()))
def test_phones_are_redacted(case: tuple[str, str]) -> None:
    assert_gone(*case, PHONE)


@FAST
@given(embedded(cards()))
def test_cards_are_redacted(case: tuple[str, str]) -> None:
    assert_gone(*case, CARD)


@FAST
@given(embedded(ibans()))
def test_ibans_are_redacted(case: tuple[str, str]) -> None:
    message, iban = case
    assert_gone(message, iban, IBAN)
    assert iban.replace(" ", "").upper() not in redact(message).replace(" ", "").upper()


AMBIGUOUS_EN_TYPES = ("Road", "Lane", "Drive", "Way", "Court")


@FAST
@given(embedded(addresses()))
def test_addresses_are_redacted(case: tuple[str, str]) -> None:
    message, address = case
    # Documented limitation: "2 Nike Court Vision" is a product, so an ambiguous
    # English type word followed by a capitalised word is not taken as a street.
    rest = message[message.index(address) + len(address) :]
    assume(not (address.endswith(AMBIGUOUS_EN_TYPES) and rest[:1] in (" ", "\t") and rest.lstrip(" \t")[:1].isupper()))
    assert_gone(message, address, ADDRESS)


ANY_PII = st.one_of(emails(), phones(), cards(), ibans(), addresses())
# Noise rich in digits and separators: it tries to glue numbers onto the PII.
NOISE = st.text(alphabet=DIGITS + " .-()+/#,:abcXYZé\n", max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ANY_PII, NOISE, FILLER), min_size=1, max_size=6).map(" ".join))
def test_redact_is_idempotent(message: str) -> None:
    once = redact(message)
    assert redact(once) == once


@FAST
@given(st.lists(ANY_PII, min_size=2, max_size=5))
def test_several_pii_in_one_message_all_go(values: list[str]) -> None:
    message = " and ".join(values)
    out = redact(message)
    for value in values:
        assert value not in out
    assert contains_pii(message)
    assert not contains_pii(out)


# Plain text: words, and numbers that never touch each other (no phone can form),
# in the shapes the app and shoppers use: quantities, order names, prices, dates.
STREET_WORDS = {
    "street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr", "way",
    "court", "ct", "place", "pl", "terrace", "close", "crescent", "rue", "av", "bd", "chemin", "allée", "allee",
    "impasse", "quai", "route", "cours", "calle", "avenida", "avda", "plaza", "pza", "paseo", "camino", "ronda",
    "carrera", "bis", "ter",
}  # fmt: skip
GERMAN_ENDINGS = ("straße", "strasse", "str", "weg", "allee", "platz", "gasse")
# Single-word name cues (test_redaction_names.py): "soy Ana", "Thanks, Jane", "LG, Anna".
NAME_CUE_WORDS = {
    "soy", "thanks", "thx", "cheers", "regards", "best", "merci", "cordialement", "danke", "lg", "vg", "mfg",
    "gracias", "saludos", "atentamente",
}  # fmt: skip
WORDS = st.text(alphabet=LOWER + LOWER.upper() + "éàüñ", min_size=1, max_size=10).filter(
    lambda w: w.lower() not in STREET_WORDS and not w.lower().endswith(GERMAN_ENDINGS)
    and w.lower() not in NAME_CUE_WORDS
)
NUMBERS = st.one_of(
    st.integers(0, 9999).map(str),
    st.integers(1000, 99999).map(lambda n: f"#{n}"),
    st.integers(1, 99999).map(lambda n: f"€{n / 100:.2f}"),
    st.integers(1000, 999999).map(lambda n: f"{n // 100:,}.{n % 100:02d}"),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.dates().map(lambda d: d.strftime("%d.%m.%Y")),
)


@st.composite
def plain_messages(draw: st.DrawFn) -> str:
    tokens = []
    for _ in range(draw(st.integers(1, 25))):
        tokens.append(draw(WORDS) + draw(st.sampled_from(["", "", ",", ".", "!", "?"])))
        if draw(st.booleans()):
            tokens.append(draw(NUMBERS))
    return " ".join(tokens)


@settings(max_examples=300, deadline=None)
@given(plain_messages())
def test_plain_text_is_preserved(message: str) -> None:
    assert redact(message) == message
    assert not contains_pii(message)


# --- examples ---------------------------------------------------------------------


KEPT = [
    "Where is my order #1001?",
    "order 1001 and order #1002 both arrived",
    "Tracking number 1Z999AA10123456784, carrier UPS",
    "tracking: 9400111899223197428490",  # USPS, 22 digits
    "FedEx 123456789012 and DHL 1234567890",
    "The shoes were €49.90, the coat 1,299.00 and shipping $5",
    "Ordered on 2026-11-23, delivered 23/11/2026 (or 23.11.2026 at 14:30)",
    "I need 2 pairs of Size 42 shoes and 3 hats",
    "2 pairs on the way, 10 minutes drive, 12 place mats",
    "sizes 38 39 40 41 42 43 44 45, prices 12.50 15.00 20.00",
    "Ich bin auf Platz 2 gelandet",
    "Order 4111 1111 1111 1112 failed",  # 16 digits failing Luhn: not a card
    "I bought 2 Nike Court Vision shoes",
    "J'ai commandé 2 paires, taille 42, le 12 mars",
    "Versand am 23.11.2026 um 14:30 Uhr, Preis 1.299,00 €, Bestellung 1005",
    "Pedí 2 camisetas talla M el 3 de mayo",
    "ISBN 978-3-16-148410-0, EAN 4006381333931, SKU AB12-3456-7890",
]


def test_app_references_prices_dates_survive() -> None:
    for message in KEPT:
        assert redact(message) == message, message
        assert not contains_pii(message)


def test_examples_from_the_brief() -> None:
    message = (
        "Hi, I'm jane.doe+shop@Example.co.uk, call +33 6 12 34 56 78 or (415) 555-0132 or 415.555.0132, "
        "+49 30 1234567, 06-12-34-56-78, 0044 20 7946 0958. Card 4111 1111 1111 1111, "
        "IBAN FR76 3000 6000 0112 3456 7890 189. I live at 12 rue de la Paix, Hauptstraße 5, "
        "Calle Mayor 3 and 221B Baker Street. Order #1001, tracking 1Z999AA10123456784."
    )
    assert redact(message) == (
        "Hi, I'm [email], call [phone] or [phone] or [phone], "
        "[phone], [phone], [phone]. Card [card], "
        "IBAN [iban]. I live at [address], [address], "
        "[address] and [address]. Order #1001, tracking 1Z999AA10123456784."
    )


def test_order_of_application() -> None:
    # Email first: its digits never become a phone.
    assert redact("mail 0612345678.06@shop.fr") == "mail [email]"
    # IBAN before cards and phones: its digit blocks are not left behind.
    assert redact("DE89 3704 0044 0532 0130 00") == IBAN
    # Cards before phones: a spaced card is one [card], not phone pieces.
    assert redact("4111 1111 1111 1111") == CARD
    # Phones before addresses: the house number stays with the street.
    assert redact("Hauptstraße 5, Tel. 030 1234567") == "[address], Tel. [phone]"


def test_tricky_neighbours() -> None:
    assert redact("qty 2 4111111111111111 ok") == "qty 2 [card] ok"
    assert redact("order 1001 06 12 34 56 78") == "order 1001 [phone]"
    assert redact("on 2026-11-23 06 12 34 56 78") == "on 2026-11-23 [phone]"
    assert redact("IBAN: de89370400440532013000 danke") == "IBAN: [iban] danke"
    assert redact("my phone is 0612345678") == "my phone is [phone]"
    assert redact("Handynummer: 01701234567") == "Handynummer: [phone]"
    assert redact("write to 'o.brien@mail.ie'") == "write to '[email]'"
    assert redact("12 rue de la Paix, 75002 Paris") == ADDRESS


def test_placeholders_are_stable() -> None:
    text = " ".join(PLACEHOLDERS)
    assert redact(text) == text
    assert not contains_pii(text)


def _best_of_3(text: str) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        redact(text)
        times.append(time.perf_counter() - start)
    return min(times)


def test_no_catastrophic_backtracking_time_grows_with_the_text_not_faster() -> None:
    """Redaction's cost grows with the message, not explosively: doubling a text (realistic or hostile) at most
    roughly quadruples its time. Ratios measured in the same run, so a slow or busy machine does not matter;
    catastrophic backtracking multiplies the time by far more than that."""
    realistic = (
        "Hello, my order #1001 from 2026-11-23 (€49.90) has not arrived, tracking 1Z999AA10123456784. "
        "Please call me on +33 6 12 34 56 78 or write to jane.doe@example.com; I live at 12 rue de la Paix. "
        "The size 42 shoes are for my son, he really needs them before the weekend, thank you so much! "
    )
    hostile = [
        "1" * 1024, "1 " * 512, "1." * 512, "12-" * 341, "(1) " * 256, "+1 " * 341, "a@" * 512,
        ("a" * 60 + ".") * 16 + "@", "DE89 " + "ABCD " * 200, "12 Abc " * 145, "Xstraße " * 128,
        "calle de " * 113, "rue " * 256, "0" * 500 + "@" + "a." * 250, (realistic * 4)[:1024],
    ]  # fmt: skip
    for text in hostile:
        small, large = _best_of_3(text), _best_of_3(text * 2)
        assert large <= 6 * max(small, 1e-4), (text[:20], small, large)
