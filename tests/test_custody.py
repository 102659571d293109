"""The hash-linked custody log: intact logs pass, any tampering is found at its first position."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import TypeVar

import attrs
import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evidence_catalog import model
from evidence_catalog.custody import content_hash, event_leaf, linked_event, make_event, verify_chain
from evidence_catalog.findings import BrokenLink, EventEdited, EventMissing, EventOutOfOrder, Finding
from evidence_catalog.serialize import canonical_json, to_document, unstructure

from . import strategies as s

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T = TypeVar("T")


def build_log(n: int, details: list[dict[str, object]] | None = None) -> list[model.CustodyEvent]:
    events: list[model.CustodyEvent] = []
    for i in range(n):
        events.append(
            make_event(
                events[-1] if events else None,
                at=START + dt.timedelta(seconds=i),
                actor=model.Agent(name=f"analyst {i % 3}"),
                action="artifact.added",
                subject=f"subject-{i}",
                details=(details or [{}] * n)[i] if details else {"i": i},
            )
        )
    return events


def check(log: list[model.CustodyEvent]) -> list[Finding]:
    """Verify a log as its JSON objects, the way the catalog and an outside verifier see it."""
    return verify_chain(unstructure(event) for event in log)


@given(st.integers(min_value=0, max_value=30))
def test_an_untouched_log_always_verifies(n: int) -> None:
    assert check(build_log(n)) == []


def test_first_event_links_to_the_genesis_hash_and_each_next_to_its_predecessor() -> None:
    log = build_log(3)
    assert log[0].prev_hash == model.GENESIS_HASH
    assert [e.seq for e in log] == [1, 2, 3]
    assert log[1].prev_hash == log[0].hash and log[2].prev_hash == log[1].hash


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@given(
    st.dictionaries(st.text().filter(lambda k: k != "salt"), json_values, max_size=5),
    s.record_ids(),
    st.integers(0, 10**6),
)
def test_a_linked_events_document_is_the_event_itself(details: dict[str, object], subject: str, seq: int) -> None:
    # The document made once for the hash is the one the Merkle leaf is made from: it must be
    # exactly what the event unstructures to, hash included.
    head = None if seq == 0 else build_log(1)[0]
    if head is not None:
        head = attrs.evolve(head, seq=seq)
    event, document = linked_event(
        head, at=START, actor=model.Agent(name="analyst"), action="note.added", subject=subject, details=details
    )
    assert document == unstructure(event)
    assert event.hash == content_hash(event)
    assert event_leaf(document) == event_leaf(unstructure(event))
    again = make_event(
        head, at=START, actor=model.Agent(name="analyst"), action="note.added", subject=subject, details=details
    )
    # Each event gets its own secret (so its hash commits to salted digests): all else is the same.
    assert again.details.pop("salt") != event.details.pop("salt")
    assert attrs.evolve(event, hash=again.hash) == again


def salted_form_by_hand(document: dict[str, object]) -> dict[str, object]:
    """The committed form of a salted event, written from docs/verification.md alone."""
    details = dict(document["details"])  # type: ignore[call-overload]
    secret = bytes.fromhex(details.pop("salt"))

    def digest(pointer: str, value: object) -> str:
        salt = hmac.new(secret, pointer.encode(), hashlib.sha256).hexdigest()[:32]
        return "sd:" + hashlib.sha256(rfc8785.dumps([salt, value])).hexdigest()

    def walk(node: object, pointer: str) -> object:
        if isinstance(node, str):
            return digest(pointer, node)
        if isinstance(node, dict):
            return {
                k: digest(f"{pointer}/{k.replace('~', '~0').replace('/', '~1')}", v)
                if k == "metadata"
                else walk(v, f"{pointer}/{k.replace('~', '~0').replace('/', '~1')}")
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v, f"{pointer}/{i}") for i, v in enumerate(node)]
        return node

    form = {k: v for k, v in document.items() if k not in ("hash", "schema")}
    form["prev_hash"] = digest("/prev_hash", document["prev_hash"])
    form["actor"] = walk(document["actor"], "/actor")
    form["details"] = walk(details, "/details")
    return form


def test_an_events_hash_and_leaf_commit_to_salted_digests_as_documented() -> None:
    details = {"record": {"title": "Harbour / ~pier", "metadata": {"gps": [1.5, 2]}}, "tags": ["a", "b"], "n": 3}
    [event] = build_log(1, [details])
    document = to_document(event)
    assert len(document["details"]["salt"]) == 64
    form = salted_form_by_hand(document)
    assert event.hash == hashlib.sha256(rfc8785.dumps(form)).hexdigest()
    assert event_leaf(document) == hashlib.sha256(b"\x00" + rfc8785.dumps({**form, "hash": event.hash})).digest()
    text = json.dumps(form)
    assert (
        "Harbour" not in text
        and "analyst" not in text
        and "gps" not in text
        and document["details"]["salt"] not in text
    )


def test_an_event_without_a_salt_hashes_as_before() -> None:
    # Events written before salted commitments keep verifying: the hash of the event itself.
    [event] = build_log(1)
    document = to_document(event)
    del document["details"]["salt"]
    del document["hash"], document["schema"]
    old = attrs.evolve(event, details=document["details"], hash=hashlib.sha256(canonical_json(document)).hexdigest())
    assert content_hash(old) == old.hash
    assert check([old]) == []
    leaf = hashlib.sha256(b"\x00" + canonical_json({**document, "hash": old.hash})).digest()
    assert event_leaf(unstructure(old)) == leaf


def test_details_cannot_bring_their_own_salt() -> None:
    with pytest.raises(ValueError, match="secret"):
        build_log(1, [{"salt": "0" * 64}])


@given(st.integers(min_value=1, max_value=20), st.data())
def test_an_edited_event_is_named(n: int, data: st.DataObject) -> None:
    log = build_log(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    new_details = data.draw(s.details.filter(lambda d: d != log[i].details))
    log[i] = attrs.evolve(log[i], details=new_details)
    findings = check(log)
    assert findings[0] == EventEdited(seq=i + 1, expected=log[i].hash, found=content_hash(log[i]))


@given(st.integers(min_value=2, max_value=20), st.data())
def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(n: int, data: st.DataObject) -> None:
    log = build_log(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    forged = attrs.evolve(log[i], subject="forged")
    log[i] = attrs.evolve(forged, hash=content_hash(forged))
    findings = check(log)
    assert findings[0] == BrokenLink(seq=i + 2, expected=log[i].hash, found=log[i + 1].prev_hash)


@given(st.integers(min_value=2, max_value=20), st.data())
def test_a_deleted_event_is_named(n: int, data: st.DataObject) -> None:
    log = build_log(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))  # deleting the last needs a checkpoint
    del log[i]
    assert check(log)[0] == EventMissing(seq=i + 1, found=i + 2)


@given(st.integers(min_value=2, max_value=20), st.data())
def test_reordered_events_are_found_at_the_first_moved_position(n: int, data: st.DataObject) -> None:
    log = build_log(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=n - 1))
    log[i], log[j] = log[j], log[i]
    findings = check(log)
    assert findings[0] == EventMissing(seq=i + 1, found=j + 1)
    assert any(isinstance(f, EventOutOfOrder) and f.seq == i + 1 for f in findings)


def test_sequence_going_backwards_is_out_of_order() -> None:
    log = build_log(3)
    log.append(log[1])
    assert EventOutOfOrder(seq=2, expected=4) in check(log)


def test_an_event_that_no_longer_parses_is_still_checked_and_named() -> None:
    documents = [unstructure(e) for e in build_log(3)]
    documents[1]["actor"] = "not an agent"
    documents[1]["seq"] = "2"
    findings = verify_chain(documents)
    assert [type(f) for f in findings] == [EventEdited, EventEdited]
    assert {f.seq for f in findings} == {2}  # type: ignore[attr-defined]


# -- the fast path of appending: the same bytes as the reference functions ----------------------

#: Text of every kind: characters beyond the BMP (their UTF-16 order differs from their code
#: points'), the JSON Pointer escapes ``~`` and ``/``, the name ``metadata``.
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8) | st.sampled_from(
    ["metadata", "a/b", "~0", "\ue000", "\U0001d400", "salt", ""]
)
#: Leaves of details as operations hand them over: JSON, and what the converter turns into JSON
#: (enums, times, model values); numbers JSON carries but ``json`` writes otherwise (floats).
detail_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53 - 1), 2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    st.sampled_from(list(model.AgentKind)),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.builds(model.Agent, name=st.sampled_from(["analyst", "Наблюдатель", "a/b ~c"])),
)


class OldStyleName(str, enum.Enum):  # noqa: UP042 -- the kind of enum this is about
    """An enum of strings that is not a ``StrEnum``: ``str()`` gives ``'OldStyleName.SOURCE'``,
    JSON writes ``"source"``."""

    SOURCE = "source"


class Spelled(str):
    """A text that says something else of itself than its characters."""

    def __str__(self) -> str:
        return "spelled otherwise"


#: What no event may hold: an integer JSON cannot carry exactly, a lone surrogate, a key that is
#: not text, a name that is text of a subclass (JSON writes its characters, which ``str()`` need
#: not give, and which another name of the same object may have too).
odd_leaves = st.sampled_from(
    [
        2**53,
        -(2**64),
        "\ud800",
        "a\udfff",
        {1: "one"},
        {OldStyleName.SOURCE: "text"},
        {Spelled("name"): ["text"]},
        {model.AgentKind.PERSON: "x", "person": "y"},
        {"metadata": {OldStyleName.SOURCE: 1}},
    ]
)


def _details_of(leaves: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(any_text, inner, max_size=3)
        ),
        max_leaves=14,
    )


detail_values = _details_of(detail_leaves)
#: An event's details, subject, actor's name, the seq of the event before it and its secret.
EVENT_PARTS = (
    st.dictionaries(any_text.filter(lambda k: k != "salt"), detail_values, max_size=5)
    | st.dictionaries(st.text(max_size=3), _details_of(detail_leaves | odd_leaves), min_size=1, max_size=3),
    st.sampled_from(["catalog", "subject-1", "rec/ord ~1", "\ud800", "\U0001d400", 'x,"prev_hash":"sd:']),
    st.sampled_from(["analyst", "Наблюдатель", "a/b ~c"]),
    st.integers(0, 10**6),
    st.binary(min_size=32, max_size=32),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(*EVENT_PARTS)
# Keys RFC 8785 sorts by UTF-16 code units, in another order than their code points'.
@example({"\ue000": 1, "\U0001d400": [2.5]}, "catalog", "analyst", 1, bytes(32))
@example({"record": {"\ue000": "x", "\U0001d400": None}}, "catalog", "analyst", 1, bytes(32))
def test_an_event_sealed_for_appending_is_the_linked_event_with_its_leaf(
    commitments_walk: str, details: dict[str, object], subject: str, name: str, seq: int, secret: bytes
) -> None:
    """``sealed_event`` (what appending uses) makes its hash and leaf its own way: they must be
    the bytes ``linked_event``, ``document_hash`` and ``event_leaf`` make, and where those
    refuse an event (text JSON cannot hold), it refuses it with the same error."""
    from unittest import mock

    from evidence_catalog import custody, sealing

    head = None if seq == 0 else custody.ChainHead(seq=seq, hash="ab" * 32)
    draft = {
        "at": START,
        "actor": model.Agent(name=name),
        "action": "note.added",
        "subject": subject,
        "details": details,
    }
    with mock.patch.object(custody, "new_secret", return_value=secret.hex()):
        linked, refused = outcome(lambda: linked_event(head, **draft))  # type: ignore[arg-type]
        sealed, also_refused = outcome(lambda: sealing.sealed_event(head, **draft))  # type: ignore[arg-type]
    if refused is not None:  # the reference refuses it: so must the fast path, in the same words
        assert (type(also_refused), str(also_refused)) == (type(refused), str(refused))
        return
    assert linked is not None and sealed is not None
    event, document = linked
    assert sealed[0] == event
    assert document == unstructure(event)
    assert sealed[1] == event_leaf(document)
    assert_verifies_as_stored(document, sealed[1])


def assert_verifies_as_stored(document: dict[str, object], leaf: bytes) -> None:
    """The event as the database stores it (its JSON text, read back) recomputes to its hash
    and its leaf, by the reference functions (the last form they keep forgotten first: it is
    keyed by the canonical JSON, which is what must decide) and by verification's own path."""
    from evidence_catalog import custody
    from evidence_catalog.stored_events import stored_hash_and_leaf

    stored = json.loads(json.dumps(document))
    custody._LAST_FORM[0] = (b"", "")
    assert (custody.document_hash(stored), event_leaf(stored)) == (document["hash"], leaf)
    assert stored_hash_and_leaf(stored) == (document["hash"], leaf)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(*EVENT_PARTS)
@example({"\ue000": 1, "\U0001d400": [2.5]}, "catalog", "analyst", 1, bytes(32))
# Members named as the event's own, where the presealed form is cut.
@example({"prev_hash": "sd:x", "seq": 1, "subject": {"prev_hash": None}}, 'x","seq":1,', "analyst", 7, bytes(32))
@example({"a": {"prev_hash": "ab" * 32, "seq": 1, "subject": "catalog"}}, "catalog", "analyst", 0, bytes(32))
def test_an_event_presealed_in_advance_is_the_linked_event_with_its_leaf(
    commitments_walk: str, details: dict[str, object], subject: str, name: str, seq: int, secret: bytes
) -> None:
    """An ingest's worker makes each event's committed form before the event is linked
    (``preseal``), and the ingest links it from that (``sealed_salted``): the event, its hash and
    its leaf must be what ``linked_event``, ``document_hash`` and ``event_leaf`` make of it, and
    what those refuse, it refuses in the same words; without the presealed form too."""
    from unittest import mock

    from evidence_catalog import custody, sealing

    head = None if seq == 0 else custody.ChainHead(seq=seq, hash="ab" * 32)
    draft = {"at": START, "actor": model.Agent(name=name), "action": "note.added", "subject": subject}
    with mock.patch.object(custody, "new_secret", return_value=secret.hex()):
        linked, refused = outcome(lambda: linked_event(head, **draft, details=details))  # type: ignore[arg-type]
        salted = {**draft, "details": sealing.with_secret(details)}
    presealed = sealing.preseal(**salted)  # type: ignore[arg-type]
    made, also_refused = outcome(lambda: sealing.sealed_salted(head, salted, presealed))
    whole, refused_whole = outcome(lambda: sealing.sealed_salted(head, salted))
    if refused is not None:
        assert (type(also_refused), str(also_refused)) == (type(refused), str(refused))
        assert (type(refused_whole), str(refused_whole)) == (type(refused), str(refused))
        return
    assert linked is not None and made is not None
    event, document = linked
    assert made == whole == (event, event_leaf(document))
    assert_verifies_as_stored(document, made[1])


@pytest.mark.parametrize(
    ("details", "named"),
    [
        ({OldStyleName.SOURCE: "Telegram"}, "in /details"),
        ({"record": {Spelled("title"): "x"}}, "in /details/record"),
        ({"counts": [{model.AgentKind.PERSON: 1, "person": 2}]}, "in /details/counts/0"),
        ({"metadata": {"exif": {OldStyleName.SOURCE: 1.5}}}, "in /details/metadata/exif"),
        ({"metadata": [{"a": {Spelled("b"): 1}}]}, "in /details/metadata/0/a"),
    ],
)
def test_a_name_json_would_write_otherwise_is_refused_where_the_event_is_made(
    commitments_walk: str, details: dict[object, object], named: str
) -> None:
    """A member name that is not exactly text -- an enum of strings (a ``StrEnum`` too), a
    subclass of ``str``, a number -- is written by JSON as its characters: not what ``str()``
    gives of an old-style enum, and the same as another name of the same object for a
    ``StrEnum``.  An event holding one was hashed from one text and stored as another, and failed
    its verification as soon as it was read back.  Every way of making an event refuses it, in
    the same words, naming where it is.  (A name that is not text at all, such as ``7``, is
    refused by the canonical JSON itself: ``odd_leaves`` above.)"""
    from evidence_catalog import custody, sealing

    draft = {"at": START, "actor": model.Agent(name="a"), "action": "note.added", "subject": "s"}
    refusals = []
    for make in (
        lambda: linked_event(None, **draft, details=details),  # type: ignore[arg-type]
        lambda: sealing.sealed_event(None, **draft, details=details),  # type: ignore[arg-type]
        lambda: sealing.sealed_salted(None, {**draft, "details": sealing.with_secret(details)}),
    ):
        with pytest.raises(custody.CommitmentError, match="not text") as refused:
            make()
        refusals.append(str(refused.value))
    assert len(set(refusals)) == 1 and named in refusals[0], refusals
    salted = {**draft, "details": sealing.with_secret(details)}
    assert sealing.preseal(**salted) is None  # type: ignore[arg-type]


class Seven(int):
    """A whole number that says it is another (``json`` writes ``int.__repr__``, 3)."""

    def __int__(self) -> int:
        return 7


class Halved(float):
    """A number that says it is another (``json`` writes ``float.__repr__``, 1.5)."""

    def __float__(self) -> float:
        return 2.0


class Shifted(float, enum.Enum):
    """An enum whose value (1.5) is not the number it is (9.5, which ``json`` writes)."""

    A = 1.5

    def __new__(cls, value: float) -> Shifted:
        made = float.__new__(cls, 9.5)
        made._value_ = value
        return made


Pair = collections.namedtuple("Pair", "left right")


@pytest.mark.parametrize(
    "details",
    [
        {"pair": Pair("a", "b")},
        {"n": Seven(3)},
        {"metadata": {"f": Halved(1.5)}},
        {"w": Shifted.A},
        {"metadata": {"w": [Shifted.A]}},
    ],
    ids=[
        "named tuple",
        "int of its own",
        "float of its own, in metadata",
        "enum",
        "enum in metadata",
    ],
)
def test_details_json_stores_otherwise_than_they_were_hashed_are_refused(
    commitments_walk: str, details: dict[str, object]
) -> None:
    """(From a hostile review.)  The database stores an event's details as ``json.dumps`` writes
    them; a value of a subclass of its own -- a named tuple (the converter passes it as it is, the
    reference hashed its texts without salt), an int or float that says another number to
    ``int()``/``float()`` (what RFC 8785 writes), an enum whose value is not the number it is, two
    was hashed from one thing and stored as another: an event that
    failed ``verify`` the moment it was read back.  Appending one is refused, by every fast path;
    what is appended verifies as stored (the property tests above)."""
    from evidence_catalog import custody, sealing

    draft = {"at": START, "actor": model.Agent(name="a"), "action": "note.added", "subject": "s"}
    for make in (
        lambda: sealing.sealed_event(None, **draft, details=details),  # type: ignore[arg-type]
        lambda: sealing.sealed_salted(None, {**draft, "details": sealing.with_secret(details)}),
    ):
        with pytest.raises(custody.CommitmentError, match="would not verify as stored"):
            make()
    salted = {**draft, "details": sealing.with_secret(details)}
    assert sealing.preseal(**salted) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "details",
    [
        {"metadata": {"exif": {"source": "Telegram"}}, "tags": ("a", "b")},
        {"metadata": {"duration": 12.5, "size": [1920, 1080]}, "kind": model.AgentKind.PERSON},
        {"ratio": 0.1, "when": "2026-01-01T00:00:00Z", "metadata": [Pair("a", 1)]},
    ],
)
def test_details_json_stores_as_they_were_hashed_are_appended_and_verify_as_stored(
    commitments_walk: str, details: dict[str, object]
) -> None:
    """Numbers with fractions, tuples, enums of strings, a named tuple inside a member committed
    whole (the converter makes it the array JSON writes): sealed, and the same as stored."""
    from evidence_catalog import sealing

    draft = {"at": START, "actor": model.Agent(name="a"), "action": "note.added", "subject": "s"}
    event, leaf = sealing.sealed_event(None, **draft, details=details)  # type: ignore[arg-type]
    stored = {**unstructure(event), "details": json.loads(json.dumps(event.details))}
    assert_verifies_as_stored(stored, leaf)


def test_an_event_presealed_refuses_details_without_their_secret_or_with_one() -> None:
    from evidence_catalog import custody, sealing

    draft = {"at": START, "actor": model.Agent(name="a"), "action": "note.added", "subject": "s", "details": {}}
    with pytest.raises(custody.CommitmentError):
        sealing.sealed_salted(None, draft)
    with pytest.raises(custody.CommitmentError):
        sealing.with_secret({"salt": "0" * 64})


def outcome(make: Callable[[], T]) -> tuple[T | None, Exception | None]:
    """What *make* returns, or the error it raises."""
    try:
        return make(), None
    except Exception as exc:  # noqa: BLE001 -- any error: compared with the other path's
        return None, exc


def test_verifying_an_event_nested_deeper_than_the_interpreter_follows_names_it_and_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(From a hostile review.)  A stored event nested deeper than the recursion limit lets the
    pure-Python walks follow from where they are called: ``verify`` names it as an event that
    cannot be hashed, and goes on; it does not stop on a ``RecursionError``."""
    import sys

    from evidence_catalog import sealing
    from evidence_catalog.stored_events import checked_hash_and_leaf

    [event] = build_log(1, [{"deep": "x"}])
    nested: object = "x"
    for _ in range(400):
        nested = [nested]
    document = {**unstructure(event), "details": {**event.details, "deep": nested}}
    monkeypatch.setattr(sealing, "_native", None)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)
    try:
        recomputed, leaf = checked_hash_and_leaf(document)
    finally:
        sys.setrecursionlimit(limit)
    assert recomputed.startswith("cannot be hashed") and leaf == bytes(32)


@pytest.mark.parametrize(
    ("details", "checked"),
    [
        ({"media": {"duration_s": 12.5, "frame_rate": 29.97}, "name\U0001d400": "x"}, False),  # JSON's own types
        ({"metadata": {"gps": [50.45, 30.52]}}, False),
        ({"kind": model.AgentKind.PERSON, "tags": ("a", "b")}, False),  # a text of a subclass, a tuple
        ({"n": enum.IntEnum("Level", "LOW HIGH").HIGH}, True),  # made JSON by the converter
        ({"metadata": {"w": [Shifted.A]}}, True),
    ],
)
def test_only_details_the_converter_made_json_are_checked_as_stored(
    commitments_walk: str, details: dict[str, object], checked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check against the details' JSON as stored (a JSON round trip and the reference
    hash: some 100 µs) runs for events holding values JSON's own types do not carry, never for
    the numbers with fractions every video's or located photo's event holds."""
    from evidence_catalog import custody, sealing

    calls = []
    check = sealing._check_as_stored
    monkeypatch.setattr(sealing, "_check_as_stored", lambda *args: calls.append(args) or check(*args))
    draft = {"at": START, "actor": model.Agent(name="a"), "action": "note.added", "subject": "s"}
    try:
        sealing.sealed_event(None, **draft, details=details)  # type: ignore[arg-type]
    except custody.CommitmentError:
        assert checked
    assert bool(calls) is checked
