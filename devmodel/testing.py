"""Helpers for tests: serve devmodel on a free port in a thread, and script it through its /_devmodel API."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import requests
from flask import Flask

from devmodel.server import DevModelState, create_app, make_server


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # configure(api_key=KEEP) leaves the key alone; None means "accept any key"


class DevModelServer:
    """`with DevModelServer(config) as model:` serves create_app(config) on 127.0.0.1:<free port>.

    Point the SDK at it with `OpenAI(api_key=model.api_key, base_url=model.base_url)`."""

    def __init__(self, config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app: Flask = create_app(config)
        self.state: DevModelState = self.app.extensions["devmodel"]
        self._server = make_server(self.app, host, port, quiet=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self.base_url = self.url + "/v1"
        self._thread: threading.Thread | None = None

    @property
    def api_key(self) -> str:
        """The key the SDK must send (the current one, after any configure())."""
        return self.state.api_key or "sk-any"

    @property
    def control(self) -> DevModelControl:
        return DevModelControl(self.url)

    def start(self) -> DevModelServer:
        if self._thread is None:
            # A short poll interval keeps stop() (and so every test teardown) quick.
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="devmodel-test-server", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self.state.close()  # wakes every pending delay and hang, so their threads end now
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DevModelServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


ToolCallSpec = tuple[str, Any] | Mapping[str, Any]  # (name, arguments) or {"name", "arguments", "id"?}


class DevModelControl:
    """A thin client for /_devmodel; every method raises on a non-2xx answer.

    Every script_* method takes the same options: delay_s (before the first byte), token_delay_s (before each
    streamed token), conversation (only for requests of that conversation: X-Devmodel-Conversation header,
    metadata.conversation_id, safety_identifier, prompt_cache_key or user), match (only when the last user
    message contains this text). Steps are used first in, first out; an empty script means the rule responder."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = requests.request(method, f"{self.url}/_devmodel{path}", json=json, timeout=self.timeout)
        try:
            if not response.ok:
                raise requests.HTTPError(f"{method} /_devmodel{path}: {response.status_code} {response.text}",
                                         response=response)
            return response.json()
        finally:
            response.close()

    def script(self, *steps: Mapping[str, Any]) -> int:
        """Append raw steps (README.md lists their JSON); returns how many steps are now pending."""
        return self._call("POST", "/script", {"steps": list(steps)})["pending"]

    @staticmethod
    def _options(delay_s: float | None, token_delay_s: float | None, conversation: str | None,
                 match: str | None) -> dict[str, Any]:
        options = {"delay_s": delay_s, "token_delay_s": token_delay_s, "conversation": conversation, "match": match}
        return {k: v for k, v in options.items() if v is not None}

    def script_text(self, text: str, *, drop_after: int | None = None, delay_s: float | None = None,
                    token_delay_s: float | None = None, conversation: str | None = None,
                    match: str | None = None) -> int:
        """A text reply (streamed token by token); drop_after=N cuts a stream's connection after N tokens."""
        step: dict[str, Any] = {"type": "text", "text": text,
                                **self._options(delay_s, token_delay_s, conversation, match)}
        if drop_after is not None:
            step["drop_after"] = drop_after
        return self.script(step)

    def script_tool_calls(self, calls: Sequence[ToolCallSpec], *, text: str | None = None,
                          drop_after: int | None = None, delay_s: float | None = None,
                          token_delay_s: float | None = None, conversation: str | None = None,
                          match: str | None = None) -> int:
        """Tool calls: [(name, arguments), ...] or [{"name", "arguments", "id"?}, ...]; arguments is a dict
        (sent as JSON) or a string (sent verbatim, e.g. to script malformed JSON). `text` precedes the calls."""
        specs = [dict(c) if isinstance(c, Mapping) else {"name": c[0], "arguments": c[1]} for c in calls]
        step: dict[str, Any] = {"type": "tool_calls", "tool_calls": specs,
                                **self._options(delay_s, token_delay_s, conversation, match)}
        if text is not None:
            step["text"] = text
        if drop_after is not None:
            step["drop_after"] = drop_after
        return self.script(step)

    def script_error(self, status: int = 500, message: str | None = None, *, error_type: str | None = None,
                     code: str | None = None, param: str | None = None, retry_after: float | None = None,
                     headers: Mapping[str, str] | None = None, body: Any = None, delay_s: float | None = None,
                     conversation: str | None = None, match: str | None = None) -> int:
        """An HTTP error in OpenAI's shape (defaults per status: 429 rate_limit_exceeded, 500 server_error...).
        retry_after (seconds, may be < 1) sets retry-after-ms and retry-after; body replaces the JSON entirely."""
        step: dict[str, Any] = {"type": "error", "status": status,
                                **self._options(delay_s, None, conversation, match)}
        extra = {"message": message, "error_type": error_type, "code": code, "param": param,
                 "retry_after": retry_after, "headers": dict(headers) if headers else None, "body": body}
        step.update({k: v for k, v in extra.items() if v is not None})
        return self.script(step)

    def script_hang(self, seconds: float = 60.0, *, conversation: str | None = None, match: str | None = None
                    ) -> int:
        """Send nothing for `seconds` (the client times out first), then drop the connection."""
        return self.script({"type": "hang", "seconds": seconds, **self._options(None, None, conversation, match)})

    def script_drop(self, *, delay_s: float | None = None, conversation: str | None = None,
                    match: str | None = None) -> int:
        """Close the connection without an answer (the SDK sees a connection error)."""
        return self.script({"type": "drop", **self._options(delay_s, None, conversation, match)})

    def pending(self) -> list[dict[str, Any]]:
        """The steps not used yet, in order."""
        return self._call("GET", "/script")["steps"]

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every request received, oldest first: seq, at, method, path, headers (no Authorization), body (the
        parsed JSON as sent), conversation, reply (what answered it). `path` filters, e.g. "/v1/chat/completions"."""
        found = self._call("GET", "/requests")["requests"]
        return [r for r in found if path is None or r["path"] == path]

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat completion request, oldest first."""
        return [r["body"] for r in self.requests("/v1/chat/completions")]

    def wait_for_requests(self, count: int, timeout: float = 10.0, path: str | None = "/v1/chat/completions"
                          ) -> list[dict[str, Any]]:
        """Poll until at least `count` requests (to `path`) were received; TimeoutError if not."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(path)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(found)} of {count} requests to {path or 'devmodel'} after {timeout:g} s")
            time.sleep(0.02)

    def reset(self) -> dict[str, Any]:
        """Clear the script and the recorded requests; key and delays back to the server's start-up values."""
        return self._call("POST", "/reset")

    def configure(self, *, api_key: str | None | _Keep = KEEP, delay_s: float | None = None,
                  token_delay_s: float | None = None) -> dict[str, Any]:
        """Change the key (None: accept any) and the default delays (fixed latency for benchmarks)."""
        changes: dict[str, Any] = {} if api_key is KEEP else {"api_key": api_key}
        changes.update({k: v for k, v in (("delay_s", delay_s), ("token_delay_s", token_delay_s)) if v is not None})
        return self._call("POST", "/config", changes)

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/config")
