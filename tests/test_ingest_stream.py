"""With two CPUs or more, an ingest of a large RSS or Atom feed has one worker process read the
feed and send its entries while the ingest writes them (``ingesting_stream``), and another
preseal their events.  What was sent stands only when it is what reading the whole feed gives
(``feed.stream_feed`` against ``feed.parse_feed``); anything else, and any worker that dies,
hangs or sends nonsense, has the ingest roll back and read the feed itself: the catalog, the
log and the outcome (an error included) are those of an ingest without a worker."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, InputError
from evidence_catalog.ingest import feed
from evidence_catalog.operations import ingesting_offload, ingesting_stream

from .conftest import FixedClock
from .spawned import in_new_interpreter

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")

# -- the reading: what is sent is what parse_feed makes, or it is said not to stand ----------------

#: Text XML may hold as it is (no control characters, no U+FFFE or U+FFFF): ill-formed feeds are
#: made by cutting them short.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"), max_size=12
)
_DATES = st.sampled_from(["Tue, 05 May 2026 10:00:00 +0000", "2026-05-05T10:00:00Z", "yesterday", ""])


@st.composite
def feeds(draw: st.DrawFn) -> tuple[bytes, bool]:
    """An RSS or Atom document, and whether it is one whose entries can be used as they come:
    well-formed, its title and link before its entries, every entry's text storable."""
    atom = draw(st.booleans())
    items = draw(st.lists(st.tuples(_TEXT, _TEXT, _DATES, st.booleans()), max_size=8))
    title = escape(draw(st.sampled_from(["Harbour Monitor", "", "  ", "Other"])))
    where = draw(st.sampled_from(["before", "after", "middle", "none"]))
    control = draw(st.booleans()) and bool(items)  # a character no report may hold (in XML 1.0 as a reference)
    nested = draw(st.booleans()) and len(items) > 1
    cut = draw(st.one_of(st.none(), st.integers(1, 400)))
    parts = []
    for n, (text, summary, date, linked) in enumerate(items):
        body = escape(text) + ("&#x1;" if control and n == len(items) - 1 else "")
        link = f"https://example.org/{n}"
        if atom:
            parts.append(
                f"<entry><id>urn:x:{n}</id><title>{body}</title><summary>{escape(summary)}</summary>"
                + (f'<link href="{link}"/>' if linked else "")
                + (f"<updated>{date}</updated>" if date else "")
                + "</entry>"
            )
        else:
            parts.append(
                f"<item><title>{body}</title><description>{escape(summary)}</description>"
                + (f"<link>{link}</link>" if linked else "")
                + (f"<pubDate>{date}</pubDate>" if date else "")
                + "</item>"
            )
    if nested:  # an entry inside another: what follows it in the outer one is the feed's
        inner = parts.pop()
        parts[-1] = parts[-1].replace("<title>", inner + "<title>", 1)
    head = f"<title>{title}</title><link>https://example.org/</link>" if atom is False else f"<title>{title}</title>"
    if where == "before":
        body_xml = head + "".join(parts)
    elif where == "after":
        body_xml = "".join(parts) + head
    elif where == "middle":
        body_xml = "".join(parts[:1]) + head + "".join(parts[1:])
    else:
        body_xml = "".join(parts)
    if atom:
        document = f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">{body_xml}</feed>'
    else:
        document = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>{body_xml}</channel></rss>'
    raw = document.encode("utf-8")
    if cut is not None:
        raw = raw[: max(1, len(raw) - cut)]
    return raw, cut is None and not control and not nested and where in ("before", "none") and bool(items)


def _plain(entry: feed.FeedEntry) -> tuple[Any, ...]:
    """An entry but for its report's id (made anew for each)."""
    document = dict(entry.document or {})
    document.pop("id")
    return entry.title, entry.where, document, entry.report.identity


@settings(max_examples=300, deadline=None)
@given(feeds(), st.integers(1, 5))
def test_what_is_sent_while_reading_is_what_reading_the_whole_feed_gives(
    sample: tuple[bytes, bool], batch: int
) -> None:
    raw, usable = sample
    sent: list[feed.FeedEntry] = []
    warnings = feed.stream_feed(raw, where="feed", send=sent.extend, batch=batch)
    assert "_end_item" not in feed_reader().__dict__ and "_end_entry" not in feed_reader().__dict__  # unhooked
    try:
        whole = feed.parse_feed(raw, where="feed")
    except InputError:
        assert warnings is None  # refused: what was sent does not stand (reading it again says why)
        return
    if warnings is None:
        assert not usable  # a feed that could be used as it came was used
        return
    assert [_plain(e) for e in sent] == [_plain(e) for e in whole.entries]
    assert warnings == whole.warnings


def feed_reader() -> type:
    from feedparser import api

    return api.StrictFeedParser  # type: ignore[no-any-return]


def test_a_feed_whose_title_comes_after_its_entries_is_read_whole() -> None:
    item = "<item><title>A post</title><link>https://example.org/1</link></item>"
    raw = f'<rss version="2.0"><channel>{item}<title>Late title</title></channel></rss>'.encode()
    sent: list[feed.FeedEntry] = []
    assert feed.stream_feed(raw, where="feed", send=sent.extend, batch=1) is None
    assert len(sent) == 1 and sent[0].report.source.feed_name is None  # sent, then said not to stand
    assert feed.parse_feed(raw, where="feed").entries[0].report.source.feed_name == "Late title"


def test_what_fails_while_an_entry_is_made_stops_the_reading() -> None:
    """feedparser takes an AttributeError raised where it ends an entry for a missing handler
    and reads on: the reading stops instead, and nothing sent stands."""
    raw = b'<rss version="2.0"><channel><title>T</title>' + b"<item><title>x</title></item>" * 5 + b"</channel></rss>"
    sent: list[Any] = []

    def send(entries: list[feed.FeedEntry]) -> None:
        sent.extend(entries)
        raise AttributeError("a bug")

    assert feed.stream_feed(raw, where="feed", send=send, batch=2) is None
    assert len(sent) == 2


# -- the ingest: with a reading worker, as without one ------------------------------------------

#: The reading worker's messages so far (counted in the worker).
_messages = 0
_write = ingesting_stream._write
_chunks = ingesting_stream.FeedStream.chunks
_start = ingesting_stream.FeedStream.start
#: Descriptors a case keeps open.
_kept: list[int] = []


def _dying(fd: int, message: Any) -> None:
    """The reading worker's writing, but it kills itself at its second message."""
    global _messages
    _messages += 1
    if _messages == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    _write(fd, message)


def _hanging(fd: int, message: Any) -> None:
    global _messages
    _messages += 1
    if _messages == 2:
        time.sleep(3600)
    _write(fd, message)


def _cut_short(fd: int, message: Any) -> None:
    """Half a message, then the task ends."""
    global _messages
    _messages += 1
    if _messages == 2:
        os.write(fd, ingesting_stream._HEADER.pack(1000) + b"\x80\x05")
        raise OSError("cut short")
    _write(fd, message)


def _garbled(fd: int, message: Any) -> None:
    global _messages
    _messages += 1
    _write(fd, ("entries", "not a list") if _messages == 2 else message)


def _oversized(fd: int, message: Any) -> None:
    os.write(fd, ingesting_stream._HEADER.pack(ingesting_stream.MAX_MESSAGE + 1))


def write_feed(path: Path, items: int, *, title_last: bool = False, broken: bool = False, atom: bool = False) -> Path:
    entries = []
    for i in range(items):
        text = escape(f"Post {i}: обстрел школы #{i % 5} — “report” café @source_{i % 3}")
        if atom:
            entries.append(
                f"<entry><id>urn:x:{i}</id><title>{text}</title><link href='https://example.org/{i}'/>"
                "<updated>2026-05-05T10:00:00Z</updated></entry>"
            )
        else:
            entries.append(
                f"<item><title>{text}</title><link>https://example.org/{i}</link>"
                f"<pubDate>{'Tue, 05 May 2026 10:00:00 +0000' if i % 9 else 'not a date'}</pubDate></item>"
            )
    title = "<title>Harbour Monitor</title>"
    body = "".join(entries) + title if title_last else title + "".join(entries)
    if atom:
        text = f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">{body}</feed>'
    else:
        text = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>{body}</channel></rss>'
    if broken:
        text = text.replace("</channel>", "<unclosed></channel>").replace("</feed>", "<unclosed></feed>")
    path.write_text(text, encoding="utf-8")
    return path


def _ingest(catalog: str, source: str, case: str) -> dict[str, Any]:
    """One ingest of *source* in this (new) interpreter: without workers (``alone``) or with
    them, the reading worker misbehaving as *case* says."""
    global _messages
    _messages = 0
    ingesting_offload.OFFLOAD_BYTES = 10**12 if case.endswith("alone") else 0
    ingesting_offload.OFFLOAD_ITEMS = 1
    ingesting_offload.CHUNK = 16
    ingesting_offload.TASK_TIMEOUT = 2.0
    ingesting_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    feed.STREAM_BATCH = 7
    feed.STREAM_ENTRIES = 1
    if case == "many_fds":  # waited on by number: above 1,024, select() could not
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        _kept.extend(os.open(os.devnull, os.O_RDONLY) for _ in range(1100))
    if case.startswith("db_error"):  # the database refusing the first rows
        from evidence_catalog.store import records

        def refusing(*args: Any, **kwargs: Any) -> None:
            raise OSError("the database refused the rows")

        records.Records.insert_rows = refusing  # type: ignore[method-assign]
        from evidence_catalog.operations import ingesting

        ingesting.PRESEALED_LAG = 4  # rows written after a few entries, long before the last
    if case.startswith("full_disk"):
        import errno

        from evidence_catalog.operations import common

        def full(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        common.SourceFile.__init__ = full  # type: ignore[method-assign]
    misbehaving = {"died": _dying, "hung": _hanging, "cut": _cut_short, "garbled": _garbled, "huge": _oversized}
    ingesting_stream._write = misbehaving.get(case, _write)  # type: ignore[assignment]
    streams: list[str] = []
    chunks = _chunks

    def spy(self: ingesting_stream.FeedStream) -> Any:
        try:
            yield from chunks(self)
        except ingesting_stream.StreamLostError:
            streams.append("lost")
            raise
        streams.append("used")

    ingesting_stream.FeedStream.chunks = spy  # type: ignore[method-assign]

    def started(presealing: Any, raw: bytes, where: str) -> Any:
        stream = _start(presealing, raw, where)
        streams.extend(["started"] if stream is not None else [])
        return stream

    ingesting_stream.FeedStream.start = started  # type: ignore[method-assign,assignment]
    started = time.monotonic()
    with Catalog.open(Path(catalog), operator=OPERATOR, clock=FixedClock()) as cat:
        try:
            result = cat.ingest(Path(source))
            outcome = [result.items, result.reports_added, result.reports_present, list(result.warnings)]
        except InputError as exc:
            outcome = ["refused", str(exc)]
        except OSError as exc:
            outcome = ["failed", str(exc)]
        seconds = time.monotonic() - started
        threads = threading.active_count()
        report = cat.verify(record_event=False, remember=False, workers=1)
        reports = sorted((r.title, report.text, report.identity) for r in cat.records() for report in r.reports)
        events: list[tuple[int, str]] = []
        while page := cat.custody_events(after=len(events), limit=100):
            events += [(e.seq, e.action) for e in page]
        # (the store's lock file is made by the first write, whether it stays or not)
        blobs = sorted(p.name for p in (Path(catalog) / "blobs").rglob("*") if p.is_file() and p.name != ".lock")
    return {
        "outcome": outcome,
        "streams": streams,
        "seconds": seconds,
        "threads": threads,
        "ok": report.ok,
        "findings": [str(f) for f in report.findings],
        "events": events,
        "reports": reports,
        "blobs": blobs,
    }


def _ingests(runs: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"runs": [_ingest(*run) for run in runs]}


def ingests_in_child(runs: list[tuple[Path, Path, str]]) -> list[dict[str, Any]]:
    result = in_new_interpreter(_ingests, [(str(c), str(s), case) for c, s, case in runs], timeout=300)
    assert "runs" in result, result
    return result["runs"]  # type: ignore[no-any-return]


def new_catalog(path: Path) -> Path:
    Catalog.init(path, operator=OPERATOR, clock=FixedClock()).close()
    return path


def same(alone: dict[str, Any], other: dict[str, Any], case: str) -> None:
    for key in ("outcome", "ok", "findings", "events", "reports", "blobs"):
        assert other[key] == alone[key], (case, key)
    assert other["threads"] == 1, case  # the pool's thread is gone with it


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers are forked: Linux only")


@pytest.mark.parametrize("atom", [False, True])
def test_an_ingest_reading_a_feed_in_its_worker_makes_what_it_makes_alone(tmp_path: Path, atom: bool) -> None:
    source = write_feed(tmp_path / "feed.xml", 120, atom=atom)
    shared = new_catalog(tmp_path / "shared")
    runs = [(new_catalog(tmp_path / "alone"), source, "alone"), (shared, source, "stream"), (shared, source, "stream")]
    alone, streamed, again = ingests_in_child(runs)
    same(alone, streamed, "stream")
    assert streamed["streams"] == ["started", "used"]
    assert alone["streams"] == [] and alone["outcome"][:3] == [120, 120, 0]
    assert atom or any("date could not be read" in w[1] for w in alone["outcome"][3])
    assert again["outcome"][:3] == [120, 0, 120] and again["ok"]  # read again: every report there


@pytest.mark.parametrize("case", ["died", "hung", "cut", "garbled", "huge"])
def test_a_reading_worker_that_fails_changes_nothing_but_the_time(tmp_path: Path, case: str) -> None:
    source = write_feed(tmp_path / "feed.xml", 60)
    alone, other = ingests_in_child(
        [(new_catalog(tmp_path / "alone"), source, "alone"), (new_catalog(tmp_path / case), source, case)]
    )
    same(alone, other, case)
    assert other["streams"] == ["started", "lost"]
    assert other["seconds"] < 60


@pytest.mark.parametrize("kind", ["title_last", "broken"])
def test_a_feed_whose_entries_cannot_be_used_as_they_come_is_read_again(tmp_path: Path, kind: str) -> None:
    source = write_feed(tmp_path / "feed.xml", 60, **{kind: True})
    alone, other = ingests_in_child(
        [(new_catalog(tmp_path / "alone"), source, "alone"), (new_catalog(tmp_path / "s"), source, "stream")]
    )
    same(alone, other, kind)
    assert other["streams"] == ["started", "lost"]
    assert alone["outcome"][:3] == [60, 60, 0]


def test_a_feed_refused_while_its_entries_were_written_leaves_the_catalog_as_it_was(tmp_path: Path) -> None:
    source = write_feed(tmp_path / "feed.xml", 60)
    text = source.read_text(encoding="utf-8")
    source.write_text(text.replace("Post 50:", "Post 50:&#xdcff;"), encoding="utf-8")  # half a character
    alone, other = ingests_in_child(
        [(new_catalog(tmp_path / "alone"), source, "alone"), (new_catalog(tmp_path / "s"), source, "stream")]
    )
    same(alone, other, "refused")
    assert alone["outcome"][0] == "refused" and str(source) in alone["outcome"][1]
    assert not any(action == "report.ingested" for _, action in other["events"]) and other["blobs"] == []


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 80), st.booleans())
def test_any_feed_read_in_the_worker_makes_what_it_makes_alone(
    tmp_path_factory: pytest.TempPathFactory, items: int, atom: bool
) -> None:
    folder = tmp_path_factory.mktemp("any")
    source = write_feed(folder / "feed.xml", items, atom=atom)
    alone, streamed = ingests_in_child(
        [(new_catalog(folder / "a"), source, "alone"), (new_catalog(folder / "s"), source, "stream")]
    )
    same(alone, streamed, "stream")
    assert streamed["streams"] == ["started", "used"]


def test_many_open_descriptors_do_not_stop_the_reading(tmp_path: Path) -> None:
    source = write_feed(tmp_path / "feed.xml", 40)
    alone, other = ingests_in_child(
        [(new_catalog(tmp_path / "alone"), source, "alone"), (new_catalog(tmp_path / "s"), source, "many_fds")]
    )
    same(alone, other, "many_fds")
    assert other["streams"] == ["started", "used"]


@pytest.mark.parametrize("refused", [False, True])
def test_what_is_wrong_with_a_feed_is_said_before_a_full_disk(tmp_path: Path, refused: bool) -> None:
    """With the feed read in the worker, its bytes are stored before it is read to its end: a
    full disk then, for a feed that would be refused, is said as an ingest reading the feed at
    once says it -- the feed's refusal first."""
    source = write_feed(tmp_path / "feed.xml", 40)
    if refused:
        source.write_text(source.read_text(encoding="utf-8").replace("Post 30:", "Post 30:&#xdcff;"), encoding="utf-8")
    alone, other = ingests_in_child(
        [
            (new_catalog(tmp_path / "alone"), source, "full_disk_alone"),
            (new_catalog(tmp_path / "s"), source, "full_disk"),
        ]
    )
    assert alone["streams"] == [] and other["streams"] == ["started"]  # (stopped before it was read)
    assert other["outcome"] == alone["outcome"]
    assert alone["outcome"][0] == ("refused" if refused else "failed")
    assert other["blobs"] == [] and other["ok"]


def test_what_is_wrong_with_a_feed_is_said_before_a_database_error_while_its_entries_are_written(
    tmp_path: Path,
) -> None:
    source = write_feed(tmp_path / "feed.xml", 200)
    source.write_text(source.read_text(encoding="utf-8").replace("Post 190:", "Post 190:&#xdcff;"), encoding="utf-8")
    alone, other = ingests_in_child(
        [(new_catalog(tmp_path / "alone"), source, "db_error_alone"), (new_catalog(tmp_path / "s"), source, "db_error")]
    )
    assert other["streams"] == ["started"]  # the rows refused while the entries came in
    assert other["outcome"] == alone["outcome"] and alone["outcome"][0] == "refused"
    assert other["blobs"] == [] and other["ok"]


def test_a_feed_that_the_strict_reader_would_stop_at_is_read_at_once() -> None:
    """An undeclared entity (``&nbsp;``) or a bare ``&`` has feedparser read the whole feed again
    leniently: what a worker handed over would be thrown away, so such a feed is not read apart
    (nor is one of fewer entries than pay)."""
    entries = b"<item><title>x &amp; y &#8212; &#x2014;</title></item>" * feed.STREAM_ENTRIES
    plain = b'<rss version="2.0"><channel><title>T</title>' + entries + b"</channel></rss>"
    assert feed.worth_reading_apart(plain)
    assert not feed.worth_reading_apart(plain.replace(b"x &amp;", b"x&nbsp;", 1))
    assert not feed.worth_reading_apart(plain.replace(b"x &amp;", b"?a=1&b=2", 1))
    assert not feed.worth_reading_apart(plain.replace(entries, entries[: len(entries) // 2]))
    assert not feed.worth_reading_apart(b'<!DOCTYPE rss [<!ENTITY n "x">]>' + plain)
