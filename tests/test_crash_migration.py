"""An auto-archiver import killed at random moments (SIGKILL), with the harness of
tests/test_crash.py: it stores and syncs the files first, then writes every record with its
event in one transaction, so after any kill the catalog holds all the archived URLs or none,
each record with every file it names; what a killed attempt stored and left is listed by
``fsck`` or claimed by the retry; ``verify`` passes."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from evidence_catalog import Catalog
from evidence_catalog.custody import Action
from evidence_catalog.model import Agent
from tests.aa_rows import FIXTURE
from tests.conftest import CliResult
from tests.test_crash import (  # noqa: F401 -- the harness's fixtures, used by name
    COMPLETED,
    KILLS,
    SEED,
    Launcher,
    Operation,
    Run,
    State,
    _exec_killed_at,
    _inspect,
    _kill_at_random,
    backend,
    launcher,
    make_catalog,
    make_default_catalog,
    pytestmark,
)

#: Archived URLs in the fixture, and every file its rows name.
ROWS = 6


class AutoArchiverImport(Operation):
    """``import --from auto-archiver``: every archived URL a record, with all its files and its
    ``record.imported`` event, or none."""

    def __init__(self, make: Callable[[], Path]) -> None:
        self.make_catalog = make
        self.files: dict[str, frozenset[str]] = {}

    def new_round(self) -> None:
        self.catalog_dir = self.make_catalog()

    def command(self) -> list[str]:
        return [
            "import",
            "--from",
            "auto-archiver",
            str(FIXTURE),
            "--catalog",
            str(self.catalog_dir),
            "--quiet",
            "--no-analyze",
        ]

    def check(self, run: Run, before: State, after: State) -> str:
        assert len(after.records) in ((ROWS,) if not run.killed else (0, ROWS)), f"{len(after.records)} records"
        assert after.actions[Action.RECORD_IMPORTED] == len(after.records)
        for record_id, record in after.records.items():
            shas = frozenset(e.artifact.sha256 for e in record.artifacts)
            assert self.files.setdefault(record_id, shas) == shas  # the same files, every time
        stored = frozenset().union(*self.files.values()) if self.files else frozenset()
        assert not self.files or after.orphans - before.orphans <= stored
        assert len(after.temporary - before.temporary) <= 1  # one file is being stored at a time
        return "all" if len(before.records) < len(after.records) else "none"

    def complete(self) -> None:
        with Catalog.open(self.catalog_dir) as catalog:
            catalog.import_auto_archiver(FIXTURE, analyze=False)


def test_an_auto_archiver_import_killed_at_random_moments(
    backend: str,  # noqa: F811
    make_catalog: Callable[[], Path],  # noqa: F811
    operator: Agent,
    launcher: Launcher,  # noqa: F811
    run_cli: Callable[..., CliResult],
) -> None:
    rng = random.Random(f"{SEED}-auto-archiver-{backend}")
    summary = _kill_at_random(
        AutoArchiverImport(make_catalog), kills=KILLS[backend], rng=rng, launcher=launcher, run_cli=run_cli
    )
    print(f"auto-archiver import ({backend}): {dict(summary)}")


def test_an_auto_archiver_import_killed_inside_its_transaction_leaves_bytes_a_retry_claims(
    make_default_catalog: Callable[[], Path],  # noqa: F811
) -> None:
    """Killed after the records are written but before they are committed: no record, every
    file stored and claimed by nobody (``fsck`` lists them); the retry imports everything and
    stores nothing again."""
    operation = AutoArchiverImport(make_default_catalog)
    operation.new_round()
    before = _inspect(operation.catalog_dir)
    run = _exec_killed_at("evidence_catalog.operations.importing:insert_imported", "after", 1, *operation.command())
    assert run.killed, run.stderr
    after = _inspect(operation.catalog_dir)
    assert operation.check(run, before, after) == "none" and after.orphans
    with Catalog.open(operation.catalog_dir) as catalog:
        result = catalog.import_auto_archiver(FIXTURE, analyze=False)
    assert len(result.records_added) == ROWS and result.artifacts_stored == 0
    done = _inspect(operation.catalog_dir)
    assert operation.check(COMPLETED, after, done) == "all" and not done.orphans
    assert after.orphans <= done.claimed
