"""Crash safety: a process killed with SIGKILL while it adds, ingests, imports or exports leaves a
catalog that verifies, in which no record claims bytes that are not stored and every operation
took effect whole or not at all (``add``: file by file, in order); an export is either absent or
a complete bag under the name asked for.  What a killed process does leave -- orphaned blobs and
unfinished temporary files in the catalog, ``.export-*.part`` beside an export -- ``fsck`` lists
(and removes when asked), and running the operation again succeeds and reuses the bytes stored.

Two harnesses:

* random moments: each operation is run once through the command line to measure it, then run
  again and again, each time killed after a delay drawn (seeded) from the whole span of the
  operation, with the catalog checked after every kill and the operation finished between rounds
  of kills (eight kills per operation on SQLite, three on PostgreSQL);
* chosen points: the process kills itself right before or after a named function of the library
  (a blob half-written, linked but not recorded, a transaction written but not committed, a bag
  finished but not placed, placed but not logged ...); Hypothesis chooses the points for ``add``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.config import CatalogConfig
from evidence_catalog.custody import Action
from evidence_catalog.operations import analyzing
from tests.conftest import CliResult, make_jpeg

# Left out of `make test-fast` (the whole module is slow); `make test` runs it.
pytestmark = pytest.mark.slow

SEED = 20260301
#: Kills per operation and back-end (the PostgreSQL run covers the same code with a server).
KILLS = {"sqlite": 6, "postgresql": 3}
#: Kills in a row before the operation is finished and the next round starts on a fresh catalog.
ROUND = 4
#: Longest an unkilled command may take before the test calls it hung.
HANG_SECONDS = 300.0
CHAT_ID = 1500000001
BIG = 3 * 1024 * 1024

TEMPORARY_NAME = re.compile(r"blobs/tmp/[0-9a-f]{32}\.part")
#: The work area of an analysis killed in it (or killed while making it: ``.making-``).
ANALYSIS_AREA = re.compile(r"tmp/(capture|\.making)-analyze-[0-9a-f-]{36}")
EXPORT_LEFTOVER = re.compile(r"\.export-[0-9a-f]{12}\.part")


# -- running and killing the command line ------------------------------------------------------
#
# Starting Python and importing the library takes a second or more, longer than most of the
# operations here: killed at a random moment after `exec`, most processes would die before they
# did anything.  So the commands run in processes forked from one that has imported the library
# (the "launcher"): each runs `evidence_catalog.cli.main(argv)` -- what `python -m
# evidence_catalog` runs -- from its first instruction, and the delay is drawn across the work
# itself.  The launcher waits for each child and, at the deadline, kills it with SIGKILL (it is
# the child's parent and has not reaped it: the process id is still the child's).  The last
# re-run of each operation after its kills, and the kills at chosen points of import, ingest and
# export, are new processes (`python -m evidence_catalog`, or `python -c` with the point to die
# at).


@dataclass(frozen=True)
class Run:
    """How one command ended: killed (by the harness or by itself), or with an exit code."""

    killed: bool
    code: int
    seconds: float
    stderr: str


COMPLETED = Run(killed=False, code=0, seconds=0.0, stderr="")

#: Defines ``die_at(spec, when, nth)``: make this process kill itself (SIGKILL) right ``before``
#: or ``after`` the *nth* call of a function of the library (``module:Qualified.name``).
_DIE_AT = """
def die_at(spec, when, nth):
    import importlib, os, signal
    module, _, qualified = spec.partition(":")
    owner = importlib.import_module(module)
    *path, name = qualified.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]

    def die_there(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, die_there)
"""

#: ``python -c`` this with ``SPEC WHEN NTH -- ARGS``: the console script, dying at that point.
_KILLED_AT_A_POINT = (
    _DIE_AT
    + """
import sys
from evidence_catalog.cli import run

spec, when, nth, _, *argv = sys.argv[1:]
die_at(spec, when, int(nth))
sys.argv = ["evidence-catalog", *argv]
run()
"""
)

#: The launcher: one JSON job a line on standard input, one JSON result a line on its output.
_LAUNCHER = (
    _DIE_AT
    + """
import importlib, json, os, select, signal, sys, time, traceback
from evidence_catalog.cli import main

for line in sys.stdin:
    job = json.loads(line)
    started = time.monotonic()
    # Made before the fork: a kill that comes before the child has run a line must still leave it.
    err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.environ.clear()
            os.environ.update(job["env"])
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(err, 2)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            for module, name, value in job["set"]:
                setattr(importlib.import_module(module), name, value)
            if job["point"]:
                die_at(*job["point"])
            code = main(job["argv"])
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(err)
    # The child is not reaped before it is killed, so its id cannot have been given to another.
    if hasattr(os, "pidfd_open"):
        pidfd = os.pidfd_open(pid)
        ended, _, _ = select.select([pidfd], [], [], job["kill_after"])
        os.close(pidfd)
        if not ended:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    else:
        while True:
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped:
                break
            if time.monotonic() - started >= job["kill_after"]:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.001)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print(json.dumps({"code": code, "seconds": time.monotonic() - started}), flush=True)
"""
)


class Launcher:
    """Runs commands in children of a process that has imported the library already."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = open(folder / "launcher.log", "wb")  # noqa: SIM115 -- open while it runs
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log
        )
        self.jobs = itertools.count()

    def run(
        self,
        args: Sequence[str | Path],
        *,
        kill_after: float | None = None,
        point: tuple[str, str, int] | None = None,
        overrides: Sequence[tuple[str, str, Any]] = (),
    ) -> Run:
        """Run the command line with *args*; SIGKILL it after *kill_after* seconds (unless it has
        ended by then), or let it kill itself at *point* (``spec, when, nth``).  *overrides* are
        module attributes (``module, name, value``) the child sets first."""
        stderr = self.folder / f"job-{next(self.jobs)}.stderr"
        job = {
            "argv": [str(arg) for arg in args],
            "env": dict(os.environ),
            "stderr": str(stderr),
            "kill_after": HANG_SECONDS if kill_after is None else kill_after,
            "point": point,
            "set": [list(setting) for setting in overrides],
        }
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps(job) + "\n").encode("utf-8"))
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, f"the launcher ended: {(self.folder / 'launcher.log').read_text('utf-8', 'replace')}"
        done = json.loads(reply)
        run = Run(
            killed=done["code"] == -signal.SIGKILL,
            code=done["code"],
            seconds=done["seconds"],
            stderr=stderr.read_text("utf-8", "replace"),
        )
        if kill_after is None and point is None:
            assert not run.killed, f"{args[0]} hung for {HANG_SECONDS} s"
        return run

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    running = Launcher(tmp_path_factory.mktemp("launcher"))
    try:
        yield running
    finally:
        running.close()


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "evidence_catalog", *map(str, args)]


def _exec(command: Sequence[str]) -> Run:
    """Run a command in a new process (``python -m evidence_catalog`` ...) to its end."""
    started = time.monotonic()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG_SECONDS, check=False)
    return Run(
        killed=done.returncode == -signal.SIGKILL,
        code=done.returncode,
        seconds=time.monotonic() - started,
        stderr=done.stderr.decode("utf-8", "replace"),
    )


def _exec_killed_at(point: str, when: str, nth: int, *args: str | Path) -> Run:
    """The console script in a new process that kills itself at *point*."""
    return _exec([sys.executable, "-c", _KILLED_AT_A_POINT, point, when, str(nth), "--", *map(str, args)])


# -- catalogs on either back-end ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_catalog(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, operator: Agent
) -> Iterator[Callable[[], Path]]:
    """Make a new, empty catalog (on PostgreSQL: in a new database of the test server)."""
    numbers = itertools.count()
    databases: list[str] = []
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None

    def make() -> Path:
        path = tmp_path / f"catalog-{next(numbers)}"
        database = None
        if server is not None:
            database = server.new_database()
            databases.append(database)
        Catalog.init(path, operator=operator, database=database).close()
        return path

    yield make
    for database in databases:
        server.drop_database(database)  # type: ignore[union-attr]


@pytest.fixture
def make_default_catalog(tmp_path: Path, operator: Agent) -> Callable[[], Path]:
    """Make a new, empty catalog of the default kind (chosen-point tests: one back-end is enough,
    the random-moment harness covers both)."""
    numbers = itertools.count()

    def make() -> Path:
        path = tmp_path / f"catalog-{next(numbers)}"
        Catalog.init(path, operator=operator).close()
        return path

    return make


# -- inputs ---------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(folder: Path, rng: random.Random) -> list[Path]:
    """Files of every kind an investigator adds: a few MiB of video-like bytes, photos with
    EXIF, small notes; each with content of its own."""
    folder.mkdir(parents=True)
    contents = [
        b"witness statement, typed up\n" * 40,
        rng.randbytes(BIG),
        make_jpeg(colour=(10, 20, 30)),
        make_jpeg(colour=(40, 50, 60), gps=None),
        rng.randbytes(BIG + 12345),
        rng.randbytes(20_000),
        make_jpeg(colour=(70, 80, 90), taken=None),
        rng.randbytes(BIG - 777),
        b"".join(f"{i},{rng.random()}\n".encode() for i in range(2000)),
        make_jpeg(colour=(100, 110, 120)),
    ]
    paths = []
    for number, data in enumerate(contents):
        suffix = ".jpg" if data.startswith(b"\xff\xd8") else ".bin"
        path = folder / f"item-{number:02d}{suffix}"
        path.write_bytes(data)
        paths.append(path)
    return paths


@dataclass(frozen=True)
class TelegramExport:
    folder: Path
    document_sha256: str
    #: Each message's report identity -> the SHA-256s of its media, in order.
    media: dict[str, tuple[str, ...]]


def _telegram_export(
    folder: Path, rng: random.Random, *, messages: int, photos: Sequence[int], files: Sequence[int]
) -> TelegramExport:
    """A Telegram Desktop channel export: result.json, photos and files by relative path."""
    (folder / "photos").mkdir(parents=True)
    (folder / "files").mkdir()
    items: list[dict[str, Any]] = [{"id": 1, "type": "service", "date": "2025-05-05T21:00:00", "action": "create"}]
    media: dict[str, tuple[str, ...]] = {}
    for number in range(2, messages + 2):
        message: dict[str, Any] = {
            "id": number,
            "type": "message",
            "date_unixtime": str(1746469800 + 60 * number),
            "from": "Harbour Monitor",
            "from_id": f"channel{CHAT_ID}",
            "text": [f"Post {number} on the ", {"type": "hashtag", "text": "#EastQuay"}, f" yard ({rng.random():.6f})"],
        }
        held: list[str] = []
        if number in photos:
            data = make_jpeg(colour=(number % 256, 7, 9))
            (folder / "photos" / f"photo_{number}.jpg").write_bytes(data)
            message["photo"] = f"photos/photo_{number}.jpg"
            held.append(_sha256(data))
        if number in files:
            data = rng.randbytes(2 * 1024 * 1024)
            (folder / "files" / f"clip_{number}.bin").write_bytes(data)
            message["file"] = f"files/clip_{number}.bin"
            held.append(_sha256(data))
        items.append(message)
        media[f"telegram:{CHAT_ID}/{number}"] = tuple(held)
    document = json.dumps({"name": "Harbour Monitor", "type": "public_channel", "id": CHAT_ID, "messages": items})
    (folder / "result.json").write_text(document, encoding="utf-8")
    return TelegramExport(folder, _sha256(document.encode("utf-8")), media)


def _populate(catalog: Catalog, folder: Path, rng: random.Random) -> None:
    """Records of both kinds: files added from disk, and reports ingested with their media."""
    catalog.add(_files(folder / "files", rng))
    catalog.ingest(_telegram_export(folder / "telegram", rng, messages=8, photos=(3,), files=(5,)).folder)


# -- what must hold after every kill -------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What a check found in a catalog (after it verified)."""

    records: dict[str, model.EvidenceRecord]
    claimed: frozenset[str]
    orphans: frozenset[str]
    temporary: frozenset[str]
    actions: Counter[str]
    exported: tuple[dict[str, Any], ...]


def _settle(catalog_dir: Path) -> None:
    """On PostgreSQL, wait until the server has finished with the killed client's session: a
    COMMIT already sent when the client died is still carried out, and must not land after the
    checks below."""
    url = CatalogConfig.load(catalog_dir).database_url
    if url is None:
        return
    # Each look in a transaction of its own: PostgreSQL keeps what pg_stat_activity showed
    # first until the transaction ends, so one transaction would see the session for ever.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    others = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    try:
        deadline = time.monotonic() + 60
        with engine.connect() as connection:
            while connection.execute(others).scalar_one():
                assert time.monotonic() < deadline, f"the killed client's session never ended: {_sessions(connection)}"
                time.sleep(0.01)
    finally:
        engine.dispose()


def _sessions(connection: sa.Connection) -> str:
    """What the server says of the other sessions on the catalog's database, and which local
    process holds each one's end of the connection (``ss``), for a failure's message."""
    rows = connection.execute(
        sa.text(
            "SELECT pid, state, wait_event_type, wait_event, client_port, backend_start, state_change,"
            " left(query, 120) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    ).all()
    try:
        sockets = subprocess.run(["ss", "-tanp"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        sockets = f"(ss: {exc})"
    held = [line for line in sockets.splitlines() if any(f":{row[4]} " in line for row in rows)]
    return f"{[tuple(map(str, row)) for row in rows]}; sockets: {held}"


def _inspect(catalog_dir: Path, run_cli: Callable[..., CliResult] | None = None) -> State:
    """Open the catalog and check what must hold whenever no process is working in it: the log
    and records verify, every record's bytes are stored, and ``fsck`` lists nothing but bytes
    no record claims and unfinished temporary files (the command line lists the same)."""
    _settle(catalog_dir)
    with Catalog.open(catalog_dir) as catalog:
        report = catalog.verify(record_event=False)
        assert report.ok, [finding.as_dict() for finding in report.findings]
        records = {record.id: record for record in catalog.records()}
        claimed = set()
        for record in records.values():
            for entry in record.artifacts:
                stored = catalog.artifact_path(entry.artifact.sha256)
                assert stored.is_file(), f"record {record.id} claims {entry.artifact.sha256}, which is not stored"
                assert stored.stat().st_size == entry.artifact.size
                claimed.add(entry.artifact.sha256)
        listing = catalog.fsck()
        history = catalog.history()
        # every change ends with a signed checkpoint in its own transaction: the last event is covered
        proof = catalog.inclusion_proof(len(history))
        assert proof.tree_size == len(history) and proof.checkpoint is not None
    orphans = {entry.sha256 for entry in listing.orphaned_blobs}
    assert None not in orphans and not orphans & claimed, "fsck lists bytes a record claims"
    for entry in listing.orphaned_blobs:
        assert entry.sha256 is not None
        assert entry.path == f"blobs/sha256/{entry.sha256[:2]}/{entry.sha256[2:4]}/{entry.sha256}"
        # never bytes under a name they do not match, even when nothing claims them
        assert _sha256((catalog_dir / entry.path).read_bytes()) == entry.sha256
    temporary = {entry.path for entry in listing.temporary}
    assert all(TEMPORARY_NAME.fullmatch(path) or ANALYSIS_AREA.fullmatch(path) for path in temporary), temporary
    assert not listing.quarantined and not listing.removed
    assert listing.clean == (not orphans and not temporary)
    if run_cli is not None and not listing.clean:
        result = run_cli("fsck", "--catalog", catalog_dir, "--json")
        assert result.code == (0 if listing.clean else 1), result.err
        listed = json.loads(result.out)
        assert {e["sha256"] for e in listed["orphaned_blobs"]} == orphans
        assert {e["path"] for e in listed["temporary"]} == temporary
    return State(
        records=records,
        claimed=frozenset(claimed),
        orphans=frozenset(orphans),
        temporary=frozenset(temporary),
        actions=Counter(event.action for event in history),
        exported=tuple(event.details for event in history if event.action == Action.RECORDS_EXPORTED),
    )


def _remove_leftovers(
    catalog_dir: Path, state: State, run_cli: Callable[..., CliResult] | None = None, *, verify: bool = True
) -> State:
    """``fsck --remove`` (without the grace period: nothing else runs): what was listed is
    removed and logged, nothing a record claims is touched, the catalog is clean and verifies
    (*verify* False: the next check verifies it)."""
    with Catalog.open(catalog_dir) as catalog:
        listed = catalog.fsck()
        report = catalog.fsck(remove=True, grace_seconds=0)
        leftovers = {entry.path for entry in (*listed.orphaned_blobs, *listed.temporary)}
        assert leftovers == {*(f"blobs/sha256/{s[:2]}/{s[2:4]}/{s}" for s in state.orphans), *state.temporary}
        assert {entry.path for entry in report.removed} == leftovers
        assert report.clean and catalog.fsck().clean
        if leftovers:
            last = catalog.history()[-1]
            assert last.action == Action.CATALOG_FSCK
            assert {item["path"] for item in last.details["removed"]} == leftovers
        assert all(catalog.artifact_path(sha).is_file() for sha in state.claimed)
        if verify:
            verified = catalog.verify(record_event=False)
            assert verified.ok, [finding.as_dict() for finding in verified.findings]
    if run_cli is not None:
        result = run_cli("fsck", "--catalog", catalog_dir)
        assert result.code == 0 and result.out.rstrip().endswith("clean"), result.out + result.err
    return replace(
        state,
        orphans=frozenset(),
        temporary=frozenset(),
        actions=state.actions + Counter({Action.CATALOG_FSCK: 1} if leftovers else {}),
    )


def _record_shas(record: model.EvidenceRecord) -> list[str]:
    return [entry.artifact.sha256 for entry in record.artifacts]


# -- the operations, and what "whole or not at all" means for each -------------------------------


class Operation:
    """One operation under test: a fresh start, the command to kill, what must hold after each
    attempt (*before* and *after* it), and finishing it in-process."""

    catalog_dir: Path
    #: Module attributes the killed processes set (see Launcher.run).
    overrides: Sequence[tuple[str, str, Any]] = ()

    def new_round(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        """The command line's arguments for the next attempt."""
        raise NotImplementedError

    def check(self, run: Run, before: State, after: State) -> str:
        """Assert the operation's contract; return what the attempt did (for the summary)."""
        raise NotImplementedError

    def complete(self) -> None:
        raise NotImplementedError

    def finishing_command(self) -> list[str] | None:
        """What is run after the operation is run again to its end, to finish work it leaves to
        another command (``analyze --all`` after ``add``), or ``None``."""
        return None

    def check_finished(self, state: State) -> None:
        """Assert what must hold once the operation and :meth:`finishing_command` are done."""


#: What the analyses of a set of images derive, by the images' SHA-256s (see _derived_by_analyses).
_DERIVED: dict[tuple[str, ...], frozenset[str]] = {}


def _derived_by_analyses(images: Sequence[Path]) -> frozenset[str]:
    """The SHA-256s of every artifact the analyses of *images* derive (documents, keyframes ...):
    the same bytes whichever catalog analyses them, found by adding them to one of their own."""
    key = tuple(_sha256(path.read_bytes()) for path in images)
    if key not in _DERIVED:
        with tempfile.TemporaryDirectory() as scratch:
            with Catalog.init(Path(scratch) / "catalog", operator="Scratch <s@example.org>") as catalog:
                catalog.add(images)
                derived = {
                    entry.artifact.sha256
                    for record in catalog.records()
                    for entry in record.artifacts
                    if entry.role is model.ArtifactRole.DERIVED
                }
        assert len(derived) >= len(images)  # a document each at least
        _DERIVED[key] = frozenset(derived)
    return _DERIVED[key]


class Add(Operation):
    """``add`` records its files in the order given, a batch per transaction (group commit; with
    ``--batch 1``, each file on its own): a killed add has recorded a prefix of its files, each
    with its record, artifact and acquisition, and nothing of the rest -- at most the bytes of
    the files in hand stored, unclaimed: those of the batch being synced or committed and of the
    batch being filled meanwhile (and the file being stored), one temporary file.

    Then each image recorded by this add is analysed, an analysis a transaction (and a work
    area) of its own: a kill inside one leaves what it stored unclaimed (its document ...) and
    its work area, both listed by fsck, and the record as it was; an image is never analysed
    twice, and ``analyze --all`` finishes what a killed add did not analyse.

    With a worker process storing the small files (*ahead*: how many it may store ahead of the
    file being catalogued), the files it stored ahead are in hand too."""

    def __init__(
        self, files: list[Path], make_catalog: Callable[[], Path], batch: int | None = None, ahead: int = 0
    ) -> None:
        self.files = files
        self.shas = [_sha256(path.read_bytes()) for path in files]
        self.make_catalog = make_catalog
        self.batch = batch
        #: Files whose bytes a killed add may leave stored but unclaimed, after those recorded.
        self.in_hand = (1 if batch == 1 else 2 * (batch or len(files)) + 1) + ahead
        #: Temporary files a killed add may leave: one for each process storing.
        self.storing = 2 if ahead else 1
        images = [path for path in files if path.suffix == ".jpg"]
        self.images = {_sha256(path.read_bytes()) for path in images}
        #: What the analyses of the images derive: bytes a killed analysis may leave unclaimed.
        self.derived = _derived_by_analyses(images)

    def new_round(self) -> None:
        self.catalog_dir = self.make_catalog()

    def command(self) -> list[str]:
        batch = [] if self.batch is None else ["--batch", str(self.batch)]
        return ["add", *map(str, self.files), "--catalog", str(self.catalog_dir), "--quiet", *batch]

    def _acquisitions(self, state: State) -> list[int]:
        found = Counter(
            acquisition.artifact_sha256
            for record in state.records.values()
            for acquisition in record.acquisitions
            if acquisition.method is model.AcquisitionMethod.ADDED_FROM_DISK
        )
        return [found[sha] for sha in self.shas]

    def check(self, run: Run, before: State, after: State) -> str:
        counts = self._acquisitions(after)
        grown = [now - then for now, then in zip(counts, self._acquisitions(before), strict=True)]
        done = sum(grown)
        assert grown == [1] * done + [0] * (len(self.files) - done), f"not a prefix of the files: {grown}"
        if not run.killed:
            assert done == len(self.files)
        assert after.actions[Action.ARTIFACT_ADDED] == sum(counts)
        for path, sha, count in zip(self.files, self.shas, counts, strict=True):
            holders = [record for record in after.records.values() if sha in _record_shas(record)]
            assert len(holders) == (1 if count else 0), f"{path.name}: {len(holders)} records hold it"
            if count:
                [record] = holders
                assert record.title == path.name
                added = [a for a in record.acquisitions if a.method is model.AcquisitionMethod.ADDED_FROM_DISK]
                assert [a.original_path for a in added] == [str(path)] * count
        analyses = self._analyses(after)
        if not run.killed:  # every image this run recorded first is analysed (one recorded before is
            # analysed by `analyze`, not by an add of the same file again)
            first = {sha for sha, then in zip(self.shas, self._acquisitions(before), strict=True) if not then}
            assert all(analyses[sha] == 1 for sha in self.images & first), analyses
        in_hand = set(self.shas[done : done + self.in_hand])
        assert after.orphans - before.orphans <= in_hand | self.derived, "bytes stored beyond the files in hand"
        new_temporary = after.temporary - before.temporary
        assert len({path for path in new_temporary if TEMPORARY_NAME.fullmatch(path)}) <= self.storing
        # One work area per analysis under way: analyzing.WORKERS at once.
        assert len({path for path in new_temporary if ANALYSIS_AREA.fullmatch(path)}) <= analyzing.WORKERS
        return "none" if done == 0 else "all" if done == len(self.files) else "some"

    def _analyses(self, state: State) -> dict[str, int]:
        """How many analyses each image recorded has (0: not analysed yet), after checking that
        every analysis is of its record's image, and derived only what analyses derive."""
        found = {}
        for record in state.records.values():
            documents = [a for a in record.acquisitions if a.method is model.AcquisitionMethod.DERIVED]
            derived = [entry for entry in record.artifacts if entry.role is model.ArtifactRole.DERIVED]
            [source] = [
                entry.artifact.sha256 for entry in record.artifacts if entry.role is not model.ArtifactRole.DERIVED
            ]
            assert {entry.artifact.sha256 for entry in derived} <= self.derived
            assert all(entry.derived_from == (source,) for entry in derived)
            if source in self.images:
                found[source] = len(documents)
            else:
                assert not documents, "a file that is not an image analysed"
        assert all(count <= 1 for count in found.values()), f"an image analysed twice: {found}"
        return found

    def finishing_command(self) -> list[str] | None:
        return ["analyze", "--all", "--catalog", str(self.catalog_dir), "--quiet"]

    def check_finished(self, state: State) -> None:
        assert self._analyses(state) == dict.fromkeys(self.images, 1)

    def complete(self) -> None:
        with Catalog.open(self.catalog_dir) as catalog:
            catalog.add(self.files, **({} if self.batch is None else {"batch": self.batch}))
            catalog.analyze(all_records=True)  # what a killed add recorded and did not analyse


class Ingest(Operation):
    """``ingest`` is one transaction: every report of the export on its record with the source
    document and its media, or none; its ``digest.ingested`` event with them."""

    def __init__(self, export: TelegramExport, make_catalog: Callable[[], Path]) -> None:
        self.export = export
        self.make_catalog = make_catalog
        self.shas = {export.document_sha256} | {sha for held in export.media.values() for sha in held}

    def new_round(self) -> None:
        self.catalog_dir = self.make_catalog()

    def command(self) -> list[str]:
        # The ingest's own transaction; the analyses that follow it are killed in Add's runs.
        return ["ingest", str(self.export.folder), "--catalog", str(self.catalog_dir), "--quiet", "--no-analyze"]

    def check(self, run: Run, before: State, after: State) -> str:
        reports = after.actions[Action.REPORT_INGESTED]
        ingests = after.actions[Action.DIGEST_INGESTED] - before.actions[Action.DIGEST_INGESTED]
        assert reports in (0, len(self.export.media)), f"{reports} of {len(self.export.media)} reports"
        assert ingests in ((1,) if not run.killed else (0, 1))
        assert (reports > 0) == (after.actions[Action.DIGEST_INGESTED] > 0)
        assert len(after.records) == reports
        found = {}
        for record in after.records.values():
            [report] = record.reports
            assert report.identity is not None and report.document_sha256 == self.export.document_sha256
            found[report.identity] = record
        assert set(found) == (set(self.export.media) if reports else set())
        for identity, record in found.items():
            assert _record_shas(record) == [self.export.document_sha256, *self.export.media[identity]]
        assert after.orphans - before.orphans <= self.shas
        assert len(after.temporary - before.temporary) <= 1
        return "all" if before.actions[Action.REPORT_INGESTED] < reports else "none"

    def complete(self) -> None:
        with Catalog.open(self.catalog_dir) as catalog:
            catalog.ingest(self.export.folder, analyze=False)


class Import(Operation):
    """``import`` of a bag is one transaction: every record of the bag, unchanged, each with
    its ``record.imported`` event, or none."""

    def __init__(self, bag: Path, source: dict[str, model.EvidenceRecord], make_catalog: Callable[[], Path]) -> None:
        self.bag = bag
        self.source = source
        self.shas = {sha for record in source.values() for sha in _record_shas(record)}
        self.make_catalog = make_catalog

    def new_round(self) -> None:
        self.catalog_dir = self.make_catalog()

    def command(self) -> list[str]:
        return ["import", str(self.bag), "--catalog", str(self.catalog_dir), "--quiet"]

    def check(self, run: Run, before: State, after: State) -> str:
        assert not after.records or set(after.records) == set(self.source), f"{len(after.records)} records"
        if not run.killed:
            assert set(after.records) == set(self.source)
        assert after.actions[Action.RECORD_IMPORTED] == len(after.records)
        for record_id, record in after.records.items():
            assert record == self.source[record_id]
        assert after.orphans - before.orphans <= self.shas
        # An import stores a bag's files on threads: large ones on a thread per CPU but one while
        # the records are read, the others on a thread per CPU (at most 8 each; the folder store
        # reads with one reader a CPU). A kill can leave one unfinished temporary file per
        # thread, each listed by fsck (checked with every state).
        assert len(after.temporary - before.temporary) <= 2 * min(8, os.cpu_count() or 1)
        return "all" if len(before.records) < len(after.records) else "none"

    def complete(self) -> None:
        with Catalog.open(self.catalog_dir) as catalog:
            catalog.import_records(self.bag)


def _assert_complete_bag(path: Path, records: int) -> None:
    bag = bagit.Bag(str(path))
    bag.validate()  # every file of the manifests, with its digest; Payload-Oxum; nothing else
    assert bag.info["Evidence-Records"] == str(records)
    assert len(list((path / "data" / "records").iterdir())) == records


class Export(Operation):
    """``export --format bagit`` writes under a temporary name and renames: under the name asked
    for there is nothing or a complete, valid bag; beside it at most ``.export-*.part`` (the
    documented leftover of a kill); the catalog itself is not changed, nor left untidy."""

    def __init__(self, catalog_dir: Path, output: Path) -> None:
        self.catalog_dir = catalog_dir
        self.output = output
        output.mkdir()
        self.targets: list[Path] = []
        self.checked: set[Path] = set()
        with Catalog.open(catalog_dir) as catalog:
            self.records = {record.id: record for record in catalog.records()}

    def new_round(self) -> None:
        self.targets.append(self.output / f"bag-{len(self.targets)}")

    def command(self) -> list[str]:
        if self.targets[-1].exists():  # done by the attempt before: the next goes elsewhere
            self.new_round()
        target, catalog = str(self.targets[-1]), str(self.catalog_dir)
        return ["export", "--format", "bagit", "--output", target, "--catalog", catalog, "--quiet"]

    def check(self, run: Run, before: State, after: State) -> str:
        assert after.records == self.records and after.claimed == before.claimed
        assert not after.orphans and not after.temporary  # an export leaves nothing in the catalog
        asked = {target.name for target in self.targets}
        for name in os.listdir(self.output):
            assert name in asked or EXPORT_LEFTOVER.fullmatch(name), f"stray {name!r} beside the exports"
        for target in self.targets:
            if target.exists() and target not in self.checked:
                _assert_complete_bag(target, len(self.records))
                self.checked.add(target)
        if not run.killed:
            assert self.targets[-1].exists()
        # Every export under a name asked for is logged (the event is written before the
        # rename); a logged export not under its name is complete beside it, under its
        # temporary name (killed between the two).
        logged = [Path(details["output"]) for details in after.exported]
        assert self.checked <= set(logged)  # (a name can be logged twice: killed, then done again)
        for details in after.exported:
            output = Path(details["output"])
            candidates = [output] * output.exists() + [
                # A leftover killed while being written may lack its tag manifest (written last);
                # one killed after it is logged has all of it.
                p
                for p in self.output.iterdir()
                if EXPORT_LEFTOVER.fullmatch(p.name) and (p / "tagmanifest-sha256.txt").exists()
            ]
            pins = [_sha256((c / "tagmanifest-sha256.txt").read_bytes()) for c in candidates]
            assert details["sha256"] in pins, "a logged export is neither under its name nor complete beside it"
        if not self.targets[-1].exists():
            return "none"
        return "all" if self.targets[-1] in logged else "all (but not logged)"

    def complete(self) -> None:
        if self.targets[-1].exists():
            self.new_round()
        with Catalog.open(self.catalog_dir) as catalog:
            catalog.export(self.targets[-1], format="bagit")

    def leftovers(self) -> int:
        return sum(1 for name in os.listdir(self.output) if EXPORT_LEFTOVER.fullmatch(name))


def _kill_at_random(
    operation: Operation,
    *,
    kills: int,
    rng: random.Random,
    launcher: Launcher,
    run_cli: Callable[..., CliResult],
) -> Counter[str]:
    """Measure the operation unkilled, then kill it *kills* times at random moments across its
    run, in rounds: up to ROUND kills one after the other on one catalog (each attempt a retry of
    the one before), then the operation run to its end and everything checked (the last time by
    a new ``python -m evidence_catalog`` process), then the next round on a fresh catalog."""
    durations = []
    for _ in range(2):  # the shorter of two: a run slowed by a busy machine would waste kills
        operation.new_round()
        before = _inspect(operation.catalog_dir, run_cli)
        full = launcher.run(operation.command(), overrides=operation.overrides)
        assert full.code == 0, full.stderr
        assert operation.check(full, before, _inspect(operation.catalog_dir, run_cli)) == "all"
        durations.append(full.seconds)
    latest = 1.05 * min(durations)
    summary: Counter[str] = Counter()
    killed = attempts = 0
    while killed < kills and attempts < 3 * kills:
        operation.new_round()
        state = _inspect(operation.catalog_dir, run_cli)
        for _ in range(min(ROUND, kills - killed)):
            attempts += 1
            run = launcher.run(operation.command(), kill_after=rng.uniform(0, latest), overrides=operation.overrides)
            assert run.killed or run.code == 0, run.stderr
            after = _inspect(operation.catalog_dir, run_cli)
            effect = operation.check(run, state, after)
            if not run.killed:
                summary["finished before the kill"] += 1
                state = after
                break
            killed += 1
            summary[f"killed: {effect} done"] += 1
            summary["killed: new orphaned blob"] += bool(after.orphans - state.orphans)
            summary["killed: new temporary file"] += bool(after.temporary - state.temporary)
            state = after
            if killed % 2:  # every other time fsck clears up; else the retry finds what is left
                state = _remove_leftovers(operation.catalog_dir, state, run_cli, verify=False)
        # Run again to the end: the operation is whole, and every byte a killed attempt stored
        # and left is claimed now (reused, not stored again); temporary files are fsck's.
        if killed < kills:
            operation.complete()
        else:
            rerun = _exec(_cli(*operation.command()))
            assert rerun.code == 0, rerun.stderr
            finishing = operation.finishing_command()
            if finishing is not None:
                finished = _exec(_cli(*finishing))
                assert finished.code == 0, finished.stderr
        after = _inspect(operation.catalog_dir, run_cli)
        assert operation.check(COMPLETED, state, after) in ("all", "none")
        operation.check_finished(after)
        assert not after.orphans
        _remove_leftovers(operation.catalog_dir, after, run_cli)
        result = run_cli("verify", "--catalog", operation.catalog_dir)
        assert result.code == 0, result.out + result.err
    assert killed >= kills // 2, f"only {killed} of {attempts} attempts were killed: {summary}"
    summary["kills"] = killed
    summary["unkilled run, ms"] = round(1000 * min(durations))
    return summary


# -- the random-moment harness, per operation -----------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "worker"), [(None, False), (3, False), (3, True)], ids=["default", "batch-3", "batch-3-worker"]
)
def test_add_killed_at_random_moments(
    backend: str,
    batch: int | None,
    worker: bool,
    make_catalog: Callable[[], Path],
    tmp_path: Path,
    launcher: Launcher,
    run_cli: Callable[..., CliResult],
) -> None:
    # By default the ten files are one batch; with --batch 3, four: kills fall at the batch
    # boundaries and inside batches (storing, syncing, committing) alike.  With *worker*, the
    # small files are stored by a worker process (in tasks of two, up to a batch ahead), as in an
    # add of hundreds of files or more: the kill ends it too.
    rng = random.Random(f"{SEED}-add-{backend}-{batch}" + ("-worker" if worker else ""))
    add = Add(_files(tmp_path / "files", rng), make_catalog, batch, ahead=3 if worker else 0)
    if worker:
        add.overrides = [(OFFLOADING, "OFFLOAD_FILES", 2), (OFFLOADING, "CHUNK_FILES", 2)]
    summary = _kill_at_random(add, kills=KILLS[backend], rng=rng, launcher=launcher, run_cli=run_cli)
    print(f"add ({backend}, batch {batch or 'default'}{', worker' if worker else ''}): {dict(summary)}")


def test_ingest_killed_at_random_moments(
    backend: str,
    make_catalog: Callable[[], Path],
    tmp_path: Path,
    launcher: Launcher,
    run_cli: Callable[..., CliResult],
) -> None:
    rng = random.Random(f"{SEED}-ingest-{backend}")
    export = _telegram_export(tmp_path / "ChatExport", rng, messages=60, photos=(3, 30, 47), files=(20, 40))
    ingest = Ingest(export, make_catalog)
    # written in chunks of 16 reports (of 2,000 normally), all in one transaction: kills between chunks
    ingest.overrides = [("evidence_catalog.operations.ingesting", "INGEST_CHUNK", 16)]
    summary = _kill_at_random(ingest, kills=KILLS[backend], rng=rng, launcher=launcher, run_cli=run_cli)
    print(f"ingest ({backend}): {dict(summary)}")


def _source_bag(folder: Path, rng: random.Random, operator: Agent) -> tuple[Path, dict[str, model.EvidenceRecord]]:
    """A bag exported from another catalog, and that catalog's records."""
    with Catalog.init(folder / "source", operator=operator) as source:
        _populate(source, folder / "inputs", rng)
        source.export(folder / "bag", format="bagit")
        return folder / "bag", {record.id: record for record in source.records()}


def test_import_killed_at_random_moments(
    backend: str,
    make_catalog: Callable[[], Path],
    tmp_path: Path,
    operator: Agent,
    launcher: Launcher,
    run_cli: Callable[..., CliResult],
) -> None:
    rng = random.Random(f"{SEED}-import-{backend}")
    bag, records = _source_bag(tmp_path, rng, operator)
    summary = _kill_at_random(
        Import(bag, records, make_catalog), kills=KILLS[backend], rng=rng, launcher=launcher, run_cli=run_cli
    )
    print(f"import ({backend}): {dict(summary)}")


def test_export_killed_at_random_moments(
    backend: str,
    make_catalog: Callable[[], Path],
    tmp_path: Path,
    launcher: Launcher,
    run_cli: Callable[..., CliResult],
) -> None:
    rng = random.Random(f"{SEED}-export-{backend}")
    catalog_dir = make_catalog()
    with Catalog.open(catalog_dir) as catalog:
        _populate(catalog, tmp_path / "inputs", rng)
    export = Export(catalog_dir, tmp_path / "exports")
    summary = _kill_at_random(export, kills=KILLS[backend], rng=rng, launcher=launcher, run_cli=run_cli)
    print(f"export ({backend}): {dict(summary)}, {export.leftovers()} .export-*.part left beside the bags")


# -- chosen points ---------------------------------------------------------------------------------

#: Where in ``add`` a process can die: mid-way through writing a blob's temporary file; with the
#: blob linked under its address but not recorded; a batch stored but not synced, synced but not
#: catalogued; inside the transaction, before or after its events are appended, its rows
#: written, its checkpoint signed (not committed); a batch committed, the next not yet.
ADDING = "evidence_catalog.operations.adding"
OFFLOADING = "evidence_catalog.operations.adding_offload"
ADD_POINTS = [
    ("evidence_catalog.store.blobstore:_BlobWriter.write", "after"),
    ("evidence_catalog.store.blobstore:BlobStore._link_into_place", "after"),
    ("evidence_catalog.store.blobstore:BlobStore.sync", "before"),
    ("evidence_catalog.store.blobstore:BlobStore.sync", "after"),
    ("evidence_catalog.store.database:CatalogDatabase.append_events", "before"),
    ("evidence_catalog.store.database:CatalogDatabase.append_events", "after"),
    ("evidence_catalog.store.database:CatalogDatabase.insert_rows", "after"),
    ("evidence_catalog.operations.log_key:write_checkpoint", "after"),
    (f"{ADDING}:commit_batch", "after"),
]


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    point=st.sampled_from(ADD_POINTS),
    nth=st.integers(min_value=1, max_value=6),
    batch=st.sampled_from([None, 1, 2, 3]),
)
@example(point=ADD_POINTS[1], nth=3, batch=1)  # the third file's bytes stored, the first two recorded
@example(point=ADD_POINTS[1], nth=5, batch=2)  # the fifth file's bytes stored; some batches committed
@example(point=ADD_POINTS[3], nth=2, batch=3)  # the second batch synced, not catalogued
@example(point=ADD_POINTS[7], nth=1, batch=None)  # the one batch signed, not committed
@example(point=ADD_POINTS[4], nth=3, batch=None)  # in the second image's analysis: its document stored, not claimed
def test_add_killed_at_a_point_hypothesis_chooses_keeps_its_contract(
    point: tuple[str, str],
    nth: int,
    batch: int | None,
    tmp_path_factory: pytest.TempPathFactory,
    operator: Agent,
    launcher: Launcher,
) -> None:
    folder = tmp_path_factory.mktemp("add-point")
    Catalog.init(folder / "catalog", operator=operator).close()
    add = Add(_files(folder / "files", random.Random(nth)), lambda: folder / "catalog", batch)
    add.new_round()
    before = _inspect(add.catalog_dir)
    # batches end by their count here, never by the clock on a slow machine
    run = launcher.run(add.command(), point=(*point, nth), overrides=[(ADDING, "BATCH_SECONDS", 3600.0)])
    assert run.killed or run.code == 0, run.stderr
    after = _inspect(add.catalog_dir)
    effect = add.check(run, before, after)
    recorded = sum(1 for sha in add.shas if sha in after.claimed)
    if point == ADD_POINTS[1]:  # linked, not recorded: the bytes of files recorded+1 to nth are orphans
        assert run.killed and effect == ("none" if recorded == 0 else "some")
        assert after.orphans == set(add.shas[recorded:nth])
        if batch == 1:
            assert recorded == nth - 1
        else:  # whole batches only
            assert recorded % (batch or len(add.files)) == 0
    in_analysis = recorded == len(add.files)  # every batch committed: the kill was in an analysis
    if point[0].endswith(("BlobStore.sync", "append_events", "insert_rows", "write_checkpoint")) and run.killed:
        if in_analysis:
            # in an analysis's transaction (an event appended or a checkpoint signed, nothing
            # committed): its derived bytes stored, unclaimed; the images analysed before it whole
            assert point[0].endswith(("append_events", "write_checkpoint"))
            assert after.orphans and after.orphans <= add.derived
            assert sum(add._analyses(after).values()) < len(add.images)
        else:
            # between storing a batch and committing it: nothing of it recorded, all of it stored
            assert recorded % (batch or len(add.files)) == 0 and recorded < len(add.files)
            assert set(add.shas[recorded : recorded + (batch or len(add.files))]) <= after.orphans
    add.complete()  # the retry claims what the killed add left; `analyze` finishes the analyses
    done = _inspect(add.catalog_dir)
    add.check(COMPLETED, after, done)
    add.check_finished(done)
    assert not done.orphans
    _remove_leftovers(add.catalog_dir, done)


def test_an_import_killed_between_storing_and_committing_leaves_orphans_a_retry_reuses(
    make_default_catalog: Callable[[], Path], tmp_path: Path, operator: Agent
) -> None:
    bag, records = _source_bag(tmp_path, random.Random(SEED), operator)
    operation = Import(bag, records, make_default_catalog)
    operation.new_round()
    before = _inspect(operation.catalog_dir)
    # records_to_import runs again inside the write transaction, after the blobs are stored
    point = "evidence_catalog.operations.importing:records_to_import"
    run = _exec_killed_at(point, "before", 2, *operation.command())
    assert run.killed, run.stderr
    after = _inspect(operation.catalog_dir)
    assert operation.check(run, before, after) == "none"
    assert after.orphans == operation.shas  # every artifact's bytes, claimed by nobody
    with Catalog.open(operation.catalog_dir) as catalog:
        result = catalog.import_records(bag)
    assert (result.artifacts_stored, result.artifacts_present) == (0, len(operation.shas))  # reused
    done = _inspect(operation.catalog_dir)
    assert operation.check(COMPLETED, after, done) == "all" and not done.orphans and done.claimed == operation.shas


def test_an_ingest_killed_inside_its_transaction_leaves_nothing_but_unclaimed_bytes(
    make_default_catalog: Callable[[], Path], tmp_path: Path
) -> None:
    export = _telegram_export(tmp_path / "ChatExport", random.Random(SEED), messages=30, photos=(4,), files=(9,))
    operation = Ingest(export, make_default_catalog)
    operation.new_round()
    before = _inspect(operation.catalog_dir)
    # every report's events and rows written, the digest.ingested event not yet, nothing committed
    point = "evidence_catalog.store.database:CatalogDatabase.insert_rows"
    run = _exec_killed_at(point, "after", 1, *operation.command())
    assert run.killed, run.stderr
    after = _inspect(operation.catalog_dir)
    assert operation.check(run, before, after) == "none"
    assert after.orphans == operation.shas
    after = _remove_leftovers(operation.catalog_dir, after)
    operation.complete()  # stores the bytes again
    done = _inspect(operation.catalog_dir)
    assert operation.check(COMPLETED, after, done) == "all" and not done.orphans


@pytest.mark.parametrize(
    ("point", "when"),
    [
        pytest.param("evidence_catalog.interchange.bag:BagWriter.finish", "before", id="payload-written"),
        pytest.param("evidence_catalog.operations.exporting:fsync_dir", "before", id="bag-finished-not-placed"),
        pytest.param("evidence_catalog.operations.exporting:place_bag", "before", id="bag-logged-not-placed"),
        pytest.param("evidence_catalog.operations.exporting:place_bag", "after", id="bag-placed-and-logged"),
    ],
)
def test_an_export_killed_at_a_point_leaves_nothing_or_a_logged_complete_bag(
    point: str, when: str, make_default_catalog: Callable[[], Path], tmp_path: Path
) -> None:
    catalog_dir = make_default_catalog()
    with Catalog.open(catalog_dir) as catalog:
        _populate(catalog, tmp_path / "inputs", random.Random(SEED))
    export = Export(catalog_dir, tmp_path / "exports")
    export.new_round()
    before = _inspect(catalog_dir)
    run = _exec_killed_at(point, when, 1, *export.command())
    assert run.killed, run.stderr
    after = _inspect(catalog_dir)
    export.check(run, before, after)  # nothing or a complete bag under the name; the catalog as it was
    [target] = export.targets
    if not target.exists():
        assert export.leftovers() == 1  # the documented leftover, for the operator to delete
    export.complete()  # a new export (to a new name when the killed one got there) succeeds
    done = _inspect(catalog_dir)
    export.check(COMPLETED, after, done)
    # Every bag under a name asked for is an export the custody log records.
    logged = {Path(details["output"]) for details in done.exported}
    assert {path for path in export.targets if path.exists()} <= logged


@pytest.mark.parametrize("name", ["add", "ingest", "import", "export"])
def test_killed_after_its_work_before_closing_the_catalog_the_work_is_kept(
    name: str, make_default_catalog: Callable[[], Path], tmp_path: Path, operator: Agent, launcher: Launcher
) -> None:
    rng = random.Random(f"{SEED}-{name}")
    operation: Operation
    if name == "add":
        operation = Add(_files(tmp_path / "files", rng), make_default_catalog)
    elif name == "ingest":
        export = _telegram_export(tmp_path / "ChatExport", rng, messages=20, photos=(4,), files=(9,))
        operation = Ingest(export, make_default_catalog)
    elif name == "import":
        operation = Import(*_source_bag(tmp_path, rng, operator), make_default_catalog)
    else:
        catalog_dir = make_default_catalog()
        with Catalog.open(catalog_dir) as catalog:
            _populate(catalog, tmp_path / "inputs", rng)
        operation = Export(catalog_dir, tmp_path / "exports")
    operation.new_round()
    before = _inspect(operation.catalog_dir)
    # committed (and, for an export, logged), but the database never closed
    run = launcher.run(operation.command(), point=("evidence_catalog.catalog:Catalog.close", "before", 1))
    assert run.killed, run.stderr
    after = _inspect(operation.catalog_dir)
    assert operation.check(COMPLETED, before, after) == "all"  # as if it had not been killed
    assert not after.orphans and not after.temporary


def test_the_harness_reports_a_job_killed_before_it_ran_a_line(launcher: Launcher) -> None:
    # The random moments start at 0 s: a kill that lands before the child has opened anything must
    # still give a result (it once raised FileNotFoundError for the job's own stderr file).
    runs = [launcher.run(["--version"], kill_after=0.0) for _ in range(20)]
    assert all(run.killed or run.code == 0 for run in runs)
    assert any(run.killed for run in runs)
