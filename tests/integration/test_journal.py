"""The journal keeps every push, on SQLite and on PostgreSQL, and never personal data."""

import json
from datetime import UTC, datetime

from sqlalchemy import text

from mediator.journal.compact import decode
from mediator.journal.models import Exchange, Outcome, Transaction, Work
from mediator.journal.store import Journal, migrate, open_engine
from mediator.journal.verify import verify
from mediator.openimis.records import Insuree
from tests import samples
from tests.conftest import INSUREES_AUTH, mediator_client


def post(client, doc):
    return client.post(
        "/channels/insurees",
        data=doc if isinstance(doc, bytes) else json.dumps(doc),
        headers={**INSUREES_AUTH, "Content-Type": "application/json", "X-OpenHIM-TransactionID": "tx-42"},
    )


def test_every_push_is_kept_with_its_outcomes_and_dhis2_calls(env, fake, journal_url):
    client = mediator_client(env, journal_url=journal_url)
    post(client, samples.bundle(samples.group(), samples.patient()))
    post(client, b"not json")
    journal: Journal = client.application.extensions["journal"]
    with journal.session() as session:
        transactions = session.query(Transaction).order_by(Transaction.id).all()
        assert [t.status for t in transactions][-2:] == ["Successful", "Completed"]
        first = transactions[-2]
        assert first.openhim_id == "tx-42" and first.channel == "insurees" and first.http_status == 200
        assert first.received == {"Group": 1, "Patient": 1}
        assert sorted(o.status for o in first.outcomes) == ["delivered", "delivered"]
        assert [e.url.split("?")[0].rsplit("/api/", 1)[1] for e in first.exchanges] == ["system/info", "tracker"]
        stored = json.dumps([[o.uids, o.reasons] for o in first.outcomes]) + "".join(
            e.request_body + e.response_body for e in first.exchanges
        )
    for secret in ("Ageni", "Nonino", "104000001", "NAT-778899"):
        assert secret not in stored


def test_migrations_are_safe_to_run_again(journal_url):
    engine = open_engine(journal_url)
    migrate(engine)
    migrate(engine)
    journal = Journal(engine)
    assert journal.count(Outcome) >= 0 and journal.count(Exchange) >= 0
    engine.dispose()


def test_sqlite_journal_runs_in_wal_mode(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'j.sqlite'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_a_journal_that_kept_fhir_resources_keeps_validated_records_after_the_upgrade(journal_url):
    """Journals written before records were kept in the compact form: what they still hold is read once more."""
    engine = open_engine(journal_url)
    migrate(engine, "0005")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO transactions (channel, received_at, status, body_sha256, received, stats, origin)"
                " VALUES ('insurees', :now, 'Processing', :sha, '{}', '{}', 'channel')"
            ),
            {"now": now, "sha": "0" * 64},
        )
        broken = {**samples.patient(samples.MEMBER), "birthDate": "not a date"}
        for key, resource in ((samples.HEAD, samples.patient()), (samples.MEMBER, broken)):
            connection.execute(
                text(
                    "INSERT INTO work (transaction_id, kind, key, content_hash, resource, state, attempts,"
                    " next_attempt_at, uids, reasons, updated_at, stage, unit)"
                    " VALUES (1, 'Patient', :key, :hash, :resource, 'pending', 0, :now, '{}', '[]', :now, 1, 0)"
                ),
                {"key": key, "hash": "0" * 64, "resource": json.dumps(resource), "now": now},
            )
    migrate(engine)
    with Journal(engine).session() as session:
        rows = {w.key: w for w in session.query(Work)}
    head, member = rows[samples.HEAD], rows[samples.MEMBER]
    assert head.state == "pending" and decode(head.record) == decode(samples.compact(samples.patient()))
    assert isinstance(decode(head.record), Insuree)
    assert "Ageni" in head.record and "resourceType" not in head.record
    assert member.state == "rejected" and member.record is None
    assert [r["field"] for r in member.reasons] == ["birthDate"]
    migrate(engine)  # and again: nothing changes
    engine.dispose()


def test_what_a_journal_held_before_the_chain_is_chained_at_the_upgrade(journal_url):
    engine = open_engine(journal_url)
    migrate(engine, "0006")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for status in ("Successful", "Processing"):
            connection.execute(
                text(
                    "INSERT INTO transactions (channel, received_at, status, http_status, body_sha256, received,"
                    " stats, origin, input_rejected) VALUES ('insurees', :now, :status, 200, :sha, '{}', '{}',"
                    " 'channel', 0)"
                ),
                {"now": now, "status": status, "sha": "0" * 64},
            )
        connection.execute(
            text(
                "INSERT INTO outcomes (transaction_id, record, status, uids, reasons)"
                " VALUES (1, 'Patient/a', 'delivered', '{}', '[]')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO exchanges (transaction_id, method, url, started_at, finished_at, status, request_body,"
                " response_body) VALUES (1, 'POST', '/api/tracker', :now, :now, 200, '{}', '{}')"
            ),
            {"now": now},
        )
        connection.execute(
            text("INSERT INTO purges (purged_at, cutoff, retention_days, records) VALUES (:now, :now, 90, 0)"),
            {"now": now},
        )
    migrate(engine)
    journal = Journal(engine)
    found = verify(journal)
    assert found.ok, found.problem
    assert found.entries == 2 + 1 + 1 + 1 + 1  # two pushes, one decided, an outcome, a call, a purge
    engine.dispose()
