"""Where the text exports write: any :class:`TextSink`, and a file that hashes what it is given.

The JSON, JSON Lines, CSV and PROV-JSON writers take a :class:`TextSink` -- an open text file,
a bag's payload file (:meth:`~evidence_catalog.interchange.bag.BagWriter.open_text`) or a
:class:`HashingTextSink` -- so that none of them holds a whole export in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from json.encoder import encode_basestring
from typing import Any, BinaryIO, Protocol

from evidence_catalog.hashing import MultiHasher


class TextSink(Protocol):
    """Anything text is written to, piece by piece (what :mod:`csv` and :func:`json.dump` need)."""

    def write(self, text: str, /) -> object: ...


class HashingTextSink:
    """Writes text as UTF-8 to *raw* and hashes exactly the bytes written (an export's digests
    are known without reading the file again)."""

    def __init__(self, raw: BinaryIO, algorithms: Iterable[str] = ()) -> None:
        self.raw = raw
        self.hasher = MultiHasher(algorithms)

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.hasher.update(data)
        self.raw.write(data)
        return len(text)


def indented_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=2)``, character for character, faster:
    the standard library writes indented JSON with a chain of Python generators (only compact
    JSON has its encoder in C), which made it most of the cost of writing a record's document
    into a bag.  Anything but JSON-ready values (``str``, ``int``, ``float``, ``bool``,
    ``None``, ``list``, ``tuple``, ``dict``, their subclasses) is left to ``json.dumps``."""
    try:
        return _text(value, "\n")
    except _NotPlainError:
        return json.dumps(value, ensure_ascii=False, indent=2)


class _NotPlainError(Exception):
    """A value :func:`indented_json` leaves to ``json.dumps`` (which also raises its errors)."""


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return encode_basestring(key)
    if key is True or key is False or key is None:
        return '"' + ("true" if key else "false" if key is False else "null") + '"'
    if isinstance(key, int):
        return '"' + int.__repr__(key) + '"'
    if isinstance(key, float):
        return '"' + _number(key) + '"'
    raise _NotPlainError


def _text(value: Any, newline: str) -> str:
    """The JSON text of *value* whose first line is indented by *newline* (without its line end)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is dict or (kind is not list and isinstance(value, dict)):
        if not value:
            return "{}"
        inner = newline + "  "
        return (
            "{"
            + inner
            + ("," + inner).join(
                [
                    (encode_basestring(key) if type(key) is str else _key(key))
                    + ": "
                    + (encode_basestring(item) if type(item) is str else "null" if item is None else _text(item, inner))
                    for key, item in value.items()
                ]
            )
            + newline
            + "}"
        )
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = newline + "  "
        return (
            "["
            + inner
            + ("," + inner).join(
                [
                    encode_basestring(item) if type(item) is str else "null" if item is None else _text(item, inner)
                    for item in value
                ]
            )
            + newline
            + "]"
        )
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _number(value)
    if isinstance(value, str):  # an enum of strings, as the converter leaves them
        return encode_basestring(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _number(value)
    raise _NotPlainError
