"""Ingesting feed-reader digests into a catalog: reports on records, all or nothing, idempotent."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evidence_catalog import Catalog, model
from evidence_catalog.errors import InputError
from evidence_catalog.schema_files import load_schema
from tests.test_digest import DIGEST


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def digest_file(tmp_path: Path) -> Path:
    path = tmp_path / "digest-0505.txt"
    path.write_text(DIGEST, encoding="utf-8")
    return path


def test_each_item_becomes_a_report_on_a_record_with_the_digest_as_its_source(
    catalog: Catalog, digest_file: Path
) -> None:
    result = catalog.ingest(digest_file, tags=["harbour"])
    assert (result.items, result.reports_added, result.reports_present, result.records_added) == (2, 2, 0, 2)
    assert result.new_bytes and result.warnings == ()
    assert catalog.artifact_path(result.sha256).read_bytes() == digest_file.read_bytes()
    thread, film = (catalog.record(record_id) for record_id in catalog.record_ids())
    [report] = thread.reports
    assert report.text.startswith("RT @coast_watch: Night images") and report.url_known is False
    assert report.repost == model.Repost(reposted_by="Harbour Monitor", original_author="coast_watch")
    assert report.line_span == model.LineSpan(2, 7) and report.document_sha256 == result.sha256
    assert report.identity is not None and report.identity.startswith("sha256:")
    [source] = thread.artifacts
    assert source.role is model.ArtifactRole.SOURCE_DOCUMENT and source.artifact.sha256 == result.sha256
    assert thread.acquisitions[0].method is model.AcquisitionMethod.INGESTED_FROM_FEED
    assert thread.acquisitions[0].note == (
        "digest lines 2-7: title and description repeat the same text, kept once"
    )  # the repetition is noted, the text stored once
    assert thread.tags == ("harbour",)
    assert film.reports[0].link_cards[0].truncated
    assert film.title == "Our @CityPaper team’s new film is out: what the yard ledgers show"
    assert catalog.verify().ok  # every record is rebuilt from the log, reports included
    schema = load_schema("evidence-record")
    for record in (thread, film):
        jsonschema.validate(json.loads(json.dumps(_document(record))), schema)


def _document(record: model.EvidenceRecord) -> Any:
    from evidence_catalog.serialize import to_document

    return to_document(record)


def test_ingesting_again_adds_nothing_but_the_repeat_is_logged(
    catalog: Catalog, digest_file: Path, tmp_path: Path
) -> None:
    catalog.ingest(digest_file)
    again = catalog.ingest(digest_file)
    assert (again.reports_added, again.reports_present, again.new_bytes) == (0, 2, False)
    # The same post in another digest (other lines around it) is the same report.
    other = tmp_path / "other.txt"
    other.write_text(DIGEST.split("Records Desk (Telegram)\n")[0] + "Extra (Twitter)\nNew post\nNew post\n", "utf-8")
    third = catalog.ingest(other)
    assert (third.reports_added, third.reports_present) == (1, 1)
    assert len(catalog.record_ids()) == 3
    summaries = [e.details for e in catalog.history() if e.action == "digest.ingested"]
    assert [(s["reports_added"], s["reports_present"]) for s in summaries] == [(2, 0), (0, 2), (1, 1)]
    assert catalog.verify().ok


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        ("Caf\u00e9 Watch (Twitter)\nPost\nPost\n".encode("latin-1"), r"is not UTF-8 text \(byte 3\)"),
        (b"just some notes\nwithout any feed header\n", "no feed items found"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    catalog: Catalog, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as raised:
        catalog.ingest(path)
    assert raised.value.where is not None and "bad.txt" in raised.value.where
    assert catalog.record_ids() == []
    assert [e.action for e in catalog.history()] == ["catalog.created"]
    assert not any((catalog.path / "blobs").rglob("sha256/*/*/*"))


def test_parts_that_do_not_fit_are_ingested_and_warned_about(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_text("Feed (Telegram)\nfirst line only once\nsecond line only once\nPost\nPost\n", "utf-8")
    result = catalog.ingest(path)
    assert result.reports_added == 2
    assert [line for line, _ in result.warnings] == [2]


def test_an_item_cut_mid_way_is_kept_as_written_and_warned_about(catalog: Catalog, tmp_path: Path) -> None:
    """A digest cut off in the middle of an item's repetition (a copy that stopped early):
    the items before it are whole, the cut one is kept exactly as far as it goes, with a
    warning naming its first line, and its lines point into the stored digest."""
    post = "Satellite images from 3 March show new earthworks near the depot."
    whole = f"Feed (Twitter)\nFirst post\nFirst post\n{post}\n1. The trenches appear.\n{post}\n1. The tre"
    path = tmp_path / "cut.txt"
    path.write_bytes(whole.encode("utf-8"))
    result = catalog.ingest(path)
    reports = sorted(
        (r for record in catalog.records() for r in record.reports),
        key=lambda r: r.line_span.first if r.line_span else 0,
    )
    assert [r.text for r in reports] == ["First post", f"{post}\n1. The trenches appear.\n{post}\n1. The tre"]
    assert result.warnings == ((4, "item text is not repeated (title and description differ or one is missing)"),)
    stored = (catalog.artifact_path(result.sha256)).read_bytes().decode("utf-8").split("\n")
    span = reports[1].line_span
    assert span is not None and "\n".join(stored[span.first - 1 : span.last]) == reports[1].text


@pytest.mark.slow
def test_an_8_mb_digest_of_lines_that_never_repeat_is_read_in_linear_time(catalog: Catalog, tmp_path: Path) -> None:
    """A hostile or mangled 8 MB digest (no line repeats) does not hang the reader: it is one
    item with a warning, stored whole, found by search.  (Quadratic reading took hours on a 20 MB
    one; the time linear reading takes is measured by ``benchmarks/run.py --only ingest``.)"""
    import time

    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as out:
        out.write("Noise Feed (Twitter)\n")
        for n in range(136_000):
            out.write(f"line {n:07d} of a digest that never repeats anything at all\n")
    assert path.stat().st_size > 8_000_000
    started = time.monotonic()
    result = catalog.ingest(path)
    assert time.monotonic() - started < 120  # was hours: every line tried 200 repeat lengths
    assert (result.items, result.reports_added) == (1, 1)
    assert [line for line, _ in result.warnings] == [2]
    assert catalog.artifact_path(result.sha256).stat().st_size == path.stat().st_size
    [hit] = catalog.search("0135999")
    assert hit.report.line_span is not None and hit.report.line_span.last == 136_001


def test_the_ingest_command_prints_counts_and_warnings(catalog: Catalog, digest_file: Path, run_cli: Any) -> None:
    catalog.close()
    first = run_cli("ingest", digest_file, "--catalog", catalog.path, "--tag", "harbour")
    assert first.code == 0, first.err
    assert first.out.startswith(
        "2 item(s): 2 report(s) added on 2 new record(s), 0 already present; 1 artifact(s) stored, 0 already stored; "
    )
    assert first.out.rstrip().endswith(f"; digest {sha256_of(digest_file)}")
    again = run_cli("ingest", digest_file, "--catalog", catalog.path)
    assert (
        "0 report(s) added on 0 new record(s), 2 already present; 0 artifact(s) stored, 1 already stored" in again.out
    )
    with Catalog.open(catalog.path) as reopened:
        film = reopened.record_ids()[1]
    shown = run_cli("show", film, "--catalog", catalog.path).out
    assert "report   " in shown and "(Telegram / Records Desk)" in shown
    assert "  url      unknown (the source did not give one)" in shown
    assert "  | Our @CityPaper team’s new film is out: what the yard ledgers show" in shown
    assert "  card     YouTube: ‘Read the ledger twice’: the East Quay records | City Paper Film (cut short)" in shown
    bad = run_cli("ingest", digest_file.parent / "missing.txt", "--catalog", catalog.path)
    assert bad.code == 2 and bad.err.startswith("error: ") and "missing.txt" in bad.err


# -- RSS and Atom (real feedparser on feeds written here) ----------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel>
  <title>Harbour Monitor</title>
  <link>https://monitor.example.org/</link>
  <description>Posts about the East Quay yard</description>
  <item>
    <title>Two new berths at the East Quay yard</title>
    <link>https://monitor.example.org/posts/101</link>
    <guid isPermaLink="false">monitor-101</guid>
    <author>desk@monitor.example.org (Night Desk)</author>
    <pubDate>Mon, 05 May 2025 21:30:00 +0300</pubDate>
    <description>Night images show two new berths — “maintenance”, said the operator.</description>
    <enclosure url="https://cdn.example.org/101.mp4" length="5234" type="video/mp4"/>
    <media:content url="https://cdn.example.org/101-hd.mp4" type="video/mp4"/>
  </item>
  <item>
    <title>Gate closed on 4 May</title>
    <link>https://monitor.example.org/posts/102</link>
    <guid>https://monitor.example.org/posts/102</guid>
    <pubDate>not a date</pubDate>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Records Desk</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>
  <updated>2025-05-06T08:00:00Z</updated>
  <link href="https://desk.example.net/"/>
  <entry>
    <title>Our film on the yard ledgers</title>
    <id>tag:desk.example.net,2025:film-7</id>
    <link rel="alternate" href="https://desk.example.net/film-7"/>
    <link rel="enclosure" href="https://video.example.net/film-7.mp4" type="video/mp4"/>
    <author><name>City Paper</name></author>
    <published>2025-05-06T07:45:00+02:00</published>
    <updated>2025-05-06T08:00:00Z</updated>
    <summary>Two reporters compared ledgers with satellite pictures.</summary>
  </entry>
</feed>
"""


def test_an_rss_feed_becomes_reports_with_ids_links_times_and_enclosures(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "monitor.rss"
    path.write_text(RSS, encoding="utf-8")
    result = catalog.ingest(path)  # the format is found from the content
    assert (result.format, result.items, result.reports_added) == ("rss", 2, 2)
    assert catalog.artifact_path(result.sha256).read_bytes() == path.read_bytes()  # the raw feed is kept
    assert [line for line, _ in result.warnings] == [2]  # the date it could not read
    first, second = (catalog.record(r).reports[0] for r in catalog.record_ids())
    assert first.post_id == "monitor-101" and first.identity == "rss:monitor-101"
    assert first.url == "https://monitor.example.org/posts/101" and first.url_known
    assert first.published_at == dt.datetime(2025, 5, 5, 18, 30, tzinfo=dt.UTC)
    assert first.text.startswith("Two new berths at the East Quay yard\n\nNight images show two new berths — “")
    assert first.author == "desk@monitor.example.org (Night Desk)"
    assert {"https://cdn.example.org/101.mp4", "https://cdn.example.org/101-hd.mp4"} <= set(first.links)
    assert first.source == model.Source(platform="RSS", feed_name="Harbour Monitor", url="https://monitor.example.org/")
    assert second.published_at is None
    assert catalog.ingest(path).reports_present == 2  # by entry id: nothing added twice
    assert catalog.verify().ok


def test_an_atom_feed_is_read_too(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "desk.atom"
    path.write_text(ATOM, encoding="utf-8")
    result = catalog.ingest(path, format="rss")
    assert result.reports_added == 1
    [report] = catalog.record(catalog.record_ids()[0]).reports
    assert report.source.platform == "Atom" and report.author == "City Paper"
    assert report.identity == "atom:tag:desk.example.net,2025:film-7"
    assert report.published_at == dt.datetime(2025, 5, 6, 5, 45, tzinfo=dt.UTC)
    assert "https://video.example.net/film-7.mp4" in report.links
    assert catalog.verify().ok


def test_a_feed_without_entries_is_an_error_that_changes_nothing(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "bad.rss"
    path.write_text("<rss version='2.0'><channel><title>x</title></channel></rss>", encoding="utf-8")
    with pytest.raises(InputError, match="holds no entries") as raised:
        catalog.ingest(path)
    assert raised.value.where is not None and "bad.rss" in raised.value.where
    assert [e.action for e in catalog.history()] == ["catalog.created"]


def test_a_feed_cut_short_is_read_leniently_and_says_so(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "cut.rss"
    path.write_text(
        "<rss version='2.0'><channel><item><title>Cut here</title><link>https://a.example/1</link>", "utf-8"
    )
    result = catalog.ingest(path)
    assert result.reports_added == 1
    assert "not well-formed" in result.warnings[0][1]
    assert catalog.verify().ok


# -- twarc2 JSON Lines (X API v2 response pages) ----------------------------------------------------


def _twarc_page() -> dict[str, Any]:
    return {
        "data": [
            {
                "id": "1787000000000000001",
                "author_id": "111",
                "created_at": "2025-05-05T18:30:00.000Z",
                "lang": "en",
                "text": "RT @coast_watch: Two new berths at the #EastQuay yard, via @PortLog https://t.co/abc",
                "entities": {
                    "mentions": [
                        {"start": 3, "end": 15, "username": "coast_watch", "id": "222"},
                        {"start": 58, "end": 66, "username": "PortLog", "id": "333"},
                    ],
                    "hashtags": [{"start": 39, "end": 48, "tag": "EastQuay"}],
                    "urls": [{"url": "https://t.co/abc", "expanded_url": "https://monitor.example.org/posts/101"}],
                },
                "referenced_tweets": [{"type": "retweeted", "id": "1786999999999999999"}],
            },
            {"id": "1787000000000000002", "author_id": "222", "text": "Gate closed on 4 May — “maintenance”."},
        ],
        "includes": {
            "users": [
                {"id": "111", "username": "harbour_mon", "name": "Harbour Monitor"},
                {"id": "222", "username": "coast_watch", "name": "Coast Watch"},
            ],
            "tweets": [{"id": "1786999999999999999", "author_id": "222", "text": "Two new berths ..."}],
        },
        "__twarc": {"url": "https://api.twitter.com/2/tweets/search/recent", "version": "2.14.0"},
    }


def test_twarc_jsonl_becomes_reports_with_ids_handles_entities_and_retweets(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "tweets.jsonl"
    path.write_text(json.dumps(_twarc_page(), ensure_ascii=False) + "\n", encoding="utf-8")
    result = catalog.ingest(path)
    assert (result.format, result.reports_added) == ("twarc", 2)
    retweet, other = (catalog.record(r).reports[0] for r in catalog.record_ids())
    assert retweet.identity == "twitter:1787000000000000001" and retweet.post_id == "1787000000000000001"
    assert retweet.source.account_handle == "harbour_mon" and retweet.source.account_id == "111"
    assert retweet.repost == model.Repost(
        reposted_by="harbour_mon", original_author="coast_watch", original_post_id="1786999999999999999"
    )
    assert retweet.mentions == ("coast_watch", "PortLog") and retweet.hashtags == ("EastQuay",)
    assert retweet.links == ("https://monitor.example.org/posts/101",)
    assert retweet.published_at == dt.datetime(2025, 5, 5, 18, 30, tzinfo=dt.UTC)
    assert retweet.url == "https://x.com/harbour_mon/status/1787000000000000001"
    assert other.text == "Gate closed on 4 May — “maintenance”." and other.published_at is None
    assert catalog.ingest(path).reports_present == 2
    assert catalog.verify().ok


def test_a_jsonl_with_one_broken_line_changes_nothing_and_names_the_line(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "tweets.jsonl"
    good = json.dumps(_twarc_page())
    path.write_text(f"{good}\n{good[:40]}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2 is not JSON .*nothing was ingested"):
        catalog.ingest(path)
    assert catalog.record_ids() == []
    assert [e.action for e in catalog.history()] == ["catalog.created"]


# -- Telegram Desktop exports -----------------------------------------------------------------------


def _telegram_export(folder: Path, *, photo: bytes) -> Path:
    """A channel export as Telegram Desktop writes it: result.json and media by relative path."""
    (folder / "photos").mkdir(parents=True)
    (folder / "video_files").mkdir()
    (folder / "photos" / "photo_1@05-05-2025_21-30-00.jpg").write_bytes(photo)
    clip = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
    (folder / "video_files" / "clip.mp4").write_bytes(clip)
    export = {
        "name": "Harbour Monitor",
        "type": "public_channel",
        "id": 1500000001,
        "messages": [
            {"id": 1, "type": "service", "date": "2025-05-05T21:00:00", "action": "create_channel"},
            {
                "id": 17,
                "type": "message",
                "date": "2025-05-05T21:30:00",
                "date_unixtime": "1746469800",
                "from": "Harbour Monitor",
                "from_id": "channel1500000001",
                "photo": "photos/photo_1@05-05-2025_21-30-00.jpg",
                "width": 64,
                "height": 48,
                "text": [
                    "Two new berths at the ",
                    {"type": "hashtag", "text": "#EastQuay"},
                    " yard, via ",
                    {"type": "mention", "text": "@PortLog"},
                ],
            },
            {
                "id": 18,
                "type": "message",
                "date": "2025-05-05T21:40:00",
                "date_unixtime": "1746470400",
                "from": "Harbour Monitor",
                "forwarded_from": "Coast Watch",
                "file": "video_files/clip.mp4",
                "media_type": "video_file",
                "mime_type": "video/mp4",
                "text": "Gate closed on 4 May — “maintenance”.",
            },
            {
                "id": 19,
                "type": "message",
                "date_unixtime": "1746470500",
                "from": "Harbour Monitor",
                "photo": "(File not included. Change data exporting settings to download.)",
                "text": "Later photo",
            },
        ],
    }
    (folder / "result.json").write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


def test_a_telegram_export_becomes_reports_with_their_media(catalog: Catalog, tmp_path: Path) -> None:
    from tests.conftest import make_jpeg

    photo = make_jpeg()
    folder = _telegram_export(tmp_path / "ChatExport_2025-05-06", photo=photo)
    result = catalog.ingest(folder)  # the export folder, or its result.json
    assert (result.format, result.items, result.reports_added) == ("telegram", 3, 3)
    assert (result.artifacts_added, result.artifacts_present) == (3, 0)  # result.json, photo, video
    assert [message for _, message in result.warnings] == ["message 19: its photo was not exported"]
    first, second, third = (catalog.record(r) for r in catalog.record_ids())
    [report] = first.reports
    assert report.text == "Two new berths at the #EastQuay yard, via @PortLog"
    assert report.identity == "telegram:1500000001/17" and report.post_id == "17"
    assert report.hashtags == ("EastQuay",) and report.mentions == ("PortLog",)
    assert report.published_at == dt.datetime(2025, 5, 5, 18, 30, tzinfo=dt.UTC)
    assert report.url_known is False
    roles = [(e.role, e.artifact.media_type) for e in first.artifacts]
    assert roles == [
        (model.ArtifactRole.SOURCE_DOCUMENT, "application/json"),
        (model.ArtifactRole.ORIGINAL, "image/jpeg"),
        (model.ArtifactRole.DERIVED, "application/json"),  # the photo's analysis, made after the ingest
    ]
    [(_, analysis)] = catalog.analyses(first.id)
    assert analysis is not None and analysis.source_sha256 == first.artifacts[1].artifact.sha256
    assert catalog.artifact_path(first.artifacts[1].artifact.sha256).read_bytes() == photo
    assert first.artifacts[1].artifact.metadata is not None  # EXIF read from the stored copy
    assert second.reports[0].repost == model.Repost(reposted_by="Harbour Monitor", original_author="Coast Watch")
    assert second.artifacts[1].artifact.media_type == "video/mp4"
    assert len(third.artifacts) == 1  # its photo was not exported: only the source document
    again = catalog.ingest(folder / "result.json")
    assert (again.reports_added, again.reports_present) == (0, 3)
    assert (again.artifacts_added, again.artifacts_present) == (0, 1)  # media of present reports: not read
    assert catalog.verify().ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda folder: (folder / "video_files" / "clip.mp4").unlink(), r"message 18: media file .* is missing"),
        (
            lambda folder: (folder / "result.json").write_text(
                (folder / "result.json").read_text("utf-8").replace("video_files/clip.mp4", "../../etc/passwd"), "utf-8"
            ),
            r"message 18: media path .* leaves the export folder",
        ),
    ],
)
def test_a_telegram_export_with_missing_or_escaping_media_changes_nothing(
    catalog: Catalog, tmp_path: Path, change: Any, message: str
) -> None:
    from tests.conftest import make_jpeg

    folder = _telegram_export(tmp_path / "export", photo=make_jpeg())
    change(folder)
    with pytest.raises(InputError, match=message):
        catalog.ingest(folder)
    assert catalog.record_ids() == []
    assert [e.action for e in catalog.history()] == ["catalog.created"]
    assert not any((catalog.path / "blobs").rglob("sha256/*/*/*"))


def test_an_ingest_written_in_several_batches_is_still_one_whole(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_catalog.operations import ingesting
    from tests.conftest import make_jpeg

    monkeypatch.setattr(ingesting, "INGEST_CHUNK", 2)  # 3 messages: a batch of 2, then 1
    folder = _telegram_export(tmp_path / "export", photo=make_jpeg())
    result = catalog.ingest(folder, analyze=False)  # its own writes only
    assert result.reports_added == 3
    actions = [e.action for e in catalog.history()]
    assert actions == ["catalog.created", *["report.ingested"] * 3, "digest.ingested"]
    assert [len(catalog.record(r).artifacts) for r in catalog.record_ids()] == [2, 2, 1]
    assert catalog.verify().ok


# -- the fast paths of an ingest store what the plain ones store, byte for byte -----------------


def _reference_item(
    self: Any, record_id: str, prepared: model.Report, title: str, where: str, media: Any, document: Any = None
) -> tuple[Any, ...]:
    """``ItemParts.__call__`` as each part is made on its own (what the ingest did before)."""
    import attrs

    from evidence_catalog.operations import common
    from evidence_catalog.operations.ingesting import report_title
    from evidence_catalog.replay import captured_details
    from evidence_catalog.serialize import unstructure

    ctx, template = self.ctx, self.acquisition
    report = attrs.evolve(prepared, document_sha256=self.entry.artifact.sha256)
    title = report_title(title)
    record, note_part = common.new_parts(ctx, record_id, True, title, self.tags, self.note, None, self.ended_at)
    acquisition = common.new_acquisition(
        ctx,
        model.AcquisitionMethod.INGESTED_FROM_FEED,
        template.started_at,
        template.ended_at,
        artifact_sha256=self.entry.artifact.sha256,
        other_artifacts=tuple(dict.fromkeys(artifact.sha256 for artifact in media)),
        original_path=template.original_path,
        original_path_b64=template.original_path_b64,
        note=where,
        requested_url=template.requested_url,
        final_url=template.final_url,
        http_status=template.http_status,
        responses=template.responses,
        withheld=template.withheld,
    )
    entries = [self.entry]
    for media_artifact in media:
        if all(e.artifact.sha256 != media_artifact.sha256 for e in entries):
            entries.append(model.RecordArtifact(artifact=media_artifact))
    details = {
        **captured_details(record=record, entries=entries, acquisition=acquisition, tags=self.tags, note=note_part),
        "report": unstructure(report),
    }
    return record, acquisition, report, note_part, entries, details


def _reference_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fast path of an ingest replaced by the plain code it stands for."""
    from evidence_catalog.ingest import checks, feed, telegram, twarc
    from evidence_catalog.operations import ingesting

    monkeypatch.setattr(ingesting.ItemParts, "__call__", _reference_item)
    for module in (feed, telegram, twarc):
        monkeypatch.setattr(module, "text_problem", lambda value, *, name="": checks._walked_problem(value, name))
    # feedparser's own get (aliases, made-up members) for every member of its dicts
    monkeypatch.setattr(feed, "_member", lambda members, name, default=None: members.get(name, default))


def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids and event salts from counters: two ingests of the same input store the same bytes."""
    import itertools

    from evidence_catalog import custody

    ids, salts = itertools.count(1), itertools.count(1)
    monkeypatch.setattr(model, "new_id", lambda: f"01900000-0000-7000-8000-{next(ids):012x}")
    monkeypatch.setattr(custody, "new_secret", lambda: f"{next(salts):064x}")


def _tables(path: Path) -> list[str]:
    import sqlite3

    connection = sqlite3.connect(path / "catalog.db")
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


@pytest.mark.no_postgresql_pass  # it compares two SQLite files; what is stored is the same on both databases
@pytest.mark.parametrize("kind", ["digest", "rss", "atom", "twarc", "telegram"])
def test_an_ingest_stores_the_same_bytes_as_the_plain_code_it_replaced(
    kind: str, operator: model.Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same input, ingested with the fast paths and with the plain code they replaced, into
    two copies of one catalog: every row (records, parts, acquisitions, events, the search
    index) and every stored file are the same."""
    import shutil

    from tests.conftest import FixedClock, make_jpeg

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    if kind == "telegram":
        source = _telegram_export(inputs / "export", photo=make_jpeg())
    else:
        name, text = {
            "digest": ("digest.txt", DIGEST),
            "rss": ("feed.rss", RSS),
            "atom": ("feed.atom", ATOM),
            "twarc": ("tweets.jsonl", json.dumps(_twarc_page()) + "\n"),
        }[kind]
        source = inputs / name
        source.write_text(text, encoding="utf-8")
    with Catalog.init(tmp_path / "fast", operator=operator, clock=FixedClock()):
        pass
    shutil.copytree(tmp_path / "fast", tmp_path / "plain")
    for side in ("fast", "plain"):
        with monkeypatch.context() as patched:
            _deterministic(patched)
            if side == "plain":
                _reference_paths(patched)
            with Catalog.open(tmp_path / side, operator=operator, clock=FixedClock()) as catalog:
                catalog.ingest(source, tags=["harbour", "east-quay"], note="from the desk's morning sweep")
                catalog.ingest(source, tags=["harbour"])  # every report present: only the repeat is logged
    fast, plain = _tables(tmp_path / "fast"), _tables(tmp_path / "plain")
    assert any("report.ingested" in line for line in fast) and any("report_term" in line for line in fast)
    assert fast == plain
    blobs = [
        sorted((p.name, p.read_bytes()) for p in (tmp_path / side / "blobs").rglob("*") if p.is_file())
        for side in ("fast", "plain")
    ]
    assert blobs[0] == blobs[1]
