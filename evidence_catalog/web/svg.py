"""What the viewer's SVG pictures (:mod:`.geo`'s maps, :mod:`.timeline`'s timelines) share:
text made safe to embed, links checked, numbers written short, and the marks of each kind.

The pictures are strings of SVG markup meant to sit inline in an HTML page served under a strict
Content-Security-Policy: they style themselves with presentation attributes (``fill=``,
``stroke=``) and classes only, never a ``style`` attribute or element (``style-src 'self'``
blocks both), contain no script and refer to nothing outside themselves.

Every text from a catalog (a label, a kind, a link) is escaped for XML, and before that made one
printable line (:func:`evidence_catalog.paths.display_path`): control characters, which XML 1.0
forbids, and bidirectional overrides, which could reorder the text around them, are shown as
escapes (``\\u202e``) rather than passed on.
"""

from __future__ import annotations

import html
import math
import re
import urllib.parse
from typing import Any

import attrs
import numpy as np

from evidence_catalog.errors import ModelError
from evidence_catalog.paths import display_path

SVG_NS = "http://www.w3.org/2000/svg"

#: A URL's scheme, after what a browser removes from a link before it reads one (leading and
#: trailing spaces and control characters, tabs and line breaks anywhere).
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_URL_IGNORED = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(map(chr, range(33)))
_URL_SAFE = "".join(map(chr, range(33, 127)))  # printable ASCII: left as it is in a link

#: Longest text shown for a label (in a tooltip or beside a mark), in characters.
LABEL_LIMIT = 160


def text(value: str, limit: int = LABEL_LIMIT) -> str:
    """*value* as SVG character data or attribute text: one printable line (see the module
    notes), cut to *limit* characters with an ellipsis, XML-escaped (quotes too)."""
    line = display_path(value)
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return html.escape(line, quote=True)


def check_href(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """An attrs validator of a link: see :func:`checked_href`."""
    checked_href(value, attribute.name)


def checked_href(value: str | None, what: str = "href") -> str | None:
    """*value* when it is ``None``, a relative URL or an ``http(s)`` one: never ``javascript:``,
    ``data:`` or another scheme a browser would act on differently; otherwise
    :class:`~evidence_catalog.errors.ModelError` naming *what* it is."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelError(f"{what} must be text, got {value!r}")
    bare = _URL_IGNORED.sub("", value.strip(_C0_AND_SPACE))
    scheme = _SCHEME.match(bare)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        raise ModelError(f"{what} must be a relative or http(s) URL, got {display_path(value[:200])!r}")
    return value


def href(value: str) -> str:
    """*value* (checked by :func:`check_href`) as the text of an ``href`` attribute: spaces,
    control characters and all but ASCII percent-encoded (as UTF-8), markup characters escaped."""
    return html.escape(urllib.parse.quote(value, safe=_URL_SAFE, errors="surrogatepass"), quote=True)


def number(value: float) -> str:
    """A coordinate to a tenth of a pixel, without a useless ``.0`` or ``-0``."""
    tenths = round(value * 10)
    if tenths % 10 == 0:
        return str(tenths // 10)
    return f"{tenths / 10:.1f}"


def check_finite(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    """An attrs validator: a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"{attribute.name} must be a finite number, got {value!r}")


@attrs.frozen
class KindStyle:
    """How the marks of one kind look: a shape (``circle``, ``square``, ``diamond``,
    ``triangle``), a fill colour, and the words of the legend."""

    shape: str
    colour: str
    legend: str


#: Colours of the Okabe-Ito palette, told apart with the common colour-vision deficiencies;
#: the shapes differ too, so that no kind is told by colour alone.
MAP_KINDS = {
    "claim": KindStyle("circle", "#d55e00", "claimed place"),
    "exif": KindStyle("square", "#0072b2", "EXIF GPS"),
    "container": KindStyle("diamond", "#009e73", "media container location"),
}
TIME_KINDS = {
    "claim": KindStyle("circle", "#d55e00", "alleged time"),
    "acquisition": KindStyle("square", "#0072b2", "acquired"),
    "report": KindStyle("diamond", "#009e73", "published"),
}
#: The style of a kind the tables above do not know (its own name is its legend).
OTHER_KIND = KindStyle("triangle", "#6a6a6a", "")


def kind_class(kind: str, known: dict[str, KindStyle]) -> str:
    """The class naming a kind: ``kind-claim``; ``kind-other`` for a kind not in *known* (a
    class name is never made of a caller's text)."""
    return f"kind-{kind}" if kind in known else "kind-other"


def shape(style: KindStyle, x: float, y: float, r: float, attributes: str, inner: str = "") -> str:
    """A mark of *style*'s shape centred on (*x*, *y*), of radius about *r*, with *attributes*
    (already escaped) and *inner* markup (a ``<title>``)."""
    fill = f' fill="{style.colour}"'
    if style.shape == "circle":
        return f'<circle cx="{number(x)}" cy="{number(y)}" r="{number(r)}"{fill}{attributes}>{inner}</circle>'
    if style.shape == "square":
        s = r * 0.9
        return (
            f'<rect x="{number(x - s)}" y="{number(y - s)}" width="{number(2 * s)}" height="{number(2 * s)}"'
            f"{fill}{attributes}>{inner}</rect>"
        )
    s = r * 1.2
    corners: tuple[tuple[float, float], ...]
    if style.shape == "diamond":
        corners = ((x, y - s), (x + s, y), (x, y + s), (x - s, y))
    else:  # triangle
        corners = ((x, y - s), (x + s, y + s * 0.75), (x - s, y + s * 0.75))
    d = "M" + "L".join(f"{number(cx)} {number(cy)}" for cx, cy in corners) + "Z"
    return f'<path d="{d}"{fill}{attributes}>{inner}</path>'


def short_count(count: int) -> str:
    """A count in at most four characters: ``950``, ``1.2k``, ``34k``, ``1.2M``."""
    for limit, unit in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


#: The radius (pixels) of one item's mark.
SINGLE_RADIUS = 5.0


def mark_radius(count: int) -> float:
    """The radius (pixels) of the mark of *count* items: room for the count in it."""
    return SINGLE_RADIUS if count == 1 else 6.5 + 2.3 * len(short_count(count))


def cluster(x: np.ndarray, y: np.ndarray, cell: float, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Marks for items at pixels (*x*, *y*): each item's mark (numbered from 0) and how many
    items each mark stands for.

    Items are grouped by the square cell they fall in, the cells growing from *cell* pixels
    until there are at most *most* marks and the largest mark fits in a cell; then a mark
    that would overlap a larger one (each drawn at the mean position of its items) joins it,
    so that every count stays readable."""
    if not len(x):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    left, top = float(x.min()), float(y.min())
    for _ in range(12):
        columns = int((float(x.max()) - left) / cell) + 2
        keys = ((y - top) // cell).astype(np.int64) * columns + ((x - left) // cell).astype(np.int64)
        unique, inverse, count = np.unique(keys, return_inverse=True, return_counts=True)
        fits = 2 * mark_radius(int(count.max())) + 2
        if len(unique) <= most and fits <= cell:
            break
        cell = max(cell * 1.5 if len(unique) > most else cell, fits)
    gx = np.bincount(inverse, weights=x) / count
    gy = np.bincount(inverse, weights=y) / count
    radius = np.array([mark_radius(int(c)) for c in count.tolist()])
    target = np.arange(len(count))
    placed = np.zeros(len(count), np.int64)
    n = 0
    for g in np.argsort(-count, kind="stable").tolist():
        if n:
            near = placed[:n]
            hits = np.flatnonzero(np.hypot(gx[near] - gx[g], gy[near] - gy[g]) < radius[near] + radius[g])
            if len(hits):
                target[g] = near[hits[0]]
                continue
        placed[n] = g
        n += 1
    merged, inverse = np.unique(target[inverse], return_inverse=True)
    return inverse, np.bincount(inverse, minlength=len(merged))


def count_text(x: float, y: float, count: str, css_class: str) -> str:
    """A cluster's count, white on its mark centred on (*x*, *y*)."""
    return (
        f'<text class="{css_class}" x="{number(x)}" y="{number(y)}" text-anchor="middle" dominant-baseline="central" '
        f'font-family="sans-serif" font-size="10" font-weight="bold" fill="#fff">{html.escape(count)}</text>'
    )


def linked(markup: str, link: str | None) -> str:
    """*markup* inside an ``<a href>`` when there is a *link*."""
    return markup if link is None else f'<a href="{href(link)}">{markup}</a>'


def empty_svg(width: int, height: int, message: str, css_class: str) -> str:
    """A picture that says *message* in its middle: what is drawn when there is nothing to draw."""
    return (
        f'<svg xmlns="{SVG_NS}" class="{css_class} empty" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{text(message)}">'
        f'<rect class="frame" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#fafafa" stroke="#ccc"/>'
        f'<text x="{width / 2:g}" y="{height / 2:g}" text-anchor="middle" dominant-baseline="central" '
        f'font-family="sans-serif" font-size="14" fill="#555">{text(message)}</text></svg>'
    )
