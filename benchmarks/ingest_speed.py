"""Ingest speed (issue 22, target 2): linear in the items, against the bare parser, through the CLI
and in-process, for every ingest format.

Run on its own (``.venv/bin/python benchmarks/ingest_speed.py --help``) or as ``benchmarks/run.py
--only ingest-speed``.  What is measured, each side in a child process of its own, in rounds that
alternate the sides (the machine may be shared):

* ``Catalog.ingest`` of a generated input of 1,000, 20,000 and 100,000 items (``--items`` sets the
  largest) into a new catalog, timed around the call (in-process), for a feed-reader digest, an
  RSS 2.0 feed, an Atom feed, twarc2 JSON Lines and a Telegram Desktop export (text messages);
  the per-item cost at each size (target: the largest within 1.3x of the smallest);
* the bare parser on the same input at 20,000 items: ``feedparser.parse`` for RSS and Atom
  (called as the ingest calls it), ``json.loads`` of each line for twarc2 and of the whole file
  for Telegram, reading the file included (target: ingest at least 0.5x its speed);
* ``evidence-catalog ingest`` (the command, start-up included) of the same 20,000-item input
  into a catalog made by ``evidence-catalog init`` beforehand;
* digests: items/s in-process and through the command at the largest size (target: 5,000/s).

Each child also reports its CPU seconds (its own and its children's: an ingest of 2,000 items or
more has a worker process do part of its work).  On a machine other programs share, one run's wall time
against another's varies with their load: linearity is judged on the CPU time per item (the
work done); the other targets on wall time (what a user waits for), each printed with both.

``--baseline DIR`` also runs every in-process ingest (up to ``--baseline-items``) with the
library in *DIR* (a checkout of an older commit, say ``git worktree add /tmp/before HEAD~5``),
alternating with this checkout's, and reports the ratio of the two: before and after, in one run.

Only the standard library is imported at the top: the children import the library they measure
(``PYTHONPATH`` names the checkout), and ``feedparser`` only where it is the reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OPERATOR = "Benchmark <bench@example.org>"
FORMATS = ("digest", "rss", "atom", "twarc", "telegram")
#: The ingest format each generated input is (``--format`` of the command).
INGEST_FORMAT = {"digest": "digest", "rss": "rss", "atom": "rss", "twarc": "twarc", "telegram": "telegram"}
SMALLEST = 1_000
PARSER_ITEMS = 20_000
DEFAULT_ITEMS = 100_000
#: Targets of the issue.
LINEAR_LIMIT = 1.3
PARSER_TARGET = 0.5
DIGEST_RATE_TARGET = 5_000
SEED = 20261205

_WORDS = (
    "satellite images show two new berths at the yard",
    "the gate was shut on 4 May — “maintenance”, said the operator",
    "спутниковые снимки показывают новые причалы",
    "les registres du port ne concordent pas avec les photos",
    "trucks queue at the checkpoint from early morning",
    "the ledger lists 14 ships, the pictures show 17",
    "Straße gesperrt, Lkw warten seit dem Morgen",
)
_TAGS = ("EastQuay", "OSINT", "Satellite", "Hafen", "школа", "Port", "Ledger")
_HANDLES = ("coast_watch", "PortLog", "CityPaper", "osint_desk", "geo_mueller", "radar_yug", "field_reporter")


# -- inputs ----------------------------------------------------------------------------------------


def _sentence(rng: random.Random, i: int) -> str:
    text = f"Post {i}: {rng.choice(_WORDS)} #{rng.choice(_TAGS)}"
    if rng.random() < 0.5:
        text += f" (via @{rng.choice(_HANDLES)})"
    return text


def write_input(kind: str, folder: Path, items: int, seed: int = SEED) -> Path:
    """Write an input of *items* distinct items in *folder*; the path to ingest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    if kind == "digest":
        sys.path.insert(0, str(HERE))
        from run import write_digest  # the digests the ``ingest`` benchmark has always used

        path = folder / "digest.txt"
        write_digest(path, items, seed)
        return path
    if kind in ("rss", "atom"):
        from xml.sax.saxutils import escape

        parts = []
        for i in range(items):
            when = start + dt.timedelta(minutes=i)
            title, body = escape(_sentence(rng, i)), escape(f"{rng.choice(_WORDS)} &amp; {rng.choice(_WORDS)}")
            link = f"https://monitor.example.org/posts/{i}"
            if kind == "rss":
                parts.append(
                    f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
                    f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
                    f"<description>&lt;p&gt;{body}&lt;/p&gt;</description></item>"
                )
            else:
                stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                parts.append(
                    f'<entry><id>urn:example:post:{i}</id><title>{title}</title><link href="{link}"/>'
                    f"<published>{stamp}</published><updated>{stamp}</updated>"
                    f"<author><name>{rng.choice(_HANDLES)}</name></author>"
                    f'<summary type="html">&lt;p&gt;{body}&lt;/p&gt;</summary></entry>'
                )
        if kind == "rss":
            head = '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Harbour Monitor</title>'
            text = head + "<link>https://monitor.example.org/</link>" + "\n".join(parts) + "</channel></rss>\n"
        else:
            head = '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            text = head + "<title>Harbour Monitor</title><id>urn:example:feed</id>" + "\n".join(parts) + "</feed>\n"
        path = folder / f"feed-{kind}.xml"
        path.write_text(text, encoding="utf-8")
        return path
    if kind == "twarc":
        lines = []
        users = [{"id": str(100 + n), "username": handle, "name": handle.title()} for n, handle in enumerate(_HANDLES)]
        for first in range(0, items, 100):
            data = []
            for i in range(first, min(items, first + 100)):
                text = _sentence(rng, i)
                tag = text.split("#", 1)[1].split(" ", 1)[0]
                data.append(
                    {
                        "id": str(1787000000000000000 + i),
                        "author_id": str(100 + i % len(_HANDLES)),
                        "created_at": (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                        "lang": "en",
                        "text": text,
                        "entities": {"hashtags": [{"start": 0, "end": 1, "tag": tag}]},
                    }
                )
            page = {"data": data, "includes": {"users": users}, "__twarc": {"version": "2.14.0"}}
            lines.append(json.dumps(page, ensure_ascii=False))
        path = folder / "tweets.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    if kind == "telegram":
        messages = []
        for i in range(items):
            when = start + dt.timedelta(seconds=i)
            words, tag = rng.choice(_WORDS), rng.choice(_TAGS)
            messages.append(
                {
                    "id": i + 1,
                    "type": "message",
                    "date": when.strftime("%Y-%m-%dT%H:%M:%S"),
                    "date_unixtime": str(int(when.timestamp())),
                    "from": "Harbour Monitor",
                    "from_id": "channel1500000001",
                    "text": [f"Post {i}: {words} ", {"type": "hashtag", "text": f"#{tag}"}],
                }
            )
        export = {"name": "Harbour Monitor", "type": "public_channel", "id": 1500000001, "messages": messages}
        (folder / "result.json").write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")
        return folder
    raise ValueError(f"unknown input kind {kind!r}")


# -- the children ------------------------------------------------------------------------------------


def child(argv: list[str]) -> int:
    """``child ingest PATH CATALOG`` or ``child parse KIND PATH``: one timed call, its JSON on stdout."""
    mode = argv[0]
    report: dict[str, Any] = {"mode": mode}
    if mode == "ingest":
        from evidence_catalog import Catalog

        with Catalog.init(argv[2], operator=OPERATOR) as catalog:
            before, started = os.times(), time.perf_counter()
            result = catalog.ingest(argv[1])
            seconds, after = time.perf_counter() - started, os.times()
        report.update(items=result.items, added=result.reports_added, warnings=len(result.warnings))
    else:
        kind, source = argv[1], Path(argv[2])
        before, started = os.times(), time.perf_counter()
        if kind in ("rss", "atom"):
            import io

            import feedparser

            parsed = feedparser.parse(io.BytesIO(source.read_bytes()), sanitize_html=False, resolve_relative_uris=False)
            count = len(parsed.entries)
        elif kind == "twarc":
            pages = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
            count = sum(len(page["data"]) for page in pages)
        else:
            count = len(json.loads((source / "result.json").read_text(encoding="utf-8"))["messages"])
        seconds, after = time.perf_counter() - started, os.times()
        report.update(items=count)
    # The CPU time of the process and of the children it reaped: an ingest's worker process
    # (which it waits for before it returns) does part of the work.
    spent = [now - then for now, then in zip(after, before, strict=True)][:4]
    report.update(seconds=seconds, cpu=sum(spent))
    print(json.dumps(report))
    return 0


def _environment(code: Path) -> dict[str, str]:
    """The environment of a child that imports the library from the checkout *code*."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_child(code: Path, *args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "child", *args],
        check=True,
        capture_output=True,
        text=True,
        env=_environment(code),
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def run_command(code: Path, catalog: Path, path: Path) -> float:
    """``evidence-catalog ingest`` of *path* into a catalog made by ``evidence-catalog init``;
    the wall seconds of the ingest command (start-up included)."""
    env = _environment(code)
    command = [sys.executable, "-m", "evidence_catalog"]
    subprocess.run([*command, "init", "--operator", OPERATOR, str(catalog)], check=True, capture_output=True, env=env)
    started = time.perf_counter()
    subprocess.run(
        [*command, "ingest", "--catalog", str(catalog), "--quiet", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - started


# -- the benchmark -------------------------------------------------------------------------------------


@dataclass
class Side:
    """Timed runs of one thing: wall and CPU seconds."""

    label: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu) if self.cpu else float("nan")


def alternate(repeat: int, sides: list[tuple[Side, Callable[[], tuple[float, float]]]]) -> None:
    """Run every side *repeat* times, interleaved, the order reversed every other round."""
    for round_number in range(repeat):
        for side, run in sides if round_number % 2 == 0 else list(reversed(sides)):
            seconds, cpu = run()
            side.seconds.append(seconds)
            side.cpu.append(cpu)


def row(benchmark: str, ours: str, reference: str, ratio: str, target: str, status: str) -> dict[str, str]:
    return {
        "benchmark": benchmark,
        "ours": ours,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "status": status,
    }


def bench(
    scratch: Path,
    *,
    items: int = DEFAULT_ITEMS,
    repeat: int = 1,
    formats: tuple[str, ...] = FORMATS,
    baseline: Path | None = None,
    baseline_items: int = PARSER_ITEMS,
    command: bool = True,
) -> list[dict[str, str]]:
    """Run the benchmark in *scratch*; the summary rows (``benchmarks/run.py``'s columns)."""
    sizes = sorted({min(SMALLEST, items), min(PARSER_ITEMS, items), items})
    rows: list[dict[str, str]] = []
    for kind in formats:
        print(f"  {kind}:", flush=True)
        rows += bench_format(scratch, kind, sizes, repeat, baseline, baseline_items, command)
    return rows


def bench_format(
    scratch: Path,
    kind: str,
    sizes: list[int],
    repeat: int,
    baseline: Path | None,
    baseline_items: int,
    command: bool,
) -> list[dict[str, str]]:
    """:func:`bench` of one input format."""
    rows: list[dict[str, str]] = []
    items = sizes[-1]
    inputs = {n: write_input(kind, scratch / f"input-{kind}-{n}", n) for n in sizes}
    ours = {n: Side(f"{n} items") for n in sizes}
    before = {n: Side(f"{n} items, baseline") for n in sizes if baseline is not None and n <= baseline_items}
    parser, cli = Side("parser"), Side("command")
    catalog = scratch / "catalog"

    def ingest(code: Path, n: int) -> tuple[float, float]:
        remove(catalog)
        report = run_child(code, "ingest", str(inputs[n]), str(catalog))
        if report["added"] != n or report["items"] != n:
            raise SystemExit(f"{kind}: {n} items were not ingested as {n} new reports: {report}")
        remove(catalog)
        return float(report["seconds"]), float(report["cpu"])

    def parse(n: int) -> tuple[float, float]:
        report = run_child(REPO, "parse", kind, str(inputs[n]))
        if report["items"] != n:
            raise SystemExit(f"{kind}: the parser read {report['items']} items, not {n}")
        return float(report["seconds"]), float(report["cpu"])

    def through_command(n: int) -> tuple[float, float]:
        remove(catalog)
        seconds = run_command(REPO, catalog, inputs[n])
        remove(catalog)
        return seconds, float("nan")

    middle = min(PARSER_ITEMS, items)
    sides: list[tuple[Side, Callable[[], tuple[float, float]]]] = []
    for n in sizes:
        sides.append((ours[n], lambda n=n: ingest(REPO, n)))  # type: ignore[misc]
        if n in before and baseline is not None:
            sides.append((before[n], lambda n=n: ingest(baseline, n)))  # type: ignore[misc]
    if kind != "digest":
        sides.append((parser, lambda: parse(middle)))
    if command:
        sides.append((cli, lambda: through_command(middle)))
    alternate(repeat, sides)

    cost = {n: ours[n].best / n for n in sizes}
    cpu_cost = {n: ours[n].best_cpu / n for n in sizes}
    for n in sizes:
        runs = " ".join(f"{s:.2f}" for s in ours[n].seconds)
        line = (
            f"    {n:7d} items: {n / ours[n].best:7.0f} items/s, {cost[n] * 1e6:6.0f} us/item wall,"
            f" {cpu_cost[n] * 1e6:6.0f} us/item CPU  (runs: {runs})"
        )
        if n in before:
            line += (
                f"; baseline {before[n].best / n * 1e6:.0f} us/item wall, {before[n].best_cpu / n * 1e6:.0f} CPU:"
                f" {before[n].best / ours[n].best:.2f}x wall, {before[n].best_cpu / ours[n].best_cpu:.2f}x CPU"
            )
        print(line, flush=True)
    # Linearity is judged on the CPU time per item: on a machine other programs share, the wall
    # time of one run against another's varies with their load, not with the items.
    spread = max(cpu_cost.values()) / min(cpu_cost.values())
    wall_spread = max(cost.values()) / min(cost.values())
    costs = ", ".join(f"{n}: {cpu_cost[n] * 1e6:.0f} us CPU ({cost[n] * 1e6:.0f} wall)" for n in sizes)
    rows.append(
        row(
            f"ingest {kind}: per-item cost, {sizes[0]} to {sizes[-1]} items (in-process)",
            costs,
            "-",
            f"{spread:.2f}x largest/smallest CPU ({wall_spread:.2f}x wall)",
            f"<= {LINEAR_LIMIT}x",
            "PASS" if spread <= LINEAR_LIMIT else "FAIL",
        )
    )
    if kind != "digest":
        ratio, cpu_ratio = parser.best / ours[middle].best, parser.best_cpu / ours[middle].best_cpu
        name = "feedparser.parse" if kind in ("rss", "atom") else "json.loads"
        print(
            f"    bare parser ({name}) at {middle} items: {parser.best:.2f} s, CPU {parser.best_cpu:.2f} s;"
            f" ingest {ratio:.2f}x its speed ({cpu_ratio:.2f}x in CPU time)"
        )
        rows.append(
            row(
                f"ingest {kind}, {middle} items, vs the bare parser",
                f"{ours[middle].best:.2f} s ({middle / ours[middle].best:.0f} items/s;"
                f" CPU {ours[middle].best_cpu:.2f} s)",
                f"{name}: {parser.best:.2f} s (CPU {parser.best_cpu:.2f} s)",
                f"{ratio:.2f}x ({cpu_ratio:.2f}x CPU)",
                f">= {PARSER_TARGET}x",
                "PASS" if ratio >= PARSER_TARGET else "FAIL",
            )
        )
    if command:
        print(f"    evidence-catalog ingest, {middle} items: {cli.best:.2f} s ({middle / cli.best:.0f} items/s)")
        rows.append(
            row(
                f"evidence-catalog ingest {kind}, {middle} items (command, start-up included)",
                f"{middle / cli.best:.0f} items/s ({cli.best:.2f} s)",
                f"in-process: {middle / ours[middle].best:.0f} items/s",
                f"{ours[middle].best / cli.best:.2f}x in-process",
                f">= {DIGEST_RATE_TARGET} items/s" if kind == "digest" else "none (info)",
                ("PASS" if middle / cli.best >= DIGEST_RATE_TARGET else "FAIL") if kind == "digest" else "INFO",
            )
        )
    if kind == "digest":
        rate = items / ours[items].best
        rows.append(
            row(
                f"ingest digest, {items} items (in-process)",
                f"{rate:.0f} items/s ({ours[items].best:.1f} s)",
                f"CPU time: {ours[items].best_cpu:.1f} s ({items / ours[items].best_cpu:.0f} items per CPU second)",
                "-",
                f">= {DIGEST_RATE_TARGET} items/s",
                "PASS" if rate >= DIGEST_RATE_TARGET else "FAIL",
            )
        )
    for n, side in before.items():
        rows.append(
            row(
                f"ingest {kind}, {n} items: this checkout vs the baseline",
                f"{ours[n].best:.2f} s (CPU {ours[n].best_cpu:.2f} s)",
                f"baseline: {side.best:.2f} s (CPU {side.best_cpu:.2f} s)",
                f"{side.best / ours[n].best:.2f}x faster ({side.best_cpu / ours[n].best_cpu:.2f}x in CPU time)",
                "none (info)",
                "INFO",
            )
        )
    for path in inputs.values():
        remove(path if path.is_dir() else path.parent)
    return rows


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        return child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS, help=f"largest input (default {DEFAULT_ITEMS})")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each side; the best counts (default 1)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated (default {','.join(FORMATS)})")
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit to compare with")
    parser.add_argument("--baseline-items", type=int, default=PARSER_ITEMS, help="largest input for the baseline")
    parser.add_argument("--no-command", action="store_true", help="leave out the timing through the command")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put scratch files")
    args = parser.parse_args(argv)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if set(formats) - set(FORMATS) or args.items < 1 or args.repeat < 1:
        parser.error(f"--formats from {','.join(FORMATS)}; --items and --repeat at least 1")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)  # a folder named that is not there yet
    scratch = Path(tempfile.mkdtemp(prefix="ingest-speed-", dir=args.workdir))
    try:
        rows = bench(
            scratch,
            items=args.items,
            repeat=args.repeat,
            formats=formats,
            baseline=args.baseline.resolve() if args.baseline else None,
            baseline_items=args.baseline_items,
            command=not args.no_command,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print("| Benchmark | Ours | Reference (same run) | Ratio | Target | Result |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['benchmark']} | {r['ours']} | {r['reference']} | {r['ratio']} | {r['target']} | {r['status']} |")
    return 1 if any(r["status"] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
