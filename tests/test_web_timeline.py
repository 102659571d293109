"""The viewer's timelines (evidence_catalog.web.timeline): well-formed SVG that escapes every
text, ticks that suit spans from seconds to centuries, lanes, bars, counts where items pile up,
a bounded picture for 100,000 items, and the spans around one."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from evidence_catalog.errors import ModelError
from evidence_catalog.paths import display_path
from evidence_catalog.web import timeline
from evidence_catalog.web.timeline import TimelineItem, render_timeline, time_zoom_links

NS = "{http://www.w3.org/2000/svg}"
UTC = dt.UTC
START = dt.datetime(2022, 2, 24, 4, 0, tzinfo=UTC)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
HOSTILE = '<script>alert("x")</script>\'" &amp; \u202eevil\u202c \x00\x1b[31m\ud800 \ufffe'


def parse(svg: str) -> ET.Element:
    """The picture's tree, after checking that it holds only the elements and attributes a
    timeline draws with (no script, no style, nothing fetched, nothing a text could add)."""
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    for element in root.iter():
        assert element.tag.removeprefix(NS) in ELEMENTS, element.tag
        assert set(element.attrib) <= ATTRIBUTES, element.attrib
    assert not re.search(r"javascript:|url\(", svg, re.IGNORECASE)
    return root


ELEMENTS = {"svg", "title", "g", "a", "rect", "circle", "path", "text"}
ATTRIBUTES = {
    "class", "width", "height", "viewBox", "role", "aria-label", "x", "y", "rx", "cx", "cy", "r", "d", "href",
    "fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "text-anchor", "dominant-baseline",
    "font-family", "font-size", "font-weight",
}  # fmt: skip


def axis_labels(root: ET.Element) -> list[tuple[float, float, str]]:
    (axis,) = (g for g in root.iter(f"{NS}g") if g.get("class") == "timeline-axis")
    return [(float(t.get("x", "nan")), float(t.get("y", "nan")), t.text or "") for t in axis.iter(f"{NS}text")]


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}title")]


zones = st.builds(dt.timezone, st.timedeltas(dt.timedelta(hours=-23), dt.timedelta(hours=23)))
times = st.datetimes(dt.datetime(2, 1, 1), dt.datetime(9998, 12, 31), timezones=zones)
labels = st.one_of(st.text(), st.sampled_from([HOSTILE, "Харків", "قصف", "a\u202eb", "x" * 1000]))
kinds = st.one_of(st.sampled_from(["claim", "acquisition", "report"]), st.text())


@st.composite
def items(draw: st.DrawFn) -> TimelineItem:
    start = draw(times)
    length = draw(st.one_of(st.none(), st.timedeltas(dt.timedelta(0), dt.timedelta(days=3000))))
    link = draw(st.one_of(st.none(), st.text().map(lambda t: "record/" + t)))
    return TimelineItem(start, None if length is None else start + length, draw(labels), link, draw(kinds))


@given(st.lists(items(), max_size=25))
@example([TimelineItem(START, None, HOSTILE, 'r?x="1"&y=<2>', HOSTILE)])
@example([TimelineItem(dt.datetime.min.replace(tzinfo=UTC), dt.datetime.max.replace(tzinfo=UTC), "all", None, "claim")])
def test_any_timeline_is_well_formed_and_escapes_every_text(given_items: list[TimelineItem]) -> None:
    svg = render_timeline(given_items, zoom_href=lambda s: f"?since={s[0].isoformat()}&until={s[1].isoformat()}")
    root = parse(svg)
    assert not any(c in svg for c in BIDI)
    if len(given_items) == 1:  # a mark of its own, whose tooltip starts with the label made printable
        (item,) = given_items
        assert any(t.startswith(display_path(item.label)[:100]) and "\n" in t for t in titles(root))
    for link in root.iter(f"{NS}a"):
        assert (link.get("href") or "").startswith(("record/", "?since=", "r?x")), link.get("href")
    if not given_items:
        assert "No times to show" in svg
    else:
        assert len(axis_labels(root)) >= 1


@given(st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(UTC)), st.data())
@example(START, None)
def test_the_axis_has_a_few_ordered_ticks_for_any_span(start: dt.datetime, data: st.DataObject | None) -> None:
    for seconds in (11, 60, 600, 3600, 86400, 7 * 86400, 40 * 86400, 400 * 86400, 40 * 365 * 86400, 900 * 365 * 86400):
        length = dt.timedelta(seconds=seconds)
        if data is not None:
            length *= data.draw(st.floats(1, 3))
        span = (start, start + length)
        root = parse(render_timeline([TimelineItem(start, None, "a", None, "claim")], span=span))
        ticks = [(x, text) for x, y, text in axis_labels(root) if y == min(y for _, y, _ in axis_labels(root))]
        assert 2 <= len(ticks) <= 12, (length, ticks)
        xs = [x for x, _ in ticks]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)
        assert xs[0] >= timeline._LEFT and xs[-1] <= 960 - timeline._RIGHT


def test_tick_labels_name_the_time_and_the_date_where_it_changes() -> None:
    def labels(span: tuple[dt.datetime, dt.datetime]) -> list[str]:
        root = parse(render_timeline([TimelineItem(span[0], None, "a", None, "claim")], span=span))
        return [text for _, _, text in axis_labels(root)]

    assert labels((START, START + dt.timedelta(minutes=30))) == [
        "04:00",
        "24 Feb 2022",
        "04:05",
        "04:10",
        "04:15",
        "04:20",
        "04:25",
        "04:30",
    ]
    night = dt.datetime(2022, 2, 24, 21, 0, tzinfo=UTC)
    assert labels((night, night + dt.timedelta(hours=6)))[:7] == [
        "21:00",
        "24 Feb 2022",
        "22:00",
        "23:00",
        "00:00",
        "25 Feb 2022",
        "01:00",
    ]
    # Every other month, from January: the year under the first and under January.
    assert labels((dt.datetime(2021, 10, 1, tzinfo=UTC), dt.datetime(2022, 9, 1, tzinfo=UTC))) == [
        "Nov",
        "2021",
        "Jan",
        "2022",
        "Mar",
        "May",
        "Jul",
        "Sep",
    ]
    assert labels((dt.datetime(1950, 1, 1, tzinfo=UTC), dt.datetime(2020, 1, 1, tzinfo=UTC))) == [
        "1950",
        "1960",
        "1970",
        "1980",
        "1990",
        "2000",
        "2010",
        "2020",
    ]


def test_an_instant_is_a_linked_mark_in_its_kinds_lane() -> None:
    later = dt.datetime(2022, 3, 2, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    root = parse(
        render_timeline(
            [
                TimelineItem(START, None, "Shelling <b>&", "record/1?a=1&b=2", "claim"),
                TimelineItem(later, None, "Posted", None, "report"),
            ]
        )
    )
    lanes = [g.get("class") for g in root.iter(f"{NS}g") if "timeline-lane" in (g.get("class") or "")]
    assert lanes == ["timeline-lane kind-claim", "timeline-lane kind-report"]
    (link,) = root.iter(f"{NS}a")
    assert link.get("href") == "record/1?a=1&b=2"
    (mark,) = link
    assert mark.get("class") == "timeline-mark kind-claim"
    assert mark.findtext(f"{NS}title") == "Shelling <b>&\nalleged time: 2022-02-24T04:00:00Z"
    assert "Posted\npublished: 2022-03-02T10:00:00Z" in titles(root)


def test_intervals_are_bars_in_rows_that_do_not_overlap() -> None:
    bars = [
        TimelineItem(START + dt.timedelta(days=i), START + dt.timedelta(days=i + 5), f"siege {i}", None, "claim")
        for i in (0, 1, 2, 3, 4, 7)
    ]
    root = parse(render_timeline(bars))
    drawn = [r for r in root.iter(f"{NS}rect") if "timeline-bar" in (r.get("class") or "")]
    assert len(drawn) == 6
    rows: dict[str, list[tuple[float, float]]] = {}
    for rect in drawn:
        x, w = float(rect.get("x", "nan")), float(rect.get("width", "nan"))
        rows.setdefault(rect.get("y", ""), []).append((x, x + w))
    assert len(rows) == 5  # the sixth starts after the first has ended
    for spans in rows.values():
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    assert "siege 0\nalleged time: 2022-02-24T04:00:00Z – 2022-03-01T04:00:00Z" in titles(root)


def test_instants_that_pile_up_are_one_mark_with_their_count() -> None:
    pile = [
        TimelineItem(START + dt.timedelta(seconds=i), None, f"frame {i}", f"record/{i}", "acquisition")
        for i in range(40)
    ]
    pile.append(TimelineItem(START + dt.timedelta(days=30), None, "later", None, "acquisition"))
    root = parse(render_timeline(pile, zoom_href=lambda s: f"?since={s[0].isoformat()}&until={s[1].isoformat()}"))
    (cluster,) = (g for g in root.iter(f"{NS}g") if "timeline-cluster" in (g.get("class") or ""))
    assert [t.text for t in cluster.iter(f"{NS}text")] == ["40"]
    title = cluster.findtext(f"{NS}title") or ""
    assert title.startswith("40 × acquired, 2022-02-24T04:00:00Z – 2022-02-24T04:00:39Z\nframe 0\n")
    assert title.endswith("… and 37 more")
    link = next(a for a in root.iter(f"{NS}a") if a.find(f"{NS}g") is not None)
    since, until = (dt.datetime.fromisoformat(v) for v in re.findall(r"=([^&]+)", link.get("href") or ""))
    assert since <= START and START + dt.timedelta(seconds=39) <= until
    assert until - since < dt.timedelta(hours=1)


def test_a_hundred_thousand_items_make_a_bounded_picture_quickly() -> None:
    many = [
        TimelineItem(
            START + dt.timedelta(seconds=(i * 7919) % 30_000_000),
            START + dt.timedelta(seconds=(i * 7919) % 30_000_000 + 86400 * (i % 50)) if i % 3 == 0 else None,
            f"item {i}",
            f"record/{i}" if i % 2 else None,
            ("claim", "acquisition", "report")[i % 3] if i % 10 else f"kind {i % 1000}",
        )
        for i in range(100_000)
    ]
    started = time.perf_counter()
    svg = render_timeline(many, zoom_href=lambda s: f"?since={s[0].isoformat()}")
    took = time.perf_counter() - started
    root = parse(svg)
    assert sum(1 for _ in root.iter()) < 3 * timeline.MAX_BARS + 2000
    assert len(svg) < 1_500_000
    assert took < 5, took  # about 0.15 s on a developer's machine
    lanes = [g for g in root.iter(f"{NS}g") if "timeline-lane" in (g.get("class") or "")]
    assert len(lanes) == timeline.MAX_LANES
    assert lanes[-1].get("class") == "timeline-lane kind-other"
    assert any("timeline-density" in (r.get("class") or "") for r in root.iter(f"{NS}rect"))


def test_nothing_to_show_says_so() -> None:
    assert "No times to show" in render_timeline([])
    outside = render_timeline(
        [TimelineItem(START, None, "a", None, "claim")],
        span=(START + dt.timedelta(days=1), START + dt.timedelta(days=2)),
    )
    assert "None of the 1 times is in this span" in outside
    parse(outside)
    some = render_timeline(
        [
            TimelineItem(START, None, "a", None, "claim"),
            TimelineItem(START + dt.timedelta(days=9), None, "b", None, "claim"),
        ],
        span=(START - dt.timedelta(days=1), START + dt.timedelta(days=1)),
    )
    assert "1 outside this span" in some and ">b<" not in some


def test_what_a_timeline_cannot_show_is_refused() -> None:
    with pytest.raises(ModelError, match="no time zone"):
        TimelineItem(dt.datetime(2022, 2, 24), None, "naive", None, "claim")
    with pytest.raises(ModelError, match="before it starts"):
        TimelineItem(START, START - dt.timedelta(seconds=1), "backwards", None, "claim")
    with pytest.raises(ValueError, match="relative or http"):
        TimelineItem(START, None, "x", " javascript:alert(1)", "claim")
    with pytest.raises(ValueError, match="at least 10 seconds"):
        render_timeline([TimelineItem(START, None, "x", None, "claim")], span=(START, START))
    with pytest.raises(ValueError, match="240 to 10000 pixels"):
        render_timeline([], width=10)


@given(times, st.timedeltas(timeline.MIN_SPAN, dt.timedelta(days=3_000_000)))
@example(dt.datetime.min.replace(tzinfo=UTC), dt.timedelta(days=365))
@example(dt.datetime.max.replace(tzinfo=UTC) - dt.timedelta(days=3), dt.timedelta(days=3))
def test_every_span_around_a_span_zooms_and_moves_as_named(start: dt.datetime, length: dt.timedelta) -> None:
    try:
        end = start + length
    except OverflowError:
        return
    span = (start, end)
    views = time_zoom_links(span)
    for name, (low, high) in views.items():
        assert high - low >= timeline.MIN_SPAN - dt.timedelta(milliseconds=1), name
        render_timeline([TimelineItem(start, None, "a", None, "claim")], span=(low, high))
    first, last, size = start.timestamp(), end.timestamp(), length.total_seconds()

    def seconds(name: str) -> tuple[float, float]:
        low, high = views[name]
        return low.timestamp(), high.timestamp()

    if "in" in views:
        low, high = seconds("in")
        assert first <= low + 1e-3 and high - 1e-3 <= last and high - low < size
    if "out" in views:
        low, high = seconds("out")
        assert low - 1e-3 <= first and last <= high + 1e-3 and high - low > size
    if "earlier" in views:
        assert seconds("earlier")[0] < first
    if "later" in views:
        assert seconds("later")[1] > last
    assert ("out" in views) == (first > dt.datetime.min.replace(tzinfo=UTC).timestamp() + 1 or last < 253402300799)
