"""The custody log's signed checkpoints, their RFC 3161 time-stamps, and RFC 6962 inclusion and
consistency proofs.

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Sequence

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import (
    key_id,
    vkey,
)
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError, NetworkError, NotFoundError
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.common import check_url
from evidence_catalog.operations.context import Context
from evidence_catalog.results import CheckpointInfo, InclusionProof, LogKeyInfo, TimestampResult
from evidence_catalog.serialize import format_timestamp
from evidence_catalog.store.keyfiles import PASSPHRASE_ENV
from evidence_catalog.timestamp import TimestampError, token_info
from evidence_catalog.timestamp import stamp_digest as timestamp_digest

#: The environment variable naming the RFC 3161 Time-Stamp Authority.
TSA_ENV = "EVIDENCE_CATALOG_TSA_URL"


def checkpoint(ctx: Context) -> CheckpointInfo:
    """The latest signed checkpoint of the custody log; a new one is signed when the latest
    is unsigned (the key's passphrase was not at hand) or does not cover the whole log.

    What is handed out is checked first, never taken from the table on its word: a note the
    key the log names signed, over the whole log as it is now."""
    with ctx.db.read() as session:
        size = ctx.db.tree_size(session)
        epochs, _ = log_key.log_key_chain(ctx, session)
        covered, latest = log_key.signed_prefix(ctx, session, epochs)
    if covered != size or latest is None:
        common.check_writable(ctx, "; no new checkpoint can be kept")
        if log_key.signing_key(ctx) is None:
            raise InputError(
                f"the log key is encrypted: give its passphrase (${PASSPHRASE_ENV}) to sign a checkpoint",
                where="checkpoint",
            )
        with ctx.write() as session:
            log_key.write_checkpoint(ctx, session)
        with ctx.db.read() as session:
            latest = ctx.db.latest_checkpoint(session)
    assert latest is not None and latest.signed
    return CheckpointInfo(
        size=latest.tree_size,
        root=latest.root_hash,
        note=latest.note,
        signed=latest.signed,
        at=model.to_utc(latest.created_at) if latest.created_at.tzinfo else latest.created_at.replace(tzinfo=dt.UTC),
    )


def log_key_info(ctx: Context) -> LogKeyInfo:
    """The public details of the custody log's key -- its name (the checkpoints' origin),
    public key, C2SP key id and verifier key -- for whoever checks a checkpoint handed out
    (``keys/log.vkey``; :meth:`verify` finds one that is not the key the log names).
    Raises :class:`CatalogError` when that file cannot be read."""
    origin, public = ctx.key.log_key.public()
    return LogKeyInfo(origin=origin, public_key=public, key_id=key_id(origin, public).hex(), vkey=vkey(origin, public))


def timestamp(
    ctx: Context, *, url: str | None = None, artifacts: Sequence[str] = (), timeout: float = 30.0
) -> TimestampResult:
    """Have the latest checkpoint (and the *artifacts* named, by SHA-256) time-stamped by an
    RFC 3161 Time-Stamp Authority: *url*, else ``$EVIDENCE_CATALOG_TSA_URL``, else
    ``[timestamp] url`` in ``catalog.toml``.

    Requests are queued first and then sent, with every request still queued from before;
    when the TSA cannot be reached they stay queued (``pending``) and the next call sends
    them.  Each token granted is kept and logged (``timestamp.added``, with the token), so
    it is exported with the log and checked by ``verify``.
    """
    tsa = url or os.environ.get(TSA_ENV) or ctx.config.tsa_url
    if not tsa:
        raise InputError(
            f"no Time-Stamp Authority: give its URL (url, ${TSA_ENV}, or [timestamp] url in catalog.toml)",
            where="timestamp",
        )
    tsa = check_url(tsa)
    current = checkpoint(ctx)
    with ctx.db.read() as session:
        # The row of the checkpoint handed out (the newest row may be another, put there).
        latest = next((r for r in ctx.db.signed_checkpoints_by_size(session) if r.note == current.note), None)
        for sha in artifacts:
            if not model.is_hex_digest(sha, "sha256") or ctx.db.artifact(session, sha) is None:
                raise NotFoundError(f"no artifact with SHA-256 {sha!r}", where="artifact")
    assert latest is not None and latest.id is not None
    at = ctx.clock()
    with ctx.write() as session:
        ctx.db.queue_timestamp(
            session,
            kind="checkpoint",
            subject=str(latest.id),
            data_sha256=hashlib.sha256(current.note.encode("utf-8")).hexdigest(),
            url=tsa,
            at=at,
        )
        for sha in artifacts:
            ctx.db.queue_timestamp(session, kind="artifact", subject=sha, data_sha256=sha, url=tsa, at=at)
    with ctx.db.read() as session:
        pending = ctx.db.timestamps(session, "pending")
    granted: list[str] = []
    failed: list[str] = []
    offline: str | None = None
    for row in pending:
        assert row.id is not None
        if offline is not None:
            break
        try:
            # To the TSA asked now: one that could not be reached before must not hold up the rest.
            token = timestamp_digest(tsa, bytes.fromhex(row.data_sha256), timeout=timeout)
        except NetworkError as exc:
            offline = exc.message
            with ctx.write() as session:
                ctx.db.settle_timestamp(session, row.id, status="pending", token=None, gen_time=None, error=offline)
            continue
        except TimestampError as exc:
            failed.append(f"{row.subject_kind} {row.subject}: {exc}")
            with ctx.write() as session:
                ctx.db.settle_timestamp(session, row.id, status="failed", token=None, gen_time=None, error=str(exc))
            continue
        info = token_info(token)
        encoded = base64.b64encode(token).decode("ascii")
        with ctx.write() as session:
            ctx.db.settle_timestamp(session, row.id, "granted", token=encoded, gen_time=info.gen_time, url=tsa)
            ctx.db.append_event(
                session,
                at=ctx.clock(),
                actor=ctx.operator,
                action=Action.TIMESTAMP_ADDED,
                subject="catalog" if row.subject_kind == "checkpoint" else row.subject,
                details={
                    "stamps": row.subject_kind,
                    "checkpoint_id": int(row.subject) if row.subject_kind == "checkpoint" else None,
                    "sha256": row.data_sha256,
                    "tsa_url": tsa,
                    "gen_time": format_timestamp(info.gen_time),
                    "serial": str(info.serial),
                    "policy": info.policy,
                    "token": encoded,
                },
            )
        granted.append(f"{row.subject_kind} {row.subject}")
    with ctx.db.read() as session:
        still = len(ctx.db.timestamps(session, "pending"))
    return TimestampResult(
        checkpoint=current.note, granted=tuple(granted), failed=tuple(failed), pending=still, offline=offline
    )


def inclusion_proof(ctx: Context, seq: int) -> InclusionProof:
    """The RFC 6962 inclusion proof of custody event *seq* in the log at the latest
    checkpoint's size (or the whole log when it has none covering *seq*)."""
    with ctx.db.read() as session:
        size = ctx.db.tree_size(session)
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= size:
            raise InputError(f"no custody event {seq!r}; the log has events 1 to {size}", where="seq")
        latest = ctx.db.latest_checkpoint(session, signed=True)
        if latest is not None and latest.tree_size < seq:
            latest = None
        at_size = size if latest is None else latest.tree_size
        subtrees = ctx.db.subtrees(session)
        proof = merkle.inclusion_proof(subtrees, seq - 1, at_size)
        root = merkle.root(subtrees, at_size)
        leaf = subtrees(0, seq - 1)
    return InclusionProof(
        seq=seq,
        leaf_index=seq - 1,
        tree_size=at_size,
        leaf_hash=leaf.hex(),
        proof=tuple(h.hex() for h in proof),
        root=root.hex(),
        checkpoint=None if latest is None else latest.note,
    )


def consistency_proof(ctx: Context, old_size: int, new_size: int | None = None) -> tuple[str, ...]:
    """The RFC 6962 consistency proof (hex hashes) from the log at *old_size* to *new_size*
    (the whole log when ``None``)."""
    with ctx.db.read() as session:
        size = ctx.db.tree_size(session) if new_size is None else new_size
        try:
            return tuple(h.hex() for h in merkle.consistency_proof(ctx.db.subtrees(session), old_size, size))
        except ValueError as exc:
            raise InputError(str(exc), where="size") from exc
