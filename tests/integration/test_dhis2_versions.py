"""One data set through the mediator into every DHIS2 version profile gives the same DHIS2 content; faults met
on the way end with every record present exactly once."""

import json
import threading

import pytest

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.delivery.bootstrap import bootstrap
from mediator.mapping.model import Setup
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, basic, dhis2_client, mediator_client

AUTH = basic("openhim-openimis", "openimis-route-pass")
PROFILES = ["2.33.9", "2.35.14", "2.39.3", "2.40.5", "2.41.2", "2.42.1", "2.43.0"]


def data_set() -> list[dict]:
    return [
        samples.bundle(
            *samples.locations(),
            *samples.code_lists_for_claims(),
            samples.code_list_entry("InsurancePlan", "p-1", samples.PRODUCT_CODE, "Basic"),
        ),
        samples.bundle(samples.group(), samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False)),
        samples.bundle(samples.contract(), samples.coverage()),
        samples.bundle(samples.claim(), samples.claim_response()),
    ]


def start(version: str) -> RunningFake:
    running = RunningFake(FakeDhis2(version=version, users={DHIS2_USER: DHIS2_PASSWORD})).start()
    bootstrap(dhis2_client(running), Setup(), "openIMIS")
    return running


def content(running: RunningFake) -> str:
    """What DHIS2 holds, without what differs by nature between versions (nothing should)."""
    s = running.fake.store
    return json.dumps([s.tracked_entities, s.enrollments, s.events, s.org_units, s.option_sets], sort_keys=True)


def push_all(client, docs) -> list[dict]:
    answers = []
    for doc in docs:
        resp = client.post(
            "/channels/openimis", data=json.dumps(doc), headers={**AUTH, "Content-Type": "application/json"}
        )
        answers.append(json.loads(resp.data))
    return answers


def mediator(env, running, **extra):
    return mediator_client(env, dhis2_url=running.url, channel_openimis_password="openimis-route-pass", **extra)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    running = start("2.40.5")
    env = {
        "MEDIATOR_STATE_DIR": str(tmp_path_factory.mktemp("ref")),
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_PSEUDONYM_KEY": "k",
    }
    answers = push_all(mediator(env, running), data_set())
    assert all(a["status"] == "Successful" for a in answers), [a["response"]["body"] for a in answers]
    yield content(running)
    running.stop()


@pytest.mark.parametrize("version", PROFILES)
def test_every_version_ends_with_the_same_content(version, reference, env):
    running = start(version)
    try:
        answers = push_all(mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running), data_set())
        assert all(a["status"] == "Successful" for a in answers), [a["response"]["body"] for a in answers]
        assert content(running) == reference
        paths = {p for _, p, _ in running.fake.requests_seen}
        if version < "2.36":
            assert "/api/tracker" not in paths and "/api/trackedEntityInstances" in paths
        else:
            assert "/api/tracker" in paths and "/api/trackedEntityInstances" not in paths
    finally:
        running.stop()


def test_the_legacy_api_can_be_chosen_up_to_241(reference, env):
    running = start("2.41.2")
    try:
        client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running, tracker_api="legacy")
        answers = push_all(client, data_set())
        assert all(a["status"] == "Successful" for a in answers)
        assert content(running) == reference
        assert "/api/tracker" not in {p for _, p, _ in running.fake.requests_seen}
    finally:
        running.stop()


def test_the_legacy_api_is_refused_clearly_on_242(env):
    running = start("2.42.1")
    try:
        client = mediator(env, running, tracker_api="legacy")
        (answer,) = push_all(client, [samples.patient()])
        # A setting that does not fit this DHIS2: nothing is written; the push waits for the setting to be fixed.
        assert answer["status"] == "Processing"
        assert "removed in 2.42" in answer["response"]["body"]
        assert running.fake.store.tracked_entities == {}
    finally:
        running.stop()


def test_503_bursts_and_dropped_connections_are_ridden_out(reference, env):
    running = start("2.40.5")
    try:
        client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running, dhis2_max_attempts="6")
        docs = data_set()
        push_all(client, docs[:1])
        running.fake.fail_next, running.fake.drop_next, running.fake.drop_after_next = 2, 1, 1
        answers = push_all(client, docs[1:])
        assert all(a["status"] == "Successful" for a in answers), [a["response"]["body"] for a in answers]
        assert content(running) == reference
    finally:
        running.stop()


def test_an_outage_longer_than_the_retries_fails_and_a_resend_completes_exactly_once(reference, env):
    running = start("2.40.5")
    try:
        client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running)
        docs = data_set()
        push_all(client, docs[:2])
        running.fake.fail_next = 10
        (failed,) = push_all(client, docs[2:3])
        assert failed["status"] == "Processing" and failed["properties"]["records_pending"] == "2"
        running.fake.fail_next = 0
        answers = push_all(client, docs[2:])  # what OpenHIM's auto-retry, or openIMIS, sends again
        assert all(a["status"] == "Successful" for a in answers)
        assert content(running) == reference
    finally:
        running.stop()


def test_large_imports_run_as_jobs_and_a_job_lost_to_a_restart_is_resubmitted(reference, env, monkeypatch):
    monkeypatch.setattr("mediator.dhis2.tracker.LOST_AFTER", 1.0)  # DHIS2 gives no sign; silence is the sign
    running = start("2.40.5")
    try:
        client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running, async_threshold="1")
        running.fake.job_delay = 0.4
        original = running.fake.start_job
        restarted = []

        def start_job_then_restart(payload, params):
            job = original(payload, params)
            if not restarted:  # DHIS2 restarts while the first job runs: the job is gone
                restarted.append(job)
                threading.Timer(0.05, running.fake.restart).start()
            return job

        running.fake.start_job = start_job_then_restart
        answers = push_all(client, data_set())
        assert all(a["status"] == "Successful" for a in answers), [a["response"]["body"] for a in answers]
        assert content(running) == reference
        submits = [q for m, p, q in running.fake.requests_seen if m == "POST" and p == "/api/tracker"]
        assert all(q.get("async") == "true" for q in submits)
        assert len(submits) == 4  # insurees, policies, claims, and the first of them again after the restart
        assert restarted[0] not in running.fake.jobs
    finally:
        running.stop()


def test_imports_slower_than_the_timeout_fail_and_a_resend_completes_exactly_once(reference, env):
    running = start("2.40.5")
    try:
        client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running, dhis2_timeout_seconds="0.3")
        docs = data_set()
        push_all(client, docs[:1])
        running.fake.delay = 0.6  # DHIS2 still imports, after the mediator has stopped waiting
        (slow,) = push_all(client, docs[1:2])
        assert slow["status"] == "Processing" and "ReadTimeout" in slow["response"]["body"]
        running.fake.delay = 0.0
        answers = push_all(client, docs[1:])
        assert all(a["status"] == "Successful" for a in answers)
        assert content(running) == reference
    finally:
        running.stop()


def test_the_legacy_api_drops_values_outside_the_stage_and_the_record_says_so(env):
    from mediator.dhis2.client import Dhis2Client, make_auth
    from mediator.dhis2.legacy import import_legacy

    running = start("2.35.14")
    try:
        client = mediator({**env, "MEDIATOR_PSEUDONYM_KEY": "k"}, running)
        push_all(client, data_set()[:2])
        setup = Setup()
        event = {
            "event": "Wwwwwwwwww1",
            "program": setup.programs["insuree"],
            "programStage": setup.stages["policy"],
            "enrollment": running.fake.store.enrollments and next(iter(running.fake.store.enrollments)),
            "orgUnit": next(iter(running.fake.store.enrollments.values()))["orgUnit"],
            "occurredAt": "2020-01-01",
            "dataValues": [{"dataElement": setup.data_elements["claim.claimed"], "value": "5"}],
        }
        report = import_legacy(
            Dhis2Client(running.url, make_auth("basic", DHIS2_USER, DHIS2_PASSWORD, "")), {"events": [event]}
        )
        assert report.status == "WARNING" and report.warnings[0].uid == "Wwwwwwwwww1"
        assert running.fake.store.events["Wwwwwwwwww1"]["dataValues"] == {}
    finally:
        running.stop()
