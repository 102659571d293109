"""Withholding reaches every copy of a value: a file whose bytes hold a withheld text is withheld
too (a platform's metadata file holding a withheld URL, a chat export holding a withheld author),
and bytes withheld on another record because they are shared are listed as such, with why."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]
import pytest

from evidence_catalog import Catalog, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.interchange.redact import needles
from tests.media_server import MediaServer, Route, video_page
from tests.test_capture import CLIP
from tests.test_prov_redact import SECRET, add_bytes, artifact_files, contents, ingest_feed, leaks, validate_bag

URL = "https://video.example.org/watch/0412?от=свідок"


def withheld(bag: Path) -> dict[tuple[str, str], Any]:
    return {(a["record_id"], a["sha256"]): a for a in contents(bag)["redaction"]["withheld_artifacts"]}


@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8", "escaped"])
def test_a_metadata_file_that_holds_a_flagged_url_is_withheld(
    catalog: Catalog, tmp_path: Path, ensure_ascii: bool
) -> None:
    video = add_bytes(catalog, tmp_path, b"\x00\x00\x00\x18ftypmp42 not really", "clip.mp4", source_url=URL)
    info = json.dumps({"webpage_url": URL, "title": "clip"}, ensure_ascii=ensure_ascii).encode()
    assert (URL.encode() in info) is not ensure_ascii  # escaped, the URL's bytes are not there as such
    metadata = add_bytes(catalog, tmp_path, info, "clip.info.json", record_id=video.record_id)
    bystander = add_bytes(catalog, tmp_path, b"nothing to hide", "other.txt")
    [acquisition] = [a for a in catalog.record(video.record_id).acquisitions if a.artifact_sha256 == video.sha256]
    catalog.flag(
        video.record_id, "protected_source", "where it was found", fields=[f"acquisitions/{acquisition.id}/source_url"]
    )
    bag = tmp_path / "bag"
    result = catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)
    bagit.Bag(str(bag)).validate()

    assert leaks(bag, URL) == [] and leaks(bag, json.dumps(URL)[1:-1]) == []
    entry = withheld(bag)[(video.record_id, metadata.sha256)]
    path = f"acquisitions/{acquisition.id}/source_url"
    assert entry["reasons"] == [
        {
            "kind": "protected_source",
            "reason": f"its bytes hold the withheld text of {path} of record {video.record_id}",
        }
    ]
    assert (video.record_id, video.sha256) not in withheld(bag)  # the video's bytes do not hold it
    assert list(artifact_files(bag, bystander.record_id).values()) == [b"nothing to hide"]
    assert result.withheld_artifacts == 1


def test_a_chat_export_of_another_record_that_holds_a_flagged_author_is_withheld(
    catalog: Catalog, tmp_path: Path
) -> None:
    record_id, report, _ = ingest_feed(catalog, tmp_path, author=SECRET)
    export = {
        "name": "Harbour Monitor",
        "type": "public_channel",
        "id": 1500000001,
        "messages": [
            {
                "id": 17,
                "type": "message",
                "date": "2025-05-05T21:30:00",
                "date_unixtime": "1746469800",
                "from": "Harbour Monitor",
                "from_id": "channel1500000001",
                "forwarded_from": "Coast Watch",
                "text": f"Two new berths, says {SECRET}",
            }
        ],
    }
    folder = tmp_path / "telegram"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")
    catalog.ingest(folder / "result.json")
    chat = [catalog.record(r) for r in catalog.record_ids() if r != record_id]
    assert chat
    catalog.flag(record_id, "protected_source", "the source asked", fields=[f"reports/{report.id}/author"])
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)

    assert leaks(bag, SECRET) == []
    document = hashlib.sha256((folder / "result.json").read_bytes()).hexdigest()
    holders = [r.id for r in chat if any(e.artifact.sha256 == document for e in r.artifacts)]
    assert holders
    for holder in holders:
        assert withheld(bag)[(holder, document)]["reasons"] == [
            {
                "kind": "protected_source",
                "reason": f"its bytes hold the withheld text of reports/{report.id}/author of record {record_id}",
            }
        ]


def test_bytes_shared_with_an_unflagged_record_are_listed_as_withheld_because_shared(
    catalog: Catalog, tmp_path: Path
) -> None:
    flagged = add_bytes(catalog, tmp_path, b"the same photo", "a.jpg")
    holder = add_bytes(catalog, tmp_path, b"another record's own file", "own.txt")
    other = add_bytes(catalog, tmp_path, b"the same photo", "b.jpg", record_id=holder.record_id)
    assert other.record_id != flagged.record_id and other.sha256 == flagged.sha256
    catalog.flag(flagged.record_id, "graphic", "shows the wounded")
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", redact=True)
    listed = withheld(bag)
    assert listed[(flagged.record_id, flagged.sha256)]["reasons"] == [
        {"kind": "graphic", "reason": "shows the wounded"}
    ]
    assert listed[(other.record_id, other.sha256)]["reasons"] == [
        {"kind": "graphic", "reason": f"the same bytes are withheld on record {flagged.record_id}: shows the wounded"}
    ]


def test_short_texts_are_looked_for_only_as_whole_json_strings() -> None:
    assert needles("Bob") == sorted(n.encode() for n in {'"Bob"'})
    assert b"Olena" in needles("Olena") and b'"Olena"' not in needles("Olena")
    forms = needles("a/b é")
    assert "a/b é".encode() in forms and b"a/b \\u00e9" in forms and b"a\\/b \\u00e9" in forms


def test_a_url_is_looked_for_as_html_and_links_write_it_too() -> None:
    url = "https://t.me/s/witness?before=12&q=школа"
    forms = needles(url)
    assert b"https://t.me/s/witness?before=12&amp;q=" + "школа".encode() in forms  # in an HTML page
    assert b"https%3A%2F%2Ft.me%2Fs%2Fwitness%3Fbefore%3D12%26q%3D%D1%88%D0%BA%D0%BE%D0%BB%D0%B0" in forms  # a query
    assert needles("\udcff text") and all(isinstance(n, bytes) for n in needles("\udcff text"))


def test_a_capture_whose_url_fields_are_flagged_withholds_its_info_json(
    catalog: Catalog, server: MediaServer, base: str, tmp_path: Path
) -> None:
    # The case as found: the URL flagged in every field of the capture that holds it, and the
    # platform's metadata file (yt-dlp's info.json) and the page snapshot held it verbatim.
    video = server.route(f"{base}/media/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    page = server.route(f"{base}/watch/1", Route(body=video_page(video, title="Test clip"), media_type="text/html"))
    [result] = catalog.capture(page, options=CaptureOptions(retries=0, socket_timeout=2))
    assert result.ok, result.error
    record = catalog.record(result.record_id)
    # The capture's acquisition; the other is the video's analysis (its files are in the bag too).
    [acquisition] = [a for a in record.acquisitions if a.method is not model.AcquisitionMethod.DERIVED]
    fields = [
        f"acquisitions/{acquisition.id}/{name}"
        for name in ("requested_url", "final_url", "source_url")
        if getattr(acquisition, name) == page
    ]
    assert fields
    [info] = [e for e in record.artifacts if e.role is model.ArtifactRole.PLATFORM_METADATA]
    assert page.encode() in catalog.artifact_path(info.artifact.sha256).read_bytes()
    catalog.flag(result.record_id, "protected_source", "the link names the source", fields=fields)
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit", redact=True)
    validate_bag(bag)
    assert leaks(bag, page) == []
    listed = withheld(bag)
    assert (result.record_id, info.artifact.sha256) in listed
    assert listed[(result.record_id, info.artifact.sha256)]["reasons"][0]["reason"].startswith(
        "its bytes hold the withheld text of acquisitions/"
    )
    assert (result.record_id, result.sha256) not in listed  # the video itself does not hold the URL
