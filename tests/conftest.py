"""Shared fixtures: real catalogs in temporary directories, real image files, a fixed clock."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from PIL import Image
from PIL.ExifTags import GPS, IFD, Base

from evidence_catalog import Agent, Catalog
from evidence_catalog.cli import main
from tests.media_server import MediaServer

# Property tests here do real I/O (SQLite files, blobs): time limits per example would only make
# them flaky on a loaded machine.  Failing examples are printed so that CI failures reproduce.
settings.register_profile("evidence-catalog", deadline=None, print_blob=True)
settings.load_profile("evidence-catalog")


class ZeroStream:
    """A stream of zero bytes of any length that never exists in memory at once."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class FixedClock:
    """A clock that starts at a fixed instant and ticks one millisecond per reading."""

    def __init__(self, start: dt.datetime = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def operator() -> Agent:
    return Agent(name="Test Analyst", email="analyst@example.org", organization="Example NGO", host="test-host")


@pytest.fixture
def catalog(tmp_path: Path, operator: Agent) -> Iterator[Catalog]:
    with Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock()) as cat:
        yield cat


def make_jpeg(
    *,
    make: str | None = "DemoCam",
    model: str | None = "Model 1",
    taken: str | None = "2024:03:01 10:15:30",
    offset: str | None = "+02:00",
    gps: tuple[float, float, float | None] | None = (50.450333, 30.5235, 179.5),
    colour: tuple[int, int, int] = (120, 130, 140),
) -> bytes:
    """A real JPEG written by Pillow, with the EXIF fields asked for."""
    image = Image.new("RGB", (64, 48), colour)
    exif = Image.Exif()
    if make:
        exif[Base.Make] = make
    if model:
        exif[Base.Model] = model
    exif[Base.Software] = "tests"
    if taken:
        exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = taken
    if offset:
        exif.get_ifd(IFD.Exif)[Base.OffsetTimeOriginal] = offset
    if gps is not None:
        lat, lon, alt = gps
        info = exif.get_ifd(IFD.GPSInfo)
        info[GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        info[GPS.GPSLatitude] = _dms(abs(lat))
        info[GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        info[GPS.GPSLongitude] = _dms(abs(lon))
        if alt is not None:
            info[GPS.GPSAltitudeRef] = b"\x01" if alt < 0 else b"\x00"
            info[GPS.GPSAltitude] = abs(alt)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 4)
    return float(degrees), float(minutes), seconds


@pytest.fixture
def jpeg_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a real JPEG with EXIF into the test's directory and return its path."""
    counter = iter(range(10_000))

    def write(name: str | None = None, **kwargs: object) -> Path:
        path = tmp_path / (name or f"photo-{next(counter)}.jpg")
        path.write_bytes(make_jpeg(**kwargs))  # type: ignore[arg-type]
        return path

    return write


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the CLI in-process through its real entry point; return exit code and output."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) if isinstance(a, Path) else a for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def server() -> Iterator[MediaServer]:
    """A real HTTP server on 127.0.0.1, one per test module; each test serves under its own path
    prefix (see ``base``)."""
    with MediaServer() as running:
        yield running


@pytest.fixture
def base() -> str:
    """A path prefix of this test's own on the shared server."""
    return f"/{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _verifier_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints a verification remembers go to a folder of each test's own, never the home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
