"""``exhibit``: one record as a court exhibit -- a self-contained HTML file and its PDF --
logged as an export.

What the exhibit shows and how it is laid out is
:mod:`evidence_catalog.interchange.exhibit`'s (pure), the PDF is
:mod:`evidence_catalog.interchange.exhibit_pdf`'s (WeasyPrint); this module reads the record, its
custody events, analyses, checkpoint, proofs and time-stamps in one database snapshot, applies a
redaction as an export does, checks every picture's bytes against its SHA-256, writes the files
under temporary names, logs them (``records.exported``, format ``exhibit``) and then gives them
their names.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import epoch_at
from evidence_catalog.checkpoint import vkey as make_vkey
from evidence_catalog.custody import Action, is_salted
from evidence_catalog.errors import InputError, IntegrityError, StorageError
from evidence_catalog.interchange import exhibit as exhibit_module
from evidence_catalog.interchange.exhibit import (
    ExhibitSource,
    Proof,
    ShownEvent,
    Stamp,
    keyframe_shas,
    picture_refusal,
    render_html,
)
from evidence_catalog.interchange.export import find_carriers
from evidence_catalog.interchange.redact import (
    FieldPathError,
    Redaction,
    RedactionPlan,
    apply_plan,
    plan_redaction,
    redact_document,
)
from evidence_catalog.operations import common, log_key, record_checks
from evidence_catalog.operations.common import check_record_id
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.exporting import export_target, redaction_kinds
from evidence_catalog.paths import display_path
from evidence_catalog.results import ExhibitResult
from evidence_catalog.serialize import to_document, unstructure
from evidence_catalog.store.blobstore import fsync_dir, place_new_file
from evidence_catalog.versions import library_agent

#: The suffixes of an exhibit's files.
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIX = ".pdf"


def exhibit(
    ctx: Context,
    record_id: str,
    output: str | os.PathLike[str],
    *,
    redact: bool | Collection[str] = False,
) -> ExhibitResult:
    """Write a court exhibit of one record: a self-contained HTML file (pictures inline, a
    Content-Security-Policy that lets it load nothing) and its PDF (PDF/A-3b, made by
    WeasyPrint; the record id on every page, numbered pages).

    *output* is an existing folder (both files go in it, named ``<record id>.html`` and
    ``<record id>.pdf``), or a new file ending in ``.pdf`` (the PDF only) or ``.html`` (the
    HTML only).  No file is ever replaced.

    The exhibit shows the record's title and what it holds; its pictures (images, and each
    analysed video's contact sheet and keyframes); every digest; each acquisition (where, when,
    by whom, with which tools); the embedded metadata; the reports with their text exactly;
    claims, marked as alleged; assessments with their methods; every custody event about the
    record, its files' time-stamps and its exports; the latest signed checkpoint and each
    event's inclusion proof in it; the RFC 3161 tokens; and how to check it.  Nothing in it
    depends on the time it was made: the same catalog gives the same HTML.

    *redact* withholds what the record's flags name, as :meth:`export` does (``True``: flags of
    every kind; or the kinds to honour): withheld files are listed by SHA-256 and size only,
    withheld texts read ``[withheld]`` wherever they occur, custody events show only what they
    may.  The files written are logged as one ``records.exported`` event (format
    ``exhibit``), with their SHA-256s, before they are given their names.

    Nothing is shown on the database's word: an event that is not what its stored hash and
    Merkle leaf commit to, a record that is not what its events make of it, or a log rewritten
    under its signed checkpoint is an :class:`IntegrityError` and nothing is written; the
    checkpoint shown is one the key the log's own events declare signed, and that key is the
    one printed.
    """
    check_record_id(record_id)
    kinds = redaction_kinds(redact)
    targets = exhibit_targets(ctx, output, record_id)
    with ctx.db.read() as session:
        common.check_record_exists(ctx, session, record_id, where="record_id")
    common.check_writable(ctx, ", so an exhibit could not be logged; nothing was written")
    source = read_source(ctx, record_id, kinds)
    html = render_html(source)
    files: dict[str, bytes] = {}
    if "html" in targets:
        # A lone surrogate (text that came in as broken UTF-16) cannot be UTF-8: shown escaped.
        files["html"] = html.encode("utf-8", "backslashreplace")
    if "pdf" in targets:
        from evidence_catalog.interchange.exhibit_pdf import html_to_pdf  # WeasyPrint: only for a PDF

        files["pdf"] = html_to_pdf(html, title=f"Exhibit: evidence record {record_id}")
    return _write_and_log(ctx, record_id, targets, files, source, kinds)


def exhibit_targets(ctx: Context, output: str | os.PathLike[str], record_id: str) -> dict[str, Path]:
    """The files an exhibit writes (``"html"``/``"pdf"`` -> path): both in an existing folder,
    or the one file named; each new, outside the catalog."""
    given = os.fspath(output)
    if given not in ("", "-") and os.path.isdir(given):
        folder = Path(os.path.abspath(given))
        return {
            kind: export_target(ctx, folder / f"{record_id}{suffix}")
            for kind, suffix in (("html", ".html"), ("pdf", PDF_SUFFIX))
        }
    suffix = Path(given).suffix.lower()
    if suffix == PDF_SUFFIX:
        return {"pdf": export_target(ctx, given)}
    if suffix in HTML_SUFFIXES:
        return {"html": export_target(ctx, given)}
    raise InputError(
        "give an existing folder (both files are written in it), or a new file ending in .pdf or .html",
        where=display_path(given) if given else "output",
    )


def read_source(ctx: Context, record_id: str, kinds: frozenset[str] | None) -> ExhibitSource:
    """Everything the exhibit of *record_id* shows, from one snapshot of the catalog, redacted
    for the flag *kinds* (``None``: not redacted)."""
    with ctx.db.read() as session:
        record = ctx.db.record(session, record_id)
        log_size = ctx.db.tree_size(session)
        events = record_checks.events_of(ctx, session, record)
        # Nothing is shown on the database's word: each event as its hash and leaf commit to
        # it, the record as its events make it, a checkpoint the key the log names signed.
        _check_events(ctx, session, events)
        _check_record(ctx, session, record)
        epochs, _ = log_key.log_key_chain(ctx, session)
        try:
            _, latest = log_key.signed_prefix(ctx, session, epochs)
        except IntegrityError as exc:
            raise IntegrityError(f"{_NOT_THE_LOG} ({exc.message})", where=exc.where) from exc
        epoch = None if latest is None else epoch_at(epochs, latest.tree_size)
        proofs: list[Proof] = []
        if latest is not None:
            subtrees = ctx.db.subtrees(session)
            for event in events:
                if event.seq <= latest.tree_size:
                    path = merkle.inclusion_proof(subtrees, event.seq - 1, latest.tree_size)
                    leaf = subtrees(0, event.seq - 1)
                    proofs.append(Proof(seq=event.seq, leaf_hash=leaf.hex(), path=tuple(h.hex() for h in path)))
        stamps = _stamps(ctx, session, record, events)
        plan = None
        if kinds is not None:
            try:
                plan = plan_redaction([record], kinds)
            except FieldPathError as exc:
                raise InputError(str(exc), where="redact") from exc
            plan = plan.with_carriers(find_carriers([record], plan, ctx.blobs.open))
    # The key that signed the checkpoint shown, as the log's own events declare it (the key
    # files can be replaced; the log's events cannot without breaking its signed tree).
    origin = vkey = None
    if epoch is not None:
        origin, vkey = epoch.name, make_vkey(epoch.name, epoch.public)
    analyses = [(document, _checked_analysis(ctx, document)) for document in _analysis_documents(record)]
    redaction = Redaction(record=record)
    if plan is not None:
        try:
            redaction = apply_plan(record, plan)
        except FieldPathError as exc:
            raise InputError(str(exc), where=f"record {record_id}") from exc
    shown, whole = _shown_events(events, plan)
    withheld = redaction.withheld_sha256
    shown_stamps = tuple(s for s in stamps if s.sha256 not in withheld)
    pictures, not_shown = _pictures(ctx, redaction.record, analyses, withheld)
    no_checkpoint = None
    if latest is None:
        no_checkpoint = (
            "the log has no checkpoint signed by the key it names (its key's passphrase was never given,"
            " or `evidence-catalog verify` says what is wrong)"
        )
    elif whole:
        no_checkpoint = (
            "custody events written before salted commitments are withheld whole, and a Merkle root "
            "over them would confirm a guess at what they withhold"
        )
    return ExhibitSource(
        record=redaction.record,
        events=shown,
        analyses=tuple((d, a) for d, a in analyses if a is None or a.source_sha256 not in withheld),
        checkpoint=None if no_checkpoint else latest.note if latest else None,
        tree_size=0 if latest is None or no_checkpoint else latest.tree_size,
        root_hash=None if latest is None or no_checkpoint else latest.root_hash,
        origin=origin,
        vkey=vkey,
        proofs=() if no_checkpoint else tuple(proofs),
        stamps=shown_stamps,
        pictures=pictures,
        not_shown=not_shown,
        redacted_kinds=None if kinds is None else tuple(sorted(kinds)),
        withheld_artifacts=redaction.artifacts,
        withheld_fields=redaction.fields,
        no_checkpoint_reason=no_checkpoint,
        made_by=ctx.operator,
        generator=library_agent(),
        log_size=log_size,
    )


#: What an exhibit of a catalog whose records or log were changed behind its back says.
_NOT_THE_LOG = "the catalog is not what its custody log commits to; run verify. Nothing was written"


def _check_events(ctx: Context, session: Any, events: list[model.CustodyEvent]) -> None:
    """Refuse (:class:`IntegrityError`) when an event to be shown is not the one its stored
    hash and Merkle leaf commit to (edited in the database)."""
    for finding in record_checks.event_findings(ctx, session, events):
        seq = getattr(finding, "seq", None) or getattr(finding, "first_seq", None) or 0
        reason = getattr(finding, "reason", None)
        raise IntegrityError(_NOT_THE_LOG + (f" ({reason})" if reason else ""), where=f"custody event {seq}")


def _check_record(ctx: Context, session: Any, record: model.EvidenceRecord) -> None:
    """Refuse (:class:`IntegrityError`) when *record* is not what replaying its custody events
    makes of it (its rows changed in the database), as ``verify`` compares every record."""
    for finding in record_checks.record_findings(ctx, session, record):
        differing = ", ".join(getattr(finding, "fields", ()))
        raise IntegrityError(f"{_NOT_THE_LOG} (it differs in: {differing})", where=f"record {record.id}")


def _checked_analysis(ctx: Context, sha256: str) -> Any:
    """The analysis document stored under *sha256* (``None`` when it cannot be read), its stored
    bytes checked against that SHA-256 as they are read: one changed on disk would have the
    exhibit print what no analysis said (its errors, its keyframes' times)."""
    from evidence_catalog.operations.analyzing import MAX_DOCUMENT_BYTES, parse_analysis

    digest = hashlib.sha256()
    try:
        with ctx.blobs.open(sha256) as stream:
            data = stream.read(MAX_DOCUMENT_BYTES + 1)
            digest.update(data)
            while chunk := stream.read(1 << 20):  # past what a document holds: hashed, not kept
                digest.update(chunk)
    except OSError:
        return None  # unreadable: the exhibit says so under its video
    if digest.hexdigest() != sha256:
        raise IntegrityError(
            "the stored copy no longer has this SHA-256; run verify. Nothing was written", where=f"artifact {sha256}"
        )
    return parse_analysis(data)


def _analysis_documents(record: model.EvidenceRecord) -> list[str]:
    from evidence_catalog.operations.analyzing import analysis_documents

    return [document for _, document in analysis_documents(record)]


def _stamps(
    ctx: Context, session: Any, record: model.EvidenceRecord, events: list[model.CustodyEvent]
) -> tuple[Stamp, ...]:
    """The RFC 3161 tokens of the record's files (among *events*), and of the first checkpoint
    time-stamped that covers every event of the record."""
    found: list[Stamp] = []
    last = max((e.seq for e in events if e.subject == record.id), default=0)
    held = {entry.artifact.sha256 for entry in record.artifacts}
    for event in ctx.db.events_by_action(session, Action.TIMESTAMP_ADDED):
        details = event.details
        if details.get("stamps") == "checkpoint":
            number = details.get("checkpoint_id")
            row = ctx.db.checkpoint(session, number) if isinstance(number, int) else None
            if row is None or row.tree_size < last or any(s.stamps == "checkpoint" for s in found):
                continue
        elif event.subject not in held:
            continue
        found.append(
            Stamp(
                seq=event.seq,
                stamps=str(details.get("stamps")),
                sha256=str(details.get("sha256")),
                tsa_url=str(details.get("tsa_url")),
                gen_time=str(details.get("gen_time")),
                serial=str(details.get("serial")),
                policy=str(details.get("policy")),
                token=str(details.get("token")),
                checkpoint_id=details.get("checkpoint_id") if isinstance(details.get("checkpoint_id"), int) else None,
            )
        )
    return tuple(found)


def _shown_events(events: list[model.CustodyEvent], plan: RedactionPlan | None) -> tuple[tuple[ShownEvent, ...], bool]:
    """The events as the exhibit shows them, and whether one is withheld whole (as a redacted
    bag shows them: :func:`evidence_catalog.interchange.export.write_payload`)."""
    shown: list[ShownEvent] = []
    whole = False
    for event in events:
        document = to_document(event)
        if plan is None:
            shown.append(ShownEvent(document=document))
            continue
        redacted, changed = redact_document(document, plan.values, plan.artifacts)
        # Unsalted, its hash is a digest of its text: it goes whole, and so does every unsalted
        # event after it (each commits to the one before).
        if not is_salted(document) and (changed or whole):
            whole = True
            shown.append(ShownEvent(document={"seq": event.seq}, altered=True, whole=True))
            continue
        shown.append(ShownEvent(document=redacted, altered=changed))
    return tuple(shown), whole


def _pictures(
    ctx: Context,
    record: model.EvidenceRecord,
    analyses: list[tuple[str, Any]],
    withheld: frozenset[str],
) -> tuple[dict[str, tuple[str, bytes]], dict[str, str]]:
    """The bytes of each picture the exhibit shows, each checked against its SHA-256, and why
    the others are not shown."""
    wanted = [e.artifact.sha256 for e in record.artifacts if e.artifact.media_type.startswith("image/")]
    wanted += keyframe_shas(analyses)
    pictures: dict[str, tuple[str, bytes]] = {}
    not_shown: dict[str, str] = {}
    total = 0
    for sha in dict.fromkeys(wanted):
        entry = record.artifact(sha)
        if sha in withheld:
            not_shown[sha] = "withheld by the redaction"
            continue
        if entry is None:
            not_shown[sha] = "the record does not hold it"
            continue
        refused = picture_refusal(entry.artifact)
        if refused is not None:
            not_shown[sha] = refused
            continue
        if total + entry.artifact.size > exhibit_module.MAX_TOTAL_PICTURE_BYTES:
            not_shown[sha] = "the pictures shown before it fill the exhibit"
            continue
        total += entry.artifact.size
        try:
            with ctx.blobs.open(sha) as stream:
                data = stream.read(entry.artifact.size + 1)
        except OSError as exc:
            raise StorageError(
                f"its stored bytes cannot be read ({exc.strerror or exc}); run verify. Nothing was written",
                where=f"artifact {sha}",
            ) from exc
        if hashlib.sha256(data).hexdigest() != sha:
            raise IntegrityError(
                "the stored copy no longer has this SHA-256; run verify. Nothing was written", where=f"artifact {sha}"
            )
        pictures[sha] = (entry.artifact.media_type, data)
    return pictures, not_shown


def _write_and_log(
    ctx: Context,
    record_id: str,
    targets: dict[str, Path],
    files: dict[str, bytes],
    source: ExhibitSource,
    kinds: frozenset[str] | None,
) -> ExhibitResult:
    """Write *files* under temporary names, log them as one export event, then name them."""
    tools = [unstructure(library_agent())]
    if "pdf" in files:
        from evidence_catalog.interchange.exhibit_pdf import weasyprint_version

        tools.append(
            unstructure(model.Agent(name="WeasyPrint", kind=model.AgentKind.SOFTWARE, version=weasyprint_version()))
        )
    temporary: dict[str, Path] = {}
    logged = False
    try:
        for kind, data in files.items():
            target = targets[kind]
            tmp = target.with_name(f".exhibit-{uuid.uuid4().hex[:12]}.part")
            with open(tmp, "xb") as stream:
                temporary[kind] = tmp
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        written: list[dict[str, Any]] = [
            {
                "format": kind,
                "output": display_path(targets[kind]),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            for kind, data in files.items()
        ]
        main = next((w for w in written if w["format"] == "pdf"), written[0])
        details: dict[str, Any] = {
            "format": "exhibit",
            "output": main["output"],
            "sha256": main["sha256"],
            "size": main["size"],
            "records": 1,
            "custody_events": len(source.events),
            "record_ids": [record_id],
            "files": written,
            "tools": tools,
            "redaction": None
            if kinds is None
            else {
                "kinds": sorted(kinds),
                "withheld_artifacts": [
                    {"record_id": a.record_id, "sha256": a.sha256} for a in source.withheld_artifacts
                ],
                "withheld_fields": [{"record_id": f.record_id, "path": f.path} for f in source.withheld_fields],
                "altered_events": [e.document["seq"] for e in source.events if e.altered],
            },
        }
        for target in targets.values():
            if target.exists() or target.is_symlink():
                raise InputError("already exists; choose a new name", where=display_path(target))
        try:
            event = ctx.log_event(Action.RECORDS_EXPORTED, details)
        except StorageError as exc:
            raise StorageError(
                f"the exhibit could not be logged, so it was not written ({exc.message})", where=str(main["output"])
            ) from exc
        logged = True
        for kind, tmp in temporary.items():
            try:
                place_new_file(tmp, targets[kind])
            except OSError as exc:
                raise StorageError(
                    f"the exhibit was written and logged, but could not be given its name "
                    f"({exc.strerror or exc}); it is complete in {display_path(tmp)}",
                    where=display_path(targets[kind]),
                ) from exc
            tmp.unlink(missing_ok=True)
        for folder in {t.parent for t in targets.values()}:
            try:
                fsync_dir(folder)
            except OSError as exc:
                raise StorageError(
                    f"the exhibit was written, logged and named, but its folder could not be synced to disk"
                    f" ({exc.strerror or exc}): check it before relying on it",
                    where=display_path(folder),
                ) from exc
    except OSError as exc:
        raise StorageError(f"the exhibit could not be written ({exc.strerror or exc}); nothing was kept") from exc
    finally:
        if not logged:
            for tmp in temporary.values():
                tmp.unlink(missing_ok=True)
    by_kind = {w["format"]: w for w in written}
    return ExhibitResult(
        record_id=record_id,
        html=targets.get("html") if "html" in files else None,
        pdf=targets.get("pdf") if "pdf" in files else None,
        html_sha256=str(by_kind["html"]["sha256"]) if "html" in by_kind else None,
        pdf_sha256=str(by_kind["pdf"]["sha256"]) if "pdf" in by_kind else None,
        custody_events=len(source.events),
        redacted=kinds is not None,
        export_seq=event.seq,
    )
