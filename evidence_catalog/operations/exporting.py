"""Export: records and their custody events in an open format, written under a temporary name,
logged as one custody event, then given their name.

What goes into each format is :mod:`evidence_catalog.interchange`'s (the writers of BagIt,
JSON, JSON Lines, CSV and PROV-JSON); this module chooses the records, reads them and the log
from one database snapshot, and logs and places the export.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from evidence_catalog import model
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError, StorageError
from evidence_catalog.filters import RecordFilter
from evidence_catalog.interchange.bag import BagWriter
from evidence_catalog.interchange.csv import write_csv
from evidence_catalog.interchange.documents import write_json, write_jsonl
from evidence_catalog.interchange.export import (
    artifact_names,
    bag_info,
    find_carriers,
    place_bag,
    redact_event,
    write_payload,
)
from evidence_catalog.interchange.log_evidence import StampedCheckpoint, write_log_evidence
from evidence_catalog.interchange.redact import FieldPathError, Redaction, RedactionPlan, apply_plan, plan_redaction
from evidence_catalog.interchange.text import HashingTextSink, TextSink
from evidence_catalog.operations import common
from evidence_catalog.operations.common import check_record_id, choice, utf8
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.results import ExportResult
from evidence_catalog.serialize import format_timestamp, unstructure
from evidence_catalog.store.blobstore import fsync_dir, place_new_file
from evidence_catalog.store.records import no_record
from evidence_catalog.versions import library_agent

ExportFormat = Literal["json", "jsonl", "csv", "bagit", "prov", "case"]
EXPORT_FORMATS: tuple[str, ...] = ("bagit", "json", "jsonl", "prov", "csv", "case")
#: Called during a BagIt export with the bytes of artifacts copied so far and the total.
ExportProgress = Callable[[int, int], object]


def export(
    ctx: Context,
    output: str | os.PathLike[str],
    *,
    format: ExportFormat = "json",
    record_ids: Sequence[str] | None = None,
    where: RecordFilter | None = None,
    search: str | None = None,
    bom: bool = False,
    redact: bool | Collection[str] = False,
    sha512: bool = False,
    progress: ExportProgress | None = None,
) -> ExportResult:
    """Export records in an open format: all (*record_ids* ``None``) or those named, and of
    those only the records that meet *where* (a :class:`~evidence_catalog.filters.RecordFilter`,
    see :meth:`record_filter`) and hold a report matching *search* (its words, as
    :meth:`search` matches them), when given; a selection that leaves no record is an
    :class:`~evidence_catalog.errors.InputError`.  The formats:

    ``bagit``
        a BagIt 1.0 bag (a new folder): each record as JSON, its artifacts under portable
        names, the custody events, ``manifest-sha256.txt`` (and ``-sha512`` with *sha512*),
        tag manifest and ``bag-info.txt``; see ``docs/interchange.md``.  *redact* withholds
        what the records' flags name (``True``: flags of every kind; or the kinds to honour)
        and the bag lists what was withheld and why.  *progress* is called with the artifact
        bytes copied so far and the total.
    ``json`` / ``jsonl``
        records and custody events as one JSON document or JSON Lines.
    ``prov``
        W3C PROV-JSON of the records' provenance (:mod:`evidence_catalog.interchange.prov`).
    ``csv``
        one row per artifact for spreadsheets (:mod:`evidence_catalog.interchange.csv`); *bom*
        starts it with a UTF-8 byte order mark, which some spreadsheet software needs.
    ``case``
        CASE/UCO 1.5.0 JSON-LD (:mod:`evidence_catalog.interchange.case`) that ``case_validate``
        accepts: records, artifacts, acquisitions, custody chain, claims and assessments.
        *redact* withholds what a redacted bag withholds, and each record's annotation says what
        and why.

    The whole custody log goes with a whole-catalog export (no *record_ids*, *where* or
    *search*), otherwise the events about the selected records.  The export is written under
    a temporary name and renamed into place; an existing file or folder is never replaced.
    The export is itself a custody event, which names where it went, its SHA-256 and, for a
    bag, its identifier, Payload-Oxum and what a redaction withheld.
    """
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(EXPORT_FORMATS)}", where="format")
    if bom and format != "csv":
        raise InputError("a byte order mark is for CSV only", where="bom")
    kinds = redaction_kinds(redact)
    if kinds is not None and format not in ("bagit", "case"):
        raise InputError(
            "a redacted export is a BagIt export or a CASE export (each states what it withheld)", where="redact"
        )
    if sha512 and format != "bagit":
        raise InputError("a SHA-512 manifest is for BagIt exports only", where="sha512")
    target = export_target(ctx, output, folder=format == "bagit")
    selected = selection(ctx, record_ids, where=where, search=search)  # before anything is written
    shown = display_path(target)
    common.check_writable(ctx, ", so an export could not be logged; nothing was written")
    # A short temporary name: the target's own name may already be as long as names can be.
    tmp = target.with_name(f".export-{uuid.uuid4().hex[:12]}.part")
    placed = logged_export = False
    try:
        redaction = None
        if format == "bagit":
            result, redaction = write_bag(ctx, tmp, target, selected, kinds, sha512, progress)
        elif format == "case":
            result, redaction = write_case_file(ctx, tmp, target, selected, kinds)
        else:
            result = write_export_file(ctx, tmp, target, format, selected, bom)
        if target.exists() or target.is_symlink():
            raise FileExistsError(str(target))
        result = attrs.evolve(result, path=target)
        details: dict[str, Any] = {
            "format": format,
            "output": shown,
            "sha256": result.sha256,
            "size": result.size,
            "records": result.records,
            "custody_events": result.custody_events,
            "record_ids": selected,
        }
        if format == "bagit":
            details["bag"] = {
                "external_identifier": result.external_identifier,
                "payload_oxum": result.payload_oxum,
                "artifacts": result.artifacts,
                "sha512_manifest": sha512,
            }
            details["redaction"] = redaction
        elif format == "case":
            details["redaction"] = redaction
        # Logged first, then given its name: a process killed in between leaves a logged
        # export complete under its temporary name -- never an export the log does not know.
        try:
            ctx.log_event(Action.RECORDS_EXPORTED, details)
        except StorageError as exc:
            raise StorageError(
                f"the export could not be logged, so it was not written ({exc.message})", where=shown
            ) from exc
        try:
            if format == "bagit":
                place_bag(tmp, target)
            else:
                place_new_file(tmp, target)
            placed = True
        except OSError as exc:
            logged_export = True  # kept below, whatever its name
            kept = target.with_name(f".export-{uuid.uuid4().hex[:12]}.kept")
            with contextlib.suppress(OSError):
                tmp.rename(kept)
                tmp = kept
            raise StorageError(
                f"the export was written and logged, but could not be given its name ({exc.strerror or exc}); "
                f"it is complete in {display_path(tmp)}",
                where=shown,
            ) from exc
        try:
            fsync_dir(target.parent)
        except OSError as exc:
            raise StorageError(
                f"the export was written, logged and named, but its folder could not be synced to disk"
                f" ({exc.strerror or exc}): check it before relying on it",
                where=shown,
            ) from exc
    except FileExistsError as exc:
        raise InputError("already exists; choose a new name", where=shown) from exc
    except OSError as exc:
        raise StorageError(f"export failed ({exc.strerror or exc}); nothing was written", where=shown) from exc
    finally:
        if not placed and not logged_export and tmp.name.endswith(".part"):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        elif placed and format != "bagit":
            tmp.unlink(missing_ok=True)  # the file was linked into place: drop the temporary name
    return result


def selection(
    ctx: Context, record_ids: Sequence[str] | None, *, where: RecordFilter | None, search: str | None
) -> list[str] | None:
    """The ids of the records an export takes, oldest first unless named: ``None`` for the whole
    catalog (*record_ids* ``None``, no *where*, no *search*), else those named (each must
    exist), narrowed to the records that hold a report matching *search* and meet *where*."""
    selected = None if record_ids is None else list(dict.fromkeys(record_ids))
    for record_id in selected or ():
        check_record_id(record_id)
        if not ctx.db.record_exists_now(record_id):
            raise no_record(record_id, where="record")
    if where is None and search is None:
        return selected
    text = None if search is None else utf8(search, "search")
    with ctx.db.read() as session:  # one snapshot: the records as they were searched
        ids = ctx.db.record_ids(session) if selected is None else selected
        if text is not None:
            found = ctx.db.search_part_ids(session, text=text, terms=(), since=None, limit=None)
            holding = set(ctx.db.records_of_parts(session, found).values())  # no report read
            ids = [record_id for record_id in ids if record_id in holding]
        if where is not None:  # judged on the record's current state
            ids = [record.id for record in ctx.db.records(session, ids) if where.matches(record)]
    if not ids:
        raise InputError("no record meets the selection; nothing was exported", where="export")
    return ids


def redaction_kinds(redact: bool | Collection[str]) -> frozenset[str] | None:
    """The flag kinds a redacted export withholds (``None``: it is not redacted)."""
    if redact is True:
        return frozenset(kind.value for kind in model.SensitivityKind)
    if redact is False or redact is None:
        return None
    if isinstance(redact, str):
        redact = [redact]
    kinds = frozenset(choice(model.SensitivityKind, kind, "redact").value for kind in redact)
    if not kinds:
        raise InputError("give the flag kinds to redact, or True for all", where="redact")
    return kinds


def export_target(ctx: Context, output: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Where an export goes: a new file (a new folder with *folder*) outside the catalog."""
    given = os.fspath(output)
    if given in ("", "-"):
        raise InputError(f"give a {'folder' if folder else 'file'} name to write the export to", where="output")
    target = Path(os.path.abspath(given))
    where = display_path(target)
    if not folder and (given.endswith(os.sep) or target.is_dir()):
        raise InputError("is a directory; give a file name", where=where)
    if target.exists() or target.is_symlink():
        raise InputError("already exists; choose a new name", where=where)
    if not target.parent.is_dir():
        raise InputError("directory does not exist", where=display_path(target.parent))
    catalog_dir = ctx.path.resolve()
    if target.parent.resolve() == catalog_dir or catalog_dir in target.parent.resolve().parents:
        raise InputError("is inside the catalog directory; export somewhere else", where=where)
    return target


def write_export_file(
    ctx: Context, tmp: Path, target: Path, format: str, selected: list[str] | None, bom: bool
) -> ExportResult:
    """Write a one-file export (JSON, JSON Lines, PROV-JSON, CSV) to *tmp*, synced to disk."""
    with open(tmp, "wb") as raw:
        sink = HashingTextSink(raw)
        if bom:
            sink.write("\ufeff")
        counts = write_export(ctx, sink, format, selected)
        raw.flush()
        os.fsync(raw.fileno())
    digests, size = sink.hasher.digests(), sink.hasher.size
    return ExportResult(
        path=target,
        format=format,
        records=counts[0],
        custody_events=counts[1],
        sha256=digests.sha256,
        size=size,
        artifacts=counts[2],
    )


def write_case_file(
    ctx: Context, tmp: Path, target: Path, selected: list[str] | None, kinds: frozenset[str] | None
) -> tuple[ExportResult, dict[str, Any] | None]:
    """Write the CASE/UCO graph of the *selected* records (all when ``None``) to *tmp* from one
    read transaction, synced to disk, withholding what flags of the *kinds* name when given (as
    a redacted bag does); return what it holds and, for the export's custody event, what the
    redaction withheld."""
    from evidence_catalog.interchange.case_records import write_case

    at = ctx.clock()
    wanted = None if selected is None else set(selected)
    logged: dict[str, Any] | None = None
    with ctx.db.read() as session, open(tmp, "wb") as raw:
        ids = ctx.db.record_ids(session) if selected is None else selected
        plan = None
        if kinds is not None:
            plan = redaction_plan(ctx, session, ids, kinds)
            logged = {
                "kinds": sorted(plan.kinds),
                "withheld_artifacts": [],
                "withheld_fields": [],
                "altered_events": [],
            }

        def records() -> Iterator[tuple[Redaction, dict[str, str]]]:
            for record in ctx.db.records(session, ids):
                redaction = Redaction(record=record)
                if plan is not None and logged is not None:
                    try:
                        redaction = apply_plan(record, plan)
                    except FieldPathError as exc:
                        raise InputError(str(exc), where=f"record {record.id}") from exc
                    logged["withheld_artifacts"] += [
                        {"record_id": a.record_id, "sha256": a.sha256} for a in redaction.artifacts
                    ]
                    logged["withheld_fields"] += [{"record_id": f.record_id, "path": f.path} for f in redaction.fields]
                yield redaction, artifact_names(redaction.record)

        def events() -> Iterator[tuple[model.CustodyEvent, dict[str, Any]]]:
            whole: set[str] = set()  # as a bag of the same records withholds them
            for event in ctx.db.events(session):
                in_bag = wanted is None or event.subject in wanted
                if not in_bag and event.action != Action.RECORDS_EXPORTED:
                    continue
                if plan is None or logged is None:
                    shown = {
                        "action": event.action,
                        "at": format_timestamp(event.at),
                        "hash": event.hash,
                        "prev_hash": event.prev_hash,
                        "details": event.details,
                    }
                    yield event, shown
                    continue
                document, changed = redact_event(event, plan, whole if in_bag else set(whole))
                if changed and in_bag:
                    logged["altered_events"].append(event.seq)
                yield event, document

        sink = HashingTextSink(raw)
        counts = write_case(
            sink,
            records(),
            events(),
            exported_ids=selected,
            exported_at=at,
            exported_by=ctx.operator,
            generator=library_agent(),
            kinds=None if plan is None else plan.kinds,
        )
        raw.flush()
        os.fsync(raw.fileno())
    result = ExportResult(
        path=target,
        format="case",
        records=counts[0],
        custody_events=counts[1],
        sha256=sink.hasher.digests().sha256,
        size=sink.hasher.size,
        artifacts=0,
        redacted=plan is not None,
        withheld_artifacts=0 if logged is None else len(logged["withheld_artifacts"]),
        withheld_fields=0 if logged is None else len(logged["withheld_fields"]),
    )
    return result, logged


def redaction_plan(ctx: Context, session: Any, ids: Sequence[str], kinds: frozenset[str]) -> RedactionPlan:
    """What a redacted export of the records *ids* withholds (read in *session*): what their
    flags of *kinds* name, and every artifact whose bytes hold a withheld text."""
    try:
        plan = plan_redaction(ctx.db.records(session, ids), kinds)
    except FieldPathError as exc:
        raise InputError(str(exc), where="redact") from exc
    return plan.with_carriers(find_carriers(ctx.db.records(session, ids), plan, ctx.blobs.open))


def write_export(ctx: Context, stream: TextSink, format: str, selected: list[str] | None) -> tuple[int, int, int]:
    """Write from one read transaction: records and log are one consistent snapshot, even
    while another process adds to the catalog.  Returns (records, custody events, artifact
    rows)."""
    wanted = None if selected is None else set(selected)
    # The cycle collector paused, as for a bag (see write_bag): a PROV document is built whole
    # before it is written, and each collection of the oldest generation walked it again (a
    # fifth of a PROV export of 10,000 records).
    with common.collections_paused(), ctx.db.read() as session:
        ids = ctx.db.record_ids(session) if selected is None else selected
        records = ctx.db.records(session, ids)
        events = (e for e in ctx.db.events(session) if wanted is None or e.subject in wanted)
        if format == "csv":
            return write_csv(stream, records), 0, 0
        latest = ctx.db.latest_checkpoint(session, signed=True)  # covers every event exported
        held = None if latest is None else (latest.note, latest.tree_size, latest.root_hash)
        if format == "prov":
            from evidence_catalog.interchange.prov import write_prov  # the prov package: only for this format

            # Exports are catalog events: all events go in, the earlier exports of these records come out.
            return (*write_prov(stream, records, ctx.db.events(session), held), 0)
        if format == "jsonl":
            return (*write_jsonl(stream, records, events, held), 0)
        counts = write_json(
            stream,
            records,
            events,
            exported_at=ctx.clock(),
            exported_by=ctx.operator,
            complete_log=selected is None,
            checkpoint=None if latest is None else latest.note,
        )
        return (*counts, 0)


def write_bag(
    ctx: Context,
    tmp: Path,
    target: Path,
    selected: list[str] | None,
    kinds: frozenset[str] | None,
    sha512: bool,
    progress: ExportProgress | None,
) -> tuple[ExportResult, dict[str, Any] | None]:
    """Write a bag of the *selected* records (all when ``None``) into the new folder *tmp*, from
    one read transaction, withholding what flags of the *kinds* name when given; return what it
    holds and, for the export's custody event, what the redaction withheld."""
    at = ctx.clock()
    external_identifier = f"urn:uuid:{model.new_id()}"
    tmp.mkdir()
    writer = BagWriter(tmp, ("sha256", "sha512") if sha512 else ("sha256",))
    wanted = None if selected is None else set(selected)
    on_bytes = on_withheld = None
    if progress is not None:
        counts = [0, 0]  # done, total
        with ctx.db.read() as session:
            counts[1] = ctx.db.artifact_bytes(session, selected)
        progress(0, counts[1])
        lock = threading.Lock()  # large files are copied on the writer's threads

        def on_bytes(n: int) -> None:
            with lock:
                counts[0] += n
                progress(counts[0], counts[1])

        def on_withheld(n: int) -> None:  # a redaction leaves it out: the total shrinks
            with lock:
                counts[1] -= n
                progress(counts[0], counts[1])

    # The cycle collector is paused while the payload is written (as an add pauses it): the
    # records, documents and events are freed by reference counting, next to none in a cycle
    # (some 450 objects for 3,000 records), and each collection of the oldest generation walked
    # them and every other object of the process again -- a tenth of the export's own CPU.

    try:
        with common.collections_paused(), ctx.db.read() as session:
            ids = ctx.db.record_ids(session) if selected is None else selected
            # First what to withhold across all records (every copy of a withheld text goes:
            # also the files whose bytes hold it), then the bag.
            plan = None if kinds is None else redaction_plan(ctx, session, ids, kinds)
            summary, redaction = write_payload(
                writer,
                records=ctx.db.records(session, ids),
                events=(e for e in ctx.db.events(session) if wanted is None or e.subject in wanted),
                open_blob=ctx.blobs.open,
                head={
                    "external_identifier": external_identifier,
                    "exported_at": format_timestamp(at),
                    "exported_by": unstructure(ctx.operator),
                    "generator": unstructure(library_agent()),
                    "complete_log": selected is None,
                },
                plan=plan,
                progress=on_bytes,
                withheld_bytes=on_withheld,
                log_evidence=lambda w, seqs: bag_log_evidence(ctx, w, session, seqs, complete=selected is None),
                blob_path=ctx.blobs.local_path,
            )
        info = bag_info(summary=summary, operator=ctx.operator, generator=library_agent(), at=at, redaction=redaction)
        pinned = writer.finish(info)
    except BaseException:
        writer.abort()
        raise
    fsync_dir(tmp)
    logged = (
        None
        if redaction is None
        else {
            "kinds": redaction["kinds"],
            "withheld_artifacts": [
                {"record_id": a["record_id"], "sha256": a["sha256"]} for a in redaction["withheld_artifacts"]
            ],
            "withheld_fields": [{"record_id": f["record_id"], "path": f["path"]} for f in redaction["withheld_fields"]],
            "altered_events": redaction["altered_events"],
        }
    )
    result = ExportResult(
        path=target,
        format="bagit",
        records=summary.records,
        custody_events=summary.custody_events,
        sha256=pinned,
        size=summary.payload_octets,
        artifacts=summary.artifacts,
        external_identifier=external_identifier,
        payload_oxum=f"{summary.payload_octets}.{summary.payload_files}",
        redacted=redaction is not None,
        withheld_artifacts=summary.withheld_artifacts,
        withheld_fields=summary.withheld_fields,
    )
    return result, logged


def bag_log_evidence(
    ctx: Context, writer: BagWriter, session: Any, seqs: list[int], *, complete: bool
) -> dict[str, Any] | None:
    """Put into a bag what lets a recipient check its custody events against the signed log
    without this library (:func:`~evidence_catalog.interchange.log_evidence.write_log_evidence`),
    read in the bag's read transaction *session*; nothing when the log has no checkpoint or
    key."""
    latest = ctx.db.latest_checkpoint(session)
    if latest is None or not ctx.key.log_key.exists:
        return None
    return write_log_evidence(
        writer,
        latest,
        ctx.key.log_key,
        subtrees=ctx.db.subtrees(session),
        events_by_action=lambda action: ctx.db.events_by_action(session, action),
        stamps=stamped_checkpoints(ctx, session),
        seqs=seqs,
        complete=complete,
    )


def stamped_checkpoints(ctx: Context, session: Any) -> Iterator[StampedCheckpoint]:
    """The RFC 3161 time-stamps granted for checkpoints, each with its number among all granted
    time-stamps, read as they are written."""
    for number, stamp in enumerate(ctx.db.timestamps(session, "granted"), 1):
        if stamp.subject_kind != "checkpoint" or stamp.token is None:
            continue
        if not stamp.subject.isdecimal():
            continue  # a damaged row: verify names it; nothing to export for it
        stamped = ctx.db.checkpoint(session, int(stamp.subject))
        if stamped is None:
            continue
        yield number, stamped.note, base64.b64decode(stamp.token), stamp.tsa_url
