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

    def add_stats(self, stats: dict[str, int]) -> None:
        for key, value in stats.items():
            self.stats[key] = self.stats.get(key, 0) + value
