"""The model provider, behind one small facade over the `openai` SDK (any OpenAI-compatible endpoint).

Views and the engine never touch the SDK: they call `ModelClient.stream`, which yields text deltas and,
when the model asks for tools, one final list of `ToolCall`s; every SDK or HTTP failure becomes
`LLMUnavailable` so the engine can fall back to the rule responder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
        calls: dict[int, dict[str, str]] = {}
        try:
            stream = self._client.chat.completions.create(
                model=self.model, messages=list(messages), tools=list(tools) or openai.NOT_GIVEN,  # type: ignore[arg-type]
                stream=True, temperature=0.2,
            )
            with stream:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    if delta.content:
                        yield delta.content
                    for part in delta.tool_calls or []:
                        slot = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                        if part.id:
                            slot["id"] = part.id
                        if part.function and part.function.name:
                            slot["name"] += part.function.name
                        if part.function and part.function.arguments:
                            slot["arguments"] += part.function.arguments
        except openai.OpenAIError as err:
            log.warning("model unavailable", extra={"error": type(err).__name__})
            raise LLMUnavailable(type(err).__name__) from err
        if calls:
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
            yield parsed
