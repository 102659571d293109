"""Sealing a custody event as it is appended: its hash and Merkle leaf, the very bytes the
reference functions of :mod:`evidence_catalog.custody` make (``document_hash`` and
``event_leaf`` of ``unstructure(event)``), made faster.

Appending an event is the step every add, ingest, import and capture takes once per item, so its
cost is the log's floor: here an event's salted committed form is walked once over its details
as they were handed over (by the C module, :mod:`evidence_catalog._commitments`, where it is
built; in Python otherwise), and its canonical JSON is written as it is walked, without the form
being made, where that form is plain JSON.  An ingest's worker makes the part of the form that
does not depend on the events before it (:func:`preseal`); the ingest links it at its turn
(:func:`sealed_salted`).  Anything the fast paths do not write byte for byte as the reference
does goes to the reference functions, which also raise their errors: ``tests/test_custody.py``
holds the two equal on hostile drafts, with the C walk and without it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import attrs

from evidence_catalog import custody
from evidence_catalog.custody import (
    _SECRET,
    DIGEST_PREFIX,
    SALT,
    VALUE_SALT_HEX,
    WHOLE_MEMBERS,
    ChainHead,
    CommitmentError,
    _check_names,
    _escape,
    _keyed_states,
    _salted_draft,
    document_hash,
    event_leaf,
    value_digest,
    value_salt,
)
from evidence_catalog.merkle import leaf_hash
from evidence_catalog.model import GENESIS_HASH, Agent, CustodyEvent
from evidence_catalog.native import commitments
from evidence_catalog.serialize import (
    _SAFE_INTEGER,
    _UTF16_ORDER_DIFFERS,
    _agent_document,
    _plain,
    canonical_json,
    plain_json,
    unstructure,
)


def sealed_event(
    previous: CustodyEvent | ChainHead | None,
    *,
    at: dt.datetime,
    actor: Agent,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> tuple[CustodyEvent, bytes]:
    """:func:`make_event`, and the event's Merkle leaf (:func:`event_leaf`): what appending an
    event needs.  The committed form is made once for both, and faster than
    :func:`committed_form` makes it (see :func:`_seal`); the hash and the leaf are the very
    bytes :func:`document_hash` and :func:`event_leaf` give of ``unstructure(event)``
    (``tests/test_custody.py`` holds them equal)."""
    draft = _salted_draft(previous, at=at, actor=actor, action=action, subject=subject, details=details)
    event_hash, leaf = _seal(draft)
    return attrs.evolve(draft, hash=event_hash), leaf


def _seal(draft: CustodyEvent) -> tuple[str, bytes]:
    """The hash and the Merkle leaf of a salted event: :func:`document_hash` of
    ``unstructure(draft)``, then :func:`event_leaf` of it with that hash, computed together.

    The committed form is made in one walk over the event's details as they were handed over
    (what the converter would make of them made on the way), that also finds whether it is JSON
    that ``json`` writes as RFC 8785 does (so :func:`~evidence_catalog.serialize.canonical_json`
    need not walk it again); each value's salt is HMAC-SHA256 from two SHA-256 states keyed once
    per event, each digest's JSON is made as ``json.dumps`` makes a string's.  Anything unusual
    (a lone surrogate, a key that is not text, a value the converter passes through) goes to the
    reference functions, which also raise their errors."""
    try:
        written = _committed_json(draft)
        if written is None:
            form, plain = _committed_fast(draft)
            data = _canonical(form, plain)
        else:
            data, plain = written[0], True
        event_hash = hashlib.sha256(data).hexdigest()
        # The leaf's JSON is the same with "hash" added: in key order it comes right before
        # "prev_hash", whose committed value is a salted digest.  Only "seq" (a number) and
        # "subject" (a JSON string, where every quote is escaped) follow that, so the last
        # ',"prev_hash":"sd:' is the top-level member's.
        cut = data.rfind(b',"prev_hash":"' + DIGEST_PREFIX.encode("ascii")) + 1
        if plain and cut > 0:
            leaf = leaf_hash(data[:cut] + b'"hash":"' + event_hash.encode("ascii") + b'",' + data[cut:])
        else:
            if written is not None:  # (never met: a plain form's prev_hash is a salted digest)
                form, plain = _committed_fast(draft)
            form["hash"] = event_hash
            leaf = leaf_hash(_canonical(form, plain))
    except Exception:  # noqa: BLE001 -- the reference functions say what is wrong, in their own words
        document = unstructure(draft)
        event_hash = document_hash(document)
        leaf = event_leaf({**document, "hash": event_hash})
        _check_as_stored(draft, event_hash, leaf)
        return event_hash, leaf
    if plain is None:  # it holds values the converter made: are they what JSON stores?
        _check_as_stored(draft, event_hash, leaf)
    return event_hash, leaf


def _check_as_stored(draft: CustodyEvent, event_hash: str, leaf: bytes) -> None:
    """:class:`~evidence_catalog.custody.CommitmentError` unless the event *draft*, hashed to
    *event_hash* and *leaf*, still has them as the database will hold it: its details as their
    JSON text reads back (what ``json.dumps`` writes of them, which is what the database stores).

    For an event that is not plain JSON (a float, a value the converter passes through, a name
    whose order differs in UTF-16), which the fast paths leave to slower ones: the value JSON
    writes of a number of a subclass (its ``float.__repr__``), of a tuple of a subclass (an
    array), of an enum whose value is not what it is, need not be what its hash was made from, and
    an event that verified as changed the moment it was read back is a false "changed".  Details
    JSON cannot write at all are left to the database, which refuses them (nothing is stored)."""
    try:
        details = json.loads(json.dumps(draft.details))
    except RecursionError:
        raise CommitmentError("the event's details are nested deeper than JSON is written") from None
    except (TypeError, ValueError):
        return
    document = {**unstructure(draft), "details": details, "hash": event_hash}
    try:
        stored = custody.hash_and_leaf(document)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CommitmentError(f"the event would not verify as the database holds it ({exc})") from None
    if stored != (event_hash, leaf):
        raise CommitmentError(
            "the event's details hold a value JSON stores otherwise than its hash was made from "
            "(a number, a tuple or an enum of a subclass of its own): the event would not verify as stored"
        )


_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _canonical(form: dict[str, Any], plain: bool | None) -> bytes:
    """:func:`~evidence_catalog.serialize.canonical_json` of *form*, told whether it is plain."""
    if plain:
        try:
            return plain_json(form).encode("utf-8")
        except UnicodeEncodeError:
            pass
    return canonical_json(form)


#: An event's canonical committed form made before it is linked into the log: the bytes before
#: its ``prev_hash`` member, and those from its ``subject`` member on.  ``prev_hash`` and
#: ``seq`` are all of an event that depends on the events before it (see :func:`preseal`).
Presealed = tuple[bytes, bytes]


def with_secret(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """*details* with a new secret (:data:`SALT`), as linking an event into the log gives them:
    for an event whose committed form is made before it is linked (:func:`preseal`)."""
    if details is not None and SALT in details:
        raise CommitmentError(f"an event's details cannot hold {SALT!r}: it is the event's own secret")
    return {**dict(details or {}), SALT: custody.new_secret()}


def preseal(
    *, at: dt.datetime, actor: Agent, action: str, subject: str, details: Mapping[str, Any]
) -> Presealed | None:
    """What sealing an event whose *details* hold their secret (:func:`with_secret`) needs
    before it is linked: its committed form's canonical bytes but for ``prev_hash`` and
    ``seq``, made with placeholders that are then cut out (the work of a salted digest for
    every value, which an ingest's worker process does while the ingest reads on), or
    ``None`` where :func:`sealed_salted` should make it whole (anything :func:`_seal` leaves to
    the reference functions, anything unusual)."""
    try:
        draft = CustodyEvent(
            seq=1,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            prev_hash=GENESIS_HASH,
            hash=GENESIS_HASH,
            details=dict(details),
        )
        written = _committed_json(draft)
        if written is None:
            form, plain = _committed_fast(draft)
            if not plain:
                return None
            data, prev_hash = plain_json(form).encode("utf-8"), plain_json(form["prev_hash"]).encode("utf-8")
        else:
            data, prev_hash = written
    except Exception:  # noqa: BLE001 -- made whole at its turn, where the errors are raised
        return None
    # Members in key order: action, actor, at, details, prev_hash, seq, subject.  The committed
    # prev_hash is a digest under this event's own salt, found nowhere else in the form.
    middle = b',"prev_hash":' + prev_hash + b',"seq":1,"subject":'
    cut = data.rfind(middle)
    if cut <= 0:
        return None
    return data[: cut + 1], data[cut + len(middle) - len(b'"subject":') :]


def sealed_salted(
    previous: CustodyEvent | ChainHead | None, draft: Mapping[str, Any], presealed: Presealed | None = None
) -> tuple[CustodyEvent, bytes]:
    """:func:`sealed_event` of *draft* (``at``, ``actor``, ``action``, ``subject`` and ``details``
    holding their secret already, :func:`with_secret`), from its :func:`preseal` where given:
    the very hash and leaf :func:`_seal` makes of it (``tests/test_custody.py`` holds them
    equal)."""
    details = draft["details"]
    if not isinstance(details, Mapping) or SALT not in details:
        raise CommitmentError("an event sealed so must hold its secret already")
    event = CustodyEvent(
        seq=1 if previous is None else previous.seq + 1,
        at=draft["at"],
        actor=draft["actor"],
        action=draft["action"],
        subject=draft["subject"],
        prev_hash=GENESIS_HASH if previous is None else previous.hash,
        hash=GENESIS_HASH,
        details=dict(details),
    )
    secret = details[SALT]
    if presealed is None or event.seq > _SAFE_SEQ or not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        event_hash, leaf = _seal(event)
        return attrs.evolve(event, hash=event_hash), leaf
    before, after = presealed
    committed = value_digest(value_salt(secret, "/prev_hash"), event.prev_hash).encode("ascii")
    middle = b'"prev_hash":"' + committed + b'","seq":%d,' % event.seq
    event_hash = hashlib.sha256(before + middle + after).hexdigest()
    leaf = leaf_hash(before + b'"hash":"' + event_hash.encode("ascii") + b'",' + middle + after)
    return attrs.evolve(event, hash=event_hash), leaf


#: The largest ``seq`` that ``json`` writes as RFC 8785 does (past it, :func:`_seal` decides).
_SAFE_SEQ = 2**53 - 1


def _committed_fast(draft: CustodyEvent) -> tuple[dict[str, Any], bool | None]:
    """:func:`committed_form` of ``unstructure(draft)`` (a salted event), and whether it is
    plain JSON (see :func:`_seal`): ``True``, ``False``, or ``None`` when it is not and holds
    values the converter made (or a ``metadata`` value of other types than JSON's own), whose
    JSON as stored :func:`_seal` checks; :class:`CommitmentError` for details it leaves to the
    reference."""
    secret = draft.details[SALT]
    if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
        raise CommitmentError("the event's salt is not 64 lower-case hex digits")
    if _native is not None:
        return _committed_native(_native, draft, secret)
    inner_state, outer_state = _keyed_states(bytes.fromhex(secret))  # copied for each value
    sha256 = hashlib.sha256
    plain: bool | None = True

    def salt_of(pointer: str) -> str:
        inner = inner_state.copy()
        inner.update(pointer.encode("utf-8"))
        outer = outer_state.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:VALUE_SALT_HEX]

    def walk(node: Any, pointer: str, top: bool = False) -> Any:
        """The committed form of ``unstructure(node)`` at *pointer*."""
        nonlocal plain
        kind = type(node)
        if kind is dict:
            out = {}
            for name, value in node.items():
                if type(name) is not str:
                    raise CommitmentError("left to the reference functions")  # caught by _seal
                inner = pointer + "/" + (_escape(name) if "~" in name or "/" in name else name)
                if not name.isascii() and _UTF16_ORDER_DIFFERS.search(name):
                    not_plain()
                if top and name == SALT:
                    continue
                if name in WHOLE_MEMBERS:
                    out[name] = _whole_digest(salt_of(inner), value, inner, unusual)
                    continue
                kind = type(value)
                if kind is str:  # the salt and digest of most values, without a call
                    salt = inner_state.copy()
                    salt.update(inner.encode("utf-8"))
                    mac = outer_state.copy()
                    mac.update(salt.digest())
                    data = '["' + mac.hexdigest()[:VALUE_SALT_HEX] + '",' + _encode_text(value) + "]"
                    out[name] = DIGEST_PREFIX + sha256(data.encode("utf-8")).hexdigest()
                elif value is None or kind is bool:
                    out[name] = value
                else:
                    out[name] = walk(value, inner)
            return out
        if kind is list or kind is tuple:
            items = []
            for index, value in enumerate(node):
                inner = f"{pointer}/{index}"
                if type(value) is str:  # tags, mentions, links...: inline, as in objects
                    salt = inner_state.copy()
                    salt.update(inner.encode("utf-8"))
                    mac = outer_state.copy()
                    mac.update(salt.digest())
                    data = '["' + mac.hexdigest()[:VALUE_SALT_HEX] + '",' + _encode_text(value) + "]"
                    items.append(DIGEST_PREFIX + sha256(data.encode("utf-8")).hexdigest())
                else:
                    items.append(walk(value, inner))
            return items
        return _draft_value(node, pointer, salt_of, walk, not_plain, unusual)

    def not_plain() -> None:
        nonlocal plain
        if plain:
            plain = False

    def unusual() -> None:
        nonlocal plain
        plain = None

    form = _draft_form(draft, walk)
    return form, plain and _plain_members(form)


def _committed_json(draft: CustodyEvent) -> tuple[bytes, bytes] | None:
    """What :func:`_canonical` makes of :func:`_committed_fast`'s form of *draft* where that
    form is plain, written by the C module without making the form, and the JSON of the
    form's ``prev_hash``; ``None`` where the C module is not used or the form is not plain
    (the caller then makes the form).  :class:`CommitmentError` as :func:`_committed_fast`."""
    if _native is None:
        return None
    secret = draft.details[SALT]
    if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
        raise CommitmentError("the event's salt is not 64 lower-case hex digits")
    walk = _NativeWalk(_native, secret, stop=True)
    members = {"seq": draft.seq, "at": unstructure(draft.at), "action": draft.action, "subject": draft.subject}
    if not _plain_members(members):
        return None
    try:
        actor = walk.write(_agent_document(draft.actor), "/actor")
        prev_hash, details = walk.write(draft.prev_hash, "/prev_hash"), walk.write(draft.details, "/details")
    except _NotPlainError:  # the walk stops at the first value that is not plain JSON
        return None
    # The members in the order of their names, as _canonical writes the form's.
    data = b"".join(
        (
            b'{"action":',
            plain_json(members["action"]).encode("utf-8"),
            b',"actor":',
            actor,
            b',"at":',
            plain_json(members["at"]).encode("utf-8"),
            b',"details":',
            details,
            b',"prev_hash":',
            prev_hash,
            b',"seq":',
            plain_json(members["seq"]).encode("utf-8"),
            b',"subject":',
            plain_json(members["subject"]).encode("utf-8"),
            b"}",
        )
    )
    return data, prev_hash


def _whole_digest(salt: str, value: Any, pointer: str, unusual: Callable[[], None]) -> str:
    """The salted digest of a member committed whole (``metadata``) as the walks make it: of
    ``unstructure(value)``.  Where *value* is not plain JSON and holds anything but JSON's own
    types (a number, a tuple or an enum of a subclass, a name that is not exactly text), what
    the converter makes of it need not be what the database stores of it (JSON's text of the
    value as handed over): the event is then *unusual*, and :func:`_seal` checks it as stored
    before it is sealed.  A name that is not exactly text is refused, as the reference refuses
    it (:func:`~evidence_catalog.custody._check_names`): two such names may be written alike."""
    if _plain(value):  # (what value_digest writes of it: canonical_json's own first step)
        try:
            return DIGEST_PREFIX + hashlib.sha256(plain_json([salt, value]).encode("utf-8")).hexdigest()
        except UnicodeEncodeError:  # a lone surrogate: value_digest says so in its own words
            return value_digest(salt, value)
    if not _json_types_only(value):
        _check_names(value, pointer)  # (the walk again, to name where a name is not text)
        unusual()
    return value_digest(salt, unstructure(value))


def _json_types_only(value: Any) -> bool:
    """Whether *value* is made of JSON's own types exactly (texts, whole and other numbers,
    booleans, nulls, lists, tuples, dictionaries with text names), which ``json`` writes and the
    converter leaves as they are: one look at each value, no recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            for name, inner in item.items():
                if type(name) is not str:
                    return False
                pending.append(inner)
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif not (kind is str or kind is int or kind is float or kind is bool or item is None):
            return False
    return True


class _NotPlainError(Exception):
    """What stops a walk that writes an event's canonical JSON where the form is not plain."""


def _draft_value(
    node: Any,
    pointer: str,
    salt_of: Callable[[str], str],
    walk: Callable[[Any, str], Any],
    not_plain: Callable[[], None],
    unusual: Callable[[], None],
) -> Any:
    """A draft's value at *pointer* that is neither an object nor an array, as both walks of
    :func:`_committed_fast` commit it: text (of a subclass too: an enum's, as the converter leaves
    it) by its salted digest; null, booleans and integers JSON carries exactly, as they are;
    other numbers as they are, but not plain; anything else as the converter makes it, walked,
    and *unusual* (what JSON stores of it may differ: :func:`_seal` checks it) --
    :class:`CommitmentError` for what the converter leaves as it is."""
    kind = type(node)
    if isinstance(node, str):
        data = '["' + salt_of(pointer) + '",' + _encode_text(node) + "]"
        return DIGEST_PREFIX + hashlib.sha256(data.encode("utf-8")).hexdigest()
    if node is None or kind is bool or (kind is int and -_SAFE_INTEGER <= node <= _SAFE_INTEGER):
        return node
    if kind is int or kind is float:
        not_plain()
        return node
    converted = unstructure(node)  # a time, a model value, a set...: as the converter makes it
    if type(converted) is kind:
        raise CommitmentError("left to the reference functions")  # caught by _seal
    unusual()
    return walk(converted, pointer)


def _draft_form(draft: CustodyEvent, walk: Callable[..., Any]) -> dict[str, Any]:
    """``unstructure(draft)`` without hash and schema, its salted members walked by *walk*: its
    own members as the converter writes them (the property test compares the whole with the
    reference), details walked as given, their secret left out (``top``)."""
    return {
        "seq": draft.seq,
        "at": unstructure(draft.at),
        "actor": walk(_agent_document(draft.actor), "/actor"),
        "action": draft.action,
        "subject": draft.subject,
        "prev_hash": walk(draft.prev_hash, "/prev_hash"),
        "details": walk(draft.details, "/details", top=True),
    }


def _plain_members(form: dict[str, Any]) -> bool:
    """Whether a draft's form's members that are not walked are plain JSON (:func:`_plain`)."""
    return all(_plain(form[member]) for member in ("seq", "at", "action", "subject"))


def _committed_native(native: ModuleType, draft: CustodyEvent, secret: str) -> tuple[dict[str, Any], bool | None]:
    """:func:`_committed_fast` with its walk made by the C module (:data:`_native`): the
    same rules; what JSON is made of is walked there, and every other value handed back here."""
    walk = _NativeWalk(native, secret)
    form = _draft_form(draft, walk.walk)
    return form, walk.plain and _plain_members(form)


class _NativeWalk:
    """The C module's walk of a draft's values under the event's *secret* (64 hex digits), and
    what it hands back to Python: the rules of :func:`_committed_fast`'s walk.  ``plain`` turns
    false once a value or a name is met that ``json`` does not write as RFC 8785 does."""

    def __init__(self, native: ModuleType, secret: str, *, stop: bool = False) -> None:
        self.native, self.key, self.stop = native, bytes.fromhex(secret), stop
        self.plain: bool | None = True

    def key_check(self, name: Any) -> None:
        if type(name) is not str:
            raise CommitmentError("left to the reference functions")  # caught by _seal
        if not name.isascii() and _UTF16_ORDER_DIFFERS.search(name):
            self.not_plain()

    def salt_of(self, pointer: str) -> str:
        salt: str = self.native.salt(self.key, pointer)
        return salt

    def whole(self, value: Any, pointer: str) -> str:
        return _whole_digest(self.salt_of(pointer), value, pointer, self.unusual)

    def other(self, node: Any, pointer: str) -> Any:
        return _draft_value(node, pointer, self.salt_of, self.walk, self.not_plain, self.unusual)

    def not_plain(self) -> None:
        if self.plain:
            self.plain = False
        if self.stop:  # writing: what is written is of no use (_committed_json)
            raise _NotPlainError

    def unusual(self) -> None:
        self.plain = None
        if self.stop:
            raise _NotPlainError

    def walk(self, node: Any, pointer: str, top: bool = False) -> Any:
        """The committed form of *node* at *pointer* (the secret, at ``/details``, left out by
        the C walk itself: *top* is for the Python walk's signature)."""
        return self.native.committed(
            node, pointer, self.key, _encode_text, self.whole, self.other, self.key_check, WHOLE_MEMBERS, True
        )

    def write(self, node: Any, pointer: str) -> bytes:
        """The canonical JSON of :meth:`walk`'s form of *node*, written without making it."""
        callbacks = (self.whole, self.other, self.key_check, WHOLE_MEMBERS, True, plain_json)
        made: bytes = self.native.committed_json(node, pointer, self.key, _encode_text, *callbacks)
        return made


#: The C module that makes the commitments' walk, or ``None`` (:func:`evidence_catalog.native.commitments`:
#: not built, built from another source, or ``EVIDENCE_CATALOG_PURE_PYTHON`` set); the tests set
#: it to ``None`` to hold the two walks equal.
_native: ModuleType | None = commitments()
