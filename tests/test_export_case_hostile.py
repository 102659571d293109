"""CASE exports of hostile but legal catalogs: what a record can hold (any text, odd URLs, positions
at the limits, an empty file, a thousand tags, a relation to a record the catalog does not hold)
still validates, and a redacted export confirms no guess at what it withholds -- neither through
an id nor through the digest of an earlier export that held it.  ``case_validate`` runs once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from evidence_catalog import Catalog, model
from evidence_catalog.interchange.csv import write_csv
from evidence_catalog.interchange.redact import MIN_INNER_LENGTH, WITHHELD_MARK, redact_document
from tests.conftest import FixedClock, make_jpeg
from tests.test_export_case import graph, of_type, validate

#: Texts a catalog holds as they were given: JSON-LD keywords, markup, controls, any plane.
HOSTILE = (
    '{"@id": "kb:x", "@context": {"@vocab": "http://evil.example/"}}',
    "@id",
    "@context",
    "a\x01b\x1fc\x7fd\u2028e\u2029f\ufeffg\u202eh",
    "\ud7ff\ue000\U0010ffff 𝕏 ‮rtl",
    "]]><script>alert(1)</script>",
    "x" * 100_000,
)
#: Source URLs the catalog stores as stated.
ODD_URLS = (
    "https://例え.テスト/パス?q=値#frag",
    "http://exa mple.org/a b",
    "ftp://example.org/file",
    "mailto:someone@example.org",
    "http://[::1]:99999/",
    "not a url",
    "javascript:alert(1)",
)


@pytest.mark.no_postgresql_pass  # one validator run; the mapping is the same on PostgreSQL
def test_a_hostile_catalog_exports_a_graph_case_validate_accepts(tmp_path: Path, case_validate: str) -> None:
    operator = model.Agent(name="Analyst \u202e", email="a@example.org")
    origin = Catalog.init(tmp_path / "origin", operator=operator, clock=FixedClock())
    (tmp_path / "a.jpg").write_bytes(make_jpeg(colour=(1, 2, 3), gps=(90.0, -180.0, None)))
    (tmp_path / "b.jpg").write_bytes(make_jpeg(colour=(4, 5, 6), gps=None))
    kept = origin.add_file(tmp_path / "a.jpg", analyze=False).record_id
    gone = origin.add_file(tmp_path / "b.jpg", analyze=False).record_id
    origin.relate(kept, "same_incident_as", gone, note=HOSTILE[0])
    origin.export(tmp_path / "one.json", format="json", record_ids=[kept])
    # A catalog that imported one record of two: its relation names a record it does not hold.
    catalog = Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock())
    catalog.import_records(tmp_path / "one.json", blobs=tmp_path / "origin", accept_unsigned=True)
    for number, text in enumerate(HOSTILE):
        name = tmp_path / f"{text[:60].replace('/', '_')}-{number}.bin"
        name.write_bytes(b"" if number == 0 else text.encode("utf-8", "surrogatepass"))  # an empty file too
        added = catalog.add_file(name, source_url=ODD_URLS[number % len(ODD_URLS)], analyze=False)
        catalog.add_note(added.record_id, text)
        catalog.claim(
            added.record_id,
            summary=text,
            source_description=text,
            event_time=model.EventTime(
                start=dt.datetime(1, 1, 1, tzinfo=dt.UTC), end=dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
            ),
            place=model.Place(
                name=text,
                position=model.GeoPosition(
                    latitude=(-90.0, 90.0, -0.0, 5e-324)[number % 4],
                    longitude=(180.0, -180.0, -0.0, 1 / 3)[number % 4],
                    altitude_m=(-1e6, 1e9, None, 0.0)[number % 4],
                ),
            ),
        )
    catalog.tag(added.record_id, [f"tag {n} {HOSTILE[1]}" for n in range(1000)])
    out = tmp_path / "hostile.jsonld"
    catalog.export(out, format="case")
    validate(case_validate, out)
    nodes = graph(out)
    imported = f"record {kept} same_incident_as record {gone} (not in this export)"
    [said] = [a for a in of_type(nodes, "uco-core:Annotation") if a["uco-core:statement"].startswith(imported)]
    assert "relation" in said["uco-core:tag"]
    texts = {n["uco-core:hasFacet"]["uco-observable:fullValue"] for n in of_type(nodes, "uco-observable:URL")}
    assert set(ODD_URLS) <= texts
    notes = {a["uco-core:statement"] for a in of_type(nodes, "uco-core:Annotation") if "note" in a["uco-core:tag"]}
    assert set(HOSTILE) <= notes


@example("aaaab", ["aaaa", "aaab"])  # a file name holding a withheld text that overlaps another
@given(st.text("ab.", max_size=40), st.lists(st.text("ab", min_size=MIN_INNER_LENGTH, max_size=8), max_size=4))
def test_withheld_texts_inside_a_longer_one_go_whole_whatever_their_order(text: str, values: list[str]) -> None:
    """Two withheld texts that overlap in a value (a title and the file name it is part of): the
    redacted value is the same in every export (it followed the order of a set, which changes
    from one process to the next) and shows no part of either."""
    document = {"original_path": f"/x/{text}/y"}
    shown, changed = redact_document(document, values, [])
    assert redact_document(document, list(reversed(values)), [])[0] == shown
    for value in values:
        assert value not in shown["original_path"]
    assert changed == (shown != document)


def test_a_redacted_case_export_gives_no_digest_or_size_of_an_earlier_export_that_held_what_it_withholds(
    tmp_path: Path,
) -> None:
    """An earlier CSV export of a record is its text and nothing else: whoever has the redacted
    graph and a guess at the withheld title writes that CSV again, and its SHA-256 (or just its
    size, for the title's length) in the graph would confirm the guess."""
    secret = "Witness Name 1987"
    catalog = Catalog.init(tmp_path / "catalog", operator=model.Agent(name="Analyst"), clock=FixedClock())
    photo = tmp_path / f"{secret}.jpg"
    photo.write_bytes(make_jpeg(gps=None))
    record_id = catalog.add_file(photo, analyze=False).record_id
    catalog.export(tmp_path / "sheet.csv", format="csv")
    catalog.export(tmp_path / "bag", format="bagit")
    catalog.flag(record_id, "protected_source", "the file is named after the witness", fields=["title"])
    out = tmp_path / "redacted.jsonld"
    catalog.export(out, format="case", redact=True)
    text = out.read_text(encoding="utf-8")
    assert secret not in text

    def csv_with(title: str) -> bytes:  # the attacker's CSV, from what the graph shows and a guess
        record = catalog.record(record_id)
        shown = attrs.evolve(record, title=title, flags=())
        sink = io.StringIO()
        write_csv(sink, [shown])
        return sink.getvalue().encode("utf-8")

    assert csv_with(f"{secret}.jpg") == (tmp_path / "sheet.csv").read_bytes()  # the attack works
    for guess in ("Someone Else 1990", secret):
        made = csv_with(f"{guess}.jpg")
        assert hashlib.sha256(made).hexdigest() not in text.lower()
    exports = [
        n
        for n in of_type(graph(out), "case-investigation:InvestigativeAction")
        if n["uco-core:name"] == "records.exported"
    ]
    assert len(exports) == 2
    for action in exports:  # that they were made is said; what they hold, no
        assert "uco-action:result" not in action
        assert "withheld" in action["uco-core:description"]
    sizes = {e.details["size"] for e in catalog.history() if e.action == "records.exported"}
    assert not any(f'"uco-observable:sizeInBytes": {size}' in text for size in sizes)


def test_two_withheld_urls_of_a_record_are_two_nodes_not_one(tmp_path: Path) -> None:
    """A redacted graph must not say that two withheld URLs are the same URL: each stands as a
    node of its own (and says nothing of whether they were equal)."""
    from tests.test_prov_redact import ingest_feed

    catalog = Catalog.init(tmp_path / "catalog", operator=model.Agent(name="Analyst"), clock=FixedClock())
    record_id, report, _ = ingest_feed(catalog, tmp_path)
    assert report.links[1] != report.url  # the item's page and its enclosure
    catalog.flag(
        record_id,
        "protected_source",
        "the links name the source",
        fields=[
            f"reports/{report.id}/url",
            f"reports/{report.id}/links/1",
        ],
    )
    out = tmp_path / "redacted.jsonld"
    catalog.export(out, format="case", redact=True)
    withheld = [
        n
        for n in of_type(graph(out), "uco-observable:URL")
        if n["uco-core:hasFacet"]["uco-observable:fullValue"] == WITHHELD_MARK
    ]
    assert len({n["@id"] for n in withheld}) >= 2
    assert report.url not in out.read_text(encoding="utf-8") and report.links[1] not in out.read_text(encoding="utf-8")
