"""Portable, readable, collision-free file names for files in an exported package.

A name given by a source (an upload's file name, a video title) may hold anything: path
separators, ``..``, control characters, names Windows reserves, characters spreadsheet and
checksum tools read specially, or more bytes than a file system allows.  :func:`portable_name`
turns any text into one path component that is safe on Linux, macOS and Windows and keeps as
much of the original as it can; :func:`unique_names` makes a set of them distinct even on file
systems that ignore case or normalise Unicode.  Pure functions, no I/O.
"""

from __future__ import annotations

import mimetypes
import unicodedata
from collections.abc import Sequence

#: Characters Windows forbids in names, path separators, and ``%`` (BagIt manifests
#: percent-encode it, plain checksum tools do not: a name without it reads the same in both).
_FORBIDDEN = frozenset('<>:"/\\|?*%')
#: Names Windows reserves, with or without an extension.
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in "123456789¹²³"} | {f"lpt{i}" for i in "123456789¹²³"}
)
#: At most this many UTF-8 bytes per name (file systems allow 255; room is left for a suffix).
MAX_NAME_BYTES = 120
_REPLACEMENT = "_"


def portable_name(text: str, fallback: str = "file") -> str:
    """One safe path component for *text*: NFC, no control, format or separator characters,
    no leading dot or dash, no trailing dot or space, not a reserved device name, at most
    :data:`MAX_NAME_BYTES` UTF-8 bytes with the extension kept.  Never empty: *fallback*
    (itself made safe) stands in for a name with nothing usable left."""
    cleaned = _clean(text)
    if not cleaned.strip(_REPLACEMENT + " ."):
        cleaned = _clean(fallback) or "file"
    stem, dot, extension = cleaned.rpartition(".")
    if not dot or not stem or len(extension) > 16 or " " in extension:
        stem, extension = cleaned, ""
    suffix = f".{extension}" if extension else ""
    stem = _fit(stem, MAX_NAME_BYTES - 1 - len(suffix.encode("utf-8")))
    if stem.split(".")[0].rstrip(" ").casefold() in _RESERVED:  # after the cut, which can make one
        stem = _REPLACEMENT + stem
    return stem + suffix


def _clean(text: str) -> str:
    normalised = unicodedata.normalize("NFC", text)
    kept = []
    for char in normalised:
        category = unicodedata.category(char)
        if char in _FORBIDDEN or (category[0] in "CZ" and char != " "):  # controls, formats, separators
            kept.append(_REPLACEMENT if category not in ("Cf", "Mn") else "")
        else:
            kept.append(char)
    # Removing a format character can leave a base letter and a mark apart: normalise again.
    cleaned = unicodedata.normalize("NFC", " ".join("".join(kept).split()))  # runs of spaces become one
    cleaned = cleaned.lstrip(" .-").rstrip(" .")
    while _REPLACEMENT * 2 in cleaned:
        cleaned = cleaned.replace(_REPLACEMENT * 2, _REPLACEMENT)
    return cleaned


def _fit(text: str, limit: int) -> str:
    """*text* cut to at most *limit* UTF-8 bytes at a character boundary, without a trailing
    space or dot left by the cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[:limit].decode("utf-8", errors="ignore")
    # A cut inside a combining sequence would leave a bare mark; drop trailing marks.
    while cut and unicodedata.combining(cut[-1]):
        cut = cut[:-1]
    return cut.rstrip(" .") or _REPLACEMENT


#: The extension a file of each media type is named with: the one people and programs expect.
#: :mod:`mimetypes` alone would answer ``.xsl`` for ``application/xml``, and its answers depend
#: on the ``mime.types`` files of the computer that exports.
_EXTENSIONS = {
    "application/atom+xml": ".xml",
    "application/dash+xml": ".mpd",
    "application/gzip": ".gz",
    "application/json": ".json",
    "application/ld+json": ".json",
    "application/msword": ".doc",
    "application/octet-stream": ".bin",
    "application/ogg": ".ogg",
    "application/pdf": ".pdf",
    "application/rss+xml": ".xml",
    "application/vnd.apple.mpegurl": ".m3u8",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/wacz": ".wacz",
    "application/x-mpegurl": ".m3u8",
    "application/x-subrip": ".srt",
    "application/xhtml+xml": ".xhtml",
    "application/xml": ".xml",
    "application/zip": ".zip",
    "audio/aac": ".aac",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/wav": ".wav",
    "audio/webm": ".weba",
    "audio/x-flac": ".flac",
    "audio/x-wav": ".wav",
    "image/avif": ".avif",
    "image/bmp": ".bmp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/svg+xml": ".svg",
    "image/tiff": ".tif",
    "image/webp": ".webp",
    "text/csv": ".csv",
    "text/html": ".html",
    "text/markdown": ".md",
    "text/plain": ".txt",
    "text/vtt": ".vtt",
    "text/xml": ".xml",
    "video/3gpp": ".3gp",
    "video/mp2t": ".ts",
    "video/mp4": ".mp4",
    "video/mpeg": ".mpg",
    "video/ogg": ".ogv",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
}
#: Python's own table only, never the computer's ``mime.types``: the same name everywhere.
_BUILT_IN = mimetypes.MimeTypes(filenames=())


def extension_for(media_type: str) -> str:
    """The file name extension (with its dot) for *media_type* (parameters ignored): a fixed,
    conventional one for common types, else Python's built-in table, else ``.xml`` or ``.json``
    for a ``+xml`` or ``+json`` type, ``.txt`` for other text, and ``.bin`` for anything else.
    Depends on nothing but the argument (and the Python version, for rare types)."""
    base = media_type.split(";")[0].strip().lower()
    known = _EXTENSIONS.get(base)
    if known is not None:
        return known
    guessed = _BUILT_IN.guess_extension(base, strict=False)
    if guessed and len(guessed) <= 9:
        return guessed
    for suffix, extension in (("+xml", ".xml"), ("+json", ".json")):
        if base.endswith(suffix):
            return extension
    return ".txt" if base.startswith("text/") else ".bin"


def name_key(name: str) -> str:
    """What two names must differ in to be different files everywhere: case folded, NFC and
    NFD alike (macOS stores NFD; Windows and macOS ignore case)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def unique_names(names: Sequence[str], distinguishers: Sequence[str]) -> list[str]:
    """Make *names* (already portable) pairwise distinct under :func:`name_key`, in order.

    A name that clashes with an earlier one gets ``-`` and a prefix of its *distinguisher*
    (e.g. the file's SHA-256) before its extension, as long a prefix as it takes: the result
    depends only on the inputs, so the same export names files the same way every time.
    """
    if len(names) != len(distinguishers):
        raise ValueError("one distinguisher per name")
    taken: set[str] = set()
    result = []
    for name, distinguisher in zip(names, distinguishers, strict=True):
        candidate = name
        length = 12
        counter = 0
        while name_key(candidate) in taken:
            stem, dot, extension = name.rpartition(".")
            if not dot or not stem:
                stem, extension = name, ""
            tail = _clean(distinguisher)[:length] if length <= len(distinguisher) else f"{distinguisher}-{counter}"
            suffix = f"-{tail}" + (f".{extension}" if extension else "")
            candidate = _fit(stem, MAX_NAME_BYTES + 80 - len(suffix.encode("utf-8"))) + suffix
            length += 8
            counter += 1
        taken.add(name_key(candidate))
        result.append(candidate)
    return result
