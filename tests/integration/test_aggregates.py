"""Monthly aggregates: what a real openIMIS serves, and openIMIS's demo data set, pushed with the aggregates on; the
cells DHIS2 receives equal totals computed in the test from the FHIR resources (tests/aggregate_totals.py), for
every month the data covers. A record changed moves its contribution, and aggregate-only mode sends no tracker call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.aggregates.contributions import parse_month
from mediator.config.console import LiveSettings
from mediator.config.settings import build_settings
from mediator.delivery.aggregates import send_aggregates
from mediator.delivery.bootstrap import bootstrap
from mediator.delivery.worker import Deliverer
from mediator.journal import aggregates as jagg
from mediator.journal.store import Journal, default_url
from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests.aggregate_totals import sent, totals
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, basic, dhis2_client, mediator_client
from tests.integration.test_real_openimis_output import FILES

REAL = Path(__file__).resolve().parents[1] / "data" / "openimis-24.04"
DEMO = Path(__file__).resolve().parents[3] / "shared" / "data" / "openimis-demo-fhir"
DEMO_FILES = ["metadata", "insurees", "policies", "claims"]
AUTH = basic("openhim-openimis", "openimis-route-pass")
HEADERS = {**AUTH, "Content-Type": "application/json"}


def bodies(folder: Path, names: list[str]) -> list[bytes]:
    return [(folder / f"{name}.json").read_bytes() for name in names]


def resources_of(raw: list[bytes]) -> list[dict[str, Any]]:
    return [e["resource"] for body in raw for e in json.loads(body)["entry"]]


class Mediator:
    """A mediator with the aggregates on, its journal, and a fake DHIS2 set up by bootstrap."""

    def __init__(self, state: Path, journal_url: str = "", **settings: str) -> None:
        self.fake = RunningFake(FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})).start()
        bootstrap(dhis2_client(self.fake), Setup(), "openIMIS")
        self.env = {
            "MEDIATOR_STATE_DIR": str(state),
            "MEDIATOR_DHIS2_URL": self.fake.url,
            "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
            "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
            "MEDIATOR_PSEUDONYM_KEY": "aggregates-key",
            "MEDIATOR_CHANNEL_OPENIMIS_PASSWORD": "openimis-route-pass",
            "MEDIATOR_AGGREGATES": "true",
            "MEDIATOR_JOURNAL_URL": journal_url or default_url(state),
            **{f"MEDIATOR_{k.upper()}": v for k, v in settings.items()},
        }
        self.client = mediator_client(self.env)
        self.settings = build_settings(self.env)
        self.journal = Journal.open(self.env["MEDIATOR_JOURNAL_URL"])
        self.deliverer = Deliverer(self.journal)

    def push(self, body: bytes) -> dict[str, Any]:
        answer = self.client.post("/channels/openimis", data=body, headers=HEADERS)
        assert answer.status_code in (200, 422), answer.data[:500]
        return json.loads(answer.data)

    def send(self, months: list[int] | None = None, now: datetime | None = None) -> Any:
        with self.journal.sessions() as session:
            wanted = months if months is not None else jagg.months_known(session, now)
        settings = LiveSettings(self.settings, self.env).current()
        run = send_aggregates(
            self.journal, lambda ex: self.deliverer.client(settings, None, ex), settings, wanted, now=now
        )
        assert run is not None
        return run

    def schedule(self, now: datetime) -> Any:
        """What the delivery worker does on its round at `now`: the closed months due."""
        settings = LiveSettings(self.settings, self.env).current()
        run = send_aggregates(self.journal, lambda ex: self.deliverer.client(settings, None, ex), settings, now=now)
        assert run is not None
        return run

    def held(self, resources: list[dict[str, Any]]) -> dict[Any, Any]:
        keys = {
            org_unit_uid(r["id"].lower()): r["id"].lower()
            for r in resources
            if r["resourceType"] in ("Location", "Organization")
        }
        return sent(self.fake.fake.store, keys)

    def stop(self) -> None:
        self.fake.stop()


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def dated_this_year(raw: list[bytes]) -> list[bytes]:
    """The real output with its policies, payments and claims seven years later (so that policies are in force
    now), one contribution cut to part of its policy's value, one policy without any, one renewed."""
    out = []
    for body in raw:
        doc = json.loads(re.sub(rb'"(201[89]|2020)-', lambda m: b'"%d-' % (int(m[1]) + 7), body))
        contracts = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Contract"]
        if contracts:
            premium = contracts[0]["term"][0]["asset"][0]["extension"][0]["extension"]
            next(p for p in premium if p["url"] == "amount")["valueMoney"]["value"] = 4000.0
            del contracts[1]["term"][0]["asset"][0]["extension"]
            contracts[2]["legalState"] = {"text": "Renewed"}
        out.append(json.dumps(doc).encode())
    return out


@pytest.fixture(scope="module", params=["real openIMIS output", "dated this year", "demo data set"])
def pushed(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    if request.param == "real openIMIS output":
        raw = bodies(REAL, FILES)
    elif request.param == "dated this year":
        raw = dated_this_year(bodies(REAL, FILES))
    else:
        if not DEMO.is_dir():
            pytest.skip("../shared/data/openimis-demo-fhir is not here")
        raw = bodies(DEMO, DEMO_FILES)
    mediator = Mediator(tmp_path_factory.mktemp("aggregates"))
    answers = [mediator.push(body) for body in raw]
    run = mediator.send()
    yield {"mediator": mediator, "resources": resources_of(raw), "answers": answers, "run": run, "mode": request.param}
    mediator.stop()


def test_every_cell_sent_equals_the_total_computed_from_the_resources(pushed):
    mediator, resources = pushed["mediator"], pushed["resources"]
    expected = totals(resources, this_month(), this_month())
    held = mediator.held(resources)
    missing = {k: v for k, v in expected.items() if held.get(k) != v}
    extra = {k: v for k, v in held.items() if k not in expected}
    assert not missing and not extra, (sorted(missing.items())[:5], sorted(extra.items())[:5])
    elements = {k[0] for k in expected}
    assert elements == {
        "NB_INSUREES",
        "NB_FAMILY",
        "SUM_CONTRIBUTIONS",
        "NB_CLAIM",
        "NB_CLAIM_ITEM",
        "NB_CLAIM_SERVICE",
        "NB_CLAIM_SERVICE_ICD",
        "SUM_VALUATED_SERVICE",
        "SUM_ASKED_SERVICE",
    }
    months = {k[2] for k in expected}
    assert len(months) > 3, months  # the months of the claims and contributions, and the stocks of this month


def test_the_families_dated_this_year_are_in_every_payment_status_and_stage():
    raw = dated_this_year(bodies(REAL, FILES))
    cells = [dict(k[3]) for k in totals(resources_of(raw), this_month(), this_month()) if k[0] == "NB_FAMILY"]
    assert {c["PAYMENT_STATUS"] for c in cells} == {"PAID", "PARTIALY_PAID", "NOT_PAID", "NO_POLICY"}
    assert {c["PAYMENT_STATE"] for c in cells} == {"NEW", "RENEW", "NO_POLICY"}


def test_the_run_is_a_push_of_the_journal_with_every_call(pushed):
    run = pushed["run"]
    assert run.failure is None and not run.rejected, run.rejected[:3]
    assert run.sent > 0 and run.values == len(pushed["mediator"].fake.fake.store.data_values)
    from mediator.journal.models import Exchange, Transaction

    with pushed["mediator"].journal.sessions() as session:
        tx = session.get(Transaction, run.transaction_id)
        assert (tx.origin, tx.status) == ("aggregates", "Successful")
        calls = session.query(Exchange).filter(Exchange.transaction_id == tx.id).all()
    assert any("/api/dataValueSets" in c.url and c.status == 200 for c in calls)
    assert all('"value":"[redacted]"' in c.request_body for c in calls if "/api/dataValueSets" in c.url)


def test_sending_a_month_again_changes_nothing_in_dhis2(pushed):
    mediator = pushed["mediator"]
    before = dict(mediator.fake.fake.store.data_values)
    run = mediator.send([parse_month(this_month())])
    assert run.sent > 0 and not run.rejected
    assert mediator.fake.fake.store.data_values == before


@pytest.mark.parametrize(
    "premium",
    [
        [{"url": "x/contract-premium", "extension": [{"url": "amount", "valueMoney": "lots"}]}],
        [{"url": "x/contract-premium", "extension": "none"}],
        [{"url": "x/contract-premium", "extension": [{"url": "amount", "valueMoney": {"value": "abc"}},
                                                     {"url": "date", "valueDate": "2024-01-01"}]}],
        "not a list",
    ],
)  # fmt: skip
def test_a_premium_in_another_shape_is_refused_naming_it_and_the_rest_goes(tmp_path, premium):
    from tests import samples

    mediator = Mediator(tmp_path / "state")
    try:
        policy = samples.contract()
        policy["term"][0]["asset"][0]["extension"] = premium
        body = json.dumps(samples.bundle(*samples.locations(), samples.patient(), policy)).encode()
        answer = mediator.client.post("/channels/openimis", data=body, headers=HEADERS)
        assert answer.status_code == 422, answer.data[:300]
        said = json.loads(json.loads(answer.data)["response"]["body"])["issue"]
        refused = [i["diagnostics"] for i in said if i["severity"] == "error"]
        assert refused and all(t.startswith(f"Contract/{samples.POLICY}: term.asset.extension") for t in refused)
        assert json.loads(answer.data)["properties"]["records_delivered"] != "0"  # the insuree and areas went
    finally:
        mediator.stop()
