"""The model client: the streamed answer read from the SDK's raw response (server-sent events, chat completion
chunks), and every provider failure turned into LLMUnavailable. Parser tests feed bytes; the rest drives the
devmodel stand-in through the real openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chat.llm import LLMUnavailable, ModelClient, ToolCall, read_completion, sse_events
from devmodel.testing import DevModelServer


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}).encode()


def _sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


def _read(*payloads: bytes) -> list[str | list[ToolCall]]:
    return list(read_completion(sse_events([_sse(*payloads)])))


# --- server-sent events ---------------------------------------------------------------------------------------------

RAW = (b": keep-alive\n\n"  # a comment: no event
       b"event: message\nid: 7\nretry: 1000\ndata: {\"a\": 1}\n\n"
       b"data: {\"b\":\r\ndata: 2}\r\n\r\n"  # one event's data on two CRLF lines: joined with LF
       b"data:{\"c\": 3}\n\n"  # no space after the colon
       b"data: {\"d\": \"\xc3\xa9\"}\r\r"  # CR line ends, UTF-8 text
       b"\n\n\n"  # blank lines without data: nothing
       b"data: [DONE]\n\n")
EVENTS = [b"{\"a\": 1}", b"{\"b\":\n2}", b"{\"c\": 3}", b"{\"d\": \"\xc3\xa9\"}", b"[DONE]"]


def test_events_are_the_same_however_the_bytes_are_split() -> None:
    assert list(sse_events([RAW])) == EVENTS
    assert list(sse_events([RAW[i:i + 1] for i in range(len(RAW))])) == EVENTS  # byte by byte
    for cut in range(1, len(RAW)):  # every place one network read could end (a CRLF split in two included)
        assert list(sse_events([RAW[:cut], b"", RAW[cut:]])) == EVENTS, cut


def test_an_event_the_stream_cuts_before_its_blank_line_is_dropped() -> None:
    assert list(sse_events([b"data: {\"a\": 1}\n\ndata: {\"b\": 2}\n"])) == [b"{\"a\": 1}"]
    assert list(sse_events([b"data: {\"a\": 1}\n\ndata: {\"b\"", b": 2}"])) == [b"{\"a\": 1}"]


# --- chat completion chunks -----------------------------------------------------------------------------------------


def test_text_arrives_delta_by_delta_and_done_ends_the_answer() -> None:
    items = _read(_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Hello"}),
                  _chunk({"content": " there, "}), _chunk({"content": "é ✓"}), _chunk({}, "stop"),
                  b"[DONE]", _chunk({"content": "after the end"}))
    assert items == ["Hello", " there, ", "é ✓"]


def test_tool_call_fragments_are_joined_per_call_and_parsed() -> None:
    items = _read(
        _chunk({"content": "Let me check."}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                "function": {"name": "order_status", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"order_na"}}]}),
        _chunk({"tool_calls": [{"index": 1, "type": "function",  # no id: one is made up from the index
                                "function": {"name": "search_", "arguments": "{\"query\""}}]}),
        _chunk({"tool_calls": [{"index": 1, "function": {"name": "products", "arguments": ": \"red shirt\"}"}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "me\": \"#10"}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "01\"}"}}]}),
        _chunk({}, "tool_calls"),
        b"[DONE]",
    )
    assert items == ["Let me check.", [ToolCall("call_a", "order_status", {"order_name": "#1001"}),
                                       ToolCall("call_1", "search_products", {"query": "red shirt"})]]


def test_a_call_without_arguments_gets_an_empty_object() -> None:
    items = _read(_chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "list_recent_orders"}}]}),
                  b"[DONE]")
    assert items == [[ToolCall("c", "list_recent_orders", {})]]


def test_a_usage_chunk_adds_nothing() -> None:
    usage = json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}}).encode()
    assert _read(_chunk({"content": "Hi"}), _chunk({}, "stop"), usage, b"[DONE]") == ["Hi"]


@pytest.mark.parametrize("payload", [
    b"not json",
    b"{\"choices\": [{\"delta\": {\"content\": \"cut off",  # half a chunk
    b"\xff\xfe",  # not UTF-8
    b"[1, 2]",
    b"{\"choices\": \"none\"}",
    b"{\"choices\": [\"x\"]}",
    b"{\"choices\": [{\"delta\": {\"content\": 5}}]}",
    b"{\"choices\": [{\"delta\": {\"tool_calls\": {\"index\": 0}}}]}",
    b"{\"choices\": [{\"delta\": {\"tool_calls\": [{\"index\": \"0\", \"function\": {\"name\": \"x\"}}]}}]}",
    b"{\"choices\": [{\"delta\": {\"tool_calls\": [{\"index\": 0, \"function\": {\"arguments\": 1}}]}}]}",
    b"{\"error\": {\"message\": \"The server is overloaded\", \"type\": \"server_error\"}}",
])
def test_a_malformed_or_error_chunk_is_a_clean_llm_unavailable(payload: bytes) -> None:
    with pytest.raises(LLMUnavailable):
        _read(_chunk({"content": "Hi"}), payload, b"[DONE]")


@pytest.mark.parametrize(("fragments", "reason"), [
    ([{"index": 0, "id": "c", "function": {"name": "order_status", "arguments": "{\"order_name\": "}}],
     "malformed tool arguments"),
    ([{"index": 0, "id": "c", "function": {"name": "order_status", "arguments": "[1]"}}], "malformed tool call"),
    ([{"index": 0, "id": "c", "function": {"arguments": "{}"}}], "malformed tool call"),
])
def test_a_tool_call_that_cannot_be_run_is_a_clean_llm_unavailable(fragments: list[dict[str, Any]],
                                                                     reason: str) -> None:
    with pytest.raises(LLMUnavailable, match=reason):
        _read(_chunk({"tool_calls": fragments}), b"[DONE]")


# --- through the SDK, against devmodel ------------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "You are a shop assistant."}, {"role": "user", "content": "where is #1001?"}]
TOOLS = [{"type": "function", "function": {"name": "order_status", "description": "Order status.", "parameters": {
    "type": "object", "properties": {"order_name": {"type": "string"}}, "required": [],
    "additionalProperties": False}}}]


@pytest.fixture(scope="module")
def server() -> Iterator[DevModelServer]:
    with DevModelServer() as model_server:
        yield model_server


@pytest.fixture
def devmodel(server: DevModelServer) -> DevModelServer:
    server.control.reset()
    return server


def _client(server: DevModelServer, timeout: float = 5.0) -> ModelClient:
    return ModelClient(server.api_key, server.base_url, "devmodel-test", timeout=timeout, max_retries=0)


def test_text_and_tool_calls_stream_through_the_sdk_and_the_request_is_the_one_built(devmodel: DevModelServer
                                                                                    ) -> None:
    text = "Your order #1001 is on its way with UPS, tracking number 1Z999AA10123456784."
    devmodel.control.script_text(text)
    devmodel.control.script_tool_calls([("order_status", {"order_name": "#1001"})], text="One moment.")
    client = _client(devmodel)
    try:
        streamed = list(client.stream(MESSAGES, TOOLS))
        called = list(client.stream(MESSAGES, []))
    finally:
        client.close()
    assert all(isinstance(item, str) for item in streamed) and len(streamed) > 3  # token by token
    assert "".join(str(item) for item in streamed) == text  # exactly the text
    *before, calls = called
    assert "".join(str(item) for item in before) == "One moment."  # text first, then the call
    assert isinstance(calls, list) and [(c.name, c.arguments) for c in calls] == [
        ("order_status", {"order_name": "#1001"})] and calls[0].id
    # What the provider received: the messages and tools as built, streamed, nothing else.
    assert devmodel.control.bodies() == [
        {"model": "devmodel-test", "messages": MESSAGES, "tools": TOOLS, "stream": True, "temperature": 0.2},
        {"model": "devmodel-test", "messages": MESSAGES, "stream": True, "temperature": 0.2},
    ]


def test_provider_failures_before_and_during_the_stream_are_llm_unavailable(devmodel: DevModelServer) -> None:
    client = _client(devmodel, timeout=1.0)
    try:
        devmodel.control.script_error(500)
        with pytest.raises(LLMUnavailable, match="InternalServerError"):
            list(client.stream(MESSAGES, TOOLS))
        devmodel.control.script_hang(5)  # no byte at all: the SDK times out
        with pytest.raises(LLMUnavailable, match="APITimeoutError"):
            list(client.stream(MESSAGES, TOOLS))
        got: list[Any] = []
        devmodel.control.script_text("one two three four five six seven", drop_after=3)  # cut mid-answer
        with pytest.raises(LLMUnavailable):
            for item in client.stream(MESSAGES, TOOLS):
                got.append(item)
        assert got  # some text had arrived: the failure came while reading the stream
        got.clear()
        devmodel.control.script_text("one two three", token_delay_s=3)  # headers, then silence past the timeout
        with pytest.raises(LLMUnavailable, match="ReadTimeout"):
            for item in client.stream(MESSAGES, TOOLS):
                got.append(item)
        devmodel.control.script_tool_calls([("order_status", "{\"order_name\": ")])  # arguments cut short
        with pytest.raises(LLMUnavailable, match="malformed tool arguments"):
            list(client.stream(MESSAGES, TOOLS))
    finally:
        client.close()
