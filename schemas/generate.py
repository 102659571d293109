"""Write the published JSON Schemas in this folder from one set of definitions.

Each schema file is self-contained (its own ``$defs``), so that a recipient can validate a
document with any draft 2020-12 validator and no network access, e.g.::

    check-jsonschema --schemafile schemas/evidence-record-1.0.0.schema.json record.json

Run ``python schemas/generate.py`` after changing a definition; a test fails while the files
here and this script disagree.  A change to a published format is a new schema version.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
BASE = "urn:evidence-catalog:schema:"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def obj(properties: dict[str, Any], required: list[str] | None = None, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def enum(*values: str, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema


TEXT = {"type": "string"}
NONBLANK = {"type": "string", "pattern": "\\S"}
OPT_TEXT = nullable(TEXT)
BOOL = {"type": "boolean"}
_NOT_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
TAG_PATTERN = f"^[^\\s{_NOT_CONTROL}]([^{_NOT_CONTROL}]*[^\\s{_NOT_CONTROL}])?$"
COUNT = {"type": "integer", "minimum": 0}

DEFS: dict[str, Any] = {
    "timestamp": {
        "type": "string",
        "description": "ISO 8601 date-time in UTC with a Z suffix; fractional seconds only when non-zero.",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?Z$",
    },
    "id": {
        "type": "string",
        "description": "Time-ordered identifier: a lowercase UUID version 7 (RFC 9562).",
        "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    },
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256, lowercase hex."},
    "agent": obj(
        {
            "name": {**NONBLANK, "description": "Person's, organisation's or program's name."},
            "kind": enum("person", "software", "organization"),
            "email": nullable(NONBLANK),
            "organization": nullable(NONBLANK),
            "version": nullable({**NONBLANK, "description": "Version of a software agent."}),
            "host": nullable({**NONBLANK, "description": "Host name the agent acted from."}),
        },
        description="A person, an organisation or a program that acted on evidence.",
    ),
    "digests": obj(
        {
            "sha256": ref("sha256"),
            "md5": nullable({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
            "sha1": nullable({"type": "string", "pattern": "^[0-9a-f]{40}$"}),
            "sha512": nullable({"type": "string", "pattern": "^[0-9a-f]{128}$"}),
            "blake2b": nullable({"type": "string", "pattern": "^[0-9a-f]{128}$"}),
        },
        description="Digests of the same bytes; SHA-256 is the identity, others where configured.",
    ),
    "geo_position": obj(
        {
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
            "altitude_m": nullable({"type": "number", "minimum": -1e6, "maximum": 1e9}),
        },
        description="WGS 84 position in signed decimal degrees; altitude in metres.",
    ),
    "exif": obj(
        {
            "raw": {"type": "object", "additionalProperties": TEXT, "description": "Every tag exifread read."},
            "datetime_original": nullable(
                {**TEXT, "description": "Camera's local date-time (ISO 8601), with offset when the file gives one."}
            ),
            "make": OPT_TEXT,
            "model": OPT_TEXT,
            "software": OPT_TEXT,
            "gps": nullable(ref("geo_position")),
        }
    ),
    "image_info": obj(
        {
            "width": {"type": "integer", "minimum": 1, "description": "Pixels, of the picture as stored."},
            "height": {"type": "integer", "minimum": 1},
            "orientation": nullable(
                {"type": "integer", "minimum": 1, "maximum": 8, "description": "EXIF Orientation as stored."}
            ),
        },
        description="An image's size and orientation, read from its header (no pixel decoded).",
    ),
    "media_location": obj(
        {
            "tag": NONBLANK,
            "text": {**TEXT, "description": "The tag's ISO 6709 text exactly."},
            "position": nullable(ref("geo_position")),
        },
        description="A position a media file's tag claims; position null when the text is not read as one.",
    ),
    "media_stream": obj(
        {
            "index": COUNT,
            "kind": enum("video", "audio", "subtitle", "data", "attachment", "unknown"),
            "codec": nullable(NONBLANK),
            "profile": nullable(NONBLANK),
            "width": nullable({"type": "integer", "minimum": 1}),
            "height": nullable({"type": "integer", "minimum": 1}),
            "frame_rate": nullable({"type": "number", "minimum": 0, "description": "Average frames per second."}),
            "rotation": nullable(
                {"enum": [0, 90, 180, 270], "description": "Degrees clockwise a player turns the picture to show it."}
            ),
            "bit_rate": nullable({"type": "integer", "minimum": 1, "description": "Bits per second."}),
            "sample_rate": nullable({"type": "integer", "minimum": 1}),
            "channels": nullable({"type": "integer", "minimum": 1}),
            "duration_s": nullable({"type": "number", "minimum": 0}),
            "frames": nullable({"type": "integer", "minimum": 1}),
            "tags": {"type": "object", "additionalProperties": TEXT, "description": "The stream's tags as read."},
        }
    ),
    "media_info": obj(
        {
            "format": {**NONBLANK, "description": "FFmpeg's demuxer name(s), e.g. mov,mp4,m4a,3gp,3g2,mj2."},
            "format_name": OPT_TEXT,
            "duration_s": nullable({"type": "number", "minimum": 0}),
            "bit_rate": nullable({"type": "integer", "minimum": 1}),
            "streams": {"type": "array", "items": ref("media_stream")},
            "tags": {"type": "object", "additionalProperties": TEXT, "description": "The container's tags as read."},
            "created_at": nullable(
                {**ref("timestamp"), "description": "The container's creation_time tag, in UTC: the device's claim."}
            ),
            "location": nullable(ref("media_location")),
        },
        description="What an audio or video container's headers say.",
    ),
    "embedded_metadata": obj(
        {
            "extractor": ref("agent"),
            "exif": nullable(ref("exif")),
            "errors": {"type": "array", "items": TEXT, "description": "Problems met while extracting."},
            "image": {**ref("image_info"), "description": "Images: size and orientation (absent when not read)."},
            "media": {**ref("media_info"), "description": "Audio and video: the container (absent when not read)."},
        },
        required=["extractor", "exif", "errors"],
    ),
    "artifact": obj(
        {
            "digests": ref("digests"),
            "size": {**COUNT, "description": "Length in bytes."},
            "media_type": {
                "type": "string",
                "pattern": "^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$",
                "description": "Sniffed from the bytes.",
            },
            "metadata": nullable(ref("embedded_metadata")),
        },
        description="Bytes held in the blob store.",
    ),
    "record_artifact": obj(
        {
            "artifact": ref("artifact"),
            "role": enum(
                "original",
                "derived",
                "platform_metadata",
                "thumbnail",
                "subtitle",
                "description",
                "page_snapshot",
                "source_document",
                "web_archive",
                "screenshot",
                "rendered_page",
                "page_print",
                "page_text",
            ),
            "derived_from": {
                "type": "array",
                "items": ref("sha256"),
                "description": "SHA-256s of the sources of a derived artifact (e.g. merged streams).",
            },
            "derivation": OPT_TEXT,
            "version_of": nullable(
                {**ref("sha256"), "description": "The earlier version of the same item, captured again."}
            ),
        }
    ),
    "http_response": obj(
        {
            "url": NONBLANK,
            "status": {"type": "integer", "minimum": 100, "maximum": 999},
            "headers": {
                "type": "array",
                "items": {"type": "array", "prefixItems": [TEXT, TEXT], "minItems": 2, "maxItems": 2},
                "description": "[name, value] pairs as sent; Set-Cookie values withheld.",
            },
        },
        description="An HTTP response as received.",
    ),
    "platform_info": obj(
        {
            "title": OPT_TEXT,
            "uploader": OPT_TEXT,
            "uploader_id": OPT_TEXT,
            "channel": OPT_TEXT,
            "channel_id": OPT_TEXT,
            "uploaded_at": nullable(ref("timestamp")),
            "upload_date": nullable({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
            "duration_s": nullable({"type": "number", "minimum": 0}),
            "format_id": OPT_TEXT,
            "webpage_url": OPT_TEXT,
        },
        description="The platform's own claims about captured media, normalised (the info dict artifact is verbatim).",
    ),
    "acquisition": obj(
        {
            "id": ref("id"),
            "method": enum("added_from_disk", "captured_from_url", "ingested_from_feed", "imported", "derived"),
            "started_at": ref("timestamp"),
            "ended_at": ref("timestamp"),
            "operator": ref("agent"),
            "tools": {"type": "array", "items": ref("agent")},
            "artifact_sha256": nullable(ref("sha256")),
            "outcome": enum("succeeded", "failed"),
            "original_path": OPT_TEXT,
            "original_path_b64": nullable({"type": "string", "contentEncoding": "base64"}),
            "file_modified_at": nullable(ref("timestamp")),
            "source_url": OPT_TEXT,
            "requested_url": OPT_TEXT,
            "final_url": OPT_TEXT,
            "http_status": nullable({"type": "integer"}),
            "platform": OPT_TEXT,
            "extractor": OPT_TEXT,
            "platform_id": OPT_TEXT,
            "error": OPT_TEXT,
            "note": OPT_TEXT,
            "other_artifacts": {"type": "array", "items": ref("sha256")},
            "platform_info": nullable(ref("platform_info")),
            "responses": {"type": "array", "items": ref("http_response")},
            "withheld": {"type": "array", "items": TEXT},
            "settings": {
                "type": "array",
                "items": TEXT,
                "description": "Capture options that shape what was received, as name=value text.",
            },
        },
        description="How, when, by whom and with what an artifact or report was acquired.",
    ),
    "source": obj(
        {
            "platform": OPT_TEXT,
            "feed_name": OPT_TEXT,
            "account_handle": OPT_TEXT,
            "account_id": OPT_TEXT,
            "url": OPT_TEXT,
        }
    ),
    "link_card": obj(
        {
            "site_name": OPT_TEXT,
            "title": OPT_TEXT,
            "description": OPT_TEXT,
            "url": OPT_TEXT,
            "truncated": BOOL,
        }
    ),
    "media_link": obj(
        {
            "url": NONBLANK,
            "kind": enum("enclosure", "media_content"),
            "media_type": OPT_TEXT,
            "length": nullable({"type": "integer", "minimum": 0}),
        },
        description="Media a feed entry points at, as the feed states it.",
    ),
    "repost": obj({"reposted_by": NONBLANK, "original_author": NONBLANK, "original_post_id": OPT_TEXT}),
    "line_span": obj(
        {"first": {"type": "integer", "minimum": 1}, "last": {"type": "integer", "minimum": 1}},
        description="Lines of the source document, 1-based and inclusive.",
    ),
    "report": obj(
        {
            "id": ref("id"),
            "source": ref("source"),
            "text": TEXT,
            "author": OPT_TEXT,
            "language": OPT_TEXT,
            "published_at": nullable(ref("timestamp")),
            "updated_at": nullable(ref("timestamp")),
            "post_id": OPT_TEXT,
            "url": OPT_TEXT,
            "url_known": BOOL,
            "mentions": {"type": "array", "items": TEXT},
            "hashtags": {"type": "array", "items": TEXT},
            "links": {"type": "array", "items": TEXT},
            "link_cards": {"type": "array", "items": ref("link_card")},
            "media": {"type": "array", "items": ref("media_link")},
            "repost": nullable(ref("repost")),
            "document_sha256": nullable(ref("sha256")),
            "line_span": nullable(ref("line_span")),
            "identity": OPT_TEXT,
        },
        description="A statement published somewhere: a post, a repost, a feed item, an article.",
    ),
    "note": obj({"id": ref("id"), "text": NONBLANK, "author": ref("agent"), "written_at": ref("timestamp")}),
    "sensitivity_flag": obj(
        {
            "kind": enum("graphic", "personal_data", "protected_source", "minors"),
            "reason": NONBLANK,
            "set_by": ref("agent"),
            "set_at": ref("timestamp"),
            "artifacts": {
                "type": "array",
                "items": ref("sha256"),
                "description": "Artifacts the flag is about; none and no fields: every artifact of the record.",
            },
            "fields": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[^/]+(/[^/]+)*$"},
                "description": "Field paths the flag is about, e.g. reports/<report id>/author.",
            },
        }
    ),
    "relation": obj(
        {
            "kind": enum("duplicate_of", "derived_from", "same_incident_as", "responds_to", "contradicts"),
            "target_id": ref("id"),
            "linked_by": ref("agent"),
            "linked_at": ref("timestamp"),
            "note": OPT_TEXT,
        }
    ),
    "event_time": obj(
        {
            "start": ref("timestamp"),
            "end": nullable(ref("timestamp")),
            "precision": enum("second", "minute", "hour", "day", "month", "year"),
        }
    ),
    "place": obj(
        {
            "name": OPT_TEXT,
            "position": nullable(ref("geo_position")),
            "uncertainty_m": nullable({"type": "number", "minimum": 0, "maximum": 2.1e7}),
            "admin_area": OPT_TEXT,
        }
    ),
    "claim": obj(
        {
            "id": ref("id"),
            "stated_by": ref("agent"),
            "stated_at": ref("timestamp"),
            "summary": OPT_TEXT,
            "category": OPT_TEXT,
            "event_time": nullable(ref("event_time")),
            "place": nullable(ref("place")),
            "alleged_perpetrator": OPT_TEXT,
            "source_report_id": nullable(ref("id")),
            "source_description": OPT_TEXT,
        },
        description="What an item allegedly shows, and who says so; never a finding of fact.",
    ),
    "assessment": obj(
        {
            "id": ref("id"),
            "status": enum("unverified", "in_progress", "verified", "disputed", "false"),
            "assessor": ref("agent"),
            "assessed_at": ref("timestamp"),
            "methods": {
                "type": "array",
                "items": enum("source_analysis", "geolocation", "chronolocation", "technical_analysis"),
            },
            "confidence": nullable(enum("low", "medium", "high")),
            "note": OPT_TEXT,
            "supersedes": nullable(ref("id")),
        }
    ),
    "evidence_record": obj(
        {
            "id": ref("id"),
            "created_at": ref("timestamp"),
            "created_by": ref("agent"),
            "title": OPT_TEXT,
            "artifacts": {"type": "array", "items": ref("record_artifact")},
            "acquisitions": {"type": "array", "items": ref("acquisition")},
            "reports": {"type": "array", "items": ref("report")},
            "tags": {
                "type": "array",
                "items": {
                    "type": "string",
                    "pattern": TAG_PATTERN,
                    "description": "No surrounding white space, no control characters.",
                },
                "uniqueItems": True,
                "description": "Sorted, each once.",
            },
            "notes": {"type": "array", "items": ref("note")},
            "flags": {"type": "array", "items": ref("sensitivity_flag")},
            "relations": {"type": "array", "items": ref("relation")},
            "claims": {"type": "array", "items": ref("claim")},
            "assessments": {"type": "array", "items": ref("assessment")},
        }
    ),
    "custody_event": obj(
        {
            "seq": {"type": "integer", "minimum": 1},
            "at": ref("timestamp"),
            "actor": ref("agent"),
            "action": {"type": "string", "pattern": "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$"},
            "subject": NONBLANK,
            "prev_hash": ref("sha256"),
            "hash": {
                "$ref": "#/$defs/sha256",
                "description": (
                    "SHA-256 of the RFC 8785 canonical JSON of this object's committed form: without its 'hash' "
                    "and 'schema' members, and, when details.salt is present, with each text value of prev_hash, "
                    "actor and details and each 'metadata' member replaced by its salted digest "
                    "(docs/verification.md)."
                ),
            },
            "details": {
                "type": "object",
                "description": (
                    "What the action did. 'salt' (64 hex digits, events since custody-event 1.1.0): the event's "
                    "secret, from which the salt of each committed value is derived."
                ),
            },
        }
    ),
}

_SALT = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_DIGEST = {"type": "string", "pattern": "^sd:[0-9a-f]{64}$"}
DEFS["custody_event_line"] = {
    **obj(
        {
            **DEFS["custody_event"]["properties"],
            "prev_hash": {"anyOf": [ref("sha256"), {"const": "[withheld]"}]},
            "disclosure": obj(
                {
                    "salts": {
                        "type": "object",
                        "additionalProperties": _SALT,
                        "description": "JSON Pointer -> salt of each committed value shown as it is.",
                    },
                    "withheld": {
                        "type": "object",
                        "additionalProperties": _DIGEST,
                        "description": "JSON Pointer -> salted digest of each committed value withheld.",
                    },
                },
                description=(
                    "In a redacted bag, instead of details.salt: what lets the event's hash be recomputed without "
                    "the values it withholds."
                ),
            ),
            "withheld": {
                "const": "whole",
                "description": (
                    "In a redacted bag: an event hashed before salted commitments that held withheld text, or "
                    "follows one; only its sequence number is shown."
                ),
            },
        },
        required=["seq"],
        description="A custody event as it is stored and exported, or as a redacted bag shows it.",
    ),
    "oneOf": [
        {"required": ["at", "actor", "action", "subject", "prev_hash", "hash", "details"]},
        {"required": ["withheld"], "maxProperties": 3},
    ],
}

DEFS["export"] = obj(
    {
        "exported_at": ref("timestamp"),
        "exported_by": ref("agent"),
        "generator": ref("agent"),
        "records": {"type": "array", "items": ref("evidence_record")},
        "custody_events": {"type": "array", "items": ref("custody_event")},
        "complete_log": {
            **BOOL,
            "description": "True when custody_events is the whole log; otherwise the events about the records.",
        },
        "checkpoint": nullable(
            {**TEXT, "description": "The latest signed checkpoint of the log (C2SP signed note), covering every event."}
        ),
    }
)

#: Every kind of finding, in alphabetical order.
FINDING_KINDS = """
    analysis_mismatch analysis_not_rechecked analysis_unreadable blob_missing blob_unreadable
    broken_link checkpoint_invalid checkpoint_mismatch checkpoint_unsigned credentials_failed
    digest_mismatch entry_unreadable event_edited event_missing event_out_of_order
    event_unreplayable events_unsigned hash_index_mismatch key_change_invalid key_file_mismatch
    log_rolled_back merkle_leaf_mismatch merkle_node_mismatch record_mismatch record_missing
    size_mismatch timestamp_mismatch unlogged_change
""".split()  # noqa: SIM905 -- a word per kind (a list literal takes a line per kind)
DEFS["finding"] = {
    "type": "object",
    "description": "One problem verification found; its other members depend on its kind.",
    "properties": {
        "kind": enum(*FINDING_KINDS),
        "message": {**TEXT, "description": "The finding as a sentence."},
    },
    "required": ["kind", "message"],
}
DEFS["verification_report"] = obj(
    {
        "ok": {**BOOL, "description": "True when there are no findings."},
        "records_checked": COUNT,
        "artifacts_checked": COUNT,
        "bytes_checked": COUNT,
        "events_checked": COUNT,
        "unsigned_events": {
            **COUNT,
            "description": "Events at the end of the log that no checkpoint signed by the log's key covers.",
        },
        "logged": {**BOOL, "description": "Whether this verification was written to the custody log."},
        "findings": {"type": "array", "items": ref("finding")},
        "analyses_checked": {
            **COUNT,
            "description": "Media analysis documents read and held against their records and the similarity index.",
        },
        "analyses_rechecked": {
            **COUNT,
            "description": "Media analyses made again from their sources and compared (all of them with --deep).",
        },
        "notices": {
            "type": "array",
            "items": ref("finding"),
            "description": "What was found about the evidence, not damage (Content Credentials that fail"
            " validation, analyses that could not be made again here); they do not make ok false.",
        },
    },
    required=[
        "ok",
        "records_checked",
        "artifacts_checked",
        "bytes_checked",
        "events_checked",
        "unsigned_events",
        "logged",
        "findings",
    ],
)

_REASONS = {
    "type": "array",
    "items": obj({"kind": enum("graphic", "personal_data", "protected_source", "minors"), "reason": NONBLANK}),
    "description": "The flags that withhold it: kind and the reason given.",
}
DEFS["bag_contents"] = obj(
    {
        "external_identifier": {**TEXT, "description": "The bag's External-Identifier (urn:uuid:...)."},
        "exported_at": ref("timestamp"),
        "exported_by": ref("agent"),
        "generator": ref("agent"),
        "complete_log": {
            **BOOL,
            "description": "True when data/custody.jsonl is the whole log; otherwise the events about the records.",
        },
        "record_schema": {**TEXT, "description": "Schema id of every data/records/<id>/record.json."},
        "custody_event_schema": {**TEXT, "description": "Schema id of every line of data/custody.jsonl."},
        "records": COUNT,
        "artifacts": {**COUNT, "description": "Artifact files in the payload."},
        "custody_events": COUNT,
        "redaction": nullable(
            obj(
                {
                    "kinds": {
                        "type": "array",
                        "items": enum("graphic", "personal_data", "protected_source", "minors"),
                        "description": "The flag kinds honoured.",
                    },
                    "withheld_artifacts": {
                        "type": "array",
                        "items": obj(
                            {
                                "record_id": ref("id"),
                                "sha256": ref("sha256"),
                                "size": COUNT,
                                "media_type": TEXT,
                                "reasons": _REASONS,
                                "path": {**TEXT, "description": "Where the file would be in the bag."},
                            }
                        ),
                    },
                    "withheld_fields": {
                        "type": "array",
                        "items": obj({"record_id": ref("id"), "path": TEXT, "reasons": _REASONS}),
                        "description": "Fields whose text was replaced by [withheld] (values are not hashed).",
                    },
                    "altered_events": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1},
                        "description": (
                            "Sequence numbers of custody events with withheld text (their hash no longer recomputes)."
                        ),
                    },
                }
            )
        ),
        "log": nullable(
            obj(
                {
                    "origin": {**TEXT, "description": "The log's name (the checkpoint's first line)."},
                    "checkpoint": {**TEXT, "description": "Path of the signed checkpoint (C2SP signed note)."},
                    "tree_size": COUNT,
                    "root_hash": ref("sha256"),
                    "signed": BOOL,
                    "public_key": {**TEXT, "description": "Path of the log's Ed25519 public key (PEM)."},
                    "vkey": {**TEXT, "description": "Path of the log's C2SP verifier key."},
                    "proofs": nullable({**TEXT, "description": "Path of the inclusion proofs (JSON Lines)."}),
                    "timestamps": {
                        "type": "array",
                        "items": obj({"note": TEXT, "token": TEXT, "tsa_url": TEXT}),
                        "description": "RFC 3161 tokens and the checkpoint notes they stamp.",
                    },
                }
            )
        ),
    },
    description="data/contents.json of an export bag: what the bag holds and what a redaction withheld.",
)

DEFS["checkpoint"] = obj(
    {
        "note": {**TEXT, "description": "The signed checkpoint: a C2SP signed note (origin, size, root, signature)."},
        "tree_size": COUNT,
        "root_hash": ref("sha256"),
    },
    description="The last line of a JSON Lines export: the log's latest signed checkpoint, covering every event.",
)

DEFS["perceptual_hash"] = obj(
    {
        "value": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "The 256-bit PDQ hash, hex."},
        "quality": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "PDQ's quality; under 50 the hash is kept but never matched.",
        },
        "offset_s": nullable(
            {"type": "number", "minimum": 0, "description": "Seconds from a video's start to the frame hashed."}
        ),
        "algorithm": enum("pdq"),
    },
    description="A perceptual hash of an image, or of one frame of a video (offset_s).",
)
DEFS["keyframe"] = obj(
    {"offset_s": {"type": "number", "minimum": 0}, "sha256": ref("sha256")},
    description="A frame of a video kept as an image artifact.",
)
DEFS["content_credentials"] = obj(
    {
        "state": enum(
            "none",
            "valid",
            "trusted",
            "invalid",
            "unreadable",
            description="none: no manifest (proves nothing); valid: intact, signer not on the trust list;"
            " trusted: intact, signer chains to the configured trust list; invalid: a check failed;"
            " unreadable: the manifest store could not be read.",
        ),
        "manifest_store_sha256": nullable(ref("sha256")),
        "active_manifest": OPT_TEXT,
        "failure_codes": {"type": "array", "items": TEXT, "description": "The validator's codes, verbatim."},
        "signer": OPT_TEXT,
        "claim_generator": OPT_TEXT,
        "signed_at": nullable(ref("timestamp")),
        "actions": {"type": "array", "items": TEXT},
        "ingredients": {"type": "array", "items": TEXT},
        "errors": {"type": "array", "items": TEXT},
    },
    description="C2PA Content Credentials as read and validated offline.",
)
DEFS["media_analysis"] = obj(
    {
        "source_sha256": ref("sha256"),
        "source_media_type": TEXT,
        "tools": {"type": "array", "items": ref("agent"), "description": "The software that made the values."},
        "parameters": {
            "type": "object",
            "additionalProperties": TEXT,
            "description": "Every parameter that shapes the values, as text.",
        },
        "hashes": {"type": "array", "items": ref("perceptual_hash")},
        "keyframes": {"type": "array", "items": ref("keyframe")},
        "contact_sheet_sha256": nullable(ref("sha256")),
        "credentials": nullable(ref("content_credentials")),
        "errors": {"type": "array", "items": TEXT, "description": "What could not be derived, and why."},
    },
    description="What an analysis derived from an image or video (a derived artifact of its own).",
)

#: (schema name, version, root definition, title)
DOCUMENTS = [
    ("evidence-record", "2.0.0", "evidence_record", "Evidence record"),
    ("artifact", "1.0.0", "artifact", "Artifact"),
    ("custody-event", "1.1.0", "custody_event_line", "Custody event"),
    ("export", "2.0.0", "export", "JSON export of records and custody events"),
    ("verification-report", "1.1.0", "verification_report", "Result of verifying a catalog"),
    ("bag-contents", "1.0.0", "bag_contents", "Contents of an export bag (data/contents.json)"),
    ("checkpoint", "1.0.0", "checkpoint", "A signed checkpoint of the custody log"),
    ("media-analysis", "1.0.0", "media_analysis", "What an analysis derived from an image or video"),
]


_spec = importlib.util.spec_from_file_location("viewer_schemas", HERE / "viewer_schemas.py")  # loaded by path, as this
_viewer = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_viewer)  # type: ignore[union-attr]
DOCUMENTS += _viewer.add(DEFS, obj, ref, nullable, enum, TEXT, COUNT)


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith("#/$defs/"):
            found.add(target.removeprefix("#/$defs/"))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def build(name: str, version: str, root: str, title: str) -> dict[str, Any]:
    """The self-contained schema document for one top-level document type."""
    schema_id = f"{BASE}{name}:{version}"
    body = json.loads(json.dumps(DEFS[root]))
    body["properties"] = {
        "schema": {"const": schema_id, "description": "This document's schema id."},
        **body["properties"],
    }
    body["required"] = ["schema", *body["required"]]
    needed: set[str] = set()
    todo = _refs(body)
    while todo:
        name_ = todo.pop()
        if name_ not in needed:
            needed.add(name_)
            todo |= _refs(DEFS[name_]) - needed
    return {
        "$schema": DIALECT,
        "$id": schema_id,
        "title": title,
        **body,
        "$defs": {k: DEFS[k] for k in sorted(needed)},
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every schema."""
    return {
        f"{name}-{version}.schema.json": json.dumps(build(name, version, root, title), indent=2, ensure_ascii=False)
        + "\n"
        for name, version, root, title in DOCUMENTS
    }


if __name__ == "__main__":
    for file_name, text in render().items():
        (HERE / file_name).write_text(text, encoding="utf-8")
        print(file_name, file=sys.stderr)
