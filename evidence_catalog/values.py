"""The rules every value of the data model obeys -- ids, digests, times, text, tags -- as the
validators and converters :mod:`evidence_catalog.model`'s classes use, and the small functions
other modules ask the same questions with.  Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from time import time_ns
from typing import Any

import attrs

from evidence_catalog.errors import ModelError, ModelTypeError

HEX = re.compile(r"[0-9a-f]+")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")

#: Hex digest length of each supported algorithm.
DIGEST_LENGTHS: Mapping[str, int] = {
    "sha256": 64,
    "md5": 32,
    "sha1": 40,
    "sha512": 128,
    "blake2b": 128,
}

#: The hash that precedes the first event of a custody log.
GENESIS_HASH = "0" * 64


def new_id() -> str:
    """Return a new time-ordered identifier (UUID version 7, RFC 9562), as lowercase text.

    Its first 48 bits are the Unix time in milliseconds when it was made; ids made by one
    process increase (RFC 9562 section 6.2, method 1, as Python 3.14's ``uuid.uuid7``): within
    one millisecond a 42-bit counter, started at random, counts up, and 32 random bits follow.
    The time runs ahead of the clock only when that counter overflows (2^41 ids or more in one
    millisecond) or the clock goes back: an id's time is the time it was made.  (The ``uuid6``
    package this replaces moved the time one millisecond ahead for every id after the first of
    a millisecond: an ingest of 100,000 items made ids whose time ran minutes ahead.)"""
    global _last_ms, _last_counter
    now = time_ns() // 1_000_000
    if _last_ms is None or now > _last_ms:
        counter, tail = _fresh_counter()
    else:
        now = _last_ms  # (the same millisecond, or a clock set back: never an earlier id)
        counter = _last_counter + 1
        if counter > _COUNTER_MAX:
            now += 1
            counter, tail = _fresh_counter()
        else:
            tail = int.from_bytes(os.urandom(4), "big")
    value = (
        (now & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (counter >> 30) << 64
        | 0b10 << 62
        | (counter & 0x3FFF_FFFF) << 32
        | tail
    )
    _last_ms, _last_counter = now, counter
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: The last id's millisecond and counter (see :func:`new_id`).
_last_ms: int | None = None
_last_counter = 0
#: The largest value of the 42-bit counter.
_COUNTER_MAX = (1 << 42) - 1


def _fresh_counter() -> tuple[int, int]:
    """A new millisecond's counter (41 random bits: the top one clear, room to count) and 32
    random bits."""
    bits = int.from_bytes(os.urandom(10), "big")
    return (bits >> 32) & ((1 << 41) - 1), bits & 0xFFFF_FFFF


def utc_now() -> dt.datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def to_utc(value: dt.datetime) -> dt.datetime:
    """Convert an aware datetime to UTC; refuse a naive one (its zone would be a guess) with a
    :class:`ModelError`, and anything that is no datetime with a :class:`ModelTypeError`."""
    if not isinstance(value, dt.datetime):
        raise ModelTypeError(f"expected a datetime, got {type(value).__name__}")
    if type(value) is dt.datetime and value.tzinfo is dt.UTC:
        return value  # what ``astimezone(dt.UTC)`` returns (a subclass may do otherwise)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ModelError(f"timestamp {value.isoformat()} has no time zone; use UTC")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: before the first representable UTC time
        raise ModelError(f"timestamp {value.isoformat()} is outside the range of times in UTC") from None


def optional_utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else to_utc(value)


def not_blank(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"{attribute.name} must be non-empty text")


def optional_not_blank(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        not_blank(instance, attribute, value)


def record_id(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not UUID7.match(value):
        raise ModelError(f"{attribute.name} must be a lowercase UUID version 7, got {value!r}")


def optional_record_id(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        record_id(instance, attribute, value)


def sha256(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not is_hex_digest(value, "sha256"):
        raise ModelError(f"{attribute.name} must be 64 lowercase hex digits, got {value!r}")


def optional_sha256(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        sha256(instance, attribute, value)


def non_negative(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def positive(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{attribute.name} must be a positive integer, got {value!r}")


def optional_positive(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None:
        positive(instance, attribute, value)


def optional_int_in(allowed: range) -> Any:
    """A validator: ``None`` or an integer (not a bool) of *allowed*."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and (type(value) is not int or value not in allowed):
            raise ModelError(f"{attribute.name} must be one of {', '.join(map(str, allowed))}, got {value!r}")

    return check


def text_map(_: Any, attribute: attrs.Attribute[Any], value: dict[str, str]) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ModelError(f"{attribute.name} must map text to text")


def finite_in(lo: float, hi: float) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"{attribute.name} must be a number, got {value!r}")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ModelError(f"{attribute.name} must be between {lo} and {hi}, got {value!r}")

    return check


def matches(pattern: re.Pattern[str], what: str) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if not isinstance(value, str) or not pattern.match(value):
            raise ModelError(f"{attribute.name} must be {what}, got {value!r}")

    return check


def one_of(*allowed: str) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in allowed:
            raise ModelError(f"{attribute.name} must be one of {', '.join(allowed)}, got {value!r}")

    return check


def optional_not_negative(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    try:
        if value is None or value >= 0:
            return
    except TypeError:
        pass
    raise ModelError(f"{attribute.name} must be a number of at least 0, got {value!r}")


def to_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def to_tag_set(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(value)))


def tags(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for tag in value:
        if not isinstance(tag, str) or not tag.strip() or tag != tag.strip():
            raise ModelError(f"{attribute.name}: tag {tag!r} must be non-empty with no outer spaces")
        if has_control_characters(tag):
            raise ModelError(f"{attribute.name}: tag {tag!r} contains a control character")


def is_text(text: str) -> bool:
    """Whether *text* is text: it holds no half of a surrogate pair, which UTF-8 (and every
    writer of JSON this library's output is read by) cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def has_control_characters(text: str) -> bool:
    """C0 and C1 control characters and DEL: nothing a tag, a name or an address needs."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def is_hex_digest(value: object, algorithm: str) -> bool:
    """Tell whether *value* is a lowercase hex digest of the right length for *algorithm*."""
    return isinstance(value, str) and len(value) == DIGEST_LENGTHS[algorithm] and HEX.fullmatch(value) is not None


def is_record_id(value: object) -> bool:
    """Tell whether *value* is a record identifier (a lowercase UUIDv7)."""
    return isinstance(value, str) and UUID7.match(value) is not None


def record_id_time(record_id: str) -> dt.datetime:
    """Return the creation time encoded in a UUIDv7 record id (millisecond precision)."""
    millis = uuid.UUID(record_id).int >> 80
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC)


def sha256_list(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    """Validator: every item a lower-case hex SHA-256."""
    for item in value:
        if not is_hex_digest(item, "sha256"):
            raise ModelError(f"{attribute.name} must hold 64-digit lowercase hex SHA-256s, got {item!r}")


def http_status(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    """Validator: an HTTP status code, 100-999."""
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
        raise ModelError(f"{attribute.name} must be an HTTP status code (100-999), got {value!r}")


def header_pairs(value: Iterable[Iterable[str]]) -> tuple[tuple[str, str], ...]:
    """Converter: header pairs as a tuple of tuples."""
    return tuple(tuple(pair) for pair in value)  # type: ignore[misc]


def optional_non_negative_number(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """Validator: ``None`` or a finite number >= 0 (not a bool)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ModelError(f"{attribute.name} must be a non-negative number, got {value!r}")


DATE_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def optional_date(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """Validator: ``None`` or a calendar date written YYYY-MM-DD."""
    if value is None:
        return
    if not isinstance(value, str) or not DATE_TEXT.match(value):
        raise ModelError(f"{attribute.name} must be a date as YYYY-MM-DD, got {value!r}")
    dt.date.fromisoformat(value)
