"""The published JSON Schemas (draft 2020-12), as shipped with the package.

In a wheel they live in ``evidence_catalog/schemas/``; in a source checkout, in the repository's
top-level ``schemas/`` folder, which is the one copy that is edited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evidence_catalog.errors import InputError
from evidence_catalog.serialize import (
    BAG_CONTENTS_SCHEMA,
    CHECKPOINT_SCHEMA,
    SCHEMA_BASE,
    SCHEMA_IDS,
    VERIFICATION_REPORT_SCHEMA,
    VIEWER_SCHEMAS,
)

#: Schema name -> file name, for every document type the library emits.
SCHEMA_FILES: dict[str, str] = {
    schema_id.removeprefix(SCHEMA_BASE).split(":")[0]: (
        schema_id.removeprefix(SCHEMA_BASE).replace(":", "-") + ".schema.json"
    )
    for schema_id in (
        *SCHEMA_IDS.values(),
        VERIFICATION_REPORT_SCHEMA,
        BAG_CONTENTS_SCHEMA,
        CHECKPOINT_SCHEMA,
        *VIEWER_SCHEMAS.values(),
    )
}


def schema_dir() -> Path:
    """The folder that holds the schema files."""
    packaged = Path(__file__).parent / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


def load_schema(name: str) -> dict[str, Any]:
    """The schema called *name* (``evidence-record``, ``artifact``, ``custody-event``, ``export``)."""
    file = SCHEMA_FILES.get(name)
    if file is None:
        raise InputError(f"unknown schema {name!r}; known: {', '.join(sorted(SCHEMA_FILES))}", where="schema")
    data: dict[str, Any] = json.loads((schema_dir() / file).read_text(encoding="utf-8"))
    return data
