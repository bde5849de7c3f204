"""The stack's OpenHIM import job (deploy/openhim/import_config.py, what `docker compose up` runs once the core
answers) against a real OpenHIM core 8.5.0, the version the compose file runs: it makes the mediator's admin user
and the import file's client and channels, a second run changes nothing, the mediator registers as that user, and
openIMIS's client pushes through an imported channel into DHIS2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mediator.mapping.insuree import tracked_entity_uid
from mediator.openhim.core import CoreClient
from tests import samples
from tests.e2e.openhim_core import ADMIN, ROOT, SOURCE_85, Core, free_port, wait_for_port
from tests.e2e.test_openhim_end_to_end import DHIS2_PASSWORD, DHIS2_USER, URN, eventually, spawn, stop
from tests.processes import start_fake_dhis2

pytestmark = pytest.mark.e2e
IMPORT = ROOT / "deploy" / "openhim"
MEDIATOR_USER = ("mediator@openhim.local", "Mediator-import-pass-1")
CLIENT = ("openimis", "openimis-client-pass-e2e")  # the import file's client, its password from the environment
CHANNELS = ("insurees", "metadata", "policies", "claims", "openimis", "pull", "aggregates")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("import")


@pytest.fixture(scope="module")
def core(work: Path) -> Iterator[Core]:
    if not SOURCE_85.exists():
        pytest.skip(f"OpenHIM core 8.5.0's source is not at {SOURCE_85} (../shared is absent)")
    instance = Core(version="8.5.0").start(work / "openhim")
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def dhis2(work: Path) -> Iterator[str]:
    proc, url = start_fake_dhis2(work, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, work / "fake-dhis2.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def mediator_port() -> int:
    return free_port()


def import_env(core: Core, work: Path, port: int) -> dict[str, str]:
    """What the compose file gives the job, with the routes sent to this machine's mediator instead of the stack's
    `mediator:8000`."""
    document = json.loads((IMPORT / "openhim-import.json").read_text())
    for channel in document["Channels"]:
        for route in channel["routes"]:
            route["host"], route["port"] = "127.0.0.1", port
    path = work / "openhim-import.json"
    path.write_text(json.dumps(document))
    return {
        **os.environ,
        "OPENHIM_API_URL": core.api_url,
        "OPENHIM_IMPORT_FILE": str(path),
        "OPENHIM_ROOT_PASSWORD": ADMIN[1],
        "OPENHIM_WAIT_SECONDS": "60",
        "MEDIATOR_OPENHIM_USERNAME": MEDIATOR_USER[0],
        "MEDIATOR_OPENHIM_PASSWORD": MEDIATOR_USER[1],
        "MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD": CLIENT[1],
        **{f"MEDIATOR_CHANNEL_{c.upper()}_PASSWORD": f"route-{c}-pass" for c in CHANNELS},
    }


def run_import(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(IMPORT / "import_config.py")], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def imported(core: Core, work: Path, mediator_port: int) -> dict[str, Any]:
    env = import_env(core, work, mediator_port)
    first = run_import(env)
    assert first.returncode == 0, first.stdout + first.stderr
    return {"env": env, "first": first.stdout}


def test_the_job_makes_the_mediator_s_user_the_client_and_every_channel(core: Core, imported: dict[str, Any]):
    root = CoreClient(core.api_url, *ADMIN, verify=False)
    channels = {c["name"]: c for c in root._call("GET", "/channels").json()}
    registration = json.loads((ROOT / "mediator_config.json").read_text())
    assert set(channels) == {c["name"] for c in registration["defaultChannelConfig"]}
    pull = channels["openIMIS pull into DHIS2"]
    assert pull["type"] == "polling" and pull["pollingSchedule"] == "*/5 * * * *"
    assert channels["openIMIS insurees to DHIS2"]["allow"] == ["openimis"]
    assert root._call("GET", "/clients").json()[0]["clientID"] == CLIENT[0]
    # The mediator's user logs in with its password (set through PUT /users, which the core hashes).
    as_mediator = CoreClient(core.api_url, *MEDIATOR_USER, verify=False)
    assert "admin" in as_mediator._call("GET", f"/users/{MEDIATOR_USER[0]}").json()["groups"]
    assert MEDIATOR_USER[1] not in imported["first"] and CLIENT[1] not in imported["first"]  # its log names none


def test_a_second_run_changes_nothing(core: Core, imported: dict[str, Any]):
    root = CoreClient(core.api_url, *ADMIN, verify=False)
    before = root._call("GET", "/channels").json()
    again = run_import(imported["env"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "created" not in again.stdout
    assert root._call("GET", "/channels").json() == before


def test_the_mediator_registers_as_that_user_and_openimis_pushes_through_an_imported_channel(
    core: Core, imported: dict[str, Any], dhis2: str, mediator_port: int, work: Path
):
    env = {
        **imported["env"],
        "MEDIATOR_LISTEN_PORT": str(mediator_port),
        "MEDIATOR_PUBLIC_PORT": str(mediator_port),
        "MEDIATOR_STATE_DIR": str(work / "mediator-state"),
        "MEDIATOR_OPENHIM_URL": core.api_url,
        "MEDIATOR_OPENHIM_VERIFY_TLS": "false",
        "MEDIATOR_HEARTBEAT_SECONDS": "1",
        "MEDIATOR_PSEUDONYM_KEY": "import-pseudonym-key",
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
    }
    proc = spawn([sys.executable, "-m", "mediator.app.cli", "serve"], env, work / "mediator.log")
    try:
        wait_for_port(mediator_port, 30, proc)
        root = CoreClient(core.api_url, *ADMIN, verify=False)
        assert eventually(lambda: root.get_mediator(URN).get("_lastHeartbeat"), 60)
        resp = requests.post(f"{core.router_url}/openimis/insurees", json=samples.patient(), auth=CLIENT, timeout=60)
        assert resp.status_code == 200, resp.text
        entity = requests.get(
            f"{dhis2}/api/tracker/trackedEntities/{tracked_entity_uid(samples.HEAD)}",
            auth=(DHIS2_USER, DHIS2_PASSWORD),
            timeout=10,
        )
        assert entity.status_code == 200
        ready = requests.get(f"http://127.0.0.1:{mediator_port}/ready", timeout=30).json()
        assert ready["checks"]["openhim"]["ok"] and ready["checks"]["openhim"]["registered"]
    finally:
        stop(proc)
