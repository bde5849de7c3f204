"""Two mediator instances on one PostgreSQL journal share the delivery of a large push: each slice goes once, both
instances take part, and every record ends in DHIS2 exactly once."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from mediator.journal.models import Outcome, Transaction, Work
from mediator.journal.store import Journal
from mediator.mapping.uids import tracked_entity_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, empty_postgres
from tests.e2e.openhim_core import free_port, wait_for_port
from tests.e2e.test_crash_recovery import kill, start_mediator
from tests.processes import faults, start_fake_dhis2

pytestmark = pytest.mark.e2e
CHANNEL_PASSWORD = "scale-out-pass"
INSUREES = 2000


def test_two_instances_share_a_push_and_deliver_each_record_once(tmp_path, postgres_url):
    journal_url = empty_postgres(postgres_url)
    fake, dhis2 = start_fake_dhis2(tmp_path, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, tmp_path / "fake.log")
    faults(dhis2, delay=0.15)  # each import takes a while, so both instances find slices to take
    ports = [free_port(), free_port()]
    common = {
        **os.environ,
        "MEDIATOR_WORKERS": "1",
        "MEDIATOR_JOURNAL_URL": journal_url,
        "MEDIATOR_OPENHIM_REGISTER": "false",
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_CHANNEL_INSUREES_PASSWORD": CHANNEL_PASSWORD,
        "MEDIATOR_INLINE_LIMIT": "100",
        "MEDIATOR_BATCH_SIZE": "50",
        "MEDIATOR_SLICE_SIZE": "100",
        "MEDIATOR_DELIVERY_SECONDS": "0.2",
    }
    instances = []
    try:
        for i, port in enumerate(ports):
            env = {**common, "MEDIATOR_LISTEN_PORT": str(port), "MEDIATOR_STATE_DIR": str(tmp_path / f"state-{i}")}
            instances.append(start_mediator(env, tmp_path / f"mediator-{i}.log"))
            wait_for_port(port, 30, instances[-1])
        keys = [str(uuid.uuid4()) for _ in range(INSUREES)]
        bundle = samples.bundle(*(samples.patient(k, f"8{i:08d}", family=None) for i, k in enumerate(keys)))
        resp = requests.post(
            f"http://127.0.0.1:{ports[0]}/channels/insurees",
            data=json.dumps(bundle),
            auth=("openhim-insurees", CHANNEL_PASSWORD),
            headers={"Content-Type": "application/json"},
            timeout=120,
        )
        assert resp.status_code == 202, resp.text[:500]
        journal = Journal.open(journal_url)

        def status() -> str:
            with journal.sessions() as session:
                return session.scalars(select(Transaction.status)).one()

        deadline = time.monotonic() + 180
        while status() == "Processing" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert status() == "Successful"
        assert faults(dhis2)["tracked_entities"] == INSUREES
        with journal.sessions() as session:
            states = dict(session.execute(select(Work.state, func.count()).group_by(Work.state)).all())
            delivered = session.scalar(select(func.count()).where(Outcome.status == "delivered"))
            workers = set(session.scalars(select(Work.claimed_by).distinct()))
        assert states == {"delivered": INSUREES}
        assert delivered == INSUREES  # no record was delivered twice
        pids = {str(w).split(":")[1] for w in workers}
        assert len(pids) == 2, workers  # both instances took slices
        for key in keys[:: INSUREES // 20]:
            found = requests.get(
                f"{dhis2}/api/tracker/trackedEntities/{tracked_entity_uid(key)}",
                auth=(DHIS2_USER, DHIS2_PASSWORD),
                timeout=10,
            )
            assert found.status_code == 200 and len(found.json()["enrollments"]) == 1
    finally:
        for proc in instances:
            if proc.poll() is None:
                kill(proc)
        fake.terminate()
        fake.wait(10)
