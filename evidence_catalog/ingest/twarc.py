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
from evidence_catalog.ingest.checks import JSONLimitError, may_hold_non_text, read_json, shown, text_problem
from evidence_catalog.ingest.digest import report_identity
from evidence_catalog.serialize import unstructure


def looks_like_twarc(raw: bytes) -> bool:
    """A cheap test used to pick the format: the first line is a JSON object with ``data``."""
    first = raw.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return False
    try:
        page = read_json(first)
    except JSONLimitError:  # read as twarc2, whose reader then says what is wrong with the line
        return b'"data"' in first[:4096]
    except ValueError:
        return False
    return isinstance(page, dict) and "data" in page


def _pages(text: str, where: str, skipped: list[tuple[int, str]] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            page = read_json(line)
        except JSONLimitError as exc:
            if skipped is None:
                raise InputError(f"line {number} cannot be read: {exc}; nothing was ingested", where=where) from None
            skipped.append((number, f"line {number} cannot be read: {exc}; its tweets were left out"))
            continue
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
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else None
    except (OverflowError, ValueError):  # not a time, or one past year 9999 once in UTC
        return None


def parse_twarc(
    text: str, *, where: str, skipped: list[tuple[int, str]] | None = None
) -> tuple[list[tuple[model.Report, str, str]], tuple[tuple[int, str], ...]]:
    """Reports (with a record title and where each came from) and warnings from twarc2 JSONL.

    A line that is not a response page is an :class:`InputError`, or, when a *skipped* list is
    given (``--keep-going``), is left out and named there."""
    prepared: list[tuple[model.Report, str, str]] = []
    warnings: list[tuple[int, str]] = []
    check = may_hold_non_text(text)
    for number, page in _pages(text, where, skipped):
        includes = _dict(page.get("includes"))
        # Looked up by id: only ids that are text (a list or an object as an id names nothing).
        users = {u["id"]: u for u in _list(includes.get("users")) if isinstance(u, dict) and _str(u.get("id"))}
        referenced = {t["id"]: t for t in _list(includes.get("tweets")) if isinstance(t, dict) and _str(t.get("id"))}
        tweets = page["data"] if isinstance(page.get("data"), list) else [page.get("data")]
        for tweet in tweets:
            if not isinstance(tweet, dict) or not _str(tweet.get("id")):
                warnings.append((number, "a tweet without an id was left out"))
                continue
            found = _report(tweet, users, referenced, number)
            problem = text_problem(unstructure(found[0])) if check else None
            if problem is not None:
                reason = f"line {number}, tweet {shown(tweet['id'])}: its {problem}"
                if skipped is None:
                    raise InputError(f"{reason}; nothing was ingested", where=where)
                skipped.append((number, f"{reason}; left out"))
                continue
            prepared.append(found)
    if not prepared:
        raise InputError("holds no tweets", where=where)
    return prepared, tuple(warnings)


def _report(
    tweet: dict[str, Any], users: dict[Any, dict[str, Any]], referenced: dict[Any, dict[str, Any]], line: int
) -> tuple[model.Report, str, str]:
    author = users.get(_str(tweet.get("author_id")), {})
    handle = _name(author.get("username"))
    entities = _dict(tweet.get("entities"))
    mentions = [m.get("username") for m in _list(entities.get("mentions")) if isinstance(m, dict)]
    hashtags = [h.get("tag") for h in _list(entities.get("hashtags")) if isinstance(h, dict)]
    links = [u.get("expanded_url") or u.get("url") for u in _list(entities.get("urls")) if isinstance(u, dict)]
    repost = None
    for ref in _list(tweet.get("referenced_tweets")):
        if isinstance(ref, dict) and ref.get("type") == "retweeted" and handle and _str(ref.get("id")):
            original = referenced.get(ref["id"], {})
            original_author = _name(users.get(_str(original.get("author_id")), {}).get("username"))
            if original_author is not None:
                repost = model.Repost(reposted_by=handle, original_author=original_author, original_post_id=ref["id"])
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
        mentions=tuple(dict.fromkeys(m for m in mentions if _name(m))),
        hashtags=tuple(dict.fromkeys(h for h in hashtags if _name(h))),
        links=tuple(dict.fromkeys(link for link in links if _name(link))),
        repost=repost,
        identity=report_identity(platform="twitter", post_id=tweet_id, feed=None, author=handle, text=text),
    )
    title = text.split("\n", 1)[0] or f"tweet {tweet_id}"
    return report, title, f"twarc2 JSONL line {line}, tweet {tweet_id}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(value: Any) -> str | None:
    """A handle, tag or link: text that is not blank."""
    return value if isinstance(value, str) and value.strip() else None
