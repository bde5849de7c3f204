"""openIMIS locations and health facilities → DHIS2 org units, groups, and the programs open to them.

Hierarchy: root → region → district → ward → village, with facilities under their district. Names follow
openIMIS's own module ("<code> - <name>"); the org unit code is the openIMIS code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from mediator.mapping.model import Setup
from mediator.openimis.records import Area, Facility

OPENING_DATE = "1970-01-01"
AREA_GROUPS = {"R": "region", "D": "district", "W": "ward", "V": "village"}
FACILITY_GROUPS = {"H": "hospital", "D": "dispensary", "C": "health_centre"}
LEGAL_FORM_GROUPS = {"G": "legal_form_government", "P": "legal_form_private", "C": "legal_form_charity"}


def merge_facilities(facilities: Iterable[Facility]) -> list[Facility]:
    """One facility per key: its Location says where it is, its Organization may add level and legal form."""
    merged: dict[str, Facility] = {}
    for f in facilities:
        seen = merged.get(f.key)
        if seen is None:
            merged[f.key] = f
            continue
        merged[f.key] = replace(
            seen,
            kind="Location" if "Location" in (seen.kind, f.kind) else seen.kind,
            code=seen.code or f.code,
            level=seen.level or f.level,
            legal_form=seen.legal_form or f.legal_form,
            district_key=seen.district_key or f.district_key,
        )
    return list(merged.values())


def _org_unit(uid: str, code: str | None, name: str, parent_uid: str) -> dict[str, Any]:
    label = f"{code} - {name}" if code else name
    doc: dict[str, Any] = {
        "id": uid,
        "name": label[:230],
        "shortName": label[:50],
        "openingDate": OPENING_DATE,
        "parent": {"id": parent_uid},
    }
    if code:
        doc["code"] = code[:50]
    return doc


def area_org_unit(area: Area, setup: Setup) -> dict[str, Any]:
    parent = setup.org_unit(area.parent_key) if area.parent_key else setup.root_org_unit
    return _org_unit(setup.org_unit(area.key), area.code, area.name, parent)


def facility_org_unit(facility: Facility, district_uid: str, setup: Setup) -> dict[str, Any]:
    return _org_unit(setup.org_unit(facility.key), facility.code, facility.name, district_uid)


def area_memberships(area: Area, setup: Setup) -> list[tuple[str, str, str]]:
    """(collection, owner UID, org unit UID) pairs: the area's group, and the insuree program for a village."""
    uid = setup.org_unit(area.key)
    pairs = [("organisationUnitGroups", setup.org_unit_groups[AREA_GROUPS[area.level]], uid)]
    if area.level == "V":
        pairs.append(("programs", setup.programs["insuree"], uid))
    return pairs


def facility_memberships(facility: Facility, setup: Setup) -> list[tuple[str, str, str]]:
    """The facility's level and legal form groups, and the claims program (claims are enrolled on facilities)."""
    uid = setup.org_unit(facility.key)
    pairs = [("programs", setup.programs["claim"], uid)]
    if facility.level in FACILITY_GROUPS:
        pairs.append(("organisationUnitGroups", setup.org_unit_groups[FACILITY_GROUPS[facility.level]], uid))
    if facility.legal_form:
        group = LEGAL_FORM_GROUPS.get(facility.legal_form, "legal_form_other")
        pairs.append(("organisationUnitGroups", setup.org_unit_groups[group], uid))
    return pairs
