"""The journal's hash chain: a journal written by the mediator verifies, and every way of tampering with it is found
and named (an edited row, a removed one, an added one, reordered entries, a rewritten tail), on SQLite and
PostgreSQL, also with several writers at once."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from mediator.app.cli import main
from mediator.config.settings import build_settings
from mediator.journal import chain
from mediator.journal.chain import Head
from mediator.journal.dead_letters import replay
from mediator.journal.models import ChainEntry, ChainHead, Exchange, Outcome, Transaction
from mediator.journal.retention import purge
from mediator.journal.verify import verify
from tests import samples
from tests.conftest import INSUREES_AUTH, mediator_client

LATER = datetime.now(UTC) + timedelta(hours=2)
ELSEWHERE = "0b0b0b0b-0000-4000-8000-000000000000"  # a village DHIS2 does not have


def post(client, doc, txid):
    resp = client.post(
        "/channels/insurees",
        data=json.dumps(doc),
        headers={**INSUREES_AUTH, "Content-Type": "application/json", "X-OpenHIM-TransactionID": txid},
    )
    return json.loads(resp.data)


@pytest.fixture
def written(env, fake, journal_url):
    """A journal as the mediator writes it: a push delivered at once, one refused whole, one kept while DHIS2 was
    down and delivered by the worker (with a record DHIS2 rejects), a replay of that record, and a purge."""
    client = mediator_client(env, journal_url=journal_url)
    journal = client.application.extensions["journal"]
    heads = [post(client, samples.patient(), "tx-1")["properties"]["journal_chain"]]
    heads.append(post(client, {"resourceType": "Patient", "id": "x"}, "tx-2")["properties"]["journal_chain"])
    fake.fake.fail_next = 100
    lost = samples.patient(samples.MEMBER, "104000002", village=ELSEWHERE, is_head=False)
    heads.append(post(client, samples.bundle(samples.group(), lost), "tx-3")["properties"]["journal_chain"])
    fake.fake.fail_next = 0
    client.application.extensions["deliverer"].work_once(build_settings(env), now=LATER)
    assert replay(journal, by="auditor test") == 2  # the insuree DHIS2 refused, and its family with it
    client.application.extensions["deliverer"].work_once(build_settings(env), now=LATER + timedelta(hours=1))
    purge(journal, 0)
    return journal, [Head.parse(h) for h in heads]


def entry(journal, kind, nth=0):
    with journal.sessions() as session:
        rows = session.scalars(select(ChainEntry).where(ChainEntry.kind == kind).order_by(ChainEntry.seq)).all()
        return rows[nth]


def execute(journal, *statements):
    with journal.sessions.begin() as session:
        for statement in statements:
            session.execute(statement)


def test_a_journal_the_mediator_wrote_verifies(written):
    journal, heads = written
    found = verify(journal, heads)
    assert found.ok, found.problem
    with journal.sessions() as session:
        kinds = dict(session.execute(select(ChainEntry.kind, func.count()).group_by(ChainEntry.kind)).all())
        counts = {m: session.scalar(select(func.count()).select_from(m)) for m in (Outcome, Exchange, Transaction)}
    assert {"push", "outcome", "call", "decided", "replay", "purge"} <= set(kinds)
    assert kinds["outcome"] == counts[Outcome] and kinds["call"] == counts[Exchange]
    assert kinds["push"] == counts[Transaction] == 3
    assert found.entries == sum(kinds.values())
    replayed = entry(journal, "replay").facts
    assert replayed["by"] == "auditor test"
    assert sorted(replayed["records"]) == [f"Group/{samples.FAMILY}", f"Patient/{samples.MEMBER}"]


def test_an_edited_outcome_is_named(written):
    journal, _ = written
    target = entry(journal, "outcome", 1)
    execute(journal, update(Outcome).where(Outcome.id == target.ref).values(status="delivered"))
    assert verify(journal).problem == f"entry {target.seq} (outcome {target.ref}): the outcome was changed"


def test_a_removed_call_is_named(written):
    journal, _ = written
    target = entry(journal, "call")
    execute(journal, delete(Exchange).where(Exchange.id == target.ref))
    assert verify(journal).problem == f"entry {target.seq} (call {target.ref}): the call was removed"


def test_an_edited_push_is_named(written):
    journal, _ = written
    target = entry(journal, "push", 2)
    execute(journal, update(Transaction).where(Transaction.id == target.facts["push"]).values(client_id="someone"))
    assert verify(journal).problem == f"entry {target.seq} (push of push {target.facts['push']}): the push was changed"


def test_an_added_outcome_is_named(written):
    journal, _ = written
    with journal.sessions() as session:
        tid = session.scalar(select(func.min(Transaction.id)))
    execute(
        journal, insert(Outcome).values(transaction_id=tid, record="Patient/x", status="delivered", uids={}, reasons=[])
    )
    problem = verify(journal).problem
    assert problem is not None and problem.startswith("1 outcome row(s) are in no entry of the chain (added)")


def test_a_removed_entry_is_named(written):
    journal, _ = written
    target = entry(journal, "decided")
    execute(journal, delete(ChainEntry).where(ChainEntry.seq == target.seq))
    problem = verify(journal).problem
    assert (
        problem
        == f"entry {target.seq} was removed: the chain goes from entry {target.seq - 1} to entry {target.seq + 1}"
    )


def test_reordered_entries_are_named(written):
    journal, _ = written
    first, second = entry(journal, "outcome", 0), entry(journal, "outcome", 1)
    swap = [(first.seq, -1), (second.seq, first.seq), (-1, second.seq)]
    execute(journal, *(update(ChainEntry).where(ChainEntry.seq == a).values(seq=b) for a, b in swap))
    problem = verify(journal).problem
    low = min(first.seq, second.seq)
    assert problem is not None and problem.startswith(f"entry {low} (outcome ") and "reordered" in problem


def test_an_edited_fact_kept_in_the_chain_is_named(written):
    journal, _ = written
    target = entry(journal, "replay")
    execute(journal, update(ChainEntry).where(ChainEntry.seq == target.seq).values(facts={**target.facts, "by": "x"}))
    assert verify(journal).problem == f"entry {target.seq} (replay) was changed"


def rewrite_from(journal, seq):
    """What someone who knows how the chain is made would do: link every entry from `seq` on again."""
    with journal.sessions.begin() as session:
        previous = session.scalar(select(ChainEntry.hash).where(ChainEntry.seq == seq - 1)) or chain.GENESIS
        for e in session.scalars(select(ChainEntry).where(ChainEntry.seq >= seq).order_by(ChainEntry.seq)).all():
            if e.kind in chain.ROWS:
                e.digest = chain.digest(chain.row_facts(session, e.kind, [e.ref])[e.ref])
            e.hash = previous = chain.link(previous, e.seq, e.kind, e.ref, e.digest)
        session.execute(update(ChainHead).values(hash=previous))


def test_a_tail_rewritten_to_hide_an_edit_is_found_against_a_published_head(written):
    journal, heads = written
    target = entry(journal, "outcome", 0)
    execute(journal, update(Outcome).where(Outcome.id == target.ref).values(status="rejected"))
    rewrite_from(journal, target.seq)
    assert verify(journal).ok  # consistent again: only what was published elsewhere tells
    problem = verify(journal, heads).problem
    published = next(h for h in heads if h.seq >= target.seq)
    assert problem is not None and problem.startswith(f"entry {published.seq} ") and "rewritten" in problem


def test_entries_cut_from_the_end_are_named(written):
    journal, heads = written
    last = heads[-1].seq
    with journal.sessions() as session:
        top = session.scalar(select(func.max(ChainEntry.seq)))
    execute(journal, delete(ChainEntry).where(ChainEntry.seq > last))
    assert verify(journal).problem == f"entries {last + 1} to {top}, at the end, were removed"
    execute(journal, update(ChainHead).values(seq=heads[-1].seq, hash=heads[-1].hash))
    assert verify(journal).ok is False  # the rows those entries named are in no entry now


def test_the_command_says_whether_the_chain_holds(written, env, journal_url, capsys):
    journal, heads = written
    env = {**env, "MEDIATOR_JOURNAL_URL": journal_url}
    with pytest.MonkeyPatch.context() as patch:
        for k, v in env.items():
            patch.setenv(k, v)
        with pytest.raises(SystemExit) as done:
            main(["verify", "--head", str(heads[0])])
        assert done.value.code == 0 and "the journal's chain holds" in capsys.readouterr().out
        target = entry(journal, "outcome", 0)
        execute(journal, update(Outcome).where(Outcome.id == target.ref).values(record="Patient/y"))
        with pytest.raises(SystemExit) as done:
            main(["verify"])
        assert done.value.code == 1 and f"entry {target.seq} (outcome {target.ref})" in capsys.readouterr().out


def test_several_writers_at_once_make_one_chain(env, fake, journal_url):
    clients = [mediator_client(env, journal_url=journal_url) for _ in range(3)]
    errors = []

    def push(client, n):
        try:
            for i in range(4):
                key = f"{n:08d}-0000-4000-8000-{i:012d}"
                post(client, samples.patient(key, f"1050{n}{i:04d}"), f"tx-{n}-{i}")
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(c, n)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    journal = clients[0].application.extensions["journal"]
    found = verify(journal)
    assert found.ok, found.problem
    with journal.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Transaction)) == 12
        assert session.execute(text("SELECT seq, hash FROM chain_head")).one()[0] == found.entries


def test_a_console_settings_change_applied_is_chained_with_what_it_changed(env, journal_url):
    from mediator.app.service import settings_applier
    from mediator.config.console import LiveSettings
    from mediator.config.settings import load_registration
    from mediator.journal.store import Journal

    env = {**env, "MEDIATOR_JOURNAL_URL": journal_url}
    settings = build_settings(env)
    journal = Journal.open(journal_url)
    apply = settings_applier(LiveSettings(settings, env), journal)
    console = dict(load_registration(settings.config_file)["config"])
    apply(console)  # the registered defaults: nothing changes
    apply({**console, "send_names": True})
    apply({**console, "send_names": True})  # the same again: nothing more
    channels = [dict(c) for c in console["channels"]]
    channels[0]["personal_data"] = "names"
    apply({**console, "send_names": True, "channels": channels})
    with journal.sessions() as session:
        entries = session.scalars(select(ChainEntry).where(ChainEntry.kind == "settings")).all()
    assert entries[0].facts["changed"] == {"send_names": True}
    (changed_channel,) = [c for c in entries[1].facts["changed"]["channels"] if c["personal_data"]]
    assert changed_channel["personal_data"] == ["names"] and "password" not in json.dumps(entries[1].facts)
    assert verify(journal).ok


def test_a_changed_decision_is_named(written):
    journal, _ = written
    with journal.sessions() as session:
        first = session.scalar(select(func.min(Transaction.id)))
        decided = session.scalars(select(ChainEntry).where(ChainEntry.kind == "decided")).all()
    entry_seq = next(e.seq for e in decided if e.facts["push"] == first)
    execute(journal, update(Transaction).where(Transaction.id == first).values(status="Completed"))
    assert (
        verify(journal).problem
        == f"push {first}: its status is not the one entry {entry_seq} decided (Successful): it was changed"
    )


def test_a_push_set_back_to_receiving_is_named(written):
    journal, _ = written
    with journal.sessions() as session:
        first = session.scalar(select(func.min(Transaction.id)))
    execute(journal, update(Transaction).where(Transaction.id == first).values(status="Receiving"))
    assert verify(journal).problem == f"push {first} is chained as taken in, but is marked as still being received"


def test_the_chain_reads_the_same_in_any_database_time_zone(postgres_url):
    from sqlalchemy import create_engine

    from mediator.journal.store import Journal, PushRecord, open_engine
    from tests.conftest import empty_postgres

    url = empty_postgres(postgres_url)
    journal = Journal.open(url)
    now = datetime.now(UTC)
    call = {"method": "POST", "url": "/api/tracker", "started_at": now, "finished_at": now, "status": 200,
            "error": None, "request_body": "{}", "response_body": "{}"}  # fmt: skip
    journal.write(PushRecord(channel="insurees", openhim_id="tx", client_id="c", received_at=now, body_sha256="0" * 64,
                             status="Successful", http_status=200, received={"Patient": 1}, stats={}, failure=None,
                             outcomes=[], exchanges=[call]))  # fmt: skip
    assert verify(journal).ok
    engine = create_engine(open_engine(url).url, connect_args={"options": "-c timezone=Asia/Kolkata"})
    try:
        found = verify(Journal(engine))
        assert found.ok, found.problem
    finally:
        engine.dispose()


def test_verifying_while_pushes_are_written_raises_no_false_alarm(written):
    journal, _ = written
    from mediator.journal.store import PushRecord

    stop = threading.Event()

    def write():
        while not stop.is_set():
            journal.write(PushRecord(channel="insurees", openhim_id=None, client_id=None, received_at=datetime.now(UTC),
                                     body_sha256="0" * 64, status="Completed", http_status=400, received={}, stats={},
                                     failure=None, outcomes=[], exchanges=[]))  # fmt: skip

    writers = [threading.Thread(target=write) for _ in range(2)]
    for t in writers:
        t.start()
    try:
        problems = [verify(journal).problem for _ in range(5)]
    finally:
        stop.set()
        for t in writers:
            t.join()
    assert problems == [None] * 5
    assert verify(journal).ok


def test_row_facts_read_any_number_of_rows(written):
    journal, _ = written
    with journal.sessions() as session:
        assert chain.row_facts(session, "outcome", list(range(10**6, 10**6 + 70_000))) == {}


def test_a_record_refused_at_every_attempt_is_named_once_in_the_final_answer(written):
    journal, _ = written
    from mediator.journal.summary import push_summary

    with journal.sessions() as session:
        last = session.scalar(select(func.max(Transaction.id)))
    summary = push_summary(journal, last)
    records = [record for record, _ in summary.rejected]
    assert sorted(records) == sorted(set(records))
