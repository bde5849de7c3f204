"""The served mediator as orchestrators and Prometheus see it: gunicorn with two workers, the fake DHIS2 in its own
process, the journal on PostgreSQL (stopped and started again) or SQLite."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests import postgres, samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER
from tests.e2e.openhim_core import free_port, wait_for_port
from tests.e2e.test_crash_recovery import kill, start_mediator
from tests.processes import faults, mediator_env, start_fake_dhis2

pytestmark = pytest.mark.e2e
CHANNEL_PASSWORD = "service-channel-pass"
AUDITOR = ("auditor", "service-auditor-pass")
METRICS = ("metrics", "service-metrics-pass")
TRANSACTION = "64f0c0ffee00000000000001"


def eventually(check: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


class Served:
    def __init__(self, tmp: Path, **settings: str) -> None:
        self.tmp, self.settings = tmp, settings
        self.dhis2_port = free_port()
        self.fake: subprocess.Popen | None = None
        self.start_dhis2()
        self.port = free_port()
        env = mediator_env(
            self.port, tmp / "state", self.dhis2, CHANNEL_PASSWORD, workers="2", auditor_password=AUDITOR[1],
            delivery_seconds="0.3", retry_seconds="0.5", dhis2_max_attempts="1", pseudonym_key="service-key",
            metrics_password=METRICS[1],
            **settings,
        )  # fmt: skip
        self.log = tmp / "mediator.log"
        self.proc = start_mediator(env, self.log)
        wait_for_port(self.port, 60, self.proc)

    @property
    def dhis2(self) -> str:
        return f"http://127.0.0.1:{self.dhis2_port}"

    def start_dhis2(self) -> None:
        self.fake, _ = start_fake_dhis2(
            self.tmp, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, self.tmp / "fake.log", port=self.dhis2_port
        )

    def stop_dhis2(self) -> None:
        assert self.fake is not None
        kill(self.fake)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        # A connection of its own each time, so that either worker may answer.
        return requests.get(
            f"http://127.0.0.1:{self.port}{path}", headers={"Connection": "close"}, timeout=30, **kwargs
        )

    def push(self, doc: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"http://127.0.0.1:{self.port}/channels/insurees",
            data=json.dumps(doc),
            auth=("openhim-insurees", CHANNEL_PASSWORD),
            headers={"Content-Type": "application/fhir+json", "X-OpenHIM-TransactionID": TRANSACTION},
            timeout=60,
        )

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        resp = self.get("/metrics", auth=AUDITOR)
        assert resp.status_code == 200, resp.text
        return scraped(resp.text)

    def stop(self) -> None:
        kill(self.proc)
        if self.fake is not None and self.fake.poll() is None:
            kill(self.fake)


def scraped(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape's samples by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples_: dict, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels (the others, whatever they are)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples_.items() if n == name and wanted <= set(ls))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    instance = Served(tmp_path, log_format="json")
    yield instance
    instance.stop()


def test_health_answers_without_credentials_and_names_nothing_sensitive(served: Served):
    resp = served.get("/health")
    assert resp.status_code == 200 and resp.json()["status"] == "up"
    ready = served.get("/ready")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["dhis2"] == {"ok": True, "version": "2.40.3"}  # what the fake DHIS2 says it is
    assert checks["journal"]["ok"] and checks["migrations"]["ok"]
    for method in ("POST", "PUT", "DELETE"):  # never taken for a channel's request
        refused = requests.request(method, f"http://127.0.0.1:{served.port}/ready", data=b"x", timeout=10)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
    shown = ready.text + resp.text
    for secret in (DHIS2_USER, DHIS2_PASSWORD, str(served.dhis2_port), str(served.tmp)):
        assert secret not in shown


def test_metrics_need_the_auditor_and_count_a_push_as_it_goes(served: Served):
    assert served.get("/metrics").status_code == 401
    assert served.get("/metrics", auth=("openhim-insurees", CHANNEL_PASSWORD)).status_code == 401
    assert served.get("/metrics", auth=(METRICS[0], AUDITOR[1])).status_code == 401
    assert served.get("/metrics", auth=METRICS).status_code == 200
    assert served.get("/audit/pushes", auth=METRICS).status_code == 401  # the metrics reader sees nothing else
    before = served.metrics()
    faults(served.dhis2, fail_next=10**6)  # DHIS2 down: the push is kept, answered 202, delivered later
    resp = served.push(samples.patient())
    assert resp.status_code == 202, resp.text
    during = served.metrics()
    assert value(during, "mediator_records_received_total", kind="Patient", outcome="accepted") == 1 + value(
        before, "mediator_records_received_total", kind="Patient", outcome="accepted"
    )
    assert value(during, "mediator_records_pending", kind="Patient") == 1
    assert value(during, "mediator_push_answer_seconds_count", channel="insurees", status="202") == 1
    assert value(during, "mediator_dhis2_request_seconds_count", status="503") >= 1
    faults(served.dhis2, fail_next=0)

    def delivered() -> dict:
        now = served.metrics()
        return now if value(now, "mediator_records_delivered_total", kind="Patient", outcome="delivered") else {}

    after = eventually(delivered)
    assert after, "the record was never counted delivered"
    assert value(after, "mediator_records_pending", kind="Patient") == 0
    assert value(after, "mediator_delivery_retries_total", kind="Patient") >= 1
    assert value(after, "mediator_dhis2_request_seconds_count", endpoint="/api/tracker", status="200") >= 1
    assert value(after, "mediator_journal_size_bytes") > 0
    # Whichever worker answers, the counters are the sums over both.
    for _ in range(6):
        again = served.metrics()
        assert value(again, "mediator_records_received_total") == value(after, "mediator_records_received_total")
    # No key, number or name of a record is a label.
    text = served.get("/metrics", auth=AUDITOR).text
    assert samples.HEAD not in text and "104000001" not in text and "Ageni" not in text


def test_json_log_lines_name_the_transaction_channel_and_push_and_no_record_value(served: Served):
    faults(served.dhis2, fail_next=2)  # the first attempt fails: the worker's lines are about the push too
    assert served.push(samples.patient()).status_code == 202

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in served.log.read_text().splitlines() if line.startswith("{")]

    def decided() -> bool:
        return any("the push is Successful" in line["message"] for line in lines())

    assert eventually(decided)
    every = lines()
    assert all({"time", "level", "logger", "pid", "message"} <= set(line) for line in every)
    about = [line for line in every if line.get("transaction") == TRANSACTION]
    assert {line["logger"] for line in about} >= {"mediator.app.web.respond", "mediator.delivery.worker"}
    assert all(line["channel"] == "insurees" and line["push"] == about[0]["push"] for line in about)
    assert isinstance(about[0]["push"], int)
    text = served.log.read_text()
    assert samples.HEAD not in text and "104000001" not in text and "Ageni" not in text


@pytest.mark.postgres
def test_ready_turns_not_ready_when_dhis2_or_the_journal_is_gone_and_ready_again_after(tmp_path: Path):
    base = Path(tempfile.mkdtemp(prefix="mediator-ready-pg-"))  # outside pytest's folders: it runs as user postgres
    with postgres.postgres_server(base) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        served = Served(tmp_path, journal_url=url)
        try:
            assert served.get("/ready").status_code == 200

            def ready_is(code: int) -> dict | None:
                resp = served.get("/ready")
                return resp.json()["checks"] if resp.status_code == code else None

            served.stop_dhis2()
            checks = eventually(lambda: ready_is(503))
            assert checks and not checks["dhis2"]["ok"] and checks["journal"]["ok"]
            served.start_dhis2()
            assert eventually(lambda: ready_is(200))
            postgres.stop(base)
            checks = eventually(lambda: ready_is(503))
            assert checks and not checks["journal"]["ok"]
            assert served.get("/health").status_code == 200  # the process still answers
            postgres.start(base, port)
            checks = eventually(lambda: ready_is(200), 60)
            assert checks and checks["journal"]["ok"] and checks["migrations"]["revision"]
        finally:
            served.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_metrics_on_a_port_of_their_own_are_served_by_the_master_for_every_worker(tmp_path: Path):
    port = free_port()
    served = Served(tmp_path, metrics_port=str(port), log_format="json")
    try:
        wait_for_port(port, 30)
        assert served.get("/metrics", auth=AUDITOR).status_code == 404  # not on the main port then
        assert served.push(samples.patient()).status_code == 200

        def counted() -> float:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text  # no credentials here
            return value(scraped(text), "mediator_records_delivered_total", kind="Patient", outcome="delivered")

        assert eventually(counted) == 1
    finally:
        served.stop()
