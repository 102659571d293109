"""The custody log's pure part: how events are hashed and linked, and how a log is checked.

Each event's ``hash`` is SHA-256 over the RFC 8785 canonical JSON of the event's *committed
form*; each event's ``prev_hash`` is the ``hash`` of the event before it, and
:data:`~evidence_catalog.model.GENESIS_HASH` for the first.  Anyone holding an export can
recompute both with a JSON canonicaliser, SHA-256 and HMAC-SHA256.

Salted commitments (events written since custody-event schema 1.1.0)
    Such an event holds a secret of 256 random bits in ``details.salt`` (64 hex digits).  Its
    committed form is the event without ``hash`` and ``schema``, and in ``prev_hash``, ``actor``
    and ``details`` (``details.salt`` left out) every text value, and the whole value of every
    member named ``metadata``, replaced by its salted digest ``"sd:" + hex(SHA-256(canonical
    JSON of [salt, value]))``, where the value's own salt is the first 32 hex digits (128 bits)
    of HMAC-SHA256(secret, the value's JSON Pointer, RFC 6901, such as ``/details/record/title``).
    So the hash, the Merkle leaf and every checkpoint commit to values only through salted
    digests: a redacted export gives the salts of the values it shows and only the digests of
    those it withholds (:func:`disclose`), and no guess at a withheld value can be checked
    against anything it holds, since the withheld value's salt never leaves the catalog.

Events written before (no ``details.salt``)
    Their committed form is the event itself without ``hash`` and ``schema``: they keep
    verifying as they always did.  Their hash is a digest of their text without salt, so a
    redacted export withholds such an event whole when it held a withheld value, and every
    unsalted event after it (each commits to the one before through ``prev_hash``), and carries
    no signed checkpoint (a Merkle root over them would let a guess be checked):
    :func:`withheld_whole`.

Events also carry, in ``details``, the full documents of what they added (record, artifact,
acquisition, note, tags), so that the catalog's current state can be *replayed* from the log
alone (:func:`replay`) and compared with what the database says.

Storage of the log (one place that appends) lives in the catalog's database adapter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, ValidationError
from evidence_catalog.findings import (
    BrokenLink,
    EventEdited,
    EventMissing,
    EventOutOfOrder,
    Finding,
)
from evidence_catalog.merkle import leaf_hash
from evidence_catalog.model import GENESIS_HASH, Agent, CustodyEvent, EvidenceRecord
from evidence_catalog.serialize import (
    _SAFE_INTEGER,
    _UTF16_ORDER_DIFFERS,
    _plain,
    canonical_json,
    structure,
    unstructure,
)

#: Members of an event document that are not covered by its hash.
UNHASHED = frozenset({"hash", "schema"})
#: Member of a salted event's ``details`` that holds its secret (64 hex digits, 256 bits).
SALT = "salt"
#: How a salted digest starts, in a committed form.
DIGEST_PREFIX = "sd:"
#: Hex digits of a value's own salt (128 bits).
VALUE_SALT_HEX = 32
#: Members of an event whose values are committed through salted digests (``prev_hash`` too:
#: it is withheld after an event that is withheld whole).
SALTED_MEMBERS = ("prev_hash", "actor", "details")
#: Members committed whole (one digest for the whole value): embedded metadata, which a
#: redaction leaves out whole.
WHOLE_MEMBERS = frozenset({"metadata"})


class CommitmentError(ValidationError, ValueError):
    """An event's salted commitments cannot be made or checked: a secret that is not 64 hex
    digits, details that would hold the secret's member, or a disclosure that is malformed, or
    shows a value without its salt or a withheld value as if it were not withheld.

    It is also a :class:`ValueError`, which is what these checks raised before."""


class Action:
    """Names of custody actions (``noun.verb`` style; later features add their own)."""

    CATALOG_CREATED = "catalog.created"
    ARTIFACT_ADDED = "artifact.added"
    RECORDS_EXPORTED = "records.exported"
    CATALOG_VERIFIED = "catalog.verified"
    CATALOG_UPGRADED = "catalog.upgraded"
    MEDIA_CAPTURED = "media.captured"
    REPORT_INGESTED = "report.ingested"
    DIGEST_INGESTED = "digest.ingested"
    CAPTURE_FAILED = "capture.failed"
    REPORT_LINKED = "report.linked"
    CLAIM_ADDED = "claim.added"
    ASSESSMENT_ADDED = "assessment.added"
    RELATION_ADDED = "relation.added"
    FLAG_ADDED = "flag.added"
    NOTE_ADDED = "note.added"
    TAGS_ADDED = "tags.added"
    CATEGORY_DEFINED = "category.defined"
    RECORD_IMPORTED = "record.imported"
    LOG_KEY_CREATED = "key.created"
    LOG_KEY_CHANGED = "key.changed"
    TIMESTAMP_ADDED = "timestamp.added"
    CATALOG_FSCK = "catalog.fsck"


def new_secret() -> str:
    """A new event secret: 256 random bits as 64 hex digits."""
    return secrets.token_hex(32)


def is_salted(document: Mapping[str, Any]) -> bool:
    """Whether an event document commits to its values through salted digests (it holds a
    secret in ``details.salt``)."""
    details = document.get("details")
    return isinstance(details, dict) and SALT in details


def value_salt(secret: str, pointer: str) -> str:
    """The salt of the value at JSON Pointer *pointer* of an event with this *secret*:
    HMAC-SHA256(secret, pointer), first 32 hex digits.  :class:`CommitmentError` for a secret
    that is not 64 hex digits."""
    if not isinstance(secret, str) or len(secret) != 64:
        raise CommitmentError("the event's salt is not 64 hex digits")
    key = bytes.fromhex(secret)
    return hmac.new(key, pointer.encode("utf-8"), hashlib.sha256).hexdigest()[:VALUE_SALT_HEX]


def value_digest(salt: str, value: Any) -> str:
    """The salted digest of a value: ``"sd:"`` and SHA-256 of the canonical JSON of
    ``[salt, value]``, hex."""
    if isinstance(value, str):
        # What ``json.dumps(value, ensure_ascii=False)`` writes (its own function, without
        # making an encoder per call), which is RFC 8785's text unless it holds a lone
        # surrogate: UTF-8 cannot encode that, and rfc8785 says so in its own words.
        try:
            data = ('["' + salt + '",' + _json_text(value) + "]").encode("utf-8")
        except UnicodeEncodeError:
            data = canonical_json([salt, value])
    else:
        data = canonical_json([salt, value])
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


#: The standard library's JSON string writer (in C): ``json.dumps(text, ensure_ascii=False)``.
_json_text: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def committed_values(document: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every value a salted event commits to through a salted digest: (JSON Pointer, value), in
    document order -- ``prev_hash``, each text value of ``actor`` and ``details`` and each
    ``metadata`` member's whole value (``details.salt`` left out)."""

    def walk(node: Any, pointer: str) -> Iterator[tuple[str, Any]]:
        if isinstance(node, str):
            yield pointer, node
        elif isinstance(node, dict):
            for key, value in node.items():
                inner = f"{pointer}/{_escape(str(key))}"
                if pointer == "/details" and key == SALT:
                    continue
                if key in WHOLE_MEMBERS:
                    yield inner, value
                else:
                    yield from walk(value, inner)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{pointer}/{index}")

    for member in SALTED_MEMBERS:
        if member in document:
            yield from walk(document[member], "/" + member)


def committed_form(document: Mapping[str, Any], digest: Callable[[str, Any], str] | None = None) -> dict[str, Any]:
    """The object an event's hash is taken over (see the module's docs): for an unsalted event,
    the event without ``hash`` and ``schema``; for a salted one, that with each committed value
    replaced by ``digest(pointer, value)`` (by default, its salted digest under the event's
    secret).  ``ValueError``/``TypeError`` for content that cannot be committed."""
    form = {k: v for k, v in document.items() if k not in UNHASHED}
    if digest is None:
        if not is_salted(document):
            return form
        # The hash and the leaf of one event both need its committed form, one after the other
        # (when it is appended, and when it is verified): the last one is kept, by the canonical
        # bytes of what it was made from, so that the same content never costs twice.
        key = canonical_json(form)
        last = _LAST_FORM[0]  # one read: another thread may replace it
        if last[0] == key:
            return dict(json.loads(last[1]))
        made = _salted_form(form, document["details"][SALT])
        _LAST_FORM[0] = (key, json.dumps(made, ensure_ascii=False))
        return made
    return _committed(form, digest)


def _salted_form(form: dict[str, Any], secret: Any) -> dict[str, Any]:
    """The committed form of a salted event (*form*: the event without hash and schema) under
    its *secret*."""
    key = _salt_key(secret)
    # HMAC-SHA256 as RFC 2104 defines it (what :func:`value_salt` computes with ``hmac``): the
    # key, shorter than SHA-256's 64-byte block, padded with zeros and XORed with 0x36 (inner)
    # and 0x5c (outer); each value's salt continues copies of those two states.
    padded = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded)).copy
    sha256, text = hashlib.sha256, _json_text

    def digest(pointer: str, value: Any) -> str:
        mac = inner()
        mac.update(pointer.encode("utf-8"))
        result = outer()
        result.update(mac.digest())
        salt = result.hexdigest()[:VALUE_SALT_HEX]
        if isinstance(value, str):  # value_digest, inlined: this runs for every text of every event
            try:
                return DIGEST_PREFIX + sha256(('["' + salt + '",' + text(value) + "]").encode("utf-8")).hexdigest()
            except UnicodeEncodeError:
                pass
        return value_digest(salt, value)

    return _committed(form, digest)


def hash_and_leaf(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """:func:`document_hash` and :func:`event_leaf` of one event, its committed form made once
    (what a verification of the whole log needs of each event).  Raises ``ValueError`` /
    ``TypeError`` as they do."""
    form = {k: v for k, v in document.items() if k not in UNHASHED}
    if is_salted(document):
        form = _salted_form(form, document["details"][SALT])
    recomputed = hashlib.sha256(canonical_json(form)).hexdigest()
    if "hash" in document:
        form["hash"] = document["hash"]
    return recomputed, leaf_hash(canonical_json(form))


#: The last salted event's committed form: (canonical JSON of the event without hash and schema,
#: JSON of its committed form), replaced whole.
_LAST_FORM: list[tuple[bytes, str]] = [(b"", "")]


def _salt_key(secret: Any) -> bytes:
    """The HMAC-SHA256 key of each value's salt: an event's secret as bytes."""
    if not isinstance(secret, str) or len(secret) != 64:
        raise CommitmentError("the event's salt is not 64 hex digits")
    return bytes.fromhex(secret)


def _committed(form: dict[str, Any], digest: Callable[[str, Any], str]) -> dict[str, Any]:
    """*form* (an event without hash and schema) with each committed value as ``digest(pointer,
    value)``."""

    def walk(node: Any, pointer: str) -> Any:
        if isinstance(node, str):
            return digest(pointer, node)
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if pointer == "/details" and key == SALT:
                    continue
                inner = f"{pointer}/{_escape(str(key))}"
                if key in WHOLE_MEMBERS or isinstance(value, str):
                    out[key] = digest(inner, value)
                elif isinstance(value, dict | list):
                    out[key] = walk(value, inner)
                else:  # what walk gives back as it is (a number, true, false, null)
                    out[key] = value
            return out
        if isinstance(node, list):
            return [walk(value, f"{pointer}/{index}") for index, value in enumerate(node)]
        return node

    for member in SALTED_MEMBERS:
        if member in form:
            form[member] = walk(form[member], "/" + member)
    return form


def document_hash(document: Mapping[str, Any]) -> str:
    """The hash an event document should carry: SHA-256 of the canonical JSON of its committed
    form.  Raises ``ValueError``/``TypeError`` for content JSON cannot represent."""
    return hashlib.sha256(canonical_json(committed_form(document))).hexdigest()


def content_hash(event: CustodyEvent) -> str:
    """Recompute the hash an event should carry, from its content alone."""
    return document_hash(unstructure(event))


def event_leaf(document: Mapping[str, Any]) -> bytes:
    """The event's leaf in the Merkle tree of the log: SHA-256(0x00 || RFC 8785 canonical JSON
    of the event's committed form with its ``hash`` member) -- for an unsalted event, the event
    document without ``schema``.  Raises ``ValueError``/``TypeError`` for content JSON cannot
    represent."""
    form = committed_form(document)
    if "hash" in document:
        form["hash"] = document["hash"]
    return leaf_hash(canonical_json(form))


#: Members of a nested custody event (the history a ``record.imported`` event keeps) that commit
#: to its text: withheld with it.
_NESTED_COMMITMENTS = ("hash", "prev_hash", "details/salt")


def disclose(
    document: Mapping[str, Any], shown: Mapping[str, Any], mark: str, also: Iterable[str] = ()
) -> dict[str, Any]:
    """A salted event as a redacted export shows it: *shown* (the event with withheld texts
    replaced, same members) without the event's secret, and a ``disclosure`` member giving the
    salt of every committed value shown as it is and only the salted digest of every value that
    differs from the event's (``{"salts": {pointer: salt}, "withheld": {pointer: digest}}``).
    The hash, leaf and links stay checkable (:func:`disclosed_form`); no withheld value's salt
    is given, so a guess at it cannot be checked.

    Nested events whose text is withheld (the history a ``record.imported`` event keeps) commit
    to it through their own hashes: every nested event's ``hash``, ``prev_hash`` and salt are then
    withheld too, replaced by *mark*; so are the values at the pointers *also* names (such as
    ``/prev_hash`` after an event withheld whole)."""
    secret = document["details"][SALT]
    original = dict(committed_values(document))
    display = json.loads(json.dumps(shown))
    changed = {pointer for pointer, value in committed_values(display) if original.get(pointer) != value}
    for pointer in also:
        changed.add(pointer)
        _set(display, pointer.split("/")[1:], mark)
    if any(p.startswith("/details/history/") for p in changed):
        for pointer in list(original):
            parts = pointer.split("/")
            if len(parts) >= 5 and parts[2] == "history" and "/".join(parts[4:]) in _NESTED_COMMITMENTS:
                changed.add(pointer)
                _set(display, parts[1:], mark)
    salts: dict[str, str] = {}
    withheld: dict[str, str] = {}
    for pointer, value in original.items():
        salt = value_salt(secret, pointer)
        if pointer in changed:
            withheld[pointer] = value_digest(salt, value)
        else:
            salts[pointer] = salt
    del display["details"][SALT]
    display["disclosure"] = {"salts": salts, "withheld": withheld}
    return dict(display)


def _set(node: Any, steps: list[str], value: Any) -> None:
    for step in steps[:-1]:
        node = node[int(step)] if isinstance(node, list) else node[step.replace("~1", "/").replace("~0", "~")]
    last = steps[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last.replace("~1", "/").replace("~0", "~")] = value


def disclosed_form(line: Mapping[str, Any], mark: str) -> tuple[dict[str, Any], list[str]]:
    """The committed form of an event as a redacted export shows it (:func:`disclose`), and the
    pointers of the values it withholds.  :class:`CommitmentError` when a value shown has no
    salt, a value shown at a withheld pointer does not hold *mark* (the text there is not proven,
    and must say so), or the disclosure is malformed."""
    disclosure = line.get("disclosure")
    if not isinstance(disclosure, dict):
        raise CommitmentError("the event has no disclosure member")
    salts, withheld = disclosure.get("salts"), disclosure.get("withheld")
    if not isinstance(salts, dict) or not isinstance(withheld, dict):
        raise CommitmentError("the disclosure member needs 'salts' and 'withheld' objects")

    def digest(pointer: str, value: Any) -> str:
        if pointer in withheld:  # what is shown there is not proven: it must say it is withheld
            given = withheld[pointer]
            if not isinstance(given, str) or not given.startswith(DIGEST_PREFIX):
                raise CommitmentError(f"the digest of {pointer} is not a salted digest")
            if not _says_withheld(value, mark):
                raise CommitmentError(f"{pointer} is withheld but shows a value that does not say so")
            return given
        salt = salts.get(pointer)
        if not isinstance(salt, str):
            raise CommitmentError(f"the value at {pointer} is shown without its salt")
        return value_digest(salt, value)

    body = {k: v for k, v in line.items() if k != "disclosure"}
    return committed_form(body, digest), sorted(withheld)


def _says_withheld(value: Any, mark: str) -> bool:
    """Whether a value shown where one is withheld says so: nothing (left out), a text holding
    *mark*, or embedded metadata with a text holding it."""
    if value is None:
        return True
    if isinstance(value, str):
        return mark in value
    return isinstance(value, (dict, list)) and mark in json.dumps(value, ensure_ascii=False)


def withheld_whole(document: Mapping[str, Any], schema: str) -> dict[str, Any]:
    """An unsalted event as a redacted export shows it when it held a withheld value, or follows
    one: only its sequence number.  Its hash is a digest of its text without salt, and all else
    in it (its time is its acquisition's end, its actor the operator...) can be rebuilt from the
    records, so its hash, its leaf and any Merkle root over it would let a guess be checked."""
    return {"schema": schema, "seq": document["seq"], "withheld": "whole"}


@attrs.frozen
class ChainHead:
    """The last event of a log, as much of it as the next event needs."""

    seq: int
    hash: str


def make_event(
    previous: CustodyEvent | ChainHead | None,
    *,
    at: dt.datetime,
    actor: Agent,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> CustodyEvent:
    """Build the event that follows *previous* (``None`` for the first), with its hash set."""
    return linked_event(previous, at=at, actor=actor, action=action, subject=subject, details=details)[0]


def linked_event(
    previous: CustodyEvent | ChainHead | None,
    *,
    at: dt.datetime,
    actor: Agent,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> tuple[CustodyEvent, dict[str, Any]]:
    """:func:`make_event`, with the event's document (``unstructure(event)``, made once for
    its hash and kept for its Merkle leaf).  The event is salted: its ``details`` get a new
    secret (:data:`SALT`)."""
    if details is not None and SALT in details:
        raise CommitmentError(f"an event's details cannot hold {SALT!r}: it is the event's own secret")
    draft = CustodyEvent(
        seq=1 if previous is None else previous.seq + 1,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        prev_hash=GENESIS_HASH if previous is None else previous.hash,
        hash=GENESIS_HASH,
        details={**dict(details or {}), SALT: new_secret()},
    )
    document = unstructure(draft)
    document["hash"] = document_hash(document)
    return attrs.evolve(draft, hash=document["hash"]), document


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
    if details is not None and SALT in details:
        raise CommitmentError(f"an event's details cannot hold {SALT!r}: it is the event's own secret")
    draft = CustodyEvent(
        seq=1 if previous is None else previous.seq + 1,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        prev_hash=GENESIS_HASH if previous is None else previous.hash,
        hash=GENESIS_HASH,
        details={**dict(details or {}), SALT: new_secret()},
    )
    event_hash, leaf = _seal(draft)
    return attrs.evolve(draft, hash=event_hash), leaf


class _UnusualDetailsError(Exception):
    """Details :func:`_committed_fast` leaves to the reference functions."""


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
        form, plain = _committed_fast(draft)
        data = _canonical(form, plain)
        event_hash = hashlib.sha256(data).hexdigest()
        # The leaf's JSON is the same with "hash" added: in key order it comes right before
        # "prev_hash", whose committed value is a salted digest.  Only "seq" (a number) and
        # "subject" (a JSON string, where every quote is escaped) follow that, so the last
        # ',"prev_hash":"sd:' is the top-level member's.
        cut = data.rfind(b',"prev_hash":"' + DIGEST_PREFIX.encode("ascii")) + 1
        if plain and cut > 0:
            leaf = leaf_hash(data[:cut] + b'"hash":"' + event_hash.encode("ascii") + b'",' + data[cut:])
        else:
            form["hash"] = event_hash
            leaf = leaf_hash(_canonical(form, plain))
    except Exception:  # noqa: BLE001 -- the reference functions say what is wrong, in their own words
        document = unstructure(draft)
        event_hash = document_hash(document)
        return event_hash, event_leaf({**document, "hash": event_hash})
    return event_hash, leaf


_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _canonical(form: dict[str, Any], plain: bool) -> bytes:
    """:func:`~evidence_catalog.serialize.canonical_json` of *form*, told whether it is plain."""
    if plain:
        try:
            return json.dumps(form, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        except UnicodeEncodeError:
            pass
    return canonical_json(form)


def _committed_fast(draft: CustodyEvent) -> tuple[dict[str, Any], bool]:
    """:func:`committed_form` of ``unstructure(draft)`` (a salted event), and whether it is
    plain JSON (see :func:`_seal`); :class:`_UnusualDetailsError` for details it leaves to the reference."""
    secret = draft.details[SALT]
    if not isinstance(secret, str) or len(secret) != 64:
        raise CommitmentError("the event's salt is not 64 hex digits")
    # HMAC-SHA256 (RFC 2104) as two SHA-256 states, keyed once and copied for each value: the
    # key (32 bytes) is shorter than SHA-256's block, so it is padded with zeros.
    key = bytes.fromhex(secret).ljust(64, b"\0")
    inner_state = hashlib.sha256(key.translate(_INNER_PAD))
    outer_state = hashlib.sha256(key.translate(_OUTER_PAD))
    sha256 = hashlib.sha256
    plain = True

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
                    raise _UnusualDetailsError
                inner = pointer + "/" + (_escape(name) if "~" in name or "/" in name else name)
                if not name.isascii() and _UTF16_ORDER_DIFFERS.search(name):
                    plain = False
                if top and name == SALT:
                    continue
                if name in WHOLE_MEMBERS:
                    out[name] = value_digest(salt_of(inner), unstructure(value))
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
        if isinstance(node, str):  # and text of a subclass (an enum's), as the converter leaves it
            data = '["' + salt_of(pointer) + '",' + _encode_text(node) + "]"
            return DIGEST_PREFIX + sha256(data.encode("utf-8")).hexdigest()
        if node is None or kind is bool or (kind is int and -_SAFE_INTEGER <= node <= _SAFE_INTEGER):
            return node
        if kind is int or kind is float:
            plain = False
            return node
        converted = unstructure(node)  # a time, a model value, a set...: as the converter makes it
        if type(converted) is kind:
            raise _UnusualDetailsError
        return walk(converted, pointer)

    # ``unstructure(draft)`` without hash and schema: its own members as the converter writes
    # them (the property test compares the whole with the reference), details walked as given.
    form: dict[str, Any] = {
        "seq": draft.seq,
        "at": unstructure(draft.at),
        "actor": walk(unstructure(draft.actor), "/actor"),
        "action": draft.action,
        "subject": draft.subject,
        "prev_hash": walk(draft.prev_hash, "/prev_hash"),
        "details": walk(draft.details, "/details", top=True),
    }
    plain = plain and all(_plain(form[member]) for member in ("seq", "at", "action", "subject"))
    return form, plain


_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


def verify_chain(documents: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Check a log given as event documents in stored order; return every finding.

    Works on plain JSON objects (as exported, or as stored), so that a damaged event that no
    longer parses as a :class:`CustodyEvent` is still checked and named.  Detects an edited
    event (content does not match its hash), a missing event (sequence gap), an event out of
    order, and a broken link (``prev_hash`` is not the previous event's hash).  A log cut short
    at the end is only detectable against a copy of its latest hash held elsewhere.
    """
    chain = ChainCheck()
    for document in documents:
        chain.add(document)
    return chain.findings


class ChainCheck:
    """:func:`verify_chain`, one event at a time: :meth:`add` each event document in stored
    order, then read :attr:`findings` (a verification reading a log of millions of events
    holds none of them)."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self._expected_seq = 1
        self._previous_hash = GENESIS_HASH

    def add(self, document: Mapping[str, Any], recomputed: str | None = None) -> None:
        """Check the next event; *recomputed* is its :func:`document_hash` when the caller has
        made it already (else it is made here), or why it cannot be made."""
        seq, stored_hash, prev_hash = document.get("seq"), document.get("hash"), document.get("prev_hash")
        findings, expected_seq = self.findings, self._expected_seq
        if not isinstance(seq, int) or isinstance(seq, bool):
            findings.append(EventEdited(seq=expected_seq, expected=str(stored_hash), found=f"bad sequence {seq!r}"))
            seq = expected_seq
        if recomputed is None:
            try:
                recomputed = document_hash(document)
            except (TypeError, ValueError) as exc:
                recomputed = f"cannot be hashed ({exc})"
        if recomputed != stored_hash:
            findings.append(EventEdited(seq=seq, expected=str(stored_hash), found=recomputed))
        if seq > expected_seq:
            findings.append(EventMissing(seq=expected_seq, found=seq))
        elif seq < expected_seq:
            findings.append(EventOutOfOrder(seq=seq, expected=expected_seq))
        elif prev_hash != self._previous_hash:
            findings.append(BrokenLink(seq=seq, expected=self._previous_hash, found=str(prev_hash)))
        self._expected_seq = seq + 1
        self._previous_hash = str(stored_hash)


# -- replay ------------------------------------------------------------------------------------
#
# An event that cannot be applied raises a plain ValueError, TypeError or KeyError here, never
# seen outside :func:`replay`: it names the exception's class in the problem it reports ("custody
# event 8 cannot be replayed (KeyError: 'artifact')"), as ``verify`` prints it.


@attrs.define
class _RecordState:
    """A record being rebuilt from its events."""

    id: str
    created_at: dt.datetime
    created_by: Agent
    title: str | None
    artifacts: list[model.RecordArtifact] = attrs.field(factory=list)
    acquisitions: list[model.Acquisition] = attrs.field(factory=list)
    tags: set[str] = attrs.field(factory=set)
    notes: list[model.Note] = attrs.field(factory=list)
    reports: list[model.Report] = attrs.field(factory=list)
    flags: list[model.SensitivityFlag] = attrs.field(factory=list)
    relations: list[model.Relation] = attrs.field(factory=list)
    claims: list[model.Claim] = attrs.field(factory=list)
    assessments: list[model.Assessment] = attrs.field(factory=list)

    @classmethod
    def of(cls, source: EvidenceRecord | _RecordState) -> _RecordState:
        """A state holding copies of the lists of *source*: a record (as imported), or a state
        to change so that an event applies whole or not at all."""
        return cls(
            id=source.id,
            created_at=source.created_at,
            created_by=source.created_by,
            title=source.title,
            artifacts=list(source.artifacts),
            acquisitions=list(source.acquisitions),
            tags=set(source.tags),
            notes=list(source.notes),
            reports=list(source.reports),
            flags=list(source.flags),
            relations=list(source.relations),
            claims=list(source.claims),
            assessments=list(source.assessments),
        )

    def freeze(self) -> EvidenceRecord:
        return EvidenceRecord(
            id=self.id,
            created_at=self.created_at,
            created_by=self.created_by,
            title=self.title,
            artifacts=self.artifacts,
            acquisitions=self.acquisitions,
            tags=self.tags,
            notes=self.notes,
            reports=self.reports,
            flags=self.flags,
            relations=self.relations,
            claims=self.claims,
            assessments=self.assessments,
        )


@attrs.frozen
class Replay:
    """Records rebuilt from a custody log, and the events that could not be applied."""

    records: dict[str, EvidenceRecord]
    #: (sequence number, reason) of each event whose details could not be applied.
    problems: tuple[tuple[int, str], ...] = ()


def replay(events: Iterable[CustodyEvent]) -> Replay:
    """Rebuild every record from the custody log alone, in log order.

    An event that cannot be applied (malformed details, a record never created) is skipped and
    reported in :attr:`Replay.problems`; the rest of the log is still replayed.
    """
    replayer = Replayer()
    for event in events:
        replayer.apply(event)
    return replayer.result()


class Replayer:
    """:func:`replay`, one event at a time: :meth:`apply` each event in log order, then take
    :meth:`result` (for a caller that reads the log once for several checks)."""

    def __init__(self) -> None:
        self._states: dict[str, _RecordState] = {}
        self._problems: list[tuple[int, str]] = []
        self._created: dict[str, int] = {}  # the event that made each record, to name when it cannot be rebuilt

    def apply(self, event: CustodyEvent) -> None:
        """Apply the next event (an event that cannot be applied is a problem, skipped)."""
        apply = _APPLY.get(event.action)
        if apply is None:
            return
        states = self._states
        fresh = event.subject not in states
        try:
            apply(states, event)
        except (EvidenceError, KeyError, TypeError, ValueError) as exc:
            self._problems.append((event.seq, f"{type(exc).__name__}: {exc}"))
        if fresh and event.subject in states:
            self._created[event.subject] = event.seq

    def result(self) -> Replay:
        """The records rebuilt from the events applied so far, and the problems."""
        problems = list(self._problems)
        records: dict[str, EvidenceRecord] = {}
        for record_id, state in self._states.items():
            try:
                records[record_id] = state.freeze()
            except (EvidenceError, TypeError, ValueError) as exc:  # e.g. a record id that is no id
                problems.append((self._created.get(record_id, 0), f"{type(exc).__name__}: {exc}"))
        return Replay(records=records, problems=tuple(problems))


def added_details(
    *,
    record: EvidenceRecord | None,
    artifact: model.Artifact,
    acquisition: model.Acquisition,
    tags: Iterable[str],
    note: model.Note | None,
) -> dict[str, Any]:
    """The ``details`` of an ``artifact.added`` event: everything needed to replay it.

    *record* is the new record's own fields when the add created it, else ``None``.
    """
    return {
        **_acquired_details(record, acquisition, tags, note),
        "sha256": artifact.sha256,
        "artifact": unstructure(artifact),
    }


def captured_details(
    *,
    record: EvidenceRecord | None,
    entries: Iterable[model.RecordArtifact],
    acquisition: model.Acquisition,
    tags: Iterable[str],
    note: model.Note | None,
) -> dict[str, Any]:
    """The ``details`` of a ``media.captured`` event: every artifact the capture stored (with
    its role, sources and earlier version), the acquisition, tags and note."""
    return {
        **_acquired_details(record, acquisition, tags, note),
        "sha256": acquisition.artifact_sha256,
        "artifacts": [unstructure(entry) for entry in entries],
    }


def _acquired_details(
    record: EvidenceRecord | None, acquisition: model.Acquisition, tags: Iterable[str], note: model.Note | None
) -> dict[str, Any]:
    """What every event that acquires bytes for a record holds: the record's own fields when the
    event created it, the acquisition, tags and note."""
    return {
        "record_created": record is not None,
        "record": None
        if record is None
        else {
            "created_at": unstructure(record.created_at),
            "created_by": unstructure(record.created_by),
            "title": record.title,
        },
        "acquisition": unstructure(acquisition),
        "tags": sorted(set(tags)),
        "note": None if note is None else unstructure(note),
    }


def failed_details(acquisition: model.Acquisition) -> dict[str, Any]:
    """The ``details`` of a ``capture.failed`` event: the failed acquisition (URL, times, error)."""
    return {"acquisition": unstructure(acquisition)}


def _apply_added(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``artifact.added`` event; *states* changes only if the whole event applies."""
    details = event.details
    artifact = structure(details["artifact"], model.Artifact)
    if artifact.sha256 != details["sha256"]:
        raise ValueError("artifact document and sha256 disagree")
    _apply_acquired(states, event, [model.RecordArtifact(artifact=artifact)])


def _apply_captured(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``media.captured`` event."""
    entries = [structure(entry, model.RecordArtifact) for entry in event.details["artifacts"]]
    if not entries or entries[0].artifact.sha256 != event.details["sha256"]:
        raise ValueError("the first artifact of a capture must be its main artifact (sha256)")
    _apply_acquired(states, event, entries)


def _apply_ingested(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``report.ingested`` event: the source document and its acquisition, like a
    capture, and the report read from it."""
    report = structure(event.details["report"], model.Report)
    _apply_captured(states, event)
    states[event.subject].reports.append(report)


def _apply_failed(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``capture.failed`` event: a failed attempt on a record is part of its history."""
    acquisition = structure(event.details["acquisition"], model.Acquisition)
    if acquisition.outcome is not model.Outcome.FAILED:
        raise ValueError("a capture.failed event must carry a failed acquisition")
    if event.subject == "catalog":
        return
    if event.subject not in states:
        raise ValueError(f"record {event.subject} was never created in this log")
    states[event.subject].acquisitions.append(acquisition)


def linked_details(
    *, report_id: str, from_record: str, document: model.RecordArtifact | None, note: model.Note | None
) -> dict[str, Any]:
    """The ``details`` of a ``report.linked`` event (its subject is the record the report moves
    to): the report, the record it leaves, its source document when the new record did not hold
    it yet, and the operator's note."""
    return {
        "report_id": report_id,
        "from_record": from_record,
        "document": None if document is None else unstructure(document),
        "note": None if note is None else unstructure(note),
    }


def _apply_linked(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``report.linked`` event: the report leaves its record for the subject record,
    which also gets the report's source document (the report's lines are in it)."""
    details = event.details
    if details["from_record"] not in states or event.subject not in states:
        raise ValueError(f"record {details['from_record']} or {event.subject} was never created in this log")
    source, target = states[details["from_record"]], states[event.subject]
    position = next((n for n, r in enumerate(source.reports) if r.id == details["report_id"]), None)
    if position is None or source is target:
        raise ValueError(f"report {details['report_id']} is not on record {details['from_record']}")
    document = None if details["document"] is None else structure(details["document"], model.RecordArtifact)
    note = None if details["note"] is None else structure(details["note"], model.Note)
    target.reports.append(source.reports.pop(position))
    if document is not None and all(held.artifact.sha256 != document.artifact.sha256 for held in target.artifacts):
        target.artifacts.append(document)
    if note is not None:
        target.notes.append(note)


def _apply_acquired(states: dict[str, _RecordState], event: CustodyEvent, entries: list[model.RecordArtifact]) -> None:
    details = event.details
    if not isinstance(details["record_created"], bool):
        raise TypeError("record_created must be true or false")
    if details["record_created"]:
        if event.subject in states:
            raise ValueError(f"record {event.subject} is created twice")
        created = details["record"]
        state = _RecordState(
            id=event.subject,
            created_at=structure(created["created_at"], dt.datetime),
            created_by=structure(created["created_by"], Agent),
            title=created["title"],
        )
    elif event.subject in states:
        state = _RecordState.of(states[event.subject])
    else:
        raise ValueError(f"record {event.subject} was never created in this log")
    for entry in entries:  # bytes already on the record keep the entry they were first given
        if all(held.artifact.sha256 != entry.artifact.sha256 for held in state.artifacts):
            state.artifacts.append(entry)
    state.acquisitions.append(structure(details["acquisition"], model.Acquisition))
    state.tags.update(details["tags"])
    if details["note"] is not None:
        state.notes.append(structure(details["note"], model.Note))
    states[event.subject] = state


#: The annotation events: each puts one part on its subject record, under this member of
#: ``details``, into this list of the record.
ANNOTATIONS: dict[str, tuple[str, type[Any], str]] = {
    Action.CLAIM_ADDED: ("claim", model.Claim, "claims"),
    Action.ASSESSMENT_ADDED: ("assessment", model.Assessment, "assessments"),
    Action.RELATION_ADDED: ("relation", model.Relation, "relations"),
    Action.FLAG_ADDED: ("flag", model.SensitivityFlag, "flags"),
    Action.NOTE_ADDED: ("note", model.Note, "notes"),
}


def annotation_details(member: str, part: Any) -> dict[str, Any]:
    """The ``details`` of an annotation event: the part, whole."""
    return {member: unstructure(part)}


def _apply_annotation(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one claim, assessment, relation, flag or note event to its subject record."""
    member, kind, field = ANNOTATIONS[event.action]
    if event.subject not in states:
        raise ValueError(f"record {event.subject} was never created in this log")
    part = structure(event.details[member], kind)
    getattr(states[event.subject], field).append(part)


def _apply_tags(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``tags.added`` event."""
    if event.subject not in states:
        raise ValueError(f"record {event.subject} was never created in this log")
    tags = event.details["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TypeError("tags must be a list of text")
    states[event.subject].tags.update(tags)


def imported_details(
    record: EvidenceRecord, source: Mapping[str, Any], history: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``details`` of a ``record.imported`` event: the whole record as it came, where it
    came from (the bag, its identifier and Payload-Oxum), and the custody events that came with
    it, verbatim (their own hashes still check)."""
    return {"record": unstructure(record), "source": dict(source), "history": [dict(e) for e in history]}


def _apply_imported(states: dict[str, _RecordState], event: CustodyEvent) -> None:
    """Apply one ``record.imported`` event: the record starts as it came."""
    if event.subject in states:
        raise ValueError(f"record {event.subject} exists already in this log")
    record = structure(event.details["record"], EvidenceRecord)
    if record.id != event.subject:
        raise ValueError("the imported record is not the event's subject")
    states[record.id] = _RecordState.of(record)


_APPLY = {
    Action.ARTIFACT_ADDED: _apply_added,
    Action.MEDIA_CAPTURED: _apply_captured,
    Action.CAPTURE_FAILED: _apply_failed,
    Action.REPORT_INGESTED: _apply_ingested,
    Action.REPORT_LINKED: _apply_linked,
    Action.TAGS_ADDED: _apply_tags,
    Action.RECORD_IMPORTED: _apply_imported,
    **dict.fromkeys(ANNOTATIONS, _apply_annotation),
}
