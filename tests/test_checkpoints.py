"""Signed checkpoints of the custody log: their exact format and signature (checked with the real
``openssl``), the log key, a checkpoint after every change, inclusion and consistency proofs,
and verification that finds a log edited, rolled back or rewritten under a checkpoint held
outside the catalog.

Everything runs on real catalogs in temporary folders; tampering is done the way an attacker
with access would do it: with plain SQL on the catalog's database and by replacing ``keys/``.  The
Merkle tree hashes are recomputed here independently (RFC 6962, SHA-256, RFC 8785 JSON) rather
than through :mod:`evidence_catalog.merkle`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import rfc8785
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, LogKeyInfo, merkle
from evidence_catalog.checkpoint import Checkpoint, KeyDamagedError, parse_checkpoint, sign
from evidence_catalog.custody import make_event
from evidence_catalog.errors import CatalogError, InputError
from evidence_catalog.findings import (
    BrokenLink,
    CheckpointInvalid,
    CheckpointMismatch,
    EventEdited,
    EventMissing,
    EventsUnsigned,
    Finding,
    KeyFileMismatch,
    LogRolledBack,
    MerkleLeafMismatch,
)
from evidence_catalog.serialize import unstructure
from evidence_catalog.store.database import HEAD_REVISION, _alembic_config
from evidence_catalog.store.keyfiles import PASSPHRASE_ENV, LogKey

from .conftest import CliResult, FixedClock, json_set, raw_database
from .salted import committed_by_hand, leaf_by_hand

EM_DASH = "\u2014"
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

# -- independent RFC 6962 / C2SP helpers ------------------------------------------------------


def leaf_of(event_document: dict[str, Any]) -> bytes:
    return leaf_by_hand(event_document)  # written from docs/verification.md


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle tree hash, written out directly."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def event_leaves(catalog: Catalog) -> list[bytes]:
    return [leaf_of(unstructure(e)) for e in catalog.history()]


def c2sp_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]


def raw_public_from_pem(path: Path) -> bytes:
    lines = path.read_text(encoding="ascii").strip().splitlines()
    assert lines[0] == "-----BEGIN PUBLIC KEY-----" and lines[-1] == "-----END PUBLIC KEY-----"
    der = base64.b64decode("".join(lines[1:-1]))
    assert der[:12] == ED25519_SPKI_PREFIX and len(der) == 44
    return der[12:]


def parse_vkey_text(text: str) -> tuple[str, bytes, bytes]:
    """name, key id, public key of a C2SP vkey (parsed here, not by the library)."""
    name, hex_id, key = text.strip().split("+", 2)
    raw = base64.b64decode(key, validate=True)
    assert raw[:1] == b"\x01" and len(raw) == 33
    return name, bytes.fromhex(hex_id), raw[1:]


def split_signed_note(note: str) -> tuple[str, str, bytes]:
    """The signed text, the signer name and the 68 bytes (key id || signature) of a note with
    exactly one signature line."""
    text, blank, signature_block = note.rpartition("\n\n")
    text += "\n"
    if not blank or not signature_block.endswith("\n") or signature_block.count("\n") != 1:
        raise ValueError("not a note with one signature line")
    line = signature_block[:-1]
    if not line.startswith(EM_DASH + " "):
        raise ValueError("not a signature line")
    name, _, encoded = line[2:].rpartition(" ")
    return text, name, base64.b64decode(encoded, validate=True)


def note_root(note: str) -> tuple[int, bytes]:
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2], validate=True)


def openssl_verifies(pub_pem: Path, text: bytes, signature: bytes, work: Path) -> bool:
    work.mkdir(parents=True, exist_ok=True)
    (work / "text").write_bytes(text)
    (work / "sig").write_bytes(signature)
    done = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(pub_pem),
            "-rawin",
            "-in",
            str(work / "text"),
            "-sigfile",
            str(work / "sig"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


def vkey_accepts(catalog_path: Path, note: str) -> bool:
    name, wanted_id, public = parse_vkey_text((catalog_path / "keys" / "log.vkey").read_text(encoding="ascii"))
    try:
        text, signer, blob = split_signed_note(note)
    except ValueError:
        return False
    if signer != name or blob[:4] != wanted_id:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], text.encode("utf-8"))
    except Exception:  # noqa: BLE001 -- InvalidSignature
        return False
    return True


# -- catalogs and tampering ----------------------------------------------------------------------


OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", organization="Example NGO", host="test-host")


def new_catalog(path: Path, **kwargs: Any) -> Catalog:
    return Catalog.init(path, operator=OPERATOR, clock=FixedClock(), **kwargs)


def add_file(catalog: Catalog, folder: Path, content: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.txt"
    path.write_text(content, encoding="utf-8")
    [result] = catalog.add([path])
    return result.record_id


def grow(catalog: Catalog, folder: Path) -> list[str]:
    """A small log: created, two adds, a tag and a note (5 events)."""
    a = add_file(catalog, folder, "first file")
    b = add_file(catalog, folder, "second file")
    catalog.tag(a, ["alpha"])
    catalog.add_note(b, "a note")
    return [a, b]


class RawDb:
    """The catalog's database as an attacker opens it: plain SQL (``:name`` parameters), foreign
    keys not enforced."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    def execute(self, statement: str, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> Any:
        return self.connection.execute(sa.text(statement), params)


@contextmanager
def raw_db(catalog_path: Path) -> Iterator[RawDb]:
    """An attacker's connection to the catalog's database; what it did is committed at the end."""
    with raw_database(catalog_path, foreign_keys=False) as connection:
        yield RawDb(connection)


def roll_back(catalog_path: Path, size: int) -> None:
    """Remove every event after *size*, with their Merkle nodes and the checkpoints over them:
    the database then looks exactly like the log did at *size*."""
    with raw_db(catalog_path) as db:
        db.execute("delete from custody_event where seq > :size", {"size": size})
        db.execute("delete from merkle_node where (idx + 1) * (1 << level) > :size", {"size": size})
        db.execute("delete from checkpoint where tree_size > :size", {"size": size})


def rewrite_tree_and_checkpoints(catalog_path: Path, documents: list[dict[str, Any]], signer: Any) -> None:
    """Replace the stored Merkle tree with the one over *documents* and every kept checkpoint
    with one signed checkpoint of it (by *signer*, the key the attacker holds)."""
    leaves = [leaf_of(d) for d in documents]
    rows = []
    level = 0
    while (1 << level) <= len(leaves):
        width = 1 << level
        rows += [
            {"level": level, "idx": idx, "hash": mth(leaves[idx * width : (idx + 1) * width]).hex()}
            for idx in range(len(leaves) // width)
        ]
        level += 1
    root = mth(leaves)
    with raw_db(catalog_path) as db:
        origin = parse_vkey_text((catalog_path / "keys" / "log.vkey").read_text(encoding="ascii"))[0]
        [created_at] = db.execute("select created_at from checkpoint order by id desc limit 1").fetchone()
        db.execute("delete from merkle_node")
        db.execute("insert into merkle_node (level, idx, hash) values (:level, :idx, :hash)", rows)
        db.execute("delete from checkpoint")
        note = sign(Checkpoint(origin=origin, size=len(leaves), root=root), signer)
        db.execute(
            "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
            " values (:size, :root, :note, :signed, :created_at)",
            {"size": len(leaves), "root": root.hex(), "note": note, "signed": True, "created_at": created_at},
        )


def rewrite_consistently(catalog: Catalog, seq: int, new_actor_name: str) -> None:
    """Change who did event *seq*, then recompute its hash, every later link and hash, the whole
    Merkle tree and the kept checkpoints (re-signed with the catalog's own key): nothing inside
    the catalog shows the change any more."""
    documents = [unstructure(e) for e in catalog.history()]
    documents[seq - 1]["actor"]["name"] = new_actor_name
    previous = documents[seq - 2]["hash"] if seq > 1 else documents[0]["prev_hash"]
    for document in documents[seq - 1 :]:
        document["prev_hash"] = previous
        document["hash"] = previous = hashlib.sha256(rfc8785.dumps(committed_by_hand(document))).hexdigest()
    with raw_db(catalog.path) as db:
        for document in documents[seq - 1 :]:
            db.execute(
                "update custody_event set actor = :actor, prev_hash = :prev_hash, hash = :hash where seq = :seq",
                {
                    "actor": json.dumps(document["actor"]),
                    "prev_hash": document["prev_hash"],
                    "hash": document["hash"],
                    "seq": document["seq"],
                },
            )
    rewrite_tree_and_checkpoints(catalog.path, documents, LogKey(catalog.path / "keys").private())


def replace_keys(catalog_path: Path, origin: str | None = None) -> None:
    """Throw the log key away, write a new key pair (for the same origin unless told) and re-sign
    every kept checkpoint with it."""
    keys = catalog_path / "keys"
    old_origin = parse_vkey_text((keys / "log.vkey").read_text(encoding="ascii"))[0]
    shutil.rmtree(keys)
    log_key = LogKey(keys)
    log_key.create(origin or old_origin)
    private = log_key.private()
    with raw_db(catalog_path) as db:
        for row_id, note in db.execute("select id, note from checkpoint").fetchall():
            found = parse_checkpoint(note.split("\n\n")[0] + "\n")
            resigned = sign(Checkpoint(origin=origin or found.origin, size=found.size, root=found.root), private)
            db.execute(
                "update checkpoint set note = :note, signed = :signed where id = :id",
                {"note": resigned, "signed": True, "id": row_id},
            )


def kinds(findings: Iterable[Finding]) -> list[type[Finding]]:
    return [type(f) for f in findings]


# -- 1. format ---------------------------------------------------------------------------------


def test_checkpoint_note_is_a_c2sp_signed_note_over_the_rfc6962_root(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    info = catalog.checkpoint()
    note = info.note
    history = catalog.history()
    lines = note.split("\n")
    assert len(lines) == 6 and lines[3] == "" and lines[5] == ""
    origin, size_text, root_text, _, signature_line, _ = lines
    assert origin.startswith("evidence-catalog/")
    uuid.UUID(origin.removeprefix("evidence-catalog/"))
    assert size_text == str(len(history)) == "5"
    root = base64.b64decode(root_text, validate=True)
    with catalog.db.read() as session:
        assert root == catalog.db.merkle_root(session)
    assert root == mth(event_leaves(catalog))
    assert (info.size, info.root, info.signed) == (len(history), root.hex(), True)

    public = raw_public_from_pem(catalog.path / "keys" / "log.pub")
    prefix = f"{EM_DASH} {origin} "
    assert signature_line.startswith(prefix)
    blob = base64.b64decode(signature_line[len(prefix) :], validate=True)
    assert len(blob) == 4 + 64
    assert blob[:4] == c2sp_key_id(origin, public)
    text = f"{origin}\n{size_text}\n{root_text}\n"
    assert note == f"{text}\n{EM_DASH} {origin} {base64.b64encode(blob).decode()}\n"

    pub_pem = catalog.path / "keys" / "log.pub"
    assert openssl_verifies(pub_pem, text.encode(), blob[4:], tmp_path / "ossl")
    # The real openssl says no for a changed checkpoint (one more event claimed).
    forged = f"{origin}\n{len(history) + 1}\n{root_text}\n"
    assert not openssl_verifies(pub_pem, forged.encode(), blob[4:], tmp_path / "ossl2")

    name, vkey_id, vkey_public = parse_vkey_text((catalog.path / "keys" / "log.vkey").read_text(encoding="ascii"))
    assert (name, vkey_id, vkey_public) == (origin, blob[:4], public)
    Ed25519PublicKey.from_public_bytes(vkey_public).verify(blob[4:], text.encode())
    assert vkey_accepts(catalog.path, note)


def test_cli_checkpoint_prints_the_note_and_its_json_the_vkey(catalog: Catalog, tmp_path: Path, run_cli: Any) -> None:
    grow(catalog, tmp_path / "files")
    result: CliResult = run_cli("checkpoint", "--catalog", catalog.path)
    assert result.code == 0, result.err
    assert result.out == catalog.checkpoint().note
    assert vkey_accepts(catalog.path, result.out)
    as_json = run_cli("checkpoint", "--catalog", catalog.path, "--json")
    assert as_json.code == 0
    document = json.loads(as_json.out)
    assert document["note"] == result.out
    assert document["tree_size"] == len(catalog.history())
    assert document["root_hash"] == mth(event_leaves(catalog)).hex()
    assert document["vkey"] == (catalog.path / "keys" / "log.vkey").read_text(encoding="ascii").strip()


# -- 2. keys ----------------------------------------------------------------------------------


def test_log_key_files_modes_and_the_created_event(catalog: Catalog) -> None:
    keys = catalog.path / "keys"
    assert sorted(p.name for p in keys.iterdir()) == ["log.key", "log.pub", "log.vkey"]
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "log.key").stat().st_mode) == 0o600
    pem = (keys / "log.key").read_text(encoding="ascii")
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    public = raw_public_from_pem(keys / "log.pub")
    vkey_text = (keys / "log.vkey").read_text(encoding="ascii").strip()
    origin, key_id_bytes, vkey_public = parse_vkey_text(vkey_text)
    assert vkey_public == public and key_id_bytes == c2sp_key_id(origin, public)

    [created] = catalog.history()
    assert created.action == "catalog.created"
    log = created.details["log"]
    assert log["origin"] == origin
    assert log["key_id"] == key_id_bytes.hex()
    assert log["vkey"] == vkey_text
    assert base64.b64decode(log["public_key"]) == public
    assert log["encrypted"] is False


def test_log_key_info_is_the_public_key_that_checks_the_checkpoints(
    catalog: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    grow(catalog, tmp_path / "files")
    info = catalog.log_key_info()
    assert isinstance(info, LogKeyInfo)
    keys = catalog.path / "keys"
    assert info.public_key == raw_public_from_pem(keys / "log.pub")
    assert info.vkey == (keys / "log.vkey").read_text(encoding="ascii").strip()
    assert parse_vkey_text(info.vkey) == (info.origin, bytes.fromhex(info.key_id), info.public_key)
    assert bytes.fromhex(info.key_id) == c2sp_key_id(info.origin, info.public_key)
    created = catalog.history()[0]
    assert created.action == "catalog.created"
    logged = created.details["log"]
    assert (info.origin, info.key_id, info.vkey) == (logged["origin"], logged["key_id"], logged["vkey"])
    # It checks the checkpoint handed out, as the CLI's --json prints it.
    note = catalog.checkpoint().note
    text, name, blob = split_signed_note(note)
    assert name == info.origin and blob[:4].hex() == info.key_id
    Ed25519PublicKey.from_public_bytes(info.public_key).verify(blob[4:], text.encode())
    as_json = run_cli("checkpoint", "--catalog", catalog.path, "--json")
    assert as_json.code == 0 and json.loads(as_json.out)["vkey"] == info.vkey
    # Handed to a new key, the log has the new key's details.
    change = catalog.change_log_key()
    after = catalog.log_key_info()
    assert (after.key_id, after.vkey, after.origin) == (change.key_id, change.vkey, info.origin)
    assert after.public_key != info.public_key
    # Key files that cannot be read are the catalog's problem, said as such.
    (keys / "log.vkey").write_text("not a verifier key\n", encoding="ascii")
    with pytest.raises(CatalogError, match="verifier key cannot be read"):
        catalog.log_key_info()


def test_an_encrypted_key_without_its_passphrase_keeps_unsigned_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    path = tmp_path / "catalog"
    with new_catalog(path, key_passphrase="correct horse") as made:
        assert made.checkpoint().signed
        assert made.history()[0].details["log"]["encrypted"] is True
    pem = (path / "keys" / "log.key").read_text(encoding="ascii")
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE((path / "keys" / "log.key").stat().st_mode) == 0o600

    with Catalog.open(path, operator=OPERATOR) as catalog:
        record = add_file(catalog, tmp_path / "files", "x")
        catalog.tag(record, ["t"])
        assert len(catalog.history()) == 3  # events are still appended
        with catalog.db.read() as session:
            rows = catalog.db.checkpoints(session)
        assert [(r.tree_size, r.signed) for r in rows] == [(1, True), (2, False), (3, False)]
        origin = rows[0].note.split("\n")[0]
        for row in rows[1:]:
            # An unsigned checkpoint is the checkpoint text alone, over the true root.
            assert row.note == f"{origin}\n{row.tree_size}\n{base64.b64encode(bytes.fromhex(row.root_hash)).decode()}\n"
            assert bytes.fromhex(row.root_hash) == mth(event_leaves(catalog)[: row.tree_size])
        with pytest.raises(InputError) as raised:
            catalog.checkpoint()
        assert PASSPHRASE_ENV in str(raised.value)
        # Events 2 and 3 are covered by no signed checkpoint: anyone who can write the database
        # could have written them.  A finding, unless the caller allows an unsigned tail.
        report = catalog.verify(record_event=False)
        assert report.findings == (EventsUnsigned(first_seq=2, count=2),)
        assert report.unsigned_events == 2
        allowed = catalog.verify(record_event=False, allow_unsigned=True)
        assert allowed.ok and allowed.unsigned_events == 2

    with Catalog.open(path, key_passphrase="correct horse") as catalog:
        info = catalog.checkpoint()
        assert info.signed and info.size == 3
        assert vkey_accepts(path, info.note)
        catalog.add_note(record, "signed from now on")
        with catalog.db.read() as session:
            latest = catalog.db.latest_checkpoint(session)
        assert latest is not None and latest.signed and latest.tree_size == 4
        assert catalog.verify(record_event=False).ok

    with Catalog.open(path, operator=OPERATOR) as catalog:
        catalog.tag(record, ["u"])  # unsigned again: size 5
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    with Catalog.open(path) as catalog:
        info = catalog.checkpoint()
        assert info.signed and info.size == 5
        assert vkey_accepts(path, info.note)


def test_the_passphrase_can_come_from_the_environment_at_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")
    with new_catalog(tmp_path / "catalog") as catalog:
        assert catalog.checkpoint().signed
    assert (tmp_path / "catalog" / "keys" / "log.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    monkeypatch.delenv(PASSPHRASE_ENV)
    with Catalog.open(tmp_path / "catalog", operator=OPERATOR) as catalog:
        add_file(catalog, tmp_path / "files", "x")
        with pytest.raises(InputError, match=PASSPHRASE_ENV):
            catalog.checkpoint()


# -- 3. a signed checkpoint after every change ---------------------------------------------------


def test_every_change_ends_with_a_signed_checkpoint_of_the_whole_log(catalog: Catalog, tmp_path: Path) -> None:
    files = tmp_path / "files"
    records: list[str] = []

    def check() -> None:
        events = catalog.history()
        with catalog.db.read() as session:
            latest = catalog.db.latest_checkpoint(session)
        assert latest is not None and latest.signed
        assert latest.tree_size == len(events)
        assert note_root(latest.note) == (len(events), mth(event_leaves(catalog)))
        assert vkey_accepts(catalog.path, latest.note)
        assert catalog.verify(record_event=False).ok

    check()
    for step in range(3):
        records.append(add_file(catalog, files, f"file {step}"))
        check()
        catalog.tag(records[0], [f"tag-{step}"])
        check()
        catalog.add_note(records[-1], f"note {step}")
        check()
    before = len(catalog.history())
    assert catalog.verify().ok  # logged: one more event, with its own checkpoint
    assert len(catalog.history()) == before + 1
    check()
    assert catalog.checkpoint().size == before + 1


# -- 4. proofs ---------------------------------------------------------------------------------


def test_inclusion_and_consistency_proofs_verify(catalog: Catalog, tmp_path: Path, run_cli: Any) -> None:
    files = tmp_path / "files"
    held = [catalog.checkpoint()]
    records = []
    for step in range(4):
        records.append(add_file(catalog, files, f"file {step}"))
        held.append(catalog.checkpoint())
        catalog.tag(records[0], [f"t{step}"])
        held.append(catalog.checkpoint())
        catalog.add_note(records[-1], f"note {step}")
        held.append(catalog.checkpoint())
    current = catalog.checkpoint()
    n = len(catalog.history())
    assert current.size == n == 13
    size, root = note_root(current.note)
    leaves = event_leaves(catalog)
    for seq in range(1, n + 1):
        proof = catalog.inclusion_proof(seq)
        assert (proof.seq, proof.leaf_index, proof.tree_size) == (seq, seq - 1, n)
        assert proof.leaf_hash == leaves[seq - 1].hex()
        assert proof.root == root.hex()
        assert proof.checkpoint == current.note
        path = [bytes.fromhex(h) for h in proof.proof]
        assert merkle.verify_inclusion(seq - 1, size, leaves[seq - 1], path, root)
        assert not merkle.verify_inclusion(seq - 1, size, leaves[seq % n], path, root)

    for old in held:
        old_size, old_root = note_root(old.note)
        assert old_root == mth(leaves[:old_size])
        consistency = [bytes.fromhex(h) for h in catalog.consistency_proof(old_size)]
        assert merkle.verify_consistency(old_size, size, consistency, old_root, root)
        if old_size < size:
            assert not merkle.verify_consistency(old_size, size, consistency, hashlib.sha256(b"x").digest(), root)
    # Between two held checkpoints, with an explicit new size.
    middle = held[5]
    middle_size, middle_root = note_root(middle.note)
    consistency = [bytes.fromhex(h) for h in catalog.consistency_proof(2, middle_size)]
    assert merkle.verify_consistency(2, middle_size, consistency, mth(leaves[:2]), middle_root)

    # The command line gives the same proof.
    for seq in (1, 7, n):
        result = run_cli("log", "--catalog", catalog.path, "--proof", str(seq), "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out) == json.loads(json.dumps(attrs.asdict(catalog.inclusion_proof(seq))))
    text = run_cli("log", "--catalog", catalog.path, "--proof", "3")
    assert text.code == 0
    assert f"root       {root.hex()}" in text.out and current.note in text.out


@pytest.mark.parametrize("seq", [0, -1, 6, 1000])
def test_a_proof_of_an_event_not_in_the_log_is_an_input_error(
    catalog: Catalog, tmp_path: Path, run_cli: Any, seq: int
) -> None:
    grow(catalog, tmp_path / "files")
    assert len(catalog.history()) == 5
    with pytest.raises(InputError):
        catalog.inclusion_proof(seq)
    result = run_cli("log", "--catalog", catalog.path, "--proof", str(seq))
    assert result.code not in (0, 3)
    assert result.out == ""
    assert result.err.startswith("error:") and result.err.count("\n") == 1


def test_a_consistency_proof_of_impossible_sizes_is_an_input_error(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    for old, new in ((0, None), (6, None), (4, 3), (2, 9)):
        with pytest.raises(InputError):
            catalog.consistency_proof(old, new)


# -- 5. verification finds tampering --------------------------------------------------------------


def test_an_edited_event_is_found_by_its_hash_its_leaf_and_the_checkpoints(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    held = catalog.checkpoint().note
    with raw_db(catalog.path) as db:
        db.execute(
            f"update custody_event set details = {json_set(db.dialect, 'details', '$.note.text', 'changed')}"
            " where seq = 5"
        )
    findings = catalog.verify(checkpoints=[("held", held)], record_event=False).findings
    assert EventEdited in kinds(findings)
    assert [f.seq for f in findings if isinstance(f, EventEdited)] == [5]
    assert [f.seq for f in findings if isinstance(f, MerkleLeafMismatch)] == [5]
    mismatches = [f for f in findings if isinstance(f, CheckpointMismatch)]
    assert {f.first_seq for f in mismatches} == {5}
    assert any(f.source == "held" and f.checkpoint_size == 5 for f in mismatches)


def test_a_deleted_last_event_is_a_rolled_back_log_for_a_held_checkpoint(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    held = catalog.checkpoint().note
    with raw_db(catalog.path) as db:
        db.execute("delete from record_part")
        db.execute("delete from custody_event where seq = 5")
    findings = catalog.verify(checkpoints=[("held", held)], record_event=False).findings
    assert LogRolledBack(source="held", checkpoint_size=5, log_size=4) in findings


def test_a_consistent_rewrite_is_found_only_by_a_checkpoint_held_outside(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    assert catalog.verify(remember=True).ok  # remembers the checkpoint of 5 events
    held = catalog.checkpoint().note  # 6 events: the verification was logged
    before = [e.hash for e in catalog.history()]
    rewrite_consistently(catalog, 2, "Someone Else")
    assert [e.hash for e in catalog.history()][:1] == before[:1]
    assert [e.hash for e in catalog.history()][1:] != before[1:]
    assert catalog.history()[1].actor.name == "Someone Else"
    # Nothing inside the catalog shows it any more...
    assert catalog.verify(remember=False, record_event=False).ok
    with catalog.db.read() as session:
        assert catalog.db.merkle_root(session) == mth(event_leaves(catalog))
    # ...but the held checkpoint does, and so does the remembered one.
    findings = catalog.verify(checkpoints=[("held", held)], remember=False, record_event=False).findings
    assert len(findings) == 1
    [mismatch] = findings
    assert isinstance(mismatch, CheckpointMismatch)
    assert (mismatch.source, mismatch.checkpoint_size) == ("held", 6)
    assert mismatch.first_seq in (None, 2)
    remembered = catalog.verify(remember=True, record_event=False).findings
    assert [(type(f), f.checkpoint_size) for f in remembered] == [(CheckpointMismatch, 5)]  # type: ignore[attr-defined]
    assert "remembered" in remembered[0].source  # type: ignore[attr-defined]


def test_events_appended_then_removed_are_a_rolled_back_log(catalog: Catalog, tmp_path: Path, run_cli: Any) -> None:
    [first, _] = grow(catalog, tmp_path / "files")
    catalog.tag(first, ["appended"])
    held = catalog.checkpoint().note
    assert note_root(held)[0] == 6
    roll_back(catalog.path, 5)
    with raw_db(catalog.path) as db:
        db.execute("delete from record_tag where tag = 'appended'")
    assert catalog.verify(record_event=False).ok  # the catalog alone looks untouched
    findings = catalog.verify(checkpoints=[("held", held)], record_event=False).findings
    assert findings == (LogRolledBack(source="held", checkpoint_size=6, log_size=5),)


def test_a_rollback_is_found_by_the_remembered_checkpoint(catalog: Catalog, tmp_path: Path, run_cli: Any) -> None:
    [first, _] = grow(catalog, tmp_path / "files")
    catalog.tag(first, ["later"])
    assert catalog.verify(remember=True, record_event=False).ok  # remembers 6 events
    roll_back(catalog.path, 5)
    with raw_db(catalog.path) as db:
        db.execute("delete from record_tag where tag = 'later'")
    assert catalog.verify(remember=False, record_event=False).ok  # the catalog alone looks untouched
    findings = catalog.verify(remember=True, record_event=False).findings
    assert [(type(f), f.checkpoint_size, f.log_size) for f in findings] == [(LogRolledBack, 6, 5)]  # type: ignore[attr-defined]
    assert run_cli("verify", "--catalog", catalog.path, "--no-log", "--no-remember").code == 0
    result = run_cli("verify", "--catalog", catalog.path, "--no-log")
    assert result.code == 1
    assert any(line.startswith("PROBLEM ") and "rolled back" in line for line in result.out.splitlines())


def test_a_held_checkpoint_with_a_changed_signature_is_invalid(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    held = catalog.checkpoint().note
    _, _, blob = split_signed_note(held)
    encoded = base64.b64encode(blob).decode()
    position = 40  # inside the 64-byte signature, well past the 4-byte key id
    changed = encoded[:position] + ("A" if encoded[position] != "A" else "B") + encoded[position + 1 :]
    forged = held.replace(encoded, changed)
    assert forged != held and len(forged) == len(held)
    assert base64.b64decode(changed)[:4] == blob[:4]
    findings = catalog.verify(checkpoints=[("held", forged)], record_event=False).findings
    assert kinds(findings) == [CheckpointInvalid]
    assert findings[0].source == "held"  # type: ignore[attr-defined]
    assert "forged" in findings[0].reason  # type: ignore[attr-defined]
    # The same checkpoint, unchanged, is fine.
    assert catalog.verify(checkpoints=[("held", held)], record_event=False).ok


def test_a_kept_checkpoint_with_a_changed_signature_is_invalid(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    with raw_db(catalog.path) as db:
        row_id, note = db.execute("select id, note from checkpoint order by id desc limit 1").fetchone()
        _, _, blob = split_signed_note(note)
        bad = bytearray(blob)
        bad[30] ^= 0x01
        db.execute(
            "update checkpoint set note = :note where id = :id",
            {
                "note": note.replace(base64.b64encode(blob).decode(), base64.b64encode(bytes(bad)).decode()),
                "id": row_id,
            },
        )
    findings = catalog.verify(record_event=False).findings
    # The forged checkpoint is invalid, and the one before it covers all but the last event.
    assert kinds(findings) == [CheckpointInvalid, EventsUnsigned]
    assert f"checkpoint {row_id}" in findings[0].source  # type: ignore[attr-defined]
    assert findings[1] == EventsUnsigned(first_seq=5, count=1)


def test_a_checkpoint_signed_with_another_catalogs_key_is_invalid(catalog: Catalog, tmp_path: Path) -> None:
    grow(catalog, tmp_path / "files")
    own = catalog.checkpoint()
    with new_catalog(tmp_path / "other") as other:
        theirs = other.checkpoint().note
        other_key = LogKey(other.path / "keys").private()
    # The other catalog's own checkpoint...
    findings = catalog.verify(checkpoints=[("theirs", theirs)], record_event=False).findings
    assert kinds(findings) == [CheckpointInvalid]
    assert "not signed by the log key" in findings[0].reason  # type: ignore[attr-defined]
    # ...and a true checkpoint of this log, signed by the other catalog's key.
    origin = own.note.split("\n")[0]
    size, root = note_root(own.note)
    wrong_key = sign(Checkpoint(origin=origin, size=size, root=root), other_key)
    findings = catalog.verify(checkpoints=[("wrong key", wrong_key)], record_event=False).findings
    assert [(type(f), f.source) for f in findings] == [(CheckpointInvalid, "wrong key")]  # type: ignore[attr-defined]
    for garbage in ("", "not a note\n", own.note.split("\n\n")[0] + "\n"):
        findings = catalog.verify(checkpoints=[("garbage", garbage)], record_event=False).findings
        assert kinds(findings) == [CheckpointInvalid]


def test_a_replaced_log_key_is_found_by_the_log_itself_and_signs_nothing(
    catalog: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    grow(catalog, tmp_path / "files")
    assert catalog.verify(remember=True, record_event=False).ok
    catalog.close()
    replace_keys(catalog.path)  # same origin, new key pair, every checkpoint re-signed
    with Catalog.open(catalog.path) as reopened:
        # The log's first event pins the key: the new files are not it, no kept checkpoint is
        # signed by it, so no event is covered.
        findings = reopened.verify(remember=False, record_event=False).findings
        assert {f.path for f in findings if isinstance(f, KeyFileMismatch)} == {  # type: ignore[attr-defined]
            "keys/log.vkey",
            "keys/log.pub",
            "keys/log.key",
        }
        invalid = [f for f in findings if isinstance(f, CheckpointInvalid)]
        assert invalid[0].source.startswith("checkpoint ") and "not signed by the log key" in invalid[0].reason
        assert invalid[-1].source == "4 older checkpoint(s) kept in the catalog"
        assert EventsUnsigned(first_seq=1, count=5) in findings
        # The replaced key signs nothing: every change is refused before anything is stored.
        before = [e.hash for e in reopened.history()]
        with pytest.raises(KeyDamagedError, match="not the key the custody log names"):
            add_file(reopened, tmp_path / "files", "after the key was replaced")
        assert [e.hash for e in reopened.history()] == before
        assert reopened.fsck().clean
        with_memory = reopened.verify(remember=True, record_event=False).findings
    # The remembered checkpoint is checked with the key it was first checked with: the log still
    # extends it, and the key the log names is still that key.
    assert [f for f in with_memory if f not in findings] == []
    result = run_cli("verify", "--catalog", catalog.path, "--no-log")
    assert result.code == 1
    assert any(line.startswith("PROBLEM keys/log.key: ") for line in result.out.splitlines())


def test_a_rollback_with_a_log_key_of_a_new_origin_is_found_by_the_remembered_checkpoint(
    catalog: Catalog, tmp_path: Path
) -> None:
    [first, _] = grow(catalog, tmp_path / "files")
    catalog.tag(first, ["later"])
    assert catalog.verify(remember=True, record_event=False).ok  # remembers 6 events
    catalog.close()
    roll_back(catalog.path, 5)
    with raw_db(catalog.path) as db:
        db.execute("delete from record_tag where tag = 'later'")
    replace_keys(catalog.path, origin=f"evidence-catalog/{uuid.uuid4()}")
    with Catalog.open(catalog.path) as reopened:
        report = reopened.verify(remember=True, record_event=False)
    assert not report.ok


def test_a_changed_interior_merkle_node_is_found(catalog: Catalog, tmp_path: Path) -> None:
    [first, _] = grow(catalog, tmp_path / "files")
    catalog.tag(first, ["x"])
    assert len(catalog.history()) == 6
    with raw_db(catalog.path) as db:
        db.execute("update merkle_node set hash = :hash where level = 1 and idx = 0", {"hash": "ab" * 32})
    _, root = note_root(catalog.checkpoint().note)
    proof = catalog.inclusion_proof(3)
    proof_ok = merkle.verify_inclusion(
        2, proof.tree_size, bytes.fromhex(proof.leaf_hash), [bytes.fromhex(h) for h in proof.proof], root
    )
    report = catalog.verify(record_event=False)
    # The proof handed out from the damaged tree does not verify, so verify must say so.
    assert not report.ok, f"verify is ok while the inclusion proof of event 3 verifies: {proof_ok}"


def test_an_inclusion_proof_only_hands_out_signed_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    with new_catalog(tmp_path / "catalog", key_passphrase="pw"):
        pass
    with Catalog.open(tmp_path / "catalog", operator=OPERATOR) as catalog:
        add_file(catalog, tmp_path / "files", "x")
        proof = catalog.inclusion_proof(1)
    assert proof.checkpoint is None or vkey_accepts(tmp_path / "catalog", proof.checkpoint)


# -- 6. property: any tampering is found at its first position -----------------------------------


def named_seqs(findings: Iterable[Finding]) -> list[int]:
    seqs = []
    for f in findings:
        if isinstance(f, EventEdited | EventMissing | BrokenLink | MerkleLeafMismatch):
            seqs.append(f.seq)
        elif isinstance(f, CheckpointMismatch) and f.first_seq is not None:
            seqs.append(f.first_seq)
        elif isinstance(f, LogRolledBack):
            seqs.append(f.log_size + 1)
    return seqs


def build_log(
    catalog: Catalog, folder: Path, ops: list[tuple[str, int]], after_each: Callable[[], None] = lambda: None
) -> None:
    """One custody event per operation (the first always adds a file)."""
    records: list[str] = []
    for i, (op, pick) in enumerate(ops):
        if op == "add" or not records:
            records.append(add_file(catalog, folder, f"file number {i}"))
        elif op == "tag":
            catalog.tag(records[pick % len(records)], [f"tag-{i}"])
        else:
            catalog.add_note(records[pick % len(records)], f"note number {i}")
        after_each()


operations = st.lists(
    st.tuples(st.sampled_from(["add", "tag", "note"]), st.integers(min_value=0, max_value=100)),
    min_size=2,
    max_size=11,
)


@pytest.mark.parametrize("tampering", ["edit", "delete", "swap", "truncate"])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, data=st.data())
def test_any_tampering_is_found_at_its_first_position(
    ops: list[tuple[str, int]], tampering: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        with new_catalog(root / "catalog") as catalog:
            build_log(catalog, root / "files", ops)
            n = len(catalog.history())
            assert 3 <= n <= 12
            assert catalog.verify(record_event=False).ok
            held = catalog.checkpoint().note
            assert note_root(held) == (n, mth(event_leaves(catalog)))
            assert catalog.verify(checkpoints=[("held", held)], record_event=False).ok

            with raw_db(catalog.path) as db:
                if tampering == "edit":
                    first = data.draw(st.integers(min_value=1, max_value=n), label="edited")
                    db.execute(
                        f"update custody_event set details = {json_set(db.dialect, 'details', '$.tampered', 'yes')}"
                        " where seq = :seq",
                        {"seq": first},
                    )
                elif tampering == "delete":
                    first = data.draw(st.integers(min_value=2, max_value=n), label="deleted")
                    db.execute("delete from custody_event where seq = :seq", {"seq": first})
                elif tampering == "swap":
                    first = data.draw(st.integers(min_value=1, max_value=n - 1), label="first swapped")
                    second = data.draw(st.integers(min_value=first + 1, max_value=n), label="second swapped")
                    select = "select cast(details as text) from custody_event where seq = :seq"
                    [(a,)] = db.execute(select, {"seq": first}).fetchall()
                    [(b,)] = db.execute(select, {"seq": second}).fetchall()
                    assert json.loads(a) != json.loads(b)
                    db.execute(
                        "update custody_event set details = :details where seq = :seq", {"details": b, "seq": first}
                    )
                    db.execute(
                        "update custody_event set details = :details where seq = :seq", {"details": a, "seq": second}
                    )
                else:
                    k = data.draw(st.integers(min_value=1, max_value=n - 1), label="truncated")
                    db.execute("delete from custody_event where seq > :seq", {"seq": n - k})
                    first = n - k + 1

            report = catalog.verify(checkpoints=[("held", held)], record_event=False)
            assert not report.ok
            seqs = named_seqs(report.findings)
            assert seqs, report.findings
            assert min(seqs) == first, report.findings
            # The held checkpoint itself shows it, at the same place.
            from_held = [f for f in report.findings if getattr(f, "source", None) == "held"]
            assert len(from_held) == 1, report.findings
            [finding] = from_held
            if isinstance(finding, LogRolledBack):
                assert (finding.checkpoint_size, finding.log_size) == (n, len(catalog.history()))
                assert tampering in ("delete", "truncate")
            else:
                assert isinstance(finding, CheckpointMismatch)
                assert (finding.checkpoint_size, finding.first_seq) == (n, first)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_an_untouched_random_log_always_verifies(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        held: list[tuple[str, str]] = []
        with new_catalog(root / "catalog") as catalog:
            build_log(
                catalog, root / "files", ops, lambda: held.append((f"held {len(held)}", catalog.checkpoint().note))
            )
            assert [note_root(note)[0] for _, note in held] == list(range(2, len(ops) + 2))
            report = catalog.verify(checkpoints=held, remember=True)
            assert report.ok, report.findings
            assert catalog.verify(checkpoints=held, remember=True, record_event=False).ok


# -- 7. migration from a catalog without a Merkle tree ------------------------------------------------


def test_a_revision_0004_catalog_gets_its_merkle_tree_and_a_key(tmp_path: Path) -> None:
    path = tmp_path / "catalog"
    with new_catalog(path) as catalog:
        grow(catalog, tmp_path / "files")
        assert catalog.verify(remember=False).ok  # the history below is made up: nothing to remember
        events = catalog.history()
        old_vkey = (path / "keys" / "log.vkey").read_text(encoding="ascii")
        with catalog.db.engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0004")
    # The log as the library before 0005 wrote it: catalog.created named no key (so every hash
    # link is made again from there).
    head: Any = None
    before = []
    with raw_db(path) as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [("0004",)]
        tables = set(sa.inspect(db.connection).get_table_names())
        as_json = "cast(:details as json)" if db.dialect == "postgresql" else ":details"
        for event in events:
            details = {
                k: v
                for k, v in event.details.items()
                if not (event.action == "catalog.created" and k == "log") and k != "salt"
            }
            head = make_event(
                head, at=event.at, actor=event.actor, action=event.action, subject=event.subject, details=details
            )
            db.execute(
                f"update custody_event set details = {as_json}, prev_hash = :prev, hash = :hash where seq = :seq",
                {"details": json.dumps(head.details), "prev": head.prev_hash, "hash": head.hash, "seq": head.seq},
            )
            before.append(unstructure(head))
    assert "merkle_node" not in tables and "checkpoint" not in tables
    shutil.rmtree(path / "keys")

    with Catalog.open(path, operator=OPERATOR) as upgraded:
        after = [unstructure(e) for e in upgraded.history()]
        assert after[: len(before)] == before  # no event changed, removed or reordered
        added = after[len(before) :]
        assert sorted(e["action"] for e in added) == ["catalog.upgraded", "key.created"]
        [upgrade] = [e for e in added if e["action"] == "catalog.upgraded"]
        assert (upgrade["details"]["from_revision"], upgrade["details"]["to_revision"]) == ("0004", HEAD_REVISION)
        [key_event] = [e for e in added if e["action"] == "key.created"]
        new_vkey = (path / "keys" / "log.vkey").read_text(encoding="ascii")
        assert new_vkey != old_vkey
        assert key_event["details"]["vkey"] == new_vkey.strip()

        leaves = [leaf_of(d) for d in after]
        with raw_db(path) as db:
            stored = db.execute("select idx, hash from merkle_node where level = 0 order by idx").fetchall()
        assert stored == [(i, leaf.hex()) for i, leaf in enumerate(leaves)]
        with upgraded.db.read() as session:
            assert upgraded.db.merkle_root(session) == mth(leaves)
        info = upgraded.checkpoint()
        assert info.signed and note_root(info.note) == (len(after), mth(leaves))
        assert vkey_accepts(path, info.note)
        for seq in range(1, len(after) + 1):
            proof = upgraded.inclusion_proof(seq)
            path_hashes = [bytes.fromhex(h) for h in proof.proof]
            assert merkle.verify_inclusion(seq - 1, proof.tree_size, leaves[seq - 1], path_hashes, mth(leaves))
        assert upgraded.verify(record_event=False).ok


# -- 8. command line ---------------------------------------------------------------------------


def test_cli_verify_with_held_checkpoint_files(catalog: Catalog, tmp_path: Path, run_cli: Any) -> None:
    [first, _] = grow(catalog, tmp_path / "files")
    catalog.tag(first, ["later"])
    made = run_cli("checkpoint", "--catalog", catalog.path)
    assert made.code == 0
    held = tmp_path / "held.note"
    held.write_text(made.out, encoding="utf-8")

    good = run_cli("verify", "--catalog", catalog.path, "--checkpoint", held, "--no-log")
    assert good.code == 0, good.out + good.err
    assert "PROBLEM" not in good.out

    roll_back(catalog.path, 5)
    with raw_db(catalog.path) as db:
        db.execute("delete from record_tag where tag = 'later'")
    rolled = run_cli("verify", "--catalog", catalog.path, "--checkpoint", held, "--no-log", "--no-remember")
    assert rolled.code == 1
    problems = [line for line in rolled.out.splitlines() if line.startswith("PROBLEM ")]
    assert len(problems) == 1
    assert str(held) in problems[0] and "rolled back" in problems[0]

    missing = run_cli("verify", "--catalog", catalog.path, "--checkpoint", tmp_path / "missing-file")
    assert missing.code == 2
    assert "missing-file" in missing.err


def test_events_written_through_the_database_directly_are_refused_not_left_unsigned(tmp_path: Path) -> None:
    """A script that appends custody events through ``catalog.db`` (not an operation) would leave
    a tail no checkpoint signs, which ``verify`` reports and every later change refuses to sign
    over; the database refuses the transaction instead, and nothing of it is written."""
    with Catalog.init(tmp_path / "c", operator="tester") as catalog:
        before = catalog.history()
        with pytest.raises(CatalogError, match="appended only by the catalog's operations"):
            with catalog.db.write() as session:
                catalog.db.append_event(
                    session,
                    at=catalog.clock(),
                    actor=catalog.operator,
                    action="catalog.verified",
                    subject="catalog",
                    details={"ok": True},
                )
        assert catalog.history() == before
        report = catalog.verify()
        assert report.ok, report.findings
        # The catalog's own operations go on as before, each change signed.
        (tmp_path / "f.txt").write_text("x", encoding="utf-8")
        catalog.add([tmp_path / "f.txt"])
        assert catalog.verify(record_event=False).ok


def test_a_verification_the_database_refuses_to_log_says_so_not_that_the_key_failed(tmp_path: Path) -> None:
    """The last custody event deleted behind the catalog's back: logging the verification then
    collides with the Merkle nodes still stored, and the database refuses it.  The report keeps
    its findings and says the database refused the entry, not that the key could not sign."""
    path = tmp_path / "c"
    with Catalog.init(path, operator="tester") as catalog:
        (tmp_path / "f.txt").write_text("x", encoding="utf-8")
        catalog.add([tmp_path / "f.txt"])
    with raw_database(path, foreign_keys=False) as connection:
        connection.execute(sa.text("delete from custody_event where seq = (select max(seq) from custody_event)"))
    with Catalog.open(path) as catalog:
        report = catalog.verify()
    assert not report.ok
    assert not report.logged
    assert report.unlogged_reason is not None
    assert report.unlogged_reason.startswith("the catalog database refused it"), report.unlogged_reason
