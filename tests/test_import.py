"""Importing exports (BagIt bags, JSON, JSON Lines) into real catalogs: round trips keep every
record byte for byte, importing twice adds nothing, each imported record is one
``record.imported`` custody event that carries the source's history verbatim, and every defect
in a bag -- unsafe paths, symlinks, missing or extra files, wrong digests or Payload-Oxum,
unknown or newer schemas, malformed or hostile JSON, altered custody events, withheld content
-- is refused with an :class:`EvidenceError` naming it, leaving the destination as it was.

Bags are made by the library itself and then edited; where a defect needs the manifests to
agree (so that only that one defect remains), :func:`reseal` recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, ValidationError
from evidence_catalog.interchange.bag import BagError, check_bag
from evidence_catalog.serialize import SCHEMA_IDS, to_document, unstructure
from evidence_catalog.vocabulary import BUILTIN_CATEGORIES

from .conftest import CliResult, FixedClock

SOURCE_OPERATOR = Agent(name="Source Analyst", email="source@example.org", organization="Monitor NGO", host="src")
DEST_OPERATOR = Agent(name="Archive Keeper", email="archive@example.org", organization="Archive", host="dst")
RECORD_SCHEMA = SCHEMA_IDS[model.EvidenceRecord]

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
  <title>Harbour Monitor</title>
  <link>https://monitor.example.org/</link>
  <description>Posts about the East Quay yard</description>
  <item>
    <title>Two new berths at the East Quay yard</title>
    <link>https://monitor.example.org/posts/101</link>
    <guid isPermaLink="false">monitor-101</guid>
    <pubDate>Mon, 05 May 2025 21:30:00 +0300</pubDate>
    <description>Night images show two new berths — “maintenance”, said the operator.</description>
  </item>
  <item>
    <title>Gate closed on 4 May</title>
    <link>https://monitor.example.org/posts/102</link>
    <guid>https://monitor.example.org/posts/102</guid>
    <pubDate>Sun, 04 May 2025 08:00:00 +0000</pubDate>
  </item>
</channel>
</rss>
"""


# -- bag editing helpers ------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path: Path, data: bytes | str) -> None:
    """Overwrite a file of a bag (its files may be read-only)."""
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def read_manifest(bag: Path, name: str = "manifest-sha256.txt") -> list[tuple[str, str]]:
    return [tuple(line.split(None, 1)) for line in (bag / name).read_text("utf-8").splitlines() if line]  # type: ignore[misc]


def write_manifest(bag: Path, entries: list[tuple[str, str]], name: str = "manifest-sha256.txt") -> None:
    write(bag / name, "".join(f"{digest}  {path}\n" for digest, path in entries))


def rewrite_tagmanifest(bag: Path) -> None:
    """Recompute tagmanifest-sha256.txt for the tag files it lists (so it matches them again)."""
    entries = read_manifest(bag, "tagmanifest-sha256.txt")
    write_manifest(bag, [(sha256_of(bag / path), path) for _, path in entries], "tagmanifest-sha256.txt")


def bag_info(bag: Path) -> dict[str, str]:
    info = {}
    for line in (bag / "bag-info.txt").read_text("utf-8").splitlines():
        label, _, value = line.partition(":")
        info[label] = value.strip()
    return info


def set_info(bag: Path, label: str, value: str) -> None:
    lines = (bag / "bag-info.txt").read_text("utf-8").splitlines()
    lines = [f"{label}: {value}" if line.startswith(f"{label}:") else line for line in lines]
    write(bag / "bag-info.txt", "\n".join(lines) + "\n")


def payload_oxum(bag: Path) -> str:
    files = [p for p in (bag / "data").rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files)}.{len(files)}"


def reseal(bag: Path) -> None:
    """Make the manifest, Payload-Oxum and tag manifest agree with the payload again, for every
    listed file that exists (so that only the defect made on purpose remains)."""
    write_manifest(
        bag,
        [(sha256_of(bag / path) if (bag / path).is_file() else digest, path) for digest, path in read_manifest(bag)],
    )
    set_info(bag, "Payload-Oxum", payload_oxum(bag))
    rewrite_tagmanifest(bag)


def add_manifest_line(bag: Path, path: str, digest: str | None = None) -> None:
    entries = read_manifest(bag)
    entries.append((digest or entries[0][0], path))
    write_manifest(bag, entries)
    rewrite_tagmanifest(bag)


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text("utf-8"))
    change(document)
    write(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def edit_custody(bag: Path, change: Callable[[list[str]], list[str]]) -> None:
    path = bag / "data" / "custody.jsonl"
    lines = path.read_text("utf-8").splitlines()
    write(path, "".join(line + "\n" for line in change(lines)))


# -- catalogs -----------------------------------------------------------------------------------


@attrs.frozen
class Source:
    """A catalog with varied records, and exports of all of it made once for the module."""

    catalog: Catalog
    a: str  # a file with a note, a claim, two assessments, a relation, tags
    b: str  # a file with a sensitivity flag (exported unredacted)
    feed: tuple[str, str]  # two records from one RSS feed (they share its artifact)
    bag: Path
    jsonl: Path
    json: Path

    @property
    def ids(self) -> list[str]:
        return self.catalog.record_ids()

    def artifact_file(self, bag: Path, record_id: str | None = None) -> Path:
        [file] = (bag / "data" / "records" / (record_id or self.a) / "artifacts").iterdir()
        return file

    def record_json(self, bag: Path, record_id: str | None = None) -> Path:
        return bag / "data" / "records" / (record_id or self.a) / "record.json"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    root = tmp_path_factory.mktemp("source")
    inputs = root / "inputs"
    inputs.mkdir()
    with Catalog.init(root / "catalog", operator=SOURCE_OPERATOR, clock=FixedClock()) as cat:
        (inputs / "школа.jpg").write_bytes(b"\xff\xd8\xff\xe0 a photo of the school")
        (inputs / "statement.txt").write_text("Witness statement: «the gate was closed»", encoding="utf-8")
        # Not analysed: the records as they were (an analysed export is imported further down).
        first, second = cat.add(
            [inputs / "школа.jpg", inputs / "statement.txt"], tags=["school", "east quay"], analyze=False
        )
        a, b = first.record_id, second.record_id
        cat.add_note(a, "Seen on two channels within an hour.")
        cat.claim(a, summary="Shelling of a school", category="rome-8-2-b-ix", source_description="Local channel")
        cat.assess(a, "in_progress", methods=["geolocation"])
        cat.assess(a, "verified", methods=["geolocation", "chronolocation"], confidence="medium", note="Shadows fit.")
        cat.relate(a, "same_incident_as", b, note="Same gate")
        cat.tag(a, ["priority"])
        cat.flag(b, "personal_data", "Names the witness")
        feed = inputs / "monitor.rss"
        feed.write_text(RSS, encoding="utf-8")
        assert cat.ingest(feed).records_added == 2
        c, d = (i for i in cat.record_ids() if i not in (a, b))
        cat.relate(c, "responds_to", d)
        bag, jsonl, json_file = root / "bag", root / "export.jsonl", root / "export.json"
        cat.export(bag, format="bagit")
        cat.export(jsonl, format="jsonl")
        cat.export(json_file, format="json")
        yield Source(catalog=cat, a=a, b=b, feed=(c, d), bag=bag, jsonl=jsonl, json=json_file)


@pytest.fixture
def bag(source: Source, tmp_path: Path) -> Path:
    """A fresh copy of the source's bag, to edit."""
    copy = tmp_path / "bag"
    shutil.copytree(source.bag, copy, symlinks=True)
    return copy


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[Catalog]:
    """A destination catalog holding one record of its own."""
    with Catalog.init(tmp_path / "dest", operator=DEST_OPERATOR, clock=FixedClock()) as cat:
        own = tmp_path / "own.txt"
        own.write_text("the destination's own record", encoding="utf-8")
        cat.add([own], tags=["own"])
        yield cat


class SharedDestination:
    """A destination catalog kept for the module, for tests that must leave it unchanged (the
    refusals).  Made again whenever a test did change it, so that one bug cannot hide others."""

    def __init__(self, root: Path, source: Source, *, loaded: bool) -> None:
        self.root, self.source, self.loaded = root, source, loaded
        self.made = 0
        self.catalog: Catalog | None = None
        self.baseline: tuple[Any, ...] = ()

    def get(self) -> Catalog:
        if self.catalog is None or snapshot(self.catalog) != self.baseline:
            if self.catalog is not None:
                self.catalog.close()
            self.made += 1
            folder = self.root / f"dest-{self.made}"
            folder.mkdir()
            self.catalog = Catalog.init(folder / "catalog", operator=DEST_OPERATOR, clock=FixedClock())
            own = folder / "own.txt"
            own.write_text("the destination's own record", encoding="utf-8")
            self.catalog.add([own], tags=["own"])
            if self.loaded:  # it holds the source's records, one of them changed since
                self.catalog.import_records(self.source.bag)
                self.catalog.add_note(self.source.a, "a note made here")
            self.baseline = snapshot(self.catalog)
        return self.catalog

    def close(self) -> None:
        if self.catalog is not None:
            self.catalog.close()


@pytest.fixture(scope="module")
def _shared(tmp_path_factory: pytest.TempPathFactory, source: Source) -> Iterator[dict[str, SharedDestination]]:
    root = tmp_path_factory.mktemp("shared")
    (root / "empty").mkdir()
    (root / "loaded").mkdir()
    shared = {
        "empty": SharedDestination(root / "empty", source, loaded=False),
        "loaded": SharedDestination(root / "loaded", source, loaded=True),
    }
    yield shared
    for destination in shared.values():
        destination.close()


@pytest.fixture
def empty_dest(_shared: dict[str, SharedDestination]) -> Catalog:
    """A destination holding only a record of its own (shared: tests must not change it)."""
    return _shared["empty"].get()


@pytest.fixture
def loaded_dest(_shared: dict[str, SharedDestination]) -> Catalog:
    """A destination holding the source's records, one changed (shared: tests must not change it)."""
    return _shared["loaded"].get()


def blob_files(catalog: Catalog) -> set[str]:
    root = catalog.path / "blobs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def snapshot(catalog: Catalog) -> tuple[Any, ...]:
    """Everything a refused import must leave as it was."""
    history = catalog.history()
    return catalog.record_ids(), len(history), [e.hash for e in history], blob_files(catalog), list(catalog.records())


def assert_refused(
    catalog: Catalog,
    source: Path,
    error: type[EvidenceError],
    match: str,
    *,
    blobs: Path | None = None,
) -> EvidenceError:
    before = snapshot(catalog)
    with pytest.raises(EvidenceError) as raised:
        catalog.import_records(source, blobs=blobs)
    assert isinstance(raised.value, error), repr(raised.value)
    assert re.search(match, str(raised.value)), str(raised.value)
    assert snapshot(catalog) == before
    assert catalog.verify(record_event=False).ok
    return raised.value


def record_jsons(bag: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (bag / "data" / "records").glob("*/record.json")}


# -- 1. round trips -----------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda s: s.strip() != ""
)
file_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=20
).filter(lambda s: s not in (".", ".."))
CATEGORY_CODES = [c.code for c in BUILTIN_CATEGORIES]
index = st.integers(min_value=0, max_value=50)
operations = st.one_of(
    st.tuples(st.just("tag"), index, st.lists(texts, min_size=1, max_size=3)),
    st.tuples(st.just("note"), index, texts),
    st.tuples(st.just("claim"), index, texts, st.sampled_from(CATEGORY_CODES), texts),
    st.tuples(
        st.just("assess"),
        index,
        st.sampled_from(model.VerificationStatus),
        st.lists(st.sampled_from(model.VerificationMethod), max_size=3),
        st.none() | st.sampled_from(model.Confidence),
    ),
    st.tuples(st.just("relate"), index, st.sampled_from(model.RelationKind), index),
    st.tuples(st.just("flag"), index, st.sampled_from(model.SensitivityKind), texts),
    st.tuples(st.just("attach"), index, file_names, st.binary(max_size=64)),
)


#: A 2x2 PNG (Pillow, optimised): small enough to be drawn, and a picture that decodes.
TINY_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00\xfd\xd4\x9as"
    b"\x00\x00\x00\x16IDATx\xdac<\xc1\xc5\xc5\xc0\xc0\xc0\xc4\xc0\xc0\xc0\xc0\xc0\x00\x00\x0b8\x00\xe0\x13(\x9d"
    b"\xe1\x00\x00\x00\x00IEND\xaeB`\x82"
)


def build_source(folder: Path, files: list[tuple[str, bytes]], ops: list[tuple[Any, ...]], tags: list[str]) -> Catalog:
    cat = Catalog.init(folder / "src", operator=SOURCE_OPERATOR, clock=FixedClock())
    for number, (name, content) in enumerate(files):
        place = folder / "in" / str(number)
        place.mkdir(parents=True)
        (place / name).write_bytes(content)
        cat.add([place / name], tags=tags[: number % (len(tags) + 1)])
    ids = cat.record_ids()
    for number, (kind, i, *rest) in enumerate(ops):
        record_id = ids[i % len(ids)]
        if kind == "tag":
            cat.tag(record_id, rest[0])
        elif kind == "note":
            cat.add_note(record_id, rest[0])
        elif kind == "claim":
            cat.claim(record_id, summary=rest[0], category=rest[1], source_description=rest[2])
        elif kind == "assess":
            status, methods, confidence = rest
            cat.assess(
                record_id,
                status.value,
                methods=[m.value for m in methods],
                confidence=None if confidence is None else confidence.value,
            )
        elif kind == "relate":
            target = ids[rest[1] % len(ids)]
            if target != record_id:
                cat.relate(record_id, rest[0].value, target)
        elif kind == "flag":
            cat.flag(record_id, rest[0].value, rest[1])
        elif kind == "attach":
            place = folder / "attach" / str(number)
            place.mkdir(parents=True)
            (place / rest[0]).write_bytes(rest[1])
            cat.add_file(place / rest[0], record_id=record_id)
    return cat


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.tuples(file_names, st.binary(max_size=200)), min_size=1, max_size=3),
    ops=st.lists(operations, max_size=6),
    tags=st.lists(texts, max_size=3),
)
# Bytes that sniff as media are analysed at the add, and their analyses round-trip too: an image
# that decodes (hashed), bytes that start like a JPEG, a WAV (credentials only) and an MP4.
@example(
    files=[
        ("p", TINY_PNG),
        ("a", b"\xff\xd8"),
        ("c", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20)),
        ("m", b"\x00\x00\x00\x18ftypmp42"),
    ],
    ops=[("tag", 0, ["x"])],
    tags=["t"],
)
def test_round_trip_keeps_every_record_byte_for_byte(
    files: list[tuple[str, bytes]], ops: list[tuple[Any, ...]], tags: list[str]
) -> None:
    """bagit -> import -> bagit, and jsonl (with the source catalog as --blobs) -> import ->
    bagit: every record.json is byte-identical to the first bag's, and every record equal."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with build_source(folder, files, ops, tags) as src:
            ids = src.record_ids()
            src.export(folder / "bag1", format="bagit")
            src.export(folder / "export.jsonl", format="jsonl")
            first = record_jsons(folder / "bag1")
            assert sorted(first) == sorted(ids)
            for fmt, exported, blobs in (
                ("bagit", folder / "bag1", None),
                ("jsonl", folder / "export.jsonl", src.path),
            ):
                with Catalog.init(folder / f"dst-{fmt}", operator=DEST_OPERATOR, clock=FixedClock()) as dst:
                    result = dst.import_records(exported, blobs=blobs)
                    assert result.format == fmt
                    assert sorted(result.records_added) == sorted(ids) and result.records_present == ()
                    assert dst.record_ids() == ids  # oldest first, as in the source
                    for record_id in ids:
                        assert dst.record(record_id) == src.record(record_id)
                    dst.export(folder / f"bag2-{fmt}", format="bagit")
                    assert record_jsons(folder / f"bag2-{fmt}") == first
                    assert dst.verify().ok


@pytest.mark.parametrize("fmt", ["bagit", "jsonl"])
def test_rich_records_round_trip(source: Source, tmp_path: Path, fmt: str) -> None:
    exported = {"bagit": source.bag, "jsonl": source.jsonl}[fmt]
    with Catalog.init(tmp_path / "dst", operator=DEST_OPERATOR, clock=FixedClock()) as dst:
        result = dst.import_records(exported, blobs=None if fmt == "bagit" else source.catalog.path)
        assert result.format == fmt
        assert set(result.records_added) == set(source.ids)
        assert result.artifacts_stored == 3  # the two feed records share the feed's bytes
        for record_id in source.ids:
            assert dst.record(record_id) == source.catalog.record(record_id)
        dst.export(tmp_path / "again", format="bagit")
        assert record_jsons(tmp_path / "again") == record_jsons(source.bag)
        assert dst.verify().ok


def test_a_json_export_round_trips(source: Source, tmp_path: Path) -> None:
    with Catalog.init(tmp_path / "dst", operator=DEST_OPERATOR, clock=FixedClock()) as dst:
        result = dst.import_records(source.json, blobs=source.catalog.path)
        assert result.format == "json"
        assert set(result.records_added) == set(source.ids)
        for record_id in source.ids:
            assert dst.record(record_id) == source.catalog.record(record_id)
        dst.export(tmp_path / "again", format="bagit")
        assert record_jsons(tmp_path / "again") == record_jsons(source.bag)
        assert dst.verify().ok


def test_a_selection_with_a_relation_to_a_record_left_out_imports(source: Source, tmp_path: Path) -> None:
    with Catalog.init(tmp_path / "dst", operator=DEST_OPERATOR, clock=FixedClock()) as dst:
        source.catalog.export(tmp_path / "part", format="bagit", record_ids=[source.a])
        assert dst.import_records(tmp_path / "part").records_added == (source.a,)
        assert dst.record(source.a) == source.catalog.record(source.a)
        assert dst.verify(record_event=False).ok


# -- 2. idempotence -----------------------------------------------------------------------------


def test_importing_the_same_bag_twice_adds_nothing(source: Source, dest: Catalog) -> None:
    first = dest.import_records(source.bag)
    assert set(first.records_added) == set(source.ids) and first.records_present == ()
    before = snapshot(dest)
    second = dest.import_records(source.bag)
    assert second.records_added == ()
    assert sorted(second.records_present) == sorted(source.ids)
    assert (second.artifacts_stored, second.bytes_stored) == (0, 0)
    assert snapshot(dest) == before  # no custody event, no blob
    assert dest.verify(record_event=False).ok


def test_the_jsonl_export_of_records_already_imported_from_a_bag_adds_nothing(source: Source, dest: Catalog) -> None:
    dest.import_records(source.bag)
    before = snapshot(dest)
    result = dest.import_records(source.jsonl)  # no --blobs: every artifact is here already
    assert result.records_added == () and sorted(result.records_present) == sorted(source.ids)
    assert snapshot(dest) == before


# -- 3. custody ---------------------------------------------------------------------------------


def test_each_imported_record_is_one_event_naming_the_bag_with_the_source_history(
    source: Source, dest: Catalog
) -> None:
    before = len(dest.history())
    result = dest.import_records(source.bag)
    info = bag_info(source.bag)
    assert (result.external_identifier, result.payload_oxum) == (info["External-Identifier"], info["Payload-Oxum"])
    assert len(dest.history()) == before + len(source.ids)
    for record_id in source.ids:
        events = dest.history(record_id)
        [imported] = events
        assert imported.action == "record.imported" and imported.subject == record_id
        assert imported.actor == DEST_OPERATOR
        details = imported.details
        assert details["source"]["format"] == "bagit"
        assert details["source"]["path"] == str(source.bag)
        assert details["source"]["external_identifier"] == info["External-Identifier"]
        assert details["source"]["payload_oxum"] == info["Payload-Oxum"]
        assert details["record"] == unstructure(source.catalog.record(record_id))
        original = source.catalog.history(record_id)
        assert len(original) >= 1
        assert [e["hash"] for e in details["history"]] == [e.hash for e in original]
        assert details["history"] == [to_document(e) for e in original]


def test_a_jsonl_import_event_names_the_file_and_its_digest(source: Source, dest: Catalog) -> None:
    dest.import_records(source.jsonl, blobs=source.catalog.path)
    for record_id in source.ids:
        [imported] = dest.history(record_id)
        assert imported.details["source"]["format"] == "jsonl"
        assert imported.details["source"]["path"] == str(source.jsonl)
        assert imported.details["source"]["sha256"] == sha256_of(source.jsonl)
        assert [e["hash"] for e in imported.details["history"]] == [e.hash for e in source.catalog.history(record_id)]


# -- 4. refusals --------------------------------------------------------------------------------


def _traversal(bag: Path, src: Source) -> None:
    add_manifest_line(bag, "data/../../etc/passwd")


def _absolute(bag: Path, src: Source) -> None:
    add_manifest_line(bag, "/etc/passwd")


def _drive_slash(bag: Path, src: Source) -> None:
    add_manifest_line(bag, "C:/x")


def _drive_backslash(bag: Path, src: Source) -> None:
    add_manifest_line(bag, "C:\\x")


def _backslash(bag: Path, src: Source) -> None:
    entries = read_manifest(bag)
    digest, path = entries[0]
    entries[0] = (digest, path.replace("/", "\\"))
    write_manifest(bag, entries)
    rewrite_tagmanifest(bag)


def _symlinked_artifact(bag: Path, src: Source) -> None:
    """The artifact replaced by a symlink to a file outside the bag with the very same bytes:
    every digest and the Payload-Oxum still match."""
    artifact = src.artifact_file(bag)
    outside = bag.parent / "outside.bin"
    outside.write_bytes(artifact.read_bytes())
    artifact.unlink()
    artifact.symlink_to(outside)
    reseal(bag)


def _symlinked_extra_file(bag: Path, src: Source) -> None:
    outside = bag.parent / "secret.txt"
    outside.write_text("outside the bag", encoding="utf-8")
    link = bag / "data" / "records" / src.a / "artifacts" / "secret.txt"
    link.symlink_to(outside)
    add_manifest_line(bag, f"data/records/{src.a}/artifacts/secret.txt", sha256_of(outside))
    reseal(bag)


def _symlinked_folder(bag: Path, src: Source) -> None:
    folder = bag / "data" / "records" / src.a / "artifacts"
    outside = bag.parent / "artifacts-outside"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)
    reseal(bag)


def _missing_payload(bag: Path, src: Source) -> None:
    src.artifact_file(bag).unlink()
    reseal(bag)


def _extra_payload(bag: Path, src: Source) -> None:
    (bag / "data" / "records" / src.a / "artifacts" / "extra.bin").write_bytes(b"not listed")
    reseal(bag)


def _digest_mismatch(bag: Path, src: Source) -> None:
    artifact = src.artifact_file(bag)
    data = bytearray(artifact.read_bytes())
    data[0] ^= 0x01
    write(artifact, bytes(data))


def _oxum(change: Callable[[int, int], tuple[int, int]]) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        octets, count = (int(x) for x in bag_info(bag)["Payload-Oxum"].split("."))
        octets, count = change(octets, count)
        set_info(bag, "Payload-Oxum", f"{octets}.{count}")
        rewrite_tagmanifest(bag)

    return mutate


def _bag_info_edited(bag: Path, src: Source) -> None:
    set_info(bag, "Contact-Name", "Somebody Else")  # the tag manifest is left as it was


def _record_schema(schema: str) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        edit_json(src.record_json(bag), lambda doc: doc.update(schema=schema))
        reseal(bag)

    return mutate


def _replace_text(
    relative: Callable[[Source], str], old: str, new: str, count: int = 1
) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        path = bag / relative(src)
        text = path.read_text("utf-8")
        assert re.search(old, text), (old, relative(src))
        write(path, re.sub(old, new, text, count=count))
        reseal(bag)

    return mutate


RECORD = lambda src: f"data/records/{src.a}/record.json"  # noqa: E731
CONTENTS = lambda src: "data/contents.json"  # noqa: E731


def _broken_custody_line(bag: Path, src: Source) -> None:
    edit_custody(bag, lambda lines: [*lines[:2], lines[2][: len(lines[2]) // 2], *lines[3:]])
    reseal(bag)


def _unknown_member(bag: Path, src: Source) -> None:
    edit_json(src.record_json(bag), lambda doc: doc.update(colour="red"))
    reseal(bag)


def _altered_event(bag: Path, src: Source) -> None:
    def change(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            event = json.loads(line)
            if event["action"] == "note.added":
                event["details"]["note"]["text"] = "Seen on one channel only."  # the hash is kept
                line = json.dumps(event, ensure_ascii=False)
            out.append(line)
        return out

    edit_custody(bag, change)
    reseal(bag)


def _no_bagit_txt(bag: Path, src: Source) -> None:
    (bag / "bagit.txt").unlink()


def _bagit_version_2(bag: Path, src: Source) -> None:
    write(bag / "bagit.txt", "BagIt-Version: 2.0\nTag-File-Character-Encoding: UTF-8\n")
    rewrite_tagmanifest(bag)


def _no_tagmanifest(bag: Path, src: Source) -> None:
    (bag / "tagmanifest-sha256.txt").unlink()


def _record_in_wrong_folder(bag: Path, src: Source) -> None:
    write(src.record_json(bag), src.record_json(bag, src.b).read_bytes())
    reseal(bag)


def _incomplete_log(bag: Path, src: Source) -> None:
    """One event left out of a bag that says it holds the complete log."""

    def change(lines: list[str]) -> list[str]:
        return [line for line in lines if json.loads(line)["action"] != "tags.added"]

    edit_custody(bag, change)
    edit_json(bag / "data" / "contents.json", lambda doc: doc.update(custody_events=doc["custody_events"] - 1))
    reseal(bag)


REFUSALS: list[tuple[str, Callable[[Path, Source], None], type[EvidenceError], str]] = [
    ("dot-dot path", _traversal, BagError, r"unsafe path 'data/\.\./\.\./etc/passwd'.*'\.\.'"),
    ("absolute path", _absolute, BagError, r"unsafe path '/etc/passwd': is absolute"),
    ("drive letter, slash", _drive_slash, BagError, r"unsafe path 'C:/x': is absolute"),
    ("drive letter, backslash", _drive_backslash, BagError, r"unsafe path 'C:\\\\x': is absolute"),
    ("backslash path", _backslash, BagError, r"unsafe path .*backslash"),
    ("symlinked artifact", _symlinked_artifact, BagError, r"symbolic link"),
    ("symlink to a file outside", _symlinked_extra_file, BagError, r"secret\.txt: is a symbolic link"),
    ("symlinked folder", _symlinked_folder, BagError, r"artifacts: is a symbolic link"),
    ("payload file missing", _missing_payload, BagError, r"lists 1 file\(s\) the bag does not have"),
    ("extra payload file", _extra_payload, BagError, r"does not list 1 file\(s\) the bag has.*extra\.bin"),
    ("digest mismatch", _digest_mismatch, IntegrityError, r"artifacts/.*: sha256 is [0-9a-f]{64}, the manifest says"),
    ("Payload-Oxum too small", _oxum(lambda o, n: (o - 1, n)), BagError, r"Payload-Oxum \d+\.\d+ does not match"),
    ("Payload-Oxum too few files", _oxum(lambda o, n: (o, n - 1)), BagError, r"Payload-Oxum \d+\.\d+ does not match"),
    ("Payload-Oxum more bytes", _oxum(lambda o, n: (o + 1, n)), BagError, r"declares \d+ bytes .*but holds"),
    ("Payload-Oxum more files", _oxum(lambda o, n: (o, n + 1)), BagError, r"declares .* but holds"),
    ("tagmanifest mismatch", _bag_info_edited, IntegrityError, r"bag-info\.txt: sha256 is .*the manifest says"),
    ("unknown schema", _record_schema("urn:example:schema:thing:1.0.0"), ValidationError, r"unknown schema"),
    (
        "newer schema",
        _record_schema("urn:evidence-catalog:schema:evidence-record:9.0.0"),
        ValidationError,
        r"record\.json: schema urn:evidence-catalog:schema:evidence-record:9\.0\.0 is newer",
    ),
    (
        "older schema",
        _record_schema("urn:evidence-catalog:schema:evidence-record:0.9.0"),
        ValidationError,
        r"older version",
    ),
    ("malformed record.json", _replace_text(RECORD, r"\}\s*$", ""), ValidationError, r"record\.json: malformed JSON"),
    (
        "malformed contents.json",
        _replace_text(CONTENTS, r'"records":', '"records" '),
        ValidationError,
        r"contents\.json: malformed JSON",
    ),
    ("broken custody line", _broken_custody_line, ValidationError, r"custody\.jsonl line 3: malformed JSON"),
    ("unknown member", _unknown_member, ValidationError, r"record\.json: .*colour"),
    (
        "duplicate member",
        _replace_text(RECORD, r"^\{\n", '{\n  "title": "another title",\n'),
        ValidationError,
        r"member 'title' appears twice",
    ),
    ("NaN", _replace_text(RECORD, r'"size": \d+', '"size": NaN'), ValidationError, r"NaN is not JSON"),
    ("altered custody event", _altered_event, IntegrityError, r"custody event \d+ was altered"),
    ("bagit.txt missing", _no_bagit_txt, BagError, r"bagit\.txt: is missing"),
    ("BagIt-Version 2.0", _bagit_version_2, BagError, r"BagIt-Version '2\.0' is not one this library reads"),
    ("tag manifest missing", _no_tagmanifest, BagError, r"has no tagmanifest-sha256\.txt"),
    ("record in another's folder", _record_in_wrong_folder, ValidationError, r"holds record .*, not "),
    ("custody log with a gap", _incomplete_log, IntegrityError, r"custody log is broken"),
]


@pytest.mark.parametrize(("mutate", "error", "match"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_defective_bag_is_refused_and_nothing_changes(
    source: Source,
    empty_dest: Catalog,
    loaded_dest: Catalog,
    bag: Path,
    mutate: Callable[[Path, Source], None],
    error: type[EvidenceError],
    match: str,
) -> None:
    mutate(bag, source)
    assert_refused(empty_dest, bag, error, match)  # every record would be new here
    assert_refused(loaded_dest, bag, error, match)  # the records are here, one changed since


@pytest.mark.parametrize(
    ("mutate", "error", "match"), [r[1:] for r in REFUSALS[:16]], ids=[r[0] for r in REFUSALS[:16]]
)
def test_check_bag_refuses_the_same_bag_defects(
    source: Source, bag: Path, mutate: Callable[[Path, Source], None], error: type[EvidenceError], match: str
) -> None:
    mutate(bag, source)
    with pytest.raises(error, match=match):
        check_bag(bag)


def test_the_unedited_bag_copy_and_the_helpers_leave_a_bag_that_checks(source: Source, bag: Path) -> None:
    """The editing helpers themselves change nothing when nothing was edited."""
    reseal(bag)
    assert (bag / "tagmanifest-sha256.txt").read_bytes() == (source.bag / "tagmanifest-sha256.txt").read_bytes()
    checked = check_bag(bag)
    assert f"{checked.octets}.{len(checked.files)}" == bag_info(bag)["Payload-Oxum"]


def test_a_bag_folder_that_is_a_symlink_is_refused(source: Source, dest: Catalog, tmp_path: Path) -> None:
    link = tmp_path / "link-to-bag"
    link.symlink_to(source.bag, target_is_directory=True)
    assert_refused(dest, link, InputError, r"link-to-bag")
    with pytest.raises(BagError, match="is not a bag folder"):
        check_bag(link)


def test_a_symlinked_bag_folder_is_refused_as_a_symlink(source: Source, dest: Catalog, tmp_path: Path) -> None:
    link = tmp_path / "alias"
    link.symlink_to(source.bag, target_is_directory=True)
    error = assert_refused(dest, link, InputError, r"alias")
    assert re.search(r"symbolic link|symlink|not a bag folder", error.message), error.message


def test_a_record_here_with_different_content_is_refused(source: Source, dest: Catalog) -> None:
    dest.import_records(source.bag)
    dest.add_note(source.b, "checked against the archive copy")
    error = assert_refused(
        dest, source.bag, InputError, rf"record {source.b} is in this catalog already with different"
    )
    assert str(source.b) in str(error)


def test_a_redacted_bag_that_withheld_something_is_refused(tmp_path: Path, dest: Catalog) -> None:
    with Catalog.init(tmp_path / "flagged", operator=SOURCE_OPERATOR, clock=FixedClock()) as cat:
        photo = tmp_path / "body.jpg"
        photo.write_bytes(b"\xff\xd8 graphic")
        [added] = cat.add([photo], analyze=False)  # one artifact withheld, no analysis made from it
        cat.flag(added.record_id, "graphic", "shows the dead")
        result = cat.export(tmp_path / "redacted", format="bagit", redact=True)
        assert result.withheld_artifacts == 1
    assert_refused(dest, tmp_path / "redacted", InputError, r"is a redacted bag \(1 artifact\(s\) and 0 field")


def test_a_redacted_bag_that_withheld_nothing_imports(tmp_path: Path, dest: Catalog) -> None:
    with Catalog.init(tmp_path / "plain", operator=SOURCE_OPERATOR, clock=FixedClock()) as cat:
        photo = tmp_path / "street.jpg"
        photo.write_bytes(b"\xff\xd8 a street")
        [added] = cat.add([photo], analyze=False)
        other = tmp_path / "other.jpg"
        other.write_bytes(b"\xff\xd8 another street")
        [flagged] = cat.add([other], analyze=False)
        cat.flag(flagged.record_id, "graphic", "shows the dead")
        cat.export(tmp_path / "redacted-none", format="bagit", redact=True, record_ids=[added.record_id])
        cat.export(tmp_path / "redacted-kind", format="bagit", redact=["minors"])  # no flag of that kind
        expected = {r: cat.record(r) for r in cat.record_ids()}
    result = dest.import_records(tmp_path / "redacted-none")
    assert result.records_added == (added.record_id,)
    result = dest.import_records(tmp_path / "redacted-kind")
    assert result.records_added == (flagged.record_id,) and result.records_present == (added.record_id,)
    for record_id, record in expected.items():
        assert dest.record(record_id) == record
    assert dest.verify(record_event=False).ok


def test_a_bag_given_blobs_is_refused(source: Source, dest: Catalog) -> None:
    assert_refused(dest, source.bag, InputError, r"; blobs is for JSON", blobs=source.catalog.path)


def test_a_missing_source_is_refused(dest: Catalog, tmp_path: Path) -> None:
    assert_refused(dest, tmp_path / "nothing-here", InputError, r"nothing-here: no such file")


# JSON and JSON Lines exports carry no files.

JSON_FORMATS = [
    "jsonl",
    "json",
]


@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_a_file_export_without_blobs_for_absent_artifacts_is_refused(source: Source, dest: Catalog, fmt: str) -> None:
    exported = {"jsonl": source.jsonl, "json": source.json}[fmt]
    assert_refused(dest, exported, InputError, r"artifact [0-9a-f]{64} is neither in this catalog nor in the files")


@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_a_file_export_with_a_tampered_blob_folder_is_refused(
    source: Source, dest: Catalog, tmp_path: Path, fmt: str
) -> None:
    exported = {"jsonl": source.jsonl, "json": source.json}[fmt]
    blobs = tmp_path / "blobs-copy"
    shutil.copytree(source.catalog.path / "blobs", blobs)
    sha = source.catalog.record(source.a).artifacts[0].artifact.sha256
    blob = blobs / "sha256" / sha[:2] / sha[2:4] / sha
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x20
    write(blob, bytes(data))
    error = assert_refused(dest, exported, IntegrityError, rf"not artifact {sha}", blobs=blobs)
    assert str(blob) in str(error)


def test_a_blob_folder_that_is_no_blob_folder_is_refused(source: Source, dest: Catalog, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_refused(dest, source.jsonl, InputError, r"is not a catalog or a blob folder", blobs=tmp_path / "empty")


def test_a_jsonl_export_with_an_altered_event_is_refused(source: Source, dest: Catalog, tmp_path: Path) -> None:
    lines = source.jsonl.read_text("utf-8").splitlines()
    out = []
    for line in lines:
        document = json.loads(line)
        if document.get("action") == "claim.added":
            document["details"]["claim"]["summary"] = "Something else"
            line = json.dumps(document, ensure_ascii=False)
        out.append(line)
    altered = tmp_path / "altered.jsonl"
    altered.write_text("\n".join(out) + "\n", encoding="utf-8")
    assert_refused(dest, altered, IntegrityError, r"custody event \d+ was altered", blobs=source.catalog.path)


# -- 5. the command line ------------------------------------------------------------------------


def _closed_dest(tmp_path: Path) -> Path:
    with Catalog.init(tmp_path / "cli-dest", operator=DEST_OPERATOR, clock=FixedClock()):
        pass
    return tmp_path / "cli-dest"


def assert_cli_refusal(result: CliResult, fragment: str) -> None:
    assert result.code != 0, (result.out, result.err)
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert fragment in result.err, result.err
    assert "Traceback" not in result.err and result.out == ""


def test_cli_import_prints_one_summary_line(source: Source, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    catalog = _closed_dest(tmp_path)
    result = run_cli("import", source.bag, "--catalog", catalog)
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1, result.out
    n = len(source.ids)
    assert result.out.startswith(f"imported {n} record(s) (0 already here); 3 artifact(s) stored, 0 already stored")
    assert bag_info(source.bag)["External-Identifier"] in result.out
    assert "Traceback" not in result.err
    again = run_cli("import", source.bag, "--catalog", catalog)
    assert again.code == 0 and again.out.startswith(f"imported 0 record(s) ({n} already here)")
    jsonl = run_cli("import", source.jsonl, "--catalog", catalog)
    assert jsonl.code == 0 and jsonl.out.count("\n") == 1
    with Catalog.open(catalog) as cat:
        assert set(cat.record_ids()) == set(source.ids)
        assert cat.verify(record_event=False).ok


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (_traversal, "unsafe path"),
        (_digest_mismatch, "the manifest says"),
        (_record_schema("urn:evidence-catalog:schema:evidence-record:9.0.0"), "is newer"),
        (_altered_event, "was altered"),
    ],
    ids=["traversal", "digest", "newer schema", "altered event"],
)
def test_cli_refuses_with_one_error_line(
    source: Source,
    bag: Path,
    tmp_path: Path,
    run_cli: Callable[..., CliResult],
    mutate: Callable[[Path, Source], None],
    fragment: str,
) -> None:
    catalog = _closed_dest(tmp_path)
    mutate(bag, source)
    result = run_cli("import", bag, "--catalog", catalog)
    assert_cli_refusal(result, fragment)
    with Catalog.open(catalog) as cat:
        assert cat.record_ids() == [] and [e.action for e in cat.history()] == ["catalog.created"]


def test_cli_json_export_without_blobs_is_one_error_line(
    source: Source, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    catalog = _closed_dest(tmp_path)
    result = run_cli("import", source.jsonl, "--catalog", catalog)
    assert_cli_refusal(result, "--blobs")
    assert result.code == 2


# -- 6. hostile input ---------------------------------------------------------------------------


def _contents(document: Any) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        write(bag / "data" / "contents.json", json.dumps(document))
        reseal(bag)

    return mutate


def _contents_redaction(redaction: Any) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        edit_json(bag / "data" / "contents.json", lambda doc: doc.update(redaction=redaction))
        reseal(bag)

    return mutate


def _record_bytes(data: bytes) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        write(src.record_json(bag), data)
        reseal(bag)

    return mutate


def _record_document(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        document = json.loads(src.record_json(bag).read_text("utf-8"))
        write(src.record_json(bag), json.dumps(change(document)))
        reseal(bag)

    return mutate


def _custody_line(text: str) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        edit_custody(bag, lambda lines: [*lines[:1], text, *lines[1:]])
        reseal(bag)

    return mutate


def _bag_info_text(text: str) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        write(bag / "bag-info.txt", text)
        rewrite_tagmanifest(bag)

    return mutate


def _manifest_text(text: str) -> Callable[[Path, Source], None]:
    def mutate(bag: Path, src: Source) -> None:
        write(bag / "manifest-sha256.txt", text)
        rewrite_tagmanifest(bag)

    return mutate


HOSTILE: list[tuple[str, Callable[[Path, Source], None] | None]] = [
    ("empty record.json", _record_bytes(b"")),
    ("record.json not UTF-8", _record_bytes(b'{"schema": "\xff"}')),
    ("record.json a list", _record_bytes(b"[]")),
    ("record.json a string", _record_bytes(b'"record"')),
    ("record.json null", _record_bytes(b"null")),
    ("record.json deeply nested", _record_bytes(b"[" * 100_000 + b"]" * 100_000)),
    ("record.json schema only", _record_bytes(json.dumps({"schema": RECORD_SCHEMA}).encode())),
    ("record.json schema a number", _record_document(lambda d: d | {"schema": 7})),
    ("record.json id a number", _record_document(lambda d: d | {"id": 7})),
    ("record.json artifacts an object", _record_document(lambda d: d | {"artifacts": {"a": 1}})),
    ("record.json artifact null", _record_document(lambda d: d | {"artifacts": [None]})),
    ("record.json huge size", None),
    ("record.json negative size", _record_document(lambda d: _set_size(d, -1))),
    ("record.json size a string", _record_document(lambda d: _set_size(d, "5"))),
    ("record.json tags a string", _record_document(lambda d: d | {"tags": "x"})),
    ("contents.json a list", _contents([])),
    ("contents.json null", _contents(None)),
    ("contents.json schema only", _contents({"schema": "urn:evidence-catalog:schema:bag-contents:1.0.0"})),
    ("redaction a list", _contents_redaction([])),
    ("redaction a string", _contents_redaction("all")),
    ("redaction lists null", _contents_redaction({"withheld_artifacts": None, "withheld_fields": None})),
    ("redaction counts as numbers", None),
    ("redaction fields a number", None),
    ("custody line null", _custody_line("null")),
    ("custody line a list", _custody_line("[]")),
    ("custody line a number", _custody_line("42")),
    ("custody line a string", _custody_line('"event"')),
    ("custody line an empty object", _custody_line("{}")),
    ("custody line Infinity", _custody_line('{"seq": Infinity}')),
    ("bag-info.txt continuation first", _bag_info_text(" continued\n")),
    ("bag-info.txt no colon", _bag_info_text("Payload-Oxum 1.1\n")),
    ("bag-info.txt Payload-Oxum text", _bag_info_text("Payload-Oxum: many\n")),
    ("bag-info.txt no Payload-Oxum", _bag_info_text("Contact-Name: x\n")),
    ("manifest line without a path", _manifest_text("abc\n")),
    ("manifest short digest", _manifest_text("abc  data/contents.json\n")),
    ("manifest empty", _manifest_text("")),
    ("manifest path listed twice", lambda bag, src: write_manifest(bag, [*read_manifest(bag), read_manifest(bag)[0]])),
]


def _set_size(document: dict[str, Any], size: Any) -> dict[str, Any]:
    document["artifacts"][0]["artifact"]["size"] = size
    return document


HOSTILE_WITH_IDS = {
    "record.json huge size": pytest.param(
        _record_document(lambda d: _set_size(d, 10**30)),
        id="record.json huge size",
    ),
    "redaction counts as numbers": pytest.param(
        _contents_redaction({"withheld_artifacts": 5, "withheld_fields": 0}),
        id="redaction counts as numbers",
    ),
    "redaction fields a number": pytest.param(
        _contents_redaction({"withheld_artifacts": [], "withheld_fields": 3}),
        id="redaction fields a number",
    ),
}


@pytest.mark.parametrize(
    "mutate", [HOSTILE_WITH_IDS[name] if mutate is None else pytest.param(mutate, id=name) for name, mutate in HOSTILE]
)
def test_hostile_bags_are_refused_cleanly(
    source: Source, empty_dest: Catalog, bag: Path, mutate: Callable[[Path, Source], None]
) -> None:
    dest = empty_dest
    mutate(bag, source)
    before = snapshot(dest)
    with pytest.raises(EvidenceError) as raised:  # never a TypeError, KeyError, AttributeError ...
        dest.import_records(bag)
    assert isinstance(raised.value, InputError | ValidationError | IntegrityError), repr(raised.value)
    assert str(raised.value).strip()
    assert snapshot(dest) == before
    assert dest.verify(record_event=False).ok


HOSTILE_LINES = [
    ("null", b"null\n"),
    ("a list", b"[]\n"),
    ("a number", b"42\n"),
    ("not UTF-8", b'{"id": "\xff"}\n'),
    ("NaN", b'{"schema": NaN}\n'),
    ("duplicate member", b'{"schema": "a", "schema": "b"}\n'),
    ("an event without a hash", b'{"schema": "urn:evidence-catalog:schema:custody-event:1.0.0", "seq": 1}\n'),
]


@pytest.mark.parametrize("data", [h[1] for h in HOSTILE_LINES], ids=[h[0] for h in HOSTILE_LINES])
def test_hostile_jsonl_is_refused_cleanly(source: Source, empty_dest: Catalog, tmp_path: Path, data: bytes) -> None:
    dest = empty_dest
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(source.jsonl.read_bytes() + data)
    before = snapshot(dest)
    with pytest.raises(EvidenceError) as raised:
        dest.import_records(path, blobs=source.catalog.path)
    assert isinstance(raised.value, InputError | ValidationError | IntegrityError), repr(raised.value)
    assert snapshot(dest) == before
    path.write_bytes(data)
    with pytest.raises(EvidenceError):
        dest.import_records(path, blobs=source.catalog.path)
    assert snapshot(dest) == before


@pytest.mark.parametrize(
    "document",
    [[], None, 5, "x", {"schema": "urn:evidence-catalog:schema:export:2.0.0"}, {"records": 5, "custody_events": []}],
    ids=["list", "null", "number", "string", "schema only", "records a number"],
)
def test_hostile_json_documents_are_refused_cleanly(
    source: Source, empty_dest: Catalog, tmp_path: Path, document: Any
) -> None:
    dest = empty_dest
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    before = snapshot(dest)
    with pytest.raises(EvidenceError) as raised:
        dest.import_records(path)
    assert isinstance(raised.value, InputError | ValidationError | IntegrityError), repr(raised.value)
    assert snapshot(dest) == before


def test_an_empty_jsonl_file_is_refused(empty_dest: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n \n")
    assert_refused(empty_dest, path, InputError, r"empty\.jsonl: is empty")


def _jsonl_with_size(source: Source, tmp_path: Path, size: int) -> Path:
    lines = []
    for line in source.jsonl.read_text("utf-8").splitlines():
        document = json.loads(line)
        if document.get("id") == source.a:
            _set_size(document, size)
        lines.append(json.dumps(document, ensure_ascii=False))
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_jsonl_record_with_an_integer_beyond_json_range_is_refused_cleanly(
    source: Source, empty_dest: Catalog, tmp_path: Path
) -> None:
    path = _jsonl_with_size(source, tmp_path, 2**64)
    assert_refused(empty_dest, path, ValidationError, r"", blobs=source.catalog.path)


def test_cli_refuses_a_record_with_an_integer_beyond_json_range_with_one_error_line(
    source: Source, bag: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    catalog = _closed_dest(tmp_path)
    _record_document(lambda d: _set_size(d, 2**64))(bag, source)
    result = run_cli("import", bag, "--catalog", catalog)
    assert_cli_refusal(result, "record.json")


def _note_of_a_on_b(bag: Path, src: Source) -> None:
    """Record b's record.json also lists record a's note (same part id): each document is valid."""
    [note] = json.loads(src.record_json(bag).read_text("utf-8"))["notes"]
    edit_json(src.record_json(bag, src.b), lambda doc: doc["notes"].append(note))
    reseal(bag)


def test_a_part_id_on_two_records_is_refused_as_an_evidence_error(source: Source, dest: Catalog, bag: Path) -> None:
    _note_of_a_on_b(bag, source)
    with pytest.raises(Exception) as raised:
        dest.import_records(bag)
    assert isinstance(raised.value, EvidenceError), repr(raised.value)


def test_a_part_id_on_two_records_leaves_the_destination_unchanged(source: Source, dest: Catalog, bag: Path) -> None:
    _note_of_a_on_b(bag, source)
    before = snapshot(dest)
    with pytest.raises(Exception):  # noqa: B017 - its type is the other test's concern
        dest.import_records(bag)
    assert snapshot(dest) == before
    assert dest.verify(record_event=False).ok


def test_records_describing_a_shared_artifact_differently_are_refused(source: Source, dest: Catalog, bag: Path) -> None:
    first, second = source.feed
    shared = {e.artifact.sha256 for e in source.catalog.record(first).artifacts}
    assert shared & {e.artifact.sha256 for e in source.catalog.record(second).artifacts}

    def change(document: dict[str, Any]) -> None:
        for entry in document["artifacts"]:
            if entry["artifact"]["digests"]["sha256"] in shared:
                entry["artifact"]["media_type"] = "text/html"

    edit_json(source.record_json(bag, second), change)
    reseal(bag)
    assert_refused(dest, bag, EvidenceError, r"")


def test_a_symlinked_blob_in_the_blob_folder_is_not_used(source: Source, dest: Catalog, tmp_path: Path) -> None:
    """A blob folder whose blob is a symlink (to the right bytes) is not used."""
    blobs = tmp_path / "blobs-links"
    shutil.copytree(source.catalog.path / "blobs", blobs)
    sha = source.catalog.record(source.a).artifacts[0].artifact.sha256
    blob = blobs / "sha256" / sha[:2] / sha[2:4] / sha
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(blob.read_bytes())
    blob.chmod(0o644)
    blob.unlink()
    blob.symlink_to(target)
    assert_refused(dest, source.jsonl, InputError, rf"artifact {sha} is neither", blobs=blobs)


# -- 4. batches of one transaction ---------------------------------------------------------------


def _imported_log(catalog: Catalog) -> list[tuple[str, str, Any]]:
    """What an import wrote to the log: each event's action, subject and details (the salts
    and hashes aside, which differ from one run to the next)."""
    return [
        (e.action, e.subject, {k: v for k, v in e.details.items() if k != "salt"})
        for e in catalog.history()
        if e.action in ("record.imported", "tags.added")
    ]


@pytest.mark.parametrize(("fmt", "batch"), [("bagit", 1), ("bagit", 3), ("jsonl", 1), ("jsonl", 3)])
def test_records_are_written_in_batches_with_the_events_and_rows_of_one_import(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, batch: int
) -> None:
    """Written a few records at a time (what the import holds in memory at once), the catalog
    is what one batch makes: the same records, the same events in the same order (a JSON Lines
    export of a selection is unsigned: each record's ``tags.added`` event follows its import)."""
    from evidence_catalog.operations import importing

    exported = source.bag if fmt == "bagit" else tmp_path / "part.jsonl"
    if fmt == "jsonl":
        source.catalog.export(exported, format="jsonl", record_ids=source.ids)  # a selection: unsigned
    kwargs: dict[str, Any] = {} if fmt == "bagit" else {"blobs": source.catalog.path, "accept_unsigned": True}
    with Catalog.init(tmp_path / "whole", operator=DEST_OPERATOR, clock=FixedClock()) as whole:
        whole.import_records(exported, **kwargs)
        expected = _imported_log(whole), [whole.record(i) for i in source.ids]
        assert whole.verify().ok
    sizes: list[int] = []
    batch_of = importing._insert_batch

    def counted(ctx: Any, session: Any, items: Any, *args: Any, **kw: Any) -> None:
        sizes.append(len(items))
        batch_of(ctx, session, items, *args, **kw)

    monkeypatch.setattr(importing, "INSERT_BATCH", batch)
    monkeypatch.setattr(importing, "_insert_batch", counted)
    with Catalog.init(tmp_path / "batched", operator=DEST_OPERATOR, clock=FixedClock()) as batched:
        result = batched.import_records(exported, **kwargs)
        assert sorted(result.records_added) == sorted(source.ids)
        n = len(source.ids)
        assert sizes == [batch] * (n // batch) + ([n % batch] if n % batch else [])
        assert (_imported_log(batched), [batched.record(i) for i in source.ids]) == expected
        if fmt == "jsonl":
            assert all("provenance:unsigned" in batched.record(i).tags for i in source.ids)
        assert batched.verify().ok


def test_a_failure_in_a_later_batch_leaves_nothing_of_the_earlier_ones(
    source: Source, dest: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing across batches: they are one transaction, and the blobs stored for it go
    when it fails."""
    from evidence_catalog.operations import importing

    batch_of = importing._insert_batch
    calls: list[int] = []

    def failing(ctx: Any, session: Any, items: Any, *args: Any, **kw: Any) -> None:
        calls.append(len(items))
        if len(calls) == 2:
            raise OSError("the disk went away")
        batch_of(ctx, session, items, *args, **kw)

    monkeypatch.setattr(importing, "INSERT_BATCH", 2)
    monkeypatch.setattr(importing, "_insert_batch", failing)
    before = snapshot(dest)
    with pytest.raises(OSError, match="the disk went away"):
        dest.import_records(source.bag)
    assert calls == [2, 2]
    assert snapshot(dest) == before
    assert dest.verify(record_event=False).ok
    monkeypatch.setattr(importing, "_insert_batch", batch_of)
    assert sorted(dest.import_records(source.bag).records_added) == sorted(source.ids)  # and it completes
    assert dest.verify(record_event=False).ok


# -- 5. a bag's files read while its records are -----------------------------------------------


def test_a_file_whose_bytes_another_file_stored_early_is_not_read_again(
    source: Source, dest: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files of a bag with the same bytes, read early: when the first is stored before the
    second's read begins, the second is only checked against its manifests, and its record's
    check takes the first's stored read; nothing is read twice (it was, seen on a loaded
    machine)."""
    from concurrent.futures import Future

    from evidence_catalog.operations import importing_files

    class AtOnce:  # a pool that runs each job as it is submitted: the first file is stored first
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def submit(self, function: Any, *args: Any) -> Future[Any]:
            done: Future[Any] = Future()
            try:
                done.set_result(function(*args))
            except BaseException as exc:  # noqa: BLE001 -- given to the caller, as a pool does
                done.set_exception(exc)
            return done

        def shutdown(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> AtOnce:
            return self

        def __exit__(self, *args: object) -> None:
            pass

    monkeypatch.setattr(importing_files, "EARLY_READ_BYTES", 0)
    monkeypatch.setattr(importing_files, "ThreadPoolExecutor", AtOnce)
    reads: list[str] = []
    store_file, check_file = importing_files._store_file, importing_files.check_payload_file

    def stored(ctx: Any, path: Path, name: str, *args: Any) -> Any:
        reads.append(name)
        return store_file(ctx, path, name, *args)

    def checked(name: str, *args: Any, **kw: Any) -> None:
        reads.append(name)
        check_file(name, *args, **kw)

    monkeypatch.setattr(importing_files, "_store_file", stored)
    monkeypatch.setattr(importing_files, "check_payload_file", checked)
    dest.import_records(source.bag)
    artifact_files = sorted(name for _, name in read_manifest(source.bag) if "/artifacts/" in name)
    names = [name.rsplit("/", 1)[-1] for name in artifact_files]
    assert len(names) > len(set(names))  # the bag holds the same file twice (the feed, on two records)
    assert sorted(reads) == artifact_files  # each once
    assert dest.verify().ok


@pytest.mark.parametrize("early_bytes", [0, 10**9])
def test_a_bags_files_are_read_once_and_the_large_ones_before_its_records_are_read(
    source: Source, dest: Catalog, monkeypatch: pytest.MonkeyPatch, early_bytes: int
) -> None:
    """The importer starts reading the large artifact files once the bag's layout and tag files
    are checked (its records not yet read), the others after the records; it reads each file
    once: stored and checked against its manifests then, against what its record says once
    the records are read."""
    from evidence_catalog.interchange import importing as reading
    from evidence_catalog.operations import importing_files

    monkeypatch.setattr(importing_files, "EARLY_READ_BYTES", early_bytes)
    order: list[str] = []
    reads: list[str] = []
    record_from = reading.record_from
    start = importing_files.EarlyFiles.start
    # Every read of a file is one of these:
    store_file, check_file = importing_files._store_file, importing_files.check_payload_file

    def recording(document: Any, where: str) -> model.EvidenceRecord:
        order.append("record")
        return record_from(document, where)

    def starting(self: importing_files.EarlyFiles, files: Any) -> None:
        order.append("files")
        start(self, files)

    def stored(ctx: Any, path: Path, name: str, *args: Any) -> Any:
        reads.append(name)
        order.append("file")
        return store_file(ctx, path, name, *args)

    def checked(name: str, *args: Any, **kw: Any) -> None:
        reads.append(name)
        order.append("file")
        check_file(name, *args, **kw)

    monkeypatch.setattr(reading, "record_from", recording)
    monkeypatch.setattr(importing_files.EarlyFiles, "start", starting)
    monkeypatch.setattr(importing_files, "_store_file", stored)
    monkeypatch.setattr(importing_files, "check_payload_file", checked)
    result = dest.import_records(source.bag)
    artifact_files = sorted(name for _, name in read_manifest(source.bag) if "/artifacts/" in name)
    assert sorted(reads) == artifact_files  # each once
    assert order[0] == "files" and order.count("files") == 1 and order.count("record") == len(source.ids)
    first_record = order.index("record")
    if early_bytes == 0:  # every file is large: all are read while the records are (started first)
        assert order.count("file") == len(artifact_files) and "file" in order[: first_record + 1]
    else:  # none is: each is read after every record is
        assert "file" not in order[: order.index("record") + len(source.ids)]
    assert result.artifacts_stored == 3 and sorted(result.records_added) == sorted(source.ids)
    assert dest.verify(record_event=False).ok


def test_a_described_artifact_whose_bytes_are_gone_is_stored_from_the_bag(source: Source, tmp_path: Path) -> None:
    """Bytes this catalog describes but no longer holds are not read early (they are not taken
    for a new artifact's): stored once a new record is found to need them, as before."""
    shared = source.catalog.record(source.a).artifacts[0].artifact
    with Catalog.init(tmp_path / "dst", operator=DEST_OPERATOR, clock=FixedClock()) as dst:
        same = tmp_path / "same.bin"
        with source.catalog.open_artifact(shared.sha256) as stream:
            same.write_bytes(stream.read())
        dst.add([same], analyze=False)
        blob = dst.path / "blobs" / "sha256" / shared.sha256[:2] / shared.sha256[2:4] / shared.sha256
        blob.chmod(0o644)
        blob.unlink()
        result = dst.import_records(source.bag)
        assert source.a in result.records_added and result.artifacts_stored == 3
        assert blob.is_file()
        assert dst.verify(record_event=False).ok


# -- analysed records ---------------------------------------------------------------------------


@attrs.frozen
class Analysed:
    """A catalog whose photo and video were analysed as they were added, its exports, and a
    near duplicate of the photo (smaller, compressed again) made outside it."""

    catalog: Catalog
    photo: str  # record id
    video: str
    exports: dict[str, Path]
    near_duplicate: Path


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Analysed]:
    from .test_media import make_video
    from .test_perceptual import picture

    root = tmp_path_factory.mktemp("analysed")
    image = picture(7)
    photo = root / "quay.jpg"
    image.save(photo, "JPEG", quality=95)
    image.resize((160, 120)).save(root / "repost.jpg", "JPEG", quality=60)
    with Catalog.init(root / "catalog", operator=SOURCE_OPERATOR, clock=FixedClock()) as cat:
        [still] = cat.add([photo])
        [clip] = cat.add([make_video(root / "clip.mp4", size=(160, 120), frames=50)])
        for record_id in (still.record_id, clip.record_id):
            assert len(cat.analyses(record_id)) == 1
        exports = {"bagit": root / "bag", "jsonl": root / "export.jsonl", "json": root / "export.json"}
        for fmt, path in exports.items():
            cat.export(path, format=fmt)  # type: ignore[arg-type]
        yield Analysed(cat, still.record_id, clip.record_id, exports, root / "repost.jpg")


@pytest.mark.parametrize("fmt", ["bagit", "jsonl", "json"])
def test_an_analysed_export_imports_with_its_hashes_in_the_similarity_index(
    analysed: Analysed, tmp_path: Path, fmt: str
) -> None:
    """Import writes the imported analyses' hashes into the similarity index with the records:
    a near duplicate here finds the imported photo, and a deep verification is clean (the index
    is row for row what the imported documents hold, every analysis made again matches)."""
    with Catalog.init(tmp_path / "dst", operator=DEST_OPERATOR, clock=FixedClock()) as dst:
        [repost] = dst.add([analysed.near_duplicate])
        result = dst.import_records(analysed.exports[fmt], blobs=None if fmt == "bagit" else analysed.catalog.path)
        assert set(result.records_added) == {analysed.photo, analysed.video}
        for record_id in (analysed.photo, analysed.video):
            assert dst.record(record_id) == analysed.catalog.record(record_id)
            [(_, imported)] = dst.analyses(record_id)
            [(_, original)] = analysed.catalog.analyses(record_id)
            assert imported == original and imported is not None and imported.hashes
        assert analysed.photo in [m.record_id for m in dst.similar(repost.sha256)]
        assert repost.record_id in [m.record_id for m in dst.similar(analysed.photo)]
        report = dst.verify(deep=True)
        assert report.ok, report.findings
        assert not [f for f in report.findings if f.kind == "hash_index_mismatch"]
        assert report.analyses_rechecked == 3  # the two imported and the near duplicate's own


def test_an_export_whose_analysis_names_artifacts_its_record_lacks_is_refused(
    tmp_path: Path, dest: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analysis document that does not agree with its record (here, written with the
    library's own functions by someone with write access, naming a contact sheet the record does
    not hold) is refused at import: ``verify`` would report it at once."""
    from evidence_catalog.operations import analyzing

    from .test_analyze import picture

    real = analyzing.with_digests

    def forged(*args: Any, **kwargs: Any) -> Any:
        return attrs.evolve(real(*args, **kwargs), contact_sheet_sha256="ab" * 32)

    with Catalog.init(tmp_path / "forged", operator=SOURCE_OPERATOR, clock=FixedClock()) as cat:
        monkeypatch.setattr(analyzing, "with_digests", forged)
        [added] = cat.add([picture(tmp_path / "a.jpg")])
        monkeypatch.undo()
        assert "analysis_unreadable" in [f.kind for f in cat.verify().findings]
        bag = cat.export(tmp_path / "bag", format="bagit").path
    assert_refused(
        dest, bag, InputError, rf"analysis \w+ names derived artifacts the record does not hold: {'ab' * 32}"
    )
    assert added.record_id not in dest.record_ids()


@pytest.mark.parametrize(
    "document",
    [b"[" * 100_000 + b"]" * 100_000, b"[1, 2]", b'{"schema": "urn:evidence-catalog:schema:media-analysis:1.0.0"}'],
    ids=["nested too deep", "not an object", "not an analysis"],
)
def test_an_export_whose_analysis_document_is_not_one_is_refused_and_verify_says_so(
    tmp_path: Path, dest: Catalog, monkeypatch: pytest.MonkeyPatch, document: bytes
) -> None:
    """A document logged as an analysis that is not one (written with the library's own
    functions by someone with write access): ``verify`` reports it, it does not fail on it; an
    import refuses it with an error that names it."""
    from evidence_catalog.operations import analyzing

    from .test_analyze import picture

    with Catalog.init(tmp_path / "forged", operator=SOURCE_OPERATOR, clock=FixedClock()) as cat:
        monkeypatch.setattr(analyzing, "canonical_json", lambda _: document)
        [added] = cat.add([picture(tmp_path / "a.jpg")])
        monkeypatch.undo()
        assert added.sha256
        report = cat.verify(deep=True)
        assert "analysis_unreadable" in [f.kind for f in report.findings]
        bag = cat.export(tmp_path / "bag", format="bagit").path
    assert_refused(dest, bag, InputError, r"is not readable as the analysis of \w+ the record says it is")


def test_a_damaged_copy_no_record_holds_is_replaced_not_trusted(source: Source, dest: Catalog, bag: Path) -> None:
    # An import killed before its records were written can leave the bytes it stored, which
    # the store may damage since: the next import must not count such a copy as the catalog's
    # bytes (its records would name bytes the catalog does not have).  It stores the bag's
    # bytes, and the damaged copy is moved aside, not deleted.
    record = next(r for r in source.catalog.records() if r.artifacts)
    sha = record.artifacts[0].artifact.sha256
    stored = dest.path / "blobs" / "sha256" / sha[:2] / sha[2:4] / sha
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(b"damaged since")
    dest.import_records(bag)
    assert sha256_of(stored) == sha
    assert [p.name.split(".")[0] for p in (dest.path / "blobs" / "quarantine").iterdir()] == [sha]
    report = dest.verify(record_event=False, remember=False, workers=1)
    assert report.ok, [str(f) for f in report.findings]
