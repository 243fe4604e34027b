"""What a call's request and response say, under the GenAI conventions' names.

The request parameters (``gen_ai.request.*``) under each API's own names, the model asked for, and
the response's id, model and finish reasons. Pure functions over the record's stored JSON, which is
never trusted: a value of the wrong type is left out, never raised on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..record.model import AuditRecord

__all__ = ["finish_reasons", "request_attributes", "request_model", "response_attributes"]

#: Request parameters -> ``gen_ai.request.*``, whatever the API calls them; looked for at the top of
#: the request and in Gemini's ``generationConfig`` and Ollama's ``options``.
_PARAMETERS: tuple[tuple[str, tuple[str, ...], type], ...] = (
    ("temperature", ("temperature",), float),
    (
        "max_tokens",
        ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens", "num_predict"),
        int,
    ),
    ("top_p", ("top_p", "topP", "p"), float),
    ("top_k", ("top_k", "topK", "k"), float),
    ("frequency_penalty", ("frequency_penalty", "frequencyPenalty"), float),
    ("presence_penalty", ("presence_penalty", "presencePenalty"), float),
    ("seed", ("seed",), int),
    ("choice.count", ("n", "candidateCount", "candidate_count"), int),
)
_STOP_KEYS = ("stop", "stop_sequences", "stopSequences")
_NESTED = ("generationConfig", "generation_config", "options")


def _number(value: Any, kind: type) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if kind is int else float(value)


def request_attributes(request: Any) -> dict[str, Any]:
    """The ``gen_ai.request.*`` (and embeddings) attributes of a request payload."""
    if not isinstance(request, dict):
        return {}
    places = [request] + [request[k] for k in _NESTED if isinstance(request.get(k), dict)]
    found: dict[str, Any] = {}
    for name, keys, kind in _PARAMETERS:
        for place in places:
            value = next((_number(place[k], kind) for k in keys if k in place), None)
            if value is not None:
                found[f"gen_ai.request.{name}"] = value
                break
    if found.get("gen_ai.request.choice.count") == 1:
        del found["gen_ai.request.choice.count"]
    for place in places:
        stop = next((place[k] for k in _STOP_KEYS if k in place), None)
        if isinstance(stop, str):
            stop = [stop]
        if isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
            found["gen_ai.request.stop_sequences"] = list(stop)
            break
    encoding = request.get("encoding_format")
    if isinstance(encoding, str):
        found["gen_ai.request.encoding_formats"] = [encoding]
    dimensions = _number(request.get("dimensions"), int)
    if dimensions is not None:
        found["gen_ai.embeddings.dimension.count"] = dimensions
    return found


def finish_reasons(response: Any) -> list[str]:
    """The reasons the model stopped, one per choice, as the provider named them."""
    if not isinstance(response, dict):
        return []
    reasons: list[Any] = []
    for key, field in (("choices", "finish_reason"), ("candidates", "finishReason")):
        items = response.get(key)
        if isinstance(items, list):
            reasons.extend(item.get(field) for item in items if isinstance(item, dict))
    reasons.extend(response.get(key) for key in ("stop_reason", "finish_reason", "done_reason"))
    if response.get("object") == "response":  # OpenAI's Responses API
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        reasons.append(reason or response.get("status"))
    return [r for r in reasons if isinstance(r, str) and r]


def response_attributes(record: AuditRecord) -> dict[str, Any]:
    """``gen_ai.response.id``, ``.model`` and ``.finish_reasons`` of a call's stored response."""
    response = record.response if isinstance(record.response, dict) else {}
    found: dict[str, Any] = {}
    response_id = response.get("id") or response.get("responseId")
    if isinstance(response_id, str) and response_id:
        found["gen_ai.response.id"] = response_id
    model = response.get("model") or response.get("modelVersion")
    if isinstance(model, str) and model:
        found["gen_ai.response.model"] = model
    reasons = finish_reasons(response)
    if reasons:
        found["gen_ai.response.finish_reasons"] = reasons
    return found


def request_model(record: AuditRecord) -> str | None:
    """The model the call asked for: the request's ``model`` where it names one (the record's
    ``model`` may be the one that answered), Azure's deployment, else the record's (Gemini's is
    read from the path already)."""
    model = record.request.get("model") if isinstance(record.request, dict) else None
    if isinstance(model, str) and model:
        return model
    path = urlsplit(record.url or "").path.split("/")
    if "deployments" in path[:-2]:  # Azure names the deployment in the path, not the body
        return path[path.index("deployments") + 1] or record.model
    if "models" in path[:-1] and ":" in path[-1]:  # Gemini: .../models/{model}:generateContent
        return path[-1].partition(":")[0] or record.model
    return record.model
