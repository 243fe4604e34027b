"""The viewer's rendering helpers on hostile shapes: parent cycles, deep JSON, markers, controls."""

from __future__ import annotations

from llmaudit import AuditRecord

# private: the CLI's and viewer's internals (demo data, rendering, queries) these tests pin
from llmaudit.ui.render import build_turns, json_html, markers, visible


def test_a_cycle_of_parent_ids_still_shows_every_record_once() -> None:
    a = AuditRecord(id="a", source="decorator", parent_id="b")
    b = AuditRecord(id="b", source="decorator", parent_id="a")
    c = AuditRecord(id="c", source="transport", parent_id="c")
    roots = build_turns([a, b, c])
    seen: list[str] = []
    stack = list(roots)
    while stack:
        turn = stack.pop()
        seen.append(turn.record.id)
        stack.extend(turn.children)
    assert sorted(seen) == ["a", "b", "c"]


def test_json_is_escaped_highlighted_and_cut_at_depth_and_size() -> None:
    deep: object = "<b>x</b>"
    for _ in range(100):
        deep = [deep]
    html, cut = json_html({"<k>": "<script>", "deep": deep, "n": 1.5, "t": True, "z": None})
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;k&gt;" in html
    assert '<span class="j-num">1.5</span>' in html and "nested deeper than" in html
    assert not cut
    _, cut = json_html({"items": ["x" * 1000] * 1000}, budget_chars=10_000)
    assert cut


def test_markers_find_what_redaction_replaced() -> None:
    value = {
        "a": "[REDACTED]",
        "b": ["ok", "key [REDACTED:openai_key] here"],
        "img": {"truncated": True, "bytes": 2048, "sha256": "ab" * 32},
        "h": "hmac-sha256:" + "0" * 64,
    }
    found = dict(markers(value))
    assert set(found) == {"a", "b[1]", "img", "h"}


def test_control_characters_and_lone_surrogates_become_visible() -> None:
    assert visible("\x1b[31mred\x00\x07") == "\u241b[31mred\u2400\u2407"
    assert visible("a\ud800b") == "a\ufffdb"
    assert visible("line\nnext\ttab") == "line\nnext\ttab"


def test_an_image_is_shown_as_the_size_and_hash_that_replaced_it() -> None:
    image = {"truncated": True, "bytes": 123_456, "sha256": "ab" * 32, "media_type": "image/png"}
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": image}}]
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
    record = AuditRecord(provider="openai", operation="chat.completions", request=request, source="transport")
    (turn,) = build_turns([record])
    assert [m.text for m in turn.messages] == [
        "what is this",
        "image/png · 120.6 KB · sha256 abababababababab…",
    ]
