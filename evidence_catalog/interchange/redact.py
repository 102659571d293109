"""What a redacted export withholds, and the withholding itself.  Pure: no I/O.

A :class:`~evidence_catalog.model.SensitivityFlag` names what it is about: artifacts (by
SHA-256), fields (by field path), or, naming neither, every artifact of its record.  Redacting a
record for a set of flag kinds gives the record as it may travel -- each flagged field's text
replaced by :data:`WITHHELD_MARK` wherever it occurs in the record, the embedded metadata of each
withheld artifact left out (it can hold a position or a device owner) -- and the list of what was
withheld and why.  Artifacts stay listed with their SHA-256 and size, so that a recipient can
check them if they are handed over later; the values of withheld fields are not hashed, since a
short name could be found from its hash by trying names.

Field paths
    ``/``-separated steps from the record: member names; after a list of the record's own parts
    (``acquisitions``, ``reports``, ``notes``, ``claims``, ``assessments``) the part's id, so a
    path keeps naming the same part whatever is added later; inside a part, list positions
    (``reports/<id>/link_cards/0/title``).  A path ends at a text value.
"""

from __future__ import annotations

import contextlib
import html
import json
import urllib.parse
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.custody import Action, committed_values
from evidence_catalog.errors import EvidenceError, InputError
from evidence_catalog.serialize import structure, unstructure

#: What a withheld text is replaced by.
WITHHELD_MARK = "[withheld]"
#: Withheld texts at least this long are also replaced where they are part of a longer text.
MIN_INNER_LENGTH = 4
#: The record's lists whose members are named by their id in a field path.
PART_LISTS = ("acquisitions", "reports", "notes", "claims", "assessments")
#: Members that say what something *is* rather than hold what a source said: never rewritten.
_STRUCTURAL = frozenset(
    {"id", "schema", "sha256", "md5", "sha1", "sha512", "blake2b", "kind", "role", "method", "outcome", "status"}
    | {"precision", "confidence", "media_type", "action", "subject", "hash", "prev_hash", "category"}
    | {"target_id", "supersedes", "source_report_id", "artifact_sha256", "version_of", "identity"}
    | {"salt"}  # a custody event's secret
)


class FieldPathError(InputError, ValueError):
    """A field path that does not name a text value of the record, or that cannot be withheld
    from it.

    It is also a :class:`ValueError`, which is what it was before."""


@attrs.frozen
class WithheldArtifact:
    """An artifact a redacted export leaves out."""

    record_id: str
    sha256: str
    size: int
    media_type: str
    #: ``(flag kind, reason)`` of each flag that withholds it.
    reasons: tuple[tuple[str, str], ...]


@attrs.frozen
class WithheldField:
    """A field whose text a redacted export replaces by :data:`WITHHELD_MARK`."""

    record_id: str
    path: str
    reasons: tuple[tuple[str, str], ...]


@attrs.frozen
class Redaction:
    """A record as it may travel, and what was withheld from it."""

    record: model.EvidenceRecord
    artifacts: tuple[WithheldArtifact, ...] = ()
    fields: tuple[WithheldField, ...] = ()
    #: The withheld texts (to find them again in the record's custody events).
    values: frozenset[str] = frozenset()

    @property
    def withheld_sha256(self) -> frozenset[str]:
        """SHA-256 of every withheld artifact."""
        return frozenset(a.sha256 for a in self.artifacts)

    @property
    def changed(self) -> bool:
        """Whether anything was withheld."""
        return bool(self.artifacts or self.fields)


def resolve(document: Mapping[str, Any], path: str) -> tuple[Any, str | int]:
    """The container and key of the text value *path* names in a record *document*;
    :class:`FieldPathError` saying which step fails."""
    steps = path.split("/")
    node: Any = document
    for depth, step in enumerate(steps):
        if isinstance(node, dict):
            if step not in node:
                raise FieldPathError(f"field path {path!r}: no member {step!r}")
            key: str | int = step
        elif isinstance(node, list):
            key = _list_key(node, step, path, top_level=depth == 1 and steps[0] in PART_LISTS)
        else:
            raise FieldPathError(f"field path {path!r}: {'/'.join(steps[:depth])!r} holds no members")
        if depth == 0 and step not in PART_LISTS and isinstance(node[key], list):
            raise FieldPathError(
                f"field path {path!r}: {step!r} cannot be named by a path"
                + ("; flag artifacts by their SHA-256" if step == "artifacts" else "")
            )
        if depth == len(steps) - 1:
            if not isinstance(node[key], str):
                raise FieldPathError(f"field path {path!r} names no text value")
            if step in _STRUCTURAL:
                raise FieldPathError(f"field path {path!r} names an identifier or code, which cannot be withheld")
            return node, key
        node = node[key]
    raise FieldPathError(f"field path {path!r} is empty")  # pragma: no cover - split never gives []


def _list_key(node: list[Any], step: str, path: str, *, top_level: bool) -> int:
    if top_level:
        for index, item in enumerate(node):
            if isinstance(item, dict) and item.get("id") == step:
                return index
        raise FieldPathError(f"field path {path!r}: no part with id {step}")
    if not step.isdigit() or int(step) >= len(node):
        raise FieldPathError(f"field path {path!r}: {step!r} is not a position in the list")
    return int(step)


def flagged(record: model.EvidenceRecord, kinds: Collection[str] | None = None) -> list[model.SensitivityFlag]:
    """The record's flags of these kinds (all kinds when ``None``)."""
    return [flag for flag in record.flags if kinds is None or flag.kind.value in kinds]


def redact(record: model.EvidenceRecord, kinds: Collection[str] | None = None) -> Redaction:
    """The record with what its flags of *kinds* name withheld.

    Raises :class:`FieldPathError` when a flag names a field the record does not have, or when
    withholding it would leave a record that is not valid (a value with a fixed format).
    """
    flags = flagged(record, kinds)
    if not flags:
        return Redaction(record=record)
    artifact_reasons: dict[str, list[tuple[str, str]]] = {}
    field_reasons: dict[str, list[tuple[str, str]]] = {}
    for flag in flags:
        reason = (flag.kind.value, flag.reason)
        targets = flag.artifacts if flag.artifacts or flag.fields else [ra.artifact.sha256 for ra in record.artifacts]
        for sha in targets:
            artifact_reasons.setdefault(sha, []).append(reason)
        for path in flag.fields:
            field_reasons.setdefault(path, []).append(reason)
            steps = path.split("/")
            if steps[0] == "reports" and len(steps) > 2:  # the document it was read from holds it too
                report = next((r for r in record.reports if r.id == steps[1]), None)
                if report is not None and report.document_sha256 is not None:
                    artifact_reasons.setdefault(report.document_sha256, []).append(reason)
    _withhold_derived(record, artifact_reasons)
    document = json.loads(json.dumps(unstructure(record)))  # tuples (header pairs) become lists
    values: set[str] = set()
    for path in field_reasons:
        container, key = resolve(document, path)
        values.add(container[key])
    for path in field_reasons:
        container, key = resolve(document, path)
        container[key] = WITHHELD_MARK
    held = {ra.artifact.sha256 for ra in record.artifacts}
    withheld = {sha for sha in artifact_reasons if sha in held}
    document = redact_document(document, values, withheld)[0]
    return _redaction(
        record,
        document,
        {sha: tuple(artifact_reasons[sha]) for sha in withheld},
        tuple(WithheldField(record_id=record.id, path=path, reasons=tuple(r)) for path, r in field_reasons.items()),
        frozenset(values),
        f"withholding {', '.join(sorted(field_reasons))}",
    )


def _withhold_derived(record: model.EvidenceRecord, reasons: dict[str, Any]) -> None:
    """Add to *reasons* (SHA-256 -> reasons) every artifact of *record* made from one withheld,
    at any remove: a keyframe or contact sheet shows what the withheld video shows, and an
    analysis's perceptual hashes would find the withheld picture elsewhere.  A web archive holds
    every byte its capture received: it is withheld with any artifact of the same acquisition."""
    archives = {e.artifact.sha256 for e in record.artifacts if e.role is model.ArtifactRole.WEB_ARCHIVE}
    changed = True
    while changed:
        changed = False
        for acquisition in record.acquisitions if archives else ():
            together = [s for s in (acquisition.artifact_sha256, *acquisition.other_artifacts) if s is not None]
            source = next((s for s in together if s in reasons and s not in archives), None)
            for sha in together:
                if source is not None and sha in archives and sha not in reasons:
                    reasons[sha] = [
                        (kind, f"it is a web archive that holds withheld artifact {source}: {why}")
                        for kind, why in reasons[source]
                    ]
                    changed = True
        for entry in record.artifacts:
            sha = entry.artifact.sha256
            if sha in reasons:
                continue
            source = next((s for s in entry.derived_from if s in reasons), None)
            if source is not None:
                reasons[sha] = [
                    (kind, f"it is made from withheld artifact {source}: {why}") for kind, why in reasons[source]
                ]
                changed = True


def _redaction(
    record: model.EvidenceRecord,
    document: dict[str, Any],
    withheld: Mapping[str, tuple[tuple[str, str], ...]],
    fields: tuple[WithheldField, ...],
    values: frozenset[str],
    what: str,
) -> Redaction:
    """The :class:`Redaction` of *record* whose redacted *document* is given, withholding the
    artifacts in *withheld* (SHA-256 -> reasons), in the record's order."""
    try:
        redacted = structure(document, model.EvidenceRecord)
    except EvidenceError as exc:  # the model refuses the redacted value (a fixed format)
        raise FieldPathError(f"{what} leaves an invalid record: {exc}") from exc
    return Redaction(
        record=redacted,
        artifacts=tuple(
            WithheldArtifact(
                record_id=record.id,
                sha256=entry.artifact.sha256,
                size=entry.artifact.size,
                media_type=entry.artifact.media_type,
                reasons=withheld[entry.artifact.sha256],
            )
            for entry in record.artifacts
            if entry.artifact.sha256 in withheld
        ),
        fields=fields,
        values=values,
    )


def redact_document(document: Any, values: Collection[str], withheld: Collection[str]) -> tuple[Any, bool]:
    """A copy of a JSON *document* (a record, a custody event) with every text equal to one of
    *values* replaced by :data:`WITHHELD_MARK` (identifiers and codes excepted) and the embedded
    metadata of every artifact in *withheld* left out; and whether anything changed.  When
    anything is withheld, an earlier export's custody event shows no digest of what it wrote
    (:func:`export_digest_pointers`), as a report shows no identity that hashes a withheld text."""
    changed = False
    # A withheld text inside a longer one (a title in a file's path) goes too; very short texts
    # only where they are the whole value, or every "a" in the record would be withheld.
    inner = [v for v in values if len(v) >= MIN_INNER_LENGTH]

    def walk(node: Any, key: str | None) -> Any:
        nonlocal changed
        if isinstance(node, str):
            if key in _STRUCTURAL or (key is not None and (key == "at" or key.endswith("_at"))):
                return node
            if node in values:
                changed = True
                return WITHHELD_MARK
            shown = _withhold_inner(node, inner)
            changed = changed or shown != node
            return shown
        if isinstance(node, (list, tuple)):
            return [walk(item, key) for item in node]
        if isinstance(node, dict):
            copy = {k: walk(v, k) for k, v in node.items()}
            digests = copy.get("digests")
            if isinstance(digests, dict) and digests.get("sha256") in withheld and copy.get("metadata") is not None:
                copy["metadata"] = None
                changed = True
            identity = copy.get("identity")
            if isinstance(identity, str) and identity.startswith("sha256:") and _holds_mark(copy):
                # A report's identity hashes its feed, author and text: with one of them
                # withheld, it would confirm a guess at it.
                copy["identity"] = WITHHELD_MARK
                changed = True
            return copy
        return node

    shown = walk(document, None)
    if (values or withheld) and isinstance(document, Mapping):
        for pointer in export_digest_pointers(document):
            _mark(shown, pointer)
            changed = True
    return shown, changed


def _withhold_inner(text: str, values: Iterable[str]) -> str:
    """*text* with every stretch that is part of an occurrence of one of *values* replaced by
    :data:`WITHHELD_MARK`, overlapping and adjacent occurrences by one mark: whatever order the
    values come in, the same text, and no character of a withheld value left beside a mark (one
    value replaced first could break up another's occurrence and leave part of it shown)."""
    spans: list[tuple[int, int]] = []
    for value in values:
        start = text.find(value)
        while start >= 0:
            spans.append((start, start + len(value)))
            start = text.find(value, start + 1)
    if not spans:
        return text
    parts: list[str] = []
    shown_to = 0
    end = -1
    for begin, stop in sorted(spans):
        if begin >= end:  # a new stretch: what lies before it is shown
            if end >= 0:
                parts.append(WITHHELD_MARK)
            parts.append(text[shown_to:begin])
            end = stop
        else:
            end = max(end, stop)
        shown_to = end
    parts.append(WITHHELD_MARK)
    parts.append(text[shown_to:])
    return "".join(parts)


def _holds_mark(node: Any) -> bool:
    """Whether a text in *node* holds :data:`WITHHELD_MARK`."""
    if isinstance(node, str):
        return WITHHELD_MARK in node
    if isinstance(node, (list, tuple)):
        return any(_holds_mark(item) for item in node)
    if isinstance(node, dict):
        return any(_holds_mark(value) for key, value in node.items() if key != "identity")
    return False


def check_flag(record: model.EvidenceRecord, flag: model.SensitivityFlag) -> None:
    """Refuse (``ValueError`` naming the problem) a flag that names an artifact the record does
    not hold, or a field that cannot be withheld from it."""
    held = {ra.artifact.sha256 for ra in record.artifacts}
    for sha in flag.artifacts:
        if sha not in held:
            raise ValueError(f"record {record.id} holds no artifact {sha}")
    redact(attrs.evolve(record, flags=(flag,)))


def part_ids_named(flags: Iterable[model.SensitivityFlag]) -> set[str]:
    """The ids of the record's parts that flags name in field paths."""
    return {path.split("/")[1] for flag in flags for path in flag.fields if path.split("/")[0] in PART_LISTS}


@attrs.frozen
class RedactionPlan:
    """What a redacted export withholds across all its records: an artifact one record's flag
    withholds is withheld wherever it is in the export (another record may hold the same bytes),
    and a withheld text wherever it appears (a report's text is also in the custody events of the
    record it first came to; an artifact's bytes may hold it too: :meth:`with_carriers`)."""

    kinds: frozenset[str]
    #: SHA-256 -> (flag kind, reason) of each flag that withholds it.
    artifacts: Mapping[str, tuple[tuple[str, str], ...]]
    values: frozenset[str]
    #: SHA-256 -> (flag kind, reason) to give where a record that does not flag the artifact
    #: holds it: why it is withheld there too (shared bytes, or bytes that hold a withheld text).
    elsewhere: Mapping[str, tuple[tuple[str, str], ...]] = attrs.field(factory=dict)
    #: Each withheld text -> (record id, field path, flag kind) of the fields that hold it.
    sources: Mapping[str, tuple[tuple[str, str, str], ...]] = attrs.field(factory=dict)

    def with_carriers(self, found: Mapping[str, Collection[str]]) -> RedactionPlan:
        """This plan, also withholding each artifact in *found* (SHA-256 -> the withheld texts its
        bytes hold), with the reason: which record's field it holds the text of."""
        artifacts = dict(self.artifacts)
        elsewhere = dict(self.elsewhere)
        for sha, texts in found.items():
            if sha in artifacts or not texts:
                continue
            reasons = tuple(
                dict.fromkeys(
                    (kind, f"its bytes hold the withheld text of {path} of record {record_id}")
                    for text in sorted(texts)
                    for record_id, path, kind in self.sources.get(text, ())
                )
            )
            artifacts[sha] = reasons
            elsewhere[sha] = reasons
        return attrs.evolve(self, artifacts=artifacts, elsewhere=elsewhere)


def plan_redaction(records: Iterable[model.EvidenceRecord], kinds: Collection[str]) -> RedactionPlan:
    """The plan for redacting *records* for flags of *kinds* (:class:`FieldPathError` as
    :func:`redact`)."""
    artifacts: dict[str, list[tuple[str, str]]] = {}
    elsewhere: dict[str, list[tuple[str, str]]] = {}
    values: set[str] = set()
    sources: dict[str, list[tuple[str, str, str]]] = {}
    for record in records:
        redaction = redact(record, kinds)
        for item in redaction.artifacts:
            reasons = artifacts.setdefault(item.sha256, [])
            reasons.extend(r for r in item.reasons if r not in reasons)
            shared = elsewhere.setdefault(item.sha256, [])
            shared.extend(
                (kind, f"the same bytes are withheld on record {record.id}: {reason}") for kind, reason in item.reasons
            )
        values |= redaction.values
        if redaction.fields:
            document = json.loads(json.dumps(unstructure(record)))
            for field in redaction.fields:
                container, key = resolve(document, field.path)
                for kind, _ in field.reasons:
                    sources.setdefault(container[key], []).append((record.id, field.path, kind))
    return RedactionPlan(
        kinds=frozenset(kinds),
        artifacts={sha: tuple(reasons) for sha, reasons in artifacts.items()},
        values=frozenset(values),
        elsewhere={sha: tuple(dict.fromkeys(reasons)) for sha, reasons in elsewhere.items()},
        sources={text: tuple(dict.fromkeys(found)) for text, found in sources.items()},
    )


def needles(value: str) -> list[bytes]:
    """The byte strings that carry *value* in a file: its UTF-8, its forms inside a JSON string
    (escaped, with or without non-ASCII escapes, with ``/`` escaped as ``\\/``), HTML-escaped,
    and percent-encoded.  A text shorter than :data:`MIN_INNER_LENGTH` is looked for only as a
    whole JSON string (quoted), or every file with an "a" in it would be withheld."""
    forms = {json.dumps(value, ensure_ascii=False), json.dumps(value)}
    forms |= {form.replace("/", "\\/") for form in forms}
    if len(value) >= MIN_INNER_LENGTH:  # also as HTML and URLs write it (a page, a link's query)
        forms = {form[1:-1] for form in forms} | {value, html.escape(value), html.escape(value, quote=False)}
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate has no percent-encoding
            forms |= {urllib.parse.quote(value, safe=""), urllib.parse.quote(value), urllib.parse.quote_plus(value)}
    found = []
    for form in sorted(forms):
        try:
            found.append(form.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: no file can hold it as UTF-8
            continue
    return found


def apply_plan(record: model.EvidenceRecord, plan: RedactionPlan) -> Redaction:
    """*record* redacted by its own flags and by what the plan withholds everywhere.  An artifact
    withheld on this record only because of another record (the same bytes flagged there, or
    bytes that hold a withheld text) is listed with that reason."""
    own = redact(record, plan.kinds)
    held = {ra.artifact.sha256: ra.artifact for ra in record.artifacts}
    reasons: dict[str, Any] = {sha: list(plan.artifacts[sha]) for sha in held if sha in plan.artifacts}
    _withhold_derived(record, reasons)
    withheld = [sha for sha in held if sha in reasons]
    if not own.changed and not withheld and not plan.values:
        return own
    document, _ = redact_document(json.loads(json.dumps(unstructure(own.record))), plan.values, withheld)
    flagged_here = {item.sha256: item.reasons for item in own.artifacts}
    return _redaction(
        record,
        document,
        {
            sha: flagged_here.get(sha) or plan.elsewhere.get(sha) or plan.artifacts.get(sha) or tuple(reasons[sha])
            for sha in withheld
        },
        own.fields,
        plan.values,
        f"withholding texts from record {record.id}",
    )


#: The members of an export's custody event that are digests of what it wrote (a file's or a
#: bag's tag manifest's SHA-256, an exhibit's files', a bag's Payload-Oxum).
_EXPORT_DIGESTS = frozenset({"sha256", "payload_oxum"})


def export_digest_pointers(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The JSON Pointers of the digests of what an earlier export wrote, in the document of its
    ``records.exported`` event (none for other events).  A redacted export that withholds
    anything withholds these: an earlier export held the records unredacted, and is often only
    text anyone can write again (a CSV of a record): with a guess at a withheld value in it, its
    SHA-256 would confirm the guess.  (Sizes are numbers, which no salted digest commits to
    one by one: they stay, and give at most the length of what was withheld.)"""
    if document.get("action") != Action.RECORDS_EXPORTED:
        return ()
    return tuple(
        pointer
        for pointer, value in committed_values({"details": document.get("details")})
        if isinstance(value, str)
        and pointer.rsplit("/", 1)[-1] in _EXPORT_DIGESTS
        and not pointer.startswith("/details/redaction/")
    )


def _mark(document: Any, pointer: str) -> None:
    """Put :data:`WITHHELD_MARK` at the JSON Pointer *pointer* of *document* (which holds a value
    there), in place."""
    *path, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = document
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = WITHHELD_MARK
    else:
        node[last] = WITHHELD_MARK
