"""Sending the monthly aggregates: every due month of a data set on an org unit goes to `POST /api/dataValueSets`
with all its cells, and a cell DHIS2 holds that went to zero (or fell under the small-count threshold) is deleted
there, so sending a month again leaves DHIS2 exactly as the journal counts it.

Each run is a push of its own in the journal (origin `aggregates`): one outcome per org unit's month, every DHIS2 call
with its redacted bodies, in the hash chain like any push. DHIS2 down: the months stay due and are tried again with
backoff. A conflict (an org unit DHIS2 lacks, say): that month is a dead letter with DHIS2's reasons until it is
made due again (`aggregates --period`, or a change to its cells).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import delete, insert, select, update

from mediator.aggregates import cubes
from mediator.aggregates.contributions import month_text
from mediator.aggregates.cubes import DataSet, Options
from mediator.aggregates.metadata import categories
from mediator.aggregates.metadata import payload as metadata_payload
from mediator.answer.orchestrations import call_fields, to_orchestration
from mediator.backoff import exponential
from mediator.config.mapping_file import dhis2_setup
from mediator.config.settings import Settings
from mediator.dhis2 import datavalues
from mediator.dhis2.client import Dhis2Client, Exchange
from mediator.dhis2.datavalues import Value
from mediator.dhis2.errors import Dhis2Error, Dhis2Rejected
from mediator.dhis2.metadata import add_to_collection, get_object, import_metadata, update_option_combos
from mediator.errors import MediatorError
from mediator.journal import aggregates as jagg
from mediator.journal.models import AggregateDue, AggregateFact, AggregateMonth, AggregateSent
from mediator.journal.pulls import PullRunning, release_lease, renew_lease, take_lease
from mediator.journal.rows import chunks, rowcount
from mediator.journal.store import Journal, PushRecord


class AggregatesOff(MediatorError):
    """The monthly aggregates are not counted: nothing to send."""

    http_status = 409
    openhim_status = "Completed"
    fhir_code = "not-supported"
    summary = "the monthly aggregates are off"


class AggregatesBusy(MediatorError):
    """Another process of this journal is sending the aggregates: this call sends nothing; the next may."""

    http_status = 409
    openhim_status = "Completed"
    fhir_code = "conflict"
    retryable = True
    summary = "this call sends nothing"


CHANNEL = "aggregates"
UNITS_PER_REQUEST = 25  # org units' months of one data set and period in one request


@dataclass(frozen=True)
class Target:
    """How the aggregates are written: the UID of an org unit, the format, the small-count threshold."""

    org_unit: Callable[[str], str]
    adx: bool = False
    min_count: int = 0  # cells counted from 1 to min_count - 1 records are not sent (0 or 1: all are)
    retry: timedelta = timedelta(seconds=30)


@dataclass
class AggregateRun:
    transaction_id: int | None = None
    sent: int = 0  # org units' months DHIS2 now holds as counted
    values: int = 0
    deleted: int = 0
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    failure: str | None = None
    calls: int = 0
    exchanges: list[Exchange] = field(default_factory=list)  # every DHIS2 call, for the OpenHIM answer


Unit = tuple[str, str, int]  # (data set, org unit key, month)


def unit_label(unit: Unit) -> str:
    return f"DataValueSet/{unit[0]}/{month_text(unit[2])}/{unit[1]}"


def suppressed(records: int, min_count: int) -> bool:
    """A cell counted from fewer records than the threshold (insurees, families, policies, claims) is not sent."""
    return 0 < records < min_count


class ComboMap:
    """Category option combo UIDs by (category combo, options), read from DHIS2: it makes them itself."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, frozenset[str]], str] = {}

    def load(self, client: Dhis2Client, combos: Iterable[str]) -> None:
        wanted = sorted(set(combos))
        params = {
            "filter": f"categoryCombo.id:in:[{','.join(wanted)}]",
            "fields": "id,categoryCombo[id],categoryOptions[id]",
            "paging": "false",
        }
        status, body = client.request("GET", "/api/categoryOptionCombos", params=params)
        if status != 200 or not isinstance(body, dict):
            raise Dhis2Rejected(f"DHIS2 answered {status} for the category option combos", status)
        for coc in body.get("categoryOptionCombos") or []:
            combo = (coc.get("categoryCombo") or {}).get("id")
            options = frozenset(str(o.get("id")) for o in coc.get("categoryOptions") or [])
            self.known[(str(combo), options)] = str(coc.get("id"))

    def find(self, combo: str | None, options: Iterable[str]) -> str | None:
        if combo is None:
            return DEFAULT_OPTION_COMBO
        return self.known.get((combo, frozenset(cubes.option_uid(o) for o in options)))


DEFAULT_OPTION_COMBO = "HllvX50cXC0"  # DHIS2's own default category option combo, the same in every DHIS2


def code_options(session: Any) -> Options:
    """The products, services and diagnoses the journal has seen, by code, for the categories that list them."""
    found: dict[str, dict[str, str]] = {"product": {}, "service": {}, "diagnosis": {}}
    for key, facts in session.execute(
        select(AggregateFact.key, AggregateFact.facts).where(AggregateFact.kind == "Option")
    ):
        option_set, code = key.split(":", 1)
        if option_set in found:
            found[option_set][code] = str(facts.get("name") or code)
    return Options(**found)


class AggregateSender:
    def __init__(self, journal: Journal, client: Callable[[list[Exchange]], Dhis2Client], target: Target) -> None:
        self.journal = journal
        self.client = client
        self.target = target
        self.combos = ComboMap()
        self.installed: set[str] = set()  # category option UIDs known to be in their categories
        self.assigned: dict[str, set[str]] = {}  # data set UID -> org units assigned
        # When each due month was last made due, as read: a month made due again while it is sent stays due.
        self.stamps: dict[Unit, datetime] = {}

    # --- what is due ---------------------------------------------------------------------------------------------

    def open_closed_months(self, now: datetime | None = None) -> list[int]:
        """Make every cell of each month that closed since the last run due once (the month just closed first)."""
        current = jagg.current_month(now)
        with self.journal.sessions.begin() as session:
            last = session.scalar(select(AggregateMonth.period).order_by(AggregateMonth.period.desc()).limit(1))
            months = list(range((last + 1) if last is not None else current - 1, current))
            jagg.mark_due(session, self._units_of(session, months))
            for m in months:
                session.add(AggregateMonth(period=m, opened_at=datetime.now(UTC)))
        return months

    def make_due(self, months: Iterable[int]) -> None:
        """On demand: every org unit's month of these months is due now, dead letters included."""
        with self.journal.sessions.begin() as session:
            jagg.mark_due(session, self._units_of(session, list(months)))

    @staticmethod
    def _units_of(session: Any, months: list[int]) -> set[Unit]:
        """Every org unit's month of these months that has cells now, or had some DHIS2 was sent."""
        s = AggregateSent
        held = set()
        for chunk in chunks(months):
            query = select(s.data_set, s.org_unit, s.period).where(s.period.in_(chunk)).distinct()
            held |= {(d, o, p) for d, o, p in session.execute(query)}
        return jagg.units_in(session, months) | held

    def due(self, now: datetime | None = None, months: Iterable[int] | None = None) -> list[Unit]:
        """Pending months due by now: closed months only, unless `months` names those wanted."""
        moment = now or datetime.now(UTC)
        d = AggregateDue
        query = select(d.data_set, d.org_unit, d.period, d.updated_at).where(d.state == "pending")
        if months is None:
            query = query.where(AggregateDue.next_attempt_at <= moment, AggregateDue.period < jagg.current_month(now))
        else:
            query = query.where(AggregateDue.period.in_(list(months)))
        with self.journal.sessions() as session:
            found = {(d, o, p): at for d, o, p, at in session.execute(query)}
        self.stamps.update(found)
        return sorted(found)

    # --- sending -------------------------------------------------------------------------------------------------

    def run(
        self,
        now: datetime | None = None,
        months: Iterable[int] | None = None,
        openhim_id: str | None = None,
        client_id: str | None = None,
        renew: Callable[[], bool] | None = None,
    ) -> AggregateRun:
        """Send what is due: on a schedule (closed months, opened as they close), or the months asked. The run is
        a push of the journal, of the OpenHIM transaction that asked for it if any. `renew()` keeps the sender's
        lease before each request; once lost, what is left stays due for whoever holds it now."""
        wanted = None if months is None else sorted(set(months))
        if wanted is None:
            self.open_closed_months(now)
        else:
            self.make_due(wanted)
        units = self.due(now, wanted)
        run = AggregateRun()
        if not units:
            return run
        exchanges: list[Exchange] = []
        outcomes: list[dict[str, Any]] = []
        groups: dict[tuple[str, int], list[Unit]] = {}
        for unit in units:
            groups.setdefault((unit[0], unit[2]), []).append(unit)
        batches = [g[i : i + UNITS_PER_REQUEST] for g in groups.values() for i in range(0, len(g), UNITS_PER_REQUEST)]
        try:
            dhis2 = self.client(exchanges)
            try:
                self._prepare(dhis2, units)
            except Dhis2Rejected as exc:  # DHIS2 will not take the metadata they need: an administrator's matter
                outcomes += self._refuse(units, f"{exc}", run)
                batches = []
            for batch in batches:
                if renew is not None and not renew():
                    run.failure = "another process took over the aggregates lease; it sends the rest"
                    break
                try:
                    outcomes += self._send(dhis2, batch, run)
                except Dhis2Rejected as exc:  # this request refused whole (400, 413...): retrying cannot help
                    outcomes += self._refuse(batch, f"{exc}", run)
        except Dhis2Error as exc:
            run.failure = str(exc)
            done = {o["record"] for o in outcomes}
            left = [u for u in units if unit_label(u) not in done]
            self._retry_later(left, str(exc))
            outcomes += [
                {
                    "record": unit_label(u),
                    "status": "pending",
                    "uids": {},
                    "reasons": [{"field": "", "code": "", "message": str(exc)}],
                }
                for u in left
            ]
        if run.rejected:
            # What this sender learnt of DHIS2 is checked again next time: DHIS2 may have been changed or reset.
            self.combos.known.clear()
            self.installed.clear()
            self.assigned.clear()
        run.transaction_id = self._journal(outcomes, exchanges, run, openhim_id, client_id)
        run.calls, run.exchanges = len(exchanges), exchanges
        return run

    def _refuse(self, units: Sequence[Unit], reason: str, run: AggregateRun) -> list[dict[str, Any]]:
        """These months are dead letters, with the reason: sent again when asked for, or when their cells change."""
        stamp = datetime.now(UTC)
        with self.journal.sessions.begin() as session:
            for unit in units:
                self._settle(session, unit, "rejected", [reason], stamp)
        run.rejected += [(unit_label(u), [reason]) for u in units]
        return [_outcome(u, "rejected", [reason]) for u in units]

    def _settle(self, session: Any, unit: Unit, state: str, reasons: list[str], stamp: datetime) -> bool:
        """Record what became of a due month, unless it was made due again meanwhile (then it stays due)."""
        d = AggregateDue
        where = (d.data_set == unit[0], d.org_unit == unit[1], d.period == unit[2], d.updated_at == self.stamps[unit])
        if state == "sent":
            return rowcount(session.execute(delete(d).where(*where))) == 1
        values = {"state": "rejected", "reasons": [r[:500] for r in reasons[:20]], "updated_at": stamp}
        return rowcount(session.execute(update(d).where(*where).values(**values))) == 1

    def _prepare(self, dhis2: Dhis2Client, units: Sequence[Unit]) -> None:
        """The options the cells name are in their categories, the data sets assigned to the org units, and the
        option combos DHIS2 made for them known."""
        with self.journal.sessions() as session:
            options = code_options(session)
        wanted = {cubes.option_uid(code) for c in _coded() for code, _ in options.of(c)}
        assign: dict[str, set[str]] = {}
        for data_set, org_unit, _ in units:
            assign.setdefault(data_set, set()).add(self.target.org_unit(org_unit))
        if wanted - self.installed:
            existing: dict[str, list[str]] = {}
            listed: set[str] = set()
            for category in _coded():
                found = get_object(dhis2, "categories", category.uid, "categoryOptions[id]")
                have = {str(r.get("id")) for r in (found or {}).get("categoryOptions") or []}
                existing[category.uid], listed = sorted(have), listed | have
            if wanted - listed:  # only what DHIS2 lacks is added, and only then are the option combos made again
                self._install(dhis2, options, existing)
                self.combos.known.clear()
            self.installed |= wanted
        for code, org_units in assign.items():
            chosen = cubes.DATA_SETS[code]
            if not org_units <= self.assigned.get(chosen.uid, set()):
                found = get_object(dhis2, "dataSets", chosen.uid, "organisationUnits[id]") or {}
                have = {str(r.get("id")) for r in found.get("organisationUnits") or []}
                if org_units - have:
                    refused = add_to_collection(
                        dhis2, "dataSets", chosen.uid, "organisationUnits", sorted(org_units - have)
                    )
                    if refused is not None:
                        raise Dhis2Rejected(
                            f"data set {code} ({chosen.uid}) could not be assigned its org units: {refused.message} "
                            "(run `openimis-dhis2-mediator bootstrap`)",
                            refused.status,
                        )
                self.assigned[chosen.uid] = have | org_units
        if not self.target.adx and not self.combos.known:
            self.combos.load(dhis2, _combo_uids())

    def _install(self, dhis2: Dhis2Client, options: Options, existing: dict[str, list[str]]) -> None:
        """Add the code-list options to their categories (the rest of the metadata as bootstrap installs it), then
        have DHIS2 make the option combos."""
        full = metadata_payload(options, {}, existing)
        coded = {c.uid for c in _coded()}
        part = {
            "categoryOptions": full["categoryOptions"],
            "categories": [c for c in full["categories"] if c["id"] in coded],
        }
        report = import_metadata(dhis2, part)
        if report.status == "ERROR" or report.errors:
            details = "; ".join(f"{e.klass} {e.uid}: {e.code} {e.message}" for e in report.errors[:10])
            raise Dhis2Rejected(f"DHIS2 refused the aggregate options: {details or report.status}")
        update_option_combos(dhis2)

    def _values(
        self, session: Any, unit: Unit
    ) -> tuple[list[Value], list[Value], dict[jagg.Cell, Decimal], list[str], dict[jagg.Cell, Decimal]]:
        """(values to import, values to delete, the cells as sent, problems, the cells sent before) of one org
        unit's month."""
        data_set = cubes.DATA_SETS[unit[0]]
        now = jagg.cells(session, *unit)
        kept = {c: v for c, (v, n) in now.items() if not suppressed(n, self.target.min_count)}
        sent_rows = session.execute(
            select(AggregateSent.element, AggregateSent.options, AggregateSent.attributes, AggregateSent.value).where(
                AggregateSent.data_set == unit[0], AggregateSent.org_unit == unit[1], AggregateSent.period == unit[2]
            )
        ).all()
        before = {(e, o, a): Decimal(v) for e, o, a, v in sent_rows}
        put, drop, problems = [], [], []
        for cell, value in sorted(kept.items()):
            made = self._value(data_set, unit, cell, _plain(value))
            if isinstance(made, str):
                problems.append(made)
            else:
                put.append(made)
        for cell in sorted(set(before) - set(kept)):
            made = self._value(data_set, unit, cell, "0")
            if not isinstance(made, str):
                drop.append(made)
        return put, drop, kept, problems, before

    def _value(self, data_set: DataSet, unit: Unit, cell: jagg.Cell, value: str) -> Value | str:
        element = data_set.element(cell[0])
        options = tuple(cell[1].split("|")) if cell[1] else ()
        attributes = tuple(cell[2].split("|")) if cell[2] else ()
        coc = aoc = ""
        if not self.target.adx:
            found_coc = self.combos.find(element.combo_uid, options)
            found_aoc = self.combos.find(data_set.combo_uid, attributes)
            if found_coc is None or found_aoc is None:
                return (
                    f"DHIS2 has no category option combo for {element.code} {'/'.join(options)} "
                    f"{'/'.join(attributes)}: run `openimis-dhis2-mediator bootstrap`"
                )
            coc, aoc = found_coc, found_aoc
        return Value(
            data_element=element.uid,
            period=month_text(unit[2]).replace("-", ""),
            org_unit=self.target.org_unit(unit[1]),
            category_option_combo=coc,
            attribute_option_combo=aoc,
            value=value,
            element_code=element.code,
            options=tuple((c.code, cubes.clean_code(o)) for c, o in zip(element.categories, options, strict=True)),
            attributes=tuple(
                (c.code, cubes.clean_code(o)) for c, o in zip(data_set.attributes, attributes, strict=True)
            ),
        )

    def _send(self, dhis2: Dhis2Client, units: list[Unit], run: AggregateRun) -> list[dict[str, Any]]:
        data_set = cubes.DATA_SETS[units[0][0]]
        with self.journal.sessions() as session:
            made = {u: self._values(session, u) for u in units}
        put = [(u, v) for u in units for v in made[u][0]]
        drop = [(u, v) for u in units for v in made[u][1]]
        refused: dict[Unit, list[str]] = {u: list(made[u][3]) for u in units}
        adx = data_set.code if self.target.adx else None
        stamp = datetime.now(UTC)
        with self.journal.sessions.begin() as session:
            # Before anything is sent, what was sent and what goes now both count as held: should the import or
            # the deletion fail half-way, a later send still deletes what went to zero.
            for unit in units:
                self._sent(session, unit, {**made[unit][4], **made[unit][2]}, stamp)
        for strategy, values in (("CREATE_AND_UPDATE", put), ("DELETE", drop)):
            if not values:
                continue
            summary = datavalues.send(
                dhis2, [v for _, v in values], strategy=strategy, adx_data_set=adx, data_set=data_set.uid
            )
            if summary.status == "ERROR" and not summary.conflicts:
                why = f"DHIS2 refused the import: {summary.description or 'status ERROR'}"
                for owner in {u for u, _ in values}:
                    refused[owner].append(why)
            for conflict in summary.conflicts:
                owners = (
                    [values[conflict.index][0]]
                    if conflict.index is not None and conflict.index < len(values)
                    else units
                )
                for owner in owners:
                    refused[owner].append(conflict.message)
            if strategy == "DELETE":
                run.deleted += summary.counts.get("deleted", 0)
            else:
                run.values += summary.counts.get("imported", 0) + summary.counts.get("updated", 0)
        outcomes = []
        with self.journal.sessions.begin() as session:
            for unit in units:
                reasons = refused[unit]
                if reasons:
                    # Part of it may be in DHIS2 now: what was held before and sent now stays counted as held.
                    run.rejected.append((unit_label(unit), reasons))
                    self._settle(session, unit, "rejected", reasons, stamp)
                    outcomes.append(_outcome(unit, "rejected", reasons))
                    continue
                self._sent(session, unit, made[unit][2], stamp)
                self._settle(session, unit, "sent", [], stamp)  # made due again meanwhile: it goes again
                run.sent += 1
                outcomes.append(_outcome(unit, "delivered", []))
        return outcomes

    @staticmethod
    def _sent(session: Any, unit: Unit, cells: dict[jagg.Cell, Decimal], stamp: datetime) -> None:
        session.execute(
            delete(AggregateSent).where(
                AggregateSent.data_set == unit[0], AggregateSent.org_unit == unit[1], AggregateSent.period == unit[2]
            )
        )
        rows = [
            {
                "data_set": unit[0],
                "org_unit": unit[1],
                "period": unit[2],
                "element": e,
                "options": o,
                "attributes": a,
                "value": _plain(v),
                "sent_at": stamp,
            }
            for (e, o, a), v in cells.items()
        ]
        if rows:
            session.execute(insert(AggregateSent), rows)

    def _retry_later(self, units: Sequence[Unit], error: str) -> None:
        now = datetime.now(UTC)
        with self.journal.sessions.begin() as session:
            for unit in units:
                due = session.get(AggregateDue, unit)
                if due is None:
                    continue
                wait = exponential(due.attempts, self.target.retry.total_seconds(), 3600)
                due.attempts += 1
                due.next_attempt_at = now + timedelta(seconds=wait)
                due.reasons, due.updated_at = [error[:500]], now

    def _journal(
        self,
        outcomes: list[dict[str, Any]],
        exchanges: list[Exchange],
        run: AggregateRun,
        openhim_id: str | None,
        client_id: str | None,
    ) -> int:
        """The run as a push of the journal, decided at once, in the hash chain."""
        now = datetime.now(UTC)
        delivered = sum(1 for o in outcomes if o["status"] == "delivered")
        rejected = sum(1 for o in outcomes if o["status"] == "rejected")
        pending = sum(1 for o in outcomes if o["status"] == "pending")
        if pending:
            status, http_status = "Failed", 503
        elif rejected and delivered:
            status, http_status = "Completed with error(s)", 422
        elif rejected:
            status, http_status = "Completed", 422
        else:
            status, http_status = "Successful", 200
        orchestrations = [to_orchestration(i + 1, ex) for i, ex in enumerate(exchanges)]
        digest = hashlib.sha256("\n".join(sorted(o["record"] for o in outcomes)).encode()).hexdigest()
        push = PushRecord(
            channel=CHANNEL,
            openhim_id=openhim_id,
            client_id=client_id,
            received_at=now,
            body_sha256=digest,
            status=status,
            http_status=http_status,
            received={"DataValueSet": len(outcomes)},
            stats={"values": run.values, "deleted": run.deleted},
            failure=run.failure,
            outcomes=outcomes,
            exchanges=[call_fields(o) for o in orchestrations],
            origin="aggregates",
        )
        return self.journal.write(push)


def _coded() -> list[cubes.Category]:
    return [c for c in categories() if c.code_list]


def _combo_uids() -> set[str]:
    found: set[str] = set()
    for data_set in cubes.DATA_SETS.values():
        if data_set.combo_uid:
            found.add(data_set.combo_uid)
        found |= {e.combo_uid for e in data_set.elements if e.combo_uid}
    return found


def _plain(value: Decimal) -> str:
    """A decimal as DHIS2 reads a number: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def _outcome(unit: Unit, status: str, reasons: list[str]) -> dict[str, Any]:
    return {
        "record": unit_label(unit),
        "status": status,
        "uids": {},
        "reasons": [{"field": "", "code": "", "message": r} for r in reasons[:20]],
    }


LEASE_SOURCE = "aggregates"  # one sender at a time across the processes and instances sharing the journal


def send_aggregates(
    journal: Journal,
    client: Callable[[list[Exchange]], Dhis2Client],
    settings: Settings,
    months: Iterable[int] | None = None,
    now: datetime | None = None,
    sender: AggregateSender | None = None,
    openhim_id: str | None = None,
    client_id: str | None = None,
) -> AggregateRun | None:
    """Send what is due (or the months asked), holding the journal's aggregates lease; None when another process
    holds it (it sends them)."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    try:
        take_lease(journal, LEASE_SOURCE, holder)
    except PullRunning:
        return None
    try:
        if sender is None:
            sender = _sender(journal, settings)
        sender.client, sender.target = client, target(settings)
        renew = partial(renew_lease, journal, LEASE_SOURCE, holder)
        return sender.run(now, months, openhim_id, client_id, renew)
    finally:
        release_lease(journal, LEASE_SOURCE, holder)


# One sender per journal and DHIS2 in a process: what it learnt of DHIS2 (options installed, data sets assigned,
# option combos) is kept from one run to the next.
_SENDERS: dict[tuple[str, str], AggregateSender] = {}


def _sender(journal: Journal, settings: Settings) -> AggregateSender:
    where = (str(journal.engine.url), settings.dhis2_url.rstrip("/"))
    if where not in _SENDERS:
        _SENDERS[where] = AggregateSender(journal, lambda exchanges: _no_client(), target(settings))
    return _SENDERS[where]


def _no_client() -> Dhis2Client:
    raise AssertionError("a sender is given its DHIS2 client by send_aggregates")


def target(settings: Settings) -> Target:
    return Target(
        org_unit=dhis2_setup(settings).org_unit,
        adx=settings.aggregate_format == "adx",
        min_count=settings.aggregate_suppress_below,
        retry=timedelta(seconds=settings.retry_seconds),
    )
