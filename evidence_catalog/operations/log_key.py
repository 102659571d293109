"""The custody log's signing key: made with the catalog, pinned by the log's own key events,
checked before every change, handed over to a new key; and the signed checkpoint that ends
every write transaction.

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`; the
key's state (the private key once opened, why it cannot sign) lives in ``ctx.key``.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_catalog import model
from evidence_catalog.checkpoint import (
    KEY_CHANGED,
    KEY_DECLARED,
    ORIGIN_PREFIX,
    Checkpoint,
    CheckpointError,
    KeyDamagedError,
    KeyEpoch,
    KeyLockedError,
    epoch_at,
    key_chain,
    key_change_statement,
    key_id,
    parse_checkpoint,
    split_note,
    vkey,
)
from evidence_catalog.checkpoint import sign as sign_checkpoint
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.custody import Action
from evidence_catalog.errors import CatalogError, InputError, IntegrityError, StorageError
from evidence_catalog.operations import common
from evidence_catalog.paths import display_path
from evidence_catalog.store.blobstore import fsync_dir
from evidence_catalog.store.database import LOG_SIZE_BEFORE
from evidence_catalog.store.keyfiles import KEY_FILE, PASSPHRASE_ENV, PUBLIC_FILE, VKEY_FILE, LogKey, remembered_for

if TYPE_CHECKING:
    from evidence_catalog.operations.context import Context
    from evidence_catalog.results import KeyChange

#: The log's Ed25519 key pair (see :mod:`evidence_catalog.store.keyfiles`).
KEYS_DIR = "keys"
#: Inside ``keys/``: a new key while the log is handed to it, and the public files of old keys.
NEXT_KEY_DIR, RETIRED_KEYS_DIR = "next", "retired"


def create_log_key(ctx: Context) -> dict[str, Any]:
    """Make the log's key pair; return what the custody log says of it (its public half);
    from then on every change ends with a signed checkpoint."""
    origin = f"{ORIGIN_PREFIX}{model.new_id()}"
    passphrase = ctx.key.passphrase if ctx.key.passphrase is not None else os.environ.get(PASSPHRASE_ENV)
    try:
        name, public = ctx.key.log_key.create(origin, passphrase or None)
    except OSError as exc:
        raise StorageError(
            f"cannot create the log key ({exc.strerror})", where=display_path(ctx.key.log_key.directory)
        ) from exc
    ctx.key.signs = True
    return {
        "origin": name,
        "key_id": key_id(name, public).hex(),
        "vkey": vkey(name, public),
        "public_key": base64.b64encode(public).decode("ascii"),
        "encrypted": bool(passphrase),
    }


def had_a_key(ctx: Context) -> str | None:
    """Why a log that names no key must not be given one as a catalog from before logs had
    keys (its first key event and ``keys/`` removed, the log rewritten: a new key would sign
    it), when the catalog shows that it had one; else ``None``."""
    with ctx.db.read() as session:
        if ctx.db.latest_checkpoint(session, signed=True) is not None:
            return (
                "the custody log names no key, but signed checkpoints of it are kept: its key event was "
                "removed; no new key is made (run `evidence-catalog verify`)"
            )
    try:
        held = remembered_for(ctx.path, "")
    except CheckpointError:
        held = None
    if held is not None:
        return (
            f"the custody log names no key, but a verification under this account checked the log of "
            f"{held[0]} in this folder ({display_path(held[3])}): its key event was removed; no new key is made "
            "(run `evidence-catalog verify`)"
        )
    return None


def logged_key(ctx: Context) -> dict[str, Any] | None:
    """What the custody log says of the log's key (``catalog.created``/``key.created``),
    if it names one."""
    with ctx.db.read() as session:
        for action in (Action.CATALOG_CREATED, Action.LOG_KEY_CREATED):
            for logged in ctx.db.events_by_action(session, action):
                details = logged.details.get("log", logged.details)
                if isinstance(details, dict) and "vkey" in details:
                    return details
    return None


def log_key_chain(ctx: Context, session: Any) -> tuple[list[KeyEpoch], list[tuple[int, str]]]:
    """The log's keys as its own events pin and hand them over (see
    :func:`~evidence_catalog.checkpoint.key_chain`), and the key events it rejects."""
    documents = [
        document
        for action in (*KEY_DECLARED, KEY_CHANGED)
        for document in ctx.db.event_documents(session, action=action)
    ]
    documents.sort(key=lambda d: d["seq"] if isinstance(d.get("seq"), int) else 0)
    return key_chain(documents)


def signing_key(ctx: Context, session: Any = None) -> Ed25519PrivateKey | None:
    """The private log key, checked against the key the custody log names; ``None`` when it
    is encrypted and no passphrase was given (changes then keep unsigned checkpoints, which
    :meth:`checkpoint` signs later).  A passphrase that does not open it
    (:class:`InputError`) and key files that are damaged or not the log's key
    (:class:`KeyDamagedError`) are raised, every time: nothing is signed with them, and the
    change they would end is not made."""
    if ctx.key.private is None and ctx.key.error is None and not ctx.key.locked:
        try:
            if session is None:
                with ctx.db.read() as own:
                    epochs, _ = log_key_chain(ctx, own)
            else:
                epochs, _ = log_key_chain(ctx, session)
            pinned = epochs[-1].public if epochs else None  # none yet: the key being created
            if epochs:  # the name signed under, and the verifier key handed out, must be the log's too
                try:
                    held = ctx.key.log_key.public()
                except CatalogError as exc:
                    raise KeyDamagedError(exc.message, where=exc.where) from exc
                if held != (epochs[-1].name, epochs[-1].public):
                    raise KeyDamagedError(
                        f"{KEYS_DIR}/{VKEY_FILE} is not the key the custody log names "
                        f"({epochs[-1].name}, key id {epochs[-1].key_id}): the key files were replaced",
                        where=display_path(ctx.key.log_key.directory / VKEY_FILE),
                    )
            ctx.key.private = ctx.key.log_key.private(ctx.key.passphrase, expected=pinned)
        except KeyLockedError as exc:
            if epochs and not epochs[-1].encrypted:
                # The log's key is not encrypted: an encrypted key file in its place is not it.
                ctx.key.error = KeyDamagedError(
                    f"{KEYS_DIR}/{KEY_FILE} is encrypted, but the key the custody log names is not: the key "
                    "file was replaced (if you encrypted it yourself, give its passphrase)",
                    where=exc.where,
                )
            else:
                ctx.key.locked = True
        except KeyDamagedError as exc:
            ctx.key.error = older_key(ctx, epochs) or exc
        except InputError as exc:
            if epochs and not epochs[-1].encrypted:  # not a wrong passphrase: not the log's key
                ctx.key.error = KeyDamagedError(
                    f"{KEYS_DIR}/{KEY_FILE} is encrypted, but the key the custody log names is not, and the "
                    "passphrase given does not open it: the key file was replaced",
                    where=exc.where,
                )
            else:
                ctx.key.error = exc
        except CatalogError as exc:
            ctx.key.error = exc
    if ctx.key.error is not None:
        raise ctx.key.error
    return ctx.key.private


def older_key(ctx: Context, epochs: list[KeyEpoch]) -> KeyDamagedError | None:
    """When ``keys/`` holds a key the log was since handed away from (a team member's copy of
    the folder from before a change of key), the error that says so."""
    try:
        held = ctx.key.log_key.public()
    except CatalogError:
        return None
    for older, newer in itertools.pairwise(epochs):
        if held == (older.name, older.public):
            return KeyDamagedError(
                f"this is an earlier key of the log, handed over to key {newer.key_id} at custody event "
                f"{newer.seq}: copy the catalog's {KEYS_DIR}/ folder from where the key was changed",
                where=display_path(ctx.key.log_key.directory),
            )
    return None


def check_signing_key(ctx: Context, *, history: bool = True) -> None:
    """Refuse a change before anything is stored when the log key cannot sign it (a wrong
    passphrase, damaged or replaced key files) or, with *history*, when the log is not
    covered by its signed checkpoints as this catalog leaves it (the checkpoint that ends
    the change would vouch for events written without the key); an encrypted key without
    its passphrase is no reason: its checkpoints wait to be signed."""
    if ctx.key.log_key.exists and signing_key(ctx) is not None and history:
        with ctx.db.read() as session:
            check_signed_history(ctx, session, ctx.db.tree_size(session))


def write_checkpoint(ctx: Context, session: Any) -> None:
    """Sign and keep a checkpoint of the log as it is now (inside the write transaction
    that changed it).  Without the key's passphrase the checkpoint is kept unsigned, and
    :meth:`checkpoint` signs one later.

    Before signing, the log as it was before this transaction must be covered by a
    checkpoint the log's key signed (see :meth:`_check_signed_history`): else whoever
    rewrote the log without the key would have the operator's next change sign it."""
    size = ctx.db.tree_size(session)
    if ctx.key.log_name is None:  # read once: this runs at the end of every change
        ctx.key.log_name = ctx.key.log_key.public()[0]
    current = Checkpoint(origin=ctx.key.log_name, size=size, root=ctx.db.merkle_root(session, size))
    key = signing_key(ctx, session)
    if key is not None:
        check_signed_history(ctx, session, session.info.get(LOG_SIZE_BEFORE, size))
    note = current.body() if key is None else sign_checkpoint(current, key)
    ctx.db.add_checkpoint(session, size=size, root=current.root, note=note, signed=key is not None, at=ctx.clock())


def signed_prefix(ctx: Context, session: Any, epochs: list[KeyEpoch]) -> tuple[int, Any]:
    """The largest checkpoint kept that the key the log names for its size signed, over the
    stored Merkle tree as it is now: ``(its size, its row)``; ``(0, None)`` when there is
    none.  Raises :class:`IntegrityError` when it no longer matches the stored tree (the
    events under it were rewritten)."""
    size = ctx.db.tree_size(session)
    for row in ctx.db.signed_checkpoints_by_size(session):
        if type(row.tree_size) is not int or row.tree_size > size:
            continue  # a row that says so is no checkpoint of this log (verify names it)
        try:
            epoch = epoch_at(epochs, parse_checkpoint(split_note(row.note)[0]).size)
            if epoch is None:
                continue
            found = verify_checkpoint(row.note, epoch.name, epoch.public)
        except (CheckpointError, ValueError, TypeError, AttributeError):
            continue  # forged or damaged (a note that is not even text): verify names it
        if found.size != row.tree_size or found.root.hex() != row.root_hash:
            continue  # a row whose size or root is not its note's (verify names it)
        if ctx.db.merkle_root(session, found.size) != found.root:
            raise IntegrityError(
                f"the custody log is not the one its signed checkpoint of {found.size} events covers (rewritten?); "
                "nothing was signed or changed: run `evidence-catalog verify`",
                where=f"checkpoint {row.id}",
            )
        return found.size, row
    return 0, None


def check_signed_history(ctx: Context, session: Any, size_before: int) -> None:
    """Refuse to sign when the first *size_before* events (the log before the change being
    signed) are not covered as the catalog leaves them: by a checkpoint signed by the log's
    key, up to the last event under a key that is not encrypted (which signs every
    change), at least up to its key event under an encrypted one (whose changes wait for
    the passphrase).  A log that had no key before this change (it is being made) needs
    none."""
    epochs, _ = log_key_chain(ctx, session)
    if size_before == 0 or (epochs and epochs[0].seq > size_before):
        return  # the log, or its key, is made by this change
    in_force = epoch_at(epochs, size_before)
    covered, _ = signed_prefix(ctx, session, epochs)
    needed = size_before if in_force is None or not in_force.encrypted else in_force.seq
    if in_force is None or covered < needed:
        raise IntegrityError(
            f"custody events {covered + 1} to {size_before} are not covered by a checkpoint signed by the log key, "
            "as this catalog leaves them: they may have been written or rewritten without the key, and signing now "
            "would vouch for them; nothing was signed or changed: run `evidence-catalog verify`",
            where=display_path(ctx.path),
        )
    check_remembered(ctx, session, epochs, size_before)


def check_remembered(ctx: Context, session: Any, epochs: list[KeyEpoch], size: int) -> None:
    """Refuse to sign a log whose first events are not the ones a clean verification under
    this account remembered (outside the catalog, see
    :func:`~evidence_catalog.store.keyfiles.remembered_for`): under an encrypted key, events
    after the newest signed checkpoint left in the catalog would otherwise be signed as whoever
    rewrote them left them."""
    if not epochs:
        return
    try:
        held = remembered_for(ctx.path, epochs[0].name)
    except CheckpointError:
        return  # a damaged memory: verify names it
    if held is None:
        return
    name, public, note, where = held
    if all((name, public) != (e.name, e.public) for e in epochs):
        return  # another log (a new catalog made where an old one was): verify names it
    try:
        found = verify_checkpoint(note, name, public)
    except (CheckpointError, ValueError):
        return  # verify names it
    if found.size <= size and ctx.db.merkle_root(session, found.size) != found.root:
        raise IntegrityError(
            f"the custody log's first {found.size} events are not the ones a verification under this account "
            f"checked ({display_path(where)}): they were rewritten, or an older copy was put back and changed; "
            "nothing was signed or changed: run `evidence-catalog verify` (if an older copy was put back on "
            "purpose, keep that remembered checkpoint with the case file, then remove it)",
            where=display_path(ctx.path),
        )


def change_log_key(ctx: Context, *, passphrase: str | None = None) -> KeyChange:
    """Hand the custody log over to a new Ed25519 key (encrypted with *passphrase*, if given),
    for a key that may have leaked or to start protecting it with a passphrase.

    The key in force signs the hand-over (its signature over
    :func:`~evidence_catalog.checkpoint.key_change_statement` is the ``endorsement`` of the
    ``key.changed`` event), and the checkpoint that ends the change is the new key's first.
    The old private key is then deleted; its public files stay in ``keys/retired/<key id>/``.
    Needs the current key (its passphrase, if it is encrypted).  Killed half-way, the next
    :meth:`open` finishes the move of the key files, or throws away a key that was never
    handed the log.
    """
    common.check_writable(ctx, "; its key cannot be changed")
    old = signing_key(ctx)
    if old is None:
        raise InputError(
            f"the log key is encrypted: give its passphrase (${PASSPHRASE_ENV}) to hand the log to a new key",
            where="change_log_key",
        )
    with ctx.db.read() as session:
        epochs, _ = log_key_chain(ctx, session)
    current = epochs[-1]
    staging = LogKey(ctx.key.log_key.directory / NEXT_KEY_DIR)
    shutil.rmtree(staging.directory, ignore_errors=True)  # a change that never got this far
    try:
        name, public = staging.create(current.name, passphrase or None)
        new = staging.private(passphrase or "", expected=public)
    except OSError as exc:
        raise StorageError(f"cannot create the new key ({exc.strerror})", where=str(staging.directory)) from exc
    new_vkey = vkey(name, public)
    endorsement = old.sign(key_change_statement(current.vkey, new_vkey))
    ctx.key.private = new  # the checkpoint that ends the change is signed by the new key
    try:
        event = ctx.log_event(
            Action.LOG_KEY_CHANGED,
            {
                "origin": name,
                "key_id": key_id(name, public).hex(),
                "vkey": new_vkey,
                "public_key": base64.b64encode(public).decode("ascii"),
                "encrypted": bool(passphrase),
                "previous_key_id": current.key_id,
                "endorsement": base64.b64encode(endorsement).decode("ascii"),
            },
        )
    except BaseException:
        ctx.key.private = old
        shutil.rmtree(staging.directory, ignore_errors=True)
        raise
    install_next_key(ctx, current.key_id)
    from evidence_catalog.results import KeyChange  # the result of a change only: opening needs none

    return KeyChange(
        previous_key_id=current.key_id,
        key_id=key_id(name, public).hex(),
        vkey=new_vkey,
        encrypted=bool(passphrase),
        seq=event.seq,
    )


def install_next_key(ctx: Context, retired_id: str) -> None:
    """Put the key in ``keys/next/`` in place of the one in ``keys/``: the old public files are
    copied to ``keys/retired/<retired_id>/``, then each new file replaces the old one
    (``log.vkey`` last: while ``keys/next/log.vkey`` is there, the move is unfinished), so
    the old private key is gone."""
    folder = ctx.key.log_key.directory
    retired = folder / RETIRED_KEYS_DIR / retired_id
    retired.mkdir(parents=True, exist_ok=True)
    for file_name in (VKEY_FILE, PUBLIC_FILE):
        if not (retired / file_name).exists() and (folder / file_name).exists():
            shutil.copy2(folder / file_name, retired / file_name)
    fsync_dir(retired)
    for file_name in (KEY_FILE, PUBLIC_FILE, VKEY_FILE):
        if (folder / NEXT_KEY_DIR / file_name).exists():
            os.replace(folder / NEXT_KEY_DIR / file_name, folder / file_name)
            fsync_dir(folder)
    shutil.rmtree(folder / NEXT_KEY_DIR, ignore_errors=True)
    ctx.key.log_name = None


def finish_key_change(ctx: Context) -> None:
    """After a :meth:`change_log_key` that was killed: finish moving the new key in when the
    log was handed to it, else throw the unused key away."""
    staging = LogKey(ctx.key.log_key.directory / NEXT_KEY_DIR)
    if not (staging.directory / VKEY_FILE).exists():  # moved last: nothing is left to move
        shutil.rmtree(staging.directory, ignore_errors=True)
        return
    with ctx.db.read() as session:
        epochs, _ = log_key_chain(ctx, session)
    try:
        handed = len(epochs) > 1 and staging.public() == (epochs[-1].name, epochs[-1].public)
    except CatalogError:
        handed = False
    try:
        # log.vkey is moved last: when it is the new key already, the move was finished and
        # what is in next/ is no unfinished move (put there by someone, it replaces nothing).
        finished = ctx.key.log_key.public() == (epochs[-1].name, epochs[-1].public)
    except (CatalogError, IndexError):
        finished = False
    if handed and not finished:
        install_next_key(ctx, epochs[-2].key_id)
    else:
        shutil.rmtree(staging.directory, ignore_errors=True)
