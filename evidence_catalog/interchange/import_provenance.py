"""Whether an export's custody events are tied to the exporting catalog's signed log.

An import trusts an export's records only as far as their custody events, and those only as far
as a checkpoint signed by the key the exported log itself names (its ``catalog.created`` or
``key.created`` event, and the ``key.changed`` events that hand the log on): :func:`log_provenance`
checks the events against that checkpoint -- the whole log's root, or each event's inclusion
proof -- and :func:`bag_provenance` finds that evidence in a bag (``data/log/``).  The answer is a
:class:`Provenance`, signed or unsigned with the reason; an export without signed provenance is
refused with :class:`UnsignedProvenanceError` unless it is accepted explicitly.  Separate from
:mod:`evidence_catalog.interchange.importing` (reading the records) because it is its own
question, and because an export writes this evidence with the names defined here
(:mod:`evidence_catalog.interchange.log_evidence`).  Nothing here writes.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import merkle
from evidence_catalog.checkpoint import (
    KEY_CHANGED,
    KEY_DECLARED,
    CheckpointError,
    epoch_at,
    key_chain,
    key_id,
    parse_checkpoint,
    split_note,
)
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.custody import Action, event_leaf
from evidence_catalog.errors import IntegrityError, ValidationError
from evidence_catalog.interchange.bag import CONTENTS, CUSTODY, BagError
from evidence_catalog.interchange.import_documents import event_document, lines, parse_json, read_limited

#: A partial bag's copy of the custody event that names the exporting catalog's log key.
KEY_EVENT = "data/log/key-event.json"
#: In a bag of some records: the log's ``key.changed`` events, one per line, each proven.
KEY_CHANGES = "data/log/key-changes.jsonl"


class UnsignedProvenanceError(IntegrityError):
    """An export whose custody events are not tied to a checkpoint signed by the key its own log
    names (no signed log evidence, another key, a checkpoint that is no signed note, events the
    checkpoint does not cover); imported only when unsigned provenance is accepted explicitly."""


@attrs.frozen
class Provenance:
    """How an export's custody events are tied to the exporting catalog's signed log."""

    #: The log's name (origin), and its key as the exported log names it (C2SP key id, and the
    #: Ed25519 public key in base64).
    origin: str | None = None
    key_id: str | None = None
    public_key: str | None = None
    #: The signed checkpoint the events were checked against.
    tree_size: int | None = None
    root_hash: str | None = None
    #: Why the events are not tied to a signed log; ``None`` when they are.
    unsigned: str | None = None

    @property
    def signed(self) -> bool:
        """Whether every custody event is covered by a checkpoint signed by the key the log names."""
        return self.unsigned is None

    def log(self) -> dict[str, Any] | None:
        """What the import event says of the signed log checked (``None`` when unsigned)."""
        if not self.signed:
            return None
        return {
            "origin": self.origin,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
        }


LOG_PREFIX = "data/log/"


def bag_provenance(
    files: Mapping[str, Path], contents: Mapping[str, Any], events: list[dict[str, Any]], leaves: Sequence[bytes]
) -> Provenance:
    """How a bag's custody events are tied to the exporting catalog's signed log: its checkpoint
    (``data/log/checkpoint.note``) checked with the key the exported log names -- in the whole
    log, its key-naming event; in a bag of some records, the copy of that event in
    ``data/log/key-event.json``, proven by its inclusion proof -- and each event covered by the
    root of the whole log or by its inclusion proof.  The bag's own ``log.vkey`` is not trusted."""
    log = contents.get("log")
    if log is None:
        if any(name.startswith(LOG_PREFIX) for name in files):
            raise BagError("has files in data/log/ that contents.json does not describe", where=CONTENTS)
        return Provenance(unsigned="the bag carries no signed log evidence (contents.json says log null)")
    if not isinstance(log, dict):
        raise ValidationError("log must be an object or null", where=CONTENTS)
    if log.get("signed") is False:
        return Provenance(
            unsigned="the bag's checkpoint is unsigned (the exporting catalog's log key is encrypted and its"
            " passphrase was not given: sign a checkpoint there with `checkpoint`, then export again)"
        )
    checkpoint_name = f"{LOG_PREFIX}checkpoint.note"
    if checkpoint_name not in files:
        return Provenance(unsigned=f"the bag has no {checkpoint_name}")
    try:
        note = _text(files, checkpoint_name)
    except ValidationError as exc:
        return Provenance(unsigned=f"its checkpoint {exc.message}")
    if contents.get("complete_log") is True:
        return log_provenance(events, note, complete=True, leaves=leaves)
    proofs_name = f"{LOG_PREFIX}proofs.jsonl"
    proofs: dict[int, Any] | None = None
    if proofs_name in files:
        proofs = {}
        for _, line in lines(files[proofs_name], proofs_name):
            if isinstance(line, dict) and isinstance(line.get("seq"), int):
                proofs.setdefault(line["seq"], line.get("proof"))
    key_events = []
    if KEY_EVENT in files:
        key_events.append(event_document(parse_json(read_limited(files[KEY_EVENT], KEY_EVENT), KEY_EVENT), KEY_EVENT))
    if KEY_CHANGES in files:
        key_events += [event_document(line, KEY_CHANGES) for _, line in lines(files[KEY_CHANGES], KEY_CHANGES)]
    return log_provenance(events, note, complete=False, proofs=proofs, key_events=key_events, leaves=leaves)


def named_key(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a custody event says of the log's key when it names one (``catalog.created`` or
    ``key.created`` with a ``vkey``), else ``None``."""
    if document.get("action") not in (Action.CATALOG_CREATED, Action.LOG_KEY_CREATED):
        return None
    details = document.get("details")
    if not isinstance(details, dict):
        return None
    log = details.get("log", details)
    return log if isinstance(log, dict) and isinstance(log.get("vkey"), str) else None


def log_provenance(
    events: list[dict[str, Any]],
    note: Any,
    *,
    complete: bool,
    proofs: Mapping[int, Any] | None = None,
    key_events: list[dict[str, Any]] | None = None,
    leaves: Sequence[bytes] | None = None,
) -> Provenance:
    """Check that *events* (hash-checked already) are covered by the checkpoint *note*, signed
    by the key the exported log names for its size: the key its first key-naming event pins, or
    a successor handed the log by a ``key.changed`` event the key before signed (see
    :func:`~evidence_catalog.checkpoint.key_chain`).  In a *complete* log those events are among
    *events*; in a bag of some records they come as *key_events*, each proven like every event by
    its inclusion proof in *proofs* (``seq`` -> list of hex hashes).  *leaves*, when given, are the
    leaves of *events* (from :func:`~evidence_catalog.interchange.import_documents.checked_event`),
    else they are made here.

    Returns the :class:`Provenance`: signed, or unsigned with the reason (no checkpoint, no
    key-naming event, a checkpoint that is not a note signed by that key, events it does not
    cover).  A checkpoint that *is* signed by that key but contradicts the events (another root,
    a failing proof, a complete log shorter than it) is forgery: :class:`IntegrityError`."""
    held = {e.get("seq") for e in events}
    extra = [] if complete else [e for e in key_events or [] if e.get("seq") not in held]
    key_documents = sorted(
        (e for e in [*extra, *events] if e.get("action") in (*KEY_DECLARED, KEY_CHANGED)),
        key=lambda e: e["seq"] if isinstance(e.get("seq"), int) else 0,
    )
    epochs, problems = key_chain(key_documents)
    if problems:
        seq, reason = problems[0]
        return Provenance(unsigned=f"custody event {seq} declares a log key that is not accepted: {reason}")
    if not epochs:
        where = "its custody log" if complete else f"the bag ({KEY_EVENT})"
        return Provenance(unsigned=f"{where} holds no event naming the log key (catalog.created or key.created)")
    if not isinstance(note, str) or not note:
        return Provenance(unsigned="it carries no signed checkpoint")
    try:
        epoch = epoch_at(epochs, parse_checkpoint(split_note(note)[0]).size)
    except (CheckpointError, ValueError) as exc:  # ValueError: text UTF-8 cannot encode
        return Provenance(unsigned=f"its checkpoint is not one signed by the log key its own log names: {exc}")
    assert epoch is not None
    name, public = epoch.name, epoch.public
    kid = key_id(name, public).hex()
    if not isinstance(note, str) or not note:
        return Provenance(unsigned="it carries no signed checkpoint")
    try:
        found = verify_checkpoint(note, name, public)
    except (CheckpointError, ValueError) as exc:  # ValueError: text UTF-8 cannot encode
        return Provenance(
            unsigned=f"its checkpoint is not one signed by the log key its own log names ({name}, key id {kid}): {exc}"
        )
    signed = Provenance(
        origin=name,
        key_id=kid,
        public_key=base64.b64encode(public).decode("ascii"),
        tree_size=found.size,
        root_hash=found.root.hex(),
    )
    made = []
    for event in [*extra, *(events if leaves is None else ())]:
        try:
            made.append(event_leaf(event))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"custody event {event.get('seq')} cannot be hashed: {exc}", where=CUSTODY) from None
    leaves = made if leaves is None else [*made, *leaves]
    if complete:
        if found.size > len(leaves):
            raise IntegrityError(
                f"the signed checkpoint covers {found.size} custody events; the complete log exported holds only"
                f" {len(leaves)}: events were cut off",
                where=CUSTODY,
            )
        if found.size == 0 or merkle.root(merkle.perfect_from_leaves(leaves), found.size) != found.root:
            raise IntegrityError("the custody log is not the one the checkpoint signed", where=CUSTODY)
        if found.size < len(leaves):
            return attrs.evolve(
                signed,
                unsigned=f"custody events {found.size + 1} to {len(leaves)} come after its signed checkpoint",
            )
        return signed
    where = f"{LOG_PREFIX}proofs.jsonl"
    if proofs is None:
        return attrs.evolve(signed, unsigned="the bag has a checkpoint but no inclusion proofs of its custody events")
    for event, leaf in zip([*extra, *events], leaves, strict=True):
        seq = event["seq"]
        proof = proofs.get(seq)
        if proof is None:
            return attrs.evolve(signed, unsigned=f"custody event {seq} has no inclusion proof")
        if seq > found.size:
            return attrs.evolve(signed, unsigned=f"custody event {seq} comes after its signed checkpoint")
        try:
            path = [bytes.fromhex(h) for h in proof]
        except (TypeError, ValueError):
            path = None
        if path is None or not merkle.verify_inclusion(seq - 1, found.size, leaf, path, found.root):
            raise IntegrityError(f"custody event {seq} is not proven to be in the signed log", where=where)
    return signed


def _text(files: Mapping[str, Path], name: str) -> str:
    if name not in files:
        raise BagError("is missing (contents.json says the bag has a signed checkpoint)", where=name)
    try:
        return read_limited(files[name], name).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("is not UTF-8", where=name) from None
