"""The catalog facade end to end, on real SQLite files and real blob directories."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.custody import Action
from evidence_catalog.errors import (
    CatalogDatabaseError,
    CatalogError,
    CatalogNotFoundError,
    CatalogVersionError,
    EvidenceError,
    InputError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from evidence_catalog.findings import (
    AnalysisNotRechecked,
    BlobMissing,
    BrokenLink,
    CheckpointMismatch,
    DigestMismatch,
    EntryUnreadable,
    EventEdited,
    EventMissing,
    MerkleLeafMismatch,
    RecordMismatch,
    RecordMissing,
    UnloggedChange,
)
from evidence_catalog.operations.context import Context
from evidence_catalog.results import AddResult
from evidence_catalog.schema_files import load_schema
from evidence_catalog.serialize import CHECKPOINT_SCHEMA, SCHEMA_IDS, from_document

from .conftest import FixedClock, database_dialect, json_set, raw_database, run_sql


def add_one(catalog: Catalog, path: Path, **kwargs: Any) -> AddResult:
    [result] = catalog.add([path], **kwargs)
    return result


def test_init_creates_a_versioned_catalog_directory(tmp_path: Path, operator: Agent) -> None:
    with Catalog.init(tmp_path / "cat", operator=operator, algorithms=["sha256", "md5"]) as catalog:
        assert catalog.config.algorithms == ("sha256", "md5")
        database_url = catalog.config.database_url
    text = (tmp_path / "cat" / "catalog.toml").read_text()
    assert "format_version = 1" in text and "Test Analyst" in text
    if database_url is None:  # the database is the folder's own file
        assert (tmp_path / "cat" / "catalog.db").is_file()
    else:  # the database is elsewhere, and catalog.toml says where
        assert not (tmp_path / "cat" / "catalog.db").exists() and f'url = "{database_url}"' in text
    assert (tmp_path / "cat" / "blobs").is_dir()
    with Catalog.open(tmp_path / "cat") as catalog:
        [created] = catalog.history()
    assert created.action == "catalog.created" and created.actor == operator


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_mode_with_foreign_keys(catalog: Catalog) -> None:
    with catalog.db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_add_stores_bytes_record_acquisition_and_custody_event(catalog: Catalog, jpeg_file: Any) -> None:
    photo = jpeg_file("school.jpg")
    result = add_one(
        catalog, photo, tags=["school", "shelling"], note="sent by a witness", source_url="https://t.me/x/1"
    )
    data = photo.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)
    assert result.new_record and result.new_bytes
    assert catalog.artifact_path(result.sha256).read_bytes() == data

    record = catalog.record(result.record_id)
    assert model.is_record_id(record.id) and record.title == "school.jpg"
    assert record.tags == ("school", "shelling")
    # The photo, and the document of its analysis (add analyses every image it stores).
    entry, analysis = record.artifacts
    assert entry.artifact.media_type == "image/jpeg" and entry.role is model.ArtifactRole.ORIGINAL
    assert analysis.role is model.ArtifactRole.DERIVED and analysis.derived_from == (result.sha256,)
    assert analysis.artifact.media_type == "application/json"
    acquisition, derived = record.acquisitions
    assert derived.method is model.AcquisitionMethod.DERIVED and derived.artifact_sha256 == analysis.artifact.sha256
    assert acquisition.method is model.AcquisitionMethod.ADDED_FROM_DISK
    assert acquisition.original_path == str(photo)
    assert acquisition.source_url == "https://t.me/x/1"
    assert acquisition.operator == catalog.operator
    assert {t.name for t in acquisition.tools} >= {"evidence-catalog"}
    assert acquisition.started_at <= acquisition.ended_at
    [note] = record.notes
    assert note.text == "sent by a witness" and note.author == catalog.operator

    event, analyzed = catalog.history(record.id)
    assert event.action == "artifact.added" and analyzed.action == "media.analyzed"
    assert analyzed.details["acquisition"]["id"] == derived.id
    assert event.details["acquisition"]["id"] == acquisition.id and event.details["sha256"] == result.sha256
    assert event.details["record"]["title"] == "school.jpg" and event.details["note"]["text"] == "sent by a witness"
    assert catalog.verify().ok


def test_second_add_of_identical_bytes_stores_nothing_but_logs_a_new_acquisition(
    catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "a.bin").write_bytes(b"same bytes")
    (tmp_path / "copy-of-a.bin").write_bytes(b"same bytes")
    first = add_one(catalog, tmp_path / "a.bin")
    blobs_before = sorted(p for p in (catalog.path / "blobs" / "sha256").rglob("*") if p.is_file())
    second = add_one(catalog, tmp_path / "copy-of-a.bin")
    blobs_after = sorted(p for p in (catalog.path / "blobs" / "sha256").rglob("*") if p.is_file())
    assert blobs_before == blobs_after and len(blobs_after) == 1
    assert second.record_id == first.record_id and not second.new_record and not second.new_bytes
    record = catalog.record(first.record_id)
    assert len(record.artifacts) == 1
    assert [a.original_path for a in record.acquisitions] == [str(tmp_path / "a.bin"), str(tmp_path / "copy-of-a.bin")]
    assert len(catalog.history(first.record_id)) == 2


def test_add_to_an_existing_record(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "post.txt").write_text("a post announcing a documentary")
    (tmp_path / "video.bin").write_bytes(b"\x00video")
    post = add_one(catalog, tmp_path / "post.txt")
    video = add_one(catalog, tmp_path / "video.bin", record_id=post.record_id)
    assert video.record_id == post.record_id and not video.new_record
    assert [a.artifact.sha256 for a in catalog.record(post.record_id).artifacts] == [post.sha256, video.sha256]
    (tmp_path / "other.bin").write_bytes(b"never stored")
    with pytest.raises(NotFoundError):
        add_one(catalog, tmp_path / "other.bin", record_id=model.new_id())
    assert not catalog.blobs.exists(hashlib.sha256(b"never stored").hexdigest())


def test_zero_byte_file_is_catalogued(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    result = add_one(catalog, tmp_path / "empty")
    assert result.size == 0 and result.sha256 == hashlib.sha256(b"").hexdigest()
    assert catalog.record(result.record_id).artifacts[0].artifact.media_type == "application/octet-stream"
    assert catalog.verify().ok


def test_file_names_with_newlines_and_invalid_utf8_are_kept_exactly(catalog: Catalog, tmp_path: Path) -> None:
    odd = tmp_path / "line one\nline two.txt"
    odd.write_text("x")
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.bin")
    with open(raw, "wb") as f:
        f.write(b"y")
    first = add_one(catalog, odd)
    second = add_one(catalog, Path(os.fsdecode(raw)))
    assert catalog.record(first.record_id).acquisitions[0].original_path == str(odd)
    acquisition = catalog.record(second.record_id).acquisitions[0]
    assert acquisition.original_path_b64 is not None
    import base64

    assert base64.b64decode(acquisition.original_path_b64) == raw
    # The result names the file itself, which a script can open; the CLI prints it escaped.
    assert first.path == odd and second.path == Path(os.fsdecode(raw))
    assert first.path.read_text() == "x" and second.path.read_bytes() == b"y"
    assert catalog.verify().ok


def test_recursive_add_collects_files_in_a_stable_order_and_skips_the_catalog(tmp_path: Path, operator: Agent) -> None:
    tree = tmp_path / "incoming"
    (tree / "b").mkdir(parents=True)
    (tree / "a.txt").write_text("1")
    (tree / "b" / "c.txt").write_text("2")
    with Catalog.init(tree / "catalog", operator=operator) as catalog:
        results = catalog.add([tree], recursive=True)
        assert [Path(r.path).name for r in results] == ["a.txt", "c.txt"]


def test_a_symlink_loop_is_refused_before_anything_is_added(catalog: Catalog, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "loop").symlink_to(tree)
    with pytest.raises(InputError, match="symbolic link loop"):
        catalog.add([tree], recursive=True)
    assert list(catalog.records()) == [] and len(catalog.history()) == 1


def test_a_bad_path_among_good_ones_changes_nothing(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("good")
    with pytest.raises(InputError, match="no such file") as excinfo:
        catalog.add([tmp_path / "good.txt", tmp_path / "missing.txt"])
    assert "missing.txt" in str(excinfo.value)
    assert list(catalog.records()) == []
    with pytest.raises(InputError, match="is a directory"):
        catalog.add([tmp_path])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        catalog.add([fifo])
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="broken symbolic link"):
        catalog.add([tmp_path / "dangling"])
    assert list(catalog.records()) == [] and not any((catalog.path / "blobs").rglob("sha256/*/*/*"))


def test_a_failure_before_commit_leaves_no_record_claiming_the_file(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f.bin").write_bytes(b"bytes that never get a record")

    def fail(*_: object, **__: object) -> None:
        raise OSError("simulated crash while writing the rows")

    monkeypatch.setattr(catalog.db, "insert_rows", fail)  # the last step, after the event
    with pytest.raises(OSError, match="simulated crash"):
        add_one(catalog, tmp_path / "f.bin")
    monkeypatch.undo()
    assert list(catalog.records()) == []
    assert [e.action for e in catalog.history()] == ["catalog.created"]  # the event rolled back too
    assert run_sql(catalog, "select count(*) from artifact") == [(0,)]
    assert catalog.verify().ok
    # retrying works and finds the bytes already stored
    result = add_one(catalog, tmp_path / "f.bin")
    assert result.new_record and not result.new_bytes


def test_verify_finds_a_changed_blob(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"original")
    result = add_one(catalog, tmp_path / "f.bin")
    path = catalog.artifact_path(result.sha256)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    report = catalog.verify()
    assert not report.ok
    assert (
        DigestMismatch(
            sha256=result.sha256,
            algorithm="sha256",
            expected=result.sha256,
            found=hashlib.sha256(b"tampered").hexdigest(),
        )
        in report.findings
    )


@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_a_photo_whose_bytes_are_damaged_is_one_problem_not_a_forged_analysis(
    catalog: Catalog, tmp_path: Path, damage: str
) -> None:
    """An analysis made again from damaged bytes would differ from its honest document: the
    bytes are the problem (said once), and the analysis is a notice, not an analysis_mismatch."""
    photo = Path(__file__).resolve().parent.parent / "examples" / "damaged-building.jpg"
    result = add_one(catalog, photo)
    [(document, analysis)] = catalog.analyses(result.record_id)
    assert analysis is not None and analysis.usable_hashes()
    path = catalog.artifact_path(result.sha256)
    if damage == "missing":
        path.unlink()
    else:
        os.chmod(path, 0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # in the picture's data: its hash would change
        path.write_bytes(bytes(data))
    report = catalog.verify(deep=True, record_event=False)
    assert {f.kind for f in report.findings} == {"digest_mismatch" if damage == "changed" else "blob_missing"}
    [notice] = report.notices
    assert isinstance(notice, AnalysisNotRechecked) and notice.document == document


def test_verify_finds_a_missing_blob(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"original")
    result = add_one(catalog, tmp_path / "f.bin")
    catalog.artifact_path(result.sha256).unlink()
    assert catalog.verify().findings == (BlobMissing(sha256=result.sha256),)


def _edit_db(catalog: Catalog, sql: str | Callable[[str], str], params: dict[str, object] | None = None) -> None:
    """Run *sql* on the catalog's database behind the library's back (a function of the
    database's dialect when the SQL differs between them)."""
    run_sql(catalog, sql if isinstance(sql, str) else sql(database_dialect(catalog)), params)


def test_verify_finds_an_event_edited_in_the_database(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"x")
    add_one(catalog, tmp_path / "f.bin")
    _edit_db(
        catalog,
        lambda dialect: (
            f"update custody_event set actor = {json_set(dialect, 'actor', '$.name', 'Someone Else')} where seq = 2"
        ),
    )
    findings = catalog.verify(record_event=False).findings
    # The event's own hash, its Merkle leaf and the signed checkpoint over it all show it.
    assert [type(f) for f in findings] == [EventEdited, MerkleLeafMismatch, CheckpointMismatch]
    assert findings[0].seq == 2  # type: ignore[attr-defined]
    assert findings[1].seq == 2  # type: ignore[attr-defined]
    assert findings[2].first_seq == 2  # type: ignore[attr-defined]


def test_verify_finds_a_deleted_event_and_the_acquisition_it_logged(catalog: Catalog, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(name)
    results = catalog.add([tmp_path / n for n in ("a", "b", "c")])
    run_sql(catalog, "delete from custody_event where seq = 3", foreign_keys=False)
    findings = catalog.verify(record_event=False).findings
    assert findings[0] == EventMissing(seq=3, found=4)
    assert UnloggedChange(subject=f"record {results[1].record_id}", what="its creation") in findings


def test_verify_finds_a_rewritten_chain_link(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    add_one(catalog, tmp_path / "a")
    _edit_db(catalog, "update custody_event set prev_hash = :hash where seq = 2", {"hash": "f" * 64})
    findings = catalog.verify(record_event=False).findings
    assert any(isinstance(f, EventEdited) and f.seq == 2 for f in findings)
    assert any(isinstance(f, BrokenLink) and f.seq == 2 for f in findings)


@pytest.mark.parametrize(
    ("sql", "field"),
    [
        pytest.param("update record set title = 'a different title'", "title", id="title"),
        pytest.param("insert into record_tag (record_id, tag) select id, 'planted' from record", "tags", id="tag"),
        pytest.param(
            lambda d: f"update record_part set body = {json_set(d, 'body', '$.text', 'rewritten note')}",
            "notes",
            id="note",
        ),
        pytest.param(
            lambda d: (
                f"update acquisition set body = {json_set(d, 'body', '$.source_url', 'https://elsewhere.example')}"
            ),
            "acquisitions",
            id="source_url",
        ),
        pytest.param("update artifact set media_type = 'video/mp4'", "artifacts", id="media_type"),
        pytest.param(
            lambda d: f"update artifact set extracted = {json_set(d, 'extracted', '$.exif.gps.latitude', 1.5)}",
            "artifacts",
            id="latitude",
        ),
    ],
)
def test_verify_finds_records_changed_behind_the_custody_log(
    catalog: Catalog, jpeg_file: Any, sql: str | Callable[[str], str], field: str
) -> None:
    # The photo alone: each edit changes every row of its table, and an analysis document's
    # artifact row has no metadata to edit (PostgreSQL refuses jsonb_set on its JSON null).
    [result] = catalog.add([jpeg_file()], tags=["t"], note="a note", source_url="https://t.me/x/1", analyze=False)
    assert catalog.verify(record_event=False).ok
    _edit_db(catalog, sql)
    findings = catalog.verify(record_event=False).findings
    assert findings == (RecordMismatch(record_id=result.record_id, fields=(field,)),)


def test_verify_finds_a_record_deleted_from_the_database(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    [result] = catalog.add([tmp_path / "a"], tags=["t"])
    for table in ("record_tag", "acquisition", "record_artifact", "record"):
        column = "id" if table == "record" else "record_id"
        run_sql(catalog, f"delete from {table} where {column} = :id", {"id": result.record_id})
    assert catalog.verify(record_event=False).findings == (RecordMissing(record_id=result.record_id),)


def test_verification_is_itself_logged(catalog: Catalog) -> None:
    report = catalog.verify()
    last = catalog.history()[-1]
    assert last.action == "catalog.verified" and last.details["ok"] is report.ok


def test_stored_bytes_is_what_verify_reads(catalog: Catalog, tmp_path: Path) -> None:
    assert catalog.stored_bytes() == 0
    contents = [b"abc", b"0123456789", b"", b"x" * 70_000]
    for i, content in enumerate(contents):
        (tmp_path / f"f{i}.bin").write_bytes(content)
    (tmp_path / "again.bin").write_bytes(b"abc")  # the same bytes again: stored, and counted, once
    catalog.add([*(tmp_path / f"f{i}.bin" for i in range(len(contents))), tmp_path / "again.bin"])
    read: list[int] = []
    report = catalog.verify(progress=read.append, record_event=False)
    assert report.ok
    assert catalog.stored_bytes() == sum(map(len, contents)) == report.bytes_checked == sum(read)


def test_open_refuses_what_is_not_a_usable_catalog(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(CatalogNotFoundError, match="no such catalog"):
        Catalog.open(tmp_path / "nothing-here")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CatalogNotFoundError, match="not a catalog"):
        Catalog.open(tmp_path / "plain")
    config = catalog.path / "catalog.toml"
    config.write_text(config.read_text().replace("format_version = 1", "format_version = 99"))
    with pytest.raises(CatalogVersionError, match="newer"):
        Catalog.open(catalog.path)


def test_a_newer_database_schema_is_refused(catalog: Catalog) -> None:
    _edit_db(catalog, "update alembic_version set version_num = '9999_future'")
    with pytest.raises(CatalogVersionError, match="newer than this version"):
        Catalog.open(catalog.path)


@pytest.mark.sqlite_only
def test_a_corrupt_database_file_is_refused_clearly(catalog: Catalog) -> None:
    catalog.close()
    for suffix in ("-wal", "-shm"):
        (catalog.path / f"catalog.db{suffix}").unlink(missing_ok=True)
    (catalog.path / "catalog.db").write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(CatalogError, match=r"cannot be read .* it may be corrupt"):
        Catalog.open(catalog.path)


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(InputError, match="not an empty directory"):
        Catalog.init(tmp_path / "full")


def test_operator_defaults_to_the_os_user_and_can_be_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVIDENCE_CATALOG_OPERATOR", raising=False)
    with Catalog.init(tmp_path / "c") as catalog:
        assert catalog.operator.name.strip() and catalog.operator.host
    monkeypatch.setenv("EVIDENCE_CATALOG_OPERATOR", "Env Person <env@example.org>")
    with Catalog.open(tmp_path / "c") as catalog:
        assert (catalog.operator.name, catalog.operator.email) == ("Env Person", "env@example.org")
    with Catalog.open(tmp_path / "c", operator="Flag Person") as catalog:
        assert catalog.operator.name == "Flag Person"


# -- export -----------------------------------------------------------------------------------


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def test_json_export_validates_and_round_trips(catalog: Catalog, jpeg_file: Any, tmp_path: Path) -> None:
    results = catalog.add([jpeg_file(), jpeg_file(colour=(1, 2, 3))], tags=["x"])
    exported = catalog.export(tmp_path / "out.json")
    document = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    _validator("export").validate(document)
    bundle = from_document(document, model.ExportBundle)
    assert [r.id for r in bundle.records] == [r.record_id for r in results]
    assert list(bundle.records) == list(catalog.records())
    assert bundle.complete_log and list(bundle.custody_events) == catalog.history()[:-1]
    assert exported.sha256 == hashlib.sha256((tmp_path / "out.json").read_bytes()).hexdigest()
    last = catalog.history()[-1]
    assert last.action == "records.exported" and last.details["sha256"] == exported.sha256


def test_jsonl_export_of_selected_records(catalog: Catalog, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    first, _second = catalog.add([tmp_path / "a", tmp_path / "b"])
    catalog.export(tmp_path / "out.jsonl", format="jsonl", record_ids=[first.record_id])
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    schemas = {
        SCHEMA_IDS[model.EvidenceRecord]: "evidence-record",
        SCHEMA_IDS[model.CustodyEvent]: "custody-event",
        CHECKPOINT_SCHEMA: "checkpoint",
    }
    for line in lines:
        _validator(schemas[line["schema"]]).validate(line)
    assert [line["id"] for line in lines if "id" in line] == [first.record_id]
    assert {line["subject"] for line in lines if "seq" in line} == {first.record_id}
    # Last, the log's signed checkpoint, which covers every event (and more: the whole log).
    assert lines[-1]["schema"] == CHECKPOINT_SCHEMA
    assert lines[-1]["tree_size"] == len(catalog.history()) - 1  # all but this export's own event


def test_export_never_replaces_a_file_and_refuses_unknown_records(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "exists.json").write_text("keep me")
    with pytest.raises(InputError, match="already exists"):
        catalog.export(tmp_path / "exists.json")
    assert (tmp_path / "exists.json").read_text() == "keep me"
    with pytest.raises(NotFoundError):
        catalog.export(tmp_path / "new.json", record_ids=[model.new_id()])
    with pytest.raises(InputError, match="not a record id"):
        catalog.export(tmp_path / "new.json", record_ids=["nonsense"])
    assert not (tmp_path / "new.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def _exported_events(catalog: Catalog) -> list[Any]:
    return [e for e in catalog.history() if e.action == Action.RECORDS_EXPORTED]


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize("aside", ["renamed aside", "left under its temporary name"])
def test_a_logged_export_that_cannot_be_named_is_kept_where_the_error_says(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aside: str
) -> None:
    """The export is logged before it is named; when naming it fails, the complete file must be
    where the message says (it is in the log), never removed."""
    source = tmp_path / "photo.txt"
    source.write_text("evidence")
    catalog.add([source])
    target = tmp_path / "out" / "export.json"
    target.parent.mkdir()

    def cannot_link(src: Path, dst: Path) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr("evidence_catalog.operations.exporting.place_new_file", cannot_link)
    if aside == "left under its temporary name":
        rename = Path.rename

        def cannot_rename(self: Path, dst: Any) -> Any:
            if self.name.startswith(".export-"):
                raise OSError(errno.EACCES, "Permission denied")
            return rename(self, dst)

        monkeypatch.setattr(Path, "rename", cannot_rename)
    with pytest.raises(StorageError, match="written and logged, but could not be given its name") as raised:
        catalog.export(target)
    monkeypatch.undo()
    named = raised.value.message.rsplit("it is complete in ", 1)[1]
    kept = list(target.parent.iterdir())
    assert len(kept) == 1 and not target.exists()
    assert kept[0].name == Path(named).name
    assert kept[0].name.endswith(".kept" if aside == "renamed aside" else ".part")
    [event] = _exported_events(catalog)
    assert hashlib.sha256(kept[0].read_bytes()).hexdigest() == event.details["sha256"]


@pytest.mark.no_postgresql_pass
def test_an_export_whose_folder_cannot_be_synced_is_named_and_says_so(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "photo.txt"
    source.write_text("evidence")
    catalog.add([source])
    target = tmp_path / "out" / "export.json"
    target.parent.mkdir()

    def cannot_sync(path: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("evidence_catalog.operations.exporting.fsync_dir", cannot_sync)
    with pytest.raises(StorageError, match="written, logged and named, but its folder could not be synced"):
        catalog.export(target)
    monkeypatch.undo()
    assert [p.name for p in target.parent.iterdir()] == ["export.json"]
    [event] = _exported_events(catalog)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == event.details["sha256"]


@pytest.mark.slow
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    tags=st.lists(
        st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=8).map(str.strip).filter(bool),
        max_size=3,
    ),
)
def test_any_added_files_verify_and_export_round_trips(
    tmp_path_factory: pytest.TempPathFactory, files: list[bytes], tags: list[str]
) -> None:
    base = tmp_path_factory.mktemp("prop")
    paths = []
    for i, data in enumerate(files):
        path = base / f"f{i}"
        path.write_bytes(data)
        paths.append(path)
    with Catalog.init(
        base / "cat", operator=Agent(name="p"), algorithms=["sha256", "sha1"], clock=FixedClock()
    ) as catalog:
        results = catalog.add(paths, tags=tags, analyze=False)  # any bytes: what they round-trip as
        assert len({r.record_id for r in results}) == len(set(files))
        report = catalog.verify()
        assert report.ok and report.artifacts_checked == len(set(files))
        catalog.export(base / "out.json")
        bundle = from_document(json.loads((base / "out.json").read_text(encoding="utf-8")), model.ExportBundle)
        assert list(bundle.records) == list(catalog.records())
        for record in bundle.records:
            [entry] = record.artifacts
            assert catalog.artifact_path(entry.artifact.sha256).read_bytes() in files
            assert (
                entry.artifact.digests.sha1
                == hashlib.sha1(catalog.artifact_path(entry.artifact.sha256).read_bytes()).hexdigest()
            )


@pytest.mark.parametrize(
    ("sql", "subject"),
    [
        pytest.param(
            lambda d: f"update record_part set body = {json_set(d, 'body', '$.text', '')}", "record", id="note"
        ),
        pytest.param(
            lambda d: f"update acquisition set body = {json_set(d, 'body', '$.method', 'teleported')}",
            "record",
            id="method",
        ),
        pytest.param("update record set created_by = '{}'", "record", id="created_by"),
        pytest.param("update artifact set md5 = 'not hex'", "artifact", id="md5"),
    ],
)
def test_rows_made_invalid_are_findings_and_everything_else_is_still_checked(
    catalog: Catalog, tmp_path: Path, sql: str | Callable[[str], str], subject: str
) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    first, second = catalog.add([tmp_path / "a", tmp_path / "b"], note="a note")
    statement = sql if isinstance(sql, str) else sql(database_dialect(catalog))
    if statement.startswith("update artifact"):  # only the first file's artifact
        _edit_db(catalog, statement + " where sha256 = :sha256", {"sha256": first.sha256})
    else:
        _edit_db(catalog, statement)
    catalog.artifact_path(second.sha256).chmod(0o644)
    catalog.artifact_path(second.sha256).write_text("changed")
    report = catalog.verify(record_event=False)
    unreadable = [f for f in report.findings if isinstance(f, EntryUnreadable)]
    assert any(f.subject.startswith(subject + " ") for f in unreadable), unreadable
    assert any(isinstance(f, DigestMismatch) and f.sha256 == second.sha256 for f in report.findings)
    assert report.events_checked == len(catalog.history())


@pytest.mark.sqlite_only
def test_a_clean_copy_on_read_only_media_opens_and_verifies(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from evidence_catalog.store import engine

    # A read-only mount cannot be made here; the file system's answer is what is replaced.
    monkeypatch.setattr(engine, "on_read_only_media", lambda _: True)

    (tmp_path / "a").write_text("a")
    catalog.add([tmp_path / "a"])
    catalog.close()
    copy = tmp_path / "copy"
    shutil.copytree(catalog.path, copy)
    assert not (copy / "catalog.db-wal").exists()
    with Catalog.open(copy, read_only=True) as readonly:
        assert len(list(readonly.records())) == 1
        report = readonly.verify()
        assert report.ok and not report.logged
        with pytest.raises(StorageError, match="could not be written"):
            readonly.add([tmp_path / "a"])
    assert not (copy / "catalog.db-wal").exists() and not (copy / "catalog.db-shm").exists()


@pytest.mark.sqlite_only
def test_verifying_an_analysed_copy_on_read_only_media_writes_nothing_in_it(
    catalog: Catalog, jpeg_file: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyses made again to compare are made outside the catalog: on read-only media
    (where a work folder in the catalog cannot be made) the copy verifies, and nothing in its
    folder changes, not even a folder's time of change."""
    import shutil

    from evidence_catalog.store import engine

    monkeypatch.setattr(engine, "on_read_only_media", lambda _: True)  # as in the test above
    [added] = catalog.add([jpeg_file()])
    assert len(catalog.analyses(added.record_id)) == 1
    catalog.close()
    copy = tmp_path / "copy"
    shutil.copytree(catalog.path, copy)

    def tree() -> dict[Path, int]:
        return {path: path.lstat().st_mtime_ns for path in (copy, *copy.rglob("*"))}

    before = tree()
    with Catalog.open(copy, read_only=True) as readonly:
        report = readonly.verify(deep=True)
    assert report.ok and report.analyses_rechecked == 1 and report.notices == ()
    assert tree() == before


@pytest.mark.sqlite_only
@pytest.mark.parametrize("name", ["c%41", "what?", "hash#tag", "user@host", "sp ace%20#?x", "bad-\udcff"])
def test_catalog_paths_with_url_characters_keep_their_database_inside(
    tmp_path: Path, operator: Agent, name: str
) -> None:
    other = Catalog.init(tmp_path / "cA", operator=operator)
    other.close()
    directory = tmp_path / name
    with Catalog.init(directory, operator=operator) as catalog:
        (tmp_path / "f").write_text("f")
        catalog.add([tmp_path / "f"])
    assert (directory / "catalog.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cA", name, "f"])
    for read_only in (False, True):
        with Catalog.open(directory, read_only=read_only) as reopened:
            assert len(list(reopened.records())) == 1
    with Catalog.open(tmp_path / "cA") as untouched:
        assert [e.action for e in untouched.history()] == ["catalog.created"]


def test_re_adding_over_a_damaged_stored_copy_restores_it_and_keeps_the_damaged_one(
    catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "ev.txt").write_text("the evidence")
    first = add_one(catalog, tmp_path / "ev.txt")
    stored = catalog.artifact_path(first.sha256)
    stored.chmod(0o644)
    stored.write_text("tampered evidenc")
    assert not catalog.verify(record_event=False).ok
    again = add_one(catalog, tmp_path / "ev.txt")
    assert again.quarantined is not None and again.new_bytes
    assert stored.read_text() == "the evidence"
    assert (catalog.path / "blobs" / again.quarantined).read_text() == "tampered evidenc"
    assert catalog.history(first.record_id)[-1].details["damaged_copy_quarantined"] == again.quarantined
    assert catalog.verify().ok


def test_export_refuses_odd_targets(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    catalog.add([tmp_path / "a"])
    for output, message in (
        ("-", "give a file name"),
        (str(tmp_path) + os.sep + "newdir" + os.sep, "is a directory"),
        (tmp_path, "is a directory"),
        (catalog.path / "blobs" / "x.json", "inside the catalog directory"),
        (catalog.path / "export.json", "inside the catalog directory"),
    ):
        with pytest.raises(InputError, match=message):
            catalog.export(output)
    assert not (tmp_path / "newdir").exists()
    assert [e.action for e in catalog.history()][-1] == "artifact.added"


def test_an_export_that_cannot_be_logged_is_not_written_or_is_removed(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_text("a")
    catalog.add([tmp_path / "a"])
    with Catalog.open(catalog.path, read_only=True) as readonly:
        with pytest.raises(StorageError, match="read-only, so an export could not be logged"):
            readonly.export(tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()

    def locked(*_: object, **__: object) -> None:
        raise StorageError("catalog database could not be written (database is locked)")

    monkeypatch.setattr(Context, "log_event", locked)
    with pytest.raises(StorageError, match="could not be logged, so it was not written"):
        catalog.export(tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_an_export_may_have_the_longest_name_the_file_system_allows(catalog: Catalog, tmp_path: Path) -> None:
    name = "e" * 250 + ".json"
    result = catalog.export(tmp_path / name)
    assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == result.sha256


def test_file_systems_without_hard_links_still_store_and_export(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def no_links(*_: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a").write_text("on a FAT stick")
    [result] = catalog.add([tmp_path / "a"])
    assert catalog.artifact_path(result.sha256).read_text() == "on a FAT stick"
    [again] = catalog.add([tmp_path / "a"])
    assert not again.new_bytes
    exported = catalog.export(tmp_path / "out.json")
    assert hashlib.sha256((tmp_path / "out.json").read_bytes()).hexdigest() == exported.sha256
    with pytest.raises(InputError, match="already exists"):
        catalog.export(tmp_path / "out.json")
    monkeypatch.undo()
    assert catalog.verify().ok


def test_a_failed_init_leaves_nothing_behind_and_can_be_retried(
    tmp_path: Path, operator: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_catalog import catalog as catalog_module

    def broken(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:  # (undoing only this: the PostgreSQL run's own patch stays)
        patched.setattr(catalog_module.CatalogDatabase, "create", broken)
        with pytest.raises(StorageError, match="cannot create catalog"):
            Catalog.init(tmp_path / "new", operator=operator)
        (tmp_path / "empty").mkdir()
        with pytest.raises(StorageError):
            Catalog.init(tmp_path / "empty", operator=operator)
    assert not (tmp_path / "new").exists() and list((tmp_path / "empty").iterdir()) == []
    for folder in ("new", "empty"):
        with Catalog.init(tmp_path / folder, operator=operator) as retried:
            assert retried.verify(record_event=False).ok


def test_a_single_path_or_tag_is_not_taken_character_by_character(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_text("x")
    [result] = catalog.add(str(tmp_path / "photo.jpg"), tags="school")  # type: ignore[arg-type]
    assert catalog.record(result.record_id).tags == ("school",)


def test_files_added_to_one_record_share_one_note(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "post.txt").write_text("post")
    [post] = catalog.add([tmp_path / "post.txt"])
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    catalog.add([tmp_path / "a", tmp_path / "b"], record_id=post.record_id, note="two files from one witness")
    assert [n.text for n in catalog.record(post.record_id).notes] == ["two files from one witness"]
    assert catalog.verify().ok


@pytest.mark.sqlite_only
def test_a_read_only_reader_of_a_live_catalog_sees_what_a_writer_adds(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "first").write_text("first")
    catalog.add([tmp_path / "first"])
    with Catalog.open(catalog.path, read_only=True) as reader:
        assert len(reader.record_ids()) == 1
        for i in range(20):
            (tmp_path / f"f{i}").write_text(str(i))
        catalog.add([tmp_path / f"f{i}" for i in range(20)])
        with catalog.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        assert len(reader.record_ids()) == 21
        report = reader.verify()
        assert report.ok and not report.logged


def test_an_unreadable_stored_copy_is_quarantined_too(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "ev.txt").write_text("evidence")
    [first] = catalog.add([tmp_path / "ev.txt"])
    stored = catalog.artifact_path(first.sha256)
    stored.unlink()
    stored.mkdir()  # something that is not a readable file now sits at the address
    [again] = catalog.add([tmp_path / "ev.txt"])
    assert again.quarantined is not None and stored.read_text() == "evidence"
    assert (catalog.path / "blobs" / again.quarantined).is_dir()
    assert catalog.verify().ok


def test_identical_files_in_one_add_share_one_note(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("same")
    (tmp_path / "b").write_text("same")
    first, second = catalog.add([tmp_path / "a", tmp_path / "b"], note="seized from a desk")
    assert first.record_id == second.record_id
    assert [n.text for n in catalog.record(first.record_id).notes] == ["seized from a desk"]
    assert catalog.verify().ok


def test_concurrent_inits_of_one_path_leave_one_intact_catalog(tmp_path: Path, operator: Agent) -> None:
    import threading

    for round_ in range(8):
        target = tmp_path / f"race-{round_}"
        barrier = threading.Barrier(2)
        outcomes: list[object] = []

        def init(target: Path, barrier: threading.Barrier, outcomes: list[object]) -> None:
            barrier.wait()
            try:
                Catalog.init(target, operator=operator).close()
                outcomes.append("ok")
            except InputError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=init, args=(target, barrier, outcomes)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("ok") == 1 and len(outcomes) == 2, outcomes  # the other refused, not crashed
        with Catalog.open(target) as catalog:
            assert [e.action for e in catalog.history()] == ["catalog.created"]
            assert (target / "blobs").is_dir()


def test_a_report_a_claim_rests_on_is_not_linked_away(catalog: Catalog, tmp_path: Path) -> None:
    """Linking would leave the claim naming a source its record no longer holds."""
    digest = tmp_path / "digest.txt"
    digest.write_text("Feed (Twitter)\nFirst post\nFirst post\nSecond post\nSecond post\n", encoding="utf-8")
    catalog.ingest(digest)
    first, second = catalog.record_ids()
    report = catalog.record(first).reports[0]
    catalog.claim(first, summary="what the post alleges", source_report_id=report.id)
    events = len(catalog.history())
    with pytest.raises(InputError, match=r"names report .* as its source"):
        catalog.link(report.id, second)
    assert len(catalog.history()) == events
    assert [r.id for r in catalog.record(first).reports] == [report.id]


def _normalised(catalog: Catalog, results: list[AddResult]) -> tuple[Any, ...]:
    """What adding did, with the random ids and the times taken out: records named by the order
    they were first added to."""
    names: dict[str, str] = {}
    for result in results:
        names.setdefault(result.record_id, f"record {len(names)}")
    outcome = [(r.path, names[r.record_id], r.sha256, r.new_record, r.new_on_record, r.new_bytes) for r in results]
    records = []
    for record_id, name in names.items():
        record = catalog.record(record_id)
        records.append(
            (
                name,
                record.title,
                record.tags,
                [e.artifact.sha256 for e in record.artifacts],
                [e.artifact.media_type for e in record.artifacts],
                [(a.artifact_sha256, a.original_path) for a in record.acquisitions],
                [n.text for n in record.notes],
            )
        )

    def details(event: model.CustodyEvent) -> dict[str, Any]:
        found = json.loads(json.dumps(event.details))
        del found["salt"]  # each event's own random secret
        found["acquisition"] = {
            k: v for k, v in found["acquisition"].items() if k not in ("id", "started_at", "ended_at")
        }
        if found["note"] is not None:
            found["note"] = found["note"]["text"]
        if found["record"] is not None:
            del found["record"]["created_at"]
        return found

    events = [
        (e.action, names.get(e.subject, e.subject), details(e))
        for e in catalog.history()
        if e.action == "artifact.added"
    ]
    return outcome, records, events


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.lists(st.integers(0, 4), min_size=1, max_size=8),
    second=st.lists(st.integers(0, 6), min_size=1, max_size=8),
    tags=st.lists(st.sampled_from(["a", "b", "Kharkiv"]), max_size=2),
    note=st.none() | st.just("seen twice"),
    onto_first=st.booleans(),
    batch=st.integers(2, 9),
)
def test_adding_in_batches_does_what_adding_one_by_one_does(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[int],
    second: list[int],
    tags: list[str],
    note: str | None,
    onto_first: bool,
    batch: int,
) -> None:
    # Repeated bytes in one batch and across calls, tags and a note on records that exist, and
    # everything onto one given record: each file as if added on its own.
    base = tmp_path_factory.mktemp("batches")
    contents = [b"", b"same bytes", b"\x89PNG\r\n\x1a\n not really", b"statement\n", b"%PDF-1.4\n", b"x", b"y"]
    folder = base / "files"
    folder.mkdir()
    firsts = [folder / f"first{n}-{i}" for n, i in enumerate(first)]
    seconds = [folder / f"second{n}-{i}" for n, i in enumerate(second)]
    for path in firsts + seconds:
        path.write_bytes(contents[int(path.name.rsplit("-", 1)[1])])
    seen = []
    for size in (1, batch):
        with Catalog.init(base / f"catalog-{size}", operator=Agent(name="p"), clock=FixedClock()) as catalog:
            results = catalog.add(firsts, tags=tags, note=note, batch=size)
            target = results[0].record_id if onto_first else None
            results += catalog.add(seconds, tags=["later", *tags], note=note, record_id=target, batch=size)
            assert catalog.verify().ok
            seen.append(_normalised(catalog, results))
    assert seen[0] == seen[1]


def test_lookups_by_record_id_and_by_sha256(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"first file")
    (tmp_path / "b").write_bytes(b"second file")
    first = add_one(catalog, tmp_path / "a")
    second = add_one(catalog, tmp_path / "b")
    # the first file's bytes put on the second record too: two records hold them
    again = catalog.add([tmp_path / "a"], record_id=second.record_id)[0]
    assert again.new_on_record and not again.new_bytes
    assert catalog.has_record(first.record_id) and catalog.has_record(second.record_id)
    assert not catalog.has_record(model.new_id())
    assert catalog.records_with_artifact(first.sha256) == sorted([first.record_id, second.record_id])
    assert catalog.records_with_artifact(second.sha256) == [second.record_id]
    assert catalog.records_with_artifact(hashlib.sha256(b"never added").hexdigest()) == []
    with pytest.raises(InputError, match="not a record id"):
        catalog.has_record("x'; DROP TABLE record; --")
    with pytest.raises(InputError, match="not a SHA-256"):
        catalog.records_with_artifact(first.sha256.upper())
    # many lookups in a row do not hold connections or leave a transaction open
    for _ in range(50):
        assert catalog.has_record(first.record_id)
    # and a read-only catalog (on PostgreSQL: sessions that refuse writes) looks up the same
    with Catalog.open(catalog.path, read_only=True) as reader:
        assert reader.has_record(second.record_id) and not reader.has_record(model.new_id())
        assert reader.records_with_artifact(first.sha256) == sorted([first.record_id, second.record_id])
    (tmp_path / "c").write_bytes(b"third file")
    assert add_one(catalog, tmp_path / "c").new_record


def test_readable_records_names_a_damaged_record_and_still_reads_the_rest(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in "abcd":
        (tmp_path / name).write_text(name)
        add_one(catalog, tmp_path / name)
    first, damaged, third, fourth = catalog.record_ids()
    body = json_set(database_dialect(catalog), "body", "$.method", "teleported")
    run_sql(catalog, f"update acquisition set body = {body} where record_id = :id", {"id": damaged})
    monkeypatch.setattr(Catalog, "PAGE_SIZE", 2)  # the damaged record on the first of two pages
    with pytest.raises(ValidationError):
        list(catalog.records())  # where records() stops at the damaged one

    unreadable: list[tuple[str, EvidenceError]] = []

    def readable(**kwargs: Any) -> list[str]:
        return [r.id for r in catalog.readable_records(on_unreadable=lambda i, e: unreadable.append((i, e)), **kwargs)]

    assert readable() == [first, third, fourth]
    [(record_id, error)] = unreadable
    assert record_id == damaged and isinstance(error, ValidationError)
    assert error.where == f"record {damaged}" and "$.method" in str(error)
    unreadable.clear()
    assert readable(after=first) == [third, fourth] and [i for i, _ in unreadable] == [damaged]
    unreadable.clear()
    assert readable(after=damaged) == [third, fourth] and unreadable == []
    # those named, in the order named, after *after* if given
    assert readable(only=[fourth, damaged, first]) == [fourth, first] and [i for i, _ in unreadable] == [damaged]
    unreadable.clear()
    assert readable(only=[fourth, third, damaged, first], after=damaged) == [fourth, third] and unreadable == []
    assert readable(only=[]) == []
    with pytest.raises(NotFoundError):
        readable(only=[first, model.new_id()])
    # without a callback the damaged record is left out all the same
    assert [r.id for r in catalog.readable_records()] == [first, third, fourth]


def test_a_read_on_a_dropped_connection_is_a_storage_error_and_the_next_one_works(
    catalog: Catalog, tmp_path: Path
) -> None:
    if database_dialect(catalog) != "postgresql":
        pytest.skip("a connection the server drops is PostgreSQL's (the PostgreSQL run has it)")
    (tmp_path / "a").write_bytes(b"a file")
    added = add_one(catalog, tmp_path / "a")
    assert catalog.has_record(added.record_id)  # a pooled connection now exists
    _end_other_sessions(catalog)  # the pooled connection is dead; the client learns it on use
    with pytest.raises(StorageError, match="could not be read"):
        catalog.has_record(added.record_id)
    # that connection was dropped from the pool, not handed to the next lookup
    assert catalog.has_record(added.record_id)
    assert catalog.records_with_artifact(added.sha256) == [added.record_id]
    # and a session's read as well (on the pooled connection this read leaves behind)
    assert catalog.record(added.record_id).id == added.record_id
    _end_other_sessions(catalog)
    with pytest.raises(StorageError, match="could not be read"):
        catalog.record(added.record_id)
    assert catalog.record(added.record_id).id == added.record_id


def test_lookups_from_many_threads_at_once_each_get_their_own_answer(catalog: Catalog, tmp_path: Path) -> None:
    # On PostgreSQL one thread at a time uses the lookups' own connection; the others take
    # pooled ones.  Every answer must be the one asked for, whichever connection gave it.
    import threading

    added = []
    for n in range(4):
        (tmp_path / f"f{n}").write_bytes(f"file {n}".encode())
        added.append(add_one(catalog, tmp_path / f"f{n}"))
    unknown = model.new_id()
    wrong: list[str] = []
    start = threading.Barrier(8)

    def ask(which: int) -> None:
        mine = added[which % 4]
        start.wait()
        for _ in range(200):
            if not catalog.has_record(mine.record_id) or catalog.has_record(unknown):
                wrong.append(f"has_record in thread {which}")
            if catalog.records_with_artifact(mine.sha256) != [mine.record_id]:
                wrong.append(f"records_with_artifact in thread {which}")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    if database_dialect(catalog) == "postgresql":
        # the lookups' own connection is free again, and every pooled connection a lookup
        # borrowed went back to the pool out of autocommit, ready for a transaction
        assert not catalog.db._lookup_lock.locked()
        assert catalog.db._lookup_connection is not None and catalog.db._lookup_connection.autocommit
        pooled = [record.dbapi_connection for record in list(catalog.db.engine.pool._pool.queue)]
        assert pooled and not any(connection.autocommit for connection in pooled)
    (tmp_path / "after").write_bytes(b"added after the lookups")
    assert add_one(catalog, tmp_path / "after").new_record


def test_closing_a_catalog_ends_its_lookup_connection(tmp_path: Path, operator: Agent) -> None:
    catalog = Catalog.init(tmp_path / "cat", operator=operator)
    if database_dialect(catalog) != "postgresql":
        catalog.close()
        pytest.skip("a server session is PostgreSQL's (the PostgreSQL run has it)")
    (tmp_path / "a").write_bytes(b"a file")
    added = add_one(catalog, tmp_path / "a")
    assert catalog.has_record(added.record_id)
    assert _sessions(catalog) >= 1
    catalog.close()
    # a server process leaves pg_stat_activity a moment after its client said goodbye
    deadline = time.monotonic() + 10
    while _sessions(catalog) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions(catalog) == 0


def test_a_forked_process_reads_on_connections_of_its_own_and_leaves_its_parents_working(
    catalog: Catalog, tmp_path: Path
) -> None:
    # multiprocessing forks on Linux: a child that inherits an open catalog must not use its
    # parent's connections (two processes on one socket), nor end them when it closes.
    import multiprocessing

    (tmp_path / "a").write_bytes(b"a file")
    added = add_one(catalog, tmp_path / "a")
    assert catalog.has_record(added.record_id)  # the parent's connections now exist
    assert catalog.record(added.record_id).id == added.record_id
    context = multiprocessing.get_context("fork")
    answers = context.SimpleQueue()

    def child() -> None:
        answers.put(
            (
                catalog.has_record(added.record_id),
                catalog.records_with_artifact(added.sha256),
                catalog.record(added.record_id).id,
            )
        )
        catalog.close()  # as a script's child ends: it closes what it holds

    process = context.Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert answers.get() == (True, [added.record_id], added.record_id)
    # the parent's connections were neither used nor closed by the child
    assert catalog.has_record(added.record_id)
    assert catalog.records_with_artifact(added.sha256) == [added.record_id]
    assert catalog.record(added.record_id).id == added.record_id


def _sessions(catalog: Catalog) -> int:
    """How many sessions of the catalog's own (not the asking one) its PostgreSQL database has."""
    with raw_database(catalog) as connection:
        count = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'evidence-catalog' AND pid <> pg_backend_pid()"
        ).scalar_one()
    return int(count)


def _end_other_sessions(catalog: Catalog) -> None:
    """End every PostgreSQL session of the catalog's database but the one asking (as a server
    restart or an administrator would): pooled connections die without knowing it."""
    with raw_database(catalog) as connection:
        ended = connection.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar_one()
    assert ended >= 1


def test_every_result_names_its_file_as_a_path_whatever_was_given(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A str or a Path, relative or absolute: each result holds the absolute Path of the file
    itself (AddResult.path, IngestResult.path, ExportResult.path, ImportResult.source)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "digest.txt").write_text("Feed (Twitter)\nFirst post\nFirst post\n", encoding="utf-8")
    as_text, as_path = catalog.add(["a.txt", Path("b.txt")])
    assert (as_text.path, as_path.path) == (tmp_path / "a.txt", tmp_path / "b.txt")
    assert type(as_text.path) is type(as_path.path) and isinstance(as_text.path, Path)
    assert catalog.add_file(str(tmp_path / "a.txt")).path == tmp_path / "a.txt"
    ingested = catalog.ingest("digest.txt")
    assert isinstance(ingested.path, Path) and ingested.path == tmp_path / "digest.txt"
    for format in ("json", "bagit"):
        exported = catalog.export(f"export-{format}", format=format)  # type: ignore[arg-type]
        assert isinstance(exported.path, Path) and exported.path == tmp_path / f"export-{format}"
        with Catalog.init(tmp_path / f"other-{format}", operator=catalog.operator) as other:
            imported = other.import_records(f"export-{format}", blobs=catalog.path if format == "json" else None)
            assert isinstance(imported.source, Path) and imported.source == tmp_path / f"export-{format}"


def _refuse_new_tags(catalog: Catalog) -> None:
    """Make the database itself refuse any new tag (a trigger): the error it answers with is
    neither a lock nor a lost connection."""
    if catalog.db.engine.dialect.name == "sqlite":
        run_sql(
            catalog,
            "CREATE TRIGGER no_tags BEFORE INSERT ON record_tag BEGIN SELECT RAISE(ABORT, 'tags are frozen'); END",
        )
        return
    run_sql(
        catalog,
        "CREATE FUNCTION no_tags() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'tags are frozen'; END $$"
        " LANGUAGE plpgsql",
    )
    run_sql(catalog, "CREATE TRIGGER no_tags BEFORE INSERT ON record_tag FOR EACH ROW EXECUTE FUNCTION no_tags()")


def test_an_error_the_database_answers_with_is_the_librarys_own(catalog: Catalog, tmp_path: Path) -> None:
    """No SQLAlchemy error reaches a caller: what the database refuses is a CatalogDatabaseError
    (an EvidenceError) in its own words, and nothing was changed."""
    (tmp_path / "a.txt").write_text("a")
    [added] = catalog.add([tmp_path / "a.txt"])
    before = len(catalog.history())
    _refuse_new_tags(catalog)
    with pytest.raises(CatalogDatabaseError, match="tags are frozen") as caught:
        catalog.tag(added.record_id, ["school"])
    assert isinstance(caught.value, EvidenceError)
    assert catalog.record(added.record_id).tags == ()
    assert len(catalog.history()) == before


@pytest.mark.sqlite_only
def test_a_database_file_damaged_while_open_is_the_librarys_error(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    catalog.add([tmp_path / "a.txt"])
    catalog.db.engine.dispose()  # the next read opens the file anew
    for suffix in ("-wal", "-shm"):
        (catalog.path / f"catalog.db{suffix}").unlink(missing_ok=True)
    (catalog.path / "catalog.db").write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(CatalogDatabaseError, match=r"cannot be read .* it may be corrupt"):
        catalog.record_ids()
