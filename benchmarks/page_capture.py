"""The ``page_capture`` benchmark: seconds per page of ``capture --page`` (Chromium).

``python benchmarks/page_capture.py [--pages N] [--images N]``

A real HTTP server on 127.0.0.1 (tests/media_server.py) serves a news-like page: an article of
a few thousand words, ``--images`` JPEG-sized pictures (noise PNGs, about 200 KB each), a script
that calls ``fetch()`` once, behind one redirect.  Each page (its own URL, so none is the same
record) is captured through ``Catalog.capture_page`` as a user captures it: a browser process
started, the page loaded with its network recorded, screenshot, rendered HTML, PDF, text and
WACZ stored and logged.  The figures are the median and maximum seconds per page, and the bytes
stored per page.  Everything made is in a temporary folder, removed after.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if os.fspath(HERE.parent) not in sys.path:  # the repository's tests/ (its HTTP server)
    sys.path.insert(0, os.fspath(HERE.parent))

from evidence_catalog import Agent, Catalog, PageOptions  # noqa: E402

OPERATOR = Agent(name="Benchmark", email="bench@example.org")


def picture(seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((300, 220), 40 + seed % 50).convert("RGB").save(out, "PNG")
    return out.getvalue()


def article(images: int) -> bytes:
    paragraphs = "".join(
        f"<p>Paragraph {n}: witnesses described the shelling of the market in the morning. " * 3 + "</p>"
        for n in range(60)
    )
    pictures = "".join(f'<figure><img src="/img{n}.png" alt="photo {n}"></figure>' for n in range(images))
    script = '<script>fetch("/api").then(r => r.json()).then(j => document.title += " " + j.n);</script>'
    head = "<!doctype html><html><head><title>Report</title></head>"
    return f"{head}<body><h1>Report</h1>{paragraphs}{pictures}{script}</body></html>".encode()


def main(argv: list[str] | None = None) -> int:
    from tests.media_server import MediaServer, Route

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args(argv)
    if shutil.which("chromium") is None:
        print("Chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="page-capture-bench-"))
    try:
        with MediaServer() as server, Catalog.init(folder / "catalog", operator=OPERATOR) as catalog:
            for n in range(args.images):
                server.route(f"/img{n}.png", Route(body=picture(n), media_type="image/png"))
            server.route("/api", Route(body=b'{"n": 1}', media_type="application/json"))
            page = article(args.images)
            seconds: list[float] = []
            stored: list[int] = []
            for n in range(args.pages):
                server.route(f"/article{n}", Route(body=page, media_type="text/html; charset=utf-8"))
                url = server.route(f"/go{n}", Route(redirect=server.url(f"/article{n}")))
                started = time.perf_counter()
                result = catalog.capture_page(url, options=PageOptions())
                seconds.append(time.perf_counter() - started)
                if not result.ok or result.record_id is None:
                    print(f"page {n} failed: {result.error}", file=sys.stderr)
                    return 1
                record = catalog.record(result.record_id)
                stored.append(sum(e.artifact.size for e in record.artifacts))
        print(f"pages: {args.pages}, images per page: {args.images}, page HTML: {len(page)} bytes")
        print(f"seconds per page: median {statistics.median(seconds):.2f}, max {max(seconds):.2f}")
        print(f"bytes stored per page: median {statistics.median(stored):,.0f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
