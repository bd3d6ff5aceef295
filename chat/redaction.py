"""Redact personal data from shopper chat text before it is stored or sent to a model.

DESIGN.md promises that transcripts are stored "with personal data redacted" and
that no email, phone number or payment data is kept. `redact` is that gate: every
shopper message goes through it before it reaches Redis, a log line or the model
provider.

Placeholders: ``[email]``, ``[iban]``, ``[card]``, ``[phone]``, ``[address]``, ``[name]``.

Order of application (it matters: each step sees the output of the previous one):

1. emails    - they hold digits and dots that later steps would half-match
               (``jo.06.12.34@x.fr``), so they go first, whole.
2. IBANs     - long alphanumeric runs whose digit blocks would otherwise look like
               a card or a phone (and leave the country code and letters behind).
3. cards     - 13-19 digits passing Luhn, before phones so that a spaced card
               number is removed as ``[card]`` and never split into phone pieces.
4. phones    - formatted numbers (separators, ``+``/``00`` prefix, parentheses),
               then bare digits right after a cue word ("tel", "Handy", ...).
5. addresses - the numbers above are gone by then, so a house number can no
               longer be glued to a digit group of a phone or a card.
6. names     - after the loop of the other stages (they need digits or "@"; names do
               not): people's names introduced by a cue in English, French, German or
               Spanish ("my name is Jane Doe", "I'm Jane", "je m'appelle Jeanne",
               "ich heiße Anna", "me llamo Ana", sign-offs "Thanks, Jane"), and the
               names the caller knows (the order's customer name once Lumi has read
               it: ``redact(text, names=["Jane Doe"])``).

Deliberately NOT redacted (the app shows these itself and needs them to help):
order names ("#1001", "order 1001"), carrier tracking numbers (alphanumeric
"1Z...", bare 10-22 digit runs failing Luhn), prices, dates, quantities and
product names ("Size 42 shoes").

Speed: Python's regex engine costs roughly 30-60 ns per character per pattern, so
each stage is skipped unless a cheap C-level check says it can match ("@" present,
enough digits, a street-type keyword), and patterns start with a digit where they
can so the engine skips ahead quickly. Quantifiers are bounded or possessive: no
input makes a pattern backtrack catastrophically. A 2 KB message takes a fraction
of a millisecond.

This is a heuristic filter, not a proof: see the limitations in `redact`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

EMAIL = "[email]"
IBAN = "[iban]"
CARD = "[card]"
PHONE = "[phone]"
ADDRESS = "[address]"
NAME = "[name]"
PLACEHOLDERS = (EMAIL, IBAN, CARD, PHONE, ADDRESS, NAME)

# --- emails -----------------------------------------------------------------------

# Local part: no leading apostrophe (so "'a@b.co'" keeps its quotes); domain labels
# cannot contain dots, so the label repetition never backtracks ambiguously.
_EMAIL_RE = re.compile(r"(?<![\w.%+-])[\w.%+-][\w.%+'-]{0,63}+@(?:[\w-]{1,63}\.){1,8}[^\W\d_]{2,24}(?![\w-])")

# --- IBANs ------------------------------------------------------------------------

# IBAN lengths from the ISO 13616 registry. A candidate from a listed country must
# have exactly this length, which also tells where an IBAN ends when the shopper
# keeps typing after it ("DE89 3704 ... 00 danke"). Other countries: 15-34.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# Country code + 2 check digits + 11..30 alphanumerics with optional single spaces.
# The match starts at the first check digit (a digit-led pattern is scanned much
# faster); the two letters before it are checked by lookbehind and added back by
# `_redact_ibans`. The run may swallow words typed after the IBAN: `_iban_length`
# trims it back.
_IBAN_RE = re.compile(
    r"[0-9](?<=[A-Za-z]{2}[0-9])[0-9](?<![^\W_][A-Za-z]{2}[0-9]{2})(?:[ ]?[A-Za-z0-9]){11,30}(?![^\W_])"
)


def _iban_valid(compact: str) -> bool:
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is None:
        if not 15 <= len(compact) <= 34:
            return False
    elif len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_length(candidate: str) -> int:
    """Length of the longest prefix of `candidate` ending at a space (or its end)
    that is a valid IBAN; 0 if there is none."""
    for end in [len(candidate)] + [i for i in range(len(candidate) - 1, 3, -1) if candidate[i] == " "]:
        if _iban_valid(candidate[:end].replace(" ", "").upper()):
            return end
    return 0


def _redact_ibans(text: str) -> str:
    out: list[str] = []
    done = 0
    match = _IBAN_RE.search(text)
    while match:
        start = match.start() - 2
        length = _iban_length(text[start : match.end()])
        if length:
            out += (text[done:start], IBAN)
            done = start + length
            match = _IBAN_RE.search(text, done)
        else:
            # A failed candidate may have swallowed the start of a real IBAN
            # ("ref AB12 FR76 3000 ..."): look again just after its own start.
            match = _IBAN_RE.search(text, match.start() + 1)
    return "".join(out) + text[done:] if out else text


# --- payment cards ----------------------------------------------------------------

# Digit groups joined by single spaces/dashes, at least 13 digits in all (the
# lookahead keeps the Python callback away from ordinary numbers). Possessive
# quantifiers: linear time on any digit soup.
_CARD_RE = re.compile(r"\d(?<![\w+#]\d)(?=(?:[ -]?\d){12})\d*+(?:[ -]\d++){0,9}+")
_SEPARATOR_RE = re.compile(r"([ -])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_shaped(groups: list[str]) -> bool:
    """Printed card layouts: one block, or blocks of 3-6 digits (4-4-4-4, 4-6-5, ...)
    and a last block of 1-6. Rules out lists like "38 39 40 41 42 43 44" (sizes)
    and phone layouts with 2-digit groups. No issuer number starts with 0."""
    digits = "".join(groups)
    if not 13 <= len(digits) <= 19 or digits[0] == "0":
        return False
    return len(groups) == 1 or (all(3 <= len(g) <= 6 for g in groups[:-1]) and len(groups[-1]) <= 6)


def _card(match: re.Match[str]) -> str:
    text = match.group()
    end = match.end()
    if end < len(match.string) and (match.string[end].isalnum() or match.string[end] == "_"):
        return text  # glued to a word: a reference code, not a typed card number
    parts = _SEPARATOR_RE.split(text)  # groups at even indexes, separators at odd ones
    groups = parts[::2]
    n = len(groups)
    if n > 1 and max(map(len, groups)) < 3:
        return text  # no printed card layout has only 1-2 digit groups ("1 2 3 ...")
    # Longest card-shaped, Luhn-valid span of whole groups, so that a quantity before
    # it ("qty 2 4111 1111 1111 1111") or a CVV after it does not hide the card.
    for size in range(n, 0, -1):
        for i in range(n - size + 1):
            span = groups[i : i + size]
            if _card_shaped(span) and _luhn_ok("".join(span)):
                return "".join(parts[: 2 * i]) + CARD + "".join(parts[2 * (i + size) - 1 :])
    return text


# --- phones -----------------------------------------------------------------------

# Digit groups joined by a space, dot, dash, slash (German "030/1234567") or
# parentheses, optionally led by "+" or "(". The first character is matched before
# the context lookbehinds so the engine can skip quickly to candidates;
# `(?<!\d[ ./-].)` keeps a match from starting in the middle of a longer number run
# (the callback looks at sub-runs itself). The lookahead needs 7 more digits, each
# after at most 3 separator characters.
_PHONE_RE = re.compile(
    r"[\d+(](?<![\w+#].)(?<!\d[ ./-].)(?:(?<=\d)|(?=\d))"
    r"(?=(?:[ ./()-]{0,3}\d){7})\d{0,15}+"
    r"(?:(?:[ .-]?\(|\)[ .-]?|[ ./-])\d{1,15}+){0,8}+"
)
# A date at the start of a run ("2026-11-23 14 30", "23.11.2026 ...") is kept.
_DATE_PREFIX_RE = re.compile(r"(?:(?:19|20)\d\d[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:19|20)\d\d)(?!\d)")
# North American layouts: (415) 555-0132, 415.555.0132, 1-415-555-0132.
_NANP_RE = re.compile(r"(?:1[ .-]?)?\(?[2-9]\d\d\)?[ .-]?[2-9]\d\d[ .-]\d{4}")
# Mobiles without a trunk 0: Spanish 612 34 56 78 / 91 123 45 67 (9 digits, 6-9),
# Italian 333 123 4567.
_NO_TRUNK_RE = re.compile(r"[6-9]\d{1,2}(?:[ .-]\d{2,3}){2,3}|3\d\d[ .-]?\d{3}[ .-]?\d{3,4}")
_DIGIT_GROUP_RE = re.compile(r"\d+")
# Bare digits right after a cue word: "my phone is 0612345678", "Handy: 01701234567".
# Found from the number (a digit-led scan is fast), then the 48 characters before
# it are checked for the cue.
_BARE_NUMBER_RE = re.compile(r"\d(?<![\w+]\d)\d{7,14}+(?!\d)|\+(?<![\w+]\+)\d{8,15}+(?!\d)")
_PHONE_CUE_RE = re.compile(
    r"(?i:\b(?:phone|tel|mobile|cell|whatsapp|portable|t[ée]l[ée]phone|telefon(?:nummer)?|handy(?:nummer)?"
    r"|m[óo]vil|tel[ée]fono|celular)\b)"
    r"[^\w\n]{0,3}(?:(?i:number|num[ée]ro|nummer|n[uú]mero|no|nr|is|est|ist|es)\b[^\w\n]{0,3}){0,2}\Z"
)
_PHONE_CUE_WORDS = ("phone", "tel", "mobile", "cell", "whatsapp", "portable", "handy", "vil", "fono", "celular")


def _is_phone(text: str) -> bool:
    groups = _DIGIT_GROUP_RE.findall(text)
    digits = "".join(groups)
    if text.startswith("+"):
        return 8 <= len(digits) <= 15
    if text.startswith("00"):
        return 8 <= len(digits) - 2 <= 15
    if len(groups) < 2 or not 9 <= len(digits) <= 12:
        return False  # bare digit runs are order, tracking or reference numbers
    if len(groups) >= 3 and all(len(g) == 4 for g in groups):
        return False  # 4-4-4 blocks: how carriers print tracking numbers
    if "." in text and " " in text:
        return False  # "12.50 15.00": prices, not a phone
    if digits[0] == "0":
        # National trunk prefix: 06 12 34 56 78, 030 1234567, 020 7946 0958.
        return all(len(g) >= 2 for g in groups)
    return bool(_NANP_RE.fullmatch(text) or (len(digits) <= 10 and _NO_TRUNK_RE.fullmatch(text)))


def _phone(match: re.Match[str]) -> str:
    return _phone_text(match.group())


def _phone_text(text: str) -> str:
    date = _DATE_PREFIX_RE.match(text)
    if date:
        return date.group() + _PHONE_RE.sub(_phone, text[date.end() :])
    if _is_phone(text):
        return PHONE
    if text.startswith("(") and ")" not in text:
        return "(" + _phone_text(text[1:])  # an opening bracket of the sentence: "(06 12 34 56 78)"
    # Other numbers may sit next to a phone in one run: "order 1001 06 12 34 56 78",
    # "(415) 555-0132 2 pairs". Try the longest sub-run of space-separated pieces.
    pieces = text.split(" ")
    counts = [sum(ch.isdigit() for ch in piece) for piece in pieces]
    n = len(pieces)
    for size in range(n - 1, 0, -1):
        for i in range(n - size + 1):
            if 8 <= sum(counts[i : i + size]) <= 17 and _is_phone(" ".join(pieces[i : i + size])):
                return " ".join([*pieces[:i], PHONE, *pieces[i + size :]])
    return text


def _phone_cue(match: re.Match[str]) -> str:
    start = match.start()
    return PHONE if _PHONE_CUE_RE.search(match.string, max(0, start - 48), start) else match.group()


# --- street addresses -------------------------------------------------------------

_UP = "A-ZÀ-ÖØ-Þ"
_WORD = r"[^\W\d_][\w'’-]{0,30}+"
_CAPWORD = rf"[{_UP}][\w'’-]{{0,30}}+"
_SP = r"[ \t]{1,3}"
_POSTCODE = rf"(?:,?{_SP}\d{{5}}(?!\d)(?:{_SP}{_CAPWORD})?)?"
# House number as typed after a German or Spanish street name: 12, 12a, 12-14, 5 b.
_DE_NUMBER = r"\d{1,4}(?:[ ]?[a-zA-Z](?!\w))?(?:[ ]?[-/][ ]?\d{1,4}[a-zA-Z]?)?(?!\d)"
# Words that cannot be part of a street name: they are what makes "2 pairs on the
# Way" or "the plaza is 3 km away" ordinary sentences.
_STOP = (
    r"(?!(?i:the|a|an|of|on|in|at|to|by|for|from|with|and|or|my|your|our|their|his|her|its|it|this|that"
    r"|is|are|was|were|be|been|will|would|can|could|has|have|had|do|does|did|not|no|per|each|every"
    r"|days?|weeks?|months?|years?|hours?|minutes?|times?|items?|pieces?|pairs?)\b)"
)
_FR_ARTICLE = r"(?:(?i:(?:de|du|des|la|le|les)[ ]+|[ld]['’]))"
# English type words that are also everyday words ("way", "drive", "road", "place")
# count only when Capitalised or in capitals, and not when a capitalised word or a
# number follows: that is a product name ("2 Nike Court Vision", "1 Hard Drive 2TB").
# (A placeholder, which was a number, counts as one: `redact` stays idempotent.)
# The others count in any case.
_EN_TYPES_CASED = "|".join(
    f"{w}|{w.upper()}" for w in ("Road", "Lane", "Drive", "Way", "Court", "Place", "Terrace", "Close", "Crescent")
)
_EN_ABBREVIATIONS_CASED = "|".join(f"{w}|{w.upper()}" for w in ("Dr", "Ct", "Pl"))

# French, number first: "12 rue de la Paix", "5 bis, avenue Victor Hugo", "3 place Bellecour".
# "place", "route" and "cours" are English words too: they need an article or a
# capitalised name after them ("12 place mats" is not an address).
_FR_ADDRESS_RE = re.compile(
    r"\d(?<![\w#€$£.,/-]\d)\d{0,3}(?:[ ]?(?i:bis|ter)\b|[a-dA-D]\b)?,?" + _SP
    + r"(?:(?i:rue|avenue|av\.|boulevard|bd|chemin|all[ée]e|impasse|quai)" + _SP + _FR_ARTICLE + "{0,3}" + _WORD
    + r"|(?i:place|route|cours)" + _SP + "(?:" + _FR_ARTICLE + "{1,3}" + _WORD + "|" + _CAPWORD + "))"
    + rf"(?:[ ]{_CAPWORD}){{0,3}}" + _POSTCODE
)  # fmt: skip
_FR_KEYWORDS = ("rue", "av", "boulevard", "bd", "chemin", "all", "impasse", "quai", "place", "route", "cours")

# English, number first: "221B Baker Street", "1600 Pennsylvania Avenue NW", "12 Main St."
_EN_ADDRESS_RE = re.compile(
    r"\d(?<![\w#€$£.,/-]\d)\d{0,4}[A-Za-z]?(?:[-/]\d{1,4}[A-Za-z]?)?,?" + _SP
    + rf"(?:(?:\d{{1,3}}(?:st|nd|rd|th)|(?=[^\W\d_]){_STOP}{_WORD}\.?){_SP}){{1,3}}"
    + rf"(?:(?i:street|avenue|boulevard)\b|(?:{_EN_TYPES_CASED})\b(?![ \t]+(?:[A-Z][a-z]|\d|\[))"
    + rf"|(?:(?i:st|ave|blvd|rd|ln)|{_EN_ABBREVIATIONS_CASED})\b\.?)"
    + r"(?:[ ](?:N|S|E|W|NE|NW|SE|SW)\b)?"
)  # fmt: skip

# German: compounds "Hauptstraße 12", "Lindenweg 3a", "Hauptstr. 5, 10115 Berlin"
# (the word is taken whole, then a fixed-width lookbehind checks its ending, with
# at least two letters before the suffix so "Platz 2", a ranking, is no street),
# and separate words "Berliner Straße 5", "Am Weg 3".
_DE_ADDRESS_RE = re.compile(
    r"\b(?:[^\W\d_]{3,40}+(?i:(?<=[^\W\d_]{2}straße)|(?<=[^\W\d_]{2}strasse)|(?<=[^\W\d_]{2}str)"
    r"|(?<=[^\W\d_]{2}weg)|(?<=[^\W\d_]{2}allee)|(?<=[^\W\d_]{2}platz)|(?<=[^\W\d_]{2}gasse))\.?"
    rf"|{_CAPWORD}(?:[ ]{_CAPWORD})?[ ](?i:stra(?:ß|ss)e|str\.|weg|allee|platz|gasse))"
    r"[ \t]{0,3}" + _DE_NUMBER + _POSTCODE
)
_DE_KEYWORDS = ("straße", "strasse", "str.", "str ", "weg", "allee", "platz", "gasse")

# Spanish, number last: "Calle Mayor 3", "Avenida de la Constitución, 12", "c/ Alcalá 42",
# and Colombian numbered streets "Carrera 7 # 32-16".
_ES_ADDRESS_RE = re.compile(
    r"(?:\bc/[ ]?|\b(?i:calle|avenida|avda\.|avda|plaza|pza\.|paseo|camino|ronda|carrera)" + _SP + ")"
    + r"(?:(?:(?i:de|del|la|las|los|el)[ ]+){0,3}"
    + rf"{_STOP}{_WORD}(?:[ ]{_STOP}{_WORD}){{0,3}}?,?[ \t]{{0,3}}(?:(?i:n[º°o]\.?|núm\.?|#)[ ]?)?"
    + r"\d{1,4}[a-zA-Z]?\b"
    + r"|\d{1,3}[a-zA-Z]?[ ]?(?:#|(?i:n[º°o]\.?))[ ]?\d{1,3}[a-zA-Z]?[ ]?-[ ]?\d{1,3}\b)" + _POSTCODE
)  # fmt: skip
_ES_KEYWORDS = ("calle", "c/", "avenida", "avda", "plaza", "pza", "paseo", "camino", "ronda", "carrera")

# (pattern, keywords that must appear in the lower-cased text, or None: always run)
_ADDRESS_STAGES: tuple[tuple[re.Pattern[str], tuple[str, ...] | None], ...] = (
    (_FR_ADDRESS_RE, _FR_KEYWORDS),  # before English: "12 avenue des Ternes" is French
    (_EN_ADDRESS_RE, None),
    (_DE_ADDRESS_RE, _DE_KEYWORDS),
    (_ES_ADDRESS_RE, _ES_KEYWORDS),
)

# --- people's names ---------------------------------------------------------------

# A name is only recognised where a cue introduces it: a capitalised word alone cannot
# be told from a product, a brand or a place. Strong cues ("my name is", "je m'appelle",
# "ich heiße", "me llamo", ...) take the next 1-3 words in any case ("my name is jane
# doe"); weak cues ("I'm", "I am", "this is", "je suis", "c'est", "ich bin", "soy")
# take only Capitalised words that are not common words ("I'm looking", "I am Happy",
# "ich bin Kunde" stay); sign-offs ("Thanks, Jane", "Merci, Jeanne Dupont") take
# Capitalised words ending the message, a line or a sentence.
_NAME_TOKEN = r"[^\W\d_]++(?:['’-][^\W\d_]++)*+"
_STRONG_CUES = (
    r"my[ \t]+name[ \t]+is|my[ \t]+name['’]s|call[ \t]+me"
    r"|je[ \t]+m['’][ \t]?appelle|mon[ \t]+nom[ \t]+est|mon[ \t]+nom[ \t]+c['’]est|moi[ \t]+c['’]est"
    r"|ich[ \t]+hei(?:ß|ss)e|mein[ \t]+name[ \t]+ist"
    r"|me[ \t]+llamo|mi[ \t]+nombre[ \t]+es"
)
_WEAK_CUES = r"i[ \t]+am|i['’]m|this[ \t]+is|je[ \t]+suis|c['’]est|ich[ \t]+bin|hier[ \t]+ist|soy"
_NAME_CUE_RE = re.compile(
    rf"(?<![^\W_])(?:(?P<strong>(?i:{_STRONG_CUES}))|(?P<weak>(?i:{_WEAK_CUES})))"
    rf"(?P<sep>[ \t]*:?[ \t]+)(?P<words>{_NAME_TOKEN}(?:[ \t]{_NAME_TOKEN}){{0,2}})"
)
_SIGNOFFS = (
    r"thanks|thank[ \t]+you|many[ \t]+thanks|thx|cheers|regards|best[ \t]+regards|kind[ \t]+regards|best"
    r"|merci(?:[ \t]+beaucoup)?|cordialement|bien[ \t]+à[ \t]+vous|bonne[ \t]+journée"
    r"|danke(?:[ \t]+schön|[ \t]+sehr)?|vielen[ \t]+dank|viele[ \t]+grüße|liebe[ \t]+grüße|beste[ \t]+grüße"
    r"|mit[ \t]+freundlichen[ \t]+grüßen|lg|vg|mfg"
    r"|gracias|muchas[ \t]+gracias|saludos|un[ \t]+saludo|atentamente"
)
_SIGNOFF_RE = re.compile(
    rf"(?<![^\W_])(?i:{_SIGNOFFS})(?![^\W_])(?P<sep>[ \t]*(?:[,!.–—-][ \t]*\n?|\n)[ \t]*)"
    rf"(?P<words>{_NAME_TOKEN}(?:[ \t]{_NAME_TOKEN}){{0,2}})(?=[ \t]*(?:\Z|[\n.!?,;:)]))"
)
# Words a cue may be followed by that are not names (compared lower-cased). Kept short and
# about what shoppers write after "I'm"/"this is"/"ich bin"/... and sign-offs.
_COMMON_WORDS = frozenset("""
a an the and or but not no yes so very too also just still only really quite already again here there now then
today tomorrow yesterday soon back done ok okay sure sorry glad happy sad angry upset afraid confused lost new
old interested looking trying waiting wondering writing calling asking hoping going having getting using planning
from in at on to for with about of by into over under after before since as if when where what which who why how
this that these those it its my your our their his her me you we they he she him them us i
please hi hello hey thanks thank dear all everyone team support customer client guest member buyer shopper
still ready able unable not interested french german spanish english british american canadian italian dutch
swiss austrian belgian european mexican argentinian
je suis c est la le les un une des du de et ou mais pas très aussi encore déjà ici là bien bon bonne merci
nouveau nouvelle content contente désolé désolée client cliente intéressé intéressée vraiment toujours en train
ich bin ist der die das ein eine und oder aber nicht sehr auch noch schon hier da gut neu kunde kundin
stammkunde stammkundin neukunde neukundin student studentin mitglied mutter vater lehrer lehrerin anfänger
fan rentner deutscher deutsche schweizer österreicher froh traurig sauer leider dabei gerade mal
soy es el la los las un una y o pero no muy también todavía ya aquí allí bien nuevo nueva cliente clienta
contento contenta feliz triste de del en con estudiante miembro madre padre español española
lumi size order shipping delivery product products shoe shoes shirt price sale
""".split())  # fmt: skip


def _common(word: str) -> bool:
    lower = word.lower().strip("'’-")
    return lower in _COMMON_WORDS or len(lower) < 2


def _cue_taken(match: re.Match[str]) -> int:
    """How many of the words after a cue are a name (0: none)."""
    strong = match.group("strong") is not None
    taken = 0
    for word in match.group("words").split():
        if _common(word):
            break
        if not strong and (not word[0].isupper() or word.lower().endswith("ing")):
            break
        taken += 1
    return taken


def _signoff_taken(match: re.Match[str]) -> int:
    words = match.group("words").split()
    return 0 if any(_common(word) or not word[0].isupper() for word in words) else len(words)


def _replace_names(pattern: re.Pattern[str], count: Callable[[re.Match[str]], int], text: str) -> str:
    """Replace the first `count(match)` words of each match's "words" group with NAME. The search goes on from
    the end of what was replaced (or from the first word when nothing was), not from the match's end: words a
    match looked at but did not take may hold the next cue ("ich heiße Anna ich heiße Anna")."""
    out: list[str] = []
    done = 0
    match = pattern.search(text)
    while match:
        taken = count(match)
        if taken:
            end = match.start("words")
            for word in match.group("words").split()[:taken]:
                end = text.index(word, end) + len(word)
            out += (text[done : match.start("words")], NAME)
            done = end
            match = pattern.search(text, end)
        else:
            match = pattern.search(text, match.start("words"))
    return "".join(out) + text[done:] if out else text


def _known_names_re(names: Iterable[str]) -> re.Pattern[str] | None:
    """Whole names first, then their parts (first name, surname) that are not common words."""
    variants: set[str] = set()
    for name in names:
        full = " ".join(str(name or "").split())
        if len(full) < 2:
            continue
        variants.add(full)
        variants.update(part for part in full.split(" ") if not _common(part))
    if not variants:
        return None
    alternatives = "|".join(re.escape(v).replace(r"\ ", r"\s+") for v in sorted(variants, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?i:{alternatives})(?![^\W_])")


def _redact_names(text: str, names: Iterable[str] = ()) -> str:
    known = _known_names_re(names)
    if known is not None:
        text = known.sub(NAME, text)
    text = _replace_names(_NAME_CUE_RE, _cue_taken, text)
    return _replace_names(_SIGNOFF_RE, _signoff_taken, text)


# --- public API -------------------------------------------------------------------

_ASCII_DIGITS = "0123456789"
_ANY_DIGIT_RE = re.compile(r"\d")
# A placeholder glued to a word or within 3 characters of a digit: only there can a
# pass change what a pattern sees next time (a run cut short, a lookbehind now free).
_NEAR_PLACEHOLDER_RE = re.compile(r"\](?=\w|\W{1,3}\d)|\[(?:(?<=\w\[)|(?<=\d\W\[)|(?<=\d\W\W\[)|(?<=\d\W\W\W\[))")


def _digit_count(text: str) -> int:
    if text.isascii():
        return sum(map(text.count, _ASCII_DIGITS))  # C-speed, ~50x faster than a regex scan
    return len(_ANY_DIGIT_RE.findall(text))


def _redact_once(text: str) -> str:
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
    digits = _digit_count(text)
    if digits == 0:
        return text  # every later stage needs a digit
    if digits >= 2:  # an IBAN's check digits ("CH37 0000 0AAA AAAA ...")
        text = _redact_ibans(text)
    if digits >= 8:  # the shortest phone; cards have more
        text = _CARD_RE.sub(_card, text)
        text = _PHONE_RE.sub(_phone, text)
        lower = text.lower()
        if any(word in lower for word in _PHONE_CUE_WORDS):
            text = _BARE_NUMBER_RE.sub(_phone_cue, text)
    lower = text.lower()
    for pattern, keywords in _ADDRESS_STAGES:
        if keywords is None or any(word in lower for word in keywords):
            text = pattern.sub(ADDRESS, text)
    return text


def redact(text: str, names: Iterable[str] = ()) -> str:
    """Replace emails, IBANs, card numbers, phone numbers, street addresses and
    people's names in `text` with placeholders (see the module docstring for the
    order and why). `names`: names known to belong to the shopper (the order's
    customer name when Lumi has read it), redacted wherever they appear.

    Idempotent: ``redact(redact(x)) == redact(x)``. A placeholder can free its
    neighbour for a pattern (a number run cut at its 9th group is matched again
    once its head is ``[phone]``), so another pass runs while the text changes and
    a placeholder touches a word or a nearby digit, or an "@" is left. Each pass
    that changes the text removes at least one digit or "@", so this ends.

    Known limitations (heuristics, not guarantees):
    - bare digit runs without "+" or a cue word ("0612345678") are kept: they
      cannot be told from tracking and reference numbers; so are 7-digit local
      numbers ("555-0132") and numbers written in words;
    - card numbers failing Luhn (typos) are kept unless they look like a phone,
      and a spaced long reference number can hold a Luhn-valid 13-19 digit window
      by chance, which is then redacted as ``[card]``;
    - addresses need a house number and a street-type word; lower-case "12 main
      road", "12 Abbey Road London" (ambiguous type word, see `_EN_TYPES_CASED`)
      and addresses without a type word ("Unter den Linden 5") are missed;
    - obfuscated emails ("jo at gmail dot com") are not handled;
    - names are found only after a cue or when passed in `names`: "Jane here",
      "greetings from Jane", a lower-case name after a weak cue ("i'm jane") and
      names that are common words ("I'm Grace", "c'est Rose") are kept; a brand
      after a weak cue ("this is Nike") is taken for a name.
    """
    redacted = _redact_once(text)
    while redacted != text and ("@" in redacted or _NEAR_PLACEHOLDER_RE.search(redacted)):
        text, redacted = redacted, _redact_once(redacted)
    return _redact_names(redacted, names)


def contains_pii(text: str, names: Iterable[str] = ()) -> bool:
    """True if `redact` would change `text` (for assertions and logging decisions)."""
    return redact(text, names) != text
