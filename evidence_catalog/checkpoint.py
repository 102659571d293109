"""Signed checkpoints of the custody log: C2SP tlog-checkpoint text in a C2SP signed note,
signed with the catalog's Ed25519 log key.

A checkpoint says "this log, at this size, has this Merkle root"::

    evidence-catalog/01936f4e-8a4b-7c1d-9e2f-0123456789ab
    1543
    3q2+7w8Q...=                       (base64 of the 32-byte RFC 6962 root)

    — evidence-catalog/01936f4e-... AbCdEf...=   (base64 of 4-byte key id || 64-byte signature)

The signature covers the text up to and including its last newline; the key id is the first 4
bytes of SHA-256(key name || 0x0A || 0x01 || public key) (C2SP signed-note, Ed25519).  The key
name is the log's origin.  A verifier key (``vkey``) is ``name+<hex key id>+<base64(0x01 ||
public key)>``.  Whoever holds a checkpoint can later show that the log still extends it (a
consistency proof), or that it does not: an edited, removed or reordered event, a log rolled
back.

Nothing here reads or writes a file: the key files, and the checkpoints a verifier remembers,
are kept by :mod:`evidence_catalog.store.keyfiles`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence_catalog.errors import CatalogError, InputError, ValidationError

ORIGIN_PREFIX = "evidence-catalog/"
_SIGNATURE_PREFIX = "\u2014 "
_ED25519 = b"\x01"


class CheckpointError(ValidationError, ValueError):
    """A checkpoint or signed note that is malformed, unsigned, or signed by another key; a
    verifier key that cannot be read (``verify`` names it in a finding; an import counts the
    export as unsigned).

    It is also a :class:`ValueError`, which is what it was before."""


class KeyLockedError(InputError):
    """The log key is encrypted and no passphrase was given: nothing can be signed (yet)."""


class KeyDamagedError(CatalogError):
    """The log key's files cannot be used: unreadable, not a key, or not the key the log names."""


@frozen
class Checkpoint:
    """A log's origin, its size and its Merkle root at that size."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The checkpoint text (what is signed)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"


def key_id(name: str, public: bytes) -> bytes:
    """The C2SP key id of an Ed25519 key called *name*."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519 + public).digest()[:4]


def vkey(name: str, public: bytes) -> str:
    """The C2SP verifier key text."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(_ED25519 + public).decode('ascii')}"


def parse_vkey(text: str) -> tuple[str, bytes]:
    """The name and the 32-byte Ed25519 public key of a verifier key; :class:`CheckpointError`."""
    parts = text.strip().split("+", 2)  # the name has no "+"; base64 may
    if len(parts) != 3:
        raise CheckpointError("a verifier key is name+keyid+key")
    name, hex_id, key = parts
    try:
        raw = base64.b64decode(key, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"verifier key is not readable: {exc}") from None
    if len(raw) != 33 or raw[:1] != _ED25519:
        raise CheckpointError("verifier key is not an Ed25519 key")
    if key_id(name, raw[1:]) != wanted:
        raise CheckpointError("verifier key's id does not match its key")
    return name, raw[1:]


def sign(checkpoint: Checkpoint, private: Ed25519PrivateKey) -> str:
    """The signed note of *checkpoint*, signed by *private* under the name of its origin."""
    body = checkpoint.body()
    public = public_bytes(private.public_key())
    signature = private.sign(body.encode("utf-8"))
    line = base64.b64encode(key_id(checkpoint.origin, public) + signature).decode("ascii")
    return f"{body}\n{_SIGNATURE_PREFIX}{checkpoint.origin} {line}\n"


def split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """The text of a signed note and its signatures ``(name, key id, signature)``."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckpointError("a signed note must not hold control characters")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointError("not a signed note: no blank line before signature lines")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    signatures = []
    for line in lines:
        if not line.startswith(_SIGNATURE_PREFIX):
            raise CheckpointError(f"not a signature line: {line[:40]!r}")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("a signature is not base64") from None
        if not name or len(raw) < 5:
            raise CheckpointError("a signature line is too short")
        signatures.append((name, raw[:4], raw[4:]))
    if not signatures:
        raise CheckpointError("the note has no signature")
    return text, signatures


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint a note's text holds (origin, size, root; extension lines ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("a checkpoint is an origin, a size and a root hash, one per line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    # The size is a decimal uint64 (C2SP tlog-checkpoint): ASCII digits only (``str.isdigit``
    # also takes other scripts' digits and superscripts, which ``int`` may refuse).
    if (
        not origin
        or not (size_text.isascii() and size_text.isdigit())
        or len(size_text) > 20
        or (size_text != "0" and size_text.startswith("0"))
        or int(size_text) >= 2**64
    ):
        raise CheckpointError("checkpoint origin or size is malformed")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise CheckpointError("checkpoint root is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root)


def stated(note: object) -> Checkpoint | None:
    """What a kept checkpoint's *note* states (origin, size, root), signed or not, without
    checking any signature; ``None`` when it cannot be read.  A checkpoint row's own
    ``tree_size`` and ``root_hash`` are an index of its note: what is handed out is read from
    the note (``verify`` names a row whose columns say otherwise)."""
    if not isinstance(note, str):
        return None
    with contextlib.suppress(CheckpointError):
        return parse_checkpoint(split_note(note)[0])
    with contextlib.suppress(CheckpointError):
        return parse_checkpoint(note.split("\n\n")[0] + "\n")
    return None


def verify(note: str, name: str, public: bytes) -> Checkpoint:
    """The checkpoint of *note* if it carries a valid signature by the key *name*/*public*;
    :class:`CheckpointError` saying what is wrong (unsigned by that key, a bad signature, a
    checkpoint of another log)."""
    text, signatures = split_note(note)
    wanted = key_id(name, public)
    mine = [(n, k, s) for n, k, s in signatures if n == name and k == wanted]
    if not mine:
        others = ", ".join(sorted({f"{n} ({k.hex()})" for n, k, _ in signatures}))
        raise CheckpointError(f"not signed by the log key {name} ({wanted.hex()}); signed by {others}")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(mine[0][2], text.encode("utf-8"))
    except InvalidSignature:
        raise CheckpointError(f"the signature by {name} does not match the checkpoint (forged or altered)") from None
    checkpoint = parse_checkpoint(text)
    if checkpoint.origin != name:
        raise CheckpointError(f"a checkpoint of the log {checkpoint.origin}, not of {name}")
    return checkpoint


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


#: The first line of what a log key signs when it hands the log over to a new key.
KEY_CHANGE_CONTEXT = "evidence-catalog log key change"
#: The custody actions that declare the log's key, and the one that changes it.
KEY_DECLARED = ("catalog.created", "key.created")
KEY_CHANGED = "key.changed"


def key_change_statement(old_vkey: str, new_vkey: str) -> bytes:
    """The bytes the previous log key signs to hand the log over to *new_vkey*."""
    return f"{KEY_CHANGE_CONTEXT}\n{old_vkey}\n{new_vkey}\n".encode()


@frozen
class KeyEpoch:
    """A log key and the custody event from which on it signs the log's checkpoints."""

    seq: int
    name: str
    public: bytes
    #: Whether its private half is kept encrypted (so that checkpoints may wait for a passphrase).
    encrypted: bool

    @property
    def vkey(self) -> str:
        """Its C2SP verifier key."""
        return vkey(self.name, self.public)

    @property
    def key_id(self) -> str:
        """Its C2SP key id, in hex."""
        return key_id(self.name, self.public).hex()


def _declared_key(seq: int, details: Any) -> KeyEpoch:
    if not isinstance(details, Mapping) or not isinstance(details.get("vkey"), str):
        raise CheckpointError("it names no verifier key")
    name, public = parse_vkey(details["vkey"])
    encrypted = details.get("encrypted")
    if not isinstance(encrypted, bool):
        raise CheckpointError("it does not say whether the key is encrypted")
    return KeyEpoch(seq=seq, name=name, public=public, encrypted=encrypted)


def key_chain(documents: Iterable[Mapping[str, Any]]) -> tuple[list[KeyEpoch], list[tuple[int, str]]]:
    """The log's keys, in order, from its key events (``catalog.created``, ``key.created``,
    ``key.changed`` documents in sequence order), and the problems found ``(seq, reason)``.

    The first event that declares a key pins it.  From then on only a ``key.changed`` event whose
    ``endorsement`` is a signature by the key in force over :func:`key_change_statement` hands
    the log to another key; any other declaration is a problem and is ignored (the key in force
    stays the same, so checkpoints signed by the pretender do not verify either).
    """
    epochs: list[KeyEpoch] = []
    problems: list[tuple[int, str]] = []
    for document in documents:
        seq, action, details = document.get("seq"), document.get("action"), document.get("details")
        if not isinstance(seq, int):
            continue  # a damaged event: the chain check names it
        try:
            if action in KEY_DECLARED:
                if action == KEY_DECLARED[0] and isinstance(details, Mapping) and "log" not in details:
                    continue  # a catalog made before logs had keys: its key.created comes later
                declared = _declared_key(seq, details.get("log", details) if isinstance(details, Mapping) else None)
                if epochs:
                    raise CheckpointError(
                        f"the log's key was already pinned by event {epochs[0].seq}; "
                        "a new key must be handed over by the key in force"
                    )
                epochs.append(declared)
            elif action == KEY_CHANGED:
                declared = _declared_key(seq, details)
                if not epochs:
                    raise CheckpointError("it changes a key the log never named")
                current = epochs[-1]
                assert isinstance(details, Mapping)
                endorsement = details.get("endorsement")
                try:
                    signature = base64.b64decode(endorsement if isinstance(endorsement, str) else "", validate=True)
                    Ed25519PublicKey.from_public_bytes(current.public).verify(
                        signature, key_change_statement(current.vkey, declared.vkey)
                    )
                except (binascii.Error, ValueError, InvalidSignature):
                    raise CheckpointError(
                        f"its new key is not signed over by the key in force ({current.name}, {current.key_id})"
                    ) from None
                if declared.name != current.name:
                    raise CheckpointError(f"the new key is for another log ({declared.name})")
                epochs.append(declared)
        except CheckpointError as exc:
            problems.append((seq, str(exc)))
    return epochs, problems


def epoch_at(epochs: list[KeyEpoch], size: int) -> KeyEpoch | None:
    """The key in force for a checkpoint of the log's first *size* events: the last one declared
    within them, or the first key when none is (only it can sign a checkpoint of events from
    before it was made: those of a catalog made before logs had keys)."""
    found = epochs[0] if epochs else None
    for epoch in epochs:
        if epoch.seq > size:
            break
        found = epoch
    return found
