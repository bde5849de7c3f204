"""Insurees (with what their family says of them) → DHIS2 tracked entities enrolled in Family/Insuree.

Every mapped attribute is sent on every push; a value openIMIS does not have, or that the privacy settings keep
back, is sent as null so DHIS2 clears what an earlier push or setting may have left there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mediator.mapping import defaults
from mediator.mapping.privacy import pseudonym
from mediator.mapping.uids import derive_uid, org_unit_uid, tracked_entity_uid
from mediator.openimis.records import Family, Insuree

UNKNOWN_BIRTH_DATE = date(1900, 1, 1)


@dataclass(frozen=True)
class InsureeTarget:
    """Where and how insurees land in DHIS2: UIDs and the privacy choices of the channel."""

    tracked_entity_type: str = defaults.PERSON_TRACKED_ENTITY_TYPE
    program: str = defaults.INSUREE_PROGRAM
    attributes: Mapping[str, str] = field(default_factory=lambda: dict(defaults.INSUREE_ATTRIBUTES))
    send_names: bool = False
    send_phone: bool = False
    send_identification_number: bool = False
    birth_date_precision: str = "year"
    pseudonym_key: str = field(default="", repr=False)
    uid_scheme: str = (
        "mediator"  # or "openimis-etl": tracked entity and org unit UIDs as openIMIS's own module made them
    )


@dataclass(frozen=True)
class MappedInsuree:
    """One insuree's DHIS2 objects: what is sent, and the UIDs that identify it in DHIS2."""

    key: str
    tracked_entity: dict[str, Any]

    @property
    def uids(self) -> dict[str, str]:
        enrollment = self.tracked_entity["enrollments"][0]
        return {
            "trackedEntity": self.tracked_entity["trackedEntity"],
            "enrollment": enrollment["enrollment"],
            "orgUnit": enrollment["orgUnit"],  # where policies and claims of the insuree go, known without asking
        }


def enrollment_uid(insuree_key: str, program: str) -> str:
    return derive_uid(f"enrollment:{program}", insuree_key)


def _flag(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


def _birth_date(value: date | None, precision: str) -> date | None:
    if value is None or precision == "full":
        return value
    return date(value.year, 1, 1)


def attribute_values(insuree: Insuree, family: Family | None, target: InsureeTarget) -> dict[str, str | None]:
    """The value of each insuree field as DHIS2 stores it (option codes, ISO dates, pseudonyms); None clears.

    Family attributes are only there when the push says them (the family, or at least its id): a bare Patient
    without a family reference leaves them as they are.
    """
    birth = _birth_date(insuree.birth_date, target.birth_date_precision)
    number = insuree.insurance_number
    family_key = insuree.family_key or (family.key if family else None)
    values: dict[str, str | None] = {
        "insuree_id": insuree.key,
        "insurance_number": (
            pseudonym(target.pseudonym_key, number, "insurance_number") if number and target.pseudonym_key else None
        ),
        "birth_date": birth.isoformat() if birth else None,
        "gender": insuree.gender,
        "education": insuree.education,
        "profession": insuree.profession,
        "marital_status": insuree.marital_status,
        "is_head": _flag(insuree.is_head),
        "first_service_point": (
            org_unit_uid(insuree.first_service_point_key, target.uid_scheme)
            if insuree.first_service_point_key
            else None
        ),
        "identification_type": insuree.identification_type,
        "identification_number": insuree.identification_number if target.send_identification_number else None,
        "first_name": insuree.first_name if target.send_names else None,
        "last_name": insuree.last_name if target.send_names else None,
        "phone": insuree.phone if target.send_phone else None,
    }
    if family is not None:
        values.update(family_values(family))
    elif family_key:
        values["family_id"] = derive_uid("family", family_key)
    return values


def family_values(family: Family) -> dict[str, str | None]:
    """What a family says of each of its members."""
    return {
        "family_id": derive_uid("family", family.key),
        "poverty": _flag(family.poverty),
        "family_type": family.family_type,
    }


def map_insuree(insuree: Insuree, family: Family | None, target: InsureeTarget) -> MappedInsuree:
    values = attribute_values(insuree, family, target)
    attributes = [
        {"attribute": uid, "value": values[name]} for name, uid in target.attributes.items() if name in values
    ]
    org_unit = org_unit_uid(insuree.village_key, target.uid_scheme)
    # openIMIS's Patient carries no registration date. The enrollment needs a date that a resend does not change
    # and that tells no more than the attributes: 1 January of the birth year.
    enrolled = date((insuree.birth_date or UNKNOWN_BIRTH_DATE).year, 1, 1).isoformat()
    te_uid = tracked_entity_uid(insuree.key, target.uid_scheme)
    enrollment = {
        "enrollment": enrollment_uid(insuree.key, target.program),
        "program": target.program,
        "trackedEntity": te_uid,
        "orgUnit": org_unit,
        "enrolledAt": enrolled,
        "occurredAt": enrolled,
        "status": "ACTIVE",
        "attributes": attributes,
    }
    tracked_entity = {
        "trackedEntity": te_uid,
        "trackedEntityType": target.tracked_entity_type,
        "orgUnit": org_unit,
        "attributes": [],
        "enrollments": [enrollment],
    }
    return MappedInsuree(key=insuree.key, tracked_entity=tracked_entity)


def families_by_member(families: Iterable[Family]) -> dict[str, Family]:
    return {member: fam for fam in families for member in fam.member_keys}


def map_insurees(insurees: Iterable[Insuree], families: Iterable[Family], target: InsureeTarget) -> list[MappedInsuree]:
    """Insurees of one push; a family in the same push gives its members their family attributes."""
    by_key = {f.key: f for f in families}
    by_member = families_by_member(by_key.values())
    mapped = []
    for insuree in insurees:
        family = by_key.get(insuree.family_key or "") or by_member.get(insuree.key)
        mapped.append(map_insuree(insuree, family, target))
    return mapped
