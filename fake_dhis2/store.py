"""What the fake DHIS2 holds: metadata the tracker validates against, and tracker data, in memory."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

UID = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")


def is_uid(value: Any) -> bool:
    return isinstance(value, str) and bool(UID.match(value))


# DHIS2's built-in default category, option, combo and option combo (the same UIDs in every DHIS2).
DEFAULT_CATEGORY, DEFAULT_OPTION, DEFAULT_COMBO, DEFAULT_OPTION_COMBO = (
    "GLevLNI9wkl",
    "xYerKDKCefk",
    "bjDvmb4bfuf",
    "HllvX50cXC0",
)


def _default(kind: str) -> dict[str, Any]:
    if kind == "option":
        return {"id": DEFAULT_OPTION, "name": "default", "code": "default"}
    if kind == "category":
        return {"id": DEFAULT_CATEGORY, "name": "default", "categoryOptions": [{"id": DEFAULT_OPTION}]}
    if kind == "combo":
        return {"id": DEFAULT_COMBO, "name": "default", "categories": [{"id": DEFAULT_CATEGORY}]}
    return {
        "id": DEFAULT_OPTION_COMBO,
        "name": "default",
        "categoryCombo": {"id": DEFAULT_COMBO},
        "categoryOptions": [{"id": DEFAULT_OPTION}],
    }


@dataclass
class Store:
    lock: threading.RLock = field(default_factory=threading.RLock)
    org_units: dict[str, dict[str, Any]] = field(default_factory=dict)
    org_unit_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    option_sets: dict[str, dict[str, Any]] = field(default_factory=dict)  # options resolved into "codes"
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # tracked entity attributes
    tracked_entity_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_elements: dict[str, dict[str, Any]] = field(default_factory=dict)
    program_stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracked_entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrollments: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_uids: set[str] = field(default_factory=set)
    # (attribute, value) -> tracked entity, for attributes marked unique: DHIS2 checks these on every import.
    unique_values: dict[tuple[str, str], str] = field(default_factory=dict)
    enrollments_by_owner: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (te, program) -> uids
    # Aggregate metadata and data: option combos exist only once the maintenance task generated them.
    category_options: dict[str, dict[str, Any]] = field(default_factory=lambda: {DEFAULT_OPTION: _default("option")})
    categories: dict[str, dict[str, Any]] = field(default_factory=lambda: {DEFAULT_CATEGORY: _default("category")})
    category_combos: dict[str, dict[str, Any]] = field(default_factory=lambda: {DEFAULT_COMBO: _default("combo")})
    category_option_combos: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {DEFAULT_OPTION_COMBO: _default("option combo")}
    )
    data_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (data element, period, org unit, category option combo, attribute option combo) -> value
    data_values: dict[tuple[str, str, str, str, str], str] = field(default_factory=dict)

    def option_codes(self, option_set_uid: str) -> set[str]:
        """Codes of the options the set lists: an option that only names the set is not one of its options."""
        codes = set()
        for ref in (self.option_sets.get(option_set_uid) or {}).get("options") or []:
            found = self.options.get(str(ref.get("id")))
            if found:
                codes.add(found.get("code"))
        return {c for c in codes if c is not None}

    def program_attributes(self, program_uid: str) -> dict[str, dict[str, Any]]:
        program = self.programs.get(program_uid) or {}
        out = {}
        for pa in program.get("programTrackedEntityAttributes") or []:
            uid = (pa.get("trackedEntityAttribute") or {}).get("id")
            if uid:
                out[uid] = pa
        return out

    def program_org_units(self, program_uid: str) -> set[str]:
        program = self.programs.get(program_uid) or {}
        return {ou.get("id") for ou in program.get("organisationUnits") or []}

    def attribute_owner(self, attribute_uid: str, value: str, exclude_te: str) -> str | None:
        """The tracked entity (other than exclude_te) that already holds this value, for unique attributes."""
        owner = self.unique_values.get((attribute_uid, value))
        return owner if owner != exclude_te else None

    def enrollments_of(self, te_uid: str, program_uid: str) -> list[dict[str, Any]]:
        return [self.enrollments[u] for u in self.enrollments_by_owner.get((te_uid, program_uid), ())]

    def put_enrollment(self, enrollment: dict[str, Any]) -> None:
        self.enrollments[enrollment["enrollment"]] = enrollment
        owner = (enrollment["trackedEntity"], enrollment["program"])
        self.enrollments_by_owner.setdefault(owner, set()).add(enrollment["enrollment"])

    def set_attributes(self, te_uid: str, values: list[dict[str, Any]]) -> None:
        """Apply attribute values to a stored tracked entity; a null value deletes."""
        current = self.tracked_entities[te_uid]["attributes"]
        for av in values:
            attr = str(av.get("attribute"))
            unique = bool((self.attributes.get(attr) or {}).get("unique"))
            if unique and attr in current:
                self.unique_values.pop((attr, current[attr]), None)
            if av.get("value") is None:
                current.pop(attr, None)
            else:
                current[attr] = str(av["value"])
                if unique:
                    self.unique_values[(attr, current[attr])] = te_uid


# --- metadata import (/api/metadata) -------------------------------------------------------------------------

METADATA_TYPES = {
    "organisationUnits": ("OrganisationUnit", "org_units"),
    "organisationUnitGroups": ("OrganisationUnitGroup", "org_unit_groups"),
    "optionSets": ("OptionSet", "option_sets"),
    "options": ("Option", "options"),
    "trackedEntityAttributes": ("TrackedEntityAttribute", "attributes"),
    "trackedEntityTypes": ("TrackedEntityType", "tracked_entity_types"),
    "dataElements": ("DataElement", "data_elements"),
    "programs": ("Program", "programs"),
    "programStages": ("ProgramStage", "program_stages"),
    "categoryOptions": ("CategoryOption", "category_options"),
    "categories": ("Category", "categories"),
    "categoryCombos": ("CategoryCombo", "category_combos"),
    "categoryOptionCombos": ("CategoryOptionCombo", "category_option_combos"),
    "dataSets": ("DataSet", "data_sets"),
}

# Which references each kind of object holds, as (how to read them from the object, the collection they name).
REFERENCES: dict[str, list[tuple[Any, str]]] = {
    "organisationUnitGroups": [
        (lambda o: [r.get("id") for r in o.get("organisationUnits") or []], "organisationUnits")
    ],
    "trackedEntityAttributes": [(lambda o: [(o.get("optionSet") or {}).get("id")], "optionSets")],
    "dataElements": [
        (lambda o: [(o.get("optionSet") or {}).get("id")], "optionSets"),
        (lambda o: [(o.get("categoryCombo") or {}).get("id")], "categoryCombos"),
    ],
    "categories": [(lambda o: [r.get("id") for r in o.get("categoryOptions") or []], "categoryOptions")],
    "categoryCombos": [(lambda o: [r.get("id") for r in o.get("categories") or []], "categories")],
    "dataSets": [
        (lambda o: [(d.get("dataElement") or {}).get("id") for d in o.get("dataSetElements") or []], "dataElements"),
        (lambda o: [(o.get("categoryCombo") or {}).get("id")], "categoryCombos"),
        (lambda o: [r.get("id") for r in o.get("organisationUnits") or []], "organisationUnits"),
    ],
    "programs": [
        (lambda o: [(o.get("trackedEntityType") or {}).get("id")], "trackedEntityTypes"),
        (
            lambda o: [
                (a.get("trackedEntityAttribute") or {}).get("id") for a in o.get("programTrackedEntityAttributes") or []
            ],
            "trackedEntityAttributes",
        ),
        (lambda o: [r.get("id") for r in o.get("organisationUnits") or []], "organisationUnits"),
    ],
    "programStages": [
        (lambda o: [(o.get("program") or {}).get("id")], "programs"),
        (
            lambda o: [(d.get("dataElement") or {}).get("id") for d in o.get("programStageDataElements") or []],
            "dataElements",
        ),
    ],
}


OPTION_TEXT_LENGTH = 230
# What DHIS2 keeps unique across each kind of aggregate metadata (its Hibernate mappings).
UNIQUE_PROPERTIES = {
    "categoryOptions": ("code", "name", "shortName"),
    "categories": ("code", "name"),
    "categoryCombos": ("code", "name"),
    "dataSets": ("code",),
}


def _metadata_errors(store: Store, key: str, obj: dict[str, Any], payload: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    uid = obj.get("id")
    if not is_uid(uid):
        errors.append({"errorCode": "E4014", "message": f"Invalid UID `{uid}` for property `id`"})
    if not obj.get("name"):
        errors.append({"errorCode": "E4000", "message": "Missing required property `name`."})
    if key == "organisationUnits":
        code = obj.get("code")
        same_code = [
            o
            for o in [*store.org_units.values(), *(payload.get("organisationUnits") or [])]
            if code and o.get("id") != uid and o.get("code") == code
        ]
        if same_code:
            errors.append({"errorCode": "E5003", "message": f"Property `code` with value `{code}` must be unique"})
        if not obj.get("shortName"):
            errors.append({"errorCode": "E4000", "message": "Missing required property `shortName`."})
        elif len(obj["shortName"]) > 50:
            errors.append({"errorCode": "E4001", "message": "Maximum length of property `shortName` is 50"})
        if not obj.get("openingDate"):
            errors.append({"errorCode": "E4000", "message": "Missing required property `openingDate`."})
        parent = (obj.get("parent") or {}).get("id")
        in_payload = {o.get("id") for o in payload.get("organisationUnits") or []}
        if parent and parent not in store.org_units and parent not in in_payload:
            errors.append({"errorCode": "E5002", "message": f"Invalid reference [{parent}] on object parent"})
    if key in UNIQUE_PROPERTIES:
        stored = getattr(store, METADATA_TYPES[key][1]).values()
        for prop in UNIQUE_PROPERTIES[key]:
            value = obj.get(prop)
            clash = value and any(
                o.get("id") != uid and o.get(prop) == value for o in [*stored, *(payload.get(key) or [])]
            )
            if clash:
                errors.append(
                    {"errorCode": "E5003", "message": f"Property `{prop}` with value `{value}` must be unique"}
                )
    for read, collection in REFERENCES.get(key, []):
        known = set(getattr(store, METADATA_TYPES[collection][1])) | {
            o.get("id") for o in payload.get(collection) or []
        }
        for ref in read(obj):
            if ref is not None and ref not in known:
                errors.append(
                    {"errorCode": "E5002", "message": f"Invalid reference [{ref}] ({collection}) on object {uid}"}
                )
    if key == "options":
        for prop in ("code", "name"):  # DHIS2 keeps both in 230 characters (its Option mapping)
            if isinstance(obj.get(prop), str) and len(obj[prop]) > OPTION_TEXT_LENGTH:
                errors.append(
                    {"errorCode": "E4001", "message": f"Maximum length of property `{prop}` is {OPTION_TEXT_LENGTH}"}
                )
        set_uid = (obj.get("optionSet") or {}).get("id")
        sets = {o.get("id") for o in payload.get("optionSets") or []} | set(store.option_sets)
        if set_uid not in sets:
            errors.append({"errorCode": "E5002", "message": f"Invalid reference [{set_uid}] on object optionSet"})
        same_code = [
            o
            for o in [*store.options.values(), *(payload.get("options") or [])]
            if o.get("id") != uid
            and (o.get("optionSet") or {}).get("id") == set_uid
            and o.get("code") == obj.get("code")
        ]
        if same_code:
            errors.append(
                {"errorCode": "E5003", "message": f"Property `code` with value `{obj.get('code')}` must be unique"}
            )
    return errors


def import_metadata(store: Store, payload: dict[str, Any], strategy: str, atomic: str) -> dict[str, Any]:
    """Validate and (unless atomicMode=ALL saw an error) store metadata objects; returns the ImportReport."""
    type_reports: list[dict[str, Any]] = []
    to_store: list[tuple[str, dict[str, Any]]] = []
    total = {"created": 0, "updated": 0, "deleted": 0, "ignored": 0, "total": 0}
    any_error = False
    with store.lock:
        for key, (klass, attr) in METADATA_TYPES.items():
            objects = payload.get(key) or []
            stats = {"created": 0, "updated": 0, "deleted": 0, "ignored": 0, "total": len(objects)}
            reports = []
            for index, obj in enumerate(objects):
                errors = _metadata_errors(store, key, obj, payload)
                exists = obj.get("id") in getattr(store, attr)
                if strategy == "CREATE" and exists:
                    errors.append({"errorCode": "E5000", "message": f"Object `{obj.get('id')}` already exists"})
                if strategy == "UPDATE" and not exists:
                    errors.append({"errorCode": "E5001", "message": f"Object `{obj.get('id')}` does not exist"})
                if errors:
                    any_error = True
                    stats["ignored"] += 1
                    reports.append({"klass": klass, "index": index, "uid": obj.get("id"), "errorReports": errors})
                else:
                    stats["updated" if exists else "created"] += 1
                    to_store.append((attr, obj))
            if objects:
                type_reports.append({"klass": klass, "stats": stats, "objectReports": reports})
                for k in total:
                    total[k] += stats[k]
        if any_error and atomic == "ALL":
            for report in type_reports:
                s = report["stats"]
                s["ignored"], s["created"], s["updated"] = s["total"], 0, 0
            total.update(created=0, updated=0, ignored=total["total"])
        else:
            for attr, obj in to_store:
                getattr(store, attr)[obj["id"]] = dict(obj)
    return {"status": "ERROR" if any_error else "OK", "stats": total, "typeReports": type_reports}


# --- collection endpoints (POST /api/{collection}/{uid}/{property} with additions and deletions) ----------------

COLLECTION_PROPERTIES = {
    ("optionSets", "options"): "options",
    ("programs", "organisationUnits"): "organisationUnits",
    ("organisationUnitGroups", "organisationUnits"): "organisationUnits",
    ("dataSets", "organisationUnits"): "organisationUnits",
}


def change_collection(store: Store, collection: str, uid: str, prop: str, body: Any) -> tuple[int, str] | None:
    """Apply additions/deletions to a collection property; returns (status, error message), or None when done.

    As DHIS2's collection service does: 404 for an owner it does not have (NotFoundException, in DHIS2's words)
    or a property the owner lacks, and members it does not have are left out without a word.
    """
    kind = METADATA_TYPES.get(collection)
    if kind is None:
        return 404, "Not Found"
    owner = getattr(store, kind[1]).get(uid)
    if owner is None:
        return 404, f"{kind[0]} with id {uid} could not be found."
    if (collection, prop) not in COLLECTION_PROPERTIES:
        return 404, f"Property {prop} does not exist on org.hisp.dhis.{kind[0]}"
    target = store.options if prop == "options" else store.org_units
    if not isinstance(body, dict):
        return 400, "Body must be a JSON object with additions and/or deletions"
    additions = [r.get("id") for r in body.get("additions") or [] if isinstance(r, dict) and r.get("id") in target]
    deletions = {r.get("id") for r in body.get("deletions") or [] if isinstance(r, dict)}
    with store.lock:
        current = [r["id"] for r in owner.get(prop) or [] if r.get("id") not in deletions]
        current += [a for a in additions if a not in current]
        owner[prop] = [{"id": i} for i in current]
    return None
