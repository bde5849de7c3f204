"""The DHIS2 metadata payload that sets up a DHIS2 for the mapping (what `bootstrap` installs).

No attribute or data element is mandatory: with privacy on, names and numbers are not sent, and DHIS2 would refuse
every insuree (E1018) if they were. DHIS2 replaces a whole object on update, so the memberships that data added
(options, program org units, group members) are passed in and kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from mediator.mapping.model import (
    ATTRIBUTES,
    DATA_ELEMENTS,
    OPTION_SETS,
    ORG_UNIT_GROUPS,
    PROGRAMS,
    STAGES,
    Setup,
    ValueDef,
)
from mediator.mapping.uids import derive_uid

Members = Mapping[str, Iterable[str]]  # object UID -> UIDs of its options / org units, as DHIS2 has them now


def option_uid(option_set_uid: str, code: str) -> str:
    return derive_uid("option", f"{option_set_uid}:{code}")


NAME_LENGTH = 230  # DHIS2's longest option name


def option(option_set_uid: str, code: str, name: str, sort_order: int) -> dict[str, Any]:
    return {
        "id": option_uid(option_set_uid, code),
        "code": code,
        "name": name[:NAME_LENGTH],
        "optionSet": {"id": option_set_uid},
        "sortOrder": sort_order,
    }


def distinct_names(names: Mapping[str, str]) -> dict[str, str]:
    """Option names by code, where a name several codes share is followed by the code: DHIS2 shows an option set's
    options by name, and openIMIS has items alike in name (two packs of one drug), which nobody could tell apart."""
    counts = Counter(name.strip() for name in names.values())
    out = {}
    for code, name in names.items():
        if counts[name.strip()] > 1:
            suffix = f" ({code})"
            name = name.strip()[: NAME_LENGTH - len(suffix)] + suffix
        out[code] = name
    return out


def _value_fields(d: ValueDef, setup: Setup, short: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": d.name,
        "shortName": short[:50],
        "valueType": d.value_type,
        "aggregationType": "SUM" if d.value_type == "NUMBER" else "NONE",
    }
    if d.option_set:
        doc["optionSet"] = {"id": setup.option_sets[d.option_set]}
    return doc


def _refs(uids: Iterable[str]) -> list[dict[str, str]]:
    return [{"id": uid} for uid in sorted(set(uids))]


def setup_metadata(setup: Setup, existing: Members | None = None, opened: Members | None = None) -> dict[str, Any]:
    """Everything the mapping writes into. `existing` keeps options and members DHIS2 already has; `opened` adds
    org units to programs and groups (for a test or demo DHIS2 without the metadata channel)."""
    existing = existing or {}
    opened = opened or {}

    def members(uid: str) -> list[dict[str, str]]:
        return _refs([*existing.get(uid, ()), *opened.get(uid, ())])

    option_sets, options = [], []
    for key, d in OPTION_SETS.items():
        uid = setup.option_sets[key]
        fixed = [option(uid, code, name, i + 1) for i, (code, name) in enumerate(d.codes.items())]
        options += fixed
        refs = _refs([*existing.get(uid, ()), *(o["id"] for o in fixed)])
        option_sets.append({"id": uid, "name": d.name, "valueType": "TEXT", "options": refs})
    attributes = [
        {"id": setup.attributes[k], **_value_fields(d, setup, d.name), "unique": d.unique}
        for k, d in ATTRIBUTES.items()
    ]
    data_elements = [
        {"id": setup.data_elements[k], **_value_fields(d, setup, d.name), "domainType": "TRACKER"}
        for k, d in DATA_ELEMENTS.items()
    ]
    stages = [
        {
            "id": setup.stages[k],
            "name": s.name,
            "program": {"id": setup.programs[s.program]},
            "repeatable": True,
            "programStageDataElements": [
                {"dataElement": {"id": setup.data_elements[de]}, "compulsory": False, "sortOrder": i + 1}
                for i, de in enumerate(s.data_elements)
            ],
        }
        for k, s in STAGES.items()
    ]
    programs = []
    for key, p in PROGRAMS.items():
        uid = setup.programs[key]
        programs.append(
            {
                "id": uid,
                "name": p.name,
                "shortName": p.name,
                "programType": "WITH_REGISTRATION",
                "onlyEnrollOnce": p.only_enroll_once,
                "trackedEntityType": {"id": setup.tracked_entity_type},
                "programTrackedEntityAttributes": [
                    {"trackedEntityAttribute": {"id": setup.attributes[a]}, "mandatory": False, "sortOrder": i + 1}
                    for i, a in enumerate(p.attributes)
                ],
                "programStages": _refs(setup.stages[k] for k, s in STAGES.items() if s.program == key),
                "organisationUnits": members(uid),
            }
        )
    groups = [
        {
            "id": setup.org_unit_groups[k],
            "name": name,
            "shortName": name,
            "organisationUnits": members(setup.org_unit_groups[k]),
        }
        for k, (_, name) in ORG_UNIT_GROUPS.items()
    ]
    return {
        "optionSets": option_sets,
        "options": options,
        "trackedEntityAttributes": attributes,
        "trackedEntityTypes": [{"id": setup.tracked_entity_type, "name": "Person", "trackedEntityTypeAttributes": []}],
        "dataElements": data_elements,
        "programStages": stages,
        "programs": programs,
        "organisationUnitGroups": groups,
    }


def member_sources(setup: Setup) -> dict[str, str]:
    """Which DHIS2 collection holds the members `setup_metadata` must keep, by object UID."""
    sources = {setup.option_sets[k]: "optionSets" for k in OPTION_SETS}
    sources.update({setup.programs[k]: "programs" for k in PROGRAMS})
    sources.update({setup.org_unit_groups[k]: "organisationUnitGroups" for k in ORG_UNIT_GROUPS})
    return sources
