"""The CASE/UCO export benchmark (issue 26): ``export --format case`` of ``--records`` records
(default 10,000) against the JSON export of the same records, and ``case_validate`` (case-utils
0.18.0, CASE 1.5.0) on an export of ``--validate-records`` of them (default 1,000).

**The catalog** is built once with the library and kept under ``build/case-bench/<records>/``
(``--rebuild`` makes it again): nine records in ten are reports from a feed-reader digest (the
``ingest`` benchmark's digests, ``run.write_digest``: reposts, hashtags, mentions, link cards;
the digest is their source document), one in ten a small text file of its own added from disk
(``Catalog.add``, one acquisition, one artifact).  Every record has its custody events.

**Measured**, each in a child process of its own (``case_export.py child FORMAT CATALOG OUT
[N]``), the page cache warm (one untimed JSON export first), best of ``--repeat``: the seconds
of ``Catalog.export(format=...)`` and the child's peak RSS (``VmHWM``), for ``case`` and for
``json`` (the reference: ratio = JSON's time / CASE's); records/s.  The CASE export is written
node by node, so its peak RSS must not grow with the records (compare ``--records`` 1,000 and
10,000).  Then ``case_validate --built-version case-1.5.0`` on a CASE export of the first
``--validate-records`` records: its seconds, its peak RSS (``wait4``), and that it conforms
(exit status 0).  No target: the figures are information for RESULTS.md.

``case_validate`` is ``$EVIDENCE_CATALOG_CASE_VALIDATE``, else ``build/case-venv/bin/case_validate``
(``make case-venv``).  Run: ``.venv/bin/python benchmarks/case_export.py`` (smaller:
``--records 2000 --validate-records 200 --repeat 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OPERATOR = "Benchmark <bench@example.org>"
SEED = 20261205
DEFAULT_RECORDS = 10_000
DEFAULT_VALIDATE = 1_000
FILES_SHARE = 10  # one record in ten is a file added from disk
FILES_PER_DIR = 100


def build(folder: Path, records: int) -> Path:
    """The catalog of *records* records under *folder* (kept; reused when complete)."""
    catalog = folder / "catalog"
    done = folder / "built.json"
    if done.exists():
        return catalog
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sys.path.insert(0, str(HERE))
    from run import write_digest  # the ingest benchmark's digests

    from evidence_catalog import Catalog

    files = records // FILES_SHARE
    sources = folder / "files"
    for i in range(files):
        directory = sources / f"{i // FILES_PER_DIR:04d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"statement-{i:06d}.txt").write_text(f"Witness statement {i}: the yard, night of 5 May.\n")
    digest = folder / "digest.txt"
    write_digest(digest, records - files, SEED)
    started = time.perf_counter()
    with Catalog.init(catalog, operator=OPERATOR) as made:
        made.ingest(digest)
        if files:
            made.add([sources], recursive=True, batch=1000, analyze=False)
        count = len(made.record_ids())
    done.write_text(json.dumps({"records": count, "seconds": time.perf_counter() - started}))
    return catalog


def child(argv: list[str]) -> int:
    """``child FORMAT CATALOG OUT [N]``: export (the first *N* records) and print its seconds,
    records and this process's peak RSS as JSON."""
    from rss_child import peak_rss_kib

    from evidence_catalog import Catalog

    fmt, catalog_path, out = argv[0], argv[1], argv[2]
    limit = int(argv[3]) if len(argv) > 3 else None
    with Catalog.open(catalog_path) as catalog:
        ids = None if limit is None else catalog.record_ids()[:limit]
        started = time.perf_counter()
        result = catalog.export(out, format=fmt, record_ids=ids)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
    print(
        json.dumps({"seconds": seconds, "records": result.records, "peak_kib": peak_rss_kib()[0], "size": result.size})
    )
    return 0


def run_child(fmt: str, catalog: Path, out: Path, limit: int | None = None) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    argv = [sys.executable, __file__, "child", fmt, str(catalog), str(out)] + ([str(limit)] if limit else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def case_validate() -> str:
    found = os.environ.get("EVIDENCE_CATALOG_CASE_VALIDATE") or str(
        REPO / "build" / "case-venv" / "bin" / "case_validate"
    )
    if not Path(found).is_file():
        raise SystemExit(f"case_validate not found at {found}: make case-venv")
    return found


def validate(path: Path) -> dict[str, Any]:
    """Seconds, peak RSS (KiB) and verdict of ``case_validate`` on *path*."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [case_validate(), "--built-version", "case-1.5.0", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    output, errors = process.stdout.read(), process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    text = output.decode("utf-8", "replace")
    return {
        "seconds": seconds,
        "peak_kib": usage.ru_maxrss,  # KiB on Linux
        "exit_status": process.returncode,
        "conforms": process.returncode == 0 and "Conforms: True" in text,
        "report": text[:2000] + errors.decode("utf-8", "replace")[:2000],
    }


def bench(records: int, validate_records: int, repeat: int, rebuild: bool) -> dict[str, Any]:
    folder = REPO / "build" / "case-bench" / str(records)
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    catalog = build(folder, records)
    built = json.loads((folder / "built.json").read_text())
    out = folder / "out"
    out.mkdir(exist_ok=True)
    run_child("json", catalog, out / "warm.json")  # the page cache warm
    results: dict[str, Any] = {"records": built["records"], "build_seconds": built["seconds"]}
    for fmt in ("case", "json"):
        runs = [run_child(fmt, catalog, out / f"all.{fmt}") for _ in range(repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        results[fmt] = {**best, "records_per_s": best["records"] / best["seconds"]}
    results["ratio_json_over_case"] = results["json"]["seconds"] / results["case"]["seconds"]
    small = out / f"first-{validate_records}.jsonld"
    exported = run_child("case", catalog, small, validate_records)
    results["validate"] = {"records": exported["records"], "bytes": exported["size"], **validate(small)}
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["child"]:
        return child(args[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--validate-records", type=int, default=DEFAULT_VALIDATE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="make the catalog again")
    options = parser.parse_args(args)
    results = bench(options.records, options.validate_records, options.repeat, options.rebuild)
    case, reference, checked = results["case"], results["json"], results["validate"]
    print(f"catalog: {results['records']} records (built in {results['build_seconds']:.1f} s)")
    for label, row in (("case export", case), ("json export (reference)", reference)):
        print(
            f"{label:24} {row['seconds']:8.2f} s  {row['records_per_s']:9.0f} records/s  "
            f"peak RSS {row['peak_kib'] / 1024:6.1f} MiB  {row['size'] / 1e6:8.1f} MB"
        )
    print(f"ratio (json time / case time): {results['ratio_json_over_case']:.2f}")
    print(
        f"case_validate, {checked['records']} records ({checked['bytes'] / 1e6:.1f} MB): {checked['seconds']:.1f} s, "
        f"peak RSS {checked['peak_kib'] / 1024:.0f} MiB, exit status {checked['exit_status']}, "
        f"conforms: {checked['conforms']}"
    )
    if not checked["conforms"]:
        print(checked["report"])
    print(
        json.dumps(
            {k: v for k, v in results.items() if k != "validate"}
            | {"validate": {k: v for k, v in checked.items() if k != "report"}}
        )
    )
    return 0 if checked["conforms"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
