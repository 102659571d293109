"""The CSV export: one spreadsheet row per artifact (``export --format csv``).

Cells are text as the record has it, except that a cell beginning with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading apostrophe, so that spreadsheet software shows
it as text instead of running it as a formula (OWASP's advice against CSV injection).  The
neutralised cell says so by that apostrophe; the JSON export keeps the text unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from evidence_catalog import model
from evidence_catalog.filters import current_status
from evidence_catalog.interchange.text import TextSink
from evidence_catalog.serialize import format_timestamp

COLUMNS = (
    "record_id",
    "title",
    "role",
    "sha256",
    "size",
    "media_type",
    "source_url",
    "platform",
    "platform_id",
    "acquired_at",
    "acquisition_method",
    "operator",
    "tags",
    "verification_status",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """*cell* made safe to open in a spreadsheet (see the module notes)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _agent(agent: model.Agent) -> str:
    return agent.name + (f" <{agent.email}>" if agent.email else "")


def artifact_rows(record: model.EvidenceRecord) -> Iterator[list[str]]:
    """The rows of a record: one per artifact, its provenance from the first successful
    acquisition that stored it (empty cells when none did, e.g. a linked source document)."""
    status = current_status(record).value
    tags = "; ".join(record.tags)
    for entry in record.artifacts:
        sha256 = entry.artifact.sha256
        acquisition = next(
            (
                a
                for a in record.acquisitions
                if a.outcome is model.Outcome.SUCCEEDED and sha256 in (a.artifact_sha256, *a.other_artifacts)
            ),
            None,
        )
        url = None if acquisition is None else (acquisition.requested_url or acquisition.source_url)
        cells = [
            record.id,
            record.title or "",
            entry.role.value,
            sha256,
            str(entry.artifact.size),
            entry.artifact.media_type,
            url or "",
            "" if acquisition is None else acquisition.extractor or acquisition.platform or "",
            "" if acquisition is None else acquisition.platform_id or "",
            "" if acquisition is None else format_timestamp(acquisition.ended_at),
            "" if acquisition is None else acquisition.method.value,
            "" if acquisition is None else _agent(acquisition.operator),
            tags,
            status,
        ]
        yield [neutralise(cell) for cell in cells]


def write_csv(stream: TextSink, records: Iterable[model.EvidenceRecord]) -> int:
    """The CSV export: a header, then each record's artifact rows (RFC 4180, CRLF); return the
    number of records."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for record in records:
        writer.writerows(artifact_rows(record))
        count += 1
    return count
