"""A killed process leaves the catalog as it was; long work shows progress only on a terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence_catalog import Catalog
from evidence_catalog.model import AcquisitionMethod, EvidenceRecord

# Left out of `make test-fast` (the whole module is slow); `make test` runs it.
pytestmark = pytest.mark.slow


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "evidence_catalog", *map(str, args)]


def test_a_process_killed_while_storing_leaves_no_record_and_a_retry_succeeds(tmp_path: Path) -> None:
    catalog_dir = tmp_path / "cat"
    Catalog.init(catalog_dir, operator="Tester").close()
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(1024 * 1024))
    process = subprocess.Popen(
        _cli("add", big, "--catalog", catalog_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    tmp_dir = catalog_dir / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        parts = list(tmp_dir.glob("*.part")) if tmp_dir.exists() else []
        if parts and parts[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the add finished before it could be killed; make the file bigger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]

    with Catalog.open(catalog_dir) as catalog:
        assert list(catalog.records()) == []
        assert [e.action for e in catalog.history()] == ["catalog.created"]
        assert not list((catalog_dir / "blobs").glob("sha256/*/*/*"))
        assert catalog.verify().ok
        [result] = catalog.add([big])
        assert catalog.artifact_path(result.sha256).stat().st_size == big.stat().st_size
        assert catalog.verify().ok


def _run_on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run a command with standard error on a pseudo-terminal; return exit code and what it drew."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=terminal, env={**os.environ, "COLUMNS": "100"})
    os.close(terminal)
    output = bytearray()
    while True:
        ready, _, _ = select.select([controller], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    return process.wait(), output.decode("utf-8", "replace")


@pytest.mark.no_postgresql_pass  # what is drawn on a terminal: no database has a part in it
def test_progress_is_drawn_on_a_terminal_and_not_with_quiet(tmp_path: Path) -> None:
    catalog_dir = tmp_path / "cat"
    Catalog.init(catalog_dir, operator="Tester").close()
    for i in range(2):
        with open(tmp_path / f"f{i}.bin", "wb") as f:
            f.write(os.urandom(48 * 1024 * 1024))
    code, drawn = _run_on_a_terminal(_cli("add", tmp_path / "f0.bin", "--catalog", catalog_dir))
    assert code == 0, drawn  # what it said on the terminal, should it fail
    assert "adding" in drawn and "MB" in drawn
    code, drawn = _run_on_a_terminal(_cli("add", tmp_path / "f1.bin", "--catalog", catalog_dir, "--quiet"))
    assert code == 0 and drawn == "", drawn
    code, drawn = _run_on_a_terminal(_cli("verify", "--catalog", catalog_dir))
    assert code == 0 and "verifying" in drawn, drawn


def _add_in_child(catalog_dir: str, paths: list[str]) -> None:
    with Catalog.open(catalog_dir, operator="Worker") as catalog:
        for path in paths:
            catalog.add([path])


def test_concurrent_writers_keep_one_linear_log_and_store_each_blob_once(tmp_path: Path) -> None:
    import multiprocessing

    catalog_dir = tmp_path / "cat"
    Catalog.init(catalog_dir, operator="Tester").close()
    shared = [tmp_path / f"shared-{i}.bin" for i in range(5)]
    for i, path in enumerate(shared):
        path.write_bytes(f"the same evidence {i}".encode() * 1000)
    jobs = []
    for worker in range(4):
        own = []
        for i in range(5):
            path = tmp_path / f"w{worker}-{i}.bin"
            path.write_bytes(os.urandom(20_000))
            own.append(str(path))
        jobs.append(own + [str(p) for p in shared])
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_add_in_child, args=(str(catalog_dir), job)) for job in jobs]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0

    with Catalog.open(catalog_dir) as catalog:
        history = catalog.history()
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        added = [e for e in history if e.action == "artifact.added"]
        assert len(added) == 4 * 10
        records = list(catalog.records())
        assert len(records) == 4 * 5 + 5  # each distinct content on exactly one record

        # Random bytes now and then begin like an image (two bytes make a PGM or BMP to the
        # sniffer): their failed analysis is an acquisition of its own, not a second add.
        def adds(record: EvidenceRecord) -> int:
            return sum(a.method is not AcquisitionMethod.DERIVED for a in record.acquisitions)

        shared_records = [r for r in records if adds(r) > 1]
        assert len(shared_records) == 5 and all(adds(r) == 4 for r in shared_records)
        blobs = [p for p in (catalog_dir / "blobs" / "sha256").rglob("*") if p.is_file()]
        assert len(blobs) == 25
        assert catalog.verify().ok


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    catalog_dir = tmp_path / "cat"
    with Catalog.init(catalog_dir, operator="Tester") as catalog:
        for i in range(400):
            (tmp_path / f"f{i}").write_text(str(i))
        catalog.add([tmp_path / f"f{i}" for i in range(400)])
    # The JSON log of 400 additions is over a megabyte, far more than a pipe buffer holds, so
    # the command is still writing when head exits (the text log, 48 KB, could fit whole).
    script = f"{' '.join(_cli('log', '--json', '--catalog', catalog_dir))} | head -1"
    result = subprocess.run(["bash", "-c", script + "; echo ${PIPESTATUS[0]} >&2"], capture_output=True, text=True)
    assert result.stdout == "[\n"
    assert result.stderr.strip().splitlines()[-1] == "141"  # killed by SIGPIPE, as Unix tools are
    assert "Traceback" not in result.stderr
