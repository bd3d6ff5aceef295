"""Redis crashes (kill -9) and restarts from its append-only file, as Heroku's production Redis plans persist."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import redis

from devtools.faults import FaultResult
from devtools.services import RedisServer
from tests.faults.invariants import assert_whole


def test_redis_restart_with_aof_keeps_installs_and_tokens_and_feeds_answer_throughout(
    run_fault: Callable[[str], FaultResult],
) -> None:
    result = run_fault("redis-restart")
    details = result.details
    # While Redis is down /readyz says so, naming it (once it is back, the scenario waits for it to say ready).
    code, body = details["down"]
    assert code == 503 and body["components"]["redis"]["status"] == "down", body
    assert body["error"] == {"code": "not_ready", "message": "Not ready: redis is down."}, body
    # The shop's record and its encrypted token came back from the AOF: the token decrypts and Shopify takes it
    # (and a reinstall through OAuth worked, or the scenario would have raised).
    assert details["shop_survived"] and details["token_works"], details
    assert details["workers_alive"], details  # the worker rode out the outage
    # Feeds answered every request while Redis was down (from Meilisearch, with the settings each web worker
    # had seen); only chat, whose sessions live in Redis, answered 503 store_unavailable meanwhile.
    assert details["feeds_during"].errors == 0 and details["feeds_during"].ok > 0, details["feeds_during"]
    # Products edited during the outage: Lumi refused their webhooks (not 2xx), Shopify retried, none was lost.
    assert any(status is None or not 200 <= status < 300 for status in details["deliveries"]), details["deliveries"]
    assert_whole(result)


def test_the_test_redis_persists_with_aof_fsynced_every_second_only_when_asked(tmp_path: Path) -> None:
    with RedisServer(workdir=tmp_path / "aof", appendonly=True) as server, \
            redis.Redis.from_url(server.url, decode_responses=True) as client:
        config = client.config_get("append*")
        assert (config["appendonly"], config["appendfsync"]) == ("yes", "everysec"), config
        client.set("lumi:probe", "kept")
        time.sleep(1.1)  # one fsync later
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        server.stop()
        server.start()  # returns once the file is replayed
        assert client.get("lumi:probe") == "kept"
    with RedisServer() as plain, redis.Redis.from_url(plain.url, decode_responses=True) as client:
        assert client.config_get("appendonly") == {"appendonly": "no"}  # the default is unchanged
