"""Paths as the catalog shows and records them: one printable line, and the raw bytes of a
name that is not UTF-8."""

from __future__ import annotations

import base64
import os
from pathlib import Path


def display_path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """A path as one printable line: invalid UTF-8 bytes and control characters escaped."""
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:  # text with lone surrogates that did not come from a file name
        raw = os.fspath(path).encode("utf-8", "backslashreplace")  # type: ignore[union-attr]
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def recorded_path(path: Path) -> tuple[str, str | None]:
    """The path as text for a record, and its raw bytes (base64) when they are not UTF-8."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), base64.b64encode(raw).decode("ascii")
