"""The DHIS2 setup the mapping writes into: programs, stages, data elements, attributes, option sets, groups.

Every object has a key (what the mapping calls it) and a UID. The defaults are the UIDs of openIMIS's own DHIS2
metadata package, so a DHIS2 set up by that package keeps working; objects the package lacks get UIDs derived from
their key. A mapping file can point any key at another UID (see `with_overrides`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from mediator.mapping import defaults
from mediator.mapping.uids import derive_uid, is_uid, org_unit_uid, tracked_entity_uid


def _new(key: str) -> str:
    return derive_uid("metadata", key)


@dataclass(frozen=True)
class OptionSetDef:
    uid: str
    name: str
    codes: Mapping[str, str] = field(default_factory=dict)  # fixed code lists; others come from openIMIS data


@dataclass(frozen=True)
class ValueDef:
    """A tracked entity attribute or a data element."""

    uid: str
    name: str
    value_type: str = "TEXT"
    option_set: str | None = None  # key into OPTION_SETS
    unique: bool = False


@dataclass(frozen=True)
class StageDef:
    uid: str
    name: str
    program: str  # key into PROGRAMS
    data_elements: tuple[str, ...]  # keys into DATA_ELEMENTS


@dataclass(frozen=True)
class ProgramDef:
    uid: str
    name: str
    attributes: tuple[str, ...]  # keys into ATTRIBUTES
    only_enroll_once: bool


OPTION_SETS: dict[str, OptionSetDef] = {
    key: OptionSetDef(uid, name, codes) for key, (uid, name, codes) in defaults.OPTION_SETS.items()
} | {
    "product": OptionSetDef("kCdTMGqxLGE", "Product"),
    "diagnosis": OptionSetDef("Gg8QVWm9zPh", "ICD"),
    "item": OptionSetDef("V2nNlKHYNHE", "Item"),
    "service": OptionSetDef("FxKDNqNDuri", "Service"),
    "policy_stage": OptionSetDef("zLZHZ23HmuU", "Policy stage", {"N": "New", "R": "Renewed"}),
    "policy_status": OptionSetDef(
        "FoPRPKtuyOn", "Policy status", {"1": "Idle", "2": "Active", "4": "Suspended", "8": "Expired"}
    ),
    "claim_status": OptionSetDef(
        "b1dkHxgN4Yy",
        "Claim status",
        {"1": "Rejected", "2": "Entered", "4": "Checked", "8": "Processed", "16": "Valuated"},
    ),
    "visit_type": OptionSetDef("Ors8DKWKcj8", "Visit type", {"E": "Emergency", "R": "Referral", "O": "Other"}),
}

_ATTRIBUTE_SPECS: dict[str, tuple[str, str, str | None, bool]] = {
    # key: (name, valueType, option set, unique)
    "insuree_id": ("Insuree ID", "TEXT", None, True),
    "insurance_number": ("Insurance number", "TEXT", None, True),
    "family_id": ("Family ID", "TEXT", None, False),
    "birth_date": ("Date of birth", "AGE", None, False),
    "gender": ("Gender", "TEXT", "gender", False),
    "education": ("Education", "TEXT", "education", False),
    "profession": ("Profession", "TEXT", "profession", False),
    "marital_status": ("Marital status", "TEXT", "marital_status", False),
    "is_head": ("Household head", "TEXT", "yes_no", False),
    "poverty": ("Poverty status", "TEXT", "yes_no", False),
    "family_type": ("Family/Group type", "TEXT", "family_type", False),
    "first_service_point": ("First service point", "ORGANISATION_UNIT", None, False),
    "identification_type": ("Identification type", "TEXT", "identification_type", False),
    "identification_number": ("Identification number", "TEXT", None, False),
    "first_name": ("First name", "TEXT", None, False),
    "last_name": ("Last name", "TEXT", None, False),
    "phone": ("Phone number", "PHONE_NUMBER", None, False),
}
ATTRIBUTES: dict[str, ValueDef] = {
    key: ValueDef(defaults.INSUREE_ATTRIBUTES[key], name, vt, os, unique)
    for key, (name, vt, os, unique) in _ATTRIBUTE_SPECS.items()
}

_DATA_ELEMENT_SPECS: dict[str, tuple[str | None, str, str, str | None]] = {
    # key: (UID in openIMIS's package or None for a derived one, name, valueType, option set)
    "policy.stage": ("j028KRFsjx6", "Policy stage", "TEXT", "policy_stage"),
    "policy.status": ("Q0pEucwW60Z", "Policy status", "TEXT", "policy_status"),
    "policy.product": ("NAdBLHAdOGv", "Product", "TEXT", "product"),
    "policy.id": ("NtslGBEMyMy", "Policy ID", "TEXT", None),
    "policy.value": ("mVeMk0sNLZb", "Policy value", "NUMBER", None),
    "policy.start_date": ("h2Ck7EyokyI", "Policy start date", "DATE", None),
    "policy.effective_date": ("zrfmkobtJfx", "Policy effective date", "DATE", None),
    "policy.expiry_date": ("RzgHQtgsmfB", "Policy expiry date", "DATE", None),
    "claim.status": ("mGCsTQbv7zA", "Claim status", "TEXT", "claim_status"),
    "claim.claimed": ("QINoEjSZ9Hs", "Claim amount", "NUMBER", None),
    "claim.approved": ("TiZrzsT8088", "Approved amount", "NUMBER", None),
    "claim.adjusted": ("GGZy5cV04QQ", "Adjusted amount", "NUMBER", None),
    "claim.valuated": ("Fk7sSgbFTaG", "Valuated amount", "NUMBER", None),
    "claim.checked_date": ("kbPqkHGEuwz", "Claim checked date", "DATE", None),
    "claim.rejection_date": ("Gm7DjQrYpdH", "Claim rejection date", "DATE", None),
    "claim.processed_date": ("QKPo84kaoMm", "Claim processed date", "DATE", None),
    "claim.valuation_date": ("HbDPuVexDLj", "Claim valuation date", "DATE", None),
    "claim.code": (None, "Claim code", "TEXT", None),
    "claim.visit_type": (None, "Claim visit type", "TEXT", "visit_type"),
    "claim.diagnosis": (None, "Main diagnosis", "TEXT", "diagnosis"),
    "claim.diagnosis_1": (None, "Secondary diagnosis 1", "TEXT", "diagnosis"),
    "claim.diagnosis_2": (None, "Secondary diagnosis 2", "TEXT", "diagnosis"),
    "claim.diagnosis_3": (None, "Secondary diagnosis 3", "TEXT", "diagnosis"),
    "claim.diagnosis_4": (None, "Secondary diagnosis 4", "TEXT", "diagnosis"),
    "line.sequence": ("QmuynKAhycW", "Sequence ID", "TEXT", None),
    "service.code": ("UWkyb5W46zn", "Claimed service", "TEXT", "service"),
    "service.quantity": ("nJ0sT27I9LL", "Service quantity", "NUMBER", None),
    "service.price": ("uwGg814hDhB", "Service price", "NUMBER", None),
    "service.approved": ("PWX6sv2o9DE", "Approved amount - Service", "NUMBER", None),
    "service.adjusted": ("vIkmxPdZpUT", "Adjusted amount - Service", "NUMBER", None),
    "service.valuated": ("EkThw1XPN1F", "Valuated amount - Service", "NUMBER", None),
    "item.code": ("VFWCqLKPuSd", "Claimed item", "TEXT", "item"),
    "item.quantity": ("xBdXypAmk7V", "Item quantity", "NUMBER", None),
    "item.price": ("Gu1DbTMoVGx", "Item price", "NUMBER", None),
    "item.approved": (None, "Approved amount - Item", "NUMBER", None),
    "item.adjusted": (None, "Adjusted amount - Item", "NUMBER", None),
    "item.valuated": (None, "Valuated amount - Item", "NUMBER", None),
}
DATA_ELEMENTS: dict[str, ValueDef] = {
    key: ValueDef(uid or _new(f"dataElement:{key}"), name, vt, os)
    for key, (uid, name, vt, os) in _DATA_ELEMENT_SPECS.items()
}

PROGRAMS: dict[str, ProgramDef] = {
    "insuree": ProgramDef(defaults.INSUREE_PROGRAM, "Family/Insuree", tuple(ATTRIBUTES), True),
    "claim": ProgramDef("vPjOO7Jl6jC", "Claims management", (), False),
}


def _stage_elements(prefix: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return extra + tuple(k for k in DATA_ELEMENTS if k.startswith(prefix))


STAGES: dict[str, StageDef] = {
    "policy": StageDef("DVRNDUNwI9s", "Policy details", "insuree", _stage_elements("policy.")),
    "claim_details": StageDef("J6HPLSiv7Ij", "Claim details", "claim", _stage_elements("claim.")),
    "claim_services": StageDef(
        "u7wtwsIJ3Dz", "Claim - Services", "claim", _stage_elements("service.", ("line.sequence",))
    ),
    "claim_items": StageDef("GfHayuoGJLr", "Claim - Items", "claim", _stage_elements("item.", ("line.sequence",))),
}

ORG_UNIT_GROUPS: dict[str, tuple[str, str]] = {
    # key: (UID used by openIMIS's module, name)
    "region": ("UMRPiQP7N4v", "Region"),
    "district": ("TMRPiQP7N4v", "District"),
    "ward": ("TMRPiQP8N4v", "Ward"),
    "village": ("TMRPiQT7N4v", "Village"),
    "hospital": ("WMRPiQP7N4v", "Hospitals"),
    "dispensary": ("XMRPiQP7N4v", "Dispensary"),
    "health_centre": ("YMRPiQP7N4v", "Health centre"),
    "legal_form_government": (_new("group:legal:G"), "Legal form: Government"),
    "legal_form_private": (_new("group:legal:P"), "Legal form: Private"),
    "legal_form_charity": (_new("group:legal:C"), "Legal form: Charity"),
    "legal_form_other": (_new("group:legal:O"), "Legal form: Other"),
}


@dataclass(frozen=True)
class Setup:
    """The UIDs of one DHIS2 setup, by key. `Setup()` is the default setup that `bootstrap` installs."""

    tracked_entity_type: str = defaults.PERSON_TRACKED_ENTITY_TYPE
    root_org_unit: str = "ImspTQPwCqd"
    programs: Mapping[str, str] = field(default_factory=lambda: {k: v.uid for k, v in PROGRAMS.items()})
    stages: Mapping[str, str] = field(default_factory=lambda: {k: v.uid for k, v in STAGES.items()})
    attributes: Mapping[str, str] = field(default_factory=lambda: {k: v.uid for k, v in ATTRIBUTES.items()})
    data_elements: Mapping[str, str] = field(default_factory=lambda: {k: v.uid for k, v in DATA_ELEMENTS.items()})
    option_sets: Mapping[str, str] = field(default_factory=lambda: {k: v.uid for k, v in OPTION_SETS.items()})
    org_unit_groups: Mapping[str, str] = field(default_factory=lambda: {k: v[0] for k, v in ORG_UNIT_GROUPS.items()})
    uid_scheme: str = "mediator"  # or "openimis-etl", for a DHIS2 that openIMIS's own module filled

    def org_unit(self, location_key: str) -> str:
        return org_unit_uid(location_key, self.uid_scheme)

    def tracked_entity(self, insuree_key: str) -> str:
        return tracked_entity_uid(insuree_key, self.uid_scheme)

    def with_overrides(self, overrides: Mapping[str, object]) -> Setup:
        """A setup with some UIDs replaced, as a mapping file gives them; raises ValueError naming bad entries."""
        problems: list[str] = []
        changes: dict[str, object] = {}
        for section, value in overrides.items():
            current = getattr(self, section, None)
            if section == "uid_scheme":
                if value not in ("mediator", "openimis-etl"):
                    problems.append(f"uid_scheme: {value!r} is not mediator or openimis-etl")
                else:
                    changes[section] = value
            elif section in ("tracked_entity_type", "root_org_unit"):
                if not isinstance(value, str) or not is_uid(value):
                    problems.append(f"{section}: {value!r} is not a UID")
                else:
                    changes[section] = value
            elif isinstance(current, Mapping) and isinstance(value, Mapping):
                merged = dict(current)
                for key, uid in value.items():
                    if key not in current:
                        problems.append(f"{section}.{key}: unknown (known: {', '.join(sorted(current))})")
                    elif not isinstance(uid, str) or not is_uid(uid):
                        problems.append(f"{section}.{key}: {uid!r} is not a UID")
                    else:
                        merged[key] = uid
                changes[section] = merged
            else:
                problems.append(f"{section}: not a section of the mapping file")
        if problems:
            raise ValueError("; ".join(problems))
        return replace(self, **changes)  # type: ignore[arg-type]
