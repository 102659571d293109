"""Time-stamp tokens read in a process that has imported nothing of ``asn1crypto`` yet.

``asn1crypto.cms`` knows what a TSTInfo is only once ``asn1crypto.tsp`` has been imported.  The
test suite imports it everywhere, so ``verify`` in a new process (as every ``evidence-catalog
verify`` is) reported each granted time-stamp as unreadable ("the token holds no TSTInfo"), a
false alarm on catalogs the library made, while every test passed.  Here the reading is done in
a child process of its own.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from evidence_catalog import Catalog
from tests.tsa_server import LocalTSA

from .test_hostile_log import database

CHILD = """
import json, sys
from evidence_catalog import Catalog
from evidence_catalog.timestamp import token_info
before = sorted(m for m in sys.modules if m.startswith("asn1crypto"))
with Catalog.open(sys.argv[1]) as catalog:
    report = catalog.verify(record_event=False, remember=False)
token = bytes.fromhex(sys.argv[2])
info = token_info(token)
print(json.dumps({"before": before, "ok": report.ok, "findings": [str(f) for f in report.findings],
                  "sha256": info.sha256}))
"""


@pytest.fixture
def stamped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes, str]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "photo.bin").write_bytes(b"the bytes of a photo")
    with LocalTSA() as tsa, Catalog.init(tmp_path / "catalog", operator="A <a@example.org>") as catalog:
        [added] = catalog.add([tmp_path / "photo.bin"], analyze=False)
        catalog.timestamp(url=tsa.url, artifacts=[added.sha256])
    with database(tmp_path / "catalog") as db:
        query = sa.text("select subject_kind, token from timestamp_token where status = 'granted'")
        rows = [tuple(row) for row in db.execute(query)]
    assert {kind for kind, _ in rows} == {"checkpoint", "artifact"}
    token = next(base64.b64decode(token) for kind, token in rows if kind == "artifact")
    return tmp_path / "catalog", token, added.sha256


def test_a_new_process_reads_the_tokens_it_kept(stamped: tuple[Path, bytes, str], tmp_path: Path) -> None:
    catalog, token, sha256 = stamped
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(catalog), token.hex()], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "asn1crypto.tsp" not in found["before"]  # the child starts without it, as a command does
    assert found["ok"] and found["findings"] == [], found
    assert found["sha256"] == sha256
