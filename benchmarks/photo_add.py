"""Adding a phone's photos (issue 22's newsroom case): ``add --recursive`` of a folder of JPEG
photos, with the analysis an add runs by default and without it.

``--photos`` JPEGs (default 100) of ``--size`` pixels (default 4032 x 3024, a phone's 12
megapixels), each a picture of its own with detail at every scale and an EXIF block (camera,
time, GPS), made with Pillow at quality 90.  Timed in alternating rounds, medians compared, in
the same run:

* ``evidence-catalog add --recursive`` as users run it (a new process, start-up included): the
  files stored, hashed and recorded, then each photo analysed (PDQ perceptual hash and Content
  Credentials, each in a child process of its own; two photos at a time);
* the same with ``--no-analyze``: what storing and recording cost alone;
* ``cp -r`` + ``sha256sum`` + ``sync``, the least that storing a copy and its digest costs.

Reported: photos per second of each, the ratios to ``cp``, and what the analysis adds per
photo (the difference of the two adds' medians divided by the photos).  ``--baseline DIR``
times another checkout of the library too (the code before a change), with and without
analysis, in the same rounds.  Each run of ours is checked: every photo a new record.

Run alone: ``python benchmarks/photo_add.py [--photos N] [--size WxH] [--repeat N]
[--baseline DIR]``; about a minute at the defaults on two CPUs.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from small_files import REPO, Side, _env, _fresh, _new_catalog, cp_sha256sum_sync, in_scratch, read_through

HERE = Path(__file__).resolve().parent
SEED = 20261205


def _exif(number: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Benchmark", "Phone 12"  # Make, Model
    exif[0x0132] = f"2026:03:{1 + number % 28:02d} 12:{number % 60:02d}:00"  # DateTime
    gps = {1: "N", 2: (50.0, 27.0, float(number % 60)), 3: "E", 4: (30.0, 31.0, 12.5)}
    exif[0x8825] = gps  # GPSInfo
    return exif.tobytes()


def make_photos(folder: Path, count: int, size: tuple[int, int], seed: int = SEED) -> int:
    """*count* JPEG photos of *size*, each its own picture (random colour grids at five scales,
    enlarged smoothly, plus sensor-like noise), with EXIF; return their total size."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    total = 0
    width, height = size
    for number in range(count):
        picture = np.zeros((height, width, 3), np.float32)
        for level in range(5):
            cells = rng.random((3 << level, 4 << level, 3)).astype(np.float32)
            layer = Image.fromarray((cells * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
            picture += np.asarray(layer, np.float32) / (1.6**level)
        picture *= 255 / picture.max()
        picture += rng.normal(0, 4, picture.shape).astype(np.float32)
        out = io.BytesIO()
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90, exif=_exif(number))
        (folder / f"IMG_{number:04d}.jpg").write_bytes(out.getvalue())
        total += out.tell()
    return total


def cli_add(library: Path, photos: Path, work: Path, count: int, *, analyze: bool) -> float:
    """``python -m evidence_catalog add --recursive PHOTOS`` (``--no-analyze`` unless
    *analyze*) into a new catalog; the wall time."""
    catalog = work / "catalog"
    _new_catalog(library, catalog)
    command = [sys.executable, "-m", "evidence_catalog", "add", "--recursive", os.fspath(photos)]
    command += ["--catalog", os.fspath(catalog), *([] if analyze else ["--no-analyze"])]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=_env(library), cwd=work)
    seconds = time.perf_counter() - started
    lines = done.stdout.splitlines()
    if len(lines) != count or any(line.split("\t")[2] != "new" for line in lines):
        raise AssertionError(f"the command did not add every photo as a new record ({len(lines)} lines)")
    _fresh(catalog)
    return seconds


def compare(count: int, size: tuple[int, int], repeat: int, work: Path, baseline: Path | None) -> list[Side]:
    """Make the photos, time every side in alternating rounds; return the sides."""
    photos = work / "DCIM"
    print(f"(making {count} photos of {size[0]} x {size[1]} ...)", flush=True)
    total = make_photos(photos, count, size)
    print(f"  {count} photos, {total / (1 << 20):.1f} MiB", flush=True)
    sides = [
        Side("ours, add (with analysis)", lambda w: cli_add(REPO, photos, w, count, analyze=True)),
        Side("ours, add --no-analyze", lambda w: cli_add(REPO, photos, w, count, analyze=False)),
        Side("cp -r + sha256sum + sync", lambda w: cp_sha256sum_sync(photos, w, count)),
    ]
    if baseline is not None:
        sides += [
            Side("before, add (with analysis)", lambda w: cli_add(baseline, photos, w, count, analyze=True)),
            Side("before, add --no-analyze", lambda w: cli_add(baseline, photos, w, count, analyze=False)),
        ]
    for round_number in range(repeat):
        for side in sides if round_number % 2 == 0 else list(reversed(sides)):
            read_through(photos)
            side.seconds.append(side.run(work))
            print(f"    {side.name}: {side.seconds[-1]:.2f} s ({count / side.seconds[-1]:.1f} photos/s)", flush=True)
    return sides


def report(count: int, sides: Sequence[Side]) -> list[str]:
    """The runs, the ratios and the analysis's cost per photo, as lines of text."""
    lines = []
    for side in sides:
        runs = " ".join(f"{s:.2f}" for s in side.seconds)
        lines.append(f"  {count / side.median:7.1f} photos/s  median {side.median:7.2f} s  (runs: {runs})  {side.name}")
    medians = {side.name: side.median for side in sides}
    cp = medians["cp -r + sha256sum + sync"]
    for name, median in medians.items():
        if name != "cp -r + sha256sum + sync":
            lines.append(f"  cp / {name}: {cp / median:.3f}x")
    for who in ("ours", "before"):
        analysed, plain = medians.get(f"{who}, add (with analysis)"), medians.get(f"{who}, add --no-analyze")
        if analysed is not None and plain is not None:
            lines.append(f"  {who}: the analysis adds {(analysed - plain) / count * 1000:.1f} ms a photo")
    if "before, add (with analysis)" in medians:
        ratio = medians["before, add (with analysis)"] / medians["ours, add (with analysis)"]
        lines.append(f"  before / ours, add with analysis: {ratio:.2f}x")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=int, default=100, help="number of photos (default 100)")
    parser.add_argument("--size", default="4032x3024", help="width x height of each photo (default 4032x3024)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout of the library to time too")
    parser.add_argument("--workdir", type=Path, default=HERE / "scratch", help="where to work (on a disk, not tmpfs)")
    args = parser.parse_args(argv)
    width, _, height = args.size.partition("x")
    baseline = None if args.baseline is None else args.baseline.resolve()

    def run(work: Path) -> list[str]:
        sides = compare(args.photos, (int(width), int(height)), args.repeat, work, baseline)
        return report(args.photos, sides)

    return in_scratch(args.workdir, "photos-", run)


if __name__ == "__main__":
    sys.exit(main())
