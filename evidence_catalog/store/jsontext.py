"""JSON as the catalog's JSON columns are read: strictly (:func:`strict_json`)."""

from __future__ import annotations

import json
import re
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
