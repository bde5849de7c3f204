"""What the journal keeps of pulls from openIMIS: per feed, how far the pulls have read and kept, and the filters
asked lately; and a lease that lets one pull run at a time per openIMIS, across every process and instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mediator.errors import MediatorError
from mediator.journal.claim import holder_alive
from mediator.journal.models import PullCursor, PullLease
from mediator.journal.store import Journal

LEASE = timedelta(minutes=30)  # renewed between feeds; a pull whose process died elsewhere is taken over after this
REMEMBERED = 3700.0  # seconds a filter is remembered: openIMIS caches the count of a search for an hour


@dataclass(frozen=True)
class FeedState:
    cursor: str | None  # openIMIS's clock when the last read that was kept began
    queries: tuple[tuple[str, float], ...]  # (filter, when) asked within the last hour


def feed_states(journal: Journal, source: str, now: float) -> dict[str, FeedState]:
    with journal.sessions() as session:
        rows = session.scalars(select(PullCursor).where(PullCursor.source == source)).all()
    return {
        row.feed: FeedState(row.last_updated, tuple((q, t) for q, t in row.queries or [] if now - t < REMEMBERED))
        for row in rows
    }


def _row(session: object, source: str, feed: str) -> PullCursor:
    row = session.get(PullCursor, (source, feed))  # type: ignore[attr-defined]
    if row is None:
        row = PullCursor(source=source, feed=feed, last_updated=None, queries=[], updated_at=datetime.now(UTC))
        session.add(row)  # type: ignore[attr-defined]
    return row


def remember_query(journal: Journal, source: str, feed: str, query: str, now: float) -> None:
    """Note a filter before it is asked (its count is cached by openIMIS from then on, whatever follows)."""
    with journal.sessions.begin() as session:
        row = _row(session, source, feed)
        row.queries = [[q, t] for q, t in row.queries or [] if now - t < REMEMBERED] + [[query, now]]
        row.updated_at = datetime.now(UTC)


def advance(journal: Journal, source: str, reached: dict[str, str]) -> None:
    """Move cursors forward (never back) once what they cover is kept in the journal."""
    with journal.sessions.begin() as session:
        for feed, value in reached.items():
            row = _row(session, source, feed)
            if row.last_updated is None or value > row.last_updated:
                row.last_updated, row.updated_at = value, datetime.now(UTC)


def forget(journal: Journal, source: str) -> int:
    """Drop the cursors of this openIMIS: the next pull reads everything again (unchanged records are not sent)."""
    with journal.sessions.begin() as session:
        rows = session.scalars(select(PullCursor).where(PullCursor.source == source)).all()
        for row in rows:
            row.last_updated = None
        return len(rows)


class PullRunning(MediatorError):
    """Another pull of the same openIMIS holds the lease: this one reads nothing; the next may."""

    http_status = 409
    openhim_status = "Completed"
    fhir_code = "conflict"
    retryable = True
    summary = "this call pulls nothing"

    def __init__(self, holder: str, until: datetime) -> None:
        super().__init__(f"another pull of this openIMIS is running ({holder}, lease until {until:%H:%M:%S} UTC)")
        self.holder = holder


def take_lease(journal: Journal, source: str, holder: str, now: datetime | None = None) -> None:
    """Take the pull lease of this openIMIS, or raise PullRunning."""
    now = now or datetime.now(UTC)
    with journal.sessions.begin() as session:
        current = session.get(PullLease, source)
        free = (PullLease.until < now) | (PullLease.holder == holder)
        if current is not None and not holder_alive(current.holder):
            free = free | (PullLease.holder == current.holder)  # its process on this machine is gone
        take = update(PullLease).where(PullLease.source == source, free).values(holder=holder, until=now + LEASE)
        taken = session.execute(take.execution_options(synchronize_session=False))
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return
    try:
        with journal.sessions.begin() as session:
            session.add(PullLease(source=source, holder=holder, until=now + LEASE))
        return
    except IntegrityError:
        pass
    with journal.sessions() as session:
        row = session.get(PullLease, source)
    if row is None:
        raise PullRunning("unknown", now)
    raise PullRunning(row.holder, row.until.replace(tzinfo=row.until.tzinfo or UTC))


def renew_lease(journal: Journal, source: str, holder: str) -> bool:
    """Keep the lease while the pull runs; False when it was lost (taken over after this pull stalled)."""
    now = datetime.now(UTC)
    with journal.sessions.begin() as session:
        renewed = session.execute(
            update(PullLease).where(PullLease.source == source, PullLease.holder == holder).values(until=now + LEASE)
        )
        return bool(renewed.rowcount)  # type: ignore[attr-defined]


def release_lease(journal: Journal, source: str, holder: str) -> None:
    with journal.sessions.begin() as session:
        row = session.get(PullLease, source)
        if row is not None and row.holder == holder:
            session.delete(row)
