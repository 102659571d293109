"""The command line: the contract later issues and scripts rely on, exit codes, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evidence_catalog import __version__, model
from evidence_catalog.cli import main
from evidence_catalog.schema_files import load_schema

from .conftest import CliResult, database_dialect, json_set, run_sql


@pytest.fixture
def cat(tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("EVIDENCE_CATALOG", raising=False)
    monkeypatch.delenv("EVIDENCE_CATALOG_OPERATOR", raising=False)
    path = tmp_path / "cat"
    result = run_cli("init", path, "--operator", "Ana Analyst <ana@example.org>", "--digest", "md5")
    assert result.code == 0, result.err
    assert "created catalog" in result.out and "Ana Analyst" in result.out
    return path


def no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.err + result.out


def test_version_lists_every_component(run_cli: Any) -> None:
    result = run_cli("--version")
    assert result.code == 0
    for name in ("evidence-catalog", "python", "sqlite", "exifread", "yt-dlp"):
        assert any(line.startswith(name + " ") for line in result.out.splitlines()), name
    assert f"evidence-catalog {__version__}" in result.out
    from evidence_catalog import sealing

    assert f"commitments {'pure Python' if sealing._native is None else 'C module'}" in result.out.splitlines()


def test_add_list_show_log_verify_round(cat: Path, run_cli: Any, jpeg_file: Any, tmp_path: Path) -> None:
    photo = jpeg_file("school.jpg")
    result = run_cli(
        "add",
        photo,
        "--catalog",
        cat,
        "--tag",
        "school",
        "--note",
        "from a witness",
        "--source-url",
        "https://example.org/p/1",
    )
    assert result.code == 0, result.err
    record_id, sha, status, path = result.out.rstrip("\n").split("\t")
    assert model.is_record_id(record_id) and status == "new" and path == str(photo) and len(sha) == 64

    listing = run_cli("list", "--catalog", cat)
    assert listing.code == 0 and record_id in listing.out and "school.jpg" in listing.out and "[school]" in listing.out

    shown = run_cli("show", record_id, "--catalog", cat)
    assert shown.code == 0
    for expected in (
        sha,
        "image/jpeg",
        "2024-03-01T10:15:30+02:00",
        "DemoCam",
        "50.450333",
        "md5",
        "from a witness",
        "https://example.org/p/1",
        f"analysis of {sha}",  # add analysed the photo
    ):
        assert expected in shown.out, expected

    as_json = run_cli("show", record_id, "--catalog", cat, "--json")
    document = json.loads(as_json.out)
    jsonschema.validate(document, load_schema("evidence-record"))
    assert document["artifacts"][0]["artifact"]["metadata"]["exif"]["gps"]["latitude"] == pytest.approx(
        50.450333, abs=1e-6
    )

    log = run_cli("log", record_id, "--catalog", cat, "--json")
    events = json.loads(log.out)
    assert [e["action"] for e in events] == ["artifact.added", "media.analyzed"]
    for event in events:
        jsonschema.validate(event, load_schema("custody-event"))

    verified = run_cli("verify", "--catalog", cat)
    # The photo and the document of its analysis.
    assert verified.code == 0 and verified.out.startswith("verified: 1 record(s), 2 artifact(s)")


def test_an_analysed_photo_exported_and_imported_verifies_and_is_found_again(
    cat: Path, run_cli: Any, tmp_path: Path
) -> None:
    """The analysis travels with the record: the catalog that imports it verifies (its
    similarity index holds the document's hashes) and finds the photo by its look."""
    photo = Path(__file__).resolve().parent.parent / "examples" / "damaged-building.jpg"
    record_id, sha = run_cli("add", photo, "--catalog", cat).out.split("\t")[:2]
    assert run_cli("export", "--catalog", cat, "-o", tmp_path / "all.json").code == 0
    other = tmp_path / "other"
    assert run_cli("init", other, "-q", "--operator", "Ana Analyst <ana@example.org>").code == 0
    imported = run_cli("import", tmp_path / "all.json", "--blobs", cat, "--catalog", other)
    assert imported.code == 0, imported.err
    verified = run_cli("verify", "--catalog", other, "--deep")
    assert verified.code == 0, verified.out
    found = run_cli("similar", photo, "--catalog", other)
    assert found.code == 0 and found.out.split()[:3] == ["0", record_id, sha]


def test_a_full_disk_during_an_analysis_fails_no_add(
    cat: Path, run_cli: Any, jpeg_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo is recorded before it is analysed: a disk that fills while the analysis is
    written (modelled at that write, which fails as the kernel's does) is a note of the add,
    which exits 0, and `analyze` finishes the work once there is room."""
    import errno

    photo = jpeg_file()
    write_bytes = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        if self.name == "analysis.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    added = run_cli("add", photo, "--catalog", cat)
    assert added.code == 0, added.err
    record_id = added.out.split("\t")[0]
    assert "No space left on device" in added.err and f"run `analyze {record_id}` again" in added.err
    monkeypatch.setattr(Path, "write_bytes", write_bytes)  # room again
    assert run_cli("verify", "--catalog", cat).code == 0
    finished = run_cli("analyze", record_id, "--catalog", cat)
    assert finished.code == 0 and "\tanalysed\t" in finished.out
    assert run_cli("verify", "--catalog", cat, "--deep").code == 0


def test_catalog_comes_from_the_environment(cat: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_CATALOG", str(cat))
    assert run_cli("list").code == 0


def test_operator_flag_is_recorded_in_the_custody_log(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    assert (
        run_cli("add", tmp_path / "f.txt", "--catalog", cat, "--operator", "Second Person <two@example.org>").code == 0
    )
    events = json.loads(run_cli("log", "--catalog", cat, "--json").out)
    assert events[0]["actor"]["name"] == "Ana Analyst"
    assert events[1]["actor"]["name"] == "Second Person" and events[1]["actor"]["email"] == "two@example.org"


def test_verify_exits_1_and_names_the_problem(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("original")
    sha = run_cli("add", tmp_path / "f.txt", "--catalog", cat).out.split("\t")[1]
    blob = cat / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
    os.chmod(blob, 0o644)
    blob.write_text("changed!")
    result = run_cli("verify", "--catalog", cat)
    assert result.code == 1
    assert f"PROBLEM artifact {sha}: sha256 digest mismatch" in result.out
    assert "problem(s) found" in result.out
    report = json.loads(run_cli("verify", "--catalog", cat, "--json").out)
    assert report["ok"] is False
    assert {f["kind"] for f in report["findings"]} == {"digest_mismatch"}
    assert {f["algorithm"] for f in report["findings"]} == {"sha256", "md5"}


def test_export_json_and_jsonl(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    record_id = run_cli("add", tmp_path / "f.txt", "--catalog", cat).out.split("\t")[0]
    result = run_cli("export", "--catalog", cat, "--format", "json", "--output", tmp_path / "all.json")
    assert result.code == 0 and "exported 1 record(s)" in result.out
    jsonschema.validate(json.loads((tmp_path / "all.json").read_text()), load_schema("export"))
    result = run_cli("export", record_id, "--catalog", cat, "--format", "jsonl", "-o", tmp_path / "one.jsonl")
    assert result.code == 0
    lines = (tmp_path / "one.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the record, its event, and the log's signed checkpoint
    assert json.loads(lines[-1])["schema"] == "urn:evidence-catalog:schema:checkpoint:1.0.0"


@pytest.mark.parametrize("name", ["evidence-record", "artifact", "custody-event", "export"])
def test_schema_prints_the_published_schema(run_cli: Any, name: str) -> None:
    result = run_cli("schema", name)
    assert result.code == 0 and json.loads(result.out) == load_schema(name)


# -- bad input: one clear line, exit code 2, nothing changed -----------------------------------


def _state(cat: Path, run_cli: Any) -> tuple[str, str]:
    return run_cli("list", "--catalog", cat, "--json").out, run_cli("log", "--catalog", cat, "--json").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "{tmp}/missing.jpg"], "missing.jpg: no such file or directory"),
        (["add", "{tmp}"], "is a directory (use --recursive"),
        (["show", "not-an-id"], "'not-an-id' is not a record id"),
        (["show", "01a2133c-20ec-78d0-87fe-0ab3909f2482"], "no record with id 01a2133c-20ec-78d0-87fe-0ab3909f2482"),
        (["log", "01a2133c-20ec-78d0-87fe-0ab3909f2482"], "no record with id"),
        (["add", "{tmp}/f.txt", "--tag", " "], "tag must not be blank"),
        (["add", "{tmp}/f.txt", "--record", "nope"], "'nope' is not a record id"),
        (["export", "--output", "{tmp}/exists.txt"], "exists.txt: already exists"),
        (["export", "--output", "{tmp}/no/such/dir/out.json"], "directory does not exist"),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    cat: Path, run_cli: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "exists.txt").write_text("keep")
    before = _state(cat, run_cli)
    result = run_cli(*[a.format(tmp=tmp_path) for a in args], "--catalog", cat)
    assert result.code == 2, result.out
    no_traceback(result)
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert _state(cat, run_cli) == before
    assert (tmp_path / "exists.txt").read_text() == "keep"


def test_a_path_that_is_not_a_catalog(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("list", "--catalog", tmp_path)
    assert result.code == 2 and "not a catalog (no catalog.toml)" in result.err
    no_traceback(result)
    result = run_cli("list", "--catalog", tmp_path / "nope")
    assert result.code == 2 and "no such catalog directory" in result.err


def test_a_catalog_newer_than_the_library(cat: Path, run_cli: Any) -> None:
    config = cat / "catalog.toml"
    config.write_text(config.read_text().replace("format_version = 1", "format_version = 2"))
    result = run_cli("list", "--catalog", cat)
    assert result.code == 2 and "newer than this library" in result.err
    no_traceback(result)


@pytest.mark.sqlite_only
def test_a_corrupt_database(cat: Path, run_cli: Any) -> None:
    for suffix in ("-wal", "-shm"):
        (cat / f"catalog.db{suffix}").unlink(missing_ok=True)
    (cat / "catalog.db").write_bytes(os.urandom(8192))
    result = run_cli("list", "--catalog", cat)
    assert result.code == 2 and "catalog.db: catalog database cannot be read" in result.err
    no_traceback(result)


def test_a_symlink_loop(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    (tree / "again").symlink_to(tree)
    before = _state(cat, run_cli)
    result = run_cli("add", "--recursive", tree, "--catalog", cat)
    assert result.code == 2 and "again: symbolic link loop" in result.err
    assert _state(cat, run_cli) == before


def test_missing_arguments_are_usage_errors(run_cli: Any) -> None:
    result = run_cli("add")
    assert result.code == 2 and "Missing argument" in result.err
    assert run_cli("frobnicate").code == 2


def test_odd_file_names_print_on_one_line(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    newline = tmp_path / "two\nlines.txt"
    newline.write_text("n")
    raw = os.path.join(os.fsencode(tmp_path), b"bad-\xff.txt")
    with open(raw, "wb") as f:
        f.write(b"b")
    result = run_cli("add", newline, os.fsdecode(raw), "--catalog", cat)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("two\\nlines.txt") and lines[1].endswith("bad-\\xff.txt")


def _subprocess_cli(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evidence_catalog", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def _main_as_unprivileged_user(args: list[str]) -> tuple[int, str]:
    """Run the CLI's entry point in a forked child that has given up root (root reads anything)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 70
        try:
            os.close(read_end)
            sys.stderr = os.fdopen(write_end, "w")  # pytest's capture replaced the real one
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = main(args)
        except BaseException:  # noqa: BLE001 -- report anything the child met, then exit
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as stream:
        err = stream.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


def test_an_unreadable_file_is_refused(run_cli: Any) -> None:
    # pytest's own temporary directories are private to root; use one the other user can enter
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        cat = base / "cat"
        assert run_cli("init", cat, "--quiet").code == 0
        secret = base / "secret.txt"
        secret.write_text("s")
        secret.chmod(0o000)
        args = ["add", str(secret), "--catalog", str(cat)]
        if os.geteuid() == 0:
            for path in (base, *base.rglob("*")):
                if path != secret:
                    os.chmod(path, 0o777 if path.is_dir() else 0o666)
            code, err = _main_as_unprivileged_user(args)
        else:
            result = run_cli(*args)
            code, err = result.code, result.err
    assert code == 2, err
    assert "secret.txt: permission denied" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_entry_point_runs_as_a_process_without_progress_off_a_terminal(cat: Path, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    result = _subprocess_cli("add", tmp_path / "f.bin", "--catalog", cat)
    assert result.returncode == 0
    assert result.stderr == ""  # no progress bar when standard error is not a terminal
    result = _subprocess_cli("verify", "--catalog", cat, "--quiet")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_verify_json_validates_and_no_log_leaves_the_log_alone(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    sha = run_cli("add", tmp_path / "f.txt", "--catalog", cat).out.split("\t")[1]
    events_before = json.loads(run_cli("log", "--catalog", cat, "--json").out)
    result = run_cli("verify", "--catalog", cat, "--json", "--no-log")
    assert result.code == 0
    jsonschema.validate(json.loads(result.out), load_schema("verification-report"))
    assert json.loads(run_cli("log", "--catalog", cat, "--json").out) == events_before
    blob = cat / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
    blob.unlink()
    result = run_cli("verify", "--catalog", cat, "--json")
    assert result.code == 1
    report = json.loads(result.out)
    jsonschema.validate(report, load_schema("verification-report"))
    assert [f["kind"] for f in report["findings"]] == ["blob_missing"] and report["logged"] is True


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        # Values of the wrong type: only SQLite's flexible typing lets a column hold them.
        pytest.param(
            "update custody_event set details = 'not json' where seq = 2", "event_edited", marks=pytest.mark.sqlite_only
        ),
        pytest.param(
            "update custody_event set at = 'garbage' where seq = 2", "event_edited", marks=pytest.mark.sqlite_only
        ),
        pytest.param("update artifact set size = 'big'", "entry_unreadable", marks=pytest.mark.sqlite_only),
        pytest.param("update acquisition set body = 'not json'", "entry_unreadable", marks=pytest.mark.sqlite_only),
        # Values of the right type, wrong all the same: any database holds them.
        ("update record_part set kind = 'weird'", "entry_unreadable"),
        ("update custody_event set details = '\"not an object\"' where seq = 2", "event_edited"),
        ("update custody_event set at = '1999-01-01T00:00:00+00:00' where seq = 2", "event_edited"),
        ("update artifact set size = -1", "entry_unreadable"),
        ('update acquisition set body = \'["not", "an", "object"]\'', "entry_unreadable"),
    ],
)
def test_verify_reports_rows_damaged_in_any_way_as_findings(
    cat: Path, run_cli: Any, tmp_path: Path, sql: str, kind: str
) -> None:
    (tmp_path / "f.txt").write_text("x")
    assert run_cli("add", tmp_path / "f.txt", "--catalog", cat, "--note", "n").code == 0
    run_sql(cat, sql)
    result = run_cli("verify", "--catalog", cat, "--json")
    no_traceback(result)
    assert result.code == 1, result.err
    assert kind in {f["kind"] for f in json.loads(result.out)["findings"]}


@pytest.mark.sqlite_only  # PostgreSQL's JSON columns hold JSON only
@pytest.mark.parametrize("column", ["created_by", "created_at"])
def test_a_record_row_the_driver_cannot_read_is_named_by_every_reader(
    cat: Path, run_cli: Any, tmp_path: Path, column: str
) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text(name)
    assert run_cli("add", tmp_path / "a.txt", tmp_path / "b.txt", "--catalog", cat).code == 0
    damaged = run_cli("list", "--catalog", cat).out.split()[0]
    run_sql(cat, f"update record set {column} = 'not json {{' where id = :id", {"id": damaged})
    listed = run_cli("list", "--catalog", cat)
    no_traceback(listed)
    assert listed.code == 1 and f"record {damaged}" in listed.err
    assert len(listed.out.splitlines()) == 1 and damaged not in listed.out  # the other is still listed
    for command in (
        ["show", damaged],
        *(["export", "--format", f, "--output", str(tmp_path / f"x.{f}")] for f in ("json", "csv")),
    ):
        result = run_cli(*command, "--catalog", cat)
        no_traceback(result)
        assert result.code == 2 and f"error: record {damaged}" in result.err, (command, result.err)
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.csv").exists()


@pytest.mark.sqlite_only
def test_verify_of_a_destroyed_database_is_a_problem_not_a_usage_error(cat: Path, run_cli: Any) -> None:
    (cat / "catalog.db").write_bytes(b"\x00" * 4096)
    for suffix in ("-wal", "-shm"):
        (cat / f"catalog.db{suffix}").unlink(missing_ok=True)
    result = run_cli("verify", "--catalog", cat)
    assert result.code == 1 and result.out.startswith("PROBLEM ") and "cannot be read" in result.out
    no_traceback(result)


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_damage_deep_inside_the_database_is_a_clear_error(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    for i in range(150):
        (tmp_path / f"f{i}.txt").write_text(f"file {i} " * 200)
    assert run_cli("add", "--catalog", cat, "--quiet", *[tmp_path / f"f{i}.txt" for i in range(150)]).code == 0
    assert run_cli("verify", "--catalog", cat, "--quiet", "--no-log").code == 0
    size = (cat / "catalog.db").stat().st_size
    with open(cat / "catalog.db", "r+b") as db:
        for offset in range(8192, size, 16384):
            db.seek(offset)
            db.write(os.urandom(512))
    for command in (["list"], ["log"], ["export", "--output", str(tmp_path / "out.json")]):
        result = run_cli(*command, "--catalog", cat)
        no_traceback(result)
        assert result.code in (1, 2) and result.err.startswith("error: "), (command, result.err)
    result = run_cli("verify", "--catalog", cat)
    no_traceback(result)
    assert result.code == 1


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("format_version = 1\nhashing = 5\n", "[hashing] must be a table"),
        ("format_version = 1\n[hashing]\nalgorithms = [1, 2]\n", "algorithms must be a list"),
        ('format_version = 1\n[hashing]\nalgorithms = "md5"\n', "algorithms must be a list"),
        ("format_version = true\n", "format_version is missing or not a positive integer"),
        ("format_version = 1\n[operator]\nname = 42\n", "operator name must be text"),
        ('format_version = 1\n[operator]\nname = "a\\u001b[2Jb"\n', "control character"),
        ("format_version = [\n", "malformed"),
    ],
)
def test_bad_catalog_settings_are_named(cat: Path, run_cli: Any, toml: str, message: str) -> None:
    (cat / "catalog.toml").write_text(toml)
    result = run_cli("list", "--catalog", cat)
    no_traceback(result)
    assert result.code == 2 and message in result.err and "catalog.toml" in result.err


def test_free_text_cannot_forge_lines_in_the_output(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    forged = "http://x\n  from     /fake"
    result = run_cli(
        "add",
        tmp_path / "f.txt",
        "--catalog",
        cat,
        "--source-url",
        forged,
        "--note",
        "ok\nacquired fake",
        "--tag",
        "\u202eevil",
    )
    assert result.code == 0, result.err
    record_id = result.out.split("\t")[0]
    shown = run_cli("show", record_id, "--catalog", cat).out
    assert "\n  from     /fake" not in shown and "\nacquired fake" not in shown
    assert "http://x\\n  from     /fake" in shown
    assert "\u202e" not in shown + run_cli("list", "--catalog", cat).out
    assert json.loads(run_cli("show", record_id, "--catalog", cat, "--json").out)["tags"] == ["\u202eevil"]


def test_operator_and_tag_control_characters_are_refused(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    for args in (["--operator", "A\x85B"], ["--tag", "a\x9bb"], ["--operator", ""]):
        result = run_cli("add", tmp_path / "f.txt", "--catalog", cat, *args)
        assert result.code == 2, args
        no_traceback(result)


def test_a_name_too_long_is_a_clear_error(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("list", "--catalog", tmp_path / ("x" * 300))
    no_traceback(result)
    assert result.code == 2 and "File name too long" in result.err


def test_init_records_the_organisation(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("init", tmp_path / "c", "--operator", "A <a@example.org>", "--organization", "Example NGO")
    assert result.code == 0, result.err
    events = json.loads(run_cli("log", "--catalog", tmp_path / "c", "--json").out)
    assert events[0]["actor"]["organization"] == "Example NGO"


def test_list_names_an_unreadable_record_and_still_lists_the_rest(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    first = run_cli("add", tmp_path / "a", "--catalog", cat).out.split("\t")[0]
    second = run_cli("add", tmp_path / "b", "--catalog", cat).out.split("\t")[0]
    body = json_set(database_dialect(cat), "body", "$.method", "teleported")
    run_sql(cat, f"update acquisition set body = {body} where record_id = :id", {"id": first})
    result = run_cli("list", "--catalog", cat)
    assert result.code == 1
    assert second in result.out and first not in result.out
    assert f"record {first}" in result.err and "$.method" in result.err
    no_traceback(result)


def test_an_empty_directory_is_nothing_to_add(cat: Path, run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("add", "--recursive", tmp_path / "empty", "--catalog", cat)
    assert result.code == 2 and "no files to add" in result.err


def test_a_read_error_in_the_source_names_the_source(cat: Path, run_cli: Any) -> None:
    # /proc/self/mem is a regular file that fails with EIO when read at offset 0
    result = run_cli("add", "/proc/self/mem", "--catalog", cat)
    assert result.code == 2 and "/proc/self/mem: cannot be read" in result.err and "nothing was stored" in result.err
    assert not list((cat / "blobs" / "tmp").glob("*.part"))


@pytest.mark.sqlite_only
def test_verify_json_of_an_unreadable_database_is_still_a_report(cat: Path, run_cli: Any) -> None:
    (cat / "catalog.db").write_bytes(b"\x00" * 4096)
    for suffix in ("-wal", "-shm"):
        (cat / f"catalog.db{suffix}").unlink(missing_ok=True)
    result = run_cli("verify", "--catalog", cat, "--json")
    assert result.code == 1
    report = json.loads(result.out)
    jsonschema.validate(report, load_schema("verification-report"))
    assert report["ok"] is False and report["findings"][0]["kind"] == "entry_unreadable"


def test_ctrl_c_exits_130(cat: Path, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evidence_catalog import Catalog

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Catalog, "add", interrupted)
    (tmp_path / "f").write_text("f")
    result = run_cli("add", tmp_path / "f", "--catalog", cat)
    assert result.code == 130 and "interrupted" in result.err


# -- nothing found, a missing catalog, an operator nobody named ---------------------------------


def _one_record(cat: Path, run_cli: Any, tmp_path: Path) -> str:
    (tmp_path / "statement.txt").write_text("a witness statement")
    added = run_cli("add", tmp_path / "statement.txt", "--catalog", cat, "--tag", "school")
    assert added.code == 0, added.err
    return added.out.split("\t")[0]


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--tag", "no-such-tag"],
        ["list", "--status", "verified"],
        ["list", "--after", "{record}"],
        ["list", "--sha256", "0" * 64],
        ["search", "nothing-like-this"],
        ["search", "--hashtag", "NoSuchTag", "--offset", "5"],
        ["link", "--suggest"],
        ["link", "--suggest", "{record}"],
    ],
)
def test_nothing_found_is_said_the_same_way_by_every_command_that_lists(
    cat: Path, run_cli: Any, tmp_path: Path, args: list[str]
) -> None:
    """One rule (docs/cli.md): nothing found is an answer, not a failure: exit 0, standard output
    empty, "no matches" on standard error; with --json, the empty list and nothing else."""
    record = _one_record(cat, run_cli, tmp_path)
    argv = [a.format(record=record) for a in args]
    before = _state(cat, run_cli)
    text = run_cli(*argv, "--catalog", cat)
    assert (text.code, text.out, text.err) == (0, "", "no matches\n")
    as_json = run_cli(*argv, "--catalog", cat, "--json")
    assert (as_json.code, as_json.err) == (0, "")
    assert json.loads(as_json.out) == []
    assert _state(cat, run_cli) == before  # looking changes nothing


def test_no_matches_is_said_of_an_empty_catalog_and_never_beside_a_result(
    cat: Path, run_cli: Any, tmp_path: Path
) -> None:
    empty = run_cli("list", "--catalog", cat)
    assert (empty.code, empty.out, empty.err) == (0, "", "no matches\n")
    record = _one_record(cat, run_cli, tmp_path)
    found = run_cli("list", "--tag", "school", "--catalog", cat)
    assert found.code == 0 and found.out.startswith(record) and found.err == ""
    history = run_cli("log", record, "--catalog", cat)
    assert history.code == 0 and record in history.out and history.err == ""


def test_nothing_readable_found_is_said_with_the_unreadable_record_named(
    cat: Path, run_cli: Any, tmp_path: Path
) -> None:
    record = _one_record(cat, run_cli, tmp_path)
    body = json_set(database_dialect(cat), "body", "$.method", "teleported")
    run_sql(cat, f"update acquisition set body = {body} where record_id = :id", {"id": record})
    result = run_cli("list", "--catalog", cat)
    assert result.code == 1 and result.out == ""
    [error, nothing] = result.err.splitlines()
    assert error.startswith("error: ") and record in error
    assert nothing == "no matches among the records that could be read"


@pytest.mark.parametrize("args", [["list"], ["verify"], ["log"], ["search", "x"], ["add", "{tmp}/f.txt"]])
def test_a_missing_catalog_says_how_to_name_one(
    run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.delenv("EVIDENCE_CATALOG", raising=False)
    (tmp_path / "f.txt").write_text("x")
    result = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.code == 2 and result.out == ""
    no_traceback(result)
    assert "Missing option '--catalog'" in result.err
    assert "--catalog DIRECTORY" in result.err and "environment variable EVIDENCE_CATALOG" in result.err


def test_a_catalog_named_by_the_environment_that_is_not_there_says_where_it_came_from(
    cat: Path, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_CATALOG", str(tmp_path / "moved-away"))
    result = run_cli("list")
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"error: {tmp_path / 'moved-away'}: no such catalog directory")
    assert "$EVIDENCE_CATALOG" in result.err and "--catalog" in result.err
    monkeypatch.setenv("EVIDENCE_CATALOG", str(tmp_path))  # there, but not a catalog
    assert "not a catalog (no catalog.toml) (the directory named by $EVIDENCE_CATALOG" in run_cli("log").err
    # Given on the command line, the path is the user's own: no word about the environment.
    given = run_cli("list", "--catalog", tmp_path / "moved-away")
    assert given.code == 2 and "EVIDENCE_CATALOG" not in given.err
    monkeypatch.setenv("EVIDENCE_CATALOG", str(cat))  # and a real one works
    assert run_cli("list").code == 0


def test_init_without_an_operator_says_it_records_the_os_account(
    run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    account = pwd.getpwuid(os.geteuid()).pw_name
    monkeypatch.delenv("EVIDENCE_CATALOG_OPERATOR", raising=False)
    for quiet in ([], ["--quiet"]):  # a note on who is recorded is never dropped
        folder = tmp_path / f"catalog{len(quiet)}"
        result = run_cli("init", folder, *quiet)
        assert result.code == 0, result.err
        [note] = result.err.splitlines()
        assert note.startswith(
            f"note: no --operator given: this catalog's default operator is the operating-system account '{account}'"
        )
        assert "[operator] in catalog.toml" in note and "--operator 'NAME <EMAIL>'" in note
        assert f'name = "{account}"' in (folder / "catalog.toml").read_text()
    # What the note advises works: a name and e-mail under [operator] are who acts from then on.
    config = tmp_path / "catalog0" / "catalog.toml"
    config.write_text(config.read_text().replace(f'name = "{account}"', 'name = "A. Analyst"\nemail = "a@example.org"'))
    (tmp_path / "f.txt").write_text("x")
    assert run_cli("add", tmp_path / "f.txt", "--catalog", tmp_path / "catalog0").code == 0
    events = json.loads(run_cli("log", "--catalog", tmp_path / "catalog0", "--json").out)
    assert (events[0]["actor"]["name"], events[-1]["actor"]["name"]) == (account, "A. Analyst")
    assert events[-1]["actor"]["email"] == "a@example.org"
    # Named on the command line or in the environment: nothing to say.
    named = run_cli("init", tmp_path / "named", "--operator", "A <a@example.org>")
    assert named.code == 0 and named.err == ""
    monkeypatch.setenv("EVIDENCE_CATALOG_OPERATOR", "B <b@example.org>")
    from_env = run_cli("init", tmp_path / "from-env")
    assert from_env.code == 0 and from_env.err == ""
