"""The record and its canonical encoding."""

from __future__ import annotations

import dataclasses
import inspect
import re
import uuid
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# private: unit tests of pure helpers (codec, chain, decoders, cost, ...) with no public entry point
from llmaudit.record.codec import (
    decode_record,
    dumps,
    encode_record,
    format_day,
    format_timestamp,
    parse_timestamp,
)
from llmaudit.record.model import SCHEMA_VERSION, AuditRecord, new_id


def test_ids_are_uuid7_and_sort_in_creation_order() -> None:
    """Ids are RFC 9562 version 7, so sorting by id follows creation time, even within a millisecond."""
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_record_is_frozen_and_slotted() -> None:
    """A record cannot change after it is built (the hash chain depends on it)."""
    record = AuditRecord()
    with pytest.raises(FrozenInstanceError):
        record.model = "x"  # type: ignore[misc]
    assert not hasattr(record, "__dict__")


def test_canonical_encoding_sorts_keys_and_always_has_six_fractional_digits() -> None:
    """One encoding for storage and hashing: sorted keys, no spaces, UTC with microseconds and Z."""
    on_the_second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = AuditRecord(created_at=on_the_second, request={"b": 1, "a": [True, None]})
    data = encode_record(record)
    assert b'"created_at":"2026-01-02T03:04:05.000000Z"' in data
    assert b'"request":{"a":[true,null],"b":1}' in data
    assert b" " not in data
    keys = list(__import__("json").loads(data))
    assert keys == sorted(keys)


def test_non_utc_timestamps_are_converted_and_naive_ones_refused() -> None:
    """created_at is always UTC; a naive datetime is ambiguous and rejected."""
    paris = timezone(timedelta(hours=1))
    record = AuditRecord(created_at=datetime(2026, 1, 1, 13, 0, tzinfo=paris))
    assert format_timestamp(record.created_at) == "2026-01-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditRecord(created_at=datetime(2026, 1, 1))


def test_parse_timestamp_accepts_z_offsets_and_naive_utc() -> None:
    """Timestamps from any backend come back as aware UTC datetimes."""
    expected = datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=timezone.utc)
    for text in (
        "2026-01-01T12:00:00.000005Z",
        "2026-01-01T13:00:00.000005+01:00",
        "2026-01-01 12:00:00.000005",
    ):
        assert parse_timestamp(text) == expected


def test_string_limits_are_checked_and_named() -> None:
    """A value longer than its column fails when the record is built, naming the field and limit."""
    with pytest.raises(ValueError, match=r"session_key is 256 characters long; the limit is 255"):
        AuditRecord(session_key="k" * 256)
    with pytest.raises(ValueError, match="source"):
        AuditRecord(source="telepathy")


def test_values_outside_json_are_normalised_deterministically() -> None:
    """Encoding never fails: huge ints become strings, lone surrogates U+FFFD, the same every time."""
    value = {"big": 1 << 80, "bad": "a\ud800b", 3: "int key"}
    assert dumps(value) == dumps(value)
    assert (
        dumps(value)
        == b'{"3":"int key","bad":"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb","big":"1208925819614629174706176"}'
    )


def test_decode_rejects_records_from_a_newer_schema() -> None:
    """An old llmaudit reading a newer log says so instead of misreading it."""
    data = encode_record(AuditRecord()).replace(
        f'"schema_version":{SCHEMA_VERSION}'.encode(), f'"schema_version":{SCHEMA_VERSION + 1}'.encode()
    )
    with pytest.raises(ValueError, match="newer"):
        decode_record(data)


def test_decode_fills_fields_an_older_schema_did_not_have() -> None:
    """Records written before a field existed still load, with that field's default."""
    data = encode_record(AuditRecord(session_key="old")).replace(b'"notes":[],', b"")
    assert decode_record(data).notes == ()
    with pytest.raises(ValueError, match="JSON object"):
        decode_record(b"[1, 2]")


@settings(max_examples=500, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_timestamps_are_formatted_as_strftime_defines_them(moment: datetime, offset_minutes: int) -> None:
    """The canonical text of a timestamp (hashed by the chain) is strftime's
    ``%Y-%m-%dT%H:%M:%S.%fZ`` of its UTC time, however it is computed (isoformat, a cache), and its
    day is the first ten characters, for any offset and for years before 1000."""
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    expected = aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_timestamp(aware) == expected
    assert format_day(aware) == expected[:10]


def test_the_day_of_an_early_year_is_not_taken_from_another_hour() -> None:
    """Before the year 1000 the first ten characters reach into the hour (strftime does not pad the
    year): two times of one day in different hours must not share a remembered answer."""
    first = datetime(20, 1, 1, 0, 30, tzinfo=timezone.utc)
    second = datetime(20, 1, 1, 10, 30, tzinfo=timezone.utc)
    assert format_day(first) == format_timestamp(first)[:10]
    assert format_day(second) == format_timestamp(second)[:10] != format_day(first)


def test_the_generated_init_keeps_the_dataclass_contract() -> None:
    """`AuditRecord.__init__` is generated for speed (`fast_init`; its signature is checked in
    tests/test_frozen.py): a fresh object from each default factory, every field set, the same checks."""
    declared = [f.name for f in dataclasses.fields(AuditRecord)]
    first, second = AuditRecord(), AuditRecord()
    assert first.id != second.id
    assert first.metadata == {} and first.metadata is not second.metadata
    assert first.headers == {} and first.headers is not second.headers
    assert first.created_at.tzinfo is timezone.utc
    values = {name: getattr(first, name) for name in declared}
    assert dataclasses.replace(first) == first == AuditRecord(**values)
    with pytest.raises(TypeError):
        AuditRecord(colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        AuditRecord("positional")  # type: ignore[misc]
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditRecord(created_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="model"):
        AuditRecord(model="m" * 300)
    assert AuditRecord(tags=["a"], notes=["n"]).tags == ("a",)  # type: ignore[arg-type]


def test_timestamps_that_share_a_second_or_its_clock_time_keep_their_own_text() -> None:
    """The second's text is remembered between calls: records of the same second differ only in
    their microseconds, and the same clock time on another day, or in another zone, is not mistaken
    for it."""
    base = datetime(2026, 11, 30, 11, 15, 48, 583399, tzinfo=timezone.utc)
    moments = [
        base,
        base.replace(microsecond=0),
        base.replace(microsecond=999999),
        base.replace(day=29),  # same clock time, the day before
        base,
        base.replace(year=2025),
        base.astimezone(timezone(timedelta(hours=5, minutes=30))),  # the same instant elsewhere
        base.replace(tzinfo=timezone(timedelta(hours=-1))),  # the same clock time an hour later
        base.replace(year=999),
        base,
    ]
    for moment in moments:
        expected = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert format_timestamp(moment) == expected


def _documented_attributes(doc: str) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style docstring: each entry's name and its text."""
    lines = inspect.cleandoc(doc).splitlines()
    start = lines.index("Attributes:") + 1
    entries: dict[str, str] = {}
    name = None
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break  # the next section
        entry = re.fullmatch(r"    (\w+): (.*)", line)
        if entry:
            name = entry[1]
            entries[name] = entry[2]
        elif name is not None and line.startswith("        "):
            entries[name] += " " + line.strip()
    return entries


def test_every_field_of_the_record_is_documented() -> None:
    """Each dataclass field of AuditRecord has an entry with text in its docstring's Attributes
    section, and the section names no field the record does not have."""
    assert AuditRecord.__doc__ is not None
    documented = _documented_attributes(AuditRecord.__doc__)
    names = [f.name for f in dataclasses.fields(AuditRecord)]
    assert [n for n in names if not documented.get(n, "").strip()] == []
    assert sorted(set(documented) - set(names)) == []


def test_the_field_documentation_check_sees_a_missing_field() -> None:
    """The check above fails for a docstring that leaves a field out (it can fail)."""
    doc = "A record.\n\nAttributes:\n    id: the id.\n        More text.\n    user:\n\nRaises:\n    X: y\n"
    assert _documented_attributes(doc) == {"id": "the id. More text."}
