"""The read-only viewer attacked: what a person given the viewer (started without
``--show-sensitive``) or a hostile file in the catalog could make it give away, change or claim.
Each test here failed before the fix that follows it in the history."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from evidence_catalog import Catalog, model
from evidence_catalog.ingest.digest import report_identity
from evidence_catalog.web import make_app

from .conftest import FixedClock

LOCAL = "http://127.0.0.1:8000"
WITNESS = "Olena Secret-Witness"
#: A report's author whose name is withheld (a flagged field: the whole text is withheld).
NEIGHBOUR = "Kind Neighbour"


def _client(folder: Path, **options: Any) -> tuple[TestClient, Catalog]:
    catalog = Catalog.open(folder, read_only=True)
    return TestClient(make_app(catalog, **options), base_url=LOCAL, raise_server_exceptions=False), catalog


def _jpeg_describing(text: str) -> bytes:
    """A real JPEG whose EXIF ImageDescription is *text* (a caption a camera app wrote), taken
    at 10.25 N, 20.75 E (its GPS)."""
    from PIL.ExifTags import GPS, IFD

    exif = Image.Exif()
    exif[0x010E] = text  # ImageDescription
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSLatitudeRef], gps[GPS.GPSLatitude] = "N", (10.0, 15.0, 0.0)
    gps[GPS.GPSLongitudeRef], gps[GPS.GPSLongitude] = "E", (20.0, 45.0, 0.0)
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 90, 90)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def witnessed(tmp_path: Path, operator: model.Agent) -> dict[str, Any]:
    """Two reports naming a protected witness (their texts flagged), a report whose author is
    flagged, and other records' files that carry that author's name: a photo's caption, an SVG."""
    folder = tmp_path / "catalog"
    files = tmp_path / "files"
    files.mkdir()
    (files / "caption.jpg").write_bytes(_jpeg_describing(f"Photographed by {NEIGHBOUR}"))
    (files / "sketch.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg"><text>Drawn for {NEIGHBOUR}</text></svg>', encoding="utf-8"
    )
    digest = tmp_path / "digest.txt"
    first = f"Shelling near the school, says {WITNESS}."
    second = f"The bridge is down, {WITNESS} reports."
    digest.write_text(f"Field Monitor (Twitter)\n{first}\n{first}\n{second}\n{second}\n", encoding="utf-8")
    anonymous = tmp_path / "anonymous.txt"
    anonymous.write_text("Kind Neighbour (Telegram)\nWater is back on.\nWater is back on.\n", encoding="utf-8")
    ids: dict[str, Any] = {"folder": folder}
    with Catalog.init(folder, operator=operator, clock=FixedClock()) as catalog:
        for path in sorted(files.iterdir()):
            [added] = catalog.add([path])
            ids[path.name] = added.record_id
            ids[f"sha:{path.name}"] = added.sha256
        known = set(catalog.record_ids())
        catalog.ingest(digest, format="digest")
        reports = [(r, p) for r in catalog.record_ids() if r not in known for p in catalog.record(r).reports]
        assert len(reports) == 2
        for record_id, report in reports:
            catalog.flag(record_id, "protected_source", "the witness asked", fields=[f"reports/{report.id}/text"])
        ids["reports"] = [r for r, _ in reports]
        known = set(catalog.record_ids())
        catalog.ingest(anonymous, format="digest")
        [(record_id, report)] = [
            (r, p) for r in catalog.record_ids() if r not in known for p in catalog.record(r).reports
        ]
        catalog.flag(record_id, "protected_source", "the author's name", fields=[f"reports/{report.id}/author"])
        ids["anonymous"] = record_id
        ids["anonymous_text"] = report.text
    return ids


def test_a_withheld_author_cannot_be_confirmed_from_the_reports_identity(witnessed: dict[str, Any]) -> None:
    """A digest's report is identified by SHA-256 of its feed, author and text: with the text
    shown, the hash confirms a guess at the withheld author (or feed) -- the dictionary attack
    on a name that withholding a field must prevent."""
    client, catalog = _client(witnessed["folder"])
    with catalog:
        guess = _guessed_identity(witnessed)
        record = client.get(f"/records/{witnessed['anonymous']}.json")
        assert record.status_code == 200
        assert "Kind Neighbour" not in record.text  # the name itself is withheld ...
        assert guess not in record.text  # ... and so is the hash that would confirm it
        for url in ("/log.json?limit=1000", "/records.json", "/timeline.json", "/map.json"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert "Kind Neighbour" not in response.text and guess not in response.text, url


def _guessed_identity(witnessed: dict[str, Any]) -> str:
    """The identity the anonymous report would have if its withheld author were the guess."""
    return report_identity(
        platform="telegram",
        post_id=None,
        feed="Kind Neighbour",
        author="Kind Neighbour",
        text=witnessed["anonymous_text"],
    )


def test_a_redacted_export_withholds_the_identity_too(witnessed: dict[str, Any], tmp_path: Path) -> None:
    with Catalog.open(witnessed["folder"]) as catalog:
        guess = _guessed_identity(witnessed)
        assert catalog.record(witnessed["anonymous"]).reports[0].identity == guess
        catalog.export(tmp_path / "bag", format="bagit", redact=True, record_ids=[witnessed["anonymous"]])
    held = "".join(p.read_text("utf-8", "replace") for p in (tmp_path / "bag").rglob("*") if p.is_file())
    assert "Kind Neighbour" not in held and guess not in held


def test_a_picture_or_drawing_of_another_record_that_holds_a_withheld_text_is_not_served(
    witnessed: dict[str, Any],
) -> None:
    """A redacted export withholds every file whose bytes hold a withheld text, pictures too (a
    caption in EXIF, the text of an SVG); the viewer served them."""
    client, catalog = _client(witnessed["folder"])
    with catalog:
        for name in ("caption.jpg", "sketch.svg"):
            record_id, sha = witnessed[name], witnessed[f"sha:{name}"]
            assert NEIGHBOUR.encode() in catalog.open_artifact(sha).read()
            for url in (f"/records/{record_id}/artifacts/{sha}", f"/records/{record_id}/thumbnails/{sha}"):
                for method in ("GET", "HEAD"):
                    response = client.request(method, url, headers={"Range": "bytes=0-"})
                    assert response.status_code == 404, (name, url, method)
                    assert NEIGHBOUR.encode() not in response.content
            # So is what was made from it (an analysis's perceptual hashes would find it).
            page = client.get(f"/records/{record_id}.json").json()
            assert {m["display"] for m in page["media"]} == {"withheld"}, name
            # Its embedded metadata (the caption itself, a position) is left out, as an export does.
            assert all(a["artifact"]["metadata"] is None for a in page["record"]["artifacts"]), name
            assert sha in {w["sha256"] for w in page["withheld_artifacts"]}
            assert NEIGHBOUR not in client.get(f"/records/{record_id}").text
            for entry in catalog.record(record_id).artifacts:
                made = entry.artifact.sha256
                assert client.get(f"/records/{record_id}/artifacts/{made}").status_code == 404, (name, made)
        grid = {r["id"]: r for r in client.get("/records.json").json()["records"]}
        assert grid[witnessed["caption.jpg"]]["withheld"] and grid[witnessed["caption.jpg"]]["thumbnail"] is None
        shown, catalog2 = _client(witnessed["folder"], show_sensitive=True)
        with catalog2:
            record_id, sha = witnessed["caption.jpg"], witnessed["sha:caption.jpg"]
            assert shown.get(f"/records/{record_id}/artifacts/{sha}").status_code == 200


def test_search_gives_no_sign_that_withheld_texts_match(witnessed: dict[str, Any]) -> None:
    """Two reports whose texts are withheld both name the witness: a search for the name must
    not answer differently from a search for a name nobody wrote (no hit, and no next page)."""
    client, catalog = _client(witnessed["folder"])
    with catalog:
        for limit in (1, 2, 48):
            guessed = client.get("/records.json", params={"q": "Secret-Witness", "limit": limit}).json()
            nobody = client.get("/records.json", params={"q": "Nobody-Wrote-This", "limit": limit}).json()
            assert guessed["hits"] == nobody["hits"] == []
            assert guessed["next"] is None and nobody["next"] is None, limit
        shown, catalog2 = _client(witnessed["folder"], show_sensitive=True)
        with catalog2:
            first = shown.get("/records.json", params={"q": "Secret-Witness", "limit": 1}).json()
            assert len(first["hits"]) == 1 and first["next"]
            second = shown.get(first["next"].replace("/records", "/records.json")).json()
            assert len(second["hits"]) == 1 and second["hits"][0]["report_id"] != first["hits"][0]["report_id"]


def _rewrite_claim(folder: Path, record_id: str, summary: str) -> int:
    """What someone who can write the database (not the log key) does to change a claim without
    the record's own check noticing: the claim's row, its event, the event's hash and its leaf
    in the stored Merkle tree, all made to agree.  Returns the event's number."""
    from evidence_catalog.custody import Action, hash_and_leaf
    from evidence_catalog.serialize import to_document

    from .conftest import database_dialect, json_set, run_sql

    with Catalog.open(folder, read_only=True) as catalog:
        [event] = [e for e in catalog.record_events(record_id) if e.action == Action.CLAIM_ADDED]
        [claim] = catalog.record(record_id).claims
    document = to_document(event)
    document["details"]["claim"]["summary"] = summary
    recomputed, _ = hash_and_leaf(document)
    document["hash"] = recomputed
    _, leaf = hash_and_leaf(document)
    dialect = database_dialect(folder)
    run_sql(
        folder,
        "update custody_event set details = "
        + json_set(dialect, "details", "$.claim.summary", summary)
        + ", hash = :hash where seq = :seq",
        {"hash": recomputed, "seq": event.seq},
    )
    run_sql(
        folder,
        "update merkle_node set hash = :hash where level = 0 and idx = :idx",
        {"hash": leaf.hex(), "idx": event.seq - 1},
    )
    run_sql(
        folder,
        "update record_part set body = " + json_set(dialect, "body", "$.summary", summary) + " where id = :id",
        {"id": claim.id},
    )
    return event.seq


def _claimed(tmp_path: Path, operator: model.Agent, then: Any) -> tuple[Path, Any]:
    """A catalog folder with a picture, a claim on it and a later note, *then* called on it
    (``Catalog.verify`` or ``Catalog.checkpoint``); and the picture's AddResult."""
    (tmp_path / "school.jpg").write_bytes(_jpeg_describing("a school"))
    folder = tmp_path / "catalog"
    with Catalog.init(folder, operator=operator, clock=FixedClock()) as catalog:
        [added] = catalog.add([tmp_path / "school.jpg"])
        catalog.claim(added.record_id, summary="A school hit by shelling", source_description="a resident")
        catalog.add_note(added.record_id, "an event after the claim")
        then(catalog)
    return folder, added


def test_a_records_check_finds_a_claim_rewritten_with_its_event_hash_and_leaf(
    tmp_path: Path, operator: model.Agent
) -> None:
    """The record's own check compared each event with its stored hash and leaf only: rewriting
    those too (anyone who can write the database can) left ``ok: true``.  The signed checkpoint,
    which needs the log key, does not agree."""
    folder, added = _claimed(tmp_path, operator, Catalog.verify)
    client, catalog = _client(folder)
    with catalog:
        assert client.get(f"/records/{added.record_id}/check.json").json()["ok"] is True
    seq = _rewrite_claim(folder, added.record_id, "A hospital hit by shelling")
    with Catalog.open(folder, read_only=True) as again:
        assert again.record(added.record_id).claims[0].summary == "A hospital hit by shelling"
        assert not again.verify(record_event=False).ok  # the whole catalog's check finds it
    client, catalog = _client(folder)
    with catalog:
        report = client.get(f"/records/{added.record_id}/check.json").json()
        assert report["ok"] is False
        assert any(f.get("first_seq") == seq or f.get("seq") == seq for f in report["findings"]), report["findings"]


def test_a_record_changed_after_the_last_verify_is_not_shown_as_covered_by_it(
    tmp_path: Path, operator: model.Agent
) -> None:
    """The page said the latest verify "found nothing wrong" of a record assessed ``verified``
    after it ran: nothing said that verification never saw the record as it is now."""
    (tmp_path / "school.jpg").write_bytes(_jpeg_describing("a school"))
    (tmp_path / "other.txt").write_text("another record", encoding="utf-8")
    folder = tmp_path / "catalog"
    with Catalog.init(folder, operator=operator, clock=FixedClock()) as catalog:
        [added] = catalog.add([tmp_path / "school.jpg"])
        [other] = catalog.add([tmp_path / "other.txt"])
        catalog.verify()
        catalog.assess(added.record_id, "verified", methods=["geolocation"], note="assessed after the verify")
    client, catalog = _client(folder)
    with catalog:
        document = client.get(f"/records/{added.record_id}.json").json()["last_verification"]
        assert document["ok"] is True and document["covers_record"] is True
        assert document["changed_since"] is True
        page = client.get(f"/records/{added.record_id}").text
        assert "changed after it" in page
        untouched = client.get(f"/records/{other.record_id}.json").json()["last_verification"]
        assert untouched["changed_since"] is False
        assert "changed after it" not in client.get(f"/records/{other.record_id}").text


def _big_png(width: int, height: int) -> bytes:
    """A PNG of one colour that is small on disk and large decoded (a mild decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width * 3)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_many_thumbnails_asked_at_once_decode_a_few_pictures_at_a_time(
    tmp_path: Path, operator: model.Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thumbnail is made in a child allowed 1 GiB: a page of large pictures (or a script)
    asking for many at once started a child for each, all at once, and one for each time the
    same picture was asked for."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from evidence_catalog.web.serving import Thumbnails

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for n in range(6):
        (pictures / f"large-{n}.png").write_bytes(_big_png(3000 + n, 3000))
    folder = tmp_path / "catalog"
    with Catalog.init(folder, operator=operator, clock=FixedClock()) as catalog:
        added = catalog.add(sorted(pictures.iterdir()))
    making, peak, made, lock = [0], [0], [0], threading.Lock()
    make = Thumbnails._make

    def counted(self: Thumbnails, local_copy: Any) -> bytes | None:
        with lock:
            making[0] += 1
            made[0] += 1
            peak[0] = max(peak[0], making[0])
        try:
            return make(self, local_copy)
        finally:
            with lock:
                making[0] -= 1

    monkeypatch.setattr(Thumbnails, "_make", counted)
    client, catalog = _client(folder)
    with catalog, ThreadPoolExecutor(len(added)) as pool:
        urls = [f"/records/{a.record_id}/thumbnails/{a.sha256}" for a in added] * 2
        answers = list(pool.map(client.get, urls))
    assert all(a.status_code == 200 and a.content.startswith(b"\xff\xd8") for a in answers)
    assert peak[0] <= 2, peak[0]
    assert made[0] == len(added)  # a picture asked for twice at once is decoded once


def test_a_file_missing_from_the_store_or_cut_short_is_not_answered_200(tmp_path: Path, operator: model.Agent) -> None:
    """The file route sent ``200 OK`` and the recorded length before it opened the stored file:
    a file missing from the blob store (or shorter than recorded) was a success that ended in a
    dropped connection, and HEAD said it was there."""
    (tmp_path / "note.txt").write_text("a plain text note of some length\n", encoding="utf-8")
    (tmp_path / "other.txt").write_text("another note\n", encoding="utf-8")
    folder = tmp_path / "catalog"
    with Catalog.init(folder, operator=operator, clock=FixedClock()) as catalog:
        [gone, short] = catalog.add([tmp_path / "note.txt", tmp_path / "other.txt"])
        catalog.artifact_path(gone.sha256).unlink()
        stored = catalog.artifact_path(short.sha256)
        stored.chmod(0o644)
        stored.write_bytes(b"anot")
    client, catalog = _client(folder)
    with catalog:
        for added, words in ((gone, "missing"), (short, "size")):
            url = f"/records/{added.record_id}/artifacts/{added.sha256}"
            for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=1-"})):
                response = client.request(method, url, headers=headers)
                assert response.status_code >= 400, (words, method, headers, response.status_code)
            answer = client.get(url, headers={"Accept": "application/json"}).json()
            assert words in answer["error"] and "verify" in answer["error"]


@pytest.mark.parametrize("host", ["127.0.0.1.example.org", "127.attacker.example", "::ffff:192.0.2.1", "0.0.0.0"])
def test_a_name_that_only_looks_like_a_loopback_address_needs_a_token(witnessed: dict[str, Any], host: str) -> None:
    """``127.`` at the start of a host *name* says nothing of where it resolves: the viewer bound
    there without a token."""
    from evidence_catalog.errors import InputError
    from evidence_catalog.web import is_loopback

    assert not is_loopback(host)
    with Catalog.open(witnessed["folder"], read_only=True) as catalog, pytest.raises(InputError, match="needs a token"):
        make_app(catalog, host=host)
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")


def test_a_filter_does_not_confirm_a_withheld_text_kept_in_a_tag(witnessed: dict[str, Any], tmp_path: Path) -> None:
    """A tag that holds a withheld name is shown as withheld, but the tag filter matched the
    record as stored: ``?tag=<guess>`` listed the record exactly when the guess was right (alone,
    and with a search)."""
    digest = tmp_path / "power.txt"
    digest.write_text("City Desk (Telegram)\nPower is back on.\nPower is back on.\n", encoding="utf-8")
    with Catalog.open(witnessed["folder"]) as catalog:
        known = set(catalog.record_ids())
        catalog.ingest(digest, format="digest")
        [public] = [r for r in catalog.record_ids() if r not in known]
        catalog.tag(public, [NEIGHBOUR])
    client, catalog = _client(witnessed["folder"])
    with catalog:
        assert NEIGHBOUR not in client.get(f"/records/{public}.json").json()["record"]["tags"]
        assert client.get("/records.json", params={"q": "power"}).json()["hits"]  # the report is shown
        for guess in (NEIGHBOUR, "Kind Stranger"):
            assert client.get("/records.json", params={"tag": guess}).json()["records"] == [], guess
            assert client.get("/records.json", params={"tag": guess, "q": "power"}).json()["hits"] == [], guess
            assert client.get("/timeline.json", params={"tag": guess}).json()["items"] == [], guess


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "\uff11", "1_0"])
def test_a_number_parameter_is_ascii_digits_or_a_clear_400(witnessed: dict[str, Any], value: str) -> None:
    """``str.isdigit`` holds for a superscript two, which ``int`` refuses: the page failed (500)."""
    client, catalog = _client(witnessed["folder"])
    with catalog:
        for url, name in (
            ("/records.json", "limit"),
            ("/records.json", "offset"),
            ("/log.json", "limit"),
            ("/log.json", "after"),
        ):
            response = client.get(url, params={name: value})
            assert response.status_code == 400, (url, name, response.status_code)
            assert name in response.json()["error"]


def test_an_exhibit_refuses_a_claim_rewritten_with_its_event_hash_and_leaf(
    tmp_path: Path, operator: model.Agent
) -> None:
    """The exhibit shares the record's check: it printed the rewritten claim as the log's."""
    from evidence_catalog.errors import IntegrityError

    folder, added = _claimed(tmp_path, operator, Catalog.checkpoint)
    seq = _rewrite_claim(folder, added.record_id, "A hospital hit by shelling")
    with Catalog.open(folder) as catalog, pytest.raises(IntegrityError) as raised:
        catalog.exhibit(added.record_id, tmp_path / "exhibit.html")
    # The event, or its neighbour in the tree (whose proof goes through the rewritten leaf).
    assert raised.value.where in (f"custody event {seq}", f"custody event {seq - 1}")
    assert not (tmp_path / "exhibit.html").exists()


def test_files_and_thumbnails_are_not_kept_in_the_browsers_cache(witnessed: dict[str, Any]) -> None:
    """Pages were ``no-store``, but files were ``private, no-cache`` and thumbnails cached for an
    hour: a browser kept pictures on its disk (flagged ones too, with ``--show-sensitive``, or a
    picture flagged since), where the viewer writes nothing."""
    client, catalog = _client(witnessed["folder"], show_sensitive=True)
    with catalog:
        record_id, sha = witnessed["caption.jpg"], witnessed["sha:caption.jpg"]
        for url in (f"/records/{record_id}/artifacts/{sha}", f"/records/{record_id}/thumbnails/{sha}"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert "no-store" in response.headers["cache-control"], (url, response.headers["cache-control"])
            assert "max-age" not in response.headers["cache-control"]


def test_a_verification_event_edited_to_say_ok_is_not_shown_as_a_verification(tmp_path: Path, operator: Any) -> None:
    from evidence_catalog import Catalog

    from .conftest import database_dialect, json_set, run_sql

    (tmp_path / "a.txt").write_text("a")
    with Catalog.init(tmp_path / "c", operator=operator) as catalog:
        [added] = catalog.add([tmp_path / "a.txt"])
        catalog.artifact_path(added.sha256).chmod(0o644)
        catalog.artifact_path(added.sha256).write_text("b")
        report = catalog.verify()
        assert not report.ok and report.logged
        assert catalog.last_verification() is not None
    dialect = database_dialect(tmp_path / "c")
    edited = json_set(dialect, "details", "$.ok", True)
    run_sql(tmp_path / "c", f"UPDATE custody_event SET details = {edited} WHERE action = 'catalog.verified'")
    with Catalog.open(tmp_path / "c", read_only=True) as viewed:
        assert viewed.last_verification() is None


def test_a_file_withheld_for_its_caption_puts_no_point_on_the_map(witnessed: dict[str, Any]) -> None:
    """A redacted export leaves out a withheld file's metadata, its GPS position with it."""
    client, catalog = _client(witnessed["folder"])
    with catalog:
        points = client.get("/map.json").json()["points"]
        assert not any(abs(p["latitude"] - 10.25) < 0.01 for p in points)
    shown, catalog = _client(witnessed["folder"], show_sensitive=True)
    with catalog:
        points = shown.get("/map.json").json()["points"]
        assert any(p["kind"] == "exif" and abs(p["latitude"] - 10.25) < 0.01 for p in points)
