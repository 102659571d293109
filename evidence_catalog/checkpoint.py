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

:class:`LogKey` keeps the key pair in the catalog's ``keys/`` folder: ``log.key`` (PKCS #8 PEM,
mode 0600, encrypted when a passphrase is given), ``log.pub`` (PEM, for ``openssl``) and
``log.vkey``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from attrs import frozen
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence_catalog.errors import CatalogError, InputError

ORIGIN_PREFIX = "evidence-catalog/"
#: The environment variable that holds the passphrase of an encrypted log key.
PASSPHRASE_ENV = "EVIDENCE_CATALOG_KEY_PASSPHRASE"
KEY_FILE, PUBLIC_FILE, VKEY_FILE = "log.key", "log.pub", "log.vkey"
_SIGNATURE_PREFIX = "\u2014 "
_ED25519 = b"\x01"


class CheckpointError(ValueError):
    """A checkpoint or signed note that is malformed, unsigned, or signed by another key."""


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
    if not origin or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("checkpoint origin or size is malformed")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise CheckpointError("checkpoint root is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root)


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


@frozen
class LogKey:
    """The catalog's log key pair in a folder."""

    directory: Path

    @property
    def exists(self) -> bool:
        """Whether the folder holds a key."""
        return (self.directory / VKEY_FILE).is_file()

    def create(self, origin: str, passphrase: str | None = None) -> tuple[str, bytes]:
        """Make a new key pair for the log *origin*; return (name, public key).  The private key
        file is created with mode 0600 in a 0700 folder, and never replaced."""
        private = Ed25519PrivateKey.generate()
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
            if passphrase
            else serialization.NoEncryption()
        )
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        public = public_bytes(private.public_key())
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, data, mode in (
            (KEY_FILE, pem, 0o600),
            (
                PUBLIC_FILE,
                private.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                0o644,
            ),
            (VKEY_FILE, (vkey(origin, public) + "\n").encode("ascii"), 0o644),
        ):
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        return origin, public

    def public(self) -> tuple[str, bytes]:
        """The log's name (origin) and public key, from ``log.vkey``."""
        path = self.directory / VKEY_FILE
        try:
            return parse_vkey(path.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, CheckpointError) as exc:
            raise CatalogError(f"the log's verifier key cannot be read: {exc}", where=str(path)) from exc

    def private(self, passphrase: str | None = None) -> Ed25519PrivateKey:
        """The private key (*passphrase*, else ``$EVIDENCE_CATALOG_KEY_PASSPHRASE``, for an
        encrypted one); :class:`InputError` when it is encrypted and no right passphrase is given."""
        path = self.directory / KEY_FILE
        given = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CatalogError(f"the log key cannot be read ({exc.strerror})", where=str(path)) from exc
        try:
            key = serialization.load_pem_private_key(data, None if not given else given.encode("utf-8"))
        except TypeError as exc:  # encrypted but no passphrase, or a passphrase for a plain key
            raise InputError(f"the log key needs its passphrase (${PASSPHRASE_ENV}): {exc}", where=str(path)) from exc
        except ValueError as exc:
            raise InputError(f"the log key cannot be opened (wrong passphrase?): {exc}", where=str(path)) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CatalogError("the log key is not an Ed25519 key", where=str(path))
        if public_bytes(key.public_key()) != self.public()[1]:
            raise CatalogError("the log key does not match log.vkey", where=str(path))
        return key


def remembered_path(origin: str) -> Path:
    """Where a verifier keeps the latest checkpoint it verified of the log *origin*:
    ``$XDG_STATE_HOME/evidence-catalog/checkpoints/`` (default ``~/.local/state/...``), outside
    the catalog, so that a catalog rolled back or rewritten later is found."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in origin)
    return Path(base) / "evidence-catalog" / "checkpoints" / f"{safe}.note"


def _folder_path(folder: Path) -> Path:
    """Where a verifier notes which log it last verified in a catalog *folder*."""
    digest = hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:32]
    return remembered_path("x").parent / "folders" / digest


def remember(origin: str, public: bytes, note: str, *, folder: Path | None = None) -> None:
    """Keep *note* (with the verifier key it was checked with) as the latest checkpoint seen of
    *origin*, and, with *folder*, that this folder held that log (so that a log replaced by one
    of another origin in the same folder is found)."""
    path = remembered_path(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(vkey(origin, public) + "\n" + note, encoding="utf-8")
    os.replace(tmp, path)
    if folder is not None:
        index = _folder_path(folder)
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = index.with_suffix(".tmp")
        tmp.write_text(origin + "\n", encoding="utf-8")
        os.replace(tmp, index)


def remembered_for(folder: Path, origin: str) -> tuple[str, bytes, str, Path] | None:
    """The checkpoint remembered for the log in *folder*: of the log this folder held when it
    was last verified (whatever origin its key now claims), else of *origin*; as ``(name,
    public key, note, where it is kept)``."""
    index = _folder_path(folder)
    try:
        held_origin = index.read_text(encoding="utf-8").strip() or origin
    except FileNotFoundError:
        held_origin = origin
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"the note of which log {folder} held cannot be read: {exc}") from None
    found = remembered(held_origin)
    return None if found is None else (*found, remembered_path(held_origin))


def remembered(origin: str) -> tuple[str, bytes, str] | None:
    """The remembered ``(name, public key, note)`` of *origin*, if any; :class:`CheckpointError`
    when the file is damaged."""
    path = remembered_path(origin)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"the remembered checkpoint {path} cannot be read: {exc}") from None
    first, _, note = text.partition("\n")
    name, public = parse_vkey(first)
    return name, public, note
