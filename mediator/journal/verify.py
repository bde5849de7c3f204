"""Checks the journal's hash chain (mediator.journal.chain) and names the first entry that was changed, removed,
added or reordered; against heads published elsewhere (OpenHIM transactions, the log), a chain rewritten whole.

The chain is read in order a batch at a time, with the rows its entries name: the time is that of reading the
journal once, the memory that of one batch (and of the pushes' ids, to find pushes no entry names).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mediator.journal.accept import RECEIVING
from mediator.journal.chain import GENESIS, ROWS, Head, digest, head, link, push_fact, row_facts
from mediator.journal.models import ChainEntry, Transaction
from mediator.journal.store import Journal

BATCH = 1000
STORED = ("push", "decided", "replay", "resend", "settings")  # kinds whose fact the entry holds


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
    pushes: set[int] = set()
    with journal.sessions() as session:
        while True:
            for batch in _batches(session, count):
                problem = _check_batch(session, batch, previous, count, wanted, pushes)
                if problem is not None:
                    return Verified(count, Head(count, previous), problem)
                count, previous = batch[-1].seq, batch[-1].hash
            found, kept = Head(count, previous), head(session)
            if kept == found:
                break
            if kept.seq > count and (session.scalar(select(func.max(ChainEntry.seq))) or 0) > count:
                continue  # appended while it was read: read on
            if kept.seq > count:
                return Verified(count, found, f"entries {count + 1} to {kept.seq}, at the end, were removed")
            return Verified(count, found, f"the chain's head ({kept}) is not its last entry ({found})")
        beyond = sorted(s for s in wanted if s > count)
        if beyond:
            return Verified(count, found, f"entry {beyond[0]} was published but is not in the chain: its end was cut")
        return Verified(count, found, _unchained(session, pushes))


def _batches(session: Session, last: int) -> Iterator[list[ChainEntry]]:
    while True:
        batch = list(
            session.scalars(select(ChainEntry).where(ChainEntry.seq > last).order_by(ChainEntry.seq).limit(BATCH))
        )
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
    session: Session, batch: list[ChainEntry], previous: str, count: int, wanted: dict[int, str], pushes: set[int]
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
            pushes.add(push)
        previous = entry.hash
        expected += 1
    return None


def _unchained(session: Session, pushes: set[int]) -> str | None:
    """Rows that no entry names: added behind the mediator's back."""
    for kind, (model, _) in ROWS.items():
        named = select(ChainEntry.ref).where(ChainEntry.kind == kind, ChainEntry.ref.is_not(None))
        query = select(func.count(), func.min(model.id)).where(model.id.not_in(named))
        if kind == "outcome":  # the refusals of a push still being taken in are chained when it is opened
            query = query.where(
                model.transaction_id.not_in(select(Transaction.id).where(Transaction.status == RECEIVING))
            )
        number, first = session.execute(query).one()
        if number:
            return f"{number} {kind} row(s) are in no entry of the chain (added), the first is {kind} {first}"
    last = 0
    while True:
        ids = list(
            session.scalars(
                select(Transaction.id)
                .where(Transaction.id > last, Transaction.status != RECEIVING)
                .order_by(Transaction.id)
                .limit(BATCH)
            )
        )
        if not ids:
            return None
        missing = [i for i in ids if i not in pushes]
        if missing:
            return f"push {missing[0]} is in no entry of the chain (added)"
        last = ids[-1]
