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

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, text, update
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
    Transaction,
)
from mediator.journal.rows import among, chunks
from mediator.openimis.records import Record

Cell = tuple[str, str, str]  # (element, options, attributes), options and attributes joined by "|"


def current_month(now: datetime | None = None) -> Month:
    moment = now or datetime.now(UTC)
    return moment.year * 12 + moment.month - 1


class _Lookup:
    """The facts the contributions read, from the session, fetched in bulk where the roots say what they read
    (`contributions.reads`) and one by one otherwise, remembered for one recount."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.known: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.referrers: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}

    def load(self, pairs: Iterable[tuple[str, str]]) -> None:
        missing = [p for p in pairs if p not in self.known and p[1]]
        f = AggregateFact
        for kind, keys in _by_kind(missing):
            for chunk in chunks(keys):
                self.known.update(dict.fromkeys((kind, key) for key in chunk))
                query = select(f.key, f.facts, f.since).where(f.kind == kind, among(self.session, f.key, chunk))
                for key, facts, since in self.session.execute(query):
                    self.known[(kind, key)] = {**facts, "since": since}

    def load_referring(self, wanted: Iterable[tuple[str, str]]) -> None:
        """(kind, label): the records of a kind that refer to a label."""
        by_kind: dict[str, list[str]] = {}
        for kind, label in dict.fromkeys(wanted):
            if (kind, label) not in self.referrers:
                by_kind.setdefault(kind, []).append(label)
        f, r = AggregateFact, AggregateRef
        for kind, labels in by_kind.items():
            for chunk in chunks(labels):
                found: dict[str, list[tuple[str, dict[str, Any]]]] = {label: [] for label in chunk}
                query = (
                    select(r.ref, f.key, f.facts, f.since)
                    .join(r, (r.kind == f.kind) & (r.key == f.key))
                    .where(r.kind == kind, among(self.session, r.ref, chunk))
                )
                for ref, key, facts, since in self.session.execute(query):
                    found[ref].append((key, {**facts, "since": since}))
                for label, rows in found.items():
                    self.referrers[(kind, label)] = sorted(rows, key=lambda row: row[0])

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        if (kind, key) not in self.known:
            self.load([(kind, key)])
        return self.known.get((kind, key))

    def referring(self, kind: str, label: str) -> list[tuple[str, dict[str, Any]]]:
        if (kind, label) not in self.referrers:
            self.load_referring([(kind, label)])
        return self.referrers[(kind, label)]


def take(
    session: Any,
    push_id: int,
    records: Iterable[Record],
    received_at: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Keep the facts of records a slice decided and count again every root they touch; returns the roots counted.
    `received_at`: when their push came (read from the journal when not given); stocks count from that month."""
    if received_at is None:
        received_at = session.scalar(select(Transaction.received_at).where(Transaction.id == push_id))
        received_at = received_at or datetime.now(UTC)
    since = received_at.replace(tzinfo=received_at.tzinfo or UTC).astimezone(UTC).strftime("%Y-%m")
    stamp = datetime.now(UTC)
    records = list(records)
    found = list({(f.kind, f.key): f for f in map(facts_of.of, records) if f is not None}.values())
    if not found:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        # Workers count one slice at a time: two recounts of one root at once would each replace its old rows
        # and both keep theirs. Held to the end of the transaction (SQLite has one writer anyway).
        session.execute(text("SELECT pg_advisory_xact_lock(7302048)"))
    _name_options(session, records, push_id, since, stamp)
    stored = _stored(session, [(f.kind, f.key) for f in found])
    changed: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]] = []
    fresh, updated, refs = [], [], []
    lookup = _Lookup(session)
    for item in found:
        pushed, kept, first = stored.get((item.kind, item.key), (None, None, since))
        # What the counting will read of it, as the journal holds it once this is written: no need to read it back.
        newer = pushed is not None and pushed > push_id
        lookup.known[(item.kind, item.key)] = {**(kept if newer and kept else item.facts), "since": first}
        if pushed is not None and (newer or kept == item.facts):
            continue  # a newer push brought it, or nothing the aggregates read changed
        row = {"kind": item.kind, "key": item.key, "push_id": push_id, "facts": item.facts, "updated_at": stamp}
        if pushed is None:
            fresh.append({**row, "since": since})
        else:
            updated.append({f"b_{k}": v for k, v in row.items()})
        refs += [{"ref": r, "kind": item.kind, "key": item.key} for r in item.refs]
        changed.append((item.kind, item.key, kept, item.facts))
    if not changed:
        return 0
    table, connection = AggregateFact.__table__, session.connection()
    for chunk in chunks(fresh):
        _insert(session, AggregateFact, chunk)
    if updated:
        replace = (
            table.update()  # type: ignore[attr-defined]
            .where(table.c.kind == bindparam("b_kind"), table.c.key == bindparam("b_key"))
            .values(facts=bindparam("b_facts"), push_id=bindparam("b_push_id"), updated_at=bindparam("b_updated_at"))
        )
        for chunk in chunks(updated):
            connection.execute(replace, chunk)
    for kind, keys in _by_kind((k, key) for k, key, _, _ in changed):
        for chunk in chunks(keys):
            session.execute(
                delete(AggregateRef).where(AggregateRef.kind == kind, among(session, AggregateRef.key, chunk))
            )
    for chunk in chunks(refs):
        _insert(session, AggregateRef, chunk)
    lookup.referrers.clear()  # references just changed: what refers to what is read afresh
    if any(row["kind"] in ("Location", "Option") for row in fresh) or any(
        kind == "Location" for kind, _, _, _ in changed
    ):
        # A month DHIS2 refused for an org unit or an option it lacked may go now: each goes once more.
        d = AggregateDue
        session.execute(
            update(d).where(d.state == "rejected").values(state="pending", next_attempt_at=stamp, updated_at=stamp)
        )
    roots = _touched(lookup, changed)
    recount(session, roots, lookup, now)
    return len(roots)


def _name_options(session: Any, records: list[Record], push_id: int, since: str, stamp: datetime) -> None:
    """Codes named by records, kept as options unless their code list already gave them a name."""
    named = dict(sorted({(f"{lst}:{code}", name) for r in records for lst, code, name in facts_of.options_named(r)}))
    if not named:
        return
    present = set(_stored(session, [("Option", key) for key in named]))
    rows = [
        {"kind": "Option", "key": key, "push_id": push_id, "since": since, "facts": {"name": name}, "updated_at": stamp}
        for key, name in named.items()
        if ("Option", key) not in present
    ]
    for chunk in chunks(rows):
        _insert(session, AggregateFact, chunk)
    if rows:
        d = AggregateDue
        session.execute(
            update(d).where(d.state == "rejected").values(state="pending", next_attempt_at=stamp, updated_at=stamp)
        )


def _by_kind(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(kind, keys) groups: a query by one kind and a list of keys is cheaper to build than one by pairs."""
    grouped: dict[str, list[str]] = {}
    for kind, key in dict.fromkeys(pairs):
        grouped.setdefault(kind, []).append(key)
    return sorted(grouped.items())


def _stored(session: Any, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, dict[str, Any], str]]:
    """(kind, key) -> (the push that brought it, its facts, its first month) of the records the journal has facts
    of."""
    f = AggregateFact
    rows: dict[tuple[str, str], tuple[int, dict[str, Any], str]] = {}
    for kind, keys in _by_kind(wanted):
        for chunk in chunks(keys):
            query = select(f.key, f.push_id, f.facts, f.since).where(f.kind == kind, among(session, f.key, chunk))
            rows.update({(kind, key): (pushed, facts, first) for key, pushed, facts, first in session.execute(query)})
    return rows


def _touched(
    lookup: _Lookup, changed: list[tuple[str, str, dict[str, Any] | None, dict[str, Any]]]
) -> set[tuple[str, str]]:
    """The roots whose contributions read these records' facts."""
    roots: set[tuple[str, str]] = set()
    for kind, key, old, new in changed:
        roots |= facts_of.roots(kind, key, old, new)
    # What reads a new insuree, area or family cannot have been counted without it: it waits, unplaced. With
    # nothing waiting, nobody refers to them yet.
    waiting = lookup.session.scalar(select(AggregateUnplaced.root_key).limit(1)) is not None
    labels = [
        (kind, f"{kind}/{key}")
        for kind, key, old, _ in changed
        if waiting or old is not None or kind not in ("Patient", "Location", "Group")
    ]
    places = [label for kind, label in labels if kind == "Location"]
    # A village's ward places its insurees, families and the contributions paid by those families.
    lookup.load_referring([(k, label) for label in places for k in ("Patient", "Group")])
    families = [label for kind, label in labels if kind == "Group"]
    for label in places:
        for pkey, pfacts in lookup.referring("Patient", label):
            roots |= facts_of.roots("Patient", pkey, None, pfacts)
        families += [f"Group/{gkey}" for gkey, _ in lookup.referring("Group", label)]
        roots |= {("Group", gkey) for gkey, _ in lookup.referring("Group", label)}
    lookup.load_referring(("Contract", label) for label in families)
    for label in families:
        roots |= {("Contract", c) for c, _ in lookup.referring("Contract", label)}
    claimed = [label for kind, label in labels if kind in ("Patient", "Contract", "Coverage")]
    lookup.load_referring(("Claim", label) for label in claimed)
    for label in claimed:
        roots |= {("Claim", c) for c, _ in lookup.referring("Claim", label)}
    return roots


def _prefetch(lookup: _Lookup, roots: list[tuple[str, str]]) -> None:
    """Fetch in bulk what the roots read, a step at a time (a policy's family, then the family's village)."""
    lookup.load(roots)
    for _ in range(3):
        pairs: list[tuple[str, str]] = []
        referring: list[tuple[str, str]] = []
        for kind, key in roots:
            own = lookup.known.get((kind, key))
            if own is not None:
                more, refs = contrib.reads(kind, key, own, lookup.known)
                pairs += [p for p in more if p not in lookup.known]
                referring += [r for r in refs if r not in lookup.referrers]
        if not pairs and not referring:
            return
        lookup.load(pairs)
        lookup.load_referring(referring)


def recount(session: Any, roots: Iterable[tuple[str, str]], lookup: Any = None, now: datetime | None = None) -> None:
    """Replace the contributions of these roots with what their facts give now; the months where anything changed,
    old or new, are due (a root counted again to the same contributions makes nothing due)."""
    lookup = lookup or _Lookup(session)
    horizon = current_month(now)
    due: set[tuple[str, str, int]] = set()
    for kind, keys in _by_kind(roots):
        for part in chunks(keys):
            due |= _recount_part(session, lookup, kind, part, horizon)
    mark_due(session, due)


def _recount_part(session: Any, lookup: _Lookup, kind: str, keys: list[str], horizon: int) -> set[tuple[str, str, int]]:
    c, u = AggregateContribution, AggregateUnplaced
    _prefetch(lookup, [(kind, key) for key in keys])
    before: dict[str, set[tuple[Any, ...]]] = {key: set() for key in keys}
    columns = (c.root_key, c.data_set, c.org_unit, c.element, c.options, c.attributes, c.first, c.last, c.value)
    for row in session.execute(select(*columns).where(c.root_kind == kind, among(session, c.root_key, keys))):
        before[row[0]].add(tuple(row[1:]))
    due: set[tuple[str, str, int]] = set()
    replaced, rows, unplaced = [], [], []
    for key in keys:
        made, why = contrib.of_root(kind, key, lookup)
        if why is not None:
            unplaced.append({"root_kind": kind, "root_key": key, "reason": why[:200]})
        new = _merged(kind, key, made)
        after = {tuple(r[f] for f in _COLUMNS) for r in new}
        if before[key] == after:
            continue
        replaced.append(key)
        rows += new
        for data_set, org_unit, _, _, _, first, last, _ in before[key] ^ after:
            due |= _months(data_set, org_unit, first, last, horizon)
    session.execute(delete(u).where(u.root_kind == kind, among(session, u.root_key, keys)))
    _insert(session, u, unplaced)
    if replaced:
        session.execute(delete(c).where(c.root_kind == kind, among(session, c.root_key, replaced)))
    _insert(session, c, rows)
    return due


def _insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Rows inserted through the table itself: the ORM's bulk path costs more than the insert."""
    if rows:
        session.connection().execute(model.__table__.insert(), rows)


_COLUMNS = ("data_set", "org_unit", "element", "options", "attributes", "first", "last", "value")


def _merged(kind: str, key: str, made: list[Contribution]) -> list[dict[str, Any]]:
    """A root's rows, one per cell and run of months: two equal lines of a claim are one row of twice the value,
    so that comparing a root's rows old and new as sets misses no change."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for c in made:
        row = _row(kind, key, c)
        where = tuple(row[f] for f in _COLUMNS[:-1])
        if where in rows:
            rows[where]["value"] += row["value"]
        else:
            rows[where] = row
    return [r for r in rows.values() if r["value"] != 0]


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
        "value": to_units(c.value),
    }


def _months(data_set: str, org_unit: str, first: int, last: int | None, horizon: int) -> set[tuple[str, str, int]]:
    """The months of a run up to the current one: later months are made due whole when they close."""
    end = horizon if last is None else min(last, horizon)
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
        statement = make(AggregateDue.__table__)  # type: ignore[arg-type]
        statement = statement.on_conflict_do_update(
            index_elements=["data_set", "org_unit", "period"],
            set_={
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": statement.excluded.next_attempt_at,
                "updated_at": statement.excluded.updated_at,
            },
        )
        session.connection().execute(statement, chunk)


UNITS = Decimal(10000)  # contributions are kept in ten-thousandths: integers the database sums exactly


def to_units(value: Decimal) -> int:
    """A value in ten-thousandths (openIMIS keeps amounts and quantities to two decimals)."""
    return int((value * UNITS).to_integral_value(ROUND_HALF_EVEN))


def cells(session: Any, data_set: str, org_unit: str, period: Month) -> dict[Cell, tuple[Decimal, int]]:
    """Every non-zero cell of a data set's month on an org unit: the exact sum of its contributions, and how many
    records it is counted from."""
    c = AggregateContribution
    query = (
        select(c.element, c.options, c.attributes, func.sum(c.value), func.count(c.root_key.distinct()))
        .where(
            c.data_set == data_set,
            c.org_unit == org_unit,
            c.first <= period,
            or_(c.last.is_(None), c.last >= period),
        )
        .group_by(c.element, c.options, c.attributes)
    )
    found = {(e, o, a): (Decimal(int(total)) / UNITS, int(n)) for e, o, a, total, n in session.execute(query)}
    return {cell: value for cell, value in found.items() if value[0] != 0}


def units_in(session: Any, months: Iterable[Month]) -> set[tuple[str, str, Month]]:
    """(data set, org unit, month) of these months with any contribution: one pass over the runs there are."""
    wanted = sorted(set(months))
    if not wanted:
        return set()
    c = AggregateContribution
    query = select(c.data_set, c.org_unit, c.first, c.last).where(c.first <= wanted[-1]).distinct()
    found: set[tuple[str, str, Month]] = set()
    for data_set, org_unit, first, last in session.execute(query):
        start = bisect_left(wanted, first)
        end = len(wanted) if last is None else bisect_right(wanted, last)
        found |= {(data_set, org_unit, m) for m in wanted[start:end]}
    return found


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


def dead_letters(session: Any) -> list[tuple[tuple[str, str, int], list[Any]]]:
    """The org units' months DHIS2 refused, with its reasons: they wait until asked for again or changed."""
    d = AggregateDue
    query = select(d.data_set, d.org_unit, d.period, d.reasons).where(d.state == "rejected").order_by(d.period)
    return [((ds, ou, p), list(reasons or [])) for ds, ou, p, reasons in session.execute(query)]
