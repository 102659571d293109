"""What a hostile review of the issue-22 changes found: an event's secret accepted in another
spelling (upper-case hex gives the same key), and verify's worker processes -- one killed while
adding to the shared progress counter, one that never answers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evidence_catalog import Agent, Catalog

OP = Agent(name="T", email="t@example.org")
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.no_postgresql_pass  # edits the SQLite file itself
def test_an_edited_salt_in_a_stored_event_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    with Catalog.init(tmp_path / "cat", operator=OP) as catalog:
        catalog.add([tmp_path / "a.txt"])
    con = sqlite3.connect(tmp_path / "cat" / "catalog.db")
    seq, details = con.execute("select seq, details from custody_event order by seq desc limit 1").fetchone()
    edited = json.loads(details)
    edited["salt"] = edited["salt"].upper()  # other bytes in the stored row
    con.execute("update custody_event set details = ? where seq = ?", (json.dumps(edited), seq))
    con.commit()
    con.close()
    with Catalog.open(tmp_path / "cat", operator=OP) as catalog:
        assert not catalog.verify(record_event=False, remember=False).ok


_WORKER_CASE = textwrap.dedent(
    """
    import os, signal, sys, tempfile, time
    from pathlib import Path
    from evidence_catalog import Agent, Catalog
    from evidence_catalog.operations import verifying

    mode = sys.argv[1]
    op = Agent(name="T", email="t@example.org")
    tmp = Path(tempfile.mkdtemp())
    files = []
    for i in range(6):
        p = tmp / f"f{i}.txt"
        p.write_bytes(b"x%d" % i * 1000)
        files.append(p)
    with Catalog.init(tmp / "cat", operator=op) as c:
        c.add(files)
    verifying.usable_cpus = lambda: 2
    verifying.OFFLOAD_WORK = 0
    verifying.GROUP_FILES = 1
    verifying.TASK_TIMEOUT = 3.0
    parent = os.getpid()
    real = verifying.check_files

    def dying(root, group, key=0, progress=None, slot=0):
        if os.getpid() != parent:
            if mode == "hang":  # stuck (a dead network mount, a stopped process)
                time.sleep(10**6)
            if mode == "lock":  # killed (OOM killer, operator) while adding to the shared counter
                verifying._READ[key].get_lock().acquire()
                os.kill(os.getpid(), signal.SIGKILL)
            real(root, group, key, progress, slot)  # counted what it read, then killed
            os.kill(os.getpid(), signal.SIGKILL)
        return real(root, group, key, progress, slot)

    verifying.check_files = dying
    got = []
    with Catalog.open(tmp / "cat", operator=op) as c:
        r = c.verify(record_event=False, remember=False, progress=got.append)
    print(r.ok, r.bytes_checked, sum(got))
    """
)


def _worker_case(tmp_path: Path, mode: str) -> list[str]:
    script = tmp_path / "case.py"
    script.write_text(_WORKER_CASE)
    done = subprocess.run(
        [sys.executable, str(script), mode],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_a_worker_killed_while_counting_does_not_hang_verify(tmp_path: Path) -> None:
    ok, _, _ = _worker_case(tmp_path, "lock")  # on main: TimeoutExpired (verify hangs)
    assert ok == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_progress_counts_each_byte_once_when_a_worker_dies(tmp_path: Path) -> None:
    ok, checked, progress = _worker_case(tmp_path, "count")
    assert ok == "True"
    assert int(progress) == int(checked)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_a_worker_that_never_answers_neither_stops_verify_nor_outlives_it(tmp_path: Path) -> None:
    ok, _, _ = _worker_case(tmp_path, "hang")  # the process exits (else: TimeoutExpired)
    assert ok == "True"
