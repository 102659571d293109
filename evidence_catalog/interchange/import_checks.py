"""Each imported record against what its custody events rebuild, each artifact against its bytes.

An export's records are not taken at their word: :func:`check_histories` replays the export's
custody events (the replay ``verify`` uses) and refuses a record that is not what they rebuild,
and :func:`check_artifact_bytes` reads an artifact's bytes again (digests, size, media type,
embedded metadata) and refuses one they contradict -- each naming the fields that differ
(:func:`differences`).  Separate from :mod:`evidence_catalog.interchange.importing` (reading an
export) because these compare what was read with what it claims to be; the importer
(:mod:`evidence_catalog.operations.importing_files`) calls :func:`check_artifact_bytes` as it stores
each file.  Nothing here writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, IntegrityError, ValidationError
from evidence_catalog.hashing import hash_file
from evidence_catalog.replay import replay
from evidence_catalog.serialize import from_document, to_document, unstructure

if TYPE_CHECKING:
    from evidence_catalog.interchange.importing import IncomingRecord


def check_histories(records: list[IncomingRecord], events: list[dict[str, Any]], *, complete: bool, where: str) -> None:
    """Refuse any record that is not what the export's custody events rebuild (the replay
    ``verify`` uses), naming the record and the fields that differ; and, for a *complete* log, a
    record the log creates that the export does not hold."""
    structured = []
    for event in events:
        try:
            structured.append(from_document(event, model.CustodyEvent))
        except EvidenceError as exc:
            raise ValidationError(exc.message, where=f"{where}: custody event {event.get('seq')}") from None
    replayed = replay(structured)
    # A report moved with `link` between a record of a selection and one left out of it: the
    # selection's events alone cannot account for it.
    hint = "" if complete else " (if a report was moved with link to or from a record left out, export them together)"
    if replayed.problems:
        seq, reason = replayed.problems[0]
        raise IntegrityError(
            f"custody event {seq} cannot be replayed ({reason}), so the records it concerns cannot be checked"
            f" against their history{hint}; nothing was imported",
            where=where,
        )
    for item in records:
        record = item.record
        expected = replayed.records.get(record.id)
        if expected is None:
            raise IntegrityError(
                f"record {record.id} is not created by any custody event of the export; nothing was imported",
                where=item.where,
            )
        if expected != record:
            differing = differences(to_document(expected), to_document(record))
            moved = hint if any(p.startswith("reports") for p in differing) else ""
            raise IntegrityError(
                f"record {record.id} is not what its custody events say (differs in: "
                f"{_listed(differing)}){moved}; nothing was imported",
                where=item.where,
            )
    if complete:
        held = {item.record.id for item in records}
        missing = sorted(set(replayed.records) - held)
        if missing:
            raise IntegrityError(
                f"the custody log creates record {missing[0]}, which the export does not hold; nothing was imported",
                where=where,
            )


def _described_before_media(artifact: model.Artifact) -> bool:
    """Whether *artifact*'s description could be one written before image and media metadata
    were read: it has neither (a description written since has one, or an error saying why
    not, for every image and every audio or video file)."""
    metadata = artifact.metadata
    if metadata is None:
        return not artifact.media_type.startswith("image/")
    return metadata.image is None and metadata.media is None and metadata.extractor.name == "exifread"


def differences(expected: Any, found: Any, path: str = "") -> list[str]:
    """The paths (``acquisitions[0].source_url``) at which two JSON values differ."""
    if isinstance(expected, dict) and isinstance(found, dict):
        out: list[str] = []
        for key in [*expected, *(k for k in found if k not in expected)]:
            if expected.get(key, _ABSENT) != found.get(key, _ABSENT):
                out += differences(
                    expected.get(key, _ABSENT), found.get(key, _ABSENT), f"{path}.{key}" if path else key
                )
        return out
    if (
        isinstance(expected, list)
        and isinstance(found, list)
        and len(expected) == len(found)
        and any(isinstance(v, (dict, list)) for v in expected)
    ):
        out = []
        for number, (a, b) in enumerate(zip(expected, found, strict=True)):
            if a != b:
                out += differences(a, b, f"{path}[{number}]")
        return out
    return [path or "(the whole value)"]


_ABSENT = object()


def _listed(paths: list[str], most: int = 8) -> str:
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def check_artifact_bytes(
    path: Path,
    artifact: model.Artifact,
    *,
    hashed: bool,
    where: str,
    measured: tuple[model.Digests, int] | None = None,
) -> None:
    """Re-read what *artifact* says of its bytes from the bytes in *path* -- digests (all but
    SHA-256 unless not *hashed* already), size, media type, embedded metadata (EXIF: time, GPS,
    camera, every raw tag) -- and refuse any difference, naming it.  The extractor's version is
    not compared (the same bytes read by another version of it).  *measured*, when given, is
    the digests (every algorithm *artifact* names) and size of the bytes in *path*, made as
    they were read once: they are not read again for them."""
    from evidence_catalog.extract import extract_metadata, legacy_metadata, sniff_media_type  # loaded here

    algorithms = [a for a in artifact.digests.as_dict() if a != "sha256" or not hashed]
    if measured is not None:
        digests, size = measured
    elif algorithms:
        digests, size = hash_file(str(path), algorithms)
        if hashed:
            digests = attrs.evolve(digests, sha256=artifact.digests.sha256)
    else:
        digests, size = artifact.digests, path.stat().st_size
    media_type = sniff_media_type(path)
    metadata = extract_metadata(path, media_type)
    if metadata is not None and artifact.metadata is not None:
        metadata = attrs.evolve(metadata, extractor=artifact.metadata.extractor)
    found = model.Artifact(digests=digests, size=size, media_type=media_type, metadata=metadata)
    if found != artifact and _described_before_media(artifact):
        # Described before image sizes and media containers were read: compared with what
        # was read then (EXIF alone, for images), as strictly as it was.
        earlier = legacy_metadata(path, media_type)
        if earlier is not None and artifact.metadata is not None:
            earlier = attrs.evolve(earlier, extractor=artifact.metadata.extractor)
        found = attrs.evolve(found, metadata=earlier)
    if found != artifact and artifact.media_type.startswith(("audio/", "video/")):
        found = _as_the_machines_allow(artifact, found, where)
    if found != artifact:
        differing = differences(unstructure(artifact), unstructure(found))
        raise IntegrityError(
            f"artifact {artifact.sha256} is not what its bytes say (differs in: {_listed(differing)}); "
            "nothing was imported",
            where=where,
        )


def _as_the_machines_allow(artifact: model.Artifact, found: model.Artifact, where: str) -> model.Artifact:
    """*found* (what this machine read of an audio or video file) as it is compared with
    *artifact* (the description imported) when either reader stopped for a reason of its
    machine, not of the file (a time or memory limit, a crash, PyAV missing):

    - the description says its reader read nothing, and why: it claims nothing of the file, so
      any reading here agrees with it (it is kept as written; ``verify`` and a new reading
      here can say more);
    - this machine's reader read nothing, and the description says what the file holds: that
      cannot be checked here, and the import is refused saying so (not as a difference)."""
    from evidence_catalog.extract.media import stopped_by_the_machine  # loaded here

    claimed, read = artifact.metadata, found.metadata
    # Exactly the one error such a reader writes, and nothing else: no other text rides along.
    said_nothing = claimed is not None and claimed.media is None and len(claimed.errors) == 1
    if claimed is not None and said_nothing and stopped_by_the_machine(claimed.errors):
        if read is None:
            return found
        return attrs.evolve(found, metadata=attrs.evolve(read, media=None, errors=claimed.errors))
    why = None if read is None else stopped_by_the_machine(read.errors)
    if why is not None and claimed is not None and claimed.media is not None:
        raise IntegrityError(
            f"artifact {artifact.sha256}'s media description cannot be checked on this machine ({why}); "
            "nothing was imported",
            where=where,
        )
    return found
