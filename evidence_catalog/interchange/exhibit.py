"""A court exhibit of one record: what it holds, as one self-contained HTML document.

Pure: no I/O.  :func:`render_html` makes the HTML from an :class:`ExhibitSource` -- the record
(redacted when asked), its custody events as they may be shown, its media analyses, the latest
signed checkpoint with this record's inclusion proofs, its RFC 3161 tokens, and the bytes of the
pictures to show -- through a Jinja2 template with autoescaping on: every text the record holds
(a title, a report's text, a file name) is escaped, never markup.  The document makes no request
of its own: pictures are ``data:`` URIs, its one style sheet is pinned by its hash in a
Content-Security-Policy that allows nothing else (no script, no font, no frame, no fetch).

The same HTML is what :mod:`evidence_catalog.interchange.exhibit_pdf` prints to PDF: its
``@page`` rules put the record id at the top and the page number at the bottom of every page.
Nothing in it depends on a clock: the same catalog state gives the same HTML, byte for byte.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import json
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.analysis import MediaAnalysis
from evidence_catalog.interchange.redact import WithheldArtifact, WithheldField
from evidence_catalog.serialize import format_timestamp, unstructure

#: Media types a browser and WeasyPrint both show, put into the exhibit as they are stored.
SHOWN_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
#: A picture larger than this (bytes) is not put into the exhibit: its SHA-256 stands for it.
MAX_PICTURE_BYTES = 20 * 1000 * 1000
#: Nor one of more pixels than this (a hostile file can claim a vast size in a few bytes).
MAX_PICTURE_PIXELS = 50 * 1000 * 1000
#: Nor more pictures once they hold this many bytes together (a record of a thousand photos
#: would make an exhibit no reader opens): the others are listed by SHA-256, saying why.
MAX_TOTAL_PICTURE_BYTES = 100 * 1000 * 1000
#: Keyframes shown per analysed video (the contact sheet shows the whole video).
MAX_KEYFRAMES = 12

_TEMPLATE = "exhibit.html.jinja"
_STYLE = "exhibit.css"


@attrs.frozen
class Proof:
    """The RFC 6962 inclusion proof of one custody event in the checkpoint's tree."""

    seq: int
    leaf_hash: str
    path: tuple[str, ...]


@attrs.frozen
class Stamp:
    """An RFC 3161 time-stamp token kept in the log (a ``timestamp.added`` event's details)."""

    seq: int
    stamps: str
    sha256: str
    tsa_url: str
    gen_time: str
    serial: str
    policy: str
    token: str
    checkpoint_id: int | None = None


@attrs.frozen
class ShownEvent:
    """A custody event as the exhibit shows it: its document after redaction, and whether the
    redaction changed it (then its values withheld are not shown; its hash still is)."""

    document: Mapping[str, Any]
    altered: bool = False
    #: Written before salted commitments and holding (or following) a withheld value: only its
    #: number is shown, no hash and no proof (its hash would confirm a guess at the value).
    whole: bool = False


@attrs.frozen
class ExhibitSource:
    """Everything an exhibit shows, read from the catalog in one snapshot."""

    record: model.EvidenceRecord
    #: The custody events about the record (its own, its artifacts' time-stamps, its exports),
    #: in log order.
    events: tuple[ShownEvent, ...]
    #: ``(document SHA-256, analysis or None when unreadable)`` of each media analysis.
    analyses: tuple[tuple[str, MediaAnalysis | None], ...] = ()
    #: The latest signed checkpoint (a C2SP signed note), its tree size and root (hex).
    checkpoint: str | None = None
    tree_size: int = 0
    root_hash: str | None = None
    #: The log's name and C2SP verifier key.
    origin: str | None = None
    vkey: str | None = None
    proofs: tuple[Proof, ...] = ()
    stamps: tuple[Stamp, ...] = ()
    #: SHA-256 -> (media type, bytes) of the pictures to show.
    pictures: Mapping[str, tuple[str, bytes]] = attrs.field(factory=dict)
    #: SHA-256 -> why a picture is not shown (too large, withheld ...).
    not_shown: Mapping[str, str] = attrs.field(factory=dict)
    #: The flag kinds a redaction honoured (``None``: not redacted), and what it withheld.
    redacted_kinds: tuple[str, ...] | None = None
    withheld_artifacts: tuple[WithheldArtifact, ...] = ()
    withheld_fields: tuple[WithheldField, ...] = ()
    #: Why the checkpoint and proofs are left out, when they are.
    no_checkpoint_reason: str | None = None
    made_by: model.Agent | None = None
    generator: model.Agent | None = None
    #: The size of the log the exhibit was made from.
    log_size: int = 0


def picture_refusal(artifact: model.Artifact) -> str | None:
    """Why the bytes of *artifact* are not put into an exhibit as a picture, or ``None`` when
    they may be: a type both renderers show, not too large, with a header read that gives a
    size within :data:`MAX_PICTURE_PIXELS`."""
    if artifact.media_type not in SHOWN_TYPES:
        return f"{artifact.media_type} is not a picture the exhibit shows"
    if artifact.size > MAX_PICTURE_BYTES:
        return f"{artifact.size} bytes: too large to put into the exhibit"
    image = None if artifact.metadata is None else artifact.metadata.image
    if image is None:
        return "its size could not be read from its header"
    if image.width * image.height > MAX_PICTURE_PIXELS:
        return f"{image.width} x {image.height} pixels: too large to put into the exhibit"
    return None


def data_uri(media_type: str, data: bytes) -> str:
    """*data* as a ``data:`` URI."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


@functools.cache
def style_sheet() -> str:
    """The exhibit's style sheet (screen and print)."""
    return importlib.resources.files(__package__).joinpath(_STYLE).read_text(encoding="utf-8")


def content_security_policy(style: str) -> str:
    """The policy of an exhibit whose one style element holds *style*: nothing loads but
    ``data:`` pictures, and no style but that one (by its SHA-256)."""
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; img-src data:; style-src 'sha256-{digest}'; "
        "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
    )


@functools.cache
def _environment() -> Any:
    import jinja2  # only an exhibit needs it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evidence_catalog.interchange", ""),
        autoescape=True,  # every value is escaped: record texts are hostile until shown otherwise
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["ts"] = lambda value: "" if value is None else format_timestamp(value)
    env.filters["bdi"] = isolated
    env.filters["agent"] = lambda agent: isolated(agent_text(agent))
    env.filters["agent_plain"] = agent_text  # in an attribute: no markup
    env.filters["unseen"] = unseen_characters
    env.filters["pretty"] = lambda value: json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
    env.filters["human_size"] = human_size
    return env


def isolated(value: Any) -> Any:
    """*value* escaped, in a ``<bdi>`` element: a text from a source or a name sits among the
    exhibit's own words, and a right-to-left override (U+202E) or embedding in it would
    otherwise run on to the end of the paragraph, reordering them; ``bdi`` ends it where the
    text ends (and sets its direction from its own first letter)."""
    from markupsafe import Markup

    if value is None or value == "":
        return ""
    return Markup("<bdi>{}</bdi>").format(value)


def unseen_characters(text: str | None) -> str:
    """The characters of *text* a reader cannot see, named with their code points and counts
    ("U+202E RIGHT-TO-LEFT OVERRIDE (1)"): format characters (bidirectional overrides and
    isolates, zero-width spaces and joiners, soft hyphens, byte order marks) and control
    characters other than line breaks and tabs.  The exhibit shows a text exactly, these with
    it; this says they are there, and that what is seen may be reordered or joined by them."""
    if not text:
        return ""
    counts: dict[str, int] = {}
    for char in text:
        category = unicodedata.category(char)
        if category == "Cf" or (category == "Cc" and char not in "\n\r\t"):
            counts[char] = counts.get(char, 0) + 1
    return ", ".join(
        f"U+{ord(c):04X} {unicodedata.name(c, 'control character')} ({n})" for c, n in sorted(counts.items())
    )


def agent_text(agent: model.Agent | Mapping[str, Any] | None) -> str:
    """An agent in one line: name, version, organisation, e-mail and host where known."""
    if agent is None:
        return ""
    data = unstructure(agent) if isinstance(agent, model.Agent) else dict(agent)
    text = str(data.get("name") or "")
    if data.get("version"):
        text += f" {data['version']}"
    extra = [str(data[k]) for k in ("organization", "email") if data.get(k)]
    if extra:
        text += f" ({', '.join(extra)})"
    if data.get("host"):
        text += f" on {data['host']}"
    return text


def human_size(size: int) -> str:
    """Bytes, with the decimal unit beside them when they are many."""
    if size < 1000:
        return f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{size} bytes ({value:.1f} {unit})"
    return f"{size} bytes"  # pragma: no cover


def event_summary(document: Mapping[str, Any]) -> str:
    """What a custody event says in a few words, from its (shown) document."""
    details = document.get("details") or {}
    action = document.get("action")
    if not isinstance(details, Mapping):
        return ""
    if action in ("artifact.added", "media.captured", "media.analyzed", "report.ingested"):
        shas = details.get("sha256") or ""
        return f"stored {shas}" if shas else ""
    if action == "records.exported":
        return f"{details.get('format')} export, sha256 {details.get('sha256')}"
    if action == "timestamp.added":
        return f"RFC 3161 token from {details.get('tsa_url')} at {details.get('gen_time')}"
    for member in ("claim", "assessment", "relation", "flag", "note"):
        value = details.get(member)
        if isinstance(value, Mapping):
            if member == "assessment":
                return f"assessment: {value.get('status')}"
            if member == "relation":
                return f"relation: {value.get('kind')} {value.get('target_id')}"
            if member == "flag":
                return f"flag: {value.get('kind')}"
            return member
    if action == "tags.added":
        return "tags: " + ", ".join(str(t) for t in details.get("tags") or ())
    if action == "report.linked":
        return f"report {details.get('report_id')} from record {details.get('from_record')}"
    if action == "capture.failed":
        acquisition = details.get("acquisition") or {}
        return f"failed: {acquisition.get('error')}" if isinstance(acquisition, Mapping) else ""
    return ""


def _media(source: ExhibitSource) -> list[dict[str, Any]]:
    """The pictures to show, each with what it is: the record's images, then each analysed
    video's contact sheet and keyframes."""
    shown: list[dict[str, Any]] = []
    record = source.record
    analysed = {a.source_sha256: (doc, a) for doc, a in source.analyses if a is not None}
    derived = {sha for _, a in analysed.values() for sha in a.derived_sha256s()}

    def picture(sha: str) -> str | None:
        held = source.pictures.get(sha)
        return None if held is None else data_uri(*held)

    for entry in record.artifacts:
        artifact = entry.artifact
        sha = artifact.sha256
        kind = artifact.media_type.split("/")[0]
        if sha in derived or kind not in ("image", "video"):
            continue
        item: dict[str, Any] = {"sha256": sha, "role": entry.role.value, "media_type": artifact.media_type}
        if kind == "image":
            item["kind"] = "image"
            item["src"] = picture(sha)
            item["why_not"] = source.not_shown.get(sha)
        else:
            item["kind"] = "video"
            found = analysed.get(sha)
            failed = [
                (doc, "the analysis document cannot be read (verify says why)")
                for doc, a in source.analyses
                if a is None and sha in _sources_of(record, doc)
            ]
            item["analysis_errors"] = [] if found is None else list(found[1].errors)
            item["analysed"] = found is not None
            item["unreadable"] = failed
            frames: list[dict[str, Any]] = []
            if found is not None:
                analysis = found[1]
                sheet = analysis.contact_sheet_sha256
                item["sheet"] = (
                    None
                    if sheet is None
                    else {"sha256": sheet, "src": picture(sheet), "why_not": source.not_shown.get(sheet)}
                )
                for keyframe in analysis.keyframes[:MAX_KEYFRAMES]:
                    frames.append(
                        {
                            "sha256": keyframe.sha256,
                            "offset_s": f"{keyframe.offset_s:.3f}",
                            "src": picture(keyframe.sha256),
                            "why_not": source.not_shown.get(keyframe.sha256),
                        }
                    )
                item["more_keyframes"] = max(0, len(analysis.keyframes) - MAX_KEYFRAMES)
            else:
                item["sheet"] = None
                item["more_keyframes"] = 0
            item["keyframes"] = frames
        shown.append(item)
    return shown


def _sources_of(record: model.EvidenceRecord, sha256: str) -> tuple[str, ...]:
    """What the record says the artifact *sha256* was derived from."""
    entry = record.artifact(sha256)
    return () if entry is None else entry.derived_from


def render_html(source: ExhibitSource) -> str:
    """The exhibit of *source* as one self-contained HTML document."""
    style = style_sheet()
    record = source.record
    withheld = {item.sha256: item for item in source.withheld_artifacts}
    event_shas = {proof.seq: proof for proof in source.proofs}
    current = record.assessments[-1] if record.assessments else None
    reports = {report.id: report for report in record.reports}
    template = _environment().get_template(_TEMPLATE)
    return str(
        template.render(
            s=source,
            record=record,
            style=style,
            csp=content_security_policy(style),
            media=_media(source),
            withheld=withheld,
            proofs=event_shas,
            current=current,
            reports=reports,
            summary=event_summary,
            metadata=[
                (entry, entry.artifact.metadata) for entry in record.artifacts if entry.artifact.metadata is not None
            ],
            unstructure=unstructure,
        )
    )


def keyframe_shas(analyses: Sequence[tuple[str, MediaAnalysis | None]]) -> list[str]:
    """The pictures an exhibit shows of analysed videos: contact sheets and the first
    :data:`MAX_KEYFRAMES` keyframes of each analysis."""
    found: list[str] = []
    for _, analysis in analyses:
        if analysis is None:
            continue
        if analysis.contact_sheet_sha256 is not None:
            found.append(analysis.contact_sheet_sha256)
        found.extend(k.sha256 for k in analysis.keyframes[:MAX_KEYFRAMES])
    return list(dict.fromkeys(found))
