"""devmodel through the real openai SDK: wire format, streams, tool calls, errors, hangs, delays, auto mode."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from openai import OpenAI

from devmodel.server import GENERIC_REPLY
from devmodel.testing import DevModelControl, DevModelServer

REPO = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini"
HELLO: list[Any] = [{"role": "user", "content": "hello"}]
ORDER_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "order_status", "description": "Status of the customer's order",
                                      "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "list_recent_orders", "description": "The customer's recent orders",
                                      "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture
def model() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        yield server


@pytest.fixture
def control(model: DevModelServer) -> DevModelControl:
    return model.control


@pytest.fixture
def llm(model: DevModelServer) -> Iterator[OpenAI]:
    """The SDK as the app builds it; no retries so failures surface at once."""
    with OpenAI(api_key=model.api_key, base_url=model.base_url, max_retries=0, timeout=10) as client:
        yield client


def test_non_streamed_text(llm: OpenAI, control: DevModelControl) -> None:
    control.script_text("Your parcel left the warehouse.")
    completion = llm.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.object == "chat.completion" and completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "Your parcel left the warehouse."
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert control.pending() == []


def test_streamed_text_reassembles_exactly(llm: OpenAI, control: DevModelControl) -> None:
    text = "Bonjour !  Votre commande #1001 est expédiée,\nsuivi: 1Z999AA1 — merci.\n"
    control.script_text(text)
    chunks = list(llm.chat.completions.create(model=MODEL, messages=HELLO, stream=True,
                                              stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == text
    assert len([p for p in pieces if p]) > 10  # token by token, not one blob
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # include_usage: a last, usage-only chunk


def test_non_streamed_tool_calls(llm: OpenAI, control: DevModelControl) -> None:
    control.script_tool_calls([("order_status", {"order": "#1001", "email": "é@x.fr"}),
                               ("list_recent_orders", {})])
    message = llm.chat.completions.create(model=MODEL, messages=HELLO, tools=ORDER_TOOLS).choices[0]
    assert message.finish_reason == "tool_calls"
    calls = message.message.tool_calls
    assert calls is not None and [c.type for c in calls] == ["function", "function"]
    assert [c.function.name for c in calls] == ["order_status", "list_recent_orders"]
    assert json.loads(calls[0].function.arguments) == {"order": "#1001", "email": "é@x.fr"}
    assert json.loads(calls[1].function.arguments) == {}
    assert calls[0].id != calls[1].id and calls[0].id.startswith("call_")
    assert message.message.content is None


def test_streamed_tool_calls(llm: OpenAI, control: DevModelControl) -> None:
    calls = [("order_status", {"order": "#1001", "items": [1, 2]}), ("list_recent_orders", {"limit": 3})]
    control.script_tool_calls(calls)
    control.script_tool_calls(calls, text="Let me check.")
    # Raw chunks: index/id/name first, then argument fragments.
    chunks = list(llm.chat.completions.create(model=MODEL, messages=HELLO, tools=ORDER_TOOLS, stream=True))
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    heads = [d for d in deltas if d.id]
    assert [(d.index, d.function and d.function.name) for d in heads] == [(0, "order_status"),
                                                                          (1, "list_recent_orders")]
    arguments = ["".join(d.function.arguments or "" for d in deltas if d.index == i and d.function) for i in (0, 1)]
    assert [json.loads(a) for a in arguments] == [{"order": "#1001", "items": [1, 2]}, {"limit": 3}]
    assert len([d for d in deltas if d.index == 0]) > 3  # fragments, not one piece
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # The SDK's own accumulator builds the same message (with the text that came first).
    with llm.chat.completions.stream(model=MODEL, messages=HELLO, tools=ORDER_TOOLS) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Let me check." and final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == \
        [("order_status", {"order": "#1001", "items": [1, 2]}), ("list_recent_orders", {"limit": 3})]


def test_tool_round_trip_and_tool_message_validation(llm: OpenAI, control: DevModelControl) -> None:
    control.script_tool_calls([("order_status", {})])
    control.script_text("It shipped yesterday.")
    first = llm.chat.completions.create(model=MODEL, messages=HELLO, tools=ORDER_TOOLS).choices[0].message
    assert first.tool_calls is not None
    call = first.tool_calls[0]
    messages: list[Any] = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name,
                                                             "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"status": "SHIPPED"})},
    ]
    second = llm.chat.completions.create(model=MODEL, messages=messages, tools=ORDER_TOOLS)
    assert second.choices[0].message.content == "It shipped yesterday."
    # A tool message answering an id the assistant never issued: OpenAI's 400.
    wrong: list[Any] = [*messages[:2], {**messages[2], "tool_call_id": "call_unknown"}]
    with pytest.raises(openai.BadRequestError) as err:
        llm.chat.completions.create(model=MODEL, messages=wrong, tools=ORDER_TOOLS)
    assert "call_unknown" in err.value.message and err.value.param == "messages.[2].tool_call_id"
    # ...and an assistant tool call left unanswered.
    with pytest.raises(openai.BadRequestError, match=re.escape(call.id)):
        llm.chat.completions.create(model=MODEL, messages=[*messages[:2], {"role": "user", "content": "?"}])
    with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
        llm.chat.completions.create(model=MODEL, messages=[*HELLO, messages[2]])


def test_bad_requests_use_openai_error_shape(model: DevModelServer) -> None:
    auth = {"Authorization": f"Bearer {model.api_key}"}
    response = requests.post(f"{model.base_url}/chat/completions", json={"model": MODEL}, headers=auth, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": {"message": "Missing required parameter: 'messages'.",
                                         "type": "invalid_request_error", "param": "messages",
                                         "code": "missing_required_parameter"}}
    response = requests.post(f"{model.base_url}/chat/completions", json={"model": MODEL, "messages": HELLO},
                             timeout=5)
    assert response.status_code == 401 and set(response.json()["error"]) == {"message", "type", "param", "code"}
    response = requests.get(f"{model.base_url}/nope", headers=auth, timeout=5)
    assert response.status_code == 404 and response.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"
    assert [r["reply"] for r in model.control.requests()] == ["error 400: Missing required parameter: 'messages'.",
                                                              "error 401", "error 404"]


def test_wrong_key_is_an_authentication_error(model: DevModelServer, control: DevModelControl) -> None:
    with OpenAI(api_key="sk-wrong-key-123456", base_url=model.base_url, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as err:
            client.chat.completions.create(model=MODEL, messages=HELLO)
    assert err.value.code == "invalid_api_key" and "sk-wrong-key-123456" not in err.value.message
    control.configure(api_key="sk-rotated")
    assert model.api_key == "sk-rotated"
    with OpenAI(api_key="sk-rotated", base_url=model.base_url, max_retries=0) as client:
        assert client.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content
    assert control.reset()["api_key"] != "sk-rotated"  # reset restores the start-up key


def test_scripted_500_raises_internal_server_error(llm: OpenAI, control: DevModelControl) -> None:
    control.script_error(500)
    with pytest.raises(openai.InternalServerError) as err:
        llm.chat.completions.create(model=MODEL, messages=HELLO)
    assert err.value.status_code == 500 and err.value.type == "server_error"
    control.script_error(429, retry_after=2, code="rate_limit_exceeded")
    with pytest.raises(openai.RateLimitError) as limited:
        llm.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.response.headers["retry-after-ms"] == "2000"


def test_sdk_retry_consumes_two_steps(model: DevModelServer, control: DevModelControl) -> None:
    control.script_error(503, retry_after=0.01)  # retry-after-ms keeps the SDK's back-off short
    control.script_text("Recovered.")
    with OpenAI(api_key=model.api_key, base_url=model.base_url, max_retries=1) as client:
        completion = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content == "Recovered."
    assert control.pending() == []
    sent = control.requests("/v1/chat/completions")
    assert [r["reply"] for r in sent] == ["script error 503", "script text"]
    assert [r["headers"].get("X-Stainless-Retry-Count") for r in sent] == ["0", "1"]


def test_hang_times_out_and_drop_is_a_connection_error(llm: OpenAI, control: DevModelControl) -> None:
    control.script_hang(30)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        llm.chat.completions.create(model=MODEL, messages=HELLO, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    control.script_drop()
    with pytest.raises(openai.APIConnectionError):
        llm.chat.completions.create(model=MODEL, messages=HELLO)
    control.script_text("one two three four", drop_after=2)
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in llm.chat.completions.create(model=MODEL, messages=HELLO, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"
    # The hung request is still sleeping server-side; the server answers others meanwhile.
    assert llm.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content == GENERIC_REPLY


def test_recorded_requests_hold_what_was_sent(llm: OpenAI, control: DevModelControl) -> None:
    first: list[Any] = [{"role": "system", "content": "You are Lumi."},
                        {"role": "user", "content": "Où est ma commande ?"}]
    llm.chat.completions.create(model=MODEL, messages=first)
    llm.chat.completions.create(model=MODEL, messages=HELLO, stream=True).close()
    llm.models.list()
    recorded = control.requests()
    assert [r["path"] for r in recorded] == ["/v1/chat/completions", "/v1/chat/completions", "/v1/models"]
    assert recorded[0]["body"]["messages"] == first and recorded[1]["body"]["stream"] is True
    assert control.bodies()[1]["messages"] == HELLO
    assert all("Authorization" not in r["headers"] for r in recorded)
    assert [r["seq"] for r in recorded] == sorted(r["seq"] for r in recorded)
    control.reset()
    assert control.requests() == []


def test_delays_are_honoured(llm: OpenAI, control: DevModelControl) -> None:
    control.script_text("slow start", delay_s=0.3)
    started = time.monotonic()
    stream = llm.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    next(iter(stream))
    assert time.monotonic() - started >= 0.3
    stream.close()
    control.script_text("a b c d e", token_delay_s=0.05)
    started = time.monotonic()
    assert "".join(c.choices[0].delta.content or "" for c in
                   llm.chat.completions.create(model=MODEL, messages=HELLO, stream=True)) == "a b c d e"
    assert time.monotonic() - started >= 5 * 0.05
    # Global fixed latency (benchmarks): applies to the rule responder and to steps without their own delay.
    assert control.configure(delay_s=0.2, token_delay_s=0.001)["delay_s"] == 0.2
    started = time.monotonic()
    llm.chat.completions.create(model=MODEL, messages=HELLO)
    assert time.monotonic() - started >= 0.2
    assert control.reset()["delay_s"] == 0.0


def test_concurrent_requests_are_all_served(model: DevModelServer, control: DevModelControl) -> None:
    count = 8
    for i in range(count):
        control.script_text(f"answer for conversation {i}", conversation=f"conv-{i}", delay_s=0.2)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(client: OpenAI, i: int) -> None:
        try:
            stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True,
                                                    extra_headers={"X-Devmodel-Conversation": f"conv-{i}"})
            results[i] = "".join(c.choices[0].delta.content or "" for c in stream)
        except BaseException as err:  # surfaced by the assertion below, not lost in the thread
            errors.append(err)

    with OpenAI(api_key=model.api_key, base_url=model.base_url, max_retries=0) as client:
        threads = [threading.Thread(target=ask, args=(client, i)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
    assert errors == []
    assert results == {i: f"answer for conversation {i}" for i in range(count)}
    assert len(control.requests()) == count and control.pending() == []


def test_conversation_and_match_routing(llm: OpenAI, control: DevModelControl) -> None:
    control.script_text("for bob", conversation="bob")
    control.script_text("about refunds", match="REFUND")
    control.script_text("global")
    assert llm.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content == "global"
    refund: list[Any] = [{"role": "user", "content": "Can I get a refund?"}]
    assert llm.chat.completions.create(model=MODEL, messages=refund).choices[0].message.content == "about refunds"
    # safety_identifier (or prompt_cache_key, user, metadata.conversation_id) names the conversation too.
    bob = llm.chat.completions.create(model=MODEL, messages=HELLO, safety_identifier="bob")
    assert bob.choices[0].message.content == "for bob"
    assert control.pending() == []


def test_auto_mode_calls_order_status_then_summarises(llm: OpenAI, control: DevModelControl) -> None:
    question: list[Any] = [{"role": "system", "content": "You are Lumi."},
                {"role": "user", "content": "Hi, where is my order #1001?"}]
    first = llm.chat.completions.create(model=MODEL, messages=question, tools=ORDER_TOOLS).choices[0]
    assert first.finish_reason == "tool_calls" and first.message.tool_calls is not None
    call = first.message.tool_calls[0]
    assert call.function.name == "order_status" and json.loads(call.function.arguments) == {}
    result = {"order": {"name": "#1001", "displayFulfillmentStatus": "FULFILLED",
                        "fulfillments": [{"trackingInfo": [{"number": "1Z999AA10123456784", "company": "UPS"}]}]}}
    follow_up: list[Any] = [*question,
                 {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
                 {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}]
    chunks = llm.chat.completions.create(model=MODEL, messages=follow_up, tools=ORDER_TOOLS, stream=True)
    summary = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert summary == "Order #1001: status FULFILLED, tracking number 1Z999AA10123456784 (UPS)."
    # Other languages and bare "#123" count as order questions; list_recent_orders when it is the only order tool.
    only_list = [ORDER_TOOLS[1]]
    for text in ("Wo ist meine Bestellung?", "¿Dónde está mi pedido?", "status of #77 please"):
        reply = llm.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}],
                                            tools=only_list).choices[0].message
        assert reply.tool_calls is not None and reply.tool_calls[0].function.name == "list_recent_orders"
    # No tools offered, or no order mentioned: the friendly canned reply.
    assert llm.chat.completions.create(model=MODEL, messages=question).choices[0].message.content == GENERIC_REPLY
    assert llm.chat.completions.create(model=MODEL, messages=HELLO, tools=ORDER_TOOLS
                                       ).choices[0].message.content == GENERIC_REPLY


def test_auto_mode_summaries(llm: OpenAI) -> None:
    def summary(content: str, tool: str = "list_recent_orders") -> str | None:
        messages: list[Any] = [{"role": "user", "content": "my orders?"},
                    {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                                          "function": {"name": tool, "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": content}]
        return llm.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content

    orders = {"orders": [{"name": "#1001", "status": "FULFILLED"}, {"name": "#1002", "status": "UNFULFILLED"}]}
    assert summary(json.dumps(orders)) == "list_recent_orders found 2 orders: #1001 (FULFILLED), #1002 (UNFULFILLED)."
    assert summary(json.dumps({"error": "verification required"}), "order_status") == \
        "order_status reported an error: \"verification required\"."
    assert summary("not json") == "list_recent_orders returned: \"not json\"."


def test_models_and_length_limit(llm: OpenAI, control: DevModelControl) -> None:
    assert "gpt-4o-mini" in [m.id for m in llm.models.list()]
    control.script_text("one two three four five")
    choice = llm.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=2).choices[0]
    assert choice.finish_reason == "length" and choice.message.content == "one two"


def test_control_rejects_bad_steps(control: DevModelControl) -> None:
    with pytest.raises(requests.HTTPError, match="step type"):
        control.script({"type": "poem"})
    with pytest.raises(requests.HTTPError, match="4xx or 5xx"):
        control.script_error(200)
    assert control.pending() == []


def test_cli_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devmodel", "--port", "0", "--api-key", "sk-cli", "--delay", "0.05", "--quiet"],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 15
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()
            if m := re.search(r"devmodel serving (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
        assert url, "no start-up line naming the URL"
        with OpenAI(api_key="sk-cli", base_url=f"{url}/v1", max_retries=0) as client:
            assert client.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content
        assert DevModelControl(url).config()["delay_s"] == 0.05
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
