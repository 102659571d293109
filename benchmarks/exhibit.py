"""The ``exhibit`` benchmark: seconds per record for a court exhibit, HTML and PDF apart.

``python benchmarks/exhibit.py [--records N] [--events N,N,...] [--repeat N]``

Two kinds of record are timed, each in a catalog of its own made here:

``typical``
    a JPEG with EXIF and GPS (made by Pillow, 1600x1200), a report announcing it (Ukrainian and
    Arabic text) linked from an ingested digest, a claim, an assessment and a note: about ten
    custody events.  ``--records`` of them; each is exhibited once as HTML and once as PDF.
``events``
    the same record with thousands of custody events (one ``tags.added`` each): the exhibit
    lists every one, with its inclusion proof.  One record per size in ``--events``.

Each exhibit is made through ``Catalog.exhibit`` as a user makes it (read in one snapshot, the
pictures checked against their SHA-256, rendered, written, logged), the HTML and the PDF as two
calls; the figures are the median and the maximum of the seconds per exhibit, and for a PDF its
pages (``pdfinfo`` where installed).  Everything made is in a temporary folder, removed after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if os.fspath(HERE.parent) not in sys.path:  # the repository's tests/ (its JPEG maker)
    sys.path.insert(0, os.fspath(HERE.parent))

from evidence_catalog import Agent, Catalog  # noqa: E402

OPERATOR = Agent(name="Benchmark", email="bench@example.org")
DEFAULT_RECORDS = 10
DEFAULT_EVENTS = (1000, 5000)


def make_record(catalog: Catalog, folder: Path, number: int) -> str:
    """A typical record (see the module's docstring); returns its id."""
    import io

    from PIL import Image

    from tests.conftest import make_jpeg

    folder.mkdir(parents=True, exist_ok=True)
    small = Image.open(io.BytesIO(make_jpeg(colour=(number % 256, 90, 140))))
    exif = small.getexif()
    picture = Image.effect_noise((1600, 1200), 64).convert("RGB")
    path = folder / f"photo-{number}.jpg"
    picture.save(path, format="JPEG", quality=90, exif=exif)
    [added] = catalog.add([path])
    digest = folder / f"digest-{number}.txt"
    digest.write_text(
        f"Монітор {number} (Telegram)\nОбстріл житлового кварталу, знімок {number} — قصف حي سكني رقم {number}\n",
        encoding="utf-8",
    )
    before = set(catalog.record_ids())
    catalog.ingest(digest)
    [other] = set(catalog.record_ids()) - before
    report = catalog.record(other).reports[0]
    catalog.link(report.id, added.record_id, note="the post shows this picture")
    catalog.claim(added.record_id, summary="Shelling of a residential block", source_report_id=report.id)
    catalog.assess(added.record_id, "in_progress", methods=["geolocation"], note="Compared with imagery.")
    return added.record_id


def pages(pdf: Path) -> int | None:
    """The PDF's page count (``pdfinfo``), or ``None`` without poppler."""
    if shutil.which("pdfinfo") is None:
        return None
    out = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return next((int(line.split()[1]) for line in out.splitlines() if line.startswith("Pages:")), None)


def time_exhibits(catalog: Catalog, record_id: str, out: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds of each HTML and each PDF exhibit of *record_id*, *repeat* times each."""
    times: dict[str, list[float]] = {"html": [], "pdf": []}
    for n in range(repeat):
        for kind in ("html", "pdf"):
            target = out / f"{record_id}-{n}.{kind}"
            started = time.perf_counter()
            catalog.exhibit(record_id, target)
            times[kind].append(time.perf_counter() - started)
    return times


def line(label: str, seconds: list[float], extra: str = "") -> str:
    return f"{label:<34} median {statistics.median(seconds):7.2f} s   max {max(seconds):7.2f} s{extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="typical records to exhibit")
    parser.add_argument(
        "--events",
        default=",".join(map(str, DEFAULT_EVENTS)),
        help="custody events of each large record, comma-separated (empty: none)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="exhibits of each record, each kind")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.events.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="exhibit-bench-") as tmp:
        root = Path(tmp)
        out = root / "out"
        out.mkdir()
        with Catalog.init(root / "typical", operator=OPERATOR) as catalog:
            ids = [make_record(catalog, root / "in", n) for n in range(args.records)]
            times: dict[str, list[float]] = {"html": [], "pdf": []}
            for record_id in ids:
                for kind, seconds in time_exhibits(catalog, record_id, out, args.repeat).items():
                    times[kind] += seconds
            events = len(catalog.history(ids[0]))
            size = pages(next(out.glob("*.pdf")))
        print(f"typical record ({events} custody events, a 1600x1200 JPEG), {args.records} record(s):")
        print(line("  HTML", times["html"]))
        print(line("  PDF", times["pdf"], f"   {size} pages" if size else ""))
        for count in sizes:
            with Catalog.init(root / f"events-{count}", operator=OPERATOR) as catalog:
                record_id = make_record(catalog, root / "in", 0)
                made = time.perf_counter()
                for n in range(count):
                    catalog.tag(record_id, [f"t{n:06d}"])
                made = time.perf_counter() - made
                events = len(catalog.history(record_id))
                timed = time_exhibits(catalog, record_id, out, args.repeat)
                size = pages(next(out.glob(f"{record_id}-*.pdf")))
            print(f"record with {events} custody events (made in {made:.0f} s):")
            print(line("  HTML", timed["html"]))
            print(line("  PDF", timed["pdf"], f"   {size} pages" if size else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
