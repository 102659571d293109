"""Re-hashing custody events as they were stored: :func:`stored_hash_and_leaf` gives the very
bytes of :func:`~evidence_catalog.custody.hash_and_leaf` from a stored event document (plain JSON,
as a verification reads the log or an import reads a bag), faster, and never through a rebuilt
:class:`~evidence_catalog.model.CustodyEvent` (which would normalise an edited row).  The
reference functions stay in :mod:`evidence_catalog.custody`; ``tests/test_stored_hash.py`` holds
the two equal on hostile documents."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from evidence_catalog import sealing
from evidence_catalog.custody import (
    _SECRET,
    DIGEST_PREFIX,
    SALT,
    SALTED_MEMBERS,
    UNHASHED,
    VALUE_SALT_HEX,
    WHOLE_MEMBERS,
    CommitmentError,
    _escape,
    _json_text,
    _keyed_states,
    document_hash,
    event_leaf,
    hash_and_leaf,
    value_digest,
)
from evidence_catalog.merkle import leaf_hash
from evidence_catalog.serialize import _SAFE_INTEGER, _UTF16_ORDER_DIFFERS, _plain, plain_json


def stored_hash_and_leaf(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """:func:`hash_and_leaf` of an event document as it was stored (plain JSON: what
    verifying a log reads), the very same bytes, made faster for a salted event.

    The committed form is made in one walk over the document itself (never through a
    :class:`~evidence_catalog.model.CustodyEvent`, which would normalise an edited row: an
    extra member, a number where text was), that also finds whether its canonical JSON is what
    ``json`` writes; each value's salt is HMAC-SHA256 from two SHA-256 states keyed once per
    event; the canonical JSON is written once per top-level member and joined with and without
    ``hash``.  Anything the walk does not handle as the reference would byte for byte (an
    unsalted event, a type that is not JSON's own, a key that is not text, a number
    ``rfc8785`` writes, a lone surrogate...) goes to :func:`hash_and_leaf`, which also raises its
    errors (``ValueError`` / ``TypeError``).  ``tests/test_custody.py`` holds the two equal on
    hostile documents."""
    try:
        return _stored_fast(document)
    except Exception:  # noqa: BLE001 -- the reference says what is wrong, in its own words
        return hash_and_leaf(document)


def checked_hash_and_leaf(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """What verifying a log needs of one stored event: its hash as it should be (or why it
    cannot be made) and its leaf (32 zero bytes when it cannot be made: the stored leaf then
    differs, and the chain check names the event).  Never raises ``ValueError``, ``TypeError`` or
    ``RecursionError``."""
    try:
        return stored_hash_and_leaf(document)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        recomputed = document_hash(document)
    except (TypeError, ValueError) as exc:
        recomputed = f"cannot be hashed ({exc})"
    except RecursionError:  # nested deeper than the reference follows from where it was called
        recomputed = "cannot be hashed (nested deeper than this interpreter's recursion limit follows)"
    try:
        leaf = event_leaf(document)
    except (TypeError, ValueError, RecursionError):
        leaf = bytes(32)
    return recomputed, leaf


def checked_hashes(documents: Iterable[Mapping[str, Any]]) -> list[tuple[str, bytes]]:
    """:func:`checked_hash_and_leaf` of each document, in order (a task a worker process of a
    verification runs: documents in, hashes and leaves out)."""
    return [checked_hash_and_leaf(document) for document in documents]


def _native_writer(native: ModuleType, key: bytes) -> Callable[[Any, str], bytes]:
    """:func:`_stored_fast`'s walk made by the C module (``sealing._native``), under the event's
    secret *key*, writing the committed form's canonical JSON (UTF-8) as it walks: the same
    rules, and anything that is not plain JSON refused as there."""
    differs = _UTF16_ORDER_DIFFERS.search

    def key_check(name: Any) -> None:
        if type(name) is not str or (not name.isascii() and differs(name)):
            raise CommitmentError("left to the reference")

    def whole(value: Any, pointer: str) -> str:
        return value_digest(native.salt(key, pointer), value)

    def other(node: Any, pointer: str) -> Any:
        raise CommitmentError("left to the reference")  # a float, a huge integer, not JSON's type

    def write(node: Any, pointer: str) -> bytes:
        made: bytes = native.committed_json(
            node, pointer, key, _json_text, whole, other, key_check, WHOLE_MEMBERS, False, plain_json
        )
        return made

    return write


def _stored_fast(document: Mapping[str, Any]) -> tuple[str, bytes]:
    """:func:`stored_hash_and_leaf` of a salted event whose committed form ``json`` writes as
    RFC 8785 does; :class:`CommitmentError` (or whatever fails on the way) for anything else,
    which the caller leaves to the reference."""
    if type(document) is not dict:
        raise CommitmentError("left to the reference")
    details = document.get("details")
    if type(details) is not dict or SALT not in details:
        raise CommitmentError("left to the reference")  # an unsalted event: hashed as it is
    secret = details[SALT]
    if type(secret) is not str or _SECRET.fullmatch(secret) is None:
        raise CommitmentError("left to the reference")
    native = sealing._native
    write = _python_writer(secret) if native is None else _native_writer(native, bytes.fromhex(secret))
    text, differs = _json_text, _UTF16_ORDER_DIFFERS.search
    parts: list[tuple[str, bytes]] = []
    for name, value in document.items():
        if type(name) is not str or (not name.isascii() and differs(name)):
            raise CommitmentError("left to the reference")
        if name in UNHASHED:
            continue
        written = write(value, "/" + name) if name in SALTED_MEMBERS else _plain_text(value)
        parts.append((name, text(name).encode("utf-8") + b":" + written))
    parts.sort()
    body = b"{" + b",".join(part for _, part in parts) + b"}"
    recomputed = hashlib.sha256(body).hexdigest()
    if "hash" in document:
        parts.append(("hash", b'"hash":' + _plain_text(document["hash"])))
        parts.sort()
        body = b"{" + b",".join(part for _, part in parts) + b"}"
    return recomputed, leaf_hash(body)


def _plain_text(node: Any) -> bytes:
    """The canonical JSON (UTF-8) of a member committed as it is, checked to be plain."""
    if not _plain(node):
        raise CommitmentError("left to the reference")
    return plain_json(node).encode("utf-8")


def _python_writer(secret: str) -> Callable[[Any, str], bytes]:
    """:func:`_native_writer`'s twin in Python: :func:`_python_walk`'s form, written."""
    walk = _python_walk(secret)

    def write(node: Any, pointer: str) -> bytes:
        return plain_json(walk(node, pointer)).encode("utf-8")

    return write


def _python_walk(secret: str) -> Callable[[Any, str], Any]:
    """:func:`_stored_fast`'s walk in Python, under the event's *secret* (64 hex digits):
    :func:`_native_writer`'s twin, where the C module is not used."""
    inner_state, outer_state = _keyed_states(bytes.fromhex(secret))
    sha256, text, differs = hashlib.sha256, _json_text, _UTF16_ORDER_DIFFERS.search

    def digest(pointer: str, value: str) -> str:
        salt = inner_state.copy()
        salt.update(pointer.encode("utf-8"))
        mac = outer_state.copy()
        mac.update(salt.digest())
        data = '["' + mac.hexdigest()[:VALUE_SALT_HEX] + '",' + text(value) + "]"
        return DIGEST_PREFIX + sha256(data.encode("utf-8")).hexdigest()

    def whole(pointer: str, value: Any) -> str:
        salt = inner_state.copy()
        salt.update(pointer.encode("utf-8"))
        mac = outer_state.copy()
        mac.update(salt.digest())
        return value_digest(mac.hexdigest()[:VALUE_SALT_HEX], value)

    def walk(node: Any, pointer: str) -> Any:
        """The committed form of *node* at *pointer* (the reference's ``_committed``); texts,
        nulls and booleans in objects and arrays are handled in place (most values)."""
        kind = type(node)
        if kind is dict:
            out = {}
            salted = pointer == "/details"
            for name, value in node.items():
                if type(name) is not str or (not name.isascii() and differs(name)):
                    raise CommitmentError("left to the reference")
                if salted and name == SALT:
                    continue
                inner = pointer + "/" + (_escape(name) if "~" in name or "/" in name else name)
                kind = type(value)
                if name in WHOLE_MEMBERS:
                    out[name] = whole(inner, value)
                elif kind is str:
                    salt = inner_state.copy()
                    salt.update(inner.encode("utf-8"))
                    mac = outer_state.copy()
                    mac.update(salt.digest())
                    data = '["' + mac.hexdigest()[:VALUE_SALT_HEX] + '",' + text(value) + "]"
                    out[name] = DIGEST_PREFIX + sha256(data.encode("utf-8")).hexdigest()
                elif value is None or kind is bool:
                    out[name] = value
                else:
                    out[name] = walk(value, inner)
            return out
        if kind is list:
            items = []
            for index, value in enumerate(node):
                inner = pointer + "/" + str(index)
                if type(value) is str:
                    salt = inner_state.copy()
                    salt.update(inner.encode("utf-8"))
                    mac = outer_state.copy()
                    mac.update(salt.digest())
                    data = '["' + mac.hexdigest()[:VALUE_SALT_HEX] + '",' + text(value) + "]"
                    items.append(DIGEST_PREFIX + sha256(data.encode("utf-8")).hexdigest())
                else:
                    items.append(walk(value, inner))
            return items
        if kind is str:
            return digest(pointer, node)
        if node is None or kind is bool or (kind is int and -_SAFE_INTEGER <= node <= _SAFE_INTEGER):
            return node
        raise CommitmentError("left to the reference")  # a float, a huge integer, not JSON's type

    return walk
