"""``verify`` reads the log once, the stored Merkle tree a window at a time, the records a page at
a time and hashes the blobs in groups: damage is found wherever it falls -- in the middle of a
page, on a page's first or last row, in the last page that is not full -- whatever the page
sizes.  The pages here are made small (the module's constants) so that a few records cross
many of their boundaries; the code is the one a large catalog runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, merkle
from evidence_catalog.custody import document_hash, event_leaf, hash_and_leaf
from evidence_catalog.findings import (
    DigestMismatch,
    EntryUnreadable,
    EventEdited,
    MerkleLeafMismatch,
    MerkleNodeMismatch,
    RecordMismatch,
    SizeMismatch,
    UnloggedChange,
)
from evidence_catalog.operations import verifying

from .conftest import FixedClock, run_sql

pytestmark = pytest.mark.sqlite_only  # each example works on a copy of one catalog folder

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")
RECORDS = 13
EVENTS = 14  # catalog.created and an artifact.added per record
PAGES = st.integers(min_value=1, max_value=7)
EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog of 13 records of one file each (added in transactions of 4: several signed
    checkpoints), tagged, the last with a note: 14 events, 13 artifacts."""
    folder = tmp_path_factory.mktemp("verify-pages")
    files = []
    for index in range(RECORDS):
        path = folder / "files" / f"file-{index:02d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"file {index}\n".encode() * (index + 1))
        files.append(path)
    path = folder / "catalog"
    with Catalog.init(path, operator=OPERATOR, clock=FixedClock()) as catalog:
        catalog.add(files[:-1], batch=4, tags=["batch"])
        catalog.add(files[-1:], tags=["last"], note="the last one")
    return path


@contextmanager
def copy_of(base: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog"
        shutil.copytree(base, path)
        yield path


def verified(path: Path, workers: int | None = None) -> Any:
    with Catalog.open(path, operator=OPERATOR) as catalog:
        return catalog.verify(record_event=False, remember=False, workers=workers)


def record_ids(path: Path) -> list[str]:
    return [str(row[0]) for row in run_sql(path, "select id from record order by id")]


def test_a_clean_catalog_verifies_with_any_page_sizes(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for size in (1, 2, 3, 4, 13, 14, 500):
        monkeypatch.setattr(verifying, "RECORD_PAGE", size)
        monkeypatch.setattr(verifying, "TREE_PAGE", size)
        monkeypatch.setattr(verifying, "GROUP_FILES", size)
        report = verified(base)
        assert report.ok, report.findings
        assert (report.records_checked, report.artifacts_checked, report.events_checked) == (RECORDS, RECORDS, EVENTS)


@EXAMPLES
@given(page=PAGES, which=st.integers(0, RECORDS - 1), column=st.sampled_from(["title", "created_at", "tag"]))
def test_a_record_row_changed_in_any_page_is_found(
    base: Path, monkeypatch: pytest.MonkeyPatch, page: int, which: int, column: str
) -> None:
    monkeypatch.setattr(verifying, "RECORD_PAGE", page)
    with copy_of(base) as path:
        record_id = record_ids(path)[which]
        if column == "title":
            run_sql(path, "update record set title = 'forged' where id = :id", {"id": record_id})
        elif column == "created_at":
            run_sql(path, "update record set created_at = '1999-01-01 00:00:00' where id = :id", {"id": record_id})
        else:
            run_sql(path, "delete from record_tag where record_id = :id", {"id": record_id})
        report = verified(path)
    field = "tags" if column == "tag" else column
    assert not report.ok
    assert report.findings == (RecordMismatch(record_id=record_id, fields=(field,)),)
    assert report.records_checked == RECORDS


@EXAMPLES
@given(page=PAGES, damaged=st.integers(0, RECORDS - 1), changed=st.integers(0, RECORDS - 1))
def test_a_row_the_driver_cannot_read_hides_no_other_record_of_its_page(
    base: Path, monkeypatch: pytest.MonkeyPatch, page: int, damaged: int, changed: int
) -> None:
    """JSON that does not parse fails the whole page's query: that page is read again a record
    at a time, and a record changed next to it is still found."""
    monkeypatch.setattr(verifying, "RECORD_PAGE", page)
    with copy_of(base) as path:
        ids = record_ids(path)
        run_sql(path, "update acquisition set body = 'not json' where record_id = :id", {"id": ids[damaged]})
        if changed != damaged:
            run_sql(path, "update record set title = 'forged' where id = :id", {"id": ids[changed]})
        report = verified(path)
    unreadable = [f for f in report.findings if isinstance(f, EntryUnreadable)]
    assert [f.subject for f in unreadable] == [f"record {ids[damaged]}"]
    mismatched = [f.record_id for f in report.findings if isinstance(f, RecordMismatch)]
    assert mismatched == ([] if changed == damaged else [ids[changed]])
    assert len(report.findings) == len(unreadable) + len(mismatched)


@EXAMPLES
@given(page=PAGES, which=st.integers(0, RECORDS - 1), moved=st.integers(0, RECORDS - 1))
def test_a_page_read_by_its_range_of_ids_takes_only_its_own_records_rows(
    base: Path, monkeypatch: pytest.MonkeyPatch, page: int, which: int, moved: int
) -> None:
    """A page's rows are asked for by the range of its ids: a row of no record whose id falls in
    that range (just after a record's id, before the next one's) is not taken as a page's record's
    row (it is named as the orphan it is, and nothing else is); a row given to another record is
    still that record's mismatch."""
    monkeypatch.setattr(verifying, "RECORD_PAGE", page)
    with copy_of(base) as path:
        ids = record_ids(path)
        orphan = ids[which] + "0"
        assert orphan not in ids and (which == RECORDS - 1 or orphan < ids[which + 1])
        run_sql(
            path, "insert into record_tag (record_id, tag) values (:id, 'stray')", {"id": orphan}, foreign_keys=False
        )
        [found] = verified(path).findings
        assert isinstance(found, UnloggedChange) and found.subject.startswith(
            f"record_tag row stray (of record {orphan},"
        )
        if moved != which:
            run_sql(
                path,
                "update acquisition set record_id = :to where record_id = :id",
                {"id": ids[moved], "to": ids[which]},
            )
            report = verified(path)
            named = {i for i in ids for f in report.findings if i in str(f) and not isinstance(f, UnloggedChange)}
            assert named == {ids[moved], ids[which]}, report.findings


@EXAMPLES
@given(group=PAGES, group_bytes=st.integers(1, 400), which=st.integers(0, RECORDS - 1), cut=st.booleans())
def test_a_blob_changed_in_any_group_is_found(
    base: Path, monkeypatch: pytest.MonkeyPatch, group: int, group_bytes: int, which: int, cut: bool
) -> None:
    monkeypatch.setattr(verifying, "GROUP_FILES", group)
    monkeypatch.setattr(verifying, "GROUP_BYTES", group_bytes)  # the files are 7 to 104 bytes
    with copy_of(base) as path:
        query = "select sha256 from artifact order by sha256 limit 1 offset :n"
        [sha256] = [str(row[0]) for row in run_sql(path, query, {"n": which})]
        blob = path / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256
        data = bytearray(blob.read_bytes())
        os.chmod(blob, 0o644)
        if cut:
            data = data[:-1]
        else:
            data[len(data) // 2] ^= 0x01
        blob.write_bytes(bytes(data))
        report = verified(path, workers=1)
    kinds = {type(f) for f in report.findings}
    assert DigestMismatch in kinds
    assert (SizeMismatch in kinds) == cut
    assert {f.sha256 for f in report.findings} == {sha256}  # type: ignore[attr-defined]


@EXAMPLES
@given(page=PAGES, seq=st.integers(1, EVENTS))
def test_an_event_changed_anywhere_in_the_log_is_found(
    base: Path, monkeypatch: pytest.MonkeyPatch, page: int, seq: int
) -> None:
    monkeypatch.setattr(verifying, "TREE_PAGE", page)
    with copy_of(base) as path:
        run_sql(path, "update custody_event set subject = subject || ' ' where seq = :seq", {"seq": seq})
        report = verified(path)
    assert [f.seq for f in report.findings if isinstance(f, EventEdited)] == [seq]
    assert MerkleLeafMismatch(seq=seq) in report.findings


def nodes(size: int) -> list[tuple[int, int]]:
    """Every perfect subtree of a tree of *size* leaves."""
    return [(level, index) for level in range(size.bit_length()) for index in range(size >> level)]


@EXAMPLES
@given(page=PAGES, node=st.sampled_from(nodes(EVENTS)), how=st.sampled_from(["changed", "not hex", "deleted"]))
def test_a_stored_merkle_node_changed_or_gone_is_found_in_any_window(
    base: Path, monkeypatch: pytest.MonkeyPatch, page: int, node: tuple[int, int], how: str
) -> None:
    monkeypatch.setattr(verifying, "TREE_PAGE", page)
    level, index = node
    where = "where level = :level and idx = :idx"
    params = {"level": level, "idx": index}
    with copy_of(base) as path:
        if how == "deleted":
            run_sql(path, f"delete from merkle_node {where}", params)
        elif how == "not hex":
            run_sql(path, f"update merkle_node set hash = 'zz' {where}", params)
        else:
            run_sql(path, f"update merkle_node set hash = :hash {where}", {**params, "hash": "ab" * 32})
        report = verified(path)
    expected = MerkleLeafMismatch(seq=index + 1) if level == 0 else MerkleNodeMismatch(level=level, index=index)
    assert expected in report.findings, report.findings
    assert not report.ok


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 3000), max_size=60),
    workers=st.integers(1, 8),
    files=st.integers(1, 300),
    group_bytes=st.integers(1, 5000),
)
def test_hashing_groups_hold_every_artifact_once_in_order(
    sizes: list[int], workers: int, files: int, group_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifying, "GROUP_FILES", files)
    monkeypatch.setattr(verifying, "GROUP_BYTES", group_bytes)
    artifacts = [(f"{index:064x}", size, None) for index, size in enumerate(sizes)]
    groups = list(verifying.hash_groups(artifacts, workers))  # type: ignore[arg-type]
    assert [a for group in groups for a in group] == artifacts
    assert all(groups)
    for group in groups:  # a group over the limits is one file alone
        assert len(group) == 1 or (len(group) <= files and sum(a[1] for a in group) <= group_bytes)
    if len(sizes) >= 4 * workers and group_bytes >= 3000:
        assert len(groups) >= 4 * workers


@settings(max_examples=200, deadline=None)
@given(leaves=st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_the_frontier_gives_every_node_and_root_the_whole_tree_has(leaves: list[bytes]) -> None:
    tree = merkle.perfect_from_leaves(leaves)
    frontier = merkle.Frontier()
    assert frontier.root() == merkle.EMPTY_ROOT
    for index, leaf in enumerate(leaves):
        completed = frontier.add(leaf)
        assert completed == merkle.completed_nodes(index, leaf, tree)
        assert frontier.size == index + 1
        assert frontier.root() == merkle.root(tree, index + 1)


def test_a_checkpoint_size_not_foreseen_is_recomputed_from_the_log(base: Path) -> None:
    with Catalog.open(base, operator=OPERATOR) as catalog, catalog.db.read() as session:
        ctx = catalog._ctx
        for size in range(EVENTS + 1):
            assert verifying.root_at(ctx, session, size) == catalog.db.merkle_root(session, size)
    assert verifying.checkpoint_sizes(["not a note", "origin\n7\n" + "A" * 43 + "=\n\n— sig\n"]) == {0, 7}


def test_hash_and_leaf_is_the_hash_and_the_leaf(base: Path) -> None:
    with Catalog.open(base, operator=OPERATOR) as catalog, catalog.db.read() as session:
        documents = list(catalog.db.event_documents(session))
    for document in documents:
        assert hash_and_leaf(document) == (document_hash(document), event_leaf(document))
        edited = {**document, "details": {**document["details"], "more": [1, "two", None]}}
        assert hash_and_leaf(edited) == (document_hash(edited), event_leaf(edited))
