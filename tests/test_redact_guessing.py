"""A redacted bag proves that its custody events exist, in order, unaltered and signed, and lets
nobody confirm a guess at what it withholds: an attacker who tries every guess of a list holding
the true value against every hash, leaf, root and salted digest in the bag finds nothing; the
bag verifies with docs/verify_bag.py (standard library and openssl only) and with bagit-python.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import bagit  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, custody, merkle, model, sealing
from evidence_catalog.custody import DIGEST_PREFIX, document_hash, value_digest, value_salt
from evidence_catalog.interchange.redact import WITHHELD_MARK, redact_document
from evidence_catalog.serialize import canonical_json, unstructure
from evidence_catalog.store import log as custody_log
from tests.salted import unsalted_sealed_event
from tests.test_verify_independently import load_script, reseal

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "verify_bag.py"
OPERATOR = "Field Analyst <field@example.org>"


def run_script(bag: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), str(bag)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def old_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the test, the catalog writes events as versions before salted commitments did."""
    monkeypatch.setattr(custody_log, "sealed_event", unsalted_sealed_event)


def lines(bag: Path) -> list[dict[str, Any]]:
    text = (bag / "data" / "custody.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


# -- the attacker -------------------------------------------------------------------------------


def bag_targets(bag: Path) -> set[str]:
    """Every hash the bag holds, as lowercase hex: hex strings anywhere, and base64 roots."""
    found: set[str] = set()
    for path in bag.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        found.update(m.lower() for m in re.findall(r"[0-9a-fA-F]{64}", text))
        for token in re.findall(r"[A-Za-z0-9+/]{43}=", text):
            found.add(base64.b64decode(token).hex())
    return found


def substitute(node: Any, guess: str) -> Any:
    if isinstance(node, str):
        return node.replace(WITHHELD_MARK, guess)
    if isinstance(node, list):
        return [substitute(item, guess) for item in node]
    if isinstance(node, dict):
        return {k: substitute(v, guess) for k, v in node.items()}
    return node


def confirmed(bag: Path, guess: str) -> list[str]:
    """Everything an attacker can compute from *guess* and the bag that the bag holds too."""
    targets = bag_targets(bag)
    events = lines(bag)
    salts: set[str] = set()
    secrets: list[str] = []
    for event in events:
        if "disclosure" in event:
            salts.update(event["disclosure"]["salts"].values())
        elif isinstance(event.get("details"), dict) and "salt" in event["details"]:
            secrets.append(event["details"]["salt"])
    hits: list[str] = []
    candidates = {hashlib.sha256(guess.encode()).hexdigest(): "sha256 of the guess"}
    leaves: list[bytes] = []
    for event in events:
        seq = event["seq"]
        if WITHHELD_MARK not in json.dumps(event, ensure_ascii=False):  # the guess changes nothing here
            if "withheld" not in event:
                leaves.append(custody.event_leaf(event))
            continue
        guessed = {k: v for k, v in substitute(event, guess).items() if k != "disclosure"}
        guessed_unsalted = {**guessed, "details": dict(guessed.get("details", {}))}
        guessed_unsalted["details"].pop("salt", None)
        try:
            if "salt" in guessed.get("details", {}):  # a secret in the bag: the salted hash too
                candidates[document_hash(guessed)] = f"event {seq} rehashed with the guess and its secret"
            candidates[document_hash(guessed_unsalted)] = f"event {seq} rehashed with the guess"
            leaf = custody.event_leaf({**guessed_unsalted, "hash": event.get("hash")})
            candidates[leaf.hex()] = f"leaf of event {seq} with the guess"
            leaves.append(leaf)
        except (TypeError, ValueError, KeyError):
            pass
        for pointer, digest in event.get("disclosure", {}).get("withheld", {}).items():
            tried = set(salts) | {value_salt(secret, pointer) for secret in secrets}
            shown = event
            for step in pointer.split("/")[1:]:  # the text shown there, the guess put in
                shown = shown[int(step)] if isinstance(shown, list) else shown.get(step.replace("~1", "/"))
            values = {guess} | ({shown.replace(WITHHELD_MARK, guess)} if isinstance(shown, str) else set())
            for salt in tried:
                if any(value_digest(salt, value) == digest for value in values):
                    hits.append(f"salted digest of {pointer} in event {seq}")
    if leaves:
        candidates[merkle.root(merkle.perfect_from_leaves(leaves), len(leaves)).hex()] = "root with the guess"
    hits += [why for value, why in candidates.items() if value in targets]
    return hits


def leaky_copy(full: Path, values: set[str], target: Path) -> Path:
    """What redacted bags held before salted commitments, for a log hashed the old way: the
    events with the text replaced and their hashes kept, and the signed root (the positive
    control: the attacker must find the value there)."""
    target.mkdir()
    (target / "data").mkdir()
    shown = [json.dumps(redact_document(event, values, ())[0], ensure_ascii=False) for event in lines(full)]
    (target / "data" / "custody.jsonl").write_text("\n".join(shown) + "\n", encoding="utf-8")
    (target / "data" / "note").write_text((full / "data" / "log" / "checkpoint.note").read_text(), encoding="utf-8")
    return target


def salts_leaked(bag: Path, full: Path, target: Path) -> Path:
    """The redacted bag's events, as if the salts of the withheld values had been given too (the
    positive control for salted events: with a salt, a guess is confirmed)."""
    target.mkdir()
    (target / "data").mkdir()
    secrets = {e["seq"]: e["details"]["salt"] for e in lines(full)}
    shown = []
    for event in lines(bag):
        if "disclosure" in event:
            for pointer in event["disclosure"]["withheld"]:
                event["disclosure"]["salts"][pointer] = value_salt(secrets[event["seq"]], pointer)
        shown.append(json.dumps(event, ensure_ascii=False))
    (target / "data" / "custody.jsonl").write_text("\n".join(shown) + "\n", encoding="utf-8")
    return target


# -- tests --------------------------------------------------------------------------------------

PHONES = st.from_regex(r"\+380 [0-9]{2} [0-9]{3} [0-9]{4}", fullmatch=True)


@st.composite
def redactions(draw: st.DrawFn) -> tuple[str, list[str], str, int]:
    secret = draw(PHONES)
    guesses = draw(st.lists(PHONES, min_size=5, max_size=15))
    where = draw(st.sampled_from(["note", "claim", "title", "note_on_add"]))
    others = draw(st.integers(0, 2))
    return secret, [*guesses, secret], where, others


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # one example is a catalog and two bags
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(redactions())
def test_no_guess_at_a_withheld_value_is_confirmed_by_anything_in_the_bag(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[str], str, int]
) -> None:
    secret, guesses, where, others = case
    tmp = tmp_path_factory.mktemp("guess")
    with Catalog.init(tmp / "catalog", operator=OPERATOR) as catalog:
        files = []
        for n in range(others + 1):
            (tmp / f"f{n}.txt").write_bytes(f"file {n}".encode())
            files.append(tmp / f"f{n}.txt")
        if where == "title":  # a record is titled after its file's name
            files[0] = files[0].rename(tmp / f"{secret}.txt")
            secret, guesses = f"{secret}.txt", [f"{guess}.txt" for guess in guesses]
        note = secret if where == "note_on_add" else None
        added = catalog.add_file(files[0], note=note)
        for path in files[1:]:
            catalog.add_file(path, note="unrelated")
        record = added.record_id
        if where == "note":
            field = f"notes/{catalog.add_note(record, secret).id}/text"
        elif where == "claim":
            field = f"claims/{catalog.claim(record, summary=secret, source_description='a witness').id}/summary"
        elif where == "title":
            assert catalog.record(record).title == secret
            field = "title"
        else:
            field = f"notes/{catalog.record(record).notes[0].id}/text"  # the note given on add
        catalog.flag(record, "personal_data", "a private number", fields=[field])
        bag, full = tmp / "bag", tmp / "full"
        catalog.export(bag, format="bagit", redact=True)
        catalog.export(full, format="bagit")
    assert secret not in "".join(p.read_bytes().decode("utf-8", "replace") for p in bag.rglob("*") if p.is_file())
    for guess in guesses:
        assert confirmed(bag, guess) == [], guess
    # The same attacker finds the value as soon as a withheld value's salt is known.
    assert confirmed(salts_leaked(bag, full, tmp / "leaky"), secret)


def test_a_redacted_bag_of_the_whole_catalog_verifies_and_names_what_it_withholds(tmp_path: Path) -> None:
    secret = "+380 44 123 4567"
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        for name in ("a.txt", "b.txt"):
            (tmp_path / name).write_text(name, encoding="utf-8")
        first, second = catalog.add([tmp_path / "a.txt", tmp_path / "b.txt"])
        note = catalog.add_note(first.record_id, f"call {secret}")
        claim = catalog.claim(second.record_id, summary="shelling at dawn", source_description="a witness")
        catalog.flag(first.record_id, "personal_data", "phone", fields=[f"notes/{note.id}/text"])
        bag = tmp_path / "bag"
        catalog.export(bag, format="bagit", redact=True)
    bagit.Bag(str(bag)).validate()
    result = run_script(bag)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROBLEM" not in result.stdout
    assert "events give the checkpoint's root" in result.stdout
    note_event = next(e for e in lines(bag) if e["action"] == "note.added")
    assert f"WITHHELD custody event {note_event['seq']}: hash checked; withheld: /details/note/text" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("verified") and "1 withheld value(s)" in result.stdout
    assert "salt" not in note_event["details"] and DIGEST_PREFIX in json.dumps(note_event["disclosure"])
    assert claim.summary in (bag / "data" / "custody.jsonl").read_text(encoding="utf-8")  # the rest travels
    assert confirmed(bag, secret) == []


def test_a_forged_shown_value_or_salt_is_found(tmp_path: Path) -> None:
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        (tmp_path / "a.txt").write_text("a", encoding="utf-8")
        added = catalog.add_file(tmp_path / "a.txt", note="shown text")
        note = catalog.add_note(added.record_id, "hidden text")
        catalog.flag(added.record_id, "personal_data", "x", fields=[f"notes/{note.id}/text"])
        bag = tmp_path / "bag"
        catalog.export(bag, format="bagit", redact=True)
    path = bag / "data" / "custody.jsonl"
    original = path.read_text(encoding="utf-8")
    assert original.count('"shown text"') == 1
    path.write_text(original.replace('"shown text"', '"other text"'), encoding="utf-8")
    reseal(bag)
    result = run_script(bag)
    assert result.returncode == 1 and "content hashes to" in result.stdout
    # A salt changed to make another text fit is found the same way (it is a salt of that text).
    event = next(e for e in lines(bag) if "disclosure" in e)
    pointer = next(iter(event["disclosure"]["salts"]))
    event["disclosure"]["salts"][pointer] = "0" * 32
    path.write_text(original.replace(original.splitlines()[event["seq"] - 1], json.dumps(event)), encoding="utf-8")
    reseal(bag)
    result = run_script(bag)
    assert result.returncode == 1 and f"custody event {event['seq']}: content hashes to" in result.stdout


def test_events_hashed_before_salted_commitments_are_withheld_whole_without_a_root(
    tmp_path: Path, old_events: None
) -> None:
    secret = "Olena Kovalenko"
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        (tmp_path / "a.txt").write_text("a", encoding="utf-8")
        (tmp_path / "b.txt").write_text("b", encoding="utf-8")
        added = catalog.add_file(tmp_path / "a.txt")
        note = catalog.add_note(added.record_id, secret)
        catalog.add_file(tmp_path / "b.txt", note="after the note, still old")
        assert all("salt" not in e.details for e in catalog.history())
        custody_log.sealed_event = sealing.sealed_event  # this version from here on (the fixture restores it)
        catalog.add_note(added.record_id, "written by this version")
        catalog.flag(added.record_id, "personal_data", "a name", fields=[f"notes/{note.id}/text"])
        assert catalog.verify().ok  # old and new events verify side by side
        bag = tmp_path / "bag"
        catalog.export(bag, format="bagit", redact=True)
    bagit.Bag(str(bag)).validate()
    shown = lines(bag)
    whole = [e["seq"] for e in shown if e.get("withheld") == "whole"]
    # The old note event and every old event after it go whole (each links to the one before).
    note_seq = next(e["seq"] for e in lines_of_full(tmp_path) if e["action"] == "note.added")
    assert whole and whole[0] == note_seq and whole == list(range(note_seq, whole[-1] + 1))
    assert all(set(e) == {"schema", "seq", "withheld"} for e in shown if e["seq"] in whole)
    first_new = next(e for e in shown if e["seq"] == whole[-1] + 1)
    assert first_new["prev_hash"] == WITHHELD_MARK and "/prev_hash" in first_new["disclosure"]["withheld"]
    contents = json.loads((bag / "data" / "contents.json").read_text(encoding="utf-8"))
    assert contents["log"] is None and not (bag / "data" / "log").exists()
    result = run_script(bag)
    assert result.returncode == 0, result.stdout
    assert "withholds events whole" in result.stdout
    assert confirmed(bag, secret) == []


def test_the_attacker_finds_the_value_in_what_redacted_bags_used_to_hold(tmp_path: Path, old_events: None) -> None:
    secret = "+380 44 123 4567"
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        (tmp_path / "a.txt").write_text("a", encoding="utf-8")
        added = catalog.add_file(tmp_path / "a.txt")
        catalog.add_note(added.record_id, f"call {secret}")
        catalog.export(tmp_path / "full", format="bagit")
    leaky = leaky_copy(tmp_path / "full", {secret}, tmp_path / "leaky")
    assert "+380" not in (leaky / "data" / "custody.jsonl").read_text(encoding="utf-8")
    assert confirmed(leaky, secret) and not confirmed(leaky, "+380 44 123 4568")


def lines_of_full(tmp_path: Path) -> list[dict[str, Any]]:
    with Catalog.open(tmp_path / "catalog") as catalog:
        return [unstructure(e) for e in catalog.history()]


def test_canonical_digest_of_text_is_rfc_8785s() -> None:
    for value in ("plain", "é😀\u2028", 'quote " and \\'):
        assert (
            value_digest("00" * 16, value)
            == DIGEST_PREFIX + hashlib.sha256(canonical_json(["00" * 16, value])).hexdigest()
        )


def test_a_disclosed_event_recomputes_and_withholds_the_hashes_of_nested_events_that_held_the_text() -> None:
    nested_old = {"seq": 1, "prev_hash": "0" * 64, "actor": {"name": "a"}, "details": {"note": "Olena K"}}
    nested_old["hash"] = document_hash(nested_old)
    nested_next = {"seq": 2, "prev_hash": nested_old["hash"], "actor": {"name": "a"}, "details": {"n": 1}}
    nested_next["hash"] = document_hash(nested_next)
    event, _ = custody.linked_event(
        None,
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        actor=model.Agent(name="analyst"),
        action="record.imported",
        subject="r",
        details={"record": {"title": "t"}, "history": [nested_old, nested_next]},
    )
    document = unstructure(event)
    shown, changed = redact_document(document, {"Olena K"}, ())
    assert changed
    line = custody.disclose(document, shown, WITHHELD_MARK)
    form, withheld = custody.disclosed_form(line, WITHHELD_MARK)
    assert hashlib.sha256(canonical_json(form)).hexdigest() == event.hash
    assert "salt" not in line["details"]
    # The nested events' hashes commit to the text without salt: withheld with it.
    for n in (0, 1):
        assert line["details"]["history"][n]["hash"] == WITHHELD_MARK
        assert f"/details/history/{n}/hash" in withheld and f"/details/history/{n}/prev_hash" in withheld
    assert nested_old["hash"] not in json.dumps(line)
    # A text shown where a value is withheld must say so: anything else is refused.
    forged = json.loads(json.dumps(line))
    forged["details"]["history"][0]["details"]["note"] = "Ivan P"
    with pytest.raises(ValueError, match="does not say so"):
        custody.disclosed_form(forged, WITHHELD_MARK)


def test_verify_bag_refuses_a_text_put_where_a_value_is_withheld(tmp_path: Path) -> None:
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        (tmp_path / "a.txt").write_text("a", encoding="utf-8")
        added = catalog.add_file(tmp_path / "a.txt")
        note = catalog.add_note(added.record_id, "Olena Kovalenko")
        catalog.flag(added.record_id, "personal_data", "a name", fields=[f"notes/{note.id}/text"])
        bag = tmp_path / "bag"
        catalog.export(bag, format="bagit", redact=True)
    path = bag / "data" / "custody.jsonl"
    original = path.read_text(encoding="utf-8")
    assert original.count(f'"text": "{WITHHELD_MARK}"') == 1
    path.write_text(original.replace(f'"text": "{WITHHELD_MARK}"', '"text": "Ivan Petrenko"'), encoding="utf-8")
    reseal(bag)
    result = run_script(bag)
    assert result.returncode == 1 and "shows a value that does not say so" in result.stdout


def test_metadata_that_held_a_withheld_text_is_shown_redacted_and_committed_whole() -> None:
    event, _ = custody.linked_event(
        None,
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        actor=model.Agent(name="analyst"),
        action="artifact.added",
        subject="r",
        details={"artifact": {"metadata": {"exif": {"Artist": "Olena K", "GPS": [50.45, 30.52]}}}},
    )
    document = unstructure(event)
    shown, _ = redact_document(document, {"Olena K"}, ())
    line = custody.disclose(document, shown, WITHHELD_MARK)
    assert line["details"]["artifact"]["metadata"]["exif"]["Artist"] == WITHHELD_MARK
    form, withheld = custody.disclosed_form(line, WITHHELD_MARK)
    assert withheld == ["/details/artifact/metadata"]
    assert hashlib.sha256(canonical_json(form)).hexdigest() == event.hash
    script = load_script()
    assert script.event_form(json.loads(json.dumps(line)))[1] == withheld
    assert hashlib.sha256(script.canonical(script.event_form(line)[0]).encode()).hexdigest() == event.hash
    forged = json.loads(json.dumps(line))
    forged["details"]["artifact"]["metadata"]["exif"]["Artist"] = "Ivan P"
    with pytest.raises(ValueError, match="does not say so"):
        script.event_form(forged)


def test_an_earlier_export_that_held_a_withheld_text_is_not_given_by_its_digest(tmp_path: Path) -> None:
    """An earlier CSV export of a record is that record's text and nothing else: with a redacted
    bag and a guess at the withheld title anyone writes the CSV again, and the SHA-256 its
    export event gave (or a bag's Payload-Oxum, an exhibit's files) would confirm the guess.
    The viewer and a redacted exhibit show the log as the bag does."""
    from starlette.testclient import TestClient

    from evidence_catalog.interchange.csv import write_csv
    from evidence_catalog.web import make_app

    secret = "Witness Name 1987"
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        (tmp_path / f"{secret}.txt").write_text("statement", encoding="utf-8")
        record_id = catalog.add_file(tmp_path / f"{secret}.txt", analyze=False).record_id
        catalog.export(tmp_path / "sheet.csv", format="csv", record_ids=[record_id])
        catalog.export(tmp_path / "earlier-bag", format="bagit")
        catalog.flag(record_id, "protected_source", "named after the witness", fields=["title"])
        bag = tmp_path / "bag"
        catalog.export(bag, format="bagit", redact=True)
        sink = io.StringIO()  # the attacker's CSV: what the bag shows, and the guess
        write_csv(sink, [attrs.evolve(catalog.record(record_id), title=f"{secret}.txt", flags=())])
        rebuilt = hashlib.sha256(sink.getvalue().encode("utf-8")).hexdigest()
        assert rebuilt == hashlib.sha256((tmp_path / "sheet.csv").read_bytes()).hexdigest()  # the attack works
        exported = [e for e in catalog.history() if e.action == "records.exported"]
        oxum = exported[1].details["bag"]["payload_oxum"]
        with TestClient(make_app(catalog), base_url="http://127.0.0.1:8000") as client:
            log = client.get("/log.json").text
        catalog.exhibit(record_id, tmp_path / "exhibit.html", redact=True)
    exhibit = (tmp_path / "exhibit.html").read_text(encoding="utf-8")
    assert rebuilt not in exhibit and oxum not in exhibit and secret not in exhibit
    assert rebuilt not in bag_targets(bag) and confirmed(bag, secret) == []
    assert oxum not in (bag / "data" / "custody.jsonl").read_text(encoding="utf-8")
    assert rebuilt not in log and oxum not in log and secret not in log
    shown = [e for e in lines(bag) if e["action"] == "records.exported"]
    assert [e["details"]["sha256"] for e in shown] == [WITHHELD_MARK, WITHHELD_MARK]
    bagit.Bag(str(bag)).validate()
    result = run_script(bag)
    assert result.returncode == 0 and "PROBLEM" not in result.stdout, result.stdout + result.stderr


def test_an_earlier_exports_event_hashed_before_salted_commitments_goes_whole_from_a_redacted_exhibit(
    tmp_path: Path, old_events: None
) -> None:
    """Unsalted, an export's event hash is a digest of its text, the SHA-256 of what it wrote
    among it: a redacted exhibit shows such an event as its number only."""
    secret = "Witness Name 1987"
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        (tmp_path / f"{secret}.txt").write_text("statement", encoding="utf-8")
        record_id = catalog.add_file(tmp_path / f"{secret}.txt", analyze=False).record_id
        catalog.export(tmp_path / "sheet.csv", format="csv", record_ids=[record_id])  # the exhibit lists it
        export_event = catalog.history()[-1]
        catalog.flag(record_id, "protected_source", "named after the witness", fields=["title"])
        catalog.exhibit(record_id, tmp_path / "exhibit.html", redact=True)
    exhibit = (tmp_path / "exhibit.html").read_text(encoding="utf-8")
    assert export_event.action == "records.exported" and export_event.hash not in exhibit
    assert secret not in exhibit
