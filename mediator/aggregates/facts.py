"""What the aggregates need of a record: a few facts, and the records it refers to. Pure functions, no I/O.

Facts hold no name, number or birth date: an insuree's birth is kept as its year and month, which is all an age on a
month's last day needs. A record's facts replace those of its previous version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from mediator.openimis.records import Area, Claim, ClaimReview, CodeEntry, Family, Insuree, Policy, Record


@dataclass(frozen=True)
class Facts:
    kind: str  # Patient, Group, Location, Contract, Coverage, Claim, ClaimResponse, Option
    key: str
    facts: dict[str, Any]
    refs: tuple[str, ...]  # "Kind/key" of the records whose facts its contribution reads

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.key}"


def month(day: date | None) -> str | None:
    return None if day is None else f"{day.year:04d}-{day.month:02d}"


def _num(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _refs(*labels: tuple[str, str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"{kind}/{key}" for kind, key in labels if key))


def of(record: Record) -> Facts | None:
    """The facts of a record, or None for a kind the aggregates do not read."""
    facts: dict[str, Any]
    if isinstance(record, Insuree):
        facts = {
            "village": record.village_key,
            "family": record.family_key,
            "head": bool(record.is_head),
            "sex": record.gender,
            "born": month(record.birth_date),
        }
        refs = _refs(("Location", record.village_key), ("Group", record.family_key))
        return Facts("Patient", record.key, facts, refs)
    if isinstance(record, Family):
        return Facts("Group", record.key, {"village": record.village_key}, _refs(("Location", record.village_key)))
    if isinstance(record, Area):
        facts = {"parent": record.parent_key, "level": record.level}
        return Facts("Location", record.key, facts, _refs(("Location", record.parent_key)))
    if isinstance(record, CodeEntry):
        return Facts("Option", f"{record.option_set}:{record.code}", {"name": record.name}, ())
    if isinstance(record, Policy) and record.kind == "Contract":
        start = record.effective_date or record.start_date or record.enroll_date
        facts = {
            "family": record.family_key,
            "product": record.product_code,
            "value": _num(record.value),
            "stage": record.stage,
            "start": str(start) if start else None,
            "expiry": str(record.expiry_date) if record.expiry_date else None,
            "premiums": [[str(day), str(amount)] for day, amount in record.premiums],
        }
        return Facts("Contract", record.key, facts, _refs(("Group", record.family_key)))
    if isinstance(record, Policy):
        return Facts("Coverage", record.key, {"product": record.product_code}, ())
    if isinstance(record, Claim):
        facts = {
            "facility": record.facility_key,
            "patient": record.patient_key,
            "policy": record.coverage_key,
            "visit": record.visit_type,
            "icd": record.diagnoses[0][0] if record.diagnoses else None,
            "month": month(record.end or record.start),
            "lines": [
                [line.sequence, line.kind, line.code, _num(line.quantity), _num(line.price)] for line in record.lines
            ],
        }
        refs = _refs(
            ("Patient", record.patient_key), ("Contract", record.coverage_key), ("Coverage", record.coverage_key)
        )
        return Facts("Claim", record.key, facts, refs)
    if isinstance(record, ClaimReview):
        lines = {
            str(line.sequence): [_line_status(line.amounts), _num(line.quantity), _num(line.amounts.get("16"))]
            for line in record.lines
        }
        facts = {"claim": record.claim_key, "status": record.status, "lines": lines}
        return Facts("ClaimResponse", record.key, facts, _refs(("Claim", record.claim_key)))
    return None


def options_named(record: Record) -> list[tuple[str, str, str]]:
    """(code list, code, name) of the codes a record names that a category lists: a claim's diagnoses (openIMIS
    sends no ICD list) and services, a policy's product (in case its code list entry never comes)."""
    if isinstance(record, Claim):
        services = [("service", line.code, line.code) for line in record.lines if line.kind == "service" and line.code]
        return [*(("diagnosis", code, name or code) for code, name in record.diagnoses), *services]
    if isinstance(record, Policy) and record.product_code:
        return [("product", record.product_code, record.product_code)]
    return []


def _line_status(amounts: dict[str, Decimal]) -> str:
    """A line approved once openIMIS checked it, rejected when that is all it says, else not assessed yet."""
    if "4" in amounts or "8" in amounts or "16" in amounts:
        return "APPROVED"
    if "1" in amounts:
        return "REJECTED"
    return "NOT_ASSESSED"


def roots(kind: str, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The records whose contributions read this record directly (besides those that refer to it): a family reads
    its members and policies, which name it; a claim reads its review, which names it."""
    found: set[tuple[str, str]] = set()
    versions = [v for v in (old, new) if v]
    if kind in ("Patient", "Group", "Contract", "Claim"):
        found.add((kind, key))
    if kind in ("Patient", "Contract"):
        found |= {("Group", v["family"]) for v in versions if v.get("family")}
    if kind == "ClaimResponse":
        found |= {("Claim", v["claim"]) for v in versions if v.get("claim")}
    return found


# What each kind of root contributes to (mediator.aggregates.contributions).
ROOT_KINDS = ("Patient", "Group", "Contract", "Claim")
