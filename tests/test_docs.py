"""The user documentation in docs/ says what the program, the schemas and real exports do."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rfc8785

from evidence_catalog import Catalog
from evidence_catalog.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCHEMA_FILES = sorted((ROOT / "schemas").glob("*.schema.json"))
EVENT_SCHEMA = "urn:evidence-catalog:schema:custody-event:1.0.0"
FIELD_TABLE_HEADER = "| field | type | null? | meaning |"


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


# -- docs/data-model.md -------------------------------------------------------------------------


def _documented_fields() -> dict[str, set[str]]:
    """Fields in the table of each section whose heading names a schema definition: '### Agent (`agent`)'."""
    fields: dict[str, set[str]] = {}
    current: str | None = None
    in_table = False
    for line in (DOCS / "data-model.md").read_text(encoding="utf-8").splitlines():
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


def test_data_model_names_every_enum_value_and_schema_id() -> None:
    text = (DOCS / "data-model.md").read_text(encoding="utf-8")
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
    assert not missing, f"values not in data-model.md: {sorted(missing)}"


# -- docs/verification.md -----------------------------------------------------------------------

VERIFICATION = DOCS / "verification.md"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small real catalog's exports: the whole catalog as JSON, one record as JSON Lines."""
    base = tmp_path_factory.mktemp("docs-catalog")
    incoming = base / "incoming"
    incoming.mkdir()
    (incoming / "свідок.txt").write_text("Свідчення — «школа №5», 2 березня\n", encoding="utf-8")
    (incoming / "photo.bin").write_bytes(bytes(range(256)) * 4)
    with Catalog.init(base / "catalog", operator="Test Analyst <analyst@example.org>") as catalog:
        [statement] = catalog.add(
            [incoming / "свідок.txt"], tags=["школа"], note="Надіслано контактом", source_url="https://t.me/x/1"
        )
        catalog.add([incoming], recursive=True, tags=["batch"])
        assert catalog.verify().ok
        catalog.export(base / "export.json")
        catalog.export(base / "record.jsonl", format="jsonl", record_ids=[statement.record_id])
    return {"json": base / "export.json", "jsonl": base / "record.jsonl"}


def _json_lines_events(path: Path) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [d for d in documents if d["schema"] == EVENT_SCHEMA]


def test_documented_event_hash_reproduces_a_real_exports_hashes(exports: dict[str, Path]) -> None:
    # verification.md, "How an event hash is made": the event with its schema member (put back for
    # events inside a JSON export) and without hash, RFC 8785 canonical JSON, SHA-256 in hex.
    export = json.loads(exports["json"].read_text(encoding="utf-8"))
    events = export["custody_events"]
    assert export["complete_log"] is True
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all("schema" not in event for event in events)
    previous = "0" * 64
    for event in events:
        document = {"schema": EVENT_SCHEMA, **event}
        del document["hash"]
        assert hashlib.sha256(rfc8785.dumps(document)).hexdigest() == event["hash"], event["seq"]
        assert event["prev_hash"] == previous
        previous = event["hash"]
    for event in _json_lines_events(exports["jsonl"]):
        document = dict(event)
        del document["hash"]
        assert hashlib.sha256(rfc8785.dumps(document)).hexdigest() == event["hash"], event["seq"]


def _run_python(code_or_path: str | Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(["-c", code_or_path] if isinstance(code_or_path, str) else [code_or_path]), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_the_few_lines_of_python_in_the_doc_confirm_every_event(exports: dict[str, Path], tmp_path: Path) -> None:
    code = _code_after(VERIFICATION, "recipe: hash-events")
    assert "evidence_catalog" not in code
    opened = re.search(r'open\("([^"]+)"', code)
    assert opened, "the recipe no longer opens an export file by name"
    target = tmp_path / opened.group(1)
    export = json.loads(exports["json"].read_text(encoding="utf-8"))
    target.write_text(json.dumps(export), encoding="utf-8")

    result = _run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{e['seq']} True" for e in export["custody_events"]]

    export["custody_events"][1]["details"]["size"] += 1
    target.write_text(json.dumps(export), encoding="utf-8")
    assert "2 False" in _run_python(code, cwd=tmp_path).stdout.splitlines()


def test_the_documented_log_checker_accepts_real_exports_and_catches_changes(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    script = tmp_path / "check_custody.py"
    script.write_text(_code_after(VERIFICATION, "recipe: check-custody"), encoding="utf-8")
    assert "evidence_catalog" not in script.read_text(encoding="utf-8")

    for path in exports.values():
        result = _run_python(script, path, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert " 0 problem(s)" in result.stdout

    export = json.loads(exports["json"].read_text(encoding="utf-8"))
    edited = json.loads(json.dumps(export))
    edited["custody_events"][1]["details"]["original_path"] = "/elsewhere/other.txt"
    (tmp_path / "edited.json").write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    result = _run_python(script, tmp_path / "edited.json", cwd=tmp_path)
    assert result.returncode == 1
    assert "event 2: its content does not match its hash" in result.stdout

    cut = json.loads(json.dumps(export))
    del cut["custody_events"][2]
    (tmp_path / "cut.json").write_text(json.dumps(cut, ensure_ascii=False), encoding="utf-8")
    result = _run_python(script, tmp_path / "cut.json", cwd=tmp_path)
    assert result.returncode == 1
    assert "events 3 to 3 are missing" in result.stdout


def test_the_worked_example_hashes_to_the_hash_it_shows() -> None:
    event = json.loads(_code_after(VERIFICATION, "example: event-json"))
    canonical = _code_after(VERIFICATION, "example: event-canonical")
    document = {k: v for k, v in event.items() if k != "hash"}
    assert rfc8785.dumps(document).decode("utf-8") == canonical
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == event["hash"]
    assert f"{event['hash']}  -" in VERIFICATION.read_text(encoding="utf-8")
