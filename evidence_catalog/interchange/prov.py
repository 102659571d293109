"""W3C PROV-JSON of the records' provenance, built with the ``prov`` package.

Mapping (see ``docs/interchange.md``):

* entities: each record (``ec:EvidenceRecord``, a ``prov:Collection`` whose members are its
  artifacts), each artifact (``sha256:<hex>``), each report, each acquisition's source (the URL
  or file it was acquired from) and each export's output;
* activities: acquisitions (captures, additions from disk, ingests), derivations (a merge of
  streams, a conversion) and exports;
* agents: operators (``prov:Person``, organisations) and software with its version
  (``prov:SoftwareAgent``);
* relations: ``wasGeneratedBy`` (artifact or report by its acquisition, export output by its
  export), ``used`` (acquisition its source, derivation its inputs, export its records),
  ``wasDerivedFrom`` (derived artifact from its sources, report from the document it was read
  from), ``wasAttributedTo`` (record and artifact to the operator), ``wasAssociatedWith``
  (activity and its operator and tools), ``actedOnBehalfOf`` (tool for operator),
  ``hadMember`` (record and artifact).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from prov.model import PROV, PROV_TYPE, Namespace, ProvDocument, QualifiedName

from evidence_catalog import model
from evidence_catalog.interchange.importing import UNSIGNED_PROVENANCE_TAG
from evidence_catalog.interchange.text import TextSink
from evidence_catalog.serialize import canonical_json, unstructure

#: The namespace of this library's PROV terms and identifiers.
EC = "urn:evidence-catalog:prov:"
NAMESPACES = {
    "ec": EC,
    "sha256": "urn:evidence-catalog:artifact:sha256:",
    "uuid": "urn:uuid:",
    "agent": "urn:evidence-catalog:agent:",
    "event": "urn:evidence-catalog:custody-event:",
    "source": "urn:evidence-catalog:source:",
    "output": "urn:evidence-catalog:export-output:",
    "derivation": "urn:evidence-catalog:derivation:",
    "checkpoint": "urn:evidence-catalog:checkpoint:",
}


PROV_NAMESPACE_EC = Namespace("ec", EC)


def build_document(records: Iterable[model.EvidenceRecord], events: Iterable[model.CustodyEvent]) -> ProvDocument:
    """The PROV document of *records*; *events* add the exports of those records."""
    builder = _Builder()
    exported: dict[str, dt.datetime] = {}
    for record in records:
        builder.record(record)
        exported[record.id] = record.created_at
    for event in events:
        if event.action == "records.exported":
            builder.export(event, exported)
    return builder.doc


def write_prov(
    stream: TextSink,
    records: Iterable[model.EvidenceRecord],
    events: Iterable[model.CustodyEvent],
    checkpoint: tuple[str, int, str] | None = None,
) -> tuple[int, int]:
    """Write the PROV-JSON document of *records* to *stream*; return (records, export events).
    *checkpoint* -- (signed note, tree size, root hex) of the log -- becomes an entity
    ``ec:Checkpoint`` holding the note, so the provenance can be tied to the signed log."""
    counted = list(records)
    exports = [e for e in events if e.action == "records.exported"]
    document = build_document(counted, exports)
    if checkpoint is not None:
        note, size, root = checkpoint
        document.entity(
            f"checkpoint:{root}",
            {PROV_TYPE: PROV_NAMESPACE_EC["Checkpoint"], "ec:note": note, "ec:treeSize": size, "ec:rootHash": root},
        )
    stream.write(str(document.serialize(format="json", indent=1)))
    stream.write("\n")
    return len(counted), len(exports)


class _Builder:
    def __init__(self) -> None:
        self.doc = ProvDocument()
        for prefix, uri in NAMESPACES.items():
            self.doc.add_namespace(prefix, uri)
        self.agents: dict[str, QualifiedName] = {}
        self.entities: set[str] = set()

    def q(self, prefix: str, local: str) -> QualifiedName:
        namespace = self.doc.get_registered_namespaces()
        for ns in namespace:
            if ns.prefix == prefix:
                return ns[local]
        raise KeyError(prefix)  # pragma: no cover - every prefix is registered

    def agent(self, agent: model.Agent) -> QualifiedName:
        """The PROV agent for *agent* (one per distinct person or software version)."""
        key = canonical_json(unstructure(agent)).decode("utf-8")
        found = self.agents.get(key)
        if found is not None:
            return found
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", agent.name).strip("-")[:40] or "agent"
        identifier = self.q("agent", f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}")
        kind = {
            model.AgentKind.PERSON: PROV["Person"],
            model.AgentKind.ORGANIZATION: PROV["Organization"],
            model.AgentKind.SOFTWARE: PROV["SoftwareAgent"],
        }.get(agent.kind, PROV["Agent"])
        attributes: dict[Any, Any] = {PROV_TYPE: kind, "ec:name": agent.name}
        for name in ("email", "organization", "version", "host"):
            value = getattr(agent, name, None)
            if value is not None:
                attributes[f"ec:{name}"] = value
        self.doc.agent(identifier, attributes)
        self.agents[key] = identifier
        return identifier

    def artifact(self, entry: model.RecordArtifact) -> QualifiedName:
        artifact = entry.artifact
        identifier = self.q("sha256", artifact.sha256)
        if artifact.sha256 not in self.entities:
            self.entities.add(artifact.sha256)
            self.doc.entity(
                identifier,
                {
                    PROV_TYPE: self.q("ec", "Artifact"),
                    "ec:sha256": artifact.sha256,
                    "ec:size": artifact.size,
                    "ec:mediaType": artifact.media_type,
                    "ec:role": entry.role.value,
                },
            )
        return identifier

    def record(self, record: model.EvidenceRecord) -> None:
        record_id = self.q("uuid", record.id)
        attributes: dict[Any, Any] = {
            PROV_TYPE: PROV["Collection"],
            "ec:kind": "EvidenceRecord",
            "ec:createdAt": record.created_at,
        }
        if record.title is not None:
            attributes["ec:title"] = record.title
        if UNSIGNED_PROVENANCE_TAG in record.tags:  # imported without a signed custody log
            attributes["ec:provenance"] = "unsigned"
        self.doc.entity(record_id, attributes)
        self.doc.wasAttributedTo(record_id, self.agent(record.created_by))
        artifacts = {entry.artifact.sha256: self.artifact(entry) for entry in record.artifacts}
        for identifier in artifacts.values():
            self.doc.hadMember(record_id, identifier)
        for acquisition in record.acquisitions:
            self.acquisition(acquisition, artifacts)
        for entry in record.artifacts:
            if entry.derived_from:
                self.derivation(entry, artifacts)
        for report in record.reports:
            self.report(report, record, artifacts)

    def acquisition(self, acquisition: model.Acquisition, artifacts: dict[str, QualifiedName]) -> None:
        identifier = self.q("uuid", acquisition.id)
        attributes: dict[Any, Any] = {
            PROV_TYPE: self.q("ec", "Acquisition"),
            "ec:method": acquisition.method.value,
            "ec:outcome": acquisition.outcome.value,
        }
        for name, key in (
            ("source_url", "ec:sourceUrl"),
            ("final_url", "ec:finalUrl"),
            ("platform", "ec:platform"),
            ("platform_id", "ec:platformId"),
            ("extractor", "ec:extractor"),
            ("http_status", "ec:httpStatus"),
            ("error", "ec:error"),
        ):
            value = getattr(acquisition, name)
            if value is not None:
                attributes[key] = value
        self.doc.activity(identifier, acquisition.started_at, acquisition.ended_at, attributes)
        operator = self.agent(acquisition.operator)
        self.doc.wasAssociatedWith(identifier, operator)
        for tool in acquisition.tools:
            software = self.agent(tool)
            self.doc.wasAssociatedWith(identifier, software)
            self.doc.actedOnBehalfOf(software, operator, identifier)
        source_attributes: dict[Any, Any] = {PROV_TYPE: self.q("ec", "Source")}
        if acquisition.source_url is not None:
            source_attributes["ec:url"] = acquisition.source_url
        if acquisition.original_path is not None:
            source_attributes["ec:originalPath"] = acquisition.original_path
        if len(source_attributes) > 1:
            source = self.q("source", acquisition.id)
            self.doc.entity(source, source_attributes)
            self.doc.used(identifier, source, acquisition.started_at)
        for sha in (acquisition.artifact_sha256, *acquisition.other_artifacts):
            if sha is not None and sha in artifacts:
                self.doc.wasGeneratedBy(artifacts[sha], identifier, acquisition.ended_at)
                self.doc.wasAttributedTo(artifacts[sha], operator)

    def derivation(self, entry: model.RecordArtifact, artifacts: dict[str, QualifiedName]) -> None:
        derived = artifacts[entry.artifact.sha256]
        activity = self.q("derivation", entry.artifact.sha256)
        attributes: dict[Any, Any] = {PROV_TYPE: self.q("ec", "Derivation")}
        if entry.derivation is not None:
            attributes["ec:description"] = entry.derivation
        self.doc.activity(activity, other_attributes=attributes)
        self.doc.wasGeneratedBy(derived, activity)
        for source in entry.derived_from:
            if source in artifacts:
                self.doc.used(activity, artifacts[source])
                self.doc.wasDerivedFrom(derived, artifacts[source], activity)

    def report(self, report: model.Report, record: model.EvidenceRecord, artifacts: dict[str, QualifiedName]) -> None:
        identifier = self.q("uuid", report.id)
        attributes: dict[Any, Any] = {PROV_TYPE: self.q("ec", "Report"), "ec:text": report.text}
        for name, key in (
            ("author", "ec:author"),
            ("url", "ec:url"),
            ("post_id", "ec:postId"),
            ("published_at", "ec:publishedAt"),
        ):
            value = getattr(report, name)
            if value is not None:
                attributes[key] = value
        if report.source.platform is not None:
            attributes["ec:platform"] = report.source.platform
        self.doc.entity(identifier, attributes)
        self.doc.hadMember(self.q("uuid", record.id), identifier)
        document = report.document_sha256
        if document is not None and document in artifacts:
            self.doc.wasDerivedFrom(identifier, artifacts[document])
            for acquisition in record.acquisitions:
                if acquisition.artifact_sha256 == document:
                    self.doc.wasGeneratedBy(identifier, self.q("uuid", acquisition.id), acquisition.ended_at)
                    break

    def export(self, event: model.CustodyEvent, exported: dict[str, dt.datetime]) -> None:
        """An earlier export: it used those of these records that it exported (a whole-catalog
        export: those that existed then)."""
        details = event.details
        chosen = details.get("record_ids")
        if chosen is None:
            used = {r for r, created in exported.items() if created <= event.at}
        else:
            used = {r for r in chosen if isinstance(r, str)} & exported.keys()
        if not used:
            return
        activity = self.q("event", event.hash)
        attributes: dict[Any, Any] = {PROV_TYPE: self.q("ec", "Export"), "ec:sequence": event.seq}
        for key in ("format", "output"):
            if isinstance(details.get(key), str):
                attributes[f"ec:{key}"] = details[key]
        self.doc.activity(activity, event.at, event.at, attributes)
        self.doc.wasAssociatedWith(activity, self.agent(event.actor))
        for record_id in sorted(used):
            self.doc.used(activity, self.q("uuid", record_id))
        sha = details.get("sha256")
        if isinstance(sha, str) and model.is_hex_digest(sha, "sha256"):
            output = self.q("output", sha)
            self.doc.entity(output, {PROV_TYPE: self.q("ec", "ExportOutput"), "ec:sha256": sha})
            self.doc.wasGeneratedBy(output, activity, event.at)
