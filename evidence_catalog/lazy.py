"""Names of a package loaded from their modules when first asked for (PEP 562): what a
package's ``__init__`` offers without importing what each name needs until it is used
(``evidence_catalog`` itself, its capture and its extractors)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_names(
    package: str, homes: Mapping[str, str], listed: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for *package*: each name of *homes* is imported
    from the submodule it names the first time it is asked for, and kept in the package; ``dir``
    lists the package's names and *listed* (its ``__all__``)."""
    names = frozenset(listed)

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def listing() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | names)

    return load, listing
