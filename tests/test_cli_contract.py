"""What docs/cli.md promises about every command, found by running the commands on real catalogs
(and, where running cannot tell, by reading their code): which custody events each appends,
which exit with 1, and which say "no matches"."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from evidence_catalog import Catalog
from evidence_catalog.cli import cli
from evidence_catalog.custody import Action
from tests.conftest import make_jpeg
from tests.tsa_server import LocalTSA

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
FEED = """<rss version="2.0"><channel><title>Harbour Monitor</title>
<item><title>Shelling near the #EastQuay school</title><link>https://news.example.org/1</link>
<guid>post-1</guid></item></channel></rss>
"""


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as server:
        yield server


def _doc() -> str:
    return CLI_DOC.read_text(encoding="utf-8")


def _rows_after(marker: str) -> list[list[str]]:
    """The body rows of the Markdown table that follows ``<!-- marker -->``, split into cells."""
    text = _doc()
    start = text.find(f"<!-- {marker} -->\n")
    assert start >= 0, f"docs/cli.md has no table after <!-- {marker} -->"
    rows = []
    for line in text[start:].splitlines()[3:]:  # after the marker, the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _quoted(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def documented_logging() -> dict[str, set[str]]:
    """For each command (or command and option) the table names: the custody actions it says
    the command appends."""
    actions = {value for name, value in vars(Action).items() if name.isupper() and isinstance(value, str)}
    table: dict[str, set[str]] = {}
    for label_cell, events_cell in _rows_after("commands that log"):
        for label in _quoted(label_cell):
            assert label not in table, f"{label} is in the table twice"
            table[label] = {name for name in _quoted(events_cell) if name in actions}
    return table


class Probe:
    """Runs commands on a catalog and records the custody actions each label appended."""

    def __init__(self, run_cli: Any, catalog: Path) -> None:
        self.run_cli, self.catalog = run_cli, catalog
        self.appended: dict[str, set[str]] = {}

    def actions(self, catalog: Path | None = None) -> list[str]:
        with Catalog.open(catalog or self.catalog, read_only=True) as opened:
            return [event.action for event in opened.history()]

    def run(self, label: str, *args: str | Path, catalog: Path | None = None, codes: tuple[int, ...] = (0,)) -> Any:
        where = catalog or self.catalog
        before = self.actions(where)
        result = self.run_cli(*args, *([] if label == "schema" else ["--catalog", where]))
        assert result.code in codes, (label, result.code, result.err)
        assert "Traceback" not in result.out + result.err
        self.appended.setdefault(label, set()).update(self.actions(where)[len(before) :])
        return result


def test_the_table_of_custody_events_is_what_every_command_appends(
    tmp_path: Path, run_cli: Any, tsa: LocalTSA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVIDENCE_CATALOG", raising=False)
    monkeypatch.setenv("EVIDENCE_CATALOG_OPERATOR", "A. Analyst <analyst@example.org>")
    home, other = tmp_path / "catalog", tmp_path / "other"
    for folder in (home, other):
        assert run_cli("init", folder, "-q").code == 0
    probe = Probe(run_cli, home)
    probe.appended["init"] = set(probe.actions())
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"statement {name}")
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED, encoding="utf-8")

    record = probe.run("add", "add", tmp_path / "a.txt").out.split("\t")[0]
    second = probe.run("add", "add", tmp_path / "b.txt").out.split("\t")[0]
    (tmp_path / "photo.jpg").write_bytes(make_jpeg())
    (tmp_path / "later.jpg").write_bytes(make_jpeg(colour=(10, 200, 30)))
    probe.run("add", "add", tmp_path / "photo.jpg")  # analysed as it is added
    later = probe.run("add", "add", tmp_path / "later.jpg", "--no-analyze").out.split("\t")[0]
    probe.run("analyze", "analyze", later)
    probe.run("analyze", "analyze", "--all")  # all analysed already
    probe.run("ingest", "ingest", feed)
    with socket.socket() as closed:  # a port nothing listens on: the capture fails, and is logged
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}/gone"
    probe.run("capture", "capture", gone, "--retries", "0", "--timeout", "5", codes=(1,))
    probe.run("list", "list")
    probe.run("show", "show", record)
    probe.run("log", "log")
    probe.run("log", "log", record, "--json")
    probe.run("log", "log", "--proof", "1")
    hits = json.loads(probe.run("search", "search", "shelling", "--json").out)
    probe.run("search", "search", "nothing-like-this")
    probe.run("similar", "similar", record, codes=(2,))  # no analysed media on it: refused, nothing logged
    probe.run("claim", "claim", record, "--summary", "a school hit", "--source", "a witness")
    probe.run("assess", "assess", record, "--status", "in_progress")
    probe.run("relate", "relate", record, "same_incident_as", second)
    probe.run("tag", "tag", record, "school")
    probe.run("tag", "tag", record, "school")  # had it already
    probe.run("note", "note", record, "called the witness back")
    probe.run("flag", "flag", record, "personal_data", "--reason", "a name")
    probe.run("categories", "categories")
    probe.run("categories --define", "categories", "--define", "local-1", "--label", "Looting")
    probe.run("link --suggest", "link", "--suggest")
    probe.run("link", "link", hits[0]["report"]["id"], record)
    probe.run("link", "link", hits[0]["report"]["id"], record)  # there already
    probe.run("checkpoint", "checkpoint")
    probe.run("checkpoint --timestamp", "checkpoint", "--timestamp", "--tsa", tsa.url)
    probe.run("verify --no-log", "verify", "--no-log")
    probe.run("verify", "verify")
    probe.run("export", "export", "-o", tmp_path / "export.json")
    probe.run("exhibit", "exhibit", record, "-o", tmp_path / "exhibit.html")
    probe.run("import", "import", tmp_path / "export.json", "--blobs", home, catalog=other)
    probe.run("import", "import", tmp_path / "export.json", "--blobs", home)  # all here already
    probe.run("fsck", "fsck")
    leftover = b"bytes an interrupted import left"
    with Catalog.open(home) as opened:
        orphan = opened.blobs.path_for(hashlib.sha256(leftover).hexdigest())
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(leftover)
    then = time.time() - 7200
    os.utime(orphan, (then, then))
    probe.run("fsck --remove", "fsck", "--remove")
    probe.run("change-key", "change-key")
    probe.run("schema", "schema", "artifact")
    probe.appended["serve"] = _served(probe, home)

    documented = documented_logging()
    assert set(probe.appended) == set(documented), "commands run here and those in the table differ"
    for label, appended in probe.appended.items():
        assert appended <= documented[label], f"{label} appends {appended - documented[label]}, not in the table"
        assert bool(appended) == bool(documented[label]), f"{label}: the table says it appends {documented[label]}"
    # Every command is in the table, and exactly those that can log take --operator.
    commands = {name for name, command in cli.commands.items() if not command.hidden}
    assert {label.split()[0] for label in documented} == commands
    logging = {label.split()[0] for label, actions in documented.items() if actions}
    with_operator = {
        name
        for name, command in cli.commands.items()
        if any(isinstance(p, click.Option) and "--operator" in p.opts for p in command.params)
    }
    assert with_operator == logging


def _exit_code_row(code: str) -> str:
    [row] = [cells for cells in _rows_after("exit codes") if cells[0] == f"`{code}`"]
    return row[1]


def _commands_named(text: str) -> set[str]:
    return {quoted.split()[0] for quoted in _quoted(text)} & set(cli.commands)


def _commands_whose_code_mentions(name: str) -> set[str]:
    return {
        n for n, command in cli.commands.items() if command.callback and name in inspect.getsource(command.callback)
    }


#: Commands that exit with 1 through the library's IntegrityError (cli.main maps it), shown by
#: running them in test_a_damaged_artifact_makes_export_exit_1_and_import_exit_2 (a refused
#: import exits with 2 whatever the reason: one rule).
INTEGRITY_COMMANDS = {"export"}


def test_the_exit_code_table_names_every_command_that_can_exit_1() -> None:
    named = _commands_named(_exit_code_row("1"))
    assert named == _commands_whose_code_mentions("EXIT_PROBLEMS") | INTEGRITY_COMMANDS


def test_the_commands_said_to_say_no_matches_are_those_that_do() -> None:
    [paragraph] = re.findall(r"\*\*Nothing found\.\*\*(.*?)has nothing to show", _doc(), re.DOTALL)
    assert _commands_named(paragraph) == _commands_whose_code_mentions("_nothing_found(")
    assert "exits with `0`" in _doc() and "`no matches` on standard error" in _doc()


def test_a_damaged_artifact_makes_export_exit_1_and_import_exit_2(tmp_path: Path, run_cli: Any) -> None:
    home, other = tmp_path / "catalog", tmp_path / "other"
    for folder in (home, other):
        assert run_cli("init", folder, "-q", "--operator", "A <a@example.org>").code == 0
    evidence = tmp_path / "statement.txt"
    evidence.write_text("a witness statement")
    assert run_cli("add", evidence, "--catalog", home).code == 0
    bag = tmp_path / "bag"
    assert run_cli("export", "--format", "bagit", "-o", bag, "--catalog", home).code == 0
    [copied] = (bag / "data").glob("records/*/artifacts/*")
    copied.write_text("A witness statement")  # the same length: Payload-Oxum still agrees
    before = run_cli("log", "--catalog", other, "--json").out
    refused = run_cli("import", bag, "--catalog", other)
    assert refused.code == 2 and refused.err.startswith("error: ") and refused.err.count("\n") == 1, refused.err
    assert run_cli("log", "--catalog", other, "--json").out == before
    with Catalog.open(home) as opened:
        stored = opened.blobs.path_for(hashlib.sha256(evidence.read_bytes()).hexdigest())
    stored.chmod(0o644)
    stored.write_text("a witness statement, edited")
    before = run_cli("log", "--catalog", home, "--json").out
    damaged = run_cli("export", "--format", "bagit", "-o", tmp_path / "second-bag", "--catalog", home)
    assert damaged.code == 1 and "run verify" in damaged.err
    assert not (tmp_path / "second-bag").exists()
    assert run_cli("log", "--catalog", home, "--json").out == before


def _served(probe: Probe, catalog: Path) -> set[str]:
    """The actions appended while ``serve`` ran as a user starts it and every kind of page was
    asked for (it cannot run in-process: it serves until Ctrl-C)."""
    import re
    import select
    import signal
    import subprocess
    import sys
    import urllib.request

    before = probe.actions(catalog)
    with Catalog.open(catalog, read_only=True) as opened:
        record_id = opened.record_ids()[0]
    command = [sys.executable, "-m", "evidence_catalog", "serve", "--catalog", str(catalog), "--port", "0"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        assert select.select([process.stderr], [], [], 60)[0], "serve printed nothing"
        found = re.search(r" at (http://\S+)/ ", process.stderr.readline())
        assert found, "serve printed no address"
        for path in (
            "/records",
            "/log",
            "/map",
            "/timeline",
            f"/records/{record_id}",
            f"/records/{record_id}/check.json",
        ):
            with urllib.request.urlopen(found.group(1) + path, timeout=60) as response:
                assert response.status == 200, path
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    return set(probe.actions(catalog)[len(before) :])
