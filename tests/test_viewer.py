"""The read-only viewer (``evidence-catalog serve``) through Starlette's test client: every page
and its JSON, byte ranges, withholding, tokens, hostile parameters -- and that nothing any route
does changes the catalog."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from evidence_catalog import Catalog, model
from evidence_catalog.errors import InputError
from evidence_catalog.schema_files import load_schema
from evidence_catalog.web import make_app
from evidence_catalog.web.serving import parse_range

from .conftest import FixedClock, catalog_database_url, make_jpeg

LOCAL = "http://127.0.0.1:8000"
SECRET_AUTHOR = "Olena Secret-Witness"
REPORT_TEXT = f"Shelling near the school, says {SECRET_AUTHOR}. #school"


@pytest.fixture
def built(tmp_path: Path, operator: model.Agent) -> Iterator[dict[str, Any]]:
    """A catalog with pictures (one with EXIF GPS), a text, an SVG and an HTML file, a report
    with a claim, an assessment and a flag, closed; and its parts' ids."""
    folder = tmp_path / "catalog"
    files = tmp_path / "files"
    files.mkdir()
    (files / "school.jpg").write_bytes(make_jpeg(gps=(48.5, 37.9, None)))
    (files / "flagged.jpg").write_bytes(make_jpeg(colour=(200, 10, 10), gps=(47.1, 37.5, None)))
    (files / "note.txt").write_text("a plain text note\n", encoding="utf-8")
    # Another record's file that holds the flagged report's text (a copy a colleague saved).
    (files / "transcript.txt").write_text(f"Saved:\n{REPORT_TEXT}\n", encoding="utf-8")
    (files / "drawing.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', encoding="utf-8"
    )
    (files / "page.html").write_text("<html><body><script>alert(1)</script></body></html>", encoding="utf-8")
    digest = tmp_path / "digest.txt"
    digest.write_text(
        f"Field Monitor (Twitter)\n{REPORT_TEXT}\n{REPORT_TEXT}\n",
        encoding="utf-8",
    )
    ids: dict[str, Any] = {}
    with Catalog.init(folder, operator=operator, clock=FixedClock()) as catalog:
        added = {p.name: r for p in sorted(files.iterdir()) for r in catalog.add([p], tags=["demo"])}
        ids = {name: result.record_id for name, result in added.items()}
        ids["sha"] = {name: result.sha256 for name, result in added.items()}
        known = set(catalog.record_ids())
        catalog.ingest(digest, format="digest")
        [report_record] = [r for r in catalog.record_ids() if r not in known and catalog.record(r).reports]
        ids["report"] = report_record
        catalog.claim(
            ids["school.jpg"],
            summary="A school hit by shelling",
            category=catalog.categories()[0].code,
            event_time=model.EventTime(start=dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)),
            place=model.Place(name="School No. 5", position=model.GeoPosition(latitude=48.51, longitude=37.91)),
            source_description="a local resident",
        )
        catalog.assess(ids["school.jpg"], "in_progress", methods=["geolocation"], note="matching the roofline")
        catalog.flag(ids["flagged.jpg"], "graphic", "shows injured people")
        record = catalog.record(report_record)
        catalog.flag(
            report_record,
            "protected_source",
            "the witness asked not to be named",
            fields=[f"reports/{record.reports[0].id}/text"],
        )
        catalog.verify()
    ids["folder"] = folder
    return ids


def _client(folder: Path, **options: Any) -> tuple[TestClient, Catalog]:
    catalog = Catalog.open(folder, read_only=True)
    return TestClient(make_app(catalog, **options), base_url=LOCAL), catalog


def _state(folder: Path) -> str:
    """A digest of every row of every table of the catalog's database, and of every file in
    its folder (the SQLite database file's bytes included)."""
    engine = sa.create_engine(catalog_database_url(folder))
    digest = hashlib.sha256()
    try:
        with engine.connect() as connection:
            for name in sorted(sa.inspect(connection).get_table_names()):
                rows = connection.execute(sa.text(f'SELECT * FROM "{name}"')).fetchall()
                digest.update(name.encode() + repr(sorted(map(repr, rows))).encode())
    finally:
        engine.dispose()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm")):
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _routes(client: TestClient, catalog: Catalog) -> list[str]:
    """Every address the viewer answers for this catalog: each page and its JSON, each file,
    thumbnail and check of each record."""
    urls = [
        "/",
        "/records",
        "/records.json",
        "/log",
        "/log.json",
        "/map",
        "/map.json",
        "/timeline",
        "/timeline.json",
        "/records?q=school",
        "/records.json?q=school",
        "/records?status=in_progress",
        "/records?tag=demo&limit=2",
        "/log?after=3&limit=5",
        "/static/viewer.css",
        "/login",
    ]
    for record_id in catalog.record_ids():
        urls += [f"/records/{record_id}", f"/records/{record_id}.json", f"/records/{record_id}/check.json"]
        for entry in catalog.record(record_id).artifacts:
            sha = entry.artifact.sha256
            urls += [
                f"/records/{record_id}/artifacts/{sha}",
                f"/records/{record_id}/thumbnails/{sha}",
                f"/artifacts/{sha}",
                f"/artifacts/{sha}.json",
            ]
    return urls


def test_no_route_changes_the_catalog_and_it_still_verifies(built: dict[str, Any]) -> None:
    folder = built["folder"]
    before = _state(folder)
    client, catalog = _client(folder)
    with catalog:
        for url in _routes(client, catalog):
            response = client.get(url)
            assert response.status_code in (200, 303, 404), (url, response.status_code, response.text[:300])
            client.head(url)
    assert _state(folder) == before
    with Catalog.open(folder) as again:
        assert again.verify(record_event=False).ok


def test_every_page_has_json_that_validates_against_its_published_schema(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        pages = {
            "/records.json": "viewer-records",
            "/records.json?q=school": "viewer-records",
            "/log.json": "viewer-events",
            "/map.json": "viewer-map",
            "/timeline.json": "viewer-timeline",
        }
        for record_id in catalog.record_ids():
            pages[f"/records/{record_id}.json"] = "viewer-record"
            pages[f"/records/{record_id}/check.json"] = "verification-report"
        pages[f"/artifacts/{built['sha']['school.jpg']}.json"] = "viewer-artifact"
        for url, schema in pages.items():
            response = client.get(url)
            assert response.status_code == 200, (url, response.text[:300])
            jsonschema.validate(response.json(), load_schema(schema))
            same = client.get(url.replace(".json", ""), headers={"Accept": "application/json"})
            if "check" not in url:
                assert same.json() == response.json()


def test_a_record_page_shows_its_media_digests_claims_and_events(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        record_id = built["school.jpg"]
        page = client.get(f"/records/{record_id}")
        assert page.status_code == 200
        text = page.text
        assert built["sha"]["school.jpg"] in text  # its SHA-256
        assert "School No. 5" in text and "Alleged" in text
        assert "in_progress" in text and "matching the roofline" in text
        assert "artifact.added" in text and "claim.added" in text
        assert f'src="/records/{record_id}/thumbnails/{built["sha"]["school.jpg"]}"' in text
        document = client.get(f"/records/{record_id}.json").json()
        assert document["last_verification"]["ok"] is True
        assert document["last_verification"]["covers_record"] is True
        assert document["last_verification"]["changed_since"] is False
        assert [e["event"]["seq"] for e in document["events"]] == sorted(e["event"]["seq"] for e in document["events"])
        thumbnail = client.get(f"/records/{record_id}/thumbnails/{built['sha']['school.jpg']}")
        assert thumbnail.status_code == 200
        assert thumbnail.headers["content-type"] == "image/jpeg" and thumbnail.content.startswith(b"\xff\xd8")


def test_the_grid_filters_and_pages_as_list_does(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        everything = [r["id"] for r in client.get("/records.json").json()["records"]]
        assert everything == catalog.record_ids()
        first = client.get("/records.json?limit=2").json()
        assert [r["id"] for r in first["records"]] == everything[:2]
        second = client.get(first["next"].replace("/records", "/records.json")).json()
        assert [r["id"] for r in second["records"]] == everything[2:4]
        in_progress = client.get("/records.json?status=in_progress").json()["records"]
        assert [r["id"] for r in in_progress] == [built["school.jpg"]]
        boxed = client.get("/records.json?bbox=37,48,38,49").json()["records"]
        assert [r["id"] for r in boxed] == [built["school.jpg"]]
        graphic = client.get("/records.json?flag=graphic").json()["records"]
        assert [r["id"] for r in graphic] == [built["flagged.jpg"]]
        assert client.get("/records.json?tag=nothing-has-this").json()["records"] == []


def test_search_finds_reports_but_never_through_withheld_text(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        assert client.get("/records.json?q=Secret-Witness").json()["hits"] == []
        assert client.get("/records.json?q=shelling").json()["hits"] == []  # the report's text is withheld
    shown, catalog = _client(built["folder"], show_sensitive=True)
    with catalog:
        hits = shown.get("/records.json?q=Secret-Witness").json()["hits"]
        assert [h["record"]["id"] for h in hits] == [built["report"]]
        assert SECRET_AUTHOR in hits[0]["text"]


def test_withheld_material_appears_on_no_page_and_no_file_is_served(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        flagged, sha = built["flagged.jpg"], built["sha"]["flagged.jpg"]
        assert client.get(f"/records/{flagged}/artifacts/{sha}").status_code == 404
        assert client.get(f"/records/{flagged}/thumbnails/{sha}").status_code == 404
        assert "withheld" in client.get(f"/records/{flagged}/artifacts/{sha}").text
        summary = next(r for r in client.get("/records.json").json()["records"] if r["id"] == flagged)
        assert summary["withheld"] is True and summary["thumbnail"] is None
        record = client.get(f"/records/{flagged}.json").json()
        assert all(m["display"] == "withheld" and m["url"] is None for m in record["media"])
        # The flagged EXIF position is not on the map; the unflagged one is.
        points = client.get("/map.json").json()["points"]
        assert not any(abs(p["latitude"] - 47.1) < 0.01 for p in points)
        assert any(p["kind"] == "exif" and abs(p["latitude"] - 48.5) < 0.01 for p in points)
        # The protected source's name is on no page, in no JSON, in no event.
        for url in _routes(client, catalog):
            response = client.get(url)
            assert "Secret-Witness" not in response.text, url
        # A file of another record that holds the withheld name is not served either.
        transcript = client.get(f"/records/{built['transcript.txt']}/artifacts/{built['sha']['transcript.txt']}")
        assert transcript.status_code == 404 and "withheld" in transcript.text
        events = client.get("/log.json?limit=1000").json()["events"]
        assert any(e["altered"] for e in events)
        assert all("salt" not in e["event"].get("details", {}) for e in events if e["altered"])
    shown, catalog = _client(built["folder"], show_sensitive=True)
    with catalog:
        served = shown.get(f"/records/{built['flagged.jpg']}/artifacts/{built['sha']['flagged.jpg']}")
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == built["sha"]["flagged.jpg"]
        assert SECRET_AUTHOR in shown.get(f"/records/{built['report']}").text


def test_active_files_are_offered_as_downloads_never_shown(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        for name in ("drawing.svg", "page.html"):
            response = client.get(f"/records/{built[name]}/artifacts/{built['sha'][name]}")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["content-disposition"].startswith("attachment;")
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in response.headers["content-security-policy"]
        picture = client.get(f"/records/{built['school.jpg']}/artifacts/{built['sha']['school.jpg']}")
        assert picture.headers["content-type"] == "image/jpeg"
        assert picture.headers["content-disposition"].startswith("inline;")
        text = client.get(f"/records/{built['note.txt']}/artifacts/{built['sha']['note.txt']}")
        assert text.headers["content-type"] == "text/plain; charset=utf-8"


def test_pages_forbid_scripts_and_requests_elsewhere(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        for url in ("/records", f"/records/{built['school.jpg']}", "/log"):
            response = client.get(url)
            policy = response.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src" not in policy
            assert response.headers["x-frame-options"] == "DENY"
            assert "<script" not in response.text
            # Every address a page refers to is on the viewer itself.
            for address in re.findall(r'(?:src|href|action|poster)="([^"]*)"', response.text):
                assert address.startswith(("/", "#")), (url, address)


@pytest.mark.parametrize(
    "url",
    [
        "/records/..%2f..%2fcatalog.db",
        "/records/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fcatalog.py",
        "/static/../app.py",
        "/records/00000000-0000-7000-8000-000000000000",
        "/records/00000000-0000-7000-8000-000000000000/artifacts/" + "0" * 64,
        "/artifacts/" + "0" * 64,
        "/records/' OR 1=1 --",
        "/records.json?after=' OR 1=1 --",
        "/records.json?limit=-1",
        "/records.json?limit=99999999999999999999",
        "/log.json?after=-5",
        "/records.json?bbox=1,2,3",
        "/records.json?since=not-a-date",
        "/records.json?status=';DROP TABLE record;--",
    ],
)
def test_hostile_addresses_get_a_clear_error_and_change_nothing(built: dict[str, Any], url: str) -> None:
    folder = built["folder"]
    before = _state(folder)
    client, catalog = _client(folder)
    with catalog:
        response = client.get(url, headers={"Accept": "application/json"})
        assert response.status_code in (400, 404), (url, response.status_code)
        assert "Traceback" not in response.text
        body = response.json()
        assert body["error"]
    assert _state(folder) == before


def test_sql_in_search_and_filters_is_text(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        for url in (
            "/records.json?q=%27%20OR%201%3D1%20--",
            "/records.json?tag=%27%20OR%201%3D1%20--",
            "/records.json?category=%27;DROP%20TABLE%20record;--",
        ):
            response = client.get(url)
            if response.status_code == 400:  # a value the filter refuses, said as such
                assert response.json()["error"]
                continue
            assert response.status_code == 200
            assert response.json()["records"] == [] and response.json().get("hits") in (None, [])
        assert len(client.get("/records.json").json()["records"]) == len(catalog.record_ids())


def test_only_get_and_head_reach_the_catalog(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = client.request(method, "/records")
            assert response.status_code == 405


def test_requests_for_another_host_are_refused_without_a_token(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"])
    with catalog:
        assert client.get("/records", headers={"Host": "attacker.example"}).status_code == 421
        assert client.get("/records", headers={"Host": "localhost:8000"}).status_code == 200
        assert client.get("/records", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_another_address_needs_a_token_checked_on_every_request(built: dict[str, Any]) -> None:
    catalog = Catalog.open(built["folder"], read_only=True)
    with catalog:
        with pytest.raises(InputError, match="needs a token"):
            make_app(catalog, host="0.0.0.0")
        token = "t" * 43
        client = TestClient(make_app(catalog, host="0.0.0.0", token=token), base_url="http://192.0.2.1:8000")
        assert client.get("/records.json").status_code == 401
        assert client.get("/records.json", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/records.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        refused = client.get("/records", headers={"Accept": "text/html"}, follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"] == "/login"
        assert client.get(f"/records/{built['school.jpg']}/artifacts/{built['sha']['school.jpg']}").status_code == 401
        assert client.post("/login", data={"token": "nope"}).status_code == 401
        logged = client.post("/login", data={"token": token}, follow_redirects=False)
        assert logged.status_code == 303 and token not in logged.headers["location"]
        cookie = logged.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        page = client.get("/records")  # the cookie the client keeps
        assert page.status_code == 200 and token not in page.text
        for url in _routes(client, catalog):
            response = client.get(url, follow_redirects=False)
            assert token not in response.text and token not in response.headers.get("location", "")


def test_a_record_is_checked_now_and_a_changed_file_is_found(built: dict[str, Any]) -> None:
    folder = built["folder"]
    client, catalog = _client(folder)
    with catalog:
        record_id, sha = built["note.txt"], built["sha"]["note.txt"]
        assert client.get(f"/records/{record_id}/check.json").json()["ok"] is True
        path = catalog.artifact_path(sha)
        path.chmod(0o644)
        path.write_bytes(b"a plain text note, changed\n")
        report = client.get(f"/records/{record_id}/check.json").json()
        assert report["ok"] is False
        assert {f["kind"] for f in report["findings"]} >= {"digest_mismatch"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=3000), first=st.integers(0, 3500), length=st.integers(0, 3500))
def test_parse_range_gives_the_bytes_rfc_9110_names(data: bytes, first: int, length: int) -> None:
    size = len(data)
    last = first + length
    for header, expected in (
        (f"bytes={first}-{last}", data[first : last + 1] if first < size else None),
        (f"bytes={first}-", data[first:] if first < size else None),
        (f"bytes=-{length}", data[-length:] if length and size else None),
    ):
        found = parse_range(header, size)
        if expected is None:
            assert found == "unsatisfiable"
        else:
            assert isinstance(found, tuple)
            assert data[found[0] : found[1] + 1] == expected


def test_byte_ranges_of_a_stored_file_are_its_bytes(tmp_path: Path, operator: model.Agent) -> None:
    blob = bytes(range(256)) * 4099  # just over 1 MiB: several chunks
    source = tmp_path / "clip.bin"
    source.write_bytes(blob)
    with Catalog.init(tmp_path / "catalog", operator=operator) as catalog:
        [added] = catalog.add([source])
    client, catalog = _client(tmp_path / "catalog")
    with catalog:
        url = f"/records/{added.record_id}/artifacts/{added.sha256}"
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content == blob
        assert whole.headers["accept-ranges"] == "bytes"
        for first, last in ((0, 0), (5, 300_000), (len(blob) - 10, len(blob) + 50), (1_000_000, 1_048_575)):
            part = client.get(url, headers={"Range": f"bytes={first}-{last}"})
            assert part.status_code == 206
            assert part.content == blob[first : last + 1]
            assert part.headers["content-range"] == f"bytes {first}-{min(last, len(blob) - 1)}/{len(blob)}"
        tail = client.get(url, headers={"Range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == blob[-100:]
        past = client.get(url, headers={"Range": f"bytes={len(blob)}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(blob)}"
        stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"not-this-file"'})
        assert stale.status_code == 200 and stale.content == blob
        head = client.head(url, headers={"Range": "bytes=0-9"})
        assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""


def test_a_picture_that_cannot_be_decoded_has_no_thumbnail_and_the_viewer_goes_on(
    tmp_path: Path, operator: model.Agent
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(make_jpeg()[:200])  # a JPEG cut short
    with Catalog.init(tmp_path / "catalog", operator=operator) as catalog:
        [added] = catalog.add([broken])
    client, catalog = _client(tmp_path / "catalog")
    with catalog:
        response = client.get(f"/records/{added.record_id}/thumbnails/{added.sha256}")
        assert response.status_code == 404 and "could not be decoded" in response.text
        assert client.get(f"/records/{added.record_id}").status_code == 200


def test_serve_refuses_a_port_in_use_in_one_line(built: dict[str, Any], run_cli: Any) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        result = run_cli("serve", "--catalog", str(built["folder"]), "--port", str(taken.getsockname()[1]))
    finally:
        taken.close()
    assert result.code != 0
    assert "cannot listen on 127.0.0.1 port" in result.err
    assert "Traceback" not in result.err


def test_pages_json_and_log_pages_agree_with_the_library(built: dict[str, Any]) -> None:
    client, catalog = _client(built["folder"], show_sensitive=True)
    with catalog:
        size = catalog.log_size()
        seen = []
        url = "/log.json?limit=7"
        while url:
            page = client.get(url).json()
            seen += [e["event"]["seq"] for e in page["events"]]
            url = page["next"] and page["next"].replace("/log", "/log.json")
        assert seen == list(range(1, size + 1))
        events = {e.seq: e for e in catalog.history()}
        first = client.get("/log.json?after=0&limit=1").json()["events"][0]["event"]
        assert first["hash"] == events[1].hash
        assert json.loads(json.dumps(first)) == json.loads(json.dumps(first))


def test_a_damaged_record_is_named_on_the_grid_and_the_rest_are_shown(built: dict[str, Any]) -> None:
    from .conftest import database_dialect, json_set, run_sql

    folder = built["folder"]
    damaged = built["note.txt"]
    column = json_set(database_dialect(folder), "body", "$.stated_at", "not a time")
    run_sql(folder, "UPDATE record_part SET body = " + column + " WHERE record_id = :r", {"r": built["school.jpg"]})
    client, catalog = _client(folder)
    with catalog:
        page = client.get("/records.json").json()
        assert page["unreadable"] == [built["school.jpg"]]
        assert damaged in [r["id"] for r in page["records"]]
        assert built["school.jpg"] not in [r["id"] for r in page["records"]]
        assert "could not be read" in client.get("/records").text
        broken = client.get(f"/records/{built['school.jpg']}.json")
        assert broken.status_code == 500 and broken.json()["error"]


def test_a_record_changed_after_the_last_verification_says_so(built: dict[str, Any]) -> None:
    with Catalog.open(built["folder"]) as catalog:
        catalog.tag(built["note.txt"], ["later"])
    client, catalog = _client(built["folder"])
    with catalog:
        changed = client.get(f"/records/{built['note.txt']}.json").json()["last_verification"]
        assert changed["covers_record"] is True and changed["changed_since"] is True
        assert "changed after it" in client.get(f"/records/{built['note.txt']}").text
        unchanged = client.get(f"/records/{built['school.jpg']}.json").json()["last_verification"]
        assert unchanged["changed_since"] is False


def test_the_records_holding_a_file_come_a_page_at_a_time(tmp_path: Path, operator: model.Agent) -> None:
    digest = tmp_path / "digest.txt"
    digest.write_text("Feed (Twitter)\n" + "".join(f"item {i}\nitem {i}\n" for i in range(7)), encoding="utf-8")
    with Catalog.init(tmp_path / "catalog", operator=operator) as catalog:
        result = catalog.ingest(digest, format="digest")
        holders = sorted(catalog.records_with_artifact(result.sha256))
    assert len(holders) == 7
    client, catalog = _client(tmp_path / "catalog")
    with catalog:
        seen, url = [], f"/artifacts/{result.sha256}.json?limit=3"
        while url:
            page = client.get(url).json()
            jsonschema.validate(page, load_schema("viewer-artifact"))
            assert page["total"] == 7 and len(page["records"]) <= 3
            seen += [r["id"] for r in page["records"]]
            url = page["next"] and page["next"].replace(
                f"/artifacts/{result.sha256}", f"/artifacts/{result.sha256}.json"
            )
        assert seen == holders


def test_the_served_viewer_outlives_clients_that_hang_up_mid_answer(tmp_path: Path, operator: model.Agent) -> None:
    """A video player cancels a range when it seeks: the connection closes while the viewer is
    still writing.  The command ends quietly when its reader goes (SIGPIPE), which must not
    apply to the server."""
    import contextlib
    import os
    import random
    import select
    import signal
    import socket
    import struct
    import subprocess
    import sys
    import threading
    import urllib.request

    (tmp_path / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    with Catalog.init(tmp_path / "catalog", operator=operator) as catalog:
        [added] = catalog.add([tmp_path / "big.bin"])
    command = [sys.executable, "-m", "evidence_catalog", "serve", "--catalog", str(tmp_path / "catalog"), "--port", "0"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        assert select.select([process.stderr], [], [], 60)[0], "the viewer printed nothing"
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", process.stderr.readline())
        assert found, "no address"
        port = int(found.group(1))
        path = f"/records/{added.record_id}/artifacts/{added.sha256}"

        def hang_up(seed: int) -> None:
            chosen = random.Random(seed)
            for _ in range(50):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
                    start = chosen.randrange(7_000_000)
                    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nRange: bytes={start}-\r\n\r\n"
                    sock.sendall(request.encode())
                    sock.recv(chosen.choice((10, 1000, 100_000)))  # the answer has begun; no more is read
                    if chosen.random() < 0.5:  # hang up hard (a reset), or half-close first
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    else:
                        sock.shutdown(socket.SHUT_RDWR)

        threads = [threading.Thread(target=hang_up, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.5)
        assert process.poll() is None, f"the viewer died: {process.returncode}"
        status = Path(f"/proc/{process.pid}/status")
        if status.exists():  # Linux: the server ignores SIGPIPE (the hang-ups above only sometimes race into it)
            ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status.read_text(), re.M).group(1), 16)  # type: ignore[union-attr]
            assert ignored >> (signal.SIGPIPE - 1) & 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/records.json", timeout=30) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


@pytest.mark.parametrize("token", ["short", " " + "x" * 20, "x" * 20 + "\n", "x" * 15])
def test_a_guessable_token_is_refused(built: dict[str, Any], token: str, run_cli: Any) -> None:
    with Catalog.open(built["folder"], read_only=True) as catalog, pytest.raises(InputError, match="at least 16"):
        make_app(catalog, host="0.0.0.0", token=token)
    result = run_cli("serve", "--catalog", str(built["folder"]), "--host", "0.0.0.0", "--token", token)
    assert result.code == 2 and "at least 16" in result.err and "Traceback" not in result.err
