"""Make the pictures of docs/viewer.md: each page of ``evidence-catalog serve`` over a small
demo catalog, as headless Chromium shows it.

``python docs/viewer_pictures.py`` (needs Debian's chromium and Playwright for Python) builds
the demo catalog in a temporary folder, starts the viewer on it exactly as a user does
(``evidence-catalog serve --port 0``, read-only, on 127.0.0.1), opens each page and writes the
screenshots to ``docs/viewer/``.  The browser tests (``tests/test_viewer_browser.py``) build the
same catalog with :func:`build_demo` and run the same viewer with :func:`running_viewer`.

Nothing in the demo is real: the pictures and the video are drawn here, their EXIF and
container tags (camera, time, GPS) written by this script, the feed's posts made up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import attrs  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from evidence_catalog import Agent, Catalog  # noqa: E402
from evidence_catalog.model import EventTime, GeoPosition, Place  # noqa: E402
from tests.conftest import FixedClock, make_jpeg  # noqa: E402

OUT = HERE / "viewer"
#: The browser window the pictures are taken in.
VIEWPORT = {"width": 1280, "height": 800}
#: What the search picture searches for (a word of the demo feed's posts).
SEARCH = "school"
#: The demo video: seconds, frames a second, size.
VIDEO_SECONDS = 8
VIDEO_RATE = 12
VIDEO_SIZE = (480, 270)
#: Where the demo's things are said to be (made up, in Ukraine, for the map).
KHARKIV = (49.9935, 36.2304)
IZIUM = (49.2103, 37.2562)
MYKOLAIV = (46.9750, 31.9946)

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Demo Monitor</title><link>https://monitor.example.org/</link><description>made up</description>
<item><guid>demo-1</guid><title>Школу обстріляли</title>
<description>Shelling near a school on the east side of Izium this morning; the date and place are
not yet verified. Школу обстріляли вранці. #verification @MapDesk</description>
<link>https://monitor.example.org/posts/1</link><author>field-monitor@example.org (Field Monitor)</author>
<pubDate>Tue, 06 May 2025 07:40:00 GMT</pubDate></item>
<item><guid>demo-2</guid><title>Bridge approach</title>
<description>A video of the bridge approach circulates; please help us geolocate it.</description>
<link>https://monitor.example.org/posts/2</link><author>desk@example.org (Map Desk)</author>
<pubDate>Wed, 07 May 2025 12:05:00 GMT</pubDate></item>
</channel></rss>
"""


@attrs.frozen
class Demo:
    """The demo catalog, and what the tests and pictures look for in it."""

    path: Path
    street: str  # a photo with EXIF GPS, a claim, an assessment
    video: str  # a video of VIDEO_SECONDS seconds, analysed (poster frame), with a report linked
    video_sha256: str
    flagged: str  # a picture a "graphic" flag withholds
    flagged_sha256: str
    school: str  # a PNG, tagged, with a claim and a relation
    records: int
    files: dict[str, tuple[str, str]]  # each file added: its name, its record and SHA-256


def _font(size: int) -> Any:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def street(size: tuple[int, int] = (800, 533), dusk: int = 0) -> Image.Image:
    """A drawn street: houses with lit windows under a graded sky."""
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(40 + y // 6 + dusk, 60 + y // 8, 110 - y // 8))
    ground = int(height * 0.75)
    draw.rectangle([0, ground, width, height], fill=(70, 70, 72))
    step = width // 4
    for n, tall in enumerate((0.36, 0.47, 0.32, 0.43)):
        x = n * step + step // 8
        top = ground - int(height * tall)
        draw.rectangle([x, top, x + step * 3 // 4, ground], fill=(95, 90, 88))
        for row in range(top + 16, ground - 24, 36):
            for col in range(x + 12, x + step * 3 // 4 - 20, 30):
                draw.rectangle([col, row, col + 16, row + 20], fill=(210, 190, 120))
    return image


def school(size: tuple[int, int] = (800, 533)) -> Image.Image:
    """A drawn school building with a dark hole in its wall."""
    width, height = size
    image = Image.new("RGB", size, (176, 196, 214))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, height * 3 // 4, width, height], fill=(96, 110, 80))
    draw.rectangle([width // 8, height // 4, width * 7 // 8, height * 3 // 4], fill=(190, 120, 90))
    for col in range(width // 8 + 30, width * 7 // 8 - 40, 70):
        for row in (height // 4 + 30, height // 2):
            draw.rectangle([col, row, col + 40, row + 50], fill=(235, 240, 245))
    draw.ellipse([width // 2 - 60, height // 3, width // 2 + 70, height // 3 + 120], fill=(35, 30, 30))
    draw.text((width // 8 + 10, height // 4 - 40), "SCHOOL No. 4", fill=(40, 40, 40), font=_font(28))
    return image


def _jpeg(image: Image.Image, *, gps: tuple[float, float], taken: str) -> bytes:
    """*image* as a JPEG with the tests' EXIF (camera, time with offset) at *gps*."""
    exif = Image.open(io.BytesIO(make_jpeg(gps=(*gps, 120.0), taken=taken, offset="+03:00"))).getexif()
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85, exif=exif)
    return out.getvalue()


def make_video(path: Path, *, seconds: int = VIDEO_SECONDS, rate: int = VIDEO_RATE) -> Path:
    """An H.264 MP4 of *seconds* seconds: a drawn road with a lorry crossing it and the
    second shown large, so a frame tells where in the video it is.  The index (``moov``) is
    written last, as a camera writes it, and grain (fixed noise) makes it a few hundred
    kilobytes: a browser reads it with byte ranges that start past the first byte."""
    import av
    import numpy as np

    width, height = VIDEO_SIZE
    font = _font(48)
    grain = np.random.default_rng(25)
    with av.open(str(path), "w", format="mp4") as container:
        container.metadata["location"] = "+{:08.4f}+{:09.4f}/".format(*IZIUM)
        container.metadata["creation_time"] = "2025-05-06T05:12:00.000000Z"
        stream = container.add_stream("libx264", rate=rate, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for number in range(seconds * rate):
            image = street((width, height), dusk=number % 20)
            draw = ImageDraw.Draw(image)
            x = int((number / (seconds * rate)) * (width + 120)) - 120
            road = int(height * 0.8)
            draw.rectangle([x, road - 40, x + 100, road], fill=(60, 90, 50))
            draw.ellipse([x + 10, road - 10, x + 30, road + 10], fill=(20, 20, 20))
            draw.ellipse([x + 70, road - 10, x + 90, road + 10], fill=(20, 20, 20))
            draw.text((16, 12), f"{number // rate:02d}s", fill=(255, 255, 255), font=font)
            pixels = np.asarray(image).astype(np.int16) + grain.integers(-8, 9, (height, width, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(pixels, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def build_demo(folder: Path) -> Demo:
    """Make the demo catalog in *folder* (``folder/catalog``; its input files beside it)."""
    inputs = folder / "inputs"
    inputs.mkdir(parents=True)
    operator = Agent(name="Ana Analyst", email="ana@example.org", organization="Example NGO", host="laptop-7")
    examples = ROOT / "examples"
    clock = FixedClock(dt.datetime(2025, 5, 10, 9, 0, tzinfo=dt.UTC))  # acquired after the events
    with Catalog.init(folder / "catalog", operator=operator, clock=clock) as catalog:
        files = {
            "kharkiv-street-0505.jpg": _jpeg(street(), gps=KHARKIV, taken="2025:05:05 21:31:07"),
            "izium-school-east-wall.png": None,
            "bridge-approach.mp4": None,
            "mykolaiv-market-casualties.jpg": _jpeg(street(dusk=60), gps=MYKOLAIV, taken="2025:05:09 10:02:44"),
            "radio-intercept.wav": (examples / "radio-intercept.wav").read_bytes(),
            "field-report.pdf": (examples / "field-report.pdf").read_bytes(),
            "witness-statement.txt": (examples / "witness-statement.txt").read_bytes(),
        }
        ids: dict[str, str] = {}
        shas: dict[str, str] = {}
        for name, data in files.items():
            path = inputs / name
            if name.endswith(".png"):
                school().save(path, format="PNG")
            elif name.endswith(".mp4"):
                make_video(path)
            else:
                assert data is not None
                path.write_bytes(data)
            [added] = catalog.add([path], tags=_tags(name))
            ids[name], shas[name] = added.record_id, added.sha256
        feed = inputs / "demo-monitor.rss"
        feed.write_text(FEED, encoding="utf-8")
        before = set(catalog.record_ids())
        catalog.ingest(feed, tags=["izium"])
        ingested = sorted(set(catalog.record_ids()) - before)
        reports = {catalog.record(r).title: catalog.record(r).reports[0] for r in ingested}
        video, street_id = ids["bridge-approach.mp4"], ids["kharkiv-street-0505.jpg"]
        catalog.link(reports["Bridge approach"].id, video, note="the post announces this video")
        catalog.claim(
            street_id,
            summary="Shelling of a residential street",
            category="rome-8-2-b-ii",
            event_time=EventTime(start=dt.datetime(2025, 5, 5, 18, 0, tzinfo=dt.UTC), precision="hour"),
            place=Place(name="Kharkiv", position=GeoPosition(latitude=KHARKIV[0], longitude=KHARKIV[1])),
            source_description="a resident, by phone",
        )
        catalog.assess(
            street_id,
            "in_progress",
            methods=["geolocation", "chronolocation"],
            confidence="medium",
            note="Skyline matched against street-level imagery; shadows consistent with early evening.",
        )
        catalog.claim(
            video,
            summary="Military lorry crossing the bridge approach",
            event_time=EventTime(
                start=dt.datetime(2025, 5, 6, 5, 0, tzinfo=dt.UTC),
                end=dt.datetime(2025, 5, 6, 6, 0, tzinfo=dt.UTC),
                precision="hour",
            ),
            place=Place(name="Izium, bridge approach", position=GeoPosition(latitude=49.205, longitude=37.27)),
            source_report_id=reports["Bridge approach"].id,
        )
        catalog.assess(video, "verified", methods=["geolocation"], confidence="high", note="Matched to the bridge.")
        school_id = ids["izium-school-east-wall.png"]
        catalog.claim(
            school_id,
            summary="Damage to a school",
            category="rome-8-2-b-ix",
            event_time=EventTime(start=dt.datetime(2025, 5, 6, tzinfo=dt.UTC), precision="day"),
            place=Place(name="Izium, school No. 4", position=GeoPosition(latitude=IZIUM[0], longitude=IZIUM[1])),
            source_description="Demo Monitor's post of 6 May",
        )
        catalog.relate(school_id, "same_incident_as", ingested[0])
        flagged = ids["mykolaiv-market-casualties.jpg"]
        catalog.flag(flagged, "graphic", "shows injured people")
        report = catalog.verify(remember=False)  # (nothing kept outside the demo's folder)
        assert report.ok, [str(f) for f in report.findings]
        count = len(catalog.record_ids())
    return Demo(
        path=folder / "catalog",
        street=street_id,
        video=video,
        video_sha256=shas["bridge-approach.mp4"],
        flagged=flagged,
        flagged_sha256=shas["mykolaiv-market-casualties.jpg"],
        school=school_id,
        records=count,
        files={name: (ids[name], shas[name]) for name in ids},
    )


def _tags(name: str) -> list[str]:
    place = {"kharkiv": "kharkiv", "izium": "izium", "bridge": "izium", "mykolaiv": "mykolaiv"}
    return [place.get(name.split("-")[0], "documents")]


# -- the viewer, as a user starts it --------------------------------------------------------------


@contextlib.contextmanager
def running_viewer(catalog: Path, *args: str, timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``evidence-catalog serve --catalog CATALOG --port 0 ARGS`` in a process of its own,
    until the block ends (then stopped with Ctrl-C, SIGINT); yields the address it printed
    (``http://127.0.0.1:PORT/``) and the process, whose standard error is a pipe."""
    command = [sys.executable, "-m", "evidence_catalog", "serve", "--catalog", str(catalog), "--port", "0", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("EVIDENCE_CATALOG_VIEWER_TOKEN", None)
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        address = _address(process, timeout)
        yield address, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _address(process: subprocess.Popen[str], timeout: float) -> str:
    """The address the viewer's first line names (``... at http://127.0.0.1:PORT/ ...``)."""
    import selectors

    assert process.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"the viewer printed nothing in {timeout} s")
    line = process.stderr.readline()
    found = re.search(r" at (http://\S+/) ", line)
    if found is None:
        rest = process.stderr.read() if process.poll() is not None else ""
        raise RuntimeError(f"the viewer did not start: {line}{rest}")
    return found.group(1)


# -- the pictures ---------------------------------------------------------------------------------


def pages(demo: Demo) -> dict[str, str]:
    """The picture's name and the page it shows."""
    return {
        "records": "records",
        "record-video": f"records/{demo.video}",
        "record-photo": f"records/{demo.street}",
        "record-claims": f"records/{demo.street}",
        "search": f"records?q={SEARCH}",
        "log": "log",
        "map": "map?bbox=22,44,41,53",
        "timeline": "timeline",
    }


#: Pictures of the whole page (the map is taller than the window), at most this high.
WHOLE_PAGE = {"map"}
MAX_HEIGHT = 1400
#: Pictures of the window scrolled to a heading (a record's claims, assessments and custody
#: events; not its acquisitions, whose original path is the demo's temporary folder).
SCROLLED = {"record-claims": "Claims (alleged)"}


def take_pictures(page: Any, address: str, demo: Demo, out: Path) -> list[Path]:
    """Open each of :func:`pages` in *page* (a Playwright page) and write its picture to *out*."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, path in pages(demo).items():
        page.goto(address + path, wait_until="load")
        # Every picture in the window decoded (lazy ones below it never load).
        _wait(
            page,
            "() => Array.from(document.images).every(i => (i.complete && i.naturalWidth > 0)"
            " || i.getBoundingClientRect().top > window.innerHeight)",
        )
        if name == "record-video":  # sought to where the lorry crosses, its frame shown
            page.evaluate(
                """() => { const video = document.querySelector('video');
                   video.currentTime = 3.5;
                   return new Promise(done => video.addEventListener('seeked', done, {once: true})); }"""
            )
            _wait(page, "() => document.querySelector('video').readyState >= 3")
            page.wait_for_timeout(1000)  # the player's spinner gone
        if name in SCROLLED:
            page.get_by_role("heading", name=SCROLLED[name]).evaluate("(heading) => heading.scrollIntoView()")
        shot = out / f"{name}.raw.png"
        page.screenshot(path=str(shot), full_page=name in WHOLE_PAGE)
        target = out / f"{name}.png"
        small(shot, target)
        shot.unlink()
        written.append(target)
    return written


def _wait(page: Any, function: str, timeout: float = 30) -> None:
    """Until the JavaScript *function* is true in *page* (evaluated through the DevTools
    protocol: Playwright's ``wait_for_function`` evaluates a string, which the pages' policy
    refuses)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true in {timeout} s: {function}")
        time.sleep(0.05)


def small(source: Path, target: Path) -> None:
    """*source* as a small PNG of 128 colours at *target*."""
    image = Image.open(source).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, MAX_HEIGHT)))
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(target, optimize=True)


def main() -> int:
    import shutil

    from playwright.sync_api import sync_playwright

    from evidence_catalog.capture.browser import CHROMIUM_ARGS

    with tempfile.TemporaryDirectory() as tmp:
        demo = build_demo(Path(tmp))
        with running_viewer(demo.path) as (address, _), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=list(CHROMIUM_ARGS))
            page = browser.new_page(viewport=VIEWPORT)
            for path in take_pictures(page, address, demo, OUT):
                print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
