"""The catalog's operations, one module each.

:class:`~evidence_catalog.Catalog` is a facade: it opens a catalog into a
:class:`~evidence_catalog.operations.context.Context` and hands each public call to a function
here that receives that context (never the facade).  See ``docs/architecture.md``.
"""
