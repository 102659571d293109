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
alone (:mod:`evidence_catalog.replay`) and compared with what the database says.

Storage of the log (one place that appends) lives in the catalog's database adapter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs

from evidence_catalog.errors import ValidationError
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

if TYPE_CHECKING:
    from evidence_catalog.findings import Finding

#: Members of an event document that are not covered by its hash.
UNHASHED = frozenset({"hash", "schema"})
#: Member of a salted event's ``details`` that holds its secret (64 hex digits, 256 bits).
SALT = "salt"
#: An event's secret as it is written (:func:`new_secret`), and the only form accepted: 64
#: lower-case hex digits.  ``bytes.fromhex`` alone would also take upper case and spaces, text
#: that is not what was hashed but gives the same key.
_SECRET = re.compile("[0-9a-f]{64}")
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
    #: A derivation: an analysis of an artifact and what it made (a document, keyframes ...).
    MEDIA_ANALYZED = "media.analyzed"


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
    if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
        raise CommitmentError("the event's salt is not 64 lower-case hex digits")
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
    if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
        raise CommitmentError("the event's salt is not 64 lower-case hex digits")
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


def _salted_draft(
    previous: CustodyEvent | ChainHead | None,
    *,
    at: dt.datetime,
    actor: Agent,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None,
) -> CustodyEvent:
    """The event that follows *previous*, its ``details`` given a new secret (:data:`SALT`),
    before its hash is set (``hash`` is :data:`GENESIS_HASH` until then)."""
    if details is not None and SALT in details:
        raise CommitmentError(f"an event's details cannot hold {SALT!r}: it is the event's own secret")
    return CustodyEvent(
        seq=1 if previous is None else previous.seq + 1,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        prev_hash=GENESIS_HASH if previous is None else previous.hash,
        hash=GENESIS_HASH,
        details={**dict(details or {}), SALT: new_secret()},
    )


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
    draft = _salted_draft(previous, at=at, actor=actor, action=action, subject=subject, details=details)
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
        return event_hash, event_leaf({**document, "hash": event_hash})
    return event_hash, leaf


_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _canonical(form: dict[str, Any], plain: bool) -> bytes:
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
    return {**dict(details or {}), SALT: new_secret()}


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


def _committed_fast(draft: CustodyEvent) -> tuple[dict[str, Any], bool]:
    """:func:`committed_form` of ``unstructure(draft)`` (a salted event), and whether it is
    plain JSON (see :func:`_seal`); :class:`CommitmentError` for details it leaves to the reference."""
    secret = draft.details[SALT]
    if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
        raise CommitmentError("the event's salt is not 64 lower-case hex digits")
    if _native is not None:
        return _committed_native(_native, draft, secret)
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
                    raise CommitmentError("left to the reference functions")  # caught by _seal
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
        return _draft_value(node, pointer, salt_of, walk, not_plain)

    def not_plain() -> None:
        nonlocal plain
        plain = False

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


class _NotPlainError(Exception):
    """What stops a walk that writes an event's canonical JSON where the form is not plain."""


def _draft_value(
    node: Any,
    pointer: str,
    salt_of: Callable[[str], str],
    walk: Callable[[Any, str], Any],
    not_plain: Callable[[], None],
) -> Any:
    """A draft's value at *pointer* that is neither an object nor an array, as both walks of
    :func:`_committed_fast` commit it: text (of a subclass too: an enum's, as the converter leaves
    it) by its salted digest; null, booleans and integers JSON carries exactly, as they are;
    other numbers as they are, but not plain; anything else as the converter makes it, walked
    (:class:`CommitmentError` for what the converter leaves as it is)."""
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


def _committed_native(native: ModuleType, draft: CustodyEvent, secret: str) -> tuple[dict[str, Any], bool]:
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
        self.native, self.key, self.plain, self.stop = native, bytes.fromhex(secret), True, stop

    def key_check(self, name: Any) -> None:
        if type(name) is not str:
            raise CommitmentError("left to the reference functions")  # caught by _seal
        if not name.isascii() and _UTF16_ORDER_DIFFERS.search(name):
            self.not_plain()

    def salt_of(self, pointer: str) -> str:
        salt: str = self.native.salt(self.key, pointer)
        return salt

    def whole(self, value: Any, pointer: str) -> str:
        return value_digest(self.salt_of(pointer), unstructure(value))

    def other(self, node: Any, pointer: str) -> Any:
        return _draft_value(node, pointer, self.salt_of, self.walk, self.not_plain)

    def not_plain(self) -> None:
        self.plain = False
        if self.stop:  # writing: what is written is of no use (_committed_json)
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


_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


def _findings() -> ModuleType:
    """The kinds of finding, imported when the first is made: reading a log makes none."""
    from evidence_catalog import findings

    return findings


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
            findings.append(
                _findings().EventEdited(seq=expected_seq, expected=str(stored_hash), found=f"bad sequence {seq!r}")
            )
            seq = expected_seq
        if recomputed is None:
            try:
                recomputed = document_hash(document)
            except (TypeError, ValueError) as exc:
                recomputed = f"cannot be hashed ({exc})"
        if recomputed != stored_hash:
            findings.append(_findings().EventEdited(seq=seq, expected=str(stored_hash), found=recomputed))
        if seq > expected_seq:
            findings.append(_findings().EventMissing(seq=expected_seq, found=seq))
        elif seq < expected_seq:
            findings.append(_findings().EventOutOfOrder(seq=seq, expected=expected_seq))
        elif prev_hash != self._previous_hash:
            findings.append(_findings().BrokenLink(seq=seq, expected=self._previous_hash, found=str(prev_hash)))
        self._expected_seq = seq + 1
        self._previous_hash = str(stored_hash)
