"""What an export bag carries so that a recipient can check its custody events against the
signed log without this library (see ``docs/verify-independently.md``).

Under :data:`LOG_DIR`: the latest checkpoint (which covers every event exported), the log's
public key (PEM for ``openssl``, and the C2SP vkey), an RFC 6962 inclusion proof of each event
when the log is not exported whole -- with the event naming the log key and each hand-over to a
later key, when they are not among the events exported -- and the RFC 3161 tokens kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import vkey
from evidence_catalog.custody import Action
from evidence_catalog.interchange.bag import BagWriter
from evidence_catalog.interchange.import_provenance import KEY_CHANGES, KEY_EVENT, named_key
from evidence_catalog.serialize import to_document
from evidence_catalog.store.keyfiles import PUBLIC_FILE, LogKey

#: Where an export bag keeps the signed checkpoint, the log's key, proofs and time-stamps.
LOG_DIR = "data/log"


class Checkpoint(Protocol):
    """A checkpoint of the custody log as the catalog keeps it."""

    @property
    def note(self) -> str: ...
    @property
    def tree_size(self) -> int: ...
    @property
    def root_hash(self) -> str: ...
    @property
    def signed(self) -> bool: ...


#: A time-stamp kept for a checkpoint: its number among the granted time-stamps (from 1), the
#: checkpoint's note, the RFC 3161 token and the Time-Stamp Authority's URL.
StampedCheckpoint = tuple[int, str, bytes, str]


def write_log_evidence(
    writer: BagWriter,
    latest: Checkpoint,
    log_key: LogKey,
    *,
    subtrees: merkle.SubtreeSource,
    events_by_action: Callable[[str], Iterable[model.CustodyEvent]],
    stamps: Iterable[StampedCheckpoint],
    seqs: list[int],
    complete: bool,
) -> dict[str, Any]:
    """Write the log evidence for the custody events *seqs* of a bag into *writer*: the *latest*
    checkpoint and *log_key*'s public key; unless the log is *complete*, the inclusion proof of
    each event in the tree of *subtrees*, with the key events *events_by_action* gives; and
    *stamps*.  Return what the bag's ``contents.json`` says of it."""
    name, public = log_key.public()
    writer.add_bytes(f"{LOG_DIR}/checkpoint.note", latest.note.encode("utf-8"))
    writer.add_bytes(f"{LOG_DIR}/log.pub", (log_key.directory / PUBLIC_FILE).read_bytes())
    writer.add_bytes(f"{LOG_DIR}/log.vkey", (vkey(name, public) + "\n").encode("ascii"))
    proofs = not complete and bool(seqs)
    if proofs:
        # The event naming the log key, which the recipient checks the checkpoint with; in
        # a bag of some records it is not among their events, so it goes here, proven too.
        key_event = next(
            (
                event
                for action in (Action.CATALOG_CREATED, Action.LOG_KEY_CREATED)
                for event in events_by_action(action)
                if named_key(to_document(event)) is not None
            ),
            None,
        )
        if key_event is not None and key_event.seq <= latest.tree_size and key_event.seq not in seqs:
            document = to_document(key_event)
            writer.add_bytes(KEY_EVENT, (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8"))
            seqs = sorted({*seqs, key_event.seq})
        # And each hand-over to a later key, so that a checkpoint that key signed is checked too.
        changes = [
            to_document(event)
            for event in events_by_action(Action.LOG_KEY_CHANGED)
            if event.seq <= latest.tree_size and event.seq not in seqs
        ]
        if changes:
            lines = "".join(json.dumps(document, ensure_ascii=False) + "\n" for document in changes)
            writer.add_bytes(KEY_CHANGES, lines.encode("utf-8"))
            seqs = sorted({*seqs, *(document["seq"] for document in changes)})
        stream = writer.open_text(f"{LOG_DIR}/proofs.jsonl")
        try:
            for seq in seqs:
                path = merkle.inclusion_proof(subtrees, seq - 1, latest.tree_size)
                line = {
                    "seq": seq,
                    "leaf_index": seq - 1,
                    "tree_size": latest.tree_size,
                    "leaf_hash": subtrees(0, seq - 1).hex(),
                    "proof": [h.hex() for h in path],
                }
                stream.write(json.dumps(line) + "\n")
        finally:
            stream.close()
    written = []
    for number, note, token, tsa_url in stamps:
        base = f"{LOG_DIR}/timestamps/{number:04d}"
        writer.add_bytes(f"{base}.note", note.encode("utf-8"))
        writer.add_bytes(f"{base}.tsr", token)
        written.append({"note": f"{base}.note", "token": f"{base}.tsr", "tsa_url": tsa_url})
    return {
        "origin": name,
        "checkpoint": f"{LOG_DIR}/checkpoint.note",
        "tree_size": latest.tree_size,
        "root_hash": latest.root_hash,
        "signed": latest.signed,
        "public_key": f"{LOG_DIR}/log.pub",
        "vkey": f"{LOG_DIR}/log.vkey",
        "proofs": f"{LOG_DIR}/proofs.jsonl" if proofs else None,
        "timestamps": written,
    }
