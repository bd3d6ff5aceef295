"""Chat sessions in Redis, with retention by design: the one module that reads and writes chat keys.

A session is a metadata hash and a transcript list, both given one absolute expiry at creation
(start + the plan's retention) and re-given that same expiry on every write, inside a Lua script
that refuses to write once the session is gone, so nothing can bring it back. The merchant's history
needs an index and analytics need counters; both are grouped by start time into buckets whose keys
expire at bucket start + retention, i.e. never after a session they mention. Counters are
aggregates: no session id, order reference or text.

Compliance (customers/redact, customers/data_request) finds sessions through a second index: every session that
touched a customer (a logged-in shopper) or an order (verified, or looked up for a logged-in shopper by the rules
or a model tool) is listed under a keyed digest of that id (`subject_digest`, never the id itself), in a set that
expires exactly with the session (keys.chat_subject_sessions). The index is written before the reference it
covers, so no stored transcript or order reference is ever unfindable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from core import keys
from core.crypto import DecryptionError, SecretBox
from core.purge import DataStore, register
from core.services import CoreServices

# First-reply times are counted in these buckets (upper bounds, ms) so a median can be read from aggregates.
FIRST_REPLY_BOUNDS_MS = (250, 500, 1000, 2000, 3000, 5000, 8000, 13000, 21000, 34000, 60000)
TRANSCRIPT_LIMIT = 400  # messages kept per session (a runaway client cannot grow a key without bound)
MAX_SESSION_ORDERS = 10  # order references a session keeps (verified, or looked up for its logged-in customer)
TURN_STALE_S = 120  # a turn still marked running after this long died with its process: its client_id may retry

# Writes to a live session only: KEYS = meta, transcript; ARGV = expiry, entry or "", n, n field/value
# pairs to set, then field/increment pairs. Returns 0 (and writes nothing) when the session has expired.
_WRITE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
end
local n = tonumber(ARGV[3])
local i = 5
for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
while i <= #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('EXPIREAT', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIREAT', KEYS[2], ARGV[1]) end
return 1
"""


# A failed verification, counted in the session's own hash: KEYS = meta; ARGV = expiry, now, window.
_FAIL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = tonumber(ARGV[2])
local until_ = tonumber(redis.call('HGET', KEYS[1], 'vfail_until') or '0')
if until_ < now then
  redis.call('HSET', KEYS[1], 'vfail', 0, 'vfail_until', tostring(now + tonumber(ARGV[3])))
end
local n = redis.call('HINCRBY', KEYS[1], 'vfail', 1)
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return n
"""

# Lists a live session under subject digests: KEYS = meta, then per digest its expiry-time zset and its session set
# for this session's expiry; ARGV = expiry, session id, now, then the digests in KEYS order. The session set expires
# with the session; the zset (times only) with the latest session it lists. The digests are kept in the session's
# hash (`subjects`) so deleting the session can take it out of every set. Returns 0 when the session has expired.
_INDEX = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local known = redis.call('HGET', KEYS[1], 'subjects') or ''
for i = 1, #ARGV - 3 do
  local digest, times, members = ARGV[3 + i], KEYS[2 * i], KEYS[2 * i + 1]
  redis.call('SADD', members, ARGV[2])
  redis.call('EXPIREAT', members, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', times, '-inf', '(' .. ARGV[3])
  redis.call('ZADD', times, ARGV[1], ARGV[1])
  redis.call('EXPIREAT', times, ARGV[1], 'NX')
  redis.call('EXPIREAT', times, ARGV[1], 'GT')
  if not string.find(',' .. known .. ',', ',' .. digest .. ',', 1, true) then
    known = known == '' and digest or known .. ',' .. digest
  end
end
redis.call('HSET', KEYS[1], 'subjects', known)
return 1
"""

# Deletes a session with its compliance entries: KEYS = meta, transcript, then per digest (zset, session set);
# ARGV = session id, expiry, the `subjects` the caller read. Returns -1 (nothing deleted) if `subjects` changed
# meanwhile (the caller reads again and retries).
_FORGET = """
if (redis.call('HGET', KEYS[1], 'subjects') or '') ~= ARGV[3] then return -1 end
redis.call('DEL', KEYS[1], KEYS[2])
for i = 3, #KEYS, 2 do
  redis.call('SREM', KEYS[i + 1], ARGV[1])
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('ZREM', KEYS[i], ARGV[2]) end
end
return 1
"""

# Claims a turn for a client_id (idempotent retries): KEYS = meta; ARGV = client_id, now, stale seconds.
# Returns {"claimed"}, {"running"} or {"done", stored reply JSON}; {"gone"} when the session has expired.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local f = redis.call('HMGET', KEYS[1], 'turn_client', 'turn_state', 'turn_started', 'turn_reply')
if f[1] == ARGV[1] then
  if f[2] == 'done' then return {'done', f[4] or ''} end
  if f[2] == 'running' and tonumber(f[3] or '0') + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return {'running'} end
end
redis.call('HSET', KEYS[1], 'turn_client', ARGV[1], 'turn_state', 'running', 'turn_started', ARGV[2])
redis.call('HDEL', KEYS[1], 'turn_reply')
return {'claimed'}
"""

# Ends a claimed turn: KEYS = meta; ARGV = client_id, reply JSON ('' releases the claim: the turn failed).
_SETTLE = """
if redis.call('HGET', KEYS[1], 'turn_client') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'turn_client', 'turn_state', 'turn_started', 'turn_reply')
else
  redis.call('HSET', KEYS[1], 'turn_state', 'done', 'turn_reply', ARGV[2])
end
return 1
"""

# Escalates a session once, clearing a resolution it may have had (a session is never both):
# KEYS = meta. Returns {escalated now (0/1), was resolved (0/1)}.
_ESCALATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
if redis.call('HGET', KEYS[1], 'escalated') == '1' then return {0, 0} end
local was = redis.call('HGET', KEYS[1], 'resolved') == '1' and 1 or 0
redis.call('HSET', KEYS[1], 'escalated', 1, 'resolved', 0)
return {1, was}
"""


def bucket_width(retention_s: int) -> int:
    """History and analytics buckets: an hour for day-scale retention, finer for very short ones."""
    return max(1, min(keys.CHAT_MAX_BUCKET, retention_s // 24))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


SUBJECT_KINDS = ("customer", "order")


def subject_digest(app_secret: str, shop: str, kind: str, raw_id: str | int) -> str:
    """The keyed digest (HMAC-SHA256 with the app secret, like chat.orders.order_digest) under which the compliance
    index names a customer or an order: `raw_id` is a numeric id or an Admin API gid (gid://shopify/Order/123)."""
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"unknown subject kind {kind!r}")
    value = str(raw_id).strip().rsplit("/", 1)[-1]
    return hmac.new(app_secret.encode(), f"{shop}|{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass
class Session:
    id: str
    shop: str
    started: float
    expires_at: int
    last: float
    messages: int
    replies: int
    language: str
    escalated: bool
    resolved: bool
    sentiment: float | None
    first_reply_ms: int | None
    orders: list[dict[str, str]] = field(default_factory=list)  # [{"id": gid, "name": "#1001"}]
    intents: list[str] = field(default_factory=list)
    secret_digest: str = ""
    country: str | None = None  # the shopper's country given at creation (product card prices)
    sealed_customer: str | None = None  # the signed creation's logged_in_customer_id, encrypted (ChatStore.customer)

    @property
    def duration_s(self) -> int:
        return int(self.last - self.started)

    def public(self) -> dict[str, Any]:
        """What the merchant API and the export show."""
        return {
            "id": self.id,
            "started_at": _iso(self.started),
            "last_activity_at": _iso(self.last),
            "expires_at": _iso(self.expires_at),
            "duration_seconds": self.duration_s,
            "messages": self.messages,
            "language": self.language,
            "escalated": self.escalated,
            "resolved": self.resolved,
            "sentiment": None if self.sentiment is None else round(self.sentiment, 3),
            "first_reply_ms": self.first_reply_ms,
            "orders": [o["name"] for o in self.orders],
            "intents": self.intents,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SessionGone(LookupError):
    """The session does not exist (never did, or expired: the same to everyone)."""


class ChatStore:
    def __init__(self, client: redis.Redis, box: SecretBox | None = None, app_secret: str | None = None) -> None:
        self.redis = client
        self.box = box  # seals a logged-in customer's id in the session (None: sessions keep no customer)
        self.app_secret = app_secret  # keys the compliance index's digests (None: no index is written)
        self._write = client.register_script(_WRITE)
        self._fail = client.register_script(_FAIL)
        self._claim = client.register_script(_CLAIM)
        self._settle = client.register_script(_SETTLE)
        self._escalate = client.register_script(_ESCALATE)
        self._index = client.register_script(_INDEX)
        self._forget = client.register_script(_FORGET)

    # --- sessions -----------------------------------------------------------------------------------

    def create(self, shop: str, retention_s: int, language: str, now: float | None = None,
               country: str | None = None, customer_id: str | None = None) -> tuple[Session, str]:
        """A new session and its secret (returned once; only its digest is kept). `customer_id`, the signed
        request's logged-in customer, is kept encrypted and bound to this session: later requests that are not
        signed by Shopify (the direct stream) take it from here, never from themselves."""
        now = time.time() if now is None else now
        sid, secret = secrets.token_urlsafe(18), secrets.token_urlsafe(32)
        extra = []
        if country:
            extra.append(("country", country))
        sealed = None
        if customer_id is not None and self.box is not None:
            sealed = self.box.encrypt(f"{shop}|{sid}|{customer_id}")
            extra.append(("customer", sealed))
        expires_at = int(math.ceil(now + retention_s))
        width = bucket_width(retention_s)
        bucket = int(now // width) * width
        shared_expiry = bucket + retention_s  # <= expires_at of every session in the bucket
        meta = keys.chat_session(shop, sid)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(meta, mapping={
                "started": repr(now), "last": repr(now), "expires_at": expires_at, "messages": 0, "replies": 0,
                "language": language, "escalated": 0, "resolved": 0, "secret": _digest(secret), "orders": "[]",
                "intents": "[]",
            })
            for name, value in extra:
                pipe.hset(meta, name, value)
            pipe.expireat(meta, expires_at)
            index, stats = keys.chat_index(shop, bucket), keys.chat_stats(shop, bucket)
            buckets = keys.chat_buckets(shop)
            pipe.zadd(index, {sid: int(now * 1000)})
            pipe.expireat(index, shared_expiry, lt=True)
            pipe.hincrby(stats, "sessions", 1)
            pipe.expireat(stats, shared_expiry, lt=True)
            pipe.zadd(buckets, {str(bucket): shared_expiry})
            pipe.expireat(buckets, shared_expiry, nx=True)
            pipe.expireat(buckets, shared_expiry, gt=True)
            if customer_id is not None:  # in the same transaction: a logged-in session is never unindexed
                self._index_in(pipe, shop, sid, expires_at, now, self._digests("customer", shop, [customer_id]))
            pipe.execute()
        session = Session(sid, shop, now, expires_at, now, 0, 0, language, False, False, None, None,
                          secret_digest=_digest(secret), country=country, sealed_customer=sealed)
        return session, secret

    def customer(self, session: Session) -> str | None:
        """The logged-in customer id sealed at the session's creation, or None (anonymous, or unreadable)."""
        if not session.sealed_customer or self.box is None:
            return None
        try:
            shop, sid, customer = self.box.decrypt(session.sealed_customer).split("|", 2)
        except (DecryptionError, ValueError):
            return None
        # Bound to this session: a sealed value copied into another session's hash would not be accepted.
        return customer if (shop, sid) == (session.shop, session.id) and customer.isdigit() else None

    # --- idempotent turns -----------------------------------------------------------------------------

    def claim_turn(self, session: Session, client_id: str) -> tuple[str, dict[str, Any] | None]:
        """("claimed", None): run the turn; ("running", None): the same client_id is being answered;
        ("done", reply): it was answered, here is the reply; ("gone", None): the session expired."""
        result = self._claim(keys=[keys.chat_session(session.shop, session.id)],
                             args=[client_id, time.time(), TURN_STALE_S])
        state = result[0]
        if state == "done":
            return "done", json.loads(result[1]) if result[1] else None
        return str(state), None

    def settle_turn(self, session: Session, client_id: str, reply: dict[str, Any] | None) -> None:
        """Store the reply for retries of `client_id`, or release the claim (reply None: the turn failed)."""
        self._settle(keys=[keys.chat_session(session.shop, session.id)],
                     args=[client_id, json.dumps(reply, ensure_ascii=False) if reply is not None else ""])

    def escalate(self, session: Session) -> bool:
        """Mark the session escalated (once) and clear its resolution; the counters follow. False when it was
        already escalated (or has expired)."""
        now, was_resolved = self._escalate(keys=[keys.chat_session(session.shop, session.id)])
        if not now:
            return False
        self.count(session, escalated=1, **({"resolved": -1} if was_resolved else {}))
        session.escalated, session.resolved = True, False
        return True

    def record_first_reply(self, session: Session, elapsed_ms: int) -> None:
        """Keep the first reply time of a session with its start bucket (a number, no id): analytics take a
        true median of these."""
        retention = max(1, session.expires_at - int(session.started))
        width = bucket_width(retention)
        bucket = int(session.started // width) * width
        key = keys.chat_reply_times(session.shop, bucket)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, int(elapsed_ms))
            pipe.expireat(key, bucket + retention, lt=True)  # like the counters: never outlives the bucket
            pipe.execute()

    def first_reply_times(self, shop: str, since: float | None = None, until: float | None = None) -> list[int]:
        """First reply times (ms) of the sessions started in the buckets of [since, until)."""
        # The buckets analytics count: those starting in the range (chat.analytics reads counters the same way).
        wanted = [b for b in self._buckets(shop) if (since is None or b >= since) and (until is None or b < until)]
        with self.redis.pipeline(transaction=False) as pipe:
            for bucket in wanted:
                pipe.lrange(keys.chat_reply_times(shop, bucket), 0, -1)
            found = pipe.execute()
        return [int(v) for values in found for v in values]

    def opened_this_minute(self, shop: str) -> int:
        """Count one more session opened by the shop's storefront this minute; the count so far."""
        key = keys.chat_new_sessions(shop, int(time.time() // 60))
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, keys.CHAT_RATE_TTL, nx=True)
            count, _ = pipe.execute()
        return int(count)

    def get(self, shop: str, sid: str) -> Session | None:
        if not sid or len(sid) > 64:
            return None
        raw = self.redis.hgetall(keys.chat_session(shop, sid))
        return _session(shop, sid, raw) if raw else None

    def authorized(self, shop: str, sid: str, secret: str | None) -> Session:
        """The session if `secret` is its secret (constant-time), else SessionGone (no hint which)."""
        session = self.get(shop, sid)
        expected = session.secret_digest if session else _digest("")
        given = _digest(secret or "")
        if not hmac.compare_digest(expected, given) or session is None or not secret:
            raise SessionGone(sid)
        return session

    def transcript(self, shop: str, sid: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.redis.lrange(keys.chat_transcript(shop, sid), 0, -1)]

    def transcripts(self, shop: str, sids: list[str]) -> list[list[dict[str, Any]]]:
        """Several sessions' transcripts in one round trip (the CSV export reads hundreds)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.lrange(keys.chat_transcript(shop, sid), 0, -1)
        return [[json.loads(item) for item in items] for items in pipe.execute()]

    def append(self, session: Session, entry: dict[str, Any] | None, set_fields: dict[str, Any] | None = None,
               incr: dict[str, int] | None = None) -> bool:
        """Add a transcript entry and/or update metadata, keeping the session's absolute expiry. False when
        the session has expired meanwhile (nothing written)."""
        pairs: list[Any] = []
        for name, value in (set_fields or {}).items():
            pairs += [name, value]
        incs: list[Any] = []
        for name, by in (incr or {}).items():
            incs += [name, by]
        if set_fields and "orders" in set_fields:
            # Indexed before they are written: a stored order reference is always findable by compliance.
            self.index_orders(session, [o.get("id") for o in json.loads(set_fields["orders"]) if o.get("id")])
        args = [session.expires_at, json.dumps(entry, ensure_ascii=False) if entry else "", len(pairs) // 2,
                TRANSCRIPT_LIMIT, *pairs, *incs]
        ok = self._write(keys=[keys.chat_session(session.shop, session.id),
                               keys.chat_transcript(session.shop, session.id)], args=args)
        return bool(ok)

    def count(self, session: Session, **counters: float) -> None:
        """Aggregate analytics for the session's start bucket (no ids; floats go through HINCRBYFLOAT)."""
        retention = max(1, session.expires_at - int(session.started))
        width = bucket_width(retention)
        bucket = int(session.started // width) * width
        stats = keys.chat_stats(session.shop, bucket)
        with self.redis.pipeline(transaction=True) as pipe:
            for name, by in counters.items():
                if isinstance(by, float):  # a float field stays a float, even for a change of exactly 0.0
                    pipe.hincrbyfloat(stats, name, by)
                else:
                    pipe.hincrby(stats, name, by)
            pipe.expireat(stats, bucket + retention, lt=True)  # a past time deletes: never outlives
            pipe.execute()

    def delete(self, shop: str, sid: str) -> None:
        """Delete a session: metadata, transcript, history index and compliance index entries."""
        meta = keys.chat_session(shop, sid)
        for _ in range(5):
            subjects, expires_at = self.redis.hmget(meta, ["subjects", "expires_at"])
            entries: list[str] = []
            for digest in (subjects or "").split(","):
                if digest and expires_at:
                    entries += [keys.chat_subject(shop, digest),
                                keys.chat_subject_sessions(shop, digest, int(expires_at))]
            done = self._forget(keys=[meta, keys.chat_transcript(shop, sid), *entries],
                                args=[sid, expires_at or "", subjects or ""])
            if done != -1:
                break
        else:
            raise RuntimeError("session kept changing while being deleted")
        with self.redis.pipeline(transaction=True) as pipe:
            for bucket in self._buckets(shop):
                pipe.zrem(keys.chat_index(shop, bucket), sid)
            pipe.execute()

    # --- compliance index -----------------------------------------------------------------------------

    def _digests(self, kind: str, shop: str, raw_ids: list[Any]) -> list[str]:
        if not self.app_secret:
            return []
        return sorted({subject_digest(self.app_secret, shop, kind, raw) for raw in raw_ids if raw not in (None, "")})

    def _index_in(self, client: Any, shop: str, sid: str, expires_at: int, now: float, digests: list[str]) -> Any:
        if not digests:
            return None
        entries: list[str] = [keys.chat_session(shop, sid)]
        for digest in digests:
            entries += [keys.chat_subject(shop, digest), keys.chat_subject_sessions(shop, digest, expires_at)]
        return self._index(keys=entries, args=[expires_at, sid, int(now), *digests], client=client)

    def index_customer(self, session: Session, customer_id: str | int) -> bool:
        """List the session under its logged-in customer (a digest of the id). False when it has expired."""
        digests = self._digests("customer", session.shop, [customer_id])
        return bool(self._index_in(self.redis, session.shop, session.id, session.expires_at, time.time(), digests))

    def index_orders(self, session: Session, order_ids: list[Any]) -> bool:
        """List the session under each order (numeric id or gid) it referenced. False when it has expired."""
        digests = self._digests("order", session.shop, order_ids)
        return bool(self._index_in(self.redis, session.shop, session.id, session.expires_at, time.time(), digests))

    def sessions_about(self, shop: str, digests: list[str]) -> list[str]:
        """Ids of the live sessions listed under any of these subject digests (see subject_digest)."""
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.zrangebyscore(keys.chat_subject(shop, digest), now, "+inf")
            times = pipe.execute()
        sets = [keys.chat_subject_sessions(shop, digest, int(t))
                for digest, found in zip(digests, times, strict=True) for t in found]
        found: set[str] = set()
        if sets:
            found = set(self.redis.sunion(sets))
        if not found:
            return []
        ids = sorted(found)
        with self.redis.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.exists(keys.chat_session(shop, sid))
            alive = pipe.execute()
        return [sid for sid, live in zip(ids, alive, strict=True) if live]

    def forget_subjects(self, shop: str, digests: list[str]) -> int:
        """Delete the index keys of these digests (after their sessions were deleted); how many keys went."""
        doomed: list[str] = []
        for digest in digests:
            times = keys.chat_subject(shop, digest)
            doomed.append(times)
            doomed += [keys.chat_subject_sessions(shop, digest, int(t)) for t in self.redis.zrange(times, 0, -1)]
        return int(self.redis.delete(*doomed)) if doomed else 0

    # --- answers to customers/data_request ----------------------------------------------------------

    def save_data_request(self, shop: str, request_id: str, answer: dict[str, Any]) -> None:
        """Keep what was delivered to the merchant for a data request, for the admin page (DATA_REQUEST_TTL)."""
        key = keys.data_request_answer(shop, request_id)
        ttl = self.redis.ttl(key)  # an update (the delivery outcome) keeps the first write's expiry
        self.redis.set(key, json.dumps(answer, ensure_ascii=False),
                       ex=ttl if ttl and ttl > 0 else keys.DATA_REQUEST_TTL)

    def data_request(self, shop: str, request_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(keys.data_request_answer(shop, request_id))
        return json.loads(raw) if raw else None

    def data_requests(self, shop: str) -> list[dict[str, Any]]:
        """The shop's data-request answers still kept, newest first."""
        found = sorted(self.redis.scan_iter(match=keys.data_request_pattern(shop), count=1000))
        values = self.redis.mget(found) if found else []
        answers = [json.loads(v) for v in values if v]
        return sorted(answers, key=lambda a: a.get("received_at") or "", reverse=True)

    # --- history ------------------------------------------------------------------------------------

    def _buckets(self, shop: str) -> list[int]:
        now = time.time()
        self.redis.zremrangebyscore(keys.chat_buckets(shop), "-inf", f"({now}")
        return sorted(int(b) for b in self.redis.zrange(keys.chat_buckets(shop), 0, -1))

    def iter_sessions(self, shop: str, since: float | None = None, until: float | None = None,
                      batch: int = 200) -> Iterator[Session]:
        """Sessions newest first, started in [since, until), read in batches (export streams from this)."""
        low = "-inf" if since is None else int(since * 1000)
        high = "+inf" if until is None else f"({int(until * 1000)}"
        for bucket in reversed(self._buckets(shop)):
            if until is not None and bucket >= until:
                continue
            if since is not None and bucket + keys.CHAT_MAX_BUCKET < since:
                break
            ids = [sid for sid in self.redis.zrevrangebyscore(keys.chat_index(shop, bucket), high, low)]
            for start in range(0, len(ids), batch):
                chunk = ids[start:start + batch]
                with self.redis.pipeline(transaction=False) as pipe:
                    for sid in chunk:
                        pipe.hgetall(keys.chat_session(shop, sid))
                    raws = pipe.execute()
                for sid, raw in zip(chunk, raws, strict=True):
                    if raw:  # an index entry may briefly outlive nothing: its session was deleted on request
                        yield _session(shop, sid, raw)

    def stats(self, shop: str, since: float | None = None, until: float | None = None) -> list[tuple[int, dict]]:
        """(bucket start, counters) for the buckets in range, oldest first."""
        wanted = [b for b in self._buckets(shop)
                  if (since is None or b >= since - keys.CHAT_MAX_BUCKET) and (until is None or b < until)]
        with self.redis.pipeline(transaction=False) as pipe:
            for bucket in wanted:
                pipe.hgetall(keys.chat_stats(shop, bucket))
            found = pipe.execute()
        return [(b, raw) for b, raw in zip(wanted, found, strict=True) if raw]

    # --- verification attempts ----------------------------------------------------------------------

    def failures(self, session: Session, order_digest: str) -> tuple[int, int]:
        """(failed verifications of this session, of this order name) within their current hour."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.chat_session(session.shop, session.id), ["vfail", "vfail_until"])
            pipe.get(keys.chat_order_failures(session.shop, order_digest))
            (count, until), by_order = pipe.execute()
        by_session = int(count or 0) if until and float(until) > time.time() else 0
        return by_session, int(by_order or 0)

    def failure_wait(self, session: Session, order_digest: str) -> int:
        """Seconds until the later of the two failure windows resets."""
        until = self.redis.hget(keys.chat_session(session.shop, session.id), "vfail_until")
        waits = [int(float(until) - time.time()) + 1 if until else 0,
                 self.redis.ttl(keys.chat_order_failures(session.shop, order_digest))]
        return max([w for w in waits if w and w > 0] or [keys.CHAT_VERIFY_WINDOW])

    def record_failure(self, session: Session, order_digest: str) -> None:
        # The session's counter lives in its metadata hash (so it shares the session's expiry); the order's
        # is keyed by a digest of the name, holds no session id, and lasts the window.
        self._fail(keys=[keys.chat_session(session.shop, session.id)],
                   args=[session.expires_at, time.time(), keys.CHAT_VERIFY_WINDOW])
        per_order = keys.chat_order_failures(session.shop, order_digest)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(per_order)
            pipe.expire(per_order, keys.CHAT_VERIFY_WINDOW, nx=True)
            pipe.execute()

    # --- purge --------------------------------------------------------------------------------------

    def shop_keys(self, shop: str) -> list[str]:
        return list(self.redis.scan_iter(match=keys.chat_pattern(shop), count=1000))


def _session(shop: str, sid: str, raw: dict[str, str]) -> Session:
    sentiment = raw.get("sentiment")
    first = raw.get("first_reply_ms")
    return Session(
        id=sid, shop=shop, started=float(raw["started"]), expires_at=int(raw["expires_at"]),
        last=float(raw.get("last") or raw["started"]), messages=int(raw.get("messages") or 0),
        replies=int(raw.get("replies") or 0), language=raw.get("language") or "en",
        escalated=raw.get("escalated") == "1", resolved=raw.get("resolved") == "1",
        sentiment=float(sentiment) if sentiment not in (None, "") else None,
        first_reply_ms=int(first) if first else None, orders=json.loads(raw.get("orders") or "[]"),
        intents=json.loads(raw.get("intents") or "[]"), secret_digest=raw.get("secret", ""),
        country=raw.get("country") or None, sealed_customer=raw.get("customer") or None,
    )


def sessions_with_orders(store: ChatStore, shop: str, order_ids: list[int]) -> list[str]:
    """Ids of the sessions that reference any of these orders (compliance requests name orders by number)."""
    wanted = {f"gid://shopify/Order/{int(i)}" for i in order_ids}
    return [s.id for s in store.iter_sessions(shop) if any(o.get("id") in wanted for o in s.orders)]


def _register() -> None:
    def purge(ctx: CoreServices, shop: str) -> list[str]:
        found = ChatStore(ctx.redis).shop_keys(shop)
        if found:
            ctx.redis.delete(*found)
        return found

    def inventory(ctx: CoreServices, shop: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key in ChatStore(ctx.redis).shop_keys(shop):
            kind = key.split(":")[3]
            pattern = f"{keys.PREFIX}:chat:{shop}:{kind}:*"
            counts[pattern] = counts.get(pattern, 0) + 1
        return counts

    register(DataStore("chat", "chat", "chat sessions: redacted transcripts, metadata, history index, compliance "
                       "index (keyed digests of customer and order ids), aggregate counters; each expires with the "
                       "plan's retention", purge, inventory))

    def data_request_keys(ctx: CoreServices, shop: str) -> list[str]:
        return list(ctx.redis.scan_iter(match=keys.data_request_pattern(shop), count=1000))

    def purge_answers(ctx: CoreServices, shop: str) -> list[str]:
        found = data_request_keys(ctx, shop)
        if found:
            ctx.redis.delete(*found)
        return found

    def answers_inventory(ctx: CoreServices, shop: str) -> dict[str, int]:
        found = data_request_keys(ctx, shop)
        return {keys.data_request_pattern(shop): len(found)} if found else {}

    register(DataStore("chat-data-requests", "chat", "answers to customers/data_request delivered to the merchant "
                       "(the redacted transcripts found, or a statement that there were none); each kept 30 days",
                       purge_answers, answers_inventory))


_register()
