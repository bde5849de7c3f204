"""`reconcile`: after DHIS2 lost data, what the journal says DHIS2 holds is checked against DHIS2, in batches, and
`--resend` sends again what is missing, so that DHIS2 ends with each record once."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.app.cli import main
from mediator.app.reconcile_command import reconcile_command
from mediator.config.settings import build_settings
from mediator.delivery.bootstrap import bootstrap
from mediator.journal.models import Work
from mediator.mapping.insuree import tracked_entity_uid
from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, basic, dhis2_client, mediator_client
from tests.integration.test_dhis2_versions import data_set

AUTH = basic("openhim-openimis", "openimis-route-pass")
PATIENTS = 250  # more than two batches of UIDs


def start(version: str = "2.40.5") -> RunningFake:
    running = RunningFake(FakeDhis2(version=version, users={DHIS2_USER: DHIS2_PASSWORD})).start()
    bootstrap(dhis2_client(running), Setup(), "openIMIS")
    return running


@pytest.fixture
def dhis2():
    running = start()
    yield running
    running.stop()


def mediator(env, running, **extra):
    return mediator_client(env, dhis2_url=running.url, channel_openimis_password="openimis-route-pass", **extra)


def push(client, doc) -> dict:
    resp = client.post("/channels/openimis", data=json.dumps(doc), headers={**AUTH, "Content-Type": "application/json"})
    return json.loads(resp.data)


def push_all(client, docs) -> list[dict]:
    return [push(client, doc) for doc in docs]


def content(running: RunningFake) -> str:
    s = running.fake.store
    return json.dumps([s.tracked_entities, s.enrollments, s.events, s.org_units], sort_keys=True)


def lose_tracker_data(running: RunningFake) -> None:
    """What a restore from an older backup does to the data written since."""
    store = running.fake.store
    with store.lock:
        for found in (store.tracked_entities, store.enrollments, store.events, store.unique_values):
            found.clear()
        store.enrollments_by_owner.clear()


def run(client, running, env, resend=False, exchanges=None) -> tuple[int, str]:
    out = io.StringIO()
    settings = build_settings({**env, "MEDIATOR_DHIS2_URL": running.url})
    dhis2 = dhis2_client(running)
    if exchanges is not None:
        dhis2.on_exchange = exchanges.append
    code = reconcile_command(client.application.extensions["journal"], dhis2, settings, resend, out)
    return code, out.getvalue()


FOREIGN = "Foreign0001"  # what others wrote to DHIS2: never asked for, so never in an answer


def add_foreign_data(running: RunningFake) -> None:
    store = running.fake.store
    tet = Setup().tracked_entity_type
    store.tracked_entities[FOREIGN] = {"trackedEntity": FOREIGN, "trackedEntityType": tet, "attributes": {}}
    store.enrollments[FOREIGN] = {"enrollment": FOREIGN, "trackedEntity": FOREIGN}
    store.events[FOREIGN] = {"event": FOREIGN, "dataValues": {}}
    store.org_units[FOREIGN] = {"id": FOREIGN, "name": "elsewhere"}


def table(text: str) -> dict[str, list[int]]:
    """The summary's rows: kind -> checked, present, missing, queued again, next push."""
    rows = {}
    for line in text.splitlines()[1:]:
        cells = line.split()
        if len(cells) == 6 and all(c.isdigit() for c in cells[1:]):
            rows[cells[0]] = [int(c) for c in cells[1:]]
    return rows


def states(client) -> list[str]:
    with client.application.extensions["journal"].session() as session:
        return sorted(w.state for w in session.query(Work))


@pytest.mark.parametrize("version", ["2.35.14", "2.40.5", "2.41.2", "2.42.1"])
def test_what_dhis2_lost_is_reported_missing_per_kind(version, env):
    running = start(version)
    try:
        client = mediator(env, running)
        assert all(a["status"] == "Successful" for a in push_all(client, data_set()))
        lose_tracker_data(running)
        add_foreign_data(running)
        exchanges: list = []
        code, text = run(client, running, env, exchanges=exchanges)
        rows = table(text)
        assert code == 1
        # Each version was asked in its own terms: it answered with what was asked, and no more.
        assert exchanges and all(FOREIGN not in json.dumps(e.response_body) for e in exchanges)
        assert rows["Location"] == [5, 5, 0, 0, 0] and rows["Organization"] == [1, 1, 0, 0, 0]
        assert rows["Patient"] == [2, 0, 2, 0, 0] and rows["Group"] == [1, 0, 1, 0, 0]
        assert rows["Claim"][2] == rows["ClaimResponse"][2] == rows["Coverage"][2] == rows["Contract"][2] == 1
        assert rows["InsurancePlan"] == [1, 1, 0, 0, 0]
    finally:
        running.stop()


def test_a_complete_dhis2_reports_nothing_missing_and_queues_nothing(dhis2, env):
    client = mediator(env, dhis2)
    push_all(client, data_set())
    before = states(client)
    code, text = run(client, dhis2, env, resend=True)
    assert code == 0
    total = table(text)["total"]
    assert total[0] > 0 and total[0] == total[1] and total[2:] == [0, 0, 0]
    assert states(client) == before


def test_resend_then_delivers_what_dhis2_lost_and_dhis2_holds_each_once(dhis2, env, journal_url):
    client = mediator(env, dhis2, journal_url=journal_url)
    push_all(client, data_set())
    before = content(dhis2)
    lose_tracker_data(dhis2)
    code, text = run(client, dhis2, env, resend=True)
    assert code == 0 and table(text)["Patient"] == [2, 0, 2, 0, 2] and table(text)["Group"] == [1, 0, 1, 0, 1]
    again = push_all(client, data_set())  # as the next pull --full, or openIMIS sending them again, would
    assert all(a["status"] == "Successful" for a in again)
    assert again[1]["properties"]["records_delivered"] == "3"  # two insurees and their family, not "unchanged"
    assert content(dhis2) == before  # each object once, with the family's attributes and the review's amounts
    code, text = run(client, dhis2, env)
    assert code == 0 and table(text)["total"][2] == 0


def test_records_the_journal_still_keeps_are_queued_again_for_the_worker(dhis2, env):
    client = mediator(env, dhis2)
    dhis2.fake.fail_next = 100  # DHIS2 takes the metadata, then not the insurees: the push is still open
    doc = samples.bundle(*samples.locations(), samples.group(), samples.patient())
    assert push(client, doc)["status"] == "Processing"
    dhis2.fake.fail_next = 0
    village = org_unit_uid(samples.VILLAGE)
    del dhis2.fake.store.org_units[village]
    code, text = run(client, dhis2, env, resend=True)
    assert code == 0 and table(text)["Location"] == [5, 4, 1, 1, 0]
    settings = build_settings({**env, "MEDIATOR_DHIS2_URL": dhis2.url})
    deliverer = client.application.extensions["deliverer"]
    assert deliverer.work_once(settings, now=datetime.now(UTC) + timedelta(hours=2)) == 1
    assert village in dhis2.fake.store.org_units
    assert tracked_entity_uid(samples.HEAD) in dhis2.fake.store.tracked_entities


def test_queries_are_batched(dhis2, env):
    client = mediator(env, dhis2)
    patients = [
        samples.patient(f"{i:08d}-1111-4000-8000-000000000000", f"8{i:08d}", family=None) for i in range(PATIENTS)
    ]
    assert push(client, samples.bundle(*samples.locations(), *patients))["status"] == "Successful"
    lose_tracker_data(dhis2)
    dhis2.fake.requests_seen.clear()
    code, text = run(client, dhis2, env)
    assert table(text)["Patient"] == [PATIENTS, 0, PATIENTS, 0, 0]
    gets = [p for m, p, _ in dhis2.fake.requests_seen if m == "GET"]
    assert gets.count("/api/tracker/trackedEntities") == 3 and gets.count("/api/tracker/enrollments") == 3


def test_the_command_prints_counts_only(dhis2, env, monkeypatch, capsys):
    client = mediator(env, dhis2)
    push_all(client, data_set())
    lose_tracker_data(dhis2)
    for name, value in {**env, "MEDIATOR_DHIS2_URL": dhis2.url}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["reconcile"])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "Patient" in out and "reconcile --resend" in out
    assert samples.HEAD not in out and "104000001" not in out and tracked_entity_uid(samples.HEAD) not in out
