"""The public surface is pinned: the names ``evidence_catalog`` exports and the signature of
every public method and property of :class:`~evidence_catalog.Catalog` and of the result types.

A restructuring moves code between modules; it must not change what a researcher's script
calls.  ``tests/data/public_api.txt`` is the surface as released; a change to it is a change of
the library's API, made on purpose (run this file with ``--update-public-api`` to rewrite it
and review the diff).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pytest

import evidence_catalog

PINNED = Path(__file__).parent / "data" / "public_api.txt"


def _signature(function: object) -> str:
    """A signature as text, without the memory addresses of default values."""
    return re.sub(r" at 0x[0-9a-f]+>", ">", str(inspect.signature(function)))  # type: ignore[arg-type]


def _type_name(kind: object) -> str:
    """A field's type as text, without module prefixes."""
    text = kind.__name__ if isinstance(kind, type) else str(kind)
    return re.sub(r"\b(?:[a-z_][a-z0-9_]*\.)+", "", text)


def _made(owner: type) -> dict[str, object]:
    """The class's own attributes once every method is made: ``Catalog`` makes a method whose
    operation lives in a module it does not import at once when the method is first looked up
    (``catalog._LaterMethod``), and puts the function in its place."""
    for name in list(vars(owner)):
        getattr(owner, name)
    return dict(vars(owner))


def _members(owner: type) -> list[str]:
    lines = []
    for name, value in sorted(_made(owner).items()):
        if name.startswith("_") and name not in ("__init__", "__enter__", "__exit__"):
            continue
        if isinstance(value, property):
            lines.append(f"{owner.__name__}.{name}: property")
        elif isinstance(value, (classmethod, staticmethod)):
            kind = type(value).__name__
            lines.append(f"{owner.__name__}.{name}{_signature(value.__func__)} [{kind}]")
        elif inspect.isfunction(value):
            lines.append(f"{owner.__name__}.{name}{_signature(value)}")
    return lines


def surface() -> str:
    """The public API as text, one name or signature per line."""
    lines = [f"__all__: {name}" for name in sorted(evidence_catalog.__all__)]
    for name in sorted(evidence_catalog.__all__):
        value = getattr(evidence_catalog, name)
        if inspect.isclass(value) and value.__module__.startswith("evidence_catalog"):
            if name == "Catalog" or name.endswith(("Result", "Report", "Hit")):
                lines.extend(_members(value))
            if hasattr(value, "__attrs_attrs__"):
                attrs.resolve_types(value)  # as cattrs leaves them, whatever ran before
                fields = ", ".join(f"{a.name}: {_type_name(a.type)}" for a in attrs.fields(value))
                lines.append(f"{name} fields: {fields}")
        elif inspect.isfunction(value):
            lines.append(f"{name}{_signature(value)}")
    return "\n".join(lines) + "\n"


def test_every_exported_name_resolves() -> None:
    for name in evidence_catalog.__all__:
        assert hasattr(evidence_catalog, name), name


def test_the_public_surface_is_the_pinned_one(request: pytest.FixtureRequest) -> None:
    now = surface()
    if request.config.getoption("--update-public-api"):
        PINNED.write_text(now, encoding="utf-8")
    pinned = PINNED.read_text(encoding="utf-8")
    missing = sorted(set(pinned.splitlines()) - set(now.splitlines()))
    added = sorted(set(now.splitlines()) - set(pinned.splitlines()))
    assert not missing and not added, f"changed or removed: {missing}\nnew: {added}"


def test_every_public_catalog_method_is_documented_where_a_user_looks() -> None:
    """A method that delegates carries its operation's documentation: ``help(Catalog.add)``
    shows what ``add`` does, under the method's own name, with ``self`` first."""
    from evidence_catalog import Catalog

    for name, value in _made(Catalog).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        doc = inspect.getdoc(value) or ""
        assert len(doc) > 20, f"Catalog.{name} has no documentation of substance"
        assert value.__qualname__ == f"Catalog.{name}"
        assert next(iter(inspect.signature(value).parameters)) == "self", name
    assert "directories" in (inspect.getdoc(Catalog.add) or "")
    assert "BagIt 1.0 bag" in (inspect.getdoc(Catalog.export) or "")


def test_a_delegated_method_checks_its_arguments_as_the_operation_does(tmp_path: Path) -> None:
    """Arguments pass through unchanged, by position or by name; a wrong one is a TypeError."""
    from evidence_catalog import Catalog

    photo = tmp_path / "photo.bin"
    photo.write_bytes(b"\x00\x01")
    with Catalog.init(tmp_path / "c", operator="tester") as catalog:
        [by_position] = catalog.add([photo])
        by_name = catalog.add_file(path=photo, note="again")
        assert by_name.record_id == by_position.record_id
        with pytest.raises(TypeError):
            catalog.add_file(photo, no_such_option=True)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            catalog.tag()  # type: ignore[call-arg]
