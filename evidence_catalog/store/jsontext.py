"""JSON as the catalog's JSON columns are read: strictly (:func:`strict_json`); and the text a
document is written as, made once for the rows that hold it (:class:`JSONText`)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from evidence_catalog.values import is_text


def strict_json(text: str | bytes) -> Any:
    """The JSON *text* holds, refusing (``ValueError``) an object that names a member twice:
    Python keeps the last of them, SQLite's ``json_extract`` the first, so stored JSON that
    reads two ways is damaged, not what was written (how every JSON column is read); and a
    string holding half of a surrogate pair (``"\\ud800"``), which no text is and which every
    writer of JSON or UTF-8 refuses later."""
    if type(text) is str and not text.startswith("\ufeff"):
        value = _STRICT.decode(text)  # what json.loads does with such text, without a new decoder each time
    else:
        value = json.loads(text, object_pairs_hook=_members_once)
    if isinstance(text, str):  # escaped, or (from a caller, never from a driver) as it is
        suspect = _SURROGATE_ESCAPE.search(text) is not None or not (text.isascii() or is_text(text))
    else:  # json.loads decodes bytes letting surrogates through
        suspect = True
    if suspect:
        _no_lone_surrogate(value)
    return value


#: An escaped surrogate: the only way JSON text read from a database can hold one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_lone_surrogate(value: Any) -> None:
    strings = [value] if isinstance(value, str) else []
    stack = [] if strings else [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            strings.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            strings.append(item)
    if not all(map(is_text, strings)):
        raise ValueError("a string holds half of a surrogate pair, which is no text")


def _members_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a member is written twice")
    return found


_STRICT = json.JSONDecoder(object_pairs_hook=_members_once)


class JSONText:
    """A JSON column's value, and the text SQLite is given for it: what ``json.dumps`` writes of
    it, as SQLAlchemy's JSON type writes a value, made when first asked for.  Given for a JSON
    column to :func:`~evidence_catalog.store.inserts.insert_many`, the text is written as it is
    on SQLite, and the value through SQLAlchemy elsewhere (PostgreSQL: no text is made).

    Where the value is an object that holds, by name, the very values of some of *members* (an
    event's details hold its acquisition's document and its report's, which are also written
    to their own rows), their texts are put in place instead of being written again: the same
    text, each document written once."""

    __slots__ = ("_members", "_text", "value")

    def __init__(self, value: Any, members: Mapping[str, JSONText] | None = None) -> None:
        self.value = value
        self._members = members
        self._text: str | None = None

    @property
    def text(self) -> str:
        """``json.dumps(value)``."""
        text = self._text
        if text is None:
            text = self._text = _written(self.value, self._members)
        return text

    def __repr__(self) -> str:
        return f"JSONText({self.value!r})"


def _written(value: Any, members: Mapping[str, JSONText] | None) -> str:
    if not members or type(value) is not dict:
        return json.dumps(value)
    marked: dict[str, Any] = dict(value)
    texts: dict[str, str] = {}
    for name, known in members.items():
        if name in marked and marked[name] is known.value:
            mark = f"{_MARK}{len(texts)}"
            marked[name] = mark
            texts['"' + mark + '"'] = known.text
    text = json.dumps(marked)
    for quoted, known_text in texts.items():
        if text.count(quoted) != 1:  # only ever the mark put in: never guessed (it is random)
            return json.dumps(value)
        text = text.replace(quoted, known_text)
    return text


#: What stands for a member's text in :attr:`JSONText.text` until it is put in: random, so that no
#: value read from an input can hold it.
_MARK = f"evidence-catalog-json-{secrets.token_hex(16)}-"
