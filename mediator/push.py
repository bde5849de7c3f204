"""One push from openIMIS: read → validate → map → deliver to DHIS2 → per-record outcome.

Records are atomic, a push is not: DHIS2 imports each batch all-or-nothing (atomicMode=ALL); when it refuses some
objects, the records they belong to are set aside as rejected and the rest of the batch is sent again. So no
insuree is ever half-written (a tracked entity without its enrollment), and one bad record does not hold back the
others. Bad input, by contrast, stops the whole push before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Error, Dhis2Rejected
from mediator.dhis2.tracker import ImportReport, ObjectError, import_tracker
from mediator.mapping.insuree import InsureeTarget, MappedInsuree, map_insurees
from mediator.openimis.reader import Problem, Reading
from mediator.openimis.records import Family, Insuree
from mediator.redact import redact_message

# Which part of the openIMIS record a DHIS2 error code points at.
FIELD_OF_CODE = {
    "E1000": "address (village): the DHIS2 user may not write to this org unit",
    "E1011": "address (village): no such org unit in DHIS2",
    "E1049": "address (village): no such org unit in DHIS2",
    "E1070": "address (village): no such org unit in DHIS2",
    "E1005": "tracked entity type",
    "E1069": "program",
    "E1015": "enrollment",
}


@dataclass(frozen=True)
class Reason:
    field: str
    code: str
    message: str


@dataclass
class RecordOutcome:
    record: str  # "Patient/<key>"
    status: str  # delivered | rejected | pending
    uids: dict[str, str] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class PushResult:
    problems: list[Problem] = field(default_factory=list)
    outcomes: list[RecordOutcome] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    failure: Dhis2Error | None = None
    received: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def _field_for(error: ObjectError, attribute_names: Mapping[str, str]) -> str:
    for uid in re.findall(r"[A-Za-z][A-Za-z0-9]{10}", error.message):
        if uid in attribute_names:
            return attribute_names[uid]
    return FIELD_OF_CODE.get(error.code, error.tracker_type.lower() or "record")


def _add_stats(total: dict[str, int], report: ImportReport) -> None:
    for kind, stats in report.type_stats.items():
        for name in ("created", "updated", "ignored"):
            key = f"{kind.lower()}_{name}"
            total[key] = total.get(key, 0) + int(stats.get(name, 0))


def _deliver_batch(
    client: Dhis2Client, batch: list[MappedInsuree], attribute_names: Mapping[str, str], result: PushResult
) -> None:
    """Import one batch until DHIS2 takes what is left; every round sets aside at least one refused record."""
    pending = batch
    known = {uid for m in batch for uid in m.uids.values()}
    while pending:
        try:
            report = import_tracker(client, {"trackedEntities": [m.tracked_entity for m in pending]})
        except Dhis2Rejected as exc:
            # DHIS2 refused the request as a whole: sending it again cannot help.
            reason = Reason("record", "", redact_message(str(exc), known))
            result.outcomes += [RecordOutcome(f"Patient/{m.key}", "rejected", m.uids, [reason]) for m in pending]
            return
        _add_stats(result.stats, report)
        if report.status != "ERROR":
            result.outcomes += [RecordOutcome(f"Patient/{m.key}", "delivered", m.uids) for m in pending]
            return
        owner = {uid: m for m in pending for uid in m.uids.values()}
        refused: dict[str, list[Reason]] = {}
        for err in report.errors:
            m = owner.get(err.uid)
            if m is not None:
                reason = Reason(_field_for(err, attribute_names), err.code, redact_message(err.message, known))
                refused.setdefault(m.key, []).append(reason)
        if not refused:
            # DHIS2 refused the batch without naming an object of ours: nothing was written.
            reasons = [Reason("record", e.code, redact_message(e.message, known)) for e in report.errors]
            result.outcomes += [RecordOutcome(f"Patient/{m.key}", "rejected", m.uids, reasons) for m in pending]
            return
        result.outcomes += [
            RecordOutcome(f"Patient/{m.key}", "rejected", m.uids, refused[m.key]) for m in pending if m.key in refused
        ]
        pending = [m for m in pending if m.key not in refused]


def deliver_insurees(
    client: Dhis2Client,
    mapped: list[MappedInsuree],
    target: InsureeTarget,
    batch_size: int,
    result: PushResult,
) -> None:
    attribute_names = {uid: f"attribute {name}" for name, uid in target.attributes.items()}
    for start in range(0, len(mapped), batch_size):
        _deliver_batch(client, mapped[start : start + batch_size], attribute_names, result)


def push(
    reading: Reading,
    target: InsureeTarget,
    client_factory: Callable[[], Dhis2Client],
    batch_size: int,
) -> PushResult:
    result = PushResult(problems=list(reading.problems), received=dict(reading.resource_counts))
    if result.problems:
        return result
    insurees = [r for r in reading.records if isinstance(r, Insuree)]
    families = [r for r in reading.records if isinstance(r, Family)]
    mapped = map_insurees(insurees, families, target)
    try:
        if mapped:
            deliver_insurees(client_factory(), mapped, target, batch_size, result)
    except Dhis2Error as exc:
        # DHIS2 unreachable, not configured or refusing the credentials: what was not decided waits for a retry.
        result.failure = exc
        done = {o.record for o in result.outcomes}
        result.outcomes += [
            RecordOutcome(f"Patient/{m.key}", "pending", m.uids) for m in mapped if f"Patient/{m.key}" not in done
        ]
    by_record = {o.record: o.status for o in result.outcomes}
    result.outcomes += [_family_outcome(f, by_record) for f in families]
    return result


def _family_outcome(family: Family, insuree_status: Mapping[str, str]) -> RecordOutcome:
    """A family lives in DHIS2 as attributes of its members, so its fate is that of its members in this push."""
    statuses = {insuree_status.get(f"Patient/{k}") for k in family.member_keys} - {None}
    record = f"Group/{family.key}"
    if "delivered" in statuses:
        return RecordOutcome(record, "delivered")
    if "pending" in statuses:
        return RecordOutcome(record, "pending")
    why = "DHIS2 refused all its members" if statuses else "none of its members is in this push"
    return RecordOutcome(record, "rejected", reasons=[Reason("member", "", f"family attributes not written: {why}")])
