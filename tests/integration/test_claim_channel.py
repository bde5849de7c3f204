"""Claims become Claims management enrollments with a details event and one event per line; a later
ClaimResponse updates the same events."""

import json

import pytest

from mediator.mapping.claim import claim_details_uid, claim_enrollment_uid, claim_line_uid
from mediator.mapping.insuree import tracked_entity_uid
from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, basic, mediator_client

SETUP = Setup()
DE = SETUP.data_elements
CLAIMS = basic("openhim-claims", "claims-route-pass")
METADATA = basic("openhim-metadata", "metadata-route-pass")


@pytest.fixture
def dhis2(bootstrapped):
    return bootstrapped


@pytest.fixture
def client(dhis2, env):
    app = mediator_client(
        env,
        dhis2_url=dhis2.url,
        channel_claims_password="claims-route-pass",
        channel_metadata_password="metadata-route-pass",
    )
    for path, auth, doc in [
        ("/channels/metadata", METADATA, samples.bundle(*samples.locations(), *samples.code_lists_for_claims())),
        ("/channels/insurees", INSUREES_AUTH, samples.patient()),
    ]:
        resp = app.post(path, data=json.dumps(doc), headers={**auth, "Content-Type": "application/json"})
        assert resp.status_code == 200, resp.data
    return app


def post(client, doc):
    resp = client.post("/channels/claims", data=json.dumps(doc), headers={**CLAIMS, "Content-Type": "application/json"})
    return resp, json.loads(resp.data)


def test_a_claim_with_its_review_becomes_an_enrollment_and_events(client, dhis2):
    resp, env = post(client, samples.bundle(samples.claim(), samples.claim_response()))
    assert resp.status_code == 200, env["response"]["body"]
    store = dhis2.fake.store
    enrollment = store.enrollments[claim_enrollment_uid(samples.CLAIM)]
    assert enrollment["program"] == SETUP.programs["claim"]
    assert enrollment["trackedEntity"] == tracked_entity_uid(samples.HEAD)
    assert enrollment["orgUnit"] == org_unit_uid(samples.HOSPITAL)
    details = store.events[claim_details_uid(samples.CLAIM)]["dataValues"]
    assert details[DE["claim.claimed"]] == "660"
    assert details[DE["claim.approved"]] == "600"
    assert details[DE["claim.valuated"]] == "600"
    assert details[DE["claim.status"]] == "16"
    assert details[DE["claim.diagnosis"]] == "A0105" and details[DE["claim.diagnosis_1"]] == "G44"
    item = store.events[claim_line_uid(samples.CLAIM, 1)]
    assert item["programStage"] == SETUP.stages["claim_items"]
    assert item["dataValues"][DE["item.code"]] == "0022"
    assert item["dataValues"][DE["item.approved"]] == "200"
    service = store.events[claim_line_uid(samples.CLAIM, 2)]
    assert service["programStage"] == SETUP.stages["claim_services"]
    assert service["dataValues"][DE["service.price"]] == "400"
    assert env["properties"]["records_delivered"] == "2"


def test_a_review_that_comes_later_updates_the_same_events(client, dhis2):
    post(client, samples.claim())
    store = dhis2.fake.store
    assert store.events[claim_details_uid(samples.CLAIM)]["dataValues"][DE["claim.status"]] == "2"
    events_before = set(store.events)
    resp, env = post(client, samples.claim_response())
    assert resp.status_code == 200, env["response"]["body"]
    assert set(store.events) == events_before
    details = store.events[claim_details_uid(samples.CLAIM)]["dataValues"]
    assert details[DE["claim.status"]] == "16" and details[DE["claim.approved"]] == "600"
    assert details[DE["claim.claimed"]] == "660"  # kept from the claim
    assert env["properties"]["dhis2_event_updated"] == "3"


def test_a_review_of_a_claim_dhis2_does_not_have_is_rejected(client, dhis2):
    resp, env = post(client, samples.claim_response(claim_key="ffffffff-0000-0000-0000-000000000000"))
    assert resp.status_code == 422
    assert "is not in DHIS2" in env["response"]["body"]


def test_a_claim_of_an_insuree_dhis2_does_not_have_is_rejected_naming_the_patient(client, dhis2):
    resp, env = post(client, samples.claim(patient_key="11111111-2222-3333-4444-555555555555"))
    assert resp.status_code == 422
    body = json.loads(env["response"]["body"])
    (said,) = [i["diagnostics"] for i in body["issue"] if i["severity"] == "error"]  # once, not once per event
    assert said.startswith(f"Claim/{samples.CLAIM}: patient [E1068]: its insuree Patient/11111111-2222-3333-4444-")
    assert claim_enrollment_uid(samples.CLAIM) not in dhis2.fake.store.enrollments


def test_diagnoses_join_the_icd_option_set(client, dhis2):
    post(client, samples.claim())
    assert {"A0105", "G44"} <= dhis2.fake.store.option_codes(SETUP.option_sets["diagnosis"])


def test_an_icd_code_dhis2_already_has_under_another_uid_is_used_as_it_is(client, dhis2):
    from fake_dhis2.store import import_metadata

    icd = SETUP.option_sets["diagnosis"]
    legacy = {"id": "Legacyicd01", "code": "A0105", "name": "Typhoid (from the old module)", "optionSet": {"id": icd}}
    assert import_metadata(dhis2.fake.store, {"options": [legacy]}, "CREATE_AND_UPDATE", "ALL")["status"] == "OK"
    dhis2.fake.store.option_sets[icd]["options"].append({"id": "Legacyicd01"})
    resp, env = post(client, samples.claim())
    assert resp.status_code == 200, env["response"]["body"]
    assert dhis2.fake.store.options["Legacyicd01"]["name"] == "Typhoid (from the old module)"


@pytest.mark.parametrize("sequence", ["100000000000000000000", "-9223372036854775809"])
def test_a_line_sequence_past_64_bits_is_refused_by_name_and_the_rest_goes(client, dhis2, sequence):
    claim = samples.claim()
    claim["item"][0]["sequence"] = "BIG"
    other = samples.claim(key="3f6b57f2-d6a0-4aeb-8c55-d58b3f2457c4")
    body = json.dumps(samples.bundle(claim, other)).replace('"BIG"', sequence)
    resp = client.post("/channels/claims", data=body, headers={**CLAIMS, "Content-Type": "application/json"})
    env = json.loads(resp.data)
    assert resp.status_code == 422, env["response"]["body"]
    assert f"Claim/{samples.CLAIM}: item[0].sequence: not a whole number of at most 64 bits" in env["response"]["body"]
    assert claim_enrollment_uid("3f6b57f2-d6a0-4aeb-8c55-d58b3f2457c4") in dhis2.fake.store.enrollments
