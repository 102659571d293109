"""The committed output of a real auto-archiver run (tests/fixtures/auto_archiver/out, made by
its make_fixture.sh) and the reading and rewriting of its CSV rows that the import tests share."""

from __future__ import annotations

import csv
from pathlib import Path

#: auto-archiver 1.2.9's db.csv and local_archive/, archived from pages served on 127.0.0.1.
FIXTURE = Path(__file__).parent / "fixtures" / "auto_archiver" / "out"
#: The address the fixture's pages were served from.
P = "http://127.0.0.1:8765/"


def rows_of(folder: Path) -> list[list[str]]:
    """The rows of *folder*'s db.csv, its header first."""
    with open(folder / "db.csv", encoding="utf-8", newline="") as stream:
        return list(csv.reader(stream))


def write_rows(folder: Path, rows: list[list[str]]) -> None:
    """Write *rows* as *folder*'s db.csv, as auto-archiver's csv module writes them."""
    with open(folder / "db.csv", "w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(rows)


def index_of(rows: list[list[str]], url: str) -> int:
    """The index in *rows* of the row that archived *url* (its spreadsheet number less one)."""
    return next(i for i, row in enumerate(rows) if f"'url': '{url}'" in row[1])
