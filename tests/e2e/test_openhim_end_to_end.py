"""End to end: a real OpenHIM core, the mediator as a real gunicorn process, a fake DHIS2 as a real process.

openIMIS's side is played by plain HTTP to the core's router, as openIMIS's FHIR subscriptions do it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from mediator import __version__
from mediator.mapping import defaults
from mediator.mapping.insuree import tracked_entity_uid
from mediator.mapping.uids import org_unit_uid
from mediator.openhim.core import CoreClient
from mediator.openhim.errors import OpenHimError
from tests import samples
from tests.e2e.conftest import install_channels_and_client, registered_mediator
from tests.e2e.openhim_core import ADMIN, Core, free_port, wait_for_port
from tests.processes import faults, start_fake_dhis2

pytestmark = pytest.mark.e2e
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

URN = "urn:mediator:openimis-dhis2"
CLIENT_ID, CLIENT_PASSWORD = "openimis-fhir", "openimis-client-pass"
CHANNEL_PASSWORD = "route-pass-e2e"
DHIS2_USER, DHIS2_PASSWORD = "mediator", "Dhis2-e2e-pass"
A = defaults.INSUREE_ATTRIBUTES


def eventually(check: Callable[[], Any], seconds: float = 30, every: float = 0.3) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
            if result:
                return result
        except (requests.RequestException, OpenHimError, AssertionError, KeyError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {seconds} s: {check.__name__}")
        time.sleep(every)


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


@pytest.fixture(scope="module")
def dhis2(run_dir: Path) -> Iterator[str]:
    proc, url = start_fake_dhis2(run_dir, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, run_dir / "fake-dhis2.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def mediator(core: Core, dhis2: str, run_dir: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    env = {
        **registered_mediator(core, port, run_dir / "mediator-state"),
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_CHANNEL_INSUREES_PASSWORD": CHANNEL_PASSWORD,
        "MEDIATOR_DELIVERY_SECONDS": "0.5",
        "MEDIATOR_RETRY_SECONDS": "1",
        "MEDIATOR_ATNA_AUDIT": "true",
    }
    log = run_dir / "mediator.log"
    proc = spawn([sys.executable, "-m", "mediator.app.cli", "serve"], env, log)
    wait_for_port(port, 30, proc)
    yield {"port": port, "log": log, "proc": proc}
    stop(proc)


@pytest.fixture(scope="module")
def channel(api: CoreClient, mediator: dict[str, Any]) -> str:
    eventually(lambda: api.get_mediator(URN)["urn"] == URN, 60)
    install_channels_and_client(api, URN, CLIENT_ID, CLIENT_PASSWORD)
    return "/openimis/insurees"


def send(core: Core, path: str, doc: dict[str, Any]) -> requests.Response:
    return requests.post(core.router_url + path, json=doc, auth=(CLIENT_ID, CLIENT_PASSWORD), timeout=60)


def dhis2_entity(dhis2: str, key: str) -> dict[str, Any]:
    resp = requests.get(
        f"{dhis2}/api/tracker/trackedEntities/{tracked_entity_uid(key)}", auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=10
    )
    resp.raise_for_status()
    return {a["attribute"]: a["value"] for a in resp.json()["attributes"]} | {"_orgUnit": resp.json()["orgUnit"]}


def test_mediator_registers_and_heartbeats(api: CoreClient, mediator: dict[str, Any]):
    doc = eventually(lambda: api.get_mediator(URN), 60)
    assert doc["version"] == __version__
    assert int(doc["endpoints"][0]["port"]) == mediator["port"]
    first = eventually(lambda: api.get_mediator(URN).get("_lastHeartbeat"), 30)
    eventually(lambda: api.get_mediator(URN)["_lastHeartbeat"] != first, 10)
    assert api.get_mediator(URN)["_uptime"] > 0
    # the channel's route password is filled in from the mediator's settings
    routes = doc["defaultChannelConfig"][0]["routes"]
    assert routes[0]["password"] == CHANNEL_PASSWORD


def test_exactly_one_worker_heartbeats(mediator: dict[str, Any]):
    time.sleep(1.5)
    text = mediator["log"].read_text()
    registrations = [line for line in text.splitlines() if "registered with the OpenHIM core" in line]
    assert len(registrations) == 1, text[-3000:]
    assert "Booting worker" in text and text.count("Booting worker") == 2


def test_patient_through_the_router_reaches_dhis2_and_is_logged(core: Core, api: CoreClient, channel: str, dhis2: str):
    resp = send(core, channel, samples.patient())
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    attrs = dhis2_entity(dhis2, samples.HEAD)
    assert attrs["_orgUnit"] == org_unit_uid(samples.VILLAGE)
    assert attrs[A["insuree_id"]] == samples.HEAD
    assert A["first_name"] not in attrs

    def transaction() -> dict[str, Any]:
        listed = api._call("GET", "/transactions", params={"filterLimit": 20}).json()
        mine = [t for t in listed if t["request"]["path"] == channel and t["status"] == "Successful"]
        assert mine
        return api._call("GET", f"/transactions/{mine[0]['_id']}").json()

    tx = eventually(transaction, 20)
    assert tx["status"] == "Successful"
    # the core adds its own call to the mediator; the mediator adds one per DHIS2 call: the version, then the import
    calls = [o for o in tx["orchestrations"] if o["name"].startswith("DHIS2")]
    assert [o["request"]["path"] for o in calls] == ["/api/system/info", "/api/tracker"]
    assert calls[-1]["response"]["status"] == 200
    assert tx["properties"]["records_delivered"] == "1"
    # What the mediator wrote (its answer, its orchestrations) names no one; the core's own orchestration of the
    # route holds the client's body (base64 on 4.0.5, in clear on 8.x: see the README's "What OpenHIM keeps").
    assert "Ageni" not in json.dumps(tx["response"]) + json.dumps(calls)


def openhim_transaction(api: CoreClient, path: str, status: str) -> dict[str, Any]:
    listed = api._call("GET", "/transactions", params={"filterLimit": 20}).json()
    mine = [t for t in listed if t["request"]["path"] == path and t["status"] == status]
    assert mine
    return api._call("GET", f"/transactions/{mine[0]['_id']}").json()


def test_a_push_dhis2_cannot_take_is_delivered_later_and_its_openhim_transaction_updated(
    core: Core, api: CoreClient, channel: str, dhis2: str
):
    faults(dhis2, fail_next=10**6)
    member = samples.patient(samples.MEMBER, "104000002", is_head=False)
    resp = send(core, channel, member)
    assert resp.status_code == 202, resp.text
    assert "will be delivered to DHIS2" in json.dumps(resp.json())
    waiting = eventually(lambda: openhim_transaction(api, channel, "Processing"), 20)
    assert waiting["properties"]["records_pending"] == "1"
    time.sleep(1.5)  # the worker tries again meanwhile, and meets DHIS2 still down
    faults(dhis2, fail_next=0)
    eventually(lambda: dhis2_entity(dhis2, samples.MEMBER), 30)
    done = eventually(lambda: api._call("GET", f"/transactions/{waiting['_id']}").json()["status"] == "Successful", 30)
    assert done
    tx = api._call("GET", f"/transactions/{waiting['_id']}").json()
    calls = [o for o in tx["orchestrations"] if o["name"].startswith("DHIS2")]
    assert calls[-1]["request"]["path"] == "/api/tracker" and calls[-1]["response"]["status"] == 200
    assert any(o["response"]["status"] == 503 for o in calls)  # the attempts DHIS2 refused are shown too
    assert "Ageni" not in json.dumps(calls)
    # What the transaction said when answered (202, one record pending) gave way to the final counts.
    assert (tx["properties"]["records_pending"], tx["properties"]["records_delivered"]) == ("0", "1")
    assert tx["response"]["status"] == 200
    assert "delivered later: 1 delivered, 0 unchanged, 0 rejected" in tx["response"]["body"]


def test_a_delivery_of_an_insuree_is_in_the_core_s_audit_log_naming_it_by_its_dhis2_uid(
    core: Core, api: CoreClient, channel: str, dhis2: str
):
    key, number = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "104000777"
    resp = send(core, channel, samples.patient(key, number))
    assert resp.status_code == 200, resp.text
    uid = tracked_entity_uid(key)

    def audited() -> list[dict[str, Any]]:
        # Filtered by the core on the participant; read whole one by one (a full listing makes the core audit
        # every record it lists).
        wanted = {"participantObjectIdentification.participantObjectID": json.dumps(uid)}
        listed = api._call("GET", "/audits", params={"filterLimit": 10, "filters": json.dumps(wanted)}).json()
        return [api._call("GET", f"/audits/{a['_id']}").json() for a in listed]

    (event,) = eventually(audited, 20)
    assert event["eventIdentification"]["eventID"]["code"] == "110106"  # DICOM Export
    assert event["eventIdentification"]["eventOutcomeIndicator"] == "0"
    roles = {p["roleIDCode"]["code"]: p["userID"] for p in event["activeParticipant"]}
    assert roles == {"110153": CLIENT_ID, "110150": URN, "110152": "127.0.0.1"}
    assert event["auditSourceIdentification"]["auditSourceID"] == URN
    kinds = {o["participantObjectTypeCode"] for o in event["participantObjectIdentification"]}
    assert kinds == {"1", "2"}  # the insuree, and the OpenHIM transaction
    shown = json.dumps(event)
    assert key not in shown and number not in shown and "Ageni" not in shown


def test_another_channels_credentials_are_refused(mediator: dict[str, Any]):
    url = f"http://127.0.0.1:{mediator['port']}/channels/insurees"
    resp = requests.post(url, json=samples.patient(), auth=("openhim-claims", CHANNEL_PASSWORD), timeout=10)
    assert resp.status_code == 401


def test_console_config_change_reaches_the_mediator_without_restart(
    core: Core, api: CoreClient, channel: str, dhis2: str
):
    # On a connection of its own: core 4.0.5 has been seen to drop a PUT on a reused keep-alive socket.
    console = CoreClient(api.url, *ADMIN, auth_mode=api.auth_mode, verify=False)
    config = console.get_mediator(URN)["config"]
    config["send_names"] = True
    console.set_config(URN, config)

    def names_arrive() -> bool:
        send(core, channel, samples.patient())
        return dhis2_entity(dhis2, samples.HEAD).get(A["first_name"]) == "Ageni"

    eventually(names_arrive, 30, every=1.0)


def test_a_polling_channel_s_schedule_is_edited_as_the_console_edits_it(api: CoreClient, channel: str):
    # The console sends the whole channel back with the field changed; core 8.5 refuses a polling channel that
    # carries HTTP methods, so the default polling channels carry none.
    console = CoreClient(api.url, *ADMIN, auth_mode=api.auth_mode, verify=False)
    listed = console._call("GET", "/channels").json()
    pull = next(c for c in listed if c["name"] == "openIMIS pull into DHIS2")
    assert pull["type"] == "polling"
    edited = {**pull, "pollingSchedule": "*/10 * * * *"}
    console._call("PUT", f"/channels/{pull['_id']}", json=edited)
    again = console._call("GET", f"/channels/{pull['_id']}").json()
    assert again["pollingSchedule"] == "*/10 * * * *"
