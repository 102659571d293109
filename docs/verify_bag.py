#!/usr/bin/env python3
"""Check an evidence-catalog export bag with the Python standard library and ``openssl`` only.

    python3 verify_bag.py BAG [--tsa-ca CA.pem]

It checks, and prints one line per check (``OK`` or ``PROBLEM``):

1. every payload and tag file against ``manifest-sha256.txt`` / ``tagmanifest-sha256.txt``, that
   ``data/`` holds exactly the files listed, and the ``Payload-Oxum`` of ``bag-info.txt``;
2. each custody event's own hash: SHA-256 of the RFC 8785 canonical JSON of the event's
   committed form -- the event without its ``hash`` and ``schema`` members where, when it holds a
   secret in ``details.salt``, each text value of ``prev_hash``, ``actor`` and ``details`` and
   each ``metadata`` member is replaced by "sd:" + hex SHA-256 of canonical [salt, value], the
   value's salt being the first 32 hex digits of HMAC-SHA256(secret, its JSON Pointer).  In a
   redacted bag an event that withholds values carries, instead of its secret, the salts of the
   values it shows and the digests of those it withholds (``disclosure``): each is named in a
   ``WITHHELD`` line, and its hash still checks.  An event written before salted commitments
   that held a withheld value is shown as ``{"seq": N, "withheld": "whole"}``.  When the bag
   holds the whole log: each ``prev_hash`` link and that sequence numbers run 1, 2, 3 ...;
3. the Merkle tree (RFC 6962): each event's leaf is SHA-256(0x00 || canonical JSON of its
   committed form with ``hash``); the whole log's root, or each event's inclusion proof, must
   give the root in the signed checkpoint ``data/log/checkpoint.note``;
4. the checkpoint's Ed25519 signature (C2SP signed note), with ``openssl pkeyutl -verify`` and
   the log's public key ``data/log/log.pub``; the key id in the signature line must be the one of
   ``data/log/log.vkey``;
5. each artifact file of a record (``data/records/ID/artifacts/``): its SHA-256 must be one that
   a custody event about that record (its ``subject``) holds, as a ``sha256`` or ``..._sha256``
   member of its details -- so that the events, and the checkpoint over them, vouch for the
   bytes, not only the manifests, which anyone who edits a file can write again (where a
   redaction withheld those events or digests, this is said and named in the last line);
6. each RFC 3161 token in ``data/log/timestamps/`` over the checkpoint note it stamps, with
   ``openssl ts -verify`` against the TSA's CA certificate given with ``--tsa-ca``.  With
   ``--tsa-ca``, a bag that holds no token is a problem (the time-stamp asked for was not
   checked), and a CA file that does not exist is a usage error.

Files are read a block at a time and ``custody.jsonl`` a line at a time: memory does not grow
with the size of a file (a bag of one 100 GiB video is checked in a few MiB).

The last line says ``verified`` only when every check passed, and names what the bag did not
let it check (a token without ``--tsa-ca``, a bag without a checkpoint).  Exit code 0 when every
check passed, 1 when one failed, 2 for a usage error.  Nothing here
comes from evidence-catalog: it is written from the standards, to be read and audited.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

problems = 0
#: What the bag did not let this script check (said in the last line, so that "verified" is
#: never read as more than it is).
not_checked: list[str] = []
#: (event, JSON Pointer) of each value a redaction withheld, and events withheld whole.
withheld_values: list[tuple[int, str]] = []
withheld_events: list[int] = []
#: The SHA-256 values the custody events about each record (by subject) hold.
committed: dict[str, set[str]] = {}


def report(ok: bool, text: str) -> None:
    global problems
    problems += 0 if ok else 1
    print(("OK       " if ok else "PROBLEM  ") + text)


# -- RFC 8785 (JSON Canonicalization Scheme) ------------------------------------------------------


def es_number(value: float) -> str:
    """A number as ECMAScript's Number.prototype.toString writes it (RFC 8785 section 3.2.2.3)."""
    if isinstance(value, bool):
        raise TypeError("not a number")
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise ValueError("integer outside the IEEE 754 exact range")
        return str(value)
    if not math.isfinite(value):
        raise ValueError("NaN and Infinity are not JSON")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    # Decimal exponent n such that value = 0.digits * 10**n.
    n = len(whole.lstrip("0")) if whole.strip("0") else -(len(fraction) - len(fraction.lstrip("0")))
    n += int(exponent or 0)
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return sign + text


def canonical(value: object) -> str:
    """RFC 8785 canonical JSON text."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return es_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(value[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {type(value).__name__}")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read a block at a time: memory does not grow with the file."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as stream:
        block = bytearray(BLOCK)
        view = memoryview(block)
        while True:
            n = stream.readinto(view)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


def text_lines(path: Path):
    """The lines of a UTF-8 text file, without their line ends, read one at a time."""
    with open(path, encoding="utf-8", newline="") as stream:
        for line in stream:
            yield line.rstrip("\r\n")


# -- RFC 6962 -------------------------------------------------------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """The Merkle tree hash of leaf hashes (RFC 6962 section 2.1)."""
    if not leaves:
        return sha256(b"")
    level = list(leaves)
    while len(level) > 1:  # pairing left to right gives the RFC's tree: an odd last node moves up
        level = [sha256(b"\x01" + level[i] + level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]  # fmt: skip
    return level[0]


def root_from_proof(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# -- the checks -----------------------------------------------------------------------------------


def check_manifests(bag: Path) -> dict[str, str]:
    listed: dict[str, str] = {}
    for line in text_lines(bag / "manifest-sha256.txt"):
        if not line:
            continue
        digest, _, path = line.partition(" ")
        listed[path.strip()] = digest
    present = {p.relative_to(bag).as_posix() for p in (bag / "data").rglob("*") if p.is_file() or p.is_symlink()}
    report(set(listed) == present, f"data/ holds exactly the {len(listed)} files manifest-sha256.txt lists")
    bad = [p for p, d in listed.items() if p in present and file_sha256(bag / p) != d]
    report(not bad, "every payload file has its SHA-256" + (f" (not: {', '.join(bad[:3])})" if bad else ""))
    for line in text_lines(bag / "tagmanifest-sha256.txt"):
        if not line:
            continue
        digest, _, path = line.partition(" ")
        path = path.strip()
        report(file_sha256(bag / path) == digest, f"tag file {path} has its SHA-256")
    info = {}
    for line in (bag / "bag-info.txt").read_text(encoding="utf-8").splitlines():
        label, _, value = line.partition(":")
        info[label.strip()] = value.strip()
    octets = sum((bag / p).stat().st_size for p in present)
    report(info.get("Payload-Oxum") == f"{octets}.{len(present)}", f"Payload-Oxum is {octets}.{len(present)}")
    return listed


def digests_held(value: object, found: set[str], key: str = "") -> None:
    """Add to *found* every SHA-256 (64 hex digits) held in *value* as a ``sha256`` or
    ``..._sha256`` member, at any depth."""
    if isinstance(value, dict):
        for name, item in value.items():
            digests_held(item, found, name)
    elif isinstance(value, list):
        for item in value:
            digests_held(item, found, key)
    elif isinstance(value, str) and (key == "sha256" or key.endswith("_sha256")) and len(value) == 64:
        found.add(value)


def check_artifacts(listed: dict[str, str]) -> None:
    """Each artifact file of a record has a SHA-256 the custody events about that record hold."""
    files = 0
    unvouched = []
    for path, digest in sorted(listed.items()):
        parts = path.split("/")
        if len(parts) != 5 or parts[:2] != ["data", "records"] or parts[3] != "artifacts":
            continue
        files += 1
        if digest not in committed.get(parts[2], ()):
            unvouched.append(path)
    text = f"each of the {files} artifact files has a SHA-256 the custody events about its record hold"
    if unvouched and (withheld_events or any(pointer.endswith("sha256") for _, pointer in withheld_values)):
        # A redaction withheld what would vouch for them: said, not passed.
        print(f"SKIPPED  {text} (not shown: {', '.join(unvouched[:3])}; the events that hold them are withheld)")
        not_checked.append(f"{len(unvouched)} artifact file(s) against the custody events (withheld)")
        return
    report(not unvouched, text + (f" (not: {', '.join(unvouched[:3])})" if unvouched else ""))


# -- salted commitments (custody-event schema 1.1.0) ----------------------------------------------


def pointer_step(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")  # RFC 6901


def value_digest(salt: str, value: object) -> str:
    return "sd:" + hashlib.sha256(canonical([salt, value]).encode("utf-8")).hexdigest()


def committed_form(event: dict, digest) -> dict:
    """The event without hash, schema and disclosure, with every text value of prev_hash, actor and
    details (details.salt left out) and every 'metadata' member whole replaced by digest(pointer, value)."""

    def walk(node: object, pointer: str) -> object:
        if isinstance(node, str):
            return digest(pointer, node)
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                inner = pointer + "/" + pointer_step(key)
                if pointer == "/details" and key == "salt":
                    continue
                out[key] = digest(inner, value) if key == "metadata" else walk(value, inner)
            return out
        if isinstance(node, list):
            return [walk(value, f"{pointer}/{i}") for i, value in enumerate(node)]
        return node

    form = {k: v for k, v in event.items() if k not in ("hash", "schema", "disclosure")}
    for member in ("prev_hash", "actor", "details"):
        if member in form:
            form[member] = walk(form[member], "/" + member)
    return form


def event_form(event: dict) -> tuple[dict, list[str]]:
    """What the event's hash is taken over, and the JSON Pointers of the values it withholds."""
    if "disclosure" in event:  # a redacted export: salts of what is shown, digests of the rest
        salts, withheld = event["disclosure"]["salts"], event["disclosure"]["withheld"]

        def disclosed(pointer: str, value: object) -> str:
            if pointer in withheld:  # what is shown there is not proven: it must say it is withheld
                shown = value if isinstance(value, str) or value is None else json.dumps(value, ensure_ascii=False)
                if shown is not None and "[withheld]" not in shown:
                    raise ValueError(f"{pointer} is withheld but shows a value that does not say so")
                return withheld[pointer]
            if pointer not in salts:
                raise ValueError(f"{pointer} is shown without its salt")
            return value_digest(salts[pointer], value)

        return committed_form(event, disclosed), sorted(withheld)
    details = event.get("details")
    if isinstance(details, dict) and "salt" in details:  # salted: the secret is in the event
        if not isinstance(details["salt"], str) or not re.fullmatch("[0-9a-f]{64}", details["salt"]):
            raise ValueError("details.salt is not 64 lower-case hex digits")
        secret = bytes.fromhex(details["salt"])

        def salted(pointer: str, value: object) -> str:
            return value_digest(hmac.new(secret, pointer.encode("utf-8"), hashlib.sha256).hexdigest()[:32], value)

        return committed_form(event, salted), []
    return {k: v for k, v in event.items() if k not in ("hash", "schema")}, []  # written before 1.1.0


def check_events(bag: Path, contents: dict) -> list[tuple[int, bytes | None]]:
    """Check each custody event's hash, and the complete log's sequence and links, reading
    ``custody.jsonl`` a line at a time; return each event's sequence number and leaf hash."""
    complete = bool(contents.get("complete_log"))
    leaves: list[tuple[int, bytes | None]] = []
    link_problems: list[str] = []
    in_order, previous_hash, previous_withheld = True, "0" * 64, False
    for line in text_lines(bag / "data/custody.jsonl"):
        if not line:
            continue
        event = json.loads(line)
        number = len(leaves) + 1
        if complete and in_order:
            if event.get("seq") != number:
                link_problems.append(f"custody event {event.get('seq')} found where event {number} should be")
                in_order = False
            # the link to an event withheld whole is withheld with it
            elif not previous_withheld and "withheld" not in event and event.get("prev_hash") != previous_hash:
                link_problems.append(f"custody event {number}: link to the previous event is broken")
            previous_hash, previous_withheld = event.get("hash"), "withheld" in event
        if event.get("withheld") == "whole":  # hashed without salt: its hash would confirm a guess
            print(f"WITHHELD custody event {event['seq']}: withheld whole (hashed before salted commitments)")
            withheld_events.append(event["seq"])
            leaves.append((event["seq"], None))
            continue
        try:
            form, withheld = event_form(event)
            own = hashlib.sha256(canonical(form).encode("utf-8")).hexdigest()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            report(False, f"custody event {event.get('seq')}: cannot be hashed ({exc})")
            form, withheld, own = {}, [], ""
        if own != event.get("hash"):
            report(False, f"custody event {event.get('seq')}: content hashes to {own}, it says {event.get('hash')}")
        if withheld:
            print(f"WITHHELD custody event {event['seq']}: hash checked; withheld: {', '.join(withheld)}")
            withheld_values.extend((event["seq"], pointer) for pointer in withheld)
        if isinstance(event.get("subject"), str):
            digests_held(event.get("details"), committed.setdefault(event["subject"], set()))
        leaf = sha256(b"\x00" + canonical({**form, "hash": event.get("hash")}).encode("utf-8"))
        leaves.append((event["seq"], leaf))
    report(True, f"{len(leaves)} custody events read")
    if complete:
        for problem in link_problems:
            report(False, problem)
        report(True, "the complete log's sequence and links were checked")
    return leaves


def check_checkpoint(bag: Path, log: dict, leaves: list[tuple[int, bytes | None]], complete: bool) -> None:
    if any(leaf is None for _, leaf in leaves):
        report(False, "the bag has a signed checkpoint but withholds events whole: their leaves cannot be checked")
        return
    note = (bag / log["checkpoint"]).read_text(encoding="utf-8")
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    origin, size_text, root_text = text.split("\n")[:3]
    size, root = int(size_text), base64.b64decode(root_text)
    name, key_id_hex, key = (bag / log["vkey"]).read_text(encoding="ascii").strip().split("+", 2)
    raw_key = base64.b64decode(key)
    report(
        sha256(name.encode() + b"\n" + raw_key)[:4].hex() == key_id_hex and raw_key[1:] and name == origin,
        "log.vkey is the key of this log (its key id and name)",
    )
    line = next((s for s in signatures.splitlines() if s.startswith("\u2014 " + name + " ")), None)
    if line is None:
        report(False, "the checkpoint has no signature by the log's key")
        return
    signature = base64.b64decode(line.rsplit(" ", 1)[1])
    report(signature[:4].hex() == key_id_hex, "the signature line names the log's key id")
    with tempfile.TemporaryDirectory() as work:
        message, sig = Path(work, "message"), Path(work, "signature")
        message.write_bytes(text.encode("utf-8"))
        sig.write_bytes(signature[4:])
        result = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(bag / log["public_key"]), "-rawin",
             "-in", str(message), "-sigfile", str(sig)],
            capture_output=True, text=True,
        )  # fmt: skip
    report(result.returncode == 0, f"openssl: the checkpoint's Ed25519 signature verifies ({result.stdout.strip()})")
    if complete:
        report(
            size == len(leaves) and mth([leaf for _, leaf in leaves]) == root,
            f"the {len(leaves)} events give the checkpoint's root (tree size {size})",
        )
        return
    proofs = {}
    if log.get("proofs"):
        for text_line in text_lines(bag / log["proofs"]):
            if not text_line:
                continue
            item = json.loads(text_line)
            proofs[item["seq"]] = item
    for seq, leaf in leaves:
        item = proofs.get(seq)
        proof = [bytes.fromhex(h) for h in item["proof"]] if item is not None else None
        ok = proof is not None and root_from_proof(seq - 1, size, leaf, proof) == root
        if not ok:
            report(False, f"custody event {seq} is not proven to be in the signed log")
    report(True, f"inclusion proofs of {len(leaves)} events checked against the root of {size} events")


def check_timestamps(bag: Path, log: dict, tsa_ca: str | None) -> None:
    stamps = log.get("timestamps", [])
    if not stamps:
        if tsa_ca is not None:  # a check that was asked for and could not be made is not a pass
            report(False, "--tsa-ca was given but the bag holds no time-stamp token: no time-stamp was checked")
        else:
            not_checked.append("no time-stamp (the bag holds no token)")
        return
    for stamp in stamps:
        if tsa_ca is None:
            print(f"SKIPPED  {stamp['token']}: give --tsa-ca with the TSA's CA certificate to check it")
            not_checked.append(f"time-stamp token {stamp['token']} (no --tsa-ca)")
            continue
        result = subprocess.run(
            ["openssl", "ts", "-verify", "-in", str(bag / stamp["token"]), "-token_in",
             "-data", str(bag / stamp["note"]), "-CAfile", tsa_ca],
            capture_output=True, text=True,
        )  # fmt: skip
        report(result.returncode == 0, f"openssl ts -verify of {stamp['token']} ({result.stdout.strip()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path)
    parser.add_argument("--tsa-ca", help="CA certificate (PEM) of the Time-Stamp Authority")
    args = parser.parse_args()
    bag = args.bag
    if not (bag / "bagit.txt").is_file():
        print(f"{bag}: not a bag (no bagit.txt)", file=sys.stderr)
        return 2
    if args.tsa_ca is not None and not Path(args.tsa_ca).is_file():
        print(f"{args.tsa_ca}: no such CA certificate file (--tsa-ca)", file=sys.stderr)
        return 2
    listed = check_manifests(bag)
    contents = json.loads((bag / "data/contents.json").read_text(encoding="utf-8"))
    redaction = contents.get("redaction") or {}
    for item in redaction.get("withheld_artifacts", []):  # what the bag lists as withheld, and why
        why = "; ".join(f"{r['kind']}: {r['reason']}" for r in item.get("reasons", []))
        size = f"{item['sha256']}, {item['size']} bytes"
        print(f"WITHHELD file {item['path']} ({size}) of record {item['record_id']}: {why}")
    for item in redaction.get("withheld_fields", []):
        why = "; ".join(f"{r['kind']}: {r['reason']}" for r in item.get("reasons", []))
        print(f"WITHHELD field {item['path']} of record {item['record_id']}: {why}")
    leaves = check_events(bag, contents)
    check_artifacts(listed)
    log = contents.get("log")
    if log is None:
        why = " (it withholds events whole: a Merkle root over them would confirm a guess)" if withheld_events else ""
        print("SKIPPED  the bag has no signed checkpoint" + why)
        not_checked.append("the custody events against a signed checkpoint (the bag has none)")
        if args.tsa_ca is not None:
            report(False, "--tsa-ca was given but the bag holds no time-stamp token: no time-stamp was checked")
    else:
        check_checkpoint(bag, log, leaves, bool(contents.get("complete_log")))
        check_timestamps(bag, log, args.tsa_ca)
    if problems:
        print(f"{problems} problem(s): {bag}")
        return 1
    if withheld_values or withheld_events:
        not_checked.append(
            f"{len(withheld_values)} withheld value(s) in {len({seq for seq, _ in withheld_values})} event(s) and "
            f"{len(withheld_events)} event(s) withheld whole (redacted; listed above as WITHHELD)"
        )
    print(f"verified: {bag}" + (f"; not checked: {'; '.join(not_checked)}" if not_checked else ""))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    sys.exit(main())
