"""Chat analytics and CSV export for the merchant, from what retention has left.

Analytics read the aggregate counters (chat.store buckets: no ids), so a session that expired is gone
from them too. The export streams sessions newest first, one row each with its redacted transcript,
and neutralizes spreadsheet formulas (cells starting with =, +, -, @, tab or CR get a leading ').
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from chat.store import ChatStore

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
CSV_COLUMNS = ("session_id", "started_at", "last_activity_at", "duration_seconds", "messages", "language",
               "escalated", "resolved", "sentiment", "first_reply_ms", "orders", "intents", "transcript")


def analytics(store: ChatStore, shop: str, since: float, until: float) -> dict[str, Any]:
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    day_sentiment: dict[str, float] = defaultdict(float)
    totals: Counter[str] = Counter()
    sentiment_sum = 0.0
    for bucket, raw in store.stats(shop, since, until):
        if not since <= bucket < until:
            continue
        day = datetime.fromtimestamp(bucket, UTC).date().isoformat()
        for name, value in raw.items():
            if name == "sentiment_sum":
                sentiment_sum += float(value)
                day_sentiment[day] += float(value)
                continue
            amount = int(float(value))
            totals[name] += amount
            if name in ("sessions", "escalated", "resolved", "sentiment_n"):
                per_day[day][name] += amount
    sessions = totals["sessions"]
    intents = Counter({k.removeprefix("intent:"): v for k, v in totals.items() if k.startswith("intent:")})
    return {
        "from": _iso(since), "to": _iso(until),
        "sessions": sessions,
        "sessions_per_day": [{"date": day, "sessions": c["sessions"], "escalated": c["escalated"],
                              "resolved": c["resolved"]} for day, c in sorted(per_day.items())],
        "escalation_rate": _ratio(totals["escalated"], sessions),
        "resolution_rate": _ratio(totals["resolved"], sessions),
        "average_sentiment": round(sentiment_sum / totals["sentiment_n"], 3) if totals["sentiment_n"] else None,
        "top_intents": [{"intent": k, "count": v} for k, v in intents.most_common(8)],
        "median_first_reply_ms": _median(store.first_reply_times(shop, since, until)),
        "model_fallbacks": totals["model_fallback"],
        "blocked_replies": totals["blocked"],
        "daily": _daily(per_day, day_sentiment, since, until),
    }


def _daily(per_day: dict[str, Counter[str]], sentiment: dict[str, float], since: float,
           until: float) -> list[dict[str, Any]]:
    """Every UTC day of [since, until), days without sessions included (a chart needs its zeros)."""
    out = []
    day = datetime.fromtimestamp(since, UTC).date()
    last = datetime.fromtimestamp(until - 1, UTC).date()
    while day <= last:
        c = per_day.get(day.isoformat(), Counter())
        out.append({
            "date": day.isoformat(), "sessions": c["sessions"], "escalated": c["escalated"], "resolved": c["resolved"],
            "escalation_rate": _ratio(c["escalated"], c["sessions"]),
            "resolution_rate": _ratio(c["resolved"], c["sessions"]),
            "average_sentiment": round(sentiment[day.isoformat()] / c["sentiment_n"], 3) if c["sentiment_n"] else None,
        })
        day += timedelta(days=1)
    return out


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _median(values: list[int]) -> int | None:
    """The median of the sessions' first reply times (ms, rounded), from the values themselves: a histogram
    bucket's bound would say 250 ms for replies that all took 10."""
    return round(statistics.median(values)) if values else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        return "'" + text
    return text


EXPORT_BATCH = 100  # sessions whose transcripts are read in one round trip
EXPORT_CHUNK = 32 * 1024  # bytes of CSV per chunk written to the response


def export_rows(store: ChatStore, shop: str, since: float, until: float) -> Iterator[str]:
    """CSV text, a row at a time (the response streams it; nothing is built in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    batch: list[Any] = []

    def rows() -> Iterator[str]:
        for session, messages in zip(batch, store.transcripts(shop, [s.id for s in batch]), strict=True):
            public = session.public()
            transcript = "\n".join(f"{m.get('role')}: {m.get('text')}" for m in messages)
            row = [public["id"], public["started_at"], public["last_activity_at"], public["duration_seconds"],
                   public["messages"], public["language"], public["escalated"], public["resolved"],
                   public["sentiment"], public["first_reply_ms"], " ".join(public["orders"]),
                   " ".join(public["intents"]), transcript]
            writer.writerow([safe_cell(v) for v in row])
            if buffer.tell() >= EXPORT_CHUNK:
                yield flush()
        batch.clear()

    # Transcripts are read a batch of sessions at a time (one Redis round trip each), and the response is
    # written in chunks of about 32 KiB rather than a row at a time.
    for session in store.iter_sessions(shop, since, until):
        batch.append(session)
        if len(batch) >= EXPORT_BATCH:
            yield from rows()
    yield from rows()
    if buffer.tell():
        yield flush()
