"""The shopper's escalation reply-to address (issue 15, promise "never stored: customer email addresses").

The address a shopper may leave on the escalation form goes into one email's Reply-To and nowhere else: sealed
under its own key that expires within an hour (3600 s, a literal here, not the code's constant), never in RQ
job arguments, never in the failed-job registry, and gone once the email is sent. Every Redis key and value is
dumped, RQ job payloads (zlib-compressed pickles) decoded, and every Fernet token found is decrypted with the
app's keys, so a sealed copy anywhere else is caught too.
"""

from __future__ import annotations

import pickle
import re
import time
import zlib
from typing import Any

import redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from core import keys
from devtools.mailbox import MailboxServer
from tests.conftest import DEMO_SHOP
from tests.functional.test_chat import SECRET, Shopper, chat_stack, mailbox  # noqa: F401 - fixtures
from tests.helpers import wait_until

JANE = "jane@example.com"
ONE_HOUR = 3600  # the promise: the sealed address lives at most an hour
FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_=-]{40,}")
ESCALATION = "jobs.escalation.send_escalation"


def _decode_job_data(raw: bytes) -> str:
    try:
        return repr(pickle.loads(zlib.decompress(raw)))
    except Exception:  # noqa: BLE001 - not a compressed pickle: keep it as it is
        try:
            return repr(pickle.loads(raw))
        except Exception:  # noqa: BLE001
            return repr(raw)


def redis_dump(client: redis.Redis) -> dict[str, bytes]:
    """key → every value under it as bytes, with RQ job payloads decoded (args, kwargs, exc_info, results)."""
    raw = redis.Redis(**{k: v for k, v in client.connection_pool.connection_kwargs.items()
                         if k in ("host", "port", "db")})
    out: dict[str, bytes] = {}
    for key in raw.scan_iter(count=1000):
        kind = raw.type(key).decode()
        parts: list[Any]
        if kind == "string":
            parts = [raw.get(key)]
        elif kind == "hash":
            fields = raw.hgetall(key)
            parts = [*fields.keys(), *fields.values()]
            for name in (b"data", b"exc_info", b"result"):
                if name in fields:
                    parts.append(_decode_job_data(fields[name]).encode())
        elif kind == "list":
            parts = raw.lrange(key, 0, -1)
        elif kind == "set":
            parts = list(raw.smembers(key))
        elif kind == "zset":
            parts = [m for m, _ in raw.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":  # RQ's results
            parts = [repr(entry).encode() for entry in raw.xrange(key)]
            for _, fields in raw.xrange(key):
                parts += [_decode_job_data(v).encode() for v in fields.values()]
        else:
            parts = []
        if key.startswith(b"rq:job:") and kind == "hash":
            job_id = key.decode().removeprefix("rq:job:")
            try:
                job = Job.fetch(job_id, connection=raw)
                parts.append(repr((job.func_name, job.args, job.kwargs, job.meta)).encode())
            except Exception:  # noqa: BLE001 - a half-written job: its raw fields are in the dump already
                pass
        out[key.decode(errors="replace")] = b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)
    return out


def where_the_email_is(dump: dict[str, bytes], box: Any, email: str = JANE) -> list[str]:
    """Keys holding `email` in clear, or sealed (any Fernet token there that decrypts to it)."""
    found = []
    for key, value in dump.items():
        if email.encode() in value.lower() or email.encode() in key.encode().lower():
            found.append(key)
            continue
        for token in FERNET_TOKEN.findall(value):
            try:
                plain = box.decrypt(token.decode())
            except Exception:  # noqa: BLE001 - another key's token or not a token at all
                continue
            if email in plain.lower():
                found.append(key)
                break
    return found


def _escalate(shopper: Shopper, email: str | None = JANE) -> None:
    response = shopper.http.post(shopper.url(f"sessions/{shopper.id}/escalate"),
                                 json={"email": email} if email else {}, headers={SECRET: shopper.secret},
                                 timeout=30)
    assert response.status_code == 202, response.text


def _escalation_jobs(stack: Any, registry_class: type) -> list[Job]:
    from jobs.queues import queue

    jobs_queue = queue(keys.QUEUE_DEFAULT, stack.services.queue_redis)
    registry = registry_class(queue=jobs_queue)
    found = [jobs_queue.fetch_job(i) for i in registry.get_job_ids()]
    return [j for j in found if j is not None and j.func_name == ESCALATION]


def test_reply_to_is_only_in_its_own_sealed_key_for_at_most_an_hour_and_gone_after_the_send(
        chat_stack, mailbox: MailboxServer, redis_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setattr("jobs.escalation.RETRY_INTERVALS", [3, 3, 3, 3])  # the web enqueues in this process
    stack = chat_stack()
    mailbox.fail_next(1, 451)  # hold the job in RQ (scheduled for a retry) while Redis is inspected
    shopper = Shopper(stack)
    shopper.start()
    _escalate(shopper)
    wait_until(lambda: _escalation_jobs(stack, ScheduledJobRegistry), timeout=30,
               what="the escalation job to wait for its retry")
    pending = redis_dump(redis_client)
    (job,) = _escalation_jobs(stack, ScheduledJobRegistry)
    assert JANE not in repr((job.args, job.kwargs)).lower()
    holders = where_the_email_is(pending, stack.services.box)
    assert len(holders) == 1, holders  # one key, and not an RQ key
    (holder,) = holders
    assert holder.startswith(f"lumi:chat:{DEMO_SHOP}:") and not holder.startswith("rq:")
    assert JANE.encode() not in pending[holder]  # sealed, never in clear
    assert 0 < redis_client.ttl(holder) <= ONE_HOUR
    sealed = pending[holder]
    assert not [k for k, v in pending.items() if k != holder and sealed in v]  # the sealed value is nowhere else

    mailbox.wait_for(1, timeout=30)
    assert mailbox.messages[0]["Reply-To"] == JANE
    wait_until(lambda: not redis_client.exists(holder), timeout=10, what="the reply-to key to be deleted")
    after = redis_dump(redis_client)
    assert where_the_email_is(after, stack.services.box) == []
    assert not [k for k, v in after.items() if sealed in v]


def test_a_failed_escalation_job_holds_no_email_after_every_retry_failed(
        chat_stack, mailbox: MailboxServer, redis_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setattr("jobs.escalation.RETRY_INTERVALS", [1, 1, 1, 1])
    stack = chat_stack()
    mailbox.fail_next(50, 451)  # SMTP down for every attempt
    shopper = Shopper(stack)
    shopper.start()
    _escalate(shopper)
    wait_until(lambda: _escalation_jobs(stack, FailedJobRegistry), timeout=60,
               what="the escalation job to land in the failed-job registry")
    (failed,) = _escalation_jobs(stack, FailedJobRegistry)
    assert failed.retries_left == 0
    assert JANE not in repr((failed.args, failed.kwargs, failed.meta)).lower()
    dump = redis_dump(redis_client)
    assert where_the_email_is(dump, stack.services.box) == []
    assert [k for k in dump if ":reply-to:" in k] == []  # the last attempt forgot it: nothing will read it
    assert mailbox.messages == []


def test_an_expired_reply_to_sends_the_email_without_it_and_logs_no_address(
        chat_stack, mailbox: MailboxServer, redis_client, monkeypatch, start_worker) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setattr("jobs.escalation.RETRY_INTERVALS", [3, 3, 3, 3])
    stack = chat_stack()
    mailbox.fail_next(1, 451)
    shopper = Shopper(stack)
    shopper.start()
    _escalate(shopper)
    wait_until(lambda: _escalation_jobs(stack, ScheduledJobRegistry), timeout=30,
               what="the escalation job to wait for its retry")
    (key,) = [k for k in redis_client.scan_iter(match=f"lumi:chat:{DEMO_SHOP}:reply-to:*")]
    redis_client.delete(key)  # as if its hour had passed
    mailbox.wait_for(1, timeout=30)
    assert mailbox.messages[0]["Reply-To"] is None
    wait_until(lambda: "expired before the send" in "".join(w.output() for w in start_worker.started),
               timeout=10, what="the worker to log the missing reply-to")
    assert JANE not in "".join(w.output() for w in start_worker.started).lower()
    assert where_the_email_is(redis_dump(redis_client), stack.services.box) == []


def test_the_reply_to_key_never_outlives_its_session(chat_stack, mailbox: MailboxServer,  # noqa: F811
                                                      redis_client) -> None:  # type: ignore[no-untyped-def]
    from jobs.escalation import store_reply_to

    stack = chat_stack()
    soon = int(time.time()) + 120
    ref = store_reply_to(stack.services, DEMO_SHOP, JANE, session_expires_at=soon)
    key = keys.escalation_reply_to(DEMO_SHOP, ref)
    assert redis_client.expiretime(key) <= soon
    assert JANE not in redis_client.get(key) and JANE not in key
    later = store_reply_to(stack.services, DEMO_SHOP, JANE, session_expires_at=int(time.time()) + 30 * 86400)
    assert 0 < redis_client.ttl(keys.escalation_reply_to(DEMO_SHOP, later)) <= ONE_HOUR


def test_an_escalation_without_an_email_writes_no_reply_to_key(chat_stack, mailbox: MailboxServer,  # noqa: F811
                                                               redis_client) -> None:  # type: ignore[no-untyped-def]
    stack = chat_stack()
    shopper = Shopper(stack)
    shopper.start()
    _escalate(shopper, None)
    mailbox.wait_for(1, timeout=30)
    assert mailbox.messages[0]["Reply-To"] is None
    assert list(redis_client.scan_iter(match="lumi:chat:*:reply-to:*")) == []
