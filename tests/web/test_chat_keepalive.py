"""A streamed chat turn that goes quiet (a slow model or Shopify call) still sends bytes: proxies cut idle reads
(devshop's app proxy after 10 s, like the stand-in for Shopify's), and the shopper would lose the answer."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import web.chat
from devshop.proxy import DEFAULT_TIMEOUT

PROXY_IDLE_READ_S = 10.0  # devshop's app proxy gives up on an upstream read that stays silent this long


class SlowEngine:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.done = threading.Event()

    def turn(self, ctx: Any, text: str, on_delta: Any = None) -> str:
        time.sleep(self.seconds)
        on_delta("Hello")
        self.done.set()
        return "reply"


def test_a_quiet_turn_sends_keep_alive_comments_until_its_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert web.chat.KEEPALIVE_S < PROXY_IDLE_READ_S / 2  # at least one comment inside each idle window
    monkeypatch.setattr(web.chat, "KEEPALIVE_S", 0.05)  # the same loop, on a test's time scale
    engine = SlowEngine(0.4)
    events = list(web.chat._stream(engine, None, "hi", lambda reply: {"message": {"text": reply}}, lambda: None))
    assert events[0] == ": lumi\n\n"
    quiet = events[1:events.index(next(e for e in events if e.startswith("event: delta")))]
    assert quiet and all(e == ": keep-alive\n\n" for e in quiet), events[:5]
    assert events[-1].startswith("event: final") and '"reply"' in events[-1]
    assert engine.done.is_set()


def test_the_proxy_stand_in_cuts_idle_reads_when_this_test_says() -> None:
    assert DEFAULT_TIMEOUT == PROXY_IDLE_READ_S
