"""Accepting a push: the push and each of its records are kept before anything is sent.

Invariants:
- a push is kept a chunk of records per database transaction, as `incoming` rows no worker sees; one last
  transaction (`_open`) makes them pending, so a push is either wholly pending or not there at all;
- pushes are ranked by arrival (their id): a record supersedes a pending version from an earlier push and is itself
  superseded where a later push already holds the record; on PostgreSQL one push is opened at a time;
- a record whose content DHIS2 already has from an earlier push is kept as `duplicate`, never sent again.

Sending again is always safe (deterministic UIDs, CREATE_AND_UPDATE), which is what makes retries, reruns and a crash
between sending and recording harmless."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, text, tuple_, update
from sqlalchemy.orm import aliased

from mediator.journal import chain
from mediator.journal.claim import LEASE
from mediator.journal.finish import decide
from mediator.journal.models import Outcome, Transaction, Work
from mediator.journal.numbers import remember
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal
from mediator.openimis.units import stage


def content_hash(record: bytes, mapping: str = "") -> str:
    """What a record becomes in DHIS2 depends on the record (its compact form, mediator.journal.compact) and on how
    it is mapped (UIDs, privacy choices): both go into the hash, so a settings change sends records again, and a
    change to what the mapping does not read of the resource does not."""
    return hashlib.sha256(mapping.encode() + b"\x1f" + record).hexdigest()


@dataclass(frozen=True)
class Accepted:
    transaction_id: int
    pending: int  # records to deliver
    unchanged: list[str]  # records whose content DHIS2 already has from an earlier push


def accept(
    journal: Journal,
    *,
    channel: str,
    openhim_id: str | None,
    client_id: str | None,
    received_at: datetime,
    body_sha256: str,
    received: Mapping[str, int],
    records: Iterable[tuple[str, bytes]],
    rejected: Iterable[tuple[str, list[dict[str, Any]]]],
    units: Mapping[str, int] | None = None,
    aliases: Mapping[tuple[str, str], str] | None = None,
    mapping: str = "",
    numbers: Mapping[str, str] | None = None,
    origin: str = "channel",
    holder: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Accepted:
    """Keep the push and each of its records before anything is sent.

    `records` ("Kind/key", compact form) may be a stream. They are written a chunk per database transaction, as
    `incoming` rows no worker sees, so a large push never holds the database's write lock for long; one last
    transaction makes them pending. A push that fails on the way leaves nothing behind.

    A record whose content was already delivered is not sent again; an older, still pending version of a record is
    superseded by this one (and a push left with nothing pending by that is decided). `holder` keeps the records
    claimed for whoever delivers the push at once (see `claim`); `on_progress(n)` hears how many records are kept.
    `numbers` (pseudonym of an insurance number -> insuree key) join the journal's index as their records are kept.
    """
    now = datetime.now(UTC)
    unchanged: list[str] = []
    pending = kept = 0
    units = units or {}
    refused = list(rejected)
    digest_of = {key: digest for digest, key in (numbers or {}).items()}
    next_analyze = 2000
    with journal.sessions.begin() as session:
        tx = Transaction(
            openhim_id=openhim_id,
            client_id=client_id,
            channel=channel,
            received_at=received_at,
            status=RECEIVING,
            body_sha256=body_sha256,
            received=dict(received),
            stats={},
            aliases=[[kind, rid, key] for (kind, rid), key in (aliases or {}).items()] or None,
            input_rejected=len(refused),
            origin=origin,
        )
        session.add(tx)
        session.flush()
        tid = tx.id
        for chunk in chunks(refused):
            rows = [
                {"transaction_id": tid, "record": r, "status": "rejected", "uids": {}, "reasons": why}
                for r, why in chunk
            ]
            session.execute(insert(Outcome), rows)
    try:
        for chunk in chunks(records):
            with journal.sessions.begin() as session:
                items = [(*label.split("/", 1), label, record) for label, record in chunk]
                latest = _latest(session, [(kind, key) for kind, key, _, _ in items])
                rows = []
                for kind, key, label, record in items:
                    digest = content_hash(record, mapping)
                    last = latest.get((kind, key))
                    state = "incoming"
                    if last is not None and last.state in ("delivered", "duplicate") and last.content_hash == digest:
                        state = "duplicate"
                        unchanged.append(label)
                    else:
                        pending += 1
                    rows.append(
                        {
                            "transaction_id": tid,
                            "kind": kind,
                            "key": key,
                            "stage": stage(kind),
                            "unit": units.get(label, 0),
                            "content_hash": digest,
                            "record": record.decode() if state == "incoming" else None,
                            "state": state,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "claimed_until": now + LEASE if holder and state == "incoming" else None,
                            "claimed_by": holder if state == "incoming" else None,
                            "uids": dict(last.uids) if state == "duplicate" and last is not None else {},
                            "reasons": [],
                            "updated_at": now,
                        }
                    )
                session.execute(insert(Work), rows)
                # Known as soon as kept (incoming rows count as on their way: a Coverage waits for them).
                remember(session, {digest_of[k]: k for kind, k, _, _ in items if kind == "Patient" and k in digest_of})
            kept += len(rows)
            if kept >= next_analyze:
                _refresh_statistics(journal)
                next_analyze *= 4
            if on_progress is not None:
                on_progress(kept)
        superseded = _open(journal, tid, now)
    except BaseException:
        with journal.sessions.begin() as session:  # nothing of a push that could not be kept stays behind
            session.execute(delete(Work).where(Work.transaction_id == tid))
            session.execute(delete(Outcome).where(Outcome.transaction_id == tid))
            session.execute(delete(Transaction).where(Transaction.id == tid))
        raise
    for other in superseded:
        decide(journal, other)
    return Accepted(tid, pending, unchanged)


def _refresh_statistics(journal: Journal) -> None:
    """A bulk load outgrows PostgreSQL's statistics long before autovacuum refreshes them, and the planner then
    looks earlier versions up through a scan of every row of their kind. Refreshed as the push grows (2k, 8k, 32k
    records...), the look-ups stay index look-ups."""
    if journal.engine.dialect.name == "postgresql":
        with journal.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE work")


RECEIVING = "Receiving"  # a push still being written to the journal; no worker takes it


def _open(journal: Journal, transaction_id: int, now: datetime) -> list[int]:
    """Make a kept push's records pending; returns the pushes it superseded records of.

    Pushes are ranked by arrival (their id), not by which finished keeping first: a record of this push supersedes
    a pending version from an earlier push, and is itself superseded where a later push already holds the record.
    """
    mine, other = aliased(Work), aliased(Work)
    incoming = (mine.transaction_id == transaction_id) & (mine.state == "incoming")
    older = (Work.state == "pending") & (Work.transaction_id < transaction_id)
    older = older & tuple_(Work.kind, Work.key).in_(select(mine.kind, mine.key).where(incoming))
    later = (
        select(other.id)
        .where(
            other.kind == Work.kind,
            other.key == Work.key,
            other.transaction_id > transaction_id,
            other.state.in_(("pending", "delivered", "duplicate", "aggregated")),
        )
        .exists()
    )
    gone = {"state": "superseded", "record": None, "claimed_until": None, "claimed_by": None, "updated_at": now}
    with journal.sessions.begin() as session:
        if journal.engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(7302047)"))  # one push opened at a time
        superseded = list(session.scalars(select(Work.transaction_id).where(older).distinct()))
        session.execute(update(Work).where(older).values(**gone))
        mine_now = (Work.transaction_id == transaction_id) & (Work.state == "incoming")
        session.execute(update(Work).where(mine_now, later).values(**gone))
        session.execute(update(Work).where(mine_now).values(state="pending"))
        opened = session.execute(
            update(Transaction)
            .where(Transaction.id == transaction_id, Transaction.status == RECEIVING)
            .values(status="Processing")
        )
        if rowcount(opened) != 1:
            raise RuntimeError(f"push {transaction_id} was removed while it was being kept")
        refused = session.scalars(select(Outcome.id).where(Outcome.transaction_id == transaction_id)).all()
        chain.append(session, [("push", chain.push_fact(session, transaction_id))], {"outcome": list(refused)})
    return superseded


def drop_unfinished(journal: Journal, older_than: timedelta = timedelta(hours=1)) -> int:
    """Remove pushes a process died while keeping (never answered, so never accepted)."""
    cutoff = datetime.now(UTC) - older_than
    with journal.sessions.begin() as session:
        stale = list(
            session.scalars(
                select(Transaction.id).where(Transaction.status == RECEIVING, Transaction.received_at < cutoff)
            )
        )
        for chunk in chunks(stale):
            session.execute(delete(Work).where(Work.transaction_id.in_(chunk)))
            session.execute(delete(Outcome).where(Outcome.transaction_id.in_(chunk)))
            session.execute(delete(Transaction).where(Transaction.id.in_(chunk)))
        return len(stale)


def _latest(session: Any, records: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The newest journal row of each record (its state, hash and UIDs only), in one query per kind of record.

    Asked by kind and a list of keys, so both databases look them up in the (kind, key) index."""
    keys: dict[str, list[str]] = {}
    for kind, key in records:
        keys.setdefault(kind, []).append(key)
    latest: dict[tuple[str, str], Any] = {}
    columns = (Work.id, Work.kind, Work.key, Work.state, Work.content_hash, Work.uids)
    for kind, wanted in keys.items():
        # Sorted here, so all the database needs is the (kind, key) index.
        query = select(*columns).where(Work.kind == kind, Work.key.in_(wanted))
        for row in sorted(session.execute(query), key=lambda r: r.id):
            latest[(row.kind, row.key)] = row
    return latest
