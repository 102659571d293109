"""The extractor for a URL found without compiling every extractor's pattern
(``evidence_catalog/capture/matching.py``): what a pattern is read to require is required of
every string it matches, and the extractor found is the one yt-dlp's own loop finds.

Checked against yt-dlp's real patterns and test URLs, and against patterns made up by
hypothesis, with Python's own ``re`` as the judge.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yt_dlp.extractor import gen_extractor_classes

from evidence_catalog.capture.matching import AllOf, Needs, OneOf, first_suitable, required_texts
from evidence_catalog.capture.youtubedl import _plain_suitable

EXTRACTORS = {ie.ie_key(): ie for ie in gen_extractor_classes()}
PLAIN = _plain_suitable()
PATTERNS = sorted(
    {
        p
        for ie in EXTRACTORS.values()
        for p in ((ie._VALID_URL,) if isinstance(ie._VALID_URL, str) else ie._VALID_URL or ())
    }
)


def yt_dlp_choice(url: str) -> str | None:
    """yt-dlp's own loop (``YoutubeDL.extract_info``): the first extractor whose suitable takes it."""
    return next((key for key, ie in EXTRACTORS.items() if ie.suitable(url)), None)


@pytest.mark.parametrize(
    ("pattern", "required"),
    [
        (r"https?://(?:www\.)?example\.com/v/(?P<id>\d+)", AllOf(("http", "://", "example.com/v/"))),
        (r"https?://a\.b/(?:x|y)z", AllOf(("http", "://a.b/", OneOf((AllOf(("x",)), AllOf(("y",)))), "z"))),
        (
            r"https?://(?P<host>foo\.org|bar\.net)/",
            AllOf(("http", "://", OneOf((AllOf(("foo.org",)), AllOf(("bar.net",)))), "/")),
        ),
        (r"x{2}y", AllOf(("y",))),  # the 2 counts x's: it is not text
        (r"a{x}", AllOf(("x",))),  # not a repeat count: "{x}" is text
        (r"ab?c", AllOf(("a", "c"))),
        (r"[]a-z]+done", AllOf(("done",))),
        (r"(?=look)here", AllOf(("here",))),
        (r"(?#a ( comment)text", AllOf(("text",))),
        ("(?x) https?:// # a comment (with a paren\n  example\\.org / v", AllOf(("http", "://example.org/v"))),
        (r"(?i)HTTPS?://Example\.COM", AllOf(("http", "://example.com"))),
        (r"\x41bc\u00e9d\N{DIGIT ONE}e\101f", AllOf(("bc", "d", "e", "f"))),  # escapes stand for other text
        (r"(a)(b)\12z", AllOf(("a", "b", "z"))),  # a back-reference, and its digits
    ],
)
def test_what_a_pattern_is_read_to_require(pattern: str, required: AllOf) -> None:
    needs = required_texts(pattern)
    assert needs is not None and needs.required == required


@pytest.mark.parametrize(
    "pattern",
    [
        r".*",  # the generic extractor
        r"https?://x\.com|.*",  # one alternative requires nothing
        r"(?i)https?://ſtraße\.de",  # "ſ" matches "s" when case is ignored: not read
        r"unbalanced)",
        "trailing\\",
    ],
)
def test_what_is_not_read_requires_nothing(pattern: str) -> None:
    assert required_texts(pattern) is None


def test_case_is_ignored_only_where_it_can_be_in_ascii() -> None:
    needs = required_texts(r"(?i)https?://example\.com/")
    assert needs is not None and needs.ignore_case
    assert needs.met_by("HTTPS://EXAMPLE.COM/x")
    assert not needs.met_by("https://other.org/")
    assert needs.met_by("https://ſomething.org/")  # not ASCII: anything may match


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_every_string_a_yt_dlp_pattern_matches_meets_what_it_is_read_to_require(data: st.DataObject) -> None:
    pattern = data.draw(st.sampled_from(PATTERNS))
    needs = required_texts(pattern)
    assume(needs is not None)
    assert needs is not None
    try:
        compiled = re.compile(pattern)
        strategy = st.from_regex(compiled)
        text = data.draw(strategy)
    except Exception:
        assume(False)
        raise
    assert compiled.search(text)
    assert needs.met_by(text), (pattern, text)


#: Pieces of made-up patterns: plain text, escapes, classes, groups of every kind, alternatives,
#: quantifiers (including repeat counts and braces that are text).
_ATOMS = st.sampled_from(
    [
        *("a", "b", "ab", "x.y", r"\.", r"\d", r"\w+", "[ab]", "[]a]", "[^/]", ".", "-", "/", ":", "%", "é", " ", "#"),
        *("{", "}", "ſ", "K"),
        # escapes that stand for other text than their own
        *(r"\x41", r"\u00e9", r"\U0001F600", r"\N{DIGIT ONE}", r"\101", r"\0", r"\t", r"\\", r"\-", r"(a)\1"),
    ]
)
_QUANT = st.sampled_from(["", "", "", "?", "*", "+", "{2}", "{1,3}", "??", "{,2}"])
#: A group's quantifiers: bounded.  A group that may repeat without bound around parts that do
#: too (``([ab]??\.+.|\0*)*``) makes Python's backtracking matcher, which checks every string
#: drawn, take exponential time on a string it fails; one such pattern kept a run busy for
#: over ten minutes.  Bounded, the same kinds of repetition are tried (optional, repeated).
_GROUP_QUANT = st.sampled_from(["", "", "", "?", "{2}", "{1,3}", "??", "{,2}"])


@st.composite
def made_up_patterns(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            inner = draw(made_up_patterns(depth + 1))
            name = f"(?P<g{draw(st.integers(0, 99))}>"
            opening = draw(st.sampled_from(["(", "(?:", name, "(?=", "(?!", "(?<=a)("]))
            if opening == "(?<=a)(":
                parts.append(f"(?<=a)({inner})")
            else:
                parts.append(f"{opening}{inner})")
            parts[-1] += draw(_GROUP_QUANT)
        else:
            parts.append(draw(_ATOMS))
            parts[-1] += draw(_QUANT) if parts[-1] not in ("{", "}") else ""
    body = "".join(parts)
    if draw(st.integers(0, 4)) == 0:
        body += "|" + draw(made_up_patterns(depth + 1))
    return body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pattern=made_up_patterns(), flags=st.sampled_from(["", "(?i)", "(?x)", "(?ix)"]), data=st.data())
def test_every_string_a_made_up_pattern_matches_meets_what_it_is_read_to_require(
    pattern: str, flags: str, data: st.DataObject
) -> None:
    pattern = flags + pattern
    try:
        compiled = re.compile(pattern)
    except re.error:
        assume(False)
        raise
    needs = required_texts(pattern)
    assume(needs is not None)
    assert needs is not None
    try:
        text = data.draw(st.from_regex(compiled))
    except Exception:
        assume(False)
        raise
    if compiled.search(text):
        assert needs.met_by(text), (pattern, text)


def _test_urls() -> list[str]:
    urls = set()
    for ie in EXTRACTORS.values():
        try:
            cases = list(ie.get_testcases(include_onlymatching=True))
        except Exception:  # noqa: BLE001 -- an extractor whose tests cannot be listed
            continue
        urls.update(case["url"] for case in cases if isinstance(case.get("url"), str))
    return sorted(urls)


@pytest.mark.slow
def test_the_extractor_found_is_yt_dlps_own_choice_for_its_test_urls() -> None:
    urls = _test_urls()
    assert len(urls) > 1000
    sample = random.Random(22).sample(urls, 1500)
    for url in sample:
        assert first_suitable(EXTRACTORS, url, PLAIN) == yt_dlp_choice(url), url


def test_the_extractor_found_is_yt_dlps_own_choice() -> None:
    for url in [
        "http://127.0.0.1:8000/clip.mp4",
        "https://www.youtube.com/watch?v=BaW_jenozKc",
        "https://youtu.be/BaW_jenozKc",
        "https://vimeo.com/56015672",
        "https://x.com/user/status/1234567890",
        "https://www.tiktok.com/@user/video/7000000000000000000",
        "https://t.me/channel/123",
        "https://www.facebook.com/watch/?v=10153231379946729",
        "https://EXAMPLE.org/Video.MP4",
        "https://www.dailymotion.com/video/x5kesuj",
        "https://peertube.example.org/w/9c9de5e8-0a1e-484a-b099-e80766180a6d",
        "not a url at all",
    ]:
        assert first_suitable(EXTRACTORS, url, PLAIN) == yt_dlp_choice(url), url


def test_an_extractor_with_a_suitable_of_its_own_is_always_tried() -> None:
    class Own:
        _VALID_URL = r"https?://never\.example/"

        @classmethod
        def suitable(cls, url: str) -> bool:
            return url.endswith("!")

    extractors: dict[str, Any] = {"Own": Own, **EXTRACTORS}
    assert first_suitable(extractors, "https://elsewhere.example/!", PLAIN) == "Own"
    assert isinstance(required_texts(Own._VALID_URL), Needs)
