"""The definitions of the viewer's JSON documents (``evidence-catalog serve``: every page has
its JSON at the same address with ``.json`` or ``Accept: application/json``), added to the
definitions of ``generate.py``, which loads this file and writes the schema files."""

from __future__ import annotations

from typing import Any


def add(
    defs: dict[str, Any], obj: Any, ref: Any, nullable: Any, enum: Any, text: Any, count: Any
) -> list[tuple[str, str, str, str]]:
    """Add the viewer's definitions to *defs*; the documents to write, as ``generate.DOCUMENTS``."""
    opt_text = nullable(text)
    url = {**text, "description": "An address on the viewer, relative to its root."}
    flags = {
        "type": "array",
        "items": enum("graphic", "personal_data", "protected_source", "minors"),
        "description": "The kinds of sensitivity flag the record carries.",
    }
    defs["viewer_record_summary"] = obj(
        {
            "id": ref("id"),
            "title": opt_text,
            "status": {**text, "description": "The status of the record's latest assessment (unverified if none)."},
            "tags": {"type": "array", "items": text},
            "flags": flags,
            "created_at": ref("timestamp"),
            "acquired_at": nullable(ref("timestamp")),
            "artifacts": count,
            "reports": count,
            "claims": count,
            "media_type": {**opt_text, "description": "The media type of the artifact the thumbnail shows."},
            "thumbnail": nullable({**url, "description": "A small JPEG of the record's first picture or video."}),
            "withheld": {"type": "boolean", "description": "True when the picture is withheld (a sensitivity flag)."},
            "url": url,
        },
        description="One record as the grid of records shows it.",
    )
    defs["viewer_hit"] = obj(
        {
            "record": ref("viewer_record_summary"),
            "report_id": ref("id"),
            "text": {**text, "description": "The report's exact text (redacted where flags withhold it)."},
        },
        description="A report that full-text search found, and its record.",
    )
    defs["viewer_records"] = obj(
        {
            "query": {"type": "object", "description": "The filters and search text this page was asked for."},
            "records": {"type": "array", "items": ref("viewer_record_summary")},
            "hits": nullable({"type": "array", "items": ref("viewer_hit")}),
            "next": nullable({**url, "description": "The next page, if there may be one."}),
            "scanned_to": nullable(
                {
                    **ref("id"),
                    "description": "With filters: the last record id looked at (a page stops after a bounded scan).",
                }
            ),
            "unreadable": {
                "type": "array",
                "items": ref("id"),
                "description": "Records on this page whose rows do not make a valid record (verify names why).",
            },
            "log_size": count,
        },
        description="A page of records (or of search hits) of the viewer.",
    )
    defs["viewer_event"] = obj(
        {
            "event": ref("custody_event_line"),
            "altered": {"type": "boolean", "description": "Text withheld by a sensitivity flag was replaced."},
            "record_url": nullable(url),
        },
        description="A custody event as the viewer shows it.",
    )
    defs["viewer_events"] = obj(
        {
            "events": {"type": "array", "items": ref("viewer_event")},
            "log_size": count,
            "next": nullable(url),
            "previous": nullable(url),
        },
        description="A page of the custody log.",
    )
    defs["viewer_withheld_artifact"] = obj(
        {
            "sha256": ref("sha256"),
            "reasons": {
                "type": "array",
                "items": obj({"kind": text, "reason": text}),
            },
        }
    )
    defs["viewer_record"] = obj(
        {
            "record": ref("evidence_record"),
            "status": text,
            "media": {
                "type": "array",
                "items": obj(
                    {
                        "sha256": ref("sha256"),
                        "role": text,
                        "media_type": text,
                        "size": count,
                        "url": nullable(url),
                        "thumbnail": nullable(url),
                        "display": enum("image", "video", "audio", "text", "download", "withheld"),
                    }
                ),
                "description": "Each artifact, and how the page shows it.",
            },
            "withheld_artifacts": {"type": "array", "items": ref("viewer_withheld_artifact")},
            "withheld_fields": {"type": "array", "items": text},
            "events": {"type": "array", "items": ref("viewer_event")},
            "events_total": count,
            "last_verification": nullable(
                obj(
                    {
                        "seq": {"type": "integer", "minimum": 1},
                        "at": ref("timestamp"),
                        "ok": {"type": "boolean"},
                        "findings": count,
                        "covers_record": {
                            "type": "boolean",
                            "description": "The record existed when that verification ran.",
                        },
                        "changed_since": {
                            "type": "boolean",
                            "description": "Events about the record came after it: not the record as it is now.",
                        },
                    }
                )
            ),
            "check_url": {**url, "description": "Re-hashes the record's files now (a verification-report)."},
        },
        description="One record with its media, custody events and latest verification.",
    )
    point = obj(
        {
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
            "kind": enum("claim", "exif", "container"),
            "record_id": ref("id"),
            "label": text,
        }
    )
    defs["viewer_map"] = obj(
        {
            "bbox": nullable({"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}),
            "points": {"type": "array", "items": point},
            "records_scanned": count,
            "complete": {"type": "boolean", "description": "False when the scan stopped at its bound."},
            "next": nullable(url),
        },
        description="Positions that claims allege and that files' metadata state.",
    )
    item = obj(
        {
            "start": ref("timestamp"),
            "end": nullable(ref("timestamp")),
            "kind": enum("claim", "acquisition", "report"),
            "record_id": ref("id"),
            "label": text,
        }
    )
    defs["viewer_timeline"] = obj(
        {
            "items": {"type": "array", "items": item},
            "records_scanned": count,
            "complete": {"type": "boolean"},
            "next": nullable(url),
        },
        description="Times that claims allege, acquisitions and reports' publication.",
    )
    defs["viewer_artifact"] = obj(
        {
            "sha256": ref("sha256"),
            "total": {**count, "description": "How many records hold it."},
            "records": {"type": "array", "items": ref("viewer_record_summary")},
            "next": nullable({**url, "description": "The next page of them."}),
        },
        description="The records that hold one artifact, a page at a time.",
    )
    return [
        ("viewer-records", "1.0.0", "viewer_records", "Viewer: a page of records"),
        ("viewer-record", "1.0.0", "viewer_record", "Viewer: one record"),
        ("viewer-events", "1.0.0", "viewer_events", "Viewer: a page of the custody log"),
        ("viewer-map", "1.0.0", "viewer_map", "Viewer: the map"),
        ("viewer-timeline", "1.0.0", "viewer_timeline", "Viewer: the timeline"),
        ("viewer-artifact", "1.0.0", "viewer_artifact", "Viewer: the records holding an artifact"),
    ]
