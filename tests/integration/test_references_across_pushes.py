"""Records that refer to records of earlier pushes: a Coverage names its beneficiary by insurance number, a claim its
insuree, a review its claim. Whether the earlier record is in DHIS2 already or still waiting in the journal, the
later one ends in DHIS2, and nothing becomes a dead letter."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mediator.journal.dead_letters import dead_letters
from mediator.journal.models import InsureeNumber, Outcome, Work
from mediator.mapping.claim import claim_details_uid, claim_enrollment_uid
from mediator.mapping.model import Setup
from mediator.mapping.policy import policy_event_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, basic, mediator_client

POLICIES = basic("openhim-policies", "policies-route-pass")
CLAIMS = basic("openhim-claims", "claims-route-pass")
METADATA = basic("openhim-metadata", "metadata-route-pass")
LATER = datetime.now(UTC) + timedelta(hours=3)


@pytest.fixture
def client(bootstrapped, env, journal_url):
    app = mediator_client(
        env,
        dhis2_url=bootstrapped.url,
        journal_url=journal_url,
        channel_policies_password="policies-route-pass",
        channel_claims_password="claims-route-pass",
        channel_metadata_password="metadata-route-pass",
        retry_seconds="1",
    )
    product = samples.code_list_entry("InsurancePlan", "p-1", samples.PRODUCT_CODE, "Basic Cover")
    metadata = samples.bundle(*samples.locations(), *samples.code_lists_for_claims(), product)
    resp = post(app, "/channels/metadata", METADATA, metadata)
    assert resp.status_code == 200, resp.data
    return app


def post(client, path, auth, doc):
    return client.post(path, data=json.dumps(doc), headers={**auth, "Content-Type": "application/json"})


def family_patients():
    return samples.group(), samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False)


def work_once(client):
    settings = client.application.extensions["live_settings"].current()
    return client.application.extensions["deliverer"].work_once(settings, now=LATER)


def test_a_coverage_finds_a_beneficiary_delivered_in_an_earlier_push(client, bootstrapped):
    assert post(client, "/channels/insurees", INSUREES_AUTH, samples.bundle(*family_patients())).status_code == 200
    resp = post(client, "/channels/policies", POLICIES, samples.coverage())
    answer = json.loads(resp.data)
    assert resp.status_code == 200, answer["response"]["body"]
    assert policy_event_uid(samples.POLICY, samples.HEAD) in bootstrapped.fake.store.events


def test_the_journal_keeps_a_pseudonym_of_insurance_numbers_never_the_number(client):
    post(client, "/channels/insurees", INSUREES_AUTH, samples.patient())
    journal = client.application.extensions["journal"]
    with journal.session() as session:
        ((digest, key),) = session.execute(select(InsureeNumber.digest, InsureeNumber.patient_key)).all()
    assert key == samples.HEAD
    assert "104000001" not in digest and len(digest) == 64


def test_policies_and_claims_pushed_while_their_insurees_wait_go_once_the_insurees_are_delivered(client, bootstrapped):
    fake = bootstrapped.fake
    fake.fail_next = 3  # DHIS2 answers 503 to the first attempt of the insurees
    assert post(client, "/channels/insurees", INSUREES_AUTH, samples.bundle(*family_patients())).status_code == 202
    policy = post(client, "/channels/policies", POLICIES, samples.bundle(samples.coverage(), samples.contract()))
    claim = post(client, "/channels/claims", CLAIMS, samples.bundle(samples.claim()))
    review = post(client, "/channels/claims", CLAIMS, samples.claim_response())
    for resp in (policy, claim, review):
        answer = json.loads(resp.data)
        body = json.loads(answer["response"]["body"])
        assert resp.status_code == 202, body
        assert any("waits for" in i["diagnostics"] for i in body["issue"]), body
        assert all(i["severity"] == "information" for i in body["issue"]), body
    while work_once(client):
        pass
    journal = client.application.extensions["journal"]
    assert [(w.kind, w.reasons) for w in dead_letters(journal)] == []
    with journal.session() as session:
        states = {(w.kind, w.state) for w in session.scalars(select(Work))}
    assert {s for _, s in states} == {"delivered"}, states
    assert policy_event_uid(samples.POLICY, samples.HEAD) in fake.store.events
    assert policy_event_uid(samples.POLICY, samples.MEMBER) in fake.store.events
    assert claim_enrollment_uid(samples.CLAIM) in fake.store.enrollments


def test_a_record_whose_reference_is_nowhere_is_still_refused_with_its_reason(client):
    resp = post(client, "/channels/claims", CLAIMS, samples.claim(patient_key="0e9a1b8c-1111-4222-8333-444455556666"))
    answer = json.loads(resp.data)
    body = json.loads(answer["response"]["body"])
    assert resp.status_code == 422, body
    assert "neither in DHIS2 nor on its way" in json.dumps(body)


def test_a_claim_and_its_review_pushed_together_wait_together_for_the_insuree(client, bootstrapped):
    fake = bootstrapped.fake
    fake.fail_next = 3
    assert post(client, "/channels/insurees", INSUREES_AUTH, samples.bundle(*family_patients())).status_code == 202
    both = post(client, "/channels/claims", CLAIMS, samples.bundle(samples.claim(), samples.claim_response()))
    assert both.status_code == 202
    while work_once(client):
        pass
    journal = client.application.extensions["journal"]
    assert [(w.kind, w.reasons) for w in dead_letters(journal)] == []
    status = Setup().data_elements["claim.status"]
    assert fake.store.events[claim_details_uid(samples.CLAIM)]["dataValues"][status] != "2"  # the review's, not entered


def test_a_record_that_waits_leaves_no_outcome_rows_behind(client, bootstrapped):
    bootstrapped.fake.fail_next = 3
    post(client, "/channels/insurees", INSUREES_AUTH, samples.bundle(*family_patients()))
    post(client, "/channels/claims", CLAIMS, samples.claim())
    journal = client.application.extensions["journal"]
    with journal.session() as session:
        outcomes = session.scalars(select(Outcome.record)).all()
        (waiting,) = session.scalars(select(Work).where(Work.kind == "Claim")).all()
    assert f"Claim/{samples.CLAIM}" not in outcomes
    assert waiting.state == "pending" and waiting.waits_for == f"Patient/{samples.HEAD}" and waiting.attempts == 0
