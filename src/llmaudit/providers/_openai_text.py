"""The conversation of the OpenAI wire format (OpenAI, Azure, Mistral, Groq and every compatible
server): chat completions, legacy completions, the Responses API (its output items and list-form
``input``) and embeddings. Pure functions over parsed JSON (see `_conversation`)."""

from __future__ import annotations

import math
from typing import Any

from ._common import items, obj
from ._conversation import EMPTY, Conversation, Part, arguments_text, text_of

__all__ = ["content_parts", "message_parts", "openai_conversation"]

#: Content part types that hold text, and the key holding it.
_TEXT_PARTS = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "refusal": "refusal",
    "summary_text": "text",
}
#: Responses API items that are tool calls made by the model (hosted tools included).
_CALL_ITEMS = {
    "function_call": "arguments",
    "custom_tool_call": "input",
    "mcp_call": "arguments",
}


def openai_conversation(operation: str, request: Any, response: Any) -> Conversation:
    """The conversation of one OpenAI-format exchange (`EMPTY` for operations without one)."""
    req, resp = obj(request), obj(response)
    if operation in ("chat.completions", "agents.completions"):
        return Conversation(_chat_input(req), _chat_output(resp))
    if operation in ("completions", "fim.completions"):
        return Conversation(_prompt(req), _completion_output(resp))
    if operation == "responses":
        return Conversation(_responses_input(req), _responses_output(resp))
    if operation == "embeddings":
        return Conversation(_prompt(req, "input"), (), _vectors(resp))
    return EMPTY


def content_parts(role: str, content: Any, out: list[Part]) -> None:
    """Message content (a string, or a list of typed parts) as parts of *role*."""
    if isinstance(content, str):
        if content:
            out.append(Part(role, "text", content))
        return
    for value in items(content):
        if isinstance(value, str):  # Mistral and some servers allow plain strings in the list
            out.append(Part(role, "text", value))
            continue
        piece = obj(value)
        kind = piece.get("type")
        key = _TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        text = text_of(piece.get(key)) if key else None
        if text is not None:
            out.append(Part(role, "text", text))
        elif kind == "thinking":  # Mistral's reasoning chunks
            for inner in items(piece.get("thinking")):
                found = text_of(obj(inner).get("text"))
                if found:
                    out.append(Part(role, "reasoning", found))
        elif isinstance(kind, str) and kind:
            out.append(Part(role, "media", kind.removeprefix("input_").removesuffix("_url")))


def _tool_calls(role: str, calls: Any, out: list[Part]) -> None:
    for value in items(calls):
        call = obj(value)
        function = obj(call.get("function"))
        name = function.get("name")
        call_id = call.get("id")
        out.append(
            Part(
                role,
                "tool_call",
                arguments_text(function.get("arguments")),
                name if isinstance(name, str) else None,
                call_id if isinstance(call_id, str) else None,
            )
        )


def message_parts(message: dict[str, Any], out: list[Part], default_role: str) -> None:
    """One chat message (its text, reasoning, refusal, tool calls; a tool message as a result)."""
    role = message.get("role")
    if not role or type(role) is not str:
        role = default_role
    if role == "tool" or role == "function":  # noqa: PLR1714 - two compares: no set built per message
        call_id = message.get("tool_call_id")
        name = message.get("name")
        text = _flat_content(message.get("content"))
        out.append(
            Part(
                role,
                "tool_result",
                text,
                name if isinstance(name, str) else None,
                call_id if isinstance(call_id, str) else None,
            )
        )
        return
    # most messages are a role and a string: each optional key is looked up once, and only
    # followed when it holds something (this runs for every message of every record)
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and isinstance(reasoning, str):
        out.append(Part(role, "reasoning", reasoning))
    content = message.get("content")
    if type(content) is str:
        if content:
            out.append(Part(role, "text", content))
    elif content:
        content_parts(role, content, out)
    refusal = message.get("refusal")
    if refusal and isinstance(refusal, str):
        out.append(Part(role, "text", refusal))
    calls = message.get("tool_calls")
    if calls:
        _tool_calls(role, calls, out)
    legacy = message.get("function_call")
    if legacy and isinstance(legacy, dict):
        _tool_calls(role, [{"function": legacy}], out)


def _flat_content(content: Any) -> str:
    """A tool result's content as one text (its text parts joined)."""
    if isinstance(content, str):
        return content
    parts: list[Part] = []
    content_parts("tool", content, parts)
    return "\n".join(p.text for p in parts if p.kind == "text")


def _chat_input(request: dict[str, Any]) -> tuple[Part, ...]:
    out: list[Part] = []
    for message in items(request.get("messages")):
        if isinstance(message, dict):
            message_parts(message, out, "user")
    return tuple(out)


def _chat_output(response: dict[str, Any]) -> tuple[Part, ...]:
    out: list[Part] = []
    for choice in items(response.get("choices")):
        message = obj(obj(choice).get("message"))
        if message:
            message_parts(message, out, "assistant")
    return tuple(out)


def _prompt(request: dict[str, Any], key: str = "prompt") -> tuple[Part, ...]:
    """A prompt or embedding input: a string or a list of strings (token arrays are not text)."""
    value = request.get(key)
    texts = [value] if isinstance(value, str) else [v for v in items(value) if isinstance(v, str)]
    out = [Part("user", "text", t) for t in texts if t]
    suffix = text_of(request.get("suffix"))  # fill-in-the-middle
    if suffix:
        out.append(Part("user", "text", suffix))
    return tuple(out)


def _completion_output(response: dict[str, Any]) -> tuple[Part, ...]:
    out: list[Part] = []
    for value in items(response.get("choices")):
        choice = obj(value)
        text = text_of(choice.get("text"))
        if text is not None:
            out.append(Part("assistant", "text", text))
        else:  # Mistral's FIM answers as a chat message
            message = obj(choice.get("message"))
            if message:
                message_parts(message, out, "assistant")
    return tuple(out)


def _responses_input(request: dict[str, Any]) -> tuple[Part, ...]:
    out: list[Part] = []
    instructions = text_of(request.get("instructions"))
    if instructions:
        out.append(Part("system", "text", instructions))
    value = request.get("input")
    if isinstance(value, str):
        if value:
            out.append(Part("user", "text", value))
        return tuple(out)
    for item in items(value):
        if isinstance(item, dict):
            _item(item, out, "user")
    return tuple(out)


def _responses_output(response: dict[str, Any]) -> tuple[Part, ...]:
    out: list[Part] = []
    for item in items(response.get("output")):
        if isinstance(item, dict):
            _item(item, out, "assistant")
    if not out:
        # an interrupted stream, rebuilt from its deltas (`_openai_format._assemble_response_events`)
        text = text_of(response.get("output_text"))
        if text:
            out.append(Part("assistant", "text", text))
        for call_id, arguments in obj(response.get("function_call_arguments")).items():
            out.append(Part("assistant", "tool_call", arguments_text(arguments), None, str(call_id)))
    return tuple(out)


def _item(item: dict[str, Any], out: list[Part], default_role: str) -> None:
    """One Responses API item: a message, a tool call or its output, a reasoning item."""
    kind = item.get("type")
    if kind is None or kind == "message":
        role = item.get("role")
        content_parts(role if isinstance(role, str) and role else default_role, item.get("content"), out)
        return
    if not isinstance(kind, str):
        return
    name = item.get("name")
    call_id = item.get("call_id", item.get("id"))
    name, call_id = (v if isinstance(v, str) else None for v in (name, call_id))
    if kind in _CALL_ITEMS:
        out.append(Part("assistant", "tool_call", arguments_text(item.get(_CALL_ITEMS[kind])), name, call_id))
        if kind == "mcp_call" and item.get("output") is not None:
            out.append(Part("tool", "tool_result", arguments_text(item.get("output")), name, call_id))
    elif kind.endswith("_call_output"):  # function_call_output, custom_tool_call_output, ...
        output = item.get("output")
        text = output if isinstance(output, str) else _flat_content(output)
        out.append(Part("tool", "tool_result", text, name, call_id))
    elif kind == "reasoning":
        for summary in items(item.get("summary")):
            found = text_of(obj(summary).get("text"))
            if found:
                out.append(Part("assistant", "reasoning", found))
    elif kind.endswith("_call"):  # hosted tools: web_search_call, file_search_call, computer_call, ...
        out.append(
            Part("assistant", "tool_call", _hosted_arguments(item), kind.removesuffix("_call"), call_id)
        )


def _hosted_arguments(item: dict[str, Any]) -> str:
    """What a hosted tool was asked to do: its action, queries or code, never its results."""
    for key in ("action", "queries", "code", "input"):
        if item.get(key) is not None:
            return arguments_text(item[key])
    return ""


def _vectors(response: dict[str, Any]) -> tuple[int, int | None] | None:
    """(count, dimensions) of an embeddings response; float lists or base64 (the SDK's default)."""
    data = items(response.get("data"))
    if not data:
        return None
    first = obj(data[0]).get("embedding")
    dimensions: int | None = None
    if isinstance(first, list):
        dimensions = len(first)
    elif isinstance(first, str):  # base64 of little-endian float32s
        padding = len(first) - len(first.rstrip("="))
        dimensions = math.floor((len(first) * 3 // 4 - padding) / 4)
    return len(data), dimensions
