"""The metadata channel: openIMIS locations, facilities and code lists become DHIS2 org units and options."""

import json

import pytest

from mediator.mapping.metadata import option_uid
from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, basic, mediator_client

SETUP = Setup()
METADATA_AUTH = basic("openhim-metadata", "metadata-route-pass")


@pytest.fixture
def dhis2(bootstrapped):
    return bootstrapped


@pytest.fixture
def client(dhis2, env):
    return mediator_client(env, dhis2_url=dhis2.url, channel_metadata_password="metadata-route-pass")


def post(client, doc, auth=METADATA_AUTH, path="/channels/metadata"):
    resp = client.post(path, data=json.dumps(doc), headers={**auth, "Content-Type": "application/json"})
    return resp, json.loads(resp.data)


def members(store, collection, uid):
    return {r["id"] for r in getattr(store, collection)[uid].get("organisationUnits") or []}


def test_locations_become_the_org_unit_hierarchy_under_the_root(client, dhis2):
    resp, env = post(client, samples.bundle(*samples.locations()))
    assert resp.status_code == 200, env["response"]["body"]
    units = dhis2.fake.store.org_units
    region, district = units[org_unit_uid(samples.REGION)], units[org_unit_uid(samples.DISTRICT)]
    assert region["parent"]["id"] == SETUP.root_org_unit
    assert district["parent"]["id"] == org_unit_uid(samples.REGION)
    assert units[org_unit_uid(samples.WARD)]["parent"]["id"] == org_unit_uid(samples.DISTRICT)
    assert units[org_unit_uid(samples.VILLAGE)]["parent"]["id"] == org_unit_uid(samples.WARD)
    assert units[org_unit_uid(samples.HOSPITAL)]["parent"]["id"] == org_unit_uid(samples.DISTRICT)
    assert district["name"] == "R1D1 - Rapta" and district["code"] == "R1D1"
    assert env["properties"]["records_delivered"] == "6"


def test_org_units_join_their_groups_and_programs(client, dhis2):
    post(client, samples.bundle(*samples.locations()))
    store = dhis2.fake.store
    groups = SETUP.org_unit_groups
    assert members(store, "org_unit_groups", groups["region"]) == {org_unit_uid(samples.REGION)}
    assert members(store, "org_unit_groups", groups["village"]) == {org_unit_uid(samples.VILLAGE)}
    assert members(store, "org_unit_groups", groups["hospital"]) == {org_unit_uid(samples.HOSPITAL)}
    assert members(store, "org_unit_groups", groups["legal_form_government"]) == {org_unit_uid(samples.HOSPITAL)}
    assert members(store, "programs", SETUP.programs["insuree"]) == {org_unit_uid(samples.VILLAGE)}
    assert members(store, "programs", SETUP.programs["claim"]) == {org_unit_uid(samples.HOSPITAL)}


def test_an_insuree_can_be_written_once_its_village_arrived(client, dhis2):
    post(client, samples.bundle(*samples.locations()))
    resp, env = post(client, samples.patient(), INSUREES_AUTH, "/channels/insurees")
    assert resp.status_code == 200, env["response"]["body"]


def test_code_lists_become_options_of_their_sets(client, dhis2):
    doc = samples.bundle(
        samples.code_list_entry("InsurancePlan", "p-1", "BCTA0001", "Basic Cover Tahida"),
        samples.code_list_entry("Medication", "m-1", "0001", "ASPIRIN 300MG"),
        samples.code_list_entry("ActivityDefinition", "a-1", "A1", "General Consultation"),
    )
    resp, env = post(client, doc)
    assert resp.status_code == 200, env["response"]["body"]
    store = dhis2.fake.store
    assert "BCTA0001" in store.option_codes(SETUP.option_sets["product"])
    assert "0001" in store.option_codes(SETUP.option_sets["item"])
    assert "A1" in store.option_codes(SETUP.option_sets["service"])
    assert store.options[option_uid(SETUP.option_sets["service"], "A1")]["name"] == "General Consultation"


def test_sending_metadata_again_changes_nothing(client, dhis2):
    doc = samples.bundle(*samples.locations(), samples.code_list_entry("InsurancePlan", "p-1", "BCTA0001", "Basic"))
    post(client, doc)
    store = dhis2.fake.store
    before = json.dumps([store.org_units, store.options, store.org_unit_groups, store.programs], sort_keys=True)
    resp, env = post(client, doc)
    assert resp.status_code == 200
    assert json.dumps([store.org_units, store.options, store.org_unit_groups, store.programs], sort_keys=True) == before


def test_a_location_whose_parent_is_nowhere_is_rejected_and_the_rest_goes(client, dhis2):
    orphan = samples.area(
        "aaaaaaaa-0000-0000-0000-000000000001", "V", "X1", "Nowhere", "bbbbbbbb-0000-0000-0000-000000000002"
    )
    resp, env = post(client, samples.bundle(*samples.locations(), orphan))
    assert resp.status_code == 422
    assert env["status"] == "Completed with error(s)"
    body = env["response"]["body"]
    assert "Location/aaaaaaaa-0000-0000-0000-000000000001" in body and "E5002" in body and "partOf" in body
    assert org_unit_uid(samples.VILLAGE) in dhis2.fake.store.org_units
    assert env["properties"]["records_delivered"] == "6"


def test_an_organization_alone_needs_its_district_known(client, dhis2):
    lone = samples.facility_organization("cccccccc-0000-0000-0000-000000000003", "NEW001", "New clinic")
    resp, env = post(client, lone)
    assert resp.status_code == 422
    assert "district is unknown" in env["response"]["body"]
    post(client, samples.bundle(*samples.locations()))
    resp, env = post(
        client, samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta Hospital", level="H", legal="P")
    )
    assert resp.status_code == 200, env["response"]["body"]
    assert org_unit_uid(samples.HOSPITAL) in members(
        dhis2.fake.store, "org_unit_groups", SETUP.org_unit_groups["legal_form_private"]
    )


def test_openimis_etl_uids_keep_what_openimis_own_module_wrote(dhis2, env):
    from mediator.mapping.uids import openimis_etl_uid

    client = mediator_client(
        env, dhis2_url=dhis2.url, channel_metadata_password="metadata-route-pass", uid_scheme="openimis-etl"
    )
    assert post(client, samples.bundle(*samples.locations()))[0].status_code == 200
    assert post(client, samples.patient(), INSUREES_AUTH, "/channels/insurees")[0].status_code == 200
    store = dhis2.fake.store
    assert openimis_etl_uid(samples.VILLAGE) in store.org_units
    te = store.tracked_entities[openimis_etl_uid(samples.HEAD)]
    assert te["orgUnit"] == openimis_etl_uid(samples.VILLAGE)
