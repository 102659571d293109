"""Maps for the viewer: where items are said (claims) or recorded (EXIF GPS, a media
container's location tag) to be, as SVG drawn on the server.

:func:`render_map` draws a world outline in an equirectangular projection (its standard parallel
the middle of the view, so a region keeps its shape) cut to a bounding box, a graticule, and
each point as a mark of its kind with a tooltip and a link.  Points close together on the
picture are drawn as one mark with their count, so that a picture of 100,000 points stays a few
thousand elements; a caller's ``zoom_href`` can link such a mark to a view of just its points.
:func:`zoom_links` gives the boxes of the views around one, for plain links that zoom and pan
without any script.

A bounding box is ``(west, south, east, north)`` in WGS 84 degrees, as ``list --bbox`` takes it:
a box with ``west > east`` crosses the antimeridian (``170,-20,-170,0``: Fiji) and is drawn as
one piece.

The world outline is Natural Earth's 1:110m land (public domain), shipped as
``static/world-110m.json`` (made by ``docs/world_outline.py``, which says how).

The markup styles itself with presentation attributes and carries classes a stylesheet may use:
``map`` (the picture), ``map-sea``, ``map-land``, ``map-grid`` and ``map-grid-label``,
``map-mark`` (one point) and ``map-cluster`` (several), each with ``kind-claim``,
``kind-exif``, ``kind-container`` or ``kind-other``, ``map-count`` (a cluster's number) and
``map-legend``.  See :mod:`.svg` for what every text goes through.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np
from attrs import field

from evidence_catalog.errors import ModelError
from evidence_catalog.filters import RecordFilter
from evidence_catalog.paths import display_path
from evidence_catalog.values import finite_in
from evidence_catalog.web import svg
from evidence_catalog.web.svg import MAP_KINDS, OTHER_KIND, KindStyle

Bbox = tuple[float, float, float, float]

#: The whole world as a bounding box.
WORLD: Bbox = (-180.0, -90.0, 180.0, 90.0)
#: The world outline shipped with the package.
OUTLINE_FILE = Path(__file__).with_name("static") / "world-110m.json"

#: Most marks (single points and clusters) a map draws: past this, points are grouped in
#: larger cells.
MAX_MARKS = 1500
#: The smallest cell (pixels) in which points are grouped into one mark.
CELL = 20
#: The narrowest view :func:`zoom_links` zooms in to, in degrees (about a kilometre).
MIN_SPAN = 0.01
#: The narrowest view :func:`fit_bbox` makes around points, in degrees.
MIN_FIT_SPAN = 1.0

_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP = 48, 12, 8
_AXIS, _LEGEND = 20, 30  # below the plot: longitude labels, then the legend
_WIDE = 720  # a map narrower than this has its legend on two lines
#: Graticule steps in degrees, finest first.
_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90)
_FONT = 'font-family="sans-serif"'
#: The tallest plot, as a part of its width.
_TALLEST = 0.75


@attrs.frozen
class MapPoint:
    """A place to mark: its position, a label (its tooltip), the link it leads to (a URL relative
    to the page, or ``None``), and its kind: ``claim`` (a claim's alleged place), ``exif`` (an
    image's GPS tags), ``container`` (a media container's location tag), or another word, drawn
    in grey and named by itself in the legend."""

    latitude: float = field(validator=finite_in(-90.0, 90.0))
    longitude: float = field(validator=finite_in(-180.0, 180.0))
    label: str = field(validator=attrs.validators.instance_of(str))
    href: str | None = field(default=None, validator=svg.check_href)
    kind: str = field(default="claim", validator=attrs.validators.instance_of(str))


def parse_bbox(text: str) -> Bbox:
    """``WEST,SOUTH,EAST,NORTH`` (decimal degrees, as ``list --bbox`` takes it) as a box.

    Longitudes are from -180 to 180 and latitudes from -90 to 90; south is below north, and
    ``west > east`` is a box across the antimeridian.  Anything else raises
    :class:`~evidence_catalog.errors.ModelError` (a :class:`ValueError`) saying what is wrong."""
    parts = text.split(",")
    shown = display_path(text[:100])
    if len(parts) != 4:
        raise ModelError(f"a bounding box is four numbers WEST,SOUTH,EAST,NORTH, got {shown!r}")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ModelError(f"a bounding box is four decimal numbers WEST,SOUTH,EAST,NORTH, got {shown!r}") from None
    return check_bbox(values)  # type: ignore[arg-type]


def check_bbox(bbox: Bbox) -> Bbox:
    """*bbox* as floats when it is one a map can show (see :func:`parse_bbox`); otherwise
    :class:`~evidence_catalog.errors.ModelError` saying why."""
    if not isinstance(bbox, tuple | list) or len(bbox) != 4:
        raise ModelError(f"a bounding box is four numbers: west, south, east, north, got {bbox!r}")
    west, south, east, north = bbox
    RecordFilter(bbox=(west, south, east, north))  # the rules of `list --bbox`: finite numbers, in range
    west, south, east, north = float(west), float(south), float(east), float(north)
    if not south < north:
        raise ModelError(f"a bounding box's south ({south:g}) must be below its north ({north:g})")
    if west == east:
        raise ModelError(f"a bounding box's west and east are both {west:g}: it has no width")
    return west, south, east, north


def format_bbox(bbox: Bbox) -> str:
    """*bbox* as ``WEST,SOUTH,EAST,NORTH``, the text :func:`parse_bbox` reads (for a link)."""
    return ",".join(_decimal(v) for v in bbox)


def _decimal(value: float) -> str:
    """*value* to a millionth of a degree (about 0.1 m), no longer than it needs."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _east(bbox: Bbox) -> float:
    """The box's east edge on a longitude axis that runs on past 180 (for a box across the
    antimeridian)."""
    return bbox[2] + 360 if bbox[0] > bbox[2] else bbox[2]


def _wrap_west(longitude: float) -> float:
    return ((longitude + 180) % 360) - 180  # in [-180, 180)


def _wrap_east(longitude: float) -> float:
    return 180 - ((180 - longitude) % 360)  # in (-180, 180]


@attrs.frozen
class Projection:
    """Where a map of *bbox* draws: the plot's place in the picture (pixels), and the
    equirectangular projection of a position into it."""

    bbox: Bbox
    width: int
    height: int
    left: float
    top: float
    plot_width: float
    plot_height: float

    def project(self, longitude: float, latitude: float) -> tuple[float, float]:
        """The picture's (x, y) of a position (one outside the box lands outside the plot)."""
        west, _, _, north = self.bbox
        if self.bbox[0] > self.bbox[2] and longitude < west:
            longitude += 360
        x = self.left + (longitude - west) * self.plot_width / (_east(self.bbox) - west)
        y = self.top + (north - latitude) * self.plot_height / (north - self.bbox[1])
        return x, y

    def unproject(self, x: float, y: float) -> tuple[float, float]:
        """The position (longitude, latitude) drawn at (x, y) of the picture."""
        west, south, _, north = self.bbox
        longitude = west + (x - self.left) * (_east(self.bbox) - west) / self.plot_width
        latitude = north - (y - self.top) * (north - south) / self.plot_height
        return (_wrap_east(longitude) if longitude > 180 else longitude), latitude

    def contains(self, longitude: float, latitude: float) -> bool:
        """Tell whether a position is inside the box (edges included)."""
        west, south, east, north = self.bbox
        across = west > east
        in_lon = (longitude >= west or longitude <= east) if across else west <= longitude <= east
        return south <= latitude <= north and in_lon


def projection(bbox: Bbox, width: int = 960) -> Projection:
    """The layout of a map of *bbox* (checked) *width* pixels wide.

    The plot keeps the region's shape at its middle latitude; it is at most three quarters as
    tall as it is wide (a taller region is drawn narrower, centred), and at least a fifth as
    tall (a flatter one is stretched)."""
    if isinstance(width, bool) or not isinstance(width, int) or not 240 <= width <= 10_000:
        raise ModelError(f"a map is 240 to 10000 pixels wide, got {width!r}")
    bbox = check_bbox(bbox)
    west, south, _, north = bbox
    span_lon, span_lat = _east(bbox) - west, north - south
    plot_width = float(width - _MARGIN_LEFT - _MARGIN_RIGHT)
    squeeze = max(math.cos(math.radians((north + south) / 2)), 0.2)
    plot_height = plot_width * span_lat / (span_lon * squeeze)
    left = float(_MARGIN_LEFT)
    if plot_height > plot_width * _TALLEST:
        narrower = plot_width * plot_width * _TALLEST / plot_height
        left += (plot_width - narrower) / 2
        plot_width, plot_height = narrower, plot_width * _TALLEST
    plot_height = max(plot_height, plot_width / 5)
    height = math.ceil(_MARGIN_TOP + plot_height + _AXIS + _legend_height(width))
    return Projection(bbox, width, height, left, float(_MARGIN_TOP), plot_width, plot_height)


# -- The world outline -------------------------------------------------------------------------


@attrs.frozen
class _Ring:
    x0: int  # tenths of a degree
    y0: int
    box: tuple[int, int, int, int]  # west, south, east, north
    tail: str  # the SVG path after its first point, y downwards


@functools.cache
def _rings() -> tuple[_Ring, ...]:
    data = json.loads(OUTLINE_FILE.read_text(encoding="utf-8"))
    rings = []
    for values in data["rings"]:
        xs = np.cumsum(values[0::2])
        ys = np.cumsum(values[1::2])
        tail = "l" + "".join(_path_tokens(values[2:]))  # y grows downwards: latitudes negated
        box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        rings.append(_Ring(values[0], values[1], box, tail + "z"))
    return tuple(rings)


def _path_tokens(deltas: Sequence[int]) -> list[str]:
    """Relative path coordinates, latitudes negated, with no space before a minus sign."""
    out = []
    for i, v in enumerate(deltas):
        v = -v if i % 2 else v
        out.append(str(v) if (i == 0 or v < 0) else f" {v}")
    return out


def world_outline() -> list[list[tuple[float, float]]]:
    """The shipped world outline: closed rings of (longitude, latitude) in degrees."""
    data = json.loads(OUTLINE_FILE.read_text(encoding="utf-8"))
    rings = []
    for values in data["rings"]:
        xs = np.cumsum(values[0::2]) / 10
        ys = np.cumsum(values[1::2]) / 10
        rings.append([(float(x), float(y)) for x, y in zip(xs, ys, strict=True)])
    return rings


def _outline(view: Projection) -> str:
    """The sea and the land of the view: a nested ``<svg>`` whose coordinates are tenths of a
    degree, clipped by it to the plot."""
    west, south, _, north = view.bbox
    x0, x1, y0, y1 = west * 10, _east(view.bbox) * 10, south * 10, north * 10
    paths = []
    for shift in (0, 3600) if view.bbox[0] > view.bbox[2] else (0,):
        for ring in _rings():
            bw, bs, be, bn = ring.box
            if bw + shift <= x1 and be + shift >= x0 and bs <= y1 and bn >= y0:
                paths.append(f"M{ring.x0 + shift} {-ring.y0}{ring.tail}")
    x, y, w, h = (_decimal(v) for v in (x0, -y1, x1 - x0, y1 - y0))
    return (
        f'<svg x="{svg.number(view.left)}" y="{svg.number(view.top)}" width="{svg.number(view.plot_width)}" '
        f'height="{svg.number(view.plot_height)}" viewBox="{x} {y} {w} {h}" '
        f'preserveAspectRatio="none">'
        f'<rect class="map-sea" x="{x}" y="{y}" width="{w}" height="{h}" fill="#e8f1f8"/>'
        + (f'<path class="map-land" fill="#d9d6c7" fill-rule="evenodd" d="{"".join(paths)}"/>' if paths else "")
        + "</svg>"
    )


# -- Graticule ---------------------------------------------------------------------------------


def _step(span: float, pixels: float, spacing: float) -> float:
    """The finest graticule step that puts lines at least *spacing* pixels apart."""
    for step in _STEPS:
        if step * pixels / span >= spacing:
            return step
    return _STEPS[-1]


def _degrees(value: float, step: float, positive: str, negative: str) -> str:
    decimals = max(0, math.ceil(-math.log10(step) - 1e-9)) if step < 1 else 0
    magnitude = f"{abs(value):.{decimals}f}"
    if float(magnitude) == 0:
        return "0°"
    if abs(value) == 180 and positive == "E":
        return "180°"
    return f"{magnitude}°{positive if value > 0 else negative}"


def _graticule(view: Projection) -> str:
    west, south, _, north = view.bbox
    east = _east(view.bbox)
    right, bottom = view.left + view.plot_width, view.top + view.plot_height
    lines, labels = [], []
    step = _step(east - west, view.plot_width, 80)
    for k in range(math.ceil(west / step - 1e-9), math.floor(east / step + 1e-9) + 1):
        lon = round(k * step, 9)
        x = view.left + (lon - west) * view.plot_width / (east - west)
        lines.append(f"M{svg.number(x)} {svg.number(view.top)}V{svg.number(bottom)}")
        text = _degrees(_wrap_east(lon) if lon > 180 else lon, step, "E", "W")
        labels.append(
            f'<text x="{svg.number(x)}" y="{svg.number(bottom + 14)}" text-anchor="middle">{svg.text(text)}</text>'
        )
    step = _step(north - south, view.plot_height, 40)
    for k in range(math.ceil(south / step - 1e-9), math.floor(north / step + 1e-9) + 1):
        lat = round(k * step, 9)
        _, y = view.project(west, lat)
        lines.append(f"M{svg.number(view.left)} {svg.number(y)}H{svg.number(right)}")
        labels.append(
            f'<text x="{svg.number(view.left - 4)}" y="{svg.number(y)}" text-anchor="end" '
            f'dominant-baseline="central">{svg.text(_degrees(lat, step, "N", "S"))}</text>'
        )
    return (
        f'<path class="map-grid" d="{"".join(lines)}" fill="none" stroke="#7d8b99" stroke-width="0.5" '
        f'stroke-opacity="0.6"/><g class="map-grid-label" {_FONT} font-size="10" fill="#444">{"".join(labels)}</g>'
    )


# -- Points ------------------------------------------------------------------------------------


def _style(kind: str) -> KindStyle:
    return MAP_KINDS.get(kind) or attrs.evolve(OTHER_KIND, legend=kind)


#: The order kinds are listed in.
_ORDER = {kind: rank for rank, kind in enumerate(MAP_KINDS)}
#: The look of a mark of points of several kinds.
_MIXED = KindStyle("circle", "#3d4650", "several kinds")


@attrs.frozen
class _Groups:
    """The points inside the view, grouped by the cell of the picture they fall in."""

    count: np.ndarray  # per group: how many points
    x: np.ndarray  # per group: the mean position (pixels)
    y: np.ndarray
    kinds: list[list[tuple[str, int]]]  # per group: its kinds and their counts, most first
    members: list[np.ndarray]  # per group: up to three of its points' indices
    href: list[str | None]  # per group: the one link all its points share, if they do
    bounds: np.ndarray  # per group: west, south, east, north of its points (east unwrapped)
    totals: dict[str, int]  # points inside the view, by kind
    outside: int  # points outside the view


def _group(points: Sequence[MapPoint], view: Projection) -> _Groups:
    n = len(points)
    lat = np.fromiter((p.latitude for p in points), float, n)
    lon = np.fromiter((p.longitude for p in points), float, n)
    west, south, east, north = view.bbox
    in_lon = ((lon >= west) | (lon <= east)) if west > east else ((lon >= west) & (lon <= east))
    inside = np.flatnonzero(in_lon & (lat >= south) & (lat <= north))
    kind_index: dict[str, int] = {}
    kind = np.fromiter(
        (kind_index.setdefault(points[i].kind, len(kind_index)) for i in inside.tolist()), np.int64, len(inside)
    )
    href_index: dict[str | None, int] = {}
    link = np.fromiter(
        (href_index.setdefault(points[i].href, len(href_index)) for i in inside.tolist()), np.int64, len(inside)
    )
    lon_u = np.where((lon < west) & (west > east), lon + 360, lon)[inside]
    lat_in = lat[inside]
    x = view.left + (lon_u - west) * view.plot_width / (_east(view.bbox) - west)
    y = view.top + (north - lat_in) * view.plot_height / (north - south)
    inverse, count = svg.cluster(x, y, float(CELL), MAX_MARKS)
    groups = len(count)
    order = np.argsort(inverse, kind="stable")  # positions in inside[], group by group
    starts = (np.cumsum(count) - count).astype(np.int64)
    kinds: list[list[tuple[str, int]]] = [[] for _ in range(groups)]
    names = list(kind_index)
    pairs, pair_count = np.unique(inverse * len(names) + kind, return_counts=True)
    for pair, c in zip(pairs.tolist(), pair_count.tolist(), strict=True):
        kinds[pair // len(names)].append((names[pair % len(names)], c))
    for entry in kinds:
        entry.sort(key=lambda item: (-item[1], _ORDER.get(item[0], len(_ORDER))))
    links: list[str | None] = [None] * groups
    bounds = np.zeros((groups, 4))
    if groups:
        low, high = np.minimum.reduceat(link[order], starts), np.maximum.reduceat(link[order], starts)
        by_index = list(href_index)
        links = [by_index[lo] if lo == hi else None for lo, hi in zip(low.tolist(), high.tolist(), strict=True)]
        bounds = np.column_stack(
            [
                f.reduceat(v[order], starts)
                for f, v in ((np.minimum, lon_u), (np.minimum, lat_in), (np.maximum, lon_u), (np.maximum, lat_in))
            ]
        )
    return _Groups(
        count=count,
        x=np.bincount(inverse, weights=x, minlength=groups) / np.maximum(count, 1),
        y=np.bincount(inverse, weights=y, minlength=groups) / np.maximum(count, 1),
        kinds=kinds,
        members=[inside[order[s : s + min(int(c), 3)]] for s, c in zip(starts, count, strict=True)],
        href=links,
        bounds=bounds,
        totals={name: int(c) for name, c in zip(names, np.bincount(kind, minlength=len(names)).tolist(), strict=True)},
        outside=n - len(inside),
    )


def _zoom_box(bounds: np.ndarray) -> Bbox:
    """A view around a cluster's points (their extent, with a margin)."""
    west, south, east, north = (float(v) for v in bounds)
    pad_lon = max((east - west) * 0.25, MIN_SPAN)
    pad_lat = max((north - south) * 0.25, MIN_SPAN)
    south, north = max(-90.0, south - pad_lat), min(90.0, north + pad_lat)
    if east - west + 2 * pad_lon >= 360:
        return -180.0, south, 180.0, north
    return _wrap_west(west - pad_lon), south, _wrap_east(east + pad_lon), north


def _marks(points: Sequence[MapPoint], groups: _Groups, zoom_href: Callable[[Bbox], str] | None) -> list[str]:
    """The marks of the groups: clusters (biggest first), then single points on top."""
    out = []
    for g in sorted(range(len(groups.count)), key=lambda g: -int(groups.count[g])):
        count, kinds = int(groups.count[g]), groups.kinds[g]
        x, y = float(groups.x[g]), float(groups.y[g])
        members = [points[int(i)] for i in groups.members[g]]
        if count == 1:
            (point,) = members
            style = _style(point.kind)
            title = f"{svg.text(point.label)}&#10;{svg.text(style.legend)}: {point.latitude:.5f}, {point.longitude:.5f}"
            css = f' class="map-mark {svg.kind_class(point.kind, MAP_KINDS)}" stroke="#fff" stroke-width="1"'
            mark = svg.shape(style, x, y, svg.SINGLE_RADIUS, css, f"<title>{title}</title>")
            out.append(svg.linked(mark, point.href))
            continue
        style = _style(kinds[0][0]) if len(kinds) == 1 else _MIXED
        css = svg.kind_class(kinds[0][0], MAP_KINDS) if len(kinds) == 1 else "kind-mixed"
        breakdown = ", ".join(f"{c} {svg.text(_style(k).legend, 40)}" for k, c in kinds[:4])
        breakdown += f", {len(kinds) - 4} more kinds" if len(kinds) > 4 else ""
        shown = "".join(f"&#10;{svg.text(p.label)}" for p in members)
        more = f"&#10;… and {count - len(members)} more" if count > len(members) else ""
        title = f"{count} points: {breakdown}{shown}{more}"
        link = groups.href[g]
        if link is None and zoom_href is not None:
            link = svg.checked_href(zoom_href(_zoom_box(groups.bounds[g])), "zoom_href's link")
        radius = svg.mark_radius(count)
        out.append(
            svg.linked(
                f'<g class="map-cluster {css}"><title>{title}</title>'
                + svg.shape(style, x, y, radius, ' stroke="#fff" stroke-width="1.5"')
                + svg.count_text(x, y, svg.short_count(count), "map-count")
                + "</g>",
                link,
            )
        )
    return out


def _legend(points: Sequence[MapPoint], groups: _Groups, view: Projection) -> str:
    counts = groups.totals
    ranked = sorted(counts, key=lambda k: (_ORDER.get(k, len(_ORDER)), -counts[k]))
    entries = [(_style(k), f"{_style(k).legend} ({counts[k]})") for k in ranked]
    if any(len(kinds) > 1 for kinds in groups.kinds):
        entries.insert(len([k for k in ranked if k in MAP_KINDS]), (_MIXED, "several kinds"))
    notes = []
    if bool((groups.count > 1).any()):
        notes.append("a number counts points drawn together")
    if groups.outside:
        notes.append(f"{groups.outside} outside this view")
    if not points:
        notes.append("no places to show")
    two_lines = view.width < _WIDE
    y = view.height - _legend_height(view.width) + _LEGEND / 2
    x, items, shown = float(_MARGIN_LEFT), [], 0
    room_left = view.width - _MARGIN_RIGHT - (90 if two_lines else 6 * len("; ".join(notes)) + 90)
    for style, words in entries:
        room = 30 + 5.9 * min(len(words), 40)
        if x + room > room_left:
            break
        items.append(svg.shape(style, x + 6, y, svg.SINGLE_RADIUS, ' stroke="#fff" stroke-width="1"'))
        at = f'x="{svg.number(x + 16)}" y="{svg.number(y)}"'
        items.append(f'<text {at} dominant-baseline="central">{svg.text(words, 40)}</text>')
        x += room
        shown += 1
    left_out = sum(1 for style, _ in entries[shown:] if style is not _MIXED)
    if left_out:
        notes.insert(0, f"{left_out} more kind{'s' if left_out > 1 else ''}")
    if notes:
        at = (
            f'x="{_MARGIN_LEFT}" y="{svg.number(y + 16)}"'
            if two_lines
            else (f'x="{svg.number(view.width - _MARGIN_RIGHT)}" y="{svg.number(y)}" text-anchor="end"')
        )
        items.append(f'<text {at} dominant-baseline="central" fill="#555">{svg.text("; ".join(notes))}</text>')
    return f'<g class="map-legend" {_FONT} font-size="11" fill="#222">{"".join(items)}</g>'


def _legend_height(width: int) -> int:
    """The legend's height: one line on a wide map, two (its kinds, then notes) on a narrow one."""
    return _LEGEND if width >= _WIDE else _LEGEND + 16


def render_map(
    points: Sequence[MapPoint],
    bbox: Bbox | None = None,
    *,
    width: int = 960,
    zoom_href: Callable[[Bbox], str] | None = None,
) -> str:
    """An SVG map (markup to embed in an HTML page) of *points* in *bbox*.

    *bbox* is ``(west, south, east, north)``, across the antimeridian when ``west > east``;
    ``None`` fits the view around the points (:func:`fit_bbox`), the whole world when there
    are none.  Points outside the box are left out (the legend counts them).  Points that fall
    close together are drawn as one mark with their count, linked to the one link they all
    share, or else to ``zoom_href(box)`` around them when the caller gives it (a URL relative
    to the page, as for a point's own link).

    :raises ~evidence_catalog.errors.ModelError: (a :class:`ValueError`) a box a map cannot
        show, a width outside 240 to 10000 pixels, or a link that is not relative or http(s).
    """
    view = projection(fit_bbox(points) if bbox is None else bbox, width)
    groups = _group(points, view)
    summary = f"Map of {len(points) - groups.outside} places, {format_bbox(view.bbox)} (west, south, east, north)"
    plot = (
        f'x="{svg.number(view.left)}" y="{svg.number(view.top)}" '
        f'width="{svg.number(view.plot_width)}" height="{svg.number(view.plot_height)}"'
    )
    return "".join(
        (
            f'<svg xmlns="{svg.SVG_NS}" class="map" width="{view.width}" height="{view.height}" '
            f'viewBox="0 0 {view.width} {view.height}" role="img" aria-label="{svg.text(summary)}">',
            f"<title>{svg.text(summary)}</title>",
            "<desc>Land: Natural Earth 1:110m (public domain).</desc>",
            _outline(view),
            _graticule(view),
            f'<rect class="map-frame" {plot} fill="none" stroke="#7d8b99"/>',
            f'<g class="map-marks">{"".join(_marks(points, groups, zoom_href))}</g>',
            _legend(points, groups, view),
            "</svg>",
        )
    )


# -- Views -------------------------------------------------------------------------------------


def fit_bbox(points: Sequence[MapPoint]) -> Bbox:
    """A view around *points* with a margin: the world when there are none; across the
    antimeridian when that is where they are closest together; at least :data:`MIN_FIT_SPAN`
    degrees across, and not much taller or flatter than a screen."""
    if not points:
        return WORLD
    lat = np.fromiter((p.latitude for p in points), float, len(points))
    lon = np.unique(np.fromiter((p.longitude for p in points), float, len(points)))
    gaps = np.diff(np.concatenate((lon, [lon[0] + 360])))
    widest = int(np.argmax(gaps))
    if widest == len(lon) - 1:  # the widest gap is across the antimeridian: no need to cross it
        west, east = float(lon[0]), float(lon[-1])
    else:
        west, east = float(lon[widest + 1]), float(lon[widest]) + 360
    south, north = float(lat.min()), float(lat.max())
    mid_lon, mid_lat = (west + east) / 2, (south + north) / 2
    span_lon = max((east - west) * 1.2, MIN_FIT_SPAN)
    span_lat = max((north - south) * 1.2, MIN_FIT_SPAN)
    squeeze = max(math.cos(math.radians(mid_lat)), 0.2)
    span_lon = max(span_lon, span_lat / squeeze / _TALLEST)  # no taller than a plot is
    span_lat = max(span_lat, span_lon * squeeze / 2.5)  # no flatter than 2.5 to 1
    return _box(mid_lon, mid_lat, span_lon, span_lat)


def _box(mid_lon: float, mid_lat: float, span_lon: float, span_lat: float) -> Bbox:
    """The box of these spans around a middle, kept within the world (moved rather than cut
    at a pole; the whole width when it would go around)."""
    span_lat = min(span_lat, 180.0)
    south = min(max(mid_lat - span_lat / 2, -90.0), 90.0 - span_lat)
    north = south + span_lat
    if span_lon >= 360:
        west, east = -180.0, 180.0
    else:
        west, east = _wrap_west(mid_lon - span_lon / 2), _wrap_east(mid_lon + span_lon / 2)
    return round(west, 6), round(south, 6), round(east, 6), round(north, 6)


def _halved(span: float) -> float:
    return min(span, max(span / 2, MIN_SPAN))


def zoom_links(bbox: Bbox) -> dict[str, Bbox]:
    """The views around *bbox*, for links that zoom and pan without a script: ``in`` (half as
    wide and tall, down to :data:`MIN_SPAN` degrees), ``out`` (twice), ``north``, ``south``,
    ``east``, ``west`` (by half the view; east and west wrap around the antimeridian) and
    ``world``.  A view that would not change (zooming out of the whole world, north from the
    pole) is left out."""
    view = check_bbox(bbox)
    west, south, _, north = view
    east = _east(view)
    span_lon, span_lat = east - west, north - south
    mid_lon, mid_lat = (west + east) / 2, (south + north) / 2
    candidates = {
        "in": _box(mid_lon, mid_lat, _halved(span_lon), _halved(span_lat)),
        "out": _box(mid_lon, mid_lat, span_lon * 2, span_lat * 2),
        "north": _box(mid_lon, mid_lat + span_lat / 2, span_lon, span_lat),
        "south": _box(mid_lon, mid_lat - span_lat / 2, span_lon, span_lat),
        "east": _box(mid_lon + span_lon / 2, mid_lat, span_lon, span_lat),
        "west": _box(mid_lon - span_lon / 2, mid_lat, span_lon, span_lat),
        "world": WORLD,
    }
    here = _box(mid_lon, mid_lat, span_lon, span_lat)
    return {name: box for name, box in candidates.items() if box != here}
