"""The viewer's maps (evidence_catalog.web.geo): the projection, the shipped world outline,
bounding boxes and the views around them, and SVG that is well-formed, escapes every text,
styles itself without a style attribute, and stays small for 100,000 points."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from evidence_catalog.errors import ModelError
from evidence_catalog.paths import display_path
from evidence_catalog.web import geo
from evidence_catalog.web.geo import MapPoint, parse_bbox, render_map, zoom_links

NS = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parent.parent
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
HOSTILE = '<script>alert("x")</script>\'" &amp; \u202eevil\u202c \x00\x1b[31m\ud800 \ufffe'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}title")]


ELEMENTS = {"svg", "title", "desc", "g", "a", "rect", "circle", "path", "text"}
ATTRIBUTES = {
    "class", "width", "height", "viewBox", "preserveAspectRatio", "role", "aria-label", "x", "y", "cx", "cy", "r",
    "d", "href", "fill", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "text-anchor", "dominant-baseline",
    "font-family", "font-size", "font-weight",
}  # fmt: skip


def assert_self_contained(root: ET.Element, svg: str) -> None:
    """Only the elements and attributes a map draws with: no script, no style (attribute or
    element), nothing fetched from elsewhere, nothing a label could have added."""
    for element in root.iter():
        assert element.tag.removeprefix(NS) in ELEMENTS, element.tag
        assert set(element.attrib) <= ATTRIBUTES, element.attrib
    assert not re.search(r"javascript:|url\(", svg, re.IGNORECASE)


# -- Bounding boxes ----------------------------------------------------------------------------

lons = st.floats(-180, 180, allow_nan=False)
lats = st.floats(-90, 90, allow_nan=False)


@st.composite
def boxes(draw: st.DrawFn, across: bool | None = None) -> geo.Bbox:
    """Valid boxes, some across the antimeridian (west > east)."""
    south = draw(st.floats(-90, 89.9))
    north = draw(st.floats(south + 0.05, 90))
    west = draw(st.floats(-180, 179.9))
    crossing = draw(st.booleans()) if across is None else across
    across_it = crossing and west > -179
    east = draw(st.floats(-180, west - 0.5) if across_it else st.floats(west + 0.05, 180))
    return (round(west, 4), round(south, 4), round(east, 4), round(north, 4))


@given(boxes())
def test_a_box_written_for_a_link_reads_back_the_same(box: geo.Bbox) -> None:
    assert parse_bbox(geo.format_bbox(box)) == box


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1,2,3", "four numbers"),
        ("1,2,3,4,5", "four numbers"),
        ("a,b,c,d", "decimal numbers"),
        ("", "four numbers"),
        ("nan,0,1,1", "west, south, east, north"),
        ("inf,0,1,1", "west, south, east, north"),
        ("0,-91,1,1", "latitudes from -90 to 90"),
        ("-181,0,1,1", "longitudes from -180 to 180"),
        ("0,10,1,5", "south not above north"),
        ("0,5,1,5", "must be below its north"),
        ("5,0,5,1", "no width"),
        ("<script>,1,2,3", "decimal numbers"),
    ],
)
def test_a_bad_box_is_refused_saying_why(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as caught:
        parse_bbox(text)
    assert isinstance(caught.value, ModelError)


def test_a_box_across_the_antimeridian_is_read_as_list_bbox_reads_it() -> None:
    assert parse_bbox("170,-20,-170,0") == (170.0, -20.0, -170.0, 0.0)
    assert parse_bbox(" 20.5, 40 ,45,56") == (20.5, 40.0, 45.0, 56.0)


# -- The projection ----------------------------------------------------------------------------


@given(boxes(), st.data(), st.integers(240, 3000))
def test_a_point_in_the_box_lands_in_the_plot_and_projects_back(box: geo.Bbox, data: st.DataObject, width: int) -> None:
    west, south, east, north = box
    lat = data.draw(st.floats(south, north))
    if west > east:
        lon = data.draw(st.one_of(st.floats(west, 180), st.floats(-180, east)))
    else:
        lon = data.draw(st.floats(west, east))
    view = geo.projection(box, width)
    assert view.contains(lon, lat)
    x, y = view.project(lon, lat)
    assert view.left - 1e-6 <= x <= view.left + view.plot_width + 1e-6
    assert view.top - 1e-6 <= y <= view.top + view.plot_height + 1e-6
    assert view.left >= 0 and view.left + view.plot_width <= width and view.top + view.plot_height <= view.height
    back_lon, back_lat = view.unproject(x, y)
    assert math.isclose(back_lat, lat, abs_tol=1e-6)
    assert math.isclose((back_lon - lon + 180) % 360 - 180, 0, abs_tol=1e-6)


def test_across_the_antimeridian_east_is_right_of_west() -> None:
    view = geo.projection((170, -25, -170, -5))
    x_west, _ = view.project(179.9, -17)
    x_east, _ = view.project(-179.9, -17)
    assert view.left < x_west < x_east < view.left + view.plot_width
    assert x_east - x_west < view.plot_width / 50  # neighbours, not the width of the world apart
    assert not view.contains(0, -17)


# -- The world outline -------------------------------------------------------------------------


def inside(rings: list[list[tuple[float, float]]], lon: float, lat: float) -> bool:
    """Even-odd rule over all rings, as the map fills them."""
    crossings = 0
    for ring in rings:
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
                crossings += 1
    return crossings % 2 == 1


def distance_to_outline(rings: list[list[tuple[float, float]]], lon: float, lat: float) -> float:
    best = math.inf
    for ring in rings:
        for (x0, y0), (x1, y1) in itertools.pairwise(ring):
            dx, dy = x1 - x0, y1 - y0
            t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((lon - x0) * dx + (lat - y0) * dy) / (dx * dx + dy * dy)))
            best = min(best, math.hypot(x0 + t * dx - lon, y0 + t * dy - lat))
    return best


def test_the_outline_ships_with_its_source_and_covers_the_world() -> None:
    data = json.loads(geo.OUTLINE_FILE.read_text(encoding="utf-8"))
    assert "Natural Earth" in data["source"] and "public domain" in data["licence"]
    assert geo.OUTLINE_FILE.stat().st_size < 60_000
    rings = geo.world_outline()
    assert len(rings) > 100
    assert all(ring[0] == ring[-1] and len(ring) >= 4 for ring in rings)
    every = [p for ring in rings for p in ring]
    assert min(x for x, _ in every) == -180 and max(x for x, _ in every) == 180
    assert min(y for _, y in every) < -80 and max(y for _, y in every) > 80
    # Known coasts: Dover, Cape Town, Cape Horn, the Kamchatka coast near Petropavlovsk.
    for lon, lat in ((1.3, 51.1), (18.4, -33.9), (-67.3, -55.9), (158.7, 53.0)):
        assert distance_to_outline(rings, lon, lat) < 0.6, (lon, lat)
    for lon, lat in ((20, 0), (37.6, 55.8), (-100, 40), (135, -25), (100, 60), (0, -85)):
        assert inside(rings, lon, lat), (lon, lat)
    for lon, lat in ((-30, 0), (-150, 0), (80, -20), (-40, 40), (179.9, 0)):
        assert not inside(rings, lon, lat), (lon, lat)
    # Chukotka, across the antimeridian in Natural Earth's data, is land on both sides of it.
    assert inside(rings, 179.5, 66.5) and inside(rings, -179.5, 66.5)


def test_the_outline_maker_cuts_rings_at_the_antimeridian() -> None:
    spec = importlib.util.spec_from_file_location("world_outline", ROOT / "docs" / "world_outline.py")
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    island = [(178.0, -16.0), (-178.0, -16.0), (-178.0, -18.0), (178.0, -18.0), (178.0, -16.0)]
    parts = maker.cut_at_antimeridian(island)
    assert len(parts) == 2
    assert all(part[0] == part[-1] for part in parts)
    assert sorted(min(x for x, _ in part) for part in parts) == [-180.0, 178.0]
    assert {(x, y) for part in parts for x, y in part if abs(x) == 180} == {
        (180.0, -16.0),
        (-180.0, -16.0),
        (180.0, -18.0),
        (-180.0, -18.0),
    }
    pole = [(-170.0, -70.0), (10.0, -70.0), (170.0, -70.0), (-170.0, -70.0)]
    (closed,) = maker.cut_at_antimeridian(pole)
    assert (180.0, -90.0) in closed or (-180.0, -90.0) in closed
    assert maker.encoded([(0.04, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]) == [0, 0, 10, 0, 0, 10, -10, -10]


@pytest.mark.parametrize("box", [(37.80012, 48.00031, 37.80541, 48.00377), (170.5, -20, -170.25, -5), geo.WORLD])
def test_the_land_is_drawn_exactly_under_the_box_however_small(box: geo.Bbox) -> None:
    root = parse(render_map([], box))
    (plot,) = (e for e in root.iter(f"{NS}svg") if e.get("viewBox") and e is not root)
    x, y, w, h = (float(v) for v in (plot.get("viewBox") or "").split())
    west, south, east, north = box
    east += 360 if west > east else 0
    assert (x, y, w, h) == pytest.approx((west * 10, -north * 10, (east - west) * 10, (north - south) * 10), abs=1e-5)
    view = geo.projection(box)
    assert float(plot.get("x", "nan")) == pytest.approx(view.left, abs=0.05)
    assert float(plot.get("width", "nan")) == pytest.approx(view.plot_width, abs=0.05)


def test_a_map_draws_only_the_land_near_its_view() -> None:
    world = render_map([], None)
    ukraine = render_map([], (22, 44, 41, 53))
    land = [p for p in parse(ukraine).iter(f"{NS}path") if p.get("class") == "map-land"]
    assert len(land) == 1
    assert len(ukraine) < len(world) / 2
    assert "no places to show" in world


# -- Rendering ---------------------------------------------------------------------------------

labels = st.one_of(st.text(), st.sampled_from([HOSTILE, "Харків", "قصف", "a\u202eb", "x" * 1000]))
relative_links = st.one_of(st.none(), st.text().map(lambda t: "record/" + t))
kinds = st.one_of(st.sampled_from(["claim", "exif", "container"]), st.text())


@given(
    st.lists(st.builds(MapPoint, lats, lons, labels, relative_links, kinds), max_size=30),
    st.one_of(st.none(), boxes()),
)
@example([MapPoint(50.45, 30.52, HOSTILE, 'r?x="1"&y=<2>', HOSTILE)], None)
def test_any_map_is_well_formed_and_escapes_every_text(points: list[MapPoint], box: geo.Bbox | None) -> None:
    svg = render_map(points, box, zoom_href=lambda b: "?bbox=" + geo.format_bbox(b))
    root = parse(svg)
    assert_self_contained(root, svg)
    assert not any(c in svg for c in BIDI)
    shown = "\n".join(titles(root))
    if len(points) == 1 and (box is None or geo.projection(box).contains(points[0].longitude, points[0].latitude)):
        # A mark of its own, whose tooltip starts with the label made printable.
        assert shown.split("\n")[1].startswith(display_path(points[0].label)[:100])
    for link in root.iter(f"{NS}a"):
        href = link.get("href") or ""
        assert href.startswith(("record/", "?bbox=", "r?x")), href


def test_a_point_is_a_linked_mark_with_its_label_and_position() -> None:
    svg = render_map([MapPoint(50.4501, 30.5234, "Kyiv <b>&", "record/1?a=1&b=2", "claim")], (20, 40, 45, 56))
    root = parse(svg)
    (link,) = root.iter(f"{NS}a")
    assert link.get("href") == "record/1?a=1&b=2"
    (mark,) = link
    assert mark.get("class") == "map-mark kind-claim"
    assert mark.findtext(f"{NS}title") == "Kyiv <b>&\nclaimed place: 50.45010, 30.52340"
    view = geo.projection((20, 40, 45, 56))
    x, y = view.project(30.5234, 50.4501)
    assert (float(mark.get("cx", "nan")), float(mark.get("cy", "nan"))) == pytest.approx((x, y), abs=0.06)


def test_points_outside_the_box_are_left_out_and_counted() -> None:
    points = [MapPoint(50.45, 30.52, "Kyiv", None, "claim"), MapPoint(-33.9, 18.4, "Cape Town", None, "exif")]
    svg = render_map(points, (20, 40, 45, 56))
    assert "Kyiv" in svg and "Cape Town" not in svg
    assert "1 outside this view" in svg


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", " JaVa\tScRiPt:alert(1)", "\x01javascript:x", "data:text/html,<b>", "vbscript:x"]
)
def test_a_link_that_could_run_script_is_refused(link: str) -> None:
    with pytest.raises(ValueError, match="relative or http"):
        MapPoint(0, 0, "x", link, "claim")
    with pytest.raises(ValueError, match="relative or http"):
        render_map([MapPoint(0, 0, "a", None), MapPoint(0, 0, "b", None)], zoom_href=lambda _: link)


@pytest.mark.parametrize("link", ["record/1", "/record/1", "?bbox=1,2,3,4", "#x", "https://example.org/a", "b/c"])
def test_relative_and_http_links_are_kept(link: str) -> None:
    assert MapPoint(0, 0, "x", link, "claim").href == link


def test_many_points_on_one_spot_are_one_mark_with_their_count() -> None:
    points = [MapPoint(48.0, 37.8, f"item {i}", f"record/{i}", "claim") for i in range(250)]
    points += [MapPoint(48.0, 37.8, "the photo's GPS", "record/x", "exif")]
    root = parse(render_map(points, (20, 40, 45, 56), zoom_href=lambda b: "?bbox=" + geo.format_bbox(b)))
    (cluster,) = (g for g in root.iter(f"{NS}g") if "map-cluster" in (g.get("class") or ""))
    assert cluster.get("class") == "map-cluster kind-mixed"
    assert [t.text for t in cluster.iter(f"{NS}text")] == ["251"]
    title = cluster.findtext(f"{NS}title") or ""
    assert title.startswith("251 points: 250 claimed place, 1 EXIF GPS\n")
    assert title.endswith("… and 248 more")
    (link,) = root.iter(f"{NS}a")
    west, south, east, north = parse_bbox((link.get("href") or "").removeprefix("?bbox="))
    assert west < 37.8 < east and south < 48.0 < north and east - west < 1


def test_a_hundred_thousand_points_make_a_bounded_picture_quickly() -> None:
    # Spread over the world, of many kinds (every tenth its own), half with their own link.
    points = [
        MapPoint(
            ((i * 7919) % 17000) / 100 - 85,
            ((i * 104729) % 36000) / 100 - 180,
            f"point {i}",
            f"record/{i}" if i % 2 else None,
            ("claim", "exif", "container")[i % 3] if i % 10 else f"kind {i}",
        )
        for i in range(100_000)
    ]
    started = time.perf_counter()
    svg = render_map(points, zoom_href=lambda b: "?bbox=" + geo.format_bbox(b))
    took = time.perf_counter() - started
    root = parse(svg)
    elements = sum(1 for _ in root.iter())
    assert elements < 4 * geo.MAX_MARKS + 200
    assert len(svg) < 1_500_000
    assert took < 5, took  # about 0.1 s on a developer's machine
    clusters = [re.match(r"(\d+) points: ", t) for t in titles(root)[1:]]
    counted = [int(m.group(1)) if m else 1 for m in clusters]
    assert sum(counted) == 100_000  # every point in one mark or another, none twice
    assert "more kinds" in svg


def test_fitting_the_view_keeps_every_point_and_crosses_the_antimeridian_when_closer() -> None:
    assert geo.fit_bbox([]) == geo.WORLD
    fiji = [MapPoint(-17.8, 178.0, "a"), MapPoint(-16.5, -179.9, "b")]
    west, _, east, _ = geo.fit_bbox(fiji)
    assert west > east and east - west + 360 < 30
    svg = render_map(fiji)
    assert "outside this view" not in svg and svg.count("<title>") == 3


@given(st.lists(st.builds(MapPoint, lats, lons, st.just("p")), min_size=1, max_size=20))
def test_a_fitted_view_shows_every_point(points: list[MapPoint]) -> None:
    view = geo.projection(geo.fit_bbox(points))
    assert all(view.contains(p.longitude, p.latitude) for p in points)


# -- Zoom links --------------------------------------------------------------------------------


@given(boxes())
@example((-180, -90, 180, 90))
@example((170, -20, -170, 0))
@example((0, 89, 1, 90))
def test_every_view_around_a_box_is_a_box_and_zooms_as_named(box: geo.Bbox) -> None:
    views = zoom_links(box)
    for name, view in views.items():
        assert geo.check_bbox(view) == view, name
        assert parse_bbox(geo.format_bbox(view)) == view
    size = geo.projection(box)

    def spans(b: geo.Bbox) -> tuple[float, float]:
        return geo._east(b) - b[0], b[3] - b[1]

    lon_span, lat_span = spans(box)
    if "in" in views:
        assert spans(views["in"])[0] <= lon_span + 1e-6 and spans(views["in"])[1] <= lat_span + 1e-6
        middle = size.unproject(size.left + size.plot_width / 2, size.top + size.plot_height / 2)
        assert geo.projection(views["in"]).contains(*middle)
    if "out" in views:
        assert spans(views["out"])[0] >= lon_span - 1e-6 and spans(views["out"])[1] >= lat_span - 1e-6
    if "north" in views:
        assert views["north"][3] > box[3]
    if "south" in views:
        assert views["south"][1] < box[1]
    assert ("out" in views) == (box != geo.WORLD)


def test_zoom_links_pan_across_the_antimeridian() -> None:
    views = zoom_links((150, -30, 170, -10))
    assert views["east"] == (160, -30, 180, -10)
    assert zoom_links(views["east"])["east"] == (170, -30, -170, -10)
    assert zoom_links((170, -30, -170, -10))["west"] == (160, -30, 180, -10)
    assert "north" not in zoom_links((0, 80, 10, 90))
    assert set(zoom_links(geo.WORLD)) == {"in"}


def test_a_map_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="240 to 10000 pixels"):
        render_map([], None, width=100)
    with pytest.raises(ValueError, match="no width"):
        render_map([], (5, 0, 5, 1))
    with pytest.raises(ValueError, match="between -90"):
        MapPoint(91, 0, "x")
