"""Which records a ``list`` asks for: a pure predicate over a record's current state.

A record matches when it meets every criterion given (``None`` or empty means "any"):

* ``status``: its current verification status -- that of its latest assessment, and
  ``unverified`` for a record never assessed;
* ``category``: one of its claims names that category;
* ``tags``: it has every one of these tags; ``flags``: it carries every one of these flags;
* ``bbox``: one of its claims places the item inside the box ``(west, south, east, north)`` in
  WGS 84 degrees, edges included (``west > east`` for a box across the antimeridian);
* ``since`` / ``until``: one of its claims alleges a time that overlaps that range (an instant
  is a range of no length; ``until`` is included).

Claims without a place or a time never match a place or time criterion: nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from attrs import field, frozen

from evidence_catalog import model
from evidence_catalog.errors import ModelError


def _bbox(_: object, attribute: object, value: tuple[float, float, float, float] | None) -> None:
    if value is None:
        return
    if len(value) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in value):
        raise ModelError("a bounding box is four numbers: west, south, east, north")
    west, south, east, north = value
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise ModelError(
            "a bounding box is west,south,east,north in degrees: longitudes from -180 to 180, "
            "latitudes from -90 to 90, south not above north"
        )


def _to_tags(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _to_flags(values: Iterable[str]) -> tuple[model.SensitivityKind, ...]:
    return tuple(model.SensitivityKind(v) for v in values)


def _to_status(value: str | None) -> model.VerificationStatus | None:
    return None if value is None else model.VerificationStatus(value)


@frozen
class RecordFilter:
    """Criteria for :meth:`matches` (see the module notes)."""

    status: model.VerificationStatus | None = field(default=None, converter=_to_status)
    category: str | None = None
    tags: tuple[str, ...] = field(default=(), converter=_to_tags)
    flags: tuple[model.SensitivityKind, ...] = field(default=(), converter=_to_flags)
    bbox: tuple[float, float, float, float] | None = field(default=None, validator=_bbox)
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, dt.datetime) or value.utcoffset() is None):
                raise ModelError(f"{name} must be a time with its zone")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ModelError("until is before since")

    def matches(self, record: model.EvidenceRecord) -> bool:
        """Tell whether *record* meets every criterion."""
        if self.status is not None and current_status(record) is not self.status:
            return False
        if self.category is not None and all(c.category != self.category for c in record.claims):
            return False
        if not set(self.tags) <= set(record.tags):
            return False
        if not set(self.flags) <= {f.kind for f in record.flags}:
            return False
        if self.bbox is not None and not any(self._inside(c.place) for c in record.claims):
            return False
        if self.since is None and self.until is None:
            return True
        return any(self._overlaps(c.event_time) for c in record.claims)

    def _inside(self, place: model.Place | None) -> bool:
        if place is None or place.position is None or self.bbox is None:
            return False
        west, south, east, north = self.bbox
        lat, lon = place.position.latitude, place.position.longitude
        across = west > east  # the box crosses the antimeridian
        in_lon = (lon >= west or lon <= east) if across else west <= lon <= east
        return south <= lat <= north and in_lon

    def _overlaps(self, time: model.EventTime | None) -> bool:
        if time is None:
            return False
        end = time.end or time.start
        return (self.since is None or end >= self.since) and (self.until is None or time.start <= self.until)


def current_status(record: model.EvidenceRecord) -> model.VerificationStatus:
    """The status of the record's latest assessment; ``unverified`` when it has none."""
    return record.assessments[-1].status if record.assessments else model.VerificationStatus.UNVERIFIED
