"""How long the journal keeps personal data: a decided record's kept form (mediator.journal.compact) is cleared once
the retention period has passed since it was decided, keeping the audit facts (keys, states, reasons, hashes, DHIS2
UIDs); every purge is recorded in the journal.

Pending records are never touched (they still have to be delivered), nor any record of a push still being delivered
(its delivered records are the context the rest of their unit is sent with).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update

from mediator.journal import chain
from mediator.journal.accept import RECEIVING
from mediator.journal.models import Purge, Transaction, Work
from mediator.journal.store import Journal

log = logging.getLogger(__name__)

DECIDED = ("delivered", "rejected", "superseded", "duplicate", "aggregated")
PURGE_EVERY = timedelta(hours=1)
CHUNK = 500  # records cleared per database transaction, so SQLite's write lock is never held for long


@dataclass(frozen=True)
class PurgeDone:
    purged_at: datetime
    cutoff: datetime
    records: int


def purge(journal: Journal, retention_days: int, now: datetime | None = None) -> PurgeDone:
    """Clear the kept records of those decided before `now - retention_days`, and record the purge."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    open_pushes = select(Transaction.id).where(Transaction.status.in_(("Processing", RECEIVING)))
    old = (
        Work.record.is_not(None)
        & (Work.updated_at < cutoff)
        & Work.state.in_(DECIDED)
        & Work.transaction_id.not_in(open_pushes)
    )
    cleared = 0
    while True:
        with journal.sessions.begin() as session:
            ids = list(session.scalars(select(Work.id).where(old).limit(CHUNK)))
            if ids:
                # Only the record goes: updated_at stays the time the record was decided.
                result = session.execute(update(Work).where(Work.id.in_(ids), old).values(record=None))
                cleared += int(cast(CursorResult[Any], result).rowcount)
        if len(ids) < CHUNK:
            break
    with journal.sessions.begin() as session:
        done = Purge(purged_at=now, cutoff=cutoff, retention_days=retention_days, records=cleared)
        session.add(done)
        session.flush()
        chain.append(session, rows={"purge": [done.id]})
    if cleared:
        log.info("cleared the kept data of %d record(s) decided before %s", cleared, f"{cutoff:%Y-%m-%d %H:%M}")
    return PurgeDone(now, cutoff, cleared)


def purge_if_due(
    journal: Journal, retention_days: int, now: datetime | None = None, every: timedelta = PURGE_EVERY
) -> PurgeDone | None:
    """Purge unless a purge was recorded within `every` (by this or any process sharing the journal)."""
    now = now or datetime.now(UTC)
    with journal.sessions() as session:
        last = session.scalar(select(func.max(Purge.purged_at)))
    if last is not None and _aware(last) > now - every:
        return None
    return purge(journal, retention_days, now)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back the naive UTC time it stored.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
