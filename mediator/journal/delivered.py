"""What the journal says DHIS2 holds, and sending again what DHIS2 turns out to have lost.

A record's newest row (delivered now, or unchanged since an earlier delivery) is what makes the next push of the same
content "unchanged": the journal vouches for DHIS2 holding it. When DHIS2 no longer does (restored from a backup,
reset), the row is sent again if the journal still keeps its record (its push is still being delivered), or
else marked `missing`, which vouches for nothing: the next push or pull of the record delivers it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from mediator.journal import chain
from mediator.journal.models import Transaction, Work
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal

VOUCHED = ("delivered", "duplicate")
MISSING = "missing"  # delivered once, no longer in DHIS2, and not kept: the next push of it is sent


@dataclass(frozen=True)
class Vouched:
    """A record the journal says DHIS2 holds: its newest row, and the DHIS2 objects that carry it."""

    id: int
    kind: str
    key: str
    uids: dict[str, Any] = field(default_factory=dict)


# A record delivered with others and no DHIS2 object of its own lives on theirs: a family's attributes are its
# members', a review's amounts are on its claim's events.
LIVES_ON = {"Group": "Patient", "ClaimResponse": "Claim"}


def _newer_row() -> Any:
    """Whether a later row of the same record exists (a newer push of it: that one speaks for the record now)."""
    later = aliased(Work)
    return select(later.id).where(later.kind == Work.kind, later.key == Work.key, later.id > Work.id).exists()


def vouched(journal: Journal, size: int = 500) -> Iterator[list[Vouched]]:
    """Every record whose newest row says DHIS2 holds it, `size` at a time, in the order they were kept; one with no
    DHIS2 object of its own carries the UIDs of those it lives on, from its unit of the push."""
    newer = _newer_row()
    last = 0
    while True:
        query = (
            select(Work.id, Work.kind, Work.key, Work.uids, Work.transaction_id, Work.unit)
            .where(Work.id > last, Work.state.in_(VOUCHED), ~newer)
            .order_by(Work.id)
            .limit(size)
        )
        with journal.sessions() as session:
            found = session.execute(query).all()
            hosts = _hosts(session, {(r.transaction_id, r.unit, r.kind) for r in found if not r.uids})
        if not found:
            return
        yield [
            Vouched(r.id, r.kind, r.key, dict(r.uids or hosts.get((r.transaction_id, r.unit, r.kind), {})))
            for r in found
        ]
        last = found[-1].id


def _hosts(session: Any, lodgers: set[tuple[int, int, str]]) -> dict[tuple[int, int, str], dict[str, Any]]:
    """(push, unit, kind) -> the UIDs of the records of that unit a record of that kind lives on, named after them."""
    wanted: dict[tuple[int, str], set[int]] = {}
    for push, unit, kind in lodgers:
        if kind in LIVES_ON:
            wanted.setdefault((push, LIVES_ON[kind]), set()).add(unit)
    lodger_of = {host: kind for kind, host in LIVES_ON.items()}
    found: dict[tuple[int, int, str], dict[str, Any]] = {}
    for (push, host), units in wanted.items():
        for chunk in chunks(sorted(units)):
            query = select(Work.unit, Work.key, Work.uids).where(
                Work.transaction_id == push, Work.kind == host, Work.unit.in_(chunk)
            )
            for unit, key, uids in session.execute(query):
                named = found.setdefault((push, unit, lodger_of[host]), {})
                named.update({f"{name} {key}": uid for name, uid in (uids or {}).items()})
    return found


@dataclass(frozen=True)
class SentAgain:
    queued: int  # pending again: the delivery worker sends them
    marked: int  # no longer kept: the next push or pull of each sends it


def send_again(journal: Journal, ids: Collection[int]) -> SentAgain:
    """Stop vouching for these rows: those whose record is kept go pending (their push is open again until the
    worker has decided it anew), the others are marked missing. Rows no longer vouched for are left alone."""
    now = datetime.now(UTC)
    queued = marked = 0
    reopened: set[int] = set()
    with journal.sessions.begin() as session:
        for chunk in chunks(sorted(ids)):
            # Checked again here: a newer push of the record may have come since it was found missing.
            vouching = Work.id.in_(chunk) & Work.state.in_(VOUCHED) & ~_newer_row()
            kept = vouching & Work.record.is_not(None)
            pushes = list(session.scalars(select(Work.transaction_id).where(kept).distinct()))
            reopened.update(pushes)
            session.execute(update(Transaction).where(Transaction.id.in_(pushes)).values(status="Processing"))
            again = {"state": "pending", "next_attempt_at": now, "claimed_until": None, "claimed_by": None}
            queued += rowcount(session.execute(update(Work).where(kept).values(**again, updated_at=now)))
            gone = vouching & Work.record.is_(None)
            marked += rowcount(session.execute(update(Work).where(gone).values(state=MISSING, updated_at=now)))
        if queued or marked:
            fact = {"at": now, "rows": sorted(ids), "queued": queued, "marked_missing": marked,
                    "pushes": sorted(reopened)}  # fmt: skip
            chain.append(session, [("resend", fact)])
    return SentAgain(queued, marked)


def enrollment_org_units(journal: Journal, insuree_keys: Collection[str]) -> dict[str, str]:
    """insuree key -> the org unit of its enrollment, for the insurees whose newest delivered version the journal
    vouches for (what the mediator delivered itself needs no request to DHIS2)."""
    found: dict[str, str] = {}
    with journal.sessions() as session:
        for chunk in chunks(sorted(insuree_keys)):
            rows = session.execute(
                select(Work.key, Work.uids)
                .where(Work.kind == "Patient", Work.key.in_(chunk), Work.state.in_(VOUCHED), ~_newer_row())
                .order_by(Work.id)
            )
            for key, uids in rows:
                org_unit = (uids or {}).get("orgUnit")
                if isinstance(org_unit, str) and org_unit:
                    found[key] = org_unit
    return found
