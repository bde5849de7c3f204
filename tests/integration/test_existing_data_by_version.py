"""Records that build on what DHIS2 already holds (a family on its members, a policy on its insurees, a review on
its claim) find it and update it on every DHIS2 version, read through the API that version writes with."""

import json

import pytest

from mediator.mapping import defaults
from mediator.mapping.claim import claim_details_uid, claim_line_uid
from mediator.mapping.insuree import tracked_entity_uid
from mediator.mapping.model import Setup
from mediator.mapping.policy import policy_event_uid
from tests import samples
from tests.integration.test_dhis2_versions import mediator, push_all, start

A = defaults.INSUREE_ATTRIBUTES
DE = Setup().data_elements
# (DHIS2 version, tracker_api setting, the API it reads enrollments and events through)
PROFILES = [
    pytest.param(("2.35.14", "auto", "/api/enrollments/"), id="2.35"),
    pytest.param(("2.40.5", "auto", "/api/tracker/enrollments/"), id="2.40"),
    pytest.param(("2.41.2", "legacy", "/api/enrollments/"), id="2.41-legacy"),
]
METADATA = samples.bundle(
    *samples.locations(),
    *samples.code_lists_for_claims(),
    samples.code_list_entry("InsurancePlan", "p-1", samples.PRODUCT_CODE, "Basic"),
)
INSUREES = samples.bundle(
    samples.patient(family=None), samples.patient(samples.MEMBER, "104000002", is_head=False, family=None)
)


@pytest.fixture(params=PROFILES)
def profile(request, env):
    version, api, reads = request.param
    running = start(version)
    client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running, tracker_api=api)
    answers = push_all(client, [METADATA, INSUREES])
    assert all(a["status"] == "Successful" for a in answers), [a["response"]["body"] for a in answers]
    yield client, running, reads
    running.stop()


@pytest.fixture
def stranger(profile, env, request):
    """A mediator with a journal of its own: what the first one delivered is, to it, only in DHIS2."""
    _, running, _ = profile
    version, api, _ = request.node.callspec.params["profile"]
    state = env["MEDIATOR_STATE_DIR"] + "-stranger"
    return mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k", "MEDIATOR_STATE_DIR": state}, running, tracker_api=api)


def push(client, doc) -> dict:
    (answer,) = push_all(client, [doc])
    assert answer["status"] == "Successful", answer["response"]["body"]
    return answer


def read_paths(running) -> set[str]:
    return {path.rsplit("/", 1)[0] + "/" for method, path, _ in running.fake.requests_seen if method == "GET"}


def test_a_family_sent_alone_updates_its_members(profile):
    client, running, reads = profile
    push(client, samples.group(poverty=False))
    for key in (samples.HEAD, samples.MEMBER):
        attributes = running.fake.store.tracked_entities[tracked_entity_uid(key)]["attributes"]
        assert attributes[A["poverty"]] == "false" and attributes[A["family_type"]] == "H"
    assert reads in read_paths(running)


def test_a_policy_whose_insurees_are_already_in_dhis2_writes_its_events(profile, stranger):
    _, running, reads = profile
    answer = push(stranger, samples.contract())
    events = running.fake.store.events
    for key in (samples.HEAD, samples.MEMBER):
        assert events[policy_event_uid(samples.POLICY, key)]["dataValues"][DE["policy.product"]] == samples.PRODUCT_CODE
    assert answer["properties"]["records_delivered"] == "1"
    assert reads in read_paths(running)


def test_a_claim_response_sent_after_its_claim_updates_the_claim_events(profile):
    client, running, reads = profile
    push(client, samples.claim())
    events = running.fake.store.events
    claimed_item = dict(events[claim_line_uid(samples.CLAIM, 1)]["dataValues"])
    push(client, samples.claim_response())
    details = events[claim_details_uid(samples.CLAIM)]["dataValues"]
    assert details[DE["claim.status"]] == "16" and details[DE["claim.approved"]] == "600"
    # What the review does not restate stays, on the legacy API too (which replaces an event's values).
    assert details[DE["claim.claimed"]] == "660" and details[DE["claim.diagnosis"]] == "A0105"
    item = events[claim_line_uid(samples.CLAIM, 1)]["dataValues"]
    assert item[DE["item.approved"]] == "200" and item[DE["item.code"]] == claimed_item[DE["item.code"]]
    assert reads.replace("enrollments", "events") in read_paths(running)


def test_records_sent_one_by_one_end_with_the_same_content_on_every_version(env, tmp_path):
    """The family, the policy and the review, each in a push of its own, leave 2.35 as they leave 2.40."""
    contents = []
    for version in ("2.35.14", "2.40.5"):
        running = start(version)
        try:
            state = {"MEDIATOR_STATE_DIR": str(tmp_path / version), "MEDIATOR_PSEUDONYM_KEY": "k"}
            client = mediator({**env, **state}, running)
            docs = [METADATA, INSUREES, samples.group(), samples.contract(), samples.claim(), samples.claim_response()]
            answers = push_all(client, docs)
            assert all(a["status"] == "Successful" for a in answers), [a["response"]["body"] for a in answers]
            s = running.fake.store
            contents.append(json.dumps([s.tracked_entities, s.enrollments, s.events], sort_keys=True))
        finally:
            running.stop()
    assert contents[0] == contents[1]
