"""strict=True fails closed: a call whose record can be neither stored nor spilled stops the caller.

The writes fail for real: a child process (tests/strict_child.py) lowers RLIMIT_FSIZE to 0 bytes
around each audited call, so that every append to the JSONL store and to the spool fails with EFBIG
(root or not). The child makes every way in once (both httpx branches, sync and async, streamed and
not, the real openai SDK over httpx2, @audited in its four variants) and reports what the caller
saw; each test below checks one of them.
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.strict_child import LENIENT
from tests.wire import SSE_CHUNKS

import llmaudit
from llmaudit import AuditError, Auditor, AuditRecord

CHILD = Path(__file__).with_name("strict_child.py")
STOPPED = "llmaudit strict mode stopped this call: its audit record could be neither stored nor spilled"
EFBIG = "[Errno 27] File too large"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What the caller saw in each scenario of the child, run once for the whole module."""
    workdir = tmp_path_factory.mktemp("strict")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(CHILD), str(workdir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return result


def _stopped(outcome: dict[str, Any]) -> None:
    """The caller got our AuditError, saying why, caused by the real EFBIG; nothing was kept."""
    assert outcome["raised"] == "AuditError", outcome
    assert outcome["message"].startswith(STOPPED), outcome
    assert EFBIG in outcome["message"], outcome
    assert outcome["chained"] == "OSError", outcome
    counts = (outcome["failed"], outcome["written"], outcome["spilled"], outcome["stored_bytes"])
    assert counts == (1, 0, 0, 0), outcome


TRANSPORT = [
    "transport_post",
    "transport_post_streamed_body",
    "async_transport_post",
]


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
@pytest.mark.parametrize("scenario", TRANSPORT)
def test_an_unrecordable_call_raises_audit_error_from_the_transport(
    outcomes: dict[str, dict[str, Any]], scenario: str, branch: str
) -> None:
    """A non-streamed call (body already read by the mock, or read by the client as over the network)
    raises AuditError from the client's call instead of returning the response."""
    outcome = outcomes[f"strict:{scenario}[{branch}]"]
    _stopped(outcome)
    assert outcome["handler_calls"] == 1


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
@pytest.mark.parametrize("scenario", ["transport_stream", "async_transport_stream"])
def test_an_unrecordable_stream_raises_at_its_end_after_every_chunk_reached_the_caller(
    outcomes: dict[str, dict[str, Any]], scenario: str, branch: str
) -> None:
    """A stream is recorded when it is finalised: every chunk reaches the caller unchanged, then the
    iterator's end raises AuditError (instead of stopping)."""
    outcome = outcomes[f"strict:{scenario}[{branch}]"]
    _stopped(outcome)
    assert outcome["chunks"] == 6  # all of SSE_CHUNKS


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
@pytest.mark.parametrize("scenario", ["transport_stream_closed_early", "async_transport_stream_closed_early"])
def test_an_unrecordable_stream_closed_early_raises_when_it_is_closed(
    outcomes: dict[str, dict[str, Any]], scenario: str, branch: str
) -> None:
    """A stream the caller stops reading raises AuditError when it is closed (close/aclose, or the
    client's ``with`` block closing it)."""
    outcome = outcomes[f"strict:{scenario}[{branch}]"]
    _stopped(outcome)
    assert outcome["chunks"] in (1, 2)


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
def test_a_failed_call_that_cannot_be_recorded_raises_audit_error_chained_to_the_failure(
    outcomes: dict[str, dict[str, Any]], branch: str
) -> None:
    """The inner transport's error is replaced by AuditError, which keeps it in its chain."""
    outcome = outcomes[f"strict:transport_connect_error[{branch}]"]
    _stopped(outcome)
    assert outcome["chain"] == ["OSError", "ConnectError"]


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
def test_strict_never_turns_a_cancellation_into_an_audit_error(
    outcomes: dict[str, dict[str, Any]], branch: str
) -> None:
    """A task cancelled mid-stream ends cancelled; the unrecordable record is counted as failed."""
    outcome = outcomes[f"strict:async_transport_stream_cancelled[{branch}]"]
    assert outcome["raised"] == "CancelledError"
    assert (outcome["failed"], outcome["stored_bytes"]) == (1, 0)


@pytest.mark.parametrize("scenario", ["openai_create", "async_openai_create", "openai_stream"])
def test_the_openai_sdk_passes_the_audit_error_through_without_retrying(
    outcomes: dict[str, dict[str, Any]], scenario: str
) -> None:
    """The real openai SDK (httpx2, max_retries=2) neither wraps AuditError in APIConnectionError
    nor retries the call: the LLM is called once, and the caller is stopped."""
    outcome = outcomes[f"strict:{scenario}"]
    _stopped(outcome)
    assert outcome["handler_calls"] == 1
    if scenario == "openai_stream":
        assert outcome["chunks"] == 5  # every event of SSE_CHUNKS but [DONE] reached the caller


@pytest.mark.parametrize(
    "scenario",
    ["decorated_function", "decorated_coroutine", "decorated_generator", "decorated_async_generator"],
)
def test_an_unrecordable_audited_call_raises_audit_error(
    outcomes: dict[str, dict[str, Any]], scenario: str
) -> None:
    """@audited in each variant raises AuditError where the call ends: instead of the return value,
    or at the (async) generator's exhaustion after every item was yielded."""
    outcome = outcomes[f"strict:{scenario}"]
    _stopped(outcome)
    assert outcome["handler_calls"] == 1
    if "generator" in scenario:
        assert outcome["chunks"] == 2


def test_an_audited_call_that_raised_is_replaced_by_audit_error_chained_to_it(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    outcome = outcomes["strict:decorated_function_raising"]
    _stopped(outcome)
    assert outcome["chain"] == ["OSError", "ValueError"]


def test_an_unrecordable_aiohttp_call_raises_audit_error_instead_of_the_body(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    """aiohttp (the audit middleware): ``await response.json()`` raises AuditError instead of
    returning the body."""
    outcome = outcomes["strict:aiohttp_post"]
    _stopped(outcome)
    assert outcome["handler_calls"] == 1


def test_an_unrecordable_aiohttp_stream_raises_at_its_end_after_every_chunk_reached_the_caller(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    """The read that would return the body's end raises AuditError, after every byte was delivered."""
    outcome = outcomes["strict:aiohttp_stream"]
    _stopped(outcome)
    assert outcome["received"] == sum(len(c) for c in SSE_CHUNKS)


def test_an_unrecordable_aiohttp_stream_closed_early_raises_when_it_is_released(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    """Leaving the ``async with`` block early releases the response, which raises AuditError."""
    outcome = outcomes["strict:aiohttp_stream_closed_early"]
    _stopped(outcome)
    assert outcome["chunks"] == 1


def test_a_failed_aiohttp_call_that_cannot_be_recorded_raises_audit_error_chained_to_it(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    """aiohttp's connection error is replaced by AuditError, which keeps it in its chain."""
    outcome = outcomes["strict:aiohttp_connect_error"]
    _stopped(outcome)
    assert outcome["chain"][:2] == ["OSError", "ClientConnectorError"]


def test_strict_never_turns_an_aiohttp_cancellation_into_an_audit_error(
    outcomes: dict[str, dict[str, Any]],
) -> None:
    """A task cancelled while reading an aiohttp stream ends cancelled; the loss is counted."""
    outcome = outcomes["strict:aiohttp_stream_cancelled"]
    assert outcome["raised"] == "CancelledError"
    assert (outcome["failed"], outcome["stored_bytes"]) == (1, 0)


@pytest.mark.parametrize("scenario", LENIENT)
def test_without_strict_the_same_failures_never_reach_the_caller(
    outcomes: dict[str, dict[str, Any]], scenario: str
) -> None:
    """The default: the same real write failures are counted (and logged), the call returns."""
    outcome = outcomes[f"lenient:{scenario}"]
    assert outcome["raised"] is None
    assert (outcome["failed"], outcome["stored_bytes"]) == (1, 0)


def _failing_processor(record: AuditRecord) -> AuditRecord:
    raise RuntimeError("a processor bug")


@pytest.fixture
def sync_auditors(tmp_path: Path) -> Iterator[dict[bool, Auditor]]:
    auditors = {
        strict: Auditor(
            "memory://strict-" + str(strict),
            mode="sync",
            strict=strict,
            spool_dir=str(tmp_path / f"spool-{strict}"),
            processors=[_failing_processor],
        )
        for strict in (True, False)
    }
    yield auditors
    for auditor in auditors.values():
        auditor.close()


def test_strict_stops_a_call_whose_record_cannot_be_built(
    sync_auditors: dict[bool, Auditor], expect_internal_errors: list[logging.LogRecord]
) -> None:
    """A record lost to a bug (here a processor raising) is as unaudited as one lost to a full disk:
    strict raises AuditError naming the cause; without strict the failure is only logged and counted."""
    with pytest.raises(AuditError, match=r"could not be built \(RuntimeError: a processor bug\)"):
        sync_auditors[True].submit(AuditRecord())
    sync_auditors[False].submit(AuditRecord())
    assert sync_auditors[True].stats().failed == sync_auditors[False].stats().failed == 1
    assert any("record building" in r.getMessage() for r in expect_internal_errors)


@pytest.fixture
def strict_auditor(tmp_path: Path) -> Iterator[Auditor]:
    auditor = Auditor("memory://strict-start", mode="sync", strict=True, spool_dir=str(tmp_path / "spool"))
    yield auditor
    auditor.close()


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
def test_strict_stops_a_call_that_llmaudit_could_not_start_recording_before_it_is_sent(
    branch: str,
    strict_auditor: Auditor,
    monkeypatch: pytest.MonkeyPatch,
    expect_internal_errors: list[logging.LogRecord],
) -> None:
    """A bug on the hot path (here the endpoint matcher) would let the call go out unrecorded: with
    strict it is stopped before anything is sent (without strict it goes on, see
    tests/transport/test_transport.py::test_an_internal_failure_never_reaches_the_caller)."""
    hx = importlib.import_module(branch)
    sent: list[Any] = []

    def handler(request: Any) -> Any:
        sent.append(request)
        return hx.Response(200, json={})

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("matcher bug")

    monkeypatch.setattr(llmaudit.providers, "match", broken)
    transport = llmaudit.AuditTransport(hx.MockTransport(handler), auditor=strict_auditor)
    with hx.Client(transport=transport) as client, pytest.raises(AuditError, match="matcher bug") as raised:
        client.post("https://api.openai.com/v1/chat/completions", json={})
    assert "recording could not start" in str(raised.value)
    assert sent == []
    assert any("transport request capture" in r.getMessage() for r in expect_internal_errors)


def test_strict_stops_an_audited_call_that_could_not_start_recording_before_its_body_runs(
    strict_auditor: Auditor, expect_internal_errors: list[logging.LogRecord]
) -> None:
    """@audited whose session_key callable fails: with strict the body never runs."""
    ran: list[str] = []

    def bad_key(arguments: Any) -> str:
        raise KeyError("no such argument")

    @llmaudit.audited(auditor=strict_auditor, session_key=bad_key)
    def answer(question: str) -> str:
        ran.append(question)
        return "42"

    with pytest.raises(AuditError, match="recording could not start"):
        answer("why?")
    assert ran == []
    assert strict_auditor.stats().submitted == 0
    assert any("decorator call start" in r.getMessage() for r in expect_internal_errors)
