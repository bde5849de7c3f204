"""What a decided push came to, read from the journal: what the OpenHIM transaction says once the worker has
delivered a push it answered `Processing`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from mediator.answer.outcomes import PushSummary
from mediator.journal.chain import head
from mediator.journal.models import Outcome, Transaction, Work
from mediator.journal.store import Journal

MAX_LISTED = 1000  # rejected records named in the final answer; the properties count them all


def push_summary(journal: Journal, transaction_id: int, listed: int = MAX_LISTED) -> PushSummary | None:
    with journal.sessions() as session:
        tx = session.get(Transaction, transaction_id)
        if tx is None:
            return None
        query = select(Work.state, func.count()).where(Work.transaction_id == transaction_id).group_by(Work.state)
        states = {state: int(n) for state, n in session.execute(query)}
        # An outcome row is kept per attempt: a record is listed once, with its last refusal, if it stands rejected
        # (its work row) or was refused on input (it has none).
        standing = {
            f"{kind}/{key}": state
            for kind, key, state in session.execute(
                select(Work.kind, Work.key, Work.state).where(Work.transaction_id == transaction_id)
            )
        }
        last: dict[str, Any] = {}
        for record, reasons in session.execute(
            select(Outcome.record, Outcome.reasons)
            .where(Outcome.transaction_id == transaction_id, Outcome.status == "rejected")
            .order_by(Outcome.id)
        ):
            if standing.get(record, "rejected") == "rejected":
                last[record] = reasons
        rejected = list(last.items())[:listed]
        return PushSummary(
            channel=tx.channel,
            status=tx.status,
            http_status=tx.http_status or (200 if tx.status == "Successful" else 422),
            received=dict(tx.received or {}),
            stats=dict(tx.stats or {}),
            states=states,
            input_rejected=tx.input_rejected or 0,
            rejected=[(record, list(reasons or [])) for record, reasons in rejected],
            chain_head=str(head(session)),
        )
