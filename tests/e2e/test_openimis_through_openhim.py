"""End to end with a real openIMIS: the pull channel triggered by the OpenHIM core's polling service, and an insuree
changed in openIMIS reaching DHIS2 through openIMIS's own FHIR Subscription, the core's router and the mediator."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mediator.delivery.bootstrap import bootstrap
from mediator.dhis2.client import Dhis2Client, make_auth
from mediator.mapping.insuree import tracked_entity_uid
from mediator.mapping.model import Setup
from mediator.openhim.core import CoreClient
from tests.e2e.conftest import install_channels_and_client, registered_mediator
from tests.e2e.openhim_core import Core, free_port, wait_for_port
from tests.e2e.test_openhim_end_to_end import eventually, spawn, stop
from tests.openimis_local import PASSWORD, USER, OpenImis
from tests.processes import start_fake_dhis2

pytestmark = pytest.mark.e2e

URN = "urn:mediator:openimis-dhis2"
CLIENT_ID, CLIENT_PASSWORD = "openimis-server", "openimis-subscriber-pass"
DHIS2_USER, DHIS2_PASSWORD = "mediator", "Dhis2-e2e-pass"
PROFESSION = "zy5Br9ZEDLY"


@pytest.fixture(scope="module")
def dhis2(run_dir: Path) -> Iterator[str]:
    proc, url = start_fake_dhis2(run_dir, [], DHIS2_USER, DHIS2_PASSWORD, run_dir / "fake-dhis2.log")
    bootstrap(Dhis2Client(url, make_auth("basic", DHIS2_USER, DHIS2_PASSWORD, "")), Setup(), "openIMIS")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def mediator_env(core: Core, dhis2: str, openimis: OpenImis, run_dir: Path) -> dict[str, str]:
    port = free_port()
    return {
        **registered_mediator(core, port, run_dir / "mediator-state"),
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_OPENIMIS_URL": openimis.url,
        "MEDIATOR_OPENIMIS_USERNAME": USER,
        "MEDIATOR_OPENIMIS_PASSWORD": PASSWORD,
        "MEDIATOR_CHANNEL_PULL_PASSWORD": "pull-route-pass",
        "MEDIATOR_CHANNEL_INSUREES_PASSWORD": "insurees-route-pass",
        "MEDIATOR_CHANNEL_METADATA_PASSWORD": "metadata-route-pass",
        "MEDIATOR_OPENHIM_ROUTER_URL": core.router_url,
        "MEDIATOR_SUBSCRIPTION_CLIENT_ID": CLIENT_ID,
        "MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD": CLIENT_PASSWORD,
    }


@pytest.fixture(scope="module")
def mediator(mediator_env: dict[str, str], run_dir: Path) -> Iterator[dict[str, Any]]:
    log = run_dir / "mediator.log"
    proc = spawn([sys.executable, "-m", "mediator.app.cli", "serve"], mediator_env, log)
    wait_for_port(int(mediator_env["MEDIATOR_LISTEN_PORT"]), 30, proc)
    yield {"log": log, "proc": proc}
    stop(proc)


@pytest.fixture(scope="module")
def channels(api: CoreClient, mediator: dict[str, Any]) -> dict[str, dict[str, Any]]:
    eventually(lambda: api.get_mediator(URN)["urn"] == URN, 60)
    install_channels_and_client(api, URN, CLIENT_ID, CLIENT_PASSWORD)
    return {c["name"]: c for c in api._call("GET", "/channels").json()}


def tracked_entity(dhis2: str, key: str) -> dict[str, Any]:
    url = f"{dhis2}/api/tracker/trackedEntities/{tracked_entity_uid(key)}"
    resp = requests.get(url, auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=10)
    resp.raise_for_status()
    return {a["attribute"]: a["value"] for a in resp.json()["attributes"]}


def transactions(api: CoreClient, path: str) -> list[dict[str, Any]]:
    listed = api._call("GET", "/transactions", params={"filterLimit": 50}).json()
    return [t for t in listed if t["request"]["path"] == path]


def test_the_polling_channel_pulls_everything_from_openimis_into_dhis2(
    core: Core, api: CoreClient, channels: dict[str, dict[str, Any]], dhis2: str, openimis: OpenImis
):
    polling = channels["openIMIS pull into DHIS2"]
    assert polling["type"] == "polling" and polling["pollingSchedule"]
    # What the core's scheduler does on each tick of the pollingSchedule: a call to its polling service.
    answer = requests.get(
        f"http://127.0.0.1:{core.ports['polling']}/trigger", headers={"channel-id": polling["_id"]}, timeout=300
    )
    assert answer.status_code in (200, 422), answer.text[:500]
    patients = openimis.session().get(openimis.url + "Patient/", params={"_count": "1000"}, timeout=60).json()
    for entry in patients["entry"]:
        assert tracked_entity(dhis2, entry["resource"]["id"])

    # The core's polling service calls every polling channel `/trigger`: the pull's is the one of its channel (the
    # aggregates channel polls on its own schedule too).
    def pulls() -> list[dict[str, Any]]:
        found = transactions(api, "/trigger") + transactions(api, "/openimis/pull")
        return [t for t in found if t.get("channelID") == polling["_id"]]

    (tx,) = eventually(pulls, 20)
    tx = api._call("GET", f"/transactions/{tx['_id']}").json()
    assert int(tx["properties"]["pulled_Patient"]) == len(patients["entry"])
    assert any(o["name"].startswith("DHIS2") for o in tx["orchestrations"])


def test_an_insuree_changed_in_openimis_reaches_dhis2_through_its_subscription_and_openhim(
    api: CoreClient, channels: dict[str, dict[str, Any]], mediator_env: dict[str, str], dhis2: str, openimis: OpenImis
):
    command = [sys.executable, "-m", "mediator.app.cli", "subscribe"]
    made = subprocess.run(command, env=mediator_env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Patient -> " in made.stdout
    checked = subprocess.run([*command, "--check"], env=mediator_env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and checked.stdout.count("in place") == 2, checked.stdout
    session = openimis.session()
    patients = session.get(openimis.url + "Patient/", params={"_count": "1000"}, timeout=60).json()["entry"]
    member = next(
        e["resource"]
        for e in patients
        if any(
            x["url"].endswith("patient-is-head") and x.get("valueBoolean") is False for x in e["resource"]["extension"]
        )
    )
    before = tracked_entity(dhis2, member["id"]).get(PROFESSION)
    changed = copy.deepcopy(member)
    changed["extension"] = [e for e in changed["extension"] if not e["url"].endswith("patient-profession")]
    profession = "2" if before != "2" else "3"  # openIMIS's professions are 1 to 4
    changed["extension"].append(
        {
            "url": "https://openimis.github.io/openimis_fhir_r4_ig/StructureDefinition/patient-profession",
            "valueCodeableConcept": {"coding": [{"code": profession}]},
        }
    )
    put = session.put(f"{openimis.url}Patient/{member['id']}/", json=changed, timeout=60)
    assert put.status_code == 200, put.text[:300]
    # openIMIS notified the router from inside that PUT: DHIS2 has the change without waiting for a pull.
    eventually(lambda: tracked_entity(dhis2, member["id"]).get(PROFESSION) == profession, 20)
    (tx, *_) = eventually(lambda: transactions(api, "/openimis/insurees"), 20)
    assert tx["status"] == "Successful"
