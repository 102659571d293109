"""The JSON and JSON Lines exports: records and custody events as JSON documents.

Both are written item by item to a :class:`~evidence_catalog.interchange.text.TextSink`, so memory
does not grow with the catalog; :mod:`evidence_catalog.interchange.importing` reads them back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from evidence_catalog import model
from evidence_catalog.interchange.text import TextSink
from evidence_catalog.serialize import CHECKPOINT_SCHEMA, SCHEMA_IDS, format_timestamp, to_document, unstructure
from evidence_catalog.versions import library_agent


def write_jsonl(
    stream: TextSink,
    records: Iterable[model.EvidenceRecord],
    events: Iterable[model.CustodyEvent],
    checkpoint: tuple[str, int, str] | None = None,
) -> tuple[int, int]:
    """JSON Lines: each record, then each custody event, one document a line; last, when given,
    *checkpoint* -- (signed note, tree size, root hex) of a checkpoint that covers every event
    above.  Returns (records, custody events)."""
    counts = [0, 0]
    for index, documents in enumerate((records, events)):
        for document in documents:
            stream.write(json.dumps(to_document(document), ensure_ascii=False) + "\n")
            counts[index] += 1
    if checkpoint is not None:
        note, tree_size, root_hash = checkpoint
        line = {"schema": CHECKPOINT_SCHEMA, "note": note, "tree_size": tree_size, "root_hash": root_hash}
        stream.write(json.dumps(line, ensure_ascii=False) + "\n")
    return counts[0], counts[1]


def write_json(
    stream: TextSink,
    records: Iterable[model.EvidenceRecord],
    events: Iterable[model.CustodyEvent],
    *,
    exported_at: dt.datetime,
    exported_by: model.Agent,
    complete_log: bool,
    checkpoint: str | None = None,
) -> tuple[int, int]:
    """One JSON document (schema export-bundle): who exported when, whether the custody log is
    whole, the signed note of a *checkpoint* that covers every event, then the records and the
    custody events.  Returns (records, custody events)."""
    # One JSON document, written item by item so memory does not grow with the catalog.
    head = {
        "schema": SCHEMA_IDS[model.ExportBundle],
        "exported_at": format_timestamp(exported_at),
        "exported_by": unstructure(exported_by),
        "generator": unstructure(library_agent()),
        "complete_log": complete_log,
        "checkpoint": checkpoint,
    }
    stream.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2])
    counts = [0, 0]
    for index, (name, items) in enumerate((("records", records), ("custody_events", events))):
        stream.write(f',\n "{name}": [')
        for item in items:
            stream.write(("," if counts[index] else "") + "\n")
            stream.write(json.dumps(unstructure(item), ensure_ascii=False))
            counts[index] += 1
        stream.write("\n ]")
    stream.write("\n}\n")
    return counts[0], counts[1]
