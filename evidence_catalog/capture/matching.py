"""Which of yt-dlp's extractors can take a URL, found without compiling the URL pattern of each.

yt-dlp picks the extractor for a URL by trying the ``_VALID_URL`` regular expression of each of
its ~1,800 extractors in turn (the generic one last), compiling each on first use: well over
half a second of every process's first capture, longer than a small download.  Nearly all of
those patterns name their sites in plain text (``https?://(?:www\\.)?example\\.(?:com|org)/``),
and a URL with none of those names cannot match them.

:func:`required_texts` reads a pattern's text once, cheaply, into what any string it matches
must contain (:class:`Needs`): plain texts, and for a group of alternatives, what one of them
needs.  :func:`first_suitable` then tries (compiles and matches) only the extractors whose
needs the URL meets, in yt-dlp's order, with yt-dlp's own ``suitable``: the extractor it finds
is the one yt-dlp's own loop finds, since a pattern is passed over only when no string without
those texts can match it.  An extractor with a ``suitable`` of its own is always tried.

The reading is conservative; each rule only ever leaves a requirement out:

* a run of plain characters (letters, digits, other characters that mean nothing in a pattern,
  escaped punctuation) is required, except a character a quantifier follows (``s?``, ``a*``);
* a group (``(...)``, ``(?:...)``, ``(?P<name>...)``) is read as a pattern of its own, and
  required unless a quantifier follows it; any other group (lookaround, conditional, comment,
  back-reference, scoped flags, atomic) requires nothing;
* alternatives (``a|b``) require what one of them requires: nothing, when one requires nothing;
* character classes, ``.``, anchors and escapes that are not plain characters (``\\d``,
  ``\\b``, ``\\1``, ``\\x41``) require nothing;
* inline global flags: ``(?x)`` skips whitespace and ``#`` comments as ``re`` does; under
  ``(?i)`` texts are compared in ASCII lower case, for ASCII URLs and texts only (Unicode case
  folding makes ``ſ`` match ``s``); any other pattern this reader cannot follow requires nothing.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from typing import Any, Union

from attrs import frozen

#: Inline global flags at the start of a pattern that this reader follows.
_FLAGS = re.compile(r"\(\?([aimsux]+)\)")
_QUANTIFIERS = "?*+{"
#: Characters with a meaning of their own outside a character class.
_SPECIAL = "\\[]()|.^$?*+{}"
#: A run of characters that stand for themselves (outside verbose mode, and in it).
_PLAIN = re.compile(r"[^\\\[\]()|.^$?*+{}]+")
_PLAIN_VERBOSE = re.compile(r"[^\\\[\]()|.^$?*+{}\s#]+")
#: A character class (a "]" first in it is itself).
_CLASS = re.compile(r"\[\^?\]?(?:\\.|[^\]\\])*\]", re.DOTALL)
#: A repeat count after an item (``{2}``, ``{1,3}``, ``{,4}``).
_REPEAT = re.compile(r"\{\d*(?:,\d*)?\}")
#: How a group whose contents are read starts (a plain, non-capturing or named group).
_READ_GROUP = re.compile(r"\((?:\?:|\?P<[^\W\d]\w*>|(?!\?))")


@frozen
class AllOf:
    """Every text and every :class:`OneOf` in *parts* is required."""

    parts: tuple[Union[str, OneOf], ...]  # noqa: UP007 -- a forward reference in a runtime annotation

    def met_by(self, text: str) -> bool:
        return all(part in text if isinstance(part, str) else part.met_by(text) for part in self.parts)


@frozen
class OneOf:
    """What one of *options* requires is required."""

    options: tuple[AllOf, ...]

    def met_by(self, text: str) -> bool:
        return any(option.met_by(text) for option in self.options)


@frozen
class Needs:
    """What every string a pattern matches contains (compared in ASCII lower case when
    *ignore_case*)."""

    required: AllOf | OneOf
    ignore_case: bool = False

    def met_by(self, url: str) -> bool:
        """Whether *url* may match the pattern."""
        if self.ignore_case:
            if not url.isascii():
                return True
            url = url.lower()
        return self.required.met_by(url)


class _UnreadableError(Exception):
    """A pattern this reader does not follow: it says nothing about it."""


def required_texts(pattern: object) -> Needs | None:
    """What every string ``re.match(pattern, ...)`` matches contains, or ``None`` when nothing
    is known (every string may match)."""
    if not isinstance(pattern, str):
        return None
    start, verbose, ignore_case = 0, False, False
    flags = _FLAGS.match(pattern)
    if flags is not None:
        verbose, ignore_case, start = "x" in flags.group(1), "i" in flags.group(1), flags.end()
    try:
        required, end = _read(pattern, start, verbose, nested=False)
    except (_UnreadableError, IndexError):
        return None
    if required is None or end != len(pattern):
        return None
    if ignore_case:
        texts = list(_texts(required))
        if not all(text.isascii() for text in texts):
            return None  # a non-ASCII letter may match an ASCII one
        required = _lower(required)
    return Needs(required, ignore_case)


def _texts(node: AllOf | OneOf) -> Iterable[str]:
    for part in node.parts if isinstance(node, AllOf) else node.options:
        if isinstance(part, str):
            yield part
        else:
            yield from _texts(part)


def _lower(node: AllOf | OneOf) -> AllOf | OneOf:
    if isinstance(node, OneOf):
        return OneOf(tuple(AllOf(tuple(_lower_part(p) for p in o.parts)) for o in node.options))
    return AllOf(tuple(_lower_part(p) for p in node.parts))


def _lower_part(part: str | OneOf) -> str | OneOf:
    if isinstance(part, str):
        return part.lower()
    found = _lower(part)
    assert isinstance(found, OneOf)
    return found


def _skip_ignored(pattern: str, i: int, verbose: bool) -> int:
    """Past whitespace and ``#`` comments (verbose mode only)."""
    while verbose and i < len(pattern):
        if pattern[i].isspace():
            i += 1
        elif pattern[i] == "#":
            end = pattern.find("\n", i)
            i = len(pattern) if end < 0 else end + 1
        else:
            break
    return i


def _skip_class(pattern: str, i: int) -> int:
    """Past the character class that starts at ``pattern[i] == "["``."""
    found = _CLASS.match(pattern, i)
    if found is None:
        raise _UnreadableError
    return found.end()


def _skip_group(pattern: str, i: int, verbose: bool) -> int:
    """Past the group that starts at ``pattern[i] == "("``, its contents not read."""
    depth, j = 0, i
    while j < len(pattern):
        if pattern.startswith("(?#", j):  # a comment: anything up to the first ")"
            end = pattern.find(")", j)
            if end < 0:
                raise _UnreadableError
            j = end + 1
            if depth == 0:
                return j
            continue
        c = pattern[j]
        if c == "\\":
            j += 2
        elif c == "[":
            j = _skip_class(pattern, j)
        elif c == "(":
            depth += 1
            j += 1
        elif c == ")":
            depth -= 1
            j += 1
            if depth == 0:
                return j
        else:
            j = max(j + 1, _skip_ignored(pattern, j, verbose))
    raise _UnreadableError


def _read(pattern: str, i: int, verbose: bool, *, nested: bool) -> tuple[AllOf | OneOf | None, int]:
    """What ``pattern[i:]`` requires, up to the ``)`` that closes it when *nested* (the index
    returned is past it), else to the end; ``None`` when it requires nothing."""
    options: list[list[str | OneOf]] = [[]]
    run: list[str] = []

    def cut() -> None:
        text = "".join(run)
        if text:
            options[-1].append(text)
        run.clear()

    end = len(pattern)

    def quantified(j: int) -> bool:
        if verbose:
            j = _skip_ignored(pattern, j, verbose)
        return j < end and pattern[j] in _QUANTIFIERS

    while True:
        if verbose:
            i = _skip_ignored(pattern, i, verbose)
        if i >= end:
            if nested:
                raise _UnreadableError
            break
        c = pattern[i]
        if c == ")":
            if not nested:
                raise _UnreadableError
            i += 1
            break
        if c == "\\":
            escaped = pattern[i + 1]
            i += 2
            if escaped.isalnum() or not escaped.isascii() or escaped.isspace():
                cut()  # a class (\d), an anchor (\b), a reference (\1), a code (\x41): not plain
                continue
            literal = escaped
        elif c == "[":
            cut()
            i = _skip_class(pattern, i)
            continue
        elif c == "(":
            cut()
            opening = _READ_GROUP.match(pattern, i)
            if opening is None:
                i = _skip_group(pattern, i, verbose)
                continue
            inner, i = _read(pattern, opening.end(), verbose, nested=True)
            if inner is not None and not quantified(i):
                if isinstance(inner, AllOf):
                    options[-1].extend(inner.parts)
                else:
                    options[-1].append(inner)
            continue
        elif c == "|":
            cut()
            options.append([])
            i += 1
            continue
        elif c == "{":
            cut()
            repeat = _REPEAT.match(pattern, i)  # "{2}", "{1,3}": not text ("{x}" is: read on)
            i = i + 1 if repeat is None else repeat.end()
            continue
        elif c in _SPECIAL:
            cut()
            i += 1
            continue
        else:
            plain = (_PLAIN_VERBOSE if verbose else _PLAIN).match(pattern, i)
            assert plain is not None  # c itself is plain
            i = plain.end()
            if quantified(i):  # the last character is optional or repeated
                run.append(plain.group()[:-1])
                cut()
            else:
                run.append(plain.group())
            continue
        if quantified(i):
            cut()  # optional or repeated: not a plain part of every match
            continue
        run.append(literal)
    cut()
    if any(not parts for parts in options):
        return None, i  # an alternative that requires nothing
    if len(options) == 1:
        return AllOf(tuple(options[0])), i
    return OneOf(tuple(AllOf(tuple(parts)) for parts in options)), i


def anchor(node: AllOf | OneOf) -> frozenset[str]:
    """Texts of which every string meeting *node* contains at least one, chosen to be rare
    (long): a text *node* requires, or for a group of alternatives one text of each."""
    if isinstance(node, OneOf):
        return frozenset().union(*(anchor(option) for option in node.options))
    best: frozenset[str] = frozenset()
    for part in node.parts:
        found = frozenset((part,)) if isinstance(part, str) else anchor(part)
        if found and (not best or _rarity(found) > _rarity(best)):
            best = found
    return best


def _rarity(texts: frozenset[str]) -> tuple[int, int]:
    return min(len(text) for text in texts), -len(texts)


@frozen
class _Check:
    """What an extractor needs of a URL, and texts of which the URL must hold one (one test of
    a set for all extractors at once)."""

    needs: tuple[Needs, ...]
    anchor: frozenset[str]
    ignore_case: bool


#: What each extractor class needs of a URL (read once per process); None: always try it.
_CHECKS: dict[Any, _Check | None] = {}
#: The texts of every anchor, in each case.
_ANCHOR_TEXTS: set[str] = set()
_ANCHOR_TEXTS_IGNORING_CASE: set[str] = set()


def extractor_needs(extractor: Any, plain: Container[object]) -> tuple[Needs, ...] | None:
    """What a URL needs for *extractor* to take it: for one of its patterns, what that needs.
    ``None`` when it has a ``suitable`` or a ``_match_valid_url`` of its own (not among
    *plain*, yt-dlp's functions that only match ``_VALID_URL``), or a pattern not read here."""
    check = _check(extractor, plain)
    return None if check is None else check.needs


def _check(extractor: Any, plain: Container[object]) -> _Check | None:
    if extractor in _CHECKS:
        return _CHECKS[extractor]
    patterns = getattr(extractor, "_VALID_URL", None)
    check = None
    own = (getattr(getattr(extractor, name, None), "__func__", None) for name in ("suitable", "_match_valid_url"))
    if all(function in plain for function in own) and patterns is not False:
        found = [required_texts(p) for p in ((patterns,) if isinstance(patterns, str) else patterns or (None,))]
        needs = tuple(n for n in found if n is not None)
        ignore_case = {n.ignore_case for n in needs}
        if needs and len(needs) == len(found) and len(ignore_case) == 1:
            anchors = [anchor(n.required) for n in needs]
            if all(anchors):
                check = _Check(needs, frozenset().union(*anchors), ignore_case.pop())
                (_ANCHOR_TEXTS_IGNORING_CASE if check.ignore_case else _ANCHOR_TEXTS).update(check.anchor)
            else:
                check = _Check(needs, frozenset(), False)  # no anchor: its needs are read each time
    _CHECKS[extractor] = check
    return check


def first_suitable(extractors: dict[str, Any], url: str, plain: Container[object]) -> str | None:
    """The key of the first extractor in *extractors* (yt-dlp's ordered ``{key: class}``) whose
    own ``suitable`` takes *url*; those whose patterns need what *url* lacks are passed over.
    ``None`` when none takes it."""
    checks = [(key, extractor, _check(extractor, plain)) for key, extractor in extractors.items()]
    present = {text for text in _ANCHOR_TEXTS if text in url}
    lowered = url.lower() if url.isascii() else None
    present_ignoring_case = (
        None if lowered is None else {text for text in _ANCHOR_TEXTS_IGNORING_CASE if text in lowered}
    )
    for key, extractor, check in checks:
        if check is not None:
            if check.anchor:
                if not check.ignore_case:
                    if check.anchor.isdisjoint(present):
                        continue
                elif present_ignoring_case is not None and check.anchor.isdisjoint(present_ignoring_case):
                    continue
            # Its needs are read only while its pattern is not compiled: once it is (it was
            # tried for an earlier URL), matching it is quicker.
            if "_VALID_URL_RE" not in extractor.__dict__ and not any(n.met_by(url) for n in check.needs):
                continue
        if extractor.suitable(url):
            return key
    return None
