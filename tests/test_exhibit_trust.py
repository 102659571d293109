"""A court exhibit says nothing the catalog cannot back: a checkpoint row the log's key did not
sign is never shown as signed, and a custody event or a record changed in the database behind
the library's back stops the exhibit instead of being printed beside proofs that do not cover it.

Real catalogs; the tampering is done with plain SQL on the catalog's database, as an attacker
with access to it would.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_catalog import Catalog, checkpoint
from evidence_catalog.checkpoint import public_bytes
from evidence_catalog.errors import IntegrityError
from tests.conftest import database_dialect, make_jpeg, run_sql


def _record(catalog: Catalog, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "photo.jpg"
    image.write_bytes(make_jpeg())
    [added] = catalog.add([image])
    catalog.claim(added.record_id, summary="Original claim", source_description="a witness")
    return added.record_id


def _note(page: str) -> str:
    [note] = re.findall(r'<pre class="note">(.*?)</pre>', page, flags=re.S)
    return html.unescape(note)


def test_a_checkpoint_row_the_log_key_did_not_sign_is_not_shown_as_signed(catalog: Catalog, tmp_path: Path) -> None:
    record_id = _record(catalog, tmp_path / "in")
    genuine = catalog.checkpoint()
    key = catalog.log_key_info()
    # Someone with the database but not the key: the real size and root, signed by another key.
    forged = checkpoint.sign(
        checkpoint.Checkpoint(origin=key.origin, size=genuine.size, root=bytes.fromhex(genuine.root)),
        Ed25519PrivateKey.generate(),
    )
    run_sql(
        catalog,
        "insert into checkpoint (tree_size, root_hash, note, signed, created_at)"
        " values (:size, :root, :note, :signed, :at)",
        {"size": genuine.size, "root": genuine.root, "note": forged, "signed": True, "at": "2030-01-01 00:00:00"},
    )
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    shown = _note(page)
    assert shown != forged
    assert checkpoint.verify(shown, key.origin, key.public_key).size == genuine.size  # the log key's own


def test_a_verifier_key_file_that_is_not_the_logs_key_is_not_shown_as_its_key(catalog: Catalog, tmp_path: Path) -> None:
    record_id = _record(catalog, tmp_path / "in")
    key = catalog.log_key_info()
    other = checkpoint.vkey(key.origin, public_bytes(Ed25519PrivateKey.generate().public_key()))
    (catalog.path / "keys" / "log.vkey").write_text(other + "\n", encoding="ascii")
    page = catalog.exhibit(record_id, tmp_path / "e.html").html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    # The key the exhibit names is the one the log's own events declare, whatever the file holds.
    assert key.vkey in page and other not in page
    checkpoint.verify(_note(page), key.origin, key.public_key)


def _replace_in_json(catalog: Catalog, table: str, column: str, old: str, new: str) -> None:
    if database_dialect(catalog) == "postgresql":
        expression = f"replace({column}::text, :old, :new)::json"
        where = f"{column}::text like :pattern"
    else:
        expression = f"replace({column}, :old, :new)"
        where = f"{column} like :pattern"
    run_sql(
        catalog,
        f"update {table} set {column} = {expression} where {where}",
        {"old": old, "new": new, "pattern": f"%{old}%"},
    )


@pytest.mark.parametrize("tables", [("record_part",), ("record_part", "custody_event")])
def test_a_record_changed_behind_the_librarys_back_stops_the_exhibit(
    catalog: Catalog, tmp_path: Path, tables: tuple[str, ...]
) -> None:
    record_id = _record(catalog, tmp_path / "in")
    for table in tables:
        _replace_in_json(catalog, table, "body" if table == "record_part" else "details", "Original", "Forged")
    events = len(catalog.history())
    with pytest.raises(IntegrityError, match="run verify"):
        catalog.exhibit(record_id, tmp_path / "e.html")
    assert not (tmp_path / "e.html").exists() and len(catalog.history()) == events


def test_an_analysis_document_changed_on_disk_stops_the_exhibit(catalog: Catalog, tmp_path: Path) -> None:
    import os

    from tests.test_media import make_video

    catalog.add([make_video(tmp_path / "v.mp4", frames=60, size=(160, 120))])
    [record_id] = catalog.record_ids()
    [(document, analysis)] = catalog.analyses(record_id)
    assert analysis is not None and analysis.keyframes
    stored = catalog.artifact_path(document)
    os.chmod(stored, 0o644)
    text = stored.read_text(encoding="utf-8")
    lie = text.replace('"errors":[]', '"errors":["none: the footage is authentic"]')
    assert lie != text
    stored.write_text(lie, encoding="utf-8")
    events = len(catalog.history())
    with pytest.raises(IntegrityError, match="run verify"):
        catalog.exhibit(record_id, tmp_path / "e.html")
    assert not (tmp_path / "e.html").exists() and len(catalog.history()) == events
