"""Providers recognised by the request's shape on any host, after every provider's own hosts.

Runs on the caller's hot path: string tests on the path, and a header lookup only for a path that
has Anthropic's shape. Each shape names a ``*_compatible`` provider (recorded, parsed as the API it
speaks, not priced: the host is not known); a user's mapping names the real provider instead.
- the OpenAI paths (``/chat/completions``, ``/completions``, ``/responses``, ``/embeddings``, audio,
  images, moderations) behind any prefix: ``openai_compatible``;
- ``.../models/{model}:generateContent`` (and the other Gemini methods): ``gemini_compatible``;
- ``/messages``, ``/messages/count_tokens``, ``/complete`` with an ``anthropic-version`` header
  (which Anthropic's API requires, and which tells its ``/messages`` from other APIs' ones):
  ``anthropic_compatible``.
"""

from __future__ import annotations

from typing import Any

from . import Provider
from ._openai_format import ENDINGS as OPENAI_ENDINGS
from ._openai_format import operation_for
from .anthropic import COMPATIBLE as ANTHROPIC_COMPATIBLE
from .anthropic import shape as anthropic_shape
from .compat import GENERIC
from .gemini import COMPATIBLE as GEMINI_COMPATIBLE
from .gemini import shape as gemini_shape

__all__ = ["SHAPES", "by_shape"]

SHAPES: tuple[Provider, ...] = (GENERIC, GEMINI_COMPATIBLE, ANTHROPIC_COMPATIBLE)


def by_shape(path: str, headers: Any) -> tuple[Provider, str] | None:
    """The compatible provider whose API *path* (and, for Anthropic's, *headers*) has the shape of."""
    if ":" in path:
        operation = gemini_shape(path)
        if operation is not None:
            return GEMINI_COMPATIBLE, operation
    stripped = path.rstrip("/")
    if stripped.endswith(OPENAI_ENDINGS):
        operation = operation_for(stripped)
        if operation is not None:
            return GENERIC, operation
    operation = anthropic_shape(stripped)
    if operation is not None and _has_header(headers, b"anthropic-version"):
        return ANTHROPIC_COMPATIBLE, operation
    return None


def _has_header(headers: Any, name: bytes) -> bool:
    """Whether *headers* hold *name* (lower-case): a branch's ``Headers`` read through its list of
    ``(raw, lower-cased, value)`` triples (its own lookup costs several times more), a mapping with
    lower-case names (the writer's) by ``in``."""
    if headers is None:
        return False
    triples = getattr(headers, "_list", None)
    if triples is None:
        return name.decode() in headers
    for _, lower, _ in triples:  # noqa: SIM110 - a loop costs less than any(<generator>) here
        if lower == name:
            return True
    return False
