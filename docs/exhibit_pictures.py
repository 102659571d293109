"""Make the pictures of docs/exhibits.md: a sample exhibit as headless Chromium shows its HTML,
and the first pages of its PDF as pdftoppm renders them.

``python docs/exhibit_pictures.py`` (needs Debian's chromium and poppler-utils, and Playwright
for Python).  The sample record is made here: a drawn picture (no real scene), a report in
Ukrainian and Arabic, a claim, an assessment.  The pictures are written to ``docs/images/``.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from PIL import Image, ImageDraw  # noqa: E402

from evidence_catalog import Agent, Catalog  # noqa: E402
from evidence_catalog.model import EventTime, GeoPosition, Place  # noqa: E402
from tests.conftest import FixedClock, make_jpeg  # noqa: E402

OUT = HERE / "images"
#: The PDF's pages shown: the first (title, media, digests), the metadata and reports, custody.
PDF_PAGES = (1, 3, 4)


def picture() -> bytes:
    """A drawn street at dusk, 800x533, with the EXIF (camera, time, GPS) of the tests' JPEG."""
    exif = Image.open(io.BytesIO(make_jpeg())).getexif()
    image = Image.new("RGB", (800, 533))
    draw = ImageDraw.Draw(image)
    for y in range(533):
        draw.line([(0, y), (800, y)], fill=(40 + y // 6, 60 + y // 8, 110 - y // 8))
    draw.rectangle([0, 400, 800, 533], fill=(70, 70, 72))
    for x, height in ((60, 190), (230, 250), (420, 170), (600, 230)):
        draw.rectangle([x, 400 - height, x + 140, 400], fill=(95, 90, 88))
        for row in range(400 - height + 20, 390, 40):
            for col in range(x + 15, x + 130, 35):
                draw.rectangle([col, row, col + 18, row + 22], fill=(210, 190, 120))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, exif=exif)
    return out.getvalue()


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        operator = Agent(name="Ana Analyst", email="ana@example.org", organization="Example NGO", host="laptop-7")
        with Catalog.init(root / "catalog", operator=operator, clock=FixedClock()) as catalog:
            photo = root / "kharkiv-0505-street.jpg"
            photo.write_bytes(picture())
            [added] = catalog.add([photo])
            digest = root / "digest.txt"
            digest.write_text(
                "Харківський монітор (Telegram)\n"
                "Обстріл житлового кварталу на вул. Прикладній, 5 травня, близько 21:30. "
                "قصف حي سكني في الشارع، ٥ مايو\n",
                encoding="utf-8",
            )
            before = set(catalog.record_ids())
            catalog.ingest(digest)
            [other] = set(catalog.record_ids()) - before
            report = catalog.record(other).reports[0]
            catalog.link(report.id, added.record_id, note="the post shows this picture")
            catalog.claim(
                added.record_id,
                summary="Shelling of a residential street",
                event_time=EventTime(start=dt.datetime(2025, 5, 5, 18, 0, tzinfo=dt.UTC), precision="hour"),
                place=Place(name="Kharkiv", position=GeoPosition(latitude=49.99, longitude=36.23), uncertainty_m=2000),
                source_report_id=report.id,
            )
            catalog.assess(
                added.record_id,
                "in_progress",
                methods=["geolocation", "chronolocation"],
                confidence="medium",
                note="Skyline matched against street-level imagery; shadows consistent with early evening.",
            )
            folder = root / "exhibit"
            folder.mkdir()
            result = catalog.exhibit(added.record_id, folder)
        assert result.html is not None and result.pdf is not None
        for n in PDF_PAGES:
            base = root / f"p{n}"
            subprocess.run(
                ["pdftoppm", "-r", "45", "-png", "-f", str(n), "-l", str(n), "-singlefile", str(result.pdf), str(base)],
                check=True,
            )
            _small(base.with_suffix(".png"), OUT / f"exhibit-pdf-page-{n}.png")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            page = browser.new_page(viewport={"width": 900, "height": 1100})
            page.goto(result.html.as_uri())
            page.screenshot(path=str(root / "shot.png"))
            browser.close()
        _small(root / "shot.png", OUT / "exhibit-html.png", width=600)
    return 0


def _small(source: Path, target: Path, width: int | None = None) -> None:
    """*source* as a small PNG of 64 colours at *target*."""
    image = Image.open(source).convert("RGB")
    if width is not None and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


if __name__ == "__main__":
    raise SystemExit(main())
