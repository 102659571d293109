"""Import from auto-archiver: items (archived URLs) per second.

    PYTHONPATH=. python benchmarks/aa_import.py [--copies N]

Makes a folder of N x 6 auto-archiver items by replicating the real fixture
(tests/fixtures/auto_archiver/out): each copy's rows get fresh URLs and its files fresh bytes (a
few bytes appended), their hashes in the CSV resealed, so that nothing is shared between copies.
The copies leave out the rows' time-stamped hashes files and RFC 3161 tokens (a token cannot be
resealed without the time-stamp authority: the import would rightly refuse the copies), as an
auto-archiver run without its timestamping enricher writes them.
Then times ``import --from auto-archiver`` of the folder into a new catalog (in-process, the
call alone), and, as the reference in the same run, ``cp -r`` of the folder, ``sha256sum`` of
every copied file and ``sync`` (what storing a copy and its digest costs at the least, as the
``small`` benchmark measures it), both from the page cache.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from small_files import cp_sha256sum_sync  # benchmarks/small_files.py (this folder is on the path)

from evidence_catalog import Catalog
from evidence_catalog.interchange import auto_archiver as aa

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "auto_archiver" / "out"


def replicate(target: Path, copies: int) -> tuple[int, list[Path]]:
    """Write *copies* copies of the fixture's rows into one auto-archiver folder; return the
    number of rows and every file."""
    header, *rows = (FIXTURE / "db.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    out = [header]
    files: list[Path] = []
    for copy in range(copies):
        prefix = f"./local_archive/c{copy:05d}/"
        for row in rows:
            row = untimestamped(row).replace("http://127.0.0.1:8765/", f"http://127.0.0.1:8765/c{copy}/")
            for key in dict.fromkeys(re.findall(r"'_key': '\./local_archive/([^']+)'", row)):
                source, dest = FIXTURE / "local_archive" / key, target / prefix / key
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    data = source.read_bytes()
                    fresh = data + f"\n{copy}\n".encode()
                    dest.write_bytes(fresh)
                    files.append(dest)
                    old, new = hashlib.sha256(data).hexdigest(), hashlib.sha256(fresh).hexdigest()
                    row = row.replace(f"SHA-256:{old}", f"SHA-256:{new}")
                else:
                    old = hashlib.sha256(source.read_bytes()).hexdigest()
                    row = row.replace(f"SHA-256:{old}", f"SHA-256:{hashlib.sha256(dest.read_bytes()).hexdigest()}")
            out.append(row.replace("./local_archive/", prefix))
    (target / "db.csv").write_text("".join(out), encoding="utf-8")
    return len(out) - 1, files


def untimestamped(line: str) -> str:
    """The CSV row *line* without its media entries of the timestamping enricher."""
    status, metadata, media = next(csv.reader([line]))
    kept = [m for m in aa.literal(media) if m.get("properties", {}).get("id") != "timestamped_hashes"]
    stream = io.StringIO()
    csv.writer(stream).writerow([status, metadata, repr(kept)])
    return stream.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=50, help="copies of the fixture's 6 rows (default 50)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "archive"
        items, files = replicate(folder, args.copies)
        size = sum(f.stat().st_size for f in files)
        for file in files:  # every side reads the files from the page cache
            file.read_bytes()
        os.sync()
        # db.csv is copied and hashed too
        reference = cp_sha256sum_sync(folder, Path(tmp), len(files) + 1)
        os.sync()
        with Catalog.init(Path(tmp) / "catalog") as catalog:
            start = time.perf_counter()
            result = catalog.import_auto_archiver(folder, analyze=False)
            elapsed = time.perf_counter() - start
            assert len(result.records_added) == items and not result.findings, result.findings[:3]
        shutil.rmtree(folder)
    print(f"{items} items, {len(files)} files, {size / 1e6:.1f} MB")
    print(
        f"import --from auto-archiver: {elapsed:.2f} s, {items / elapsed:.1f} items/s,"
        f" {len(files) / elapsed:.0f} files/s"
    )
    print(
        f"reference, cp -r + sha256sum + sync of the same folder: {reference:.2f} s;"
        f" ratio (reference time / import time) {reference / elapsed:.3f}"
    )


if __name__ == "__main__":
    main()
