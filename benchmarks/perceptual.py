"""What perceptual hashing costs (issue 23, point 2): PDQ of photos and of a video's frames.

Two figures, on media made here (photos with Pillow, the video with PyAV), each against a
standard tool doing the part of the work that cannot be avoided, in the same run, rounds
alternating, the median counting:

- **photos**: :func:`evidence_catalog.extract.perceptual.perceptual_hashes` of ``--photos``
  12-megapixel JPEG photos (4000 x 3000; each in a process of its own under its limits, forked
  from the hasher's fork server, as the operation runs it) against decoding the same JPEGs in
  full with Pillow in this process (``Image.open(...).load()``), what any tool that looks at
  every pixel pays.  Reported as photos hashed per second and the ratio of the times.  PDQ
  needs only a 512-pixel picture, which Pillow decodes from a JPEG at a reduced DCT scale, so
  hashing can beat a full decode even with a process per photo.
- **video**: ``perceptual_hashes`` of one 720p H.264 video of ``--video-seconds`` seconds at
  30 frames a second (one hash per second, keyframes, contact sheet) against
  ``ffmpeg -i VIDEO -f null -`` (FFmpeg decoding every frame, nothing else: the floor for any
  tool that looks at every frame).  Reported as seconds of video hashed per second of wall time
  and the ratio of the times.

Run alone: ``python benchmarks/perceptual.py [--photos N] [--video-seconds S] [--video-size WxH]
[--repeat N]``.  The defaults (10 photos, 60 s of 720p) take about a minute; the figure for a
long video is ``--video-seconds 3600``, on a quiet machine (making the hour of video takes
longer than hashing it: ``--make-video FILE`` writes it alone, beforehand, and ``--video FILE``
uses it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from evidence_catalog.extract.perceptual import perceptual_hashes

MIN_ROUNDS = 3
PHOTO_SIZE = (4000, 3000)


def _picture(seed: int, size: tuple[int, int]) -> np.ndarray[Any, Any]:
    """A random picture with detail at every scale (as the tests make), ``uint8`` RGB."""
    rng = np.random.default_rng(seed)
    total = np.zeros((size[1], size[0], 3), dtype=np.float32)
    for level in range(6):
        cells = rng.random((3 << level, 4 << level, 3)).astype(np.float32)
        layers = [Image.fromarray(cells[:, :, c], mode="F").resize(size, Image.Resampling.BILINEAR) for c in range(3)]
        total += np.stack([np.asarray(layer) for layer in layers], axis=2) / (1.6**level)
    total -= total.min()
    total *= 255 / total.max()
    return total.astype(np.uint8)


def _photos(folder: Path, count: int) -> list[Path]:
    base = _picture(1, PHOTO_SIZE)
    paths = []
    for number in range(count):
        path = folder / f"photo-{number}.jpg"
        Image.fromarray(np.roll(base, 97 * number, axis=1)).save(path, quality=90)
        paths.append(path)
    return paths


def _video(path: Path, seconds: float, size: tuple[int, int], rate: int = 30) -> Path:
    """*seconds* of H.264 at *size*: a new scene every 5 s, panning a pixel per frame."""
    scenes = [_picture(seed, size) for seed in range(4)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for number in range(round(seconds * rate)):
            scene = scenes[(number // (5 * rate)) % len(scenes)]
            frame = av.VideoFrame.from_ndarray(np.roll(scene, number % size[0], axis=1), format="rgb24")
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _alternate(repeat: int, ours: Callable[[], object], theirs: Callable[[], object]) -> tuple[float, float]:
    times: tuple[list[float], list[float]] = ([], [])
    for round_number in range(max(repeat, MIN_ROUNDS)):
        sides = [(times[0], ours), (times[1], theirs)]
        for found, run in sides if round_number % 2 == 0 else reversed(sides):
            started = time.perf_counter()
            run()
            found.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def _hash_all(paths: list[Path], media_type: str, work: Path) -> None:
    for path in paths:
        result = perceptual_hashes(path, media_type, work=work)
        if not result.hashes or result.errors:
            raise RuntimeError(f"{path.name}: {result.errors}")


def _decode_all(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            image.load()


def _ffmpeg_null(path: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True, stdout=subprocess.DEVNULL
    )


def bench(
    scratch: Path,
    photos: int,
    video_seconds: float,
    video_size: tuple[int, int],
    repeat: int,
    make_row: Callable[..., Any],
    video: Path | None = None,
) -> list[Any]:
    """The rows of the two figures (see the module's docstring); *video*, made with
    ``--make-video`` beforehand, instead of one made here (of *video_seconds* at *video_size*)."""
    folder = Path(tempfile.mkdtemp(prefix="perceptual-", dir=scratch))
    try:
        print(f"(making {photos} photos of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} and {video_seconds:g} s of video ...)")
        paths = _photos(folder, photos)
        if video is None:
            video = _video(folder / "video.mp4", video_seconds, video_size)
        work = folder / "work"
        work.mkdir()
        ours, theirs = _alternate(repeat, lambda: _hash_all(paths, "image/jpeg", work), lambda: _decode_all(paths))
        rows = [
            make_row(
                benchmark=f"PDQ of {photos} 12-megapixel JPEGs",
                ours=f"{photos / ours:.1f} photos/s ({ours / photos * 1000:.0f} ms each)",
                reference=f"Pillow full decode {theirs / photos * 1000:.0f} ms each",
                ratio=f"{ours / theirs:.2f}x the time",
                target="none (info)",
                status="INFO",
            )
        ]
        ours, theirs = _alternate(repeat, lambda: _hash_all([video], "video/mp4", work), lambda: _ffmpeg_null(video))
        label = f"{video_size[0]}x{video_size[1]}"
        rows.append(
            make_row(
                benchmark=f"PDQ of {video_seconds:g} s of {label} H.264, 1 hash/s",
                ours=f"{video_seconds / ours:.1f} s of video/s",
                reference=f"ffmpeg -f null {video_seconds / theirs:.1f} s of video/s",
                ratio=f"{ours / theirs:.2f}x the time",
                target="none (info)",
                status="INFO",
            )
        )
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark alone and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=10, help="12-megapixel photos (default 10)")
    parser.add_argument("--video-seconds", type=float, default=60.0, help="video length in seconds (default 60)")
    parser.add_argument("--video-size", default="1280x720", help="video frame size WxH (default 1280x720)")
    parser.add_argument("--repeat", type=int, default=MIN_ROUNDS, help="rounds (default 3)")
    parser.add_argument(
        "--make-video", type=Path, help="only write the video of --video-seconds and --video-size to this file"
    )
    parser.add_argument(
        "--video", type=Path, help="a video made by --make-video, instead of making one (its length is --video-seconds)"
    )
    args = parser.parse_args(argv)
    width, _, height = args.video_size.partition("x")
    if args.make_video is not None:
        _video(args.make_video, args.video_seconds, (int(width), int(height)))
        return

    def row(**fields: str) -> dict[str, str]:
        return fields

    with tempfile.TemporaryDirectory() as scratch:
        size = (int(width), int(height))
        rows = bench(Path(scratch), args.photos, args.video_seconds, size, args.repeat, row, video=args.video)
        for line in rows:
            print(" | ".join(line.values()))


if __name__ == "__main__":
    main(sys.argv[1:])
