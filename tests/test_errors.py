"""One error family: every exception the library raises on purpose is an :class:`EvidenceError`.

A script catches them all with ``except EvidenceError``, or one kind by its class; each is
exported from ``evidence_catalog``.  Those that were a ``ValueError`` or a ``TypeError`` before
are one still, so that code written then keeps working.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import evidence_catalog
from evidence_catalog import (
    CaptureFailed,
    Catalog,
    CatalogError,
    CheckpointError,
    CommitmentError,
    EvidenceError,
    FieldPathError,
    IntegrityError,
    MerkleError,
    ModelError,
    ModelTypeError,
    NetworkError,
    TimestampError,
    ValidationError,
    custody,
    merkle,
    model,
    serialize,
    timestamp,
)
from evidence_catalog.checkpoint import Checkpoint, public_bytes, sign
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.config import CatalogConfig
from evidence_catalog.ingest.checks import JSONLimitError, read_json
from evidence_catalog.interchange.redact import resolve
from tests.conftest import raw_database

QUICKSTART = Path(__file__).resolve().parent.parent / "docs" / "quickstart.md"

#: Modules that are scripts run by another program, not imported: importing them runs them.
SCRIPTS = {
    "evidence_catalog.__main__",  # the command line
    "evidence_catalog.store.migrations.env",  # Alembic's environment, run by Alembic alone
}

#: Exception classes of the library that are not EvidenceErrors, each with the reason why.
NOT_EVIDENCE_ERRORS: dict[str, str] = {
    # Signals caught in the module that raises them, never raised to a caller: each only says
    # "take the slower, general way" (writing in this process; the standard library's JSON).
    "evidence_catalog.interchange.bag._NoHelperError": "caught in bag: the payload is written in this process",
    "evidence_catalog.interchange.text._NotPlainError": "caught in text: json.dumps writes the value",
    "evidence_catalog.sealing._NotPlainError": "caught in sealing: the event's committed form is made instead",
    "evidence_catalog.extract.image._MalformedError": "caught in image: an error text on the artifact",
    "evidence_catalog.interchange.auto_archiver._UnreadableError": "caught in auto_archiver: a finding on its row",
    # The bag writer's helper process runs bagfiles.py with the standard library alone (it
    # imports nothing of the library); the writer turns its mismatch into an IntegrityError.
    "evidence_catalog.interchange.bagfiles.CopyMismatch": "turned into an IntegrityError by interchange.bag",
    # The media analysers' child scripts import the standard library and their decoder alone;
    # each catches its own signal and writes what it says as the JSON its parent reads.
    "evidence_catalog.extract.perceptual_child.RefusedError": "caught in perceptual_child: an error in its JSON",
    "evidence_catalog.extract.credentials_probe._TooLargeError": "caught in credentials_probe: a note in its JSON",
    # Raised only in an analysis worker thread whose caller was interrupted or stopped early
    # (sandbox.Cancellation): the caller is already unwinding with its own exception.
    "evidence_catalog.extract.sandbox.RequestCancelledError": "raised in workers once their caller has stopped",
    # A feed read in an ingest's worker: what it handed over does not stand, and the ingest
    # reads the feed itself (which raises the InputError, if there is one).
    "evidence_catalog.ingest.feed._ChangedError": "caught in feed.stream_feed: what was sent does not stand",
    "evidence_catalog.operations.ingesting_stream.StreamLostError": "caught in ingesting: the feed read again",
}

#: EvidenceErrors that ``evidence_catalog`` does not export, each with the reason why.
NOT_EXPORTED = {
    # Never leaves the library: each reader of JSON input turns it into an InputError at once.
    "evidence_catalog.ingest.checks.JSONLimitError": "internal to the ingest readers",
    # A CatalogDatabaseError, caught as one; it carries the damaged values it names for verify.
    "evidence_catalog.store.undecodable.UndecodableError": "a CatalogDatabaseError, keeping what it names",
}


def _modules() -> list[ModuleType]:
    names = [
        info.name
        for info in pkgutil.walk_packages(evidence_catalog.__path__, prefix="evidence_catalog.")
        if info.name not in SCRIPTS
    ]
    return [evidence_catalog, *(importlib.import_module(name) for name in names)]


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of the library, by its full name."""
    found = {}
    for module in _modules():
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_the_search_finds_the_library_s_exceptions() -> None:
    found = _exception_classes()
    assert {"evidence_catalog.errors.EvidenceError", "evidence_catalog.merkle.MerkleError"} <= set(found)
    assert len(found) > 20


def test_every_exception_class_of_the_library_is_an_evidence_error() -> None:
    outside = sorted(
        name
        for name, kind in _exception_classes().items()
        if not issubclass(kind, EvidenceError) and name not in NOT_EVIDENCE_ERRORS
    )
    assert outside == [], f"not derived from EvidenceError: {outside}"


def test_every_evidence_error_is_exported_from_the_package() -> None:
    missing = sorted(
        name
        for name, kind in _exception_classes().items()
        if issubclass(kind, EvidenceError)
        and name not in NOT_EXPORTED
        and getattr(evidence_catalog, kind.__name__, None) is not kind
    )
    assert missing == [], f"not exported from evidence_catalog: {missing}"
    for name in evidence_catalog.__all__:
        value = getattr(evidence_catalog, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, EvidenceError), name


def test_the_quickstart_shows_every_exported_error_under_its_parent() -> None:
    block = re.search(r"\n## Errors\n.*?```text\n(.*?)\n```", QUICKSTART.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    shown: dict[str, str] = {}
    path: list[str] = []
    for line in block.group(1).splitlines():
        drawn = re.match(r"([│├└─ ]*)(\w+)", line)
        assert drawn is not None, line
        depth = len(drawn.group(1)) // 4
        del path[depth:]
        shown[drawn.group(2)] = path[-1] if path else ""
        path.append(drawn.group(2))
    exported = {
        name: value.__bases__[0].__name__ if value is not EvidenceError else ""
        for name in evidence_catalog.__all__
        if isinstance(value := getattr(evidence_catalog, name), type) and issubclass(value, EvidenceError)
    }
    assert shown == exported


@pytest.mark.parametrize(
    ("kind", "builtin"),
    [
        (ModelError, ValueError),
        (ModelTypeError, TypeError),
        (CheckpointError, ValueError),
        (TimestampError, ValueError),
        (MerkleError, ValueError),
        (FieldPathError, ValueError),
        (CommitmentError, ValueError),
        (JSONLimitError, ValueError),
    ],
)
def test_an_error_that_was_a_builtin_one_still_is(kind: type[EvidenceError], builtin: type[Exception]) -> None:
    assert issubclass(kind, builtin)
    assert issubclass(kind, EvidenceError)
    error = kind("what went wrong")
    assert str(error) == error.message == "what went wrong"
    assert error.where is None


def test_a_failed_capture_keeps_what_the_server_answered() -> None:
    failed = CaptureFailed("HTTP Error 404: Not Found", http_status=404, final_url="https://example.org/x")
    assert isinstance(failed, NetworkError)
    assert str(failed) == failed.message == "HTTP Error 404: Not Found"
    assert (failed.http_status, failed.final_url, failed.where) == (404, "https://example.org/x", None)
    assert CaptureFailed("no media").http_status is None


# -- what representative calls raise ------------------------------------------------------------


def test_a_bad_checkpoint_note_is_a_checkpoint_error() -> None:
    key = Ed25519PrivateKey.generate()
    origin = "evidence-catalog/test"
    note = sign(Checkpoint(origin=origin, size=3, root=bytes(32)), key)
    assert verify_checkpoint(note, origin, public_bytes(key.public_key())).size == 3
    forged = note.replace("\n3\n", "\n4\n", 1)
    with pytest.raises(CheckpointError, match="forged or altered") as raised:
        verify_checkpoint(forged, origin, public_bytes(key.public_key()))
    assert isinstance(raised.value, ValidationError) and isinstance(raised.value, ValueError)
    with pytest.raises(EvidenceError, match="not a signed note"):
        verify_checkpoint("evidence-catalog/test\n3\n", origin, public_bytes(key.public_key()))


def test_a_bad_merkle_proof_is_a_merkle_error() -> None:
    leaves = [merkle.leaf_hash(bytes([n])) for n in range(5)]
    tree = merkle.perfect_from_leaves(leaves)
    proof = merkle.inclusion_proof(tree, 2, 5)
    assert merkle.root_from_inclusion(2, 5, leaves[2], proof) == merkle.root(tree, 5)
    for bad, message in (
        ([*proof, bytes(32)], "longer than the tree is deep"),
        (proof[:-1], "shorter than the tree is deep"),
        ([b"short", *proof[1:]], "not 32 bytes"),
    ):
        with pytest.raises(MerkleError, match=message) as raised:
            merkle.root_from_inclusion(2, 5, leaves[2], bad)
        assert isinstance(raised.value, IntegrityError) and isinstance(raised.value, ValueError)
        assert not merkle.verify_inclusion(2, 5, leaves[2], bad, merkle.root(tree, 5))
    with pytest.raises(MerkleError, match="leaf 7 is not in a tree of 5 leaves"):
        merkle.inclusion_proof(tree, 7, 5)
    with pytest.raises(MerkleError, match="no consistency proof from size 0"):
        merkle.consistency_proof(tree, 0, 5)


def test_a_merkle_node_missing_from_the_catalog_is_a_merkle_error(catalog: Catalog, tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name, encoding="utf-8")
        catalog.add([tmp_path / name])
    with raw_database(catalog) as db:
        db.exec_driver_sql("delete from merkle_node where level = 0 and idx = 2")
    with pytest.raises(MerkleError, match="no node at level 0, index 2") as raised:
        catalog.inclusion_proof(3)
    assert isinstance(raised.value, IntegrityError)


def test_a_redaction_field_path_that_names_nothing_is_a_field_path_error() -> None:
    with pytest.raises(FieldPathError, match="no member 'nothing'") as raised:
        resolve({"title": "a title"}, "nothing")
    assert isinstance(raised.value, EvidenceError) and isinstance(raised.value, ValueError)
    with pytest.raises(FieldPathError, match="names no text value"):
        resolve({"title": {"inner": 1}}, "title/inner")


def test_a_model_value_out_of_range_is_a_model_error() -> None:
    with pytest.raises(ModelError, match=r"latitude must be between -90\.0 and 90\.0") as raised:
        model.GeoPosition(latitude=91.0, longitude=0.0)
    assert isinstance(raised.value, ValidationError) and isinstance(raised.value, ValueError)


def test_a_value_of_another_type_than_the_model_checks_for_is_a_model_type_error() -> None:
    with pytest.raises(ModelTypeError, match="expected a datetime, got str") as raised:
        model.to_utc("2026-03-01T12:00:00Z")  # type: ignore[arg-type]
    assert isinstance(raised.value, ValidationError) and isinstance(raised.value, TypeError)
    assert not isinstance(raised.value, ValueError)  # code catching only ValueError sees what it saw before
    with pytest.raises(ModelTypeError, match="timestamp must be text"):
        serialize.parse_timestamp(20260301)  # type: ignore[arg-type]
    with pytest.raises(ModelTypeError, match="GeoPosition is not a top-level document type"):
        serialize.to_document(model.GeoPosition(latitude=1.0, longitude=2.0))
    # Inside a document, the same check is a ValidationError naming the field, as before.
    with pytest.raises(ValidationError, match="EventTime"):
        serialize.structure({"start": 5}, model.EventTime)
    assert model.to_utc(dt.datetime(2026, 3, 1, tzinfo=dt.UTC)).tzinfo is dt.UTC


def test_a_broken_salted_commitment_is_a_commitment_error() -> None:
    with pytest.raises(CommitmentError, match="salt is not 64 lower-case hex digits"):
        custody.value_salt("too short", "/details/title")
    with pytest.raises(CommitmentError, match="no disclosure member"):
        custody.disclosed_form({"seq": 1}, "[withheld]")
    secret = "ab" * 32
    line = {"seq": 1, "details": {"title": "shown"}, "disclosure": {"salts": {}, "withheld": {}}}
    with pytest.raises(CommitmentError, match="shown without its salt") as raised:
        custody.disclosed_form(line, "[withheld]")
    assert isinstance(raised.value, ValueError)
    with pytest.raises(CommitmentError, match="cannot hold 'salt'"):
        custody.make_event(
            None,
            at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            actor=model.Agent(name="A"),
            action="note.added",
            subject="catalog",
            details={"salt": secret},
        )


def test_a_token_that_is_no_time_stamp_is_a_timestamp_error() -> None:
    with pytest.raises(TimestampError, match="not a time-stamp token") as raised:
        timestamp.token_info(b"not DER")
    assert isinstance(raised.value, ValidationError) and isinstance(raised.value, ValueError)
    digest = hashlib.sha256(b"x").digest()
    with pytest.raises(TimestampError, match="not a time-stamp response"):
        timestamp.token_from_response(base64.b64decode("AAAA"), digest, None)


def test_json_beyond_the_reader_s_limits_is_a_json_limit_error() -> None:
    with pytest.raises(JSONLimitError, match="nested deeper") as raised:
        read_json("[" * 100_000 + "]" * 100_000)
    assert isinstance(raised.value, EvidenceError) and isinstance(raised.value, ValueError)


def test_an_unknown_operator_field_in_the_settings_is_a_catalog_error(tmp_path: Path) -> None:
    (tmp_path / "catalog.toml").write_text("format_version = 1\n[operator]\nname = 'A'\nrank = 'x'\n", encoding="utf-8")
    with pytest.raises(
        CatalogError, match="catalog settings are invalid: unknown operator field\\(s\\): rank"
    ) as raised:
        CatalogConfig.load(tmp_path)
    assert isinstance(raised.value.__cause__, ModelError)
