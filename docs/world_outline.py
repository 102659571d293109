"""Make ``evidence_catalog/web/static/world-110m.json``, the world outline of the viewer's maps,
from the ``land-110m.json`` of the npm package ``world-atlas`` (2.0.2: Natural Earth 4.1.0's
1:110m land polygons as TopoJSON, by Mike Bostock, ISC licence; Natural Earth itself is in the
public domain).

``python docs/world_outline.py PATH/TO/world-atlas/land-110m.json`` (``npm pack world-atlas@2``
and unpack it to get one).  What is done to the data:

* the TopoJSON is decoded: each arc is a list of quantized positions, the first absolute and
  every other one the difference from the one before, mapped to degrees by the topology's
  ``transform``; a ring is a list of arcs (``~i`` for arc ``i`` reversed), each joined to the
  previous one at their shared end point;
* the rings are on the sphere: a ring that crosses the antimeridian (Chukotka with Eurasia,
  Fiji, Wrangel Island) is cut there into a part on each side, each closed along the meridian,
  and the one that goes around the South Pole (Antarctica) is closed along the map's bottom
  edge, so that every ring can be filled on a flat map;
* every position is rounded to a tenth of a degree (about 11 km: the detail of a 1:110m map),
  repeated positions are dropped, and rings left with fewer than three are left out;
* each ring is stored as integers in tenths of a degree: its first longitude and latitude, then
  the difference of each next position from the one before.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "evidence_catalog" / "web" / "static" / "world-110m.json"

Point = tuple[float, float]

METADATA = {
    "name": "world land outline, 1:110m",
    "source": (
        "Natural Earth 4.1.0, 1:110m physical vectors, land (naturalearthdata.com), as TopoJSON in "
        "the npm package world-atlas 2.0.2 (land-110m.json, by Mike Bostock, ISC licence); "
        "made by docs/world_outline.py"
    ),
    "licence": "Natural Earth data is in the public domain",
    "unit": "tenth of a degree (WGS 84 longitude, latitude)",
    "encoding": (
        "rings: each a list of integers x0, y0, dx1, dy1, ...: the first position, then each next "
        "one as its difference from the one before; fill with the even-odd rule"
    ),
}


def decode_arcs(topology: dict[str, object]) -> list[list[Point]]:
    """The arcs of a quantized TopoJSON topology, in degrees."""
    transform = topology["transform"]
    assert isinstance(transform, dict)
    (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
    arcs = []
    for arc in topology["arcs"]:  # type: ignore[attr-defined]
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring_points(arcs: list[list[Point]], indices: list[int]) -> list[Point]:
    """The closed ring made by joining the arcs *indices* (``~i``: arc ``i`` reversed)."""
    points: list[Point] = []
    for index in indices:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def cut_at_antimeridian(ring: list[Point]) -> list[list[Point]]:
    """*ring* (closed, on the sphere) as rings that do not cross the antimeridian."""
    pieces: list[list[Point]] = [[ring[0]]]
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        if abs(x1 - x0) <= 180:
            pieces[-1].append((x1, y1))
            continue
        side = 180.0 if x0 > 0 else -180.0  # the edge the segment leaves by
        unwrapped = x1 + 2 * side  # where x1 is, seen past the edge
        y = y0 + (y1 - y0) * (side - x0) / (unwrapped - x0) if unwrapped != x0 else y0
        pieces[-1].append((side, y))
        pieces.append([(-side, y), (x1, y1)])
    if len(pieces) == 1:
        return pieces
    # The first and last pieces are one (the ring's start is not a crossing).
    pieces[0] = pieces.pop() + pieces[0][1:]
    if len(pieces) == 1:  # one crossing: the ring goes around a pole
        (piece,) = pieces
        pole = -90.0 if sum(y for _, y in piece) < 0 else 90.0
        return [[*piece, (piece[-1][0], pole), (piece[0][0], pole), piece[0]]]
    assert len(pieces) == 2, "a ring crossing the antimeridian more than twice"
    return [[*piece, piece[0]] for piece in pieces]  # each closed along the meridian


def encoded(ring: list[Point]) -> list[int] | None:
    """*ring* rounded to tenths of a degree and delta-encoded, or ``None`` when too small."""
    points: list[tuple[int, int]] = []
    for x, y in ring:
        point = (round(x * 10), round(y * 10))
        if not points or points[-1] != point:
            points.append(point)
    if len(points) < 4:  # closed: at least three distinct positions and the first again
        return None
    values = [*points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        values += [x1 - x0, y1 - y0]
    return values


def main(source: Path) -> None:
    topology = json.loads(source.read_text(encoding="utf-8"))
    arcs = decode_arcs(topology)
    rings: list[list[int]] = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for indices in polygon:
                for ring in cut_at_antimeridian(ring_points(arcs, indices)):
                    values = encoded(ring)
                    if values is not None:
                        rings.append(values)
    text = json.dumps({**METADATA, "rings": rings}, separators=(",", ":"), ensure_ascii=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"{OUT.name}: {len(rings)} rings, {sum(len(r) for r in rings) // 2} positions, {len(text)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
