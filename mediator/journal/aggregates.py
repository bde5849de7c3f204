"""The aggregates' part of the journal: each record's facts, each root record's contributions to the cells, and
which months of which org units are due to be sent.

Invariants:
- a record's facts are those of the newest push that brought it (a slice of an older push decided later does not
  overwrite them);
- a root's contributions are replaced whole, in the transaction that changed a fact they read, and every month
  they touched before or touch now becomes due: a cell is always the sum of its contributions, without rescanning;
- a cell's value is summed exactly (decimals kept as text), a data set's month on an org unit at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mediator.aggregates import contributions as contrib
from mediator.aggregates import facts as facts_of
from mediator.aggregates.contributions import Contribution, Month
from mediator.journal.models import (
    AggregateContribution,
    AggregateDue,
    AggregateFact,
    AggregateRef,
    AggregateSent,
    AggregateUnplaced,
)
from mediator.journal.rows import chunks
from mediator.openimis.records import Record

Cell = tuple[str, str, str]  # (element, options, attributes), options and attributes joined by "|"


def current_month(now: datetime | None = None) -> Month:
    moment = now or datetime.now(UTC)
    return moment.year * 12 + moment.month - 1


class _Lookup:
    """The facts the contributions read, from the session, remembered for one recount."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.known: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.referrers: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        if (kind, key) not in self.known:
            row = self.session.get(AggregateFact, (kind, key))
            self.known[(kind, key)] = None if row is None else {**row.facts, "since": row.since}
        return self.known[(kind, key)]

    def referring(self, kind: str, label: str) -> list[tuple[str, dict[str, Any]]]:
        if (kind, label) not in self.referrers:
            query = (
                select(AggregateFact.key, AggregateFact.facts, AggregateFact.since)
                .join(AggregateRef, (AggregateRef.kind == AggregateFact.kind) & (AggregateRef.key == AggregateFact.key))
                .where(AggregateRef.ref == label, AggregateRef.kind == kind)
                .order_by(AggregateFact.key)
            )
            self.referrers[(kind, label)] = [(k, {**f, "since": s}) for k, f, s in self.session.execute(query)]
        return self.referrers[(kind, label)]

    def forget(self, kind: str, key: str) -> None:
        self.known.pop((kind, key), None)
        self.referrers.clear()


def take(
    session: Any, push_id: int, received_at: datetime, records: Iterable[Record], now: datetime | None = None
) -> int:
    """Keep the facts of records a slice decided and count again every root they touch; returns the roots counted."""
    since = received_at.astimezone(UTC).strftime("%Y-%m")
    stamp = datetime.now(UTC)
    records = list(records)
    found = [f for f in map(facts_of.of, records) if f is not None]
    if not found:
        return 0
    _name_options(session, records, push_id, since, stamp)
    stored = _stored(session, [(f.kind, f.key) for f in found])
    changed: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = []
    for item in found:
        row = stored.get((item.kind, item.key))
        if row is not None and (row.push_id > push_id or row.facts == item.facts):
            continue  # a newer push brought it, or nothing the aggregates read changed
        if row is None:
            session.add(
                AggregateFact(
                    kind=item.kind, key=item.key, push_id=push_id, since=since, facts=item.facts, updated_at=stamp
                )
            )
            old = None
        else:
            old = dict(row.facts)
            row.facts, row.push_id, row.updated_at = item.facts, push_id, stamp
        session.execute(delete(AggregateRef).where(AggregateRef.kind == item.kind, AggregateRef.key == item.key))
        if item.refs:
            session.execute(insert(AggregateRef), [{"ref": r, "kind": item.kind, "key": item.key} for r in item.refs])
        changed.append((item.kind, item.key, old, item.facts))
    if not changed:
        return 0
    session.flush()
    lookup = _Lookup(session)
    roots: set[tuple[str, str]] = set()
    for kind, key, old, new in changed:
        roots |= _touched(lookup, kind, key, old, new)
    recount(session, roots, lookup, now)
    return len(roots)


def _name_options(session: Any, records: list[Record], push_id: int, since: str, stamp: datetime) -> None:
    """Codes named by records, kept as options unless their code list already gave them a name."""
    named = {(f"{lst}:{code}", name) for r in records for lst, code, name in facts_of.options_named(r)}
    if not named:
        return
    present = set(_stored(session, [("Option", key) for key, _ in named]))
    for key, name in sorted(dict(named).items()):
        if ("Option", key) not in present:
            session.add(
                AggregateFact(
                    kind="Option", key=key, push_id=push_id, since=since, facts={"name": name}, updated_at=stamp
                )
            )
    session.flush()


def _stored(session: Any, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], AggregateFact]:
    rows: dict[tuple[str, str], AggregateFact] = {}
    for chunk in chunks(dict.fromkeys(wanted)):
        query = select(AggregateFact).where(tuple_(AggregateFact.kind, AggregateFact.key).in_(chunk))
        rows.update({(r.kind, r.key): r for r in session.scalars(query)})
    return rows


def _touched(
    lookup: _Lookup, kind: str, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> set[tuple[str, str]]:
    """The roots whose contributions read this record's facts."""
    roots = facts_of.roots(kind, key, old, new)
    label = f"{kind}/{key}"
    if kind == "Location":
        # A village's ward places its insurees, families and the contributions paid by those families.
        for pkey, pfacts in lookup.referring("Patient", label):
            roots |= facts_of.roots("Patient", pkey, None, pfacts)
        for gkey, _ in lookup.referring("Group", label):
            roots.add(("Group", gkey))
            roots |= {("Contract", c) for c, _ in lookup.referring("Contract", f"Group/{gkey}")}
    if kind == "Group":
        roots |= {("Contract", c) for c, _ in lookup.referring("Contract", label)}
    if kind in ("Patient", "Contract", "Coverage"):
        roots |= {("Claim", c) for c, _ in lookup.referring("Claim", label)}
    return roots


def recount(session: Any, roots: Iterable[tuple[str, str]], lookup: Any = None, now: datetime | None = None) -> None:
    """Replace the contributions of these roots with what their facts give now; the months where anything changed,
    old or new, are due (a root counted again to the same contributions makes nothing due)."""
    lookup = lookup or _Lookup(session)
    horizon = current_month(now)
    due: set[tuple[str, str, int]] = set()
    c = AggregateContribution
    for kind, key in sorted(roots):
        mine = (c.root_kind == kind, c.root_key == key)
        columns = (c.data_set, c.org_unit, c.element, c.options, c.attributes, c.first, c.last, c.value)
        before = {tuple(row) for row in session.execute(select(*columns).where(*mine))}
        made, why = contrib.of_root(kind, key, lookup)
        rows = [_row(kind, key, m) for m in made]
        after = {tuple(r[f] for f in _COLUMNS) for r in rows}
        session.execute(
            delete(AggregateUnplaced).where(AggregateUnplaced.root_kind == kind, AggregateUnplaced.root_key == key)
        )
        if why is not None:
            session.add(AggregateUnplaced(root_kind=kind, root_key=key, reason=why[:200]))
        if before == after:
            continue
        session.execute(delete(AggregateContribution).where(*mine))
        if rows:
            session.execute(insert(AggregateContribution), rows)
        for data_set, org_unit, _, _, _, first, last, _ in before ^ after:
            due |= _months(data_set, org_unit, first, last, horizon)
    mark_due(session, due)


_COLUMNS = ("data_set", "org_unit", "element", "options", "attributes", "first", "last", "value")


def _row(kind: str, key: str, c: Contribution) -> dict[str, Any]:
    return {
        "root_kind": kind,
        "root_key": key,
        "data_set": c.data_set,
        "org_unit": c.org_unit,
        "element": c.element,
        "options": "|".join(c.options),
        "attributes": "|".join(c.attributes),
        "first": c.first,
        "last": c.last,
        "value": str(c.value),
    }


def _months(data_set: str, org_unit: str, first: int, last: int | None, horizon: int) -> set[tuple[str, str, int]]:
    end = last if last is not None else max(horizon, first)
    return {(data_set, org_unit, m) for m in range(first, end + 1)}


def mark_due(session: Any, due: Iterable[tuple[str, str, int]], when: datetime | None = None) -> None:
    """These months of these org units are to be sent (again), from now: a dead letter among them goes again too."""
    stamp = when or datetime.now(UTC)
    rows = [
        {
            "data_set": d,
            "org_unit": o,
            "period": p,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": stamp,
            "reasons": [],
            "updated_at": stamp,
        }
        for d, o, p in sorted(due)
    ]
    if not rows:
        return
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for chunk in chunks(rows):
        statement = make(AggregateDue)
        statement = statement.on_conflict_do_update(
            index_elements=["data_set", "org_unit", "period"],
            set_={
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": statement.excluded.next_attempt_at,
                "updated_at": statement.excluded.updated_at,
            },
        )
        session.execute(statement, chunk)


def cells(session: Any, data_set: str, org_unit: str, period: Month) -> dict[Cell, Decimal]:
    """Every non-zero cell of a data set's month on an org unit: the exact sum of its contributions."""
    c = AggregateContribution
    query = select(c.element, c.options, c.attributes, c.value).where(
        c.data_set == data_set,
        c.org_unit == org_unit,
        c.first <= period,
        or_(c.last.is_(None), c.last >= period),
    )
    sums: dict[Cell, Decimal] = {}
    for element, options, attributes, value in session.execute(query):
        cell = (element, options, attributes)
        sums[cell] = sums.get(cell, Decimal(0)) + Decimal(value)
    return {cell: value for cell, value in sums.items() if value != 0}


def units_in(session: Any, period: Month) -> set[tuple[str, str]]:
    """(data set, org unit) with any contribution to a month."""
    c = AggregateContribution
    query = select(c.data_set, c.org_unit).where(c.first <= period, or_(c.last.is_(None), c.last >= period))
    return {(d, o) for d, o in session.execute(query.distinct())}


def unplaced(session: Any) -> Mapping[str, int]:
    """Roots that cannot be counted yet, by reason."""
    counts: dict[str, int] = {}
    for (reason,) in session.execute(select(AggregateUnplaced.reason)):
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def months_known(session: Any, now: datetime | None = None) -> list[Month]:
    """Every month up to the current one that any contribution counts in, or DHIS2 was sent a value for."""
    c = AggregateContribution
    first = session.scalar(select(func.min(c.first)))
    sent = set(session.scalars(select(AggregateSent.period).distinct()))
    if first is None:
        return sorted(sent)
    return sorted(set(range(first, current_month(now) + 1)) | sent)
