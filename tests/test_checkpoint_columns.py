"""A checkpoint row's own columns (``tree_size``, ``root_hash``) against its note.

The note is what the log key signed; the columns are an index of it that SQL can change alone.
A hostile review changed ``root_hash`` and ``verify`` still said the catalog was intact, while
``Catalog.checkpoint()``, exports and exhibits handed the changed root out beside the signed
note.  Now ``verify`` names such a row, and what hands a checkpoint out reads its size and root
from its note.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, split_note, stated
from evidence_catalog.errors import IntegrityError
from evidence_catalog.findings import CheckpointInvalid
from evidence_catalog.store.keyfiles import PASSPHRASE_ENV
from evidence_catalog.store.log import kept

from .test_hostile_log import OPERATOR, database, grow, new_catalog


@pytest.fixture(autouse=True)
def _own_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # no memory of other tests' logs


def made(path: Path) -> Path:
    with new_catalog(path, encrypted=False) as catalog:
        grow(catalog, path.parent / f"{path.name}-files")
    return path


def rows(path: Path) -> list[tuple[int, int, str, str]]:
    with database(path) as db:
        return [
            tuple(r) for r in db.execute(sa.text("select id, tree_size, root_hash, note from checkpoint order by id"))
        ]


def note_root(note: str) -> str:
    return parse_checkpoint(split_note(note)[0]).root.hex()


def set_column(path: Path, checkpoint_id: int, column: str, value: object) -> None:
    assert column in ("root_hash", "tree_size")
    with database(path) as db:
        db.execute(
            sa.text(f"update checkpoint set {column} = :value where id = :id"), {"value": value, "id": checkpoint_id}
        )


def findings(path: Path) -> list[object]:
    with Catalog.open(path, operator=OPERATOR) as catalog:
        return list(catalog.verify(record_event=False, remember=False).findings)


def test_a_clean_catalog_has_rows_that_agree_with_their_notes(tmp_path: Path) -> None:
    path = made(tmp_path / "catalog")
    kept = rows(path)
    assert len(kept) > 2
    for _, size, root, note in kept:
        assert stated(note) is not None and (stated(note).size, stated(note).root.hex()) == (size, root)  # type: ignore[union-attr]
    assert findings(path) == []


def test_the_latest_rows_root_changed_alone_is_named_and_never_handed_out(tmp_path: Path) -> None:
    path = made(tmp_path / "catalog")
    latest_id, _, root, _ = rows(path)[-1]
    forged = "00" * 32
    set_column(path, latest_id, "root_hash", forged)
    found = findings(path)
    assert any(
        isinstance(f, CheckpointInvalid) and f.source.startswith(f"checkpoint {latest_id} ") and "root hash" in f.reason
        for f in found
    ), found
    with Catalog.open(path, operator=OPERATOR) as catalog:
        # The row is not taken on its word: no checkpoint is handed out, nor anything written
        # (an export is logged) over a log whose signed history it can no longer show, as for
        # a row whose size is not its note's, until the row is put right.
        with pytest.raises(IntegrityError, match="not covered by a checkpoint signed"):
            catalog.checkpoint()
        with pytest.raises(IntegrityError, match="not covered by a checkpoint signed"):
            catalog.export(tmp_path / "export.jsonl", format="jsonl")
    set_column(path, latest_id, "root_hash", root)
    assert findings(path) == []


def test_what_reads_a_kept_checkpoint_takes_its_size_and_root_from_its_note(tmp_path: Path) -> None:
    # Where a row is handed on without its signature checked first (an export's checkpoint
    # line, an exhibit's stamps), its figures are the note's, never the columns'.
    path = made(tmp_path / "catalog")
    latest_id, size, root, note = rows(path)[-1]
    row = SimpleNamespace(
        id=latest_id, tree_size=size - 1, root_hash="00" * 32, note=note, signed=True, created_at=None
    )
    assert kept(row)[1:4] == (size, root, note)
    unreadable = SimpleNamespace(id=1, tree_size=3, root_hash="ab", note="not a note", signed=False, created_at=None)
    assert kept(unreadable)[1:3] == (3, "ab")


def test_an_older_rows_root_or_size_changed_alone_is_named(tmp_path: Path) -> None:
    path = made(tmp_path / "catalog")
    first_id, size, root, _ = rows(path)[0]
    set_column(path, first_id, "root_hash", "ab" * 32)
    [found] = findings(path)
    assert isinstance(found, CheckpointInvalid) and found.source.startswith(f"checkpoint {first_id} ")
    assert "root hash" in found.reason
    set_column(path, first_id, "root_hash", root)
    set_column(path, first_id, "tree_size", size + 1)
    [found] = findings(path)
    assert isinstance(found, CheckpointInvalid) and f"covers {size}" in found.reason


@pytest.mark.sqlite_only  # PostgreSQL keeps a column's type
@pytest.mark.parametrize("value", ["three", 2.5, b"\x00\x01", None])
def test_a_size_column_that_is_no_number_is_named_not_a_crash(tmp_path: Path, value: object) -> None:
    path = made(tmp_path / "catalog")
    first_id = rows(path)[0][0]
    with database(path) as db:  # SQLite keeps whatever it is given (NOT NULL aside)
        if value is None:
            db.execute(sa.text("update checkpoint set tree_size = 'x' || tree_size where id = :id"), {"id": first_id})
        else:
            db.execute(sa.text("update checkpoint set tree_size = :v where id = :id"), {"v": value, "id": first_id})
    found = findings(path)
    assert found and all(isinstance(f, CheckpointInvalid) for f in found), found


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("checkpoint-columns")
    return made(base / "catalog")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pick=st.integers(min_value=0, max_value=50),
    root=st.one_of(
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.text(max_size=70),
        st.binary(min_size=32, max_size=32).map(lambda b: b.hex().upper()),
    ),
)
def test_any_other_root_in_any_row_is_a_finding(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory, pick: int, root: str
) -> None:
    path = tmp_path_factory.mktemp("copy") / "catalog"
    shutil.copytree(prepared, path)
    kept = rows(path)
    checkpoint_id, _, original, _ = kept[pick % len(kept)]
    if root == original:
        return
    set_column(path, checkpoint_id, "root_hash", root)
    assert any(isinstance(f, CheckpointInvalid) for f in findings(path))


@given(
    origin=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30),
    size=st.integers(min_value=0, max_value=2**63),
    root=st.binary(min_size=32, max_size=32),
    signatures=st.lists(st.binary(min_size=5, max_size=80), max_size=3),
)
def test_stated_reads_a_note_signed_or_not(origin: str, size: int, root: bytes, signatures: list[bytes]) -> None:
    checkpoint = Checkpoint(origin=origin, size=size, root=root)
    lines = "".join(f"\u2014 {origin} {base64.b64encode(s).decode()}\n" for s in signatures)
    note = checkpoint.body() + "\n" + lines
    assert stated(note) == checkpoint
    assert stated(checkpoint.body()) == checkpoint


@given(st.one_of(st.text(max_size=200), st.none(), st.integers(), st.binary(max_size=50)))
def test_stated_never_raises(text: object) -> None:
    found = stated(text)
    assert found is None or isinstance(found, Checkpoint)


@pytest.mark.parametrize("size", ["\u2075", "\u0665", "9" * 4400, str(2**64), "01"])
def test_a_size_line_that_is_no_uint64_is_a_checkpoint_error(size: str) -> None:
    # str.isdigit takes superscripts and other scripts' digits, which int() refuses or reads.
    with pytest.raises(CheckpointError):
        parse_checkpoint(f"origin\n{size}\n{base64.b64encode(bytes(32)).decode()}\n")
    assert stated(f"origin\n{size}\n{base64.b64encode(bytes(32)).decode()}\n") is None


@pytest.mark.sqlite_only  # PostgreSQL keeps a column's type
@pytest.mark.parametrize("note", [None, b"\x00\x01", 7])
def test_a_note_column_that_is_no_text_is_named_and_writes_refused(tmp_path: Path, note: object) -> None:
    path = made(tmp_path / "catalog")
    latest_id = rows(path)[-1][0]
    with database(path) as db:
        if note is None:  # NOT NULL: the column's type changed by hand is what SQLite allows
            db.execute(sa.text("update checkpoint set note = cast(x'0001' as blob) where id = :id"), {"id": latest_id})
        else:
            db.execute(sa.text("update checkpoint set note = :v where id = :id"), {"v": note, "id": latest_id})
    found = findings(path)
    assert any(isinstance(f, CheckpointInvalid) and f.source.startswith(f"checkpoint {latest_id} ") for f in found)
    with Catalog.open(path, operator=OPERATOR) as catalog:
        with pytest.raises(IntegrityError):
            catalog.checkpoint()
        for format in ("jsonl", "json", "bagit"):  # nothing handed out of such a row, and no traceback
            with pytest.raises(IntegrityError):
                catalog.export(tmp_path / f"export-{format}", format=format)
