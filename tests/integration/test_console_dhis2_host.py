"""The DHIS2 credentials come from the environment and go only to the hosts it allows: a console change pointing
dhis2_url elsewhere, by the heartbeat as in a running mediator, sends nothing there."""

import json
import re

import pytest
import responses

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.mapping.insuree import tracked_entity_uid
from mediator.openhim.core import CoreClient
from mediator.openhim.heartbeat import Heartbeat
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, INSUREES_AUTH, seed

CORE = "https://core.test:8080"
DOC = {"urn": "urn:mediator:test", "version": "1.0.0", "name": "t", "endpoints": []}
HEARTBEAT = f"{CORE}/mediators/urn%3Amediator%3Atest/heartbeat"


@pytest.fixture
def elsewhere():
    """A DHIS2 on another host that would take the mediator's credentials, and answer."""
    instance = FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})
    seed(instance)
    running = RunningFake(instance, host="127.0.0.2").start()
    yield running
    running.stop()


def console_sends(config):
    """The core's answer to the mediator's heartbeats: this console config, as after an edit in the console."""
    responses.add_passthru(re.compile(r"http://127\.0\.0\.[12]:\d+"))  # the DHIS2s are real servers
    responses.post(f"{CORE}/mediators", status=201)
    responses.post(HEARTBEAT, json=config)


def push(client):
    resp = client.post(
        "/channels/insurees",
        data=json.dumps(samples.patient()),
        headers={**INSUREES_AUTH, "Content-Type": "application/json"},
    )
    return resp.status_code


@pytest.mark.parametrize("path", ["", "/api/steal?"])
@responses.activate
def test_a_console_dhis2_url_on_another_host_gets_nothing_and_dhis2_keeps_the_push(
    path, live, client, fake, elsewhere, caplog
):
    console_sends({"dhis2_url": elsewhere.url + path, "batch_size": 10})
    Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, live.publish, interval=10).step()
    assert push(client) == 200
    assert elsewhere.fake.requests_seen == []
    assert tracked_entity_uid(samples.HEAD) in fake.fake.store.tracked_entities
    assert live.current().batch_size == 200  # the whole change was refused
    assert "console refused, the settings in force are kept: dhis2_url" in caplog.text
    assert DHIS2_PASSWORD not in caplog.text
