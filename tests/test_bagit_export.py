"""BagIt export (``Catalog.export(format="bagit")`` and ``evidence-catalog export --format bagit``),
checked with independent tools: bagit-python and the coreutils ``sha256sum``/``sha512sum``.

Everything here is real: catalogs in temporary directories, files written to disk (JPEG and PNG
made by Pillow, text), bags on disk.  A bag must validate whatever was chosen (one record, some,
a tag, everything), any change to it must be noticed, its ``bag-info.txt`` and JSON documents
must say what the docs promise, the export must be a custody event, and a failed export must
leave nothing behind.  File names inside the bag are checked by property tests, on their own and
on a real file system.

Property tests that touch the disk make a fresh catalog per example (function-scoped fixtures
are not reset between Hypothesis examples).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import re
import stat
import subprocess
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import bagit  # type: ignore[import-untyped]
import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from evidence_catalog import Agent, Catalog, __version__
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, NotFoundError
from evidence_catalog.interchange.bag import BagError, check_bag
from evidence_catalog.interchange.names import MAX_NAME_BYTES, name_key, portable_name, unique_names
from evidence_catalog.schema_files import load_schema
from evidence_catalog.serialize import to_document

from .conftest import CliResult, FixedClock, make_jpeg

RECORD_SCHEMA = jsonschema.Draft202012Validator(load_schema("evidence-record"))
CONTENTS_SCHEMA = jsonschema.Draft202012Validator(load_schema("bag-contents"))
EVENT_SCHEMA = jsonschema.Draft202012Validator(load_schema("custody-event"))
CLI_BINARY = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "evidence-catalog"
#: The longest name unique_names may make (portable names are at most MAX_NAME_BYTES; a
#: distinguishing suffix may add some).
UNIQUE_NAME_LIMIT = 200
#: Names Windows reserves (with or without an extension).
WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in "123456789¹²³"}
WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
DIGEST = (
    "Harbour Monitor (Twitter)\n"
    "Two men in uniform shot after surrendering near the depot.\n"
    "Two men in uniform shot after surrendering near the depot.\n"
    "Records Desk (Telegram)\n"
    "Another angle of the depot, filmed from the road.\n"
    "Another angle of the depot, filmed from the road.\n"
)


# -- helpers ----------------------------------------------------------------------------------


def png_bytes(colour: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


@attrs.frozen
class Populated:
    """Three records: *school* (a JPEG and a text file, tagged school), *yard* (a PNG, tagged
    school) and *hospital* (a text file, tagged hospital)."""

    catalog: Catalog
    school: str
    yard: str
    hospital: str

    @property
    def all(self) -> list[str]:
        return [self.school, self.yard, self.hospital]


def populate(catalog: Catalog, folder: Path) -> Populated:
    photo = write(folder / "in" / "school.jpg", make_jpeg())
    statement = write(folder / "in" / "statement.txt", "Свидетель: «школа» — 5 March\n")
    yard = write(folder / "in" / "yard.png", png_bytes())
    report = write(folder / "in" / "hospital report.txt", "Ward 3 hit at 04:10.\n")
    # The pictures are not analysed: these records are about the bag's layout (analysed records: below).
    [school] = catalog.add([photo], tags=["school"], note="from a witness", analyze=False)
    catalog.add([statement], record_id=school.record_id)
    [yard_added] = catalog.add([yard], tags=["school"], analyze=False)
    [hospital] = catalog.add([report], tags=["hospital"])
    return Populated(catalog, school.record_id, yard_added.record_id, hospital.record_id)


@pytest.fixture
def populated(catalog: Catalog, tmp_path: Path) -> Populated:
    return populate(catalog, tmp_path)


@contextmanager
def fresh_catalog(operator: Agent | None = None) -> Iterator[tuple[Catalog, Path]]:
    """A new catalog in a new temporary folder (for property tests: one per example)."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        agent = operator or Agent(name="Prop Analyst", email="prop@example.org", host="prop-host")
        with Catalog.init(base / "catalog", operator=agent, clock=FixedClock()) as catalog:
            yield catalog, base


def run_sum(tool: str, manifest: str, bag: Path) -> subprocess.CompletedProcess[str]:
    """``sha256sum -c`` (or another coreutils checker) run from inside the bag, as a recipient would."""
    return subprocess.run(
        [tool, "--check", "--strict", manifest], cwd=bag, capture_output=True, text=True, timeout=60, check=False
    )


def assert_valid_bag(bag: Path, *, sha512: bool = False) -> bagit.Bag:
    """The bag passes bagit-python, the coreutils checkers and the library's own check."""
    loaded = bagit.Bag(str(bag))
    loaded.validate()  # raises BagValidationError otherwise
    assert loaded.is_valid()
    for manifest in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
        done = run_sum("sha256sum", manifest, bag)
        assert done.returncode == 0, (manifest, done.stdout, done.stderr)
    if sha512:
        assert set(loaded.algorithms) == {"sha256", "sha512"}
        for manifest in ("manifest-sha512.txt", "tagmanifest-sha512.txt"):
            done = run_sum("sha512sum", manifest, bag)
            assert done.returncode == 0, (manifest, done.stdout, done.stderr)
    else:
        assert loaded.algorithms == ["sha256"]
        assert not (bag / "manifest-sha512.txt").exists() and not (bag / "tagmanifest-sha512.txt").exists()
    check_bag(bag)
    return loaded


def payload_oxum(bag: Path) -> str:
    """Payload-Oxum as counted on disk: bytes and number of files under data/."""
    files = [p for p in (bag / "data").rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files)}.{len(files)}"


def record_folders(bag: Path) -> set[str]:
    return {p.name for p in (bag / "data" / "records").iterdir()}


def custody_lines(bag: Path) -> list[dict[str, Any]]:
    text = (bag / "data" / "custody.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".export-"))


def make_writable(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)


def damage_blob(catalog: Catalog, sha256: str, how: str) -> None:
    """Change the stored copy of an artifact in the catalog's blob store."""
    blob = catalog.artifact_path(sha256)
    assert blob.is_file()
    make_writable(blob)
    with open(blob, "r+b") as stream:
        data = stream.read()
        stream.seek(0)
        if how == "flip":
            stream.write(bytes([data[0] ^ 0x01]))
        elif how == "truncate":
            stream.truncate(len(data) // 2)
        else:  # append
            stream.seek(0, os.SEEK_END)
            stream.write(b"appended")


def progress_recorder() -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    """A progress callback and the (done, total) pairs it was called with."""
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))

    return calls, progress


def one_line(text: str) -> bool:
    return len([line for line in text.splitlines() if line.strip()]) == 1


# -- 1. valid bags of any selection -------------------------------------------------------------


def test_a_bag_of_one_record_holds_it_its_artifacts_and_its_custody_events(
    populated: Populated, tmp_path: Path
) -> None:
    catalog = populated.catalog
    bag = tmp_path / "one-bag"
    result = catalog.export(bag, format="bagit", record_ids=[populated.school])
    assert_valid_bag(bag)
    assert (result.format, result.records, result.artifacts) == ("bagit", 1, 2)
    assert record_folders(bag) == {populated.school}
    folder = bag / "data" / "records" / populated.school
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == ["school.jpg", "statement.txt"]
    record = catalog.record(populated.school)
    by_name = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (folder / "artifacts").iterdir()}
    assert sorted(by_name.values()) == sorted(e.artifact.sha256 for e in record.artifacts)
    # Only the events about the chosen record travel with it.
    events = custody_lines(bag)
    assert events and all(e["subject"] == populated.school for e in events)
    assert result.custody_events == len(events) == len(catalog.history(populated.school))
    assert sorted(p.name for p in bag.iterdir()) == [
        "bag-info.txt",
        "bagit.txt",
        "data",
        "manifest-sha256.txt",
        "tagmanifest-sha256.txt",
    ]
    assert sorted(p.name for p in (bag / "data").iterdir()) == ["contents.json", "custody.jsonl", "log", "records"]


@pytest.mark.parametrize("sha512", [False, True], ids=["sha256", "sha256+sha512"])
@pytest.mark.parametrize("selection", ["one", "ids", "tag", "all"])
def test_every_selection_makes_a_bag_that_bagit_and_sha256sum_accept(
    populated: Populated, tmp_path: Path, selection: str, sha512: bool
) -> None:
    catalog = populated.catalog
    chosen: list[str] | None = {
        "one": [populated.hospital],
        "ids": [populated.hospital, populated.school],
        "tag": [r.id for r in catalog.find_records(tags=["school"])],
        "all": None,
    }[selection]
    if selection == "tag":
        assert chosen == [populated.school, populated.yard]
    bag = tmp_path / f"bag-{selection}"
    result = catalog.export(bag, format="bagit", record_ids=chosen, sha512=sha512)
    assert_valid_bag(bag, sha512=sha512)
    expected = set(populated.all if chosen is None else chosen)
    assert record_folders(bag) == expected
    assert result.records == len(expected)
    artifacts = sum(len(catalog.record(r).artifacts) for r in expected)
    assert result.artifacts == artifacts
    assert len(list((bag / "data" / "records").rglob("artifacts/*"))) == artifacts
    if sha512:
        lines = (bag / "manifest-sha512.txt").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len((bag / "manifest-sha256.txt").read_text(encoding="utf-8").splitlines())


def test_duplicate_ids_in_a_selection_are_exported_once(populated: Populated, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    result = populated.catalog.export(
        bag, format="bagit", record_ids=[populated.yard, populated.yard, populated.hospital, populated.yard]
    )
    assert_valid_bag(bag)
    assert result.records == 2 and record_folders(bag) == {populated.yard, populated.hospital}


@pytest.mark.parametrize(
    ("ids", "tags", "records"),
    [
        ([], ["school"], {"school", "yard"}),
        ([], [], {"school", "yard", "hospital"}),
        (["yard", "hospital"], None, {"yard", "hospital"}),
        (["school", "hospital"], ["school"], {"school"}),
        (["hospital", "yard", "hospital"], ["school"], {"yard"}),
    ],
)
def test_a_record_filter_exports_the_records_it_chooses(
    populated: Populated, tmp_path: Path, ids: list[str], tags: list[str] | None, records: set[str]
) -> None:
    """The selection the command line has: record ids, a filter, or the ids that meet it."""
    catalog = populated.catalog
    names = {"school": populated.school, "yard": populated.yard, "hospital": populated.hospital}
    where = None if tags is None else catalog.record_filter(tags=tags)
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", record_ids=[names[i] for i in ids] or None, where=where)
    assert_valid_bag(bag)
    assert result.records == len(records) and record_folders(bag) == {names[r] for r in records}
    [event] = [e for e in catalog.history() if e.action == "records.exported"]
    named = populated.all if not ids else list(dict.fromkeys(names[i] for i in ids))
    chosen = [i for i in named if i in record_folders(bag)]
    assert event.details["record_ids"] == chosen  # a filter always exports a selection, never the whole log
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    assert contents["complete_log"] is False


def test_a_search_exports_the_records_holding_a_matching_report(catalog: Catalog, tmp_path: Path) -> None:
    digest = write(tmp_path / "in" / "digest.txt", DIGEST)
    assert catalog.ingest(digest).records_added == 2
    first, second = catalog.record_ids()
    result = catalog.export(tmp_path / "angle.json", search="angle")
    exported = json.loads((tmp_path / "angle.json").read_text(encoding="utf-8"))
    assert result.records == 1 and [r["id"] for r in exported["records"]] == [second]
    assert exported["complete_log"] is False
    result = catalog.export(tmp_path / "depot.jsonl", format="jsonl", search="depot", record_ids=[second, first])
    lines = [json.loads(line) for line in (tmp_path / "depot.jsonl").read_text(encoding="utf-8").splitlines()]
    assert result.records == 2 and [line["id"] for line in lines[:2]] == [second, first]  # in the order named
    bag = tmp_path / "bag"
    where = catalog.record_filter(status="unverified")
    result = catalog.export(bag, format="bagit", search="angle", where=where, record_ids=[first, second])
    assert result.records == 1 and record_folders(bag) == {second}


@pytest.mark.parametrize(
    "selection",
    [
        pytest.param({"where": "no-such"}, id="filter"),
        pytest.param({"search": "nowhere"}, id="search"),
        pytest.param({"where": "hospital", "ids": ["school", "yard"]}, id="ids-and-filter"),
        pytest.param({"search": "", "ids": ["school"]}, id="ids-and-search"),
    ],
)
@pytest.mark.parametrize("fmt", ["bagit", "json"])
def test_a_selection_that_leaves_no_record_is_refused_and_writes_nothing(
    populated: Populated, tmp_path: Path, selection: dict[str, Any], fmt: str
) -> None:
    catalog = populated.catalog
    names = {"school": populated.school, "yard": populated.yard, "hospital": populated.hospital}
    before = catalog.history()
    target = tmp_path / "out"
    where = None if "where" not in selection else catalog.record_filter(tags=[selection["where"]])
    ids = [names[i] for i in selection["ids"]] if "ids" in selection else None
    with pytest.raises(InputError) as raised:
        catalog.export(target, format=fmt, record_ids=ids, where=where, search=selection.get("search"))
    assert raised.value.message == "no record meets the selection; nothing was exported"
    assert not target.exists() and leftovers(tmp_path) == []
    assert catalog.history() == before


def test_an_unknown_record_is_refused_before_a_filter_is_applied(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    missing = "01a21489-0000-7000-8000-000000000000"
    with pytest.raises(NotFoundError, match=f"no record with id {missing}"):
        catalog.export(tmp_path / "out.json", record_ids=[missing], where=catalog.record_filter(tags=["school"]))
    with pytest.raises(InputError, match="is not a record id"):
        catalog.export(tmp_path / "out.json", record_ids=["nope"], search="ward")
    assert not (tmp_path / "out.json").exists()


def test_an_empty_catalog_exports_an_empty_but_valid_bag(catalog: Catalog, tmp_path: Path) -> None:
    bag = tmp_path / "empty"
    result = catalog.export(bag, format="bagit")
    assert_valid_bag(bag)
    assert (result.records, result.artifacts) == (0, 0)
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    CONTENTS_SCHEMA.validate(contents)


def test_the_same_artifact_on_two_records_is_in_both_record_folders(catalog: Catalog, tmp_path: Path) -> None:
    shared = write(tmp_path / "in" / "shared.png", png_bytes((1, 2, 3)))
    other = write(tmp_path / "in" / "other.txt", "other")
    [first] = catalog.add([shared], analyze=False)
    [second] = catalog.add([other])
    catalog.add([shared], record_id=second.record_id, analyze=False)
    assert first.sha256 in {e.artifact.sha256 for e in catalog.record(second.record_id).artifacts}
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit")
    assert_valid_bag(bag)
    assert result.artifacts == 3
    for record_id in (first.record_id, second.record_id):
        names = [p.name for p in (bag / "data" / "records" / record_id / "artifacts").iterdir()]
        assert "shared.png" in names


# -- 2. tampering is noticed ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flip", "delete", "add", "truncate-record", "edit-bag-info"])
def test_any_change_to_an_exported_bag_is_noticed(populated: Populated, tmp_path: Path, how: str) -> None:
    catalog = populated.catalog
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    assert_valid_bag(bag)
    artifact = bag / "data" / "records" / populated.yard / "artifacts" / "yard.png"
    if how == "flip":
        data = bytearray(artifact.read_bytes())
        data[len(data) // 2] ^= 0x40
        artifact.write_bytes(bytes(data))
    elif how == "delete":
        artifact.unlink()
    elif how == "add":
        write(bag / "data" / "records" / populated.yard / "artifacts" / "planted.txt", "not from the catalog")
    elif how == "truncate-record":
        record_json = bag / "data" / "records" / populated.hospital / "record.json"
        record_json.write_bytes(record_json.read_bytes()[:-10])
    else:  # a tag file: bag-info.txt is pinned by the tag manifest
        info = bag / "bag-info.txt"
        info.write_text(info.read_text(encoding="utf-8").replace("Example NGO", "Other NGO"), encoding="utf-8")

    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag)).validate()
    with pytest.raises((IntegrityError, BagError)):
        check_bag(bag)
    payload = run_sum("sha256sum", "manifest-sha256.txt", bag)
    tags = run_sum("sha256sum", "tagmanifest-sha256.txt", bag)
    if how in ("flip", "delete", "truncate-record"):
        assert payload.returncode != 0, payload.stdout
        assert tags.returncode == 0
    elif how == "add":
        # sha256sum -c only checks the files a manifest lists: a file added to data/ goes
        # unnoticed by it.  BagIt's completeness rule (and Payload-Oxum) is what catches it.
        assert payload.returncode == 0
    else:
        assert payload.returncode == 0
        assert tags.returncode != 0, tags.stdout
    # The bag is a copy: changing it does not touch the catalog.
    assert catalog.verify(record_event=False).ok


# -- 3. bag-info.txt and bagit.txt ----------------------------------------------------------------


def test_bag_info_names_the_operator_the_bag_and_its_payload(populated: Populated, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    result = populated.catalog.export(bag, format="bagit", record_ids=[populated.school, populated.yard])
    loaded = assert_valid_bag(bag)
    info = loaded.info
    assert info["Source-Organization"] == "Example NGO"
    assert info["Contact-Name"] == "Test Analyst"
    assert info["Contact-Email"] == "analyst@example.org"
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",  # a UUIDv7
        info["External-Identifier"],
    )
    assert info["External-Identifier"] == result.external_identifier
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["Bagging-Date"])
    assert info["Bagging-Date"] == "2026-03-01"  # the catalog's (fixed) clock
    assert info["Payload-Oxum"] == payload_oxum(bag) == result.payload_oxum
    assert int(info["Payload-Oxum"].split(".")[0]) == result.size
    assert info["Bag-Software-Agent"] == f"evidence-catalog {__version__}"
    assert info["Evidence-Records"] == "2" and info["Evidence-Redacted"] == "no" and info["Bag-Size"]
    assert re.fullmatch(r"2026-03-01T\d{2}:\d{2}:\d{2}\.\d{6}Z", info["Evidence-Exported-At"])
    description = info["External-Description"]
    assert isinstance(description, str) and "2 record(s)" in description and "data/custody.jsonl" in description
    assert loaded.version_info == (1, 0)
    assert loaded.encoding.upper() == "UTF-8"
    declaration = (bag / "bagit.txt").read_text(encoding="utf-8").splitlines()
    assert declaration == ["BagIt-Version: 1.0", "Tag-File-Character-Encoding: UTF-8"]
    # Each label once: a reader that takes a label's only value gets it.
    labels = [line.split(":", 1)[0] for line in (bag / "bag-info.txt").read_text(encoding="utf-8").splitlines()]
    assert len(labels) == len(set(labels))
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    assert contents["external_identifier"] == result.external_identifier


def test_bag_info_leaves_out_what_the_operator_does_not_have(tmp_path: Path) -> None:
    solo = Agent(name="Solo Analyst", host="laptop")
    with Catalog.init(tmp_path / "catalog", operator=solo, clock=FixedClock()) as catalog:
        catalog.add([write(tmp_path / "in" / "a.txt", "a")])
        catalog.export(tmp_path / "bag", format="bagit")
    info = assert_valid_bag(tmp_path / "bag").info
    assert "Source-Organization" not in info and "Contact-Email" not in info
    assert info["Contact-Name"] == "Solo Analyst"
    assert info["Payload-Oxum"] == payload_oxum(tmp_path / "bag")


def test_bag_info_keeps_non_ascii_operator_details(tmp_path: Path) -> None:
    operator = Agent(
        name="Ольга Петренко", email="olha@example.org", organization="Правозахисна група «Схід»", host="h"
    )
    with Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock()) as catalog:
        catalog.add([write(tmp_path / "in" / "свідчення.txt", "текст")])
        catalog.export(tmp_path / "bag", format="bagit")
    info = assert_valid_bag(tmp_path / "bag").info
    assert info["Contact-Name"] == "Ольга Петренко"
    assert info["Source-Organization"] == "Правозахисна група «Схід»"
    [record] = (tmp_path / "bag" / "data" / "records").iterdir()
    assert [p.name for p in (record / "artifacts").iterdir()] == ["свідчення.txt"]


# -- 4. the JSON documents in the payload ---------------------------------------------------------


def test_whole_catalog_documents_validate_and_hold_the_complete_log(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    before = catalog.history()
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit")
    assert_valid_bag(bag)
    for record_id in populated.all:
        document = json.loads((bag / "data" / "records" / record_id / "record.json").read_text(encoding="utf-8"))
        RECORD_SCHEMA.validate(document)
        assert document == to_document(catalog.record(record_id))
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    CONTENTS_SCHEMA.validate(contents)
    assert contents["complete_log"] is True
    assert (contents["records"], contents["artifacts"], contents["custody_events"]) == (3, 4, len(before))
    assert contents["redaction"] is None
    events = custody_lines(bag)
    for event in events:
        EVENT_SCHEMA.validate(event)
    # The complete custody log as it was before the export (the export event comes after it).
    assert events == [as_json(to_document(e)) for e in before]
    assert events[0]["seq"] == 1
    for previous, event in itertools.pairwise(events):  # a complete log is one unbroken chain
        assert event["prev_hash"] == previous["hash"]
    assert result.custody_events == len(before)
    assert catalog.history()[: len(before)] == before


def test_a_selection_carries_only_its_records_events(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    chosen = [populated.yard, populated.hospital]
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", record_ids=chosen)
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    CONTENTS_SCHEMA.validate(contents)
    assert contents["complete_log"] is False and contents["records"] == 2
    events = custody_lines(bag)
    for event in events:
        EVENT_SCHEMA.validate(event)
    expected = [as_json(to_document(e)) for e in catalog.history() if e.subject in chosen]
    assert events == expected and expected
    for record_id in chosen:
        document = json.loads((bag / "data" / "records" / record_id / "record.json").read_text(encoding="utf-8"))
        RECORD_SCHEMA.validate(document)
        assert document == to_document(catalog.record(record_id))


# -- 5. the export is a custody event -------------------------------------------------------------


@pytest.mark.parametrize("sha512", [False, True])
def test_the_export_is_logged_with_what_identifies_the_bag(populated: Populated, tmp_path: Path, sha512: bool) -> None:
    catalog = populated.catalog
    count = len(catalog.history())
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", record_ids=[populated.yard], sha512=sha512)
    history = catalog.history()
    assert len(history) == count + 1
    last = history[-1]
    assert last.action == "records.exported"
    assert last.actor.name == "Test Analyst"
    details = last.details
    assert details["format"] == "bagit"
    assert details["output"] == str(result.path) and result.path == bag
    assert details["bag"]["external_identifier"] == result.external_identifier
    assert details["bag"]["payload_oxum"] == result.payload_oxum == payload_oxum(bag)
    assert details["bag"]["sha512_manifest"] is sha512
    assert details["record_ids"] == [populated.yard]
    # The logged SHA-256 is that of tagmanifest-sha256.txt, which pins every byte of the bag.
    assert (
        details["sha256"] == result.sha256 == hashlib.sha256((bag / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    )
    assert catalog.verify().ok


# -- 6. a failed export leaves nothing ------------------------------------------------------------


@pytest.mark.parametrize("existing", ["file", "empty folder", "full folder", "symlink"])
def test_an_existing_target_is_refused_and_nothing_changes(populated: Populated, tmp_path: Path, existing: str) -> None:
    catalog = populated.catalog
    target = tmp_path / "target"
    if existing == "file":
        target.write_text("keep", encoding="utf-8")
    elif existing == "empty folder":
        target.mkdir()
    elif existing == "full folder":
        write(target / "keep.txt", "keep")
    else:
        target.symlink_to(tmp_path / "nowhere")
    before = catalog.history()
    with pytest.raises(InputError, match="already exists"):
        catalog.export(target, format="bagit")
    assert catalog.history() == before
    assert leftovers(tmp_path) == []
    if existing == "file":
        assert target.read_text(encoding="utf-8") == "keep"
    elif existing == "empty folder":
        assert list(target.iterdir()) == []
    elif existing == "full folder":
        assert [p.name for p in target.iterdir()] == ["keep.txt"]
    else:
        assert target.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_folder_inside_the_catalog_is_refused(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    before = catalog.history()
    link = tmp_path / "looks-elsewhere"
    link.symlink_to(catalog.path, target_is_directory=True)
    blob_folder = catalog.artifact_path(catalog.record(populated.yard).artifacts[0].artifact.sha256).parent
    for target in (catalog.path / "bag", blob_folder / "bag", link / "bag"):
        with pytest.raises(InputError, match="inside the catalog"):
            catalog.export(target, format="bagit")
        assert not target.exists()
    assert catalog.history() == before
    assert leftovers(catalog.path) == [] and leftovers(blob_folder) == []


def test_a_missing_parent_or_unknown_record_is_refused(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    before = catalog.history()
    with pytest.raises(InputError, match="does not exist"):
        catalog.export(tmp_path / "no" / "such" / "bag", format="bagit")
    missing = "01a21489-0000-7000-8000-000000000000"
    with pytest.raises(NotFoundError):
        catalog.export(tmp_path / "bag", format="bagit", record_ids=[populated.yard, missing])
    assert not (tmp_path / "bag").exists() and not (tmp_path / "no").exists()
    assert catalog.history() == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("how", ["flip", "truncate", "append"])
@pytest.mark.parametrize("which", ["first", "last"])
def test_a_damaged_stored_blob_stops_the_export_and_leaves_nothing(
    populated: Populated, tmp_path: Path, how: str, which: str
) -> None:
    catalog = populated.catalog
    # "last": the damaged artifact comes after other records' files were already copied.
    record_id = populated.school if which == "first" else populated.hospital
    damage_blob(catalog, catalog.record(record_id).artifacts[0].artifact.sha256, how)
    before = catalog.history()
    out = tmp_path / "exports"
    out.mkdir()
    target = out / "bag"
    with pytest.raises(IntegrityError):
        catalog.export(target, format="bagit")
    assert not target.exists()
    assert list(out.iterdir()) == []  # no .export-*.part folder either
    assert catalog.history() == before
    assert not catalog.verify(record_event=False).ok


def test_a_missing_stored_blob_stops_the_export_and_leaves_nothing(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    blob = catalog.artifact_path(catalog.record(populated.yard).artifacts[0].artifact.sha256)
    make_writable(blob.parent)
    blob.unlink()
    before = catalog.history()
    out = tmp_path / "exports"
    out.mkdir()
    with pytest.raises(EvidenceError):
        catalog.export(out / "bag", format="bagit")
    assert list(out.iterdir()) == []
    assert catalog.history() == before


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_an_export_stopped_midway_leaves_nothing(catalog: Catalog, tmp_path: Path, stop: type[BaseException]) -> None:
    for i in range(3):
        catalog.add([write(tmp_path / "in" / f"file-{i}.bin", bytes([i]) * 50_000)])
    before = catalog.history()
    out = tmp_path / "exports"
    out.mkdir()
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done > total // 2:  # some files are already in the bag by now
            raise stop("stopped")

    with pytest.raises(stop):
        catalog.export(out / "bag", format="bagit", progress=progress)
    assert len(calls) >= 2
    assert list(out.iterdir()) == []
    assert catalog.history() == before


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"format": "bagit", "bom": True}, "CSV only"),
        ({"format": "json", "sha512": True}, "BagIt exports only"),
        ({"format": "json", "redact": True}, "BagIt export"),
        ({"format": "bagit", "redact": ["no-such-kind"]}, "no-such-kind"),
        ({"format": "zip"}, "unknown format"),
    ],
)
def test_options_that_do_not_go_with_a_format_are_refused(
    populated: Populated, tmp_path: Path, options: dict[str, Any], where: str
) -> None:
    before = populated.catalog.history()
    with pytest.raises(InputError, match=where):
        populated.catalog.export(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    assert populated.catalog.history() == before


def test_exporting_the_same_records_twice_names_every_file_the_same(populated: Populated, tmp_path: Path) -> None:
    catalog = populated.catalog
    catalog.export(tmp_path / "first", format="bagit")
    catalog.export(tmp_path / "second", format="bagit")

    def files(bag: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(bag / "data" / "records")): p.read_bytes()
            for p in (bag / "data" / "records").rglob("*")
            if p.is_file() and p.parent.name == "artifacts"
        }

    assert files(tmp_path / "first") == files(tmp_path / "second")
    # Two bags, two identities.
    first, second = (bagit.Bag(str(tmp_path / n)).info["External-Identifier"] for n in ("first", "second"))
    assert first != second


# -- 7. file names ----------------------------------------------------------------------------------

_NASTY = st.sampled_from(
    [
        "/", "\\", "..", ".", ":", "%", "%25", "-", " ", "~", "*", "?", '"', "<", ">", "|", "\x00", "\n", "\r",
        "\t", "\x7f", "\u200b", "\u200e", "\u202e", "\ufeff", "\u2028", "\u00a0", "\u0301", "\u0332", "é",
        "e\u0301", "😀", "CON", "con", "nul.txt", "NUL", "AUX", "PRN", "COM1", "lpt9", "lpt¹", "Photo.JPG", "x",
        ".txt", ".tar.gz", "a.b.c", "   ", "data", "../..", "C:", "\\\\server\\share",
    ]
)  # fmt: skip
nasty_text = (
    st.text()
    | st.lists(_NASTY | st.text(max_size=5), max_size=12).map("".join)
    | st.text(min_size=100, max_size=400)
    | st.tuples(st.text(min_size=60, max_size=200), _NASTY, st.text(max_size=20)).map("".join)
)


def assert_portable(name: str, limit: int) -> None:
    assert name
    assert "/" not in name and "\\" not in name
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name), ascii(name)
    assert not set(name) & WINDOWS_FORBIDDEN, name
    assert name not in (".", "..")
    assert not name.startswith((".", "-")), name
    assert not name.endswith((" ", ".")), name
    assert len(name.encode("utf-8")) <= limit
    joined = os.path.normpath(os.path.join("data", name))
    assert joined.startswith("data" + os.sep) and os.path.dirname(joined) == "data"


@settings(max_examples=100)
@given(nasty_text)
@example("CON")
@example("nul.txt")
@example("..")
@example("../../etc/passwd")
@example("\\..\\..\\windows")
@example(".hidden")
@example("-rf")
@example("...")
@example("%")
@example("a" * 400 + ".jpeg")
@example("é" * 200 + "." + "é" * 16)
@example("\u0301" * 300)
@example("name. ")
def test_portable_name_is_one_safe_component_for_any_text(text: str) -> None:
    name = portable_name(text)
    assert_portable(name, MAX_NAME_BYTES)
    assert portable_name(text) == name  # pure


@settings(max_examples=50)
@given(nasty_text, nasty_text)
def test_portable_name_falls_back_to_a_safe_name(text: str, fallback: str) -> None:
    assert_portable(portable_name(text, fallback=fallback), MAX_NAME_BYTES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Photo.JPG", "Photo.JPG"),
        ("school photo (1).jpg", "school photo (1).jpg"),
        ("свідчення.txt", "свідчення.txt"),
        ("..", "file"),
        ("", "file"),
        ("a/b\\c.txt", "a_b_c.txt"),
        ("50%.txt", "50_.txt"),
    ],
)
def test_portable_name_keeps_ordinary_names(text: str, expected: str) -> None:
    assert portable_name(text) == expected


@pytest.mark.parametrize(
    "text", ["CON", "con.txt", "nul.txt", "NUL", "AUX.tar.gz", "com1.jpg", "LPT9", "lpt¹.x", "Con .txt"]
)
def test_portable_name_never_gives_a_windows_device_name(text: str) -> None:
    name = portable_name(text)
    assert name.split(".")[0].rstrip(" ").casefold() not in WINDOWS_RESERVED, name


def test_portable_name_never_gives_a_device_name_after_cutting_a_long_name() -> None:
    name = portable_name("CON" + "\u0332" * 200 + ".txt")
    assert name.split(".")[0].rstrip(" ").casefold() not in WINDOWS_RESERVED, name


def test_portable_name_is_nfc() -> None:
    name = portable_name("e\u200b\u0301.txt")
    assert unicodedata.is_normalized("NFC", name), ascii(name)


def test_name_key_ignores_case_and_unicode_normalisation() -> None:
    assert name_key("Photo.JPG") == name_key("photo.jpg") == name_key("PHOTO.jpg")
    assert name_key("\u00e9t\u00e9.txt") == name_key("e\u0301te\u0301.TXT") == name_key("\u00c9T\u00c9.txt")
    assert name_key("a.txt") != name_key("b.txt")


_COLLIDING = st.sampled_from(
    [
        "Photo.JPG", "photo.jpg", "PHOTO.jpg", "photo.JPG", "\u00e9.txt", "e\u0301.txt", "\u00c9.TXT", "!!!",
        "???.png", "...", "%%%", "___", "CON.txt", "con.TXT", "\u00df.txt", "SS.txt", "ss.txt", "file", "file.bin",
        "photo-0000000000.jpg", "a" * 150 + ".jpg", "A" * 150 + ".JPG",
    ]
)  # fmt: skip
sha_hex = st.binary(min_size=32, max_size=32).map(lambda b: hashlib.sha256(b).hexdigest())


@st.composite
def names_and_shas(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    texts = draw(st.lists(_COLLIDING | nasty_text, max_size=25))
    names = [portable_name(t) for t in texts]
    shas = draw(st.lists(sha_hex, min_size=len(names), max_size=len(names), unique=True))
    return names, shas


@settings(max_examples=100)
@given(names_and_shas())
@example(
    (
        ["Photo.JPG", "photo.jpg", "photo.jpg", "\u00e9.txt", "e\u0301.txt", "file", "file"],
        [hashlib.sha256(bytes([i])).hexdigest() for i in range(7)],
    )
)
@example((["x"] * 12, [("0" * 60) + f"{i:04x}" for i in range(12)]))  # same 12-, 20-, ... prefixes
def test_unique_names_are_distinct_portable_and_deterministic(pair: tuple[list[str], list[str]]) -> None:
    names, shas = pair
    result = unique_names(names, shas)
    assert len(result) == len(names)
    keys = [name_key(n) for n in result]
    assert len(set(keys)) == len(keys), result
    assert unique_names(list(names), list(shas)) == result
    for name in result:
        assert_portable(name, UNIQUE_NAME_LIMIT)
    if names:
        assert result[0] == names[0]
    # A name that clashes with nothing is kept as it is.
    for index, name in enumerate(names):
        if sum(name_key(n) == name_key(name) for n in names) == 1 and name_key(name) not in {
            name_key(r) for r in result[:index]
        }:
            assert result[index] == name


@settings(max_examples=50)
@given(st.lists(st.tuples(_COLLIDING | st.text(max_size=10), st.text(max_size=8)), max_size=20))
def test_unique_names_are_distinct_for_any_distinguishers(items: list[tuple[str, str]]) -> None:
    names = [n for n, _ in items]
    distinguishers = [d for _, d in items]
    result = unique_names(names, distinguishers)
    assert len({name_key(n) for n in result}) == len(result)
    assert unique_names(names, distinguishers) == result


def test_unique_names_needs_one_distinguisher_per_name() -> None:
    with pytest.raises(ValueError):
        unique_names(["a", "b"], ["0" * 64])


# Names that a file system accepts, built so that they often collide under name_key.
_ON_DISK_NAMES = st.sampled_from(
    [
        "Photo.JPG", "photo.jpg", "PHOTO.jpg", "\u00e9.txt", "e\u0301.txt", "\u00c9.TXT", "!!!", "???", "%%%",
        "---", "___", "   ", "~", "*.*", "CON", "con.txt", "nul.txt", "a\\b.txt", "x\\", ".hidden", "-rf",
        "line\nbreak.txt", "tab\there", "a" * 250, "é" * 100 + ".txt", "ß.txt", "SS.txt", "ss.txt",
    ]
) | st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"), min_size=1, max_size=30
).filter(lambda s: s not in (".", ".."))  # fmt: skip


@pytest.mark.slow
@settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ON_DISK_NAMES, min_size=1, max_size=8))
@example(["Photo.JPG", "photo.jpg", "\u00e9.txt", "e\u0301.txt", "!!!", "???", "%%%", "CON"])
def test_colliding_file_names_on_disk_become_one_file_per_artifact(names: list[str]) -> None:
    with fresh_catalog() as (catalog, base):
        paths = [write(base / "in" / f"folder-{i}" / name, f"content {i} of {name!r}") for i, name in enumerate(names)]
        [first] = catalog.add([paths[0]])
        for path in paths[1:]:
            catalog.add([path], record_id=first.record_id)
        record = catalog.record(first.record_id)
        assert len(record.artifacts) == len(names)
        bag = base / "bag"
        result = catalog.export(bag, format="bagit")
        assert_valid_bag(bag)
        assert result.artifacts == len(names)
        folder = bag / "data" / "records" / first.record_id / "artifacts"
        files = list(folder.iterdir())
        assert len(files) == len(names)
        assert all(f.is_file() for f in files)
        assert len({name_key(f.name) for f in files}) == len(files)
        for f in files:
            assert_portable(f.name, UNIQUE_NAME_LIMIT)
        assert sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in files) == sorted(
            e.artifact.sha256 for e in record.artifacts
        )


def test_a_name_without_an_extension_gets_one_from_the_media_type(catalog: Catalog, tmp_path: Path) -> None:
    [added] = catalog.add([write(tmp_path / "in" / "IMG_0001", make_jpeg())], analyze=False)
    assert catalog.record(added.record_id).artifacts[0].artifact.media_type == "image/jpeg"
    catalog.export(tmp_path / "bag", format="bagit")
    assert_valid_bag(tmp_path / "bag")
    names = [p.name for p in (tmp_path / "bag" / "data" / "records" / added.record_id / "artifacts").iterdir()]
    assert names == ["IMG_0001.jpg"]


def test_colliding_names_keep_the_first_and_add_a_hash_prefix_to_the_others(catalog: Catalog, tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "Photo.JPG", make_jpeg(colour=(1, 1, 1)))
    second = write(tmp_path / "b" / "photo.jpg", make_jpeg(colour=(200, 1, 1)))
    [added] = catalog.add([first], analyze=False)
    [other] = catalog.add([second], record_id=added.record_id, analyze=False)
    catalog.export(tmp_path / "bag", format="bagit")
    names = sorted(p.name for p in (tmp_path / "bag" / "data" / "records" / added.record_id / "artifacts").iterdir())
    assert names == ["Photo.JPG", f"photo-{other.sha256[:12]}.jpg"]


# -- 8. progress and the command line -------------------------------------------------------------


def test_progress_counts_up_to_the_bytes_of_every_artifact(catalog: Catalog, tmp_path: Path) -> None:
    big = write(tmp_path / "in" / "big.bin", os.urandom(2 * 1024 * 1024 + 12345))  # several blocks
    small = write(tmp_path / "in" / "small.png", png_bytes())
    empty = write(tmp_path / "in" / "empty.txt", b"")
    [first] = catalog.add([big])
    catalog.add([small], record_id=first.record_id, analyze=False)  # the artifacts of the files alone
    catalog.add([empty])
    calls: list[tuple[int, int]] = []
    catalog.export(tmp_path / "bag", format="bagit", progress=lambda done, total: calls.append((done, total)))
    assert_valid_bag(tmp_path / "bag")
    expected = sum(e.artifact.size for r in catalog.records() for e in r.artifacts)
    assert expected == big.stat().st_size + small.stat().st_size
    assert calls[0] == (0, expected)
    assert {total for _, total in calls} == {expected}
    done = [d for d, _ in calls]
    assert all(a < b for a, b in itertools.pairwise(done[1:])), done  # increasing
    assert done == sorted(done) and done[-1] == expected
    assert len(calls) >= 4  # the big file is reported block by block


def test_progress_of_a_selection_and_of_an_artifact_on_two_records(catalog: Catalog, tmp_path: Path) -> None:
    shared = write(tmp_path / "in" / "shared.bin", b"s" * 5000)
    other = write(tmp_path / "in" / "other.bin", b"o" * 700)
    [first] = catalog.add([shared])
    [second] = catalog.add([other])
    catalog.add([shared], record_id=second.record_id)
    for chosen, expected in (([second.record_id], 5700), (None, 10700), ([first.record_id], 5000)):
        calls, progress = progress_recorder()
        catalog.export(
            tmp_path / f"bag-{len(list(tmp_path.iterdir()))}", format="bagit", record_ids=chosen, progress=progress
        )
        assert calls[0] == (0, expected) and calls[-1] == (expected, expected), (chosen, calls)


def test_progress_of_a_redacted_export_reaches_its_total(catalog: Catalog, tmp_path: Path) -> None:
    graphic = write(tmp_path / "in" / "graphic.bin", b"g" * 3000)
    kept = write(tmp_path / "in" / "kept.txt", "kept")
    [first] = catalog.add([graphic])
    catalog.add([kept], record_id=first.record_id)
    catalog.flag(first.record_id, "graphic", "shows the dead", artifacts=[first.sha256])
    calls: list[tuple[int, int]] = []
    result = catalog.export(
        tmp_path / "bag", format="bagit", redact=True, progress=lambda done, total: calls.append((done, total))
    )
    assert result.withheld_artifacts == 1
    assert_valid_bag(tmp_path / "bag")
    assert calls[-1][0] == calls[-1][1], calls


def test_a_redacted_bag_validates_and_leaves_the_flagged_artifact_out(catalog: Catalog, tmp_path: Path) -> None:
    graphic = write(tmp_path / "in" / "graphic.png", png_bytes((255, 0, 0)))
    kept = write(tmp_path / "in" / "kept.txt", "kept")
    [first] = catalog.add([graphic], analyze=False)  # what is made from it: the next test
    catalog.add([kept], record_id=first.record_id)
    catalog.flag(first.record_id, "graphic", "shows the dead", artifacts=[first.sha256])
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=True)
    info = assert_valid_bag(bag).info
    assert result.redacted and result.withheld_artifacts == 1 and result.artifacts == 1
    assert info["Evidence-Redacted"] == "yes" and info["Payload-Oxum"] == payload_oxum(bag)
    files = list((bag / "data" / "records" / first.record_id / "artifacts").iterdir())
    assert [f.name for f in files] == ["kept.txt"]
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    CONTENTS_SCHEMA.validate(contents)
    assert [a["sha256"] for a in contents["redaction"]["withheld_artifacts"]] == [first.sha256]
    assert catalog.history()[-1].details["redaction"]["withheld_artifacts"] == [
        {"record_id": first.record_id, "sha256": first.sha256}
    ]


def test_a_bag_holds_what_an_analysis_derived_and_a_redacted_one_withholds_what_was_made_from_a_withheld_video(
    catalog: Catalog, tmp_path: Path
) -> None:
    """An analysed video's analysis document, keyframes and contact sheet travel with it; when
    the video is withheld, so is each of them (they show what it shows, and its perceptual hashes
    would find it elsewhere): left out of the bag, listed in contents.json with the reason, and
    their embedded metadata left out of the record and of the custody events the bag holds.
    The analysis of a picture on another record, not flagged, still travels."""
    from .test_media import make_video
    from .test_perceptual import picture

    (tmp_path / "in").mkdir()
    clip = make_video(tmp_path / "in" / "clip.mp4", size=(160, 120), frames=50)
    picture(3).save(tmp_path / "in" / "street.jpg", "JPEG")
    [video] = catalog.add([clip])
    [photo] = catalog.add([tmp_path / "in" / "street.jpg"])
    derived = {e.artifact.sha256 for e in catalog.record(video.record_id).artifacts} - {video.sha256}
    assert len(derived) >= 3  # the analysis document, keyframe(s), the contact sheet
    photo_derived = {e.artifact.sha256 for e in catalog.record(photo.record_id).artifacts} - {photo.sha256}
    assert len(photo_derived) == 1  # its analysis document

    bag = catalog.export(tmp_path / "bag", format="bagit").path
    assert_valid_bag(bag)
    for record_id, expected in (
        (video.record_id, {video.sha256, *derived}),
        (photo.record_id, {photo.sha256, *photo_derived}),
    ):
        files = (bag / "data" / "records" / record_id / "artifacts").iterdir()
        assert {hashlib.sha256(f.read_bytes()).hexdigest() for f in files} == expected

    catalog.flag(video.record_id, "graphic", "shows the dead", artifacts=[video.sha256])
    result = catalog.export(tmp_path / "redacted", format="bagit", redact=True)
    redacted = result.path
    assert_valid_bag(redacted)
    assert result.withheld_artifacts == 1 + len(derived)
    assert not list((redacted / "data" / "records" / video.record_id).glob("artifacts/*"))
    kept = (redacted / "data" / "records" / photo.record_id / "artifacts").iterdir()
    assert {hashlib.sha256(f.read_bytes()).hexdigest() for f in kept} == {photo.sha256, *photo_derived}
    contents = json.loads((redacted / "data" / "contents.json").read_text(encoding="utf-8"))
    CONTENTS_SCHEMA.validate(contents)
    withheld = {a["sha256"]: a for a in contents["redaction"]["withheld_artifacts"]}
    assert set(withheld) == {video.sha256, *derived}
    for sha in derived:
        [reason] = withheld[sha]["reasons"]
        assert reason["kind"] == "graphic"
        assert reason["reason"] == f"it is made from withheld artifact {video.sha256}: shows the dead"
    record = json.loads((redacted / "data" / "records" / video.record_id / "record.json").read_text(encoding="utf-8"))
    assert all(e["artifact"]["metadata"] is None for e in record["artifacts"])
    events = [e for e in custody_lines(redacted) if e["subject"] == video.record_id]
    analysed = [e for e in events if e["action"] == "media.analyzed"]
    assert analysed and all(
        entry["artifact"]["metadata"] is None for e in analysed for entry in e["details"]["artifacts"]
    )
    assert catalog.verify().ok


@pytest.fixture
def closed(populated: Populated, monkeypatch: pytest.MonkeyPatch) -> Populated:
    """The populated catalog, closed so that the command line can open it."""
    monkeypatch.delenv("EVIDENCE_CATALOG", raising=False)
    monkeypatch.delenv("EVIDENCE_CATALOG_OPERATOR", raising=False)
    populated.catalog.close()
    return populated


def reopen_history(path: Path) -> list[Any]:
    with Catalog.open(path) as catalog:
        return catalog.history()


def assert_summary(result: CliResult, records: int) -> None:
    assert result.code == 0, result.err
    assert one_line(result.out), result.out
    assert result.out.startswith(f"exported {records} record(s)")
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize(
    ("args", "records"),
    [
        (["--tag", "school"], {"school", "yard"}),
        (["--tag", "hospital", "--sha512"], {"hospital"}),
        ([], {"school", "yard", "hospital"}),
        (["{yard}", "{hospital}"], {"yard", "hospital"}),
        (["{school}", "{hospital}", "--tag", "school"], {"school"}),
    ],
)
def test_the_cli_exports_a_selection_and_prints_one_line(
    closed: Populated, tmp_path: Path, run_cli: Callable[..., CliResult], args: list[str], records: set[str]
) -> None:
    ids = {"school": closed.school, "yard": closed.yard, "hospital": closed.hospital}
    bag = tmp_path / "cli-bag"
    given_args = [a.format(**ids) for a in args]
    result = run_cli("export", "--catalog", closed.catalog.path, "--format", "bagit", "-o", bag, *given_args)
    assert_summary(result, len(records))
    assert_valid_bag(bag, sha512="--sha512" in args)
    assert record_folders(bag) == {ids[r] for r in records}
    info = bagit.Bag(str(bag)).info
    assert info["External-Identifier"] in result.out and info["Payload-Oxum"] in result.out
    last = reopen_history(closed.catalog.path)[-1]
    assert last.action == "records.exported" and last.details["bag"]["payload_oxum"] == info["Payload-Oxum"]


def test_the_cli_exports_the_records_a_search_finds(
    catalog: Catalog, tmp_path: Path, run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVIDENCE_CATALOG_OPERATOR", raising=False)
    digest = write(tmp_path / "in" / "digest.txt", DIGEST)
    assert catalog.ingest(digest).records_added == 2
    _, second = catalog.record_ids()
    catalog.close()
    bag = tmp_path / "bag"
    result = run_cli("export", "--catalog", catalog.path, "--format", "bagit", "-o", bag, "--search", "angle")
    assert_summary(result, 1)
    assert_valid_bag(bag)
    assert record_folders(bag) == {second}


def test_the_cli_is_silent_with_quiet(closed: Populated, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    bag = tmp_path / "bag"
    result = run_cli("export", "--catalog", closed.catalog.path, "--format", "bagit", "-o", bag, "--quiet")
    assert result.code == 0, result.err
    assert result.out == ""
    assert result.err == ""
    assert_valid_bag(bag)


def test_a_selection_that_chooses_nothing_fails_without_writing(
    closed: Populated, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    before = reopen_history(closed.catalog.path)
    bag = tmp_path / "bag"
    result = run_cli("export", "--catalog", closed.catalog.path, "--format", "bagit", "-o", bag, "--tag", "no-such")
    assert result.code == 2
    assert "no record meets the selection" in result.err
    assert "Traceback" not in result.out + result.err
    assert result.out == ""
    assert not bag.exists() and leftovers(tmp_path) == []
    assert reopen_history(closed.catalog.path) == before


def test_a_selection_that_chooses_nothing_is_one_line_of_error(
    closed: Populated, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    result = run_cli(
        "export", "--catalog", closed.catalog.path, "--format", "bagit", "-o", tmp_path / "bag", "--tag", "no-such"
    )
    assert result.code != 0
    assert one_line(result.err), result.err


@pytest.mark.parametrize("problem", ["exists", "damaged"])
def test_cli_export_failures_are_one_line_and_leave_nothing(
    closed: Populated, tmp_path: Path, run_cli: Callable[..., CliResult], problem: str
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    bag = out / "bag"
    if problem == "exists":
        bag.mkdir()
        expected_code, message = 2, "already exists"
    else:
        with Catalog.open(closed.catalog.path) as catalog:
            damage_blob(catalog, catalog.record(closed.yard).artifacts[0].artifact.sha256, "flip")
        expected_code, message = 1, "SHA-256"
    before = reopen_history(closed.catalog.path)
    result = run_cli("export", "--catalog", closed.catalog.path, "--format", "bagit", "-o", bag)
    assert result.code == expected_code, (result.out, result.err)
    assert "Traceback" not in result.out + result.err
    assert one_line(result.err) and result.err.startswith("error: ") and message in result.err, result.err
    assert result.out == ""
    assert reopen_history(closed.catalog.path) == before
    if problem == "exists":
        assert list(bag.iterdir()) == []
        assert [p.name for p in out.iterdir()] == ["bag"]
    else:
        assert list(out.iterdir()) == []


def test_the_installed_command_exports_a_bag(closed: Populated, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    env = {k: v for k, v in os.environ.items() if k not in ("EVIDENCE_CATALOG", "EVIDENCE_CATALOG_OPERATOR")}
    done = subprocess.run(
        [str(CLI_BINARY), "export", "--catalog", str(closed.catalog.path), "--format", "bagit", "-o", str(bag),
         "--tag", "school", "--sha512"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout) and done.stdout.startswith("exported 2 record(s)")
    assert "Traceback" not in done.stderr
    assert_valid_bag(bag, sha512=True)


class _Trickle(io.RawIOBase):
    """A stream that hands over at most *step* bytes a read (as a network stream may)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.step, len(self.data) - self.at)
        buffer[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


@pytest.mark.no_postgresql_pass  # no catalog: the same on both
@settings(max_examples=300)
@given(
    data=st.binary(max_size=300),
    size=st.integers(min_value=0, max_value=300),
    step=st.integers(min_value=1, max_value=64),
    buffer=st.integers(min_value=1, max_value=128),
)
def test_a_stream_read_up_to_its_catalogued_size_gives_its_bytes_or_stops_one_byte_past_it(
    data: bytes, size: int, step: int, buffer: int
) -> None:
    from evidence_catalog.interchange.bag import AtMost

    stream = _Trickle(data, step)
    bounded = AtMost(stream, size, "artifact x")
    got = bytearray()
    block = bytearray(buffer)

    def read_all() -> None:
        while n := bounded.readinto(memoryview(block)):
            got.extend(block[:n])

    if len(data) <= size:
        read_all()
        assert bytes(got) == data
    else:
        with pytest.raises(IntegrityError, match=f"more than the {size} bytes catalogued") as raised:
            read_all()
        assert raised.value.where == "artifact x"
        assert stream.at == size + 1  # one byte more than the size is read, never the rest
        assert bytes(got) == data[: len(got)] and len(got) <= size
