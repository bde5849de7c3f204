"""The fake's tracker importer: validates like DHIS2's (same error codes), commits, and builds the ImportReport."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fake_dhis2.store import Store, is_uid

ENROLLMENT_STATUSES = {"ACTIVE", "COMPLETED", "CANCELLED"}
EVENT_STATUSES = {"ACTIVE", "COMPLETED", "VISITED", "SCHEDULE", "OVERDUE", "SKIPPED"}
PHONE = re.compile(r"^[0-9+\-() ]{3,25}$")
NUMBER = re.compile(r"^(-?0|-?[1-9]\d*)(\.\d+)?$")  # DHIS2's MathUtils.isNumeric


class MalformedRequest(ValueError):
    """What DHIS2 2.40+ answers with 400 before validating any object."""


@dataclass
class Objects:
    tracked_entities: list[dict[str, Any]] = field(default_factory=list)
    enrollments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedRequest(f"Cannot deserialize {what}: expected an object")
    for key, item in value.items():
        if key in ("trackedEntity", "enrollment", "program", "orgUnit", "trackedEntityType") and not (
            item is None or isinstance(item, str)
        ):
            raise MalformedRequest(f"Cannot deserialize {what}.{key}: expected a string")
    return value


def _uid_or_new(value: dict[str, Any], key: str) -> str:
    # Like DHIS2, the importer gives an object without a UID a new one.
    if not value.get(key):
        value[key] = "N" + uuid.uuid4().hex[:10]
    return str(value[key])


def flatten(payload: Any) -> Objects:
    if not isinstance(payload, dict):
        raise MalformedRequest("Request body must be a JSON object")
    if payload.get("relationships"):
        raise MalformedRequest("relationships are not supported by this fake DHIS2")
    out = Objects()

    def add_events(raw_events: Any, enrollment: dict[str, Any] | None) -> None:
        for raw_ev in raw_events or []:
            ev = dict(_object(raw_ev, "event"))
            if enrollment is not None:
                ev["enrollment"] = ev.get("enrollment") or enrollment["enrollment"]
                ev["program"] = ev.get("program") or enrollment.get("program")
            _uid_or_new(ev, "event")
            out.events.append(ev)

    def add_enrollment(raw_enr: Any, te_uid: str | None) -> None:
        enr = dict(_object(raw_enr, "enrollment"))
        if te_uid is not None:
            enr["trackedEntity"] = enr.get("trackedEntity") or te_uid
        _uid_or_new(enr, "enrollment")
        add_events(enr.pop("events", None), enr)
        out.enrollments.append(enr)

    for raw_te in payload.get("trackedEntities") or []:
        te = dict(_object(raw_te, "trackedEntity"))
        te_uid = _uid_or_new(te, "trackedEntity")
        for raw_enr in te.pop("enrollments", None) or []:
            add_enrollment(raw_enr, te_uid)
        out.tracked_entities.append(te)
    for raw_enr in payload.get("enrollments") or []:
        add_enrollment(raw_enr, None)
    add_events(payload.get("events"), None)
    return out


def check_enums(objects: Objects) -> None:
    for enr in objects.enrollments:
        status = enr.get("status")
        if status is not None and status not in ENROLLMENT_STATUSES:
            raise MalformedRequest(f'Cannot deserialize value of type `EnrollmentStatus` from String "{status}"')
    for ev in objects.events:
        status = ev.get("status")
        if status is not None and status not in EVENT_STATUSES:
            raise MalformedRequest(f'Cannot deserialize value of type `EventStatus` from String "{status}"')


def malformed_uids(objects: Objects) -> list[str]:
    bad = []
    for te in objects.tracked_entities:
        if te.get("trackedEntity") is not None and not is_uid(te["trackedEntity"]):
            bad.append(str(te["trackedEntity"]))
    for ev in objects.events:
        for key in ("event", "enrollment", "program", "programStage", "orgUnit"):
            if ev.get(key) is not None and not is_uid(ev[key]):
                bad.append(str(ev[key]))
    for enr in objects.enrollments:
        for key in ("enrollment", "trackedEntity", "program", "orgUnit"):
            if enr.get(key) is not None and not is_uid(enr[key]):
                bad.append(str(enr[key]))
    return bad


def _err(code: str, message: str, tracker_type: str, uid: str) -> dict[str, Any]:
    return {"message": message, "errorCode": code, "trackerType": tracker_type, "uid": uid}


def _value_error(store: Store, attr: dict[str, Any], value: str) -> str | None:
    kind = attr.get("valueType", "TEXT")
    try:
        if kind in ("NUMBER", "PERCENTAGE"):
            if len(value) >= 250 or not NUMBER.match(value):
                return "value is not a valid number"
        elif kind.startswith("INTEGER"):
            int(value)
        elif kind in ("DATE", "AGE"):
            date.fromisoformat(value[:10])
        elif kind in ("BOOLEAN", "TRUE_ONLY") and value not in ("true", "false"):
            return "value is not boolean"
        elif kind == "PHONE_NUMBER" and not PHONE.match(value):
            return "value is not a valid phone number"
        elif kind == "ORGANISATION_UNIT" and value not in store.org_units:
            return "value is not a valid organisation unit"
    except ValueError:
        return f"value is not a valid {kind.lower()}"
    return None


def _attribute_errors(
    store: Store, values: list[dict[str, Any]], tracker_type: str, uid: str, te_uid: str, claimed: dict
) -> list[dict[str, Any]]:
    errors = []
    for av in values:
        attr_uid, value = str(av.get("attribute")), av.get("value")
        attr = store.attributes.get(attr_uid)
        if attr is None:
            errors.append(_err("E1006", f"Attribute: `{attr_uid}`, does not exist.", tracker_type, uid))
            continue
        if value is None:
            continue  # null deletes the value
        value = str(value)
        problem = _value_error(store, attr, value)
        if problem:
            errors.append(
                _err(
                    "E1007",
                    f"Error validating attribute value type: `{attr_uid}`; Error: {problem}.",
                    tracker_type,
                    uid,
                )
            )
        option_set = (attr.get("optionSet") or {}).get("id")
        if option_set and value not in store.option_codes(option_set):
            errors.append(
                _err(
                    "E1125",
                    f"Value `{value}` is not a valid option for attribute `{attr_uid}` and option set `{option_set}`",
                    tracker_type,
                    uid,
                )
            )
        if attr.get("unique"):
            owner = store.attribute_owner(attr_uid, value, te_uid) or (
                claimed.get((attr_uid, value)) if claimed.get((attr_uid, value)) != te_uid else None
            )
            if owner:
                errors.append(
                    _err("E1064", f"Non-unique attribute value `{value}` for attribute `{attr_uid}`", tracker_type, uid)
                )
            claimed.setdefault((attr_uid, value), te_uid)
    return errors


def validate(store: Store, objects: Objects, strategy: str) -> dict[str, list[dict[str, Any]]]:
    """Errors per object uid, in DHIS2's codes; a child of a refused parent is refused too (E5000)."""
    errors: dict[str, list[dict[str, Any]]] = {}
    claimed: dict[tuple[str, str], str] = {}
    payload_tes = {te.get("trackedEntity"): te for te in objects.tracked_entities}
    for te in objects.tracked_entities:
        uid = str(te.get("trackedEntity") or "")
        errs = []
        if not is_uid(uid):
            errs.append(
                _err(
                    "E1048", f"Object: `trackedEntity`, uid: `{uid}`, has an invalid uid format.", "TRACKED_ENTITY", uid
                )
            )
        exists = uid in store.tracked_entities
        if strategy == "CREATE" and exists:
            errs.append(_err("E1002", f"TrackedEntity: `{uid}`, already exists.", "TRACKED_ENTITY", uid))
        if strategy == "UPDATE" and not exists:
            errs.append(_err("E1063", f"TrackedEntity: `{uid}`, does not exist.", "TRACKED_ENTITY", uid))
        if uid in store.deleted_uids:
            errs.append(
                _err(
                    "E1114",
                    f"TrackedEntity: `{uid}`, is already deleted and cannot be modified.",
                    "TRACKED_ENTITY",
                    uid,
                )
            )
        tet = te.get("trackedEntityType")
        if tet not in store.tracked_entity_types:
            errs.append(_err("E1005", f"Could not find TrackedEntityType: `{tet}`.", "TRACKED_ENTITY", uid))
        elif exists and store.tracked_entities[uid]["trackedEntityType"] != tet:
            errs.append(
                _err(
                    "E1126", "Not allowed to update Tracked Entity property: trackedEntityType.", "TRACKED_ENTITY", uid
                )
            )
        ou = te.get("orgUnit")
        if ou not in store.org_units:
            errs.append(
                _err(
                    "E1049",
                    f"Could not find OrganisationUnit: `{ou}`, linked to Tracked Entity.",
                    "TRACKED_ENTITY",
                    uid,
                )
            )
        errs += _attribute_errors(store, te.get("attributes") or [], "TRACKED_ENTITY", uid, uid, claimed)
        if errs:
            errors[uid] = errs
    for enr in objects.enrollments:
        uid = str(enr.get("enrollment") or "")
        te_uid = str(enr.get("trackedEntity") or "")
        errs = []
        if not is_uid(uid):
            errs.append(
                _err("E1048", f"Object: `enrollment`, uid: `{uid}`, has an invalid uid format.", "ENROLLMENT", uid)
            )
        exists = uid in store.enrollments
        if strategy == "CREATE" and exists:
            errs.append(_err("E1080", f"Enrollment: `{uid}`, already exists.", "ENROLLMENT", uid))
        if strategy == "UPDATE" and not exists:
            errs.append(_err("E1081", f"Enrollment: `{uid}`, does not exist.", "ENROLLMENT", uid))
        program_uid = str(enr.get("program"))
        program = store.programs.get(program_uid)
        owner = payload_tes.get(te_uid) or store.tracked_entities.get(te_uid)
        if te_uid in errors:
            errs.append(
                _err(
                    "E5000",
                    f'"ENROLLMENT" `{uid}` cannot be persisted because "TRACKED_ENTITY" `{te_uid}` referenced by it cannot be persisted.',
                    "ENROLLMENT",
                    uid,
                )
            )
        elif owner is None:
            errs.append(
                _err("E1068", f"Could not find TrackedEntity: `{te_uid}`, linked to Enrollment.", "ENROLLMENT", uid)
            )
        if program is None:
            errs.append(
                _err("E1069", f"Could not find Program: `{program_uid}`, linked to Enrollment.", "ENROLLMENT", uid)
            )
        ou = enr.get("orgUnit")
        if ou not in store.org_units:
            errs.append(
                _err("E1070", f"Could not find OrganisationUnit: `{ou}`, linked to Enrollment.", "ENROLLMENT", uid)
            )
        if not enr.get("enrolledAt"):
            errs.append(_err("E1025", "Property enrolledAt is null or has an invalid format.", "ENROLLMENT", uid))
        if program is not None:
            errs += _program_errors(store, program, enr, owner, uid, te_uid)
        errs += _attribute_errors(store, enr.get("attributes") or [], "ENROLLMENT", uid, te_uid, claimed)
        if errs:
            errors[uid] = errs
    payload_enrollments = {e.get("enrollment"): e for e in objects.enrollments}
    for ev in objects.events:
        errs = _event_errors(store, ev, strategy, payload_enrollments, errors, objects.events)
        if errs:
            errors[str(ev.get("event") or "")] = errs
    return errors


def _event_errors(
    store: Store,
    ev: dict[str, Any],
    strategy: str,
    payload_enrollments: dict[Any, dict[str, Any]],
    errors: dict[str, list[dict[str, Any]]],
    all_events: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    uid = str(ev.get("event") or "")
    errs = []
    if not is_uid(uid):
        errs.append(_err("E1048", f"Object: `event`, uid: `{uid}`, has an invalid uid format.", "EVENT", uid))
    exists = uid in store.events
    if strategy == "CREATE" and exists:
        errs.append(_err("E1030", f"Event: `{uid}`, already exists.", "EVENT", uid))
    if strategy == "UPDATE" and not exists:
        errs.append(_err("E1032", f"Event: `{uid}`, does not exist.", "EVENT", uid))
    stage_uid = str(ev.get("programStage"))
    stage = store.program_stages.get(stage_uid)
    if stage is None:
        errs.append(_err("E1013", f"Could not find ProgramStage: `{stage_uid}`, linked to Event.", "EVENT", uid))
    program_uid = (stage or {}).get("program", {}).get("id")
    enr_uid = ev.get("enrollment")
    enrollment = payload_enrollments.get(enr_uid) or store.enrollments.get(str(enr_uid))
    if enr_uid in errors:
        errs.append(
            _err(
                "E5000",
                f'"EVENT" `{uid}` cannot be persisted because "ENROLLMENT" `{enr_uid}` referenced by it cannot be persisted.',
                "EVENT",
                uid,
            )
        )
    elif enrollment is None:
        errs.append(
            _err("E1033", f"Event: `{uid}`, Enrollment value is NULL or does not exist: `{enr_uid}`.", "EVENT", uid)
        )
    elif program_uid and enrollment.get("program") != program_uid:
        errs.append(
            _err(
                "E1079",
                f"Event: `{uid}`, Enrollment: `{enr_uid}` references a different Program than the Event.",
                "EVENT",
                uid,
            )
        )
    ou = ev.get("orgUnit")
    if ou not in store.org_units:
        errs.append(_err("E1011", f"Could not find OrganisationUnit: `{ou}`, linked to Event.", "EVENT", uid))
    elif program_uid and ou not in store.program_org_units(program_uid):
        errs.append(
            _err("E1029", f"Event OrganisationUnit: `{ou}`, and Program: `{program_uid}`, don't match.", "EVENT", uid)
        )
    if ev.get("status", "ACTIVE") in ("ACTIVE", "COMPLETED") and not ev.get("occurredAt"):
        errs.append(_err("E1031", "Event OccurredAt is missing.", "EVENT", uid))
    if stage is not None and not stage.get("repeatable"):
        siblings = [e for e in store.events.values() if e["enrollment"] == enr_uid and e["programStage"] == stage_uid]
        siblings += [
            e
            for e in all_events
            if e is not ev and e.get("enrollment") == enr_uid and e.get("programStage") == stage_uid
        ]
        if any(e.get("event") != uid for e in siblings):
            errs.append(
                _err(
                    "E1039",
                    f"ProgramStage: `{stage_uid}`, is not repeatable and an event already exists.",
                    "EVENT",
                    uid,
                )
            )
    in_stage = {(d.get("dataElement") or {}).get("id") for d in (stage or {}).get("programStageDataElements") or []}
    for dv in ev.get("dataValues") or []:
        de_uid, value = str(dv.get("dataElement")), dv.get("value")
        de = store.data_elements.get(de_uid)
        if de is None:
            errs.append(_err("E1304", f"DataElement `{de_uid}` is not a valid data element.", "EVENT", uid))
            continue
        if stage is not None and de_uid not in in_stage:
            errs.append(
                _err("E1305", f"DataElement `{de_uid}` is not part of `{stage_uid}` program stage.", "EVENT", uid)
            )
        if value is None:
            continue
        problem = _value_error(store, de, str(value))
        if problem:
            errs.append(_err("E1302", f"DataElement `{de_uid}` value is not valid: `{problem}`", "EVENT", uid))
        option_set = (de.get("optionSet") or {}).get("id")
        if option_set and str(value) not in store.option_codes(option_set):
            errs.append(
                _err(
                    "E1125",
                    f"Value `{value}` is not a valid option for data element `{de_uid}` and option set `{option_set}`",
                    "EVENT",
                    uid,
                )
            )
    return errs


def _program_errors(
    store: Store, program: dict[str, Any], enr: dict[str, Any], te: dict[str, Any] | None, uid: str, te_uid: str
) -> list[dict[str, Any]]:
    errs = []
    p_uid = program["id"]
    if program.get("programType", "WITH_REGISTRATION") != "WITH_REGISTRATION":
        errs.append(
            _err("E1014", f"Provided Program: `{p_uid}`, is a Program without registration.", "ENROLLMENT", uid)
        )
        return errs
    ou = enr.get("orgUnit")
    if ou in store.org_units and ou not in store.program_org_units(p_uid):
        errs.append(
            _err(
                "E1041", f"Enrollment OrganisationUnit: `{ou}`, and Program: `{p_uid}`, don't match.", "ENROLLMENT", uid
            )
        )
    tet = (program.get("trackedEntityType") or {}).get("id")
    if te is not None and tet and te.get("trackedEntityType") != tet:
        errs.append(
            _err(
                "E1022",
                f"TrackedEntity: `{te_uid}`, must have same TrackedEntityType as Program `{p_uid}`.",
                "ENROLLMENT",
                uid,
            )
        )
    program_attrs = store.program_attributes(p_uid)
    for av in enr.get("attributes") or []:
        if av.get("attribute") not in program_attrs and av.get("attribute") in store.attributes:
            errs.append(
                _err(
                    "E1019",
                    f"Only Program attributes is allowed for enrollment; Non valid attribute: `{av.get('attribute')}`.",
                    "ENROLLMENT",
                    uid,
                )
            )
    stored = store.tracked_entities.get(te_uid)
    present: dict[str, Any] = dict(stored["attributes"]) if stored else {}
    payload_te_values = (te or {}).get("attributes") if te is not stored else []
    for av in [*(payload_te_values or []), *(enr.get("attributes") or [])]:
        present[av.get("attribute")] = av.get("value")
    for attr_uid, pa in program_attrs.items():
        if pa.get("mandatory") and present.get(attr_uid) in (None, ""):
            errs.append(
                _err(
                    "E1018",
                    f"Attribute: `{attr_uid}`, is mandatory in program `{p_uid}` but not declared in enrollment `{uid}`.",
                    "ENROLLMENT",
                    uid,
                )
            )
    others = [e for e in store.enrollments_of(te_uid, p_uid) if e["enrollment"] != uid]
    if program.get("onlyEnrollOnce") and others:
        errs.append(
            _err(
                "E1016",
                f"TrackedEntity: `{te_uid}`, already has an active enrollment in Program: `{p_uid}`, and this program only allows enrolling one time.",
                "ENROLLMENT",
                uid,
            )
        )
    elif enr.get("status", "ACTIVE") == "ACTIVE" and any(e["status"] == "ACTIVE" for e in others):
        errs.append(
            _err(
                "E1015",
                f"TrackedEntity: `{te_uid}`, already has an active Enrollment in Program `{p_uid}`.",
                "ENROLLMENT",
                uid,
            )
        )
    return errs


def commit(store: Store, objects: Objects, refused: set[str]) -> dict[str, dict[str, int]]:
    stats = {
        t: {"created": 0, "updated": 0, "deleted": 0, "ignored": 0, "total": 0}
        for t in ("TRACKED_ENTITY", "ENROLLMENT", "EVENT")
    }
    for te in objects.tracked_entities:
        uid = te["trackedEntity"]
        s = stats["TRACKED_ENTITY"]
        s["total"] += 1
        if uid in refused:
            s["ignored"] += 1
            continue
        current = store.tracked_entities.get(uid)
        s["updated" if current else "created"] += 1
        record = current or {"trackedEntity": uid, "attributes": {}}
        record.update(trackedEntityType=te["trackedEntityType"], orgUnit=te["orgUnit"])
        store.tracked_entities[uid] = record
        store.set_attributes(uid, te.get("attributes") or [])
    for enr in objects.enrollments:
        uid = enr["enrollment"]
        s = stats["ENROLLMENT"]
        s["total"] += 1
        if uid in refused:
            s["ignored"] += 1
            continue
        current = store.enrollments.get(uid)
        s["updated" if current else "created"] += 1
        store.put_enrollment(
            {
                "enrollment": uid,
                "trackedEntity": enr["trackedEntity"],
                "program": enr["program"],
                "orgUnit": enr["orgUnit"],
                "enrolledAt": enr["enrolledAt"],
                "occurredAt": enr.get("occurredAt") or enr["enrolledAt"],
                "status": enr.get("status", "ACTIVE"),
            }
        )
        store.set_attributes(enr["trackedEntity"], enr.get("attributes") or [])
    for ev in objects.events:
        uid = ev["event"]
        s = stats["EVENT"]
        s["total"] += 1
        if uid in refused:
            s["ignored"] += 1
            continue
        current = store.events.get(uid)
        s["updated" if current else "created"] += 1
        values = dict((current or {}).get("dataValues") or {})
        for dv in ev.get("dataValues") or []:
            if dv.get("value") is None:
                values.pop(dv["dataElement"], None)
            else:
                values[dv["dataElement"]] = str(dv["value"])
        stage = store.program_stages[ev["programStage"]]
        store.events[uid] = {
            "event": uid,
            "enrollment": ev["enrollment"],
            "program": stage["program"]["id"],
            "programStage": ev["programStage"],
            "orgUnit": ev["orgUnit"],
            "occurredAt": ev.get("occurredAt"),
            "status": ev.get("status", "ACTIVE"),
            "dataValues": values,
        }
    return stats


def run_import(store: Store, payload: Any, params: dict[str, str]) -> dict[str, Any]:
    """Validate and commit one tracker import; returns the ImportReport (MalformedRequest for a 400)."""
    objects = flatten(payload)
    check_enums(objects)
    strategy = params.get("importStrategy", "CREATE_AND_UPDATE").upper()
    atomic = params.get("atomicMode", "ALL").upper()
    commit_mode = params.get("importMode", "COMMIT").upper() == "COMMIT"
    with store.lock:
        errors = validate(store, objects, strategy)
        refused = set(errors)
        all_uids = (
            {te.get("trackedEntity") for te in objects.tracked_entities}
            | {e.get("enrollment") for e in objects.enrollments}
            | {e.get("event") for e in objects.events}
        )
        if errors and atomic == "ALL":
            refused = {str(u) for u in all_uids}
        if commit_mode:
            stats = commit(store, objects, refused)
        else:
            stats = commit(Store(), Objects(), set())  # counts only: nothing is written in VALIDATE mode
    error_reports = [e for errs in errors.values() for e in errs]
    type_map = {}
    for t, s in stats.items():
        object_reports = [
            {"trackerType": t, "uid": uid, "errorReports": errs}
            for uid, errs in errors.items()
            if errs and errs[0]["trackerType"] == t
        ]
        type_map[t] = {"trackerType": t, "stats": s, "objectReports": object_reports}
    total = {k: sum(s[k] for s in stats.values()) for k in ("created", "updated", "deleted", "ignored", "total")}
    return {
        "status": "ERROR" if errors else "OK",
        "validationReport": {"errorReports": error_reports, "warningReports": []},
        "stats": total,
        "bundleReport": {"status": "ERROR" if errors else "OK", "typeReportMap": type_map, "stats": total},
    }
