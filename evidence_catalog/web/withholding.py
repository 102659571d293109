"""What the viewer withholds when it was not started with ``--show-sensitive``: what a redacted
export of the flagged records withholds, everywhere the viewer shows anything.

The plan is made from every record that carries a flag (:func:`plan_for`), of every kind of
flag, and made again whenever the custody log has grown (a flag set while the viewer runs
counts at once).  With it:

* a record is shown as :func:`~evidence_catalog.interchange.redact.apply_plan` redacts it (each
  flagged field's text replaced by ``[withheld]`` wherever it occurs, the metadata of withheld
  files left out), so are the custody events (:meth:`Withholding.event`) and search hits;
* a withheld file's bytes are never served, nor its thumbnail, nor anything derived from it;
* a file is served only after its bytes were searched for every withheld text
  (:meth:`Withholding.carries`), as a redacted export searches every file it writes: a
  picture's caption, an SVG's text or a web archive's pages can hold a name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import attrs

from evidence_catalog import model
from evidence_catalog.custody import disclose, is_salted
from evidence_catalog.interchange.redact import (
    WITHHELD_MARK,
    Redaction,
    RedactionPlan,
    apply_plan,
    needles,
    plan_redaction,
    redact_document,
)

#: Every kind of flag: the viewer withholds them all.
ALL_KINDS = frozenset(kind.value for kind in model.SensitivityKind)


@attrs.frozen
class Withholding:
    """What to withhold (``plan`` ``None``: nothing, the viewer shows everything)."""

    plan: RedactionPlan | None
    #: SHA-256 -> whether the file holds a withheld text: a file is searched once per plan
    #: (a video player's range requests, or a page's reloads, do not each read it again).
    _searched: dict[str, bool] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def active(self) -> bool:
        """Whether anything is withheld."""
        return self.plan is not None and bool(self.plan.artifacts or self.plan.values)

    def record(self, record: model.EvidenceRecord) -> Redaction:
        """*record* as the viewer shows it."""
        if self.plan is None:
            return Redaction(record=record)
        return apply_plan(record, self.plan)

    def event(self, document: dict[str, Any], *, after_whole: bool = False) -> tuple[dict[str, Any], bool]:
        """A custody event's document as the viewer shows it, and whether text was withheld
        (as a redacted bag shows it).  A salted event with withheld text loses its secret and
        gains a ``disclosure`` (:func:`~evidence_catalog.custody.disclose`): its hash stays
        checkable, no guess at a withheld value can be.  An event hashed before salted
        commitments that holds withheld text is shown as its number only (``withheld:
        whole``): its hash is a digest of its text.  *after_whole*: the event before this one
        was withheld whole, so this one's ``prev_hash`` (that event's hash) is withheld too."""
        if self.plan is None or not self.active:
            return document, False
        redacted, changed = redact_document(document, self.plan.values, self.plan.artifacts)
        if not is_salted(document):
            if changed or after_whole:
                return {"seq": document["seq"], "withheld": "whole"}, True
            return document, False
        if not changed and not after_whole:
            return document, False
        return disclose(document, redacted, WITHHELD_MARK, also=("/prev_hash",) if after_whole else ()), True

    def text(self, value: str) -> str:
        """*value* with every withheld text in it replaced."""
        if self.plan is None or not self.plan.values:
            return value
        redacted, _ = redact_document(value, self.plan.values, ())
        return str(redacted)

    def artifact_reasons(self, sha256: str) -> tuple[tuple[str, str], ...]:
        """Why the plan withholds these bytes everywhere (empty: it does not)."""
        if self.plan is None:
            return ()
        return tuple(self.plan.artifacts.get(sha256, ()))

    def carries(self, sha256: str, media_type: str, open_blob: Callable[[], BinaryIO]) -> bool:
        """Whether the bytes hold a withheld text in any form an export looks for
        (:func:`~evidence_catalog.interchange.redact.needles`; a web archive's pages as its
        reader sees them), whatever their type: as a redacted export searches them."""
        if self.plan is None or not self.plan.values:
            return False
        found = self._searched.get(sha256)
        if found is None:
            found = self._searched[sha256] = self._search(media_type, open_blob)
        return found

    def _search(self, media_type: str, open_blob: Callable[[], BinaryIO]) -> bool:
        from evidence_catalog.interchange.export import _searchable

        assert self.plan is not None
        searched = [needle for value in self.plan.values for needle in needles(value)]
        if not searched:
            return False
        overlap = max(len(needle) for needle in searched) - 1
        tail = b""
        with open_blob() as stream:
            for block in _searchable(stream, media_type, set(self.plan.values)):
                window = tail + block
                if any(needle in window for needle in searched):
                    return True
                tail = window[-overlap:] if overlap else b""
        return False


class WithholdingCache:
    """The plan, made again when the log has grown (thread-safe: pages are served from a
    pool of threads)."""

    def __init__(self, show_sensitive: bool) -> None:
        self.show_sensitive = show_sensitive
        self._lock = threading.Lock()
        self._made: tuple[int, Withholding] | None = None

    def get(self, log_size: int, flagged: Callable[[], Sequence[model.EvidenceRecord]]) -> Withholding:
        """The withholding for a log of *log_size* events (*flagged*: the flagged records)."""
        if self.show_sensitive:
            return Withholding(plan=None)
        with self._lock:
            if self._made is not None and self._made[0] == log_size:
                return self._made[1]
            made = Withholding(plan=plan_redaction(flagged(), ALL_KINDS))
            self._made = (log_size, made)
            return made


__all__ = ["ALL_KINDS", "WITHHELD_MARK", "Withholding", "WithholdingCache"]
