"""The delivery queue in the journal: accept a push (before answering), claim what is due, record what became of it.

A push is delivered as a whole transaction, so the records of one push keep the context they came with (a family
with its members, a Coverage with its beneficiary's Patient). Sending again is always safe (deterministic UIDs,
CREATE_AND_UPDATE), which is what makes retries, reruns and a crash between sending and recording harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, literal_column, select, text, tuple_, update
from sqlalchemy.orm import aliased

from mediator.journal.models import Outcome, Transaction, Work
from mediator.journal.numbers import remember
from mediator.journal.store import Journal
from mediator.openimis.units import stage
from mediator.outcomes import final_status

LEASE = timedelta(minutes=10)  # a claim left by a worker on another machine that died is taken over after this
# A record waiting for one still on its way in another push looks again after this, if not woken before.
WAIT_RECHECK = timedelta(minutes=2)


def worker_id(role: str = "") -> str:
    """ "host:pid", or "host:pid:role" for a holder other than the delivery worker of the process."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f":{role}" if role else "")


def _count(result: Any) -> int:
    """Rows an UPDATE touched."""
    return int(cast(CursorResult[Any], result).rowcount)


def content_hash(resource: Mapping[str, Any], mapping: str = "") -> str:
    """What a record becomes in DHIS2 depends on the resource and on how it is mapped (UIDs, privacy choices):
    both go into the hash, so a settings change sends records again."""
    text = json.dumps(resource, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{mapping}\x1f{text}".encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    transaction_id: int
    pending: int  # records to deliver
    unchanged: list[str]  # records whose content DHIS2 already has from an earlier push


CHUNK = 500


def _chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def accept(
    journal: Journal,
    *,
    channel: str,
    openhim_id: str | None,
    client_id: str | None,
    received_at: datetime,
    body_sha256: str,
    received: Mapping[str, int],
    resources: Iterable[tuple[str, Mapping[str, Any]]],
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

    `resources` ("Kind/key", resource) may be a stream. They are written a chunk per database transaction, as
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
        for chunk in _chunks(refused):
            rows = [
                {"transaction_id": tid, "record": r, "status": "rejected", "uids": {}, "reasons": why}
                for r, why in chunk
            ]
            session.execute(insert(Outcome), rows)
    try:
        for chunk in _chunks(resources):
            with journal.sessions.begin() as session:
                items = [(*label.split("/", 1), label, resource) for label, resource in chunk]
                latest = _latest(session, [(kind, key) for kind, key, _, _ in items])
                rows = []
                for kind, key, label, resource in items:
                    digest = content_hash(resource, mapping)
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
                            "resource": json.dumps(resource) if state == "incoming" else None,
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
            other.state.in_(("pending", "delivered", "duplicate")),
        )
        .exists()
    )
    gone = {"state": "superseded", "resource": None, "claimed_until": None, "claimed_by": None, "updated_at": now}
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
        if _count(opened) != 1:
            raise RuntimeError(f"push {transaction_id} was removed while it was being kept")
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
        for chunk in _chunks(stale):
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


@dataclass(frozen=True)
class Slice:
    """Records of one push taken for delivery together: whole units, metadata before the rest."""

    transaction_id: int
    ids: list[int]  # the pending records taken
    labels: set[str]  # theirs, as "Kind/key"
    resources: list[dict[str, Any]]  # theirs, and those of their units' records already delivered (context)
    context: list[dict[str, Any]]  # code list entries of the push already in DHIS2, for looking codes up
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
                for chunk in _chunks(wanted):
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
            for chunk in _chunks(ids):
                take = update(Work).where(Work.id.in_(chunk), Work.state == "pending", free)
                values = {"claimed_until": now + LEASE, "claimed_by": holder or worker_id()}
                taken += _count(session.execute(take.values(**values)))
            if taken != len(ids):
                raise _Taken
            resources: list[dict[str, Any]] = []
            labels: set[str] = set()
            for chunk in _chunks(ids):
                for kind, key, text in session.execute(
                    select(Work.kind, Work.key, Work.resource).where(Work.id.in_(chunk))
                ):
                    labels.add(f"{kind}/{key}")
                    if text is not None:
                        resources.append(json.loads(text))
            delivered = (
                (Work.transaction_id == transaction_id) & (Work.state == "delivered") & Work.resource.is_not(None)
            )
            later = aliased(Work)
            superseded_since = (
                select(later.id)
                .where(
                    later.kind == Work.kind,
                    later.key == Work.key,
                    later.id > Work.id,
                    later.state.in_(("pending", "delivered", "duplicate")),
                )
                .exists()
            )
            for chunk in _chunks(units):
                context_of_units = (delivered, Work.stage == 1, Work.unit.in_(chunk), ~superseded_since)
                kept = session.scalars(select(Work.resource).where(*context_of_units))
                resources += [json.loads(r) for r in kept if r is not None]
            context: list[dict[str, Any]] = []
            if rows[0].stage != 0 and any(r.get("resourceType") in ("Claim", "ClaimResponse") for r in resources):
                entries = select(Work.resource).where(delivered, Work.kind.in_(("Medication", "ActivityDefinition")))
                context = [json.loads(r) for r in session.scalars(entries) if r is not None]
            tx = session.get(Transaction, transaction_id)
            aliases = {(k, rid): key for k, rid, key in (tx.aliases or [])} if tx is not None else {}
            return Slice(transaction_id, ids, labels, resources, context, aliases)
    except _Taken:
        return None


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
            for chunk in _chunks(sorted(keys)):
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
        freed = _count(session.execute(update(Work).where(mine, Work.waits_for.is_(None)).values(**values)))
        kept = {"claimed_until": None, "claimed_by": None}
        return freed + _count(session.execute(update(Work).where(mine, Work.waits_for.is_not(None)).values(**kept)))


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
        return _count(session.execute(query.values(claimed_until=None, claimed_by=None)))


def holder_alive(holder: str) -> bool:
    """Whether a "host:pid[:role]" holder may still be at work: on another machine it may; here, if the process is."""
    host, _, rest = holder.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def finish(
    journal: Journal,
    taken: Slice,
    outcomes: Iterable[Mapping[str, Any]],
    retry: bool,
    error: str | None,
    base: timedelta = timedelta(seconds=30),
    cap: timedelta = timedelta(hours=1),
) -> None:
    """Record what became of a slice's records.

    `outcomes` are {record, status, uids, reasons}; a record still pending waits longer after each failed attempt
    (base, doubling, at most cap), and so does the rest of its push, which would only meet the same DHIS2.
    """
    now = datetime.now(UTC)
    by_label = {o["record"]: o for o in outcomes}
    latest_retry = now
    decided: list[str] = []
    with journal.sessions.begin() as session:
        for chunk in _chunks(taken.ids):
            for row in session.scalars(select(Work).where(Work.id.in_(chunk))):
                if row.state != "pending":
                    continue  # superseded while on its way
                outcome = by_label.get(f"{row.kind}/{row.key}") or {"status": "pending"}
                row.claimed_until = None
                row.updated_at = now
                if outcome.get("waits_for"):
                    # Not an attempt: what it refers to is still on its way; woken when that is decided.
                    row.claimed_by = None
                    row.waits_for = outcome["waits_for"]
                    row.next_attempt_at = now + WAIT_RECHECK
                    row.last_error = "; ".join(r["message"] for r in outcome.get("reasons") or [])
                    continue
                row.attempts += 1
                row.waits_for = None
                if outcome["status"] == "pending":
                    row.claimed_by = None
                    row.next_attempt_at = now + min(cap, base * 2 ** (row.attempts - 1)) if retry else now
                    latest_retry = max(latest_retry, row.next_attempt_at)
                    row.last_error = error
                    continue
                row.state = outcome["status"]
                row.uids = dict(outcome.get("uids") or {})
                row.reasons = list(outcome.get("reasons") or [])
                decided.append(f"{row.kind}/{row.key}")
        for chunk in _chunks(decided):
            # Records waiting for these go now: DHIS2 has them, or they will never come and the waiting is over.
            waiting = (Work.state == "pending") & Work.waits_for.in_(chunk)
            session.execute(update(Work).where(waiting).values(next_attempt_at=now))
        if retry:
            session.execute(
                update(Work)
                .where(
                    Work.transaction_id == taken.transaction_id,
                    Work.state == "pending",
                    Work.next_attempt_at < latest_retry,
                    (Work.claimed_until.is_(None)) | (Work.claimed_until < now),
                )
                .values(next_attempt_at=latest_retry)
            )


def decide(journal: Journal, transaction_id: int) -> str | None:
    """Give the push its final status once none of its records is pending; returns it to the one caller that did.

    Several workers may finish slices of one push at once: the conditional update lets exactly one of them decide.
    """
    with journal.sessions.begin() as session:
        waiting = select(Work.id).where(Work.transaction_id == transaction_id, Work.state == "pending").exists()
        if session.scalar(select(waiting)):
            return None
        counts = dict(
            session.execute(
                select(Work.state, func.count()).where(Work.transaction_id == transaction_id).group_by(Work.state)
            ).all()
        )
        tx = session.get(Transaction, transaction_id)
        if tx is None:
            return None
        delivered = counts.get("delivered", 0) + counts.get("duplicate", 0)
        status = final_status(delivered, counts.get("rejected", 0) + (tx.input_rejected or 0))
        won = _count(
            session.execute(
                update(Transaction)
                .where(Transaction.id == transaction_id, Transaction.status == "Processing", ~waiting)
                .values(
                    status=status, http_status=200 if status == "Successful" else 422, answered_at=datetime.now(UTC)
                )
            )
        )
        if not won:
            return None
        session.execute(
            update(Work)
            .where(Work.transaction_id == transaction_id, Work.state == "delivered", Work.resource.is_not(None))
            .values(resource=None)
        )
        return status


def progress(journal: Journal, transaction_id: int) -> dict[str, int]:
    """How many records of a push are in each state (pending, delivered, rejected, ...)."""
    with journal.sessions() as session:
        query = select(Work.state, func.count()).where(Work.transaction_id == transaction_id).group_by(Work.state)
        counts = {state: int(n) for state, n in session.execute(query)}
        tx = session.get(Transaction, transaction_id)
        if tx is not None and tx.input_rejected:
            counts["refused on input"] = tx.input_rejected
        return counts


def dead_letters(journal: Journal) -> list[Work]:
    """Records DHIS2 refused for a reason that retrying cannot fix, newest first."""
    with journal.sessions() as session:
        rows = session.scalars(select(Work).where(Work.state == "rejected").order_by(Work.id.desc())).all()
        session.expunge_all()
        return list(rows)


def replay(journal: Journal, ids: Iterable[int] | None = None) -> int:
    """Send rejected records again (all, or these), once the mapping or DHIS2 has been fixed; their pushes are open
    again until the worker has decided them anew (and told OpenHIM)."""
    now = datetime.now(UTC)
    which = (Work.state == "rejected") & Work.resource.is_not(None)
    if ids is not None:
        which = which & Work.id.in_(list(ids))
    with journal.sessions.begin() as session:
        pushes = select(Work.transaction_id).where(which)
        session.execute(update(Transaction).where(Transaction.id.in_(pushes)).values(status="Processing"))
        query = update(Work).where(which)
        return _count(session.execute(query.values(state="pending", next_attempt_at=now, reasons=[], updated_at=now)))
