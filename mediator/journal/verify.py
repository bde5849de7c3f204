"""Checks the journal's hash chain (mediator.journal.chain) and names the first entry that was changed, removed,
added or reordered; against heads published elsewhere (OpenHIM transactions, the log), a chain rewritten whole.

The chain is read in order a batch at a time, with the rows its entries name: the time is that of reading the
journal once, the memory that of one batch (and of the pushes' ids, to find pushes no entry names).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from mediator.journal.accept import RECEIVING
from mediator.journal.chain import GENESIS, ROWS, Head, digest, digestable_time, head, link, push_fact, row_facts
from mediator.journal.models import ChainEntry, Transaction
from mediator.journal.store import Journal

BATCH = 1000
STORED = ("push", "decided", "replay", "resend", "settings")  # kinds whose fact the entry holds


@dataclass
class _Seen:
    """What the walk learnt of pushes: those taken in, their last decision, the entry that last reopened them."""

    pushes: set[int] = field(default_factory=set)
    decided: dict[int, tuple[int, Any, Any, Any]] = field(default_factory=dict)  # push -> (entry, status, http, at)
    reopened: dict[int, int] = field(default_factory=dict)  # push -> entry of its last replay or resend


@dataclass(frozen=True)
class Verified:
    entries: int
    head: Head
    problem: str | None = None  # the first fault found, naming the entry

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(journal: Journal, published: Sequence[Head] = ()) -> Verified:
    wanted = {h.seq: h.hash for h in published}
    previous, count = GENESIS, 0
    seen = _Seen()
    with journal.sessions() as session:
        try:
            target = head(session)  # what is appended from here on is read by the next check
        except NoResultFound:
            return Verified(0, Head(0, GENESIS), "the chain's head row was removed")
        newest = session.scalar(select(func.max(Transaction.id))) or 0  # pushes after it are the next check's
        for batch in _batches(session, 0, target.seq):
            problem = _check_batch(session, batch, previous, count, wanted, seen)
            if problem is not None:
                return Verified(count, Head(count, previous), problem)
            count, previous = batch[-1].seq, batch[-1].hash
        found = Head(count, previous)
        if found != target:
            if target.seq > count:
                return Verified(count, found, f"entries {count + 1} to {target.seq}, at the end, were removed")
            return Verified(count, found, f"the chain's head ({target}) is not its last entry ({found})")
        beyond = sorted(s for s in wanted if s > count)
        if beyond:
            latest = session.scalar(select(func.max(ChainEntry.seq))) or 0
            if beyond[0] > latest:
                return Verified(
                    count, found, f"entry {beyond[0]} was published but is not in the chain: its end was cut"
                )
        return Verified(count, found, _unchained(session) or _pushes(session, seen, count, newest))


def _batches(session: Session, last: int, upto: int) -> Iterator[list[ChainEntry]]:
    while True:
        query = select(ChainEntry).where(ChainEntry.seq > last, ChainEntry.seq <= upto)
        batch = list(session.scalars(query.order_by(ChainEntry.seq).limit(BATCH)))
        if not batch:
            return
        yield batch
        last = batch[-1].seq
        session.expunge_all()


def _name(entry: ChainEntry) -> str:
    if entry.ref is not None:
        return f"entry {entry.seq} ({entry.kind} {entry.ref})"
    push = (entry.facts or {}).get("push")
    return f"entry {entry.seq} ({entry.kind}{f' of push {push}' if push is not None else ''})"


def _check_batch(
    session: Session, batch: list[ChainEntry], previous: str, count: int, wanted: dict[int, str], seen: _Seen
) -> str | None:
    rows = {kind: row_facts(session, kind, [e.ref for e in batch if e.kind == kind and e.ref is not None])
            for kind in ROWS}  # fmt: skip
    taken = [e.facts["push"] for e in batch if e.kind == "push" and isinstance(e.facts, dict) and "push" in e.facts]
    present = set(session.scalars(select(Transaction.id).where(Transaction.id.in_(taken)))) if taken else set()
    expected = count + 1
    for entry in batch:
        if entry.seq != expected:
            return f"entry {expected} was removed: the chain goes from entry {expected - 1} to entry {entry.seq}"
        if link(previous, entry.seq, entry.kind, entry.ref, entry.digest) != entry.hash:
            return f"{_name(entry)} does not follow from entry {entry.seq - 1}: changed, or entries reordered"
        if entry.seq in wanted and wanted[entry.seq] != entry.hash:
            return f"{_name(entry)} is not the entry published as {entry.seq}: the chain was rewritten up to there"
        if entry.kind in ROWS:
            fact = rows[entry.kind].get(entry.ref)  # type: ignore[arg-type]
            if fact is None:
                return f"{_name(entry)}: the {entry.kind} was removed"
            if digest(fact) != entry.digest:
                return f"{_name(entry)}: the {entry.kind} was changed"
        elif entry.facts is None or digest(entry.facts) != entry.digest:
            return f"{_name(entry)} was changed"
        elif entry.kind == "push":
            push = entry.facts["push"]
            if push not in present:
                return f"{_name(entry)}: the push was removed"
            if digest(push_fact(session, push)) != entry.digest:
                return f"{_name(entry)}: the push was changed"
            seen.pushes.add(push)
        else:
            _learn(entry, seen)
        previous = entry.hash
        expected += 1
    return None


def _learn(entry: ChainEntry, seen: _Seen) -> None:
    facts = entry.facts or {}
    if entry.kind == "decided" and isinstance(facts.get("push"), int):
        seen.decided[facts["push"]] = (entry.seq, facts.get("status"), facts.get("http_status"), facts.get("at"))
    elif entry.kind in ("replay", "resend"):
        for push in facts.get("pushes") or []:
            seen.reopened[push] = entry.seq


def _unchained(session: Session) -> str | None:
    """Rows that no entry names: added behind the mediator's back."""
    for kind, (model, _) in ROWS.items():
        named = select(ChainEntry.seq).where(ChainEntry.kind == kind, ChainEntry.ref == model.id).exists()
        query = select(func.count(), func.min(model.id)).where(~named)
        if kind == "outcome":  # the refusals of a push still being taken in are chained when it is opened
            receiving = select(Transaction.id).where(
                Transaction.id == model.transaction_id, Transaction.status == RECEIVING
            )
            query = query.where(~receiving.exists())
        number, first = session.execute(query).one()
        if number:
            return f"{number} {kind} row(s) are in no entry of the chain (added), the first is {kind} {first}"
    return None


def _pushes(session: Session, seen: _Seen, count: int, newest: int) -> str | None:
    """Every push is chained, and stands as its last decision left it (or reopened since, or still undecided)."""
    last = 0
    while True:
        # What was appended while the chain was read, known only if needed, and read after the batch: a push is
        # chained in the transaction that writes it, so a push of the batch has its entries by then.
        late: _Seen | None = None
        rows = session.execute(
            select(Transaction.id, Transaction.status, Transaction.http_status, Transaction.answered_at)
            .where(Transaction.id > last, Transaction.id <= newest)
            .order_by(Transaction.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return None
        for tid, status, http_status, answered_at in rows:
            if status == RECEIVING:
                if tid in seen.pushes:
                    return f"push {tid} is chained as taken in, but is marked as still being received"
                continue
            if tid not in seen.pushes or _undecided_but_final(seen, tid, status):
                late = late or _late(session, count)
                known = tid in seen.pushes or tid in late.pushes
                if not known:
                    return f"push {tid} is in no entry of the chain (added)"
                if tid in late.decided or tid in late.reopened:
                    continue  # decided or reopened while the chain was read
            problem = _decision_kept(seen, tid, status, http_status, answered_at)
            if problem is not None:
                return problem
        last = rows[-1][0]


def _undecided_but_final(seen: _Seen, tid: int, status: str) -> bool:
    return status != "Processing" and (tid not in seen.decided or seen.reopened.get(tid, 0) > seen.decided[tid][0])


def _decision_kept(seen: _Seen, tid: int, status: str, http_status: Any, answered_at: Any) -> str | None:
    decision = seen.decided.get(tid)
    reopened = seen.reopened.get(tid, 0)
    if decision is None or reopened > decision[0]:
        if status != "Processing":
            return f"push {tid} is {status}, but no entry of the chain decided it so"
        return None
    entry, decided, decided_http, decided_at = decision
    if status == "Processing":
        return f"push {tid} is open again, but no entry of the chain reopened it after entry {entry} decided it"
    if (status, http_status, _plain_time(answered_at)) != (decided, decided_http, decided_at):
        return f"push {tid}: its status is not the one entry {entry} decided ({decided}): it was changed"
    return None


def _plain_time(moment: Any) -> Any:
    return None if moment is None else digestable_time(moment)


def _late(session: Session, count: int) -> _Seen:
    late = _Seen()
    for entry in session.scalars(
        select(ChainEntry).where(ChainEntry.seq > count, ChainEntry.kind.in_(("push", "decided", "replay", "resend")))
    ):
        if entry.kind == "push" and isinstance((entry.facts or {}).get("push"), int):
            late.pushes.add(entry.facts["push"])  # type: ignore[index]
        else:
            _learn(entry, late)
    return late
