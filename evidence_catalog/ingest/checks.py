"""What every reader checks in a hostile input before anything of it is stored.

An input file is written by whoever wrote the feed, the export or the JSON: it may be nested
deeper than any reader can follow, or hold text that is not text (a lone surrogate escape such
as ``"\\udcff"``, a NUL), which no canonical JSON, database or export can carry.  Found while the
input is read, each is one clear :class:`~evidence_catalog.errors.InputError` naming the file and
the line, message or entry -- never a crash half-way through storing it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from evidence_catalog.errors import InputError
from evidence_catalog.values import is_text

#: The whole numbers RFC 8785 writes exactly lie strictly between -_SAFE and _SAFE.
_SAFE = 2**53


class JSONLimitError(InputError, ValueError):
    """JSON beyond what the reader reads: nested deeper than it follows (a ``RecursionError``
    inside ``json``), or a number of more than 4,300 digits (Python's limit on reading one).

    It is also a :class:`ValueError`, as malformed JSON is, and as it was before."""


def read_json(text: str | bytes) -> Any:
    """``json.loads``, except that JSON beyond the reader's limits raises
    :class:`JSONLimitError`, a :class:`ValueError` -- as malformed JSON raises
    ``json.JSONDecodeError`` -- instead of a ``RecursionError`` or a bare ``ValueError``.  The C
    reader gives up at the interpreter's recursion limit (about 1,000 levels); twarc2 pages and
    Telegram exports are fewer than ten deep, and a value that did load is never walked
    recursively here."""
    try:
        return json.loads(text)
    except RecursionError:
        raise JSONLimitError("it is nested deeper than a JSON reader follows (about 1,000 levels)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise JSONLimitError(f"it holds a number too long to read ({str(exc).split(';')[0]})") from None


#: What in JSON text can become a string that is not text: the escape of a surrogate or of
#: NUL, or such a character itself (in text not decoded strictly from UTF-8).
_NOT_TEXT = re.compile(r"\\u(?:[dD][89a-fA-F][0-9a-fA-F]{2}|0000)|[\ud800-\udfff\x00]")


def may_hold_non_text(json_text: str) -> bool:
    """Whether any string read from *json_text* can hold what :func:`text_problem` finds (a
    lone surrogate, a NUL): one pass over the text, so that an input without any such escape --
    nearly every one -- is not checked report by report.  A ``True`` may be a false alarm (an
    escaped backslash before ``ud800``, a surrogate pair); never a ``False``."""
    return _NOT_TEXT.search(json_text) is not None


def text_problem(value: Any, *, name: str = "") -> str | None:
    """What makes JSON-ready *value* (a report, unstructured) unfit to store, or ``None``: the
    first string in it -- a member name or a value -- that holds a lone surrogate (an escape
    such as ``"\\udcff"`` that is half of a character, or an undecodable byte passed through) or
    a NUL character, or a whole number canonical JSON (RFC 8785) cannot write, named by its
    place (``text``, ``mentions[0]``, ``source.feed_name``).

    A value with nothing of the kind -- nearly every one -- is told so by a quick look at each
    of its values (:func:`_surely_text`); any other is walked again (:func:`_walked_problem`),
    naming the place.  ``tests/test_hostile_ingest.py`` holds the answer the same as that
    walk's alone."""
    if _surely_text(value):
        return None
    return _walked_problem(value, name)


def _surely_text(value: Any) -> bool:
    """Whether *value* certainly holds nothing :func:`_walked_problem` finds: every string (a
    member name or a value) without NUL and, unless it is ASCII, encodable as UTF-8 (a lone
    surrogate is not), every whole number within 2**53.  A look at each value without naming
    its place (the walk's cost); anything of a type other than JSON's own (a subclass too) is
    left to the walk: ``False``."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            if "\x00" in item or not (item.isascii() or is_text(item)):
                return False
        elif kind is dict:
            for key, member in item.items():
                if type(key) is str:
                    if "\x00" in key or not (key.isascii() or is_text(key)):
                        return False
                elif isinstance(key, str):
                    return False
                push(member)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is int:
            if not -_SAFE < item < _SAFE:
                return False
        elif not (item is None or kind is bool or kind is float):
            return False
    return True


def _walked_problem(value: Any, name: str) -> str | None:
    """:func:`text_problem`, from each member and item of *value* in turn, walked with a stack
    of its own: no recursion, whatever the depth."""
    stack: list[tuple[str, Any]] = [(name, value)]
    while stack:
        place, item = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem is not None:
                return f"{place or 'the text'} holds {problem}"
        elif isinstance(item, int) and not isinstance(item, bool) and not -_SAFE < item < _SAFE:
            return f"{place or 'the number'} is beyond 2**53 - 1, which JSON does not carry exactly"
        elif isinstance(item, dict):
            for key, member in reversed(list(item.items())):
                where = f"{place}.{key}" if place else str(key)
                problem = _string_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    return f"a member name in {place or 'the document'} holds {problem}"
                stack.append((where, member))
        elif isinstance(item, list | tuple):
            stack += reversed([(f"{place}[{n}]", member) for n, member in enumerate(item)])
    return None


def _string_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return f"a lone surrogate escape (\\u{code:04x}), which is not a character"
    if "\x00" in text:
        return "a NUL character (\\u0000), which is not text"
    return None


def shown(text: str) -> str:
    """*text* (an id or a name from the input) as it may stand in a message or a logged reason:
    lone surrogates and control characters escaped, so that the message itself can be stored
    and printed."""
    raw = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw)
