"""Maintenance of a stored log: erasure that keeps the proof (forget) and deletion of old records
that leaves a checkpoint (prune), with the spool's copies of what is erased.

`Reader.forget` and `Reader.prune` check their arguments and find the backend's chain capability;
the work is here. It must not change a record beyond the chain's erasure changes, never delete a
record that is not older than the cut-off or that would break what remains of a writer's chain, and
must not import the capture stage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError, StorageError
from ..integrity.chain import compute_hash, erasure_changes, hash_version, marker
from ..pipeline.spool import Spool
from ..record.codec import decode_record
from ..record.model import AuditRecord, utcnow
from ..storage import ChainStore, ErasureReport, Query, Storage
from ..storage._files import read_private
from ..storage.jsonl import rewrite_records

__all__ = ["ForgetResult", "PruneResult", "forget_records", "prune_records"]


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What `Reader.forget` did: records erased, and spool files it could not touch (in use).

    ``unguaranteed`` lists, in plain words, each copy of the erased text this run could not remove
    or check, and what to do about it (empty: every copy llmaudit can reach is gone).
    ``residual_copies`` names where the backend keeps copies beyond llmaudit's reach on every run
    (a server's write-ahead log, backups, replicas: SECURITY.md says what an operator must do).

    ``legacy``: records sealed with hashing version 1 (before every field was hashed as a digest):
    only their payloads (request, response, metadata) could be erased without breaking the chain;
    their other fields are kept. ``unverified``: records that did not verify with the key given
    before erasure, erased anyway because ``force=True``.
    """

    erased: int
    spool_replayed: int
    spool_files_in_use: int
    already_erased: int = 0  # matching records whose payloads an earlier forget erased
    unguaranteed: tuple[str, ...] = ()
    residual_copies: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What `Reader.prune` did: records deleted and checkpoints left (one per writer cut)."""

    deleted: int
    checkpoints: int
    kept_back: int  # older than the cut-off but after a newer record of the same writer


def forget_records(
    storage: Storage,
    store: ChainStore,
    spool_dir: Path,
    *,
    session: str | None,
    user: str | None,
    ids: Sequence[str] | None,
    secret: bytes | None,
    force: bool,
) -> ForgetResult:
    """Erase the matching records of *storage* through *store* (its chain capability), the spool's
    waiting and rejected copies in *spool_dir* with them: `Reader.forget`'s work, which it documents."""
    now = utcnow()
    unguaranteed: list[str] = []
    replayed, in_use = _forget_spooled(
        storage, spool_dir, session, user=user, ids=ids or (), now=now, key=secret, unguaranteed=unguaranteed
    )
    payloads: dict[str, dict[str, Any]] = {}
    matched: set[str] = set()
    # A record erased before carries the marker instead of the value: matched too, so that
    # forget run again (after a blocked checkpoint, a held spool file) reaches what it erased.
    sessions = () if session is None else (session, marker("session_key", session, secret))
    users = () if user is None else (user, marker("user", user, secret))
    queries = [Query(session_key=s) for s in sessions] + [Query(user=u) for u in users]
    if ids:
        queries.append(Query(ids=tuple(ids)))
    wanted = set(ids or ())

    def selected(r: AuditRecord) -> bool:
        return (
            r.id in wanted or r.session_key in sessions or r.parent_session_key in sessions or r.user in users
        )

    if session is not None:  # nested sessions: no index on parent_session_key, so a scan (rare)
        queries.append(Query())
    legacy: list[str] = []
    unverified: list[str] = []
    for query in queries:
        for record in storage.read(query):
            if record.id in matched or not selected(record):
                continue
            matched.add(record.id)
            fields = erasure_changes(record, now, secret)
            if not fields:
                continue  # erased before
            payloads[record.id] = fields
            if hash_version(record) == 1:
                legacy.append(record.id)
            if record.hash is not None and compute_hash(record, secret) != record.hash:
                unverified.append(record.id)
    if unverified and not force:
        raise ConfigurationError(
            f"{len(unverified)} matching records (e.g. {unverified[0]!r}) do not verify with "
            f"{'the chain key given' if secret else 'no chain key (set LLMAUDIT_CHAIN_KEY)'}: "
            "erasing them would leave digests that never verify; give the right key, or force"
        )
    # Already erased records erase again (nothing to change): the database gets another chance
    # to drop the old text from its files, e.g. after a reader blocked SQLite's checkpoint.
    erased = store.erase(payloads) if matched else 0
    if matched and isinstance(store, ErasureReport):
        unguaranteed.extend(store.erase_caveats)
    _erase_rejected(spool_dir, selected, now, secret)
    return ForgetResult(
        erased,
        replayed,
        in_use,
        already_erased=len(matched) - len(payloads),
        unguaranteed=tuple(unguaranteed),
        residual_copies=tuple(store.residual_copies) if isinstance(store, ErasureReport) else (),
        legacy=tuple(legacy),
        unverified=tuple(unverified),
    )


def prune_records(store: ChainStore, records: Iterable[AuditRecord], older_than: datetime) -> PruneResult:
    """Delete through *store* the *records* (all of a store's) created before *older_than*, leaving a
    checkpoint per writer: `Reader.prune`'s work, which it documents."""
    old: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    first_kept: dict[str, int] = {}
    unchained: list[str] = []
    for record in records:
        if record.writer_id is None or record.seq is None or record.hash is None:
            if record.created_at < older_than:
                unchained.append(record.id)
            continue
        if record.created_at < older_than:
            old[record.writer_id].append((record.seq, record.id, record.hash))
        else:
            known = first_kept.get(record.writer_id)
            first_kept[record.writer_id] = record.seq if known is None else min(known, record.seq)
    ids = list(unchained)
    checkpoints: dict[str, tuple[int, str]] = {}
    kept_back = 0
    for writer, rows in old.items():
        limit = first_kept.get(writer)
        cut = [row for row in sorted(rows) if limit is None or row[0] < limit]
        kept_back += len(rows) - len(cut)
        if cut:
            ids.extend(row[1] for row in cut)
            checkpoints[writer] = (cut[-1][0], cut[-1][2])
    deleted = store.delete(ids, checkpoints) if ids else 0
    return PruneResult(deleted, len(checkpoints), kept_back)


def _forget_spooled(
    storage: Storage,
    spool_dir: Path,
    session: str | None,
    *,
    user: str | None,
    ids: Sequence[str],
    now: datetime,
    key: bytes | None,
    unguaranteed: list[str],
) -> tuple[int, int]:
    """Replay the spool files no writer holds, and record the erasure for those it holds (and
    for records a running writer spills later); returns (records replayed, files in use)."""
    try:
        spool = Spool(spool_dir)
    except StorageError as exc:
        unguaranteed.append(
            f"the spool was not checked ({exc}): records waiting there keep their text. Fix the "
            f"directory, then run forget again as the user that runs the application"
        )
        return 0, 0
    spool.chain_key = key  # a replayed record erased by the forget list is erased with this key
    replayed = spool.replay(storage).records if spool.pending() else 0
    in_use = len(spool.files())
    spool.release()
    try:
        spool.record_erasure(session=session, user=user, ids=ids, at=now)
    except OSError as exc:
        unguaranteed.append(
            f"the erasure could not be recorded in the spool's forget list ({exc}): records a "
            f"running writer still holds will be stored with their text. Stop or flush the "
            f"application's writers and run forget again"
        )
    if in_use:
        unguaranteed.append(
            f"{in_use} spool file(s) in {spool.directory} are held by a running writer: their "
            f"records will be erased when they are replayed (the erasure is in the spool's forget "
            f"list), but the text stays in those files until then. Let the writer reach the "
            f"storage, or stop it, and run forget again to confirm"
        )
    return replayed, in_use


def _erase_rejected(
    spool_dir: Path, selected: Callable[[AuditRecord], bool], now: datetime, key: bytes | None = None
) -> None:
    """Rejected records kept in the spool for the operator lose the subject's data too (the
    files are rewritten atomically, like JSONL files)."""
    if not spool_dir.is_dir():
        return
    for path in spool_dir.glob("rejected-*.jsonl"):
        try:
            data = read_private(path)
        except OSError:  # not llmaudit's file (a link, another user's): not ours to rewrite
            continue
        ids = {r.id for r in _decode_lines(data) if selected(r)}
        if ids:
            rewrite_records(path, ids, lambda r: replace(r, **erasure_changes(r, now, key)), data=data)


def _decode_lines(data: bytes) -> Iterator[AuditRecord]:
    for line in data.splitlines():
        try:
            yield decode_record(line)
        except (ValueError, TypeError):
            continue
