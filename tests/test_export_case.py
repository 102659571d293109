"""CASE/UCO 1.5.0 exports of real catalogs, checked by case-utils' ``case_validate``.

One catalog holds every kind of record (a photo with EXIF GPS and its analysis, a captured video
with its page and thumbnail, an ingested digest with a link card, an RSS item whose report was
moved onto the video's record, claims, assessments, notes, tags, a relation and flags); it is
exported whole and validated once, and exported redacted (beside a redacted bag of the same
records) and validated once: the validator takes seconds per run.  The graph is read as JSON
(the project's environment has no RDF library): every digest, the custody chain in order, the
catalog's own ids, the claims' "alleged", and that two exports agree node for node.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import io
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from evidence_catalog import Catalog, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.errors import EvidenceError, InputError, ModelError
from evidence_catalog.interchange.case import NAMESPACE, decimal_literal, facet_id, hash_id, node_id, uuid5_text
from evidence_catalog.interchange.redact import WITHHELD_MARK
from tests.aa_rows import FIXTURE as AA_FIXTURE
from tests.aa_rows import P as AA_PAGES
from tests.aa_rows import index_of, rows_of, write_rows
from tests.conftest import FixedClock, make_jpeg
from tests.media_server import MediaServer, Route, video_page
from tests.test_digest import DIGEST
from tests.test_ingest import _telegram_export, _twarc_page
from tests.test_prov_redact import SECRET, feed

DATA = Path(__file__).parent / "data"
CLIP = (DATA / "clip.mp4").read_bytes()
FAST = CaptureOptions(retries=0, socket_timeout=2)
UUID_END = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_built: dict[str, Catalog] = {}


def build(folder: Path, server: MediaServer) -> Catalog:
    """A catalog with every kind of record the catalog has."""
    operator = model.Agent(name="Case Analyst", email="case@example.org", organization="Example NGO")
    catalog = Catalog.init(folder / "catalog", operator=operator, clock=FixedClock(), algorithms=("sha256", "md5"))
    photo_path = folder / "photo.jpg"
    photo_path.write_bytes(make_jpeg(gps=(50.450333, 30.5235, 179.5)))
    photo = catalog.add_file(photo_path, tags=["depot"])  # analysed: derived artifacts
    poster = make_jpeg(colour=(10, 20, 30), gps=None)
    video = server.route("/case/media/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    thumb = server.route("/case/media/poster.jpg", Route(body=poster, media_type="image/jpeg"))
    page = server.route("/case/watch/1", Route(body=video_page(video, title="Case clip", thumbnail_url=thumb)))
    [captured] = catalog.capture(page, options=FAST, analyze=False)
    assert captured.ok, captured.error
    digest = folder / "digest-0505.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    catalog.ingest(digest)
    rss = folder / "feed.rss"
    rss.write_text(feed(SECRET), encoding="utf-8")
    before = set(catalog.record_ids())
    catalog.ingest(rss)
    [fed] = set(catalog.record_ids()) - before
    [report] = catalog.record(fed).reports
    catalog.link(report.id, captured.record_id, note="the item names this video")
    catalog.claim(
        photo.record_id,
        summary="Shelling damage at the depot",
        event_time=model.EventTime(start=dt.datetime(2024, 3, 1, 10, 15, 30, tzinfo=dt.UTC)),
        place=model.Place(name="Depot", position=model.GeoPosition(latitude=50.45, longitude=30.52)),
        alleged_perpetrator="Unit X",
        source_description="a witness",
    )
    catalog.claim(captured.record_id, summary="The video shows the berths", source_report_id=report.id)
    catalog.assess(photo.record_id, "verified", methods=["geolocation", "chronolocation"], confidence="high")
    catalog.add_note(captured.record_id, "Compared with the satellite pictures: “same berths”.")
    catalog.tag(captured.record_id, ["harbour"])
    catalog.relate(captured.record_id, "same_incident_as", photo.record_id, note="same day")
    # Reports from a Telegram channel export (with its media) and a twarc2 page, and what
    # auto-archiver archived (screenshots, PDF prints, time-stamp tokens and their certificates).
    catalog.ingest(_telegram_export(folder / "ChatExport_2025-05-06", photo=make_jpeg(colour=(7, 8, 9), gps=None)))
    tweets = folder / "tweets.jsonl"
    tweets.write_text(json.dumps(_twarc_page(), ensure_ascii=False) + "\n", encoding="utf-8")
    catalog.ingest(tweets)
    archive = folder / "auto-archiver"  # one archived page with a video, to keep validation short
    shutil.copytree(AA_FIXTURE, archive)
    rows = rows_of(archive)
    write_rows(archive, [rows[0], rows[index_of(rows, AA_PAGES + "video.html")]])
    catalog.import_auto_archiver(archive, analyze=False)
    catalog.flag(photo.record_id, "personal_data", "a bystander's face")
    catalog.flag(
        captured.record_id, "protected_source", "the author is a source", fields=[f"reports/{report.id}/author"]
    )
    return catalog


@pytest.fixture
def every_kind(tmp_path_factory: pytest.TempPathFactory, server: MediaServer) -> Catalog:
    """The catalog of every kind, made once per test process (in PostgreSQL's pass, there)."""
    if "catalog" not in _built:
        _built["catalog"] = build(tmp_path_factory.mktemp("case"), server)
    return _built["catalog"]


def graph(path: Path) -> dict[str, dict[str, Any]]:
    """The nodes of a CASE export by id (the file is one JSON-LD document)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["@context"]["kb"] == "urn:evidence-catalog:case:"
    nodes = document["@graph"]
    by_id = {node["@id"]: node for node in nodes}
    assert len(by_id) == len(nodes), "a node written twice"
    return by_id


def of_type(nodes: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [n for n in nodes.values() if n["@type"] == kind]


def refs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [item["@id"] for item in items]


def validate(case_validate: str, path: Path) -> str:
    run = subprocess.run(
        [case_validate, "--built-version", "case-1.5.0", str(path)], capture_output=True, text=True, timeout=600
    )
    # An unknown UCO property fails with "Conforms: True" on stdout: the exit code decides.
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Conforms: True" in run.stdout
    return run.stdout


def all_ids_end_in_uuids(node: Any) -> None:
    if isinstance(node, dict):
        if "@id" in node:
            assert UUID_END.search(node["@id"]), node["@id"]
        for value in node.values():
            all_ids_end_in_uuids(value)
    elif isinstance(node, list):
        for value in node:
            all_ids_end_in_uuids(value)


@pytest.mark.no_postgresql_pass  # the SQLite pass validates; the mapping is the same
def test_a_case_export_of_every_kind_of_record_validates_and_keeps_what_the_catalog_holds(
    every_kind: Catalog, tmp_path: Path, case_validate: str
) -> None:
    catalog = every_kind
    out = tmp_path / "all.jsonld"
    result = catalog.export(out, format="case")
    validate(case_validate, out)
    nodes = graph(out)
    all_ids_end_in_uuids(list(nodes.values()))
    records = list(catalog.records())
    assert result.records == len(records)
    # The export is logged as the others are, with the file's SHA-256.
    last = catalog.history()[-1]
    assert (last.action, last.details["format"]) == ("records.exported", "case")
    assert last.details["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == result.sha256

    provenance = {
        n["case-investigation:exhibitNumber"]: n for n in of_type(nodes, "case-investigation:ProvenanceRecord")
    }
    hashes = {
        (h["uco-types:hashMethod"], h["uco-types:hashValue"]["@value"])
        for f in of_type(nodes, "uco-observable:File")
        for facet in f["uco-core:hasFacet"]
        if facet["@type"] == "uco-observable:ContentDataFacet"
        for h in facet["uco-observable:hash"]
    }
    for record in records:
        node = provenance[record.id]  # the record, findable by its id
        assert node["@id"] == node_id("ProvenanceRecord", "record:" + record.id)
        assert set(node.get("uco-core:tag", [])) == set(record.tags)
        for entry in record.artifacts:  # every digest the catalog holds, typed hexBinary
            for name, value in entry.artifact.digests.as_dict().items():
                assert ({"sha256": "SHA256", "md5": "MD5"}[name], value.upper()) in hashes
            assert node_id("File", "sha256:" + entry.artifact.sha256) in refs(node["uco-core:object"])
        # The custody chain in order: one ProvenanceRecord per event, each event's action
        # taking the one before as its object, the event hashes kept.
        events = [e for e in catalog.history() if e.subject == record.id]
        assert events
        previous = None
        for event in events:
            link = provenance[f"{record.id}/custody/{event.seq}"]
            assert f"event hash {event.hash}" in link["uco-core:description"]
            action = nodes[node_id("InvestigativeAction", f"event:{event.hash}")]
            assert refs(action["uco-action:result"]) == [link["@id"]]
            assert refs(action["uco-action:object"]) == [previous or node["@id"]]
            assert action["uco-action:startTime"]["@value"].startswith(event.at.strftime("%Y-%m-%dT%H:%M:%S"))
            previous = link["@id"]

    photo = next(r for r in records if "depot" in r.tags)
    exif = photo.artifacts[0].artifact.metadata.exif  # type: ignore[union-attr]
    assert exif is not None and exif.gps is not None
    located = [
        n["uco-core:hasFacet"]
        for n in of_type(nodes, "uco-location:Location")
        if n["uco-core:hasFacet"]["uco-location:latitude"]["@value"] == repr(exif.gps.latitude)
    ]
    assert located and located[0]["uco-location:longitude"] == {
        "@type": "xsd:decimal",
        "@value": repr(exif.gps.longitude),
    }
    photo_file = nodes[node_id("File", "sha256:" + photo.artifacts[0].artifact.sha256)]
    kinds = {facet["@type"]: facet for facet in photo_file["uco-core:hasFacet"]}
    assert kinds["uco-observable:RasterPictureFacet"]["uco-observable:pictureWidth"] == 64
    entries = {
        e["uco-types:key"]: e["uco-types:value"]
        for e in kinds["uco-observable:EXIFFacet"]["uco-observable:exifData"]["uco-types:entry"]
    }
    assert entries["Make"] == "DemoCam"
    derivations = [
        n for n in of_type(nodes, "case-investigation:InvestigativeAction") if n["uco-core:name"] == "derivation"
    ]
    assert any(photo_file["@id"] in refs(d.get("uco-action:object")) for d in derivations)

    # Acquisitions: performer, instrument (tool and version), times, object and result.
    video = next(r for r in records if "harbour" in r.tags)
    capture = next(a for a in video.acquisitions if a.method is model.AcquisitionMethod.CAPTURED_FROM_URL)
    action = nodes[node_id("InvestigativeAction", "acquisition:" + capture.id)]
    url = nodes[refs(action["uco-action:object"])[0]]
    assert url["uco-core:hasFacet"]["uco-observable:fullValue"] == capture.requested_url
    tools = [nodes[t] for t in refs(action["uco-action:instrument"])]
    assert {(t["uco-core:name"], t.get("uco-tool:version")) for t in tools} == {
        (t.name, t.version) for t in capture.tools
    }
    assert nodes[refs(action["uco-action:performer"])[0]]["uco-core:name"] == "Case Analyst"
    assert node_id("File", "sha256:" + (capture.artifact_sha256 or "")) in refs(action["uco-action:result"])
    # What auto-archiver archived: its files, among them its screenshot, with their SHA-256s, the
    # acquisition naming auto-archiver and the version its report states.
    archived = next(r for r in records if r.acquisitions[0].method is model.AcquisitionMethod.IMPORTED)
    action = nodes[node_id("InvestigativeAction", "acquisition:" + archived.acquisitions[0].id)]
    assert ("auto-archiver", "1.2.9") in {
        (nodes[t]["uco-core:name"], nodes[t].get("uco-tool:version")) for t in refs(action["uco-action:instrument"])
    }
    screenshot = next(e.artifact for e in archived.artifacts if e.role is model.ArtifactRole.SCREENSHOT)
    assert ("SHA256", screenshot.sha256.upper()) in hashes
    # Reports verbatim, the moved one on the video's record; claims alleged; assessments' status and method.
    messages = {
        n["@id"]: n["uco-core:hasFacet"]["uco-observable:messageText"] for n in of_type(nodes, "uco-observable:Message")
    }
    for record in records:
        for report in record.reports:
            assert messages[node_id("Message", "report:" + report.id)] == report.text
            assert node_id("Message", "report:" + report.id) in refs(provenance[record.id]["uco-core:object"])
    annotations = of_type(nodes, "uco-core:Annotation")
    claims = [a for a in annotations if "claim" in a["uco-core:tag"]]
    assert len(claims) == 2 and all("alleged" in a["uco-core:tag"] for a in claims)
    assert all(a["uco-core:statement"].startswith("Alleged") for a in claims)
    [assessment] = [a for a in annotations if "assessment" in a["uco-core:tag"]]
    assert {"status:verified", "method:geolocation", "method:chronolocation", "confidence:high"} <= set(
        assessment["uco-core:tag"]
    )
    assert any("“same berths”" in a["uco-core:statement"] for a in annotations if "note" in a["uco-core:tag"])
    [relation] = [
        r for r in of_type(nodes, "uco-core:Relationship") if r["uco-core:kindOfRelationship"] == "same_incident_as"
    ]
    assert refs(relation["uco-core:target"]) == [provenance[photo.id]["@id"]]
    # A whole-catalog export lists none withheld; the flags are there as annotations.
    assert not [a for a in annotations if "redacted" in a["uco-core:tag"]]
    assert len([a for a in annotations if "sensitivity-flag" in a["uco-core:tag"]]) == 2


@pytest.mark.no_postgresql_pass
def test_a_redacted_case_export_withholds_what_a_redacted_bag_withholds_and_says_so(
    every_kind: Catalog, tmp_path: Path, case_validate: str
) -> None:
    catalog = every_kind
    bag = catalog.export(tmp_path / "bag", format="bagit", redact=True)
    bag_event = catalog.history()[-1]
    out = tmp_path / "redacted.jsonld"
    result = catalog.export(out, format="case", redact=True)
    case_event = catalog.history()[-1]
    validate(case_validate, out)
    text = out.read_text(encoding="utf-8")
    assert SECRET not in text
    nodes = graph(out)
    # The same artifacts and fields withheld, the same events altered, logged alike.
    # The same withheld, and the bag's own export event is shown without its digests (an
    # earlier export's digests go from every redacted export that withholds anything).
    assert case_event.details["redaction"] == {
        **bag_event.details["redaction"],
        "altered_events": [*bag_event.details["redaction"]["altered_events"], bag_event.seq],
    }
    assert (result.withheld_artifacts, result.withheld_fields) == (bag.withheld_artifacts, bag.withheld_fields)
    contents = json.loads((tmp_path / "bag" / "data" / "contents.json").read_text(encoding="utf-8"))
    withheld = {a["sha256"] for a in contents["redaction"]["withheld_artifacts"]}
    assert withheld
    said = [a for a in of_type(nodes, "uco-core:Annotation") if "redacted" in a["uco-core:tag"]]
    assert said
    statements = "\n".join(a["uco-core:statement"] for a in said)
    for sha in withheld:  # listed with its SHA-256 and size, as the bag lists it; no metadata
        assert f"artifact sha256:{sha}" in statements
        facets = {f["@type"] for f in nodes[node_id("File", "sha256:" + sha)]["uco-core:hasFacet"]}
        assert not facets & {"uco-observable:EXIFFacet", "uco-observable:RasterPictureFacet"}
    for field in contents["redaction"]["withheld_fields"]:
        assert f"field {field['path']}:" in statements
    assert any(
        WITHHELD_MARK in n.get("uco-core:description", "") or n["@type"] == "uco-observable:ApplicationAccount"
        for n in nodes.values()
    )
    # No GPS of a withheld photo: the only places left are the claim's.
    positions = {
        n["uco-core:hasFacet"]["uco-location:latitude"]["@value"] for n in of_type(nodes, "uco-location:Location")
    }
    assert positions == {"50.45"}


def test_two_exports_of_a_record_agree_node_for_node(every_kind: Catalog, tmp_path: Path) -> None:
    catalog = every_kind
    [first_id, *_] = catalog.record_ids()
    catalog.export(tmp_path / "one.jsonld", format="case", record_ids=[first_id])
    catalog.export(tmp_path / "all.jsonld", format="case")
    one, whole = graph(tmp_path / "one.jsonld"), graph(tmp_path / "all.jsonld")
    shared = [i for i, n in one.items() if n["@type"] != "case-investigation:Investigation"]
    assert len(shared) > 10
    for identifier in shared:
        assert whole[identifier] == one[identifier]
    again = tmp_path / "again.jsonld"
    catalog.export(again, format="case", record_ids=[first_id])
    assert {i: n for i, n in graph(again).items() if i in shared} == {i: one[i] for i in shared}


def test_bad_case_exports_are_refused_and_nothing_is_written(
    every_kind: Catalog, tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    catalog = every_kind
    out = tmp_path / "x.jsonld"
    events = len(catalog.history())
    for kwargs, message in (
        ({"bom": True}, "byte order mark is for CSV only"),
        ({"sha512": True}, "for BagIt exports only"),
        ({"record_ids": ["0" * 26]}, "is not a record id"),
        ({"record_ids": [model.new_id()]}, "no record with id"),
        ({"redact": ["no-such-kind"]}, "no-such-kind"),
        ({"where": catalog.record_filter(tags=["no-such-tag"])}, "no record meets the selection"),
    ):
        with pytest.raises(EvidenceError, match=message):
            catalog.export(out, format="case", **kwargs)
    with pytest.raises(InputError, match="a BagIt export or a CASE export"):
        catalog.export(out, format="json", redact=True)
    assert not out.exists() and len(catalog.history()) == events
    out.write_text("mine")
    with pytest.raises(InputError, match="already exists"):
        catalog.export(out, format="case")
    assert out.read_text() == "mine"
    cli = run_cli(
        "export", "--catalog", catalog.path, "--format", "case", "--redact", "--output", tmp_path / "c.jsonld"
    )
    assert cli.code == 0, cli.err
    assert "c.jsonld" in cli.out and json.loads((tmp_path / "c.jsonld").read_text())["@graph"]


# -- identifiers and literals -----------------------------------------------------------------


@given(st.floats(min_value=-180, max_value=180, allow_nan=False, allow_infinity=False))
def test_any_coordinate_is_written_as_a_decimal_that_reads_back_as_the_same_float(value: float) -> None:
    literal = decimal_literal(value)
    assert literal["@type"] == "xsd:decimal"
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", literal["@value"]), literal  # xsd:decimal: no exponent
    assert float(literal["@value"]) == value
    assert decimal.Decimal(literal["@value"]) == decimal.Decimal(repr(value))


@given(st.text(max_size=60), st.text(max_size=60))
def test_ids_are_stable_end_in_a_uuid_and_differ_for_different_names(a: str, b: str) -> None:
    assert node_id("File", a) == node_id("File", a)
    assert UUID_END.search(node_id("File", a))
    assert (node_id("File", a) == node_id("File", b)) == (a == b)
    assert node_id("File", a) != node_id("URL", a)  # a class's nodes never share a UUID with another's


@given(st.uuids(), st.text() | st.text(st.characters(exclude_categories=())))
@example(uuid.NAMESPACE_URL, "\ud800")
@example(uuid.NAMESPACE_URL, "")
def test_uuid5_text_is_the_standard_librarys_uuid5(namespace: uuid.UUID, name: str) -> None:
    """The node ids' UUIDs, made without UUID objects, are ``uuid.uuid5``'s, for any name (text
    that UTF-8 cannot write, half of a surrogate pair, is refused by both alike)."""
    try:
        expected = str(uuid.uuid5(namespace, name))
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            uuid5_text(namespace.bytes, name)
        return
    assert uuid5_text(namespace.bytes, name) == expected
    assert node_id("File", name) == f"kb:File-{uuid.uuid5(NAMESPACE, 'File:' + name)}"


@given(st.binary(max_size=64))
def test_hash_and_facet_ids_follow_case_utils_inherent_uuid(data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    # case_utils.inherent_uuid: uuid5(NAMESPACE_URL, "urn:hash::sha256:<hex>") and
    # uuid5(<object's UUID>, <facet class IRI>).
    assert hash_id("SHA256", sha) == f"kb:Hash-{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:hash::sha256:' + sha)}"
    file_id = node_id("File", "sha256:" + sha)
    iri = "https://ontology.unifiedcyberontology.org/uco/observable/FileFacet"
    assert facet_id(file_id, iri) == f"kb:FileFacet-{uuid.uuid5(uuid.UUID(file_id[-36:]), iri)}"


@given(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=80),
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
)
def test_any_text_and_position_survive_the_graph_as_written(text: str, latitude: float, longitude: float) -> None:
    """A record's title, a note's text and a claim's position, written by the graph writer and
    read back from its JSON-LD, are what the record holds."""
    from evidence_catalog.interchange.case_records import write_case
    from evidence_catalog.interchange.redact import Redaction

    agent = model.Agent(name="Analyst")
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    try:
        record = model.EvidenceRecord(
            id=model.new_id(),
            created_at=at,
            created_by=agent,
            title=text,
            notes=(model.Note(id=model.new_id(), text=text, author=agent, written_at=at),),
            claims=(
                model.Claim(
                    id=model.new_id(),
                    stated_by=agent,
                    stated_at=at,
                    place=model.Place(position=model.GeoPosition(latitude=latitude, longitude=longitude)),
                ),
            ),
        )
    except ModelError:
        assume(False)
        raise
    stream = io.StringIO()
    write_case(
        stream,
        [(Redaction(record=record), {})],
        [],
        exported_ids=None,
        exported_at=at,
        exported_by=agent,
        generator=agent,
    )
    nodes = {n["@id"]: n for n in json.loads(stream.getvalue())["@graph"]}
    assert nodes[node_id("ProvenanceRecord", "record:" + record.id)]["uco-core:name"] == text
    [note] = [n for n in nodes.values() if n["@type"] == "uco-core:Annotation" and "note" in n["uco-core:tag"]]
    assert note["uco-core:statement"] == text
    [place] = [n["uco-core:hasFacet"] for n in nodes.values() if n["@type"] == "uco-location:Location"]
    assert float(place["uco-location:latitude"]["@value"]) == latitude
    assert float(place["uco-location:longitude"]["@value"]) == longitude
