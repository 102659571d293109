"""A real PostgreSQL server for the tests, started from the machine's PostgreSQL binaries in a
throw-away data directory on a free port of 127.0.0.1 (or an existing server, when
``$EVIDENCE_CATALOG_TEST_POSTGRESQL`` gives its URL).

The server runs with ``fsync`` off: the tests check behaviour, not the disk.  For the same
reason its data directory is in memory (``/dev/shm``) where that is a tmpfs with room: on a
virtual disk each ``CREATE TABLE`` took about 3 ms (a catalog's schema 90 ms, against 27 ms in
memory) and a test database's ``CREATE``/``DROP`` 20 ms.  PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` account (which the Debian packages create).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

EXISTING_SERVER_ENV = "EVIDENCE_CATALOG_TEST_POSTGRESQL"


def find_bindir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, Debian's versioned
    folders (newest first), or ``$PATH``."""
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            return Path(found)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


#: A data directory in memory needs at least this much free room there and free memory (the
#: suite runs two servers; Docker's default /dev/shm is 64 MiB: too small).
MEMORY_ROOM = 4 << 30
#: A data folder in memory with no server's pid in it yet is being made, unless it is this old.
ABANDONED_AFTER = 3600


def _memory_folder() -> str | None:
    """``/dev/shm`` when it is a writable tmpfs with :data:`MEMORY_ROOM` free and as much
    memory available, else None.  Folders of test servers that are gone are removed first."""
    folder = "/dev/shm"
    try:
        with open("/proc/mounts") as mounts:
            tmpfs = any(line.split()[1:3] == [folder, "tmpfs"] for line in mounts)
        with open("/proc/meminfo") as meminfo:
            available = next((int(line.split()[1]) << 10 for line in meminfo if line.startswith("MemAvailable:")), 0)
        if not tmpfs or not os.access(folder, os.W_OK):
            return None
        _remove_abandoned(Path(folder))
        room = os.statvfs(folder)
    except (OSError, ValueError, IndexError):
        return None
    if room.f_bavail * room.f_frsize < MEMORY_ROOM or available < MEMORY_ROOM:
        return None
    return folder


def _remove_abandoned(folder: Path) -> None:
    """Remove test servers' data folders whose server is gone (a test run killed before it
    stopped its server): in memory they would hold their RAM until the machine restarts.

    A folder touched within :data:`ABANDONED_AFTER` is kept whatever its ``postmaster.pid``
    says: while another worker's ``initdb`` runs, its short-lived single-user backends write
    that file too, with the pid of a process that may already have ended, and removing the
    folder then fails that worker's whole run."""
    for root in folder.glob("ec-pg-*"):
        data = root / "data"
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # no server in it (yet, or any more)
            pid = None
        if pid is not None:
            try:
                os.kill(pid, 0)
                continue  # its server runs
            except ProcessLookupError:
                pass
            except OSError:  # another user's process: alive
                continue
        touched = []
        for path in (root, data, data / "postmaster.pid"):
            with contextlib.suppress(OSError):
                touched.append(path.stat().st_mtime)
        if touched and time.time() - max(touched) >= ABANDONED_AFTER:
            shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A PostgreSQL server to make databases in: ``new_database()`` gives a fresh one's URL."""

    def __init__(self, *, in_memory: bool = True) -> None:
        """*in_memory*: put the data directory in ``/dev/shm`` when it can hold it (see the
        module's note); False for one on disk, as a benchmark of the disk needs."""
        self.in_memory = in_memory
        self.url_base: str | None = os.environ.get(EXISTING_SERVER_ENV) or None
        self.data_dir: Path | None = None
        self.process_user: str | None = None
        self.bindir: Path | None = None
        self._strategy = ""
        #: The connection making the next database, and that database's name (see new_database).
        self._maker: Any = None
        self._next: str | None = None
        self._lock = threading.Lock()

    def start(self) -> PostgresServer:
        if self.url_base is not None:
            return self
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed (no initdb): .ci/run installs it with apt-get")
        root = Path(tempfile.mkdtemp(prefix="ec-pg-", dir=_memory_folder() if self.in_memory else None))
        os.chmod(root, 0o755)
        self.data_dir = root / "data"
        self.data_dir.mkdir(mode=0o700)
        run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
            os.chown(root, account.pw_uid, account.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
            self.process_user = "postgres"
        self._run_as = run_as
        subprocess.run(
            [
                *run_as,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        port = _free_port()
        options = (
            f"-p {port} -h 127.0.0.1 -k {root} -F -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300 -c shared_buffers=128MB"
        )
        subprocess.run(
            [
                *run_as,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        self.url_base = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        return self

    def _admin(self) -> str:
        assert self.url_base is not None
        return self.url_base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"

    def new_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL.

        Each call also starts making the one the next call will give: ``CREATE DATABASE``
        copies the template's files (about a tenth of a second), which every test would
        otherwise wait for.  The statement is sent on a connection of its own without waiting
        for it (libpq's asynchronous ``PQsendQuery``: no thread) and collected by the next call.
        """
        with self._lock:  # tests racing two inits call this from two threads
            if self._next is None:  # the first call: nothing made ahead yet
                self._send_next()
            name = self._collect_next()
            self._send_next()
        assert self.url_base is not None
        return f"{self.url_base}/{name}"

    def _send_next(self) -> None:
        import psycopg

        if self._maker is None or self._maker.closed:
            self._maker = psycopg.connect(self._admin(), autocommit=True)
            version = int(str(self._maker.execute("SHOW server_version_num").fetchone()[0]))
            # PostgreSQL 15 copies a template through the WAL by default: slow for the many
            # small databases a test run makes; a file copy is quick.
            self._strategy = " STRATEGY = FILE_COPY" if version >= 150000 else ""
        name = f"ec_{uuid.uuid4().hex[:16]}"
        self._maker.pgconn.send_query(f'CREATE DATABASE "{name}"{self._strategy}'.encode())
        self._next = name

    def _collect_next(self) -> str:
        """Wait for the database :meth:`_send_next` asked for; its name."""
        from psycopg import pq

        assert self._maker is not None and self._next is not None
        name, self._next = self._next, None
        errors = []
        while (result := self._maker.pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK:
                errors.append((result.error_message or b"").decode(errors="replace").strip())
        if errors:
            raise RuntimeError(f"could not create the test database {name}: {'; '.join(errors)}")
        return name

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`new_database` (closing what still holds it open)."""
        import psycopg

        name = url.rsplit("/", 1)[-1]
        with psycopg.connect(self._admin(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._next is not None and self.data_dir is None:  # an existing server: leave it as found
            self.drop_database(f"{self.url_base}/{self._collect_next()}")
        if self._maker is not None:
            self._maker.close()
            self._maker = None
        self._next = None
        if self.data_dir is None or self.bindir is None:
            return
        subprocess.run(
            [*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        for _ in range(50):
            if not (self.data_dir / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        self.data_dir = None
