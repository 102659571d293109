"""PROV-JSON exports and redacted BagIt exports, on real catalogs.

PROV: the export parses with the ``prov`` package, round-trips, has one entity per artifact
(by SHA-256), record and report, an activity per acquisition and export, the operator and the
software as agents, and the relations between them.

Redaction: a flag withholds the artifacts and fields it names from a redacted bag -- the files
are left out but still listed, flagged text is replaced by ``[withheld]`` wherever it occurs
(record and custody events), the bag says what was withheld and why, validates with
bagit-python, and the export is a custody event naming what was withheld.  A flag that names
something the record does not have, or that cannot be withheld, is refused and changes nothing.

Property tests make a fresh catalog per example (function-scoped fixtures are not reset between
Hypothesis examples).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import bagit  # type: ignore[import-untyped]
import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prov.model import (
    PROV,
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvAttribution,
    ProvDelegation,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvMembership,
    ProvRecord,
    ProvUsage,
)

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.errors import InputError
from evidence_catalog.interchange.redact import WITHHELD_MARK, FieldPathError, redact, resolve
from evidence_catalog.schema_files import load_schema
from evidence_catalog.serialize import structure, to_document, unstructure
from evidence_catalog.versions import library_agent

from . import strategies as s
from .conftest import CliResult, FixedClock, make_jpeg

RECORD_SCHEMA = jsonschema.Draft202012Validator(load_schema("evidence-record"))
CONTENTS_SCHEMA = jsonschema.Draft202012Validator(load_schema("bag-contents"))
EVENT_SCHEMA = jsonschema.Draft202012Validator(load_schema("custody-event"))
#: A value distinctive enough that finding it anywhere in a bag can only be a leak.
SECRET = "Secret Source Name 12345"
ARTIFACT_NS = "urn:evidence-catalog:artifact:sha256:"
UUID_NS = "urn:uuid:"
_unique = itertools.count()


# -- helpers ------------------------------------------------------------------------------------


def feed(author: str, *, title: str = "Two new berths at the East Quay yard", guid: str = "monitor-101") -> str:
    """An RSS feed with one item by *author* (which the stored feed itself holds)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
  <title>Harbour Monitor</title>
  <link>https://monitor.example.org/</link>
  <description>Posts about the East Quay yard</description>
  <item>
    <title>{title}</title>
    <link>https://monitor.example.org/posts/101</link>
    <guid isPermaLink="false">{guid}</guid>
    <author>{author}</author>
    <pubDate>Mon, 05 May 2025 21:30:00 +0300</pubDate>
    <description>Night images show two new berths.</description>
    <enclosure url="https://cdn.example.org/101.mp4" length="5234" type="video/mp4"/>
  </item>
</channel>
</rss>
"""


def ingest_feed(catalog: Catalog, folder: Path, author: str = SECRET, **kwargs: str) -> tuple[str, model.Report, str]:
    """Ingest a one-item feed; return (record id, its report, the feed's SHA-256)."""
    path = folder / f"feed-{next(_unique)}.rss"
    path.write_text(feed(author, **kwargs), encoding="utf-8")
    before = set(catalog.record_ids())
    result = catalog.ingest(path)
    [record_id] = set(catalog.record_ids()) - before
    [report] = catalog.record(record_id).reports
    return record_id, report, result.sha256


def add_bytes(catalog: Catalog, folder: Path, data: bytes, name: str = "file.bin", **kwargs: Any) -> Any:
    """Add a file with these bytes (in a folder of its own, so any name can be used)."""
    own = folder / f"in-{next(_unique)}"
    own.mkdir(parents=True)
    path = own / name
    path.write_bytes(data)
    return catalog.add_file(path, **kwargs)


def bag_files(bag: Path) -> dict[str, bytes]:
    """Every file of a bag: bag-relative path -> bytes."""
    return {p.relative_to(bag).as_posix(): p.read_bytes() for p in sorted(bag.rglob("*")) if p.is_file()}


def leaks(bag: Path, value: str) -> list[str]:
    """The files of *bag* whose bytes or name hold *value*."""
    needle = value.encode("utf-8")
    return [name for name, data in bag_files(bag).items() if needle in data or value in name]


def contents(bag: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    return data


def record_json(bag: Path, record_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bag / "data" / "records" / record_id / "record.json").read_text("utf-8"))
    return data


def artifact_files(bag: Path, record_id: str) -> dict[str, bytes]:
    folder = bag / "data" / "records" / record_id / "artifacts"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def custody_lines(bag: Path) -> list[dict[str, Any]]:
    text = (bag / "data" / "custody.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def validate_bag(bag: Path) -> None:
    """bagit-python finds the bag valid; its documents follow their schemas."""
    checked = bagit.Bag(str(bag))
    checked.validate()  # raises BagValidationError when anything is wrong
    assert checked.is_valid()
    assert not list(CONTENTS_SCHEMA.iter_errors(contents(bag)))
    for line in custody_lines(bag):
        assert not list(EVENT_SCHEMA.iter_errors(line))
    for record in (bag / "data" / "records").iterdir():
        assert not list(RECORD_SCHEMA.iter_errors(record_json(bag, record.name)))


def at_path(document: Any, path: str) -> Any:
    container, key = resolve(document, path)
    return container[key]


def prov_document(path: Path) -> ProvDocument:
    return ProvDocument.deserialize(str(path), format="json")


def records_of(doc: ProvDocument, kind: type[ProvRecord]) -> list[Any]:
    return list(doc.get_records(kind))


def ident(record: Any) -> str:
    """The full URI of a PROV element's identifier."""
    return str(record.identifier.uri)


def uri(value: Any) -> str | None:
    return None if value is None else str(value.uri)


def attribute(record: Any, name: str) -> Any:
    """The single value of attribute *name* (``ec:...`` or ``prov:...``)."""
    values = record.get_attribute(name)
    assert len(values) == 1, (name, values)
    return next(iter(values))


def type_names(record: Any) -> set[str]:
    """The ``prov:type`` values of a PROV element, as text (however they are typed)."""
    return {str(v) for v in record.get_attribute("prov:type")}


def relation_pairs(doc: ProvDocument, kind: type[ProvRecord]) -> set[tuple[str | None, str | None]]:
    """(first, second) formal arguments of every relation of *kind*, as URIs."""
    return {(uri(r.args[0]), uri(r.args[1])) for r in doc.get_records(kind)}


def history_len(catalog: Catalog) -> int:
    return len(catalog.history())


# -- PROV ---------------------------------------------------------------------------------------


@pytest.fixture
def provenance_catalog(catalog: Catalog, tmp_path: Path, jpeg_file: Callable[..., Path]) -> Catalog:
    """A catalog with a photo added from disk and a record with a report ingested from a feed."""
    catalog.add_file(jpeg_file("photo.jpg"), tags=["depot"], analyze=False)
    ingest_feed(catalog, tmp_path, author="Night Desk")
    return catalog


def test_a_prov_export_parses_round_trips_and_reads_as_prov_n(provenance_catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "prov.json"
    result = provenance_catalog.export(out, format="prov")
    assert (result.format, result.records) == ("prov", 2)
    doc = prov_document(out)
    again = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
    assert again == doc
    assert ProvDocument.deserialize(content=again.serialize(format="json"), format="json") == doc
    provn = doc.get_provn()
    assert provn.startswith("document") and provn.rstrip().endswith("endDocument")
    for record_id in provenance_catalog.record_ids():
        assert f"uuid:{record_id}" in provn
    # The export is logged like any other.
    last = provenance_catalog.history()[-1]
    assert last.action == "records.exported" and last.details["format"] == "prov"
    assert last.details["sha256"] == result.sha256


def test_prov_maps_artifacts_records_reports_acquisitions_agents_and_relations(
    provenance_catalog: Catalog, tmp_path: Path
) -> None:
    catalog = provenance_catalog
    earlier = catalog.export(tmp_path / "earlier.json", format="json")
    export_event = catalog.history()[-1]
    catalog.export(tmp_path / "prov.json", format="prov")
    doc = prov_document(tmp_path / "prov.json")
    records = list(catalog.records())
    photo = next(r for r in records if not r.reports)
    fed = next(r for r in records if r.reports)
    [report] = fed.reports
    operator = catalog.operator

    entities = {ident(e): e for e in records_of(doc, ProvEntity)}
    activities = {ident(a): a for a in records_of(doc, ProvActivity)}
    agents = {ident(a): a for a in records_of(doc, ProvAgent)}
    assert attribute(entities[UUID_NS + photo.id], "ec:title") == "photo.jpg"

    # An entity per artifact, with its SHA-256; exactly one per distinct artifact.
    shas = {entry.artifact.sha256 for r in records for entry in r.artifacts}
    artifact_entities = {k: e for k, e in entities.items() if k.startswith(ARTIFACT_NS)}
    assert set(artifact_entities) == {ARTIFACT_NS + sha for sha in shas}
    for sha in shas:
        entity = artifact_entities[ARTIFACT_NS + sha]
        assert attribute(entity, "ec:sha256") == sha
        assert "ec:Artifact" in type_names(entity)
    size = {e.artifact.sha256: e.artifact.size for r in records for e in r.artifacts}
    assert all(attribute(artifact_entities[ARTIFACT_NS + k], "ec:size") == v for k, v in size.items())

    # An entity per record (a collection of its artifacts) and per report.
    for record in records:
        entity = entities[UUID_NS + record.id]
        assert "prov:Collection" in type_names(entity)
        assert attribute(entity, "ec:title") == record.title
    report_entity = entities[UUID_NS + report.id]
    assert "ec:Report" in type_names(report_entity)
    assert attribute(report_entity, "ec:author") == "Night Desk"
    assert attribute(report_entity, "ec:text") == report.text
    members = relation_pairs(doc, ProvMembership)
    for record in records:
        for entry in record.artifacts:
            assert (UUID_NS + record.id, ARTIFACT_NS + entry.artifact.sha256) in members
    assert (UUID_NS + fed.id, UUID_NS + report.id) in members

    # An activity per acquisition, with its start and end.
    for record in records:
        for acquisition in record.acquisitions:
            activity = activities[UUID_NS + acquisition.id]
            assert activity.get_startTime() == acquisition.started_at
            assert activity.get_endTime() == acquisition.ended_at
            assert attribute(activity, "ec:method") == acquisition.method.value

    # Agents: the operator as a person, the software with its version.
    people = [a for a in agents.values() if "prov:Person" in type_names(a)]
    assert [attribute(p, "ec:name") for p in people] == [operator.name]
    assert attribute(people[0], "ec:email") == operator.email
    person = ident(people[0])
    software = {attribute(a, "ec:name"): a for a in agents.values() if "prov:SoftwareAgent" in type_names(a)}
    assert "evidence-catalog" in software
    assert attribute(software["evidence-catalog"], "ec:version") == library_agent().version
    assert all(a.get_attribute("ec:version") for a in software.values())
    tool = ident(software["evidence-catalog"])

    # Relations.
    generated = relation_pairs(doc, ProvGeneration)
    used = relation_pairs(doc, ProvUsage)
    derived = relation_pairs(doc, ProvDerivation)
    attributed = relation_pairs(doc, ProvAttribution)
    associated = relation_pairs(doc, ProvAssociation)
    delegated = relation_pairs(doc, ProvDelegation)
    for record in records:
        assert (UUID_NS + record.id, person) in attributed
        for acquisition in record.acquisitions:
            act = UUID_NS + acquisition.id
            assert (ARTIFACT_NS + str(acquisition.artifact_sha256), act) in generated
            assert (ARTIFACT_NS + str(acquisition.artifact_sha256), person) in attributed
            assert (act, person) in associated and (act, tool) in associated
            assert (tool, person) in delegated
            assert any(a == act and (e or "").startswith("urn:evidence-catalog:source:") for a, e in used)
    # The report was read from the stored feed, by the ingest.
    assert (UUID_NS + report.id, ARTIFACT_NS + str(report.document_sha256)) in derived
    assert (UUID_NS + report.id, UUID_NS + fed.acquisitions[0].id) in generated

    # The earlier export: an activity that used the records and generated its output.
    export_id = f"urn:evidence-catalog:custody-event:{export_event.hash}"
    export = activities[export_id]
    assert "ec:Export" in type_names(export) and attribute(export, "ec:format") == "json"
    assert export.get_startTime() == export_event.at
    assert {e for a, e in used if a == export_id} == {UUID_NS + r.id for r in records}
    assert (export_id, person) in associated
    output = f"urn:evidence-catalog:export-output:{earlier.sha256}"
    assert attribute(entities[output], "ec:sha256") == earlier.sha256
    assert (output, export_id) in generated


def test_what_an_analysis_derived_is_in_prov_derived_from_the_video_by_its_analysis(
    catalog: Catalog, tmp_path: Path
) -> None:
    from .test_media import make_video

    [video] = catalog.add([make_video(tmp_path / "clip.mp4", size=(160, 120), frames=50)])
    record = catalog.record(video.record_id)
    made = [e.artifact.sha256 for e in record.artifacts if e.artifact.sha256 != video.sha256]
    assert len(made) >= 3  # the analysis document, keyframe(s), the contact sheet
    [analysis] = [a for a in record.acquisitions if a.method is model.AcquisitionMethod.DERIVED]
    catalog.export(tmp_path / "prov.json", format="prov")
    doc = prov_document(tmp_path / "prov.json")
    activities = {ident(a): a for a in records_of(doc, ProvActivity)}
    assert attribute(activities[UUID_NS + analysis.id], "ec:method") == "derived"
    derived = relation_pairs(doc, ProvDerivation)
    generated = relation_pairs(doc, ProvGeneration)
    for sha in made:
        assert (ARTIFACT_NS + sha, ARTIFACT_NS + video.sha256) in derived
        assert (ARTIFACT_NS + sha, UUID_NS + analysis.id) in generated
    tools = {attribute(a, "ec:name") for a in records_of(doc, ProvAgent) if "prov:SoftwareAgent" in type_names(a)}
    assert {"pdqhash", "PyAV"} <= tools


def test_an_export_of_chosen_records_used_only_those(provenance_catalog: Catalog, tmp_path: Path) -> None:
    catalog = provenance_catalog
    chosen = catalog.record_ids()[0]
    catalog.export(tmp_path / "one.json", format="json", record_ids=[chosen])
    event = catalog.history()[-1]
    catalog.export(tmp_path / "prov.json", format="prov")
    doc = prov_document(tmp_path / "prov.json")
    export_id = f"urn:evidence-catalog:custody-event:{event.hash}"
    assert {e for a, e in relation_pairs(doc, ProvUsage) if a == export_id} == {UUID_NS + chosen}
    # A PROV export of one record holds that record only.
    catalog.export(tmp_path / "prov-one.json", format="prov", record_ids=[chosen])
    one = prov_document(tmp_path / "prov-one.json")
    records = {ident(e) for e in records_of(one, ProvEntity) if "prov:Collection" in type_names(e)}
    assert records == {UUID_NS + chosen}


def test_an_export_did_not_use_records_created_after_it(catalog: Catalog, tmp_path: Path) -> None:
    first = add_bytes(catalog, tmp_path, b"before the export").record_id
    catalog.export(tmp_path / "early.json", format="json")
    event = catalog.history()[-1]
    later = add_bytes(catalog, tmp_path, b"after the export").record_id
    catalog.export(tmp_path / "prov.json", format="prov")
    doc = prov_document(tmp_path / "prov.json")
    export_id = f"urn:evidence-catalog:custody-event:{event.hash}"
    used = {e for a, e in relation_pairs(doc, ProvUsage) if a == export_id}
    assert UUID_NS + first in used
    assert UUID_NS + later not in used


def test_prov_types_are_qualified_names(provenance_catalog: Catalog, tmp_path: Path) -> None:
    provenance_catalog.export(tmp_path / "prov.json", format="prov")
    doc = prov_document(tmp_path / "prov.json")
    kinds = {value for a in records_of(doc, ProvAgent) for value in a.get_attribute("prov:type")}
    assert PROV["Person"] in kinds and PROV["SoftwareAgent"] in kinds
    collections = [e for e in records_of(doc, ProvEntity) if PROV["Collection"] in e.get_attribute("prov:type")]
    assert len(collections) == len(provenance_catalog.record_ids())


file_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=20,
).filter(lambda n: n not in (".", ".."))


@st.composite
def small_catalogs(draw: st.DrawFn) -> list[tuple[bytes, str, list[str], int | None]]:
    """1-4 records as files to add: (bytes, file name, tags, index of an earlier file whose record
    the file is added to, or None for a record of its own)."""
    count = draw(st.integers(min_value=1, max_value=4))
    items: list[tuple[bytes, str, list[str], int | None]] = []
    for n in range(count + draw(st.integers(min_value=0, max_value=2))):
        data = draw(st.binary(max_size=64) | st.sampled_from([b"shared bytes", b""]))
        target = draw(st.none() | st.integers(min_value=0, max_value=n - 1)) if n >= count else None
        items.append((data, draw(file_names), draw(s.tags), target))
    return items


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=small_catalogs())
def test_any_small_catalog_round_trips_with_one_entity_per_artifact(
    plan: list[tuple[bytes, str, list[str], int | None]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        with Catalog.init(work / "catalog", operator=Agent(name="Prop Analyst"), clock=FixedClock()) as catalog:
            added: list[Any] = []
            for data, name, tags, target in plan:
                record_id = None if target is None else added[target].record_id
                added.append(add_bytes(catalog, work, data, name, tags=tags, record_id=record_id))
            catalog.export(work / "prov.json", format="prov")
            doc = prov_document(work / "prov.json")
            assert ProvDocument.deserialize(content=doc.serialize(format="json"), format="json") == doc
            assert doc.get_provn()
            records = list(catalog.records())
            shas = {entry.artifact.sha256 for r in records for entry in r.artifacts}
            artifact_entities = [e for e in records_of(doc, ProvEntity) if ident(e).startswith(ARTIFACT_NS)]
            assert sorted(ident(e) for e in artifact_entities) == sorted(ARTIFACT_NS + sha for sha in shas)
            assert sorted(attribute(e, "ec:sha256") for e in artifact_entities) == sorted(shas)
            collections = {ident(e) for e in records_of(doc, ProvEntity) if "prov:Collection" in type_names(e)}
            assert collections == {UUID_NS + r.id for r in records}
            acquisitions = {UUID_NS + a.id for r in records for a in r.acquisitions}
            assert acquisitions <= {ident(a) for a in records_of(doc, ProvActivity)}


# -- redacted bags: artifacts -------------------------------------------------------------------


def test_a_graphic_flag_withholds_every_artifact_of_its_record_and_lists_them(
    catalog: Catalog, tmp_path: Path, jpeg_file: Callable[..., Path]
) -> None:
    graphic = catalog.add_file(jpeg_file("graphic.jpg", gps=(12.345678, 45.678901, None)), analyze=False)
    statement = add_bytes(catalog, tmp_path, b"what the witness saw", "statement.txt", record_id=graphic.record_id)
    other = catalog.add_file(jpeg_file("street.jpg", gps=None, colour=(1, 2, 3)), analyze=False)
    catalog.flag(graphic.record_id, "graphic", "shows the wounded")
    record = catalog.record(graphic.record_id)
    [photo_entry] = [e for e in record.artifacts if e.artifact.sha256 == graphic.sha256]
    assert photo_entry.artifact.metadata is not None and photo_entry.artifact.metadata.exif is not None
    gps_text = photo_entry.artifact.metadata.exif.raw["GPS GPSLatitude"]

    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)
    assert (result.redacted, result.withheld_artifacts, result.withheld_fields, result.artifacts) == (True, 2, 0, 1)

    # The flagged record's files are not in the bag; the other record's file is, byte for byte.
    assert artifact_files(bag, graphic.record_id) == {}
    assert list(artifact_files(bag, other.record_id).values()) == [catalog.artifact_path(other.sha256).read_bytes()]
    payload = bag_files(bag)
    for sha in (graphic.sha256, statement.sha256):
        data = catalog.artifact_path(sha).read_bytes()
        assert all(data != content for content in payload.values())
    # ... nor is the photo's position, which its embedded metadata held.
    assert leaks(bag, gps_text) == []

    # record.json still lists them (SHA-256, size), without their embedded metadata.
    document = record_json(bag, graphic.record_id)
    assert not list(RECORD_SCHEMA.iter_errors(document))
    listed = {a["artifact"]["digests"]["sha256"]: a["artifact"] for a in document["artifacts"]}
    assert set(listed) == {graphic.sha256, statement.sha256}
    assert listed[graphic.sha256]["size"] == graphic.size and listed[statement.sha256]["size"] == statement.size
    assert all(a["metadata"] is None for a in listed.values())
    assert document["flags"][0]["kind"] == "graphic"

    # contents.json says what was withheld and why.
    redaction = contents(bag)["redaction"]
    assert redaction["kinds"] == sorted(k.value for k in model.SensitivityKind)
    withheld = {a["sha256"]: a for a in redaction["withheld_artifacts"]}
    assert set(withheld) == {graphic.sha256, statement.sha256}
    for sha, size in ((graphic.sha256, graphic.size), (statement.sha256, statement.size)):
        entry = withheld[sha]
        assert (entry["record_id"], entry["size"]) == (graphic.record_id, size)
        assert entry["reasons"] == [{"kind": "graphic", "reason": "shows the wounded"}]
        assert entry["path"].startswith(f"data/records/{graphic.record_id}/artifacts/")
        assert entry["path"] not in payload
    assert redaction["withheld_fields"] == []
    info = (bag / "bag-info.txt").read_text(encoding="utf-8")
    assert "Evidence-Redacted: yes" in info and "2 artifact(s) and 0 field(s) withheld" in info
    # The custody events in the bag no longer carry the withheld photo's metadata either.
    for line in custody_lines(bag):
        assert gps_text not in json.dumps(line, ensure_ascii=False)
    assert redaction["altered_events"]  # the artifact.added event held the metadata

    # The same catalog exported without redaction carries everything.
    full = tmp_path / "full"
    plain = catalog.export(full, format="bagit")
    assert (plain.redacted, plain.artifacts) == (False, 3)
    assert contents(full)["redaction"] is None
    assert len(artifact_files(full, graphic.record_id)) == 2
    assert catalog.verify().ok


def test_a_flag_naming_one_artifact_withholds_only_that_one(catalog: Catalog, tmp_path: Path) -> None:
    first = add_bytes(catalog, tmp_path, b"face of a bystander", "face.txt")
    second = add_bytes(catalog, tmp_path, b"the street sign", "sign.txt", record_id=first.record_id)
    catalog.flag(first.record_id, "personal_data", "a bystander's face", artifacts=[first.sha256])
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=["personal_data"])
    validate_bag(bag)
    assert (result.withheld_artifacts, result.artifacts) == (1, 1)
    assert list(artifact_files(bag, first.record_id).values()) == [b"the street sign"]
    [withheld] = contents(bag)["redaction"]["withheld_artifacts"]
    assert (withheld["sha256"], withheld["reasons"]) == (
        first.sha256,
        [{"kind": "personal_data", "reason": "a bystander's face"}],
    )
    assert second.sha256 not in {a["sha256"] for a in contents(bag)["redaction"]["withheld_artifacts"]}


def test_redacting_some_kinds_honours_only_flags_of_those_kinds(catalog: Catalog, tmp_path: Path) -> None:
    graphic = add_bytes(catalog, tmp_path, b"graphic bytes", "graphic.txt")
    personal = add_bytes(catalog, tmp_path, b"personal bytes", "personal.txt", note=SECRET)
    catalog.flag(graphic.record_id, "graphic", "gore")
    [note] = catalog.record(personal.record_id).notes
    catalog.flag(personal.record_id, "personal_data", "a name", artifacts=[personal.sha256])
    catalog.flag(personal.record_id, "personal_data", "a name", fields=[f"notes/{note.id}/text"])
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=["graphic"])
    validate_bag(bag)
    assert (result.withheld_artifacts, result.withheld_fields) == (1, 0)
    assert artifact_files(bag, graphic.record_id) == {}
    assert list(artifact_files(bag, personal.record_id).values()) == [b"personal bytes"]
    assert record_json(bag, personal.record_id)["notes"][0]["text"] == SECRET
    redaction = contents(bag)["redaction"]
    assert redaction["kinds"] == ["graphic"]
    assert [a["sha256"] for a in redaction["withheld_artifacts"]] == [graphic.sha256]
    assert redaction["withheld_fields"] == []
    # The same catalog, redacted for personal data only, is the other way round.
    other = tmp_path / "other"
    catalog.export(other, format="bagit", redact="personal_data")
    assert list(artifact_files(other, graphic.record_id).values()) == [b"graphic bytes"]
    assert artifact_files(other, personal.record_id) == {}
    assert leaks(other, SECRET) == []


# -- redacted bags: fields ----------------------------------------------------------------------


def _report_author(catalog: Catalog, tmp_path: Path) -> tuple[str, list[str], list[str], str]:
    # The stored feed holds the author too: the flag names it as well, so that nothing carries it.
    record_id, report, feed_sha = ingest_feed(catalog, tmp_path, author=SECRET)
    return record_id, [f"reports/{report.id}/author"], [feed_sha], SECRET


def _acquisition_note(catalog: Catalog, tmp_path: Path) -> tuple[str, list[str], list[str], str]:
    record_id, _, _ = ingest_feed(catalog, tmp_path, author="Night Desk")
    [acquisition] = catalog.record(record_id).acquisitions
    assert acquisition.note is not None
    return record_id, [f"acquisitions/{acquisition.id}/note"], [], acquisition.note


def _note_text(catalog: Catalog, tmp_path: Path) -> tuple[str, list[str], list[str], str]:
    added = add_bytes(catalog, tmp_path, b"a photo", "photo.bin", note=SECRET)
    [note] = catalog.record(added.record_id).notes
    return added.record_id, [f"notes/{note.id}/text"], [], SECRET


def _claim_summary(catalog: Catalog, tmp_path: Path) -> tuple[str, list[str], list[str], str]:
    added = add_bytes(catalog, tmp_path, b"a photo", "photo.bin")
    claim = catalog.claim(added.record_id, summary=SECRET, source_description="a witness")
    return added.record_id, [f"claims/{claim.id}/summary"], [], SECRET


def _perpetrator_twice(catalog: Catalog, tmp_path: Path) -> tuple[str, list[str], list[str], str]:
    """The same name in two claims: flagging one withholds it wherever it occurs."""
    added = add_bytes(catalog, tmp_path, b"a photo", "photo.bin")
    claim = catalog.claim(added.record_id, alleged_perpetrator=SECRET, source_description="a witness")
    catalog.claim(added.record_id, summary="another view", alleged_perpetrator=SECRET, source_description="b")
    return added.record_id, [f"claims/{claim.id}/alleged_perpetrator"], [], SECRET


@pytest.mark.parametrize(
    "setup",
    [_report_author, _acquisition_note, _note_text, _claim_summary, _perpetrator_twice],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_flagged_field_is_withheld_from_every_file_of_the_bag(
    catalog: Catalog, tmp_path: Path, setup: Callable[[Catalog, Path], tuple[str, list[str], list[str], str]]
) -> None:
    bystander = add_bytes(catalog, tmp_path, b"unflagged", "unflagged.txt")
    record_id, fields, artifacts, value = setup(catalog, tmp_path)
    held = [e for e in catalog.history() if e.subject == record_id and value in json.dumps(to_document(e))]
    assert held  # the value is in the custody log before the export
    catalog.flag(record_id, "protected_source", "the source asked", fields=fields, artifacts=artifacts)
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)
    assert result.withheld_fields == len(fields)

    assert leaks(bag, value) == []
    document = record_json(bag, record_id)
    assert not list(RECORD_SCHEMA.iter_errors(document))
    for path in fields:
        assert at_path(document, path) == WITHHELD_MARK
    assert WITHHELD_MARK.encode() in (bag / "data" / "custody.jsonl").read_bytes()
    redaction = contents(bag)["redaction"]
    assert [(f["record_id"], f["path"]) for f in redaction["withheld_fields"]] == [(record_id, p) for p in fields]
    assert all(
        f["reasons"] == [{"kind": "protected_source", "reason": "the source asked"}]
        for f in redaction["withheld_fields"]
    )
    # Every custody event that held the value is listed as altered, and only this record's.
    assert {e.seq for e in held} <= set(redaction["altered_events"])
    subjects = {e.seq: e.subject for e in catalog.history()}
    assert {subjects[seq] for seq in redaction["altered_events"]} == {record_id}
    # Unflagged content travels.
    assert list(artifact_files(bag, bystander.record_id).values()) == [b"unflagged"]
    # An unredacted export of the same catalog does hold the value (the test would catch a leak).
    full = tmp_path / "full"
    catalog.export(full, format="bagit")
    assert leaks(full, value)


def test_the_redaction_is_a_custody_event_naming_what_was_withheld(catalog: Catalog, tmp_path: Path) -> None:
    photo = add_bytes(catalog, tmp_path, b"photo", "photo.bin", note=SECRET)
    [note] = catalog.record(photo.record_id).notes
    catalog.flag(photo.record_id, "minors", "a child's face", artifacts=[photo.sha256])
    catalog.flag(photo.record_id, "personal_data", "a name", fields=[f"notes/{note.id}/text"])
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=True)
    event = catalog.history()[-1]
    assert (event.action, event.subject) == ("records.exported", "catalog")
    details = event.details
    assert details["format"] == "bagit" and details["sha256"] == result.sha256
    assert details["bag"]["external_identifier"] == result.external_identifier
    redaction = details["redaction"]
    assert redaction["kinds"] == sorted(k.value for k in model.SensitivityKind)
    assert redaction["withheld_artifacts"] == [{"record_id": photo.record_id, "sha256": photo.sha256}]
    assert redaction["withheld_fields"] == [{"record_id": photo.record_id, "path": f"notes/{note.id}/text"}]
    assert redaction["altered_events"] == contents(bag)["redaction"]["altered_events"]
    assert SECRET not in json.dumps(details)  # the log names the field, not its value
    assert catalog.verify().ok
    # An unredacted bag says so in its event too.
    catalog.export(tmp_path / "plain", format="bagit")
    assert catalog.history()[-1].details["redaction"] is None


def test_a_flagged_report_field_does_not_travel_in_its_source_document(catalog: Catalog, tmp_path: Path) -> None:
    record_id, report, _ = ingest_feed(catalog, tmp_path, author=SECRET)
    catalog.flag(record_id, "protected_source", "the source asked", fields=[f"reports/{report.id}/author"])
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", redact=True)
    assert record_json(bag, record_id)["reports"][0]["author"] == WITHHELD_MARK
    assert leaks(bag, SECRET) == []


def test_a_flagged_title_is_withheld_from_every_file_of_the_bag(catalog: Catalog, tmp_path: Path) -> None:
    added = add_bytes(catalog, tmp_path, b"a photo", f"{SECRET}.jpg")
    title = catalog.record(added.record_id).title
    assert title == f"{SECRET}.jpg"
    catalog.flag(added.record_id, "personal_data", "names a person", fields=["title"])
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)
    document = record_json(bag, added.record_id)
    assert document["title"] == WITHHELD_MARK and not list(RECORD_SCHEMA.iter_errors(document))
    assert leaks(bag, title) == []


def test_a_flagged_title_is_replaced_in_record_and_events(catalog: Catalog, tmp_path: Path) -> None:
    """What the redaction does do for a title: record.json and the custody events say [withheld]."""
    added = add_bytes(catalog, tmp_path, b"a photo", f"{SECRET}.jpg")
    catalog.flag(added.record_id, "personal_data", "names a person", fields=["title"])
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)
    assert result.withheld_fields == 1
    document = record_json(bag, added.record_id)
    assert document["title"] == WITHHELD_MARK and not list(RECORD_SCHEMA.iter_errors(document))
    [added_event] = [e for e in custody_lines(bag) if e["action"] == "artifact.added"]
    assert added_event["details"]["record"]["title"] == WITHHELD_MARK
    assert added_event["seq"] in contents(bag)["redaction"]["altered_events"]


def test_a_field_of_a_linked_report_is_withheld_from_the_events_of_its_first_record(
    catalog: Catalog, tmp_path: Path
) -> None:
    photo = add_bytes(catalog, tmp_path, b"the film", "film.bin")
    first, report, feed_sha = ingest_feed(catalog, tmp_path, author=SECRET)
    catalog.link(report.id, photo.record_id)
    catalog.flag(
        photo.record_id, "protected_source", "asked", fields=[f"reports/{report.id}/author"], artifacts=[feed_sha]
    )
    catalog.flag(first, "protected_source", "the feed names the source")  # its copy of the feed too
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", redact=True)
    assert record_json(bag, photo.record_id)["reports"][0]["author"] == WITHHELD_MARK
    assert leaks(bag, SECRET) == []


# -- refusals -----------------------------------------------------------------------------------


@pytest.fixture
def flaggable(catalog: Catalog, tmp_path: Path) -> tuple[Catalog, str, model.EvidenceRecord]:
    """A catalog with a record holding a report (ingested), and its record id."""
    record_id, _, _ = ingest_feed(catalog, tmp_path, author="Night Desk")
    catalog.add_note(record_id, "a note")
    return catalog, record_id, catalog.record(record_id)


def _paths(record: model.EvidenceRecord) -> dict[str, str]:
    report, acquisition = record.reports[0], record.acquisitions[0]
    return {
        "missing member": "no_such_member",
        "missing part": "reports/01a21489-0000-7000-8000-000000000000/author",
        "missing member of a part": f"reports/{report.id}/no_such_member",
        "list position beyond the end": f"reports/{report.id}/mentions/5",
        "a position for a part": "reports/0/author",
        "a list": f"reports/{report.id}/mentions",
        "a whole part": f"reports/{report.id}",
        "a number": f"reports/{report.id}/media/0/length",
        "a boolean": f"reports/{report.id}/url_known",
        "an empty value": f"reports/{report.id}/language",
        "an identifier": f"reports/{report.id}/id",
        "the record id": "id",
        "a code": f"acquisitions/{acquisition.id}/method",
        "an artifact": "artifacts/0/artifact/media_type",
        "a top-level list": "tags",
        "the flags": "flags/0/reason",
        "inside text": "title/0",
        "a fixed format: created_at": "created_at",
        "a fixed format: a start time": f"acquisitions/{acquisition.id}/started_at",
        "a fixed format: a note's time": f"notes/{record.notes[0].id}/written_at",
    }


REFUSED = [
    "missing member",
    "missing part",
    "missing member of a part",
    "list position beyond the end",
    "a position for a part",
    "a list",
    "a whole part",
    "a number",
    "a boolean",
    "an empty value",
    "an identifier",
    "the record id",
    "a code",
    "an artifact",
    "a top-level list",
    "the flags",
    "inside text",
    "a fixed format: created_at",
    "a fixed format: a start time",
    "a fixed format: a note's time",
]


@pytest.mark.parametrize("which", REFUSED)
def test_a_field_that_cannot_be_withheld_is_refused_and_nothing_is_logged(
    flaggable: tuple[Catalog, str, model.EvidenceRecord], which: str
) -> None:
    catalog, record_id, record = flaggable
    path = _paths(record)[which]
    before = history_len(catalog)
    with pytest.raises(InputError) as raised:
        catalog.flag(record_id, "personal_data", "a reason", fields=[path])
    assert raised.value.where == "field"
    assert history_len(catalog) == before
    assert catalog.record(record_id) == record
    assert catalog.verify().ok


def test_a_flag_naming_an_artifact_the_record_does_not_hold_is_refused(
    flaggable: tuple[Catalog, str, model.EvidenceRecord], tmp_path: Path
) -> None:
    catalog, record_id, record = flaggable
    elsewhere = add_bytes(catalog, tmp_path, b"on another record", "other.bin")
    before = history_len(catalog)
    for sha in (elsewhere.sha256, "0" * 64, "not a digest", elsewhere.sha256.upper()):
        with pytest.raises(InputError):
            catalog.flag(record_id, "graphic", "gore", artifacts=[sha])
        assert history_len(catalog) == before
    # One good field and one bad: the whole flag is refused.
    with pytest.raises(InputError):
        catalog.flag(record_id, "graphic", "gore", fields=["title", "no_such_member"])
    with pytest.raises(InputError):
        catalog.flag(record_id, "graphic", "gore", artifacts=[record.artifacts[0].artifact.sha256, "0" * 64])
    assert history_len(catalog) == before
    assert catalog.record(record_id) == record
    # What the record holds is accepted.
    made = catalog.flag(record_id, "graphic", "gore", artifacts=[record.artifacts[0].artifact.sha256])
    assert catalog.record(record_id).flags == (made,)
    assert history_len(catalog) == before + 1


def test_a_report_with_flagged_fields_cannot_be_linked_away(catalog: Catalog, tmp_path: Path) -> None:
    record_id, report, _ = ingest_feed(catalog, tmp_path, author=SECRET)
    film = add_bytes(catalog, tmp_path, b"the film", "film.bin").record_id
    catalog.flag(record_id, "protected_source", "asked", fields=[f"reports/{report.id}/author"])
    before = history_len(catalog)
    with pytest.raises(InputError, match="stays with its flag"):
        catalog.link(report.id, film)
    assert history_len(catalog) == before
    assert [r.id for r in catalog.record(record_id).reports] == [report.id]
    assert catalog.record(film).reports == ()
    # A flag that names other things does not hold a report back.
    other_record, other_report, _ = ingest_feed(catalog, tmp_path, author="Night Desk", guid="monitor-202")
    catalog.flag(other_record, "graphic", "gore")
    catalog.flag(other_record, "personal_data", "a name", fields=["title"])
    assert catalog.link(other_report.id, film).moved


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "prov"])
def test_a_redacted_export_is_a_bag(catalog: Catalog, tmp_path: Path, fmt: str) -> None:
    added = add_bytes(catalog, tmp_path, b"bytes", "file.bin")
    catalog.flag(added.record_id, "graphic", "gore")
    before = history_len(catalog)
    out = tmp_path / f"out.{fmt}"
    for redact_value in (True, ["graphic"]):
        with pytest.raises(InputError, match="BagIt"):
            catalog.export(out, format=fmt, redact=redact_value)  # type: ignore[arg-type]
    assert not out.exists() and history_len(catalog) == before


@pytest.mark.parametrize("kinds", [[], ["no_such_kind"], ["graphic", "bogus"]])
def test_unknown_or_no_redaction_kinds_are_refused(catalog: Catalog, tmp_path: Path, kinds: list[str]) -> None:
    add_bytes(catalog, tmp_path, b"bytes", "file.bin")
    before = history_len(catalog)
    with pytest.raises(InputError):
        catalog.export(tmp_path / "bag", format="bagit", redact=kinds)
    assert not (tmp_path / "bag").exists() and history_len(catalog) == before


# -- redact.redact, pure ------------------------------------------------------------------------


def text_paths(document: Any) -> list[str]:
    """Every field path of a record document that names a text value (whether or not it can be
    withheld)."""
    found: list[str] = []

    def walk(node: Any, steps: list[str]) -> None:
        if isinstance(node, str):
            if steps:
                found.append("/".join(steps))
        elif isinstance(node, dict):
            for key, value in node.items():
                if "/" not in key and key:
                    walk(value, [*steps, key])
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if len(steps) == 1 and isinstance(item, dict) and isinstance(item.get("id"), str):
                    walk(item, [*steps, item["id"]])
                else:
                    walk(item, [*steps, str(index)])

    walk(document, [])
    return found


def withholdable(record: model.EvidenceRecord, secret: str) -> list[str]:
    """Paths whose value can be replaced by *secret* and then withheld from the record."""
    document = unstructure(record)
    paths = []
    for path in text_paths(document):
        try:
            resolve(document, path)
        except FieldPathError:
            continue
        copy = unstructure(record)
        container, key = resolve(copy, path)
        container[key] = secret
        try:
            made = structure(copy, model.EvidenceRecord)
        except Exception:  # noqa: BLE001 - a value with a fixed format
            continue
        if at_path(unstructure(made), path) == secret:  # kept as given: plain text
            paths.append(path)
    return paths


#: UTC instants only: tests/strategies.py adds durations to wall-clock times in zones with daylight
#: saving, which now and then makes an acquisition or event time end before it starts.
utc_times = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
spans = st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3))


@st.composite
def utc_acquisitions(draw: st.DrawFn, shas: list[str]) -> model.Acquisition:
    start = draw(utc_times)
    outcome = draw(st.sampled_from(model.Outcome))
    main = draw(st.none() | st.sampled_from(shas)) if shas else None
    return model.Acquisition(
        id=draw(s.record_ids()),
        method=draw(st.sampled_from(model.AcquisitionMethod)),
        started_at=start,
        ended_at=start + draw(spans),
        operator=draw(s.agents),
        tools=draw(st.lists(s.agents, max_size=2)),
        artifact_sha256=main,
        outcome=outcome,
        original_path=draw(s.optional_text),
        file_modified_at=draw(st.none() | utc_times),
        source_url=draw(s.optional_text),
        final_url=draw(s.optional_text),
        platform=draw(s.optional_text),
        platform_id=draw(s.optional_text),
        error=draw(s.nonblank) if outcome is model.Outcome.FAILED else None,
        note=draw(s.optional_text),
        other_artifacts=draw(st.lists(st.sampled_from(shas), max_size=2)) if main is not None else (),
        platform_info=draw(st.none() | s.platform_infos),
        responses=draw(st.lists(s.http_responses, max_size=1)),
        withheld=draw(st.lists(s.text, max_size=2)),
    )


@st.composite
def utc_claims(draw: st.DrawFn) -> model.Claim:
    start = draw(utc_times)
    timed = draw(st.booleans())
    return model.Claim(
        id=draw(s.record_ids()),
        stated_by=draw(s.agents),
        stated_at=draw(utc_times),
        summary=draw(s.optional_text),
        category=draw(s.optional_text),
        event_time=model.EventTime(start=start, end=start + draw(spans)) if timed else None,
        place=draw(st.none() | st.builds(model.Place, name=s.optional_text, admin_area=s.optional_text)),
        alleged_perpetrator=draw(s.optional_text),
        source_description=draw(s.optional_text),
    )


@st.composite
def any_records(draw: st.DrawFn) -> model.EvidenceRecord:
    """Any valid record without flags (times in UTC)."""
    entries = draw(st.lists(s.record_artifacts(), max_size=3, unique_by=lambda ra: ra.artifact.sha256))
    shas = [e.artifact.sha256 for e in entries]
    return model.EvidenceRecord(
        id=draw(s.record_ids()),
        created_at=draw(utc_times),
        created_by=draw(s.agents),
        title=draw(s.optional_text),
        artifacts=entries,
        acquisitions=draw(st.lists(utc_acquisitions(shas), max_size=2)),
        reports=draw(st.lists(s.reports, max_size=2)),
        tags=draw(s.tags),
        notes=draw(st.lists(s.notes, max_size=2)),
        claims=draw(st.lists(utc_claims(), max_size=2)),
        assessments=draw(st.lists(s.assessments, max_size=2)),
    )


def flag_of(fields: tuple[str, ...] = (), artifacts: tuple[str, ...] = (), kind: str = "personal_data") -> Any:
    return model.SensitivityFlag(
        kind=kind,
        reason="a reason",
        set_by=Agent(name="Flagger"),
        set_at=FixedClock()(),
        fields=fields,
        artifacts=artifacts,
    )


@st.composite
def records_with_secrets(draw: st.DrawFn) -> tuple[model.EvidenceRecord, dict[str, str]]:
    """A record with distinctive secrets at 1-3 text fields (a secret sometimes repeated at a
    second field), and which paths hold which secret."""
    record = draw(any_records())
    candidates = withholdable(record, "SECRET-probe")
    assume(candidates)
    chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True))
    document = unstructure(record)
    secrets: dict[str, str] = {}
    for n, path in enumerate(chosen):
        secret = f"SECRET-{n}-{draw(st.integers(min_value=10**6, max_value=10**7))}"
        container, key = resolve(document, path)
        container[key] = secret
        secrets[path] = secret
    others = [p for p in candidates if p not in chosen]
    repeat: bool = draw(st.booleans())
    if others and repeat:  # the same text once more, unflagged
        copy_to = draw(st.sampled_from(others))
        container, key = resolve(document, copy_to)
        container[key] = secrets[chosen[0]]
    try:
        made = structure(document, model.EvidenceRecord)
    except Exception:  # two changes together that the model refuses
        assume(False)
        raise
    return made, secrets


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drawn=records_with_secrets(), kind=st.sampled_from(model.SensitivityKind))
def test_redact_withholds_the_flagged_values_everywhere_in_the_record(
    drawn: tuple[model.EvidenceRecord, dict[str, str]], kind: model.SensitivityKind
) -> None:
    record, secrets = drawn
    flagged = attrs.evolve(record, flags=(flag_of(tuple(secrets), kind=kind.value),))
    redaction = redact(flagged)
    dumped = json.dumps(unstructure(redaction.record), ensure_ascii=False)
    for secret in secrets.values():
        assert secret not in dumped
    assert redaction.changed and redaction.values == frozenset(secrets.values())
    assert [f.path for f in redaction.fields] == list(secrets)
    assert all(f.record_id == record.id and f.reasons == ((kind.value, "a reason"),) for f in redaction.fields)
    document = unstructure(redaction.record)
    for path in secrets:
        assert at_path(document, path) == WITHHELD_MARK
    assert not list(RECORD_SCHEMA.iter_errors(json.loads(json.dumps(to_document(redaction.record)))))
    # Field flags withhold no artifacts; the record keeps its id, artifacts and flags.
    assert redaction.artifacts == ()
    assert redaction.record.id == record.id and redaction.record.flags == flagged.flags
    assert redaction.record.artifacts == record.artifacts
    # Other kinds of flags are not honoured.
    others = [k.value for k in model.SensitivityKind if k is not kind]
    untouched = redact(flagged, others)
    assert not untouched.changed and untouched.record is flagged


@settings(max_examples=25, deadline=None)
@given(record=any_records(), kinds=st.none() | st.sets(st.sampled_from([k.value for k in model.SensitivityKind])))
def test_a_record_without_flags_is_returned_unchanged(record: model.EvidenceRecord, kinds: set[str] | None) -> None:
    bare = attrs.evolve(record, flags=())
    redaction = redact(bare, kinds)
    assert not redaction.changed
    assert redaction.record is bare
    assert (redaction.artifacts, redaction.fields, redaction.values) == ((), (), frozenset())


@settings(max_examples=25, deadline=None)
@given(record=any_records(), data=st.data())
def test_artifact_flags_withhold_those_artifacts_and_their_metadata(
    record: model.EvidenceRecord, data: st.DataObject
) -> None:
    shas = [e.artifact.sha256 for e in record.artifacts]
    named = data.draw(st.lists(st.sampled_from(shas), unique=True) if shas else st.just([]))
    flag = flag_of(artifacts=tuple(named), kind="graphic")
    flagged = attrs.evolve(record, flags=(flag,))
    redaction = redact(flagged)
    flagged_shas = set(named) if named else set(shas)  # naming nothing: every artifact
    expected = set(flagged_shas)
    while made_from := {e.artifact.sha256 for e in record.artifacts if set(e.derived_from) & expected} - expected:
        expected |= made_from  # what was made from a withheld artifact is withheld with it
    assert redaction.withheld_sha256 == expected
    assert [a.sha256 for a in redaction.artifacts] == [sha for sha in shas if sha in expected]
    for item in redaction.artifacts:
        original = next(e.artifact for e in record.artifacts if e.artifact.sha256 == item.sha256)
        assert (item.size, item.media_type, item.record_id) == (original.size, original.media_type, record.id)
        if item.sha256 in flagged_shas:
            assert item.reasons == (("graphic", "a reason"),)
        else:
            [(kind, why)] = item.reasons
            assert kind == "graphic" and why.startswith("it is made from withheld artifact "), why
    # Still listed, by SHA-256 and size; metadata left out of the withheld ones only.
    assert [(e.artifact.sha256, e.artifact.size) for e in redaction.record.artifacts] == [
        (e.artifact.sha256, e.artifact.size) for e in record.artifacts
    ]
    for before, after in zip(record.artifacts, redaction.record.artifacts, strict=True):
        if before.artifact.sha256 in expected:
            assert after.artifact.metadata is None
        else:
            assert after == before
    assert redaction.changed is bool(expected)


def test_a_withheld_value_is_replaced_in_http_response_headers_too() -> None:
    at = FixedClock()()
    acquisition = model.Acquisition(
        id="01a21489-0000-7000-8000-000000000003",
        method="captured_from_url",
        started_at=at,
        ended_at=at,
        operator=Agent(name="Op"),
        platform_info=model.PlatformInfo(uploader=SECRET),
        responses=(
            model.HttpResponse(url="https://media.example.org/1", status=200, headers=(("X-Uploader", SECRET),)),
        ),
    )
    record = model.EvidenceRecord(
        id="01a21489-0000-7000-8000-000000000001",
        created_at=at,
        created_by=Agent(name="Op"),
        acquisitions=(acquisition,),
        flags=(flag_of((f"acquisitions/{acquisition.id}/platform_info/uploader",)),),
    )
    redaction = redact(record)
    assert redaction.record.acquisitions[0].platform_info == model.PlatformInfo(uploader=WITHHELD_MARK)
    assert SECRET not in json.dumps(unstructure(redaction.record))


def test_redact_refuses_a_flag_whose_field_is_gone() -> None:
    record = model.EvidenceRecord(
        id="01a21489-0000-7000-8000-000000000001",
        created_at=FixedClock()(),
        created_by=Agent(name="Someone"),
        title="a title",
        flags=(flag_of(("reports/01a21489-0000-7000-8000-000000000002/author",)),),
    )
    with pytest.raises(FieldPathError):
        redact(record)
    # Only when that kind is redacted.
    assert not redact(record, ["graphic"]).changed


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_flag_and_redacted_and_prov_exports(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    photo = add_bytes(catalog, tmp_path, make_jpeg(), f"{SECRET}.jpg")
    other = add_bytes(catalog, tmp_path, b"other", "other.bin")
    path = catalog.path
    flagged = run_cli(
        "flag", photo.record_id, "personal_data", "--reason", "a name", "--field", "title", "--catalog", path
    )
    assert flagged.code == 0, flagged.err
    assert flagged.out.strip() == f"record {photo.record_id} flagged personal_data"
    graphic = run_cli(
        "flag", other.record_id, "graphic", "--reason", "gore", "--artifact", other.sha256, "--catalog", path
    )
    assert graphic.code == 0, graphic.err
    flags = {f.kind.value: f for f in catalog.record(photo.record_id).flags}
    assert flags["personal_data"].fields == ("title",) and flags["personal_data"].reason == "a name"
    assert catalog.record(other.record_id).flags[0].artifacts == (other.sha256,)

    before = history_len(catalog)
    for bad in (["--field", "no_such_member"], ["--field", "created_at"], ["--artifact", "0" * 64]):
        refused = run_cli("flag", photo.record_id, "minors", "--reason", "r", *bad, "--catalog", path)
        assert refused.code != 0
        assert refused.err.startswith("error: ") and len(refused.err.strip().splitlines()) == 1
        assert "Traceback" not in refused.err and refused.out == ""
    assert history_len(catalog) == before

    prov_out = tmp_path / "prov.json"
    exported = run_cli("export", "--format", "prov", "-o", prov_out, "--catalog", path)
    assert exported.code == 0, exported.err
    entities = {ident(e) for e in records_of(prov_document(prov_out), ProvEntity)}
    assert {UUID_NS + photo.record_id, ARTIFACT_NS + photo.sha256} <= entities
    assert "exported 2 record(s)" in exported.out

    bag = tmp_path / "bag"
    redacted = run_cli("export", "--format", "bagit", "--redact", "-o", bag, "--catalog", path)
    assert redacted.code == 0, redacted.err
    assert "redacted: 1 artifact(s) and 1 field(s) withheld (listed in data/contents.json)" in redacted.out
    validate_bag(bag)
    assert record_json(bag, photo.record_id)["title"] == WITHHELD_MARK
    assert artifact_files(bag, other.record_id) == {}

    refused = run_cli("export", "--format", "json", "--redact", "-o", tmp_path / "x.json", "--catalog", path)
    assert refused.code != 0 and refused.err.startswith("error: ") and "Traceback" not in refused.err
    assert not (tmp_path / "x.json").exists()
