"""The vocabulary of alleged violations a claim can name (``Claim.category``).

Built in: the war crimes of the Rome Statute of the International Criminal Court (article 8)
that open-source investigations most often document, and two crimes against humanity of
article 7.  A code names the provision (``rome-8-2-b-vi`` is article 8(2)(b)(vi)).  A catalog
can define more categories of its own (``Catalog.define_category``, logged as
``category.defined``), e.g. for a domestic criminal code; a built-in code is never redefined.

A category only says what a claim *alleges*: it is never a legal qualification of the facts.
"""

from __future__ import annotations

import re

from attrs import field, frozen

from evidence_catalog.errors import ModelError

#: A category code: lower-case letters, digits, ``.`` and ``-``, starting with a letter or digit.
CODE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


def _code(_: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or CODE.fullmatch(value) is None:
        raise ModelError(
            f"category code {value!r} must be 1-64 lower-case letters, digits, '.' or '-', "
            "starting with a letter or digit"
        )


def _label(_: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ModelError("a category needs a label")


@frozen
class Category:
    """An alleged violation a claim can name: its code, a short label, the provision it follows."""

    code: str = field(validator=_code)
    label: str = field(validator=_label)
    reference: str | None = None


BUILTIN_CATEGORIES: tuple[Category, ...] = (
    Category(
        "rome-8-2-a-i", "Wilful killing of a protected person (e.g. a prisoner of war)", "Rome Statute art. 8(2)(a)(i)"
    ),
    Category("rome-8-2-a-ii", "Torture or inhuman treatment of a protected person", "Rome Statute art. 8(2)(a)(ii)"),
    Category(
        "rome-8-2-a-iii",
        "Wilfully causing great suffering, or serious injury to body or health",
        "Rome Statute art. 8(2)(a)(iii)",
    ),
    Category(
        "rome-8-2-a-iv",
        "Extensive destruction or appropriation of property not justified by military necessity",
        "Rome Statute art. 8(2)(a)(iv)",
    ),
    Category(
        "rome-8-2-a-vii",
        "Unlawful deportation or transfer, or unlawful confinement",
        "Rome Statute art. 8(2)(a)(vii)",
    ),
    Category("rome-8-2-b-i", "Intentional attack on civilians", "Rome Statute art. 8(2)(b)(i)"),
    Category("rome-8-2-b-ii", "Intentional attack on civilian objects", "Rome Statute art. 8(2)(b)(ii)"),
    Category(
        "rome-8-2-b-iv",
        "Attack in the knowledge of clearly excessive incidental civilian harm",
        "Rome Statute art. 8(2)(b)(iv)",
    ),
    Category(
        "rome-8-2-b-vi",
        "Killing or wounding a combatant who has surrendered",
        "Rome Statute art. 8(2)(b)(vi)",
    ),
    Category(
        "rome-8-2-b-viii",
        "Deportation or transfer of the population of an occupied territory",
        "Rome Statute art. 8(2)(b)(viii)",
    ),
    Category(
        "rome-8-2-b-ix",
        "Intentional attack on buildings for religion, education, art, science or charity, "
        "historic monuments or hospitals",
        "Rome Statute art. 8(2)(b)(ix)",
    ),
    Category(
        "rome-8-2-b-xxi",
        "Outrages upon personal dignity, in particular humiliating and degrading treatment",
        "Rome Statute art. 8(2)(b)(xxi)",
    ),
    Category("rome-7-1-d", "Deportation or forcible transfer of population", "Rome Statute art. 7(1)(d)"),
    Category("rome-7-1-f", "Torture (as a crime against humanity)", "Rome Statute art. 7(1)(f)"),
)

BUILTIN_CODES = frozenset(c.code for c in BUILTIN_CATEGORIES)
