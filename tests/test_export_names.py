"""The names files get in an export bag: the name the file had, else a sensible extension for its
media type, and never a name that lost characters on the way.

Real catalogs, real files (one with a name that is not UTF-8), a Telegram Desktop export and a
feed served by a real HTTP server on 127.0.0.1; every bag is checked by bagit-python and imported
back.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.interchange.export import telegram_media_index
from evidence_catalog.interchange.names import _EXTENSIONS, extension_for, portable_name
from tests.conftest import make_jpeg
from tests.media_server import MediaServer, Route
from tests.test_ingest import _telegram_export

OPERATOR = "Tester <t@example.org>"
CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Harbour Monitor</title><link>https://example.org/</link>
<description>News</description>
<item><title>New berths at the east quay</title><link>https://example.org/news/1</link><guid>n-1</guid></item>
</channel></rss>
"""


def _artifact_files(bag: Path) -> dict[str, list[str]]:
    """Record id -> the names of its files in the bag."""
    records = bag / "data" / "records"
    return {folder.name: sorted(p.name for p in (folder / "artifacts").iterdir()) for folder in records.iterdir()}


def _valid(bag: Path) -> None:
    bagit.Bag(str(bag)).validate()


# -- extensions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "extension"),
    [
        ("application/xml", ".xml"),  # mimetypes says .xsl
        ("text/xml; charset=utf-8", ".xml"),
        ("application/rss+xml", ".xml"),
        ("application/atom+xml", ".xml"),
        ("application/vnd.example+xml", ".xml"),
        ("application/vnd.example+json", ".json"),
        ("application/json", ".json"),
        ("image/jpeg", ".jpg"),  # not .jpe
        ("audio/mp4", ".m4a"),  # only some computers' mime.types know it
        ("image/webp", ".webp"),
        ("video/mp4", ".mp4"),
        ("text/x-unknown", ".txt"),
        ("application/x-unknown", ".bin"),
        ("", ".bin"),
    ],
)
def test_a_media_type_has_a_sensible_extension(media_type: str, extension: str) -> None:
    assert extension_for(media_type) == extension


def test_extensions_do_not_depend_on_the_computers_mime_types(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a computer's mime.types adds (read into the module's tables) changes nothing.
    before = {t: extension_for(t) for t in [*_EXTENSIONS, "image/x-icon", "application/x-tar", "font/woff2"]}
    monkeypatch.setattr(mimetypes, "types_map", dict(mimetypes.types_map))
    mimetypes.add_type("application/x-tar", ".weird-tar")
    mimetypes.add_type("font/woff2", ".weird-font")
    assert {t: extension_for(t) for t in before} == before


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=60))
def test_every_media_type_gives_a_short_portable_extension(media_type: str) -> None:
    extension = extension_for(media_type)
    assert extension.startswith(".") and 2 <= len(extension) <= 9
    assert portable_name("source_document" + extension) == "source_document" + extension


# -- names in bags -------------------------------------------------------------------------------


def test_a_feed_ingested_from_a_url_is_named_as_xml(tmp_path: Path, run_cli: Any) -> None:
    cat = tmp_path / "catalog"
    Catalog.init(cat, operator=OPERATOR).close()
    with MediaServer() as server:
        url = server.route("/news/feed", Route(body=FEED, media_type="application/rss+xml"))
        assert run_cli("ingest", url, "--catalog", cat).code == 0, url
    bag = tmp_path / "bag"
    assert run_cli("export", "--format", "bagit", "--catalog", cat, "--output", bag).code == 0
    _valid(bag)
    [names] = _artifact_files(bag).values()
    assert names == ["source_document.xml"]


def test_telegram_media_keep_the_names_they_had_in_the_export(tmp_path: Path, run_cli: Any) -> None:
    folder = _telegram_export(tmp_path / "ChatExport_2025-05-06", photo=make_jpeg())
    cat = tmp_path / "catalog"
    Catalog.init(cat, operator=OPERATOR).close()
    assert run_cli("ingest", folder, "--catalog", cat, "--no-analyze").code == 0  # names of what it brought
    bag = tmp_path / "bag"
    assert run_cli("export", "--format", "bagit", "--catalog", cat, "--output", bag).code == 0
    _valid(bag)
    assert sorted(_artifact_files(bag).values()) == [
        ["clip.mp4", "result.json"],
        ["photo_1@05-05-2025_21-30-00.jpg", "result.json"],
        ["result.json"],  # its photo was not exported
    ]
    other = tmp_path / "other"
    Catalog.init(other, operator=OPERATOR).close()
    assert run_cli("import", bag, "--catalog", other).code == 0
    with Catalog.open(cat) as source, Catalog.open(other) as imported:
        assert sorted(imported.record_ids()) == sorted(source.record_ids())


def test_a_redacted_telegram_record_names_its_media_from_nothing_withheld(tmp_path: Path) -> None:
    folder = _telegram_export(tmp_path / "ChatExport", photo=make_jpeg())
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR) as catalog:
        catalog.ingest(folder)
        first = catalog.record(catalog.record_ids()[0])
        report = first.reports[0]
        catalog.flag(first.id, "personal_data", "protect the channel admin", fields=[f"reports/{report.id}/author"])
        bag = tmp_path / "bag"
        catalog.export(bag, format="bagit", record_ids=[first.id], redact=True)
    _valid(bag)
    names = _artifact_files(bag)[first.id]
    assert "original.jpg" in names and not any(name.startswith("photo_1") for name in names)


NOT_UTF8 = [
    b"caf\xe9 au lait.jpg",  # Latin-1
    b"\xd0\x9a\xd0\xb8\xd1\x97\xd0\xb2 \xff\xfe.jpg",  # UTF-8 with two bytes that are not
    b"a\\b \x80.jpg",  # a literal backslash, and a lone continuation byte
]


@pytest.mark.parametrize("raw", NOT_UTF8)
def test_a_name_that_is_not_utf8_is_kept_whole_in_a_bag_and_exactly_in_the_record(
    raw: bytes, tmp_path: Path, run_cli: Any
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = Path(os.fsdecode(os.fsencode(incoming) + b"/" + raw))  # a real file, its name's bytes as given
    path.write_bytes(make_jpeg())
    assert os.fsencode(path).endswith(b"/" + raw)
    cat = tmp_path / "catalog"
    Catalog.init(cat, operator=OPERATOR).close()
    added = run_cli("add", path, "--catalog", cat, "--no-analyze")  # the photo's own file alone
    assert added.code == 0, added.err
    bag = tmp_path / "bag"
    assert run_cli("export", "--format", "bagit", "--catalog", cat, "--output", bag).code == 0, "export"
    _valid(bag)

    [[name]] = _artifact_files(bag).values()
    shown = raw.decode("utf-8", "backslashreplace")
    assert name == portable_name(shown)  # every character kept: the escapes are not separators
    assert name.endswith(".jpg") and len(name) >= len(shown) - 2
    for word in (b"caf", b"au lait", "Київ".encode(), b"a_b"):
        if word.replace(b"_", b"\\") in raw:
            assert word.decode() in name

    other = tmp_path / "other"
    Catalog.init(other, operator=OPERATOR).close()
    imported = run_cli("import", bag, "--catalog", other)
    assert imported.code == 0, imported.err
    with Catalog.open(other) as catalog:
        [record] = [catalog.record(r) for r in catalog.record_ids()]
    kept = [a for a in record.acquisitions if a.original_path_b64 is not None]
    assert [base64.b64decode(a.original_path_b64 or "") for a in kept] == [os.fsencode(path)]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[" * 100_000 + b"]" * 100_000,  # nested too deep for the parser
        b'{"messages": {"id": 1}}',
        b'{"messages": [1, "two", {"id": 3, "type": "service", "photo": "photos/x.jpg"}]}',
    ],
)
def test_a_document_that_is_not_a_telegram_export_names_nothing(data: bytes) -> None:
    assert not telegram_media_index(data)


def test_telegram_media_are_named_by_their_last_path_step_only() -> None:
    document = {
        "messages": [
            {"id": 5, "type": "message", "photo": "photos\\a.jpg", "file": "../../etc/passwd"},
            {"id": 6, "type": "message", "photo": "(File not included. Change data exporting settings to download.)"},
        ]
    }
    assert telegram_media_index(json.dumps(document).encode()) == {"5": ("a.jpg", "passwd")}
