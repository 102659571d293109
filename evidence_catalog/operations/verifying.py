"""Verification: the custody log, its Merkle tree, checkpoints and time-stamps, the records rebuilt
from the log alone, the log key's files, and every stored artifact re-hashed.

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`.
Damage is reported as findings (:mod:`evidence_catalog.findings`), never raised.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import (
    CheckpointError,
    KeyDamagedError,
    KeyEpoch,
    epoch_at,
    public_bytes,
)
from evidence_catalog.custody import Action, ChainCheck
from evidence_catalog.errors import (
    CatalogDatabaseError,
    CatalogError,
    EvidenceError,
    InputError,
    IntegrityError,
    StorageError,
)
from evidence_catalog.findings import (
    BlobMissing,
    BlobUnreadable,
    CheckpointInvalid,
    DigestMismatch,
    EntryUnreadable,
    EventsUnsigned,
    EventUnreplayable,
    Finding,
    KeyFileMismatch,
    RecordMismatch,
    RecordMissing,
    SizeMismatch,
    UnloggedChange,
)
from evidence_catalog.hashing import BLOCK_SIZE, ProgressCallback
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.log_key import KEYS_DIR
from evidence_catalog.operations.verify_tree import LogScan as LogScan
from evidence_catalog.operations.verify_tree import checkpoint_sizes as checkpoint_sizes
from evidence_catalog.operations.verify_tree import root_at as root_at
from evidence_catalog.operations.verify_tree import verify_tree as verify_tree
from evidence_catalog.operations.workers import (
    answer,
    collect_own_cycles,
    die_with,
    forked_pool,
    stop_pool,
    usable_cpus,
)
from evidence_catalog.replay import Replayer
from evidence_catalog.results import VerificationReport
from evidence_catalog.serialize import structure
from evidence_catalog.store.blobstore import BlobStore
from evidence_catalog.store.index_check import IndexCheck
from evidence_catalog.store.keyfiles import KEY_FILE, PUBLIC_FILE, VKEY_FILE, remembered_for
from evidence_catalog.store.keyfiles import remember as remember_checkpoint
from evidence_catalog.store.log import event_document
from evidence_catalog.stored_events import checked_hash_and_leaf

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


def verify(
    ctx: Context,
    *,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    record_event: bool = True,
    checkpoints: Sequence[tuple[str, str]] = (),
    remember: bool = True,
    allow_unsigned: bool = False,
    deep: bool = False,
) -> VerificationReport:
    """Check everything the catalog claims, and return every finding.

    1. The custody log: each event's hash and link to the one before, sequence numbers; the
       Merkle tree recomputed from the events and compared with the stored one.  The log's
       key is the one its first key event names (or a successor that key signed over in a
       ``key.changed`` event), whatever ``keys/`` holds now (files there that are not that
       key are findings); every event must be covered by a checkpoint signed by it: events
       after the last signed checkpoint are a finding (:class:`EventsUnsigned`) unless
       *allow_unsigned* (an encrypted key between signings; the report still counts them
       in ``unsigned_events``).  Every checkpoint kept, and every checkpoint given in
       *checkpoints* -- ``(where it came from, signed note text)``, e.g. one a partner was
       sent -- must be a prefix of the log as it is now: a log rolled back, or changed
       under a checkpoint, is found.  With *remember* (the default, as in the CLI), the
       latest checkpoint an earlier verification remembered (outside the catalog, see
       :func:`evidence_catalog.checkpoint.remembered_path`) is checked too, with the key it
       was checked with then, and a clean verification remembers the latest checkpoint.
    2. The records: every record is rebuilt from the log alone and compared field by field
       with the database; records the log never created, or that are gone, are named.
    3. The bytes: every stored artifact is re-hashed with every recorded algorithm, in
       parallel (*workers*, default one per CPU this process may run on; four per CPU for an
       object store, whose reads wait on the network), and its size checked, while the log
       and the records are checked.

    By default (*workers* not given), with more than one CPU, a blob store in a folder and
    thousands of events or small files, worker processes (one per CPU) share the work: each
    event's document made from the columns read here and hashed again, and the files re-hashed;
    this process compares every hash, link and leaf with the stored ones itself, and anything
    they fail to do is done again here.

    The log is read once and not held (see :func:`verify_log_and_records`); the records are
    read a page at a time.

    4. What analyses derived (:mod:`evidence_catalog.operations.verify_media`): each analysis
       document read and held against its record and the similarity index; a few analyses,
       drawn at random, made again from their sources and compared (every one with *deep*).
       Content Credentials that failed validation are reported in ``notices``, which say
       something about the evidence, not the catalog, and leave ``ok`` true.

    Damaged rows are reported as findings, never raised.  A value of a SQLite catalog that is
    not UTF-8 text cannot be read by any query that meets it: verification stops, and its
    findings name every such value (:mod:`evidence_catalog.store.undecodable`) and say that the
    rest was not checked.  With *record_event*, the verification itself is logged when the
    catalog can be written (a read-only copy is still verified; ``logged`` tells which).
    """
    try:
        report = _checked(
            ctx,
            progress=progress,
            workers=workers,
            checkpoints=checkpoints,
            remember=remember,
            allow_unsigned=allow_unsigned,
            deep=deep,
        )
    except CatalogDatabaseError as exc:
        stopped = _undecodable(exc)
        if not stopped:
            raise
        report = VerificationReport(
            findings=tuple(stopped), records_checked=0, artifacts_checked=0, bytes_checked=0, events_checked=0
        )
    if not record_event:
        return report
    return _logged(ctx, report)


def _undecodable(error: CatalogDatabaseError) -> list[Finding]:
    """Findings for the values that are not UTF-8 text, when *error* is a read that met them
    (it names and keeps them: :meth:`~evidence_catalog.store.engine.Connections.unreadable`);
    empty for any other error."""
    from evidence_catalog.store.undecodable import UndecodableError

    if not isinstance(error, UndecodableError) or not error.values:
        return []
    values = error.values
    findings: list[Finding] = [EntryUnreadable(subject=v.subject, reason=v.reason) for v in values]
    findings.append(
        EntryUnreadable(
            subject="everything else in the catalog",
            reason=(
                f"verification stopped at the {len(values)} value(s) above that are not UTF-8 text, which stop"
                " every read that meets them; nothing else was checked"
            ),
        )
    )
    return findings


def _checked(
    ctx: Context,
    *,
    progress: ProgressCallback | None,
    workers: int | None,
    checkpoints: Sequence[tuple[str, str]],
    remember: bool,
    allow_unsigned: bool,
    deep: bool,
) -> VerificationReport:
    """:func:`verify` up to its report, which it does not log."""
    given = list(checkpoints)
    problems: list[Finding] = []
    pinned: list[tuple[str, str, str, bytes]] = []
    # One snapshot: the key chain the remembered checkpoint and the key files are held
    # against is the one the log is checked with.
    with ctx.db.read() as session:
        chain = log_key.log_key_chain(ctx, session)
        epochs = chain[0]
        if remember and epochs:
            try:
                held = remembered_for(ctx.path, epochs[0].name)
            except CheckpointError as exc:
                problems.append(CheckpointInvalid(source="the remembered checkpoint", reason=str(exc)))
                held = None
            if held is not None:
                held_name, held_public, held_note, where = held
                if all((held_name, held_public) != (e.name, e.public) for e in epochs):
                    problems.append(
                        CheckpointInvalid(
                            source="the catalog's log key",
                            reason=(
                                f"the custody log no longer names the key ({held_name}) an earlier verification "
                                "checked this log with; the log's key was replaced"
                            ),
                        )
                    )
                source = f"the checkpoint remembered from an earlier verification ({where})"
                pinned.append((source, held_note, held_name, held_public))
        problems.extend(key_file_findings(ctx, epochs[-1] if epochs else None))
        artifacts: list[tuple[str, int, model.Digests]] = []
        unreadable: list[Finding] = []
        for sha256, size, digests in ctx.db.artifact_digests(session):
            if isinstance(digests, model.Digests):
                artifacts.append((sha256, size, digests))
            else:
                unreadable.append(EntryUnreadable(subject=f"artifact {sha256}", reason=digests))
        offload = None
        if workers is None:  # hashing is bound by the CPU locally; by the network on an object store
            workers = usable_cpus() * ctx.blobs.readers_per_cpu
            groups = list(hash_groups(artifacts, workers))
            offload = _Offload.start(ctx, session, artifacts, progress, len(groups))
        else:
            groups = list(hash_groups(artifacts, workers))
        # With worker processes, the files are theirs.
        mine = [i for i, group in enumerate(groups) if offload is None or not offload.takes(i, group)]

        def check_blobs(group: Sequence[tuple[str, int, model.Digests]]) -> list[Finding]:
            verify_blob = ctx.blobs.verify
            return [f for sha256, size, digests in group for f in verify_blob(sha256, digests, size, progress=progress)]

        # The bytes are re-hashed on the pool's threads while this one reads the log and the
        # records (hashlib lets go of the interpreter while it hashes a block).
        with ThreadPoolExecutor(max_workers=workers) as pool:
            hashed = pool.map(check_blobs, [groups[i] for i in mine])
            try:
                # The replay holds every record the log makes until its row is read: each
                # collection of the oldest generation walked them all again (a tenth of
                # verifying 20,000 reports).  What is left in reference cycles is collected
                # young instead, a page and a chunk of the log at a time.  (Not while analyses
                # are made again below: decoded media are large, and freed at once.)
                with common.collections_paused() as paused:
                    findings, events_checked, records_checked, unsigned = verify_log_and_records(
                        ctx, session, given, pinned, chain, offload=offload, collect=paused
                    )
                by_group = offload.blob_findings() if offload is not None else {}
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the files not started yet are not read for nothing
                raise
            finally:
                if offload is not None:
                    offload.close()
            # An unsigned tail is what an encrypted key leaves between signings: after a checkpoint
            # it signed over its own key event.  A key that is not encrypted signs every change.
            tail_allowed = bool(epochs) and epochs[-1].encrypted and events_checked - unsigned >= epochs[-1].seq
            if unsigned and not (allow_unsigned and tail_allowed):
                findings.append(EventsUnsigned(first_seq=events_checked - unsigned + 1, count=unsigned))
            findings[:0] = problems
            findings.extend(unreadable)
            by_group.update(zip(mine, hashed, strict=True))
            for index in range(len(groups)):
                findings.extend(by_group[index])
    from evidence_catalog.operations.verify_media import check_analyses  # Pillow, PyAV, c2pa: when needed

    damaged = {
        f.sha256 for f in findings if isinstance(f, BlobMissing | DigestMismatch | SizeMismatch | BlobUnreadable)
    }
    media_findings, notices, analysed, rechecked = check_analyses(ctx, deep=deep, damaged=damaged)
    findings.extend(media_findings)
    report = VerificationReport(
        findings=tuple(findings),
        notices=tuple(notices),
        analyses_rechecked=rechecked,
        analyses_checked=analysed,
        records_checked=records_checked,
        artifacts_checked=len(artifacts),
        bytes_checked=sum(a[1] for a in artifacts),
        events_checked=events_checked,
        unsigned_events=unsigned,
    )
    if remember and report.ok and epochs:
        with ctx.db.read() as session:
            latest = ctx.db.latest_checkpoint(session, signed=True)
        if latest is not None:
            current = epoch_at(epochs, latest.tree_size)
            if current is not None:
                with contextlib.suppress(OSError):  # remembering is a help, not part of the result
                    remember_checkpoint(current.name, current.public, latest.note, folder=ctx.path)
    return report


def _logged(ctx: Context, report: VerificationReport) -> VerificationReport:
    """*report*, with the verification written to the custody log when the catalog can be."""
    try:
        ctx.log_event(
            Action.CATALOG_VERIFIED,
            {
                "ok": report.ok,
                "findings": len(report.findings),
                "artifacts_checked": report.artifacts_checked,
                "events_checked": report.events_checked,
            },
        )
    except StorageError:
        return attrs.evolve(report, unlogged_reason="the catalog is not writable")
    except IntegrityError as exc:  # a log the key does not cover is not signed: the findings say why
        return attrs.evolve(report, unlogged_reason=f"the catalog does not sign it ({exc.message})")
    except CatalogDatabaseError as exc:  # the database refused the write: not the key's doing
        return attrs.evolve(report, unlogged_reason=f"the catalog database refused it ({exc.message})")
    except (InputError, CatalogError) as exc:  # nothing is changed; a finding says why, if it is the catalog's
        return attrs.evolve(report, unlogged_reason=f"the log key cannot sign it ({exc.message})")
    return attrs.evolve(report, logged=True)


#: A task of the hashing pool: artifacts taken together up to this many bytes (or files), so
#: that small files do not each cost a task; a larger file is a task of its own.
GROUP_BYTES = 8 * 1024 * 1024
GROUP_FILES = 256


def hash_groups(
    artifacts: Sequence[tuple[str, int, model.Digests]], workers: int = 1
) -> Iterator[list[tuple[str, int, model.Digests]]]:
    """*artifacts* in order, in tasks for the hashing pool (see :data:`GROUP_BYTES`): at least
    four tasks per worker while there are files enough, so that every worker has work (an
    object store's reads wait on the network: a few small files are still read side by side)."""
    files = max(1, min(GROUP_FILES, len(artifacts) // (4 * max(workers, 1))))
    group: list[tuple[str, int, model.Digests]] = []
    total = 0
    for artifact in artifacts:
        if group and (total + artifact[1] > GROUP_BYTES or len(group) >= files):
            yield group
            group, total = [], 0
        group.append(artifact)
        total += artifact[1]
    if group:
        yield group


def stored_bytes(ctx: Context) -> int:
    """The total size, in bytes, of every catalogued artifact: what :meth:`verify` reads
    again (e.g. the total of its *progress*)."""
    with ctx.db.read() as session:
        return sum(size for _, size, _ in ctx.db.artifact_digests(session))


def key_file_findings(ctx: Context, current: KeyEpoch | None) -> list[Finding]:
    """The files of ``keys/`` against the key the custody log names: each that is there must
    be that key (a copy for examiners may hold none, or only the public ones)."""
    if current is None:
        return []
    findings: list[Finding] = []
    folder = ctx.key.log_key.directory
    names = f"the key the custody log names ({current.name}, key id {current.key_id})"
    if (folder / VKEY_FILE).exists():
        try:
            found = ctx.key.log_key.public()
        except CatalogError as exc:
            findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{VKEY_FILE}", reason=exc.message))
        else:
            if found != (current.name, current.public):
                findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{VKEY_FILE}", reason=f"it is not {names}"))
    if (folder / PUBLIC_FILE).exists():
        try:
            pem = serialization.load_pem_public_key((folder / PUBLIC_FILE).read_bytes())
            same = isinstance(pem, Ed25519PublicKey) and public_bytes(pem) == current.public
        except (OSError, ValueError):
            same = False
        if not same:
            findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{PUBLIC_FILE}", reason=f"it is not {names}"))
    if (folder / KEY_FILE).exists():
        try:
            log_key.signing_key(ctx)
        except KeyDamagedError as exc:
            findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{KEY_FILE}", reason=exc.message))
        except InputError:
            pass  # a passphrase that does not open it: the caller's mistake, not the catalog's
    return findings


#: Records read and compared a page at a time; the stored Merkle tree read a window of this
#: many nodes of a level at a time.
RECORD_PAGE = 500
#: Events of the log between two collections of the young generations, while automatic
#: collection is paused.
COLLECT_EVENTS = 5000
TREE_PAGE = 4096


def verify_log_and_records(
    ctx: Context,
    session: Any,
    checkpoints: Sequence[tuple[str, str]],
    pinned: Sequence[tuple[str, str, str, bytes]],
    chain: tuple[list[KeyEpoch], list[tuple[int, str]]],
    *,
    offload: _Offload | None = None,
    collect: bool = False,
) -> tuple[list[Finding], int, int, int]:
    """The custody log's chain, its tree and checkpoints (:func:`verify_tree`), and every record
    rebuilt from the log against the database: the findings, how many events were checked, how
    many records, and how many of the last events no valid signed checkpoint covers.

    One pass over the log, holding none of it: each event is hashed (its link checked), its leaf
    added to the tree (:class:`~evidence_catalog.merkle.Frontier`, O(log n) hashes) whose
    completed nodes are checked against the stored ones as they complete (a window of each
    level read at a time), and replayed.  The records are then read a page at a time and
    compared with the replay.  With *offload*, its worker processes make each event's document
    from the stored columns and hash it (:func:`hashed_events`), a few chunks ahead of this
    loop, which compares their hashes and leaves with the stored ones.  With *collect* (automatic
    collection paused by :func:`verify`), the young generations are collected every
    :data:`COLLECT_EVENTS` events and every page of records."""
    rows = ctx.db.checkpoints(session)
    scan = LogScan()
    wanted = checkpoint_sizes([row.note for row in rows] + [note for _, note in checkpoints] + [p[1] for p in pinned])
    chain_check = ChainCheck()
    replayer = Replayer()
    frontier = merkle.Frontier()
    stored = ctx.db.stored_tree(session, page=TREE_PAGE)
    unreplayable: list[Finding] = []
    columns = ctx.db.event_rows(session)
    hashed = _hashed_here(columns) if offload is None else offload.events(columns)
    for count, (link, recomputed, leaf, document) in enumerate(hashed, 1):
        chain_check.add(link, recomputed)  # the stored hash, link and seq: read here
        if collect and not count % COLLECT_EVENTS:
            gc.collect(1)
        for level, index, value in frontier.add(leaf):
            if stored.node(level, index) != value:
                if not level:
                    if scan.first_changed is None:
                        scan.first_changed = index + 1
                elif scan.node_mismatch is None or (level, index) < scan.node_mismatch:
                    scan.node_mismatch = (level, index)
        if frontier.size in wanted:
            scan.roots[frontier.size] = frontier.root()
        try:
            event = structure(document, model.CustodyEvent)
        except EvidenceError as exc:
            unreplayable.append(EventUnreplayable(seq=link["seq"], reason=str(exc)))
            continue
        replayer.apply(event)
    scan.size = frontier.size
    findings: list[Finding] = chain_check.findings
    tree_findings, covered = verify_tree(ctx, session, scan, rows, checkpoints, pinned, chain)
    findings.extend(tree_findings)
    findings.extend(unreplayable)
    replayed = replayer.result()
    findings.extend(EventUnreplayable(seq=seq, reason=reason) for seq, reason in replayed.problems)
    expected_records = replayed.records  # each taken out as its record is read: the rest are gone
    checked = 0
    search_index = IndexCheck(session)
    for page in ctx.db.record_pages(session, batch=RECORD_PAGE, logged=replayed.logged):
        if offload is not None:
            offload.poll()
        if collect:
            gc.collect(1)
        for record_id, actual in page:
            checked += 1
            if isinstance(actual, EvidenceError):
                search_index.unreadable(record_id)  # its reports cannot be held to the index
            expected = expected_records.pop(record_id, None)
            if expected is None:
                findings.append(UnloggedChange(subject=f"record {record_id}", what="its creation"))
            elif isinstance(actual, EvidenceError):
                findings.append(EntryUnreadable(subject=f"record {record_id}", reason=actual.message))
            else:
                differing = tuple(name for name in _RECORD_FIELDS if getattr(actual, name) != getattr(expected, name))
                if differing:
                    findings.append(RecordMismatch(record_id=record_id, fields=differing))
        reports = [(i, r) for i, actual in page if not isinstance(actual, EvidenceError) for r in actual.reports]
        if reports:  # the search index, held to the reports as the database holds them
            owner = {r.id: i for i, r in reports}
            for report_id, how in search_index.page([r for _, r in reports]):
                reason = f"report {report_id}: the search index: {how}"
                findings.append(EntryUnreadable(subject=f"record {owner[report_id]}", reason=reason))
    findings.extend(RecordMissing(record_id=r) for r in expected_records)
    findings.extend(
        UnloggedChange(subject=f"{table} row {key} (of record {record_id}, which the catalog does not hold)", what="it")
        for table, key, record_id in ctx.db.orphan_rows(session)
    )
    findings.extend(
        UnloggedChange(subject=subject, what=reason) if unlogged else EntryUnreadable(subject=subject, reason=reason)
        for unlogged, subject, reason in search_index.finish()
    )
    return findings, scan.size, checked, scan.size - covered


_RECORD_FIELDS = tuple(f.name for f in attrs.fields(model.EvidenceRecord))


#: An event's hash as it should be (or why it cannot be made) and its leaf.
_hash_and_leaf = checked_hash_and_leaf

#: An event's hash as it should be (or why it cannot be made), its leaf, and its document.
HashedEvent = tuple[str, bytes, dict[str, Any]]
#: What the log's pass reads of each event: what the chain check reads of it (its seq, stored
#: hash and link, as read by this process), then a :data:`HashedEvent`.
CheckedEvent = tuple[dict[str, Any], str, bytes, dict[str, Any]]


def hashed_events(rows: Iterable[Sequence[Any]]) -> list[HashedEvent]:
    """Of each stored event (its columns, as :meth:`~evidence_catalog.store.log.CustodyLog.event_rows`
    reads them), in order: its hash as it should be, its leaf and its document (a task a worker
    process of a verification runs: the stored text in, what the verifying process compares and
    replays out; plain JSON, which is sent back faster than the events it holds)."""
    found: list[HashedEvent] = []
    for row in rows:
        document = event_document(row)
        found.append((*_hash_and_leaf(document), document))
    return found


def _hashed_here(rows: Iterable[Sequence[Any]]) -> Iterator[CheckedEvent]:
    """Each event's document (twice: as the chain check and the replay read it), hash as it
    should be and leaf, made in this process."""
    for row in rows:
        document = event_document(row)
        yield (document, *_hash_and_leaf(document), document)


def _stored_link(row: Sequence[Any]) -> dict[str, Any]:
    """What the chain check reads of an event's document (its seq, stored hash and link), from
    its stored columns, as :func:`~evidence_catalog.store.log.event_document` has them."""
    return {"seq": row[0], "prev_hash": row[6], "hash": row[7]}


#: Worker processes pay for their start (and for the documents sent to them) from about this
#: many events or small files on.
OFFLOAD_WORK = 2000
#: Events sent to a worker process in one task; tasks sent ahead per worker process.
EVENT_CHUNK = 256
AHEAD = 2
#: How long a task may take before it is done again in this process (a worker that never
#: answers must not hold a verification up forever).
TASK_TIMEOUT = 300.0

_Result = TypeVar("_Result")


def _worker_started(parent: int) -> None:
    """A verification worker's first act: to die with the verification (:func:`die_with`), and
    to collect the reference cycles its tasks leave (:func:`collect_own_cycles`)."""
    die_with(parent)
    collect_own_cycles()


class _Offload:
    """The worker processes of one verification (see :func:`verify`): each event's document, hash
    and leaf (:func:`hashed_events` of chunks of the stored columns this process read, a few
    chunks ahead of it), and every group of files.  They compute, this
    process compares: whatever a task does not bring back (the pool broken, an error, no answer
    in time) is computed again here, with the same functions, so a worker changes no outcome.
    The bytes they read are counted in shared memory, each group of files in its own slot, and
    handed to *progress* from this process's thread as it goes (:meth:`poll`); a group done
    again here hands on only the bytes its worker had not counted, so that each byte is counted
    once."""

    def __init__(
        self,
        pool: ProcessPoolExecutor,
        workers: int,
        root: Path,
        progress: ProgressCallback | None,
        key: int,
        slots: int = 1,
    ):
        self.pool = pool
        self.ahead = AHEAD * workers
        self.root = os.fspath(root)
        self.progress = progress
        self.key = key
        self.reported = 0
        #: The bytes of each group (slot) handed to *progress* so far; the groups done here.
        self.seen = [0] * max(1, slots)
        self.taken: set[int] = set()
        self.broken = False
        self.waiting: deque[tuple[int, list[tuple[str, int, model.Digests]]]] = deque()
        self.sent: list[tuple[int, list[tuple[str, int, model.Digests]], Future[Any] | None]] = []

    @classmethod
    def start(
        cls,
        ctx: Context,
        session: Any,
        artifacts: Sequence[tuple[str, int, model.Digests]],
        progress: ProgressCallback | None,
        groups: int = 1,
    ) -> _Offload | None:
        """Worker processes for this verification (one per CPU), started now (before its
        threads: they are forked), or ``None`` where they do not pay or cannot be had: one CPU,
        a platform without ``fork`` (Linux only), a process running other threads (which may
        hold a lock a forked worker would find held forever), an object store, or little work (a
        few large files are hashed as fast on threads, which report progress as they read).
        *groups*: how many groups of files there are (a slot of the shared byte count each)."""
        cpus = usable_cpus()
        if cpus < 2 or not sys.platform.startswith("linux") or not isinstance(ctx.blobs, BlobStore):
            return None
        if threading.active_count() > 1:  # a lock another thread holds would stay held in a forked worker
            return None
        small = sum(1 for artifact in artifacts if artifact[1] < BLOCK_SIZE)
        if small < OFFLOAD_WORK and ctx.db.tree_size(session) < OFFLOAD_WORK:
            return None
        import multiprocessing  # worker processes: imported only when they are started

        key = id(object())
        # Inherited by the workers as they are forked.
        _READ[key] = multiprocessing.get_context("fork").Array("q", max(1, groups))
        pool = forked_pool(cpus, TASK_TIMEOUT, _worker_started, os.getpid())
        if pool is None:  # no workers: everything is done in this process
            _READ.pop(key, None)
            return None
        return cls(pool, cpus, ctx.blobs.root, progress, key, groups)

    def takes(self, index: int, group: list[tuple[str, int, model.Digests]]) -> bool:
        """Leave the group of files *index* to the workers (every group: hashing on threads of
        this process would have them wait for its interpreter lock at every block)."""
        self.waiting.append((index, group))
        return True

    def poll(self) -> None:
        """Hand the bytes the workers read since the last call to *progress*."""
        read = _READ.get(self.key)
        if self.progress is None or read is None:
            return
        # Read without the counters' lock: a worker killed while holding it would otherwise stop
        # this verification for good (an aligned 64-bit read is whole; progress is only shown).
        # A group taken back by this process (its worker gone) keeps what was seen of it.
        seen, taken = self.seen, self.taken
        for slot, value in enumerate(read.get_obj()[: len(seen)]):
            if value > seen[slot] and slot not in taken:
                seen[slot] = value
        now = sum(seen)
        if now > self.reported:
            self.progress(now - self.reported)
            self.reported = now

    def _submit(self, function: Callable[..., _Result], *args: Any) -> Future[_Result] | None:
        if self.broken:
            return None
        try:
            return self.pool.submit(function, *args)
        except Exception:  # noqa: BLE001 -- a broken pool: the rest is done here
            self.broken = True
            return None

    def _result(self, future: Future[_Result] | None) -> _Result | None:
        if future is None or self.broken:
            return None
        try:  # (an error at once if a worker is gone: see answer)
            return answer(self.pool, future, TASK_TIMEOUT, every=POLL_SECONDS, waiting=self.poll)  # type: ignore[no-any-return]
        except TimeoutError:
            self.broken = True
            return None
        except Exception:  # noqa: BLE001 -- done again here, where an error is raised as it would be
            return None

    def _send_files(self, count: int) -> None:
        while count > 0 and self.waiting:
            index, group = self.waiting.popleft()
            self.sent.append((index, group, self._submit(check_files, self.root, group, self.key, None, index)))
            count -= 1

    def events(self, rows: Iterator[Sequence[Any]]) -> Iterator[CheckedEvent]:
        """Of each stored event (its columns), in order: its seq, stored hash and link as read
        here (:func:`_stored_link`), and its hash as it should be, its leaf and its document, as
        :func:`hashed_events` makes them in a worker; a group of files is sent with each chunk
        of events."""
        pending: deque[tuple[list[Sequence[Any]], Future[list[HashedEvent]] | None]] = deque()

        def send() -> bool:
            chunk = list(islice(rows, EVENT_CHUNK))
            if not chunk:
                return False
            pending.append((chunk, self._submit(hashed_events, chunk)))
            self._send_files(1)
            return True

        while len(pending) < self.ahead and send():
            pass
        while pending:
            chunk, future = pending.popleft()
            results = self._result(future)
            if results is None or len(results) != len(chunk):
                results = hashed_events(chunk)
            send()
            self.poll()
            for row, (recomputed, leaf, document) in zip(chunk, results, strict=True):
                yield _stored_link(row), recomputed, leaf, document

    def blob_findings(self) -> dict[int, list[Finding]]:
        """The findings of each group of files, by group (the groups not sent yet are sent
        now)."""
        self._send_files(len(self.waiting))
        found: dict[int, list[Finding]] = {}
        for index, group, future in self.sent:
            result = self._result(future)
            if result is None:  # done again here: the bytes its worker counted are not counted again
                self.poll()
                self.taken.add(index)
                progress = _after(self.seen[index % len(self.seen)], self.progress)
                result = check_files(self.root, group, progress=progress)
            found[index] = result
        self.poll()
        return found

    def close(self) -> None:
        """Stop the workers (tasks not started are dropped).  A pool given up on (a worker that
        died or never answered) has its workers killed first: one that hangs would otherwise keep
        this process from exiting, and outlive it."""
        stop_pool(self.pool, kill=self.broken, seconds=CLOSE_SECONDS)
        _READ.pop(self.key, None)


#: Bytes read by the workers of each verification under way, in shared memory (by key): a counter
#: per group of files.
_READ: dict[int, Any] = {}
#: How often a verification waiting for its workers hands their progress on.
POLL_SECONDS = 0.25
#: How long stopping the workers waits for one to end its task.
CLOSE_SECONDS = 10.0


def check_files(
    root: str,
    group: Sequence[tuple[str, int, model.Digests]],
    key: int = 0,
    progress: ProgressCallback | None = None,
    slot: int = 0,
) -> list[Finding]:
    """The findings of re-hashing a group of files of the blob store in folder *root* (a task of
    a worker process, which counts the bytes it reads in slot *slot* of the shared counters
    *key*: the slot of its group, which no other process writes)."""
    read = _READ.get(key)
    if progress is None and read is not None:
        counts = read.get_obj()  # without the lock: one writer per slot, and a lock a killed worker held stays held

        def count(n: int) -> None:
            counts[slot] += n

        progress = count
    store = BlobStore(Path(root))
    return [f for sha256, size, digests in group for f in store.verify(sha256, digests, size, progress=progress)]


def _after(skip: int, progress: ProgressCallback | None) -> ProgressCallback | None:
    """*progress*, but the first *skip* bytes not handed on (counted already)."""
    if progress is None or skip <= 0:
        return progress
    left = skip

    def hand_on(n: int) -> None:
        nonlocal left
        if left:
            taken = min(left, n)
            left -= taken
            n -= taken
        if n:
            progress(n)

    return hand_on
