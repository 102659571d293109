"""The converter keeps the agents it made lately (``serialize._remembered_agents``): an agent it
hands back from what it kept must be exactly the agent it would make of that document again, and
a document it refuses is refused as before, however often it was seen."""

from __future__ import annotations

from typing import Any

from cattrs.preconf.json import make_converter
from hypothesis import given
from hypothesis import strategies as st

from evidence_catalog import model
from evidence_catalog.serialize import structure


class Text(str):
    """Text of a subclass: equal to the plain text, but not the same value."""


#: A converter made as the library's is (an agent has no member it makes otherwise), keeping nothing.
reference = make_converter(forbid_extra_keys=True)

members = st.sampled_from(["name", "kind", "email", "organization", "version", "host", "extra"])
member_values = st.one_of(
    st.none(),
    st.sampled_from(["analyst", "person", "software", " ", "", "Наблюдатель", "a@example.org"]),
    st.sampled_from([model.AgentKind.PERSON, Text("analyst"), Text("person"), 1, True, 1.5, ["x"], {"a": 1}]),
)


def made(make: Any) -> tuple[str, Any]:
    try:
        return "made", make()
    except Exception as exc:  # noqa: BLE001 -- any error: compared with the other way's
        return "refused", (type(exc), str(exc))


def unkept(document: Any) -> tuple[str, Any]:
    """The agent a converter that has kept nothing makes of *document* (a new one each time)."""
    return made(lambda: reference.structure(document, model.Agent))


@given(st.lists(st.dictionaries(members, member_values, max_size=7), min_size=1, max_size=6))
def test_a_kept_agent_is_the_agent_the_document_makes(documents: list[dict[str, Any]]) -> None:
    for document in documents * 2:  # each seen twice: the second may come from what was kept
        expected = unkept(document)
        found = made(lambda document=document: structure(document, model.Agent))
        if expected[0] == "refused":
            assert found[0] == "refused"
            continue
        assert found[0] == "made"
        agent = found[1]
        assert agent == expected[1]
        # Equal is not enough: every member of the same type (text of a subclass is not kept).
        assert [type(getattr(agent, f)) for f in ("name", "kind", "email")] == [
            type(getattr(expected[1], f)) for f in ("name", "kind", "email")
        ]


def test_agents_in_records_are_kept_and_an_edited_one_is_not_confused_with_it() -> None:
    document = {"name": "analyst", "kind": "person", "email": None}
    first = structure(document, model.Agent)
    assert structure(dict(document), model.Agent) is first
    assert structure({**document, "name": "analyst "}, model.Agent).name == "analyst "
    assert structure({**document, "kind": "software"}, model.Agent).kind is model.AgentKind.SOFTWARE
    assert structure({**document, "name": Text("analyst")}, model.Agent) is not first
