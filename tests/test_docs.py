"""The user documentation in docs/ says what the program, the schemas and real exports do."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import click
import pytest
import rfc8785
from click.testing import CliRunner

from evidence_catalog import Catalog, findings
from evidence_catalog.cli import cli
from evidence_catalog.custody import Action
from tests.media_server import MediaServer, Route
from tests.salted import committed_by_hand

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
QUICKSTART = DOCS / "quickstart.md"
DATA_MODEL = DOCS / "data-model.md"
VERIFICATION = DOCS / "verification.md"
CAPTURE = DOCS / "capture.md"
SCHEMA_FILES = sorted((ROOT / "schemas").glob("*.schema.json"))
EVENT_SCHEMA = "urn:evidence-catalog:schema:custody-event:1.1.0"
FIELD_TABLE_HEADER = "| field | type | null? | meaning |"
#: Where the quickstart's analyst works; the test's own directory stands in for it.
DOC_CASE_DIR = "/home/analyst/case-0412"


def _load_cli_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_reference = _load_cli_reference()


def _code_after(document: Path, marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in a Markdown file."""
    text = document.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```[a-z]*\n(.*?)\n```", text, re.DOTALL)
    assert found, f"{document.name} has no code block after <!-- {marker} -->"
    return found.group(1)


def _table_after(text: str, marker: str) -> list[list[str]]:
    """The body rows of the Markdown table that follows ``<!-- marker -->``, split into cells."""
    start = text.find(f"<!-- {marker} -->\n")
    assert start >= 0, f"no table after <!-- {marker} -->"
    lines = text[start:].splitlines()[1:]
    rows = []
    for line in lines[2:]:  # after the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _verification_text() -> str:
    return VERIFICATION.read_text(encoding="utf-8")


def _run_python(code_or_path: str | Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(["-c", code_or_path] if isinstance(code_or_path, str) else [code_or_path]), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _hashed(event: dict[str, Any]) -> dict[str, Any]:
    """What an event's hash covers (written from docs/verification.md, see tests/salted.py)."""
    return committed_by_hand(event)


def _event_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps(_hashed(event))).hexdigest()


# -- docs/cli.md --------------------------------------------------------------------------------


def test_cli_reference_matches_the_commands_help() -> None:
    current = cli_reference.CLI_DOC.read_text(encoding="utf-8")
    assert cli_reference.render(current) == current, "docs/cli.md is stale: run python docs/cli_reference.py"


def test_cli_reference_check_reports_a_stale_file_and_rewrite_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "cli.md"
    text = cli_reference.CLI_DOC.read_text(encoding="utf-8")
    stale.write_text(text.replace("Show this message and exit.", "Show this message.", 1), encoding="utf-8")
    monkeypatch.setattr(cli_reference, "CLI_DOC", stale)

    assert cli_reference.main(["--check"]) == 1
    assert cli_reference.main([]) == 0
    assert cli_reference.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == text


def test_every_command_is_in_the_reference_and_the_python_table() -> None:
    text = cli_reference.CLI_DOC.read_text(encoding="utf-8")
    hand_written = text.split(cli_reference.BEGIN)[0]
    generated = text.split(cli_reference.BEGIN)[1].split(cli_reference.END)[0]
    assert cli.commands, "the CLI has no commands"
    for name, command in cli.commands.items():
        if command.hidden:
            continue
        assert f"### `evidence-catalog {name}`" in generated, f"no --help section for {name}"
        assert f"$ evidence-catalog {name} --help" in generated
        assert f"| `{name}` |" in hand_written, f"command {name} is missing from the table of commands"


def _documented_add_statuses(text: str) -> set[str]:
    found = re.search(r"^\| status \| meaning \|\n\|---\|---\|\n((?:\|.*\n)+)", text, re.MULTILINE)
    assert found, "cli.md has no table of add statuses"
    return set(re.findall(r"^\| `([a-z ]+)` \|", found.group(1), re.MULTILINE))


def test_the_add_statuses_in_cli_md_are_those_add_prints(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"EVIDENCE_CATALOG": str(tmp_path / "catalog"), "EVIDENCE_CATALOG_OPERATOR": None}
    for name in ("a", "b"):
        (tmp_path / name).write_text(name, encoding="utf-8")

    def add(*args: str) -> list[list[str]]:
        result = runner.invoke(cli, ["add", *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return [line.split("\t") for line in result.stdout.splitlines()]

    assert runner.invoke(cli, ["init", str(tmp_path / "catalog"), "-q"], env=env).exit_code == 0
    [[record_a, _, new, _]] = add(str(tmp_path / "a"))
    [[record_b, _, _, _]] = add(str(tmp_path / "b"))
    [[_, _, added, _]] = add("--record", record_a, str(tmp_path / "b"))  # bytes another record holds
    [[_, _, already, _]] = add(str(tmp_path / "a"))
    [[_, _, already_on_record, _]] = add("--record", record_b, str(tmp_path / "b"))
    printed = {new, added, already, already_on_record}
    assert (new, added, already, already_on_record) == ("new", "added", "already catalogued", "already catalogued")

    documented = _documented_add_statuses(cli_reference.CLI_DOC.read_text(encoding="utf-8"))
    assert documented == printed
    assert _documented_add_statuses("| status | meaning |\n|---|---|\n| `new` | made |\n") != printed


# -- docs/quickstart.md -------------------------------------------------------------------------

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\b")
_UTC_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|\+00:00)")


def _masked(text: str, case_dir: Path | None = None) -> str:
    """*text* without what differs from run to run: ids, UTC times, hosts, hashes of logs and exports."""
    if case_dir is not None:
        text = text.replace(str(case_dir), DOC_CASE_DIR)
    text = _UUID.sub("<id>", text)
    text = _UTC_TIME.sub("<time>", text)
    text = re.sub(r"(<analyst@example\.org> at )\S+", r"\1<host>", text)
    text = re.sub(r'("host": )"[^"]*"', r'\1"<host>"', text)
    text = re.sub(r"\b[0-9a-f]{16}$", "<hash prefix>", text, flags=re.MULTILINE)
    text = re.sub(r"\(sha256 [0-9a-f]{64}\)", "(sha256 <export>)", text)
    text = re.sub(r"^[0-9a-f]{64}(?=  case-0412-export\.json$)", "<export>", text, flags=re.MULTILINE)
    return re.sub(r"^(\d+ \d+) [0-9a-f]{64}$", r"\1 <export>", text, flags=re.MULTILINE)


def _quickstart_steps(text: str) -> list[tuple[str, list[str] | None, str]]:
    """Each ``<!-- output: name -->`` block of the quickstart, with the command shown just before it."""
    steps = []
    for found in re.finditer(r"<!-- output: ([\w.-]+) -->\n```[a-z]*\n(.*?)\n```", text, re.DOTALL):
        before = text[: found.start()].rstrip()
        command = None
        shell = re.search(r"```sh\n((?:(?!```).)*)\n```$", before, re.DOTALL)
        if shell:
            command = shlex.split(shell.group(1).replace("\\\n", " "))
        steps.append((found.group(1), command, found.group(2)))
    return steps


@pytest.mark.slow
def test_the_quickstart_shows_what_its_commands_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = QUICKSTART.read_text(encoding="utf-8")
    steps = _quickstart_steps(text)
    assert [name for name, _, _ in steps] == [
        "init",
        "catalog.toml",
        "add-photo",
        "add-record",
        "add-recursive",
        "list",
        "show",
        "log",
        "verify",
        "verify-json",
        "export",
        "export-jsonl",
        "sha256sum",
        "export-acquisition",
        "quickstart-python",
    ]
    case = tmp_path / "case-0412"
    (case / "incoming").mkdir(parents=True)
    for pattern in ("*.jpg", "*.png", "*.pdf", "*.txt", "*.wav"):
        for example in EXAMPLES.glob(pattern):
            shutil.copy(example, case / "incoming")
    monkeypatch.chdir(case)
    env = {"EVIDENCE_CATALOG": str(case / "catalog"), "EVIDENCE_CATALOG_OPERATOR": None}
    runner = CliRunner()
    documented_id = _UUID.search(_code_after(QUICKSTART, "output: add-photo"))
    assert documented_id
    record_id = None
    for name, command, shown in steps:
        if name == "catalog.toml":
            text = (case / "catalog" / "catalog.toml").read_text(encoding="utf-8")
            # Under --backend postgresql the test run put the database elsewhere; the rest is as shown.
            text = re.sub(r'\n\[database\]\nurl = "postgresql\+psycopg://[^"\n]*"\n', "", text)
            assert text.rstrip("\n") == shown
            continue
        if name == "sha256sum":
            assert command == ["sha256sum", "case-0412-export.json"]
            digest = hashlib.sha256((case / "case-0412-export.json").read_bytes()).hexdigest()
            assert f"(sha256 {shown.split()[0]})" in _code_after(QUICKSTART, "output: export"), "two export hashes"
            assert _masked(f"{digest}  case-0412-export.json") == _masked(shown)
            continue
        if name == "export-acquisition":
            export = json.loads((case / "case-0412-export.json").read_text(encoding="utf-8"))
            made = json.dumps(export["records"][0]["acquisitions"][0], indent=1, ensure_ascii=False)
            assert _masked(made, case) == _masked(json.dumps(json.loads(shown), indent=1, ensure_ascii=False))
            continue
        if name == "verify-json":
            command = ["evidence-catalog", "verify", "--json"]
        if name == "quickstart-python":
            result = _run_python(_code_after(QUICKSTART, "example: quickstart-python"), cwd=case)
            assert result.returncode == 0, result.stderr
            assert _masked(result.stdout.rstrip("\n"), case) == _masked(shown)
            continue
        assert command is not None and command[0] == "evidence-catalog", name
        args = [record_id if word == documented_id.group(0) else word for word in command[1:]]
        result = runner.invoke(cli, args, env=env, prog_name="evidence-catalog", catch_exceptions=False)
        assert result.exit_code == 0, f"{name}: {result.output}"
        assert _masked(result.stdout.rstrip("\n"), case) == _masked(shown), f"quickstart step {name}"
        if name == "add-photo":
            record_id = result.stdout.split("\t")[0]


def test_the_quickstart_comparison_notices_a_changed_output() -> None:
    shown = _code_after(QUICKSTART, "output: add-recursive")
    assert _masked(shown) != _masked(shown.replace("already catalogued", "added", 1))
    assert _masked(shown) == _masked(_UUID.sub("0195606d-0000-7000-8000-000000000000", shown))


# -- docs/data-model.md -------------------------------------------------------------------------


def _documented_fields(text: str | None = None) -> dict[str, set[str]]:
    """Fields in the table of each section whose heading names a schema definition: '### Agent (`agent`)'."""
    fields: dict[str, set[str]] = {}
    current: str | None = None
    in_table = False
    if text is None:
        text = DATA_MODEL.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("#"):
            heading = re.search(r"\(`([a-z0-9_]+)`\)\s*$", line)
            current = heading.group(1) if heading else None
            if current is not None:
                assert current not in fields, f"data-model.md describes {current} twice"
                fields[current] = set()
            in_table = False
        elif current is not None and line.strip() == FIELD_TABLE_HEADER:
            in_table = True
        elif in_table and line.startswith("|"):
            row = re.match(r"\| `([A-Za-z0-9_$]+)` \|", line)
            if row:
                fields[current].add(row.group(1))
        elif in_table:
            in_table = False
    return fields


def _schema_fields() -> dict[str, set[str]]:
    """Properties of every definition in every schema file, and of each file's root document."""
    expected: dict[str, set[str]] = {}
    for path in SCHEMA_FILES:
        schema = json.loads(path.read_text(encoding="utf-8"))
        for name, definition in schema["$defs"].items():
            expected.setdefault(name, set()).update(definition.get("properties", {}))
        root = schema["$id"].split(":")[3].replace("-", "_")
        expected.setdefault(root, set()).update(schema["properties"])
    return expected


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_schema_files_are_there() -> None:
    assert len(SCHEMA_FILES) >= 4


@pytest.mark.parametrize("name", sorted(_schema_fields()))
def test_data_model_documents_every_field_of_every_schema_definition(name: str) -> None:
    documented = _documented_fields()
    assert name in documented, f"data-model.md has no section headed '... (`{name}`)'"
    expected = _schema_fields()[name]
    assert documented[name] == expected, (
        f"{name}: missing from data-model.md {sorted(expected - documented[name])}, "
        f"not in the schemas {sorted(documented[name] - expected)}"
    )


def test_the_field_check_notices_a_missing_or_an_extra_field() -> None:
    text = DATA_MODEL.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `altitude_m` |"))
    assert "altitude_m" not in _documented_fields(text.replace(row + "\n", ""))["geo_position"]
    extra = _documented_fields(text.replace(row, row + "\n| `depth_m` | number | yes | Depth. |"))
    assert extra["geo_position"] == _schema_fields()["geo_position"] | {"depth_m"}


def _missing_enum_values(text: str) -> set[str]:
    missing = set()
    for path in SCHEMA_FILES:
        schema = json.loads(path.read_text(encoding="utf-8"))
        for node in _walk(schema):
            values = list(node.get("enum", []))
            if isinstance(node.get("const"), str):
                values.append(node["const"])
            missing.update(v for v in values if f"`{v}`" not in text)
        if f"`{schema['$id']}`" not in text:
            missing.add(schema["$id"])
    return missing


def test_data_model_names_every_enum_value_and_schema_id() -> None:
    text = DATA_MODEL.read_text(encoding="utf-8")
    assert not _missing_enum_values(text), f"values not in data-model.md: {sorted(_missing_enum_values(text))}"
    assert _missing_enum_values(text.replace("`ingested_from_feed`", "ingested from a feed")) == {"ingested_from_feed"}


def test_data_model_lists_every_custody_action_and_what_artifact_added_holds(exports: dict[str, Path]) -> None:
    text = DATA_MODEL.read_text(encoding="utf-8")
    actions = {value for name, value in vars(Action).items() if name.isupper()}
    for action in actions:
        assert f"| `{action}` |" in text, f"action {action} is missing from data-model.md"
    assert set(re.findall(r"^\| `([a-z]+\.[a-z]+)` \|", text, re.MULTILINE)) == actions

    events = json.loads(exports["log"].read_text(encoding="utf-8"))
    real = {name for e in events if e["action"] == Action.ARTIFACT_ADDED for name in e["details"]}
    documented = {re.sub(r"`", "", row[0]) for row in _table_after(text, "table: artifact.added details")}
    assert documented == real, f"missing {sorted(real - documented)}, no longer written {sorted(documented - real)}"


# -- docs/capture.md ----------------------------------------------------------------------------

#: The page capture.md's examples capture at https://video.example.org/watch/0412 (its media URLs are
#: relative, so the page's bytes, and the SHA-256 the document shows, do not depend on the server).
CAPTURE_PAGE = """<!DOCTYPE html>
<html lang="uk"><head><meta charset="utf-8">
<title>Обстріл школи №5, 2 березня</title>
<meta property="og:title" content="Обстріл школи №5, 2 березня">
<meta property="og:description" content="Відео з місця подій, надіслане глядачем.">
</head><body>
<h1>Обстріл школи №5, 2 березня</h1>
<video controls src="/media/0412.mp4" poster="/media/0412.png">
<track kind="subtitles" srclang="uk" label="Українська" src="/media/0412.uk.vtt">
</video>
</body></html>
"""
CAPTURE_SUBTITLES = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nШкола №5, 2 березня\n"
CAPTURE_SITE = "https://video.example.org"
CLIP = ROOT / "tests" / "data" / "clip.mp4"


def _serve_capture_page(server: MediaServer, media: bytes) -> str:
    """Serve capture.md's example item; return the server's address, which stands for CAPTURE_SITE."""
    server.route("/watch/0412", Route(body=CAPTURE_PAGE.encode(), media_type="text/html; charset=utf-8"))
    server.route(
        "/media/0412.mp4", Route(body=media, media_type="video/mp4", headers={"Set-Cookie": "visitor=7f3a9c; Path=/"})
    )
    server.route(
        "/media/0412.png",
        Route(body=(EXAMPLES / "damaged-building-thumbnail.png").read_bytes(), media_type="image/png"),
    )
    server.route("/media/0412.uk.vtt", Route(body=CAPTURE_SUBTITLES.encode(), media_type="text/vtt"))
    return server.url("")


def test_capture_md_describes_every_option_of_the_capture_command() -> None:
    text = CAPTURE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(--[a-z-]+)[ `]", text, re.MULTILINE))
    options = {
        name
        for param in cli.commands["capture"].params
        if isinstance(param, click.Option) and not param.hidden
        for name in param.opts
        if name.startswith("--") and name not in ("--help", "--catalog")
    }
    assert documented == options, (
        f"missing {sorted(options - documented)}, no such option {sorted(documented - options)}"
    )


def _documented_capture_statuses(text: str) -> set[str]:
    found = re.search(r"^\| status \| meaning \|\n\|---\|---\|\n((?:\|.*\n)+)", text, re.MULTILINE)
    assert found, "capture.md has no table of statuses"
    return set(re.findall(r"^\| `([a-z ()]+)` \|", found.group(1), re.MULTILINE))


def test_the_capture_statuses_in_capture_md_are_those_capture_prints(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"EVIDENCE_CATALOG": str(tmp_path / "catalog"), "EVIDENCE_CATALOG_OPERATOR": None}
    screenshot = tmp_path / "repost.txt"
    screenshot.write_text("RT: the full video is at media.example.net/p/7731\n", encoding="utf-8")
    fast = ["--retries", "0", "--timeout", "5"]

    def run(command: str, *args: str) -> list[list[str]]:
        result = runner.invoke(cli, [command, *args], env=env, catch_exceptions=False)
        assert result.exit_code in (0, 1), result.output
        return [line.split("\t") for line in result.stdout.splitlines()]

    with MediaServer() as server:
        base = _serve_capture_page(server, CLIP.read_bytes())
        server.route("/p/7731/video.mp4", Route(body=CLIP.read_bytes() + b"\0", media_type="video/mp4"))
        assert runner.invoke(cli, ["init", str(tmp_path / "catalog"), "-q"], env=env).exit_code == 0
        [[_, _, new, _]] = run("capture", f"{base}/watch/0412", *fast)
        [[_, _, already, _]] = run("capture", f"{base}/watch/0412", *fast)
        [[_, _, skipped, _]] = run("capture", f"{base}/watch/0412", "--skip-captured", *fast)
        [[_, _, failed, _]] = run("capture", f"{base}/watch/0419", *fast)
        [[record_id, _, _, _]] = run("add", str(screenshot))
        [[_, _, added, _]] = run("capture", "--record", record_id, f"{base}/p/7731/video.mp4", *fast)
        server.route("/media/0412.mp4", Route(body=CLIP.read_bytes() + b"re-encoded", media_type="video/mp4"))
        [[_, _, version, _]] = run("capture", f"{base}/watch/0412", *fast)
    printed = (new, already, skipped, failed, added, version)
    assert printed == ("new", "already catalogued", "skipped (captured before)", "failed", "added", "new version")
    assert _documented_capture_statuses(CAPTURE.read_text(encoding="utf-8")) == set(printed)


def _capture_masked(text: str, case_dir: Path, base: str) -> str:
    """*text* without what differs from run to run, and with the test server's address as the example's."""
    text = _masked(text.replace(base, CAPTURE_SITE), case_dir)
    text = re.sub(r"(platform_metadata application/json) \d+ [0-9a-f]{16}", r"\1 <info.json>", text)
    # The web archive's WARC records carry new ids and times at every capture (its size too:
    # they are compressed).
    text = re.sub(r"(web_archive application/wacz) \d+ <hash prefix>", r"\1 <wacz>", text)
    return re.sub(r"'(evidence-catalog|CPython|yt-dlp|warcio|py-wacz) [^']+'", r"'\1 <version>'", text)


@pytest.mark.slow
def test_the_capture_python_example_prints_what_capture_md_shows(tmp_path: Path) -> None:
    case = tmp_path / "case-0412"
    case.mkdir()
    code = _code_after(CAPTURE, "example: capture-python")
    shown = _code_after(CAPTURE, "output: capture-python")
    assert DOC_CASE_DIR in code and CAPTURE_SITE in code
    with MediaServer() as server:
        base = _serve_capture_page(server, CLIP.read_bytes())
        result = _run_python(code.replace(DOC_CASE_DIR, str(case)).replace(CAPTURE_SITE, base), cwd=case)
    assert result.returncode == 0, result.stderr
    made = _capture_masked(result.stdout.rstrip("\n"), case, base)
    assert made == _capture_masked(shown, case, base)
    assert "59ba852e84d29d2e" in shown, "the example shows the SHA-256 of tests/data/clip.mp4"


# -- docs/verification.md -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small real catalog's custody log in every form it leaves the catalog.

    ``json``: the whole catalog as a JSON export; ``jsonl``: one record as JSON Lines (events 2, 3,
    4, 5 and 7, so not consecutive; 4 is the analysis of the photo); ``log`` and ``record-log``:
    what ``log --json`` prints for the whole catalog and for that record.
    """
    base = tmp_path_factory.mktemp("docs-catalog")
    incoming = base / "incoming"
    incoming.mkdir()
    (incoming / "свідок.txt").write_text("Свідчення — «школа №5», 2 березня\n", encoding="utf-8")
    (incoming / "photo.bin").write_bytes(bytes(range(256)) * 4)
    shutil.copy(EXAMPLES / "damaged-building.jpg", incoming)  # EXIF with GPS: numbers with fractions
    with Catalog.init(base / "catalog", operator="Test Analyst <analyst@example.org>") as catalog:
        [statement] = catalog.add(
            [incoming / "свідок.txt"], tags=["школа"], note="Надіслано контактом", source_url="https://t.me/x/1"
        )
        catalog.add([incoming / "damaged-building.jpg"], record_id=statement.record_id, note="Фото до свідчення")
        catalog.add([incoming], recursive=True, tags=["batch"])
        assert catalog.verify().ok
        catalog.export(base / "export.json")
        catalog.export(base / "record.jsonl", format="jsonl", record_ids=[statement.record_id])
    runner = CliRunner()
    for name, args in (("log.json", []), ("record-log.json", [statement.record_id])):
        result = runner.invoke(cli, ["log", "--json", "--catalog", str(base / "catalog"), *args])
        assert result.exit_code == 0, result.output
        (base / name).write_text(result.stdout, encoding="utf-8")
    return {
        "json": base / "export.json",
        "jsonl": base / "record.jsonl",
        "log": base / "log.json",
        "record-log": base / "record-log.json",
    }


def _events(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [d for d in documents if d["schema"] == EVENT_SCHEMA]
    data = json.loads(text)
    return data if isinstance(data, list) else data["custody_events"]


def _write_events(path: Path, events: list[dict[str, Any]], into: Path) -> None:
    """Write *path*'s file to *into* with its events replaced by *events*."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = [line for line in text.splitlines() if line.strip() and json.loads(line)["schema"] != EVENT_SCHEMA]
        lines = records + [json.dumps(e, ensure_ascii=False) for e in events]
        into.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return
    data = json.loads(text)
    if isinstance(data, dict):
        data["custody_events"] = events
    else:
        data = events
    into.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def test_the_fixture_has_every_shape_of_log(exports: dict[str, Path]) -> None:
    export = json.loads(exports["json"].read_text(encoding="utf-8"))
    assert export["complete_log"] is True
    assert all("schema" not in event for event in export["custody_events"])
    assert [e["seq"] for e in _events(exports["jsonl"])] == [2, 3, 4, 5, 7]
    assert [e["seq"] for e in _events(exports["record-log"])] == [2, 3, 4, 5, 7]
    # The photo's analysis is logged too: the documented event hash is checked on it as well.
    assert [e["action"] for e in export["custody_events"]].count("media.analyzed") == 1
    assert all(e["schema"] == EVENT_SCHEMA for e in _events(exports["log"]))
    assert any("gps" in json.dumps(e) for e in export["custody_events"])


def test_documented_event_hash_reproduces_every_hash_in_every_format(exports: dict[str, Path]) -> None:
    # verification.md, "How an event hash is made": the event without its hash and schema members,
    # RFC 8785 canonical JSON, SHA-256 in hex.  Nothing is put back for events inside a JSON export.
    seen: dict[int, dict[str, Any]] = {}
    for path in exports.values():
        for event in _events(path):
            assert _event_hash(event) == event["hash"], (path.name, event["seq"])
            seen.setdefault(event["seq"], _hashed(event))
            assert _hashed(event) == seen[event["seq"]], "an event differs between formats"
    whole = _events(exports["log"])
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
    previous = "0" * 64
    for event in whole:
        assert event["prev_hash"] == previous
        previous = event["hash"]


def _edited(events: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    """A copy of *events* with the details of event *seq* changed, its stored hash left as it was."""
    copy = json.loads(json.dumps(events))
    [event] = [e for e in copy if e["seq"] == seq]
    if event["action"] == Action.ARTIFACT_ADDED:
        event["details"]["acquisition"]["original_path"] = "/elsewhere/other.txt"
    else:
        event["details"]["edited"] = True
    return copy


def test_the_hash_recipe_confirms_every_event_of_every_format_and_catches_an_edit(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    recipe = tmp_path / "hash_events.py"
    recipe.write_text(_code_after(VERIFICATION, "recipe: hash-events"), encoding="utf-8")
    assert "evidence_catalog" not in recipe.read_text(encoding="utf-8")

    for kind, path in exports.items():
        events = _events(path)
        result = _run_python(recipe, path, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"{e['seq']} True" for e in events], kind

        seq = events[1]["seq"]
        edited = tmp_path / f"edited-{kind}{path.suffix}"
        _write_events(path, _edited(events, seq), edited)
        lines = _run_python(recipe, edited, cwd=tmp_path).stdout.splitlines()
        assert lines == [f"{e['seq']} {e['seq'] != seq}" for e in events], kind


def test_the_documented_log_checker_accepts_real_logs_and_catches_changes(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    script = tmp_path / "check_custody.py"
    script.write_text(_code_after(VERIFICATION, "recipe: check-custody"), encoding="utf-8")
    assert "evidence_catalog" not in script.read_text(encoding="utf-8")

    def check(kind: str, events: list[dict[str, Any]], name: str) -> subprocess.CompletedProcess[str]:
        target = tmp_path / f"{name}{exports[kind].suffix}"
        _write_events(exports[kind], events, target)
        return _run_python(script, target, cwd=tmp_path)

    for kind, path in exports.items():
        events = _events(path)
        result = _run_python(script, path, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        last = events[-1]
        assert result.stdout.splitlines() == [
            f"{len(events)} event(s), 0 problem(s); last event {last['seq']}, hash {last['hash']}"
        ]
        # an edited event, in every format
        result = check(kind, _edited(events, events[1]["seq"]), f"edited-{kind}")
        assert result.returncode == 1
        assert f"event {events[1]['seq']}: its content does not match its hash" in result.stdout.splitlines()

    # a deleted event, in a whole log
    for kind in ("json", "log"):
        events = _events(exports[kind])
        del events[2]
        result = check(kind, events, f"cut-{kind}")
        assert result.returncode == 1
        assert result.stdout.splitlines()[0] == "events 3 to 3 are missing"

    # an event replaced by one with a valid hash of its own: only the link gives it away
    events = _events(exports["json"])
    events[2]["prev_hash"] = "0" * 64
    events[2]["hash"] = _event_hash(events[2])
    result = check("json", events, "relinked")
    assert result.returncode == 1
    assert result.stdout.splitlines()[:2] == ["event 3: does not link to event 2", "event 4: does not link to event 3"]


def test_the_worked_example_hashes_to_the_hash_it_shows() -> None:
    event = json.loads(_code_after(VERIFICATION, "example: event-json"))
    assert event["schema"] == EVENT_SCHEMA
    canonical = _code_after(VERIFICATION, "example: event-canonical")
    assert rfc8785.dumps(_hashed(event)).decode("utf-8") == canonical
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == event["hash"]
    text = VERIFICATION.read_text(encoding="utf-8")
    assert f"printf '%s' '{canonical}' | sha256sum" in text
    assert f"{event['hash']}  -" in text


def test_the_verify_chain_example_runs_on_a_real_export(exports: dict[str, Path], tmp_path: Path) -> None:
    code = _code_after(VERIFICATION, "example: verify-chain")
    shown = _code_after(VERIFICATION, "output: verify-chain")
    shutil.copy(exports["json"], tmp_path / "case-0412-export.json")
    result = _run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    def masked(output: str) -> str:
        return re.sub(r"^\d+ events", "N events", re.sub(r"[0-9a-f]{64}", "<hash>", output))

    assert masked(result.stdout.rstrip("\n")) == masked(shown)


def _finding_classes() -> list[type[findings.Finding]]:
    return [
        cls
        for _, cls in inspect.getmembers(findings, inspect.isclass)
        if issubclass(cls, findings.Finding) and cls is not findings.Finding
    ]


def _sentence_pattern(cls: type[findings.Finding]) -> tuple[str, re.Pattern[str]]:
    """The finding's kind, and a pattern matching every sentence it can print."""
    values = {}
    for field in attrs.fields(cls):
        marker = f"\x00{field.name}\x00"
        values[field.name] = (marker,) if str(field.type).startswith("tuple") else marker
    instance = cls(**values)
    pattern = re.escape(str(instance))
    for field in attrs.fields(cls):
        pattern = pattern.replace(re.escape(f"\x00{field.name}\x00"), "(.+)")
    return instance.kind, re.compile(pattern)


def _finding_table_problems(text: str) -> list[str]:
    """What the table of finding kinds in verification.md gets wrong about evidence_catalog.findings."""
    problems = []
    rows = {}
    for row in _table_after(text, "table: finding kinds"):
        if len(row) != 4:
            problems.append(f"malformed row {row}")
            continue
        rows[row[0].strip("`")] = row
    for cls in _finding_classes():
        kind, pattern = _sentence_pattern(cls)
        if kind not in rows:
            problems.append(f"{kind} is not in the table")
            continue
        _, fields, meaning, example = rows.pop(kind)
        names = [f.name for f in attrs.fields(cls)]
        if re.findall(r"`([a-z0-9_]+)`", fields) != names:
            problems.append(f"{kind}: fields should be {names}")
        if not meaning:
            problems.append(f"{kind}: says nothing of what it means")
        if not (example.startswith("`") and example.endswith("`") and pattern.fullmatch(example[1:-1])):
            problems.append(f"{kind}: the example is not a sentence this finding prints: {example}")
    problems.extend(f"{kind} is not a kind of finding" for kind in rows)
    return problems


def test_every_kind_of_finding_is_documented_with_a_sentence_it_really_prints() -> None:
    assert len(_finding_classes()) >= 12
    assert _finding_table_problems(_verification_text()) == []


def test_the_finding_table_check_notices_a_missing_kind_and_a_wrong_example() -> None:
    text = _verification_text()
    row = next(line for line in text.splitlines() if line.startswith("| `record_missing` |"))
    assert _finding_table_problems(text.replace(row + "\n", "")) == ["record_missing is not in the table"]
    [problem] = _finding_table_problems(text.replace("missing from the catalog`", "gone from the catalog`"))
    assert problem.startswith("record_missing: the example is not a sentence this finding prints")
    renamed = text.replace("| `record_id`, `fields` |", "| `record`, `fields` |")
    assert _finding_table_problems(renamed) == ["record_mismatch: fields should be ['record_id', 'fields']"]


def test_the_docs_show_nothing_of_the_machine_that_made_them() -> None:
    host = re.escape(socket.gethostname())
    for document in DOCS.glob("*.md"):
        text = document.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.])/(?:tmp|work)/", text), f"{document.name} shows a path of this machine"
        assert not re.search(rf"( at |\"host\": \"){host}\b", text), f"{document.name} shows this machine's name"


# -- docs/ingest.md -------------------------------------------------------------------------------


def test_the_ingest_guide_shows_the_digest_it_ingests_and_what_that_prints(tmp_path: Path, run_cli: Any) -> None:
    from tests.test_digest import DIGEST

    text = (ROOT / "docs" / "ingest.md").read_text(encoding="utf-8")
    assert f"```text\n{DIGEST}```" in text  # the example digest is the one the tests parse
    digest = tmp_path / "digest-0505.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    run_cli("init", tmp_path / "case", "--operator", "A. Analyst <analyst@example.org>")
    for args in (["--tag", "harbour"], []):
        result = run_cli("ingest", digest, "--catalog", tmp_path / "case", *args)
        assert result.code == 0
        shown = " ".join(["$ evidence-catalog ingest digest-0505.txt", *args])
        assert f"{shown}\n{result.out}" in text
