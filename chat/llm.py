"""The model provider, behind one small facade over the `openai` SDK (any OpenAI-compatible endpoint).

Views and the engine never touch the SDK: they call `ModelClient.stream`, which yields text deltas and,
when the model asks for tools, one final list of `ToolCall`s; every SDK or HTTP failure becomes
`LLMUnavailable` so the engine can fall back to the rule responder.

The SDK sends the request (auth, headers, retries, timeouts, HTTP errors as its typed exceptions), but the
streamed answer is read from its raw response: the SDK's own stream builds a pydantic model for every chunk,
which was most of a streamed turn's CPU. `sse_events` and `read_completion` below read only what the engine
uses (text, tool-call fragments) with `json.loads`.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2  # the openai SDK's HTTP client: what its raw responses raise while being read
import openai

log = logging.getLogger(__name__)


class LLMUnavailable(Exception):
    """The model could not answer (timeout, refused connection, 4xx/5xx, malformed stream)."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    def message(self) -> dict[str, Any]:
        """As the assistant's tool_calls entry in the next request."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": json.dumps(self.arguments)}}


# Errors reading a raw response's body, as the SDK's own stream maps them to APITimeoutError/APIConnectionError.
_READ_ERRORS = (httpx2.RequestError, ssl.SSLError)


class ModelClient:
    def __init__(self, api_key: str, base_url: str | None, model: str, timeout: float = 20.0,
                 max_retries: int = 1) -> None:
        self.model = model
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    def close(self) -> None:
        self._client.close()

    def stream(self, messages: Sequence[dict[str, Any]],
               tools: Sequence[dict[str, Any]]) -> Iterator[str | list[ToolCall]]:
        """Text deltas as they arrive; if the model calls tools, a final list of them (arguments parsed)."""
        # messages and tools go in extra_body, as built: passed as `messages=`/`tools=` the SDK walks them
        # against its TypedDicts (an identity transform for plain JSON, ~15 % of a turn's CPU). The request
        # body is the same JSON either way (extra_body keys replace the placeholder).
        body: dict[str, Any] = {"messages": list(messages)}
        if tools:
            body["tools"] = list(tools)
        try:
            with self._client.chat.completions.with_streaming_response.create(
                model=self.model, messages=[], stream=True, temperature=0.2, extra_body=body,
            ) as response:
                yield from read_completion(sse_events(response.iter_bytes()))
        except openai.OpenAIError as err:
            log.warning("model unavailable", extra={"error": type(err).__name__})
            raise LLMUnavailable(type(err).__name__) from err
        except _READ_ERRORS as err:  # the answer broke off or stalled mid-stream
            log.warning("model unavailable", extra={"error": type(err).__name__})
            raise LLMUnavailable(type(err).__name__) from err
        except LLMUnavailable as err:
            log.warning("model unavailable", extra={"error": str(err)})
            raise


def sse_events(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The data of each server-sent event in a byte stream split anywhere (lines end in LF, CRLF or CR; an
    event's `data:` lines are joined with LF; comments and other fields are skipped; an event the stream
    ends before its blank line is dropped, as the SSE spec says)."""
    rest = b""  # the start of a line whose end has not arrived
    after_cr = False  # the last chunk ended in CR: an LF opening the next one is the same line end
    data: list[bytes] = []
    for chunk in chunks:
        if not chunk:
            continue
        if after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        after_cr = chunk.endswith(b"\r")
        buffer = rest + chunk if rest else chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if not line:
                if data:
                    yield b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)


def read_completion(events: Iterable[bytes]) -> Iterator[str | list[ToolCall]]:
    """A streamed chat completion's text deltas, then its tool calls (if any) as one list. Chunks without
    choices (a usage chunk) are skipped; `[DONE]` ends it; an error event or a chunk that is not the chat
    completion chunk JSON raises LLMUnavailable."""
    calls: dict[int, dict[str, str]] = {}
    for payload in events:
        if payload.startswith(b"[DONE]"):
            break
        try:
            chunk = json.loads(payload)
        except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
            raise LLMUnavailable("malformed stream") from err
        if not isinstance(chunk, dict):
            raise LLMUnavailable("malformed stream")
        if chunk.get("error"):
            raise LLMUnavailable("error event")
        choices = chunk.get("choices")
        if not choices:
            continue
        try:
            delta = choices[0].get("delta") or {}
            content = delta.get("content")
            parts = delta.get("tool_calls")
        except (AttributeError, IndexError, KeyError, TypeError) as err:
            raise LLMUnavailable("malformed stream") from err
        if content:
            if not isinstance(content, str):
                raise LLMUnavailable("malformed stream")
            yield content
        if parts:
            _add_fragments(calls, parts)
    if calls:
        yield _tool_calls(calls)


def _add_fragments(calls: dict[int, dict[str, str]], parts: Any) -> None:
    """Tool-call fragments of one chunk, appended to the calls they belong to (by index)."""
    if not isinstance(parts, list):
        raise LLMUnavailable("malformed stream")
    for part in parts:
        if not isinstance(part, dict):
            raise LLMUnavailable("malformed stream")
        index = part.get("index", 0)
        function = part.get("function") or {}
        call_id, name, arguments = part.get("id"), function.get("name"), function.get("arguments")
        if not isinstance(index, int) or not all(isinstance(v, str | None) for v in (call_id, name, arguments)):
            raise LLMUnavailable("malformed stream")
        slot = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if call_id:
            slot["id"] = call_id
        if name:
            slot["name"] += name
        if arguments:
            slot["arguments"] += arguments


def _tool_calls(calls: dict[int, dict[str, str]]) -> list[ToolCall]:
    parsed: list[ToolCall] = []
    for index in sorted(calls):
        slot = calls[index]
        try:
            arguments = json.loads(slot["arguments"] or "{}")
        except json.JSONDecodeError as err:
            raise LLMUnavailable("malformed tool arguments") from err
        if not isinstance(arguments, dict) or not slot["name"]:
            raise LLMUnavailable("malformed tool call")
        parsed.append(ToolCall(slot["id"] or f"call_{index}", slot["name"], arguments))
    return parsed
