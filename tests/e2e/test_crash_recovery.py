"""The mediator killed (SIGKILL) in the middle of a large push while DHIS2 is down for a while: after restart every
record is in DHIS2 exactly once, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from mediator.mapping.defaults import INSUREE_ATTRIBUTES as A
from mediator.mapping.uids import derive_uid, tracked_entity_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, empty_postgres
from tests.e2e.openhim_core import free_port, wait_for_port
from tests.processes import faults, start_fake_dhis2

pytestmark = pytest.mark.e2e
CHANNEL_PASSWORD = "crash-test-pass"
INSUREES = 3000


def start_mediator(env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mediator.app.cli", "serve"]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killed_mid_push_with_dhis2_down_ends_with_every_record_exactly_once(database, tmp_path, request):
    if database == "sqlite":
        journal = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    else:
        journal = empty_postgres(request.getfixturevalue("postgres_url"))
    fake, dhis2 = start_fake_dhis2(tmp_path, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, tmp_path / "fake.log")
    port = free_port()
    env = {
        **os.environ,
        "MEDIATOR_LISTEN_PORT": str(port),
        "MEDIATOR_WORKERS": "2",
        "MEDIATOR_STATE_DIR": str(tmp_path / "state"),
        "MEDIATOR_JOURNAL_URL": journal,
        "MEDIATOR_OPENHIM_REGISTER": "false",
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_DHIS2_MAX_ATTEMPTS": "1",
        "MEDIATOR_CHANNEL_INSUREES_PASSWORD": CHANNEL_PASSWORD,
        "MEDIATOR_INLINE_LIMIT": "100",  # a large push is answered at once and delivered by the worker
        "MEDIATOR_BATCH_SIZE": "100",
        "MEDIATOR_DELIVERY_SECONDS": "0.3",
    }
    keys = [str(uuid.uuid4()) for _ in range(INSUREES)]
    family_of = {k: keys[i - i % 3] for i, k in enumerate(keys)}  # families of three, named after their head
    patients = [samples.patient(k, f"9{i:08d}", family=family_of[k]) for i, k in enumerate(keys)]
    groups = [samples.group(head, tuple(keys[i : i + 3])) for i, head in enumerate(keys) if i % 3 == 0]
    bundle = samples.bundle(*patients, *groups)  # Groups last: each family's slice must still hold its members
    mediator = start_mediator(env, tmp_path / "mediator.log")
    try:
        wait_for_port(port, 30, mediator)
        resp = requests.post(
            f"http://127.0.0.1:{port}/channels/insurees",
            data=json.dumps(bundle),
            auth=("openhim-insurees", CHANNEL_PASSWORD),
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        assert resp.status_code == 202, resp.text[:500]
        # Let the worker deliver part of the push, then DHIS2 goes down and the mediator is killed.
        deadline = time.monotonic() + 60
        while faults(dhis2)["tracked_entities"] < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        faults(dhis2, fail_next=10**6)
        kill(mediator)
        written = faults(dhis2)["tracked_entities"]
        assert 0 < written < INSUREES, "the kill should come in the middle of the push"
        mediator = start_mediator(env, tmp_path / "mediator.log")
        wait_for_port(port, 30, mediator)
        time.sleep(1.0)  # the restarted mediator meets DHIS2 still down
        faults(dhis2, fail_next=0)
        deadline = time.monotonic() + 180
        while faults(dhis2)["tracked_entities"] < INSUREES and time.monotonic() < deadline:
            time.sleep(0.5)
        store_count = faults(dhis2)["tracked_entities"]
        assert store_count == INSUREES
        for key in keys[:: INSUREES // 30]:
            uid = tracked_entity_uid(key)
            found = requests.get(
                f"{dhis2}/api/tracker/trackedEntities/{uid}", auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=10
            )
            assert found.status_code == 200 and len(found.json()["enrollments"]) == 1
            attributes = {a["attribute"]: a["value"] for a in found.json()["attributes"]}
            assert attributes[A["family_id"]] == derive_uid("family", family_of[key])
            assert attributes[A["poverty"]] == "true"
    finally:
        if mediator.poll() is None:
            kill(mediator)
        fake.terminate()
        fake.wait(10)
