"""The monthly aggregates of a real openIMIS 24.04 (its FHIR R4 API on the demo database), pulled with the aggregates
on: every cell DHIS2 receives equals the total the test computes from what the API itself serves, for every month,
and a second pull changes nothing in DHIS2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mediator.delivery.aggregates import send_aggregates
from mediator.delivery.worker import Deliverer
from mediator.intake.pull import pull
from mediator.journal import aggregates as jagg
from mediator.journal.store import Journal
from mediator.mapping.uids import org_unit_uid
from tests.aggregate_totals import sent, totals
from tests.integration.test_openimis_pull import deliver_all, dhis2, pull_channel, settings_for
from tests.openimis_local import OpenImis, served


def send_every_month(journal: Journal, settings: Any) -> Any:
    deliverer = Deliverer(journal)
    with journal.sessions() as session:
        months = jagg.months_known(session)
    run = send_aggregates(journal, lambda ex: deliverer.client(settings, None, ex), settings, months)
    assert run is not None and run.failure is None and not run.rejected, run
    return run


def test_the_aggregates_of_a_real_openimis_equal_what_its_api_serves(openimis: OpenImis, tmp_path):
    content = served(openimis)
    resources = [r for feed in content.values() for r in feed]
    running = dhis2()
    try:
        journal_url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
        settings = settings_for(tmp_path, running.url, openimis.url, journal_url, aggregates="true")
        journal = Journal.open(settings.journal_url)
        assert pull(journal, settings, pull_channel(settings)).failure is None
        deliver_all(journal, settings)
        run = send_every_month(journal, settings)
        month = datetime.now(UTC).strftime("%Y-%m")
        expected = totals(resources, month, month)
        keys = {org_unit_uid(r["id"].lower()): r["id"].lower() for r in content["areas"] + content["facilities"]}
        store = running.fake.store
        assert sent(store, keys) == expected
        assert {k[0] for k in expected} >= {"NB_INSUREES", "NB_FAMILY", "SUM_CONTRIBUTIONS", "NB_CLAIM"}
        assert run.sent == len(
            {(k[1], k[2], k[0] in ("NB_INSUREES", "NB_FAMILY", "SUM_CONTRIBUTIONS")) for k in expected}
        )

        before = dict(store.data_values)
        assert pull(journal, settings, pull_channel(settings)).failure is None
        deliver_all(journal, settings)
        send_every_month(journal, settings)
        assert store.data_values == before
    finally:
        running.stop()
