"""Verification: the custody log, its Merkle tree, checkpoints and time-stamps, the records rebuilt
from the log alone, the log key's files, and every stored artifact re-hashed.

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`.
Damage is reported as findings (:mod:`evidence_catalog.findings`), never raised.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import (
    CheckpointError,
    KeyDamagedError,
    KeyEpoch,
    epoch_at,
    parse_checkpoint,
    public_bytes,
    split_note,
)
from evidence_catalog.checkpoint import (
    verify as verify_checkpoint,
)
from evidence_catalog.custody import Action, event_leaf, replay, verify_chain
from evidence_catalog.errors import (
    CatalogDatabaseError,
    CatalogError,
    EvidenceError,
    InputError,
    IntegrityError,
    StorageError,
)
from evidence_catalog.findings import (
    CheckpointInvalid,
    CheckpointMismatch,
    CheckpointUnsigned,
    EntryUnreadable,
    EventsUnsigned,
    EventUnreplayable,
    Finding,
    KeyChangeInvalid,
    KeyFileMismatch,
    LogRolledBack,
    MerkleLeafMismatch,
    MerkleNodeMismatch,
    RecordMismatch,
    RecordMissing,
    TimestampMismatch,
    UnloggedChange,
)
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.operations import log_key
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.log_key import KEYS_DIR
from evidence_catalog.results import VerificationReport
from evidence_catalog.serialize import structure
from evidence_catalog.store.keyfiles import KEY_FILE, PUBLIC_FILE, VKEY_FILE, remembered_for
from evidence_catalog.store.keyfiles import remember as remember_checkpoint
from evidence_catalog.timestamp import TimestampError, token_info


def verify(
    ctx: Context,
    *,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    record_event: bool = True,
    checkpoints: Sequence[tuple[str, str]] = (),
    remember: bool = True,
    allow_unsigned: bool = False,
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
       parallel (*workers*, default one per CPU; four per CPU for an object store, whose
       reads wait on the network), and its size checked.

    Damaged rows are reported as findings, never raised.  With *record_event*, the
    verification itself is logged when the catalog can be written (a read-only copy is still
    verified; ``logged`` tells which).
    """
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
        findings, events_checked, record_ids, unsigned = verify_log_and_records(ctx, session, given, pinned, chain)
        # An unsigned tail is what an encrypted key leaves between signings: after a checkpoint
        # it signed over its own key event.  A key that is not encrypted signs every change.
        tail_allowed = bool(epochs) and epochs[-1].encrypted and events_checked - unsigned >= epochs[-1].seq
        if unsigned and not (allow_unsigned and tail_allowed):
            findings.append(EventsUnsigned(first_seq=events_checked - unsigned + 1, count=unsigned))
        findings[:0] = problems
        artifacts: list[tuple[str, int, model.Digests]] = []
        for sha256, size, digests in ctx.db.artifact_digests(session):
            if isinstance(digests, model.Digests):
                artifacts.append((sha256, size, digests))
            else:
                findings.append(EntryUnreadable(subject=f"artifact {sha256}", reason=digests))
    if workers is None:  # hashing is bound by the CPU locally; by the network on an object store
        workers = (os.cpu_count() or 1) * ctx.blobs.readers_per_cpu
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for blob_findings in pool.map(lambda a: ctx.blobs.verify(a[0], a[2], a[1], progress=progress), artifacts):
            findings.extend(blob_findings)
    report = VerificationReport(
        findings=tuple(findings),
        records_checked=len(record_ids),
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
    if not record_event:
        return report
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


def verify_log_and_records(
    ctx: Context,
    session: Any,
    checkpoints: Sequence[tuple[str, str]],
    pinned: Sequence[tuple[str, str, str, bytes]],
    chain: tuple[list[KeyEpoch], list[tuple[int, str]]],
) -> tuple[list[Finding], int, list[str], int]:
    """The custody log's chain, its tree and checkpoints (:func:`verify_tree`), and every record
    rebuilt from the log against the database: the findings, how many events were checked, the
    records' ids, and how many of the last events no valid signed checkpoint covers."""
    # Two passes over the log, neither holding it: memory is one 32-byte leaf per event
    # (and the records being rebuilt), not every event.
    leaves: list[bytes] = []

    def hashed(documents: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for document in documents:
            try:
                leaves.append(event_leaf(document))
            except (TypeError, ValueError):  # a damaged event: the chain check names it
                leaves.append(bytes(32))
            yield document

    findings: list[Finding] = verify_chain(hashed(ctx.db.event_documents(session)))
    tree_findings, covered = verify_tree(ctx, session, leaves, checkpoints, pinned, chain)
    findings.extend(tree_findings)
    unreplayable: list[Finding] = []

    def structured() -> Iterator[model.CustodyEvent]:
        for document in ctx.db.event_documents(session):
            try:
                yield structure(document, model.CustodyEvent)
            except EvidenceError as exc:
                unreplayable.append(EventUnreplayable(seq=document["seq"], reason=str(exc)))

    replayed = replay(structured())
    findings.extend(unreplayable)
    findings.extend(EventUnreplayable(seq=seq, reason=reason) for seq, reason in replayed.problems)
    record_ids = ctx.db.record_ids(session)
    for record_id in record_ids:
        expected = replayed.records.get(record_id)
        if expected is None:
            findings.append(UnloggedChange(subject=f"record {record_id}", what="its creation"))
            continue
        try:
            actual = ctx.db.record(session, record_id)
        except EvidenceError as exc:
            findings.append(EntryUnreadable(subject=f"record {record_id}", reason=exc.message))
            continue
        differing = tuple(
            f.name for f in attrs.fields(model.EvidenceRecord) if getattr(actual, f.name) != getattr(expected, f.name)
        )
        if differing:
            findings.append(RecordMismatch(record_id=record_id, fields=differing))
    present = set(record_ids)
    findings.extend(RecordMissing(record_id=r) for r in replayed.records if r not in present)
    return findings, len(leaves), record_ids, len(leaves) - covered


def verify_tree(
    ctx: Context,
    session: Any,
    leaves: Sequence[bytes],
    given: Sequence[tuple[str, str]],
    pinned: Sequence[tuple[str, str, str, bytes]],
    chain: tuple[list[KeyEpoch], list[tuple[int, str]]],
) -> tuple[list[Finding], int]:
    """The Merkle tree and the checkpoints against the events' *leaves* as they are now, and
    how many of the first events a valid checkpoint signed by the log's key covers.

    Signatures are checked with the key the log itself names for the checkpoint's size
    (pinned by its first key event, handed over only by signed key changes), never with
    whatever ``keys/`` holds now: the checkpoints kept (the newest signed ones until one
    verifies: it covers every event before it), those *given*, and those *pinned* to the key
    they were first checked with (source, note, key name, public key)."""
    findings: list[Finding] = []
    recomputed = merkle.perfect_from_leaves(leaves)
    stored = ctx.db.stored_nodes(session)
    first_changed = next((i + 1 for i, leaf in enumerate(leaves) if stored.get((0, i)) != leaf), None)
    if first_changed is not None:
        findings.append(MerkleLeafMismatch(seq=first_changed))
    else:  # the leaves are right: are the stored interior nodes?
        for (level, index), value in sorted(stored.items()):
            if level and (index + 1) << level <= len(leaves) and recomputed(level, index) != value:
                findings.append(MerkleNodeMismatch(level=level, index=index))
                break
    epochs, key_problems = chain
    findings.extend(KeyChangeInvalid(seq=seq, reason=reason) for seq, reason in key_problems)

    def check(where: str, note: str, key: tuple[str, bytes] | None, signed: bool = True) -> int | None:
        """The size of checkpoint *note* when its signature by *key* (or, unsigned, its
        form) is valid, else ``None``; whether the log as it is now extends it is a finding
        either way."""
        try:
            if not signed:
                found = parse_checkpoint(note.split("\n\n")[0] + "\n")
            else:
                if key is None:  # the key in force at its size, as the log names it
                    epoch = epoch_at(epochs, parse_checkpoint(split_note(note)[0]).size)
                    if epoch is None:
                        raise CheckpointError("the custody log names no key to check its signature with")
                    key = (epoch.name, epoch.public)
                found = verify_checkpoint(note, *key)
        except CheckpointError as exc:
            findings.append(CheckpointInvalid(source=where, reason=str(exc)))
            return None
        if found.size > len(leaves):
            findings.append(LogRolledBack(source=where, checkpoint_size=found.size, log_size=len(leaves)))
        elif merkle.root(recomputed, found.size) != found.root:
            first = first_changed if first_changed is not None and first_changed <= found.size else None
            findings.append(CheckpointMismatch(source=where, checkpoint_size=found.size, first_seq=first))
        return found.size

    rows = ctx.db.checkpoints(session)
    covered = 0
    unsigned: list[int] = []
    forged = 0  # kept checkpoints marked signed that no key of the log signed
    before = len(findings)
    # Largest first (newest first among equals): in a catalog left as it wrote it, that is
    # newest first; rows moved around (an older note given a newer id) do not hide the
    # checkpoint that covers most.
    for row in sorted(rows, key=lambda r: (r.tree_size, r.id or 0), reverse=True):
        where = f"checkpoint {row.id} (kept in the catalog)"
        if row.signed and not covered:
            mark = len(findings)
            size = check(where, row.note, None)
            if size is not None and size != row.tree_size:  # an older note copied into a newer row
                findings.append(
                    CheckpointInvalid(
                        source=where,
                        reason=f"its row says it covers {row.tree_size} events, but its signed note covers {size}",
                    )
                )
            elif size is not None:  # signed by the log's key: whatever is wrong under it is a finding
                covered = min(size, len(leaves))
            elif len(findings) == mark + 1 and isinstance(findings[-1], CheckpointInvalid):
                forged += 1
                if forged > 1:
                    findings.pop()  # the newest is named, the older ones counted
            continue
        check(where, row.note, None, signed=False)
        epoch = epoch_at(epochs, row.tree_size)
        if not row.signed and epoch is not None and not epoch.encrypted:
            unsigned.append(row.tree_size)
    findings[before:] = findings[before:][::-1]  # in the order they were kept
    if forged > 1:
        findings.append(
            CheckpointInvalid(
                source=f"{forged - 1} older checkpoint(s) kept in the catalog",
                reason="not signed by the key the custody log names either",
            )
        )
    if unsigned:
        findings.append(CheckpointUnsigned(count=len(unsigned), first_size=min(unsigned)))
    # A checkpoint given from outside is evidence against the log, never for it: where the
    # log no longer names a key (its key event was damaged), the key files are the next best.
    fallback: tuple[str, bytes] | None = None
    if not epochs and ctx.key.log_key.exists:
        with contextlib.suppress(CatalogError):
            fallback = ctx.key.log_key.public()
    for where, text in given:
        check(where, text, fallback)
    for where, text, name, key in pinned:
        check(where, text, (name, key))
    notes_by_id = {str(r.id): r.note for r in rows}
    for stamp in ctx.db.timestamps(session, "granted"):
        subject = f"{stamp.subject_kind} {stamp.subject}"
        try:
            info = token_info(base64.b64decode(stamp.token or "", validate=True))
        except (TimestampError, ValueError) as exc:
            findings.append(TimestampMismatch(subject=subject, reason=f"the token cannot be read ({exc})"))
            continue
        wanted = stamp.data_sha256
        if stamp.subject_kind == "checkpoint":
            kept = notes_by_id.get(stamp.subject)
            wanted = "" if kept is None else hashlib.sha256(kept.encode("utf-8")).hexdigest()
        if info.sha256 != wanted or info.sha256 != stamp.data_sha256:
            findings.append(
                TimestampMismatch(subject=subject, reason="the token stamps other bytes than the ones kept")
            )
    return findings, covered
