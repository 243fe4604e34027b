"""A record's conversation in the GenAI conventions' JSON structure, for the opt-in content attributes.

``gen_ai.system_instructions``, ``gen_ai.input.messages`` and ``gen_ai.output.messages`` are built
from the provider-independent `Conversation` the providers read from the record's stored request and
response: the record as it is stored, after redaction, so that nothing the redactor removed can
reach a collector. Each attribute is JSON text (the conventions' form for spans where structured
attributes are not supported). Pure functions; a conversation that cannot be read gives none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson

from ..providers import Conversation, Part, conversation
from ..providers._conversation import TEXT_LIMIT_CHARS
from ..record.model import AuditRecord
from ._payload import finish_reasons

__all__ = ["content_attributes", "finish_reason", "input_messages", "output_messages"]

#: Request fields that carry instructions apart from the chat history: their system parts go to
#: ``gen_ai.system_instructions`` (Anthropic, Gemini, the Responses API, Cohere v1, Ollama).
_SEPARATE_SYSTEM = ("system", "systemInstruction", "system_instruction", "instructions", "preamble")
_SYSTEM_ROLES = frozenset({"system", "developer"})

#: Provider finish reasons -> the conventions' ``finish_reason`` values.
_FINISH: dict[str, str] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "complete": "stop",
    "completed": "stop",
    "COMPLETE": "stop",
    "STOP": "stop",
    "length": "length",
    "max_tokens": "length",
    "MAX_TOKENS": "length",
    "incomplete": "length",
    "tool_calls": "tool_call",
    "tool_use": "tool_call",
    "function_call": "tool_call",
    "TOOL_CALL": "tool_call",
    "content_filter": "content_filter",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "ERROR": "error",
}


def _arguments(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _part(whole: Part) -> dict[str, Any]:
    """One part in the conventions' form, its text cut at `TEXT_LIMIT_CHARS` (the limit of the
    record's own flat text), which keeps the JSON structure whole, as the conventions advise."""
    part = (
        whole if len(whole.text) <= TEXT_LIMIT_CHARS else replace(whole, text=whole.text[:TEXT_LIMIT_CHARS])
    )
    kind = part.kind
    if kind == "tool_call":
        return {
            "type": "tool_call",
            "id": part.call_id,
            "name": part.name or "",
            "arguments": _arguments(part.text),
        }
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": part.call_id, "response": part.text}
    if kind == "reasoning":
        return {"type": "reasoning", "content": part.text}
    if kind == "media":  # never its bytes: what it was, as a generic part
        return {"type": part.text or "media"}
    return {"type": "text", "content": part.text}


def _messages(parts: Iterable[Part]) -> list[dict[str, Any]]:
    """Consecutive parts of one role as one message."""
    messages: list[dict[str, Any]] = []
    for part in parts:
        if messages and messages[-1]["role"] == part.role:
            messages[-1]["parts"].append(_part(part))
        else:
            messages.append({"role": part.role, "parts": [_part(part)]})
    return messages


def finish_reason(reason: str | None) -> str:
    """The conventions' name for a provider's finish reason (``stop`` when there is none)."""
    if reason is None:
        return "stop"
    return _FINISH.get(reason, reason)


def input_messages(found: Conversation, separate_system: bool) -> tuple[list[Any], list[dict[str, Any]]]:
    """(system instructions, input messages) of a conversation."""
    if not separate_system:
        return [], _messages(found.input)
    system = [_part(p) for p in found.input if p.role in _SYSTEM_ROLES]
    return system, _messages(p for p in found.input if p.role not in _SYSTEM_ROLES)


def output_messages(found: Conversation, reason: str | None) -> list[dict[str, Any]]:
    """The answer as one output message per role run, each with its finish reason."""
    messages = _messages(found.output)
    for message in messages:
        message["finish_reason"] = finish_reason(reason)
    return messages


def content_attributes(record: AuditRecord) -> dict[str, str]:
    """The opt-in content attributes of a call record, as JSON text; empty when none can be read."""
    try:
        found = conversation(record.provider, record.operation, record.request, record.response)
    except Exception:  # noqa: BLE001 - a payload the provider's reader did not expect: no content
        return {}
    request = record.request if isinstance(record.request, dict) else {}
    separate = any(request.get(key) for key in _SEPARATE_SYSTEM)
    system, inputs = input_messages(found, separate)
    reasons = finish_reasons(record.response)
    outputs = output_messages(found, reasons[0] if reasons else None)
    attributes: dict[str, str] = {}
    for name, value in (
        ("gen_ai.system_instructions", system),
        ("gen_ai.input.messages", inputs),
        ("gen_ai.output.messages", outputs),
    ):
        if value:
            attributes[name] = orjson.dumps(value).decode()
    return attributes
