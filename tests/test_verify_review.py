"""Hostile edits of stored JSON that reads the same to Python but not to every reader, found in
review: real catalogs (SQLite and PostgreSQL), edited with plain SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence_catalog import Agent, Catalog
from evidence_catalog.findings import EntryUnreadable, EventEdited

from .conftest import FixedClock, database_dialect, run_sql

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")


@pytest.fixture
def noted(tmp_path: Path) -> Path:
    path = tmp_path / "catalog"
    (tmp_path / "letter.txt").write_text("a letter", encoding="utf-8")
    with Catalog.init(path, operator=OPERATOR, clock=FixedClock()) as catalog:
        catalog.add([tmp_path / "letter.txt"], note="the original note")
        assert catalog.verify().ok
    return path


@pytest.mark.parametrize(
    ("column", "forged"),
    [("details", '"note": {"text": "a forged note"}, '), ("actor", '"name": "Mallory", ')],
)
def test_an_event_given_a_duplicate_key_fails_verify(noted: Path, column: str, forged: str) -> None:
    """A member written twice in an event's stored JSON: Python's reader keeps the last (the
    original, so the event hashes as it was), SQLite's ``json_extract`` the first (the forged
    one). Stored text that is not what was hashed must not verify."""
    [(text,)] = run_sql(noted, f"select CAST({column} AS text) from custody_event where seq = 2")
    assert text.startswith("{")
    cast = "CAST(:text AS json)" if database_dialect(noted) == "postgresql" else ":text"
    run_sql(noted, f"update custody_event set {column} = {cast} where seq = 2", {"text": "{" + forged + text[1:]})
    with Catalog.open(noted) as catalog:
        result = catalog.verify()
    assert not result.ok
    assert any(isinstance(finding, EventEdited) and finding.seq == 2 for finding in result.findings), result


def test_a_record_row_given_a_duplicate_key_fails_verify(noted: Path) -> None:
    """The same in a record's own rows (an acquisition's body, read by the database driver):
    the record must not verify, and is named as unreadable."""
    [(text,)] = run_sql(noted, "select CAST(body AS text) from acquisition")
    cast = "CAST(:text AS json)" if database_dialect(noted) == "postgresql" else ":text"
    forged = '{"original_path": "/forged/elsewhere.txt", ' + text[1:]
    run_sql(noted, f"update acquisition set body = {cast}", {"text": forged})
    with Catalog.open(noted) as catalog:
        result = catalog.verify()
    assert not result.ok, result
    [finding] = result.findings
    assert isinstance(finding, EntryUnreadable) and "a member is written twice" in str(finding), finding
