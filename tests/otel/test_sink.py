"""The live OTLP sink: ``otlp://`` and ``otlp+grpc://`` as storage URLs, behind the writer's retry,
spool and loss accounting, with GenAI metrics; write-only; and the export command."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_DELTA
from tests.otel.conftest import Calls, json_response
from tests.otel.receiver import GrpcReceiver, HttpReceiver, Received, attributes
from tests.otel.test_spans import CHAT, CHAT_REQUEST

import llmaudit
from llmaudit import (
    Auditor,
    AuditRecord,
    ConfigurationError,
    Query,
    Storage,
    StorageError,
    StorageUnavailableError,
)
from llmaudit.cli import cli, main
from llmaudit.otel import OTLPStorage

URL = "https://api.openai.com/v1/chat/completions"


def _post(auditor: Auditor, n: int = 1, *, session: str = "live") -> None:
    transport = llmaudit.AuditTransport(httpx.MockTransport(json_response(CHAT)), auditor=auditor)
    with httpx.Client(transport=transport) as client, llmaudit.session(session):
        for _ in range(n):
            client.post(URL, json=CHAT_REQUEST)


@pytest.fixture(params=["http", "grpc"])
def receiver(request: pytest.FixtureRequest) -> Iterator[Received]:
    """Each test of the live sink runs over OTLP/HTTP and over OTLP/gRPC."""
    with HttpReceiver() if request.param == "http" else GrpcReceiver() as running:
        yield running


def test_the_live_sink_sends_each_call_as_a_span_and_its_metrics(receiver: Received, tmp_path: Path) -> None:
    """configure(storage="otlp://...") alone: every call a span; duration and token histograms
    with the conventions' attributes, units and bucket boundaries."""
    auditor = Auditor(receiver.url, mode="sync", spool_dir=str(tmp_path / "spool"))
    try:
        _post(auditor, 3)
    finally:
        auditor.close()
    assert auditor.stats().written == 3
    spans = receiver.by_record()
    assert len(spans) == 3
    assert all(attributes(s)["gen_ai.conversation.id"] == "live" for s in spans.values())
    metrics = {m.name: m for m in receiver.metric_list()}
    duration, usage = metrics["gen_ai.client.operation.duration"], metrics["gen_ai.client.token.usage"]
    assert duration.unit == "s"
    assert usage.unit == "{token}"
    points = [p for m in receiver.metric_list() if m.name == duration.name for p in m.histogram.data_points]
    assert sum(p.count for p in points) == 3
    point = points[0]
    assert list(point.explicit_bounds) == [
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ]
    assert attributes(point) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "asked-model",
        "gen_ai.response.model": "served-model-1",
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    assert duration.histogram.aggregation_temporality == AGGREGATION_TEMPORALITY_DELTA
    tokens = {
        attributes(p)["gen_ai.token.type"]: p
        for m in receiver.metric_list()
        if m.name == usage.name
        for p in m.histogram.data_points
    }
    sums = dict.fromkeys(tokens, 0.0)
    for m in receiver.metric_list():
        for p in m.histogram.data_points if m.name == usage.name else ():
            sums[attributes(p)["gen_ai.token.type"]] += p.sum
    assert sums == {"input": 3 * 7, "output": 3 * 2}
    bounds = list(tokens["input"].explicit_bounds)
    assert bounds[:3] == [1, 4, 16]
    assert bounds[-1] == 67108864
    assert list(tokens["input"].bucket_counts)[bounds.index(16)] == 1  # 7 tokens: the (4, 16] bucket


def test_the_receiver_down_then_back_loses_nothing_and_duplicates_nothing(
    receiver: Received, tmp_path: Path
) -> None:
    """While the collector refuses (503 / UNAVAILABLE), batches spill to the spool, counted; once
    it is back, the replay sends each of them once."""
    auditor = Auditor(receiver.url, mode="sync", spool_dir=str(tmp_path / "spool"))
    # private: the auditor's writer: its retry pacing and spool have no public setting
    auditor._writer.retry_delays_s = (0.0,)
    auditor._writer.probe_interval_s = 0.0  # every write asks the collector: no wait for a probe
    try:
        receiver.down = True
        _post(auditor, 4)
        assert auditor.stats().spilled == 4
        assert auditor.spool.pending()
        assert receiver.refused >= 4
        assert receiver.spans() == []
        receiver.down = False
        assert auditor.replay_spool() == 4
        _post(auditor, 1)
    finally:
        auditor.close()
    stats = auditor.stats()
    assert (stats.written, stats.spilled, stats.replayed, stats.failed) == (1, 4, 4, 0)
    ids = [attributes(s)["llmaudit.record.id"] for s in receiver.spans()]
    assert len(ids) == 5
    assert len(set(ids)) == 5
    points = [
        p
        for m in receiver.metric_list()
        if m.name == "gen_ai.client.operation.duration"
        for p in m.histogram.data_points
    ]
    assert sum(p.count for p in points) == 5  # none counted twice


class FanOut:
    """A local store and the OTLP sink side by side (the fan-out of examples/multi_sink.py)."""

    def __init__(self, *storages: Storage) -> None:
        self.storages = storages
        self.url = "fanout://local+otlp"

    def write(self, records: Sequence[AuditRecord]) -> None:
        for storage in self.storages:
            storage.write(records)

    def read(self, query: Query = Query(), *, on_problem: object = None) -> Iterator[AuditRecord]:
        return self.storages[0].read(query)

    def close(self) -> None:
        for storage in self.storages:
            storage.close()


def test_beside_a_local_store_both_get_every_record(http_receiver: HttpReceiver, tmp_path: Path) -> None:
    """The sink beside a local store: the local store keeps the records, the collector gets spans."""
    local = f"memory://{uuid.uuid4().hex}"
    both = FanOut(llmaudit.open_storage(local), llmaudit.open_storage(http_receiver.url))
    auditor = Auditor(both, mode="sync", spool_dir=str(tmp_path / "spool"))
    try:
        _post(auditor, 2)
    finally:
        auditor.close()
    with llmaudit.open(local) as reader:
        stored = {r.id for r in reader.records()}
    assert set(http_receiver.by_record()) == stored
    assert len(stored) == 2


def test_a_collector_refusing_the_data_is_a_storage_error(tmp_path: Path) -> None:
    """HTTP 400 is a refusal (the writer keeps the records aside), 503 a "later" (it retries and spills)."""
    with HttpReceiver() as receiver:
        sink = OTLPStorage.from_url(receiver.url + "/wrong")  # a path the receiver does not serve
        record = AuditRecord(provider="openai", operation="chat.completions", model="m", source="transport")
        with pytest.raises(StorageError) as refused:
            sink.write([record])
        assert not isinstance(refused.value, StorageUnavailableError)
        assert "HTTP 404" in str(refused.value)
        sink.close()
        receiver.down = True
        sink = OTLPStorage.from_url(receiver.url)
        with pytest.raises(StorageUnavailableError, match="HTTP 503"):
            sink.write([record])
        sink.close()


def test_an_unreachable_collector_is_unavailable() -> None:
    """Nothing listening: StorageUnavailableError, so the writer spills instead of losing."""
    with HttpReceiver() as receiver:
        port = receiver.port
    sink = OTLPStorage.from_url(f"otlp://127.0.0.1:{port}?timeout=0.5")
    try:
        with pytest.raises(StorageUnavailableError):
            sink.write([AuditRecord(source="transport", provider="openai", operation="chat")])
    finally:
        sink.close()


def test_the_sink_is_write_only(http_receiver: HttpReceiver) -> None:
    """llmaudit.open("otlp://...") says the sink cannot be read back, and where to read instead."""
    with pytest.raises(ConfigurationError, match="write-only"):
        llmaudit.open(http_receiver.url)
    sink = llmaudit.open_storage(http_receiver.url)
    with pytest.raises(StorageError, match="write-only"):
        list(sink.read())
    sink.close()


@pytest.mark.parametrize(
    "url",
    ["otlp://", "otlp://host:4318?colour=red", "otlp://host:4318?timeout=soon", "otlp://host:4318?tls=maybe"],
)
def test_a_bad_otlp_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        llmaudit.open_storage(url)


def _store(calls: Calls, n: int, session: str) -> None:
    with llmaudit.session(session):
        for _ in range(n):
            calls.post(URL, CHAT_REQUEST, json_response(CHAT))


def test_the_export_command_replays_a_store_with_filters_and_resumes_after_an_id(
    calls: Calls, http_receiver: HttpReceiver
) -> None:
    """llmaudit export --to otlp://: --session filters, --after resumes; no metric on replay."""
    _store(calls, 3, "a")
    _store(calls, 2, "b")
    records = sorted(calls.records(), key=lambda r: (r.created_at, r.id))
    runner = CliRunner()
    first = runner.invoke(cli, ["export", "-s", calls.url, "--to", http_receiver.url, "--session", "a"])
    assert first.exit_code == 0, first.output
    a_ids = [r.id for r in records if r.session_key == "a"]
    assert f"exported 3 records to {http_receiver.url} (last: {a_ids[-1]})" in first.output
    assert set(http_receiver.by_record()) == set(a_ids)
    cursor = records[1].id
    resumed = runner.invoke(
        cli, ["export", "-s", calls.url, "--to", http_receiver.url, "--after", cursor, "--since", "1d"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "exported 3 records" in resumed.output
    later = [attributes(s)["llmaudit.record.id"] for s in http_receiver.spans()][3:]
    assert later == [r.id for r in records[2:]]
    assert http_receiver.metric_list() == []


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The console script as a user runs it: its exit code and what it printed."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_an_interrupted_export_says_where_to_resume(
    calls: Calls, http_receiver: HttpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The collector going down mid-export: the command fails and says how to resume."""
    _store(calls, 1, "a")
    http_receiver.down = True
    code, output = _main(["export", "-s", calls.url, "--to", http_receiver.url], capsys)
    assert code == 1
    assert "run it again to resume" in output
    http_receiver.down = False
    code, output = _main(["export", "-s", calls.url, "--to", http_receiver.url], capsys)
    assert code == 0, output
    assert len(http_receiver.spans()) == 1


def test_after_an_unknown_id_or_on_a_file_destination_is_an_error(
    calls: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(calls, 1, "a")
    code, output = _main(["export", "-s", calls.url, "--to", "otlp://127.0.0.1:1", "--after", "nope"], capsys)
    assert code == 1
    assert "no such record" in output
    code, output = _main(
        ["export", "-s", calls.url, "--to", str(tmp_path / "x.jsonl"), "--after", "x"], capsys
    )
    assert code == 2
    assert "--after applies to otlp://" in output


def test_json_text_attributes_are_valid_json(
    calls: Calls, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Content attributes, when sent, are JSON text a backend can parse."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    _store(calls, 1, "a")
    with calls.reader() as reader:
        llmaudit.otel.export(reader, http_receiver.url)
    got = attributes(http_receiver.spans()[0])
    assert json.loads(got["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
    ]
    assert json.loads(got["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}
    ]


def test_reader_export_to_an_otlp_url_goes_through_the_sink(
    calls: Calls, http_receiver: HttpReceiver
) -> None:
    """`Reader.export("otlp://...")` (any store's export) sends the records as spans, with metrics."""
    _store(calls, 2, "a")
    with calls.reader() as reader:
        assert reader.export(http_receiver.url, session="a") == 2
    assert set(http_receiver.by_record()) == {r.id for r in calls.records()}
    assert {m.name for m in http_receiver.metric_list()} == {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
    }


def test_an_aggregation_record_is_an_internal_span_of_its_own(
    calls: Calls, http_receiver: HttpReceiver
) -> None:
    """An aggregation record: INTERNAL, named after its session, flagged llmaudit.is_aggregation."""
    _store(calls, 2, "a")
    with calls.reader() as reader:
        reader.aggregate(session="a")
        otel_result = llmaudit.otel.export(reader, http_receiver.url, kind="aggregation")
    assert otel_result.count == 1
    (span,) = http_receiver.spans()
    assert span.kind == span.SPAN_KIND_INTERNAL
    assert span.name == "aggregate a"
    assert attributes(span)["llmaudit.is_aggregation"] is True
    assert "error.type" not in attributes(span)
