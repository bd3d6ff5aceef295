"""python -m devshop: starts with one log line naming its URL, takes its settings as flags, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def test_cli_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devshop", "--host", "127.0.0.1", "--port", "0", "--products", "25",
         "--shop", "cli-shop.myshopify.com", "--api-secret", "cli-secret", "--authorize-mode", "page",
         "--currency", "usd",
         "--webhook-timeout", "2.5", "--webhook-retry-schedule", "1,2.5", "--proxy-buffer",
         "--session-token-ttl", "5"],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 15
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()
            if m := re.search(r"devshop serving (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
        assert url, "no start-up line naming the URL"
        shops = requests.get(f"{url}/_devshop/shops", timeout=5).json()["shops"]
        assert shops[0]["shop"] == "cli-shop.myshopify.com" and shops[0]["products"] == 25
        assert shops[0]["currency"] == "USD" and [m["currency"] for m in shops[0]["markets"]] == ["USD", "EUR"]
        app = requests.get(f"{url}/_devshop/app", timeout=5).json()
        assert app["authorize_mode"] == "page" and app["session_token_ttl"] == 5
        assert app["webhooks"]["timeout"] == 2.5 and app["webhooks"]["retry_schedule"] == [1.0, 2.5]
        assert requests.get(f"{url}/_devshop/proxy", timeout=5).json()["buffer"] is True  # --proxy-buffer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_the_proxy_streams_unless_told_to_buffer() -> None:
    from devshop.__main__ import parse_args

    assert parse_args([]).proxy_buffer is False
    assert parse_args(["--proxy-buffer"]).proxy_buffer is True


def test_session_tokens_live_a_minute_unless_told() -> None:
    from devshop.__main__ import parse_args

    assert parse_args([]).session_token_ttl == 60, "as Shopify's"
    assert parse_args(["--session-token-ttl", "5"]).session_token_ttl == 5
