"""References inside a Bundle: a resource keyed by its UUID identifier may still be named by its `id`.

openIMIS's IG examples do this (`Organization/RaptaDistrictHospital` for a facility whose UUID is another), so
references are translated to the key of the record they name when that record is in the same Bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mediator.openimis.records import Area, Claim, ClaimReview, Facility, Family, Insuree, Policy, Record

Aliases = Mapping[tuple[str, str], str]  # (resource type, id) -> key
FACILITY = ("Organization", "Location")

# Which fields of which record name which kind of resource.
REFERENCE_FIELDS: dict[type, dict[str, tuple[str, ...]]] = {
    Insuree: {"village_key": ("Location",), "family_key": ("Group",), "first_service_point_key": FACILITY},
    Family: {"village_key": ("Location",), "member_keys": ("Patient",)},
    Area: {"parent_key": ("Location",)},
    Facility: {"district_key": ("Location",)},
    Policy: {"insuree_keys": ("Patient",)},
    Claim: {"patient_key": ("Patient",), "facility_key": FACILITY},
    ClaimReview: {"claim_key": ("Claim",)},
}


def _translate(value: str | None, kinds: tuple[str, ...], aliases: Aliases) -> str | None:
    if value is None:
        return None
    return next((aliases[(k, value)] for k in kinds if (k, value) in aliases), value)


def resolve(record: Record, aliases: Aliases) -> Record:
    if not aliases:
        return record
    changes: dict[str, Any] = {}
    for name, kinds in REFERENCE_FIELDS.get(type(record), {}).items():
        value = getattr(record, name)
        if isinstance(value, tuple):
            changes[name] = tuple(str(_translate(v, kinds, aliases)) for v in value)
        else:
            changes[name] = _translate(value, kinds, aliases)
    if isinstance(record, Claim):
        entries = ("Medication", "ActivityDefinition")
        changes["lines"] = tuple(
            replace(line, entry_key=_translate(line.entry_key, entries, aliases)) for line in record.lines
        )
    return replace(record, **changes)
