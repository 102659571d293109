"""C2PA Content Credentials of images, videos and audio, read and validated offline with
c2pa-python (the Rust c2pa-rs library).

c2pa-rs reads the file in a child process (:mod:`evidence_catalog.extract.credentials_probe`)
under a wall-time limit, a CPU-time limit and an address-space limit: a hostile manifest store
that makes it crash, loop or allocate without end ends that process, never this one, and the
outcome is :attr:`~evidence_catalog.analysis.CredentialState.UNREADABLE` with the reason.

Reading is offline: no remote manifest is fetched, no OCSP responder asked, and c2pa's HTTP
client is allowed no host at all (``core.allowed_network_hosts`` empty), so a file cannot make
the reader reach out to an address it names.  The trust list is only what the caller gives
(c2pa-rs has none built in); without one, an intact credential is ``valid``, never ``trusted``.

What the outcomes say:

* ``none`` -- no C2PA manifest store in the file, and no C2PA marker anywhere in its bytes.  It
  says nothing of whether the file was changed: most files carry none, and stripping one leaves
  none.
* ``valid`` -- the claim's signature checks, its assertions' hashes match, the hash binding to
  the file's bytes holds, and the signing certificate meets C2PA's profile; the signer does not
  chain to the given trust anchors (or none were given): c2pa's failure code
  ``signingCredential.untrusted`` is kept in ``failure_codes`` to say so.
* ``trusted`` -- as ``valid``, and the signer chains to the given trust anchors.
* ``invalid`` -- c2pa validated the store and something failed (its codes, verbatim, in
  ``failure_codes``: ``assertion.dataHash.mismatch`` for bytes changed after signing ...).
* ``unreadable`` -- a manifest store (or a C2PA marker) is there but could not be read or
  checked: corrupt, kept remotely (and not fetched), or the reader stopped; ``errors`` says why.

The certificate's validity is judged by c2pa-rs at the time of the signature's RFC 3161
time-stamp when there is one whose authority chains to the trust anchors, else at the time of
reading: a credential signed by a certificate that has since expired reads ``valid`` before and
``invalid`` (``signingCredential.expired``) after, the one way in which the same bytes read by
the same versions with the same trust anchors can give another outcome.
:data:`CERTIFICATE_TIME` is recorded among the parameters.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog.analysis import ContentCredentials, CredentialState
from evidence_catalog.errors import EvidenceError, InputError
from evidence_catalog.extract.sandbox import clean as _clean
from evidence_catalog.extract.sandbox import report, run_script
from evidence_catalog.model import Agent, AgentKind

#: Wall time one file may take at least; larger files get more (:func:`time_limit`).
TIME_LIMIT_S = 30
#: Seconds more per :data:`BYTES_PER_SECOND` bytes of file: c2pa-rs hashes the whole file.
BYTES_PER_SECOND = 32 * 1024 * 1024
#: Address space the reading process may use.
MEMORY_LIMIT_BYTES = 1536 * 1024 * 1024
#: The name of the manifest store written into the work folder.
STORE_NAME = "c2pa-manifest-store.c2pa"
#: The media type of a C2PA manifest store kept on its own.
STORE_MEDIA_TYPE = "application/c2pa"
#: When c2pa-rs judges whether the signing certificate was valid: at the time of the
#: signature's RFC 3161 time-stamp when its authority chains to the trust anchors, else now.
CERTIFICATE_TIME = "trusted time-stamp, else time of reading"
_PROBE = Path(__file__).with_name("credentials_probe.py")
#: What the reader's fork server imports once (:func:`~evidence_catalog.extract.sandbox.run_script`).
PRELOAD = ("c2pa",)

#: The media types c2pa-rs reads Content Credentials from (c2pa-python 0.38's list, the image,
#: video and audio ones; ``tests/test_credentials.py`` checks each is on the installed c2pa's).
MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/x-webp",
        "image/gif",
        "image/tiff",
        "image/dng",
        "image/x-adobe-dng",
        "image/heic",
        "image/heif",
        "image/avif",
        "image/jxl",
        "image/svg+xml",
        "image/x-sony-arw",
        "image/x-nikon-nef",
        "video/mp4",
        "video/quicktime",
        "video/x-m4v",
        "video/x-msvideo",
        "video/avi",
        "video/msvideo",
        "audio/mp4",
        "audio/mpeg",
        "audio/mp3",
        "audio/x-mp3",
        "audio/mpeg3",
        "audio/wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/x-wav",
        "audio/flac",
    }
)

#: Failure codes that leave a credential valid (C2PA 2.x "valid manifest"; c2pa-rs's
#: ``is_tolerated_manifest_failure_code``): the signer is not on the trust list, and the
#: failures of CAWG identity assertions, which are scoped to those assertions.
_TOLERATED = ("signingCredential.untrusted",)
_TOLERATED_PREFIX = "cawg."
#: c2pa's errors that say there is no manifest store where the format keeps one, or that the
#: file is not one it reads.
_NOT_FOUND = frozenset({"ManifestNotFound", "JumbfNotFound", "NotSupported", "UnsupportedType"})
#: c2pa's errors that say the manifest store is kept remotely (and was not fetched).
_REMOTE = frozenset({"Remote", "RemoteManifest"})


@attrs.frozen
class CredentialsResult:
    """What reading a file's Content Credentials gave.

    ``credentials.manifest_store_sha256`` is left ``None``: the operation stores
    ``manifest_store`` as a derived artifact and fills it in."""

    credentials: ContentCredentials
    #: The manifest store, verbatim, written into the work folder (``None`` when there is none
    #: or its bytes could not be taken from the file).
    manifest_store: Path | None
    #: c2pa-python, with the c2pa-rs it carries.
    tools: tuple[Agent, ...]
    #: What shapes the outcome, as text, keys prefixed ``c2pa.``.
    parameters: dict[str, str]


def supported(media_type: str) -> bool:
    """Whether c2pa reads Content Credentials from files of *media_type*."""
    return media_type.split(";", 1)[0].strip().lower() in MEDIA_TYPES


def time_limit(size: int) -> int:
    """Seconds a file of *size* bytes may take: c2pa-rs reads all of it to check its hash."""
    return TIME_LIMIT_S + max(size, 0) // BYTES_PER_SECOND


def settings(trust_anchors: bytes | None) -> dict[str, Any]:
    """c2pa's settings for an offline reading against *trust_anchors* (PEM) alone."""
    anchors = trust_anchors.decode("ascii") if trust_anchors is not None else None
    return {
        "version": 1,
        "verify": {
            "verify_after_reading": True,
            "verify_trust": True,
            "verify_timestamp_trust": True,
            "ocsp_fetch": False,
            "remote_manifest_fetch": False,
            "skip_ingredient_conflict_resolution": False,
            "strict_v1_validation": False,
        },
        "core": {"allowed_network_hosts": []},
        "trust": {"trust_anchors": anchors, "user_anchors": None, "allowed_list": None, "trust_config": None},
    }


def check_trust_anchors(trust_anchors: bytes) -> int:
    """How many certificates the PEM *trust_anchors* holds; an :class:`InputError` when it is
    not PEM certificates only."""
    from cryptography import x509

    try:
        text = trust_anchors.decode("ascii")
        found = x509.load_pem_x509_certificates(trust_anchors)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"trust_anchors must be PEM certificates: {exc}") from None
    if text.count("-----BEGIN") != len(found):
        raise InputError("trust_anchors must hold PEM certificates only")
    return len(found)


def parameters(trust_anchors: bytes | None) -> dict[str, str]:
    """The parameters of a reading, as the analysis records them."""
    return {
        "c2pa.offline": "true",
        "c2pa.remote_manifest_fetch": "false",
        "c2pa.ocsp_fetch": "false",
        "c2pa.trust_anchors_sha256": hashlib.sha256(trust_anchors).hexdigest() if trust_anchors else "none",
        "c2pa.certificate_time": CERTIFICATE_TIME,
    }


def read_credentials(
    path: Path, media_type: str, *, work: Path, trust_anchors: bytes | None = None
) -> CredentialsResult:
    """Read and validate the C2PA Content Credentials of the file at *path* (of *media_type*),
    offline, trusting only the signers that chain to *trust_anchors* (PEM certificates).

    The manifest store, verbatim, is written into the folder *work*.  A file that cannot be
    read, a corrupt store, a reader that crashes or runs out of time give the outcome
    ``unreadable`` with the reason, never an exception; only *trust_anchors* that are not PEM
    certificates raise (:class:`~evidence_catalog.errors.InputError`)."""
    if trust_anchors is not None:
        check_trust_anchors(trust_anchors)
    params = parameters(trust_anchors)
    raw, errors = _run_probe(path, media_type, settings(trust_anchors))
    tools = _tools(raw)
    store: bytes | None = None
    if raw is not None and isinstance(raw.get("store"), str):
        try:
            store = base64.b64decode(raw["store"], validate=True)
        except (binascii.Error, ValueError):
            errors.append("the reader gave the manifest store in a form that could not be decoded; it is not kept")
    if raw is not None:
        errors.extend(_clean(note) for note in raw.get("notes", ()) if isinstance(note, str))
    credentials = _credentials(raw, errors, has_store=store is not None, media_type=media_type)
    read = credentials.state in (CredentialState.VALID, CredentialState.TRUSTED, CredentialState.INVALID)
    label = credentials.active_manifest
    if read and store is None:
        errors.append("the manifest store's bytes could not be taken from the file; it is not kept")
    elif read and store is not None and label is not None and label.encode("utf-8") not in store:
        errors.append("the store taken from the file does not hold the manifest c2pa validated; it is kept as found")
    if len(errors) > len(credentials.errors):
        credentials = attrs.evolve(credentials, errors=tuple(errors))
    store_path: Path | None = None
    if store is not None:
        store_path = work / STORE_NAME
        store_path.write_bytes(store)
    return CredentialsResult(credentials=credentials, manifest_store=store_path, tools=tools, parameters=params)


#: How the errors start that say the reader stopped for a reason of the machine that ran it (or
#: could not run at all), having read nothing.
_STOPPED_BY_THE_MACHINE = (
    "the credentials reader did not finish",
    "the credentials reader used up",
    "the credentials reader was killed",
    "the credentials reader crashed",
    "the credentials reader could not be started",
    "the credentials reader gave",
)


def stopped_by_the_machine(errors: tuple[str, ...]) -> str | None:
    """The first of *errors* that says the reader stopped before reading anything, for a reason
    of the machine (a time or memory limit, a crash, c2pa missing), or ``None``: the same bytes
    may read in full elsewhere, so such a result claims nothing of the file."""
    return next((error for error in errors if error.startswith(_STOPPED_BY_THE_MACHINE)), None)


def _tools(raw: dict[str, Any] | None) -> tuple[Agent, ...]:
    from importlib.metadata import PackageNotFoundError, version

    found = raw.get("c2pa_python") if raw is not None else None
    if not isinstance(found, str) or not found.strip():
        try:
            found = version("c2pa-python")
        except PackageNotFoundError:
            found = None
    rust = raw.get("c2pa_rs") if raw is not None else None
    text = f"{found} (c2pa-rs {_clean(rust)})" if found and isinstance(rust, str) and rust.strip() else found
    return (Agent(name="c2pa-python", kind=AgentKind.SOFTWARE, version=text or None),)


def _credentials(
    raw: dict[str, Any] | None, errors: list[str], *, has_store: bool, media_type: str
) -> ContentCredentials:
    if raw is None:
        return ContentCredentials(state=CredentialState.UNREADABLE, errors=tuple(errors))
    outcome = raw.get("outcome")
    if outcome == "read":
        try:
            return _validated(raw.get("report"), errors)
        except (EvidenceError, TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            # RecursionError: a report nested deeper than this interpreter parses (a manifest's
            # own JSON, passed on by c2pa), read here, in the catalog's process.
            errors.append(f"c2pa's report could not be used: {_clean(exc)}")
            return ContentCredentials(state=CredentialState.UNREADABLE, errors=tuple(errors))
    kind, message = _clean(raw.get("kind")), _clean(raw.get("message"))
    marker = raw.get("marker")
    has_marker = type(marker) is int and marker >= 0
    if outcome == "error" and kind not in _REMOTE and not has_marker and not has_store:
        # Nothing in the bytes is a C2PA manifest store: what c2pa could not do with the file
        # (read it as this type, parse its container) is said, and there are no credentials.
        if kind != "ManifestNotFound":
            errors.append(f"c2pa could not read this file as {media_type} ({message}); no C2PA marker is in its bytes")
        return ContentCredentials(state=CredentialState.NONE, errors=tuple(errors))
    if outcome == "error" and kind in _REMOTE:
        errors.insert(0, f"the manifest store is kept remotely and was not fetched (reading is offline): {message}")
    elif outcome == "error" and kind in _NOT_FOUND:
        where = f" at offset {marker}" if has_marker else ""
        errors.insert(
            0,
            f"c2pa found no manifest store where {media_type} keeps one ({message}),"
            f" yet the bytes hold a C2PA manifest store marker{where}",
        )
    elif outcome == "error":
        errors.insert(0, f"c2pa could not read the manifest store: {kind}: {message}")
    elif outcome == "stopped" and kind == "memory":
        limit = MEMORY_LIMIT_BYTES // (1024 * 1024)
        errors.insert(0, f"the credentials reader ran out of its memory limit ({limit} MiB) on this file")
    elif outcome == "stopped" and kind == "unavailable":
        errors.insert(0, f"c2pa could not be loaded, so nothing was read: {message}")
    elif outcome == "stopped":
        errors.insert(0, f"the credentials reader failed on this file: {message}")
    else:
        errors.insert(0, "the credentials reader gave a report of no known outcome")
    return ContentCredentials(state=CredentialState.UNREADABLE, errors=tuple(errors))


def _validated(report: Any, errors: list[str]) -> ContentCredentials:
    """The credentials c2pa's JSON *report* describes, its verdict checked against its codes."""
    data = json.loads(report)
    active = data.get("active_manifest")
    manifests = data.get("manifests") or {}
    manifest = manifests.get(active) if isinstance(active, str) else None
    if not isinstance(manifest, dict):
        errors.append("c2pa names no active manifest in the store")
        manifest = {}
    codes = _failure_codes(data)
    verdict = data.get("validation_state")
    states = {"Trusted": CredentialState.TRUSTED, "Valid": CredentialState.VALID, "Invalid": CredentialState.INVALID}
    state = states.get(verdict) if isinstance(verdict, str) else None
    if state is None:
        errors.append(f"c2pa gave no validation state it is known to give ({_clean(verdict)})")
        state = CredentialState.UNREADABLE
    intolerable = [code for code in codes if code not in _TOLERATED and not code.startswith(_TOLERATED_PREFIX)]
    if state in (CredentialState.VALID, CredentialState.TRUSTED) and intolerable:
        errors.append(f"c2pa judged the credential {verdict} despite the failures {', '.join(intolerable)}")
        state = CredentialState.INVALID
    if state is CredentialState.TRUSTED and codes:
        errors.append(f"c2pa judged the credential trusted despite the failures {', '.join(codes)}")
        state = CredentialState.VALID
    if state is CredentialState.INVALID and not codes:
        errors.append("c2pa judged the credential invalid without naming a failure code")
    found = manifest.get("signature_info")
    signature: dict[str, Any] = found if isinstance(found, dict) else {}
    return ContentCredentials(
        state=state,
        active_manifest=_text(active),
        failure_codes=codes,
        signer=_signer(signature),
        claim_generator=_claim_generator(manifest),
        signed_at=_time(signature.get("time"), errors),
        actions=_actions(manifest),
        ingredients=_ingredients(manifest),
        errors=tuple(errors),
    )


def _failure_codes(data: dict[str, Any]) -> tuple[str, ...]:
    """The failure codes of the active manifest and of its ingredients' validation deltas, as
    c2pa gives them (``validation_status`` where c2pa gives no ``validation_results``)."""
    found: list[str] = []
    results = data.get("validation_results")
    if isinstance(results, dict):
        active = results.get("activeManifest") or {}
        found.extend(_codes(active.get("failure")))
        for delta in results.get("ingredientDeltas") or ():
            if isinstance(delta, dict):
                found.extend(_codes((delta.get("validationDeltas") or {}).get("failure")))
    else:
        found.extend(_codes(data.get("validation_status")))
    return tuple(dict.fromkeys(found))


def _codes(statuses: Any) -> list[str]:
    if not isinstance(statuses, list):
        return []
    return [_clean(s["code"]) for s in statuses if isinstance(s, dict) and isinstance(s.get("code"), str)]


def _signer(signature: dict[str, Any]) -> str | None:
    """The signing certificate's subject: its common name, with its organization (what c2pa
    calls ``issuer``) when that says something more."""
    name, organization = _text(signature.get("common_name")), _text(signature.get("issuer"))
    if name and organization and organization != name:
        return f"{name} ({organization})"
    return name or organization


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    """A v1 claim's ``claim_generator``, or a v2 claim's ``claim_generator_info`` as
    ``name version``."""
    text = _text(manifest.get("claim_generator"))
    if text:
        return text
    infos = manifest.get("claim_generator_info")
    if not isinstance(infos, list):
        return None
    names = []
    for info in infos:
        if isinstance(info, dict) and _text(info.get("name")):
            version = _text(info.get("version"))
            names.append(f"{_text(info['name'])} {version}" if version else _text(info["name"]))
    return "; ".join(str(n) for n in names) or None


def _actions(manifest: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for assertion in manifest.get("assertions") or ():
        if not isinstance(assertion, dict) or assertion.get("label") not in ("c2pa.actions", "c2pa.actions.v2"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or ():
            if isinstance(action, dict) and _text(action.get("action")):
                found.append(str(_text(action["action"])))
    return tuple(found)


def _ingredients(manifest: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for ingredient in manifest.get("ingredients") or ():
        if isinstance(ingredient, dict):
            title = _text(ingredient.get("title")) or _text(ingredient.get("instance_id")) or "(untitled)"
            found.append(title)
    return tuple(found)


def _time(value: Any, errors: list[str]) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        errors.append(f"the signature's time {_clean(value)!r} is not an ISO 8601 time; it is left out")
        return None
    if moment.tzinfo is None:
        errors.append(f"the signature's time {_clean(value)!r} states no time zone; it is left out")
        return None
    return moment.astimezone(dt.UTC)


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return _clean(value)


def _run_probe(path: Path, media_type: str, config: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, [f"the file could not be read: {exc.strerror or exc}"]
    seconds = time_limit(size)
    args = [str(path.absolute()), media_type, str(MEMORY_LIMIT_BYTES), str(seconds)]
    config_json = json.dumps(config).encode("ascii")
    nothing = "nothing was read"
    done, stopped = run_script(
        _PROBE,
        args,
        preload=PRELOAD,
        seconds=seconds,
        reader="credentials reader",
        nothing=nothing,
        input=config_json,
    )
    if done is None:
        return None, stopped
    raw = report(done.stdout)
    if raw is None:
        status = "no report" if not done.stdout else "a report that is not JSON"
        return None, [f"the credentials reader gave {status} (exit status {done.returncode}); nothing was read"]
    return raw, []
