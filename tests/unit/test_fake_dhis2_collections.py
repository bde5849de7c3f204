"""The fake DHIS2's collection endpoints answer as DHIS2's collection service does."""

import pytest
import requests

from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER
from tests.unit.test_fake_dhis2 import server

AUTH = (DHIS2_USER, DHIS2_PASSWORD)
PROGRAM = Setup().programs["insuree"]
VILLAGE_OU = org_unit_uid(samples.VILLAGE)


@pytest.fixture
def dhis2():
    running = server()
    yield running
    running.stop()


def add(running, path, *members):
    body = {"additions": [{"id": m} for m in members]}
    return requests.post(f"{running.url}/api/{path}", json=body, auth=AUTH, timeout=10)


def test_adding_to_an_owner_dhis2_does_not_have_is_404_naming_it(dhis2):
    resp = add(dhis2, "organisationUnitGroups/Nonexistent1/organisationUnits", VILLAGE_OU)
    assert resp.status_code == 404
    assert resp.json()["message"] == "OrganisationUnitGroup with id Nonexistent1 could not be found."


def test_adding_to_a_property_the_owner_lacks_is_404(dhis2):
    resp = add(dhis2, f"programs/{PROGRAM}/dataSets", VILLAGE_OU)
    assert resp.status_code == 404 and "Property dataSets does not exist" in resp.json()["message"]


def test_members_dhis2_does_not_have_are_left_out_and_the_others_added(dhis2):
    dhis2.fake.store.programs[PROGRAM]["organisationUnits"] = []
    resp = add(dhis2, f"programs/{PROGRAM}/organisationUnits", "Nonexistent2", VILLAGE_OU)
    assert resp.status_code == 204
    assert dhis2.fake.store.programs[PROGRAM]["organisationUnits"] == [{"id": VILLAGE_OU}]
