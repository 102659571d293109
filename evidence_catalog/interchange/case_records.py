"""The CASE/UCO nodes of a record and of a custody event (:mod:`evidence_catalog.interchange.case`
writes them), and :func:`write_case`, which writes a whole graph.  Pure: no I/O but the stream."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from evidence_catalog import model
from evidence_catalog.interchange.case import CaseWriter, _lines, _put, date_time, node_id, ref
from evidence_catalog.interchange.redact import Redaction
from evidence_catalog.interchange.text import TextSink

#: Custody actions of the catalog as a whole that the graph keeps (the others are not about
#: records).
EXPORTED = "records.exported"
#: The media type of each one-file export format.
_MEDIA = {
    "json": "application/json",
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "prov": "application/json",
    "case": "application/ld+json",
    "exhibit": "application/pdf",
}


def write_case(
    stream: TextSink,
    records: Iterable[tuple[Redaction, Mapping[str, str]]],
    events: Iterable[tuple[model.CustodyEvent, Mapping[str, Any]]],
    *,
    exported_ids: Iterable[str] | None,
    exported_at: dt.datetime,
    exported_by: model.Agent,
    generator: model.Agent,
    kinds: Iterable[str] | None = None,
) -> tuple[int, int]:
    """Write the CASE/UCO graph of *records* -- each as (its redaction, its artifacts' file
    names), the redaction empty when nothing is withheld -- and of custody *events*, each with
    the document it may travel as; return (records, custody events written).  *exported_ids*:
    the records exported (``None``: all of the catalog's).  *kinds*: the flag kinds a redacted
    export honours (``None``: not redacted)."""
    writer = CaseWriter(stream, exported_ids=exported_ids)
    redacted = None if kinds is None else sorted(kinds)
    later: list[tuple[model.EvidenceRecord, int, model.Relation]] = []
    for redaction, names in records:
        write_record(writer, redaction, names, redacted, later)
    # Every record given is the export (a whole catalog): a relation points at its target only
    # if the target is one of them -- an imported record can name one the catalog never held.
    writer.exported = set(writer.records) if writer.exported is None else writer.exported
    for record, number, relation in later:
        write_relation(writer, record, number, relation)
    for event, shown in events:
        write_event(writer, event, shown)
    note = None if redacted is None else f"redacted ({', '.join(redacted)}): see each record's annotations"
    writer.finish(exported_at=exported_at, exported_by=exported_by, generator=generator, note=note)
    return len(writer.records), writer.events


def write_record(
    writer: CaseWriter,
    redaction: Redaction,
    names: Mapping[str, str],
    kinds: list[str] | None,
    later: list[tuple[model.EvidenceRecord, int, model.Relation]],
) -> None:
    """Write the nodes of a record as it may travel (``redaction.record``).  Its relations are
    added to *later*, to be written once every record is (:func:`write_relation`: a relation
    points at a record's node only when the graph holds that record)."""
    record = redaction.record
    writer.records.append(record.id)
    writer.created[record.id] = record.created_at
    scope = record.id
    record_node = writer.record_id(record.id)
    files = {entry.artifact.sha256: writer.file(entry.artifact) for entry in record.artifacts}
    urls: list[str] = []
    messages: dict[str, str] = {}
    for entry in record.artifacts:
        sha = entry.artifact.sha256
        writer.emit(
            {
                "@id": node_id("Relationship", f"holds:{record.id}:{sha}"),
                "@type": "uco-core:Relationship",
                "uco-core:source": ref(files[sha]),
                "uco-core:target": ref(record_node),
                "uco-core:kindOfRelationship": "Contained_Within",
                "uco-core:isDirectional": True,
                "uco-core:description": _lines(
                    f"role: {entry.role.value}",
                    sha in names and f"file name: {names[sha]}",
                    entry.version_of and f"a later version of artifact sha256:{entry.version_of}",
                ),
            }
        )
    for acquisition in record.acquisitions:
        urls += _acquisition(writer, record, acquisition, files, scope)
    for entry in record.artifacts:
        if entry.derived_from:
            sources = [files[s] for s in entry.derived_from if s in files]
            writer.emit(
                {
                    "@id": node_id("InvestigativeAction", f"derivation:{record.id}:{entry.artifact.sha256}"),
                    "@type": "case-investigation:InvestigativeAction",
                    "uco-core:name": "derivation",
                    "uco-core:description": entry.derivation,
                    **({"uco-action:object": [ref(s) for s in sources]} if sources else {}),
                    "uco-action:result": [ref(files[entry.artifact.sha256])],
                }
            )
    for report in record.reports:
        messages[report.id], more = _report(writer, report, files, scope)
        urls += more
    people = {id(claim): writer.agent(claim.stated_by, scope) for claim in record.claims}
    node: dict[str, Any] = {
        "@id": record_node,
        "@type": "case-investigation:ProvenanceRecord",
        "case-investigation:exhibitNumber": record.id,
        "case-investigation:rootExhibitNumber": record.id,
        "uco-core:description": f"evidence record {record.id}",
        "uco-core:createdBy": ref(writer.agent(record.created_by, scope)),
        "uco-core:objectCreatedTime": date_time(record.created_at),
    }
    _put(node, "uco-core:name", record.title)
    _put(node, "uco-core:tag", list(record.tags))
    _put(node, "uco-core:object", [ref(i) for i in dict.fromkeys([*files.values(), *urls, *messages.values()])])
    writer.emit(node)
    for claim in record.claims:
        _claim(writer, record, claim, people[id(claim)], messages, scope)
    for assessment in record.assessments:
        methods = [m.value for m in assessment.methods]
        _annotation(
            writer,
            f"assessment:{assessment.id}",
            _lines(
                f"Assessment {assessment.id}: {assessment.status.value}",
                methods and f"methods: {', '.join(methods)}",
                assessment.confidence and f"confidence: {assessment.confidence.value}",
                assessment.supersedes and f"supersedes assessment {assessment.supersedes}",
                assessment.note,
            ),
            ["assessment", f"status:{assessment.status.value}"]
            + [f"method:{m}" for m in methods]
            + ([f"confidence:{assessment.confidence.value}"] if assessment.confidence else []),
            writer.agent(assessment.assessor, scope),
            assessment.assessed_at,
            [record_node],
        )
    for note in record.notes:
        _annotation(
            writer,
            f"note:{note.id}",
            note.text,
            ["note"],
            writer.agent(note.author, scope),
            note.written_at,
            [record_node],
        )
    for number, flag in enumerate(record.flags):
        _annotation(
            writer,
            f"flag:{record.id}:{number}",
            _lines(
                f"Sensitivity flag ({flag.kind.value}): {flag.reason}",
                *(f"names artifact sha256:{sha}" for sha in flag.artifacts),
                *(f"names field {path}" for path in flag.fields),
                not flag.artifacts and not flag.fields and "names every artifact of the record",
            ),
            ["sensitivity-flag", f"kind:{flag.kind.value}"],
            writer.agent(flag.set_by, scope),
            flag.set_at,
            [record_node],
        )
    later.extend((record, number, relation) for number, relation in enumerate(record.relations))
    if kinds is not None and redaction.changed:
        writer.withholding = True
        _withheld(writer, redaction, kinds, record_node, files)


def write_relation(writer: CaseWriter, record: model.EvidenceRecord, number: int, relation: model.Relation) -> None:
    """A record's relation: a Relationship to the target's node when the graph holds the target,
    else an annotation that names it (a node pointed at must be in the graph)."""
    scope = record.id
    record_node = writer.record_id(record.id)
    target = relation.target_id
    exported = writer.exported is None or target in writer.exported
    about = writer.record_id(target) if exported else None
    node: dict[str, Any] = {
        "@id": node_id("Relationship", f"relation:{record.id}:{number}"),
        "@type": "uco-core:Relationship",
        "uco-core:source": ref(record_node),
        "uco-core:target": ref(about or record_node),
        "uco-core:kindOfRelationship": relation.kind.value,
        "uco-core:isDirectional": True,
        "uco-core:description": _lines(
            f"record {record.id} {relation.kind.value} record {target}" + ("" if exported else " (not in this export)"),
            relation.note,
        ),
    }
    if about is not None:
        writer.emit(node)
    else:  # a target this graph does not hold: said in words, not pointed at
        _annotation(
            writer,
            f"relation:{record.id}:{number}",
            node["uco-core:description"],
            ["relation", relation.kind.value],
            writer.agent(relation.linked_by, scope),
            relation.linked_at,
            [record_node],
        )


def _acquisition(
    writer: CaseWriter, record: model.EvidenceRecord, acquisition: model.Acquisition, files: dict[str, str], scope: str
) -> list[str]:
    """The action of an acquisition (capture, addition, ingest, import, analysis); return the
    URLs it names."""
    # The URL asked for (a capture), else the one the operator says the file came from.
    asked = acquisition.requested_url or acquisition.source_url
    # A withheld URL's node is particular to where it stands (two withheld URLs are two nodes).
    here = f"{scope}/acquisition/{acquisition.id}"
    source = None if not asked else writer.url(asked, f"{here}/asked")
    final = None
    if acquisition.final_url and acquisition.final_url != asked:
        final = writer.url(acquisition.final_url, f"{here}/final")
    urls = [u for u in (source, final) if u]
    results = [files[s] for s in (acquisition.artifact_sha256, *acquisition.other_artifacts) if s and s in files]
    node: dict[str, Any] = {
        "@id": node_id("InvestigativeAction", "acquisition:" + acquisition.id),
        "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": acquisition.method.value,
        "uco-core:description": _lines(
            f"acquisition {acquisition.id} of record {record.id}: {acquisition.outcome.value}",
            acquisition.original_path and f"added from {acquisition.original_path}",
            acquisition.source_url and f"source URL (as stated): {acquisition.source_url}",
            acquisition.requested_url and f"requested URL: {acquisition.requested_url}",
            acquisition.final_url and f"final URL: {acquisition.final_url}",
            acquisition.http_status is not None and f"HTTP status: {acquisition.http_status}",
            acquisition.platform and f"platform: {acquisition.platform}",
            acquisition.platform_id and f"platform id: {acquisition.platform_id}",
            acquisition.extractor and f"extractor: {acquisition.extractor}",
            acquisition.error and f"error: {acquisition.error}",
            acquisition.note,
        ),
        "uco-action:startTime": date_time(acquisition.started_at),
        "uco-action:endTime": date_time(acquisition.ended_at),
        "uco-action:performer": ref(writer.agent(acquisition.operator, scope)),
    }
    _put(node, "uco-action:instrument", [ref(writer.agent(tool, scope)) for tool in acquisition.tools])
    _put(node, "uco-action:object", [ref(u) for u in (source,) if u])
    _put(node, "uco-action:result", [ref(r) for r in dict.fromkeys(results)])
    writer.emit(node)
    primary = acquisition.artifact_sha256
    if source is not None and primary in files:
        writer.emit(
            {
                "@id": node_id("ObservableRelationship", f"downloaded:{acquisition.id}"),
                "@type": "uco-observable:ObservableRelationship",
                "uco-core:source": ref(files[primary]),
                "uco-core:target": ref(final or source),
                "uco-core:kindOfRelationship": "Downloaded_From",
                "uco-core:isDirectional": True,
            }
        )
    return urls


def _report(writer: CaseWriter, report: model.Report, files: dict[str, str], scope: str) -> tuple[str, list[str]]:
    """A report (a post, a feed item) as a message with its text verbatim; return its node and
    the URLs it names."""
    identifier = node_id("Message", "report:" + report.id)
    here = f"{scope}/report/{report.id}"  # a withheld URL's node is particular to where it stands
    named = [u for u in (report.url, *report.links) if u]
    urls = list(
        dict.fromkeys(  # the same URL twice is one node; withheld ones are each their own
            writer.url(u, f"{here}/url/{number}") for number, u in enumerate(named)
        )
    )
    cards = []
    for number, card in enumerate(report.link_cards):
        if card.url:
            urls.append(writer.url(card.url, f"{here}/card/{number}"))
        cards.append(
            "link card: "
            + " | ".join(x for x in (card.site_name, card.title, card.description, card.url) if x)
            + (" (truncated)" if card.truncated else "")
        )
    source = report.source
    facet: dict[str, Any] = {
        "@id": _facet(identifier, "MessageFacet"),
        "@type": "uco-observable:MessageFacet",
        "uco-observable:messageText": report.text,
    }
    _put(facet, "uco-observable:messageID", report.post_id)
    if report.published_at is not None:
        facet["uco-observable:sentTime"] = date_time(report.published_at)
    if report.author:
        account = node_id("ApplicationAccount", f"{source.platform or ''}|{report.author}|{scope}")
        writer.emit(
            {
                "@id": account,
                "@type": "uco-observable:ApplicationAccount",
                "uco-core:hasFacet": {
                    "@id": _facet(account, "AccountFacet"),
                    "@type": "uco-observable:AccountFacet",
                    "uco-observable:accountIdentifier": report.author,
                },
            }
        )
        facet["uco-observable:from"] = ref(account)
    node: dict[str, Any] = {
        "@id": identifier,
        "@type": "uco-observable:Message",
        "uco-core:description": _lines(
            f"report {report.id}",
            source.platform and f"platform: {source.platform}",
            source.feed_name and f"feed: {source.feed_name}",
            source.account_handle and f"account: {source.account_handle}",
            source.url and f"feed URL: {source.url}",
            report.url and f"URL: {report.url}",
            report.language and f"language: {report.language}",
            report.repost and f"repost by {report.repost.reposted_by} of {report.repost.original_author}",
            *cards,
            *(f"media: {m.url}" + (f" ({m.media_type})" if m.media_type else "") for m in report.media),
        ),
        "uco-core:hasFacet": facet,
    }
    _put(node, "uco-core:tag", [f"#{h}" for h in report.hashtags] + [f"@{m}" for m in report.mentions])
    writer.emit(node)
    document = report.document_sha256
    if document is not None and document in files:
        writer.emit(
            {
                "@id": node_id("ObservableRelationship", f"read-from:{report.id}"),
                "@type": "uco-observable:ObservableRelationship",
                "uco-core:source": ref(identifier),
                "uco-core:target": ref(files[document]),
                "uco-core:kindOfRelationship": "Extracted_From",
                "uco-core:isDirectional": True,
            }
        )
    return identifier, urls


def _facet(object_id: str, name: str) -> str:
    from evidence_catalog.interchange.case import OBSERVABLE, facet_id

    return facet_id(object_id, OBSERVABLE + name)


def _claim(
    writer: CaseWriter,
    record: model.EvidenceRecord,
    claim: model.Claim,
    by: str,
    messages: Mapping[str, str],
    scope: str,
) -> None:
    objects = [writer.record_id(record.id)]
    place = claim.place
    if place is not None and place.position is not None:
        objects.append(writer.location(place.position))
    if claim.source_report_id in messages:
        objects.append(messages[claim.source_report_id])  # type: ignore[index]
    when = claim.event_time
    _annotation(
        writer,
        f"claim:{claim.id}",
        _lines(
            f"Alleged (claim {claim.id}, not a finding): {claim.summary or 'no summary'}",
            claim.category and f"category: {claim.category}",
            when
            and f"when (alleged): {when.start.isoformat()}"
            + (f" to {when.end.isoformat()}" if when.end else "")
            + f" ({when.precision.value})",
            place and place.name and f"where (alleged): {place.name}",
            place and place.admin_area and f"area: {place.admin_area}",
            place and place.uncertainty_m is not None and f"uncertainty: {place.uncertainty_m:g} m",
            claim.alleged_perpetrator and f"alleged perpetrator: {claim.alleged_perpetrator}",
            claim.source_report_id and f"source: report {claim.source_report_id}",
            claim.source_description and f"source: {claim.source_description}",
        ),
        ["claim", "alleged"] + ([f"category:{claim.category}"] if claim.category else []),
        by,
        claim.stated_at,
        objects,
    )


def _annotation(
    writer: CaseWriter,
    name: str,
    statement: str | None,
    tags: list[str],
    by: str,
    at: dt.datetime,
    objects: list[str],
) -> None:
    node: dict[str, Any] = {
        "@id": node_id("Annotation", name),
        "@type": "uco-core:Annotation",
        "uco-core:statement": statement or "",
        "uco-core:tag": tags,
        "uco-core:createdBy": ref(by),
        "uco-core:objectCreatedTime": date_time(at),
        "uco-core:object": [ref(o) for o in dict.fromkeys(objects)],
    }
    writer.emit(node)


def _withheld(
    writer: CaseWriter, redaction: Redaction, kinds: list[str], record_node: str, files: dict[str, str]
) -> None:
    """An annotation saying what a redaction withheld from the record and why (as a redacted
    bag lists it: the artifacts by SHA-256 and size, the fields by path, never their values)."""

    def why(reasons: Iterable[tuple[str, str]]) -> str:
        return "; ".join(f"{kind}: {reason}" for kind, reason in reasons)

    _annotation_at = writer.created[redaction.record.id]
    node = {
        "@id": node_id("Annotation", f"withheld:{redaction.record.id}"),
        "@type": "uco-core:Annotation",
        "uco-core:statement": _lines(
            f"Redacted export ({', '.join(kinds)}): withheld from record {redaction.record.id}",
            *(
                f"artifact sha256:{a.sha256} ({a.size} bytes, {a.media_type}): its bytes and embedded metadata; "
                + why(a.reasons)
                for a in redaction.artifacts
            ),
            *(f"field {f.path}: its text, shown as [withheld]; " + why(f.reasons) for f in redaction.fields),
        ),
        "uco-core:tag": ["redacted"] + [f"withheld:{k}" for k in kinds],
        "uco-core:objectCreatedTime": date_time(_annotation_at),
        "uco-core:object": [ref(record_node)]
        + [ref(files[a.sha256]) for a in redaction.artifacts if a.sha256 in files],
    }
    writer.emit(node)


def write_event(writer: CaseWriter, event: model.CustodyEvent, shown: Mapping[str, Any]) -> None:
    """A custody event about an exported record: a ProvenanceRecord in the record's chain and the
    action that made it; an export of exported records: an action on them.  *shown* is the event
    as it may travel (only ``seq`` when a redaction withholds it whole)."""
    exported = writer.exported
    subject = event.subject
    if subject in writer.created and (exported is None or subject in exported):
        _custody(writer, event, shown, subject)
    elif event.action == EXPORTED:
        _export(writer, event, shown)


def _custody(writer: CaseWriter, event: model.CustodyEvent, shown: Mapping[str, Any], record_id: str) -> None:
    whole = shown.get("withheld") == "whole"
    seq = event.seq
    key = f"event:{event.hash}" if not whole else f"withheld-event:{seq}"
    record_node = writer.record_id(record_id)
    provenance = node_id("ProvenanceRecord", key)
    if whole:
        description = (
            f"custody event {seq}: withheld whole by the redaction (written before salted commitments, "
            "its hash would confirm a guess at the withheld text)"
        )
    else:
        description = (
            f"custody event {seq}: {shown['action']} at {shown['at']}; event hash {shown['hash']}; "
            f"previous event hash {shown['prev_hash']}"
        )
    writer.emit(
        {
            "@id": provenance,
            "@type": "case-investigation:ProvenanceRecord",
            "case-investigation:exhibitNumber": f"{record_id}/custody/{seq}",
            "case-investigation:rootExhibitNumber": record_id,
            "uco-core:description": description,
            "uco-core:object": [ref(record_node)],
        }
    )
    node: dict[str, Any] = {
        "@id": node_id("InvestigativeAction", key),
        "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": "custody: withheld" if whole else f"custody: {shown['action']}",
        "uco-action:result": [ref(provenance)],
    }
    if not whole:
        at = event.at
        node["uco-action:startTime"] = date_time(at)
        node["uco-action:endTime"] = date_time(at)
        node["uco-action:performer"] = ref(writer.agent(_shown_agent(event, shown), record_id))
    previous = writer.chain.get(record_id)
    node["uco-action:object"] = [ref(previous)] if previous else [ref(record_node)]
    writer.emit(node)
    writer.chain[record_id] = provenance
    writer.events += 1


def _shown_agent(event: model.CustodyEvent, shown: Mapping[str, Any]) -> model.Agent:
    """The event's actor as it may travel (a redaction may have replaced a name)."""
    from evidence_catalog.serialize import structure

    actor = shown.get("actor")
    return structure(actor, model.Agent) if isinstance(actor, dict) else event.actor


def _export(writer: CaseWriter, event: model.CustodyEvent, shown: Mapping[str, Any]) -> None:
    """An earlier export of records this graph holds (a whole-catalog one: those that existed)."""
    details = shown.get("details")
    if not isinstance(details, dict):
        return
    chosen = details.get("record_ids")
    if chosen is None:
        used = [r for r, created in writer.created.items() if created <= event.at]
    else:
        held = set(chosen) if isinstance(chosen, list) else set()
        used = [r for r in writer.created if r in held]
    if not used:
        return
    result = None
    sha, size = details.get("sha256"), details.get("size")
    # An earlier export holds what a redaction withholds now, and is often all text an attacker
    # can write again with a guess in it (a CSV of the record): its SHA-256, its size, and the
    # hash of an event that holds them (one written before salted commitments) would confirm it.
    hidden = writer.withholding
    said = [
        f"export (custody event {event.seq}" + ("" if hidden else f", hash {shown.get('hash')}") + ")",
        isinstance(details.get("format"), str) and f"format: {details['format']}",
        isinstance(details.get("output"), str) and f"written to: {details['output']}",
    ]
    if hidden:
        said.append("its SHA-256 and size withheld: the file holds what this redacted export withholds")
    elif details.get("format") == "bagit":  # its SHA-256 is the tag manifest's, not a file's
        said.append(f"SHA-256 of the bag's tagmanifest-sha256.txt: {sha}")
    elif isinstance(sha, str) and model.is_hex_digest(sha, "sha256") and isinstance(size, int) and size >= 0:
        media_type = _MEDIA.get(str(details.get("format")), "application/octet-stream")
        result = writer.file(model.Artifact(digests=model.Digests(sha256=sha), size=size, media_type=media_type))
    performer = ref(writer.agent(_shown_agent(event, shown), "catalog"))
    # One action per record exported, so that a record's nodes are the same in every graph.
    for record_id in used:
        node: dict[str, Any] = {
            "@id": node_id(
                "InvestigativeAction",
                f"withheld-export:{event.seq}:{record_id}" if hidden else f"event:{event.hash}:{record_id}",
            ),
            "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": EXPORTED,
            "uco-core:description": _lines(*said),
            "uco-action:startTime": date_time(event.at),
            "uco-action:endTime": date_time(event.at),
            "uco-action:performer": performer,
            "uco-action:object": [ref(writer.record_id(record_id))],
        }
        if result is not None:
            node["uco-action:result"] = [ref(result)]
        writer.emit(node)
    writer.events += 1
