"""The fake DHIS2's lists answer in each version's terms: parameters, paging and the shape of the answer."""

import pytest

from fake_dhis2.lists import metadata_list, tracker_list
from fake_dhis2.store import Store

TET = "EoBGArVCQ69"


@pytest.fixture
def store():
    s = Store()
    for i in range(60):
        uid = f"Tracked{i:04d}"
        s.tracked_entities[uid] = {"trackedEntity": uid, "trackedEntityType": TET, "attributes": {}}
        s.org_units[f"OrgUnit{i:04d}"] = {"id": f"OrgUnit{i:04d}", "name": str(i)}
    return s


def test_metadata_lists_hold_the_objects_filtered_by_id(store):
    status, doc = metadata_list(store, "organisationUnits", {"filter": "id:in:[OrgUnit0001,Nowhere0001]"})
    assert status == 200 and doc["organisationUnits"] == [{"id": "OrgUnit0001"}]


def test_before_241_tracked_entities_are_asked_with_semicolons_and_answered_as_instances(store):
    params = {"trackedEntity": "Tracked0001;Tracked0002", "ouMode": "ACCESSIBLE", "trackedEntityType": TET}
    status, doc = tracker_list(store, "trackedEntities", params, (2, 40))
    assert status == 200 and [i["trackedEntity"] for i in doc["instances"]] == ["Tracked0001", "Tracked0002"]


def test_from_242_the_semicolon_parameter_is_ignored_and_a_page_of_everything_comes_back(store):
    params = {"trackedEntity": "Tracked0001", "orgUnitMode": "ACCESSIBLE", "trackedEntityType": TET}
    status, doc = tracker_list(store, "trackedEntities", params, (2, 42))
    assert status == 200 and len(doc["trackedEntities"]) == 50


def test_tracked_entities_are_not_listed_without_a_type_or_program(store):
    params = {"trackedEntities": "Tracked0001", "orgUnitMode": "ACCESSIBLE"}
    assert tracker_list(store, "trackedEntities", params, (2, 41))[0] == 400
