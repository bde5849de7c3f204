"""Dead letters: records DHIS2 refused for a reason retrying cannot fix, and sending them again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select, update

from mediator.journal import chain
from mediator.journal.models import Transaction, Work
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal


def dead_letters(journal: Journal) -> list[Work]:
    """Records DHIS2 refused for a reason that retrying cannot fix, newest first."""
    with journal.sessions() as session:
        rows = session.scalars(select(Work).where(Work.state == "rejected").order_by(Work.id.desc())).all()
        session.expunge_all()
        return list(rows)


def replay(journal: Journal, ids: Iterable[int] | None = None, by: str = "") -> int:
    """Send rejected records again (all, or these), once the mapping or DHIS2 has been fixed; their pushes are open
    again until the worker has decided them anew (and told OpenHIM). `by` (who asked) is kept in the chain."""
    now = datetime.now(UTC)
    which = (Work.state == "rejected") & Work.record.is_not(None)
    if ids is not None:
        which = which & Work.id.in_(list(ids))
    with journal.sessions.begin() as session:
        replayed = session.execute(select(Work.id, Work.transaction_id, Work.kind, Work.key).where(which)).all()
        pushes = sorted({row.transaction_id for row in replayed})
        for chunk in chunks(pushes):
            session.execute(update(Transaction).where(Transaction.id.in_(chunk)).values(status="Processing"))
        count = 0
        again = {"state": "pending", "next_attempt_at": now, "reasons": [], "updated_at": now}
        for chunk in chunks([row.id for row in replayed]):
            count += rowcount(session.execute(update(Work).where(Work.id.in_(chunk)).values(**again)))
        if replayed:
            records = [f"{row.kind}/{row.key}" for row in replayed]
            chain.append(session, [("replay", {"by": by, "at": now, "pushes": pushes, "records": records})])
        return count
