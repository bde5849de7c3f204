"""The fake DHIS2's aggregate side refuses what DHIS2 refuses: option combos exist only once the maintenance task
made them; a data value names a known data element, org unit, period and option combos of the right combos, on an
org unit its data set is assigned to; the summary comes bare with 200 before 2.38 and in a WebMessage, 409 on any
conflict, from 2.38."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.aggregates import cubes
from mediator.aggregates.cubes import Options
from mediator.aggregates.metadata import payload
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, seed

AUTH = (DHIS2_USER, DHIS2_PASSWORD)
WARD_OU = org_unit_uid(samples.VILLAGE)  # the seeded org unit stands in for a ward here
NB_INSUREES = cubes.ENROLMENT.element("NB_INSUREES")


def start(version: str) -> RunningFake:
    fake = FakeDhis2(version=version, users={DHIS2_USER: DHIS2_PASSWORD})
    seed(fake)
    return RunningFake(fake).start()


@pytest.fixture(params=["2.37.9", "2.40.3"])
def dhis2(request: Any) -> Iterator[RunningFake]:
    running = start(request.param)
    metadata = payload(Options(product={"BCUL0001": "Basic"}), {"ENROLMENT": [WARD_OU]})
    answer = requests.post(f"{running.url}/api/metadata", json=metadata, auth=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    yield running
    running.stop()


def combos(running: RunningFake) -> dict[frozenset[str], str]:
    answer = requests.get(
        f"{running.url}/api/categoryOptionCombos",
        params={"filter": f"categoryCombo.id:in:[{NB_INSUREES.combo_uid}]"},
        auth=AUTH,
        timeout=10,
    )
    return {frozenset(o["id"] for o in c["categoryOptions"]): c["id"] for c in answer.json()["categoryOptionCombos"]}


def value(running: RunningFake, **changes: Any) -> dict[str, Any]:
    coc = combos(running)[frozenset({cubes.option_uid("P0Y-P5Y"), cubes.option_uid("F")})]
    doc = {
        "dataElement": NB_INSUREES.uid,
        "period": "202405",
        "orgUnit": WARD_OU,
        "categoryOptionCombo": coc,
        "attributeOptionCombo": "HllvX50cXC0",
        "value": "3",
    }
    return {**doc, **changes}


def post(running: RunningFake, values: list[dict[str, Any]], strategy: str = "CREATE_AND_UPDATE") -> Any:
    return requests.post(
        f"{running.url}/api/dataValueSets",
        params={"importStrategy": strategy},
        json={"dataValues": values},
        auth=AUTH,
        timeout=10,
    )


def summary(answer: Any, running: RunningFake) -> dict[str, Any]:
    body = answer.json()
    return body if running.fake.v < (2, 38) else body["response"]


def test_option_combos_come_only_from_the_maintenance_task(dhis2):
    assert combos(dhis2) == {}
    requests.post(f"{dhis2.url}/api/maintenance/categoryOptionComboUpdate", auth=AUTH, timeout=10)
    made = combos(dhis2)
    assert len(made) == len(cubes.age_bands()) * 3  # every age band with every sex


def test_values_are_imported_updated_and_deleted(dhis2):
    requests.post(f"{dhis2.url}/api/maintenance/categoryOptionComboUpdate", auth=AUTH, timeout=10)
    first = post(dhis2, [value(dhis2)])
    assert first.status_code == 200 and summary(first, dhis2)["importCount"]["imported"] == 1
    again = post(dhis2, [value(dhis2, value="4")])
    assert summary(again, dhis2)["importCount"]["updated"] == 1
    assert list(dhis2.fake.store.data_values.values()) == ["4"]
    gone = post(dhis2, [value(dhis2)], "DELETE")
    assert summary(gone, dhis2)["importCount"]["deleted"] == 1 and dhis2.fake.store.data_values == {}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"dataElement": "Aaaaaaaaaaa"}, "E7610"),
        ({"period": "2024-05"}, "E7611"),
        ({"orgUnit": "Aaaaaaaaaaa"}, "E7612"),
        ({"categoryOptionCombo": "Aaaaaaaaaaa"}, "E7613"),
        ({"categoryOptionCombo": "HllvX50cXC0"}, "E7614"),
        ({"value": "three"}, "E7619"),
    ],
)
def test_a_value_dhis2_refuses_is_a_conflict_and_the_rest_goes_in(dhis2, change, code):
    requests.post(f"{dhis2.url}/api/maintenance/categoryOptionComboUpdate", auth=AUTH, timeout=10)
    good = value(dhis2, period="202406")
    answer = post(dhis2, [value(dhis2, **change), good])
    found = summary(answer, dhis2)
    assert answer.status_code == (409 if dhis2.fake.v >= (2, 38) else 200)
    assert found["status"] == "WARNING" and found["importCount"]["imported"] == 1
    assert [c.get("errorCode") for c in found["conflicts"]] == [code] and found["conflicts"][0]["indexes"] == [0]


def test_an_org_unit_its_data_set_is_not_assigned_to_is_refused(dhis2):
    requests.post(f"{dhis2.url}/api/maintenance/categoryOptionComboUpdate", auth=AUTH, timeout=10)
    dhis2.fake.store.data_sets[cubes.ENROLMENT.uid]["organisationUnits"] = []
    found = summary(post(dhis2, [value(dhis2)]), dhis2)
    assert found["status"] == "ERROR" and found["conflicts"][0]["errorCode"] == "E7617"


def test_category_option_codes_and_names_are_unique():
    running = start("2.40.3")
    try:
        clash = {"categoryOptions": [{"id": "Aaaaaaaaaa1", "name": "a", "shortName": "a", "code": "M"}]}
        requests.post(f"{running.url}/api/metadata", json=clash, auth=AUTH, timeout=10)
        metadata = payload(Options(), {})
        answer = requests.post(f"{running.url}/api/metadata", json=metadata, auth=AUTH, timeout=10)
        assert answer.status_code == 409 and "`code` with value `M` must be unique" in answer.text
    finally:
        running.stop()


def test_adx_that_is_not_adx_is_refused_whole(dhis2):
    answer = requests.post(
        f"{dhis2.url}/api/dataValueSets",
        data=b"<dataValueSet/>",
        headers={"Content-Type": "application/adx+xml"},
        auth=AUTH,
        timeout=10,
    )
    assert answer.status_code == 409 and dhis2.fake.store.data_values == {}
