"""Interchange with other tools and organisations: BagIt packages, W3C PROV-JSON, redaction and
import (see ``docs/interchange.md``)."""
