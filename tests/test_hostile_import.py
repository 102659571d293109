"""Hostile imports: an export edited by someone who can recompute every manifest, hash and
Merkle node, but does not hold the exporting catalog's log key.

Every record must be what its custody events rebuild, every artifact what its bytes say, and the
events must be covered by a checkpoint signed by the key the exported log itself names; an export
without such signed provenance imports only when the caller accepts that explicitly, and what it
brings is then marked ``provenance:unsigned`` wherever it is shown or exported.  Every refusal
leaves the receiving catalog exactly as it was.

Bags are made by the library and then edited as an attacker would: the payload manifest, the
Payload-Oxum and the tag manifest recomputed with :mod:`hashlib` (:func:`reseal`).
"""

from __future__ import annotations

import base64
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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog
from evidence_catalog.checkpoint import Checkpoint, parse_checkpoint, public_bytes, vkey
from evidence_catalog.checkpoint import sign as sign_checkpoint
from evidence_catalog.custody import document_hash, event_leaf
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError
from evidence_catalog.interchange import import_documents, import_provenance
from evidence_catalog.interchange.import_provenance import UnsignedProvenanceError
from evidence_catalog.interchange.importing import UNSIGNED_PROVENANCE_TAG
from evidence_catalog.merkle import perfect_from_leaves, root

from .conftest import CliResult, FixedClock, make_jpeg

SOURCE = Agent(name="Field Analyst", email="field@example.org", organization="Monitor NGO", host="src")
DEST = Agent(name="Archive Keeper", email="archive@example.org", organization="Archive", host="dst")
POSITION = (46.4825, 30.7233, 12.0)
URL = "https://example.org/posts/quay-1"


# -- the attacker's tools -------------------------------------------------------------------


def write(path: Path, data: bytes | str) -> None:
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reseal(bag: Path) -> None:
    """Make every manifest and the Payload-Oxum agree with the bag as it now is: what anyone
    can do with hashlib (or bagit-python) after editing a bag."""
    files = sorted(p for p in (bag / "data").rglob("*") if p.is_file())
    write(bag / "manifest-sha256.txt", "".join(f"{sha256_of(p)}  {p.relative_to(bag).as_posix()}\n" for p in files))
    (bag / "manifest-sha512.txt").unlink(missing_ok=True)
    oxum = f"{sum(p.stat().st_size for p in files)}.{len(files)}"
    info = (bag / "bag-info.txt").read_text("utf-8")
    write(bag / "bag-info.txt", re.sub(r"(?m)^Payload-Oxum: .*$", f"Payload-Oxum: {oxum}", info))
    tags = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt"]
    write(bag / "tagmanifest-sha256.txt", "".join(f"{sha256_of(bag / t)}  {t}\n" for t in tags))
    (bag / "tagmanifest-sha512.txt").unlink(missing_ok=True)


def edit_json(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    document = json.loads(path.read_text("utf-8"))
    change(document)
    write(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def custody(bag: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (bag / "data" / "custody.jsonl").read_text("utf-8").splitlines()]


def write_custody(bag: Path, events: list[dict[str, Any]]) -> None:
    write(bag / "data" / "custody.jsonl", "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))


def rehash(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recompute every event's hash and link, as the library would (no key needed)."""
    previous = None
    for event in events:
        if previous is not None:
            event["prev_hash"] = previous
        event["hash"] = document_hash(event)
        previous = event["hash"]
    return events


def strip_log(bag: Path) -> None:
    """Remove the signed log evidence: ``"log": null`` and no ``data/log/``."""
    shutil.rmtree(bag / "data" / "log")
    edit_json(bag / "data" / "contents.json", lambda doc: doc.update(log=None))


def resign(bag: Path) -> tuple[str, bytes]:
    """Sign a new checkpoint over the bag's (whole) custody log with a key of the attacker's own
    under the same log name; replace the bag's checkpoint and keys.  Returns that key."""
    log = bag / "data" / "log"
    old = parse_checkpoint((log / "checkpoint.note").read_text("utf-8").split("\n\n")[0] + "\n")
    leaves = [event_leaf(e) for e in custody(bag)]
    forged = Checkpoint(origin=old.origin, size=len(leaves), root=root(perfect_from_leaves(leaves), len(leaves)))
    key = Ed25519PrivateKey.generate()
    write(log / "checkpoint.note", sign_checkpoint(forged, key))
    write(log / "log.vkey", vkey(old.origin, public_bytes(key.public_key())) + "\n")
    edit_json(bag / "data" / "contents.json", lambda doc: doc["log"].update(root_hash=forged.root.hex()))
    return old.origin, public_bytes(key.public_key())


# -- catalogs -------------------------------------------------------------------------------


@attrs.frozen
class Source:
    catalog: Catalog
    photo: str  # a JPEG with EXIF time and GPS, a source URL, tags and a note
    statement: str  # a text file with a claim
    key_id: str
    bag: Path  # the whole catalog
    part: Path  # the photo's record only
    json: Path
    jsonl: Path

    def record_json(self, bag: Path, record_id: str | None = None) -> Path:
        return bag / "data" / "records" / (record_id or self.photo) / "record.json"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    root_dir = tmp_path_factory.mktemp("hostile-source")
    inputs = root_dir / "in"
    inputs.mkdir()
    (inputs / "quay.jpg").write_bytes(make_jpeg(gps=POSITION))
    (inputs / "statement.txt").write_text("The gate was closed at 21:40.", encoding="utf-8")
    with Catalog.init(root_dir / "catalog", operator=SOURCE, clock=FixedClock()) as cat:
        [photo] = cat.add([inputs / "quay.jpg"], tags=["east quay"], source_url=URL, note="Posted at 21:50.")
        [statement] = cat.add([inputs / "statement.txt"])
        cat.claim(statement.record_id, summary="Gate closed", source_description="A witness")
        cat.add_note(photo.record_id, "Shadows fit the evening.")
        key = cat.history()[0].details["log"]["key_id"]
        bag, part, json_file, jsonl = (root_dir / n for n in ("bag", "part", "export.json", "export.jsonl"))
        cat.export(bag, format="bagit")
        cat.export(part, format="bagit", record_ids=[photo.record_id])
        cat.export(json_file, format="json")
        cat.export(jsonl, format="jsonl")
        yield Source(cat, photo.record_id, statement.record_id, key, bag, part, json_file, jsonl)


@pytest.fixture
def bag(source: Source, tmp_path: Path) -> Path:
    copy = tmp_path / "bag"
    shutil.copytree(source.bag, copy)
    return copy


@pytest.fixture
def part(source: Source, tmp_path: Path) -> Path:
    copy = tmp_path / "part"
    shutil.copytree(source.part, copy)
    return copy


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.init(tmp_path / "dest", operator=DEST, clock=FixedClock()) as cat:
        own = tmp_path / "own.txt"
        own.write_text("the receiving catalog's own record", encoding="utf-8")
        cat.add([own])
        yield cat


def snapshot(catalog: Catalog) -> tuple[Any, ...]:
    history = catalog.history()
    blobs = sorted(str(p) for p in (catalog.path / "blobs").rglob("*") if p.is_file())
    return catalog.record_ids(), [e.hash for e in history], blobs, list(catalog.records())


def refused(catalog: Catalog, path: Path, match: str, *, error: type[Exception] = EvidenceError, **kw: Any) -> str:
    """Import *path*: it must be refused with *error* matching *match*, leaving *catalog* as it was."""
    before = snapshot(catalog)
    with pytest.raises(EvidenceError) as raised:
        catalog.import_records(path, **kw)
    assert isinstance(raised.value, error), repr(raised.value)
    assert re.search(match, str(raised.value)), str(raised.value)
    assert snapshot(catalog) == before
    return str(raised.value)


def exif(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["artifacts"][0]["artifact"]["metadata"]["exif"]
    return result


# -- 1. forged record documents ---------------------------------------------------------------

FORGERIES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "title": (lambda d: d.update(title="a different title"), r"\btitle\b"),
    "tag added": (lambda d: d["tags"].append("verified by court"), r"\btags\b"),
    "tag removed": (lambda d: d.update(tags=[]), r"\btags\b"),
    "source URL": (lambda d: d["acquisitions"][0].update(source_url="https://elsewhere.example/x"), "source_url"),
    "EXIF GPS": (lambda d: exif(d)["gps"].update(latitude=48.0159, longitude=37.8028), r"exif\.gps"),
    "EXIF time": (lambda d: exif(d).update(datetime_original="2024-02-24T05:00:00+02:00"), "datetime_original"),
    "note text": (lambda d: d["notes"][0].update(text="Posted at 09:50."), r"notes\[0\]\.text"),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forged_record_in_a_resealed_bag_is_refused_naming_the_record_and_field(
    source: Source, dest: Catalog, bag: Path, name: str
) -> None:
    change, field = FORGERIES[name]
    edit_json(source.record_json(bag), change)
    reseal(bag)
    message = refused(dest, bag, field, error=IntegrityError)
    assert source.photo in message and "custody events" in message
    # Accepting unsigned provenance does not accept a record its own history contradicts.
    refused(dest, bag, field, error=IntegrityError, accept_unsigned=True)
    assert dest.verify(record_event=False).ok
    assert not dest.has_record(source.photo)


def test_the_real_file_added_after_a_refused_forgery_is_catalogued_with_its_own_metadata(
    source: Source, dest: Catalog, bag: Path, tmp_path: Path
) -> None:
    FORGERIES["EXIF GPS"][0](doc := json.loads(source.record_json(bag).read_text("utf-8")))
    write(source.record_json(bag), json.dumps(doc, indent=2))
    reseal(bag)
    refused(dest, bag, r"exif\.gps")
    photo = tmp_path / "quay.jpg"
    photo.write_bytes(make_jpeg(gps=POSITION))
    [added] = dest.add([photo])
    metadata = dest.record(added.record_id).artifacts[0].artifact.metadata
    assert metadata is not None and metadata.exif is not None and metadata.exif.gps is not None
    assert metadata.exif.gps.latitude == pytest.approx(POSITION[0], abs=1e-5)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _leaves(item, (*path, number))
    else:
        yield path, value


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_edits_to_record_documents_in_a_resealed_bag_are_always_refused(
    source: Source, dest: Catalog, data: st.DataObject
) -> None:
    """Any change to any value of a record document -- a string, a number, a tag, a list
    entry -- with every manifest recomputed, is refused and leaves the catalog as it was."""
    record_id = data.draw(st.sampled_from([source.photo, source.statement]), label="record")
    document = json.loads(source.record_json(source.bag, record_id).read_text("utf-8"))
    leaves = [(p, v) for p, v in _leaves(document) if p != ("schema",)]
    path, old = data.draw(st.sampled_from(leaves), label="field")
    if isinstance(old, bool):
        new: Any = not old
    elif isinstance(old, int):
        new = data.draw(st.integers(min_value=0, max_value=2**40).filter(lambda n: n != old), label="number")
    elif isinstance(old, float):
        new = data.draw(
            st.floats(min_value=-89.0, max_value=89.0, allow_nan=False).filter(lambda x: x != old), label="float"
        )
    elif isinstance(old, str):
        new = data.draw(
            st.one_of(
                st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.strip()),
                st.just(old + " "),
                st.just(old.upper()),
                st.just(old[:-1]),
            ).filter(lambda s: s != old),
            label="text",
        )
    else:
        new = data.draw(st.text(min_size=1, max_size=10), label="instead of null")
    _set(document, path, new)
    if data.draw(st.booleans(), label="and a tag"):
        document["tags"] = sorted({*document["tags"], "forged"})
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        shutil.copytree(source.bag, bag)
        write(source.record_json(bag, record_id), json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        reseal(bag)
        refused(dest, bag, "")
        refused(dest, bag, "", accept_unsigned=True)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_forged_record_in_a_json_or_jsonl_export_is_refused(
    source: Source, dest: Catalog, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"forged.{fmt}"
    if fmt == "json":
        document = json.loads(source.json.read_text("utf-8"))
        photo = next(r for r in document["records"] if r["id"] == source.photo)
        exif(photo)["gps"]["latitude"] = 48.0159
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        lines = [json.loads(line) for line in source.jsonl.read_text("utf-8").splitlines()]
        for line in lines:
            if line.get("id") == source.photo:
                line["title"] = "another title"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    refused(dest, path, rf"record {source.photo} is not what its custody events say", blobs=source.catalog.path)


def test_a_record_no_event_creates_is_refused(source: Source, dest: Catalog, bag: Path) -> None:
    """A fabricated record (a copy under a new id) has no history in the signed log."""
    new_id = "01a24263-ce3e-777e-8837-eaeaaaaf8cba"
    shutil.copytree(bag / "data" / "records" / source.photo, bag / "data" / "records" / new_id)
    edit_json(source.record_json(bag, new_id), lambda d: d.update(id=new_id))
    edit_json(bag / "data" / "contents.json", lambda d: d.update(records=d["records"] + 1))
    reseal(bag)
    refused(dest, bag, rf"record {new_id} is not created by any custody event", accept_unsigned=True)


def test_a_record_left_out_of_a_whole_log_bag_is_refused(source: Source, dest: Catalog, bag: Path) -> None:
    shutil.rmtree(bag / "data" / "records" / source.statement)
    edit_json(bag / "data" / "contents.json", lambda d: d.update(records=d["records"] - 1))
    reseal(bag)
    refused(dest, bag, rf"creates record {source.statement}, which the export does not hold")


# -- 2. forged history and bytes: what only the bytes or the key can catch ---------------------


def _forge_gps_everywhere(bag: Path, source: Source) -> None:
    """EXIF GPS changed in the record *and* in the event that added it, every hash and link
    recomputed, the signed log evidence removed: consistent, but unsigned."""
    edit_json(source.record_json(bag), lambda d: exif(d)["gps"].update(latitude=48.0159))
    events = custody(bag)
    for event in events:
        if event["action"] == "artifact.added" and event["subject"] == source.photo:
            event["details"]["artifact"]["metadata"]["exif"]["gps"]["latitude"] = 48.0159
    write_custody(bag, rehash(events))
    strip_log(bag)
    reseal(bag)


def test_exif_forged_in_record_and_history_is_refused_by_the_bytes(source: Source, dest: Catalog, bag: Path) -> None:
    _forge_gps_everywhere(bag, source)
    refused(dest, bag, r"no signed log evidence", error=UnsignedProvenanceError)
    message = refused(dest, bag, r"is not what its bytes say .*exif\.gps\.latitude", accept_unsigned=True)
    assert source.photo in message


def test_a_history_rewritten_and_resigned_with_another_key_is_refused(source: Source, dest: Catalog, bag: Path) -> None:
    """The title changed in the record and in its event, the log re-hashed and a checkpoint
    signed by a key of the attacker's: the log's own first event still names the real key."""
    edit_json(source.record_json(bag), lambda d: d.update(title="forged title"))
    events = custody(bag)
    for event in events:
        if event["action"] == "artifact.added" and event["subject"] == source.photo:
            event["details"]["record"]["title"] = "forged title"
    write_custody(bag, rehash(events))
    resign(bag)
    reseal(bag)
    refused(dest, bag, r"not one signed by the log key its own log names", error=UnsignedProvenanceError)
    result = dest.import_records(bag, accept_unsigned=True)  # the user's explicit choice ...
    assert result.log_key_id is None and result.unsigned is not None
    assert UNSIGNED_PROVENANCE_TAG in dest.record(source.photo).tags  # ... and it shows
    assert dest.verify(record_event=False).ok


def test_a_bag_resigned_with_another_key_is_refused_even_unchanged(source: Source, dest: Catalog, bag: Path) -> None:
    resign(bag)
    reseal(bag)
    message = refused(dest, bag, r"not signed by the log key", error=UnsignedProvenanceError)
    assert source.key_id in message
    assert "accept_unsigned=True" in message


def test_a_log_rewritten_wholesale_under_another_key_says_whose_key_it_is(
    source: Source, dest: Catalog, bag: Path
) -> None:
    """Whoever rewrites the first event too has made a log of their own: it imports as signed by
    *their* key, and the import names that key -- compare it with the one the sender gave."""
    events = custody(bag)
    key = Ed25519PrivateKey.generate()
    origin = events[0]["details"]["log"]["origin"]
    public = public_bytes(key.public_key())
    events[0]["details"]["log"].update(
        vkey=vkey(origin, public), public_key=base64.b64encode(public).decode(), key_id="00000000"
    )
    write_custody(bag, rehash(events))
    log = bag / "data" / "log"
    leaves = [event_leaf(e) for e in events]
    forged = Checkpoint(origin=origin, size=len(leaves), root=root(perfect_from_leaves(leaves), len(leaves)))
    write(log / "checkpoint.note", sign_checkpoint(forged, key))
    reseal(bag)
    result = dest.import_records(bag)
    assert result.log_key_id is not None and result.log_key_id != source.key_id
    [imported] = dest.history(source.photo)
    assert imported.details["source"]["log"]["key_id"] == result.log_key_id


# -- 3. signed log evidence missing or garbled ---------------------------------------------------


def test_a_bag_without_log_evidence_is_refused_unless_unsigned_is_accepted(
    source: Source, dest: Catalog, bag: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    strip_log(bag)
    reseal(bag)
    refused(dest, bag, r"no signed log evidence.*accept_unsigned=True", error=UnsignedProvenanceError)
    result = dest.import_records(bag, accept_unsigned=True)
    assert set(result.records_added) == {source.photo, source.statement}
    assert result.log_key_id is None and "no signed log evidence" in (result.unsigned or "")
    for record_id in result.records_added:
        record = dest.record(record_id)
        assert UNSIGNED_PROVENANCE_TAG in record.tags
        imported, tagged = dest.history(record_id)
        assert imported.action == "record.imported" and imported.details["source"]["log"] is None
        assert imported.details["source"]["unsigned_provenance"]["accepted"] is True
        details = {k: v for k, v in tagged.details.items() if k != "salt"}  # the event's secret for its commitments
        assert (tagged.action, details) == ("tags.added", {"tags": [UNSIGNED_PROVENANCE_TAG]})
        assert attrs.evolve(record, tags=[t for t in record.tags if t != UNSIGNED_PROVENANCE_TAG]) == (
            source.catalog.record(record_id)
        )
    assert dest.verify(record_event=False).ok
    before = snapshot(dest)  # the same bag again, signed or not, adds nothing
    assert dest.import_records(bag, accept_unsigned=True).records_added == ()
    assert dest.import_records(source.bag).records_added == ()
    assert snapshot(dest) == before
    # Shown and exported as such everywhere.
    dest.export(tmp_path / "out.json", format="json")
    records = json.loads((tmp_path / "out.json").read_text("utf-8"))["records"]
    assert all(UNSIGNED_PROVENANCE_TAG in r["tags"] for r in records if r["id"] in result.records_added)
    dest.export(tmp_path / "out-bag", format="bagit", record_ids=[source.photo])
    assert UNSIGNED_PROVENANCE_TAG in json.loads(source.record_json(tmp_path / "out-bag").read_text("utf-8"))["tags"]
    dest.export(tmp_path / "out.prov.json", format="prov")
    prov = json.loads((tmp_path / "out.prov.json").read_text("utf-8"))
    assert prov["entity"][f"uuid:{source.photo}"]["ec:provenance"] == "unsigned"
    dest.close()
    shown = run_cli("show", source.photo, "--catalog", dest.path)
    assert shown.code == 0 and "provenance UNSIGNED" in shown.out and UNSIGNED_PROVENANCE_TAG in shown.out
    listed = run_cli("list", "--catalog", dest.path)
    line = next(line for line in listed.out.splitlines() if line.startswith(source.photo))
    assert UNSIGNED_PROVENANCE_TAG in line
    # A partner importing that bag sees the mark too, from the signed log of the catalog between.
    with Catalog.init(tmp_path / "third", operator=DEST, clock=FixedClock()) as third:
        third.import_records(tmp_path / "out-bag")
        assert UNSIGNED_PROVENANCE_TAG in third.record(source.photo).tags


def test_a_bag_of_a_catalog_whose_key_did_not_sign_its_latest_events_is_refused(
    dest: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVIDENCE_CATALOG_KEY_PASSPHRASE", raising=False)
    Catalog.init(tmp_path / "locked", operator=SOURCE, clock=FixedClock(), key_passphrase="correct horse").close()
    (tmp_path / "late.txt").write_text("added without the passphrase", encoding="utf-8")
    with Catalog.open(tmp_path / "locked", clock=FixedClock()) as locked:
        locked.add([tmp_path / "late.txt"])  # its checkpoint is kept unsigned
        locked.export(tmp_path / "locked-bag", format="bagit")
    refused(dest, tmp_path / "locked-bag", r"checkpoint is unsigned .*`checkpoint`", error=UnsignedProvenanceError)


def test_a_bag_whose_log_files_are_gone_is_refused(source: Source, dest: Catalog, bag: Path) -> None:
    (bag / "data" / "log" / "checkpoint.note").unlink()
    reseal(bag)
    refused(dest, bag, r"has no data/log/checkpoint\.note", error=UnsignedProvenanceError)


@pytest.mark.parametrize(
    "garbage",
    ["garbage", "", "evidence-catalog/x\n1\nAAAA\n\n\u2014 x AAAAAAAA\n", "\ud800\n\n\u2014 \ud800 AAAA\n", None],
)
def test_a_json_export_with_a_garbage_checkpoint_is_refused(
    source: Source, dest: Catalog, tmp_path: Path, garbage: str | None
) -> None:
    document = json.loads(source.json.read_text("utf-8"))
    document["checkpoint"] = garbage
    path = tmp_path / "garbage.json"
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    refused(dest, path, r"not tied to a signed log", error=UnsignedProvenanceError, blobs=source.catalog.path)
    result = dest.import_records(path, blobs=source.catalog.path, accept_unsigned=True)
    assert result.unsigned and all(UNSIGNED_PROVENANCE_TAG in dest.record(r).tags for r in result.records_added)


def test_a_jsonl_export_with_a_garbage_checkpoint_is_refused(source: Source, dest: Catalog, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in source.jsonl.read_text("utf-8").splitlines()]
    assert lines[-1]["schema"].split(":")[-2] == "checkpoint"
    lines[-1]["note"] = "garbage\n"
    path = tmp_path / "garbage.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    refused(dest, path, r"checkpoint is not one signed", error=UnsignedProvenanceError, blobs=source.catalog.path)


def test_a_jsonl_export_of_a_tail_the_checkpoint_does_not_cover_is_refused(
    source: Source, dest: Catalog, tmp_path: Path
) -> None:
    lines = source.jsonl.read_text("utf-8").splitlines()
    path = tmp_path / "no-checkpoint.jsonl"
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    refused(dest, path, r"no signed checkpoint", error=UnsignedProvenanceError, blobs=source.catalog.path)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_json_or_jsonl_export_of_some_records_is_unsigned(
    source: Source, dest: Catalog, tmp_path: Path, fmt: str
) -> None:
    """They carry no inclusion proofs: their events cannot be tied to the signed log."""
    path = tmp_path / f"some.{fmt}"
    source.catalog.export(path, format=fmt, record_ids=[source.photo])  # type: ignore[arg-type]
    refused(dest, path, r"carries no inclusion proofs", error=UnsignedProvenanceError, blobs=source.catalog.path)
    result = dest.import_records(path, blobs=source.catalog.path, accept_unsigned=True)
    assert result.records_added == (source.photo,) and UNSIGNED_PROVENANCE_TAG in dest.record(source.photo).tags


def test_accepting_unsigned_provenance_marks_nothing_when_it_is_signed(source: Source, dest: Catalog) -> None:
    result = dest.import_records(source.bag, accept_unsigned=True)
    assert result.log_key_id == source.key_id and result.unsigned is None
    for record_id in result.records_added:
        assert dest.record(record_id) == source.catalog.record(record_id)
        [imported] = dest.history(record_id)
        assert "unsigned_provenance" not in imported.details["source"]


# -- 4. a bag of some records: the key event travels with them, proven ---------------------------


def test_a_bag_of_some_records_imports_signed_by_the_key_its_log_names(source: Source, dest: Catalog) -> None:
    assert (source.part / import_provenance.KEY_EVENT).is_file()
    result = dest.import_records(source.part)
    assert result.records_added == (source.photo,)
    assert result.log_key_id == source.key_id and result.unsigned is None
    assert UNSIGNED_PROVENANCE_TAG not in dest.record(source.photo).tags
    [imported] = dest.history(source.photo)
    assert imported.details["source"]["log"]["key_id"] == source.key_id
    assert dest.verify(record_event=False).ok


def test_a_bag_of_some_records_without_its_key_event_is_refused(source: Source, dest: Catalog, part: Path) -> None:
    (part / import_provenance.KEY_EVENT).unlink()
    reseal(part)
    refused(dest, part, r"holds no event naming the log key", error=UnsignedProvenanceError)


def test_a_bag_of_some_records_with_a_forged_key_event_is_refused(source: Source, dest: Catalog, part: Path) -> None:
    """The key event swapped for one naming the attacker's key (its own hash recomputed): its
    inclusion proof no longer leads to the signed root."""
    key_event = json.loads((part / import_provenance.KEY_EVENT).read_text("utf-8"))
    public = public_bytes(Ed25519PrivateKey.generate().public_key())
    key_event["details"]["log"]["vkey"] = vkey(key_event["details"]["log"]["origin"], public)
    key_event["hash"] = document_hash(key_event)
    write(part / import_provenance.KEY_EVENT, json.dumps(key_event))
    reseal(part)
    refused(dest, part, r"")


def test_a_bag_of_some_records_with_an_event_proof_removed_is_refused(
    source: Source, dest: Catalog, part: Path
) -> None:
    proofs = (part / "data" / "log" / "proofs.jsonl").read_text("utf-8").splitlines()
    last = custody(part)[-1]["seq"]
    kept = [line for line in proofs if json.loads(line)["seq"] != last]
    write(part / "data" / "log" / "proofs.jsonl", "".join(line + "\n" for line in kept))
    reseal(part)
    refused(dest, part, rf"custody event {last} has no inclusion proof", error=UnsignedProvenanceError)


# -- 5. unbounded lines -----------------------------------------------------------------------


def _long_line(path: Path, size: int) -> None:
    """A file of *size* bytes and no newline, sparse: it takes no disk space to speak of."""
    path.chmod(0o644)
    with open(path, "wb") as out:
        out.truncate(size)


@pytest.mark.parametrize("name", ["custody.jsonl", "log/proofs.jsonl"])
def test_a_line_longer_than_the_limit_is_refused_before_it_is_read_whole(
    source: Source, dest: Catalog, part: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    limit = 1024 * 1024
    monkeypatch.setattr(import_documents, "MAX_LINE_BYTES", limit)
    target = part / "data" / name
    _long_line(target, 3 * limit)
    reseal(part)
    reads: list[int] = []
    real_open = open

    def counting_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        stream = real_open(file, mode, *args, **kwargs)
        if Path(file) == target and "b" in mode:
            real_readline = stream.readline

            def readline(size: int = -1) -> bytes:
                line: bytes = real_readline(size)
                reads.append(len(line))
                return line

            stream.readline = readline
        return stream

    monkeypatch.setattr(import_documents, "open", counting_open, raising=False)
    refused(dest, part, rf"{re.escape(name)}: line 1 is longer than a line may be \({limit} bytes\)", error=InputError)
    assert reads and max(reads) <= limit + 1


def test_the_documented_line_limit_holds_for_a_real_sparse_file(source: Source, dest: Catalog, part: Path) -> None:
    _long_line(part / "data" / "custody.jsonl", import_documents.MAX_LINE_BYTES + 1)
    reseal(part)
    refused(dest, part, r"custody\.jsonl: line 1 is longer than a line may be", error=InputError)


# -- 6. formats and exit codes ----------------------------------------------------------------


def test_a_compacted_one_line_json_export_is_read_as_json(source: Source, dest: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "compact.json"
    document = json.loads(source.json.read_text("utf-8"))
    path.write_text(json.dumps(document, separators=(",", ":"), ensure_ascii=False), encoding="utf-8")
    assert path.read_text("utf-8").count("\n") == 0
    result = dest.import_records(path, blobs=source.catalog.path)
    assert result.format == "json" and set(result.records_added) == {source.photo, source.statement}
    assert result.log_key_id == source.key_id


def test_honest_exports_import_signed_by_the_exporting_key(source: Source, tmp_path: Path) -> None:
    for name, path, blobs in (("bag", source.bag, None), ("json", source.json, source.catalog.path),
                              ("jsonl", source.jsonl, source.catalog.path)):  # fmt: skip
        with Catalog.init(tmp_path / name, operator=DEST, clock=FixedClock()) as cat:
            result = cat.import_records(path, blobs=blobs)
            assert result.log_key_id == source.key_id and result.unsigned is None
            assert set(result.records_added) == {source.photo, source.statement}
            for record_id in result.records_added:
                assert cat.record(record_id) == source.catalog.record(record_id)
            assert cat.verify(record_event=False).ok


def test_cli_a_refused_import_exits_2_whatever_the_reason(
    source: Source, bag: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    with Catalog.init(tmp_path / "cli", operator=DEST, clock=FixedClock()):
        pass
    catalog = tmp_path / "cli"
    damaged = tmp_path / "damaged"
    shutil.copytree(source.bag, damaged)
    artifact = next((damaged / "data" / "records" / source.photo / "artifacts").iterdir())
    write(artifact, artifact.read_bytes()[:-1] + b"\x00")  # a digest mismatch (an integrity error)
    edit_json(source.record_json(bag), FORGERIES["title"][0])
    reseal(bag)
    unsigned = tmp_path / "unsigned"
    shutil.copytree(source.bag, unsigned)
    strip_log(unsigned)
    reseal(unsigned)
    for path, fragment in (
        (tmp_path / "nothing-here", "no such file"),
        (damaged, "the manifest says"),
        (bag, "is not what its custody events say"),
        (unsigned, "--accept-unsigned"),
    ):
        result = run_cli("import", path, "--catalog", catalog)
        assert result.code == 2, (result.code, result.err)
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
        assert fragment in result.err and result.out == ""
    accepted = run_cli("import", unsigned, "--catalog", catalog, "--accept-unsigned")
    assert accepted.code == 0, accepted.err
    assert "UNSIGNED provenance accepted" in accepted.out and accepted.out.count("\n") == 1
    fresh = tmp_path / "cli-2"
    with Catalog.init(fresh, operator=DEST, clock=FixedClock()):
        pass
    signed = run_cli("import", source.bag, "--catalog", fresh)
    assert signed.code == 0 and f"log key {source.key_id}" in signed.out
