"""Accept → record → deliver: what DHIS2 cannot take now is kept and delivered later, exactly once."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from mediator.config.settings import build_settings
from mediator.delivery.worker import Deliverer, openhim_update
from mediator.journal.claim import claim, due
from mediator.journal.dead_letters import dead_letters, replay
from mediator.journal.models import Work
from mediator.mapping.insuree import tracked_entity_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, mediator_client

LATER = datetime.now(UTC) + timedelta(hours=2)


def post(client, doc, txid="tx-1"):
    resp = client.post(
        "/channels/insurees",
        data=json.dumps(doc),
        headers={**INSUREES_AUTH, "Content-Type": "application/json", "X-OpenHIM-TransactionID": txid},
    )
    return resp, json.loads(resp.data)


@pytest.fixture
def client(env, journal_url):
    return mediator_client(env, journal_url=journal_url)


def test_what_dhis2_could_not_take_is_delivered_by_the_worker_and_openhim_told(client, fake, env):
    fake.fake.fail_next = 100
    resp, answer = post(client, samples.bundle(samples.group(), samples.patient()))
    assert resp.status_code == 202 and answer["properties"]["records_pending"] == "2"
    assert fake.fake.store.tracked_entities == {}
    fake.fake.fail_next = 0
    deliverer: Deliverer = client.application.extensions["deliverer"]
    told = []
    assert deliverer.work_once(build_settings(env), lambda tx, run: told.append((tx, run)), now=LATER) == 1
    assert tracked_entity_uid(samples.HEAD) in fake.fake.store.tracked_entities
    ((tx, run),) = told
    assert tx.openhim_id == "tx-1" and tx.status == "Successful"
    update = openhim_update(tx, run)
    assert update["status"] == "Successful"
    assert [o["request"]["path"] for o in update["$push"]["orchestrations"]["$each"]][-1] == "/api/tracker"
    # The transaction no longer says what it said when answered (Processing, 202, two records pending).
    props = update["properties"]
    assert (props["records_pending"], props["records_delivered"], props["records_rejected"]) == ("0", "2", "0")
    assert props["received_Patient"] == "1" and props["channel"] == "insurees"
    assert (props["dhis2_tracked_entity_created"], props["dhis2_enrollment_created"]) == ("1", "1")
    assert update["response"]["status"] == 200
    issues = json.loads(update["response"]["body"])["issue"]
    assert [i["diagnostics"] for i in issues] == ["delivered later: 2 delivered, 0 unchanged, 0 rejected"]
    assert deliverer.work_once(build_settings(env), now=LATER) == 0  # nothing left


def test_a_push_decided_later_with_rejected_records_names_them_in_its_final_answer(client, fake, env):
    fake.fake.fail_next = 100
    lost = samples.patient(samples.MEMBER, "104000002", village="0b0b0b0b-0000-4000-8000-000000000000")
    resp, _ = post(client, samples.bundle(samples.patient(), lost, {"resourceType": "Patient", "id": "x"}))
    assert resp.status_code == 202
    fake.fake.fail_next = 0
    told = []
    deliverer = client.application.extensions["deliverer"]
    deliverer.work_once(build_settings(env), lambda tx, run: told.append((tx, run)), now=LATER)
    update = openhim_update(*told[0])
    assert update["status"] == "Completed with error(s)" and update["response"]["status"] == 422
    props = update["properties"]
    assert (props["records_delivered"], props["records_rejected"], props["records_pending"]) == ("1", "2", "0")
    text = [i["diagnostics"] for i in json.loads(update["response"]["body"])["issue"]]
    assert text[0] == "delivered later: 1 delivered, 0 unchanged, 2 rejected"
    assert any(t.startswith(f"Patient/{samples.MEMBER}: ") for t in text[1:])
    assert any(t.startswith("Patient/x: ") for t in text[1:])


def test_nothing_is_due_before_its_next_attempt(client, fake, env):
    fake.fake.fail_next = 100
    post(client, samples.patient())
    journal = client.application.extensions["journal"]
    assert due(journal) == []
    assert len(due(journal, now=LATER)) == 1


def test_a_newer_version_supersedes_an_older_one_still_waiting(client, fake, env):
    fake.fake.fail_next = 100
    post(client, samples.patient(), "tx-1")
    post(client, samples.patient(gender="male"), "tx-2")
    fake.fake.fail_next = 0
    client.application.extensions["deliverer"].work_once(build_settings(env), now=LATER)
    attrs = fake.fake.store.tracked_entities[tracked_entity_uid(samples.HEAD)]["attributes"]
    assert "M" in attrs.values()
    with client.application.extensions["journal"].session() as session:
        states = [w.state for w in session.query(Work).order_by(Work.id)]
    assert states == ["superseded", "delivered"]


def test_a_claimed_push_is_not_taken_by_another_worker(client, fake, env):
    fake.fake.fail_next = 100
    post(client, samples.patient())
    journal = client.application.extensions["journal"]
    (tx,) = due(journal, now=LATER)
    results = []
    barrier = threading.Barrier(4)

    def take():
        barrier.wait()
        results.append(claim(journal, tx, LATER))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_dead_letters_are_listed_and_replayed_after_the_fix(client, fake, env):
    resp, _ = post(client, samples.patient(village=samples.OTHER_VILLAGE, family=None))
    assert resp.status_code == 422
    journal = client.application.extensions["journal"]
    (dead,) = dead_letters(journal)
    assert dead.kind == "Patient" and "E1049" in json.dumps(dead.reasons)
    from tests.conftest import seed

    seed(fake.fake, villages=(samples.VILLAGE, samples.OTHER_VILLAGE))
    assert replay(journal) == 1
    client.application.extensions["deliverer"].work_once(build_settings(env))
    assert tracked_entity_uid(samples.HEAD) in fake.fake.store.tracked_entities
    assert dead_letters(journal) == []


def test_a_settings_change_sends_unchanged_records_again(env, fake, journal_url):
    client = mediator_client(env, journal_url=journal_url)
    post(client, samples.patient())
    _, again = post(client, samples.patient())
    assert again["orchestrations"] == []  # unchanged: not sent
    named = mediator_client(env, journal_url=journal_url, send_names="true")
    _, third = post(named, samples.patient())
    assert [o["request"]["path"] for o in third["orchestrations"]][-1] == "/api/tracker"
    _, fourth = post(named, samples.patient())
    assert fourth["orchestrations"] == []


def test_a_push_whose_records_were_all_superseded_is_decided(client, fake, env):
    from mediator.journal.models import Transaction

    fake.fake.fail_next = 100
    post(client, samples.patient(), "tx-1")
    post(client, samples.patient(gender="male"), "tx-2")
    with client.application.extensions["journal"].session() as session:
        first = session.get(Transaction, 1)
        assert first.status == "Successful"  # nothing of it is left to send: the newer version carries it on


def keep(journal, resources, rejected=()):
    """Accept records straight into the journal, as a channel would after reading them."""
    return samples.accept_resources(journal, resources, received={"Patient": 2}, rejected=list(rejected))


def test_a_push_that_cannot_be_kept_leaves_nothing_behind(client):
    from mediator.journal.models import Outcome, Transaction

    journal = client.application.extensions["journal"]

    def resources():
        yield "Patient/a", samples.patient()
        raise OSError("the spool file went away")

    with pytest.raises(OSError):
        keep(journal, resources(), [("Patient/b", [{"field": "birthDate", "code": "", "message": "bad"}])])
    assert [journal.count(m) for m in (Transaction, Work, Outcome)] == [0, 0, 0]
