"""A second hostile review of the log's key protection: ways found to get a rewritten log past
`verify` (or to get the catalog itself to sign it) without the log key, and key files that are
not the log's key but still led to signing.

Each test is an attack that worked against the first version of key pinning; the rewrites use
the library's own functions, as in :mod:`tests.test_hostile_log`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog
from evidence_catalog.checkpoint import KeyDamagedError, parse_checkpoint, split_note, vkey
from evidence_catalog.checkpoint import verify as verify_note
from evidence_catalog.errors import CatalogError, EvidenceError, IntegrityError
from evidence_catalog.findings import CheckpointInvalid, EventsUnsigned, KeyFileMismatch
from evidence_catalog.serialize import unstructure
from evidence_catalog.store.keyfiles import PASSPHRASE_ENV, LogKey

from .test_hostile_log import (
    OPERATOR,
    PASSPHRASE,
    add_text,
    database,
    edit_field,
    grow,
    new_catalog,
    rewrite_log,
    state,
)
from .tsa_server import LocalTSA


@pytest.fixture(autouse=True)
def _own_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # no memory of other tests' logs


def edit_actor(docs: list[dict[str, Any]]) -> None:
    """An edit the database's records do not mirror: who did event 4."""
    docs[3]["actor"] = unstructure(Agent(name="Someone Else"))


def made(tmp_path: Path, *, encrypted: bool) -> Path:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=encrypted) as catalog:
        grow(catalog, tmp_path / "files")
    return path


# -- the operator's next change must not sign a log rewritten meanwhile ------------------------


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain key", "encrypted key"])
@pytest.mark.parametrize("checkpoints", ["delete", "unsigned"])
def test_the_next_change_does_not_sign_a_rewritten_log(tmp_path: Path, encrypted: bool, checkpoints: str) -> None:
    # The attacker rewrites the log and drops the checkpoints; the operator, holding the key,
    # then verifies (which logs itself) or adds a file: neither may sign the rewritten log, or
    # the verification after it is green.
    path = made(tmp_path, encrypted=encrypted)
    rewrite_log(path, edit_actor, checkpoints=checkpoints)
    before = state(path)
    passphrase = PASSPHRASE if encrypted else None
    with Catalog.open(path, operator=OPERATOR, key_passphrase=passphrase) as catalog:
        first = catalog.verify(remember=False)
        assert not first.ok
        assert not first.logged and first.unlogged_reason is not None
        with pytest.raises(IntegrityError, match="not covered by a checkpoint signed"):
            add_text(catalog, tmp_path / "files", "new evidence")
        with pytest.raises(IntegrityError, match="not covered by a checkpoint signed"):
            catalog.checkpoint()
    assert state(path) == before  # nothing was signed, stored or logged
    with Catalog.open(path, read_only=True) as catalog:
        assert not catalog.verify(record_event=False, remember=False).ok


def plant_checkpoint(path: Path, note: str, size: int) -> None:
    """Put a genuine signed *note* back into the checkpoint table as its newest row, marked signed
    and said to cover *size* events, as an attacker who kept a copy of it could."""
    with database(path) as db:
        db.execute(
            sa.text(
                "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                " values (:size, :root, :note, true, '2026-03-01 12:00:00')"
            ),
            {"size": size, "note": note, "root": parse_checkpoint(split_note(note)[0]).root.hex()},
        )


def test_the_next_change_does_not_sign_over_a_planted_older_checkpoint(tmp_path: Path) -> None:
    # A valid signed checkpoint of 2 events copied as the newest row: the events after it, which
    # the attacker rewrote, would otherwise be signed by the next change of a plain-key catalog.
    path = made(tmp_path, encrypted=False)
    with database(path) as db:
        [(note,)] = db.execute(sa.text("select note from checkpoint where tree_size = 2")).fetchall()
    rewrite_log(path, edit_actor, checkpoints="delete")
    plant_checkpoint(path, note, 2)
    before = state(path)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        with pytest.raises(IntegrityError, match="not covered by a checkpoint signed"):
            catalog.tag(catalog.record_ids()[0], ["laundered"])
    assert state(path) == before


def test_legitimate_changes_still_sign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The guard lets through what a catalog does on its own: creation, an encrypted key's
    # unsigned tail signed later, a change of key (to and from an encrypted one).
    path = made(tmp_path, encrypted=True)
    with Catalog.open(path, operator=OPERATOR) as catalog:  # no passphrase: unsigned tail
        add_text(catalog, tmp_path / "files", "waits for a signature")
    with Catalog.open(path, operator=OPERATOR, key_passphrase=PASSPHRASE) as catalog:
        catalog.checkpoint()
        catalog.change_log_key()  # to a plain key
        add_text(catalog, tmp_path / "files", "signed by the new key")
        catalog.change_log_key(passphrase="another")
    with Catalog.open(path, operator=OPERATOR) as catalog:
        add_text(catalog, tmp_path / "files", "unsigned again")
    with Catalog.open(path, operator=OPERATOR, key_passphrase="another") as catalog:
        assert catalog.checkpoint().signed
        report = catalog.verify(remember=False)
        assert report.ok and report.logged, report.findings


# -- an allowed unsigned tail is only a tail an encrypted key leaves ---------------------------


def test_an_unsigned_tail_is_not_allowed_under_a_plain_key(tmp_path: Path) -> None:
    path = made(tmp_path, encrypted=False)
    rewrite_log(path, edit_actor, checkpoints="delete")
    with Catalog.open(path, read_only=True) as catalog:
        report = catalog.verify(record_event=False, remember=False, allow_unsigned=True)
    assert EventsUnsigned(first_seq=1, count=6) in report.findings
    assert not report.ok


def test_an_unsigned_tail_must_start_after_a_signed_key_event(tmp_path: Path) -> None:
    # An encrypted key leaves events unsigned only after a checkpoint it signed (one is signed
    # when the key is made): a log none of whose events is signed is no tail between signings.
    path = made(tmp_path, encrypted=True)
    rewrite_log(path, edit_actor, checkpoints="unsigned")
    with Catalog.open(path, read_only=True) as catalog:
        report = catalog.verify(record_event=False, remember=False, allow_unsigned=True)
    assert EventsUnsigned(first_seq=1, count=6) in report.findings


def test_an_unsigned_tail_is_not_allowed_when_the_key_event_was_made_to_say_encrypted(tmp_path: Path) -> None:
    path = made(tmp_path, encrypted=False)

    def claim_encrypted(docs: list[dict[str, Any]]) -> None:
        docs[0]["details"]["log"]["encrypted"] = True
        edit_actor(docs)

    rewrite_log(path, claim_encrypted, checkpoints="delete")
    with Catalog.open(path, read_only=True) as catalog:
        assert not catalog.verify(record_event=False, remember=False, allow_unsigned=True).ok


def test_an_unsigned_tail_is_not_allowed_when_no_event_names_the_key(tmp_path: Path) -> None:
    # catalog.created without its `log` member reads as a catalog from before logs had keys.
    path = made(tmp_path, encrypted=True)

    def forget_the_key(docs: list[dict[str, Any]]) -> None:
        del docs[0]["details"]["log"]
        edit_actor(docs)

    rewrite_log(path, forget_the_key, checkpoints="delete")
    with Catalog.open(path, read_only=True) as catalog:
        assert not catalog.verify(record_event=False, remember=False, allow_unsigned=True).ok


# -- key files that are not the log's key sign nothing -------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "the operator's passphrase of other catalogs"])
def test_an_encrypted_key_file_in_place_of_a_plain_key_signs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str | None
) -> None:
    # Without a passphrase an encrypted key cannot be checked; but the log says its key is not
    # encrypted, so this one is not it: no silent unsigned checkpoints.  With a passphrase that
    # does not open it (set for other catalogs), the catalog still opens, to be verified.
    path = made(tmp_path, encrypted=False)
    other = LogKey(tmp_path / "other")
    other.create(LogKey(path / "keys").public()[0], "their passphrase")
    shutil.copy(other.directory / "log.key", path / "keys" / "log.key")
    before = state(path)
    if passphrase is not None:
        monkeypatch.setenv(PASSPHRASE_ENV, passphrase)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        with pytest.raises(KeyDamagedError, match="encrypted"):
            add_text(catalog, tmp_path / "files", "new evidence")
        findings = catalog.verify(record_event=False, remember=False).findings
    assert [f.path for f in findings if isinstance(f, KeyFileMismatch)] == ["keys/log.key"], findings
    assert state(path) == before


def test_a_replaced_vkey_file_signs_nothing(tmp_path: Path) -> None:
    path = made(tmp_path, encrypted=False)
    _, public = LogKey(path / "keys").public()
    (path / "keys" / "log.vkey").write_text(vkey("evidence-catalog/another-log", public) + "\n", encoding="ascii")
    before = state(path)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        with pytest.raises(KeyDamagedError):
            add_text(catalog, tmp_path / "files", "new evidence")
    assert state(path) == before


# -- `checkpoint` hands out only a checkpoint the log's key signed over the whole log ------------


def test_checkpoint_does_not_hand_out_a_planted_note(tmp_path: Path) -> None:
    # A row claiming to cover the whole log, holding an older (valid) note: `checkpoint
    # --output` would give the user a note of 2 events as the outside copy of 6.
    path = made(tmp_path, encrypted=False)
    with database(path) as db:
        size = db.execute(sa.text("select max(tree_size) from checkpoint")).scalar_one()
        db.execute(
            sa.text(
                "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                " select :size, root_hash, note, signed, created_at from checkpoint where tree_size = 2"
            ),
            {"size": size},
        )
    with Catalog.open(path, operator=OPERATOR) as catalog:
        info = catalog.checkpoint()
        name, public = LogKey(path / "keys").public()
        assert verify_note(info.note, name, public).size == size == info.size
        findings = catalog.verify(record_event=False, remember=False).findings
    # The planted row is named for what it is; the log is covered by the true checkpoint.
    [planted] = findings
    assert isinstance(planted, CheckpointInvalid) and "covers 2" in planted.reason, findings


def test_no_stray_environment() -> None:
    assert PASSPHRASE_ENV not in os.environ


# -- what only a copy held elsewhere shows (documented in docs/verification.md) -----------------


def make_anew(path: Path, key: LogKey, edit: Any) -> None:
    """The whole log made again from its first event, naming *key* (the forger's own), with the
    database's records made to agree, and the key files replaced: a catalog that agrees with
    itself in every respect."""

    def rename_key(docs: list[dict[str, Any]]) -> None:
        name, public = key.public()
        docs[0]["details"]["log"].update(vkey=vkey(name, public), key_id=vkey(name, public).split("+")[1])
        edit(docs)

    rewrite_log(path, rename_key, checkpoints="resign", other_key=key.private())
    shutil.rmtree(path / "keys")
    shutil.copytree(key.directory, path / "keys")


def test_a_log_made_anew_with_another_key_is_caught_by_a_checkpoint_held_elsewhere(tmp_path: Path) -> None:
    path = made(tmp_path, encrypted=False)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        outside = catalog.checkpoint().note  # `checkpoint --output FILE`, kept elsewhere
        assert catalog.verify(record_event=False).ok  # remembered under this account
    forger = LogKey(tmp_path / "forger")
    forger.create(LogKey(path / "keys").public()[0])
    make_anew(path, forger, edit_actor)
    with Catalog.open(path, read_only=True) as catalog:
        # On its own (another computer, another account) the new log cannot be told from the
        # old: it names its key in its first event, as every log does.
        assert catalog.verify(record_event=False, remember=False).ok
        # A checkpoint held elsewhere is checked with the key the log names now: not its key.
        given = catalog.verify(record_event=False, remember=False, checkpoints=[("outside", outside)])
        assert any(isinstance(f, CheckpointInvalid) and f.source == "outside" for f in given.findings)
        remembered = catalog.verify(record_event=False)
        assert any("log's key was replaced" in str(f) for f in remembered.findings), remembered.findings


def test_a_key_kept_after_it_was_handed_over_can_rewrite_from_the_hand_over_unless_a_later_checkpoint_is_held(
    tmp_path: Path,
) -> None:
    # The reason for changing a key is that it may have leaked; whoever holds it can drop the
    # hand-over and every event after it, and sign the rest again.
    path = made(tmp_path, encrypted=False)
    leaked = LogKey(tmp_path / "leaked")
    shutil.copytree(path / "keys", leaked.directory)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        change = catalog.change_log_key()
        add_text(catalog, tmp_path / "files", "after the change")
        outside = catalog.checkpoint().note  # signed by the new key: send it out

    def drop_the_hand_over(docs: list[dict[str, Any]]) -> None:
        del docs[change.seq - 1 :]

    rewrite_log(path, drop_the_hand_over, checkpoints="resign", other_key=leaked.private())
    shutil.rmtree(path / "keys")
    shutil.copytree(leaked.directory, path / "keys")
    with Catalog.open(path, read_only=True) as catalog:
        # (The record added after the change is still in the database here; a forger would
        # remove it too.)  The checkpoint the new key signed, held elsewhere, is not the log's now.
        given = catalog.verify(record_event=False, remember=False, checkpoints=[("outside", outside)])
        assert any(isinstance(f, CheckpointInvalid) and f.source == "outside" for f in given.findings)


def test_an_encrypted_keys_tail_rewritten_under_a_remembered_checkpoint_is_not_signed(tmp_path: Path) -> None:
    # The attacker leaves the first signed checkpoint (over the key event) and removes the rest,
    # so that everything after it is an unsigned tail an encrypted key could have left; the
    # checkpoint a clean verification remembered under the operator's account says otherwise.
    path = made(tmp_path, encrypted=True)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        assert catalog.verify(record_event=False).ok  # remembered
    with database(path) as db:
        [(note,)] = db.execute(sa.text("select note from checkpoint where tree_size = 1")).fetchall()
    rewrite_log(path, edit_actor, checkpoints="delete")
    plant_checkpoint(path, note, 1)
    before = state(path)
    with Catalog.open(path, operator=OPERATOR, key_passphrase=PASSPHRASE) as catalog:
        with pytest.raises(IntegrityError, match="a verification under this account"):
            catalog.checkpoint()
        with pytest.raises(IntegrityError, match="a verification under this account"):
            add_text(catalog, tmp_path / "files", "new evidence")
    assert state(path) == before


@pytest.mark.parametrize("remembered", [False, True], ids=["signed checkpoints left", "verified here before"])
def test_a_log_stripped_of_its_key_is_not_given_a_new_one(tmp_path: Path, remembered: bool) -> None:
    # Made to look like a catalog from before logs had keys (no key event, no keys/ folder), the
    # rewritten log would get a key of its own when next opened, and be signed by the operator's
    # own catalog.  Signed checkpoints left in it, or a verification of this folder remembered
    # under this account, show that it had one.
    path = made(tmp_path, encrypted=False)
    if remembered:
        with Catalog.open(path, operator=OPERATOR) as catalog:
            assert catalog.verify(record_event=False).ok

    def forget_the_key(docs: list[dict[str, Any]]) -> None:
        del docs[0]["details"]["log"]
        edit_actor(docs)

    with database(path) as db:
        kept = db.execute(sa.text("select tree_size, root_hash, note, signed, created_at from checkpoint")).fetchall()
    rewrite_log(path, forget_the_key, checkpoints="delete")
    if not remembered:
        with database(path) as db:  # the old checkpoints put back (they no longer match)
            for row in kept:
                db.execute(
                    sa.text(
                        "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                        " values (:tree_size, :root_hash, :note, :signed, :created_at)"
                    ),
                    dict(row._mapping),
                )
    shutil.rmtree(path / "keys")
    before = state(path)
    with pytest.raises(CatalogError, match="names no key"):
        Catalog.open(path, operator=OPERATOR)
    assert state(path) == before and not (path / "keys").exists()


def test_files_put_in_keys_next_after_a_finished_change_replace_nothing(tmp_path: Path) -> None:
    # keys/next/ is where a change of key that was killed half-way is finished from; after a
    # finished one, files put there (the log's verifier key beside another private key) must not
    # be moved over the log's key.
    path = made(tmp_path, encrypted=False)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        catalog.change_log_key()
    key_pem = (path / "keys" / "log.key").read_bytes()
    other = LogKey(tmp_path / "other")
    other.create(LogKey(path / "keys").public()[0])
    (path / "keys" / "next").mkdir()
    shutil.copy(path / "keys" / "log.vkey", path / "keys" / "next" / "log.vkey")
    shutil.copy(other.directory / "log.key", path / "keys" / "next" / "log.key")
    with Catalog.open(path, operator=OPERATOR) as catalog:
        assert not (path / "keys" / "next").exists()
        assert (path / "keys" / "log.key").read_bytes() == key_pem
        add_text(catalog, tmp_path / "files", "signed by the log's key")
        assert catalog.verify(record_event=False, remember=False).ok


def test_a_new_catalog_made_where_a_verified_one_was_can_be_worked_in(tmp_path: Path) -> None:
    # The memory of another log verified in the same folder is no reason to refuse a change.
    path = made(tmp_path, encrypted=False)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        assert catalog.verify(record_event=False).ok
    shutil.rmtree(path)
    with new_catalog(path, encrypted=False) as catalog:
        for i in range(8):
            add_text(catalog, tmp_path / "new files", f"new catalog, file {i}")


# -- property: whatever the rewrite, the operator's next work does not make it green -----------


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    encrypted=st.booleans(),
    target=st.integers(min_value=0, max_value=100),
    field=st.sampled_from(["actor", "at", "subject", "details"]),
    checkpoints=st.sampled_from(["delete", "unsigned", "signed", "resign"]),
    allow_unsigned=st.booleans(),
)
def test_no_rewrite_without_the_key_is_laundered_by_the_operators_next_change(
    encrypted: bool, target: int, field: str, checkpoints: str, allow_unsigned: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        path = root / "catalog"
        with new_catalog(path, encrypted=encrypted) as catalog:
            grow(catalog, root / "files", 2)
            n = len(catalog.history())
        other = LogKey(root / "other")
        other.create("evidence-catalog/other")
        rewrite_log(path, edit_field(target % n, field), checkpoints=checkpoints, other_key=other.private())
        passphrase = PASSPHRASE if encrypted else None
        with Catalog.open(path, operator=OPERATOR, key_passphrase=passphrase) as catalog:
            catalog.verify(remember=False)  # logged, if the catalog signs it
            with contextlib.suppress(EvidenceError):
                add_text(catalog, root / "files", "the operator's next file")
            with contextlib.suppress(EvidenceError):
                catalog.checkpoint()
        with Catalog.open(path, read_only=True) as catalog:
            assert not catalog.verify(record_event=False, remember=False, allow_unsigned=allow_unsigned).ok


def test_an_older_checkpoint_given_a_newer_id_does_not_hide_the_one_that_covers_the_log(tmp_path: Path) -> None:
    # Fail-closed before, but a false alarm `checkpoint` could not clear: verify took the newest
    # row for the one that covers most, while `checkpoint` (rightly) found the log covered.
    path = made(tmp_path, encrypted=False)
    with database(path) as db:
        db.execute(
            sa.text(
                "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                " select tree_size, root_hash, note, signed, created_at from checkpoint where tree_size = 2"
            )
        )
    with Catalog.open(path, operator=OPERATOR) as catalog:
        assert catalog.verify(record_event=False, remember=False).ok
        assert catalog.checkpoint().size == len(catalog.history())


def test_a_time_stamp_is_kept_with_the_checkpoint_it_stamps(tmp_path: Path) -> None:
    # With an older note copied into a newer row, the token was filed under that row (the
    # newest) though it stamps the checkpoint handed out: a mismatch verify then reported.
    path = made(tmp_path, encrypted=False)
    with database(path) as db:
        db.execute(
            sa.text(
                "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                " select tree_size, root_hash, note, signed, created_at from checkpoint where tree_size = 2"
            )
        )
    with LocalTSA() as tsa, Catalog.open(path, operator=OPERATOR) as catalog:
        result = catalog.timestamp(url=tsa.url)
        assert result.granted, result
        report = catalog.verify(record_event=False, remember=False)
        assert report.ok, report.findings


def test_fsck_remove_on_a_log_it_cannot_sign_deletes_nothing(tmp_path: Path) -> None:
    # The removal is logged; when the log cannot be signed, nothing must be deleted unlogged.
    path = made(tmp_path, encrypted=False)
    orphan = path / "blobs" / "sha256" / "00" / "00" / ("00" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"bytes no record claims")
    rewrite_log(path, edit_actor, checkpoints="delete")
    before = state(path)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        assert catalog.fsck().orphaned_blobs
        with pytest.raises(IntegrityError, match="not covered by a checkpoint signed"):
            catalog.fsck(remove=True, grace_seconds=0)
    assert orphan.exists() and state(path) == before
