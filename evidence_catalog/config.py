"""The catalog directory's ``catalog.toml`` and how the operator is found.

``catalog.toml`` records the catalog format version, the digest algorithms computed for every
artifact, the default operator, and -- for a team's catalog -- where its database and blobs are
(URLs without credentials: those come from the environment, as PostgreSQL and AWS tools find
them).  The operator of an action is, in order: the one passed by the caller (CLI
``--operator``), ``$EVIDENCE_CATALOG_OPERATOR``, the catalog's default, and finally the
operating-system user at this host.  It is never blank.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen

from evidence_catalog.errors import CatalogError, CatalogVersionError, InputError, ModelError
from evidence_catalog.hashing import normalise_algorithms
from evidence_catalog.model import Agent, has_control_characters

#: The catalog directory format this library writes and the newest it reads.
FORMAT_VERSION = 1
CONFIG_FILE = "catalog.toml"
OPERATOR_ENV = "EVIDENCE_CATALOG_OPERATOR"
_NAME_EMAIL = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+@[^<>\s]+)>\s*$")


@frozen
class CatalogConfig:
    """Settings kept in ``catalog.toml``."""

    format_version: int = FORMAT_VERSION
    algorithms: tuple[str, ...] = field(default=("sha256",), converter=normalise_algorithms)
    operator: Agent | None = None
    #: The RFC 3161 Time-Stamp Authority checkpoints are sent to (``[timestamp] url``).
    tsa_url: str | None = None
    #: Where the catalog database is when it is not ``catalog.db`` in the folder
    #: (``[database] url``, e.g. ``postgresql+psycopg://db.example.org/evidence``; never a password).
    database_url: str | None = None
    #: Where blobs are when not in ``blobs/`` in the folder (``[blobs] url``, e.g. ``s3://bucket/prefix``).
    blobs_url: str | None = None
    #: The S3-compatible server's endpoint (``[blobs] endpoint_url``), when not AWS itself.
    blobs_endpoint_url: str | None = None

    def to_toml(self) -> str:
        """The TOML text of these settings."""
        data: dict[str, Any] = {
            "format_version": self.format_version,
            "hashing": {"algorithms": list(self.algorithms)},
        }
        if self.operator is not None:
            data["operator"] = {
                k: v
                for k, v in (
                    ("name", self.operator.name),
                    ("email", self.operator.email),
                    ("organization", self.operator.organization),
                )
                if v is not None
            }
        if self.tsa_url is not None:
            data["timestamp"] = {"url": self.tsa_url}
        if self.database_url is not None:
            data["database"] = {"url": self.database_url}
        if self.blobs_url is not None:
            data["blobs"] = {"url": self.blobs_url}
            if self.blobs_endpoint_url is not None:
                data["blobs"]["endpoint_url"] = self.blobs_endpoint_url
        import tomli_w  # only a catalog's settings being written need it, not opening one

        return "# evidence-catalog settings\n" + tomli_w.dumps(data)

    @classmethod
    def load(cls, directory: Path) -> CatalogConfig:
        """Read ``catalog.toml`` from a catalog directory; refuse a newer format."""
        path = directory / CONFIG_FILE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CatalogError(f"catalog settings are malformed: {exc}", where=str(path)) from exc
        where = str(path)
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CatalogError("format_version is missing or not a positive integer", where=where)
        if version > FORMAT_VERSION:
            raise CatalogVersionError(
                f"catalog format {version} is newer than this library reads ({FORMAT_VERSION}); "
                "upgrade evidence-catalog",
                where=where,
            )
        hashing = _table(data, "hashing", where)
        algorithms = hashing.get("algorithms", ["sha256"])
        if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
            raise CatalogError("hashing.algorithms must be a list of algorithm names", where=where)
        operator = _table(data, "operator", where)
        tsa_url = _table(data, "timestamp", where).get("url")
        if tsa_url is not None and not isinstance(tsa_url, str):
            raise CatalogError("timestamp.url must be text (the TSA's http(s) URL)", where=where)
        database = _table(data, "database", where)
        blobs = _table(data, "blobs", where)
        for table, key in ((database, "url"), (blobs, "url"), (blobs, "endpoint_url")):
            if table.get(key) is not None and not isinstance(table.get(key), str):
                raise CatalogError(f"{'database' if table is database else 'blobs'}.{key} must be text", where=where)
        try:
            return cls(
                format_version=version,
                algorithms=tuple(algorithms),
                operator=Agent(**_operator_fields(operator)) if operator else None,
                tsa_url=tsa_url,
                database_url=database.get("url"),
                blobs_url=blobs.get("url"),
                blobs_endpoint_url=blobs.get("endpoint_url"),
            )
        except (TypeError, ValueError, InputError) as exc:
            raise CatalogError(f"catalog settings are invalid: {exc}", where=where) from exc


def _table(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise CatalogError(f"[{name}] must be a table", where=where)
    return value


def _operator_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"name", "email", "organization"}
    unknown = set(data) - allowed
    if unknown:
        raise ModelError(f"unknown operator field(s): {', '.join(sorted(unknown))}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ModelError(f"operator {key} must be text")
        if has_control_characters(value):
            raise ModelError(f"operator {key} contains a control character")
    return dict(data)


def host_name() -> str:
    """This machine's host name (bytes that are not UTF-8 escaped: it is recorded as text)."""
    return _as_text(socket.gethostname()) or "unknown-host"


def parse_operator(text: str, *, organization: str | None = None, where: str = "operator") -> Agent:
    """Parse ``"Name <email>"`` or ``"Name"`` into a person agent at this host.

    >>> parse_operator("A. Analyst <a@example.org>").email
    'a@example.org'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("operator is not valid UTF-8 text", where=where) from exc
    match = _NAME_EMAIL.match(text)
    name, email = (match["name"], match["email"]) if match else (text.strip(), None)
    if not name:
        raise InputError("operator name must not be blank", where=where)
    if has_control_characters(text):
        raise InputError("operator must not contain control characters", where=where)
    return Agent(name=name, email=email, organization=organization, host=host_name())


def _as_text(name: str) -> str:
    """A name the system gave (an account, a host) as text that can be recorded: bytes that
    were not UTF-8 (decoded as lone surrogates) escaped, ``\\xff``."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte: shown as its escape
        raw = name.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _checked_agent(agent: Agent) -> Agent:
    """An operator given as an :class:`Agent`, refused (:class:`InputError`) when a field is not
    valid UTF-8 text (a lone surrogate, which no custody event can hold) or holds a NUL (which
    PostgreSQL cannot store: one rule for both databases).  What else an
    :class:`Agent` may hold is the model's rule (control characters are kept, and printed
    escaped), as for agents read from another catalog's log."""
    for name in ("name", "email", "organization", "version", "host"):
        value = getattr(agent, name)
        if not isinstance(value, str):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{name} is not valid UTF-8 text", where="operator") from exc
        if "\x00" in value:
            raise InputError(f"{name} must not contain a NUL character", where="operator")
    return agent


def _account_name() -> str:
    """The account running this process: from the user database where there is one (the
    environment variables getpass reads first can be set to anything), else getpass."""
    try:
        import pwd

        return _as_text(pwd.getpwuid(os.geteuid()).pw_name)
    except (ImportError, KeyError, OSError):
        pass
    try:
        return _as_text(getpass.getuser())
    except (KeyError, OSError):
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown user"


def resolve_operator(explicit: Agent | str | None, default: Agent | None) -> Agent:
    """The operator of an action, by the order described in the module docstring."""
    if isinstance(explicit, Agent):
        return _checked_agent(explicit)
    if explicit is not None:
        return parse_operator(explicit)
    from_env = os.environ.get(OPERATOR_ENV, "").strip()
    if from_env:
        return parse_operator(from_env, where=f"${OPERATOR_ENV}")
    if default is not None:
        return Agent(
            name=default.name,
            email=default.email,
            organization=default.organization,
            host=default.host or host_name(),
        )
    user = _account_name()
    return Agent(name=user or "unknown user", host=host_name())
