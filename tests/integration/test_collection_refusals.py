"""DHIS2 answering 404 to a collection addition (a group, program or option set it does not have) rejects the
records that needed it, naming what DHIS2 did not find; it is not DHIS2 being unavailable, and nothing waits for a
retry that cannot help."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from mediator.config.settings import build_settings
from mediator.delivery.bootstrap import bootstrap
from mediator.journal.dead_letters import dead_letters, replay
from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import basic, dhis2_client, mediator_client

SETUP = Setup()
METADATA_AUTH = basic("openhim-metadata", "metadata-route-pass")
VILLAGE_GROUP = SETUP.org_unit_groups["village"]
CLAIM_PROGRAM = SETUP.programs["claim"]


@pytest.fixture
def client(bootstrapped, env):
    return mediator_client(env, dhis2_url=bootstrapped.url, channel_metadata_password="metadata-route-pass")


def post(client, doc):
    resp = client.post(
        "/channels/metadata", data=json.dumps(doc), headers={**METADATA_AUTH, "Content-Type": "application/json"}
    )
    return resp, json.loads(resp.data)


def issues(answer) -> dict[str, str]:
    """The errors said of each record."""
    found: dict[str, str] = {}
    for issue in json.loads(answer["response"]["body"])["issue"]:
        if issue["severity"] == "error":
            record, _, text = issue["diagnostics"].partition(": ")
            found[record] = found.get(record, "") + text
    return found


def test_an_org_unit_group_dhis2_lacks_rejects_its_members_naming_the_group(client, bootstrapped):
    del bootstrapped.fake.store.org_unit_groups[VILLAGE_GROUP]
    resp, answer = post(client, samples.bundle(*samples.locations()))
    assert resp.status_code == 422 and answer["status"] == "Completed with error(s)"
    assert answer["properties"]["records_pending"] == "0"
    village = f"Location/{samples.VILLAGE}"
    why = issues(answer)[village]
    assert f"DHIS2 has no org unit group {VILLAGE_GROUP}" in why and "not available" not in why
    assert answer["properties"]["records_rejected"] == "1"
    assert [f"{r.kind}/{r.key}" for r in dead_letters(client.application.extensions["journal"])] == [village]


def test_a_program_dhis2_lacks_rejects_the_facilities_it_would_be_opened_to(client, bootstrapped):
    store = bootstrapped.fake.store
    del store.programs[CLAIM_PROGRAM]
    resp, answer = post(client, samples.bundle(*samples.locations()))
    assert resp.status_code == 422
    found = issues(answer)
    for record in (f"Location/{samples.HOSPITAL}", f"Organization/{samples.HOSPITAL}"):
        assert f"DHIS2 has no program {CLAIM_PROGRAM} to open this org unit to" in found[record]
    assert f"Location/{samples.VILLAGE}" not in found  # delivered, in its group and the insuree program


def test_once_dhis2_is_set_up_a_replay_completes_what_was_rejected(client, bootstrapped, env):
    store = bootstrapped.fake.store
    del store.org_unit_groups[VILLAGE_GROUP]
    post(client, samples.bundle(*samples.locations()))
    bootstrap(dhis2_client(bootstrapped), SETUP, "openIMIS")  # puts the group back
    journal = client.application.extensions["journal"]
    assert replay(journal) == 1
    deliverer = client.application.extensions["deliverer"]
    settings = build_settings({**env, "MEDIATOR_DHIS2_URL": bootstrapped.url})
    assert deliverer.work_once(settings, now=datetime.now(UTC) + timedelta(minutes=1)) == 1
    members = {r["id"] for r in store.org_unit_groups[VILLAGE_GROUP]["organisationUnits"]}
    assert org_unit_uid(samples.VILLAGE) in members
    assert dead_letters(journal) == []
