"""A hostile party who can write the catalog's database and files, but does not hold the log key
(or its passphrase), tries to rewrite the custody log so that `verify` stays green.

Every rewrite here is made with the library's own functions (event hashes, Merkle leaves and
roots, checkpoint notes), the way a careful attacker would; each must be found, for a catalog
whose key is encrypted and for one whose key is not.  And the key itself: a wrong passphrase, a
damaged or replaced key file is refused loudly, before anything changes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, merkle
from evidence_catalog.checkpoint import Checkpoint, KeyDamagedError, key_chain, key_change_statement, sign, vkey
from evidence_catalog.custody import document_hash, event_leaf
from evidence_catalog.errors import InputError
from evidence_catalog.findings import (
    CheckpointInvalid,
    CheckpointUnsigned,
    EventsUnsigned,
    KeyChangeInvalid,
    KeyFileMismatch,
)
from evidence_catalog.interchange.import_provenance import UnsignedProvenanceError
from evidence_catalog.operations import log_key as log_key_operations
from evidence_catalog.serialize import unstructure
from evidence_catalog.store.keyfiles import PASSPHRASE_ENV, LogKey

from .conftest import FixedClock, raw_database
from .test_checkpoints import add_file as add_text
from .test_hostile_import import reseal

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_passphrase_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


def new_catalog(path: Path, *, encrypted: bool) -> Catalog:
    return Catalog.init(path, operator=OPERATOR, clock=FixedClock(), key_passphrase=PASSPHRASE if encrypted else None)


def grow(catalog: Catalog, folder: Path, steps: int = 3) -> list[str]:
    records = [add_text(catalog, folder, f"file {i}") for i in range(steps)]
    catalog.tag(records[0], ["school"])
    catalog.add_note(records[-1], "the caller's phone number is +380 00 000 0000")
    return records


@contextmanager
def database(catalog_path: Path) -> Iterator[sa.Connection]:
    with raw_database(catalog_path, foreign_keys=False) as connection:
        yield connection


def documents(catalog_path: Path) -> list[dict[str, Any]]:
    with Catalog.open(catalog_path, read_only=True) as catalog:
        with catalog.db.read() as session:
            return list(catalog.db.event_documents(session))


def rewrite_log(
    catalog_path: Path, edit: Any, *, checkpoints: str, other_key: Any = None, truncate_to: int | None = None
) -> None:
    """Apply *edit* to the event documents, then recompute every hash, link and Merkle node with
    the library's functions and deal with the kept checkpoints as *checkpoints* says:
    ``delete`` them all, replace them by ``unsigned`` ones over the right roots, ``resign`` them
    with *other_key*, or mark unsigned ones ``signed`` (a lie the attacker can write)."""
    docs = documents(catalog_path)
    edit(docs)
    if truncate_to is not None:
        docs = docs[:truncate_to]
    previous = "0" * 64
    for seq, document in enumerate(docs, start=1):
        document["seq"] = seq
        document["prev_hash"] = previous
        document["hash"] = previous = document_hash(document)
    leaves = [event_leaf(d) for d in docs]
    tree = merkle.perfect_from_leaves(leaves)
    root = merkle.root(tree, len(leaves))
    origin = LogKey(catalog_path / "keys").public()[0]
    with database(catalog_path) as db:
        db.execute(sa.text("delete from custody_event"))
        for d in docs:
            db.execute(
                sa.text(
                    "insert into custody_event (seq, at, actor, action, subject, prev_hash, hash, details)"
                    " values (:seq, :at, :actor, :action, :subject, :prev_hash, :hash, :details)"
                ),
                {**d, "actor": json.dumps(d["actor"]), "details": json.dumps(d["details"])},
            )
        db.execute(sa.text("delete from merkle_node"))
        level = 0
        while (1 << level) <= len(leaves):
            for index in range(len(leaves) >> level):
                db.execute(
                    sa.text("insert into merkle_node (level, idx, hash) values (:level, :idx, :hash)"),
                    {"level": level, "idx": index, "hash": tree(level, index).hex()},
                )
            level += 1
        [created_at] = db.execute(sa.text("select max(created_at) from checkpoint")).fetchone() or [None]
        db.execute(sa.text("delete from timestamp_token"))
        db.execute(sa.text("delete from checkpoint"))
        if checkpoints == "delete":
            return
        body = Checkpoint(origin=origin, size=len(leaves), root=root)
        note = sign(body, other_key) if checkpoints == "resign" else body.body()
        db.execute(
            sa.text(
                "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                " values (:size, :root, :note, :signed, :at)"
            ),
            {
                "size": len(leaves),
                "root": root.hex(),
                "note": note,
                "signed": checkpoints != "unsigned",
                "at": created_at,
            },
        )


def edit_note(docs: list[dict[str, Any]]) -> None:
    for document in docs:
        if document["action"] == "note.added":
            document["details"]["note"]["text"] = "nothing to see here"


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain key", "encrypted key"])
@pytest.mark.parametrize("checkpoints", ["delete", "unsigned", "signed"])
def test_a_rewritten_log_without_the_key_never_verifies(tmp_path: Path, encrypted: bool, checkpoints: str) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=encrypted) as catalog:
        grow(catalog, tmp_path / "files")
        if encrypted:
            assert catalog.verify(record_event=False).ok  # everything signed while the key was open
    rewrite_log(path, edit_note, checkpoints=checkpoints)
    with Catalog.open(path, read_only=True) as catalog:
        [record] = [r for r in catalog.record_ids() if catalog.record(r).notes]
        assert catalog.record(record).notes[0].text != "nothing to see here"  # database untouched
        report = catalog.verify(record_event=False)
        assert not report.ok
        assert any(isinstance(f, EventsUnsigned) for f in report.findings), report.findings
        # Allowing an unsigned tail does not make a rewritten log of a plain key pass: such a
        # catalog never writes an unsigned checkpoint, nor leaves events uncovered.
        if not encrypted or checkpoints == "signed":
            assert not catalog.verify(record_event=False, allow_unsigned=True).ok


def test_unsigned_checkpoints_under_a_plain_key_are_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, tmp_path / "files")
        size = len(catalog.history())
    with database(path) as db:  # an unsigned checkpoint written beside the signed ones
        db.execute(
            sa.text(
                "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
                " select tree_size, root_hash, :note, false, created_at from checkpoint where tree_size = 2"
            ),
            {"note": "x\n2\nAAAA\n"},
        )
    with Catalog.open(path, read_only=True) as catalog:
        findings = catalog.verify(record_event=False).findings
    assert CheckpointUnsigned(count=1, first_size=2) in findings
    assert size == 6


def test_another_key_cannot_take_the_log_over(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, tmp_path / "files")
    intruder = LogKey(tmp_path / "intruder")
    origin = LogKey(path / "keys").public()[0]
    intruder.create(origin)
    theirs = intruder.private()
    # Re-signed by another key: the log's first event names the real one.
    rewrite_log(path, edit_note, checkpoints="resign", other_key=theirs)
    with Catalog.open(path, read_only=True) as catalog:
        findings = catalog.verify(record_event=False).findings
    assert any(isinstance(f, CheckpointInvalid) and "not signed by the log key" in f.reason for f in findings)
    assert EventsUnsigned(first_seq=1, count=6) in findings

    # A key change the old key never signed: refused, and the new key's checkpoints with it.
    def hand_over(docs: list[dict[str, Any]]) -> None:
        last = docs[-1]
        docs.append(
            {
                **last,
                "action": "key.changed",
                "subject": "catalog",
                "details": {
                    "vkey": vkey(origin, intruder.public()[1]),
                    "encrypted": False,
                    "endorsement": "AAAA",
                },
            }
        )

    rewrite_log(path, hand_over, checkpoints="resign", other_key=theirs)
    shutil.rmtree(path / "keys")
    shutil.copytree(intruder.directory, path / "keys")
    with Catalog.open(path, read_only=True) as catalog:
        findings = catalog.verify(record_event=False).findings
    assert any(isinstance(f, KeyChangeInvalid) and f.seq == 7 for f in findings), findings
    assert {f.path for f in findings if isinstance(f, KeyFileMismatch)} == {
        "keys/log.vkey",
        "keys/log.pub",
        "keys/log.key",
    }
    assert EventsUnsigned(first_seq=1, count=7) in findings


def test_a_key_change_signed_by_the_key_in_force_is_accepted() -> None:
    with tempfile.TemporaryDirectory() as directory:
        old, new = LogKey(Path(directory) / "old"), LogKey(Path(directory) / "new")
        old.create("evidence-catalog/x")
        new.create("evidence-catalog/x")
        old_vkey, new_vkey = vkey(*old.public()), vkey(*new.public())
        endorsement = old.private().sign(key_change_statement(old_vkey, new_vkey))
        docs = [
            {"seq": 1, "action": "catalog.created", "details": {"log": {"vkey": old_vkey, "encrypted": False}}},
            {
                "seq": 5,
                "action": "key.changed",
                "details": {"vkey": new_vkey, "encrypted": True, "endorsement": base64.b64encode(endorsement).decode()},
            },
        ]
        epochs, problems = key_chain(docs)
        assert problems == []
        assert [(e.seq, e.public, e.encrypted) for e in epochs] == [
            (1, old.public()[1], False),
            (5, new.public()[1], True),
        ]
        # The same statement signed by the new key itself is no hand-over.
        docs[1]["details"]["endorsement"] = base64.b64encode(
            new.private().sign(key_change_statement(old_vkey, new_vkey))
        ).decode()
        epochs, problems = key_chain(docs)
        assert len(epochs) == 1 and problems and problems[0][0] == 5


# -- the key itself --------------------------------------------------------------------------


def state(path: Path) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
    """What a refused change must leave as it was: the events, the checkpoints, the blobs."""
    with database(path) as db:
        events = [row[0] for row in db.execute(sa.text("select hash from custody_event order by seq"))]
        kept = [tuple(row) for row in db.execute(sa.text("select tree_size, note, signed from checkpoint order by id"))]
    blobs = sorted(str(p.relative_to(path)) for p in (path / "blobs").rglob("*") if p.is_file())
    return events, kept, blobs


def test_a_wrong_passphrase_is_refused_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=True) as catalog:
        grow(catalog, tmp_path / "files")
    before = state(path)
    photo = tmp_path / "new.txt"
    photo.write_text("new evidence", encoding="utf-8")
    with pytest.raises(InputError, match="passphrase does not open the log key"):
        Catalog.open(path, key_passphrase="wrong")
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    result = run_cli("add", "--catalog", path, photo)
    assert result.code != 0
    assert "passphrase does not open the log key" in result.err
    assert "Traceback" not in result.err
    assert state(path) == before
    # The right one works, and without any the change waits for a signature, as before.
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    assert run_cli("add", "--catalog", path, photo).code == 0
    with Catalog.open(path, read_only=True) as catalog:
        assert catalog.verify(record_event=False).ok


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key", "removed"])
def test_a_damaged_or_replaced_key_file_signs_nothing_and_is_a_finding(
    tmp_path: Path, damage: str, run_cli: Any
) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, tmp_path / "files")
    key_file = path / "keys" / "log.key"
    if damage == "garbage":
        key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    elif damage == "truncated":
        key_file.write_bytes(key_file.read_bytes()[:60])
    elif damage == "other key":
        other = LogKey(tmp_path / "other")
        other.create("evidence-catalog/other")
        shutil.copy(other.directory / "log.key", key_file)
    else:
        key_file.unlink()
    before = state(path)
    extra = tmp_path / "more.txt"
    extra.write_text("more", encoding="utf-8")
    with Catalog.open(path) as catalog:
        if damage == "removed":
            # A copy without the private key is for reading and verifying: nothing to report.
            assert catalog.verify(record_event=False).ok
            with pytest.raises(KeyDamagedError):
                catalog.add([extra])
        else:
            findings = catalog.verify(record_event=False).findings
            assert [f.path for f in findings if isinstance(f, KeyFileMismatch)] == ["keys/log.key"], findings
            with pytest.raises(KeyDamagedError):
                catalog.add([extra])
    assert state(path) == before
    result = run_cli("verify", "--catalog", path)
    if damage != "removed":
        assert result.code == 1
        assert any(line.startswith("PROBLEM keys/log.key: ") for line in result.out.splitlines())
    assert "not logged" in result.err and "log key" in result.err
    assert state(path)[0] == before[0]  # the verification could not be logged: nothing signs it


def test_checkpoint_says_encrypted_only_when_it_is(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, locked = tmp_path / "plain", tmp_path / "locked"
    new_catalog(plain, encrypted=False).close()
    new_catalog(locked, encrypted=True).close()
    monkeypatch.setenv(PASSPHRASE_ENV, "a passphrase a plain key does not need")
    assert run_cli("checkpoint", "--catalog", plain).code == 0
    monkeypatch.delenv(PASSPHRASE_ENV)
    with Catalog.open(locked) as catalog:
        add_text(catalog, tmp_path / "files", "unsigned for now")
    result = run_cli("checkpoint", "--catalog", locked)
    assert result.code != 0 and "encrypted" in result.err


# -- property: random rewrites ---------------------------------------------------------------


def edit_field(pick: int, field: str) -> Any:
    """An edit of event *pick* (0-based) for :func:`rewrite_log`: its ``actor``, ``at``,
    ``subject`` or ``details`` changed, as a forger without the key might change it."""

    def edit(docs: list[dict[str, Any]]) -> None:
        document = docs[pick]
        if field == "actor":
            document["actor"] = unstructure(Agent(name="Someone Else"))
        elif field == "at":
            document["at"] = "2020-01-01T00:00:00Z"
        elif field == "subject":
            document["subject"] = document["subject"] + "x"
        else:
            document["details"] = {**document["details"], "injected": True}

    return edit


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    encrypted=st.booleans(),
    steps=st.integers(min_value=1, max_value=3),
    target=st.integers(min_value=0, max_value=100),
    field=st.sampled_from(["actor", "at", "subject", "details"]),
    checkpoints=st.sampled_from(["delete", "unsigned", "signed", "resign"]),
    truncate=st.booleans(),
)
def test_any_rewrite_without_the_key_is_caught(
    encrypted: bool, steps: int, target: int, field: str, checkpoints: str, truncate: bool
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        path = root / "catalog"
        with new_catalog(path, encrypted=encrypted) as catalog:
            grow(catalog, root / "files", steps)
            n = len(catalog.history())
        other = LogKey(root / "other")
        other.create("evidence-catalog/other")
        pick = target % n
        rewrite_log(
            path,
            edit_field(pick, field),
            checkpoints=checkpoints,
            other_key=other.private(),
            truncate_to=pick + 1 if truncate else None,
        )
        with Catalog.open(path, read_only=True) as catalog:
            assert not catalog.verify(record_event=False).ok


# -- changing the key ------------------------------------------------------------------------


def test_the_key_in_force_hands_the_log_to_a_new_key(tmp_path: Path, run_cli: Any) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, tmp_path / "files")
    old_key_pem = (path / "keys" / "log.key").read_bytes()
    old_vkey = (path / "keys" / "log.vkey").read_text(encoding="ascii").strip()
    result = run_cli("change-key", "--catalog", path, "--json")
    assert result.code == 0, result.err
    change = json.loads(result.out)
    assert (path / "keys" / "log.vkey").read_text(encoding="ascii").strip() == change["vkey"] != old_vkey
    assert (path / "keys" / "retired" / change["previous_key_id"] / "log.vkey").read_text().strip() == old_vkey
    assert not (path / "keys" / "retired" / change["previous_key_id"] / "log.key").exists()
    assert not (path / "keys" / "next").exists()
    with Catalog.open(path) as catalog:
        [event] = [e for e in catalog.history() if e.action == "key.changed"]
        assert event.seq == change["seq"] and event.details["previous_key_id"] == change["previous_key_id"]
        add_text(catalog, tmp_path / "files", "after the change")
        assert catalog.verify(record_event=False).ok
        latest = catalog.checkpoint()
    assert latest.note.count("\u2014 ") == 1 and change["key_id"] in (path / "keys" / "log.vkey").read_text()

    # Whoever kept the old key cannot sign for the log any more: put back, it signs nothing...
    (path / "keys" / "log.key").write_bytes(old_key_pem)
    shutil.copy(path / "keys" / "retired" / change["previous_key_id"] / "log.vkey", path / "keys" / "log.vkey")
    shutil.copy(path / "keys" / "retired" / change["previous_key_id"] / "log.pub", path / "keys" / "log.pub")
    with Catalog.open(path) as catalog:
        with pytest.raises(KeyDamagedError, match="earlier key of the log, handed over to key"):
            add_text(catalog, tmp_path / "files", "with the old key")
        # ...and checkpoints it signs after the change are not the log's.
        old_private = LogKey(path / "keys").private()
    origin = old_vkey.split("+")[0]

    def append(docs: list[dict[str, Any]]) -> None:
        docs.append({**docs[-1], "action": "note.added", "details": docs[-1]["details"]})

    rewrite_log(path, append, checkpoints="resign", other_key=old_private)
    with Catalog.open(path, read_only=True) as catalog:
        findings = catalog.verify(record_event=False, remember=False).findings
    assert any(isinstance(f, CheckpointInvalid) for f in findings), findings
    assert any(isinstance(f, EventsUnsigned) for f in findings), findings
    assert origin.startswith("evidence-catalog/")


def test_changing_to_an_encrypted_key_then_signing_needs_its_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, tmp_path / "files")
        change = catalog.change_log_key(passphrase="new secret")
        assert change.encrypted
    assert (path / "keys" / "log.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with Catalog.open(path) as catalog:
        add_text(catalog, tmp_path / "files", "waits for a signature")
        assert catalog.verify(record_event=False).findings == (EventsUnsigned(first_seq=change.seq + 1, count=1),)
        with pytest.raises(InputError, match="encrypted"):
            catalog.change_log_key()
    with Catalog.open(path, key_passphrase="new secret") as catalog:
        catalog.checkpoint()
        assert catalog.verify(record_event=False).ok


def test_a_change_of_key_killed_half_way_is_finished_or_undone_on_open(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, tmp_path / "files")
    keys = path / "keys"
    before = state(path)
    # Killed before the event committed: the new key was never handed the log; it goes.
    staged = LogKey(keys / "next")
    staged.create(LogKey(keys).public()[0])
    with Catalog.open(path) as catalog:
        assert not (keys / "next").exists()
        assert catalog.verify(record_event=False).ok
    assert state(path)[0] == before[0]
    # Killed after it committed, with only log.key moved: the move is finished.
    with Catalog.open(path) as catalog, pytest.MonkeyPatch.context() as patch:

        def only_the_private_key(ctx: object, retired_id: str) -> None:
            os.replace(keys / "next" / "log.key", keys / "log.key")
            raise KeyboardInterrupt

        patch.setattr(log_key_operations, "install_next_key", only_the_private_key)  # killed mid-move
        with pytest.raises(KeyboardInterrupt):
            catalog.change_log_key()
    assert (keys / "next" / "log.vkey").exists()
    with Catalog.open(path) as catalog:
        assert not (keys / "next").exists()
        add_text(catalog, tmp_path / "files", "signed by the new key")
        assert catalog.verify(record_event=False).ok


@pytest.mark.parametrize("selection", ["whole catalog", "one record"])
def test_an_export_signed_after_a_change_of_key_imports_with_the_new_key(tmp_path: Path, selection: str) -> None:
    path, partner = tmp_path / "catalog", tmp_path / "partner"
    with new_catalog(path, encrypted=False) as catalog:
        records = grow(catalog, tmp_path / "files")
        change = catalog.change_log_key()
        catalog.tag(records[1], ["after the change"])
        chosen = None if selection == "whole catalog" else [records[1]]
        catalog.export(tmp_path / "bag", format="bagit", record_ids=chosen)
    with new_catalog(partner, encrypted=False) as other:
        result = other.import_records(tmp_path / "bag")
        assert not result.unsigned
        assert result.log_key_id == change.key_id
        assert other.verify(record_event=False).ok
    # A hand-over the old key did not sign is no hand-over: the bag's checkpoint is then unsigned.
    changes = tmp_path / "bag" / "data" / "log" / "key-changes.jsonl"
    if selection == "one record":
        assert changes.exists()
        lines = [json.loads(line) for line in changes.read_text(encoding="utf-8").splitlines()]
        assert [line["action"] for line in lines] == ["key.changed"]
        lines[0]["details"]["endorsement"] = base64.b64encode(bytes(64)).decode()
        lines[0]["hash"] = document_hash(lines[0])  # as a careful forger would
        changes.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        reseal(tmp_path / "bag")
        again = tmp_path / "again"
        with new_catalog(again, encrypted=False) as other:
            with pytest.raises(UnsignedProvenanceError, match="declares a log key that is not accepted"):
                other.import_records(tmp_path / "bag")
