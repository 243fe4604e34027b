"""Path rules: parsing and compiling the JSON paths of redaction rules (`Rule`: ``messages[*].content``,
``request.metadata["a.b"]``) into segments the `Redactor` walks.

Runs when a `Redactor` is made (at ``configure()``), so a bad path fails there with a
`ConfigurationError`. Pure functions over strings: no I/O, no state, and nothing from the stages
above (capture, pipeline, read, the edges).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._errors import ConfigurationError

__all__ = ["ACTIONS", "Rule", "RuleSpec"]

ACTIONS: Final = ("drop", "mask", "hash")
#: The payload fields: path rules, then the size limit and the detectors (on keys as well as values).
_PREFIXES: Final = ("request", "response", "metadata")
_MAX_DEPTH: Final = 200  # orjson refuses deeper nesting; such a field is masked instead

# Path segments: (kind, argument).
_KEY, _INDEX, _ITEMS, _VALUES = range(4)
_Segment = tuple[int, Any]
_Path = tuple[_Segment, ...]
_INDEX_RE = re.compile(r"\[(-?[0-9]+)\]")


class _PathError(ValueError):
    pass


class _TooDeepError(ValueError):
    pass


def _parse_quoted(path: str, i: int) -> tuple[str, int]:
    """Parse the key of ``["..."]`` starting after the opening quote; return it and the index after ``]``."""
    chars: list[str] = []
    n = len(path)
    while i < n:
        c = path[i]
        if c == "\\" and i + 1 < n:
            chars.append(path[i + 1])
            i += 2
        elif c == '"':
            if not path.startswith("]", i + 1):
                raise _PathError(f"expected ']' after the quoted key at position {i + 1}")
            return "".join(chars), i + 2
        else:
            chars.append(c)
            i += 1
    raise _PathError('unterminated quoted key (["...": missing closing quote)')


def _parse_bracket(path: str, i: int) -> tuple[_Segment, int]:
    """The ``[*]``, ``[N]`` or ``["key"]`` segment at *i*, and the index after it."""
    if path.startswith("[*]", i):
        return (_ITEMS, None), i + 3
    if path.startswith('["', i):
        key, end = _parse_quoted(path, i + 2)
        return (_KEY, key), end
    match = _INDEX_RE.match(path, i)
    if match is None:
        raise _PathError(f'bad brackets at position {i}: use [*], [N] or ["key"]')
    return (_INDEX, int(match.group(1))), match.end()


def _parse_path(path: str) -> tuple[_Path, bool]:
    """Segments of *path*, and whether the first one is a bare (unquoted) key."""
    if not path:
        raise _PathError("the path is empty")
    segments: list[_Segment] = []
    first_bare = False
    need_segment = True  # at the start or after a dot
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c == "[":
            if need_segment and segments:
                raise _PathError(f"empty segment before '[' at position {i}")
            segment, i = _parse_bracket(path, i)
            segments.append(segment)
            need_segment = False
        elif c == ".":
            if need_segment:
                raise _PathError(f"empty segment at position {i}")
            need_segment = True
            i += 1
        else:
            if not need_segment:
                raise _PathError(f"expected '.' or '[' at position {i}")
            j = i
            while j < n and path[j] not in ".[":
                j += 1
            key = path[i:j]
            if "]" in key or '"' in key:
                raise _PathError(f"unexpected ']' or '\"' in key {key!r} (quote it: [\"...\"])")
            if not segments:
                first_bare = True
            segments.append((_VALUES, None) if key == "*" else (_KEY, key))
            need_segment = False
            i = j
    if need_segment:
        raise _PathError("the path ends with '.'")
    return tuple(segments), first_bare


def _compile_path(path: str) -> tuple[tuple[str, ...], _Path]:
    """The payload fields a path applies to, and its segments below the field."""
    segments, first_bare = _parse_path(path)
    head = segments[0]
    if first_bare and head[0] == _KEY and head[1] in _PREFIXES:
        rest = segments[1:]
        if head[1] == "metadata" and not rest:
            raise _PathError("a metadata rule needs a key: metadata.<key> or metadata.*")
        return (head[1],), rest
    return ("request", "response"), segments


@dataclass(frozen=True, slots=True)
class Rule:
    """One path rule: the values at *path* are dropped, masked or hashed (see the module docstring).

    Raises:
        ConfigurationError: the path is invalid or the action unknown.
    """

    path: str
    action: str = "mask"

    def __post_init__(self) -> None:
        if not isinstance(self.path, str):
            raise ConfigurationError(f"redaction rule path must be a string, not {type(self.path).__name__}")
        if self.action not in ACTIONS:
            raise ConfigurationError(
                f"redaction rule {self.path!r}: unknown action {self.action!r}; "
                f"use one of {', '.join(ACTIONS)}"
            )
        try:
            _compile_path(self.path)
        except _PathError as exc:
            raise ConfigurationError(f"redaction rule {self.path!r}: invalid path: {exc}") from None


RuleSpec = Rule | Mapping[str, Any] | str


def _to_rule(spec: RuleSpec) -> Rule:
    if isinstance(spec, Rule):
        return spec
    if isinstance(spec, str):
        return Rule(spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"path", "action"}
        if unknown:
            raise ConfigurationError(
                f"redaction rule {dict(spec)!r}: unknown keys {sorted(map(str, unknown))}; "
                "use path and action"
            )
        if "path" not in spec:
            raise ConfigurationError(f"redaction rule {dict(spec)!r} has no path")
        return Rule(spec["path"], spec.get("action", "mask"))
    raise ConfigurationError(
        f"a redaction rule must be a Rule, a dict or a path string, not {type(spec).__name__}: {spec!r}"
    )
