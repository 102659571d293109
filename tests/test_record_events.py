"""``Catalog.record_events``: a record's custody events read by its id and its files' digests,
without assembling the record, are the events the exhibit and ``check_record`` read from the
whole record (a time-stamp of a file from a local TSA, ``openssl ts``: tests/tsa_server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence_catalog import Catalog
from evidence_catalog.errors import InputError, NotFoundError
from evidence_catalog.operations.record_checks import events_of
from tests.tsa_server import LocalTSA


def test_the_events_of_each_record_are_those_read_from_the_whole_record(catalog: Catalog, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a.txt", "b.txt"):
        (files / name).write_text(f"the file {name}\n", encoding="utf-8")
    added = catalog.add([files / "a.txt", files / "b.txt"])
    first, second = added[0].record_id, added[1].record_id
    digest = tmp_path / "digest.txt"
    digest.write_text("Field Monitor (Twitter)\nOne post\nOne post\nAnother post\nAnother post\n", encoding="utf-8")
    catalog.ingest(digest, format="digest")
    for n in range(3):
        catalog.add_note(first, f"note {n}")
    catalog.tag(second, ["checked"])
    catalog.export(tmp_path / "export.json", record_ids=[first])
    with LocalTSA() as tsa:  # a time-stamp of the first file: an event about its digest, not its record
        catalog.timestamp(url=tsa.url, artifacts=[added[0].sha256])

    with catalog._ctx.db.read() as session:
        expected = {r: events_of(catalog._ctx, session, catalog.record(r)) for r in catalog.record_ids()}
    for record_id, events in expected.items():
        assert catalog.record_events(record_id) == events
    actions = [e.action for e in expected[first]]
    assert actions[-5:] == ["note.added"] * 3 + ["records.exported", "timestamp.added"]
    assert expected[first][-1].subject == added[0].sha256
    assert "records.exported" not in [e.action for e in expected[second]]
    ingested = [r for r in expected if r not in (first, second)]
    assert len(ingested) == 2  # each report's record: the digest's events are on both


def test_a_record_that_is_not_there_is_not_found_and_a_malformed_id_refused(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError):
        catalog.record_events("01890a5d-ac96-774b-bcce-b302099a8057")
    with pytest.raises(InputError):
        catalog.record_events("../etc/passwd")
