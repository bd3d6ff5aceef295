"""chat.redaction: people's names introduced by a cue, and names the caller knows, become ``[name]``.

DESIGN.md: transcripts are stored "with personal data redacted", and only the conversation's messages reach
the model. A name is personal data; "my name is Jane Doe" must not be stored or sent. Property-based like
test_redaction.py: hypothesis builds cue + name messages in English, French, German and Spanish, hides them in
random text and checks the name never comes out; and sentences that only look like cues ("I'm looking for...",
"I am happy", "ich bin Kunde") come out unchanged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.redaction import NAME, PLACEHOLDERS, contains_pii, redact
from tests.chat.test_redaction import ANY_PII, BEFORE, FILLER, NOISE, plain_messages

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIRST = {
    "en": ["Jane", "John", "Emily", "Michael", "Sarah", "Olivia", "Liam"],
    "fr": ["Jeanne", "Pierre", "Élodie", "Marie-Claire", "Théo", "Camille"],
    "de": ["Anna", "Jürgen", "Lukas", "Sophie", "Matthias", "Greta"],
    "es": ["Ana", "José", "Lucía", "Javier", "Carmen", "Álvaro"],
}
LAST = {
    "en": ["Doe", "Smith", "O'Brien", "Johnson", "Taylor"],
    "fr": ["Dupont", "Lefèvre", "Martin", "Moreau", "Girard"],
    "de": ["Schmidt", "Müller", "Schneider", "Wagner", "Becker"],
    "es": ["García", "Fernández", "López", "Martínez", "Sánchez"],
}
# Cues before a name, per language; "{}" is the name.
CUES = {
    "en": ["my name is {}", "My name is {}", "MY NAME IS {}", "I'm {}", "I am {}", "Hi, I’m {}", "this is {}",
           "This is {}", "call me {}", "my name's {}"],
    "fr": ["je m'appelle {}", "Je m’appelle {}", "je suis {}", "Je suis {}", "c'est {}", "C'est {}",
           "mon nom est {}", "moi c'est {}"],
    "de": ["ich heiße {}", "Ich heiße {}", "ich heisse {}", "mein Name ist {}", "Mein Name ist {}", "ich bin {}",
           "Ich bin {}", "hier ist {}"],
    "es": ["me llamo {}", "Me llamo {}", "mi nombre es {}", "Mi nombre es {}", "soy {}", "Soy {}"],
}
SIGNOFFS = {
    "en": ["Thanks, {}", "Thank you, {}", "Cheers, {}", "Regards, {}", "Best regards,\n{}", "Thanks!\n{}"],
    "fr": ["Merci, {}", "Merci beaucoup, {}", "Cordialement, {}", "Merci !\n{}"],
    "de": ["Danke, {}", "Vielen Dank, {}", "Viele Grüße, {}", "LG, {}", "Danke schön!\n{}"],
    "es": ["Gracias, {}", "Muchas gracias, {}", "Saludos, {}", "Un saludo, {}"],
}
LANGUAGES = sorted(CUES)


@st.composite
def people(draw: st.DrawFn, language: str) -> str:
    first = draw(st.sampled_from(FIRST[language]))
    if draw(st.booleans()):
        return f"{first} {draw(st.sampled_from(LAST[language]))}"
    return first


@st.composite
def cue_messages(draw: st.DrawFn) -> tuple[str, str]:
    """(message, name): a cue and a name, with random text before and after."""
    language = draw(st.sampled_from(LANGUAGES))
    name = draw(people(language))
    value = draw(st.sampled_from(CUES[language])).format(name)
    head, tail = draw(FILLER), draw(FILLER)
    before = draw(BEFORE) if head else ""
    after = draw(st.sampled_from([" ", ".", ",", "!", "?", ";", "\n", ". ", " - "])) if tail else ""
    return head + before + value + after + tail, name


@st.composite
def signoff_messages(draw: st.DrawFn) -> tuple[str, str]:
    """(message, name): a sign-off ending the message, a line or a sentence."""
    language = draw(st.sampled_from(LANGUAGES))
    name = draw(people(language))
    value = draw(st.sampled_from(SIGNOFFS[language])).format(name)
    head, tail = draw(FILLER), draw(FILLER)
    before = draw(st.sampled_from([". ", "! ", "\n", "\n\n", "? "])) if head else ""
    after = draw(st.sampled_from(["\n", ".", "!", "\n\n"])) + tail if tail else draw(st.sampled_from(["", ".", "!"]))
    return head + before + value + after, name


def assert_name_gone(message: str, name: str) -> None:
    out = redact(message)
    assert name not in out, (message, out)
    assert name.split(" ")[-1] not in out, (message, out)  # nor the surname on its own
    assert NAME in out, (message, out)


# --- properties -------------------------------------------------------------------


@FAST
@given(cue_messages())
def test_names_after_a_cue_are_redacted(case: tuple[str, str]) -> None:
    assert_name_gone(*case)


@FAST
@given(signoff_messages())
def test_names_in_sign_offs_are_redacted(case: tuple[str, str]) -> None:
    assert_name_gone(*case)


@st.composite
def known_name_messages(draw: st.DrawFn) -> tuple[str, str, str]:
    """(message, full name, the form used): a known name written anywhere, without any cue."""
    language = draw(st.sampled_from(LANGUAGES))
    first, last = draw(st.sampled_from(FIRST[language])), draw(st.sampled_from(LAST[language]))
    full = f"{first} {last}"
    used = draw(st.sampled_from([full, first, last, full.lower(), full.upper(), f"{first}  {last}"]))
    head, tail = draw(FILLER), draw(FILLER)
    return f"{head}{' ' if head else ''}{used}{', ' if tail else ''}{tail}", full, used


@FAST
@given(known_name_messages())
def test_a_known_customer_name_is_redacted_wherever_it_appears(case: tuple[str, str, str]) -> None:
    message, full, used = case
    out = redact(message, names=[full])
    assert used not in out and NAME in out, (message, out)
    for part in full.split(" "):
        assert part.lower() not in out.lower().split(), (message, out)


# What follows a weak cue in ordinary sentences: lower-case words, common capitalised words.
NOT_NAMES = st.sampled_from([
    "looking for a gift", "happy with it", "Happy with it", "not sure", "Not sure", "Looking for boots",
    "Trying to pay", "a bit lost", "in Paris", "from Berlin", "French", "Sorry", "back", "Back again", "done",
    "OK", "the one who ordered", "Kunde seit Jahren", "Stammkundin", "neu hier", "auf Platz 2", "froh",
    "intéressée", "désolé", "en train de commander", "cliente", "de Madrid", "nueva aquí", "muy feliz",
])  # fmt: skip
WEAK_CUES = st.sampled_from(["I'm", "I am", "this is", "This is", "je suis", "c'est", "ich bin", "Ich bin", "soy"])


@FAST
@given(WEAK_CUES, NOT_NAMES, plain_messages())
def test_cues_followed_by_ordinary_words_are_kept(cue: str, rest: str, tail: str) -> None:
    message = f"{cue} {rest}. {tail.lower()}"
    assert redact(message) == message
    assert not contains_pii(message)


@FAST
@given(WEAK_CUES, st.text(alphabet="abcdefghijklmnopqrstuvwxyzéü", min_size=1, max_size=12))
def test_a_weak_cue_needs_a_capitalised_word(cue: str, word: str) -> None:
    message = f"Hello, {cue} {word} today"
    assert redact(message) == message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(cue_messages().map(lambda c: c[0]), signoff_messages().map(lambda c: c[0]), ANY_PII,
                          NOISE, FILLER), min_size=1, max_size=5).map(" ".join))
def test_redact_with_names_is_idempotent(message: str) -> None:
    once = redact(message)
    assert redact(once) == once
    known = redact(message, names=["Jane Doe"])
    assert redact(known, names=["Jane Doe"]) == known


# --- examples ---------------------------------------------------------------------


EXAMPLES = [
    # English
    ("Hi, my name is Jane Doe and my order #1001 is late", "Hi, my name is [name] and my order #1001 is late"),
    ("my name is jane doe", "my name is [name]"),
    ("I'm Jane, where is my parcel?", "I'm [name], where is my parcel?"),
    ("This is Michael O'Brien from Dublin.", "This is [name] from Dublin."),
    ("Where is order #1002? Thanks, Jane", "Where is order #1002? Thanks, [name]"),
    ("Cheers, Jane Doe", "Cheers, [name]"),
    # French
    ("Bonjour, je m'appelle Jeanne Dupont, ma commande #1003 ?", "Bonjour, je m'appelle [name], ma commande #1003 ?"),
    ("Je suis Élodie et j'attends mon colis", "Je suis [name] et j'attends mon colis"),
    ("c'est Pierre, merci", "c'est [name], merci"),
    ("Où est mon colis ? Merci, Jeanne", "Où est mon colis ? Merci, [name]"),
    # German
    ("Hallo, ich heiße Anna Schmidt, Bestellung 1004", "Hallo, ich heiße [name], Bestellung 1004"),
    ("Mein Name ist Jürgen Müller.", "Mein Name ist [name]."),
    ("Ich bin Lukas, wo ist mein Paket?", "Ich bin [name], wo ist mein Paket?"),
    ("Wo bleibt mein Paket? Danke, Anna", "Wo bleibt mein Paket? Danke, [name]"),
    # Spanish
    ("Hola, me llamo Ana García y mi pedido no llega", "Hola, me llamo [name] y mi pedido no llega"),
    ("Mi nombre es José Fernández.", "Mi nombre es [name]."),
    ("Soy Lucía, ¿dónde está mi pedido?", "Soy [name], ¿dónde está mi pedido?"),
    ("¿Dónde está mi pedido? Gracias, Carmen", "¿Dónde está mi pedido? Gracias, [name]"),
]  # fmt: skip

KEPT = [
    "I'm looking for running shoes in size 42",
    "I am happy with the jacket",
    "I am Happy with the jacket",
    "I'm not sure which size to take",
    "This is the second time I write",
    "Thanks, that helps!",
    "Thanks, Nike shoes are great",
    "Je suis intéressée par la robe",
    "C'est bon, merci",
    "Ich bin Kunde seit Jahren",
    "Ich bin auf Platz 2 gelandet",
    "Danke, das hilft",
    "Soy cliente nueva",
    "Gracias, muy amable",
    "Hi, I'm [email]",
]


def test_examples_in_four_languages() -> None:
    for message, expected in EXAMPLES:
        assert redact(message) == expected, message


def test_sentences_that_only_look_like_cues_are_kept() -> None:
    for message in KEPT:
        assert redact(message) == message, message


def test_the_order_customer_name_is_redacted_when_known() -> None:
    message = "Is the parcel for jane? Jane Doe is my mum, DOE on the bell"
    assert redact(message, names=["Jane Doe"]) == "Is the parcel for [name]? [name] is my mum, [name] on the bell"
    assert redact("Jane Doe", names=[]) == "Jane Doe"  # without a cue or a known name: a name cannot be told
    assert redact("order for Jo", names=["Jo", "", None]) == "order for [name]"  # type: ignore[list-item]


def test_names_and_other_personal_data_together() -> None:
    message = "Hi, I'm Jane Doe, jane@example.com, +33 6 12 34 56 78, 12 rue de la Paix. Merci, Jane"
    assert redact(message) == "Hi, I'm [name], [email], [phone], [address]. Merci, [name]"


def test_the_name_placeholder_is_stable() -> None:
    text = " ".join(PLACEHOLDERS)
    assert NAME in PLACEHOLDERS
    assert redact(f"my name is {NAME}, {text}") == f"my name is {NAME}, {text}"
