"""Verification of the custody log's Merkle tree against its checkpoints and time-stamps: the
roots at the sizes the checkpoints name, each checkpoint's signature under the key of its
epoch, and each time-stamp token's hash.  Part of :mod:`evidence_catalog.operations.verifying`,
which reads the log once and hands what it found here as a :class:`LogScan`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from evidence_catalog import merkle
from evidence_catalog.checkpoint import (
    Checkpoint,
    CheckpointError,
    KeyEpoch,
    epoch_at,
    parse_checkpoint,
    split_note,
)
from evidence_catalog.checkpoint import (
    verify as verify_checkpoint,
)
from evidence_catalog.errors import (
    CatalogError,
)
from evidence_catalog.findings import (
    CheckpointInvalid,
    CheckpointMismatch,
    CheckpointUnsigned,
    Finding,
    KeyChangeInvalid,
    LogRolledBack,
    MerkleLeafMismatch,
    MerkleNodeMismatch,
    TimestampMismatch,
)
from evidence_catalog.operations.context import Context
from evidence_catalog.stored_events import checked_hash_and_leaf
from evidence_catalog.timestamp import TimestampError, token_info


@attrs.define
class LogScan:
    """What one pass over the custody log found of its Merkle tree: how many events (leaves)
    it has, the first event whose leaf the stored tree does not hold, the first stored
    interior node (in level, then index order) that is not the hash of the events under it,
    and the roots of the tree at the sizes the checkpoints name."""

    size: int = 0
    first_changed: int | None = None
    node_mismatch: tuple[int, int] | None = None
    roots: dict[int, bytes] = attrs.field(factory=lambda: {0: merkle.EMPTY_ROOT})


def checkpoint_sizes(notes: Iterable[str]) -> set[int]:
    """The tree sizes these checkpoint notes (signed or not) say they cover, where they can be
    read: the roots a verification needs as it reads the log (one it did not foresee is
    recomputed after, see :func:`root_at`)."""
    sizes = {0}
    for note in notes:
        with contextlib.suppress(CheckpointError, ValueError, TypeError, AttributeError):
            sizes.add(parse_checkpoint(split_note(note)[0]).size)  # as a signed note is read
        with contextlib.suppress(CheckpointError, ValueError, TypeError, AttributeError):
            sizes.add(parse_checkpoint(note.split("\n\n")[0] + "\n").size)  # as an unsigned one is
    return sizes


def root_at(ctx: Context, session: Any, size: int) -> bytes:
    """The root of the tree over the first *size* events as they are now, read again from the
    log (for a checkpoint size :func:`checkpoint_sizes` did not find before the log was read)."""
    frontier = merkle.Frontier()
    if size:
        for document in ctx.db.event_documents(session):
            frontier.add(checked_hash_and_leaf(document)[1])
            if frontier.size == size:
                break
    return frontier.root()


def verify_tree(
    ctx: Context,
    session: Any,
    scan: LogScan,
    rows: Sequence[Any],
    given: Sequence[tuple[str, str]],
    pinned: Sequence[tuple[str, str, str, bytes]],
    chain: tuple[list[KeyEpoch], list[tuple[int, str]]],
) -> tuple[list[Finding], int]:
    """The Merkle tree and the checkpoints against the events as they are now (*scan*: what
    reading them found), and how many of the first events a valid checkpoint signed by the
    log's key covers.  *rows* are the checkpoints kept.

    Signatures are checked with the key the log itself names for the checkpoint's size
    (pinned by its first key event, handed over only by signed key changes), never with
    whatever ``keys/`` holds now: the checkpoints kept (the newest signed ones until one
    verifies: it covers every event before it), those *given*, and those *pinned* to the key
    they were first checked with (source, note, key name, public key)."""
    findings: list[Finding] = []
    first_changed = scan.first_changed
    if first_changed is not None:
        findings.append(MerkleLeafMismatch(seq=first_changed))
    elif scan.node_mismatch is not None:  # the leaves are right, but not a stored interior node
        findings.append(MerkleNodeMismatch(level=scan.node_mismatch[0], index=scan.node_mismatch[1]))

    def recomputed_root(size: int) -> bytes:
        found = scan.roots.get(size)
        if found is None:
            found = scan.roots[size] = root_at(ctx, session, size)
        return found

    epochs, key_problems = chain
    findings.extend(KeyChangeInvalid(seq=seq, reason=reason) for seq, reason in key_problems)

    def check(where: str, note: str, key: tuple[str, bytes] | None, signed: bool = True) -> Checkpoint | None:
        """Checkpoint *note* when its signature by *key* (or, unsigned, its form) is valid,
        else ``None``; whether the log as it is now extends it is a finding either way."""
        if not isinstance(note, str):  # a column edited to hold something else
            findings.append(CheckpointInvalid(source=where, reason="its note is not text"))
            return None
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
        if found.size > scan.size:
            findings.append(LogRolledBack(source=where, checkpoint_size=found.size, log_size=scan.size))
        elif recomputed_root(found.size) != found.root:
            first = first_changed if first_changed is not None and first_changed <= found.size else None
            findings.append(CheckpointMismatch(source=where, checkpoint_size=found.size, first_seq=first))
        return found

    def row_differs(where: str, row: Any, found: Checkpoint, signed: str) -> None:
        """A kept checkpoint's own columns against its note: what reads the row's size or root
        (a proof, an export, an exhibit) must find the ones its note states."""
        if row.tree_size != found.size:  # an older note copied into a newer row, or the column edited
            reason = f"its row says it covers {row.tree_size} events, but its {signed}note covers {found.size}"
        elif row.root_hash != found.root.hex():
            reason = f"its row's root hash is not the one its {signed}note holds ({found.root.hex()})"
        else:
            return
        findings.append(CheckpointInvalid(source=where, reason=reason))

    covered = 0
    unsigned: list[int] = []
    forged = 0  # kept checkpoints marked signed that no key of the log signed
    before = len(findings)
    # Largest first (newest first among equals): in a catalog left as it wrote it, that is
    # newest first; rows moved around (an older note given a newer id) do not hide the
    # checkpoint that covers most.
    for row in sorted(rows, key=lambda r: (_size(r.tree_size), r.id or 0), reverse=True):
        where = f"checkpoint {row.id} (kept in the catalog)"
        if row.signed and not covered:
            mark = len(findings)
            found = check(where, row.note, None)
            if found is not None:
                agreeing = len(findings)
                row_differs(where, row, found, "signed ")
                if len(findings) == agreeing:  # signed by the log's key: whatever is wrong under it is a finding
                    covered = min(found.size, scan.size)
            elif len(findings) == mark + 1 and isinstance(findings[-1], CheckpointInvalid):
                forged += 1
                if forged > 1:
                    findings.pop()  # the newest is named, the older ones counted
            continue
        found = check(where, row.note, None, signed=False)
        if found is not None:
            row_differs(where, row, found, "")
        epoch = epoch_at(epochs, _size(row.tree_size))
        if not row.signed and epoch is not None and not epoch.encrypted:
            unsigned.append(_size(row.tree_size))
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


def _size(column: Any) -> int:
    """A checkpoint row's ``tree_size`` as a number to sort and compare by: a column edited to
    hold something else (SQLite keeps whatever it is given) counts as 0, and its note says
    the rest (:func:`verify_tree` names the row)."""
    return column if type(column) is int else 0
