"""What recording a capture's web archive costs (issue 24): the same capture with and without
its WARC/WACZ, time and bytes, in the same run.

    .venv/bin/python benchmarks/web_archive.py --size-mib 500 --repeat 3     # a quiet machine
    .venv/bin/python benchmarks/web_archive.py --size-mib 8 --repeat 1       # does it work

A loopback HTTP server in this process (``tests/media_server.py``, ``sendfile``) serves an HTML
page with a ``<video>`` of ``--size-mib`` random bytes (yt-dlp's generic extractor finds it) and
a small poster.  Each round captures the page twice, each capture in a process of its own into
a new catalog: with the archive (the default) and with ``archive=False``; the order is reversed
every other round, ``sync`` before each.  Reported per side, the median of ``--repeat`` rounds:
wall time of the ``Catalog.capture_url`` call, CPU time of the process, bytes read and written
through system calls (``/proc/self/io``), and the bytes the catalog's blob store holds after
it; then the overhead of the archive (the difference, and the ratio of times) and the WACZ's
size against the media's.

The child mode (``web_archive.py child CATALOG URL [--no-archive]``) times one capture and
prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capture_speed import proc_io  # beside this script (run.py imports its neighbours so too)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024 * 1024
OPERATOR = "Benchmark <bench@example.org>"
KEYS = ("seconds", "cpu_seconds", "rchar", "wchar", "stored_bytes")


def child(argv: Sequence[str]) -> int:
    """Create a catalog and time one ``Catalog.capture_url`` of *url* (no analysis)."""
    parser = argparse.ArgumentParser(prog="web_archive.py child")
    parser.add_argument("catalog")
    parser.add_argument("url")
    parser.add_argument("--no-archive", action="store_true")
    args = parser.parse_args(argv)
    from evidence_catalog import Catalog
    from evidence_catalog.capture import CaptureOptions

    options = CaptureOptions(archive=not args.no_archive, retries=0)
    with Catalog.init(args.catalog, operator=OPERATOR) as catalog:
        io_before, started, cpu_before = proc_io(), time.perf_counter(), time.process_time()
        result = catalog.capture_url(args.url, options=options, analyze=False)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        io_after = proc_io()
        if not result.ok:
            raise SystemExit(f"capture failed: {result.error}")
        record = catalog.record(result.record_id)
        archive = [e.artifact.size for e in record.artifacts if e.role.value == "web_archive"]
    stored = sum(p.stat().st_size for p in (Path(args.catalog) / "blobs").rglob("*") if p.is_file())
    report: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "stored_bytes": stored,
        "media_bytes": result.size,
        "wacz_bytes": archive[0] if archive else 0,
        **{key: io_after[key] - io_before[key] for key in ("rchar", "wchar") if key in io_after},
    }
    print(json.dumps(report))
    return 0


def _run_child(catalog: Path, url: str, archive: bool) -> dict[str, Any]:
    subprocess.run(["sync"], check=False)
    argv = [sys.executable, __file__, "child", os.fspath(catalog), url, *([] if archive else ["--no-archive"])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=float, default=500.0, help="size of the video served (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3; the median is reported)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the catalogs go (default: a temp dir)")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.fspath(REPO))
    from tests.media_server import MediaServer, Route, video_page

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch, MediaServer() as server:
        media = Path(scratch) / "video.mp4"
        with open(media, "wb") as stream:
            left = int(args.size_mib * MIB)
            while left > 0:
                stream.write(os.urandom(min(left, 4 * MIB)))
                left -= min(left, 4 * MIB)
        video = server.route("/media/video.mp4", Route(file=media, media_type="video/mp4"))
        poster = server.route("/media/poster.jpg", Route(body=b"\xff\xd8\xff\xe0" + os.urandom(20_000)))
        html = video_page(video, title="Benchmark", thumbnail_url=poster)
        page = server.route("/watch/1", Route(body=html, media_type="text/html"))
        runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for round_ in range(args.repeat):
            for archive in (True, False) if round_ % 2 == 0 else (False, True):
                catalog = Path(scratch) / f"catalog-{round_}-{int(archive)}"
                runs[archive].append(_run_child(catalog, page, archive))
                subprocess.run(["rm", "-rf", os.fspath(catalog)], check=True)
    median = {side: {k: statistics.median(r[k] for r in found if k in r) for k in KEYS} for side, found in runs.items()}
    with_, without = median[True], median[False]
    wacz = statistics.median(r["wacz_bytes"] for r in runs[True])
    size = runs[True][0]["media_bytes"]
    print(f"video {size / MIB:.1f} MiB, {args.repeat} round(s), median per side")
    for label, side in (("with archive", with_), ("without", without)):
        parts = [f"{side['seconds']:.2f} s", f"CPU {side['cpu_seconds']:.2f} s"]
        if "rchar" in side:
            parts.append(f"read {side['rchar'] / MIB:.1f} MiB, wrote {side['wchar'] / MIB:.1f} MiB")
        parts.append(f"stored {side['stored_bytes'] / MIB:.1f} MiB")
        print(f"  {label:>13}: " + ", ".join(parts))
    ratio = with_["seconds"] / without["seconds"] if without["seconds"] else float("nan")
    print(
        f"  archive costs: +{with_['seconds'] - without['seconds']:.2f} s ({ratio:.2f}x the time),"
        f" +{(with_['stored_bytes'] - without['stored_bytes']) / MIB:.1f} MiB stored;"
        f" the WACZ is {wacz / MIB:.1f} MiB ({wacz / size:.3f}x the video)"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        raise SystemExit(child(sys.argv[2:]))
    raise SystemExit(main())
