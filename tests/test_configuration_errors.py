"""Bad configuration fails where it is given (issue 17, item 9).

Every keyword of every public entry point (``configure``, `Auditor`, the transports, `instrument`,
`audited`, `session`, `Redactor`, ``open``) and every ``LLMAUDIT_*`` twin, given a bad value, raises
`ConfigurationError` at once, naming the keyword (or variable) and what it accepts: never an
AttributeError or bare TypeError from deep inside, and never a value accepted now that fails every
record later on the writer thread (where the records would be lost).
"""

from __future__ import annotations

import importlib
import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import llmaudit
from llmaudit import ConfigurationError

# private: writer internals (settings, spool, frames, signal hooks) that no public API exposes
from llmaudit.pipeline.settings import Settings


@pytest.fixture(autouse=True)
def _no_default_auditor_left() -> Iterator[None]:
    yield
    llmaudit.shutdown()
    llmaudit.uninstrument()


def _memory() -> str:
    return f"memory://{uuid.uuid4().hex}"


#: configure()'s keywords with a bad value each, and what the message must say it accepts.
CONFIGURE_BAD: list[tuple[str, Any, str]] = [
    ("storage", 42, "storage URL"),
    ("storage", Path("audit.db"), "storage URL"),
    ("storage", "nosuch://x", "unknown storage scheme"),
    ("storage", "sqlite:///", "names no database file"),
    ("mode", "fast", "'background' or 'sync'"),
    ("writer", "fork", "'thread' or 'process'"),
    ("strict", "maybe", "True or False"),
    ("strict", 2, "True or False"),
    ("disabled", "perhaps", "True or False"),
    ("handle_sigterm", [], "True or False"),
    ("batch_size", 0, "whole number greater than 0"),
    ("batch_size", 1.5, "whole number greater than 0"),
    ("batch_size", True, "whole number greater than 0"),
    ("queue_size", -1, "whole number greater than 0"),
    ("queue_size", "many", "whole number greater than 0"),
    ("flush_interval_s", float("nan"), "seconds greater than 0"),
    ("flush_interval_s", "soon", "seconds greater than 0"),
    ("shutdown_timeout_s", 0, "seconds greater than 0"),
    ("spool_dir", 42, "directory path"),
    ("redactor", "yes", "Redactor"),
    ("redactor", print, "Redactor"),
    ("before_write", "drop", "callable"),
    ("processors", print, "list of callables"),
    ("processors", ["not callable"], "not callable"),
    ("chain_key", 42, "non-empty string"),
    ("providers", {"gw.corp": "opnai"}, "accepted provider names: anthropic"),
    ("signing_key", 42, "Ed25519 private key"),
    ("checkpoint_every_records", 0, "whole number greater than 0"),
    ("checkpoint_every_s", "hourly", "seconds greater than 0"),
    ("witness", 42, "directory or file path"),
]


@pytest.mark.parametrize(("keyword", "value", "accepts"), CONFIGURE_BAD, ids=lambda v: repr(v)[:30])
@pytest.mark.parametrize("entry", ["configure", "Auditor", "configure(disabled=True)"])
def test_every_configure_keyword_with_a_bad_value_fails_at_once_naming_it(
    entry: str, keyword: str, value: Any, accepts: str, tmp_path: Path
) -> None:
    if entry == "Auditor" and keyword == "disabled":
        pytest.skip("disabled is configure()'s alone")
    if entry.endswith("(disabled=True)") and isinstance(value, str) and "://" in value:
        pytest.skip("a URL is checked by opening it, and disabled recording opens nothing")
    options: dict[str, Any] = {"spool_dir": str(tmp_path / "spool"), "storage": _memory(), keyword: value}
    with pytest.raises(ConfigurationError) as info:
        if entry == "Auditor":
            llmaudit.Auditor(**options)
        elif entry == "configure":
            llmaudit.configure(**options)
        else:  # recording off: nothing is opened, but a bad setting is still an error now
            llmaudit.configure(**{"disabled": True, **options})
    message = str(info.value)
    assert f"{keyword}=" in message and accepts in message, message


def test_the_table_covers_every_keyword_of_configure_and_auditor() -> None:
    """A keyword added to `Auditor` without a row here (a bad value of it) fails this test."""
    keywords = set(inspect.signature(llmaudit.Auditor.__init__).parameters) - {"self"}
    assert keywords | {"disabled"} == {keyword for keyword, _, _ in CONFIGURE_BAD}


def test_redactor_yes_used_to_lose_every_record_on_the_writer_thread(tmp_path: Path) -> None:
    """The issue's example: accepted, then every record failed on the writer thread."""
    with pytest.raises(ConfigurationError, match=r"redactor='yes'.*Redactor"):
        llmaudit.configure(_memory(), redactor="yes", spool_dir=str(tmp_path / "spool"))
    assert llmaudit.get_auditor().storage.url != ""  # the default is untouched, still usable


def test_an_unknown_keyword_names_the_known_ones() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown llmaudit setting\(s\): batchsize; known: .*batch_size"
    ):
        llmaudit.configure(_memory(), batchsize=3)


@pytest.mark.parametrize(
    ("variable", "value", "accepts"),
    [
        ("LLMAUDIT_STORAGE", "nosuch://x", "unknown storage scheme"),
        ("LLMAUDIT_STORAGE", "sqlite:///", "names no database file"),
        ("LLMAUDIT_MODE", "fast", "'background' or 'sync'"),
        ("LLMAUDIT_WRITER", "fork", "'thread' or 'process'"),
        ("LLMAUDIT_STRICT", "maybe", "True or False"),
        ("LLMAUDIT_DISABLED", "perhaps", "True or False"),
        ("LLMAUDIT_HANDLE_SIGTERM", "2", "True or False"),
        ("LLMAUDIT_BATCH_SIZE", "1.5", "whole number"),
        ("LLMAUDIT_QUEUE_SIZE", "0", "whole number"),
        ("LLMAUDIT_FLUSH_INTERVAL_S", "nan", "seconds greater than 0"),
        ("LLMAUDIT_SHUTDOWN_TIMEOUT_S", "-1", "seconds greater than 0"),
        ("LLMAUDIT_PROVIDERS", "gw.corp=claude", "accepted provider names: anthropic"),
        ("LLMAUDIT_CHECKPOINT_EVERY_RECORDS", "0", "whole number"),
        ("LLMAUDIT_CHECKPOINT_EVERY_S", "0", "seconds greater than 0"),
        ("LLMAUDIT_SIGNING_KEY", "/nonexistent/key.pem", "cannot read the signing key"),
    ],
)
def test_every_environment_twin_with_a_bad_value_fails_at_configure_naming_it(
    variable: str, value: str, accepts: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(variable, value)
    storage = None if variable == "LLMAUDIT_STORAGE" else _memory()
    with pytest.raises(ConfigurationError) as info:
        llmaudit.configure(storage, spool_dir=str(tmp_path / "spool"))
    assert f"{variable}=" in str(info.value) and accepts in str(info.value), str(info.value)


def test_the_environment_table_covers_every_setting() -> None:
    names = {f"LLMAUDIT_{name.upper()}" for name in Settings.__dataclass_fields__} - {"LLMAUDIT_CHAIN_KEY"}
    covered = {
        "LLMAUDIT_STORAGE",
        "LLMAUDIT_MODE",
        "LLMAUDIT_WRITER",
        "LLMAUDIT_STRICT",
        "LLMAUDIT_DISABLED",
        "LLMAUDIT_HANDLE_SIGTERM",
        "LLMAUDIT_BATCH_SIZE",
        "LLMAUDIT_QUEUE_SIZE",
        "LLMAUDIT_FLUSH_INTERVAL_S",
        "LLMAUDIT_SHUTDOWN_TIMEOUT_S",
        "LLMAUDIT_PROVIDERS",
        "LLMAUDIT_SPOOL_DIR",  # any non-empty path is a path: nothing to reject but emptiness
        "LLMAUDIT_CHECKPOINT_EVERY_RECORDS",
        "LLMAUDIT_CHECKPOINT_EVERY_S",
        "LLMAUDIT_SIGNING_KEY",
        "LLMAUDIT_WITNESS",  # any non-empty path is a path (a witness without a signing key is refused)
    }
    assert names == covered


def test_an_empty_variable_means_not_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMAUDIT_STORAGE", "")
    monkeypatch.setenv("LLMAUDIT_SPOOL_DIR", "")
    settings = Settings.resolve()
    assert settings.storage is None and settings.spool_dir is None


def test_good_values_in_every_accepted_form_still_work(tmp_path: Path) -> None:
    auditor = llmaudit.Auditor(
        _memory(),
        spool_dir=tmp_path / "spool",  # a Path, not only a str
        batch_size="10",
        flush_interval_s=1,
        queue_size=100,
        strict="no",
        redactor=True,
        processors=(lambda r: r,),
    )
    try:
        assert auditor.settings.batch_size == 10 and auditor.settings.flush_interval_s == 1.0
        assert auditor.settings.spool_dir == str(tmp_path / "spool") and auditor.settings.strict is False
    finally:
        auditor.close()


# -- transports and instrument() -----------------------------------------------------------------


def _transport_classes() -> list[Any]:
    out = []
    for branch in ("httpx", "httpx2"):
        module = importlib.import_module(f"llmaudit.transports.{branch}")
        out += [pytest.param(module.AuditTransport, branch, id=f"{branch}-sync")]
        out += [pytest.param(module.AsyncAuditTransport, branch, id=f"{branch}-async")]
    out += [pytest.param(llmaudit.AuditTransport, "httpx2", id="core-sync")]
    out += [pytest.param(llmaudit.AsyncAuditTransport, "httpx2", id="core-async")]
    return out


def _wrong_flavour(cls: Any, branch: str) -> Any:
    hx = importlib.import_module(branch)
    is_async = "Async" in cls.__name__
    return hx.HTTPTransport() if is_async else hx.AsyncHTTPTransport()


TRANSPORT_BAD: list[tuple[str, Callable[[Any, str], Any], str]] = [
    ("inner", lambda cls, branch: object(), "httpx or httpx2"),
    ("inner", lambda cls, branch: importlib.import_module(branch).Client(), "that is a client"),
    ("inner", _wrong_flavour, "wrap it with"),
    ("transport", lambda cls, branch: importlib.import_module(branch).Client(), "that is a client"),
    ("auditor", lambda cls, branch: "default", "auditor='default'"),
    ("client", lambda cls, branch: 42, "client=42"),
    ("client", lambda cls, branch: "x" * 10_000, "client="),
    ("capture", lambda cls, branch: "everything", "capture='everything'"),
    ("stream_usage", lambda cls, branch: "yes", "stream_usage='yes'"),
]


@pytest.mark.parametrize(("keyword", "make", "expected"), TRANSPORT_BAD, ids=lambda v: str(v)[:20])
@pytest.mark.parametrize(("cls", "branch"), _transport_classes())
def test_every_transport_keyword_with_a_bad_value_fails_at_construction(
    cls: Any, branch: str, keyword: str, make: Callable[[Any, str], Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected.replace("(", r"\(")):
        cls(**{keyword: make(cls, branch)})


def test_the_transport_table_covers_every_keyword() -> None:
    keywords = set(inspect.signature(llmaudit.AuditTransport.__init__).parameters) - {"self"}
    assert keywords == {keyword for keyword, _, _ in TRANSPORT_BAD}


@pytest.mark.parametrize("branch", ["httpx", "httpx2"])
def test_transport_is_accepted_as_the_name_of_the_wrapped_transport(branch: str, tmp_path: Path) -> None:
    """httpx-style wrapping transports (hishel's CacheTransport, httpx-retries' RetryTransport) take
    the wrapped one as ``transport=``: AuditTransport takes it under that name too."""
    hx = importlib.import_module(branch)
    body = b'{"id": "c1", "model": "gpt-4o-mini", "choices": [], "usage": {"prompt_tokens": 3}}'
    mock = hx.MockTransport(lambda request: hx.Response(200, content=body))
    with llmaudit.Auditor(_memory(), mode="sync", spool_dir=str(tmp_path / "spool")) as auditor:
        transport = llmaudit.AuditTransport(transport=mock, auditor=auditor)
        with hx.Client(transport=transport) as http:
            response = http.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-4o-mini"})
        assert response.content == body
        (record,) = auditor.storage.read(llmaudit.Query())
    assert record.source == "transport" and record.provider == "openai" and record.input_tokens == 3


def test_inner_and_transport_together_is_an_error() -> None:
    import httpx2

    with pytest.raises(ConfigurationError, match="inner= or transport=, not both"):
        llmaudit.AuditTransport(httpx2.HTTPTransport(), transport=httpx2.HTTPTransport())


INSTRUMENT_BAD: list[tuple[str, Any, str]] = [
    ("auditor", 42, "auditor=42"),
    ("client", 42, "client=42"),
    ("capture", "some", "capture='some'"),
    ("stream_usage", 1, "stream_usage=1"),
]


@pytest.mark.parametrize(("keyword", "value", "expected"), INSTRUMENT_BAD)
def test_every_instrument_keyword_with_a_bad_value_fails_and_patches_nothing(
    keyword: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        llmaudit.instrument(**{keyword: value})
    assert not llmaudit.is_instrumented()
    keywords = set(inspect.signature(llmaudit.instrument).parameters)
    assert keywords == {keyword for keyword, _, _ in INSTRUMENT_BAD}


# -- audited, session, Redactor, open ------------------------------------------------------------

AUDITED_BAD: list[tuple[str, Any, str]] = [
    ("client", 42, "client must be a string"),
    ("name", 42, "name=42"),
    ("capture_args", "yes", "capture_args='yes'"),
    ("capture_result", None, "capture_result=None"),
    ("session_key", "abc", "session_key='abc'.*llmaudit.session"),
    ("tags", "beta", "tags='beta'"),
    ("tags", [1], "not a string"),
    ("metadata", ["a"], "metadata="),
    ("metadata", {1: "a"}, "string keys"),
    ("auditor", "x", "auditor='x'"),
]


@pytest.mark.parametrize(("keyword", "value", "expected"), AUDITED_BAD)
def test_every_audited_keyword_with_a_bad_value_fails_at_decoration(
    keyword: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        llmaudit.audited(**{keyword: value})
    keywords = set(inspect.signature(llmaudit.audited).parameters) - {"fn"}
    assert keywords == {keyword for keyword, _, _ in AUDITED_BAD}


SESSION_BAD: list[tuple[str, Any, str]] = [
    ("key", 42, "session key must be a string"),
    ("user", 42, "user must be a string"),
    ("client", ["bot"], "client must be a string"),
    ("tags", "beta", "tags='beta'"),
    ("tags", 3, "tags=3"),
    ("metadata", "notes", "metadata='notes'"),
]


@pytest.mark.parametrize(("keyword", "value", "expected"), SESSION_BAD)
def test_every_session_keyword_with_a_bad_value_fails_at_once(
    keyword: str, value: Any, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        llmaudit.session(**{keyword: value})
    keywords = set(inspect.signature(llmaudit.session.__init__).parameters) - {"self"}
    assert keywords == {keyword for keyword, _, _ in SESSION_BAD}


REDACTOR_BAD: list[tuple[str, Any, str]] = [
    ("rules", 42, "rules must be a list"),
    ("rules", [42], "redaction rule must be"),
    ("detectors", ["nosuch"], "unknown redaction detector"),
    ("max_value_bytes", 10, "max_value_bytes"),
    ("hash_key", 42, "hash_key"),
    ("before_write", 3, "before_write must be callable"),
    ("deny_headers", "x-secret", "deny_headers must be a list"),
    ("deny_headers", [3], "deny_headers must be a list"),
    ("patterns", 3, "patterns must be a dict"),
    ("patterns", {"mine": "("}, "not a valid regex"),
]


@pytest.mark.parametrize(("keyword", "value", "expected"), REDACTOR_BAD)
def test_every_redactor_keyword_with_a_bad_value_fails_at_construction(
    keyword: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        llmaudit.Redactor(**{keyword: value})
    keywords = set(inspect.signature(llmaudit.Redactor.__init__).parameters) - {"self"}
    assert keywords == {keyword for keyword, _, _ in REDACTOR_BAD}


def test_open_with_a_bad_argument_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="takes a storage URL"):
        llmaudit.open(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="spool_dir=42"):
        llmaudit.open(_memory(), spool_dir=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="scheme://"):
        llmaudit.open_storage(42)  # type: ignore[arg-type]


def test_chain_key_is_a_configure_keyword_as_documented(tmp_path: Path) -> None:
    """The README lists ``chain_key`` as a keyword: it keys the chain like LLMAUDIT_CHAIN_KEY."""
    url = _memory()
    with llmaudit.Auditor(url, mode="sync", chain_key="k1", spool_dir=str(tmp_path / "spool")) as auditor:
        auditor.submit(llmaudit.AuditRecord(session_key="s"))
        reader = llmaudit.open(auditor.storage)
        assert reader.verify(key="k1").ok and not reader.verify(key="another").ok
