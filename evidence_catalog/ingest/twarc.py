"""Tweets as twarc2 writes them: JSON Lines, each line one X API v2 response page
(``data``: the tweets, ``includes``: the users, media and referenced tweets they point to).

Each tweet becomes a report with its id (identity ``twitter:<id>``), author (handle and id),
time, text, mentions, hashtags, links and, for a retweet, who reposted whose post.  A line that
is not JSON, or not a response page, is an error naming its line: nothing of the file is
ingested (all or nothing).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from evidence_catalog import model
from evidence_catalog.errors import InputError
from evidence_catalog.ingest.digest import report_identity


def looks_like_twarc(raw: bytes) -> bool:
    """A cheap test used to pick the format: the first line is a JSON object with ``data``."""
    first = raw.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return False
    try:
        page = json.loads(first)
    except ValueError:
        return False
    return isinstance(page, dict) and "data" in page


def _pages(text: str, where: str, skipped: list[tuple[int, str]] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            page = json.loads(line)
        except json.JSONDecodeError as exc:
            if skipped is None:
                raise InputError(f"line {number} is not JSON ({exc.msg}); nothing was ingested", where=where) from exc
            skipped.append((number, f"line {number} is not JSON ({exc.msg}); its tweets were left out"))
            continue
        if not isinstance(page, dict) or not isinstance(page.get("data", []), list | dict):
            if skipped is None:
                raise InputError(f"line {number} is not a twarc2 response page (no 'data')", where=where)
            skipped.append((number, f"line {number} is not a twarc2 response page (no 'data'); left out"))
            continue
        yield number, page


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else None


def parse_twarc(
    text: str, *, where: str, skipped: list[tuple[int, str]] | None = None
) -> tuple[list[tuple[model.Report, str, str]], tuple[tuple[int, str], ...]]:
    """Reports (with a record title and where each came from) and warnings from twarc2 JSONL.

    A line that is not a response page is an :class:`InputError`, or, when a *skipped* list is
    given (``--keep-going``), is left out and named there."""
    prepared: list[tuple[model.Report, str, str]] = []
    warnings: list[tuple[int, str]] = []
    for number, page in _pages(text, where, skipped):
        includes = _dict(page.get("includes"))
        users = {u.get("id"): u for u in includes.get("users", ()) if isinstance(u, dict)}
        referenced = {t.get("id"): t for t in includes.get("tweets", ()) if isinstance(t, dict)}
        tweets = page["data"] if isinstance(page.get("data"), list) else [page.get("data")]
        for tweet in tweets:
            if not isinstance(tweet, dict) or not isinstance(tweet.get("id"), str):
                warnings.append((number, "a tweet without an id was left out"))
                continue
            prepared.append(_report(tweet, users, referenced, number))
    if not prepared:
        raise InputError("holds no tweets", where=where)
    return prepared, tuple(warnings)


def _report(
    tweet: dict[str, Any], users: dict[Any, dict[str, Any]], referenced: dict[Any, dict[str, Any]], line: int
) -> tuple[model.Report, str, str]:
    author = users.get(tweet.get("author_id"), {})
    handle = author.get("username") if isinstance(author.get("username"), str) else None
    entities = _dict(tweet.get("entities"))
    mentions = [m.get("username") for m in entities.get("mentions", ()) if isinstance(m, dict)]
    hashtags = [h.get("tag") for h in entities.get("hashtags", ()) if isinstance(h, dict)]
    links = [u.get("expanded_url") or u.get("url") for u in entities.get("urls", ()) if isinstance(u, dict)]
    repost = None
    for ref in tweet.get("referenced_tweets", ()) or ():
        if isinstance(ref, dict) and ref.get("type") == "retweeted" and handle:
            original = referenced.get(ref.get("id"), {})
            original_author = users.get(original.get("author_id"), {}).get("username")
            if isinstance(original_author, str):
                repost = model.Repost(
                    reposted_by=handle, original_author=original_author, original_post_id=ref.get("id")
                )
    tweet_id = tweet["id"]
    text = _str(tweet.get("text")) or ""
    url = f"https://x.com/{handle}/status/{tweet_id}" if handle else f"https://x.com/i/status/{tweet_id}"
    report = model.Report(
        id=model.new_id(),
        source=model.Source(
            platform="Twitter", account_handle=handle, account_id=_str(tweet.get("author_id")), url=None
        ),
        text=text,
        author=handle,
        language=_str(tweet.get("lang")),
        published_at=_time(tweet.get("created_at")),
        post_id=tweet_id,
        url=url,
        url_known=True,
        mentions=tuple(dict.fromkeys(m for m in mentions if isinstance(m, str))),
        hashtags=tuple(dict.fromkeys(h for h in hashtags if isinstance(h, str))),
        links=tuple(dict.fromkeys(link for link in links if isinstance(link, str))),
        repost=repost,
        identity=report_identity(platform="twitter", post_id=tweet_id, feed=None, author=handle, text=text),
    )
    title = text.split("\n", 1)[0] or f"tweet {tweet_id}"
    return report, title, f"twarc2 JSONL line {line}, tweet {tweet_id}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
