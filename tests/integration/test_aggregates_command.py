"""`openimis-dhis2-mediator aggregates` sends the months asked (or every month, or what is due) and says what
happened; the delivery worker sends closed months by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mediator.app.service import start_worker
from mediator.config.settings import build_settings
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.aggregate_totals import sent
from tests.integration.test_aggregate_changes import World, keys_of, starting_resources
from tests.integration.test_aggregates import Mediator, this_month


@pytest.fixture
def mediator(tmp_path: Path):
    running = Mediator(tmp_path / "state")
    running.push(json.dumps(samples.bundle(*starting_resources())).encode())
    yield running
    running.stop()


def command(mediator: Mediator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **mediator.env}
    return subprocess.run(
        [sys.executable, "-m", "mediator.app.cli", "aggregates", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_month_asked_is_sent_and_said(mediator):
    done = command(mediator, "--period", "2019-01")
    assert done.returncode == 0, done.stderr
    assert "2019-01: 1 org unit month(s) sent" in done.stdout
    assert {k[1] for k in mediator.fake.fake.store.data_values} == {"201901"}  # (element, period, ...)


def test_every_month_and_what_cannot_be_counted_yet(mediator):
    orphan = samples.claim(
        key="7f3c1a2b-0000-4c3d-8e9f-111111111111", patient_key="00000000-1111-4222-8333-444444444444"
    )
    mediator.push(json.dumps(samples.bundle(orphan)).encode())
    done = command(mediator, "--all")
    assert done.returncode == 0, done.stderr
    assert "not counted yet: 1 record(s): its insuree is not known yet" in done.stdout
    world = World(starting_resources())
    assert sent(mediator.fake.fake.store, keys_of(world)) == world.totals()


def test_a_period_that_is_no_month_is_refused(mediator):
    done = command(mediator, "--period", "2019-13")
    assert done.returncode == 2 and "is not a month" in done.stdout


def test_the_aggregates_off_say_how_to_turn_them_on(mediator):
    mediator.env["MEDIATOR_AGGREGATES"] = "false"
    done = command(mediator)
    assert done.returncode == 2 and "MEDIATOR_AGGREGATES=true" in done.stdout


def test_dhis2_refusing_a_month_fails_the_command_naming_it(mediator):
    del mediator.fake.fake.store.org_units[org_unit_uid(samples.HOSPITAL)]
    done = command(mediator, "--period", "2019-01")
    assert done.returncode == 1
    assert f"refused DataValueSet/PROCESSED_CLAIM/2019-01/{samples.HOSPITAL}" in done.stdout


def test_the_delivery_worker_sends_the_closed_months_by_itself(mediator):
    env = {**mediator.env, "MEDIATOR_DELIVERY_SECONDS": "0.05", "MEDIATOR_AGGREGATE_SECONDS": "0.05"}
    stop = start_worker(build_settings(env), env)
    try:
        deadline = time.monotonic() + 30  # a bound for a slow machine, not a measure
        while not mediator.fake.fake.store.data_values and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert {k[1] for k in mediator.fake.fake.store.data_values} == {"201901"}  # the closed month; not this one


def polling(mediator: Mediator, query: str = "", **env: str) -> tuple[int, dict]:
    from tests.conftest import basic, mediator_client

    client = mediator_client(mediator.env, channel_aggregates_password="aggregates-route-pass", **env)
    answer = client.get(f"/channels/aggregates{query}", headers=basic("openhim-aggregates", "aggregates-route-pass"))
    return answer.status_code, json.loads(answer.data)


def test_the_polling_channel_sends_what_is_due_with_one_orchestration_per_dhis2_call(mediator):
    status, doc = polling(mediator)
    assert status == 200 and doc["status"] == "Successful"
    assert doc["properties"]["aggregates_sent"] == "1"  # the claim's closed month
    calls = [o["request"]["path"] for o in doc["orchestrations"]]
    assert any(p.endswith("/api/dataValueSets") for p in calls)
    assert all(
        '"value":"[redacted]"' in o["request"]["body"]
        for o in doc["orchestrations"]
        if "dataValueSets" in o["request"]["path"]
    )
    status, doc = polling(mediator, f"?period={this_month()}")
    assert status == 200 and doc["properties"]["aggregates_sent"] == "1"  # the ward's ENROLMENT of this month
    from mediator.journal.models import Transaction

    with mediator.journal.sessions() as session:
        origins = [t.origin for t in session.query(Transaction).order_by(Transaction.id)]
    assert origins[-2:] == ["aggregates", "aggregates"]


def test_the_polling_channel_refuses_a_bad_period_and_says_when_the_aggregates_are_off(mediator):
    status, doc = polling(mediator, "?period=May")
    assert status == 400 and "is not a month" in doc["response"]["body"]
    status, doc = polling(mediator, "?period=2019-01", aggregates="false")
    assert status == 409 and "the monthly aggregates are off" in doc["response"]["body"]
    status, doc = polling(mediator, aggregates="false")  # the polling channel's own calls: a quiet answer
    assert status == 200 and "nothing to send" in doc["response"]["body"]


def test_a_month_refused_earlier_is_listed_until_it_is_sent_again(mediator):
    store = mediator.fake.fake.store
    hospital = store.org_units.pop(org_unit_uid(samples.HOSPITAL))
    assert command(mediator, "--period", "2019-01").returncode == 1
    done = command(mediator, "--period", "2018-12")
    assert f"still refused since an earlier run: DataValueSet/PROCESSED_CLAIM/2019-01/{samples.HOSPITAL}" in done.stdout
    store.org_units[hospital["id"]] = hospital
    done = command(mediator, "--period", "2019-01")
    assert done.returncode == 0 and "still refused" not in done.stdout
