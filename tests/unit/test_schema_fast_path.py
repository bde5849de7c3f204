"""The schemas skip what marshmallow would do for nothing (absent optional fields, validation of fields that have
no validators), and the compiled readers skip marshmallow for valid input: the records they give and the errors they
name are marshmallow's own, valid input or not."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from mediator.openimis import compiled, schemas
from mediator.openimis.schemas import SCHEMAS
from tests import samples

DATA = Path(__file__).resolve().parents[1] / "data" / "openimis-24.04"


def corpus():
    found = [samples.patient(), samples.group(), *samples.locations(), samples.coverage(), samples.contract(),
             samples.claim(), samples.claim_response(), *samples.code_lists_for_claims(),
             samples.facility_organization(samples.HOSPITAL, "HF1", "Hospital")]  # fmt: skip
    for path in sorted(DATA.glob("*.json")):
        doc = json.loads(path.read_text())
        found += [e["resource"] for e in doc.get("entry", [])[:5]]
    return [r for r in found if r.get("resourceType") in SCHEMAS]


CORPUS = corpus()


def load(resource, stock):
    """What the resource's schema gives: a record, or the errors; with marshmallow's own loop when `stock`."""
    original = schemas._Base._deserialize
    if stock:
        schemas._Base._deserialize = Schema._deserialize  # type: ignore[method-assign]
    try:
        return "record", SCHEMAS[resource["resourceType"]].load(resource)
    except ValidationError as exc:
        return "errors", exc.messages
    finally:
        schemas._Base._deserialize = original  # type: ignore[method-assign]


def fast(resource):
    """What the compiled reader gives: a record, or None when it leaves the resource to marshmallow."""
    try:
        return compiled.compiled(SCHEMAS[resource["resourceType"]])(copy.deepcopy(resource))
    except compiled.GiveUp:
        return None


def agrees(resource):
    """The compiled reader gives marshmallow's record, or gives up where marshmallow names errors."""
    stock = load(resource, stock=True)
    found = fast(resource)
    if stock[0] == "errors":
        return found is None
    return found is None or found == stock[1]


def places(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from places(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from places(v, (*path, i))


VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.just("2020-02-30")
    | st.lists(st.none() | st.text(max_size=3), max_size=2)
    | st.dictionaries(st.sampled_from(["code", "value", "url", "reference"]), st.text(max_size=4), max_size=2)
)  # noqa: E501


def test_every_resource_of_the_corpus_gives_what_marshmallow_gives():
    assert len(CORPUS) > 30
    for resource in CORPUS:
        assert load(resource, stock=False) == load(resource, stock=True)
        assert agrees(resource)


def test_the_compiled_readers_read_every_valid_resource_of_the_corpus_themselves():
    valid = [r for r in CORPUS if load(r, stock=True)[0] == "record"]
    assert len(valid) > 30
    for resource in valid:
        assert fast(resource) == load(resource, stock=True)[1], resource.get("id")


def test_load_names_the_errors_marshmallow_names():
    resource = copy.deepcopy(samples.patient())
    resource["birthDate"] = "2020-02-30"
    resource["gender"] = 7
    assert fast(resource) is None
    with pytest.raises(ValidationError) as exc:
        compiled.load(SCHEMAS["Patient"], resource)
    assert exc.value.messages == load(resource, stock=True)[1]
    assert set(exc.value.messages) == {"birthDate", "gender"}


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_a_resource_changed_anywhere_gives_what_marshmallow_gives(data):
    resource = copy.deepcopy(data.draw(st.sampled_from(CORPUS)))
    spots = [p for p in places(resource) if p and p[0] != "resourceType"]
    top = [p for p in spots if len(p) == 1]  # where most validators are: drawn as often as all the rest
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(top if data.draw(st.booleans()) else spots))
        parent = resource
        try:
            for step in path[:-1]:
                parent = parent[step]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    assert load(resource, stock=False) == load(resource, stock=True)
    assert agrees(resource)
