"""The chat session store against real Redis: one absolute expiry for everything a session leaves behind."""

from __future__ import annotations

import time

import redis

from chat.analytics import analytics, safe_cell
from chat.store import ChatStore, bucket_width
from core import keys

SHOP = "store-test.myshopify.com"


def test_every_session_key_carries_the_sessions_absolute_expiry(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    session, secret = store.create(SHOP, 3600, "en")
    assert store.append(session, {"role": "shopper", "text": "hi"}, set_fields={"last": "1"}, incr={"messages": 1})
    store.record_failure(session, "digest")
    time.sleep(1.1)  # a later write must not push the expiry out
    assert store.append(session, {"role": "assistant", "text": "hello"})
    assert redis_client.hget(keys.chat_session(SHOP, session.id), "vfail") == "1"
    for key in (keys.chat_session(SHOP, session.id), keys.chat_transcript(SHOP, session.id)):
        assert redis_client.expiretime(key) == session.expires_at, key
    for key in redis_client.scan_iter(match=f"lumi:chat:{SHOP}:*"):
        assert 0 < redis_client.expiretime(key) <= session.expires_at + (0 if "fail-order" not in key else 3600)
    assert store.authorized(SHOP, session.id, secret).id == session.id


def test_a_write_after_expiry_writes_nothing(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    session, _ = store.create(SHOP, 3600, "en")
    redis_client.delete(keys.chat_session(SHOP, session.id))  # as if it had expired
    assert store.append(session, {"role": "shopper", "text": "still there?"}, incr={"messages": 1}) is False
    assert not redis_client.exists(keys.chat_session(SHOP, session.id), keys.chat_transcript(SHOP, session.id))


def test_shared_buckets_expire_no_later_than_their_shortest_lived_session(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    now = time.time()
    long_lived, _ = store.create(SHOP, 90 * 86400, "en", now=now)
    short_lived, _ = store.create(SHOP, 7 * 86400, "en", now=now)  # the plan changed meanwhile
    width = bucket_width(90 * 86400)
    index = keys.chat_index(SHOP, int(now // width) * width)
    assert redis_client.expiretime(index) <= short_lived.expires_at
    assert redis_client.expiretime(keys.chat_buckets(SHOP)) >= redis_client.expiretime(index)
    assert long_lived.expires_at > short_lived.expires_at


def test_a_wrong_secret_and_an_unknown_session_look_the_same(redis_client: redis.Redis) -> None:
    from chat.store import SessionGone

    store = ChatStore(redis_client)
    session, secret = store.create(SHOP, 3600, "en")
    for sid, given in ((session.id, secret + "x"), ("nope", secret), (session.id, None), (session.id, "")):
        try:
            store.authorized(SHOP, sid, given)
        except SessionGone:
            continue
        raise AssertionError((sid, given))


def test_analytics_read_only_aggregates(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    now = time.time()
    for escalated, first_ms in ((True, 400), (False, 900), (False, 2500)):
        session, _ = store.create(SHOP, 3600, "en", now=now)
        bound = next(b for b in (250, 500, 1000, 2000, 3000) if first_ms <= b)
        store.count(session, **{"intent:order_status": 1, f"first_reply:{bound}": 1, "sentiment_n": 1,
                                "sentiment_sum": -0.5 if escalated else 0.25, "escalated": int(escalated)})
        store.record_first_reply(session, first_ms)
    result = analytics(store, SHOP, now - 86400, now + 3600)
    assert result["sessions"] == 3 and result["escalation_rate"] == round(1 / 3, 3)
    assert result["median_first_reply_ms"] == 900 and result["average_sentiment"] == 0.0
    stats_values = " ".join(str(redis_client.hgetall(k)) for k in redis_client.scan_iter(match="lumi:chat:*:stats:*"))
    assert "session" not in stats_values.replace("sessions", "")  # counters only: no ids


def test_csv_cells_are_neutralized_but_numbers_kept() -> None:
    assert safe_cell("=1+2") == "'=1+2"
    assert safe_cell("+33 6 12") == "'+33 6 12"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-cmd|' /C calc'!A0") == "'-cmd|' /C calc'!A0"
    assert safe_cell("-0.25") == "-0.25" and safe_cell("12") == "12" and safe_cell(None) == ""


def test_a_neutral_turn_after_a_fractional_sentiment_still_counts(redis_client: redis.Redis) -> None:
    store = ChatStore(redis_client)
    first, _ = store.create(SHOP, 3600, "en")
    store.count(first, sentiment_sum=-0.1027, sentiment_n=1)
    second, _ = store.create(SHOP, 3600, "en")
    store.count(second, sentiment_sum=0.0, sentiment_n=1)  # HINCRBY on a float field would fail here
    (_, raw), = store.stats(SHOP)
    assert float(raw["sentiment_sum"]) == -0.1027 and raw["sentiment_n"] == "2"


def test_the_csv_export_gives_every_session_its_own_transcript_across_batches(redis_client: redis.Redis) -> None:
    """Hundreds of sessions: each row carries that session's transcript, none is lost or shifted."""
    import csv
    import io

    from chat.analytics import export_rows

    store = ChatStore(redis_client)
    now = time.time()
    sessions = []
    for n in range(230):
        session, _ = store.create(SHOP, 3600, "en", now=now - n)
        store.append(session, {"role": "shopper", "text": f"question {n}"}, incr={"messages": 1})
        sessions.append(session.id)
    chunks = list(export_rows(store, SHOP, now - 3600, now + 1))
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    for row in rows:  # an id that starts with - or = is written formula-safe, behind a '
        row["session_id"] = row["session_id"].removeprefix("'")
    assert sorted(row["session_id"] for row in rows) == sorted(sessions)
    for row in rows:
        n = sessions.index(row["session_id"])
        assert row["transcript"] == f"shopper: question {n}", row
    assert len(chunks) < len(rows)  # written in chunks, not a row at a time
