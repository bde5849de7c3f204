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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, tuple_, update

from mediator.journal.models import Outcome, Transaction, Work
from mediator.journal.store import Journal

LEASE = timedelta(minutes=10)  # a claim left by a worker on another machine that died is taken over after this


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


FINAL = ("delivered", "rejected", "superseded", "duplicate")


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


def accept(
    journal: Journal,
    *,
    channel: str,
    openhim_id: str | None,
    client_id: str | None,
    received_at: datetime,
    body: bytes,
    received: Mapping[str, int],
    resources: Mapping[str, Mapping[str, Any]],
    rejected: Iterable[tuple[str, list[dict[str, Any]]]],
    mapping: str = "",
) -> Accepted:
    """Keep the push and each of its records in one database transaction, before anything is sent.

    A record whose content was already delivered is not sent again; an older, still pending version of a record is
    superseded by this one.
    """
    now = datetime.now(UTC)
    unchanged: list[str] = []
    pending = 0
    with journal.sessions.begin() as session:
        tx = Transaction(
            openhim_id=openhim_id,
            client_id=client_id,
            channel=channel,
            received_at=received_at,
            status="Processing",
            body_sha256=hashlib.sha256(body).hexdigest(),
            received=dict(received),
            stats={},
        )
        session.add(tx)
        session.flush()
        for record, reasons in rejected:
            session.add(Outcome(transaction_id=tx.id, record=record, status="rejected", uids={}, reasons=reasons))
        items: list[tuple[str, str, str, Mapping[str, Any]]] = []
        for label, resource in resources.items():
            kind, key = label.split("/", 1)
            items.append((kind, key, label, resource))
        latest = _latest(session, [(kind, key) for kind, key, _, _ in items])
        rows, supersede = [], []
        for kind, key, label, resource in items:
            digest = content_hash(resource, mapping)
            last = latest.get((kind, key))
            state = "pending"
            if last is not None and last.state in ("delivered", "duplicate") and last.content_hash == digest:
                state = "duplicate"
                unchanged.append(label)
            else:
                pending += 1
                if last is not None and last.state == "pending":
                    supersede.append((kind, key))
            rows.append(
                {
                    "transaction_id": tx.id,
                    "kind": kind,
                    "key": key,
                    "content_hash": digest,
                    "resource": json.dumps(resource) if state == "pending" else None,
                    "state": state,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "uids": dict(last.uids) if state == "duplicate" and last is not None else {},
                    "reasons": [],
                    "updated_at": now,
                }
            )
        for chunk in _chunks(supersede):
            session.execute(
                update(Work)
                .where(Work.state == "pending", tuple_(Work.kind, Work.key).in_(chunk))
                .values(state="superseded", resource=None, claimed_until=None, updated_at=now)
            )
        if rows:
            session.execute(insert(Work), rows)
        return Accepted(tx.id, pending, unchanged)


CHUNK = 500


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _latest(session: Any, records: list[tuple[str, str]]) -> dict[tuple[str, str], Work]:
    """The newest journal row of each record, in a few queries however many records there are."""
    latest: dict[tuple[str, str], Work] = {}
    for chunk in _chunks(records):
        query = select(Work).where(tuple_(Work.kind, Work.key).in_(chunk)).order_by(Work.id)
        for row in session.scalars(query):
            latest[(row.kind, row.key)] = row
    return latest


def claim(journal: Journal, transaction_id: int, now: datetime | None = None) -> list[dict[str, Any]] | None:
    """Take the transaction's pending records for delivery (None if another worker has them or none is due).

    Returns the resources to send: the pending records and, for context, those of the push already delivered.
    """
    now = now or datetime.now(UTC)
    with journal.sessions.begin() as session:
        taken = _count(
            session.execute(
                update(Work)
                .where(
                    Work.transaction_id == transaction_id,
                    Work.state == "pending",
                    (Work.claimed_until.is_(None)) | (Work.claimed_until < now),
                )
                .values(claimed_until=now + LEASE, claimed_by=worker_id())
            )
        )
        if not taken:
            return None
        rows = session.scalars(
            select(Work).where(Work.transaction_id == transaction_id, Work.state.in_(("pending", "delivered")))
        ).all()
        return [json.loads(r.resource) for r in rows if r.resource]


def release_dead_claims(journal: Journal) -> int:
    """Free the claims of this machine's workers that are gone (killed, crashed, recycled), without waiting for
    their lease to run out."""
    host = socket.gethostname()
    with journal.sessions.begin() as session:
        owners = session.scalars(
            select(Work.claimed_by).where(Work.state == "pending", Work.claimed_by.like(f"{host}:%")).distinct()
        ).all()
        dead = [o for o in owners if o and not _alive(int(o.rsplit(":", 1)[1]))]
        if not dead:
            return 0
        query = update(Work).where(Work.state == "pending", Work.claimed_by.in_(dead))
        return _count(session.execute(query.values(claimed_until=None, claimed_by=None)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def due(journal: Journal, limit: int = 20, now: datetime | None = None) -> list[int]:
    """Transactions with records whose next attempt has come, oldest first; on PostgreSQL rows another instance is
    working on are skipped rather than waited for."""
    now = now or datetime.now(UTC)
    query = (
        select(Work.transaction_id)
        .where(
            Work.state == "pending",
            Work.next_attempt_at <= now,
            (Work.claimed_until.is_(None)) | (Work.claimed_until < now),
        )
        .order_by(Work.transaction_id)
        .limit(limit * 20)
    )
    with journal.sessions.begin() as session:
        if journal.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(dict.fromkeys(session.scalars(query).all()))
    return ids[:limit]


def finish(
    journal: Journal,
    transaction_id: int,
    outcomes: Iterable[Mapping[str, Any]],
    retry: bool,
    error: str | None,
    base: timedelta = timedelta(seconds=30),
    cap: timedelta = timedelta(hours=1),
) -> bool:
    """Record what became of the claimed records; returns True when the whole push is now decided.

    `outcomes` are {record, status, uids, reasons}; a record still pending waits longer after each failed attempt
    (base, doubling, at most cap).
    """
    now = datetime.now(UTC)
    by_label = {o["record"]: o for o in outcomes}
    with journal.sessions.begin() as session:
        rows = session.scalars(select(Work).where(Work.transaction_id == transaction_id)).all()
        for row in rows:
            outcome = by_label.get(f"{row.kind}/{row.key}")
            if row.state != "pending" or outcome is None:
                continue
            row.claimed_until = None
            row.updated_at = now
            row.claimed_by = None
            if outcome["status"] == "pending":
                row.attempts += 1
                row.next_attempt_at = now + min(cap, base * 2 ** (row.attempts - 1)) if retry else now
                row.last_error = error
            else:
                row.state = outcome["status"]
                row.uids = dict(outcome.get("uids") or {})
                row.reasons = list(outcome.get("reasons") or [])
                row.attempts += 1
        decided = all(r.state in FINAL for r in rows)
        if decided:
            for row in rows:
                if row.state == "delivered":
                    row.resource = None  # nothing more to send: no personal data kept longer than needed
        return decided


def dead_letters(journal: Journal) -> list[Work]:
    """Records DHIS2 refused for a reason that retrying cannot fix, newest first."""
    with journal.sessions() as session:
        rows = session.scalars(select(Work).where(Work.state == "rejected").order_by(Work.id.desc())).all()
        session.expunge_all()
        return list(rows)


def replay(journal: Journal, ids: Iterable[int] | None = None) -> int:
    """Send rejected records again (all, or these), once the mapping or DHIS2 has been fixed."""
    now = datetime.now(UTC)
    query = update(Work).where(Work.state == "rejected", Work.resource.is_not(None))
    if ids is not None:
        query = query.where(Work.id.in_(list(ids)))
    with journal.sessions.begin() as session:
        return _count(session.execute(query.values(state="pending", next_attempt_at=now, reasons=[], updated_at=now)))
