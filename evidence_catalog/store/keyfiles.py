"""The catalog's log key on disk, and the checkpoints a verifier remembers outside the catalog.

:class:`LogKey` keeps the key pair in the catalog's ``keys/`` folder: ``log.key`` (PKCS #8 PEM,
mode 0600, encrypted when a passphrase is given), ``log.pub`` (PEM, for ``openssl``) and
``log.vkey`` (see :mod:`evidence_catalog.checkpoint` for what the key signs, and how).
:func:`remember` keeps the latest checkpoint a verification found good, under this account
(``$XDG_STATE_HOME``), so that a catalog rolled back or rewritten later is found.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from attrs import frozen
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_catalog.checkpoint import (
    CheckpointError,
    KeyDamagedError,
    KeyLockedError,
    parse_vkey,
    public_bytes,
    vkey,
)
from evidence_catalog.errors import CatalogError, InputError

#: The environment variable that holds the passphrase of an encrypted log key.
PASSPHRASE_ENV = "EVIDENCE_CATALOG_KEY_PASSPHRASE"
KEY_FILE, PUBLIC_FILE, VKEY_FILE = "log.key", "log.pub", "log.vkey"


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

    def private(self, passphrase: str | None = None, *, expected: bytes | None = None) -> Ed25519PrivateKey:
        """The private key, checked against the public key *expected* (else ``log.vkey``).

        An encrypted key is opened with *passphrase*, else ``$EVIDENCE_CATALOG_KEY_PASSPHRASE``;
        a passphrase given for a key that is not encrypted is not needed and is ignored.
        Raises :class:`KeyLockedError` for an encrypted key and no passphrase,
        :class:`InputError` for a passphrase that does not open it, and
        :class:`KeyDamagedError` for a key file that cannot be read, is not an Ed25519 key, or
        is not the expected key (replaced).
        """
        path = self.directory / KEY_FILE
        given = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyDamagedError(f"the log key cannot be read ({exc.strerror})", where=str(path)) from exc
        encrypted = data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        if encrypted and not given:
            raise KeyLockedError(f"the log key is encrypted: give its passphrase (${PASSPHRASE_ENV})", where=str(path))
        try:
            key = serialization.load_pem_private_key(data, given.encode("utf-8") if encrypted and given else None)
        except (TypeError, ValueError) as exc:
            if encrypted:
                raise InputError(
                    "the passphrase does not open the log key (a wrong passphrase, or a damaged key file); "
                    "nothing was changed",
                    where=str(path),
                ) from exc
            raise KeyDamagedError(f"the log key file is damaged: {exc}", where=str(path)) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyDamagedError("the log key is not an Ed25519 key", where=str(path))
        wanted = expected if expected is not None else self.public()[1]
        if public_bytes(key.public_key()) != wanted:
            raise KeyDamagedError(
                "the log key is not the key the custody log names (the key files were replaced)", where=str(path)
            )
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
