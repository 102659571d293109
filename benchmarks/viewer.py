"""The ``viewer`` benchmark (issue 25): the read-only web viewer's pages and files, served as users
run it (``evidence-catalog serve --port 0``, uvicorn, on 127.0.0.1), fetched by a plain HTTP client.

Run alone: ``.venv/bin/python benchmarks/viewer.py`` (catalogs of 10,000, 100,000 and 1,000,000
records; ``--sizes`` picks others), or ``benchmarks/run.py --only viewer``.

**The catalogs** are built once with the library and kept under ``build/viewer-bench/`` (one
folder per size, reused by the next run; ``--rebuild`` makes them again); how long each step took
is kept beside them and printed.  Each holds, oldest first:

* 48 JPEG pictures (``Catalog.add``): the first page of the grid is a wall of thumbnails;
* reports from feed-reader digests of 50,000 items each (``Catalog.ingest``; every item a record
  with its report, the digest its source document), up to the size;
* one record (a small text file) with 1,000 notes added one by one (``Catalog.add_note``): 1,001
  custody events and 1,000 notes on its page;
* two sensitivity flags (one picture; one report's author, a handle that occurs in many reports),
  so the viewer withholds as it does by default; and a tag on three records (``rare``) that a
  filtered page looks for.

**The pages** (each timed ``--rounds`` times, fewer when one takes seconds): the records page
(HTML and ``.json``), a page in the middle of the grid, a filter that matches almost nothing (it
stops after looking at 5,000 records), a search, an ingested record, the record with 1,000
events (HTML and JSON), the digest file's page (held by up to 50,000 records), the first and the
last page of the custody log; on a new connection (a browser's first request) and a kept one:
time to the first byte (status line and headers) and to the last, median and p95; and the
server's CPU time per request (``/proc/<pid>/stat``: what a shared machine's load does not
change).  For scale, the same bytes from ``python -m http.server`` in the same rounds (ratio:
its time / ours).  Then the records page and the record with 1,000 events with
``--show-sensitive`` (nothing withheld); the first request after the server starts; and a
browser's full load of the records page (the HTML, then its stylesheet and 48 thumbnails on 6
connections), thumbnails not yet made (a new server; each made by a sandboxed child) and made.
Target: the first page of records in under 300 ms at a million records.

**The video**: a 1 GiB file of random bytes after an MP4 ``ftyp`` box (sniffed as ``video/mp4``,
so served inline as a browser plays it), added with ``analyze=False`` (random bytes have no
frames), kept under ``build/viewer-bench/video-1gib``.  Its bytes (from the page cache: read
once first) are fetched from the viewer (``/records/<id>/artifacts/<sha256>``) and, in the same
rounds, from ``python -m http.server`` serving the blob store's folder (a whole-file GET:
ratio = its time / ours) and from Starlette's own ``FileResponse`` under uvicorn (which answers
ranges, as ``http.server`` does not: it sends the whole file with a 200, checked here): the
whole file; 1 MiB ranges one after another over the whole file on one connection; 200 random
1 MiB ranges; and 200 seeks as a browser makes them (``bytes=N-`` on a new connection, 1 MiB
read, connection dropped).

Peak RSS of a server is its ``VmHWM`` (``/proc/<pid>/status``).  Results go to stdout and, with
``--json PATH``, to a JSON file; exit status 1 when a records page misses the 300 ms.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUILD = REPO / "build" / "viewer-bench"
OPERATOR = "Benchmark <bench@example.org>"
KIB, MIB, GIB = 1024, 1024 * 1024, 1024 * 1024 * 1024
SEED = 20261206

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
PICTURES = 48
NOTES = 1_000
DIGEST_ITEMS = 50_000
RARE_TAG = "rare"
#: A word in about one report in eight (the search timed).
SEARCH_WORD = "причалы"
DEFAULT_ROUNDS = 30
#: A page is timed until this many seconds were spent on it (at least MIN_ROUNDS rounds).
PAGE_BUDGET = 20.0
MIN_ROUNDS = 3
TARGET_MS = 300.0
BROWSER_CONNECTIONS = 6
RANGE = MIB
SEEKS = 200

#: The handle a flag withholds (a protected source's): it occurs in many reports.
WITHHELD_HANDLE = "osint_desk"


# -- building the catalogs -------------------------------------------------------------------------


def write_digest(path: Path, first: int, count: int) -> None:
    """A feed-reader digest of items *first* to *first* + *count* - 1 (distinct texts; feeds of
    100 items; a fifth are reposts naming a handle; every 7th item has a link card)."""
    sys.path.insert(0, str(HERE))
    # The feeds, handles, tags and sentences of the ``ingest`` benchmark's digests.
    from run import _INGEST_FEEDS, _INGEST_HANDLES, _INGEST_PLATFORMS, _INGEST_TAGS, _INGEST_WORDS

    rng = random.Random(SEED + first)
    lines: list[str] = []
    for i in range(first, first + count):
        if i == first or i % 100 == 0:
            feed, platform = _INGEST_FEEDS[(i // 100) % len(_INGEST_FEEDS)], _INGEST_PLATFORMS[(i // 100) % 5]
            lines.append(f"{feed} {i // 100:05d} ({platform})")
        text = f"Post {i}: {rng.choice(_INGEST_WORDS)} #{rng.choice(_INGEST_TAGS)}."
        if rng.random() < 0.2:
            text = f"RT @{rng.choice(_INGEST_HANDLES)}: {text}"
        lines += [text, text]
        if i % 7 == 6:
            lines += ["BBC News", "What the satellite pictures of the port show", f"Ledgers and pictures, part {i}."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_pictures(folder: Path, count: int) -> list[Path]:
    """*count* distinct 1024x768 JPEG pictures (coloured shapes), as a camera's would be shown."""
    from PIL import Image, ImageDraw

    rng = random.Random(SEED)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        image = Image.new("RGB", (1024, 768), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(40):
            x, y = rng.randrange(1024), rng.randrange(768)
            box = (x, y, x + rng.randrange(20, 300), y + rng.randrange(20, 200))
            draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
        path = folder / f"picture-{n:03d}.jpg"
        image.save(path, quality=85)
        paths.append(path)
    return paths


def build_records(folder: Path, size: int) -> dict[str, Any]:
    """The catalog of *size* records at *folder* (built unless there; see the module's note),
    and what the build noted: the ids and digests the pages need, and its steps' seconds."""
    noted = folder / "built.json"
    if noted.exists():
        return dict(json.loads(noted.read_text("utf-8")))
    from evidence_catalog import Catalog

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="viewer-build-", dir=BUILD))
    info: dict[str, Any] = {"size": size, "seconds": {}}
    reports = size - PICTURES - 1
    print(f"(building a catalog of {size} records in {partial} ...)", flush=True)
    try:
        with Catalog.init(partial, operator=OPERATOR) as catalog:
            started = time.perf_counter()
            added = catalog.add(write_pictures(work / "pictures", PICTURES))
            info["pictures"] = [r.record_id for r in added]
            info["seconds"]["pictures"] = time.perf_counter() - started
            print(f"  {PICTURES} pictures: {info['seconds']['pictures']:.1f} s", flush=True)
            started = time.perf_counter()
            digests: list[str] = []
            for first in range(0, reports, DIGEST_ITEMS):
                count = min(DIGEST_ITEMS, reports - first)
                digest = work / f"digest-{first}.txt"
                write_digest(digest, first, count)
                began = time.perf_counter()
                result = catalog.ingest(digest)
                digest.unlink()
                if result.records_added != count:
                    raise AssertionError(f"the digest of {count} items made {result.records_added} records")
                digests.append(result.sha256)
                took = time.perf_counter() - began
                print(f"  ingest of items {first}-{first + count - 1}: {took:.1f} s ({count / took:.0f}/s)", flush=True)
            info["seconds"]["ingest"] = time.perf_counter() - started
            info["digest_sha256"] = digests[0]
            ids = catalog.record_ids()
            info["middle"] = ids[len(ids) // 2]
            info["ingested"] = ids[PICTURES + 1]
            started = time.perf_counter()
            note_file = work / "notes-record.txt"
            note_file.write_text("A record that investigators annotated a thousand times.\n", encoding="utf-8")
            [result] = catalog.add([note_file])
            info["notes_record"] = result.record_id
            for n in range(NOTES):
                catalog.add_note(result.record_id, f"note {n}: checked against the ledger, page {n % 40 + 1}")
            info["seconds"]["notes"] = time.perf_counter() - started
            print(f"  {NOTES} notes on one record: {info['seconds']['notes']:.1f} s", flush=True)
            catalog.flag(info["pictures"][3], "graphic", "benchmark: a picture withheld")
            reposts = catalog.records(ids[PICTURES : PICTURES + 200])
            holder = next(r for r in reposts if any(p.author == WITHHELD_HANDLE for p in r.reports))
            field = f"reports/{holder.reports[0].id}/author"
            catalog.flag(holder.id, "protected_source", "benchmark: a source", fields=[field])
            for record_id in ids[-3:]:
                catalog.tag(record_id, [RARE_TAG])
            info["records"] = len(catalog.record_ids())
            info["log_size"] = catalog.log_size()
        partial.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["folder_mib"] = _mib_on_disk(folder)
    noted.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def _mib_on_disk(folder: Path) -> float:
    done = subprocess.run(["du", "-sk", os.fspath(folder)], check=True, capture_output=True, text=True)
    return int(done.stdout.split()[0]) / KIB


def build_video(folder: Path) -> dict[str, Any]:
    """The catalog holding one 1 GiB 'video' (an ``ftyp`` box, then random bytes)."""
    noted = folder / "built.json"
    if noted.exists():
        return dict(json.loads(noted.read_text("utf-8")))
    from evidence_catalog import Catalog

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"(building the catalog of a 1 GiB video in {partial} ...)", flush=True)
    source = BUILD / "video-source.mp4"
    rng = random.Random(SEED)
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    with open(source, "wb") as out:
        out.write(ftyp + (GIB - len(ftyp)).to_bytes(4, "big") + b"mdat")
        left = GIB - len(ftyp) - 8
        while left:
            chunk = min(8 * MIB, left)
            out.write(rng.randbytes(chunk))
            left -= chunk
    started = time.perf_counter()
    with Catalog.init(partial, operator=OPERATOR) as catalog:
        [result] = catalog.add([source], analyze=False)
        record = catalog.record(result.record_id)
        artifact = record.artifacts[0].artifact
        info = {
            "record": result.record_id,
            "sha256": artifact.sha256,
            "size": artifact.size,
            "media_type": artifact.media_type,
            "seconds": {"add": time.perf_counter() - started},
        }
        blob = catalog.artifact_path(artifact.sha256)
    source.unlink()
    partial.rename(folder)
    info["blob"] = os.fspath(Path(os.fspath(blob).replace(os.fspath(partial), os.fspath(folder), 1)))
    noted.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


# -- servers ---------------------------------------------------------------------------------------

#: The reference for byte ranges: Starlette's ``FileResponse`` of one file under uvicorn, with
#: the viewer's settings (argv: the file, its media type).
_FILE_RESPONSE = """
import socket, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route
path, media_type = sys.argv[1], sys.argv[2]
app = Starlette(routes=[Route("/video", lambda request: FileResponse(path, media_type=media_type))])
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(f"listening at http://127.0.0.1:{sock.getsockname()[1]}/", file=sys.stderr, flush=True)
config = uvicorn.Config(app, access_log=False, log_level="warning", server_header=False, lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""


class Server:
    """A server in a child process: started, its port read from what it prints, stopped."""

    def __init__(self, name: str, command: Sequence[str], pattern: str = r"http://127\.0\.0\.1:(\d+)/") -> None:
        self.name = name
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.fspath(REPO), *filter(None, [env.get("PYTHONPATH")])])
        started = time.perf_counter()
        self.process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=BUILD
        )
        assert self.process.stdout is not None
        self.output: list[str] = []
        for line in self.process.stdout:
            self.output.append(line)
            found = re.search(pattern, line)
            if found:
                self.port = int(found.group(1))
                break
        else:
            raise RuntimeError(f"{name} did not start: {''.join(self.output)}")
        self.start_seconds = time.perf_counter() - started
        self.rss_at_start = _status_mib(self.process.pid, "VmRSS")
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> float:
        """Stop the server; its peak RSS (MiB)."""
        peak = _status_mib(self.process.pid, "VmHWM")
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return peak

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.stop()


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) of process *pid* so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / KIB
    raise RuntimeError(f"no {field} for process {pid}")


def viewer(catalog: Path, *, show_sensitive: bool = False) -> Server:
    """``evidence-catalog serve --catalog DIR --port 0`` as a user runs it."""
    command = [sys.executable, "-m", "evidence_catalog", "serve", "--catalog", os.fspath(catalog), "--port", "0"]
    return Server("viewer", command + (["--show-sensitive"] if show_sensitive else []))


def http_server(directory: Path) -> Server:
    """``python -m http.server`` on *directory* (HTTP/1.1: connections kept alive)."""
    command = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-p", "HTTP/1.1"]
    return Server("http.server", [*command, "--directory", os.fspath(directory)], r"port (\d+)")


# -- the client ------------------------------------------------------------------------------------


class Fetched(NamedTuple):
    """One response: its status, headers, seconds to its first byte and to its last, its size,
    and its body when kept."""

    status: int
    headers: dict[str, str]
    first: float
    last: float
    size: int
    body: bytes


_SINK = threading.local()


def fetch(
    port: int,
    path: str,
    connection: http.client.HTTPConnection | None = None,
    headers: dict[str, str] | None = None,
    *,
    keep: bool = False,
    stop_after: int | None = None,
) -> Fetched:
    """GET *path* on a new connection (closed after) or on *connection* (kept); the body kept
    with *keep*; with *stop_after*, read that many bytes and drop the connection."""
    sink = getattr(_SINK, "buffer", None)
    if sink is None:
        sink = _SINK.buffer = memoryview(bytearray(MIB))
    started = time.perf_counter()
    own = connection is None
    conn = http.client.HTTPConnection("127.0.0.1", port) if connection is None else connection
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        if own:
            raise
        conn.close()  # the server closed a connection idle for its keep-alive time: again, as browsers do
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
    first = time.perf_counter() - started
    parts: list[bytes] = []
    size = 0
    while stop_after is None or size < stop_after:
        got = response.readinto(sink)
        if not got:
            break
        size += got
        if keep:
            parts.append(bytes(sink[:got]))
    last = time.perf_counter() - started
    if own or stop_after is not None:
        conn.close()
    return Fetched(response.status, dict(response.getheaders()), first, last, size, b"".join(parts))


def percentile(values: Sequence[float], share: float) -> float:
    """The *share* (0-1) percentile of *values*, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def figures(samples: Sequence[Fetched]) -> dict[str, float]:
    """Median and p95 of the first and last byte (ms) of *samples*."""
    firsts, lasts = [s.first * 1000 for s in samples], [s.last * 1000 for s in samples]
    return {
        "ttfb_p50_ms": statistics.median(firsts),
        "ttfb_p95_ms": percentile(firsts, 0.95),
        "full_p50_ms": statistics.median(lasts),
        "full_p95_ms": percentile(lasts, 0.95),
        "rounds": len(samples),
    }


# -- pages -----------------------------------------------------------------------------------------


def pages_of(info: dict[str, Any]) -> list[tuple[str, str]]:
    """The pages timed on a records catalog: (name, path)."""
    held = info["size"] - PICTURES - 1
    return [
        ("records page (HTML)", "/records"),
        ("records page (JSON)", "/records.json"),
        ("a page in the middle of the grid", f"/records?after={info['middle']}"),
        (f"filter that matches 3 records (tag={RARE_TAG})", f"/records?tag={RARE_TAG}"),
        (f"search ({SEARCH_WORD}), first page", f"/records?q={urllib.parse.quote(SEARCH_WORD)}"),
        ("an ingested record", f"/records/{info['ingested']}"),
        (f"record with {NOTES} notes, {NOTES + 1} events (HTML)", f"/records/{info['notes_record']}"),
        (f"record with {NOTES} notes, {NOTES + 1} events (JSON)", f"/records/{info['notes_record']}.json"),
        ("custody log, first page", "/log"),
        ("custody log, last page", f"/log?after={info['log_size'] - 100}"),
        (f"the digest file's page ({min(held, DIGEST_ITEMS)} records hold it)", f"/artifacts/{info['digest_sha256']}"),
    ]


def time_pages(
    server: Server, pages: Sequence[tuple[str, str]], rounds: int, static_dir: Path | None
) -> dict[str, dict[str, Any]]:
    """Every page on a new connection and on a kept one, *rounds* times (fewer for a slow
    page), after one untimed fetch; with *static_dir*, also its bytes from ``http.server`` in
    the same rounds.  The server's peak RSS is read after each page (the pages in order)."""
    static = None
    if static_dir is not None:
        static_dir.mkdir(parents=True, exist_ok=True)
        static = http_server(static_dir)  # it serves each page's file once written
    results: dict[str, dict[str, Any]] = {}
    try:
        for number, (name, path) in enumerate(pages):
            warm = fetch(server.port, path, keep=True)
            if warm.status != 200:
                raise AssertionError(f"{path}: {warm.status} {warm.body[:300]!r}")
            if static_dir is not None:
                (static_dir / f"page-{number}").write_bytes(warm.body)
            count = max(MIN_ROUNDS, min(rounds, int(PAGE_BUDGET / max(warm.last * 2, 1e-3))))
            sides: dict[str, list[Fetched]] = {"new": [], "kept": [], "static new": [], "static kept": []}
            kept = http.client.HTTPConnection("127.0.0.1", server.port)
            static_kept = None if static is None else http.client.HTTPConnection("127.0.0.1", static.port)
            cpu = _cpu_seconds(server.process.pid)
            for round_number in range(count):
                steps: list[tuple[str, Callable[[], Fetched]]] = [
                    ("new", functools.partial(fetch, server.port, path)),
                    ("kept", functools.partial(fetch, server.port, path, kept)),
                ]
                if static is not None:
                    steps += [
                        ("static new", functools.partial(fetch, static.port, f"/page-{number}")),
                        ("static kept", functools.partial(fetch, static.port, f"/page-{number}", static_kept)),
                    ]
                for side, step in steps if round_number % 2 == 0 else list(reversed(steps)):
                    sides[side].append(step())
            kept.close()
            if static_kept is not None:
                static_kept.close()
            results[name] = {
                "path": path,
                "bytes": warm.size,
                "server_peak_mib_so_far": _status_mib(server.process.pid, "VmHWM"),
                "server_cpu_ms": (_cpu_seconds(server.process.pid) - cpu) * 1000 / (2 * count),
                **{side: figures(samples) for side, samples in sides.items() if samples},
            }
            _print_page(name, results[name])
    finally:
        if static is not None:
            results["http.server peak RSS"] = {"mib": static.stop()}
    return results


def _print_page(name: str, result: dict[str, Any]) -> None:
    new, kept = result["new"], result["kept"]
    line = (
        f"  {name:52s} {result['bytes'] / KIB:7.1f} KiB  new conn: first {new['ttfb_p50_ms']:7.1f} / "
        f"{new['ttfb_p95_ms']:7.1f}, all {new['full_p50_ms']:7.1f} / {new['full_p95_ms']:7.1f} ms;  "
        f"kept: all {kept['full_p50_ms']:7.1f} / {kept['full_p95_ms']:7.1f} ms"
    )
    if "static new" in result:
        static = result["static new"]
        line += f";  http.server: {static['full_p50_ms']:5.2f} ms ({static['full_p50_ms'] / new['full_p50_ms']:.3f}x)"
    rss, cpu = result["server_peak_mib_so_far"], result["server_cpu_ms"]
    print(line + f"  [{new['rounds']}; server CPU {cpu:.1f} ms a request; peak RSS {rss:.0f} MiB]", flush=True)


def browser_load(port: int, path: str = "/records") -> tuple[float, int]:
    """The page, then its stylesheet and pictures on :data:`BROWSER_CONNECTIONS` connections,
    as a browser loads it; the seconds to the last byte and how many files were fetched."""
    started = time.perf_counter()
    page = fetch(port, path, keep=True)
    wanted = re.findall(r'(?:src|href)="(/(?:static/[^"]+\.css|records/[^"]+/thumbnails/[^"]+))"', page.body.decode())
    local = threading.local()

    def get(address: str) -> int:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port)
        got = fetch(port, address, local.connection)
        if got.status != 200:
            raise AssertionError(f"{address}: {got.status}")
        return got.size

    with ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
        list(pool.map(get, wanted))
    return time.perf_counter() - started, len(wanted) + 1


def bench_size(size: int, rounds: int, rebuild: bool) -> dict[str, Any]:
    """Everything timed on the catalog of *size* records."""
    folder = BUILD / f"records-{size}"
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    info = build_records(folder, size)
    steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in info["seconds"].items())
    print(f"catalog of {info['records']} records, {info['log_size']} events, {info['folder_mib']:.0f} MiB: {folder}")
    print(f"  built in {sum(info['seconds'].values()):.0f} s ({steps})", flush=True)
    result: dict[str, Any] = {"catalog": info}
    scratch = Path(tempfile.mkdtemp(prefix="viewer-pages-", dir=BUILD))
    try:
        # The first request after start, as a user opens the browser on a new viewer; then a
        # browser's full load with no thumbnail made yet, and made.
        cold: list[dict[str, float]] = []
        for _ in range(3):
            with viewer(folder) as server:
                first = fetch(server.port, "/records")
                load, files = browser_load(server.port)
                warm = [browser_load(server.port)[0] for _ in range(max(MIN_ROUNDS, rounds // 3))]
                cold.append(
                    {
                        "start_s": server.start_seconds,
                        "rss_at_start_mib": server.rss_at_start,
                        "first_ttfb_ms": first.first * 1000,
                        "first_full_ms": first.last * 1000,
                        "browser_cold_ms": load * 1000,
                        "browser_warm_p50_ms": statistics.median(warm) * 1000,
                        "browser_warm_p95_ms": percentile(warm, 0.95) * 1000,
                        "files": files,
                        "peak_mib": server.stop(),
                    }
                )
        result["cold"] = cold

        def each(key: str, form: str = ".0f") -> str:
            return " ".join(f"{c[key]:{form}}" for c in cold)

        print(f"  server start-up (to listening) {each('start_s', '.2f')} s; RSS then {each('rss_at_start_mib')} MiB")
        print(f"  first /records after start: first byte {each('first_ttfb_ms')} ms, last {each('first_full_ms')} ms")
        made = f"p50 {each('browser_warm_p50_ms')}, p95 {each('browser_warm_p95_ms')}"
        print(f"  browser load of /records ({cold[0]['files']} files, {BROWSER_CONNECTIONS} connections), ms:", end="")
        print(f" thumbnails to make {each('browser_cold_ms')}; made, {made}", flush=True)
        pages = pages_of(info)
        print("  pages, p50 / p95 (withholding: two flags)", flush=True)
        with viewer(folder) as server:
            result["pages"] = time_pages(server, pages, rounds, scratch / "static")
            result["peak_mib"] = server.stop()
        print(f"  viewer peak RSS {result['peak_mib']:.0f} MiB", flush=True)
        print("  the same with --show-sensitive (nothing withheld)", flush=True)
        shown = [page for page in pages if page[1] in ("/records", f"/records/{info['notes_record']}")]
        with viewer(folder, show_sensitive=True) as server:
            result["pages_show_sensitive"] = time_pages(server, shown, rounds, None)
            result["peak_mib_show_sensitive"] = server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# -- the video -------------------------------------------------------------------------------------


def _throughput(size: int, seconds: float) -> float:
    return size / MIB / seconds


def _alternate(names: Sequence[str], round_number: int) -> list[str]:
    return list(names) if round_number % 2 == 0 else list(reversed(names))


def _ranges_in_order(port: int, path: str, size: int) -> float:
    """1 MiB ranges from the first byte to the last on one connection; the seconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    started = time.perf_counter()
    for offset in range(0, size, RANGE):
        header = {"Range": f"bytes={offset}-{min(size, offset + RANGE) - 1}"}
        if fetch(port, path, connection, header).status != 206:
            raise AssertionError(f"{path}: no 206 for {header}")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def bench_video(rounds: int, rebuild: bool) -> dict[str, Any]:
    """The 1 GiB video from the viewer, http.server and Starlette's FileResponse."""
    folder = BUILD / "video-1gib"
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    info = build_video(folder)
    blob, size = Path(info["blob"]), int(info["size"])
    print(f"video: {size / GIB:.2f} GiB stored as {info['media_type']} (added in {info['seconds']['add']:.0f} s)")
    with open(blob, "rb") as stream:  # into the page cache
        while stream.read(8 * MIB):
            pass
    result: dict[str, Any] = {"video": info}
    reference = [sys.executable, "-c", _FILE_RESPONSE, os.fspath(blob), "video/mp4"]
    with viewer(folder) as ours, http_server(blob.parent) as plain, Server("FileResponse", reference) as starlette:
        paths = {
            "viewer": (ours, f"/records/{info['record']}/artifacts/{info['sha256']}"),
            "http.server": (plain, f"/{blob.name}"),
            "FileResponse": (starlette, "/video"),
        }
        checks = {name: fetch(s.port, p, headers={"Range": "bytes=0-99"}) for name, (s, p) in paths.items()}
        result["range_answer"] = {name: [got.status, got.headers.get("content-type")] for name, got in checks.items()}
        print(
            "  Range: bytes=0-99 answered with",
            "; ".join(f"{n} {g.status} ({g.size} bytes, {g.headers.get('content-type')})" for n, g in checks.items()),
        )
        ranged = [name for name, got in checks.items() if got.status == 206]
        whole: dict[str, list[float]] = {name: [] for name in paths}
        in_order: dict[str, list[float]] = {name: [] for name in ranged}
        for round_number in range(rounds):
            for name in _alternate(list(paths), round_number):
                got = fetch(paths[name][0].port, paths[name][1])
                if got.size != size:
                    raise AssertionError(f"{name} sent {got.size} bytes of {size}")
                whole[name].append(got.last)
            for name in _alternate(ranged, round_number):
                in_order[name].append(_ranges_in_order(paths[name][0].port, paths[name][1], size))
        result["whole"] = {name: statistics.median(seconds) for name, seconds in whole.items()}
        result["sequential"] = {name: statistics.median(seconds) for name, seconds in in_order.items()}
        for label, figures_of in (
            ("whole file, new connection", result["whole"]),
            (f"1 MiB ranges in order, one connection ({size // RANGE} requests)", result["sequential"]),
        ):
            shown = "; ".join(
                f"{n} {_throughput(size, s):.0f} MiB/s ({s:.2f} s, {figures_of[n] / figures_of['viewer']:.2f}x)"
                for n, s in figures_of.items()
            )
            print(f"  {label}, median of {rounds}: {shown}", flush=True)
        rng = random.Random(SEED)
        offsets = [rng.randrange(0, size - RANGE) for _ in range(SEEKS)]
        for label, keep in (
            ("random 1 MiB ranges, one connection", True),
            ("seeks: bytes=N-, 1 MiB read, connection dropped", False),
        ):
            samples: dict[str, list[Fetched]] = {name: [] for name in ranged}
            kept = {name: http.client.HTTPConnection("127.0.0.1", paths[name][0].port) for name in ranged}
            for number, offset in enumerate(offsets):
                for name in _alternate(ranged, number):
                    port, path = paths[name][0].port, paths[name][1]
                    if keep:
                        got = fetch(port, path, kept[name], {"Range": f"bytes={offset}-{offset + RANGE - 1}"})
                    else:
                        got = fetch(port, path, headers={"Range": f"bytes={offset}-"}, stop_after=RANGE)
                    if got.status != 206 or got.size < RANGE:
                        raise AssertionError(f"{name}: {got.status}, {got.size} bytes at {offset}")
                    samples[name].append(got)
            for connection in kept.values():
                connection.close()
            result[label] = {name: figures(got) for name, got in samples.items()}
            shown = "; ".join(
                f"{n} {f['ttfb_p50_ms']:.2f}/{f['ttfb_p95_ms']:.2f}, {f['full_p50_ms']:.2f}/{f['full_p95_ms']:.2f} ms"
                for n, f in result[label].items()
            )
            print(f"  {label} ({SEEKS}), first byte and 1 MiB, p50 / p95: {shown}", flush=True)
        result["peak_mib"] = {name: server.stop() for name, (server, _) in paths.items()}
    print("  peak RSS: " + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in result["peak_mib"].items()), flush=True)
    return result


# -- summary and entry point -----------------------------------------------------------------------


def rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """The summary rows (``benchmark``, ``ours``, ``reference``, ``ratio``, ``target``, ``status``)."""
    made: list[dict[str, str]] = []
    for size, result in results.get("sizes", {}).items():
        for name, page in result["pages"].items():
            if "new" not in page:
                continue
            new, static = page["new"], page.get("static new")
            is_target = name.startswith("records page")
            made.append(
                {
                    "benchmark": f"viewer, {name}, {int(size):,} records, new connection",
                    "ours": f"first byte p50 {new['ttfb_p50_ms']:.1f} ms, all p50 {new['full_p50_ms']:.1f} / "
                    f"p95 {new['full_p95_ms']:.1f} ms ({page['bytes'] / KIB:.0f} KiB; server CPU "
                    f"{page['server_cpu_ms']:.1f} ms)",
                    "reference": "-" if static is None else f"http.server, same bytes: {static['full_p50_ms']:.2f} ms",
                    "ratio": "-" if static is None else f"{static['full_p50_ms'] / new['full_p50_ms']:.3f}x",
                    "target": f"p95 < {TARGET_MS:.0f} ms" if is_target else "none (info)",
                    "status": ("PASS" if new["full_p95_ms"] < TARGET_MS else "FAIL") if is_target else "INFO",
                }
            )
    video = results.get("video")
    if video:
        size = int(video["video"]["size"])
        ours, plain = video["whole"]["viewer"], video["whole"]["http.server"]
        made.append(
            {
                "benchmark": f"viewer, whole {size / GIB:.0f} GiB video, one GET",
                "ours": f"{_throughput(size, ours):.0f} MiB/s",
                "reference": f"python -m http.server: {_throughput(size, plain):.0f} MiB/s",
                "ratio": f"{plain / ours:.2f}x",
                "target": "none (info)",
                "status": "INFO",
            }
        )
        if "FileResponse" in video.get("sequential", {}):
            ours, other = video["sequential"]["viewer"], video["sequential"]["FileResponse"]
            made.append(
                {
                    "benchmark": "viewer, 1 MiB ranges in order over the video, one connection",
                    "ours": f"{_throughput(size, ours):.0f} MiB/s",
                    "reference": f"Starlette FileResponse: {_throughput(size, other):.0f} MiB/s",
                    "ratio": f"{other / ours:.2f}x",
                    "target": "none (info)",
                    "status": "INFO",
                }
            )
    return made


def bench(
    sizes: Sequence[int], rounds: int, video_rounds: int, rebuild: bool = False, video: bool = True
) -> dict[str, Any]:
    """The whole benchmark; its results."""
    BUILD.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"load_at_start": os.getloadavg(), "cpus": os.cpu_count(), "sizes": {}}
    print(f"load average at start {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs", flush=True)
    for size in sizes:
        results["sizes"][str(size)] = bench_size(size, rounds, rebuild)
    if video:
        results["video"] = bench_video(video_rounds, rebuild)
    results["load_at_end"] = os.getloadavg()
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark alone (see the module's note)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="records in each catalog")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed fetches of each page")
    parser.add_argument("--video-rounds", type=int, default=3, help="timed runs of each whole-file read")
    parser.add_argument("--no-video", action="store_true", help="leave out the 1 GiB video")
    parser.add_argument("--rebuild", action="store_true", help="build the catalogs again")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = bench(sizes, args.rounds, args.video_rounds, args.rebuild, not args.no_video)
    summary = rows(results)
    for row in summary:
        print(f"{row['status']:5s} {row['benchmark']}: {row['ours']}; {row['reference']}; {row['ratio']}")
    if args.json is not None:
        args.json.write_text(json.dumps({**results, "rows": summary}, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if all(row["status"] != "FAIL" for row in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
