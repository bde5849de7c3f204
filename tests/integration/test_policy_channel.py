"""Policies become repeatable "Policy details" events in each covered insuree's Family/Insuree enrollment."""

import json

import pytest

from mediator.app.web.app import create_app
from mediator.config.console import LiveSettings
from mediator.config.settings import build_settings
from mediator.mapping.model import Setup
from mediator.mapping.policy import policy_event_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, basic

SETUP = Setup()
DE = SETUP.data_elements
POLICIES_AUTH = basic("openhim-policies", "policies-route-pass")


@pytest.fixture
def client(fake, env):
    from fake_dhis2.store import import_metadata
    from mediator.mapping.metadata import option

    product_set = SETUP.option_sets["product"]
    opt = option(product_set, samples.PRODUCT_CODE, "Basic Cover", 1)
    assert import_metadata(fake.fake.store, {"options": [opt]}, "CREATE_AND_UPDATE", "ALL")["status"] == "OK"
    fake.fake.store.option_sets[product_set]["options"].append({"id": opt["id"]})
    env = {**env, "MEDIATOR_CHANNEL_POLICIES_PASSWORD": "policies-route-pass"}
    return create_app(LiveSettings(build_settings(env), env)).test_client()


def post(client, doc, auth=POLICIES_AUTH, path="/channels/policies"):
    resp = client.post(path, data=json.dumps(doc), headers={**auth, "Content-Type": "application/json"})
    return resp, json.loads(resp.data)


def insurees(client):
    resp, _ = post(
        client,
        samples.bundle(samples.group(), samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False)),
        INSUREES_AUTH,
        "/channels/insurees",
    )
    assert resp.status_code == 200


def test_a_policy_gives_each_covered_insuree_a_policy_event(client, fake):
    insurees(client)
    resp, env = post(client, samples.bundle(samples.coverage(), samples.contract()))
    assert resp.status_code == 200, env["response"]["body"]
    events = fake.fake.store.events
    for key in (samples.HEAD, samples.MEMBER):
        ev = events[policy_event_uid(samples.POLICY, key)]
        assert ev["programStage"] == SETUP.stages["policy"]
        assert ev["occurredAt"] == "2019-08-20"
        values = ev["dataValues"]
        assert values[DE["policy.status"]] == "2"
        assert values[DE["policy.stage"]] == "R"
        assert values[DE["policy.product"]] == samples.PRODUCT_CODE
        assert values[DE["policy.value"]] == "10000"
        assert values[DE["policy.effective_date"]] == "2019-08-21"
        assert values[DE["policy.expiry_date"]] == "2020-08-19"
    assert env["properties"]["records_delivered"] == "2"


def test_sending_a_changed_policy_updates_the_same_events(client, fake):
    insurees(client)
    post(client, samples.contract())
    changed = samples.contract()
    changed["status"] = "Terminated"
    resp, env = post(client, changed)
    assert resp.status_code == 200
    assert len(fake.fake.store.events) == 2
    assert env["properties"]["dhis2_event_updated"] == "2"


def test_a_coverage_finds_its_beneficiary_by_insurance_number_in_the_same_push(client, fake):
    resp, env = post(client, samples.bundle(samples.patient(), samples.coverage()))
    assert resp.status_code == 200, env["response"]["body"]
    assert policy_event_uid(samples.POLICY, samples.HEAD) in fake.fake.store.events


def test_a_coverage_whose_beneficiary_is_nowhere_is_rejected_with_its_reason(client, fake):
    resp, env = post(client, samples.coverage(beneficiary_number="999"))
    assert resp.status_code == 422
    assert "no insuree found" in env["response"]["body"] and "999" not in env["response"]["body"]
    assert fake.fake.store.events == {}


def test_a_policy_for_an_insuree_unknown_to_dhis2_is_rejected(client, fake):
    resp, env = post(client, samples.contract(insurees=("11111111-2222-3333-4444-555555555555",)))
    assert resp.status_code == 422
    assert "is not in DHIS2" in env["response"]["body"]


def test_a_product_dhis2_does_not_know_rejects_the_policy_naming_the_field(client, fake):
    insurees(client)
    resp, env = post(client, samples.contract(product="NOPE"))
    assert resp.status_code == 422
    body = env["response"]["body"]
    assert "E1125" in body and "policy.product" in body


def enrollment_reads(fake):
    return [r for r in fake.fake.requests_seen if r[0] == "GET" and "enrollments" in r[1]]


def test_insurees_the_mediator_delivered_are_found_in_the_journal_not_asked_of_dhis2(client, fake):
    insurees(client)
    resp, env = post(client, samples.bundle(samples.coverage(), samples.contract()))
    assert resp.status_code == 200, env["response"]["body"]
    assert enrollment_reads(fake) == []
    assert policy_event_uid(samples.POLICY, samples.MEMBER) in fake.fake.store.events


def test_an_insuree_the_journal_does_not_know_is_asked_of_dhis2_once(client, fake, env):
    insurees(client)
    # Another mediator (another journal) delivers the same policy: its insurees are only in DHIS2.
    other = create_app(
        LiveSettings(
            build_settings(
                {
                    **env,
                    "MEDIATOR_STATE_DIR": env["MEDIATOR_STATE_DIR"] + "-other",
                    "MEDIATOR_CHANNEL_POLICIES_PASSWORD": "policies-route-pass",
                }
            ),
            env,
        )
    ).test_client()
    resp, env_doc = post(other, samples.bundle(samples.contract()))
    assert resp.status_code == 200, env_doc["response"]["body"]
    assert len(enrollment_reads(fake)) == 2  # head and member, each once
