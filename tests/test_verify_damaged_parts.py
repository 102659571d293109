"""Damage a review found ``verify`` passed over or stopped on, around a record's parts.

- A report's ``record_part.id`` changed alone: every body still agreed with the log, so
  ``verify`` said intact, while ``link`` no longer found the report by its id and ``search`` raised
  ``KeyError`` on the index row that still named the old one.
- A note made blank on a record that also holds a media analysis: the analyses' check read the
  record again and let its ``ValidationError`` out (exit status 2), where the record's own finding
  was due.
- A report's text holding half of a surrogate pair (``"\\ud800"``, plain ASCII in the database):
  ``export`` stopped with a ``UnicodeEncodeError`` traceback.  Such JSON is now refused where every
  JSON column is read, as damaged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evidence_catalog import Catalog
from evidence_catalog.errors import EvidenceError
from evidence_catalog.findings import EntryUnreadable

from .conftest import json_set, run_sql
from .test_orphan_rows import filled as filled  # a catalog of pictures (analysed), a text, a post


def findings(catalog: Catalog) -> list[object]:
    return list(catalog.verify(record_event=False, remember=False).findings)


def test_a_report_id_changed_alone_is_named(filled: Catalog) -> None:
    [(part_id, record_id)] = run_sql(filled, "select id, record_id from record_part where kind = 'report'")
    run_sql(
        filled,
        "update record_part set id = :new where id = :old",
        {"new": "f" + part_id[1:], "old": part_id},
        foreign_keys=False,
    )
    found = findings(filled)
    assert (
        EntryUnreadable(
            subject=f"record {record_id}", reason=f"report {part_id}: its row does not say what its body says (id)"
        )
        in found
    )
    assert filled.search("shelling") == []  # the index row names a part no longer there: passed over


def test_a_damaged_record_that_holds_an_analysis_is_a_finding(filled: Catalog, tmp_path: Path) -> None:
    [(record_id,)] = run_sql(filled, "select record_id from perceptual_hash limit 1")
    filled.add_note(record_id, "seen by two analysts")
    dialect = filled.db.engine.dialect.name
    run_sql(filled, f"update record_part set body = {json_set(dialect, 'body', '$.text', '')} where kind = 'note'")
    assert any(isinstance(f, EntryUnreadable) and f.subject == f"record {record_id}" for f in findings(filled))
    done = subprocess.run(
        [sys.executable, "-m", "evidence_catalog", "verify", "--catalog", str(filled.path), "--no-log"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done


@pytest.mark.sqlite_only  # PostgreSQL's jsonb refuses such an escape itself
def test_half_a_surrogate_pair_in_a_body_is_damage_not_a_traceback(filled: Catalog, tmp_path: Path) -> None:
    [(record_id,)] = run_sql(filled, "select record_id from record_part where kind = 'report'")
    run_sql(filled, "update record_part set body = json_set(body, '$.text', json('\"\\ud800\"')) where kind = 'report'")
    assert any(
        isinstance(f, EntryUnreadable) and f.subject == f"record {record_id}" and "surrogate" in f.reason
        for f in findings(filled)
    )
    with pytest.raises(EvidenceError, match="surrogate"):
        filled.export(output=tmp_path / "out.json")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "evidence_catalog",
            "export",
            "--catalog",
            str(filled.path),
            "--output",
            str(tmp_path / "cli.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and "surrogate" in done.stderr, done
