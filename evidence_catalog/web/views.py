"""What each page of the viewer shows, as the JSON documents its schemas publish
(``schemas/viewer-*.schema.json``); the templates draw the same documents.  Nothing here
writes: every read goes through :class:`~evidence_catalog.Catalog`'s reading methods."""

from __future__ import annotations

import datetime as dt
import functools
import re
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from evidence_catalog import model
from evidence_catalog.custody import is_salted
from evidence_catalog.errors import InputError, NotFoundError
from evidence_catalog.filters import RecordFilter, current_status
from evidence_catalog.interchange.redact import Redaction
from evidence_catalog.interchange.redact import _withhold_derived as withhold_derived
from evidence_catalog.serialize import VIEWER_SCHEMAS, format_timestamp, to_document
from evidence_catalog.web.serving import Thumbnails, display_type
from evidence_catalog.web.withholding import Withholding, WithholdingCache

if TYPE_CHECKING:
    from evidence_catalog import Catalog

#: Records on a page of the grid, by default and at most.
PAGE = 48
MAX_PAGE = 200
#: Records a filtered page looks at before it stops (a page with few matches in a million
#: records must still answer at once: it says how far it looked, and the next page goes on).
SCAN_BOUND = 5_000
#: Records the map and the timeline look at per page.
PLACE_SCAN_BOUND = 5_000
#: Custody events on a page of the log, by default and at most; and on a record's page.
EVENT_PAGE = 100
MAX_EVENT_PAGE = 1_000
RECORD_EVENTS_SHOWN = 1_000

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_record_id(text: str) -> bool:
    """Whether *text* has the form of a record id."""
    return bool(_ID.fullmatch(text))


def is_sha256(text: str) -> bool:
    """Whether *text* has the form of a SHA-256."""
    return bool(_SHA256.fullmatch(text))


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


@attrs.frozen
class RecordsQuery:
    """What a page of records was asked for (the ``list`` filters, search text, paging)."""

    status: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    bbox: str | None = None
    q: str | None = None
    after: str | None = None
    offset: int = 0
    limit: int = PAGE

    @property
    def filtered(self) -> bool:
        """Whether any filter is given (search text aside)."""
        return any((self.status, self.category, self.tags, self.flags, self.since, self.until, self.bbox))

    def as_params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query's parameters (with *changes*), for a link to another page of it."""
        query = attrs.evolve(self, **changes)
        params: list[tuple[str, str]] = []
        for name in ("status", "category", "since", "until", "bbox", "q", "after"):
            value = getattr(query, name)
            if value:
                params.append((name, value))
        params += [("tag", t) for t in query.tags] + [("flag", f) for f in query.flags]
        if query.offset:
            params.append(("offset", str(query.offset)))
        if query.limit != PAGE:
            params.append(("limit", str(query.limit)))
        return params

    def link(self, path: str, **changes: Any) -> str:
        """A link to *path* with this query (and *changes*)."""
        params = self.as_params(**changes)
        return path + ("?" + urllib.parse.urlencode(params) if params else "")

    def as_dict(self) -> dict[str, Any]:
        """The query as the JSON documents show it."""
        shown: dict[str, Any] = {}
        for name, value in self.as_params():
            if name in ("tag", "flag"):
                shown.setdefault(name, []).append(value)
            else:
                shown[name] = value
        return shown


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``west,south,east,north`` (as ``list --bbox``; ``west > east`` across the
    antimeridian); :class:`InputError` naming the problem."""
    from evidence_catalog.web.geo import parse_bbox as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise InputError(str(exc), where="bbox") from exc


class Viewer:
    """The state of one running viewer: the catalog (opened read-only), what it withholds,
    and its thumbnails."""

    def __init__(self, catalog: Catalog, *, show_sensitive: bool = False) -> None:
        self.catalog = catalog
        self.show_sensitive = show_sensitive
        self._withholding = WithholdingCache(show_sensitive)
        self.thumbnails = Thumbnails()

    # -- what is withheld ----------------------------------------------------------------------

    def withholding(self) -> Withholding:
        """What to withhold now (planned again when the log has grown)."""
        size = self.catalog.log_size()
        return self._withholding.get(size, lambda: list(self.catalog.records(self.catalog.flagged_record_ids())))

    def criteria(self, query: RecordsQuery) -> RecordFilter | None:
        """The record filter of *query* (``None`` without filters); :class:`InputError`."""
        if not query.filtered:
            return None
        bbox = parse_bbox(query.bbox) if query.bbox else None
        return self.catalog.record_filter(
            status=query.status,
            category=query.category,
            tags=query.tags,
            flags=query.flags,
            bbox=bbox,
            since=query.since,
            until=query.until,
        )

    def _read(self, ids: Sequence[str], unreadable: list[str] | None = None) -> list[model.EvidenceRecord]:
        """The records named that can be read; the ids of the others added to *unreadable*."""

        def note(record_id: str, _: object) -> None:
            if unreadable is not None:
                unreadable.append(record_id)

        return list(self.catalog.readable_records(only=list(ids), on_unreadable=note))

    def _scan(
        self,
        criteria: RecordFilter | None,
        after: str | None,
        wanted: int,
        bound: int,
        withholding: Withholding,
        unreadable: list[str] | None = None,
    ) -> tuple[list[model.EvidenceRecord], str | None, str | None, int]:
        """Records that meet *criteria* after *after*: up to *wanted*, looking at no more than
        *bound*; with the id to go on after (``None``: no more), the last id looked at when the
        bound stopped the scan, and how many were looked at.  A record is judged as it is shown
        (what *withholding* withholds cannot make it match: a filter would confirm a guess)."""
        found: list[model.EvidenceRecord] = []
        scanned = 0
        while True:
            ids = self.catalog.record_ids(after=after, limit=min(500, max(wanted + 1, 50)))
            if not ids:
                return found, None, None, scanned
            for record in self._read(ids, unreadable):
                scanned += 1
                if criteria is None or (
                    criteria.matches(record) and criteria.matches(withholding.record(record).record)
                ):
                    if len(found) == wanted:
                        return found, found[-1].id, None, scanned
                    found.append(record)
                if scanned >= bound:
                    return found, record.id, record.id, scanned
            after = ids[-1]

    # -- records -----------------------------------------------------------------------------

    def picture(self, record: model.EvidenceRecord) -> tuple[str, str] | None:
        """``(sha256, media type)`` of what the grid shows of *record*: its first picture, or
        the first frame kept of its first video."""
        for entry in record.artifacts:
            if entry.role in (model.ArtifactRole.ORIGINAL, model.ArtifactRole.SCREENSHOT):
                media_type = entry.artifact.media_type
                if media_type.startswith("image/"):
                    return entry.artifact.sha256, media_type
                if media_type.startswith("video/"):
                    frame = self._keyframe(record, entry.artifact.sha256)
                    if frame is not None:
                        return frame, media_type
        return None

    @staticmethod
    def _keyframe(record: model.EvidenceRecord, video: str) -> str | None:
        for entry in record.artifacts:
            if video in entry.derived_from and entry.artifact.media_type in ("image/jpeg", "image/png"):
                return entry.artifact.sha256
        return None

    def summary(
        self, record: model.EvidenceRecord, withholding: Withholding, redaction: Redaction | None = None
    ) -> dict[str, Any]:
        """One record as the grid shows it (``viewer_record_summary``); *redaction*: the record
        as *withholding* shows it, when already made."""
        redaction = withholding.record(record) if redaction is None else redaction
        shown = redaction.record
        picture = self.picture(record)
        withheld = picture is not None and picture[0] in self.withheld_files(
            record, withholding, redaction, among=picture[0]
        )
        acquired = min((a.started_at for a in shown.acquisitions), default=None)
        return {
            "id": record.id,
            "title": shown.title,
            "status": current_status(shown).value,
            "tags": list(shown.tags),
            "flags": sorted({f.kind.value for f in shown.flags}),
            "created_at": format_timestamp(shown.created_at),
            "acquired_at": _time(acquired),
            "artifacts": len(shown.artifacts),
            "reports": len(shown.reports),
            "claims": len(shown.claims),
            "media_type": picture[1] if picture else None,
            "thumbnail": None if picture is None or withheld else f"/records/{record.id}/thumbnails/{picture[0]}",
            "withheld": withheld,
            "url": f"/records/{record.id}",
        }

    def records_page(self, query: RecordsQuery) -> dict[str, Any]:
        """A page of records, or of search hits (``viewer-records``)."""
        criteria = self.criteria(query)
        withholding = self.withholding()
        hits: list[dict[str, Any]] | None = None
        scanned_to = None
        unreadable: list[str] = []
        if query.q:
            hits, next_offset = self._search_page(query, criteria, withholding, unreadable)
            summaries = [h["record"] for h in hits]
            next_link = query.link("/records", offset=next_offset) if next_offset is not None else None
        else:
            page, next_after, scanned_to, _ = self._scan(
                criteria, query.after, query.limit, SCAN_BOUND, withholding, unreadable
            )
            summaries = [self.summary(r, withholding) for r in page]
            next_link = query.link("/records", after=next_after) if next_after else None
        return {
            "schema": VIEWER_SCHEMAS["records"],
            "query": query.as_dict(),
            "records": summaries,
            "hits": hits,
            "next": next_link,
            "scanned_to": scanned_to,
            "unreadable": unreadable,
            "log_size": self.catalog.log_size(),
        }

    def _search_page(
        self, query: RecordsQuery, criteria: RecordFilter | None, withholding: Withholding, unreadable: list[str]
    ) -> tuple[list[dict[str, Any]], int | None]:
        """The hits shown of a search from its ``offset``, and the offset of the next page's
        first hit shown (``None``: no more).  A hit on withheld text is skipped and the search
        goes on past it, so that neither a page nor its link to the next one says that such
        hits exist (up to :data:`SCAN_BOUND` hits looked at, where the next page goes on)."""
        assert query.q is not None
        hits: list[dict[str, Any]] = []
        offset, batch = query.offset, query.limit + 1
        while True:
            found = self.catalog.search(query.q, limit=batch, offset=offset, record_filter=criteria)
            named = list(dict.fromkeys(h.record_id for h in found))
            records = {r.id: r for r in self._read(named, unreadable)}
            for index, hit in enumerate(found):
                record = records.get(hit.record_id)
                if record is None:
                    continue
                redaction = withholding.record(record)
                report = next((r for r in redaction.record.reports if r.id == hit.report.id), None)
                if report is None or report != hit.report:
                    continue  # its text is partly withheld: the hit would say what it holds
                if criteria is not None and not criteria.matches(redaction.record):
                    continue  # it matched through withheld text (a tag holding a withheld name)
                if len(hits) == query.limit:
                    return hits, offset + index
                summary = self.summary(record, withholding, redaction)
                hits.append({"record": summary, "report_id": report.id, "text": report.text})
            offset += len(found)
            if len(found) < batch:
                return hits, None
            if offset - query.offset >= SCAN_BOUND:
                return hits, offset
            batch = min(2 * batch, 500)

    # -- one record ----------------------------------------------------------------------------

    def media(
        self, record: model.EvidenceRecord, withheld: frozenset[str], withholding: Withholding
    ) -> list[dict[str, Any]]:
        """Each artifact of *record* and how the page shows it."""
        shown = []
        for entry in record.artifacts:
            artifact = entry.artifact
            sha = artifact.sha256
            held = sha in withheld
            kind = display_type(artifact.media_type) or ""
            if held:
                display = "withheld"
            elif kind.startswith("image/"):
                display = "image"
            elif kind.startswith("video/"):
                display = "video"
            elif kind.startswith("audio/"):
                display = "audio"
            elif kind == "text/plain":
                display = "text"
            else:
                display = "download"
            thumbnail = None
            if display == "image":
                thumbnail = f"/records/{record.id}/thumbnails/{sha}"
            elif display == "video":
                frame = self._keyframe(record, sha)
                if frame is not None and frame not in withheld:
                    thumbnail = f"/records/{record.id}/thumbnails/{frame}"
            shown.append(
                {
                    "sha256": sha,
                    "role": entry.role.value,
                    "media_type": artifact.media_type,
                    "size": artifact.size,
                    "url": None if held else f"/records/{record.id}/artifacts/{sha}",
                    "thumbnail": thumbnail,
                    "display": display,
                }
            )
        return shown

    def withheld_files(
        self, record: model.EvidenceRecord, withholding: Withholding, redaction: Redaction, among: str | None = None
    ) -> frozenset[str]:
        """SHA-256 of the files of *record* the viewer withholds, as a redacted export does:
        those flags withhold (here, or the same bytes elsewhere), those whose bytes hold a
        withheld text (a caption, an SVG's text: read once per plan), and those made from any
        of them.  *among*: only that file and those it was made from are searched."""
        searched = None if among is None else _made_from(record, among)
        reasons: dict[str, Any] = {sha: [("", "")] for sha in redaction.withheld_sha256}
        for entry in record.artifacts:
            artifact = entry.artifact
            sha = artifact.sha256
            if sha in reasons or (searched is not None and sha not in searched):
                continue
            if withholding.artifact_reasons(sha) or withholding.carries(
                sha, artifact.media_type, functools.partial(self.catalog.open_artifact, sha)
            ):
                reasons[sha] = [("", "")]
        withhold_derived(record, reasons)
        return frozenset(reasons)

    def events(self, events: Sequence[model.CustodyEvent], withholding: Withholding) -> list[dict[str, Any]]:
        """Custody events as the pages show them (``viewer_event``), withheld text replaced."""
        shown: list[dict[str, Any]] = []
        previous_whole: dict[int, bool] = {}
        for event in events:
            document = _plain(to_document(event))
            after_whole = False
            if withholding.active and event.seq > 1:
                before = event.seq - 1
                after_whole = previous_whole[before] if before in previous_whole else self._whole(before, withholding)
            shown_document, altered = withholding.event(document, after_whole=after_whole)
            previous_whole[event.seq] = shown_document.get("withheld") == "whole"
            subject = event.subject
            shown.append(
                {
                    "event": shown_document,
                    "altered": altered,
                    "record_url": f"/records/{subject}"
                    if is_record_id(subject)
                    else (f"/artifacts/{subject}" if is_sha256(subject) else None),
                }
            )
        return shown

    def _whole(self, seq: int, withholding: Withholding) -> bool:
        """Whether the event numbered *seq* is withheld whole: an event hashed before salted
        commitments that holds withheld text, or that follows such an event with only such
        events between (their hashes chain).  Read back a page at a time, from *seq*."""
        while seq >= 1:
            first = max(1, seq - EVENT_PAGE + 1)
            for event in reversed(self.catalog.custody_events(after=first - 1, limit=seq - first + 1)):
                document = to_document(event)
                if is_salted(document):
                    return False
                if withholding.event(document)[1]:
                    return True
            seq = first - 1
        return False

    def record_page(self, record_id: str) -> dict[str, Any]:
        """One record (``viewer-record``)."""
        record = self.catalog.record(record_id)
        withholding = self.withholding()
        redaction = withholding.record(record)
        events = self.catalog.record_events(record_id)
        last = self.catalog.last_verification()
        verification = None
        if last is not None:
            verification = {
                "seq": last.seq,
                "at": format_timestamp(last.at),
                "ok": bool(last.details.get("ok")),
                "findings": int(last.details.get("findings") or 0),
                "covers_record": any(e.seq < last.seq for e in events if e.subject == record_id),
                "changed_since": any(e.seq > last.seq for e in events if e.subject == record_id),
            }
        withheld_artifacts = [
            {"sha256": a.sha256, "reasons": [{"kind": k, "reason": withholding.text(r)} for k, r in a.reasons]}
            for a in redaction.artifacts
        ]
        held = self.withheld_files(record, withholding, redaction)
        document = _plain(to_document(redaction.record))
        # A file withheld for what its bytes hold (or made from one) loses its embedded
        # metadata here too, as a redacted export leaves it out (a caption, a position).
        carriers = held - redaction.withheld_sha256
        for entry in document["artifacts"]:
            if entry["artifact"]["digests"]["sha256"] in carriers:
                entry["artifact"]["metadata"] = None
        withheld_artifacts += [
            {"sha256": sha, "reasons": [{"kind": "carrier", "reason": _CARRIER}]} for sha in sorted(carriers)
        ]
        return {
            "schema": VIEWER_SCHEMAS["record"],
            "record": document,
            "status": current_status(redaction.record).value,
            "media": self.media(record, held, withholding),
            "withheld_artifacts": withheld_artifacts,
            "withheld_fields": [f.path for f in redaction.fields],
            "events": self.events(events[-RECORD_EVENTS_SHOWN:], withholding),
            "events_total": len(events),
            "last_verification": verification,
            "check_url": f"/records/{record_id}/check.json",
        }

    def artifact_page(self, sha256: str, *, after: str | None = None, limit: int = PAGE) -> dict[str, Any]:
        """The records that hold one artifact, a page at a time after the record id *after*
        (``viewer-artifact``): a feed's document is held by every record of its items."""
        withholding = self.withholding()
        ids = self.catalog.records_with_artifact(sha256)
        if not ids:
            raise NotFoundError(f"no record holds an artifact {sha256}", where="artifact")
        ids.sort()
        following = [i for i in ids if after is None or i > after]
        page = following[:limit]
        more = len(following) > limit
        return {
            "schema": VIEWER_SCHEMAS["artifact"],
            "sha256": sha256,
            "total": len(ids),
            "records": [self.summary(r, withholding) for r in self._read(page)],
            "next": f"/artifacts/{sha256}?after={page[-1]}&limit={limit}" if more else None,
        }

    # -- the log -------------------------------------------------------------------------------

    def events_page(self, after: int, limit: int) -> dict[str, Any]:
        """A page of the custody log (``viewer-events``)."""
        events = self.catalog.custody_events(after=after, limit=limit)
        size = self.catalog.log_size()
        last = events[-1].seq if events else after
        return {
            "schema": VIEWER_SCHEMAS["events"],
            "events": self.events(events, self.withholding()),
            "log_size": size,
            "next": f"/log?after={last}&limit={limit}" if last < size else None,
            "previous": f"/log?after={max(0, after - limit)}&limit={limit}" if after > 0 else None,
        }

    # -- map and timeline ----------------------------------------------------------------------

    def _places(self, query: RecordsQuery) -> tuple[list[model.EvidenceRecord], str | None, int]:
        """The records the map or the timeline draws: those that meet the query's filters,
        looking at no more than :data:`PLACE_SCAN_BOUND` after its ``after``."""
        page, next_after, _, scanned = self._scan(
            self.criteria(query), query.after, PLACE_SCAN_BOUND, PLACE_SCAN_BOUND, self.withholding()
        )
        return page, next_after, scanned

    def map_page(self, query: RecordsQuery) -> dict[str, Any]:
        """Positions claims allege and files state (``viewer-map``)."""
        withholding = self.withholding()
        points: list[dict[str, Any]] = []
        bbox = parse_bbox(query.bbox) if query.bbox else None
        # The box is the map's view, not a filter of the records: every position in it is drawn.
        page, next_after, scanned = self._places(attrs.evolve(query, bbox=None))
        for record in page:
            redaction = withholding.record(record)
            shown = redaction.record
            label = shown.title or record.id
            for claim in shown.claims:
                if claim.place is not None and claim.place.position is not None:
                    position = claim.place.position
                    name = claim.place.name or claim.summary or label
                    points.append(_point(position, "claim", record.id, f"{name} (alleged)"))
            for entry in shown.artifacts:
                metadata = entry.artifact.metadata
                if metadata is None:
                    continue
                # A file withheld for the text its bytes hold states no position either (only
                # files with a position are searched, once per plan).
                sha = entry.artifact.sha256
                if withholding.active and sha in self.withheld_files(record, withholding, redaction, among=sha):
                    continue
                if metadata.exif is not None and metadata.exif.gps is not None:
                    points.append(_point(metadata.exif.gps, "exif", record.id, f"{label}: EXIF GPS"))
                if metadata.media is not None and metadata.media.location is not None:
                    where = metadata.media.location.position
                    if where is not None:
                        points.append(_point(where, "container", record.id, f"{label}: container location"))
        if bbox is not None:
            points = [p for p in points if _inside(p, bbox)]
        return {
            "schema": VIEWER_SCHEMAS["map"],
            "bbox": list(bbox) if bbox else None,
            "points": points,
            "records_scanned": scanned,
            "complete": next_after is None,
            "next": query.link("/map", after=next_after) if next_after else None,
        }

    def timeline_page(self, query: RecordsQuery) -> dict[str, Any]:
        """Times claims allege, acquisitions, and reports' publication (``viewer-timeline``)."""
        withholding = self.withholding()
        items: list[dict[str, Any]] = []
        page, next_after, scanned = self._places(query)
        for record in page:
            shown = withholding.record(record).record
            label = shown.title or record.id
            for claim in shown.claims:
                if claim.event_time is not None:
                    items.append(
                        {
                            "start": format_timestamp(claim.event_time.start),
                            "end": _time(claim.event_time.end),
                            "kind": "claim",
                            "record_id": record.id,
                            "label": f"{claim.summary or label} (alleged)",
                        }
                    )
            for acquisition in shown.acquisitions:
                items.append(
                    {
                        "start": format_timestamp(acquisition.started_at),
                        "end": None,
                        "kind": "acquisition",
                        "record_id": record.id,
                        "label": f"{label}: {acquisition.method.value}",
                    }
                )
            for report in shown.reports:
                if report.published_at is not None:
                    items.append(
                        {
                            "start": format_timestamp(report.published_at),
                            "end": None,
                            "kind": "report",
                            "record_id": record.id,
                            "label": f"{label}: published by {report.author or 'its source'}",
                        }
                    )
        return {
            "schema": VIEWER_SCHEMAS["timeline"],
            "items": items,
            "records_scanned": scanned,
            "complete": next_after is None,
            "next": query.link("/timeline", after=next_after) if next_after else None,
        }


def _made_from(record: model.EvidenceRecord, sha256: str) -> set[str]:
    """*sha256* and every file of *record* it was made from, at any remove."""
    sources = {entry.artifact.sha256: entry.derived_from for entry in record.artifacts}
    found, pending = {sha256}, [sha256]
    while pending:
        for source in sources.get(pending.pop(), ()):
            if source not in found:
                found.add(source)
                pending.append(source)
    return found


_CARRIER = "its bytes hold text a sensitivity flag withholds (or it was made from a file that does)"


def _plain(document: dict[str, Any]) -> dict[str, Any]:
    """A document inside a viewer document: without its own ``schema`` member (the viewer's
    schema says what it is, as an export's does for the records and events it holds)."""
    return {key: value for key, value in document.items() if key != "schema"}


def _point(position: model.GeoPosition, kind: str, record_id: str, label: str) -> dict[str, Any]:
    return {
        "latitude": position.latitude,
        "longitude": position.longitude,
        "kind": kind,
        "record_id": record_id,
        "label": label,
    }


def _inside(point: dict[str, Any], bbox: tuple[float, float, float, float]) -> bool:
    west, south, east, north = bbox
    lon, lat = float(point["longitude"]), float(point["latitude"])
    in_lon = (lon >= west or lon <= east) if west > east else west <= lon <= east
    return south <= lat <= north and in_lon
