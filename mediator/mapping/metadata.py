"""The DHIS2 metadata the insuree mapping writes into: attributes, option sets, Person type, Family/Insuree program.

No attribute is mandatory: with privacy on, names and numbers are not sent, and DHIS2 would refuse every insuree
(E1018) if they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mediator.mapping import defaults
from mediator.mapping.insuree import InsureeTarget
from mediator.mapping.uids import derive_uid

ATTRIBUTE_SPECS: dict[str, tuple[str, str, str | None]] = {
    # field: (name, valueType, option set field)
    "insuree_id": ("Insuree ID", "TEXT", None),
    "insurance_number": ("Insurance number", "TEXT", None),
    "family_id": ("Family ID", "TEXT", None),
    "birth_date": ("Date of birth", "AGE", None),
    "gender": ("Gender", "TEXT", "gender"),
    "education": ("Education", "TEXT", "education"),
    "profession": ("Profession", "TEXT", "profession"),
    "marital_status": ("Marital status", "TEXT", "marital_status"),
    "is_head": ("Household head", "TEXT", "yes_no"),
    "poverty": ("Poverty status", "TEXT", "yes_no"),
    "family_type": ("Family/Group type", "TEXT", "family_type"),
    "first_service_point": ("First service point", "ORGANISATION_UNIT", None),
    "identification_type": ("Identification type", "TEXT", "identification_type"),
    "identification_number": ("Identification number", "TEXT", None),
    "first_name": ("First name", "TEXT", None),
    "last_name": ("Last name", "TEXT", None),
    "phone": ("Phone number", "PHONE_NUMBER", None),
}
UNIQUE_ATTRIBUTES = frozenset({"insuree_id", "insurance_number"})


def option_sets() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sets, options = [], []
    for uid, name, codes in defaults.OPTION_SETS.values():
        refs = []
        for code, label in codes.items():
            option_uid = derive_uid("option", f"{uid}:{code}")
            options.append({"id": option_uid, "code": code, "name": label, "optionSet": {"id": uid}})
            refs.append({"id": option_uid})
        sets.append({"id": uid, "name": name, "valueType": "TEXT", "options": refs})
    return sets, options


def insuree_metadata(target: InsureeTarget, org_units: Iterable[str] = ()) -> dict[str, Any]:
    """A /api/metadata payload; `org_units` are the villages the program is opened to."""
    sets, options = option_sets()
    attributes = []
    for field_name, uid in target.attributes.items():
        name, value_type, option_field = ATTRIBUTE_SPECS[field_name]
        attr: dict[str, Any] = {
            "id": uid,
            "name": name,
            "shortName": name,
            "valueType": value_type,
            "aggregationType": "NONE",
            "unique": field_name in UNIQUE_ATTRIBUTES,
        }
        if option_field:
            attr["optionSet"] = {"id": defaults.OPTION_SETS[option_field][0]}
        attributes.append(attr)
    program = {
        "id": target.program,
        "name": "Family/Insuree",
        "shortName": "Family/Insuree",
        "programType": "WITH_REGISTRATION",
        "onlyEnrollOnce": True,
        "trackedEntityType": {"id": target.tracked_entity_type},
        "programTrackedEntityAttributes": [
            {"trackedEntityAttribute": {"id": uid}, "mandatory": False, "sortOrder": i}
            for i, uid in enumerate(target.attributes.values())
        ],
        "organisationUnits": [{"id": ou} for ou in org_units],
    }
    tet = {
        "id": target.tracked_entity_type,
        "name": "Person",
        "trackedEntityTypeAttributes": [],
    }
    return {
        "optionSets": sets,
        "options": options,
        "trackedEntityAttributes": attributes,
        "trackedEntityTypes": [tet],
        "programs": [program],
    }
