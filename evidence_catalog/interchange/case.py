"""CASE/UCO 1.5.0 JSON-LD of records and their custody chain, written node by node.  Pure: records
and custody event documents in, JSON-LD text out (no database, no blob store).

Mapping (see ``docs/interchange.md``, "CASE/UCO"):

* the export: one ``case-investigation:Investigation`` (written last) whose objects are the
  records;
* each record: a ``case-investigation:ProvenanceRecord`` (exhibit number = the record id), as
  CASE's examples list evidence items; its tags as ``uco-core:tag``;
* each artifact: an ``uco-observable:File`` (one per SHA-256) with ``FileFacet``,
  ``ContentDataFacet`` (every digest, size, media type), ``RasterPictureFacet`` and
  ``EXIFFacet``; an EXIF position as a ``uco-location:Location``; the record holds it through a
  ``uco-core:Relationship`` (``Contained_Within``) that names its role and file name there;
* acquisitions, derivations, custody events and exports: ``case-investigation:InvestigativeAction``
  with performer, instrument (``uco-tool:Tool``), times, objects and results;
* the custody chain: per event a ``case-investigation:ProvenanceRecord`` (exhibit number
  ``<record id>/custody/<seq>``, the event hash in its description), each event's action taking
  the record's previous one as object;
* reports: ``uco-observable:Message`` with the text verbatim; URLs as ``uco-observable:URL``;
* claims, assessments, notes, flags, and what a redaction withheld: ``uco-core:Annotation``.

Identifiers end in a UUID (UCO requires it): uuid5 of the record id, SHA-256, custody event hash
or the part's own id, and for facets and hashes the derivation ``case_utils.inherent_uuid`` uses,
so two exports of a record agree node for node.
"""

from __future__ import annotations

import decimal
import functools
import hashlib
import json
import urllib.parse
import uuid
from collections.abc import Iterable
from typing import Any

from evidence_catalog import model
from evidence_catalog.interchange.redact import WITHHELD_MARK
from evidence_catalog.interchange.text import TextSink
from evidence_catalog.serialize import canonical_json, format_timestamp, unstructure

#: The CASE/UCO release the graph is written for (``case_validate --built-version case-1.5.0``).
CASE_VERSION = "1.5.0"
#: The prefix of this library's node IRIs (each ends in a UUID, as UCO requires).
KB = "urn:evidence-catalog:case:"
#: The uuid5 namespace of the node ids (fixed: changing it changes every id).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:evidence-catalog:case")
_NAMESPACE_BYTES = NAMESPACE.bytes
_URL_NAMESPACE_BYTES = uuid.NAMESPACE_URL.bytes
OBSERVABLE = "https://ontology.unifiedcyberontology.org/uco/observable/"
LOCATION = "https://ontology.unifiedcyberontology.org/uco/location/"
CONTEXT = {
    "kb": KB,
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-location": LOCATION,
    "uco-observable": OBSERVABLE,
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
#: The catalog's digests as UCO's HashNameVocab names them (BLAKE2b is not in it: it goes in
#: the file's description).
HASH_NAMES = {"sha256": "SHA256", "md5": "MD5", "sha1": "SHA1", "sha512": "SHA512"}
#: UCO's hash name -> the catalog's (case_utils names a hash node's UUID with the latter).
_CASE_UTILS_HASH = {uco: ours for ours, uco in HASH_NAMES.items()}


# -- identifiers and literals -------------------------------------------------------------------


def uuid5_text(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(uuid.UUID(bytes=namespace), name))``, made without the two ``UUID``
    objects (RFC 9562 section 5.5: SHA-1 of the namespace's 16 bytes and the name's UTF-8, its
    first 16 bytes with the version, 5, and the variant set).  A CASE export names every node
    so, several times a record; ``tests/test_export_case.py`` holds the two equal."""
    made = bytearray(hashlib.sha1(namespace + name.encode("utf-8"), usedforsecurity=False).digest()[:16])
    made[6] = (made[6] & 0x0F) | 0x50
    made[8] = (made[8] & 0x3F) | 0x80
    text = made.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=4096)
def _namespace_of(identifier: str) -> bytes:
    """The 16 bytes of the UUID that ends a node's IRI (the namespace of its facets' ids)."""
    return uuid.UUID(identifier[-36:]).bytes


def node_id(kind: str, name: str) -> str:
    """The IRI (compact, ``kb:``) of a node of class *kind* named *name*: uuid5 of both, so a
    record, artifact or event has the same node in every export."""
    return f"kb:{kind}-{uuid5_text(_NAMESPACE_BYTES, kind + ':' + name)}"


def facet_id(object_id: str, facet_iri: str) -> str:
    """A facet's IRI as ``case_utils.inherent_uuid.get_facet_uriref`` makes it: uuid5 of the
    facet class IRI in the namespace of the object's UUID."""
    return f"kb:{facet_iri.rsplit('/', 1)[-1]}-{uuid5_text(_namespace_of(object_id), facet_iri)}"


def hash_id(method: str, hex_value: str) -> str:
    """A hash node's IRI as ``case_utils.inherent_uuid.hash_method_value_uuid`` makes it."""
    name = f"urn:hash::{_CASE_UTILS_HASH[method]}:{hex_value.lower()}"
    return f"kb:Hash-{uuid5_text(_URL_NAMESPACE_BYTES, name)}"


def date_time(value: Any) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": format_timestamp(value)}


def decimal_literal(value: float) -> dict[str, str]:
    """*value* as an ``xsd:decimal`` (a JSON number with a point would be read as a double):
    the shortest text that reads back as the same float, without an exponent."""
    text = format(decimal.Decimal(repr(float(value))), "f")
    return {"@type": "xsd:decimal", "@value": text}


def ref(identifier: str) -> dict[str, str]:
    return {"@id": identifier}


def scoped(name: str, scope: str) -> str:
    """*name* for an id, made particular to *scope* when a redaction replaced part of it: two
    different withheld values must not become one node."""
    return f"{scope}|{name}" if WITHHELD_MARK in name else name


def _lines(*parts: object) -> str | None:
    """The texts among *parts* (the others are ``None``, ``False``, empty), one a line."""
    shown = [p for p in parts if isinstance(p, str) and p]
    return "\n".join(shown) if shown else None


def _put(node: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != [] and value != "":
        node[key] = value


# -- the writer ---------------------------------------------------------------------------------


class CaseWriter:
    """Writes one JSON-LD document, ``@graph`` item by item (the nodes of records and events are
    made by :mod:`evidence_catalog.interchange.case_records`), then :meth:`finish`.  Shared nodes
    (files, URLs, people, tools, places) are written once, where first met; what is kept between
    records is their ids, each record's last custody node and the records' ids."""

    def __init__(self, stream: TextSink, *, exported_ids: Iterable[str] | None = None) -> None:
        self.stream = stream
        self.first = True
        self.written: set[str] = set()
        self.records: list[str] = []
        self.created: dict[str, Any] = {}
        self.chain: dict[str, str] = {}  # record id -> its last custody ProvenanceRecord
        self.exported = None if exported_ids is None else set(exported_ids)
        self.events = 0
        #: Whether a redaction withheld something from a record written: an earlier export's
        #: digest and size then stay out (they would confirm a guess at what it held).
        self.withholding = False
        self._agents: dict[tuple[model.Agent, str], str] = {}
        stream.write('{\n"@context": ' + json.dumps(CONTEXT, indent=1) + ',\n"@graph": [\n')

    def emit(self, node: dict[str, Any]) -> str:
        """Write *node* (once per id); return its id."""
        identifier: str = node["@id"]
        if identifier in self.written:
            return identifier
        self.written.add(identifier)
        self.stream.write(("" if self.first else ",\n") + json.dumps(node, ensure_ascii=False))
        self.first = False
        return identifier

    # -- shared nodes --

    def agent(self, agent: model.Agent, scope: str = "") -> str:
        """The node of a person, organisation or piece of software (made once for each agent
        and scope: the same few act in most events)."""
        made = self._agents.get((agent, scope))
        if made is not None:
            return made
        made = self._agents[(agent, scope)] = self._agent(agent, scope)
        return made

    def _agent(self, agent: model.Agent, scope: str) -> str:
        key = canonical_json(unstructure(agent)).decode("utf-8")
        if agent.kind is model.AgentKind.SOFTWARE:
            node: dict[str, Any] = {"@id": node_id("Tool", scoped(key, scope)), "@type": "uco-tool:Tool"}
            node["uco-core:name"] = agent.name
            _put(node, "uco-tool:version", agent.version)
        else:
            kind = "Organization" if agent.kind is model.AgentKind.ORGANIZATION else "Person"
            node = {"@id": node_id(kind, scoped(key, scope)), "@type": f"uco-identity:{kind}"}
            node["uco-core:name"] = agent.name
        _put(
            node,
            "uco-core:description",
            _lines(
                agent.email and f"email: {agent.email}",
                agent.organization and f"organization: {agent.organization}",
                agent.host and f"host: {agent.host}",
                agent.kind is model.AgentKind.SOFTWARE and agent.version is None and "version: not recorded",
            ),
        )
        return self.emit(node)

    def url(self, text: str, scope: str) -> str:
        """The node of a URL, with what of its parts can be told."""
        node: dict[str, Any] = {"@id": node_id("URL", scoped(text, scope)), "@type": "uco-observable:URL"}
        facet: dict[str, Any] = {
            "@id": facet_id(node["@id"], OBSERVABLE + "URLFacet"),
            "@type": "uco-observable:URLFacet",
            "uco-observable:fullValue": text,
        }
        try:
            parts = urllib.parse.urlsplit(text)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is not None and parts.scheme and parts.netloc and WITHHELD_MARK not in parts.netloc:
            facet["uco-observable:scheme"] = parts.scheme
            if port is not None:
                facet["uco-observable:port"] = port
            _put(facet, "uco-observable:path", parts.path)
            _put(facet, "uco-observable:query", parts.query)
            _put(facet, "uco-observable:fragment", parts.fragment)
        node["uco-core:hasFacet"] = facet
        return self.emit(node)

    def location(self, position: model.GeoPosition, name: str | None = None) -> str:
        """The node of a position (latitude, longitude, altitude as decimals)."""
        key = f"{position.latitude!r},{position.longitude!r},{position.altitude_m!r}"
        node: dict[str, Any] = {"@id": node_id("Location", key), "@type": "uco-location:Location"}
        facet: dict[str, Any] = {
            "@id": facet_id(node["@id"], LOCATION + "LatLongCoordinatesFacet"),
            "@type": "uco-location:LatLongCoordinatesFacet",
            "uco-location:latitude": decimal_literal(position.latitude),
            "uco-location:longitude": decimal_literal(position.longitude),
        }
        if position.altitude_m is not None:
            facet["uco-location:altitude"] = decimal_literal(position.altitude_m)
        node["uco-core:hasFacet"] = facet
        return self.emit(node)

    def file(self, artifact: model.Artifact) -> str:
        """The node of an artifact: one per SHA-256, with its digests, size, media type and the
        embedded metadata the catalog read (none for an artifact a redaction withholds)."""
        identifier = node_id("File", "sha256:" + artifact.sha256)
        if identifier in self.written:
            return identifier
        digests = artifact.digests.as_dict()
        hashes = [
            {
                "@id": hash_id(HASH_NAMES[name], value),
                "@type": "uco-types:Hash",
                "uco-types:hashMethod": HASH_NAMES[name],
                "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": value.upper()},
            }
            for name, value in digests.items()
            if name in HASH_NAMES
        ]
        facets: list[dict[str, Any]] = [
            {
                "@id": facet_id(identifier, OBSERVABLE + "FileFacet"),
                "@type": "uco-observable:FileFacet",
                "uco-observable:sizeInBytes": artifact.size,
            },
            {
                "@id": facet_id(identifier, OBSERVABLE + "ContentDataFacet"),
                "@type": "uco-observable:ContentDataFacet",
                "uco-observable:mimeType": artifact.media_type,
                "uco-observable:sizeInBytes": artifact.size,
                "uco-observable:hash": hashes,
            },
        ]
        described = [f"artifact sha256:{artifact.sha256}"]
        if "blake2b" in digests:
            described.append(f"BLAKE2b-512: {digests['blake2b']}")
        located: list[str] = []
        metadata = artifact.metadata
        if metadata is not None:
            if metadata.image is not None:
                facets.append(
                    {
                        "@id": facet_id(identifier, OBSERVABLE + "RasterPictureFacet"),
                        "@type": "uco-observable:RasterPictureFacet",
                        "uco-observable:pictureWidth": metadata.image.width,
                        "uco-observable:pictureHeight": metadata.image.height,
                    }
                )
            if metadata.exif is not None:
                facets.append(self._exif_facet(identifier, metadata.exif))
                if metadata.exif.gps is not None:
                    located.append(self.location(metadata.exif.gps))
            if metadata.media is not None:
                described.append(_media_line(metadata.media))
                if metadata.media.location is not None and metadata.media.location.position is not None:
                    located.append(self.location(metadata.media.location.position))
            described += [f"metadata error: {error}" for error in metadata.errors]
        node = {
            "@id": identifier,
            "@type": "uco-observable:File",
            "uco-core:description": "\n".join(described),
            "uco-core:hasFacet": facets,
        }
        self.emit(node)
        for place in dict.fromkeys(located):
            self.emit(
                {
                    "@id": node_id("Relationship", f"located:{artifact.sha256}:{place}"),
                    "@type": "uco-core:Relationship",
                    "uco-core:source": ref(identifier),
                    "uco-core:target": ref(place),
                    "uco-core:kindOfRelationship": "Mapped_By",
                    "uco-core:isDirectional": True,
                    "uco-core:description": "the position the file's embedded metadata gives",
                }
            )
        return identifier

    def _exif_facet(self, file_id: str, exif: model.ExifData) -> dict[str, Any]:
        entries = dict(exif.raw)
        for key, value in (
            ("Make", exif.make),
            ("Model", exif.model),
            ("Software", exif.software),
            ("DateTimeOriginal", exif.datetime_original),
        ):
            if value is not None:
                entries.setdefault(key, value)
        dictionary = node_id("ControlledDictionary", "exif:" + file_id)
        return {
            "@id": facet_id(file_id, OBSERVABLE + "EXIFFacet"),
            "@type": "uco-observable:EXIFFacet",
            "uco-observable:exifData": {
                "@id": dictionary,
                "@type": "uco-types:ControlledDictionary",
                "uco-types:entry": [
                    {
                        "@id": f"kb:ControlledDictionaryEntry-{uuid5_text(_namespace_of(dictionary), key)}",
                        "@type": "uco-types:ControlledDictionaryEntry",
                        "uco-types:key": key,
                        "uco-types:value": value,
                    }
                    for key, value in sorted(entries.items())
                ],
            },
        }

    def record_id(self, record_id: str) -> str:
        return node_id("ProvenanceRecord", "record:" + record_id)

    def finish(self, *, exported_at: Any, exported_by: model.Agent, generator: model.Agent, note: str | None) -> None:
        """Write the Investigation that holds the records, and end the document."""
        by = self.agent(exported_by)
        identifier = node_id("Investigation", f"export:{format_timestamp(exported_at)}:{uuid.uuid4()}")
        node: dict[str, Any] = {
            "@id": identifier,
            "@type": "case-investigation:Investigation",
            "uco-core:name": "evidence-catalog export",
            "case-investigation:investigationForm": "case",
            "uco-core:description": _lines(
                f"{len(self.records)} evidence record(s) exported by {generator.name} {generator.version or ''}",
                note,
            ),
            "uco-core:createdBy": ref(by),
            "uco-core:objectCreatedTime": date_time(exported_at),
        }
        _put(node, "uco-core:object", [ref(self.record_id(r)) for r in self.records])
        self.emit(node)
        self.stream.write("\n]\n}\n")


def _media_line(media: model.MediaInfo) -> str:
    streams = ", ".join(
        " ".join(
            part
            for part in (
                s.kind.value,
                s.codec or "",
                f"{s.width}x{s.height}" if s.width and s.height else "",
                f"{s.duration_s:g} s" if s.duration_s else "",
            )
            if part
        )
        for s in media.streams
    )
    duration = f", {media.duration_s:g} s" if media.duration_s else ""
    return f"media container: {media.format}{duration}" + (f"; streams: {streams}" if streams else "")
