"""Storage URLs: scheme lookup, third-party schemes, and clear errors for bad URLs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from llmaudit import AuditRecord, ConfigurationError, StorageError

# private: the storage registry, saved and restored around schemes a test registers
from llmaudit.storage import Query, Storage, _registry, open_storage, redact_url, register_storage
from llmaudit.storage.memory import MemoryStorage


def test_unknown_scheme_is_a_configuration_error_listing_known_schemes() -> None:
    """A typo in the scheme names the URL (without password) and what would have worked."""
    with pytest.raises(ConfigurationError) as info:
        open_storage("sqlte://user:hunter2@host/db")
    message = str(info.value)
    assert "sqlte" in message
    assert "hunter2" not in message
    assert "sqlite" in message
    assert "jsonl" in message


@pytest.mark.parametrize("url", ["", "audit.db", "/var/log/llm", None])
def test_a_url_without_scheme_is_a_configuration_error(url: object) -> None:
    """A bare path is a common mistake: the message shows the expected form."""
    with pytest.raises(ConfigurationError, match="scheme://"):
        open_storage(url)  # type: ignore[arg-type]


def test_redact_url_hides_only_the_password() -> None:
    """Messages keep user, host, port and database so the user can see which store is meant."""
    assert (
        redact_url("postgresql+psycopg://bob:s3cret@db.local:5433/audit?table=x")
        == "postgresql+psycopg://bob:***@db.local:5433/audit?table=x"
    )
    assert redact_url("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db"


class _Recording(MemoryStorage):
    opened: list[str] = []  # noqa: RUF012

    @classmethod
    def from_url(cls, url: str) -> _Recording:
        cls.opened.append(url)
        return cls()


@pytest.fixture
def clean_registry() -> Iterator[None]:
    # private: the storage registry, restored after the test registers a scheme
    saved = dict(_registry._registered)
    yield
    _registry._registered.clear()
    _registry._registered.update(saved)


@pytest.mark.usefixtures("clean_registry")
def test_register_storage_adds_a_scheme_with_driver_suffixes() -> None:
    """A registered scheme also answers ``scheme+driver://`` URLs, like SQLAlchemy's."""
    register_storage("acme", _Recording.from_url)
    store = open_storage("acme+fast://bucket/x")
    assert isinstance(store, Storage)
    store.write([AuditRecord(session_key="k")])
    assert [r.session_key for r in store.read(Query())] == ["k"]
    assert _Recording.opened[-1] == "acme+fast://bucket/x"


@pytest.mark.usefixtures("clean_registry")
def test_entry_point_group_is_consulted_for_unknown_schemes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Third parties extend storage through the ``llmaudit.storage`` entry-point group."""

    class _EntryPoint:
        name = "vault"

        def load(self) -> object:
            return _Recording.from_url

    def fake_entry_points(*, group: str) -> Sequence[object]:
        return [_EntryPoint()] if group == "llmaudit.storage" else []

    monkeypatch.setattr(_registry, "entry_points", fake_entry_points)
    store = open_storage("vault://x")
    assert isinstance(store, _Recording)
    assert "vault" in _registry.known_schemes()


@pytest.mark.usefixtures("clean_registry")
def test_a_failing_third_party_factory_becomes_a_storage_error_without_password() -> None:
    """A plug-in's own exception is wrapped: the user sees which URL failed, not a deep traceback."""

    def broken(url: str) -> Storage:
        raise RuntimeError("bucket not found")

    register_storage("flaky", broken)
    with pytest.raises(StorageError) as info:
        open_storage("flaky://me:pw123@host/bucket")
    assert "bucket not found" in str(info.value)
    assert "pw123" not in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_named_memory_stores_are_shared_and_anonymous_ones_private() -> None:
    """``memory://NAME`` lets a reader see a writer's records; ``memory://`` is isolated."""
    a, b = open_storage("memory://shared-test"), open_storage("memory://shared-test")
    a.write([AuditRecord()])
    assert len(list(b.read(Query()))) == 1
    c, d = open_storage("memory://"), open_storage("memory://")
    c.write([AuditRecord()])
    assert list(d.read(Query())) == []
