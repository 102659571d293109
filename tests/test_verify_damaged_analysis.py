"""``verify`` of a catalog whose analysed files or analysis documents were damaged: the damage is
reported once, as the bytes' own finding -- an analysis is not made again from bytes known to be
damaged (it would differ because the bytes do, and read as a forged analysis), and a damaged
document is not held against the similarity index (what it says cannot be trusted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence_catalog import Catalog
from evidence_catalog.findings import BlobMissing, DigestMismatch

from .test_perceptual import picture


def blob(catalog: Catalog, sha256: str) -> Path:
    path = catalog.path / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("damage", ["replaced", "deleted"])
def test_damaged_analysed_bytes_are_one_finding_and_their_analysis_a_notice(
    catalog: Catalog, tmp_path: Path, deep: bool, damage: str
) -> None:
    picture(21).save(tmp_path / "street.jpg", "JPEG")
    [added] = catalog.add([tmp_path / "street.jpg"])
    [(document, _)] = catalog.analyses(added.record_id)
    stored = blob(catalog, added.sha256)
    if damage == "replaced":
        stored.write_bytes(bytes(stored.stat().st_size))
    else:
        stored.unlink()
    report = catalog.verify(deep=deep)
    [finding] = report.findings
    assert isinstance(finding, DigestMismatch if damage == "replaced" else BlobMissing)
    assert finding.sha256 == added.sha256
    [notice] = report.notices
    assert notice.kind == "analysis_not_rechecked" and notice.document == document  # type: ignore[attr-defined]
    assert report.analyses_rechecked == 0


def test_a_damaged_analysis_document_is_one_finding(catalog: Catalog, tmp_path: Path) -> None:
    picture(22).save(tmp_path / "street.jpg", "JPEG")
    [added] = catalog.add([tmp_path / "street.jpg"])
    [(document, analysis)] = catalog.analyses(added.record_id)
    assert analysis is not None and analysis.hashes
    stored = blob(catalog, document)
    edited = stored.read_bytes().replace(analysis.hashes[0].value.encode(), b"0" * 64)
    assert len(edited) == stored.stat().st_size
    stored.write_bytes(edited)  # still an analysis, with another hash: the index no longer agrees
    report = catalog.verify(deep=True)
    [finding] = report.findings
    assert isinstance(finding, DigestMismatch) and finding.sha256 == document
