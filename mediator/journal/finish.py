"""Recording what became of a slice, and deciding a push once none of its records is pending.

A record still pending waits longer after each failed attempt, and so does the rest of its push; a record waiting for
another push's record spends no attempt and is woken when that one is decided. Exactly one caller decides a push."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update

from mediator.answer.outcomes import final_status
from mediator.backoff import exponential
from mediator.journal import chain
from mediator.journal.claim import Slice
from mediator.journal.models import Transaction, Work
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal
from mediator.ops import metrics

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
    count: Callable[..., Any] | None = None,
) -> None:
    """Record what became of a slice's records.

    `outcomes` are {record, status, uids, reasons}; a record still pending waits longer after each failed attempt
    (base, doubling, at most cap), and so does the rest of its push, which would only meet the same DHIS2.
    `count(session)` runs in the same database transaction (the monthly aggregates count what was decided).
    """
    now = datetime.now(UTC)
    by_label = {o["record"]: o for o in outcomes}
    latest_retry = now
    decided: list[str] = []
    waits: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    counted: list[tuple[str, str]] = []  # (kind, outcome) of each record decided, and of each put back to wait
    with journal.sessions.begin() as session:
        for chunk in chunks(taken.ids):
            query = select(Work.id, Work.kind, Work.key, Work.attempts).where(Work.id.in_(chunk))
            # Locked as read (PostgreSQL): a row superseded meanwhile is not taken, so what is counted is what is
            # written. (SQLite's driver begins the transaction at the first write: a row superseded between this
            # read and that write is skipped by the write, but counted in the metrics.)
            query = query.where(Work.state == "pending").with_for_update()
            for wid, kind, key, attempts in session.execute(query):
                outcome = by_label.get(f"{kind}/{key}") or {"status": "pending"}
                if outcome.get("waits_for"):
                    # Not an attempt: what it refers to is still on its way; woken when that is decided.
                    reasons = "; ".join(r["message"] for r in outcome.get("reasons") or [])
                    waits.append({"b_id": wid, "waits_for": outcome["waits_for"], "last_error": reasons})
                elif outcome["status"] == "pending":
                    wait = exponential(attempts, base.total_seconds(), cap.total_seconds())
                    next_at = now + timedelta(seconds=wait) if retry else now
                    latest_retry = max(latest_retry, next_at)
                    again.append({"b_id": wid, "attempts": attempts + 1, "next_attempt_at": next_at})
                    if retry:  # DHIS2 could not take it (not a slice cut short)
                        counted.append((kind, "retried"))
                else:
                    row = {"b_id": wid, "attempts": attempts + 1, "state": outcome["status"]}
                    row.update(uids=dict(outcome.get("uids") or {}), reasons=list(outcome.get("reasons") or []))
                    done.append(row)
                    decided.append(f"{kind}/{key}")
                    counted.append((kind, outcome["status"]))
        # Each group in one statement per chunk; a record superseded meanwhile (no longer pending) is left as it is.
        common = {"claimed_until": None, "updated_at": now}
        _each(session, waits, {**common, "claimed_by": None, "next_attempt_at": now + WAIT_RECHECK})
        _each(session, again, {**common, "claimed_by": None, "waits_for": None, "last_error": error})
        _each(session, done, {**common, "waits_for": None})
        for chunk in chunks(decided):
            # Records waiting for these go now: DHIS2 has them, or they will never come and the waiting is over.
            # Found by what they wait for alone, through its index (with the state too, SQLite would walk every
            # pending row); a row no longer pending that still names it only gets a due time nobody reads.
            session.execute(update(Work).where(Work.waits_for.in_(chunk)).values(next_attempt_at=now))
        if count is not None:
            count(session)
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
    for kind, became in counted:  # once committed
        if became == "retried":
            metrics.DELIVERY_RETRIES.labels(kind).inc()
        else:
            metrics.DECIDED.labels(kind, became).inc()


def _each(session: Any, rows: list[dict[str, Any]], same: Mapping[str, Any]) -> None:
    """UPDATE each pending row of `rows` ({"b_id": id, column: value...}) and set `same` on all of them."""
    if not rows:
        return
    table = cast(Table, Work.__table__)
    columns = [c for c in rows[0] if c != "b_id"]
    statement = (
        table.update()
        .where(table.c.id == bindparam("b_id"), table.c.state == "pending")
        .values({**{c: bindparam(f"b_{c}") for c in columns}, **same})
    )
    connection = session.connection()
    for chunk in chunks(rows):
        connection.execute(statement, [{"b_id": r["b_id"], **{f"b_{c}": r[c] for c in columns}} for r in chunk])


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
        delivered = counts.get("delivered", 0) + counts.get("duplicate", 0) + counts.get("aggregated", 0)
        status = final_status(delivered, counts.get("rejected", 0) + (tx.input_rejected or 0))
        http_status, now = 200 if status == "Successful" else 422, datetime.now(UTC)
        won = rowcount(
            session.execute(
                update(Transaction)
                .where(Transaction.id == transaction_id, Transaction.status == "Processing", ~waiting)
                .values(status=status, http_status=http_status, answered_at=now)
            )
        )
        if not won:
            return None
        session.execute(
            update(Work)
            .where(
                Work.transaction_id == transaction_id,
                Work.state.in_(("delivered", "aggregated")),
                Work.record.is_not(None),
            )
            .values(record=None)
        )
        chain.append(session, [("decided", chain.decided_fact(transaction_id, status, http_status, now))])
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
