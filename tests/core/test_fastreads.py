"""FastReads against real Redis: the replies of a pipeline, in order, and a clean connection after errors."""

from __future__ import annotations

import pytest
import redis

from core.fastreads import FastReads


def test_replies_match_a_pipeline_in_order(redis_client: redis.Redis) -> None:
    redis_client.hset("h", mapping={"a": "1", "b": "2"})
    redis_client.set("s", "x")
    reads = FastReads(redis_client).hmget("h", ["a", "missing", "b"]).get("s").get("absent")
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.hmget("h", ["a", "missing", "b"]).get("s").get("absent")
        expected = pipe.execute()
    assert reads.execute() == expected == [["1", None, "2"], "x", None]


def test_an_error_reply_is_raised_and_the_connection_stays_usable(redis_client: redis.Redis) -> None:
    redis_client.set("s", "x")
    with pytest.raises(redis.ResponseError):
        FastReads(redis_client).hmget("s", ["a"]).execute()  # WRONGTYPE
    assert FastReads(redis_client).get("s").execute() == ["x"]
    assert redis_client.get("s") == "x"


def test_redis_down_raises_a_redis_error() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2)
    with pytest.raises(redis.RedisError):
        FastReads(client).get("s").execute()
