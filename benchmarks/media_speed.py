"""What reading media metadata costs (issue 23, point 1): per video added, and for what is not media.

Three figures, on media made here with PyAV (short H.264/AAC MP4s of 320x240, and one MP4 an hour
long at 2 frames a second, whose index of 7,200 video and 169,000 audio samples is what a long
film's header costs to read):

- **probe**: :func:`evidence_catalog.extract.extract_metadata` of each file (a child process under
  its limits, PyAV imported there) against ``ffprobe -show_format -show_streams -of json`` on the
  same file, the standard tool doing the same reading; rounds alternate, the median counts.
- **add**: ``Catalog.add`` of the short videos with media metadata and without it (the extractor
  replaced by what it was before: nothing for video), each round a new catalog, alternating: the
  difference per video is what a video add now costs more.
- **not media**: ``Catalog.add`` of text files and PNGs: how many media readers were started (must
  be 0) -- nothing new is paid for what is not audio or video.

Run alone: ``python benchmarks/media_speed.py [--files N] [--repeat N]``.
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

import evidence_catalog.extract
from evidence_catalog import Catalog, model
from evidence_catalog.extract import extract_metadata, legacy_metadata
from evidence_catalog.extract import media as media_reader

MIN_ROUNDS = 3


def _encode(path: Path, *, seconds: float, size: tuple[int, int], rate: int) -> Path:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=48000)
        for number in range(int(seconds * rate)):
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([number % 256]) * plane.buffer_size)
            frame.pts = number
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = sound.codec_context.frame_size or 1024
        for number in range(int(seconds * 48000 / samples)):
            chunk = av.AudioFrame(format=sound.codec_context.format.name, layout="stereo", samples=samples)
            chunk.sample_rate = 48000
            chunk.pts = number * samples
            for plane in chunk.planes:
                plane.update(bytes(plane.buffer_size))
            for packet in sound.encode(chunk):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return path


def _median_per_file(times: list[float], files: int) -> float:
    return statistics.median(times) / files


def bench(scratch: Path, files: int, repeat: int, make_row: Callable[..., Any]) -> list[Any]:
    """The rows of the three figures (see the module's docstring)."""
    work = Path(tempfile.mkdtemp(prefix="media-", dir=scratch))
    try:
        print(f"(encoding {files} short videos and one of an hour ...)", flush=True)
        short = [_encode(work / f"clip-{n}.mp4", seconds=2, size=(320, 240), rate=25) for n in range(files)]
        hour = _encode(work / "hour.mp4", seconds=3600, size=(64, 48), rate=2)
        rows = [*_probe_rows(short, hour, repeat, make_row), *_add_rows(work, short, repeat, make_row)]
        rows.append(_not_media_row(work, files, make_row))
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ffprobe(path: Path) -> None:
    subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def _probe_rows(short: list[Path], hour: Path, repeat: int, make_row: Callable[..., Any]) -> list[Any]:
    rows = []
    for label, paths in (("short MP4", short), ("one-hour MP4", [hour])):
        ours: list[float] = []
        reference: list[float] = []
        for round_number in range(max(repeat, MIN_ROUNDS)):
            sides: list[tuple[list[float], Callable[[Path], object]]] = [
                (ours, lambda p: extract_metadata(p, "video/mp4")),
                (reference, _ffprobe),
            ]
            for times, read in sides if round_number % 2 == 0 else reversed(sides):
                started = time.perf_counter()
                for path in paths:
                    read(path)
                times.append(time.perf_counter() - started)
        mine, theirs = _median_per_file(ours, len(paths)), _median_per_file(reference, len(paths))
        rows.append(
            make_row(
                benchmark=f"media probe, {label}",
                ours=f"{mine * 1000:.0f} ms/file",
                reference=f"ffprobe {theirs * 1000:.0f} ms/file",
                ratio=f"{mine / theirs:.2f}x",
                target="none (info)",
                status="INFO",
            )
        )
    return rows


def _add_rows(work: Path, short: list[Path], repeat: int, make_row: Callable[..., Any]) -> list[Any]:
    with_media: list[float] = []
    without: list[float] = []
    for round_number in range(max(repeat, MIN_ROUNDS)):
        sides = [(with_media, extract_metadata), (without, legacy_metadata)]
        for times, extractor in sides if round_number % 2 == 0 else reversed(sides):
            folder = work / f"catalog-{round_number}-{len(times)}-{extractor.__name__}"
            catalog = Catalog.init(folder, operator=model.Agent(name="benchmark"))
            saved = evidence_catalog.extract.extract_metadata
            evidence_catalog.extract.extract_metadata = extractor  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                catalog.add(short)
                times.append(time.perf_counter() - started)
            finally:
                evidence_catalog.extract.extract_metadata = saved  # type: ignore[assignment]
                catalog.close()
                shutil.rmtree(folder, ignore_errors=True)
    now, before = _median_per_file(with_media, len(short)), _median_per_file(without, len(short))
    return [
        make_row(
            benchmark=f"add {len(short)} videos, per video",
            ours=f"{now * 1000:.0f} ms with media metadata",
            reference=f"{before * 1000:.0f} ms without",
            ratio=f"+{(now - before) * 1000:.0f} ms ({now / before:.2f}x)",
            target="none (info)",
            status="INFO",
        )
    ]


def _not_media_row(work: Path, files: int, make_row: Callable[..., Any]) -> Any:
    from PIL import Image

    inputs = []
    for number in range(files):
        text = work / f"note-{number}.txt"
        text.write_text(f"note {number}\n", encoding="utf-8")
        picture = work / f"picture-{number}.png"
        Image.new("RGB", (32, 32), (number % 256, 0, 0)).save(picture)
        inputs += [text, picture]
    started: list[Path] = []
    real = media_reader._run_probe

    def counting(path: Path) -> Any:
        started.append(path)
        return real(path)

    media_reader._run_probe = counting  # type: ignore[assignment]
    folder = work / "catalog-not-media"
    try:
        with Catalog.init(folder, operator=model.Agent(name="benchmark")) as catalog:
            catalog.add(inputs)
    finally:
        media_reader._run_probe = real  # type: ignore[assignment]
        shutil.rmtree(folder, ignore_errors=True)
    return make_row(
        benchmark=f"add {len(inputs)} text files and PNGs",
        ours=f"{len(started)} media readers started",
        reference="-",
        ratio="-",
        target="0 started",
        status="PASS" if not started else "FAIL",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark alone and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20, help="short videos (default 20)")
    parser.add_argument("--repeat", type=int, default=MIN_ROUNDS, help="rounds (default 3)")
    args = parser.parse_args(argv)

    def row(**fields: str) -> dict[str, str]:
        return fields

    with tempfile.TemporaryDirectory() as scratch:
        for line in bench(Path(scratch), args.files, args.repeat, row):
            print(" | ".join(line.values()))


if __name__ == "__main__":
    main(sys.argv[1:])
