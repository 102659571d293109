"""Timelines for the viewer: when items allegedly happened (claims), when they were acquired,
and when the reports about them were published, as SVG drawn on the server.

:func:`render_timeline` draws one lane per kind along a time axis (UTC) whose ticks suit the
span shown, from seconds to centuries: an instant as a mark, an interval as a bar, each with a
tooltip and a link.  Instants close together in a lane are drawn as one mark with their count,
and past :data:`MAX_BARS` intervals a lane shows how many overlap each part of the axis, so that
a timeline of 100,000 items stays a few thousand elements.  :func:`time_zoom_links` gives the
spans around one, for plain links that zoom and move without any script.

The markup styles itself with presentation attributes and carries classes a stylesheet may use:
``timeline`` (the picture), ``timeline-lane``, ``timeline-axis``, ``timeline-tick``,
``timeline-mark`` (one instant), ``timeline-cluster`` (several), ``timeline-bar`` (one
interval), ``timeline-density`` (intervals counted), each with ``kind-claim``,
``kind-acquisition``, ``kind-report`` or ``kind-other``, ``timeline-count`` and
``timeline-notes``.  See :mod:`.svg` for what every text goes through.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence

import attrs
import numpy as np
from attrs import field

from evidence_catalog.errors import ModelError
from evidence_catalog.serialize import format_timestamp
from evidence_catalog.values import optional_utc, to_utc
from evidence_catalog.web import svg
from evidence_catalog.web.svg import OTHER_KIND, TIME_KINDS, KindStyle

Span = tuple[dt.datetime, dt.datetime]

#: Most intervals drawn one by one in a timeline (shared among its lanes); past it a lane
#: counts how many overlap each part of the axis.
MAX_BARS = 1000
#: Most lanes: the kinds past the first few share the last lane.
MAX_LANES = 6
#: The shortest span a timeline shows or :func:`time_zoom_links` zooms in to.
MIN_SPAN = dt.timedelta(seconds=10)
#: The smallest cell (pixels) in which instants are drawn as one mark.
CELL = 12

_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MONDAY = 4 * 86400  # 1970-01-05, the first Monday after the epoch
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800)
_WEEK = 7 * 86400
_MONTH_STEPS = (1, 2, 3, 6)
_YEAR_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)

_LEFT, _RIGHT, _TOP = 150, 16, 8
_INSTANTS, _AXIS, _NOTES = 38, 36, 22  # a lane's row of instants; the axis's labels; the notes
#: Rows of intervals a lane has at most, and their pitch (pixels).
_BAR_ROWS, _BAR_PITCH = 10, 8
_FONT = 'font-family="sans-serif"'


@attrs.frozen
class TimelineItem:
    """A time to mark: an instant (``end`` is ``None``) or an interval, with its zone (kept in
    UTC), a label (its tooltip), the link it leads to (a URL relative to the page, or
    ``None``), and its kind: ``claim`` (the time a claim alleges), ``acquisition`` (when an item
    was acquired), ``report`` (when a report was published), or another word, drawn in grey in
    a lane named by itself."""

    start: dt.datetime = field(converter=to_utc)
    end: dt.datetime | None = field(converter=optional_utc)
    label: str = field(validator=attrs.validators.instance_of(str))
    href: str | None = field(default=None, validator=svg.check_href)
    kind: str = field(default="claim", validator=attrs.validators.instance_of(str))

    def __attrs_post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ModelError(f"a timeline item ends ({self.end}) before it starts ({self.start})")


def _seconds(value: dt.datetime) -> float:
    return (value - _EPOCH).total_seconds()


def _time(seconds: float) -> dt.datetime:
    """The time *seconds* after the epoch, kept within the years 1 to 9999."""
    try:
        return min(max(_EPOCH + dt.timedelta(seconds=seconds), _EARLIEST), _LATEST)
    except OverflowError:  # a float a little past the first or last representable time
        return _LATEST if seconds > 0 else _EARLIEST


def _fit(start: float, end: float) -> tuple[float, float]:
    """A span around [start, end] with a margin, at least :data:`MIN_SPAN` (an hour around a
    single instant), within the years 1 to 9999."""
    length = end - start
    pad = length * 0.03 if length > 0 else 3600.0
    low, high = float(math.floor(start - pad)), float(math.ceil(end + pad))
    if high - low < MIN_SPAN.total_seconds():
        middle = (low + high) / 2
        low, high = middle - MIN_SPAN.total_seconds() / 2, middle + MIN_SPAN.total_seconds() / 2
    return max(low, _seconds(_EARLIEST)), min(high, _seconds(_LATEST))


def _check_span(span: Span) -> tuple[float, float]:
    try:
        low, high = (_seconds(to_utc(t)) for t in span)
    except (TypeError, ValueError):
        raise ModelError(f"a span is two times with their zones, got {span!r}") from None
    if high - low < MIN_SPAN.total_seconds():
        raise ModelError(f"a span must be at least {MIN_SPAN.total_seconds():g} seconds long, got {span!r}")
    return low, high


# -- The time axis -----------------------------------------------------------------------------


def _ticks(low: float, high: float, pixels: float) -> tuple[list[dt.datetime], str]:
    """The ticks between *low* and *high* (seconds since the epoch) at least 90 pixels apart,
    and their unit: ``second``, ``minute``, ``day``, ``month`` or ``year``."""
    least = (high - low) * 90 / pixels
    for step in (*_SECONDS, _WEEK):
        if step >= least:
            origin = _MONDAY if step == _WEEK else 0
            first = math.ceil((low - origin) / step) * step + origin
            count = int((high - first) // step) + 1
            unit = "second" if step < 60 else "minute" if step < 86400 else "day"
            return list(_fixed_ticks(first, step, count)), unit
    start, end = _time(low), _time(high)
    for months in _MONTH_STEPS:
        if months * 30.44 * 86400 >= least:
            return list(_month_ticks(start, end, months)), "month"
    years = next((y for y in _YEAR_STEPS if y * 365.25 * 86400 >= least), _YEAR_STEPS[-1])
    first = math.ceil((start.year + (start > _new_year(start.year))) / years) * years
    ticks = [_new_year(y) for y in range(max(first, years), end.year + 1, years)]
    return [t for t in ticks if start <= t <= end], "year"


def _fixed_ticks(first: float, step: int, count: int) -> Iterator[dt.datetime]:
    for k in range(count):
        try:
            yield _EPOCH + dt.timedelta(seconds=first + k * step)
        except OverflowError:  # past the last representable time
            return


def _new_year(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


def _month_ticks(start: dt.datetime, end: dt.datetime, months: int) -> Iterator[dt.datetime]:
    index = (
        start.year * 12 + start.month - 1 + (start > start.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    )
    index = math.ceil(index / months) * months
    while True:
        year, month = divmod(index, 12)
        if year > 9999:
            return
        tick = dt.datetime(year, month + 1, 1, tzinfo=dt.UTC)
        if tick > end:
            return
        yield tick
        index += months


def _tick_labels(ticks: list[dt.datetime], unit: str) -> list[tuple[str, str]]:
    """Each tick's label, and a second line where the date (or the year) changes."""
    out = []
    previous: dt.datetime | None = None
    for t in ticks:
        date = f"{t.day} {_MONTHS[t.month - 1]} {t.year}"
        if unit == "second":
            first, second = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}", date
            changed = previous is None or previous.date() != t.date()
        elif unit == "minute":
            first, second = f"{t.hour:02d}:{t.minute:02d}", date
            changed = previous is None or previous.date() != t.date()
        elif unit == "day":
            first, second = f"{t.day} {_MONTHS[t.month - 1]}", str(t.year)
            changed = previous is None or previous.year != t.year
        elif unit == "month":
            first, second = _MONTHS[t.month - 1], str(t.year)
            changed = previous is None or previous.year != t.year
        else:
            first, second, changed = str(t.year), "", False
        out.append((first, second if changed else ""))
        previous = t
    return out


# -- Lanes -------------------------------------------------------------------------------------


def _style(kind: str) -> KindStyle:
    return TIME_KINDS.get(kind) or attrs.evolve(OTHER_KIND, legend=kind)


_OTHERS = "other kinds"


def _lanes(kinds: list[str]) -> tuple[list[str], dict[str, int]]:
    """The lanes' names (known kinds first, then the most frequent), and each kind's lane."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    known = list(TIME_KINDS)
    ranked = sorted(counts, key=lambda k: (known.index(k) if k in known else len(known), -counts[k]))
    if len(ranked) > MAX_LANES:
        names = [*ranked[: MAX_LANES - 1], _OTHERS]
        return names, {k: min(i, MAX_LANES - 1) for i, k in enumerate(ranked)}
    return ranked, {k: i for i, k in enumerate(ranked)}


def _when(start: dt.datetime, end: dt.datetime | None) -> str:
    return format_timestamp(start) + ("" if end is None or end == start else f" – {format_timestamp(end)}")


@attrs.frozen
class _Axis:
    low: float  # seconds since the epoch at the plot's left and right edges
    high: float
    left: float
    width: float

    def x(self, seconds: np.ndarray) -> np.ndarray:
        clipped = np.clip(seconds, self.low, self.high)
        out: np.ndarray = self.left + (clipped - self.low) * (self.width / (self.high - self.low))
        return out


def _instants(
    items: Sequence[TimelineItem],
    indices: np.ndarray,
    x: np.ndarray,
    when: np.ndarray,
    y: float,
    style: KindStyle,
    css: str,
    zoom_href: Callable[[Span], str] | None,
) -> list[str]:
    """The marks of one lane's instants (*indices* into *items*, at pixels *x*): one per item,
    or one per cell with the count of the items in it."""
    if not len(indices):
        return []
    inverse, count = svg.cluster(x, np.zeros(len(x)), float(CELL), len(x))
    order = np.argsort(inverse, kind="stable")
    starts = np.cumsum(count) - count
    mean_x = np.bincount(inverse, weights=x, minlength=len(count)) / count
    first = np.minimum.reduceat(when[order], starts)
    last = np.maximum.reduceat(when[order], starts)
    out = []
    for g in np.argsort(-count, kind="stable").tolist():
        n, gx = int(count[g]), float(mean_x[g])
        members = [items[int(i)] for i in indices[order[starts[g] : starts[g] + min(n, 3)]]]
        if n == 1:
            (item,) = members
            title = f"{svg.text(item.label)}&#10;{svg.text(_style(item.kind).legend)}: {_when(item.start, item.end)}"
            mark = svg.shape(
                _style(item.kind),
                gx,
                y,
                svg.SINGLE_RADIUS,
                f' class="timeline-mark {css}" stroke="#fff" stroke-width="1"',
                f"<title>{title}</title>",
            )
            out.append(svg.linked(mark, item.href))
            continue
        low, high = _time(float(first[g])), _time(float(last[g]))
        shown = "".join(f"&#10;{svg.text(item.label)}" for item in members)
        more = f"&#10;… and {n - len(members)} more" if n > len(members) else ""
        title = f"{n} × {svg.text(style.legend)}, {_when(low, high)}{shown}{more}"
        links = {item.href for item in (items[int(i)] for i in indices[order[starts[g] : starts[g] + n]])}
        link = next(iter(links)) if len(links) == 1 else None
        if link is None and zoom_href is not None:
            link = svg.checked_href(zoom_href(_around(low, high)), "zoom_href's link")
        out.append(
            svg.linked(
                f'<g class="timeline-cluster {css}"><title>{title}</title>'
                + svg.shape(style, gx, y, svg.mark_radius(n), ' stroke="#fff" stroke-width="1.5"')
                + svg.count_text(gx, y, svg.short_count(n), "timeline-count")
                + "</g>",
                link,
            )
        )
    return out


def _bars(
    items: Sequence[TimelineItem],
    indices: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    top: float,
    style: KindStyle,
    css: str,
    limit: int,
    axis: _Axis,
) -> tuple[list[str], float]:
    """One lane's intervals below *top*: a bar each, in rows so that they do not overlap (up
    to :data:`_BAR_ROWS` rows, then in the row that ends first), or past *limit* of them one
    strip whose cells say how many intervals overlap them.  And the height they take."""
    if not len(indices):
        return [], 0.0
    if len(indices) <= limit:
        out: list[str] = []
        row_ends: list[float] = []
        for position in np.argsort(x0, kind="stable").tolist():
            a, b = float(x0[position]), float(x1[position])
            row = next((r for r, last in enumerate(row_ends) if last + 2 <= a), None)
            if row is None and len(row_ends) < _BAR_ROWS:
                row_ends.append(b)
                row = len(row_ends) - 1
            elif row is None:
                row = int(np.argmin(row_ends))
            row_ends[row] = max(row_ends[row], b)
            item = items[int(indices[position])]
            title = f"{svg.text(item.label)}&#10;{svg.text(style.legend)}: {_when(item.start, item.end)}"
            bar = (
                f'<rect class="timeline-bar {css}" x="{svg.number(a)}" y="{svg.number(top + row * _BAR_PITCH)}" '
                f'width="{svg.number(max(b - a, 1))}" height="{_BAR_PITCH - 2}" rx="1.5" fill="{style.colour}" '
                f'fill-opacity="0.45" stroke="{style.colour}" stroke-width="0.5"><title>{title}</title></rect>'
            )
            out.append(svg.linked(bar, item.href))
        return out, len(row_ends) * _BAR_PITCH
    cell = 6
    bins = int(axis.width // cell) + 2
    first = ((x0 - axis.left) // cell).astype(np.int64)
    last = ((x1 - axis.left) // cell).astype(np.int64)
    change = np.zeros(bins + 1, np.int64)
    np.add.at(change, first, 1)
    np.add.at(change, last + 1, -1)
    overlapping = np.cumsum(change)[:bins]
    most = int(overlapping.max())
    out = []
    for b in np.flatnonzero(overlapping).tolist():
        n = int(overlapping[b])
        a = axis.left + b * cell
        low = axis.low + (a - axis.left) * (axis.high - axis.low) / axis.width
        high = low + cell * (axis.high - axis.low) / axis.width
        title = f"{n} × {svg.text(style.legend)} overlapping {_when(_time(low), _time(high))}"
        out.append(
            f'<rect class="timeline-density {css}" x="{svg.number(a)}" y="{svg.number(top)}" width="{cell}" '
            f'height="14" fill="{style.colour}" fill-opacity="{0.15 + 0.75 * n / most:.2f}">'
            f"<title>{title}</title></rect>"
        )
    return out, 16.0


def _around(low: dt.datetime, high: dt.datetime) -> Span:
    """A span around [low, high] with a margin (for a cluster's zoom link)."""
    start, end = _fit(_seconds(low), _seconds(high))
    return _time(start), _time(end)


def render_timeline(
    items: Sequence[TimelineItem],
    *,
    width: int = 960,
    span: Span | None = None,
    zoom_href: Callable[[Span], str] | None = None,
) -> str:
    """An SVG timeline (markup to embed in an HTML page) of *items*, one lane per kind.

    *span* is the (start, end) shown; ``None`` fits it around the items.  Items wholly outside
    it are left out (the notes count them).  Instants that fall close together in a lane are
    drawn as one mark with their count, linked to the one link they all share, or else to
    ``zoom_href((start, end))`` around them when the caller gives it.  With no items, a picture
    that says so.

    :raises ~evidence_catalog.errors.ModelError: (a :class:`ValueError`) a width outside 240 to
        10000 pixels, a span shorter than :data:`MIN_SPAN`, or a link that is not relative or
        http(s).
    """
    if isinstance(width, bool) or not isinstance(width, int) or not 240 <= width <= 10_000:
        raise ModelError(f"a timeline is 240 to 10000 pixels wide, got {width!r}")
    if not items:
        return svg.empty_svg(width, 80, "No times to show", "timeline")
    n = len(items)
    start = np.fromiter((_seconds(i.start) for i in items), float, n)
    end = np.fromiter((_seconds(i.end or i.start) for i in items), float, n)
    low, high = _fit(float(start.min()), float(end.max())) if span is None else _check_span(span)
    visible = np.flatnonzero((end >= low) & (start <= high))
    if not len(visible):
        return svg.empty_svg(width, 80, f"None of the {n} times is in this span", "timeline")
    names, lane_of = _lanes([items[i].kind for i in visible.tolist()])
    lane = np.fromiter((lane_of[items[i].kind] for i in visible.tolist()), np.int64, len(visible))
    axis = _Axis(low, high, float(_LEFT), float(width - _LEFT - _RIGHT))
    x0, x1 = axis.x(start[visible]), axis.x(end[visible])
    is_bar = (x1 - x0) >= 2
    lanes, contents, top = [], [], float(_TOP)
    bar_limit = MAX_BARS // len(names)
    for k, name in enumerate(names):
        style = _style(name) if name != _OTHERS else attrs.evolve(OTHER_KIND, legend=_OTHERS)
        css = svg.kind_class(name, TIME_KINDS)
        in_lane = lane == k
        y = top + _INSTANTS / 2
        dots = in_lane & ~is_bar
        middle = (x0[dots] + x1[dots]) / 2
        contents += _instants(items, visible[dots], middle, start[visible][dots], y, style, css, zoom_href)
        bars = in_lane & is_bar
        bar_marks, bar_height = _bars(
            items, visible[bars], x0[bars], x1[bars], top + _INSTANTS, style, css, bar_limit, axis
        )
        contents[:0] = bar_marks  # under the instants
        height = _INSTANTS + bar_height + (4 if bar_height else 0)
        lanes.append(
            f'<g class="timeline-lane {css}"><rect x="0" y="{svg.number(top)}" width="{width}" '
            f'height="{svg.number(height)}" fill="{"#f4f6f8" if k % 2 == 0 else "#ffffff"}"/>'
            + svg.shape(style, 12, y, 5, ' stroke="#fff" stroke-width="1"')
            + f'<text x="24" y="{svg.number(y)}" dominant-baseline="central" {_FONT} font-size="11" fill="#222">'
            f"{svg.text(f'{style.legend} ({int(in_lane.sum())})', 22)}</text></g>"
        )
        top += height
    bottom = math.ceil(top)
    height = bottom + _AXIS + _NOTES
    ticks, unit = _ticks(low, high, axis.width)
    grid, axis_parts = [], [f'<path d="M{_LEFT} {bottom}H{width - _RIGHT}" stroke="#555"/>']
    for t, (first, second) in zip(ticks, _tick_labels(ticks, unit), strict=True):
        tx = svg.number(float(axis.x(np.array([_seconds(t)]))[0]))
        grid.append(f"M{tx} {_TOP}V{bottom + 4}")
        axis_parts.append(f'<text x="{tx}" y="{bottom + 15}" text-anchor="middle">{svg.text(first)}</text>')
        if second:
            axis_parts.append(
                f'<text x="{tx}" y="{bottom + 28}" text-anchor="middle" fill="#666">{svg.text(second)}</text>'
            )
    parts = [
        *lanes,
        f'<path class="timeline-tick" d="{"".join(grid)}" stroke="#7d8b99" stroke-width="0.5" stroke-opacity="0.6"/>',
        *contents,
    ]
    notes = [f"UTC; {_when(_time(low), _time(high))}"]
    if len(visible) < n:
        notes.append(f"{n - len(visible)} outside this span")
    if any('class="timeline-cluster' in p for p in parts):
        notes.append("a number counts items drawn together")
    summary = f"Timeline of {len(visible)} times, {_when(_time(low), _time(high))}"
    return "".join(
        (
            f'<svg xmlns="{svg.SVG_NS}" class="timeline" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{svg.text(summary)}">',
            f"<title>{svg.text(summary)}</title>",
            *parts,
            f'<g class="timeline-axis" {_FONT} font-size="10" fill="#333">{"".join(axis_parts)}</g>',
            f'<text class="timeline-notes" x="{width - _RIGHT}" y="{height - 7}" text-anchor="end" {_FONT} '
            f'font-size="11" fill="#555">{svg.text("; ".join(notes))}</text>',
            "</svg>",
        )
    )


def time_zoom_links(span: Span) -> dict[str, Span]:
    """The spans around *span*, for links that zoom and move without a script: ``in`` (half as
    long, down to :data:`MIN_SPAN`), ``out`` (twice), ``earlier`` and ``later`` (by half of
    it), all within the years 1 to 9999; one that would not change is left out."""
    low, high = _check_span(span)
    middle, length = (low + high) / 2, high - low
    lowest, highest = _seconds(_EARLIEST), _seconds(_LATEST)

    def around(centre: float, size: float) -> Span:
        size = min(size, highest - lowest)
        start = min(max(centre - size / 2, lowest), highest - size)
        return _time(start), _time(start + size)

    here = around(middle, length)
    candidates = {
        "in": around(middle, max(length / 2, MIN_SPAN.total_seconds())),
        "out": around(middle, length * 2),
        "earlier": around(middle - length / 2, length),
        "later": around(middle + length / 2, length),
    }
    return {name: s for name, s in candidates.items() if s != here}
