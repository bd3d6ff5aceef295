"""chat.sentiment: VADER session scores, the foreign-word heuristic, recency weighting."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import sentiment
from chat.sentiment import HALF_LIFE, NEGATIVE_THRESHOLD, message_score, score

NEGATIVE_EN = [
    "This is a scam, I am furious!!!",
    "Terrible service, the worst shop ever. I hate this.",
    "Still nothing arrived, this is awful and I'm really angry",
]
POSITIVE_EN = [
    "Thank you so much, perfect!",
    "Great, the shoes are lovely, thanks a lot :)",
    "Excellent help, I'm very happy",
]
NEUTRAL = ["Where is my order #1001?", "I ordered on 2026-11-23.", "I need size 42", "", "   "]
NEGATIVE_FOREIGN = [
    "C'est nul, une vraie arnaque, je suis énervé",
    "Je ne suis pas satisfait",
    "J'en ai marre, c'est inadmissible",
    "Das ist Betrug, ich bin wütend",
    "Die Lieferung ist schlecht und ich bin enttäuscht",
    "Das ist nicht gut",
    "Es una estafa, estoy enfadado",
    "Servicio terrible, muy malo",
    "No estoy contento",
]
POSITIVE_FOREIGN = ["Merci, parfait !", "Danke, super!", "Gracias, perfecto", "Alles prima, ich bin zufrieden"]


def test_threshold() -> None:
    assert NEGATIVE_THRESHOLD == -0.5


@pytest.mark.parametrize("text", NEGATIVE_EN)
def test_clearly_negative_english_escalates(text: str) -> None:
    assert message_score(text) < NEGATIVE_THRESHOLD
    assert score([text]) < NEGATIVE_THRESHOLD


@pytest.mark.parametrize("text", POSITIVE_EN)
def test_clearly_positive_english(text: str) -> None:
    assert message_score(text) > 0.5


@pytest.mark.parametrize("text", NEUTRAL)
def test_neutral(text: str) -> None:
    assert message_score(text) == 0.0
    assert score([text]) == 0.0


@pytest.mark.parametrize("text", NEGATIVE_FOREIGN)
def test_french_german_spanish_negative_below_zero(text: str) -> None:
    assert message_score(text) < 0


@pytest.mark.parametrize("text", POSITIVE_FOREIGN)
def test_french_german_spanish_positive_above_zero(text: str) -> None:
    assert message_score(text) > 0


def test_foreign_scam_words_are_as_strong_as_english() -> None:
    assert message_score("C'est une arnaque") == pytest.approx(message_score("It is a scam"), abs=0.05)
    assert score(["Das ist Betrug!!"]) < NEGATIVE_THRESHOLD


def test_recent_messages_weigh_more() -> None:
    angry, happy = "This is a scam, I am furious!!!", "Thank you so much, perfect!"
    assert score([angry, happy]) > 0  # calmed down
    assert score([happy, angry]) < 0  # turned sour
    assert score([happy, happy, happy, angry]) < score([angry, happy, happy, happy])


def test_weighting_formula() -> None:
    texts = ["Terrible service", "Thanks, great", "I hate this", "ok, good"]
    values = [message_score(t) for t in texts]
    weights = [0.5 ** ((len(texts) - 1 - i) / HALF_LIFE) for i in range(len(texts))]
    expected = sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)
    assert score(texts) == pytest.approx(expected)
    assert weights[-1] == 1.0 and weights[-1 - int(HALF_LIFE)] == pytest.approx(0.5)


def test_messages_without_sentiment_do_not_dilute() -> None:
    angry = "This is a scam, I am furious!!!"
    assert score([angry, "#1001", "Where is my parcel?"]) == pytest.approx(message_score(angry))
    assert score(["#1001", "2026-11-23"]) == 0.0
    assert score([]) == 0.0


def test_rejects_a_single_string() -> None:
    with pytest.raises(TypeError):
        score("This is a scam")  # type: ignore[arg-type]  # would otherwise score characters


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=80) | st.sampled_from(NEGATIVE_EN + POSITIVE_EN + NEGATIVE_FOREIGN), max_size=8))
def test_range(texts: list[str]) -> None:
    assert -1.0 <= score(texts) <= 1.0
    for text in texts:
        assert -1.0 <= message_score(text) <= 1.0


def test_analyzer_is_built_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    class SlowAnalyzer(sentiment.SentimentIntensityAnalyzer):
        def __init__(self) -> None:
            built.append(self)
            time.sleep(0.05)  # widen the race window
            super().__init__()

    monkeypatch.setattr(sentiment, "SentimentIntensityAnalyzer", SlowAnalyzer)
    monkeypatch.setattr(sentiment, "_analyzer", None)
    results: list[float] = []
    threads = [threading.Thread(target=lambda: results.append(message_score("c'est une arnaque"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len(set(results)) == 1 and results[0] < 0
