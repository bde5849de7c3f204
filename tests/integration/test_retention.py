"""What the journal keeps of personal data: a decided record goes once the retention period has
passed, its audit facts stay, pending records are never touched, and every purge is recorded."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from mediator.journal.models import Purge, Transaction, Work
from mediator.journal.retention import purge, purge_if_due
from mediator.journal.store import Journal
from tests import samples

NOW = datetime.now(UTC)
LONG_AGO = NOW - timedelta(days=91)


@pytest.fixture
def journal(journal_url):
    journal = Journal.open(journal_url)
    yield journal
    journal.engine.dispose()


def keep(journal, *keys, status="Completed"):
    """A push of these insurees, kept in the journal, with its status; returns its id."""
    resources = [(f"Patient/{k}", samples.patient(k, f"10400{i:04d}")) for i, k in enumerate(keys)]
    accepted = samples.accept_resources(journal, resources, received_at=NOW, received={"Patient": len(keys)})
    with journal.sessions.begin() as session:
        session.execute(update(Transaction).where(Transaction.id == accepted.transaction_id).values(status=status))
    return accepted.transaction_id


def set_record(journal, key, state, decided_at, reasons=()):
    with journal.sessions.begin() as session:
        values = {"state": state, "updated_at": decided_at, "reasons": list(reasons)}
        session.execute(update(Work).where(Work.key == key).values(**values))


def utc(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives back naive UTC times


def record(journal, key):
    with journal.session() as session:
        return session.scalars(select(Work).where(Work.key == key)).one()


def test_a_rejected_record_past_the_retention_loses_its_record_and_keeps_its_audit_facts(journal):
    keep(journal, samples.HEAD)
    why = [{"field": "orgUnit", "code": "E1049", "message": "no such org unit"}]
    set_record(journal, samples.HEAD, "rejected", LONG_AGO, why)
    before = record(journal, samples.HEAD)
    assert purge(journal, 90, NOW).records == 1
    after = record(journal, samples.HEAD)
    assert after.record is None
    assert (after.kind, after.key, after.state, after.reasons, after.content_hash, after.transaction_id) == (
        before.kind,
        before.key,
        "rejected",
        why,
        before.content_hash,
        before.transaction_id,
    )


def test_a_record_decided_within_the_retention_keeps_its_record(journal):
    keep(journal, samples.HEAD)
    set_record(journal, samples.HEAD, "rejected", NOW - timedelta(days=89))
    assert purge(journal, 90, NOW).records == 0
    assert record(journal, samples.HEAD).record is not None


def test_a_pending_record_is_never_purged(journal):
    keep(journal, samples.HEAD, status="Processing")
    set_record(journal, samples.HEAD, "pending", LONG_AGO)
    purge(journal, 90, NOW)
    assert record(journal, samples.HEAD).record is not None


def test_the_records_of_a_push_still_being_delivered_keep_their_records(journal):
    # A delivered record of a unit goes again as context with the rest of its unit, still pending.
    keep(journal, samples.HEAD, samples.MEMBER, status="Processing")
    set_record(journal, samples.HEAD, "delivered", LONG_AGO)
    set_record(journal, samples.MEMBER, "pending", LONG_AGO)
    purge(journal, 90, NOW)
    assert record(journal, samples.HEAD).record is not None


def test_each_purge_is_recorded_with_its_time_cutoff_and_count(journal):
    keep(journal, samples.HEAD, samples.MEMBER)
    set_record(journal, samples.HEAD, "rejected", LONG_AGO)
    set_record(journal, samples.MEMBER, "rejected", LONG_AGO)
    purge(journal, 90, NOW)
    purge(journal, 90, NOW + timedelta(hours=2))
    with journal.session() as session:
        rows = [(p.cutoff, p.retention_days, p.records) for p in session.scalars(select(Purge).order_by(Purge.id))]
    cutoffs = [NOW - timedelta(days=90), NOW + timedelta(hours=2) - timedelta(days=90)]
    assert [(utc(cutoff), days, n) for cutoff, days, n in rows] == [(cutoffs[0], 90, 2), (cutoffs[1], 90, 0)]


def test_a_purge_runs_at_most_once_an_hour(journal):
    assert purge_if_due(journal, 90, NOW) is not None
    assert purge_if_due(journal, 90, NOW + timedelta(minutes=59)) is None
    assert purge_if_due(journal, 90, NOW + timedelta(minutes=61)) is not None
    assert journal.count(Purge) == 2


def test_the_delivery_worker_purges_the_journal(tmp_path):
    from mediator.app.service import start_worker
    from mediator.config.settings import build_settings

    env = {"MEDIATOR_STATE_DIR": str(tmp_path), "MEDIATOR_DELIVERY_SECONDS": "0.05"}
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    keep(journal, samples.HEAD)
    set_record(journal, samples.HEAD, "rejected", LONG_AGO)
    stop = start_worker(build_settings(env), env)
    try:
        deadline = time.monotonic() + 20  # a bound for a slow machine, not a measure: the first round purges
        while not journal.count(Purge) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert record(journal, samples.HEAD).record is None
