"""Session sentiment from the shopper's messages, computed locally with VADER.

The chat escalates to the merchant when `score` of a session drops below
`NEGATIVE_THRESHOLD`. Nothing leaves the process: VADER is a lexicon and rules,
no model call.

VADER only knows English. A small French/German/Spanish lexicon is added to the
analyser's own word list so that "c'est une arnaque", "das ist Betrug" or "estoy
muy enfadado" are not scored as neutral. This is a heuristic, deliberately small:
single words only, valences on VADER's -4..+4 scale chosen to match their closest
English entries ("arnaque" ~ "scam" -2.7, "parfait" ~ "perfect" 2.7), and the
negators "pas", "nicht", "kein...", "jamais", "nie", "nunca" read as "not" so
"pas content" flips. It does not handle grammar, idioms or sarcasm in any
language, and a few English words mean something else elsewhere (French "pain"
is bread, scored as pain).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# The chat escalates a session whose score falls below this.
NEGATIVE_THRESHOLD = -0.5

# How fast older messages fade: a message HALF_LIFE messages before the latest one
# counts half as much. The latest messages say how the shopper feels now (angry at
# first, happy once helped = not an escalation).
HALF_LIFE = 2.0

# Words VADER does not know (bar "perfecto", "perfecta", "lamentable", where these
# values replace its English slang ones), with valences comparable to its English
# lexicon. English homographs with another sentiment are left out ("content",
# "fatal", "mist"); "gut" and "toll" stay: very common in German, rare in English
# shop chat.
FOREIGN_LEXICON: dict[str, float] = {
    # French
    "nul": -2.0, "nulle": -2.0, "arnaque": -2.7, "arnaqué": -2.7, "arnaquée": -2.7, "escroc": -2.8,
    "escroquerie": -2.8, "fraude": -2.8, "énervé": -2.0, "énervée": -2.0, "enerve": -2.0,
    "furieux": -2.7, "furieuse": -2.7, "déçu": -1.9, "déçue": -1.9, "decu": -1.9, "inadmissible": -2.5,
    "inacceptable": -2.3, "scandaleux": -2.6, "honteux": -2.2, "lamentable": -2.3, "mauvais": -2.0,
    "mauvaise": -2.0, "pire": -2.4, "colère": -2.3, "marre": -1.8, "cassé": -1.5, "cassée": -1.5,
    "merci": 1.5, "parfait": 2.7, "parfaite": 2.7, "génial": 2.8, "géniale": 2.8, "satisfait": 2.0,
    "satisfaite": 2.0, "ravi": 2.4, "ravie": 2.4, "bien": 1.2, "formidable": 2.6,
    # German
    "schlecht": -2.0, "schlechte": -2.0, "schlechter": -2.0, "schlechtes": -2.0, "betrug": -2.8,
    "betrüger": -2.8, "wütend": -2.5, "wuetend": -2.5, "sauer": -1.8, "enttäuscht": -1.9,
    "enttaeuscht": -1.9, "ärgerlich": -1.8, "verärgert": -2.0, "unverschämt": -2.5, "frechheit": -2.4,
    "katastrophe": -2.3, "katastrophal": -2.5, "schrecklich": -2.5, "furchtbar": -2.5, "kaputt": -1.5,
    "scheiße": -2.5, "scheisse": -2.5,
    "danke": 1.5, "dankeschön": 1.9, "toll": 2.3, "perfekt": 2.7, "zufrieden": 1.9, "prima": 2.0,
    "klasse": 2.0, "gut": 1.6, "wunderbar": 2.7, "hervorragend": 2.8, "freundlich": 1.7,
    # Spanish
    "estafa": -2.8, "estafador": -2.8, "estafadores": -2.8, "timo": -2.5, "enfadado": -2.0,
    "enfadada": -2.0, "enojado": -2.0, "enojada": -2.0, "furioso": -2.7, "furiosa": -2.7,
    "pésimo": -2.8, "pesimo": -2.8, "pésima": -2.8, "malo": -2.0, "mala": -2.0, "decepcionado": -1.9,
    "decepcionada": -1.9, "vergüenza": -2.0, "inaceptable": -2.3, "harto": -1.8, "harta": -1.8,
    "roto": -1.2, "rota": -1.2,
    "gracias": 1.5, "perfecto": 2.7, "perfecta": 2.7, "excelente": 2.8, "contento": 1.9,
    "contenta": 1.9, "encantado": 2.3, "encantada": 2.3, "bueno": 1.5, "buena": 1.5, "maravilloso": 2.8,
}  # fmt: skip

# Foreign negators read as "not", so VADER's own negation rules apply to the next
# three words ("je ne suis pas satisfait", "nicht zufrieden", "nunca más bueno").
# Spanish "no" is already handled by VADER.
_NEGATORS_RE = re.compile(r"(?i)\b(?:pas|jamais|nicht|kein|keine|keinen|keinem|keiner|nie|niemals|nunca|jamás)\b")
# French elision: "l'arnaque", "c'est", "j'en ai marre" -> the word after the apostrophe.
_ELISION_RE = re.compile(r"(?i)\b(?:[cdjlmnst]|qu)['’](?=\w)")

_analyzer: SentimentIntensityAnalyzer | None = None
_analyzer_lock = threading.Lock()


def _get_analyzer() -> SentimentIntensityAnalyzer:
    """The shared analyser, built on first use (loading the lexicon takes ~0.1 s).
    polarity_scores only reads the lexicon, so one instance serves all threads."""
    global _analyzer
    analyzer = _analyzer
    if analyzer is None:
        with _analyzer_lock:  # gunicorn threads: build it once
            analyzer = _analyzer
            if analyzer is None:
                analyzer = SentimentIntensityAnalyzer()
                analyzer.lexicon.update(FOREIGN_LEXICON)  # this instance's own dict
                _analyzer = analyzer
    return analyzer


def _prepare(text: str) -> str:
    return _NEGATORS_RE.sub("not", _ELISION_RE.sub("", text))


def message_score(text: str) -> float:
    """VADER compound score of one message, in [-1, 1] (0 for no sentiment words)."""
    if not text or not text.strip():
        return 0.0
    return float(_get_analyzer().polarity_scores(_prepare(text))["compound"])


def score(texts: Sequence[str]) -> float:
    """Sentiment of a session from the shopper's messages (oldest first), in [-1, 1].

    Weighted mean of the per-message compound scores; message i of n weighs
    ``0.5 ** ((n - 1 - i) / HALF_LIFE)``: the latest counts 1, the one two
    messages earlier 0.5, four earlier 0.25. Messages without any sentiment word
    (compound exactly 0: "#1001", "where is my parcel?") are left out so that
    order numbers do not dilute a clearly angry shopper; if none carry sentiment
    the session scores 0.
    """
    if isinstance(texts, str):
        raise TypeError("score() takes a sequence of messages, not one string")
    n = len(texts)
    total = weights = 0.0
    for i, text in enumerate(texts):
        value = message_score(text)
        if value == 0.0:
            continue
        weight = 0.5 ** ((n - 1 - i) / HALF_LIFE)
        total += weight * value
        weights += weight
    if not weights:
        return 0.0
    return max(-1.0, min(1.0, total / weights))
