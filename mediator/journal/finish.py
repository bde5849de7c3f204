"""Recording what became of a slice, and deciding a push once none of its records is pending.

A record still pending waits longer after each failed attempt, and so does the rest of its push; a record waiting for
another push's record spends no attempt and is woken when that one is decided. Exactly one caller decides a push."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from mediator.answer.outcomes import final_status
from mediator.backoff import exponential
from mediator.journal.claim import Slice
from mediator.journal.models import Transaction, Work
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal

# A record waiting for one still on its way in another push looks again after this, if not woken before.
WAIT_RECHECK = timedelta(minutes=2)


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
        for chunk in chunks(taken.ids):
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
                    wait = exponential(row.attempts - 1, base.total_seconds(), cap.total_seconds())
                    row.next_attempt_at = now + timedelta(seconds=wait) if retry else now
                    latest_retry = max(latest_retry, row.next_attempt_at)
                    row.last_error = error
                    continue
                row.state = outcome["status"]
                row.uids = dict(outcome.get("uids") or {})
                row.reasons = list(outcome.get("reasons") or [])
                decided.append(f"{row.kind}/{row.key}")
        for chunk in chunks(decided):
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
        won = rowcount(
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
            .where(Work.transaction_id == transaction_id, Work.state == "delivered", Work.record.is_not(None))
            .values(record=None)
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
