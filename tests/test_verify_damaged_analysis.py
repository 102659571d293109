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
    assert (report.analyses_checked, report.analyses_rechecked) == (1, 0)


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


def test_damaged_bytes_are_not_analysed_and_the_good_bytes_are_once_restored(catalog: Catalog, tmp_path: Path) -> None:
    """An analysis of damaged bytes would be recorded, for good, as the artifact's (and a deep
    verification would call it wrong once the bytes are restored): ``analyze`` refuses those
    bytes, says why in the result, records nothing, and analyses the others."""
    picture(23).save(tmp_path / "street.jpg", "JPEG")
    picture(24).save(tmp_path / "yard.jpg", "JPEG")
    [street, yard] = catalog.add([tmp_path / "street.jpg", tmp_path / "yard.jpg"], analyze=False)
    stored = blob(catalog, street.sha256)
    stored.write_bytes(bytes(stored.stat().st_size))
    before = len(catalog.history())
    results = {r.sha256: r for r in catalog.analyze(all_records=True)}
    refused = results[street.sha256]
    assert not refused.new and refused.document_sha256 is None
    assert "stored bytes are not the ones recorded" in refused.errors[0]
    assert results[yard.sha256].new
    assert catalog.analyses(street.record_id) == []
    assert len(catalog.history()) == before + 1  # the other picture's analysis alone
    [restored] = catalog.add([tmp_path / "street.jpg"])
    assert restored.new_bytes
    [done] = catalog.analyze([street.record_id])
    assert done.new and done.usable_hashes == 1
    report = catalog.verify(deep=True)
    assert report.ok and (report.analyses_checked, report.analyses_rechecked) == (2, 2), report.findings
