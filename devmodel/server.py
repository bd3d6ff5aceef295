"""devmodel's WSGI app: OpenAI's /v1/chat/completions wire format, answered from a script or by a rule responder."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as werkzeug_make_server

DEFAULT_API_KEY = "sk-devmodel-local"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
FINGERPRINT = "fp_devmodel"
CONVERSATION_HEADER = "X-Devmodel-Conversation"
DEFAULTS: dict[str, Any] = {
    "API_KEY": DEFAULT_API_KEY,  # None: any non-empty bearer key is accepted
    "DELAY_S": 0.0,  # default wait before the first byte of every answer
    "TOKEN_DELAY_S": 0.0,  # default wait before each streamed token (non-streamed: per token, in total)
    "MODELS": DEFAULT_MODELS,  # what GET /v1/models lists (any model name is accepted by chat completions)
    "RECORD_LIMIT": 10_000,  # recorded requests kept (oldest dropped first), so long benchmarks stay bounded
}
STEP_KINDS = ("text", "tool_calls", "error", "hang", "drop")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")

# Word-ish tokens: a word or one punctuation mark with the whitespace before it; joined they give the text back.
TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
ORDER_RE = re.compile(r"\b(?:order|commande|bestellung|pedido)|#\d+", re.IGNORECASE)
ORDER_TOOLS = ("order_status", "list_recent_orders")
GENERIC_REPLY = ("Hello! This is devmodel, the stand-in model for local development, so my answers are canned. "
                 "Mention an order (for example \"where is my order #1001?\") and I will look it up.")

ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {  # status → (message, type, code), as OpenAI words them
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests per min (RPM). Please try again shortly.", "requests",
          "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


class BadStep(ValueError):
    """A scripted step that cannot be used (the control API answers 400 with this message)."""


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # a JSON string, sent verbatim (so a test can script malformed JSON)
    id: str | None = None


@dataclass(frozen=True)
class Step:
    """One scripted answer. See README.md for the JSON form accepted by POST /_devmodel/script."""

    kind: str
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    status: int = 500
    error: Mapping[str, Any] = field(default_factory=dict)  # message, type, param, code
    body: Any = None  # error: a raw body instead of OpenAI's error shape
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 60.0  # hang: how long before the connection is dropped
    delay_s: float | None = None
    token_delay_s: float | None = None
    drop_after: int | None = None  # streamed text/tool_calls: drop the connection after this many tokens
    conversation: str | None = None
    match: str | None = None  # only for a request whose last user message contains this (case-insensitive)

    @classmethod
    def from_json(cls, data: Any) -> Step:
        if not isinstance(data, Mapping):
            raise BadStep("a step must be a JSON object")
        kind = data.get("type")
        if kind not in STEP_KINDS:
            raise BadStep(f"step type must be one of {', '.join(STEP_KINDS)}, not {kind!r}")
        common: dict[str, Any] = {
            "kind": kind,
            "delay_s": _seconds(data, "delay_s"),
            "token_delay_s": _seconds(data, "token_delay_s"),
            "conversation": _optional_str(data, "conversation"),
            "match": _optional_str(data, "match"),
        }
        if kind in ("text", "tool_calls"):
            drop_after = data.get("drop_after")
            if drop_after is not None and (not isinstance(drop_after, int) or drop_after < 0):
                raise BadStep("drop_after must be a non-negative integer")
            common["drop_after"] = drop_after
        if kind == "text":
            if not isinstance(data.get("text"), str):
                raise BadStep("a text step needs \"text\" (a string)")
            return cls(text=data["text"], **common)
        if kind == "tool_calls":
            calls = data.get("tool_calls")
            if not isinstance(calls, list) or not calls:
                raise BadStep("a tool_calls step needs \"tool_calls\": [{\"name\", \"arguments\"}, ...]")
            return cls(text=_optional_str(data, "text"), tool_calls=tuple(_tool_call(c) for c in calls), **common)
        if kind == "error":
            status = data.get("status", 500)
            if not isinstance(status, int) or not 400 <= status <= 599:
                raise BadStep("an error step needs a 4xx or 5xx \"status\"")
            message, error_type, code = ERROR_DEFAULTS.get(
                status, (f"Error {status}.", "server_error" if status >= 500 else "invalid_request_error", None))
            error = {"message": data.get("message") or message, "type": data.get("error_type") or error_type,
                     "param": data.get("param"), "code": data.get("code", code)}
            if not isinstance(data.get("headers") or {}, Mapping):
                raise BadStep("headers must be an object")
            headers = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
            retry_after = _seconds(data, "retry_after")
            if retry_after is not None:  # the SDK prefers retry-after-ms, so sub-second waits work
                headers.setdefault("retry-after-ms", str(round(retry_after * 1000)))
                headers.setdefault("retry-after", str(math.ceil(retry_after)))
            return cls(status=status, error=error, body=data.get("body"), headers=headers, **common)
        if kind == "hang":
            seconds = _seconds(data, "seconds")
            return cls(seconds=60.0 if seconds is None else seconds, **common)
        return cls(**common)  # drop

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        if self.text is not None:
            out["text"] = self.text
        if self.tool_calls:
            out["tool_calls"] = [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in self.tool_calls]
        if self.kind == "error":
            out.update(status=self.status, error=dict(self.error), headers=dict(self.headers))
        if self.kind == "hang":
            out["seconds"] = self.seconds
        for name in ("delay_s", "token_delay_s", "drop_after", "conversation", "match"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def wants(self, conversation: str | None, user_text: str) -> bool:
        return self.conversation == conversation and (self.match is None or self.match.lower() in user_text.lower())


def _seconds(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadStep(f"{key} must be a number of seconds >= 0")
    return float(value)


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BadStep(f"{key} must be a string")
    return value


def _tool_call(data: Any) -> ToolCall:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise BadStep("each tool call needs a \"name\" (and \"arguments\": an object or a JSON string)")
    arguments = data.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(data["name"], arguments, _optional_str(data, "id"))


@dataclass
class Reply:
    """What the model says: text and/or tool calls."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    source: str = "auto"


class DevModelState:
    """The script, the recorded requests and the settings of one devmodel; every method is thread-safe."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.initial = {**DEFAULTS, **(config or {})}
        self.lock = threading.Lock()
        self.closing = threading.Event()  # set on stop: wakes every delay and hang at once
        self.script: list[Step] = []
        self.records: deque[dict[str, Any]] = deque(maxlen=int(self.initial["RECORD_LIMIT"]))
        self._seq = itertools.count(1)
        self.models = tuple(self.initial["MODELS"])
        self._apply_defaults()

    def _apply_defaults(self) -> None:
        self.api_key: str | None = self.initial["API_KEY"]
        self.delay_s = float(self.initial["DELAY_S"])
        self.token_delay_s = float(self.initial["TOKEN_DELAY_S"])

    def next_seq(self) -> int:
        return next(self._seq)

    def close(self) -> None:
        self.closing.set()

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds`; False (at once) when the server is stopping."""
        return seconds <= 0 or not self.closing.wait(seconds)

    def append(self, steps: Iterable[Step]) -> int:
        with self.lock:
            self.script.extend(steps)
            return len(self.script)

    def take(self, conversation: str | None, user_text: str) -> Step | None:
        """The first step for this conversation, else the first global step (each honouring `match`)."""
        with self.lock:
            for wanted in ([conversation] if conversation else []) + [None]:
                for i, step in enumerate(self.script):
                    if step.wants(wanted, user_text):
                        return self.script.pop(i)
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self.lock:
            return [step.describe() for step in self.script]

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.records.append(entry)

    def recorded(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry) for entry in self.records]

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.records.clear()
            self._apply_defaults()

    def configure(self, changes: Mapping[str, Any]) -> None:
        delays = {key: _seconds(changes, key) for key in ("delay_s", "token_delay_s") if key in changes}
        if None in delays.values():
            raise BadStep("delays must be numbers of seconds >= 0")
        if "api_key" in changes and changes["api_key"] is not None and not isinstance(changes["api_key"], str):
            raise BadStep("api_key must be a string, or null to accept any key")
        with self.lock:
            if "api_key" in changes:
                self.api_key = changes["api_key"]
            for key, value in delays.items():
                setattr(self, key, value)

    def settings(self) -> dict[str, Any]:
        with self.lock:
            return {"api_key": self.api_key, "delay_s": self.delay_s, "token_delay_s": self.token_delay_s,
                    "models": list(self.models)}


def get_state() -> DevModelState:
    return current_app.extensions["devmodel"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a devmodel. Config keys and defaults: DEFAULTS (all optional)."""
    app = Flask("devmodel")
    app.extensions["devmodel"] = DevModelState(config)
    app.before_request(record_and_authenticate)  # app-wide, so unknown /v1 paths are recorded too
    app.register_blueprint(v1)
    app.register_blueprint(control)
    app.register_error_handler(HTTPException, _http_error)
    return app


# --- OpenAI's error shape -------------------------------------------------------------------------------------------

def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status, headers=dict(headers or {}),
                    mimetype="application/json")


def openai_error(status: int, message: str, error_type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    return json_response({"error": {"message": message, "type": error_type, "param": param, "code": code}},
                         status, headers)


def _http_error(err: HTTPException) -> Response:
    status = err.code or 500
    if "devmodel_record" in g:
        g.devmodel_record["reply"] = f"error {status}"
    if status == 404:
        return openai_error(404, f"Invalid URL ({request.method} {request.path})")
    return openai_error(status, err.description or err.name, "server_error" if status >= 500 else
                        "invalid_request_error")


# --- /v1: what the SDK talks to -------------------------------------------------------------------------------------

v1 = Blueprint("devmodel_v1", __name__, url_prefix="/v1")


def record_and_authenticate() -> Response | None:
    """Record every /v1 request (even a refused one: it still reached the provider), then check the bearer key."""
    if not request.path.startswith("/v1/"):
        return None
    state = get_state()
    raw = request.get_data(cache=True, as_text=True)
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    entry: dict[str, Any] = {
        "seq": state.next_seq(), "at": time.time(), "method": request.method, "path": request.path,
        "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
        "body": body, "conversation": conversation_of(body), "reply": None,
    }
    if raw and body is None:
        entry["raw"] = raw
    g.devmodel_record = entry
    state.record(entry)
    expected = state.api_key
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        entry["reply"] = "error 401"
        return openai_error(401, "You didn't provide an API key. You need to provide your API key in an "
                                 "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    if expected is not None and key.strip() != expected:
        entry["reply"] = "error 401"
        return openai_error(401, f"Incorrect API key provided: {_mask(key.strip())}.", code="invalid_api_key")
    return None


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}" if len(key) > 10 else "***"


def _set_reply(description: str) -> None:
    g.devmodel_record["reply"] = description


@v1.get("/models")
def list_models() -> Response:
    models = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "devmodel"}
              for m in get_state().models]
    _set_reply("models")
    return json_response({"object": "list", "data": models})


@v1.post("/chat/completions")
def chat_completions() -> Response:
    state = get_state()
    body = g.devmodel_record["body"]
    problem = validate(body)
    if problem is not None:
        message, param, code = problem
        _set_reply(f"error 400: {message}")
        return openai_error(400, message, param=param, code=code)
    stream = bool(body.get("stream"))
    step = state.take(conversation_of(body), text_of(last_message(body["messages"], "user")))
    delay = state.delay_s if step is None or step.delay_s is None else step.delay_s
    token_delay = state.token_delay_s if step is None or step.token_delay_s is None else step.token_delay_s
    environ = request.environ
    if step is not None and step.kind in ("hang", "drop"):
        _set_reply(f"script {step.kind}")
        wait = step.seconds if step.kind == "hang" else delay
        return Response(_dropping(state, environ, wait), 200)
    if step is not None and step.kind == "error":
        _set_reply(f"script error {step.status}")
        payload = step.body if step.body is not None else {"error": dict(step.error)}
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False).encode()
        mimetype = "text/plain" if isinstance(payload, str) else "application/json"
        return Response(_after(state, delay, data), step.status, mimetype=mimetype,
                        headers={**step.headers, "Content-Length": str(len(data))})
    reply = (Reply(step.text, list(step.tool_calls), "script") if step is not None else auto_reply(body))
    reply = replace(reply, tool_calls=[replace(c, id=c.id or f"call_dm{state.next_seq():08d}")
                                       for c in reply.tool_calls])
    _set_reply(f"{reply.source} {'tool_calls' if reply.tool_calls else 'text'}")
    answer = Answer(reply, body, f"chatcmpl-dm{state.next_seq():08d}")
    headers = {"x-request-id": f"req_dm{g.devmodel_record['seq']:08d}", "openai-model": answer.model}
    drop_after = step.drop_after if step is not None else None
    if stream:
        events = _stream(state, environ, answer, delay, token_delay, drop_after)
        return Response(events, 200, mimetype="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
    data = json.dumps(answer.completion(), ensure_ascii=False).encode()
    wait = delay + token_delay * answer.completion_tokens  # non-streamed: the whole generation time up front
    return Response(_after(state, wait, data), 200, mimetype="application/json",
                    headers={**headers, "Content-Length": str(len(data))})


def _after(state: DevModelState, seconds: float, data: bytes) -> Iterator[bytes]:
    # Inside the body iterator, so werkzeug sends the status line only after the wait (a true time to first byte).
    state.sleep(seconds)
    yield data


def _dropping(state: DevModelState, environ: Mapping[str, Any], seconds: float) -> Iterator[bytes]:
    state.sleep(seconds)
    drop(environ)
    yield b""  # never reached; makes this a generator


def drop(environ: Mapping[str, Any]) -> NoReturn:
    """Close the client's connection without a (complete) answer; werkzeug treats the raised error as a drop."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("devmodel dropped the connection on purpose")


def _stream(state: DevModelState, environ: Mapping[str, Any], answer: Answer, delay: float, token_delay: float,
            drop_after: int | None) -> Iterator[bytes]:
    state.sleep(delay)
    sent = 0
    for is_token, chunk in answer.chunks():
        if is_token:
            if drop_after is not None and sent >= drop_after:
                drop(environ)
            state.sleep(token_delay)
            sent += 1
        yield b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


class Answer:
    """One reply rendered in OpenAI's shapes: a chat.completion, or chat.completion.chunk events."""

    def __init__(self, reply: Reply, body: Mapping[str, Any], completion_id: str) -> None:
        self.reply = reply
        self.id = completion_id
        self.model = str(body.get("model"))
        self.created = int(time.time())
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.prompt_tokens = sum(3 + len(tokens(text_of(m))) for m in body["messages"])
        self.text_tokens = tokens(reply.text or "")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        self.finish_reason = "tool_calls" if reply.tool_calls else "stop"
        if isinstance(limit, int) and not reply.tool_calls and len(self.text_tokens) > limit:
            self.text_tokens, self.finish_reason = self.text_tokens[:limit], "length"
        self.completion_tokens = len(self.text_tokens) + sum(len(tokens(c.arguments)) + 1 for c in reply.tool_calls)

    def usage(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def _envelope(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "service_tier": "default", "system_fingerprint": FINGERPRINT}

    def completion(self) -> dict[str, Any]:
        text = "".join(self.text_tokens) if self.reply.text is not None else None
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if self.reply.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in self.reply.tool_calls]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
        return {**self._envelope("chat.completion"), "choices": [choice], "usage": self.usage()}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk = {**self._envelope("chat.completion.chunk"),
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self) -> Iterator[tuple[bool, dict[str, Any]]]:
        """(is_token, chunk) pairs: role first, then content tokens, tool calls, the finish and the usage chunk."""
        has_text = self.reply.text is not None
        yield False, self._chunk({"role": "assistant", "content": "" if has_text else None, "refusal": None})
        for token in self.text_tokens:
            yield True, self._chunk({"content": token})
        for index, call in enumerate(self.reply.tool_calls):
            yield True, self._chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                                     "function": {"name": call.name, "arguments": ""}}]})
            for fragment in tokens(call.arguments):
                yield True, self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield False, self._chunk({}, self.finish_reason)
        if self.include_usage:
            yield False, {**self._envelope("chat.completion.chunk"), "choices": [], "usage": self.usage()}


# --- request reading and validation ---------------------------------------------------------------------------------

def conversation_of(body: Any) -> str | None:
    """Which scripted conversation a request belongs to: our header, else an id the request carries."""
    header = request.headers.get(CONVERSATION_HEADER)
    if header:
        return header
    if not isinstance(body, Mapping):
        return None
    metadata = body.get("metadata")
    candidates = [metadata.get("conversation_id") if isinstance(metadata, Mapping) else None,
                  body.get("safety_identifier"), body.get("prompt_cache_key"), body.get("user")]
    return next((str(c) for c in candidates if isinstance(c, str) and c), None)


def text_of(message: Mapping[str, Any] | None) -> str:
    """A message's text, whether content is a string or a list of parts."""
    content = (message or {}).get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def last_message(messages: list[Mapping[str, Any]], role: str) -> Mapping[str, Any] | None:
    return next((m for m in reversed(messages) if m.get("role") == role), None)


def validate(body: Any) -> tuple[str, str | None, str | None] | None:
    """(message, param, code) of the first problem OpenAI would answer 400 for, or None."""
    if not isinstance(body, Mapping):
        return ("We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
                None, None)
    if not body.get("model"):
        return "you must provide a model parameter", None, None
    if "messages" not in body:
        return "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
    messages = body["messages"]
    if not isinstance(messages, list):
        return "Invalid type for 'messages': expected an array.", "messages", "invalid_type"
    if not messages:
        return ("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array "
                "instead.", "messages", "empty_array")
    pending: set[str] | None = None  # tool_call ids of the last assistant message still waiting for an answer
    asked_at = 0
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            return f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]", "invalid_type"
        role = message.get("role")
        if role is None:
            return f"Missing required parameter: 'messages[{i}].role'.", f"messages[{i}].role", \
                "missing_required_parameter"
        if role not in ROLES:
            return (f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', "
                    "'tool', and 'developer'.", f"messages[{i}].role", "invalid_value")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id:
                return (f"Missing required parameter: 'messages[{i}].tool_call_id'.", f"messages[{i}].tool_call_id",
                        "missing_required_parameter")
            if pending is None:
                return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        "with 'tool_calls'.", f"messages.[{i}].role", None)
            if call_id not in pending:
                return (f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous "
                        "message.", f"messages.[{i}].tool_call_id", None)
            pending.discard(call_id)
            continue
        if pending:
            return _unanswered(asked_at, pending)
        pending = None
        if role == "assistant" and message.get("tool_calls"):
            calls = message["tool_calls"]
            if not isinstance(calls, list) or not all(isinstance(c, Mapping) and c.get("id") for c in calls):
                return (f"Invalid 'messages[{i}].tool_calls': each needs an id.", f"messages[{i}].tool_calls",
                        "invalid_value")
            pending, asked_at = {str(c["id"]) for c in calls}, i
    if pending:
        return _unanswered(asked_at, pending)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "Invalid type for 'tools': expected an array.", "tools", "invalid_type"
        for i, tool in enumerate(tools):
            if not isinstance(tool, Mapping) or tool.get("type", "function") == "function" and not (
                    isinstance(tool.get("function"), Mapping) and tool["function"].get("name")):
                return (f"Missing required parameter: 'tools[{i}].function.name'.", f"tools[{i}].function.name",
                        "missing_required_parameter")
    return None


def _unanswered(index: int, ids: set[str]) -> tuple[str, str, None]:
    return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(ids))}",
            f"messages.[{index}].role", None)


# --- the rule responder (`make dev`, and any request the script does not cover) -------------------------------------

def auto_reply(body: Mapping[str, Any]) -> Reply:
    """Deterministic and plainly canned: look an order up when asked, then quote what the tool returned."""
    messages: list[Mapping[str, Any]] = body["messages"]
    if messages[-1].get("role") == "tool":
        trailing = list(itertools.takewhile(lambda m: m.get("role") == "tool", reversed(messages)))[::-1]
        return Reply(" ".join(summarise_tool_result(_tool_name(messages, m), text_of(m)) for m in trailing))
    user_at = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    answered = any(m.get("role") == "tool" for m in messages[user_at + 1:])
    tool = _order_tool(body)
    if user_at >= 0 and tool and not answered and ORDER_RE.search(text_of(messages[user_at])):
        return Reply(tool_calls=[ToolCall(tool, "{}")])
    return Reply(GENERIC_REPLY)


def _order_tool(body: Mapping[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    offered = [t["function"]["name"] for t in body.get("tools") or []
               if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)]
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return choice["function"].get("name")
    return next((name for name in ORDER_TOOLS if name in offered), None)


def _tool_name(messages: list[Mapping[str, Any]], result: Mapping[str, Any]) -> str:
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping) and call.get("id") == result.get("tool_call_id"):
                return str((call.get("function") or {}).get("name") or "the tool")
    return "the tool"


STATUS_KEYS = ("status", "displayfulfillmentstatus", "fulfillmentstatus", "orderstatus", "shipmentstatus",
               "displayfinancialstatus", "financialstatus", "state")
ORDER_KEYS = ("ordername", "ordernumber", "name", "number")


def summarise_tool_result(tool: str, content: str) -> str:
    """One sentence quoting the tool's JSON: order, status, tracking number, carrier, tracking link."""
    try:
        data = json.loads(content)
    except ValueError:
        return f"{tool} returned: \"{_clip(content)}\"."
    if isinstance(data, Mapping) and data.get("error"):
        error = data["error"]
        message = error.get("message", error) if isinstance(error, Mapping) else error
        return f"{tool} reported an error: \"{_clip(str(message))}\"."
    orders = data if isinstance(data, list) else data.get("orders") if isinstance(data, Mapping) else None
    if isinstance(orders, list):
        if not orders:
            return f"{tool} found no orders."
        shown = ", ".join(_describe(o, short=True) for o in orders[:3]) + (", ..." if len(orders) > 3 else "")
        return f"{tool} found {len(orders)} order{'s' if len(orders) != 1 else ''}: {shown}."
    facts = _describe(data)
    return f"{facts}." if facts else f"{tool} returned {_clip(json.dumps(data, ensure_ascii=False))}."


def _describe(data: Any, short: bool = False) -> str:
    """"Order #1001: status FULFILLED, tracking number 1Z99 (UPS)" from whichever of those keys the JSON has."""
    if not isinstance(data, Mapping):
        return _clip(json.dumps(data, ensure_ascii=False), 40)
    fields = _flatten(data)
    label = next((v for key in ORDER_KEYS for path, v in fields
                  if path[-1] == key and (len(path) == 1 or path[:-1] == ("order",))), None)
    name = f"#{label}" if label and label.isdigit() else label
    status = next((v for key in STATUS_KEYS for path, v in fields if path[-1] == key), None)
    if short:
        return f"{name or 'an order'}" + (f" ({status})" if status else "")
    tracking = next((v for path, v in fields if path[-1] in ("trackingnumber", "trackingnumbers")
                     or path[-1] == "number" and any("tracking" in p for p in path[:-1])), None)
    carrier = next((v for path, v in fields if path[-1] in ("carrier", "company", "trackingcompany")), None)
    link = next((v for path, v in fields if path[-1] in ("trackingurl", "trackingurls")
                 or path[-1] == "url" and any("tracking" in p for p in path[:-1])), None)
    parts = [f"status {status}"] if status else []
    if tracking:
        parts.append(f"tracking number {tracking}" + (f" ({carrier})" if carrier else ""))
    if link:
        parts.append(f"tracking link {link}")
    if not parts:
        return ""
    return f"Order {name}: " + ", ".join(parts) if name else "The order has " + ", ".join(parts)


def _flatten(data: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Scalar leaves (lists of scalars joined), breadth first, under normalised keys ("tracking_number" → ...)."""
    out: list[tuple[tuple[str, ...], str]] = []
    queue: deque[tuple[tuple[str, ...], Any]] = deque(
        ((re.sub(r"[^a-z0-9]", "", str(k).lower()),), v) for k, v in data.items())
    while queue:
        path, value = queue.popleft()
        if isinstance(value, Mapping):
            queue.extend((path + (re.sub(r"[^a-z0-9]", "", str(k).lower()),), v) for k, v in value.items())
        elif isinstance(value, list):
            scalars = [v for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)]
            if scalars and len(scalars) == len(value):
                out.append((path, ", ".join(str(v) for v in scalars)))
            else:
                queue.extend((path, v) for v in value if isinstance(v, Mapping))
        elif isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            out.append((path, str(value)))
    return out


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- /_devmodel: the control API (not OpenAI) -----------------------------------------------------------------------

control = Blueprint("devmodel_control", __name__, url_prefix="/_devmodel")


def _body() -> Any:
    return request.get_json(silent=True)


@control.get("/health")
def health() -> Response:
    return json_response({"ok": True})


@control.post("/script")
def add_steps() -> Response:
    """Append steps: {"steps": [step, ...]} or one step object."""
    data = _body()
    raw = data.get("steps") if isinstance(data, Mapping) and "steps" in data else [data]
    if not isinstance(raw, list):
        return openai_error(400, "steps must be a list of step objects")
    try:
        steps = [Step.from_json(item) for item in raw]
    except BadStep as err:
        return openai_error(400, str(err))
    return json_response({"queued": len(steps), "pending": get_state().append(steps)})


@control.get("/script")
def pending_steps() -> Response:
    return json_response({"steps": get_state().pending()})


@control.post("/reset")
def reset() -> Response:
    state = get_state()
    state.reset()
    return json_response(state.settings())


@control.get("/requests")
def recorded_requests() -> Response:
    return json_response({"requests": get_state().recorded()})


@control.get("/config")
def get_config() -> Response:
    return json_response(get_state().settings())


@control.post("/config")
def set_config() -> Response:
    state = get_state()
    data = _body()
    if not isinstance(data, Mapping):
        return openai_error(400, "send a JSON object: {api_key, delay_s, token_delay_s}")
    try:
        state.configure(data)
    except BadStep as err:
        return openai_error(400, str(err))
    return json_response(state.settings())


# --- serving ------------------------------------------------------------------------------------------------------

class RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler with Nagle off: each streamed token leaves at once, not after a delayed ACK."""

    disable_nagle_algorithm = True


class QuietRequestHandler(RequestHandler):
    """No access log lines (tests)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def make_server(app: Flask, host: str = "127.0.0.1", port: int = 0, quiet: bool = False) -> BaseWSGIServer:
    """A threaded werkzeug server for `app` (one thread per request, so streams and hangs run side by side)."""
    handler = QuietRequestHandler if quiet else RequestHandler
    return werkzeug_make_server(host, port, app, threaded=True, request_handler=handler)
