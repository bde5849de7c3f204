"""Claiming what is due: the next slice of a push's pending records, taken by one worker at a time.

Invariants:
- a push's metadata goes as one slice, before any of its data;
- data goes in whole units (a family with its members, a claim with its reviews): a unit part of which another
  worker holds, or that the size limit would cut, is left for later, whole;
- a claim is a lease (`claimed_until`): taken over after `LEASE` when its worker is gone from another machine, at
  once when it is gone from this one (`release_dead_claims`);
- rows another instance is claiming are passed over on PostgreSQL (SKIP LOCKED), and a claim that takes fewer rows
  than it chose (another worker was faster) gives the whole slice up."""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal_column, select, update
from sqlalchemy.orm import aliased

from mediator.journal import chain
from mediator.journal.compact import decode
from mediator.journal.models import Outcome, Transaction, Work
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal
from mediator.openimis.records import Record
from mediator.pids import alive

LEASE = timedelta(minutes=10)  # a claim left by a worker on another machine that died is taken over after this


def worker_id(role: str = "") -> str:
    """ "host:pid", or "host:pid:role" for a holder other than the delivery worker of the process."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f":{role}" if role else "")


@dataclass(frozen=True)
class Slice:
    """Records of one push taken for delivery together: whole units, metadata before the rest."""

    transaction_id: int
    ids: list[int]  # the pending records taken
    labels: set[str]  # theirs, as "Kind/key"
    records: list[Record]  # theirs, and their units' records already delivered (context), as validated
    context: list[Record]  # code list entries of the push already in DHIS2, for looking codes up
    aliases: dict[tuple[str, str], str]


class _Taken(Exception):
    """Another worker claimed part of the slice first."""


def claim(
    journal: Journal, transaction_id: int, now: datetime | None = None, size: int = 1000, holder: str | None = None
) -> Slice | None:
    """Take the next slice of the push's pending records (None if none is due or another worker has them).

    The push's metadata goes as one slice, before any data; data goes in whole units of about `size` records, with
    the records of those units already delivered (a family's members sent before DHIS2 failed) as context.
    Records kept for `holder` (the request delivering its push at once) are taken only by it.
    """
    now = now or datetime.now(UTC)
    free = (Work.claimed_until.is_(None)) | (Work.claimed_until < now)
    if holder:
        free = free | (Work.claimed_by == holder)
    waiting = (Work.transaction_id == transaction_id) & (Work.state == "pending")
    postgres = journal.engine.dialect.name == "postgresql"
    try:
        with journal.sessions.begin() as session:
            due_now: Any = Work.next_attempt_at <= now
            if not postgres:
                # Most waiting records are due: said so, SQLite reads the push's own index, already in slice order,
                # instead of every pending row of the journal by due time, sorted, once per slice.
                due_now = func.likelihood(due_now, literal_column("0.95"))
            query = select(Work.id, Work.stage, Work.unit).where(waiting, free, due_now)
            query = query.order_by(Work.stage, Work.unit, Work.id).limit(size)
            if postgres:  # rows another instance is claiming are passed over, not waited for
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            if not rows:
                return None
            if rows[0].stage == 0:
                ids = list(session.scalars(select(Work.id).where(waiting, free, Work.stage == 0).order_by(Work.id)))
                units: list[int] = []
            else:
                if session.scalar(select(Work.id).where(waiting, Work.stage == 0).limit(1)) is not None:
                    return None  # metadata still on its way: data waits for it
                # Only whole units go: a unit part of which another worker holds (its claim still being written,
                # or cut by this limit) is left for later, whole.
                wanted = sorted({r.unit for r in rows})
                unit = waiting & (Work.stage == 1)
                ids, units = [], []
                for chunk in chunks(wanted):
                    pending_of = dict(
                        session.execute(
                            select(Work.unit, func.count()).where(unit, Work.unit.in_(chunk)).group_by(Work.unit)
                        ).all()
                    )
                    free_of: dict[int, list[int]] = {}
                    # Sorted here: ORDER BY id would make SQLite walk every row of the push in id order instead.
                    for wid, wunit in sorted(
                        session.execute(select(Work.id, Work.unit).where(unit, free, Work.unit.in_(chunk)))
                    ):
                        free_of.setdefault(wunit, []).append(wid)
                    for u in chunk:
                        if len(free_of.get(u, [])) == pending_of.get(u, 0) > 0:
                            ids += free_of[u]
                            units.append(u)
            if not ids:
                return None  # taken by another worker meanwhile
            taken = 0
            for chunk in chunks(ids):
                take = update(Work).where(Work.id.in_(chunk), Work.state == "pending", free)
                values = {"claimed_until": now + LEASE, "claimed_by": holder or worker_id()}
                taken += rowcount(session.execute(take.values(**values)))
            if taken != len(ids):
                raise _Taken
            records: list[Record] = []
            labels: set[str] = set()
            unreadable: list[tuple[int, str]] = []
            for chunk in chunks(ids):
                for wid, kind, key, text in session.execute(
                    select(Work.id, Work.kind, Work.key, Work.record).where(Work.id.in_(chunk))
                ):
                    record = _read(text)
                    if record is None and text is not None:
                        unreadable.append((wid, f"{kind}/{key}"))
                        continue
                    labels.add(f"{kind}/{key}")
                    if record is not None:
                        records.append(record)
            if unreadable:
                _refuse_unreadable(session, transaction_id, unreadable, now)
                gone = {wid for wid, _ in unreadable}
                ids = [i for i in ids if i not in gone]
            delivered = (Work.transaction_id == transaction_id) & (Work.state == "delivered") & Work.record.is_not(None)
            later = aliased(Work)
            superseded_since = (
                select(later.id)
                .where(
                    later.kind == Work.kind,
                    later.key == Work.key,
                    later.id > Work.id,
                    later.state.in_(("pending", "delivered", "duplicate", "aggregated")),
                )
                .exists()
            )
            for chunk in chunks(units):
                context_of_units = (delivered, Work.stage == 1, Work.unit.in_(chunk), ~superseded_since)
                kept = session.scalars(select(Work.record).where(*context_of_units))
                records += [r for r in map(_read, kept) if r is not None]
            context: list[Record] = []
            if rows[0].stage != 0 and any(r.kind in ("Claim", "ClaimResponse") for r in records):
                entries = select(Work.record).where(delivered, Work.kind.in_(("Medication", "ActivityDefinition")))
                context = [r for r in map(_read, session.scalars(entries)) if r is not None]
            tx = session.get(Transaction, transaction_id)
            aliases = {(k, rid): key for k, rid, key in (tx.aliases or [])} if tx is not None else {}
            return Slice(transaction_id, ids, labels, records, context, aliases)
    except _Taken:
        return None


UNREADABLE = (
    "kept in a form this version of the mediator cannot read (it was kept by another version): send the record "
    "again from openIMIS"
)


def _read(text: str | None) -> Record | None:
    """A kept record, or None when there is none or it cannot be read."""
    if text is None:
        return None
    try:
        return decode(text)
    except (KeyError, TypeError, ValueError):
        return None


def _refuse_unreadable(session: Any, transaction_id: int, rows: list[tuple[int, str]], now: datetime) -> None:
    """Records whose kept form this version cannot read are rejected with the reason, instead of stopping their
    push at every claim."""
    reason = [{"field": "record", "code": "", "message": UNREADABLE}]
    for chunk in chunks(rows):
        wids = [wid for wid, _ in chunk]
        session.execute(
            update(Work)
            .where(Work.id.in_(wids))
            .values(state="rejected", reasons=reason, claimed_until=None, updated_at=now)
        )
        written = session.scalars(
            insert(Outcome).returning(Outcome.id),
            [
                {"transaction_id": transaction_id, "record": label, "status": "rejected", "uids": {}, "reasons": reason}
                for _, label in chunk
            ],
        ).all()
        chain.append(session, rows={"outcome": list(written)})


def on_their_way(journal: Journal, labels: Iterable[str], besides: Collection[int]) -> dict[str, int]:
    """Of these records ("Kind/key"), those still pending or being kept in the journal in rows other than
    `besides`: label -> the push they came in. A record that refers to one of them waits for it."""
    by_kind: dict[str, set[str]] = {}
    for label in labels:
        kind, _, key = label.partition("/")
        by_kind.setdefault(kind, set()).add(key)
    found: dict[str, int] = {}
    with journal.sessions() as session:
        for kind, keys in by_kind.items():
            for chunk in chunks(sorted(keys)):
                query = select(Work.id, Work.key, Work.transaction_id).where(
                    Work.kind == kind, Work.key.in_(chunk), Work.state.in_(("pending", "incoming"))
                )
                for wid, key, tid in session.execute(query):
                    if wid not in besides:
                        found.setdefault(f"{kind}/{key}", tid)
    return found


def release(journal: Journal, transaction_id: int, holder: str) -> int:
    """Free the records still kept for `holder`: the push is left to the delivery worker, which tries them no sooner
    than the rest of the push (after a failure, they wait as long as the records that met it)."""
    with journal.sessions.begin() as session:
        waiting = (Work.transaction_id == transaction_id) & (Work.state == "pending")
        # Records waiting for another push's records keep their own time; the rest go no sooner than the latest.
        latest = session.scalar(select(func.max(Work.next_attempt_at)).where(waiting, Work.waits_for.is_(None)))
        values: dict[str, Any] = {"claimed_until": None, "claimed_by": None}
        if latest is not None:
            values["next_attempt_at"] = latest
        mine = waiting & (Work.claimed_by == holder)
        freed = rowcount(session.execute(update(Work).where(mine, Work.waits_for.is_(None)).values(**values)))
        kept = {"claimed_until": None, "claimed_by": None}
        return freed + rowcount(session.execute(update(Work).where(mine, Work.waits_for.is_not(None)).values(**kept)))


def undecided(journal: Journal) -> list[int]:
    """Pushes still Processing with nothing left pending (their decider died before deciding them)."""
    waiting = select(Work.id).where(Work.transaction_id == Transaction.id, Work.state == "pending").exists()
    with journal.sessions() as session:
        query = select(Transaction.id).where(Transaction.status == "Processing", ~waiting).limit(100)
        return list(session.scalars(query))


def release_dead_claims(journal: Journal) -> int:
    """Free the claims of this machine's workers that are gone (killed, crashed, recycled), without waiting for
    their lease to run out."""
    host = socket.gethostname()
    with journal.sessions.begin() as session:
        owners = session.scalars(
            select(Work.claimed_by).where(Work.state == "pending", Work.claimed_by.like(f"{host}:%")).distinct()
        ).all()
        dead = [o for o in owners if o and not holder_alive(o)]
        if not dead:
            return 0
        query = update(Work).where(Work.state == "pending", Work.claimed_by.in_(dead))
        return rowcount(session.execute(query.values(claimed_until=None, claimed_by=None)))


def holder_alive(holder: str) -> bool:
    """Whether a "host:pid[:role]" holder may still be at work: on another machine it may; here, if the process is."""
    host, _, rest = holder.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return alive(int(pid))


def due(journal: Journal, limit: int = 20, now: datetime | None = None) -> list[int]:
    """Pushes with records whose next attempt has come and that no worker holds, oldest first (each push once,
    however many records it has, so a large push does not hide the others)."""
    now = now or datetime.now(UTC)
    query = (
        select(Work.transaction_id)
        .where(
            Work.state == "pending",
            Work.next_attempt_at <= now,
            (Work.claimed_until.is_(None)) | (Work.claimed_until < now),
        )
        .group_by(Work.transaction_id)
        .order_by(Work.transaction_id)
        .limit(limit)
    )
    with journal.sessions() as session:
        return list(session.scalars(query))
