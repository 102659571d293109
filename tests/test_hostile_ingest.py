"""Hostile inputs to ``ingest``, tried as an attacker would: a feed whose content is the path or
URL of another feed, JSON nested 100,000 deep, text that is not text (a lone surrogate escape,
a NUL), odd values where ids and names belong.  Each is one clear error naming the file (and
the line, message or entry), exit code 2, nothing stored -- no record, no event, no blob left
for ``fsck`` to find -- or, where it is readable, an ingest that verifies.  Real catalogs, real
files, real HTTP on 127.0.0.1 (``tests/media_server.py``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.errors import InputError, StorageError
from tests.conftest import FixedClock, make_jpeg
from tests.media_server import MediaServer, Route
from tests.test_digest import DIGEST
from tests.test_ingest import _telegram_export, _twarc_page
from tests.test_ingest_url import ATOM_FEED, RSS_FEED, rss, rss_item

#: Deeper than any JSON reader follows by recursion.
DEEP = 100_000


def blob_files(catalog: Catalog) -> dict[str, bytes]:
    root = catalog.path / "blobs"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def state(catalog: Catalog) -> tuple[Any, ...]:
    """Everything a refused ingest must leave as it was: the custody log, the records, their
    reports, the stored files."""
    reports = [(h.record_id, h.report.identity) for h in catalog.search(limit=None)]
    return [e.hash for e in catalog.history()], catalog.record_ids(), reports, blob_files(catalog)


def assert_unchanged(catalog: Catalog, before: tuple[Any, ...]) -> None:
    assert state(catalog) == before
    assert catalog.fsck().orphaned_blobs == ()
    assert catalog.verify().ok


@pytest.fixture
def earlier(catalog: Catalog, tmp_path: Path) -> Catalog:
    """A catalog holding an earlier ingest, so that "unchanged" means something."""
    digest = tmp_path / "earlier-digest.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    catalog.ingest(digest)
    return catalog


def refused(catalog: Catalog, source: Any, match: str, **options: Any) -> InputError:
    """Ingest *source*, which must be refused with an :class:`InputError` matching *match*
    and leave *catalog* as it was; the error is returned."""
    before = state(catalog)
    with pytest.raises(InputError, match=match) as caught:
        catalog.ingest(source, **options)
    assert_unchanged(catalog, before)
    return caught.value


def one_error_line(result: Any, *names: str) -> str:
    """The CLI's refusal: exit code 2, nothing on standard output, one line on standard error
    naming each of *names*."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert result.out == ""
    [line] = result.err.splitlines()
    assert line.startswith("error: ")
    for name in names:
        assert name in line
    return str(line)


# -- RSS and Atom: content is content, never a path or a URL ------------------------------------


@pytest.fixture
def private_feeds(tmp_path: Path) -> dict[str, Path]:
    """Feed files an attacker would like catalogued: real RSS and Atom documents elsewhere."""
    folder = tmp_path / "someone-elses"
    folder.mkdir()
    (folder / "private.rss").write_bytes(RSS_FEED)
    (folder / "private.atom").write_bytes(ATOM_FEED)
    return {"rss": folder / "private.rss", "atom": folder / "private.atom"}


@pytest.mark.parametrize("kind", ["rss", "atom"])
@pytest.mark.parametrize("format", ["rss", None])
def test_a_feed_file_whose_content_is_the_path_of_another_feed_catalogues_nothing_of_it(
    earlier: Catalog, tmp_path: Path, private_feeds: dict[str, Path], kind: str, format: str | None, run_cli: Any
) -> None:
    pointer = tmp_path / "innocent.xml"
    pointer.write_bytes(str(private_feeds[kind]).encode())
    expected = "is not an RSS or Atom feed" if format else "no feed items found"
    error = refused(earlier, pointer, expected, format=format)
    assert str(pointer) in str(error)
    if format:
        assert "a file name or URL in it is content, and is not opened" in str(error)
    before = state(earlier)
    line = one_error_line(
        run_cli("ingest", "--catalog", earlier.path, pointer, *(["--format", format] if format else [])), str(pointer)
    )
    assert expected in line
    assert_unchanged(earlier, before)


@pytest.mark.parametrize("format", ["rss", None])
def test_a_feed_url_whose_body_is_the_path_of_another_feed_catalogues_nothing_of_it(
    earlier: Catalog, server: MediaServer, base: str, private_feeds: dict[str, Path], format: str | None, run_cli: Any
) -> None:
    url = server.route(
        f"{base}/feed.xml", Route(body=str(private_feeds["rss"]).encode(), media_type="application/rss+xml")
    )
    error = refused(earlier, url, "is not an RSS or Atom feed" if format else "no feed items found", format=format)
    assert url in str(error)
    assert list((earlier.path / "tmp").glob("*")) == []  # the download's work area is gone too
    before = state(earlier)
    one_error_line(run_cli("ingest", "--catalog", earlier.path, url, *(["--format", format] if format else [])), url)
    assert_unchanged(earlier, before)


def test_a_feed_whose_content_is_the_url_of_another_feed_fetches_nothing(
    earlier: Catalog, server: MediaServer, base: str, tmp_path: Path
) -> None:
    other = server.route(f"{base}/other.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    pointer = tmp_path / "pointer.xml"
    pointer.write_bytes(other.encode())
    refused(earlier, pointer, "is not an RSS or Atom feed", format="rss")
    url = server.route(f"{base}/pointer.xml", Route(body=other.encode(), media_type="application/rss+xml"))
    refused(earlier, url, "is not an RSS or Atom feed", format="rss")
    assert server.seen(f"{base}/other.xml") == []  # never asked for


@pytest.mark.slow
def test_a_feed_whose_content_is_dev_zero_is_refused_without_reading_it(earlier: Catalog, tmp_path: Path) -> None:
    """Read as a name, ``/dev/zero`` would be read until memory runs out: the command runs in
    a process of its own whose memory is capped, so that a regression fails, not the machine."""
    resource = pytest.importorskip("resource")
    pointer = tmp_path / "zero.xml"
    pointer.write_bytes(b"/dev/zero")
    before = state(earlier)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    command = [sys.executable, "-m", "evidence_catalog", "ingest", "--catalog", str(earlier.path), str(pointer)]
    done = subprocess.run(
        [*command, "--format", "rss"], capture_output=True, text=True, timeout=120, preexec_fn=cap, check=False
    )
    assert (done.returncode, done.stdout) == (2, "")
    reason = "it holds no XML; a file name or URL in it is content, and is not opened"
    assert done.stderr == f"error: {pointer}: is not an RSS or Atom feed ({reason})\n"
    assert_unchanged(earlier, before)


# -- RSS and Atom: hashtags and mentions, by the digests' rule ---------------------------------


def test_rss_and_atom_entries_get_hashtags_and_mentions_by_the_digests_rule(
    catalog: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    feed = tmp_path / "monitor.rss"
    feed.write_bytes(
        rss(
            rss_item("m-1", "New berths at #EastQuay"),
            rss_item(
                "m-2",
                "Gate closed",
                # An HTML description as feeds write it: the tag is in its text, not in its markup.
                extra="\n    <content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
                "&lt;p&gt;As &lt;a href=&quot;https://x.example/#top&quot;&gt;@PortLog&lt;/a&gt; wrote: "
                "#Trump-#Putin&amp;#x2019;s &#38;#35;5 mail desk@example.org&lt;/p&gt;</content:encoded>",
            ),
        )
    )
    atom = tmp_path / "desk.atom"
    atom.write_bytes(
        ATOM_FEED.replace(
            b"<title>Our film on the yard ledgers</title>",
            b'<title type="html">Our film on &lt;b&gt;#YardLedgers&lt;/b&gt; with @CityPaper</title>',
        )
    )
    catalog.ingest(feed)
    catalog.ingest(atom)
    reports = {hit.report.post_id: hit.report for hit in catalog.search(limit=None)}
    assert (reports["m-1"].hashtags, reports["m-1"].mentions) == (("EastQuay",), ())
    assert reports["m-2"].mentions == ("PortLog",)
    assert reports["m-2"].hashtags == ("Trump", "Putin")  # not "top" (markup), "x2019" or "5"
    film = reports["tag:desk.example.net,2025:film-7"]
    assert (film.hashtags, film.mentions) == (("YardLedgers",), ("CityPaper",))
    [hit] = catalog.search(hashtag="eastquay")
    assert hit.report.post_id == "m-1"
    assert [h.report.post_id for h in catalog.search(mention="@portlog")] == ["m-2"]
    result = run_cli("search", "--catalog", catalog.path, "--hashtag", "#EastQuay")
    assert result.code == 0 and hit.record_id in result.out
    assert catalog.verify().ok


def test_hashtags_in_a_feed_are_read_as_in_a_digest() -> None:
    """One rule: the feed reader calls the digest's own functions on the entry's text."""
    from evidence_catalog.ingest import digest
    from evidence_catalog.ingest.feed import parse_feed

    text = "RT @coast_watch: berths at #EastQuay, #5 and #Trump-#Putin (mail: desk@example.org)"
    [entry] = parse_feed(rss(rss_item("x-1", text)), where="feed").entries
    assert entry.report.hashtags == digest.hashtags(text) == ("EastQuay", "Trump", "Putin")
    assert entry.report.mentions == digest.mentions(text) == ("coast_watch",)


# -- JSON nested 100,000 deep ----------------------------------------------------------------


def _nested(depth: int, kind: str = "[") -> str:
    """JSON text of arrays (``[``) or objects (``{``) nested *depth* deep."""
    return '{"a":' * depth + "1" + "}" * depth if kind == "{" else "[" * depth + "]" * depth


@pytest.mark.parametrize("kind", ["[", "{"])
def test_a_twarc_line_nested_100000_deep_is_one_error_naming_its_line(
    earlier: Catalog, tmp_path: Path, kind: str, run_cli: Any
) -> None:
    tweets = tmp_path / "tweets.jsonl"
    deep = json.dumps({"data": [{"id": "9", "text": "deep", "entities": "X"}]}).replace('"X"', _nested(DEEP, kind))
    tweets.write_text(json.dumps(_twarc_page()) + "\n" + deep + "\n", encoding="utf-8")
    refused(earlier, tweets, r"line 2 cannot be read: it is nested deeper than a JSON reader follows")
    before = state(earlier)
    one_error_line(run_cli("ingest", "--catalog", earlier.path, tweets), str(tweets), "line 2", "nested")
    assert_unchanged(earlier, before)
    # Its first line alone nested so: still read (and refused) as twarc2, not as a digest.
    first = tmp_path / "first.jsonl"
    first.write_text(deep + "\n", encoding="utf-8")
    refused(earlier, first, "line 1 cannot be read: it is nested deeper")


def test_a_number_too_long_to_read_is_one_error_naming_its_line(earlier: Catalog, tmp_path: Path) -> None:
    """Python reads no whole number of more than 4,300 digits (a ValueError that is not a
    JSONDecodeError): said as what it is, not a crash."""
    tweets = tmp_path / "tweets.jsonl"
    tweets.write_text(json.dumps(_twarc_page()) + '\n{"data": [], "n": ' + "9" * 5000 + "}\n", encoding="utf-8")
    refused(earlier, tweets, r"line 2 cannot be read: it holds a number too long to read \(Exceeds the limit")
    folder = _telegram_export(tmp_path / "ChatExport", photo=make_jpeg())
    text = (folder / "result.json").read_text(encoding="utf-8").replace('"id": 17,', '"id": ' + "1" * 5000 + ",")
    (folder / "result.json").write_text(text, encoding="utf-8")
    refused(earlier, folder, "cannot be read: it holds a number too long to read")


def test_keep_going_leaves_a_line_nested_too_deep_out_and_names_it(
    catalog: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    tweets = tmp_path / "tweets.jsonl"
    deep = '{"data": ' + _nested(DEEP) + "}"
    tweets.write_text(json.dumps(_twarc_page()) + "\n" + deep + "\n", encoding="utf-8")
    result = catalog.ingest(tweets, keep_going=True)
    assert (result.reports_added, [line for line, _ in result.skipped]) == (2, [2])
    [summary] = [e.details for e in catalog.history() if e.action == "digest.ingested"]
    assert summary["skipped"][0]["line"] == 2 and "nested deeper" in summary["skipped"][0]["reason"]
    assert catalog.verify().ok and catalog.fsck().orphaned_blobs == ()


@pytest.mark.parametrize("where", ["messages", "text", "chat"])
def test_a_telegram_export_nested_100000_deep_is_one_error_naming_the_file(
    earlier: Catalog, tmp_path: Path, where: str, run_cli: Any
) -> None:
    folder = _telegram_export(tmp_path / "ChatExport", photo=make_jpeg())
    export = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    if where == "messages":
        export["messages"].append("X")
    elif where == "text":
        export["messages"][1]["text"].append("X")
    else:
        export["id"] = "X"
    text = json.dumps(export).replace('"X"', _nested(DEEP))
    (folder / "result.json").write_text(text, encoding="utf-8")
    refused(earlier, folder, "cannot be read: it is nested deeper than a JSON reader follows")
    before = state(earlier)
    one_error_line(run_cli("ingest", "--catalog", earlier.path, folder), str(folder / "result.json"), "nested")
    assert_unchanged(earlier, before)


# -- text that is not text ---------------------------------------------------------------------


def _twarc_with(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    page = _twarc_page()
    change(page)
    path = tmp_path / "tweets.jsonl"
    # ensure_ascii: a lone surrogate is written as the escape "\udcff", as an attacker would.
    path.write_text(json.dumps(_twarc_page()) + "\n" + json.dumps(page) + "\n", encoding="ascii")
    return path


TWARC_PLACES: dict[str, Callable[[dict[str, Any], str], None]] = {
    "text": lambda page, bad: page["data"][1].update(text="Gate closed " + bad),
    "author": lambda page, bad: page["includes"]["users"][1].update(username="coast" + bad),
    "hashtag": lambda page, bad: page["data"][0]["entities"]["hashtags"][0].update(tag="East" + bad),
    "tweet id": lambda page, bad: page["data"][1].update(id="17870" + bad),
    "language": lambda page, bad: page["data"][0].update(lang="e" + bad),
}


@pytest.mark.parametrize("bad", [chr(0xDCFF), chr(0xD800), "\x00"], ids=["udcff", "ud800", "nul"])
@pytest.mark.parametrize("place", sorted(TWARC_PLACES))
def test_twarc_text_that_is_not_text_is_one_error_naming_line_and_field(
    earlier: Catalog, tmp_path: Path, place: str, bad: str
) -> None:
    tweets = _twarc_with(tmp_path, lambda page: TWARC_PLACES[place](page, bad))
    problem = "a NUL character" if bad == "\x00" else r"a lone surrogate escape \(\\u" + f"{ord(bad):04x}"
    error = refused(earlier, tweets, r"line 2, tweet .*: its .* holds " + problem)
    assert str(tweets) in str(error)
    assert str(error).isprintable() and str(error).encode("utf-8")


def test_the_cli_refuses_a_lone_surrogate_with_one_line_and_exit_2(
    earlier: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    tweets = _twarc_with(tmp_path, lambda page: page["data"][1].update(text="Gate closed \udcff"))
    before = state(earlier)
    line = one_error_line(run_cli("ingest", "--catalog", earlier.path, tweets), str(tweets), "line 2", "text")
    assert "\\udcff" in line
    assert_unchanged(earlier, before)


def test_keep_going_leaves_a_tweet_with_a_lone_surrogate_out_and_logs_a_storable_reason(
    catalog: Catalog, tmp_path: Path
) -> None:
    tweets = _twarc_with(tmp_path, lambda page: page["data"][1].update(id="\udcff", text="x"))
    result = catalog.ingest(tweets, keep_going=True)
    assert result.reports_added == 2  # the first line's two tweets; the second line's first is one of them
    [(line, reason)] = result.skipped
    assert line == 2 and "tweet \\udcff: its post_id holds a lone surrogate" in reason
    assert catalog.verify().ok and catalog.fsck().orphaned_blobs == ()


TELEGRAM_PLACES: dict[str, Callable[[dict[str, Any], str], None]] = {
    "text": lambda export, bad: export["messages"][2].update(text="Gate closed " + bad),
    "text part": lambda export, bad: export["messages"][1]["text"].append({"type": "plain", "text": bad}),
    "from": lambda export, bad: export["messages"][2].update({"from": "Harbour " + bad}),
    "forwarded_from": lambda export, bad: export["messages"][2].update(forwarded_from="Coast " + bad),
    "chat name": lambda export, bad: export.update(name="Harbour " + bad),
    "message id": lambda export, bad: export["messages"][3].update(id="19" + bad),
    "photo path": lambda export, bad: export["messages"][1].update(photo="photos/" + bad + ".jpg"),
}


@pytest.mark.parametrize("bad", ["\udcff", "\x00"], ids=["udcff", "nul"])
@pytest.mark.parametrize("place", sorted(TELEGRAM_PLACES))
def test_telegram_text_that_is_not_text_is_one_error_and_stores_no_media(
    earlier: Catalog, tmp_path: Path, place: str, bad: str
) -> None:
    folder = _telegram_export(tmp_path / "ChatExport", photo=make_jpeg())
    export = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    TELEGRAM_PLACES[place](export, bad)
    (folder / "result.json").write_text(json.dumps(export), encoding="ascii")
    problem = "a NUL character" if bad == "\x00" else r"a lone surrogate escape \(\\udcff\)"
    if place == "photo path":
        problem = "is not a valid file name"
    error = refused(earlier, folder, f"message .*: .*{problem}")
    assert str(folder / "result.json") in str(error) and str(error).isprintable()


def test_a_digest_holding_an_encoded_surrogate_is_not_utf_8_and_changes_nothing(
    earlier: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    """A digest is UTF-8 text: the bytes of an encoded surrogate (CESU-8, "WTF-8") are not, and
    neither is a NUL; an escape written as text (``\\udcff``) is text and stays as written."""
    digest = tmp_path / "digest.txt"
    for bad, problem in ((b"\xed\xb3\xbf", "is not UTF-8 text"), (b"\x00", "holds binary data")):
        digest.write_bytes(DIGEST.replace("#EastQuay", "#East").encode().replace(b"#East", b"#East" + bad))
        refused(earlier, digest, problem)
        before = state(earlier)
        one_error_line(run_cli("ingest", "--catalog", earlier.path, digest), str(digest), problem)
        assert_unchanged(earlier, before)
    digest.write_text(DIGEST.replace("#EastQuay", "#EastQuay \\udcff"), encoding="utf-8")
    earlier.ingest(digest)
    assert any("\\udcff" in hit.report.text for hit in earlier.search(limit=None))
    assert earlier.verify().ok and earlier.fsck().orphaned_blobs == ()


@pytest.mark.parametrize(
    "value", [None, [17], {"id": 17}, True, " ", 17.5], ids=["none", "list", "object", "bool", "blank", "fraction"]
)
def test_a_telegram_message_without_a_usable_id_is_refused_or_left_out(
    earlier: Catalog, tmp_path: Path, value: Any
) -> None:
    """Messages without an id all had the identity ``telegram:<chat>/None``: every one after
    the first was taken as already present, and silently not stored."""
    folder = _telegram_export(tmp_path / "ChatExport", photo=make_jpeg())
    export = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    export["messages"][2]["id"] = value
    (folder / "result.json").write_text(json.dumps(export), encoding="utf-8")
    refused(earlier, folder, "a message( has no id|'s id is not a number or text)")
    result = earlier.ingest(folder, keep_going=True)
    assert result.reports_added == 2 and len(result.skipped) == 1
    assert earlier.verify().ok and earlier.fsck().orphaned_blobs == ()


def test_an_rss_character_reference_to_a_lone_surrogate_is_one_error(earlier: Catalog, tmp_path: Path) -> None:
    for n, reference in enumerate([b"&#xdcff;", b"&#56575;", b"&#xd800;"]):
        feed = tmp_path / f"monitor-{n}.rss"
        feed.write_bytes(RSS_FEED.replace(b"Two new berths", b"Two " + reference + b" berths"))
        error = refused(earlier, feed, "is not a feed that can be read|holds a lone surrogate escape")
        assert str(feed) in str(error) and str(error).isprintable()


def test_a_failed_write_removes_the_blobs_the_ingest_stored(
    earlier: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever stops an ingest after its bytes are stored -- here the database refusing the
    rows -- the bytes it stored go again: no orphan for fsck."""
    folder = _telegram_export(tmp_path / "ChatExport", photo=make_jpeg(colour=(1, 2, 3)))
    before = state(earlier)

    def full(*_: Any) -> None:
        raise StorageError("the disk is full")

    monkeypatch.setattr(earlier.db, "insert_rows", full)
    with pytest.raises(StorageError, match="the disk is full"):
        earlier.ingest(folder)
    monkeypatch.undo()
    assert_unchanged(earlier, before)
    result = earlier.ingest(folder)  # and the same input goes in whole afterwards
    assert (result.reports_added, result.artifacts_added) == (3, 3)


# -- any value anywhere: never a crash, never an orphan ----------------------------------------

_BAD_TEXT = st.text(
    st.one_of(st.characters(), st.sampled_from(["\udcff", "\ud800", "\udfff", "\x00", "#", "@", "\n"])),
    max_size=12,
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | _BAD_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_BAD_TEXT, inner, max_size=3),
    max_leaves=8,
)
#: A value in a place: nesting of any depth (up to 100,000) and numbers of any length (up to
#: 10,000 digits) as often as plain odd values.
_VALUES = st.one_of(
    _JSON,
    st.one_of(st.integers(1, 3000), st.integers(1, DEEP), st.just(DEEP)).map(lambda depth: f"DEPTH-{depth}"),
    st.integers(1, 10_000).map(lambda digits: f"DIGITS-{digits}"),
)


def _dumped(value: Any) -> str:
    """JSON text of *value*; ``"DEPTH-n"`` stands for arrays (odd *n*) or objects (even *n*)
    nested *n* deep, ``"DIGITS-n"`` for a number of *n* digits, written as text: no JSON library
    in this test has to read them."""
    text = re.sub(
        r'"DEPTH-(\d+)"',
        lambda found: _nested(int(found.group(1)), "[" if int(found.group(1)) % 2 else "{"),
        json.dumps(value),
    )
    return re.sub(r'"DIGITS-(\d+)"', lambda found: "7" * int(found.group(1)), text)


def _twarc_places() -> st.SearchStrategy[tuple[str, ...]]:
    return st.sampled_from(
        [
            ("data",),
            ("data", "0"),
            ("data", "0", "id"),
            ("data", "0", "text"),
            ("data", "0", "author_id"),
            ("data", "0", "created_at"),
            ("data", "0", "entities"),
            ("data", "0", "entities", "mentions"),
            ("data", "0", "entities", "hashtags", "0", "tag"),
            ("data", "0", "entities", "urls", "0"),
            ("data", "0", "referenced_tweets"),
            ("data", "0", "referenced_tweets", "0", "id"),
            ("includes",),
            ("includes", "users", "0", "id"),
            ("includes", "users", "1", "username"),
            ("includes", "tweets", "0", "author_id"),
        ]
    )


def _put(document: Any, place: tuple[str, ...], value: Any) -> None:
    for key in place[:-1]:
        document = document[int(key)] if isinstance(document, list) else document[key]
    if isinstance(document, list):
        document[int(place[-1])] = value
    else:
        document[place[-1]] = value


def _ingest_survives(catalog: Catalog, source: Path, **options: Any) -> None:
    """Ingest *source*: it is ingested (and verifies) or refused with an InputError that names
    it (and changes nothing); it never crashes, and never leaves an orphaned blob."""
    before = state(catalog)
    error: InputError | None = None
    try:
        catalog.ingest(source, **options)
    except InputError as exc:
        error = exc
    if error is not None:
        assert str(source) in str(error) and str(error).isprintable()
        assert_unchanged(catalog, before)
    else:
        assert catalog.verify().ok
        assert catalog.fsck().orphaned_blobs == ()
        for hit in catalog.search(limit=None):
            hit.report.text.encode("utf-8")


@pytest.mark.slow
@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(place=_twarc_places(), value=_VALUES, keep_going=st.booleans())
@example(place=("data", "0", "text"), value="\udcff", keep_going=False)
@example(place=("data", "0", "entities"), value=f"DEPTH-{DEEP}", keep_going=False)
@example(place=("data", "0", "id"), value="DIGITS-5000", keep_going=True)
@example(place=("data", "0", "referenced_tweets", "0", "id"), value=[1], keep_going=False)
@example(place=("data", "0", "created_at"), value="9999-12-31T23:59:59-01:00", keep_going=False)
@example(place=("includes", "users", "1", "username"), value="  ", keep_going=False)
def test_any_value_anywhere_in_a_twarc_page_never_crashes_nor_leaves_an_orphan(
    tmp_path_factory: pytest.TempPathFactory, place: tuple[str, ...], value: Any, keep_going: bool
) -> None:
    folder = tmp_path_factory.mktemp("twarc")
    page = _twarc_page()
    _put(page, place, "PLACE")
    text = json.dumps(page).replace('"PLACE"', _dumped(value))
    tweets = folder / "tweets.jsonl"
    tweets.write_text(json.dumps(_twarc_page()) + "\n" + text + "\n", encoding="utf-8")
    with Catalog.init(folder / "catalog", operator="Tester <t@example.org>", clock=FixedClock()) as catalog:
        _ingest_survives(catalog, tweets, format="twarc", keep_going=keep_going)


_TELEGRAM_PLACES = st.sampled_from(
    [
        ("id",),
        ("name",),
        ("messages",),
        ("messages", "1"),
        ("messages", "1", "id"),
        ("messages", "1", "text"),
        ("messages", "1", "text", "1"),
        ("messages", "1", "text", "1", "text"),
        ("messages", "1", "photo"),
        ("messages", "1", "date_unixtime"),
        ("messages", "2", "from"),
        ("messages", "2", "forwarded_from"),
        ("messages", "2", "from_id"),
        ("messages", "3", "id"),
    ]
)


@pytest.mark.slow
@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(place=_TELEGRAM_PLACES, value=_VALUES, keep_going=st.booleans())
@example(place=("messages", "1", "text", "1"), value=7, keep_going=False)
@example(place=("messages", "1", "date_unixtime"), value="99999999999", keep_going=False)
@example(place=("messages", "1", "date_unixtime"), value="²", keep_going=False)
@example(place=("messages", "3", "id"), value=2**64, keep_going=True)
@example(place=("messages", "2", "forwarded_from"), value=" ", keep_going=False)
@example(place=("id",), value=f"DEPTH-{DEEP}", keep_going=False)
@example(place=("messages", "1", "id"), value="DIGITS-5000", keep_going=False)
def test_any_value_anywhere_in_a_telegram_export_never_crashes_nor_leaves_an_orphan(
    tmp_path_factory: pytest.TempPathFactory, place: tuple[str, ...], value: Any, keep_going: bool
) -> None:
    folder = tmp_path_factory.mktemp("telegram")
    export_dir = _telegram_export(folder / "ChatExport", photo=make_jpeg())
    export = json.loads((export_dir / "result.json").read_text(encoding="utf-8"))
    _put(export, place, "PLACE")
    text = json.dumps(export).replace('"PLACE"', _dumped(value))
    (export_dir / "result.json").write_text(text, encoding="utf-8")
    with Catalog.init(folder / "catalog", operator="Tester <t@example.org>", clock=FixedClock()) as catalog:
        _ingest_survives(catalog, export_dir, keep_going=keep_going)


_XML_TEXT = st.lists(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="<&"),
        st.sampled_from(["&#xdcff;", "&#xd800;", "&#0;", "&#x110000;", "#Tag", "@handle", "&lt;b&gt;", "<b>"]),
    ),
    max_size=12,
).map("".join)


@pytest.mark.slow
@settings(max_examples=20)
@given(title=_XML_TEXT, guid=_XML_TEXT, length=st.sampled_from(["5", "²", "9" * 5000, "-1", " 7 "]))
@example(title="&#xdcff;", guid="g", length="5")
@example(title="New berths at #EastQuay", guid="g", length="9" * 5000)
def test_any_text_in_a_feed_entry_never_crashes_nor_leaves_an_orphan(title: str, guid: str, length: str) -> None:
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>P</title>'
        f"<item><title>{title}</title><guid>{guid}</guid>"
        f'<enclosure url="https://cdn.example.org/1.mp4" type="video/mp4" length="{length}"/></item>'
        "</channel></rss>"
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "feed.rss"
        path.write_bytes(feed.encode("utf-8"))
        with Catalog.init(Path(directory) / "catalog", operator="Tester <t@example.org>", clock=FixedClock()) as cat:
            _ingest_survives(cat, path, format="rss")


@settings(max_examples=300)
@given(value=_JSON, ascii_only=st.booleans())
def test_the_one_pass_check_never_misses_a_string_that_is_not_text(value: Any, ascii_only: bool) -> None:
    """Readers check reports one by one only when the input's JSON text may hold what is not
    text: that pre-check may raise a false alarm, never miss one."""
    from evidence_catalog.ingest.checks import may_hold_non_text, text_problem

    text = json.dumps(value, ensure_ascii=ascii_only)
    problem = text_problem(json.loads(text))
    if problem is not None and "beyond 2**53" not in problem:  # numbers: no report of JSON has any
        assert may_hold_non_text(text)


#: Values as a report's check may meet them: JSON (with lone surrogates and NULs), whole numbers
#: on both sides of 2**53 and beyond what ``json`` writes (4,300 digits), text that looks like a
#: NUL's escape or a long number, keys that are not text, tuples, and nesting deeper than
#: ``json`` follows.
_CHECKED_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 10**15, 10**16]),
    st.sampled_from(["<HUGE>", "<-HUGE>"]),  # 5,000 digits, made in the test (hypothesis cannot show them)
    st.floats(),
    _BAD_TEXT,
    st.sampled_from(["\\u0000", "1234567890123456", "\ud800", "\U0001f600", "😀", "a\x00b"]),
)
_CHECKED = st.recursive(
    _CHECKED_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.one_of(_BAD_TEXT, st.integers(), st.none(), st.booleans()), inner, max_size=3)
    ),
    max_leaves=10,
)


def _realised(value: Any) -> Any:
    """*value* with each ``"<HUGE>"`` a number of 5,001 digits (``"<-HUGE>"`` negative)."""
    if value in ("<HUGE>", "<-HUGE>"):
        return (-1 if value == "<-HUGE>" else 1) * 10**5000
    if isinstance(value, list | tuple):
        return type(value)(_realised(v) for v in value)
    if isinstance(value, dict):
        return {k: _realised(v) for k, v in value.items()}
    return value


def _wrapped_deep(value: Any, depth: int) -> Any:
    value = _realised(value)
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


@settings(max_examples=300)
@given(value=_CHECKED, depth=st.sampled_from([0, 0, 0, 5, 2000]))
@example(value="\udcff", depth=0)
@example(value={"a\x00": 1}, depth=0)
@example(value=2**53, depth=20_000)
@example(value={"n": "<HUGE>"}, depth=0)
@example(value=[1, ("\ud800",)], depth=0)
def test_the_fast_report_check_answers_as_the_walk_does(value: Any, depth: int) -> None:
    """``text_problem`` tells most values clean from their JSON text and walks the rest: its
    answer is the walk's, whatever the value (the same problem, at the same place)."""
    from evidence_catalog.ingest.checks import _walked_problem, text_problem

    nested = _wrapped_deep(value, depth)
    assert text_problem(nested) == _walked_problem(nested, "")
    assert text_problem(nested, name="entry") == _walked_problem(nested, "entry")


# -- the media a feed points at: metadata a site sends ----------------------------------------


def _json_ld_page(video_url: str, name: str) -> bytes:
    """A page whose JSON-LD names the video: yt-dlp keeps its strings as the JSON had them, a
    lone surrogate escape too."""
    data = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": name,
            "contentUrl": video_url,
            "uploadDate": "2025-05-05",
            "author": {"@type": "Person", "name": name},
        }
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>page</title>'
        f'<script type="application/ld+json">{data}</script></head><body></body></html>'
    ).encode()


def test_media_whose_site_sends_a_lone_surrogate_is_captured_with_it_escaped(
    catalog: Catalog, server: MediaServer, base: str, tmp_path: Path
) -> None:
    """``--capture-media`` captures what a feed points at: a site whose metadata holds
    ``"\\udcff"`` crashed the capture (the info.json could not be written as UTF-8).  The info
    dict keeps it as the escape it came as; the record's text holds it escaped, as EXIF text."""
    from tests.test_ingest_url import CLIP, enclosure

    video = server.route(f"{base}/0505.mp4", Route(body=CLIP, media_type="video/mp4"))
    page = server.route(
        f"{base}/watch", Route(body=_json_ld_page(video, "Night \udcff berths\x00"), media_type="text/html")
    )
    feed = tmp_path / "monitor.rss"
    feed.write_bytes(rss(rss_item("m-1", "Night berths", extra=enclosure(page))))
    from evidence_catalog.capture import CaptureOptions

    result = catalog.ingest(feed, capture_media=True, capture_options=CaptureOptions(retries=0, ffmpeg=False))
    [capture] = result.captures
    assert capture.ok, capture.error
    record = catalog.record(capture.record_id)
    [info] = [a.platform_info for a in record.acquisitions if a.platform_info is not None]
    assert info.title == "Night \\udcff berths\\x00"
    [metadata] = [e for e in record.artifacts if e.role.value == "platform_metadata"]
    stored = catalog.artifact_path(metadata.artifact.sha256).read_bytes()
    assert b"\\udcff" in stored and json.loads(stored.decode("utf-8"))["title"] == "Night \udcff berths\x00"
    assert catalog.verify().ok and catalog.fsck().orphaned_blobs == ()


# -- other places where text from outside reaches the custody log -------------------------------


@pytest.mark.parametrize("field", ["name", "email", "organization", "host"])
@pytest.mark.parametrize("bad", [chr(0xDCFF), "\x00"], ids=["udcff", "nul"])
def test_an_operator_given_as_an_agent_that_is_not_text_is_refused_before_anything_is_stored(
    catalog: Catalog, tmp_path: Path, field: str, bad: str
) -> None:
    """``--operator`` and ``$EVIDENCE_CATALOG_OPERATOR`` were checked; an :class:`Agent` given
    to the library was not, and ``add`` crashed in canonical JSON after storing the bytes."""
    from evidence_catalog import Agent

    fields = {"name": "Analyst", "email": "a@example.org", "organization": "NGO", "host": "h"}
    agent = Agent(**{**fields, field: fields[field] + bad})  # type: ignore[arg-type]
    path = catalog.path
    catalog.close()
    with pytest.raises(InputError, match=f"operator: {field} (is not valid UTF-8 text|must not contain a NUL)"):
        Catalog.open(path, operator=agent)
    with pytest.raises(InputError, match=f"operator: {field} "):
        Catalog.init(tmp_path / "new", operator=agent)
    assert not (tmp_path / "new").exists()
    with Catalog.open(path) as reopened:
        assert reopened.fsck().orphaned_blobs == () and reopened.verify().ok


def test_an_account_or_host_name_that_is_not_utf_8_is_recorded_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operating system's names are bytes: one that is not UTF-8 reaches Python as lone
    surrogates, and is recorded escaped (``\\xff``) instead of crashing the first ``add``."""
    import socket
    import types

    pwd = pytest.importorskip("pwd")
    account = types.SimpleNamespace(pw_name="analyst-\udcfe")
    monkeypatch.delenv("EVIDENCE_CATALOG_OPERATOR", raising=False)
    monkeypatch.setattr(socket, "gethostname", lambda: "field-laptop-\udcff")
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: account)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(make_jpeg())
    with Catalog.init(tmp_path / "catalog", clock=FixedClock()) as catalog:
        [added] = catalog.add([photo])
        events = catalog.history(added.record_id)  # the add's, then its analysis's: the same operator
        assert [event.action for event in events] == ["artifact.added", "media.analyzed"]
        for event in events:
            assert (event.actor.name, event.actor.host) == ("analyst-\\xfe", "field-laptop-\\xff")
        assert catalog.verify().ok and catalog.fsck().orphaned_blobs == ()


def test_what_yt_dlp_says_about_a_site_is_kept_as_text_that_can_be_logged() -> None:
    """yt-dlp's warnings and errors quote what a site sent (a subtitle language, a title): they
    become an acquisition's note or a ``capture.failed`` event, so what is not text is escaped."""
    from evidence_catalog.capture.youtubedl import Log
    from evidence_catalog.serialize import canonical_json

    log = Log()
    log.warning("WARNING: Unable to download video subtitles for 'uk\udcff': HTTP Error 404\x00")
    log.error("ERROR: [generic] title \ud800\r\nsecond line")
    assert log.warnings == ["Unable to download video subtitles for 'uk\\udcff': HTTP Error 404\\x00"]
    assert log.errors == ["[generic] title \\ud800 second line"]
    canonical_json({"warnings": log.warnings, "errors": log.errors})


def test_a_path_holding_a_nul_is_an_input_error_for_ingest_and_add(earlier: Catalog, tmp_path: Path) -> None:
    """Only the library can be given one (a command line cannot hold a NUL): it was a bare
    ValueError from the operating system's interface."""
    bad = str(tmp_path / "digest\x00.txt")
    refused(earlier, bad, "is not a file name \\(it holds a NUL character\\)")
    before = state(earlier)
    with pytest.raises(InputError, match="is not a file name"):
        earlier.add([bad])
    assert_unchanged(earlier, before)
