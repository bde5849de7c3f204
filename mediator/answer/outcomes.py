"""What became of each record of a push: the vocabulary shared by delivery and the answer to OpenHIM."""

from __future__ import annotations

from dataclasses import dataclass, field

from mediator.dhis2.errors import Dhis2Error
from mediator.openimis.reader import Problem


@dataclass(frozen=True)
class Reason:
    field: str
    code: str
    message: str


@dataclass
class RecordOutcome:
    record: str  # "Patient/<key>"
    status: str  # delivered | rejected | pending | unchanged (DHIS2 already has this content: nothing was sent)
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

    def add_stats(self, stats: dict[str, int]) -> None:
        for key, value in stats.items():
            self.stats[key] = self.stats.get(key, 0) + value


def mirror_twins(records: list[tuple[str, str]], result: PushResult) -> None:
    """Two resources for one openIMIS object (Location and Organization, Coverage and Contract) share one fate.

    `records` are (resource type, key) pairs of the push; a pair without an outcome takes its twin's.
    """
    kinds = {kind for kind, _ in records}
    decided = {o.record for o in result.outcomes}
    by_key = {o.record.split("/", 1)[1]: o for o in result.outcomes if o.record.split("/", 1)[0] in kinds}
    for kind, key in records:
        record = f"{kind}/{key}"
        if record not in decided and key in by_key:
            twin = by_key[key]
            result.outcomes.append(RecordOutcome(record, twin.status, dict(twin.uids), list(twin.reasons)))
            decided.add(record)


def final_status(in_dhis2: int, rejected: int) -> str:
    """The OpenHIM transaction status of a decided push, from how many of its records DHIS2 holds (delivered now or
    unchanged since an earlier push) and how many were refused."""
    if rejected == 0:
        return "Successful"
    return "Completed with error(s)" if in_dhis2 else "Completed"
