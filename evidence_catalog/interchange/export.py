"""Writing an export bag's payload from records, custody events and the blob store.

The caller (:meth:`evidence_catalog.Catalog.export`) chooses the records, gives them as an
iterable (read from one database snapshot), and places the finished bag; this module decides
what goes where in the bag and what a redaction withholds.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, cast

import attrs

from evidence_catalog import model
from evidence_catalog.custody import disclose, is_salted, withheld_whole
from evidence_catalog.errors import InputError, IntegrityError
from evidence_catalog.hashing import Readable
from evidence_catalog.interchange.bag import (
    CONTENTS,
    CUSTODY,
    RECORDS_DIR,
    AtMost,
    BagWriter,
    ByteProgress,
    bagging_date,
    larger_than_catalogued,
)
from evidence_catalog.interchange.names import extension_for, portable_name, unique_names
from evidence_catalog.interchange.redact import (
    WITHHELD_MARK,
    FieldPathError,
    Redaction,
    RedactionPlan,
    apply_plan,
    needles,
    redact_document,
)
from evidence_catalog.interchange.text import indented_json
from evidence_catalog.serialize import (
    BAG_CONTENTS_SCHEMA,
    SCHEMA_IDS,
    converter,
    format_timestamp,
    to_document,
    unstructure,
)


@attrs.frozen
class BagSummary:
    """What a bag holds."""

    external_identifier: str
    records: int
    artifacts: int
    custody_events: int
    payload_octets: int
    payload_files: int
    tagmanifest_sha256: str
    withheld_artifacts: int = 0
    withheld_fields: int = 0
    altered_events: int = 0
    #: Events written before salted commitments withheld whole (the bag then has no checkpoint).
    events_withheld_whole: int = 0


def artifact_names(record: model.EvidenceRecord, given: Mapping[str, str] | None = None) -> dict[str, str]:
    """A portable file name for each artifact of *record* (SHA-256 -> name), distinct within
    the record: the name the file had when added, else a name *given* for it (a Telegram
    export's media file, see :func:`telegram_media_names`), else the captured item's title, else
    its role; the extension from the name, else from the media type (:func:`extension_for`)."""
    original: dict[str, str] = {}
    titles: dict[str, str] = {}
    for acquisition in record.acquisitions:
        sha = acquisition.artifact_sha256
        if sha is None:
            continue
        name = _file_name(acquisition)
        if name:
            original.setdefault(sha, name)
        if acquisition.platform_info is not None and acquisition.platform_info.title:
            titles.setdefault(sha, acquisition.platform_info.title)
    for sha, name in (given or {}).items():
        original.setdefault(sha, name)
    names = []
    for entry in record.artifacts:
        sha = entry.artifact.sha256
        extension = extension_for(entry.artifact.media_type)
        name = original.get(sha)
        if name is None:
            name = (titles.get(sha) or entry.role.value) + extension
        elif "." not in name.strip(".") and extension != ".bin":  # a name without an extension
            name += extension
        names.append(portable_name(name, fallback=entry.role.value + extension))
    shas = [entry.artifact.sha256 for entry in record.artifacts]
    return dict(zip(shas, unique_names(names, shas), strict=True))


def _file_name(acquisition: model.Acquisition) -> str | None:
    """The last part of the path a file was added from.  A path that is not UTF-8 is cut at
    its own ``/`` bytes, and its other bytes shown as ``\\xNN`` (made ``_xNN`` by
    :func:`portable_name`): the escapes are not separators.  The exact bytes stay in the record."""
    if acquisition.original_path_b64:
        try:
            raw = base64.b64decode(acquisition.original_path_b64, validate=True)
        except (binascii.Error, ValueError):
            raw = None
        if raw:
            return raw.rsplit(b"/", 1)[-1].decode("utf-8", "backslashreplace")
    if acquisition.original_path:
        return PurePosixPath(acquisition.original_path.replace("\\", "/")).name
    return None


#: A Telegram Desktop export is read whole to name its media; larger ones name none.
_TELEGRAM_DOCUMENT_LIMIT = 512 * 1024 * 1024
_TELEGRAM_NOTE = re.compile(r"Telegram export message (\S+)")


def telegram_media_names(
    record: model.EvidenceRecord, media_of: Callable[[str], Mapping[str, Sequence[str]] | None]
) -> dict[str, str]:
    """The names the media of a record's Telegram messages had in the export (SHA-256 ->
    ``photo_1@05-05-2025_21-30-00.jpg``), from the export's ``result.json`` (the record's
    source document): *media_of* gives, for a document's SHA-256, each message's media names by
    message id (see :func:`telegram_media_index`), or ``None``.  Each ingested message's
    acquisition lists its media in the order of the message's ``photo`` and ``file``."""
    names: dict[str, str] = {}
    documents = {e.artifact.sha256 for e in record.artifacts if e.role is model.ArtifactRole.SOURCE_DOCUMENT}
    for acquisition in record.acquisitions:
        document_sha = acquisition.artifact_sha256
        if (
            acquisition.method is not model.AcquisitionMethod.INGESTED_FROM_FEED
            or document_sha is None
            or document_sha not in documents
            or not acquisition.other_artifacts
        ):
            continue
        numbers = [
            report.post_id
            for report in record.reports
            if report.document_sha256 == document_sha and (report.identity or "").startswith("telegram:")
        ]
        noted = _TELEGRAM_NOTE.fullmatch(acquisition.note or "")
        number = noted.group(1) if noted and noted.group(1) in numbers else numbers[0] if len(numbers) == 1 else None
        index = media_of(document_sha) if number is not None else None
        files = list(index.get(number, ())) if index is not None and number is not None else []
        shas = acquisition.other_artifacts
        if len(files) == len(shas) or (len(shas) == 1 and files):  # one file twice: stored once
            for sha, name in zip(shas, files, strict=False):
                if name:
                    names.setdefault(sha, name)
    return names


def telegram_media_index(data: bytes) -> dict[str, tuple[str, ...]] | None:
    """Each message's media file names (its ``photo`` and ``file``, as exported) by message id,
    from a Telegram Desktop ``result.json``; ``None`` when *data* is not one."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        return None
    index: dict[str, tuple[str, ...]] = {}
    for message in document["messages"]:
        if not isinstance(message, dict) or message.get("type") != "message":
            continue
        files = tuple(
            PurePosixPath(value.replace("\\", "/")).name
            for value in (message.get("photo"), message.get("file"))
            if isinstance(value, str) and value and not value.startswith("(File not included")
        )
        if files:
            index.setdefault(str(message.get("id")), files)
    return index


def _media_index_reader(open_blob: Callable[[str], BinaryIO]) -> Callable[[str], dict[str, tuple[str, ...]] | None]:
    """:func:`telegram_media_index` of stored documents, each read once while it is among the
    last few asked for (the records of one export come from few documents, mostly in turn).
    A document larger than :data:`_TELEGRAM_DOCUMENT_LIMIT` names nothing."""
    cache: dict[str, dict[str, tuple[str, ...]] | None] = {}

    def read(sha: str) -> dict[str, tuple[str, ...]] | None:
        if sha not in cache:
            if len(cache) >= 8:
                del cache[next(iter(cache))]
            with open_blob(sha) as stream:
                data = stream.read(_TELEGRAM_DOCUMENT_LIMIT + 1)
            cache[sha] = telegram_media_index(data) if len(data) <= _TELEGRAM_DOCUMENT_LIMIT else None
        return cache[sha]

    return read


def find_carriers(
    records: Iterable[model.EvidenceRecord], plan: RedactionPlan, open_blob: Callable[[str], BinaryIO]
) -> dict[str, set[str]]:
    """The artifacts of *records* whose bytes hold a text the plan withholds (SHA-256 -> those
    texts), in any form :func:`~evidence_catalog.interchange.redact.needles` names (UTF-8, JSON,
    HTML, percent-encoded): a platform's metadata file that holds a withheld URL, a chat export
    that holds a withheld author.  Every artifact not already withheld is read once."""
    if not plan.values:
        return {}
    searched = [(needle, value) for value in sorted(plan.values) for needle in needles(value)]
    if not searched:
        return {}
    overlap = max(len(needle) for needle, _ in searched) - 1
    found: dict[str, set[str]] = {}
    seen: set[str] = set()
    for record in records:
        for entry in record.artifacts:
            sha = entry.artifact.sha256
            if sha in seen or sha in plan.artifacts:
                continue
            seen.add(sha)
            texts: set[str] = set()
            tail = b""
            with open_blob(sha) as stream:
                blocks = _searchable(
                    stream,
                    entry.artifact.media_type,
                    {value for _, value in searched},
                    size=entry.artifact.size,
                    where=f"artifact {sha}",
                )
                for block in blocks:
                    window = tail + block
                    texts.update(value for needle, value in searched if value not in texts and needle in window)
                    tail = window[-overlap:] if overlap else b""
            if texts:
                found[sha] = texts
    return found


_SEARCH_BLOCK = 1 << 20


def _searchable(
    stream: BinaryIO, media_type: str, values: set[str], *, size: int | None = None, where: str = ""
) -> Iterator[bytes]:
    """The bytes of a stored file to search for withheld texts: the file's own, or for a web
    archive (WACZ) what a reader of it sees (each entry decompressed, its WARC's records and their
    bodies too: :func:`~evidence_catalog.capture.webarchive.contents`).  A web archive that cannot
    be read is taken to hold every text searched for (*values*): withheld.

    With the catalogued *size*, a stored copy that holds more (an object put in a blob's place
    may be huge) is an :class:`IntegrityError` naming *where* once one byte more is read, or at
    once for a web archive (whose reader starts at its end)."""
    if media_type != "application/wacz":
        if size is None:
            while block := stream.read(_SEARCH_BLOCK):
                yield block
            return
        bounded = AtMost(cast(Readable, stream), size, where)
        buffer = memoryview(bytearray(_SEARCH_BLOCK))
        while n := bounded.readinto(buffer):
            yield bytes(buffer[:n])
        if n is None:  # a non-blocking stream with no data yet: the rest would go unsearched
            raise BlockingIOError("stream had no data ready; use a blocking stream")
        return
    if size is not None and stream.seekable():
        if stream.seek(0, os.SEEK_END) > size:
            raise larger_than_catalogued(size, where)
        stream.seek(0)
    from evidence_catalog.capture.webarchive import contents

    try:
        yield from contents(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError):
        yield b"\0".join(needle for value in sorted(values) for needle in needles(value))


def write_payload(
    writer: BagWriter,
    *,
    records: Iterable[model.EvidenceRecord],
    events: Iterable[model.CustodyEvent],
    open_blob: Callable[[str], BinaryIO],
    head: dict[str, Any],
    plan: RedactionPlan | None,
    progress: ByteProgress | None = None,
    withheld_bytes: ByteProgress | None = None,
    log_evidence: Callable[[BagWriter, list[int]], dict[str, Any] | None] | None = None,
    blob_path: Callable[[str], Path | None] | None = None,
) -> tuple[BagSummary, dict[str, Any] | None]:
    """Write every record, its artifacts (unless withheld), the custody events and
    ``contents.json``; return what was written and the redaction (``None`` when none was asked).

    *log_evidence* writes what proves the custody events are in the signed log (given the writer
    and the sequence numbers written) and returns what ``contents.json`` says of it.

    Each artifact is copied from the blob store and the copy hashed: a stored blob that no
    longer has its SHA-256 stops the export (:class:`IntegrityError`).  A blob that is a file on
    this machine (*blob_path* gives its path, or ``None``) is copied by
    :meth:`BagWriter.add_file` (by the kernel where it can; large ones while the next records
    are written), any other is read through *open_blob*.  *progress* is called with the bytes of
    each block copied (from the writer's threads too), *withheld_bytes* with the size of each
    artifact withheld.
    """
    counts = {"records": 0, "artifacts": 0, "events": 0}
    withheld_artifacts: list[dict[str, Any]] = []
    withheld_fields: list[dict[str, Any]] = []
    altered: list[int] = []
    media_index = _media_index_reader(open_blob)
    for record in records:
        redaction = Redaction(record=record)
        if plan is not None:
            try:
                redaction = apply_plan(record, plan)
            except FieldPathError as exc:
                raise InputError(str(exc), where=f"record {record.id}") from exc
        folder = f"{RECORDS_DIR}/{record.id}"
        writer.add_bytes(f"{folder}/record.json", (indented_json(to_document(redaction.record)) + "\n").encode("utf-8"))
        given: dict[str, str] = {}
        if not redaction.changed and any(r.identity and r.identity.startswith("telegram:") for r in record.reports):
            # Names read from a document only when nothing of the record is withheld: a name can
            # carry what a flag withholds (a message's date).
            given = telegram_media_names(record, media_index)
        names = artifact_names(redaction.record, given)  # a withheld title or path names no file
        withheld = redaction.withheld_sha256
        for entry in record.artifacts:
            sha = entry.artifact.sha256
            if sha in withheld:
                if withheld_bytes is not None:
                    withheld_bytes(entry.artifact.size)
                continue
            relative = f"{folder}/artifacts/{names[sha]}"
            stored = None if blob_path is None else blob_path(sha)
            if stored is not None:
                writer.add_file(
                    relative, stored, sha256=sha, where=f"artifact {sha}", progress=progress, size=entry.artifact.size
                )
            else:
                with open_blob(sha) as stream:
                    digests = writer.add_stream(
                        relative, stream, progress=progress, size=entry.artifact.size, where=f"artifact {sha}"
                    )
                if digests["sha256"] != sha:
                    raise IntegrityError(
                        f"the stored copy's SHA-256 is now {digests['sha256']}; run verify. Nothing was exported",
                        where=f"artifact {sha}",
                    )
            counts["artifacts"] += 1
        for item in redaction.artifacts:
            withheld_artifacts.append(
                {**unstructure(item), "reasons": [{"kind": k, "reason": r} for k, r in item.reasons]}
                | {"path": f"{folder}/artifacts/{names[item.sha256]}"}
            )
        for field in redaction.fields:
            withheld_fields.append(
                {**unstructure(field), "reasons": [{"kind": k, "reason": r} for k, r in field.reasons]}
            )
        counts["records"] += 1
    custody = writer.open_text(CUSTODY)
    written: list[int] = []
    whole: set[str] = set()  # hashes of the events withheld whole
    try:
        for event in events:
            if plan is None:
                line = event_line(event)
            else:  # a withheld text or artifact can be in any event exported
                document, changed = redact_event(event, plan, whole)
                if changed:
                    altered.append(event.seq)
                line = json.dumps(document, ensure_ascii=False)
            custody.write(line + "\n")
            counts["events"] += 1
            written.append(event.seq)
    finally:
        custody.close()
    # A Merkle root over an event withheld whole would let a guess at its text be checked: such
    # a bag carries no signed checkpoint ("log": null; bag-info.txt says why).
    log = None if log_evidence is None or whole else log_evidence(writer, written)
    redaction_summary = None
    if plan is not None:
        redaction_summary = {
            "kinds": sorted(plan.kinds),
            "withheld_artifacts": withheld_artifacts,
            "withheld_fields": withheld_fields,
            "altered_events": altered,
        }
    contents = {
        "schema": BAG_CONTENTS_SCHEMA,
        **head,
        "record_schema": SCHEMA_IDS[model.EvidenceRecord],
        "custody_event_schema": SCHEMA_IDS[model.CustodyEvent],
        "records": counts["records"],
        "artifacts": counts["artifacts"],
        "custody_events": counts["events"],
        "redaction": redaction_summary,
        "log": log,
    }
    writer.add_bytes(CONTENTS, (indented_json(contents) + "\n").encode("utf-8"))
    summary = BagSummary(
        external_identifier=head["external_identifier"],
        records=counts["records"],
        artifacts=counts["artifacts"],
        custody_events=counts["events"],
        payload_octets=writer.octets,
        payload_files=writer.files,
        tagmanifest_sha256="",
        withheld_artifacts=len(withheld_artifacts),
        withheld_fields=len(withheld_fields),
        altered_events=len(altered),
        events_withheld_whole=len(whole),
    )
    return summary, redaction_summary


def redact_event(event: model.CustodyEvent, plan: RedactionPlan, whole: set[str]) -> tuple[dict[str, Any], bool]:
    """The document of *event* as a redacted export shows it, and whether it differs from the
    event's own.  *whole* holds the hashes of the events withheld whole so far (in sequence
    order), and is added to.

    Only salted digests of what is withheld leave the catalog.  An event hashed before salted
    commitments that held withheld text goes whole, and so does each unsalted event after it
    (its prev_hash commits to the one before); the first salted event after them shows its
    prev_hash as a salted digest only.  An earlier export's digests go too when anything is
    withheld (:func:`~evidence_catalog.interchange.redact.redact_document` marks them)."""
    document = to_document(event)
    shown, changed = redact_document(document, plan.values, plan.artifacts)
    if not is_salted(document) and (changed or whole):
        whole.add(document["hash"])
        return withheld_whole(document, document["schema"]), True
    if is_salted(document) and (changed or document["prev_hash"] in whole):
        after_whole = ("/prev_hash",) if document["prev_hash"] in whole else ()
        return disclose(document, shown, WITHHELD_MARK, also=after_whole), True
    return document, False


#: The converter, except that free-form JSON objects (an event's details, raw platform
#: metadata) are handed on as they are instead of copied value by value: for a document that is
#: written out at once and never changed.  The copy was most of the cost of an event's line.
_WRITTEN_AS_IS = converter.copy()
_WRITTEN_AS_IS.register_unstructure_hook_func(lambda kind: kind == dict[str, Any], lambda value: value)
_EVENT_SCHEMA = SCHEMA_IDS[model.CustodyEvent]


def event_line(event: model.CustodyEvent) -> str:
    """``json.dumps(to_document(event), ensure_ascii=False)``: the event's line in a bag's
    ``custody.jsonl``, its details written from the event itself.  Details read from the
    database are JSON already; anything else there (a time, a model value, which ``json.dumps``
    refuses) is made JSON by the converter, as :func:`to_document` does."""
    try:
        return json.dumps({"schema": _EVENT_SCHEMA, **_WRITTEN_AS_IS.unstructure(event)}, ensure_ascii=False)
    except TypeError:
        return json.dumps(to_document(event), ensure_ascii=False)


def bag_info(
    *,
    summary: BagSummary,
    operator: model.Agent,
    generator: model.Agent,
    at: dt.datetime,
    redaction: dict[str, Any] | None,
) -> list[tuple[str, str]]:
    """The ``bag-info.txt`` lines of an export bag (Payload-Oxum is added by the writer)."""
    info: list[tuple[str, str]] = []
    if operator.organization:
        info.append(("Source-Organization", operator.organization))
    info.append(("Contact-Name", operator.name))
    if operator.email:
        info.append(("Contact-Email", operator.email))
    description = (
        f"Evidence export: {summary.records} record(s) as JSON ({SCHEMA_IDS[model.EvidenceRecord]}) under "
        f"data/records/, {summary.artifacts} artifact file(s) beside them, {summary.custody_events} custody "
        f"event(s) in data/custody.jsonl; data/contents.json describes the bag."
    )
    if redaction is not None:
        description += (
            f" Redacted ({', '.join(redaction['kinds'])}): {summary.withheld_artifacts} artifact(s) and "
            f"{summary.withheld_fields} field(s) withheld, listed with their reasons in data/contents.json."
        )
        if summary.events_withheld_whole:
            description += (
                f" {summary.events_withheld_whole} custody event(s) written before salted commitments withheld "
                "whole, and no signed checkpoint: a hash or Merkle root over them would confirm a guess."
            )
    info += [
        ("External-Description", description),
        ("External-Identifier", summary.external_identifier),
        ("Bagging-Date", bagging_date(at)),
        ("Bag-Software-Agent", f"{generator.name} {generator.version or ''}".strip()),
        ("Bag-Size", _human_size(summary.payload_octets)),
        ("Evidence-Records", str(summary.records)),
        ("Evidence-Exported-At", format_timestamp(at)),
        ("Evidence-Redacted", "yes" if redaction is not None else "no"),
    ]
    return info


def _human_size(octets: int) -> str:
    size = float(octets)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{octets} B"  # pragma: no cover


def place_bag(tmp: Path, target: Path) -> None:
    """Move a finished bag into place; never onto an existing path."""
    if target.exists() or target.is_symlink():
        raise FileExistsError(str(target))
    tmp.rename(target)
