"""Regressions found by independent reviews, each reproduced with real components: a real
PostgreSQL server (tests/pg_server.py), a real S3-compatible server (moto on 127.0.0.1, from
``test_objectstore.py``), real catalogs in temporary folders and the real command line.

1. Secrets are never stored: a database password (in the URL's user part or as a ``password``
   or ``sslpassword`` query parameter) is used and then forgotten; a blob-store URL or endpoint
   holding credentials is refused.
2. Two ``init`` calls racing for one empty PostgreSQL database: one wins, the other is refused
   and undoes nothing of the winner's.
3. ``fsck --remove`` never deletes bytes a concurrent writer is committing (the writer fails
   cleanly instead, and nothing refers to missing bytes).
4. A PostgreSQL account that may only read verifies a catalog (the verification is not logged).
5. A bad ``[blobs]`` setting in ``catalog.toml`` is named as such and leaks nothing.
6. Object storage: a killed multipart upload is found and aborted by ``fsck``; intact copies are
   never written again; a damaged copy is never replaced by nothing; a read cut off midway is a
   ``StorageError``.
7. Search finds the same reports on SQLite and PostgreSQL, in every script.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs
import boto3  # type: ignore[import-untyped]
import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from evidence_catalog import Catalog
from evidence_catalog.config import CONFIG_FILE, CatalogConfig
from evidence_catalog.custody import Action
from evidence_catalog.errors import CatalogError, EvidenceError, StorageError
from evidence_catalog.findings import DigestMismatch
from evidence_catalog.store.blobstore import BlobStore
from evidence_catalog.store.database import PG_WRITE_LOCK, safe_url
from evidence_catalog.store.objectstore import PART_SIZE, ObjectBlobStore

from . import test_objectstore
from .conftest import CliResult
from .pg_server import PostgresServer
from .test_objectstore import KEY_ID, S3Backend, address, fail_fast

# The S3 server (moto, on 127.0.0.1), its credentials and a versioned bucket of each test's own,
# and a catalog whose blobs are there, as ``test_objectstore.py`` makes them.
_botocore_models_parsed_once = test_objectstore._botocore_models_parsed_once
s3_endpoint = test_objectstore.s3_endpoint
closed_endpoint = test_objectstore.closed_endpoint
aws_env = test_objectstore.aws_env
s3 = test_objectstore.s3
bucket = test_objectstore.bucket
s3_backend = test_objectstore.s3_backend
s3_catalog = test_objectstore.s3_catalog

RunCli = Callable[..., CliResult]


def _psycopg_url(url: str | sa.URL) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg) takes it."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# -- 1. secrets are never stored -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://alice:{secret}@db.example.org:5433/evidence?sslmode=require",
        "postgresql+psycopg://alice@db.example.org/evidence?password={secret}&sslmode=require",
        "postgresql+psycopg://alice@db.example.org/evidence?sslpassword={secret}&sslmode=require",
        "postgresql+psycopg:///evidence?host=db.example.org&user=alice&password={secret}&sslmode=require",
        "postgresql+psycopg://alice:{secret}@db.example.org/evidence?password={secret}&sslpassword={secret}"
        "&sslmode=require",
    ],
)
def test_safe_url_leaves_out_every_password_and_keeps_the_rest(url: str) -> None:
    secret = "Hunter2-" + uuid.uuid4().hex
    safe = safe_url(url.format(secret=secret))
    assert secret not in safe
    parsed = sa.make_url(safe)
    assert parsed.password is None
    assert not {"password", "sslpassword"} & set(parsed.query)
    assert parsed.database == "evidence" and parsed.query["sslmode"] == "require"
    assert "alice" in safe and "db.example.org" in safe


@settings(max_examples=60)
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", min_size=1),
    where=st.sets(st.sampled_from(["user info", "password", "sslpassword"]), min_size=1),
    other=st.dictionaries(st.sampled_from(["sslmode", "application_name", "connect_timeout"]), st.just("x")),
)
def test_no_password_survives_safe_url(secret: str, where: set[str], other: dict[str, str]) -> None:
    marked = f"S3CR3T{secret}"  # nothing else in the URL holds it
    url = sa.make_url("postgresql+psycopg://auditor@db.example.org:5432/evidence").update_query_dict(other)
    if "user info" in where:
        url = url.set(password=marked)
    url = url.update_query_dict(dict.fromkeys(where - {"user info"}, marked))
    safe = safe_url(url)
    assert marked not in safe
    parsed = sa.make_url(safe)
    assert parsed.password is None and dict(parsed.query) == other
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "auditor",
        "db.example.org",
        5432,
        "evidence",
    )


@pytest.mark.parametrize("given_as", ["user info", "password parameter", "sslpassword parameter"])
def test_a_database_password_is_used_once_and_written_nowhere(
    pg_database: str, run_cli: RunCli, tmp_path: Path, given_as: str
) -> None:
    """The test server trusts every connection, so any password is accepted: what matters is
    where it ends up (nowhere)."""
    secret = "TopSecret-" + uuid.uuid4().hex
    base = sa.make_url(pg_database)
    if given_as == "user info":
        url = base.set(password=secret)
    else:
        url = base.update_query_dict({given_as.split()[0]: secret})
    folder = tmp_path / "catalog"
    evidence = tmp_path / "statement.txt"
    evidence.write_text("a witness statement")
    exported = tmp_path / "export.json"
    results = [run_cli("init", folder, "--database", url.render_as_string(hide_password=False))]
    assert results[0].code == 0, results[0].err
    for args in (
        ("add", evidence, "--catalog", folder),
        ("list", "--catalog", folder),
        ("verify", "--catalog", folder),
        ("log", "--catalog", folder),
        ("export", "--catalog", folder, "--format", "json", "-o", exported),
    ):
        result = run_cli(*args)
        assert result.code == 0, (args, result.err)
        results.append(result)
    for result in results:
        assert secret not in result.out + result.err
    written = [*_files_under(folder), exported]
    assert folder / CONFIG_FILE in written and (folder / "keys" / "log.pub") in written
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    stored = sa.make_url(CatalogConfig.load(folder).database_url or "")
    assert stored.password is None and not {"password", "sslpassword"} & set(stored.query)
    assert (stored.host, stored.port, stored.database) == (base.host, base.port, base.database)
    with Catalog.open(folder) as catalog:  # what is kept is enough to open it again
        assert len(catalog.record_ids()) == 1 and catalog.verify(record_event=False).ok


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--blobs", "s3://AKIAEXAMPLE:{secret}@evidence/team"], "--blobs"),
        (["--blobs", "s3a://{secret}@evidence/team"], "--blobs"),
        (
            ["--blobs", "s3://evidence/team", "--blobs-endpoint", "http://minio:{secret}@127.0.0.1:9000"],
            "--blobs-endpoint",
        ),
        (
            ["--blobs", "s3://evidence/team", "--blobs-endpoint", "https://{secret}@minio.example.org"],
            "--blobs-endpoint",
        ),
    ],
)
def test_init_refuses_credentials_in_blob_urls(run_cli: RunCli, tmp_path: Path, args: list[str], option: str) -> None:
    secret = "Secret-" + uuid.uuid4().hex
    result = run_cli("init", tmp_path / "catalog", *(a.format(secret=secret) for a in args))
    assert result.code == 2, result.out
    assert result.err.strip().splitlines() == [result.err.strip()]  # one line
    assert result.err.startswith(f"error: {option}:")
    assert secret not in result.out + result.err
    assert not (tmp_path / "catalog").exists()  # nothing made


# -- 2. two inits racing for one PostgreSQL database ------------------------------------------


def _waiting_for_the_write_lock(holder: psycopg.Connection[Any]) -> int:
    row = holder.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    return int(row[0]) if row else 0


def _race_inits(
    url: str, folders: list[Path], *, hold_lock: bool, before_release: Callable[[], None] | None = None
) -> dict[str, BaseException | None]:
    """``Catalog.init`` of each folder on the database *url*, in threads at once; what each
    raised (``None``: it made its catalog).

    With *hold_lock*, the catalog's write lock is held meanwhile (as a slow migration of another
    process would hold it) until every init waits for it, in the order of *folders*: they have
    all looked at the database by then, and then get the lock in that order."""
    outcomes: dict[str, BaseException | None] = {}
    start = threading.Barrier(len(folders))

    def init(folder: Path) -> None:
        if not hold_lock:
            start.wait()
        try:
            Catalog.init(folder, database=url, operator=f"Analyst {folder.name} <a@example.org>").close()
        except Exception as exc:  # noqa: BLE001  (what each raised is the result)
            outcomes[folder.name] = exc
        else:
            outcomes[folder.name] = None

    threads = [threading.Thread(target=init, args=(folder,)) for folder in folders]
    with psycopg.connect(_psycopg_url(url), autocommit=True) as holder:
        if hold_lock:
            holder.execute("SELECT pg_advisory_lock(%s)", (PG_WRITE_LOCK,))
        for count, thread in enumerate(threads, start=1):
            thread.start()
            if hold_lock:
                deadline = time.monotonic() + 30
                while _waiting_for_the_write_lock(holder) < count:
                    assert time.monotonic() < deadline, "the inits never waited for the write lock"
                    time.sleep(0.01)
        if before_release is not None:
            before_release()
        if hold_lock:
            holder.execute("SELECT pg_advisory_unlock(%s)", (PG_WRITE_LOCK,))
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    return outcomes


def _assert_one_intact_catalog(folder: Path) -> None:
    with Catalog.open(folder) as catalog:
        assert catalog.verify().ok
        assert [e.action for e in catalog.history()].count(Action.CATALOG_CREATED) == 1


@pytest.mark.parametrize("hold_lock", [True, False], ids=["one waits for the other", "started together"])
def test_of_two_inits_racing_for_one_database_exactly_one_makes_a_catalog(
    pg_server: PostgresServer, tmp_path: Path, hold_lock: bool
) -> None:
    for attempt in range(3):
        url = pg_server.new_database()
        try:
            folders = [tmp_path / f"{attempt}-first", tmp_path / f"{attempt}-second"]
            outcomes = _race_inits(url, folders, hold_lock=hold_lock)
            made = [name for name, error in outcomes.items() if error is None]
            assert len(made) == 1, outcomes
            [refused] = [error for error in outcomes.values() if error is not None]
            assert isinstance(refused, CatalogError) and "already holds a catalog" in str(refused), repr(refused)
            [winner] = [f for f in folders if f.name in made]
            [loser] = [f for f in folders if f.name not in made]
            assert not loser.exists()  # the refused init leaves nothing behind
            _assert_one_intact_catalog(winner)
        finally:
            pg_server.drop_database(url)


def test_an_init_that_loses_the_race_and_fails_later_leaves_the_winners_tables(
    pg_database: str, tmp_path: Path
) -> None:
    """The loser would fail late (its catalog.toml cannot be written): it must never get that
    far, nor drop tables it did not make."""
    first, second = tmp_path / "first", tmp_path / "second"

    def block_the_seconds_settings() -> None:
        (second / (CONFIG_FILE + ".tmp")).mkdir()

    outcomes = _race_inits(pg_database, [first, second], hold_lock=True, before_release=block_the_seconds_settings)
    assert outcomes["first"] is None, outcomes
    assert isinstance(outcomes["second"], EvidenceError), outcomes
    with psycopg.connect(_psycopg_url(pg_database)) as connection:
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"alembic_version", "custody_event", "record", "artifact"} <= tables
    _assert_one_intact_catalog(first)


# -- 3. fsck --remove and a concurrent writer -----------------------------------------------------


def _blob_file(catalog: Catalog, sha256: str) -> Path:
    """The file holding a blob of a catalog whose blobs are in its folder."""
    assert isinstance(catalog.blobs, BlobStore)
    return catalog.blobs.path_for(sha256)


def _orphan(catalog: Catalog, data: bytes) -> str:
    """Bytes stored and never catalogued (as an add killed before its commit leaves them), an
    hour old: what ``fsck --remove`` deletes."""
    blob = catalog.blobs.put_stream(io.BytesIO(data))
    _age(_blob_file(catalog, blob.sha256), 3600)
    return blob.sha256


@pytest.mark.parametrize(
    "removed",
    [
        "just before the commit",
        "right after they were stored",
    ],
)
def test_bytes_removed_before_they_are_catalogued_fail_the_add_and_change_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, removed: str
) -> None:
    """A concurrent ``fsck --remove`` deletes the orphan an ``add`` of the same bytes has just
    taken as stored (the deletion itself done here, at the moment named)."""
    data = b"bytes an interrupted import left behind"
    sha = _orphan(catalog, data)
    (tmp_path / "again.bin").write_bytes(data)
    records, events = catalog.record_ids(), len(catalog.history())
    store_bytes, write = catalog.blobs.put_stream, catalog.db.write

    def stored_then_removed(*args: Any, **kwargs: Any) -> Any:
        stored = store_bytes(*args, **kwargs)
        assert not stored.created  # the orphan was taken as it is ...
        _blob_file(catalog, stored.sha256).unlink()  # ... and is deleted now
        return stored

    @contextlib.contextmanager
    def removed_then_written() -> Iterator[Any]:
        _blob_file(catalog, sha).unlink(missing_ok=True)
        with write() as session:
            yield session

    if removed == "just before the commit":
        monkeypatch.setattr(catalog.db, "write", removed_then_written)
    else:
        monkeypatch.setattr(catalog.blobs, "put_stream", stored_then_removed)
    with pytest.raises(StorageError, match="removed before they could be catalogued"):
        catalog.add([tmp_path / "again.bin"])
    monkeypatch.undo()
    assert catalog.record_ids() == records and len(catalog.history()) == events
    assert catalog.verify(record_event=False).ok
    [added] = catalog.add([tmp_path / "again.bin"])  # run again: stored anew and catalogued
    assert added.sha256 == sha and added.new_bytes
    assert catalog.blobs.exists(sha) and catalog.verify(record_event=False).ok


def test_a_writer_claiming_an_orphan_that_fsck_removes_meanwhile_fails_cleanly(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving, step by step: a writer stores bytes that are there already (an old
    orphan) and reads them; ``fsck --remove`` deletes that orphan; then the writer commits its
    record -- which must fail, never claim bytes the store no longer holds."""
    data = b"an orphan about to be claimed"
    sha = _orphan(catalog, data)
    (tmp_path / "claim.bin").write_bytes(data)
    stored, go_on = threading.Event(), threading.Event()
    outcome: list[BaseException | list[Any]] = []
    with Catalog.open(catalog.path, operator="Writer <w@example.org>") as writer:
        write = writer.db.write

        @contextlib.contextmanager
        def wait_then_write() -> Iterator[Any]:
            stored.set()  # the bytes are stored and described: the record is about to be written
            assert go_on.wait(30)
            with write() as session:
                yield session

        monkeypatch.setattr(writer.db, "write", wait_then_write)

        def add() -> None:
            try:
                outcome.append(writer.add([tmp_path / "claim.bin"]))
            except Exception as exc:  # noqa: BLE001  (what it raised is the result)
                outcome.append(exc)

        thread = threading.Thread(target=add)
        thread.start()
        assert stored.wait(30)
        delete = catalog.blobs.delete

        def delete_then_let_the_writer_commit(entry: Any) -> None:
            delete(entry)
            go_on.set()
            time.sleep(0.3)  # the writer tries to commit now

        monkeypatch.setattr(catalog.blobs, "delete", delete_then_let_the_writer_commit)
        report = catalog.fsck(remove=True, grace_seconds=0)
        go_on.set()
        thread.join(60)
    assert [e.sha256 for e in report.removed] == [sha]
    [result] = outcome
    assert isinstance(result, StorageError), result
    assert "removed before they could be catalogued" in str(result)
    assert catalog.record_ids() == []
    assert catalog.verify(record_event=False).ok


_FSCK_LOOP = """
import sys
from pathlib import Path
from evidence_catalog import Catalog
with Catalog.open(sys.argv[1], operator="Cleaner <c@example.org>") as catalog:
    print("ready", flush=True)
    while not Path(sys.argv[2]).exists():
        catalog.fsck(remove=True, grace_seconds=0)
"""


@pytest.mark.slow
def test_fsck_remove_in_a_loop_beside_a_writer_never_leaves_a_record_without_its_bytes(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Another process removes every unclaimed blob and upload, without a grace period, while
    this one adds file after file: an add may fail (and can be run again), but every record
    that is made has its bytes."""
    stop = tmp_path / "stop"
    cleaner = subprocess.Popen(
        [sys.executable, "-c", _FSCK_LOOP, str(catalog.path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    added: dict[str, str] = {}
    try:
        assert cleaner.stdout is not None and cleaner.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            path = tmp_path / f"file-{len(added)}.bin"
            path.write_bytes(f"bytes of file {len(added)} ".encode() * 100)
            for _ in range(20):
                try:
                    [result] = catalog.add([path])
                except StorageError:
                    continue  # its bytes (or its upload) taken by the cleaner: nothing recorded
                assert result.record_id is not None
                added[result.sha256] = result.record_id
                break
    finally:
        stop.touch()
        assert cleaner.wait(30) == 0
    assert added
    assert all(catalog.blobs.exists(sha) for sha in added)
    report = catalog.verify(record_event=False)
    assert report.ok, report.findings
    assert report.artifacts_checked == len(added)


# -- 4. an account that may only read ------------------------------------------------------------


def test_an_account_allowed_only_to_read_verifies_without_logging(
    pg_database: str, tmp_path: Path, run_cli: RunCli
) -> None:
    folder = tmp_path / "catalog"
    with Catalog.init(folder, database=pg_database, operator="Analyst <a@example.org>") as catalog:
        (tmp_path / "f.txt").write_text("evidence")
        catalog.add([tmp_path / "f.txt"])
        events = len(catalog.history())
    role = f"auditor_{uuid.uuid4().hex[:12]}"
    admin = _psycopg_url(pg_database)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
        connection.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        auditor = tmp_path / "auditor"
        shutil.copytree(folder, auditor)
        config = CatalogConfig.load(folder)
        url = sa.make_url(config.database_url or "").set(username=role).render_as_string(hide_password=False)
        (auditor / CONFIG_FILE).write_text(attrs.evolve(config, database_url=url).to_toml(), encoding="utf-8")

        result = run_cli("verify", "--catalog", auditor)
        assert result.code == 0, result.out + result.err
        assert "PROBLEM" not in result.out + result.err
        assert "not logged" in result.err
        with Catalog.open(auditor, read_only=True) as catalog:
            report = catalog.verify()
            assert report.ok and not report.logged
        with Catalog.open(auditor) as catalog:  # not said to be read-only: found out when logging
            report = catalog.verify()
            assert report.ok and not report.logged
            assert len(catalog.history()) == events
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP OWNED BY {role}")
            connection.execute(f"DROP ROLE {role}")


# -- 5. a bad [blobs] setting in catalog.toml ------------------------------------------------------


def _set_blobs(folder: Path, url: str, endpoint_url: str | None = None) -> None:
    """Write ``[blobs] url`` (and ``endpoint_url``) into the catalog.toml of a closed catalog."""
    config = attrs.evolve(CatalogConfig.load(folder), blobs_url=url, blobs_endpoint_url=endpoint_url)
    (folder / CONFIG_FILE).write_text(config.to_toml(), encoding="utf-8")


@pytest.mark.parametrize(
    ("blobs", "setting"),
    [
        ({"url": "s3:/bucket"}, "blobs.url"),
        ({"url": "s3://bucket/../x"}, "blobs.url"),
        ({"url": "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/p"}, "blobs.url"),
        ({"url": "s3://bucket/p", "endpoint_url": "ftp://127.0.0.1:21"}, "blobs.endpoint_url"),
        ({"url": "s3://bucket/p", "endpoint_url": "http://minio:wJalrXUtnFEMI@127.0.0.1:9000"}, "blobs.endpoint_url"),
    ],
)
def test_a_bad_blobs_setting_in_catalog_toml_is_named_as_such(
    catalog: Catalog, run_cli: RunCli, blobs: dict[str, str], setting: str
) -> None:
    catalog.close()
    _set_blobs(catalog.path, blobs["url"], blobs.get("endpoint_url"))
    result = run_cli("list", "--catalog", catalog.path)
    assert result.code == 2, result.out
    assert result.err.strip().splitlines() == [result.err.strip()]  # one line
    assert f"catalog.toml: {setting}:" in result.err
    assert "--blobs" not in result.err and "wJalrXUtnFEMI" not in result.err


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts this process's open files in /proc")
def test_opening_a_catalog_with_a_bad_blobs_setting_leaves_nothing_open(catalog: Catalog) -> None:
    catalog.close()
    _set_blobs(catalog.path, "s3:/bucket")
    for _ in range(2):  # whatever is opened once per process (imports, pools) is opened now
        with pytest.raises(EvidenceError):
            Catalog.open(catalog.path)
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(EvidenceError, match=r"blobs\.url"):
            Catalog.open(catalog.path)
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before


# -- 6. object storage ---------------------------------------------------------------------------

_STALLED_UPLOAD = """
import sys, time
from evidence_catalog.store.objectstore import ObjectBlobStore

class Stalls:
    '''Gives some bytes, then never any more (the process is killed while it waits).'''
    left = int(sys.argv[3])
    def readinto(self, buffer):
        if self.left <= 0:
            time.sleep(600)
        n = min(len(buffer), self.left)
        buffer[:n] = b"k" * n
        self.left -= n
        return n

ObjectBlobStore(sys.argv[1], endpoint_url=sys.argv[2]).put_stream(Stalls())
"""


@pytest.mark.slow
def test_an_upload_killed_midway_is_listed_and_aborted_by_fsck(s3_catalog: Catalog, s3_backend: S3Backend) -> None:
    """A process storing more than one part (16 MiB) is killed after its first part: the
    unfinished multipart upload holds those bytes (billed, and in no listing of objects)."""
    client, name = s3_backend.client, s3_backend.bucket
    uploader = subprocess.Popen(
        [sys.executable, "-c", _STALLED_UPLOAD, s3_backend.url, s3_backend.endpoint, str(PART_SIZE + 1024 * 1024)]
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # until the first part is stored
            uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
            if uploads and client.list_parts(Bucket=name, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]).get(
                "Parts"
            ):
                break
            assert uploader.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        uploader.send_signal(signal.SIGKILL)
        uploader.wait()
    [upload] = uploads
    assert upload["Key"].startswith(f"{s3_backend.prefix}/tmp/")
    assert s3_backend.names("tmp") == []  # nothing a listing of objects shows

    listed = s3_catalog.fsck()
    assert not listed.clean
    [entry] = listed.temporary
    assert entry.path == f"s3://{name}/{upload['Key']}#upload={upload['UploadId']}"
    assert entry.size == PART_SIZE and entry.sha256 is None

    report = s3_catalog.fsck(remove=True, grace_seconds=0)
    assert [e.path for e in report.removed] == [entry.path]
    assert s3_backend.unfinished_uploads() == []
    last = s3_catalog.history()[-1]
    assert last.action == Action.CATALOG_FSCK and [r["path"] for r in last.details["removed"]] == [entry.path]
    assert s3_catalog.fsck().clean


def test_the_same_bytes_stored_again_leave_one_version_of_the_object(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path
) -> None:
    """An intact copy is left as it is (a write-once bucket would refuse a second write)."""
    store = s3_backend.store()
    data = b"the same evidence, stored three times"
    sha = hashlib.sha256(data).hexdigest()
    created = [store.put_stream(io.BytesIO(data)).created for _ in range(3)]
    assert created == [True, False, False]
    (tmp_path / "copy.bin").write_bytes(data)
    [added] = s3_catalog.add([tmp_path / "copy.bin"])
    assert added.sha256 == sha and not added.new_bytes
    assert len(s3_backend.versions(address(sha))) == 1  # the bucket is versioned: never written again
    assert s3_backend.names("tmp") == [] and s3_backend.unfinished_uploads() == []


def test_a_damaged_copy_is_never_replaced_by_nothing(
    s3_catalog: Catalog, s3_backend: S3Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding the good bytes again replaces a damaged copy: when the server-side copy of the
    good bytes into place fails (the connection lost), the damaged copy is still there (and
    quarantined), never nothing."""
    good = b"the good evidence bytes"
    damaged = b"bit-rotted copy of them"
    (tmp_path / "good.bin").write_bytes(good)
    [added] = s3_catalog.add([tmp_path / "good.bin"])
    s3_backend.write(address(added.sha256), damaged)
    assert isinstance(s3_catalog.blobs, ObjectBlobStore)
    fs = s3_catalog.blobs.fs
    copy = fs.copy
    copies: list[tuple[str, str]] = []

    def second_copy_fails(source: str, target: str, *args: Any, **kwargs: Any) -> Any:
        copies.append((source, target))
        if len(copies) == 2:
            raise ConnectionError("Connection reset by peer")
        return copy(source, target, *args, **kwargs)

    monkeypatch.setattr(fs, "copy", second_copy_fails)
    with pytest.raises(StorageError):
        s3_catalog.add([tmp_path / "good.bin"])
    monkeypatch.undo()
    assert [c[1].split("/")[-2] for c in copies] == ["quarantine", added.sha256[2:4]]
    assert s3_backend.read(address(added.sha256)) == damaged  # still an object, never nothing
    [quarantined] = s3_backend.names("quarantine")
    assert s3_backend.read(quarantined) == damaged  # and kept aside
    assert s3_backend.names("tmp") == []
    report = s3_catalog.verify(record_event=False)
    assert [type(f) for f in report.findings] == [DigestMismatch]  # damaged, not missing

    [again] = s3_catalog.add([tmp_path / "good.bin"])  # the network back: repaired
    assert again.new_bytes and again.quarantined is not None
    assert s3_backend.read(address(added.sha256)) == good
    assert s3_catalog.verify(record_event=False).ok


def test_a_read_cut_off_midway_is_a_storage_error(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes away while an artifact is being read (a server of this test's own)."""
    fail_fast(monkeypatch)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stopped = False
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        name = f"evidence-{uuid.uuid4().hex[:20]}"
        client.create_bucket(Bucket=name)
        data = os.urandom(256 * 1024)
        (tmp_path / "video.bin").write_bytes(data)
        with Catalog.init(tmp_path / "catalog", blobs=f"s3://{name}/team", blobs_endpoint_url=endpoint) as catalog:
            [added] = catalog.add([tmp_path / "video.bin"])
            with catalog.open_artifact(added.sha256) as stored:
                assert stored.read(1000) == data[:1000]
                server.stop()
                stopped = True
                with pytest.raises(StorageError) as raised:
                    stored.read()
            assert f"s3://{name}/team" in str(raised.value)
    finally:
        if not stopped:
            server.stop()


# -- 7. search: the same results on SQLite and PostgreSQL ----------------------------------------

#: Reports in many scripts: the texts of one digest's items.
REPORTS = [
    "Ещё один обстрел Харькова ночью",
    "Київ під обстрілом, бій йде біля школи",
    "Die Straße nach Butscha ist gesperrt",
    "Νοσοκομείο της Μαριούπολης χτυπήθηκε",
    "ΟΔΟΣ ΚΛΕΙΣΤΗ στην πόλη",
    "ที่นี่ มีระเบิด ใกล้โรงเรียน",
    "बमबारी हुई अस्पताल के पास",
    "قَصفٌ على مَدرسة في حلب #حلب",
    "Le café près de la gare a été détruit à Évreux",
    "🔥 Пожежа на складі 🚒 #Херсон",
    "Talks stalled again #Trump-#Putin",
    "Cafe\u0301 Noir reopened near al-Bab",
    "Ｆｕｌｌ-width ＢＵＣＨＡ and the ﬁre brigade",
]


def _digest(texts: list[str]) -> str:
    """A feed-reader digest: one feed, each item's text printed twice (title, description)."""
    lines = ["Field Desk (Telegram)"]
    for text in texts:
        lines += [text, text]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def two_backends(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Catalog]]:
    """The same digest ingested into a catalog on SQLite and one on PostgreSQL."""
    folder = tmp_path_factory.mktemp("parity")
    (folder / "digest.txt").write_text(_digest(REPORTS), encoding="utf-8")
    database = pg_server.new_database()
    catalogs: dict[str, Catalog] = {}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Catalog, "_default_database", None)  # SQLite, whatever --backend says
            catalogs["sqlite"] = Catalog.init(folder / "sqlite", operator="Analyst <a@example.org>")
        catalogs["postgresql"] = Catalog.init(folder / "pg", operator="Analyst <a@example.org>", database=database)
        for catalog in catalogs.values():
            assert catalog.ingest(folder / "digest.txt").reports_added == len(REPORTS)
        yield catalogs
    finally:
        for catalog in catalogs.values():
            catalog.close()
        pg_server.drop_database(database)


def _found(catalog: Catalog, query: str) -> set[str]:
    return {hit.report.text for hit in catalog.search(query, limit=None)}


def _same_on_both(catalogs: dict[str, Catalog], query: str) -> set[str]:
    on_sqlite, on_postgresql = _found(catalogs["sqlite"], query), _found(catalogs["postgresql"], query)
    assert on_sqlite == on_postgresql, f"{query!r}: SQLite {on_sqlite}, PostgreSQL {on_postgresql}"
    return on_sqlite


def test_the_premise_every_item_is_one_report(two_backends: dict[str, Catalog]) -> None:
    assert _same_on_both(two_backends, "") == set(REPORTS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("еще", {REPORTS[0]}),
        ("ЕЩЁ ОДИН", {REPORTS[0]}),
        ("киів", {REPORTS[1]}),
        ("иде", {REPORTS[1]}),
        ("strasse", {REPORTS[2]}),
        ("STRAßE butscha", {REPORTS[2]}),
        ("νοσοκομειο", {REPORTS[3]}),
        ("οδος", {REPORTS[4]}),
        ("ΠΌΛΗ", {REPORTS[4]}),
        ("มีระเบิด", {REPORTS[5]}),
        ("ท", set()),
        ("अस्पताल", {REPORTS[6]}),
        ("मबार", set()),
        ("مدرسة", {REPORTS[7]}),
        ("#حلب", {REPORTS[7]}),
        ("cafe", {REPORTS[8], REPORTS[11]}),
        ("CAFÉ", {REPORTS[8], REPORTS[11]}),
        ("evreux detruit", {REPORTS[8]}),
        ("херсон", {REPORTS[9]}),
        ("trump putin", {REPORTS[10]}),
        ("#Trump-#Putin", {REPORTS[10]}),
        ("putin-trump", set()),
        ("al-bab", {REPORTS[11]}),
        ("bucha fire full", {REPORTS[12]}),
        ("caf", set()),
        ("🔥", set(REPORTS)),
        ("\"'*-:", set(REPORTS)),
        ("OR", set()),
        ("the", {REPORTS[12]}),
    ],
)
def test_search_means_the_same_on_sqlite_and_postgresql(
    two_backends: dict[str, Catalog], query: str, expected: set[str]
) -> None:
    assert _same_on_both(two_backends, query) == expected


_WORDS = sorted({word for text in REPORTS for word in text.split()})
_CHARACTERS = sorted({char for text in REPORTS for char in unicodedata.normalize("NFD", text)} | set("#-'\"*:_%\\"))


_CASES: list[Callable[[str], str]] = [str.upper, str.lower, str.casefold, str.title, str.strip]


@st.composite
def _queries(draw: st.DrawFn) -> str:
    """Words of the reports, whole or cut anywhere (inside a grapheme too), in any case and
    normal form, or a few characters of theirs."""
    if draw(st.booleans()):
        return draw(st.text(alphabet=_CHARACTERS, max_size=6))
    parts = []
    for word in draw(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3)):
        if draw(st.booleans()):
            start = draw(st.integers(0, len(word)))
            word = word[start : draw(st.integers(start, len(word)))]
        form: Literal["NFC", "NFD", "NFKC"] = draw(st.sampled_from(["NFC", "NFD", "NFKC"]))
        change = draw(st.sampled_from(_CASES))
        parts.append(change(unicodedata.normalize(form, word)))
    return " ".join(parts)


@settings(max_examples=150)
@given(query=_queries())
def test_any_search_finds_the_same_reports_on_sqlite_and_postgresql(
    two_backends: dict[str, Catalog], query: str
) -> None:
    _same_on_both(two_backends, query)


# -- 8. an export that cannot be given its name -------------------------------------------------


def _exported_events(catalog: Catalog) -> list[Any]:
    return [e for e in catalog.history() if e.action == Action.RECORDS_EXPORTED]


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


# -- 9. fsck that removed files but cannot log it ------------------------------------------------


def test_fsck_that_cannot_log_its_removal_says_what_it_removed(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting cannot be rolled back with the transaction: when the removal cannot be logged,
    the error names what is gone instead of claiming that nothing changed."""
    orphan = _orphan(catalog, b"bytes nobody claims")
    path = _blob_file(catalog, orphan)

    def log_refused(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("catalog database could not be written (disk full); nothing was changed")

    monkeypatch.setattr(catalog.db, "append_event", log_refused)
    with pytest.raises(StorageError, match=r"1 unclaimed file\(s\) were removed \(.*" + orphan) as raised:
        catalog.fsck(remove=True, grace_seconds=0)
    monkeypatch.undo()
    assert "could not be logged" in raised.value.message and "nothing was changed;" not in raised.value.message
    assert not path.exists()
    assert [e for e in catalog.history() if e.action == Action.CATALOG_FSCK] == []
