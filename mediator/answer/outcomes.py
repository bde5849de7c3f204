"""What became of each record of a push: the vocabulary shared by delivery and the answer to OpenHIM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    # delivered | rejected | pending | unchanged (DHIS2 already has this content: nothing was sent) | aggregated
    # (aggregate-only: counted into the monthly aggregates, never sent as an individual record)
    status: str
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


@dataclass(frozen=True)
class PushSummary:
    """What a decided push came to, as the journal knows it (mediator.journal.summary reads it)."""

    channel: str
    status: str  # the OpenHIM transaction status the journal decided
    http_status: int
    received: dict[str, int] = field(default_factory=dict)  # resources by type
    stats: dict[str, int] = field(default_factory=dict)  # what DHIS2 created, updated, ...
    states: dict[str, int] = field(default_factory=dict)  # records by journal state
    input_rejected: int = 0  # refused on input (never kept as work)
    rejected: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # the first MAX_LISTED, reasons
    chain_head: str = ""  # the journal's hash chain head once the push was decided (seq:hash)

    @property
    def counts(self) -> dict[str, int]:
        """Records delivered, unchanged, rejected and pending, as the answer to OpenHIM counts them."""
        return {
            "delivered": self.states.get("delivered", 0),
            "unchanged": self.states.get("duplicate", 0),
            "rejected": self.states.get("rejected", 0) + self.input_rejected,
            "pending": self.states.get("pending", 0),
            "aggregated": self.states.get("aggregated", 0),
        }


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
