"""An event's committed form written from docs/verification.md alone, for tests that check the
library's hashes and leaves against an independent reading of the documented rule."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import attrs
import rfc8785

from evidence_catalog import custody, model
from evidence_catalog.serialize import unstructure


def committed_by_hand(event: dict[str, Any]) -> dict[str, Any]:
    """What an event's hash covers: every member but ``hash`` and ``schema``, and for a salted
    event (``details.salt``) each text of ``prev_hash``, ``actor`` and ``details`` and each
    ``metadata`` member as its salted digest."""
    form = {name: value for name, value in event.items() if name not in ("hash", "schema")}
    secret = event["details"].get("salt") if isinstance(event.get("details"), dict) else None
    if secret is None:
        return form

    def digest(pointer: str, value: Any) -> str:
        salt = hmac.new(bytes.fromhex(secret), pointer.encode(), hashlib.sha256).hexdigest()[:32]
        return "sd:" + hashlib.sha256(rfc8785.dumps([salt, value])).hexdigest()

    def walk(node: Any, pointer: str) -> Any:
        if isinstance(node, str):
            return digest(pointer, node)
        if isinstance(node, list):
            return [walk(item, f"{pointer}/{i}") for i, item in enumerate(node)]
        if isinstance(node, dict):
            steps = {key: pointer + "/" + key.replace("~", "~0").replace("/", "~1") for key in node}
            return {
                key: digest(steps[key], value) if key == "metadata" else walk(value, steps[key])
                for key, value in node.items()
                if steps[key] != "/details/salt"
            }
        return node

    for name in ("prev_hash", "actor", "details"):
        form[name] = walk(form[name], "/" + name)
    return form


def leaf_by_hand(event: dict[str, Any]) -> bytes:
    """The event's RFC 6962 leaf: SHA-256(0x00 || canonical JSON of its committed form with ``hash``)."""
    return hashlib.sha256(b"\x00" + rfc8785.dumps({**committed_by_hand(event), "hash": event["hash"]})).digest()


def unsalted_linked_event(
    previous: model.CustodyEvent | custody.ChainHead | None,
    *,
    at: dt.datetime,
    actor: model.Agent,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> tuple[model.CustodyEvent, dict[str, Any]]:
    """An event as versions before salted commitments made it: hashed over its own text."""
    draft = model.CustodyEvent(
        seq=1 if previous is None else previous.seq + 1,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        prev_hash=model.GENESIS_HASH if previous is None else previous.hash,
        hash=model.GENESIS_HASH,
        details={k: v for k, v in (details or {}).items() if k != "salt"},
    )
    document = unstructure(draft)
    document["hash"] = hashlib.sha256(rfc8785.dumps(committed_by_hand(document))).hexdigest()
    return attrs.evolve(draft, hash=document["hash"]), document


def unsalted_sealed_event(
    previous: model.CustodyEvent | custody.ChainHead | None, **draft: Any
) -> tuple[model.CustodyEvent, bytes]:
    """:func:`unsalted_linked_event` as appending takes it (``sealing.sealed_event``): the event
    and its Merkle leaf."""
    event, document = unsalted_linked_event(previous, **draft)
    return event, custody.event_leaf(document)
