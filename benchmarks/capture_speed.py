"""Capture speed (issue 22, target 6): ``capture`` vs ``curl`` on the same URLs, in the same run.

Run by ``benchmarks/run.py`` as its ``capture`` benchmark, or alone::

    .venv/bin/python benchmarks/capture_speed.py --size-mib 500 --batch 50 --repeat 3
    .venv/bin/python benchmarks/capture_speed.py --baseline ../old-checkout   # before and after

A loopback HTTP server in this process (``tests/media_server.py``, ``sendfile``) serves a file of
``--size-mib`` random bytes as ``video/mp4`` under a ``.mp4`` name (yt-dlp's generic extractor
takes it as a direct media link), and ``--batch`` small files (16-256 KiB, distinct) the same way.
Each side runs in a process of its own, sides interleaved (the order reversed every other
round), ``sync`` before each; the median of ``--repeat`` rounds is compared:

one URL
    ``curl -o`` (the yardstick) and, for context, ``curl -o`` + ``sync FILE`` (the download made
    durable, as a capture makes it: on a disk slower than the loopback, the floor of any capture)
    and ``curl -o`` + ``sha256sum`` + ``sync``;
    ``evidence-catalog capture URL`` as users run it (the whole command: interpreter, imports,
    opening the catalog, yt-dlp's set-up, download, hashing, fsync, record); ``Catalog.capture``
    in a process of its own, only the call timed (yt-dlp is imported and set up inside it, as
    for every first capture of a process); and the same call as the second capture of a process
    (yt-dlp already set up).  Target: at least 0.6x ``curl -o``.  Every capture keeps a web
    archive of its requests (a WACZ holding the media a second time) unless ``--no-archive``
    is given: ``evidence-catalog capture --no-archive URL`` is timed too, for what the archive
    costs (information, no target).
a batch
    ``curl`` fetching the list in one process (``-K``, one URL after another) vs
    ``evidence-catalog capture --from-file`` of the same list, and ``Catalog.capture`` of the
    list (the call).  Per-URL cost and the ratio; no target in the issue ("batches amortise
    yt-dlp's set-up").

Besides wall time, each capture reports what it did, which a busy machine does not blur: the
CPU time of the process (all threads), the bytes it read and wrote (``rchar``/``wchar`` of
``/proc/self/io``; Linux), and the requests the server received per URL.  With
``--baseline DIR`` (a checkout of the code to compare with, e.g. ``git worktree add``), every
capture side also runs with ``DIR`` first on ``PYTHONPATH``, in the same rounds: before and
after on the same machine in the same run.

The child mode (``capture_speed.py child CATALOG URL...``, started by this module) creates a
catalog, optionally captures a warm-up URL (``--warm URL``), then times one
``Catalog.capture`` call of the URLs and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIB = 1024 * 1024
OPERATOR = "Benchmark <bench@example.org>"
TARGET = 0.6
DEFAULT_SIZE_MIB = 500
DEFAULT_BATCH = 50
SEED = 20261126
#: What a child reports and the benchmark keeps: wall and CPU time (all threads, and the thread
#: that called ``capture``), bytes read and written through system calls.
COUNTED = ("seconds", "cpu_seconds", "main_thread_cpu_seconds", "rchar", "wchar")


# -- the child -----------------------------------------------------------------------------------


def proc_io() -> dict[str, int]:
    """This process's I/O counters (``/proc/self/io``: ``rchar``, ``wchar`` ...), empty where
    Linux does not give them."""
    try:
        with open("/proc/self/io", encoding="ascii") as stream:
            return {k: int(v) for k, v in (line.split(": ") for line in stream if ": " in line)}
    except OSError:
        return {}


def child(argv: Sequence[str]) -> int:
    """Create a catalog, capture ``--warm`` (untimed), then time ``Catalog.capture(URLS)``."""
    parser = argparse.ArgumentParser(prog="capture_speed.py child")
    parser.add_argument("catalog")
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--warm", default=None)
    args = parser.parse_args(argv)
    from evidence_catalog import Catalog
    from evidence_catalog.capture import CaptureOptions

    report: dict[str, Any] = {}
    with Catalog.init(args.catalog, operator=OPERATOR) as catalog:
        if args.warm is not None:
            [first] = catalog.capture(args.warm, options=CaptureOptions())
            if not first.ok:
                raise SystemExit(f"warm-up capture failed: {first.error}")
        io_before, started = proc_io(), time.perf_counter()
        cpu_before, main_before = time.process_time(), time.thread_time()
        results = catalog.capture(args.urls, options=CaptureOptions())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        main_cpu = time.thread_time() - main_before
        io_after = proc_io()
    report.update(
        seconds=seconds,
        cpu_seconds=cpu,
        main_thread_cpu_seconds=main_cpu,
        ok=sum(r.ok for r in results),
        errors=[r.error for r in results if not r.ok][:3],
        sha256=[r.sha256 for r in results],
        size=sum(r.size or 0 for r in results),
        **{key: io_after[key] - io_before[key] for key in ("rchar", "wchar") if key in io_after},
    )
    print(json.dumps(report))
    return 0


# -- timing --------------------------------------------------------------------------------------


@dataclass
class Side:
    """One way of fetching the same URLs, timed over several rounds."""

    label: str
    run: Callable[[], dict[str, float]]
    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self, key: str = "seconds") -> float:
        values = [r[key] for r in self.runs if key in r]
        return statistics.median(values) if values else float("nan")

    def line(self, size: int, urls: int = 1) -> str:
        seconds = self.median()
        extra = []
        if "cpu_seconds" in self.runs[0]:
            extra.append(f"CPU {self.median('cpu_seconds'):.2f} s")
        if "main_thread_cpu_seconds" in self.runs[0]:
            extra.append(f"of it the calling thread {self.median('main_thread_cpu_seconds'):.2f} s")
        if "rchar" in self.runs[0]:
            extra.append(f"read {self.median('rchar') / MIB:.0f} MiB, wrote {self.median('wchar') / MIB:.0f} MiB")
        per = f", {seconds / urls * 1000:.1f} ms/URL" if urls > 1 else f", {size / MIB / seconds:.0f} MiB/s"
        runs = " ".join(f"{r['seconds']:.2f}" for r in self.runs)
        return f"median {seconds:6.2f} s{per}  ({'; '.join(extra) + '; ' if extra else ''}runs {runs})  {self.label}"


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: Sequence[str | os.PathLike[str]], env: dict[str, str], stdin: str | None = None) -> tuple[str, float]:
    """Run a command; its standard output and the CPU time it used."""
    before = _children_cpu()
    done = subprocess.run(
        [os.fspath(a) for a in argv], input=stdin, check=False, capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} {argv[1] if len(argv) > 1 else ''} exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return done.stdout, _children_cpu() - before


def _alternate(repeat: int, sides: Sequence[Side]) -> None:
    for round_number in range(repeat):
        for side in sides if round_number % 2 == 0 else tuple(reversed(sides)):
            side.runs.append(side.run())


# -- the benchmark -------------------------------------------------------------------------------


def _environment(tree: Path | None) -> dict[str, str]:
    """This environment without proxies (both sides talk to the loopback server directly), with
    *tree* first on ``PYTHONPATH`` (the code under test)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([os.fspath(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _command() -> list[str]:
    """How users run the command: the installed script next to this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("evidence-catalog")
    return [os.fspath(script)] if script.exists() else [sys.executable, "-m", "evidence_catalog"]


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            n = min(8 * MIB, remaining)
            out.write(rng.randbytes(n))
            remaining -= n


def measure(
    scratch: Path, size: int, batch: int, repeat: int, baseline: Path | None = None, tree: Path | None = None
) -> list[dict[str, str]]:
    """Run the benchmark in *scratch*; return summary rows (``benchmark``, ``ours``,
    ``reference``, ``ratio``, ``target``, ``status``)."""
    if os.fspath(REPO) not in sys.path:
        sys.path.insert(0, os.fspath(REPO))
    from tests.media_server import MediaServer, Route

    rng = random.Random(SEED)
    big = scratch / "capture-data.bin"
    print(f"(creating a {size / MIB:g} MiB data file and {batch} small ones ...)", flush=True)
    _write_random(big, size, rng)
    small = [rng.randbytes(rng.randint(16 * 1024, 256 * 1024)) for _ in range(batch)]
    batch_bytes = sum(map(len, small))
    trees: list[tuple[str, Path | None]] = [("", tree)]
    if baseline is not None:
        trees.append((" [baseline]", baseline))
    download = scratch / "capture-curl.bin"
    catalog = scratch / "capture-catalog"
    curl_dir = scratch / "capture-curl"
    rows: list[dict[str, str]] = []

    with MediaServer() as server:
        url = server.route("/capture-bench.mp4", Route(file=big, media_type="video/mp4"))
        warm = server.route("/capture-warm-up.mp4", Route(body=b"\0" * 1024, media_type="video/mp4"))
        urls = [server.route(f"/batch/{i:04d}.mp4", Route(body=b, media_type="video/mp4")) for i, b in enumerate(small)]
        url_file = scratch / "capture-urls.txt"
        url_file.write_text("".join(f"{u}\n" for u in urls), encoding="utf-8")
        curl_config = scratch / "capture-curl.cfg"
        curl_config.write_text(
            "".join(f'url = "{u}"\noutput = "{curl_dir / f"{i:04d}.mp4"}"\n' for i, u in enumerate(urls)),
            encoding="utf-8",
        )
        plain = _environment(None)
        curl = ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*"]

        def fresh() -> None:
            for leftover in (catalog, curl_dir, download):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink(missing_ok=True)
            os.sync()

        def curl_one(*after: Sequence[str | os.PathLike[str]]) -> Callable[[], dict[str, float]]:
            def run() -> dict[str, float]:
                fresh()
                started = time.perf_counter()
                _, cpu = _run([*curl, "--output", download, url], plain)
                for argv in after:
                    cpu += _run(argv, plain)[1]
                seconds = time.perf_counter() - started
                if download.stat().st_size != size:
                    raise AssertionError(f"curl wrote {download.stat().st_size} bytes, expected {size}")
                return {"seconds": seconds, "cpu_seconds": cpu}

            return run

        def curl_batch() -> dict[str, float]:
            fresh()
            curl_dir.mkdir()
            started = time.perf_counter()
            _, cpu = _run([*curl, "--config", curl_config], plain)
            seconds = time.perf_counter() - started
            if sum(p.stat().st_size for p in curl_dir.iterdir()) != batch_bytes:
                raise AssertionError("curl did not fetch the whole batch")
            return {"seconds": seconds, "cpu_seconds": cpu}

        def requests(wanted: Sequence[str]) -> int:
            paths = {u.removeprefix(server.url("")) for u in wanted}
            return sum(len(server.seen(path)) for path in paths)

        def cli(
            env: dict[str, str], wanted: list[str], *args: str | os.PathLike[str]
        ) -> Callable[[], dict[str, float]]:
            def run() -> dict[str, float]:
                fresh()
                _run([*_command(), "init", catalog, "--operator", OPERATOR], env)
                os.sync()
                seen = requests(wanted)
                started = time.perf_counter()
                out, cpu = _run([*_command(), "capture", *args, "--catalog", catalog, "--quiet"], env)
                seconds = time.perf_counter() - started
                captured = [line for line in out.splitlines() if "\tnew\t" in line]
                if len(captured) != len(wanted):
                    raise AssertionError(f"the command captured {len(captured)} of {len(wanted)}: {out[-500:]}")
                return {"seconds": seconds, "cpu_seconds": cpu, "requests": (requests(wanted) - seen) / len(wanted)}

            return run

        def in_process(env: dict[str, str], wanted: list[str], *, warmed: bool) -> Callable[[], dict[str, float]]:
            def run() -> dict[str, float]:
                fresh()
                argv = [sys.executable, Path(__file__), "child", catalog, *wanted]
                seen = requests(wanted)
                out, _ = _run([*argv, *(["--warm", warm] if warmed else [])], env)
                report = json.loads(out)
                if report["ok"] != len(wanted):
                    raise AssertionError(f"captured {report['ok']} of {len(wanted)}: {report['errors']}")
                found = {k: float(v) for k, v in report.items() if k in COUNTED}
                return {**found, "requests": (requests(wanted) - seen) / len(wanted)}

            return run

        one_curl = Side("curl -o", curl_one())
        one_durable = Side("curl -o + sync FILE (fsync: the file on disk)", curl_one(["sync", download]))
        one_context = Side("curl -o + sha256sum + sync", curl_one(["sha256sum", download], ["sync"]))
        one_sides: list[tuple[str, Side]] = []
        batch_curl = Side(f"curl --config (the {batch} URLs, one process)", curl_batch)
        batch_sides: list[tuple[str, Side]] = []
        for suffix, code in trees:
            env = _environment(code)
            one_sides += [
                ("cli", Side(f"evidence-catalog capture URL (the whole command){suffix}", cli(env, [url], url))),
                (
                    "no-archive",
                    Side(
                        f"evidence-catalog capture --no-archive URL (no WACZ){suffix}",
                        cli(env, [url], "--no-archive", url),
                    ),
                ),
                ("cold", Side(f"Catalog.capture, first of its process{suffix}", in_process(env, [url], warmed=False))),
                ("warm", Side(f"Catalog.capture, second of its process{suffix}", in_process(env, [url], warmed=True))),
            ]
            batch_sides += [
                (
                    "cli",
                    Side(f"evidence-catalog capture --from-file{suffix}", cli(env, urls, "--from-file", url_file)),
                ),
                ("call", Side(f"Catalog.capture of the list (the call){suffix}", in_process(env, urls, warmed=False))),
            ]
        # The first large write of a run is slower whichever side makes it: one untimed round.
        for side in (one_curl, *(s for _, s in one_sides)):
            side.run()
        print(f"  one URL, {size / MIB:g} MiB, {repeat} rounds ...", flush=True)
        _alternate(repeat, [one_curl, one_durable, one_context, *(s for _, s in one_sides)])
        print(f"  a batch of {batch} URLs ({batch_bytes / MIB:.1f} MiB), {repeat} rounds ...", flush=True)
        _alternate(repeat, [batch_curl, *(s for _, s in batch_sides)])
    fresh()

    print(f"\n  one URL ({size / MIB:g} MiB):")
    for side in (one_curl, one_durable, one_context, *(s for _, s in one_sides)):
        print(f"    {side.line(size)}")
    for _, side in one_sides[:1]:
        print(f"    requests to the server per URL captured: {side.median('requests'):.1f} (curl: 1)")
    for kind, side in one_sides:
        ratio = one_curl.median() / side.median()
        durable = one_durable.median() / side.median()
        print(f"    ratio curl -o / {side.label}: {ratio:.2f}x (curl -o + sync FILE / it: {durable:.2f}x)")
        info = kind in ("warm", "no-archive") or "[baseline]" in side.label
        status = "INFO" if info else ("PASS" if ratio >= TARGET else "FAIL")
        rows.append(
            {
                "benchmark": f"capture of one {size / MIB:g} MiB URL: {side.label}",
                "ours": f"{side.median():.2f} s, CPU {side.median('cpu_seconds'):.2f} s",
                "reference": (
                    f"curl -o: {one_curl.median():.2f} s (+ sync FILE: {one_durable.median():.2f} s,"
                    f" ratio {one_durable.median() / side.median():.2f}x)"
                ),
                "ratio": f"{ratio:.2f}x",
                "target": f">= {TARGET}x" if status != "INFO" else "none (info)",
                "status": status,
            }
        )
    print(f"\n  a batch of {batch} URLs ({batch_bytes / MIB:.1f} MiB):")
    for side in (batch_curl, *(s for _, s in batch_sides)):
        print(f"    {side.line(batch_bytes, batch)}")
    for _, side in batch_sides[:1]:
        print(f"    requests to the server per URL captured: {side.median('requests'):.1f} (curl: 1)")
    for _, side in batch_sides:
        ratio = batch_curl.median() / side.median()
        print(f"    ratio curl / {side.label}: {ratio:.3f}x")
        rows.append(
            {
                "benchmark": f"capture of {batch} small URLs: {side.label}",
                "ours": f"{side.median():.2f} s, {side.median() / batch * 1000:.0f} ms/URL",
                "reference": f"curl --config: {batch_curl.median():.2f} s",
                "ratio": f"{ratio:.3f}x",
                "target": "none (info)",
                "status": "INFO",
            }
        )
    if baseline is not None:
        print("\n  after / before (median times, same rounds):")
        for group in (one_sides, batch_sides):
            half = len(group) // 2
            for (_, after), (_, before) in zip(group[:half], group[half:], strict=True):
                print(f"    {before.median() / after.median():5.2f}x faster  {after.label}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark alone (``child ...`` is the child process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["child"]:
        return child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=float, default=DEFAULT_SIZE_MIB, help="the one URL's file, in MiB")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="small URLs in the batch")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median counts")
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout of the code to compare with")
    parser.add_argument("--workdir", type=Path, default=HERE / "scratch", help="where scratch files go")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        print("this benchmark needs curl (its yardstick) on the PATH")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="capture-", dir=args.workdir))
    try:
        rows = measure(scratch, int(args.size_mib * MIB), args.batch, args.repeat, args.baseline, REPO)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nSummary")
    for row in rows:
        print(f"  {row['status']:4s}  {row['benchmark']}: {row['ours']}; {row['reference']}; ratio {row['ratio']}")
    return 1 if any(row["status"] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
