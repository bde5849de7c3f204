"""What an auditor reads of the journal: pushes by time, channel, client, status and origin; one push with its
records and DHIS2 calls; a record's history across pushes; dead letters and replays. Read only, a page or a batch
at a time, so that an export of a year of pushes runs in bounded memory.

Nothing here reads a kept record: what is shown is what DHIS2 received (keys, UIDs, reasons, redacted bodies).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mediator.journal.models import ChainEntry, Exchange, Outcome, Transaction, Work

PAGE = 50
BATCH = 500


@dataclass(frozen=True)
class PushFilter:
    since: datetime | None = None
    until: datetime | None = None
    channel: str = ""
    client: str = ""
    status: str = ""
    origin: str = ""

    def where(self, query: Select[Any]) -> Select[Any]:
        if self.since is not None:
            query = query.where(Transaction.received_at >= self.since)
        if self.until is not None:
            query = query.where(Transaction.received_at < self.until)
        for column, value in ((Transaction.channel, self.channel), (Transaction.client_id, self.client),
                              (Transaction.status, self.status), (Transaction.origin, self.origin)):  # fmt: skip
            if value:
                query = query.where(column == value)
        return query.where(Transaction.status != "Receiving")


@dataclass(frozen=True)
class PushRow:
    id: int
    openhim_id: str | None
    client_id: str | None
    channel: str
    origin: str
    received_at: datetime
    answered_at: datetime | None
    status: str
    http_status: int | None
    received: dict[str, int]
    stats: dict[str, int]
    outcomes: dict[str, int] = field(default_factory=dict)  # records by outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "push": self.id, "openhim_transaction": self.openhim_id, "client": self.client_id,
            "channel": self.channel, "origin": self.origin, "received_at": _iso(self.received_at),
            "answered_at": _iso(self.answered_at), "status": self.status, "http_status": self.http_status,
            "received": self.received, "dhis2": self.stats, "records": self.outcomes,
        }  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


COLUMNS = (Transaction.id, Transaction.openhim_id, Transaction.client_id, Transaction.channel, Transaction.origin,
           Transaction.received_at, Transaction.answered_at, Transaction.status, Transaction.http_status,
           Transaction.received, Transaction.stats)  # fmt: skip


def pushes(session: Session, wanted: PushFilter, before: int | None = None, limit: int = PAGE) -> list[PushRow]:
    """The newest pushes that match, older than push `before` (the page after the one that ended there)."""
    query = wanted.where(select(*COLUMNS))
    if before is not None:
        query = query.where(Transaction.id < before)
    rows = session.execute(query.order_by(Transaction.id.desc()).limit(limit)).all()
    counted = _outcome_counts(session, [row[0] for row in rows])
    return [_push_row(row, counted.get(row[0], {})) for row in rows]


def _push_row(row: Any, counted: dict[str, int]) -> PushRow:
    tid, openhim_id, client_id, channel, origin, received_at, answered_at, status, http_status, received, stats = row
    return PushRow(tid, openhim_id, client_id, channel, origin, received_at, answered_at, status, http_status,
                   dict(received or {}), dict(stats or {}), counted)  # fmt: skip


def all_pushes(session: Session, wanted: PushFilter) -> Iterator[PushRow]:
    """Every push that matches, newest first, a batch at a time."""
    before = None
    while page := pushes(session, wanted, before, BATCH):
        yield from page
        before = page[-1].id
        session.expunge_all()


def _outcome_counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    """Records by where they stand now: the journal's work rows of each push (an outcome row is kept for every
    attempt), with its refusals on input; a push answered whole has outcome rows only."""
    if not ids:
        return {}
    names = {"duplicate": "unchanged"}
    counted: dict[int, dict[str, int]] = {}
    work = (
        select(Work.transaction_id, Work.state, func.count())
        .where(Work.transaction_id.in_(ids))
        .group_by(Work.transaction_id, Work.state)
    )
    for tid, state, n in session.execute(work):
        counted.setdefault(tid, {})[names.get(state, state)] = int(n)
    refused = session.execute(select(Transaction.id, Transaction.input_rejected).where(Transaction.id.in_(ids)))
    for tid, n in refused:
        if n and tid in counted:
            counted[tid]["rejected"] = counted[tid].get("rejected", 0) + int(n)
    answered = [i for i in ids if i not in counted]
    if answered:
        query = (
            select(Outcome.transaction_id, Outcome.status, func.count())
            .where(Outcome.transaction_id.in_(answered))
            .group_by(Outcome.transaction_id, Outcome.status)
        )
        for tid, status, n in session.execute(query):
            counted.setdefault(tid, {})[status] = int(n)
    return counted


def push(session: Session, transaction_id: int) -> PushRow | None:
    row = session.execute(select(*COLUMNS).where(Transaction.id == transaction_id)).one_or_none()
    if row is None:
        return None
    counted = _outcome_counts(session, [transaction_id])
    return _push_row(row, counted.get(transaction_id, {}))


def outcomes(session: Session, transaction_id: int, after: int = 0, limit: int = BATCH) -> list[dict[str, Any]]:
    """A push's record outcomes, in the order they were written, after outcome `after`."""
    query = (
        select(Outcome.id, Outcome.record, Outcome.status, Outcome.uids, Outcome.reasons)
        .where(Outcome.transaction_id == transaction_id, Outcome.id > after)
        .order_by(Outcome.id)
        .limit(limit)
    )
    return [
        {"id": i, "record": r, "status": s, "uids": u or {}, "reasons": why or []}
        for i, r, s, u, why in session.execute(query)
    ]


def calls(session: Session, transaction_id: int) -> list[dict[str, Any]]:
    """A push's DHIS2 calls, every attempt, with their redacted bodies and timings."""
    query = select(Exchange).where(Exchange.transaction_id == transaction_id).order_by(Exchange.id)
    return [
        {
            "id": e.id,
            "method": e.method,
            "url": e.url,
            "started_at": _iso(e.started_at),
            "finished_at": _iso(e.finished_at),
            "milliseconds": _ms(e.started_at, e.finished_at),
            "status": e.status,
            "error": e.error,
            "request_body": e.request_body,
            "response_body": e.response_body,
        }  # fmt: skip
        for e in session.scalars(query)
    ]


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    return None if start is None or end is None else int((end - start).total_seconds() * 1000)


def events(
    session: Session, transaction_id: int | None = None, kinds: tuple[str, ...] = ("decided", "replay", "resend")
) -> list[dict[str, Any]]:
    """The chain's entries about pushes (decisions, replays, resends), of one push or of all, newest first."""
    query = select(ChainEntry.seq, ChainEntry.kind, ChainEntry.at, ChainEntry.facts).where(ChainEntry.kind.in_(kinds))
    found = []
    for seq, kind, at, facts in session.execute(query.order_by(ChainEntry.seq.desc())):
        facts = facts or {}
        if (
            transaction_id is not None
            and facts.get("push") != transaction_id
            and transaction_id not in facts.get("pushes", [])
        ):
            continue
        # The time the fact holds (hashed with it), not the entry's own column.
        found.append({"entry": seq, "kind": kind, **facts, "at": facts.get("at") or _iso(at)})
    return found


def history(session: Session, kind: str, key: str) -> list[dict[str, Any]]:
    """Every version of a record the journal kept, oldest first: its push, state, content hash and UIDs, and what
    became of it in that push."""
    label = f"{kind}/{key}"
    versions = session.execute(
        select(
            Work.transaction_id,
            Work.state,
            Work.content_hash,
            Work.uids,
            Work.reasons,
            Work.updated_at,
            Transaction.received_at,
            Transaction.channel,
            Transaction.openhim_id,
        )  # fmt: skip
        .join(Transaction, Transaction.id == Work.transaction_id)
        .where(Work.kind == kind, Work.key == key)
        .order_by(Work.id)
    ).all()
    outcomes_of: dict[int, list[dict[str, Any]]] = {}
    for tid, status, uids, reasons in session.execute(
        select(Outcome.transaction_id, Outcome.status, Outcome.uids, Outcome.reasons)
        .where(Outcome.record == label)
        .order_by(Outcome.id)
    ):
        outcomes_of.setdefault(tid, []).append({"status": status, "uids": uids or {}, "reasons": reasons or []})
    return [
        {
            "push": tid,
            "received_at": _iso(received),
            "channel": channel,
            "openhim_transaction": openhim_id,
            "state": state,
            "content_hash": digest,
            "uids": uids or {},
            "reasons": reasons or [],
            "updated_at": _iso(updated),
            "outcomes": outcomes_of.get(tid, []),
        }  # fmt: skip
        for tid, state, digest, uids, reasons, updated, received, channel, openhim_id in versions
    ]


def dead_letters(session: Session, limit: int = BATCH) -> list[dict[str, Any]]:
    """Records DHIS2 refused for good, newest first, with their reasons (none of their values)."""
    query = (
        select(
            Work.id, Work.transaction_id, Work.kind, Work.key, Work.reasons, Work.updated_at, Work.record.is_not(None)
        )
        .where(Work.state == "rejected")
        .order_by(Work.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": i,
            "push": tid,
            "record": f"{kind}/{key}",
            "reasons": reasons or [],
            "at": _iso(at),
            "replayable": bool(kept),
        }
        for i, tid, kind, key, reasons, at, kept in session.execute(query)
    ]
