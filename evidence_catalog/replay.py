"""Replaying the custody log: what each event's ``details`` hold, and the records they rebuild.

Events carry, in ``details``, the full documents of what they added (record, artifact,
acquisition, link, note, tags, claims and assessments, imported records).  The ``*_details``
functions write those details where an operation logs its event; :func:`replay` (one event at a
time: :class:`Replayer`) rebuilds every record from the log alone, so that ``verify`` and an
import can compare it with what the database or an export says.  Hashing, linking and checking
the events themselves is :mod:`evidence_catalog.custody`'s.

An event that cannot be applied raises a plain ValueError, TypeError or KeyError here, never
seen outside :func:`replay`: it names the exception's class in the problem it reports ("custody
event 8 cannot be replayed (KeyError: 'artifact')"), as ``verify`` prints it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.custody import Action
from evidence_catalog.errors import EvidenceError
from evidence_catalog.model import Agent, CustodyEvent, EvidenceRecord
from evidence_catalog.serialize import structure, unstructure


@attrs.define
class _RecordState:
    """A record being rebuilt from its events."""

    id: str
    created_at: dt.datetime
    created_by: Agent
    title: str | None
    artifacts: list[model.RecordArtifact] = attrs.field(factory=list)
    acquisitions: list[model.Acquisition] = attrs.field(factory=list)
    tags: set[str] = attrs.field(factory=set)
    notes: list[model.Note] = attrs.field(factory=list)
    reports: list[model.Report] = attrs.field(factory=list)
    flags: list[model.SensitivityFlag] = attrs.field(factory=list)
    relations: list[model.Relation] = attrs.field(factory=list)
    claims: list[model.Claim] = attrs.field(factory=list)
    assessments: list[model.Assessment] = attrs.field(factory=list)

    @classmethod
    def of(cls, source: EvidenceRecord | _RecordState) -> _RecordState:
        """A state holding copies of the lists of *source*: a record (as imported), or a state
        to change so that an event applies whole or not at all."""
        return cls(
            id=source.id,
            created_at=source.created_at,
            created_by=source.created_by,
            title=source.title,
            artifacts=list(source.artifacts),
            acquisitions=list(source.acquisitions),
            tags=set(source.tags),
            notes=list(source.notes),
            reports=list(source.reports),
            flags=list(source.flags),
            relations=list(source.relations),
            claims=list(source.claims),
            assessments=list(source.assessments),
        )

    def freeze(self) -> EvidenceRecord:
        return EvidenceRecord(
            id=self.id,
            created_at=self.created_at,
            created_by=self.created_by,
            title=self.title,
            artifacts=self.artifacts,
            acquisitions=self.acquisitions,
            tags=self.tags,
            notes=self.notes,
            reports=self.reports,
            flags=self.flags,
            relations=self.relations,
            claims=self.claims,
            assessments=self.assessments,
        )


@attrs.frozen
class Replay:
    """Records rebuilt from a custody log, and the events that could not be applied."""

    records: dict[str, EvidenceRecord]
    #: (sequence number, reason) of each event whose details could not be applied.
    problems: tuple[tuple[int, str], ...] = ()
    #: Of each record, the sequence number of the event that logged each of its acquisitions,
    #: in the order of its acquisitions (what the ``acquisition`` rows' ``custody_seq`` say).
    logged: dict[str, list[int]] = attrs.field(factory=dict)


def replay(events: Iterable[CustodyEvent]) -> Replay:
    """Rebuild every record from the custody log alone, in log order.

    An event that cannot be applied (malformed details, a record never created) is skipped and
    reported in :attr:`Replay.problems`; the rest of the log is still replayed.
    """
    replayer = Replayer()
    for event in events:
        replayer.apply(event)
    return replayer.result()


class Replayer:
    """:func:`replay`, one event at a time: :meth:`apply` each event in log order, then take
    :meth:`result` (for a caller that reads the log once for several checks)."""

    def __init__(self) -> None:
        self._states: dict[str, _RecordState] = {}
        self._problems: list[tuple[int, str]] = []
        self._created: dict[str, int] = {}  # the event that made each record, to name when it cannot be rebuilt
        self._logged: dict[str, list[int]] = {}  # see Replay.logged

    def apply(self, event: CustodyEvent) -> None:
        """Apply the next event (an event that cannot be applied is a problem, skipped)."""
        apply = _APPLY.get(event.action)
        if apply is None:
            return
        states = self._states
        state = states.get(event.subject)
        fresh, held = state is None, 0 if state is None else len(state.acquisitions)
        try:
            apply(states, event)
        except (EvidenceError, KeyError, TypeError, ValueError) as exc:
            self._problems.append((event.seq, f"{type(exc).__name__}: {exc}"))
            return  # (an event applies whole or not at all)
        state = states.get(event.subject)
        if state is None:
            return
        if fresh:
            self._created[event.subject] = event.seq
        if len(state.acquisitions) > held:
            self._logged.setdefault(event.subject, []).extend([event.seq] * (len(state.acquisitions) - held))

    def result(self) -> Replay:
        """The records rebuilt from the events applied so far, and the problems."""
        problems = list(self._problems)
        records: dict[str, EvidenceRecord] = {}
        for record_id, state in self._states.items():
            try:
                records[record_id] = state.freeze()
            except (EvidenceError, TypeError, ValueError) as exc:  # e.g. a record id that is no id
                problems.append((self._created.get(record_id, 0), f"{type(exc).__name__}: {exc}"))
        return Replay(records=records, problems=tuple(problems), logged=self._logged)


def added_details(
    *,
    record: EvidenceRecord | None,
    artifact: model.Artifact,
    acquisition: model.Acquisition,
    tags: Iterable[str],
    note: model.Note | None,
) -> dict[str, Any]:
    """The ``details`` of an ``artifact.added`` event: everything needed to replay it.

    *record* is the new record's own fields when the add created it, else ``None``.
    """
    return {
        **_acquired_details(record, acquisition, tags, note),
        "sha256": artifact.sha256,
        "artifact": unstructure(artifact),
    }


def captured_details(
    *,
    record: EvidenceRecord | None,
    entries: Iterable[model.RecordArtifact],
    acquisition: model.Acquisition,
    tags: Iterable[str],
    note: model.Note | None,
) -> dict[str, Any]:
    """The ``details`` of a ``media.captured`` event: every artifact the capture stored (with
    its role, sources and earlier version), the acquisition, tags and note."""
    return {
        **_acquired_details(record, acquisition, tags, note),
        "sha256": acquisition.artifact_sha256,
        "artifacts": [unstructure(entry) for entry in entries],
    }


def _acquired_details(
    record: EvidenceRecord | None, acquisition: model.Acquisition, tags: Iterable[str], note: model.Note | None
) -> dict[str, Any]:
    """What every event that acquires bytes for a record holds: the record's own fields when the
    event created it, the acquisition, tags and note."""
    return {
        "record_created": record is not None,
        "record": None
        if record is None
        else {
            "created_at": unstructure(record.created_at),
            "created_by": unstructure(record.created_by),
            "title": record.title,
        },
        "acquisition": unstructure(acquisition),
        "tags": sorted(set(tags)),
        "note": None if note is None else unstructure(note),
    }


def failed_details(acquisition: model.Acquisition) -> dict[str, Any]:
    """The ``details`` of a ``capture.failed`` event: the failed acquisition (URL, times, error)."""
    return {"acquisition": unstructure(acquisition)}


def _apply_added(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``artifact.added`` event; *states* changes only if the whole event applies."""
    details = event.details
    artifact = structure(details["artifact"], model.Artifact)
    if artifact.sha256 != details["sha256"]:
        raise ValueError("artifact document and sha256 disagree")
    _apply_acquired(states, event, [model.RecordArtifact(artifact=artifact)])


def _apply_captured(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``media.captured`` event."""
    entries = [structure(entry, model.RecordArtifact) for entry in event.details["artifacts"]]
    if not entries or entries[0].artifact.sha256 != event.details["sha256"]:
        raise ValueError("the first artifact of a capture must be its main artifact (sha256)")
    _apply_acquired(states, event, entries)


def _apply_analyzed(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``media.analyzed`` event: the analysis document and what it derived join a
    record that exists (a derivation never creates a record), with the acquisition (method
    ``derived``) that names the tools and parameters."""
    if event.details["record_created"] is not False:
        raise ValueError("an analysis never creates a record")
    acquisition = structure(event.details["acquisition"], model.Acquisition)
    if acquisition.method is not model.AcquisitionMethod.DERIVED:
        raise ValueError("an analysis is an acquisition of method derived")
    _apply_captured(states, event)


def _apply_ingested(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``report.ingested`` event: the source document and its acquisition, like a
    capture, and the report read from it."""
    report = structure(event.details["report"], model.Report)
    _apply_captured(states, event)
    states[event.subject].reports.append(report)


def _apply_failed(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``capture.failed`` event: a failed attempt on a record is part of its history."""
    acquisition = structure(event.details["acquisition"], model.Acquisition)
    if acquisition.outcome is not model.Outcome.FAILED:
        raise ValueError("a capture.failed event must carry a failed acquisition")
    if event.subject == "catalog":
        return
    if event.subject not in states:
        raise ValueError(f"record {event.subject} was never created in this log")
    states[event.subject].acquisitions.append(acquisition)


def linked_details(
    *, report_id: str, from_record: str, document: model.RecordArtifact | None, note: model.Note | None
) -> dict[str, Any]:
    """The ``details`` of a ``report.linked`` event (its subject is the record the report moves
    to): the report, the record it leaves, its source document when the new record did not hold
    it yet, and the operator's note."""
    return {
        "report_id": report_id,
        "from_record": from_record,
        "document": None if document is None else unstructure(document),
        "note": None if note is None else unstructure(note),
    }


def _apply_linked(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``report.linked`` event: the report leaves its record for the subject record,
    which also gets the report's source document (the report's lines are in it)."""
    details = event.details
    if details["from_record"] not in states or event.subject not in states:
        raise ValueError(f"record {details['from_record']} or {event.subject} was never created in this log")
    source, target = states[details["from_record"]], states[event.subject]
    position = next((n for n, r in enumerate(source.reports) if r.id == details["report_id"]), None)
    if position is None or source is target:
        raise ValueError(f"report {details['report_id']} is not on record {details['from_record']}")
    document = None if details["document"] is None else structure(details["document"], model.RecordArtifact)
    note = None if details["note"] is None else structure(details["note"], model.Note)
    target.reports.append(source.reports.pop(position))
    if document is not None and all(held.artifact.sha256 != document.artifact.sha256 for held in target.artifacts):
        target.artifacts.append(document)
    if note is not None:
        target.notes.append(note)


def _apply_acquired(states: dict[str, _RecordState], event: CustodyEvent, entries: list[model.RecordArtifact]) -> None:
    details = event.details
    if not isinstance(details["record_created"], bool):
        raise TypeError("record_created must be true or false")
    if details["record_created"]:
        if event.subject in states:
            raise ValueError(f"record {event.subject} is created twice")
        created = details["record"]
        state = _RecordState(
            id=event.subject,
            created_at=structure(created["created_at"], dt.datetime),
            created_by=structure(created["created_by"], Agent),
            title=created["title"],
        )
    elif event.subject in states:
        state = _RecordState.of(states[event.subject])
    else:
        raise ValueError(f"record {event.subject} was never created in this log")
    for entry in entries:  # bytes already on the record keep the entry they were first given
        if all(held.artifact.sha256 != entry.artifact.sha256 for held in state.artifacts):
            state.artifacts.append(entry)
    state.acquisitions.append(structure(details["acquisition"], model.Acquisition))
    state.tags.update(details["tags"])
    if details["note"] is not None:
        state.notes.append(structure(details["note"], model.Note))
    states[event.subject] = state


#: The annotation events: each puts one part on its subject record, under this member of
#: ``details``, into this list of the record.
ANNOTATIONS: dict[str, tuple[str, type[Any], str]] = {
    Action.CLAIM_ADDED: ("claim", model.Claim, "claims"),
    Action.ASSESSMENT_ADDED: ("assessment", model.Assessment, "assessments"),
    Action.RELATION_ADDED: ("relation", model.Relation, "relations"),
    Action.FLAG_ADDED: ("flag", model.SensitivityFlag, "flags"),
    Action.NOTE_ADDED: ("note", model.Note, "notes"),
}


def annotation_details(member: str, part: Any) -> dict[str, Any]:
    """The ``details`` of an annotation event: the part, whole."""
    return {member: unstructure(part)}


def _apply_annotation(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one claim, assessment, relation, flag or note event to its subject record."""
    member, kind, field = ANNOTATIONS[event.action]
    if event.subject not in states:
        raise ValueError(f"record {event.subject} was never created in this log")
    part = structure(event.details[member], kind)
    getattr(states[event.subject], field).append(part)


def _apply_tags(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``tags.added`` event."""
    if event.subject not in states:
        raise ValueError(f"record {event.subject} was never created in this log")
    tags = event.details["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TypeError("tags must be a list of text")
    states[event.subject].tags.update(tags)


def imported_details(
    record: EvidenceRecord, source: Mapping[str, Any], history: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``details`` of a ``record.imported`` event: the whole record as it came, where it
    came from (the bag, its identifier and Payload-Oxum), and the custody events that came with
    it, verbatim (their own hashes still check)."""
    return {"record": unstructure(record), "source": dict(source), "history": [dict(e) for e in history]}


def _apply_imported(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``record.imported`` event: the record starts as it came."""
    if event.subject in states:
        raise ValueError(f"record {event.subject} exists already in this log")
    record = structure(event.details["record"], EvidenceRecord)
    if record.id != event.subject:
        raise ValueError("the imported record is not the event's subject")
    states[record.id] = _RecordState.of(record)


_APPLY = {
    Action.ARTIFACT_ADDED: _apply_added,
    Action.MEDIA_CAPTURED: _apply_captured,
    Action.MEDIA_ANALYZED: _apply_analyzed,
    Action.CAPTURE_FAILED: _apply_failed,
    Action.REPORT_INGESTED: _apply_ingested,
    Action.REPORT_LINKED: _apply_linked,
    Action.TAGS_ADDED: _apply_tags,
    Action.RECORD_IMPORTED: _apply_imported,
    **dict.fromkeys(ANNOTATIONS, _apply_annotation),
}
