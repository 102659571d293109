"""The C module of the custody log's salted commitments (``evidence_catalog/_commitments.c``)
makes what the pure-Python walks make, value for value: for an event as it is appended (its
draft, through ``sealing._committed_fast``) and as it was stored (``stored_events._stored_fast``),
it gives the same committed form where they give one, and refuses where they refuse -- so that
the reference is called for the same events -- and writes the canonical JSON of that form, as
it walks, byte for byte as the form is written.  (The fast paths as a whole are held to the
reference functions by ``test_custody`` and ``test_stored_hash``, with the C module in use
where it is built.)"""

from __future__ import annotations

import datetime as dt
import enum
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings

from evidence_catalog import custody, model, native, sealing, stored_events
from evidence_catalog.custody import _json_text
from evidence_catalog.serialize import plain_json

from .test_custody import EVENT_PARTS, START
from .test_stored_hash import an_event, hostile_events

NATIVE = sealing._native


def test_the_c_module_is_built_where_it_is_expected() -> None:
    """CI builds it (``.ci/run`` installs a compiler and OpenSSL's headers and sets
    ``EVIDENCE_CATALOG_EXPECT_NATIVE``): there a missing module is a failure, not a skip that
    would leave every comparison below unrun."""
    if os.environ.get("EVIDENCE_CATALOG_EXPECT_NATIVE"):
        assert NATIVE is not None, "evidence_catalog._commitments was not built"
    elif NATIVE is None:
        pytest.skip("the C module is not built here")


needs_native = pytest.mark.skipif(NATIVE is None, reason="the C module is not built here")


def both(make: Callable[[], Any]) -> tuple[Any, Any]:
    """*make*'s outcome with the C module and without it: (value, or the type of what it raised)."""
    outcomes = []
    for module in (NATIVE, None):
        saved, sealing._native = sealing._native, module
        try:
            outcomes.append(make())
        except Exception as exc:  # noqa: BLE001 -- compared with the other walk's
            outcomes.append(("raised", type(exc)))
        finally:
            sealing._native = saved
    return outcomes[0], outcomes[1]


def raised(outcome: Any) -> bool:
    return isinstance(outcome, tuple) and len(outcome) == 2 and outcome[0] == "raised"


class Colour(enum.Enum):
    RED = "red"


class Word(enum.StrEnum):
    HARBOUR = "harbour"


#: Drafts' details (with subject, actor's name, seq and secret) that every comparison of a
#: draft's two walks is given, besides hypothesis's: enums, times, floats, huge integers, whole
#: members, names that sort apart in UTF-16, lone surrogates, names that look like the salt.
DRAFT_EXAMPLES: list[tuple[dict[Any, Any], str, str, int, bytes]] = [
    ({"tags": ("a", "b"), "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, "s", "analyst", 1, bytes(32)),
    ({"word": Word.HARBOUR, "colour": Colour.RED, "n": 2**60, "x": 0.5}, "s", "analyst", 1, bytes(32)),
    ({"metadata": {"gps": [1.5, 2]}, "a/b~c": {"metadata": None}}, "s", "analyst", 1, bytes(32)),
    ({"metadata": {"b": "x", "a": ["y", 2]}, "m": {"metadata": "z"}}, "s", "analyst", 1, bytes(32)),
    ({"\ue000": "x", "é": ["\U0001d400"]}, "s", "Наблюдатель", 1, bytes(32)),
    ({"é": {"z": 1, "\x7f": 2, '"q\\': 3, "\n": 4, "": 5, "a": []}}, 'quote " back \\', "Наблюдатель", 1, bytes(32)),
    ({"bad": "\ud800"}, "s", "analyst", 1, bytes(32)),
    ({1: "one"}, "s", "analyst", 1, bytes(32)),
    ({"\ud800": None}, "s", "analyst", 1, bytes(32)),
    ({"n": 2**63, "m": [2**64, -(2**70)], "k": -(2**53 - 1), "j": 2**53 - 1}, "s", "analyst", 1, bytes(32)),
    ({"salty": "x", "salt\x00": "y", "x": {"salt": "z"}}, "s", "analyst", 1, bytes(32)),
    ({"agent": model.Agent(name="a/b ~c"), "at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]}, "s", "a", 1, bytes(32)),
    ({}, "\ud800", "analyst", 1, bytes(32)),
]


def a_draft(details: dict[Any, Any], subject: str, name: str, seq: int, secret: bytes, action: str) -> Any:
    """A draft of the drawn parts, its details given the drawn secret."""
    return model.CustodyEvent(
        seq=seq + 1,
        at=START,
        actor=model.Agent(name=name),
        action=action,
        subject=subject,
        prev_hash="ab" * 32,
        hash=model.GENESIS_HASH,
        details={**details, custody.SALT: secret.hex()},
    )


def with_draft_examples(test: Callable[..., None]) -> Callable[..., None]:
    """*test* given every one of :data:`DRAFT_EXAMPLES`."""
    for case in reversed(DRAFT_EXAMPLES):
        test = example(*case)(test)
    return test


@needs_native
@settings(max_examples=300)
@given(*EVENT_PARTS)
@with_draft_examples
def test_a_drafts_committed_form_is_the_same_from_c(
    details: dict[Any, Any], subject: str, name: str, seq: int, secret: bytes
) -> None:
    draft = a_draft(details, subject, name, seq, secret, "note.added")
    native_form, python_form = both(lambda: sealing._committed_fast(draft))
    if raised(native_form) != raised(python_form):
        # One walk leaves to the reference what the other makes a form of that the reference
        # then refuses (a key with a lone surrogate: the C walk cannot write its pointer, the
        # Python walk finds out when the form is written): the event is sealed alike.
        sealed_by_c, sealed_by_python = both(lambda: sealing._seal(draft))
        assert sealed_by_c == sealed_by_python, (native_form, python_form)
        return
    if not raised(python_form):
        assert native_form == python_form  # the form, and whether json writes it as RFC 8785 does


def outcome(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 -- compared with the other way's
        return ("raised", type(exc))


@needs_native
@settings(max_examples=300)
@given(*EVENT_PARTS)
@with_draft_examples
def test_a_drafts_canonical_json_written_in_c_is_what_its_form_is_written_as(
    details: dict[Any, Any], subject: str, name: str, seq: int, secret: bytes
) -> None:
    """committed_json writes, without making the form, the very bytes _canonical makes of the
    form the C walk makes (and the committed prev_hash's JSON, which the presealing cut finds);
    where the form is not plain it gives None, and where making or writing the form fails it
    fails too (the caller then makes the form, and the reference decides)."""
    draft = a_draft(details, subject, name, seq, secret, custody.Action.NOTE_ADDED)  # (an enum: written as text)

    def from_the_form() -> tuple[bytes, bytes] | None:
        form, plain = sealing._committed_fast(draft)
        if not plain:
            return None
        return sealing._canonical(form, plain), plain_json(form["prev_hash"]).encode("utf-8")

    def in_one_pass() -> tuple[bytes, bytes] | None:
        return sealing._committed_json(draft)

    expected, written = outcome(from_the_form), outcome(in_one_pass)
    if raised(expected):
        assert raised(written) or written is None, written
    else:
        assert written == expected
    if expected is not None and not raised(expected):
        document = custody.unstructure(draft)
        event_hash = custody.document_hash(document)
        assert sealing._seal(draft) == (event_hash, custody.event_leaf({**document, "hash": event_hash}))


@needs_native
@settings(max_examples=300)
@given(hostile_events())
@example(an_event())
@example({**an_event(), "details": {**an_event()["details"], "salt": "AB" * 32}})
@example({**an_event(), "prev_hash": ["x", {"metadata": [1.5]}]})
@example({**an_event(), "actor": {"name": "a", "\ue000": "b"}})
@example({**an_event(), "actor": {"name": "a", "é": "b"}})
@example({**an_event(), "actor": ("a", "b")})
@example({**an_event(), "actor": {"name": 2**53}})
@example({**an_event(), "details": {**an_event()["details"], "n": 2**63, "m": [2**64, -(2**70)]}})
@example({**an_event(), "details": {**an_event()["details"], "salty": "x", "salt\x00": "y", "x": {"salt": "z"}}})
def test_a_stored_events_committed_form_is_the_same_from_c(document: dict[str, Any]) -> None:
    native, python = both(lambda: stored_events._stored_fast(document))
    assert raised(native) == raised(python), (native, python)
    if not raised(python):
        assert native == python


@needs_native
def test_the_c_module_is_what_makes_a_plain_events_form() -> None:
    """The comparisons above would pass if the C walk refused everything (the reference would
    then be called for every event): it must make a plain event's form, and write its
    canonical JSON, itself."""
    assert NATIVE is not None
    document = an_event()
    calls: list[tuple[str, str]] = []
    real, real_json = NATIVE.committed, NATIVE.committed_json

    class Spy:
        salt = NATIVE.salt

        @staticmethod
        def committed(*args: Any) -> Any:
            calls.append(("form", args[1]))
            return real(*args)

        @staticmethod
        def committed_json(*args: Any) -> Any:
            calls.append(("json", args[1]))
            return real_json(*args)

    draft = model.CustodyEvent(
        seq=1,
        at=START,
        actor=model.Agent(name="analyst"),
        action="note.added",
        subject="s",
        prev_hash=model.GENESIS_HASH,
        hash=model.GENESIS_HASH,
        details={"title": "Harbour", custody.SALT: "cd" * 32},
    )
    saved, sealing._native = sealing._native, Spy
    try:
        made = stored_events._stored_fast(document)
        drafted = sealing._committed_fast(draft)
        sealed = sealing._seal(draft)
    finally:
        sealing._native = saved
    assert made == custody.hash_and_leaf(document)
    reference = custody.unstructure(draft)
    assert sealed[0] == custody.document_hash(reference)
    walked = ["/actor", "/prev_hash", "/details"]
    assert calls == [("json", p) for p in walked] + [("form", p) for p in walked] + [("json", p) for p in walked]
    assert drafted[0]["details"]["title"].startswith(custody.DIGEST_PREFIX)


@needs_native
def test_a_value_as_the_c_module_commits_it_is_the_documented_salted_digest() -> None:
    """Against the module docs' definition, written out with hmac and hashlib."""
    assert NATIVE is not None
    secret = "0f" * 32
    pointer = "/details/record/title ~0 é"
    salt = custody.value_salt(secret, pointer)
    assert NATIVE.salt(bytes.fromhex(secret), pointer) == salt
    committed = NATIVE.committed(
        'Harbour "pier"\n\u2028é', pointer, bytes.fromhex(secret), _json_text, None, None, None, frozenset(), False
    )
    assert committed == custody.value_digest(salt, 'Harbour "pier"\n\u2028é')


@needs_native
def test_a_drafts_text_of_a_str_subclass_is_committed_in_c_as_its_characters() -> None:
    """An enum of strings, as the converter leaves it in a draft, is committed in C as the
    Python walk commits it (its characters' salted digest), without a call back into Python; a
    stored event (read from JSON) holds no such value, and its walk hands it back to be refused."""
    assert NATIVE is not None
    secret = "0f" * 32
    handed: list[str] = []

    def other(node: Any, pointer: str) -> Any:
        handed.append(pointer)
        raise custody.CommitmentError("left to the reference")

    draft = {"kind": Word.HARBOUR, "kinds": (Word.HARBOUR, "harbour")}
    made = NATIVE.committed(draft, "/details", bytes.fromhex(secret), _json_text, None, other, None, frozenset(), True)
    assert handed == []
    assert made == {
        "kind": custody.value_digest(custody.value_salt(secret, "/details/kind"), "harbour"),
        "kinds": [
            custody.value_digest(custody.value_salt(secret, "/details/kinds/0"), "harbour"),
            custody.value_digest(custody.value_salt(secret, "/details/kinds/1"), "harbour"),
        ],
    }
    with pytest.raises(custody.CommitmentError):
        NATIVE.committed(
            {"kind": Word.HARBOUR}, "/details", bytes.fromhex(secret), _json_text, None, other, None, frozenset(), False
        )
    assert handed == ["/details/kind"]


@needs_native
def test_writing_refuses_a_name_of_a_str_subclass_even_if_let_through() -> None:
    """Sorting the members compares their names only where every name is an exact text (a
    subclass may say two names are equal, and the values would be compared): committed_json
    refuses other names itself, whatever the key check says, and the form is made instead."""
    assert NATIVE is not None

    class Name(str):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    node = {Name("b"): "z", Name("a"): "y"}
    with pytest.raises(TypeError, match="not text"):
        NATIVE.committed_json(
            node, "/details", bytes(32), _json_text, None, None, lambda name: None, frozenset(), True, plain_json
        )


@needs_native
def test_what_python_hands_back_may_be_written_as_nothing() -> None:
    """An empty text from the writer of what Python hands back is written as nothing (no copy
    from a null buffer: the first write may be empty)."""
    assert NATIVE is not None
    written = NATIVE.committed_json(
        1.5, "/x", bytes(32), _json_text, None, lambda value, pointer: value, None, frozenset(), True, lambda v: ""
    )
    assert written == b""


def nested(depth: int) -> Any:
    node: Any = "bottom"
    for _ in range(depth):
        node = {"a": [node]}
    return node


@needs_native
def test_a_deeply_nested_value_is_refused_not_a_crash() -> None:
    assert NATIVE is not None
    with pytest.raises(RecursionError):
        NATIVE.committed(nested(100_000), "/details", bytes(32), _json_text, None, None, None, frozenset(), False)
    document = {**an_event(), "details": {"salt": "ab" * 32, "deep": nested(100_000)}}
    native, python = both(lambda: stored_events.stored_hash_and_leaf(document))
    assert native == python  # what the reference does with it, either way


@needs_native
def test_nesting_deeper_than_its_cap_is_refused_whatever_the_recursion_limit() -> None:
    """The C walk does not grow the C stack with the interpreter's recursion limit: past its own
    cap (2,000 objects and arrays) it refuses, and the reference decides."""
    import sys

    assert NATIVE is not None
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200_000)
    try:
        with pytest.raises(RecursionError, match="nested too deep"):
            NATIVE.committed(nested(50_000), "/details", bytes(32), _json_text, None, None, None, frozenset(), False)
    finally:
        sys.setrecursionlimit(limit)
    NATIVE.committed(nested(400), "/details", bytes(32), _json_text, None, None, None, frozenset(), False)


@needs_native
def test_a_member_name_that_is_not_text_is_refused_even_if_let_through() -> None:
    assert NATIVE is not None
    with pytest.raises(TypeError, match="not text"):
        NATIVE.committed(
            {b"salt": "x"}, "/details", bytes(32), _json_text, None, None, lambda name: None, frozenset(), False
        )


@needs_native
def test_a_module_built_from_another_source_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install whose C file was changed and not built again: its module is left out."""
    assert NATIVE is not None
    assert len(NATIVE.SOURCE_SHA256) == 64  # the build says what it was built from
    native._built.cache_clear()
    monkeypatch.setattr(NATIVE, "SOURCE_SHA256", "0" * 64)
    try:
        assert native.commitments() is None and native.commitments_walk() == "pure Python"
    finally:
        native._built.cache_clear()
    monkeypatch.undo()
    assert native.commitments() is NATIVE


@needs_native
def test_what_python_is_handed_cannot_change_what_the_c_module_walks() -> None:
    """A value handed back to Python (here a time) whose conversion empties the object and the
    array being walked: the walk goes on over what they held when it reached them."""
    assert NATIVE is not None
    array: list[Any] = []
    details: dict[str, Any] = {}

    class Emptying:
        def __iter__(self) -> Iterator[Any]:
            return iter(())

    def other(node: Any, pointer: str) -> Any:
        details.clear()
        array.clear()
        return "handed back"

    array.extend([Emptying(), "a", "b"])
    details.update({"first": Emptying(), "second": "x", "third": array})
    out = NATIVE.committed(details, "/details", bytes(32), _json_text, None, other, None, frozenset(), False)
    assert list(out) == ["first", "second", "third"]  # the object, emptied as its first member was walked
    assert out["first"] == "handed back" and out["second"].startswith("sd:")
    assert out["third"] == []  # (the array was emptied before it was reached)
    array.extend([Emptying(), "a", "b"])
    out = NATIVE.committed(array, "/details/third", bytes(32), _json_text, None, other, None, frozenset(), False)
    assert out[0] == "handed back" and len(out) == 3 and all(o.startswith("sd:") for o in out[1:])


@needs_native
@pytest.mark.parametrize(("secret", "message"), [(b"", "32 bytes"), (bytes(31), "32 bytes"), ("ab" * 32, "32 bytes")])
def test_a_secret_that_is_not_32_bytes_is_refused(secret: Any, message: str) -> None:
    assert NATIVE is not None
    with pytest.raises(ValueError, match=message):
        NATIVE.committed("x", "/x", secret, _json_text, None, None, None, frozenset(), False)
    with pytest.raises(ValueError, match=message):
        NATIVE.salt(secret, "/x")


@needs_native
def test_an_escape_that_does_not_give_text_is_refused() -> None:
    assert NATIVE is not None
    with pytest.raises(TypeError, match="not text"):
        NATIVE.committed("x", "/x", bytes(32), lambda text: b"x", None, None, None, frozenset(), False)


@needs_native
def test_the_pure_python_setting_leaves_the_c_module_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_CATALOG_PURE_PYTHON", "1")
    assert native.commitments() is None and native.commitments_walk() == "pure Python"
    monkeypatch.delenv("EVIDENCE_CATALOG_PURE_PYTHON")
    assert native.commitments() is NATIVE and native.commitments_walk() == "C module"


def _build_hook_module() -> Any:
    """``hatch_build.py`` (the build hook at the checkout's root), importable without hatchling,
    which only the isolated build environment has: its interface class stood in for."""
    import importlib.util
    import sys
    import types

    root = Path(__file__).resolve().parent.parent
    if "hatchling.builders.hooks.plugin.interface" not in sys.modules:
        interface = types.ModuleType("hatchling.builders.hooks.plugin.interface")
        interface.BuildHookInterface = object  # type: ignore[attr-defined]
        for name in ("hatchling", "hatchling.builders", "hatchling.builders.hooks", "hatchling.builders.hooks.plugin"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules["hatchling.builders.hooks.plugin.interface"] = interface
    spec = importlib.util.spec_from_file_location("hatch_build_under_test", root / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_native
def test_the_build_hook_compiles_a_module_that_says_what_it_was_built_from(tmp_path: Path) -> None:
    """What ``pip install`` runs: the module it makes is loadable and carries the SHA-256 of the
    source it was compiled from (what ``native.py`` checks); where it cannot compile, it says why
    in one line and makes nothing."""
    import hashlib
    import importlib.machinery
    import importlib.util
    import sysconfig

    hook = _build_hook_module()
    source = Path(custody.__file__).with_name("_commitments.c")
    target = tmp_path / ("_commitments" + str(sysconfig.get_config_var("EXT_SUFFIX")))
    assert hook.compile_module(source, target) is None
    loader = importlib.machinery.ExtensionFileLoader("evidence_catalog._commitments", str(target))
    spec = importlib.util.spec_from_file_location("evidence_catalog._commitments", target, loader=loader)
    assert spec is not None
    built = importlib.util.module_from_spec(spec)
    loader.exec_module(built)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == built.SOURCE_SHA256
    assert built.salt(bytes(32), "/x") == custody.value_salt("00" * 32, "/x")

    broken = tmp_path / "broken.c"
    broken.write_text('#error "not this time"\n', encoding="utf-8")
    said = hook.compile_module(broken, tmp_path / "none.so")
    assert said is not None and "not this time" in said and "\n" not in said
    assert not (tmp_path / "none.so").exists() and not (tmp_path / "none.so.part").exists()
