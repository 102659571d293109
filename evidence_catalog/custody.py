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
from evidence_catalog.serialize import (
    canonical_json,
    unstructure,
)

if TYPE_CHECKING:
    from hashlib import _Hash

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
    COPIES_QUARANTINED = "copies.quarantined"
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


def _check_names(value: Any, pointer: str) -> None:
    """:func:`_name_error` for the first member name in *value* (at JSON Pointer *pointer*)
    that is not exactly text: for a value committed whole (``metadata``), whose names the
    walks do not visit one by one."""
    pending = [(value, pointer)]
    while pending:
        item, at = pending.pop()
        if isinstance(item, dict):
            for name, inner in item.items():
                if type(name) is not str:
                    raise _name_error(name, at)
                pending.append((inner, f"{at}/{_escape(name)}"))
        elif isinstance(item, list | tuple):
            pending.extend((inner, f"{at}/{index}") for index, inner in enumerate(item))


def _name_error(name: Any, pointer: str) -> CommitmentError:
    """What an event whose details hold *name*, a member name of the object at *pointer* that is
    not exactly text, is refused with: JSON stores such a name by its characters, which need not
    be what ``str()`` makes of it (an enum of strings that is not a ``StrEnum``) nor differ from
    another name of the same object (a ``StrEnum``), so the event would be hashed from one text
    and stored as another.  An event read from JSON never holds one."""
    return CommitmentError(
        f"the member name {name!r} in {pointer or 'a committed value'} is a {type(name).__name__}, not text: "
        "an event's names must be texts, as JSON stores them"
    )


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
                if type(key) is not str:
                    raise _name_error(key, pointer)
                inner = f"{pointer}/{_escape(key)}"
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
    inner_state, outer_state = _keyed_states(_salt_key(secret))
    inner, outer = inner_state.copy, outer_state.copy
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


def _keyed_states(key: bytes) -> tuple[_Hash, _Hash]:
    """HMAC-SHA256 as RFC 2104 defines it (what :func:`value_salt` computes with ``hmac``),
    keyed once: the SHA-256 states of the *key* (an event's secret, 32 bytes: shorter than
    SHA-256's 64-byte block) padded with zeros and XORed with 0x36 (inner) and 0x5c (outer).
    Each value's salt continues copies of the two: the inner with its pointer, the outer with
    the inner's digest.  The walks that commit an event's values, in every module, key so."""
    padded = key.ljust(64, b"\0")
    return hashlib.sha256(padded.translate(_INNER_PAD)), hashlib.sha256(padded.translate(_OUTER_PAD))


_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


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
                if type(key) is not str:
                    raise _name_error(key, pointer)
                if pointer == "/details" and key == SALT:
                    continue
                inner = f"{pointer}/{_escape(key)}"
                if key in WHOLE_MEMBERS:
                    _check_names(value, inner)
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
