"""The Auditor: one configured pipeline from submitted captures to a storage backend.

Applications normally use the process-wide default behind `configure`, `flush` and `shutdown`, created
lazily on first use from the ``LLMAUDIT_*`` environment (writing to the embedded SQLite store when
nothing is set). Tests and multi-sink applications create `Auditor` objects of their own. With
``disabled`` set, the default is a `NullAuditor` whose methods do nothing, so disabled costs nothing.

`submit` never raises into the caller (strict mode's `AuditError` aside); every setting is checked
before anything is opened. SIGTERM and the exit flush are `signals`' work, the writing the `Writer`'s.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypedDict, Unpack

from .._errors import AuditError, ConfigurationError
from .._guard import report
from ..integrity.chain import chain_key as key_bytes
from ..integrity.witness import open_witness
from ..redact.redactor import Redactor
from ..storage import Storage, open_storage
from .checkpointing import Checkpointing
from .limits import Mode, WriterKind
from .settings import Settings, check_processing, check_storage, default_spool_dir, default_storage_url
from .signals import install_sigterm_handler, live_auditors
from .spool import Spool
from .writer import Pending, Processor, Writer, WriterStats

__all__ = [
    "Auditor",
    "NullAuditor",
    "configure",
    "flush",
    "get_auditor",
    "shutdown",
    "stats",
]


class Auditor:
    """Records go in through `submit`, out to *storage* through a background (or sync) writer.

    Args:
        storage: a storage URL (``"sqlite:///audit.db"``, ``"jsonl:///var/log/llm"``, …) or an open
            `Storage`; default ``LLMAUDIT_STORAGE``, else the embedded SQLite store.
        mode: ``"background"`` (default) or ``"sync"``: the record is durable before `submit` returns.
        writer: ``"thread"`` (default): records are built, redacted, sealed and stored by a thread of
            this process. ``"process"``: by a child Python process, so that this work does not
            compete with the application for the interpreter lock (``LLMAUDIT_WRITER``); needs a
            storage URL, background mode, and processors importable outside ``__main__``. See
            ``llmaudit.pipeline.process_runner``.
        strict: raise `AuditError` from `submit` when a record can be neither stored nor spilled.
        batch_size, flush_interval_s, queue_size: writer tuning (``LLMAUDIT_BATCH_SIZE``, …).
        spool_dir: where records wait while the storage is down (default: per storage, in the data dir).
        redactor: the `Redactor` run first on the writer thread (default: ``Redactor()``, the built-in
            detectors and the 64 KiB value limit); ``False`` turns redaction off.
        before_write: ``record -> record | None`` run after redaction (None drops the record: sampling,
            for example; dropped records are counted in `stats`). Shorthand for a processor.
        processors: more callables ``record -> record | None`` run on the writer thread, in order,
            after redaction and before_write and before the record is sealed into the hash chain.
        shutdown_timeout_s: how long `close` (and interpreter exit) waits for the queue to drain.
        handle_sigterm: when nothing else handles SIGTERM (the handler is still the default) and this
            runs on the main thread, SIGTERM raises ``SystemExit(143)`` in the main thread instead of
            killing the process at once, so that interpreter exit flushes the queue. The process then
            exits with status 143 (what a shell reports for SIGTERM) rather than by the signal. When
            Python swallows that SystemExit (the handler ran inside a weakref callback or a
            ``__del__``), SIGTERM is sent again; a SIGTERM during the exit flush does not cut it short.
            Default on; ``False`` or ``LLMAUDIT_HANDLE_SIGTERM=0`` leaves SIGTERM alone.
        chain_key: the HMAC key of the hash chain (default ``LLMAUDIT_CHAIN_KEY``; unkeyed without).
        providers: the hosts (or host + path prefix) that serve a provider's API, asked before
            anything else: ``{"llm.internal/openai": "openai", "127.0.0.1:8765": "openai"}``
            (``LLMAUDIT_PROVIDERS="llm.internal/openai=openai,gw.corp=anthropic"``). Every request
            under a mapped prefix is recorded, parsed and priced as that provider's. The names are
            `llmaudit.providers.provider_names` (built-ins and `register_provider`'s).
        signing_key: the Ed25519 private key that signs checkpoints (``LLMAUDIT_SIGNING_KEY``): the
            path of its PEM file (``llmaudit keys generate``) or the PEM text itself; an encrypted
            one is decrypted with ``LLMAUDIT_SIGNING_KEY_PASSPHRASE``. Without one no checkpoint is
            made and everything works as before. Needs the ``cryptography`` package.
        checkpoint_every_records: a signed checkpoint at least every this many sealed records
            (default 1000)...
        checkpoint_every_s: ...and once the oldest record not covered yet is this old (default 60 s),
            and one when the writer closes.
        witness: where a copy of each checkpoint goes besides the storage, somewhere the database's
            owner cannot rewrite: a directory or file (``checkpoints.jsonl`` appended to), or
            ``command:CMD`` (CMD run with each checkpoint's JSON on its standard input).

    Raises:
        ConfigurationError: a setting is invalid or the URL's scheme is unknown.
        StorageError: the storage cannot be opened (the message names the URL without password).
    """

    def __init__(
        self,
        storage: str | Storage | None = None,
        *,
        mode: Mode | None = None,
        writer: WriterKind | None = None,
        strict: bool | None = None,
        batch_size: int | None = None,
        flush_interval_s: float | None = None,
        queue_size: int | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        redactor: Redactor | bool | None = None,
        before_write: Processor | None = None,
        processors: Sequence[Processor] = (),
        shutdown_timeout_s: float | None = None,
        handle_sigterm: bool | None = None,
        chain_key: str | None = None,
        providers: Mapping[str, str] | str | None = None,
        signing_key: str | os.PathLike[str] | None = None,
        checkpoint_every_records: int | None = None,
        checkpoint_every_s: float | None = None,
        witness: str | os.PathLike[str] | None = None,
    ) -> None:
        storage = check_storage(storage)
        steps = _pipeline(redactor, before_write, processors)  # checked before anything is opened
        self.settings = Settings.resolve(
            storage=storage if isinstance(storage, str) else None,
            mode=mode,
            writer=writer,
            strict=strict,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            queue_size=queue_size,
            spool_dir=spool_dir,
            shutdown_timeout_s=shutdown_timeout_s,
            handle_sigterm=handle_sigterm,
            chain_key=chain_key,
            providers=providers,
            signing_key=signing_key,
            checkpoint_every_records=checkpoint_every_records,
            checkpoint_every_s=checkpoint_every_s,
            witness=os.fspath(witness) if isinstance(witness, os.PathLike) else witness,
        )
        checkpointing = _checkpointing(
            self.settings, explicit=signing_key is not None
        )  # the key is loaded before anything is opened
        if self.settings.handle_sigterm:
            install_sigterm_handler()
        self._owns_storage = isinstance(storage, str) or storage is None
        if isinstance(storage, str) or storage is None:
            storage = _open_configured(self.settings.storage, explicit=isinstance(storage, str))
        self.storage: Storage = storage
        spool = Spool(self.settings.spool_dir or default_spool_dir(storage.url))
        options: dict[str, Any] = {
            "mode": self.settings.mode,
            "strict": self.settings.strict,
            "batch_size": self.settings.batch_size,
            "flush_interval_s": self.settings.flush_interval_s,
            "queue_size": self.settings.queue_size,
            "processors": steps,
            "chain_key": key_bytes(self.settings.chain_key),
            "checkpointing": checkpointing,
        }
        if self.settings.writer == "process":
            self._writer: Writer = _process_writer(self, storage, spool, options)
        else:
            self._writer = Writer(storage, spool, **options)
        self._closed = False
        live_auditors.add(self)
        if spool.pending():  # a crashed or stopped process left records: start the writer to replay
            self._writer.start()

    def submit(self, item: Pending) -> None:
        """Queue a record (or a capture that builds one on the writer thread). Never raises,
        except `AuditError` in strict mode."""
        try:
            self._writer.submit(item)
        except AuditError:
            raise
        except Exception as exc:  # noqa: BLE001 - the caller's call goes on whatever happens here
            report("submit", exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every record submitted so far is stored or spilled; False on timeout."""
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to *timeout*, default ``shutdown_timeout_s``), stop the writer, and close the
        storage if this auditor opened it from a URL. Records not written in time are spilled, not
        lost. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.close(self.settings.shutdown_timeout_s if timeout is None else timeout)
        if self._owns_storage:  # a Storage object passed in belongs to the caller
            self.storage.close()

    def replay_spool(self) -> int:
        """Replay spooled records into the storage now; returns how many were replayed."""
        return self._writer.replay_spool()

    def stats(self) -> WriterStats:
        """Counters: submitted, written, spilled, replayed, dropped, rejected, failed, queue depth,
        and requests an explicitly attached transport passed through unrecorded (unmatched)."""
        return self._writer.stats()

    def count_unmatched(self) -> None:
        """Count one request a transport passed through unrecorded (see `WriterStats.unmatched`)."""
        self._writer.count_unmatched()

    @property
    def spool(self) -> Spool:
        return self._writer.spool

    def __enter__(self) -> Auditor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Auditor storage={self.storage.url!r} mode={self.settings.mode!r}>"


def _checkpointing(settings: Settings, *, explicit: bool) -> Checkpointing | None:
    """The signed checkpoints *settings* ask for (None without a signing key).

    Raises:
        ConfigurationError: the key cannot be loaded, or ``cryptography`` is missing.
    """
    if settings.signing_key is None:
        if settings.witness is not None:
            raise ConfigurationError(
                "invalid llmaudit setting witness=: it needs a signing_key= to sign checkpoints"
            )
        return None
    try:
        from ..integrity import keys  # noqa: PLC0415 - needs cryptography, only when signing
    except ImportError as exc:
        raise ConfigurationError(str(exc)) from None
    passphrase = os.environ.get(keys.PASSPHRASE_ENV)
    try:
        signer = keys.load_signing_key(settings.signing_key, passphrase.encode() if passphrase else None)
    except ConfigurationError as exc:
        label = "signing_key=" if explicit else f"{keys.SIGNING_KEY_ENV}="
        raise ConfigurationError(f"invalid llmaudit setting {label}<hidden>: {exc}") from None
    return Checkpointing(
        signer,
        every_records=settings.checkpoint_every_records,
        every_s=settings.checkpoint_every_s,
        witness=open_witness(settings.witness) if settings.witness is not None else None,
    )


def _process_writer(auditor: Auditor, storage: Storage, spool: Spool, options: dict[str, Any]) -> Writer:
    from .process_runner import ProcessWriter, check_processors  # noqa: PLC0415 - only when asked for

    problem = None
    if not auditor._owns_storage:
        problem = 'writer="process" needs a storage URL (the child opens its own)'
    elif storage.url.startswith("memory:"):
        problem = 'writer="process" cannot share a memory:// store with this process'
    elif options["mode"] != "background":
        problem = 'writer="process" works in mode="background" only'
    try:
        if problem is not None:
            raise ConfigurationError(problem)  # noqa: TRY301 - one place closes the storage
        check_processors(options["processors"])
    except ConfigurationError:
        if auditor._owns_storage:
            storage.close()
        raise
    url = auditor.settings.storage or default_storage_url()
    return ProcessWriter(storage, spool, storage_url=url, **options)


def _open_configured(url: str | None, *, explicit: bool) -> Storage:
    """Open the configured store, naming the keyword or variable the URL came from when it is bad."""
    label = "storage=" if explicit else "LLMAUDIT_STORAGE=" if url else None
    try:
        return open_storage(url or default_storage_url())
    except ConfigurationError as exc:
        if label is None:
            raise
        raise ConfigurationError(f"invalid llmaudit setting {label}: {exc}") from None


def _pipeline(redactor: object, before_write: object, processors: object) -> list[Processor]:
    """The writer's processors, checked here (`check_processing`) so that a bad one fails at
    ``configure()`` instead of failing every record on the writer thread."""
    chosen, extra = check_processing(redactor, before_write, processors)
    steps: list[Processor] = [] if chosen is False else [Redactor() if chosen is None else chosen]
    return [*steps, *extra]


class NullAuditor:
    """What recording looks like when disabled: every method returns at once."""

    settings = Settings(disabled=True)

    def submit(self, item: Pending) -> None:
        """Discard *item*."""

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        """Nothing to close."""

    def replay_spool(self) -> int:
        return 0

    def stats(self) -> WriterStats:
        return WriterStats(0, 0, 0, 0, 0, 0, 0, 0, 0)

    def count_unmatched(self) -> None:
        """Nothing is counted while recording is off."""

    def __repr__(self) -> str:
        return "<NullAuditor (LLMAUDIT_DISABLED)>"


#: The keywords `configure` hands on to `Auditor` (every other one is a misspelling).
_AUDITOR_KEYWORDS = frozenset(inspect.signature(Auditor.__init__).parameters) - {"self", "storage"}
_PROCESSING_DEFAULTS = (("redactor", None), ("before_write", None), ("processors", ()))
_default: Auditor | NullAuditor | None = None
_default_lock = threading.Lock()


class ConfigureOptions(TypedDict, total=False):
    """The keywords of `configure` after ``storage`` (those of `Auditor`, plus ``disabled``), for type
    checkers: ``configure(writer="bogus")`` or a misspelt keyword is a type error, not only a
    `ConfigurationError` at run time. None means "not given" (the environment, then the default)."""

    disabled: bool | None
    mode: Mode | None
    writer: WriterKind | None
    strict: bool | None
    batch_size: int | None
    flush_interval_s: float | None
    queue_size: int | None
    spool_dir: str | os.PathLike[str] | None
    redactor: Redactor | bool | None
    before_write: Processor | None
    processors: Sequence[Processor]
    shutdown_timeout_s: float | None
    handle_sigterm: bool | None
    chain_key: str | None
    providers: Mapping[str, str] | str | None
    signing_key: str | os.PathLike[str] | None
    checkpoint_every_records: int | None
    checkpoint_every_s: float | None
    witness: str | os.PathLike[str] | None


def configure(
    storage: str | Storage | None = None, **options: Unpack[ConfigureOptions]
) -> Auditor | NullAuditor:
    """Set up the process-wide default auditor (replacing and closing any earlier one).

    Takes the keywords of `Auditor` plus ``disabled``; each also reads ``LLMAUDIT_<NAME>``.
    """
    global _default
    given: dict[str, Any] = dict(options)
    unknown = set(given) - _AUDITOR_KEYWORDS - {"disabled"}
    if unknown:
        known = ", ".join(sorted(_AUDITOR_KEYWORDS | {"disabled", "storage"}))
        raise ConfigurationError(f"unknown llmaudit setting(s): {', '.join(sorted(unknown))}; known: {known}")
    disabled = Settings.resolve(disabled=given.pop("disabled", None)).disabled
    if disabled:  # nothing is opened, but a bad setting is still an error now, not when enabled
        check_storage(storage)
        _pipeline(*(given.pop(name, default) for name, default in _PROCESSING_DEFAULTS))
        Settings.resolve(**given)
    new: Auditor | NullAuditor = NullAuditor() if disabled else Auditor(storage, **given)
    with _default_lock:
        old, _default = _default, new
    if old is not None:
        old.close()
    return new


def get_auditor() -> Auditor | NullAuditor:
    """The default auditor, created from the environment on first use."""
    global _default  # noqa: PLW0603
    if _default is None:
        with _default_lock:
            if _default is None:
                disabled = Settings.resolve().disabled
                _default = NullAuditor() if disabled else Auditor()
    return _default


def flush(timeout: float | None = None) -> bool:
    """Flush the default auditor (if one was created); False if *timeout* ran out."""
    return True if _default is None else _default.flush(timeout)


def shutdown(timeout: float | None = None) -> None:
    """Flush and close the default auditor; the next use creates a fresh one."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close(timeout)


def stats() -> WriterStats:
    """The default auditor's counters."""
    return get_auditor().stats()
