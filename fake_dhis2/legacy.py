"""The fake's legacy tracker API (2.33-2.41): the same checks as the tracker importer, legacy field names, objects
committed one by one, and ImportSummaries (409 when any object is refused); enrollments and events read back in
legacy names."""

from __future__ import annotations

from typing import Any

from fake_dhis2.store import Store
from fake_dhis2.tracker import MalformedRequest, Objects, check_enums, commit, validate


def _enrollment(e: dict[str, Any], tei: str | None = None) -> dict[str, Any]:
    return {
        "enrollment": e.get("enrollment"),
        "trackedEntity": e.get("trackedEntityInstance") or tei,
        "program": e.get("program"),
        "orgUnit": e.get("orgUnit"),
        "enrolledAt": e.get("enrollmentDate"),
        "occurredAt": e.get("incidentDate"),
        "status": e.get("status", "ACTIVE"),
        # Program attributes only (others are refused); they are written on the instance.
        "attributes": e.get("attributes") or [],
    }


def to_objects(kind: str, payload: Any) -> Objects:
    if not isinstance(payload, dict) or not isinstance(payload.get(kind), list):
        raise MalformedRequest(f"Request body must be an object with a list `{kind}`")
    out = Objects()
    for raw in payload[kind]:
        if not isinstance(raw, dict):
            raise MalformedRequest(f"`{kind}` must hold objects")
        if kind == "trackedEntityInstances":
            tei = raw.get("trackedEntityInstance")
            out.tracked_entities.append(
                {
                    "trackedEntity": tei,
                    "trackedEntityType": raw.get("trackedEntityType"),
                    "orgUnit": raw.get("orgUnit"),
                    "attributes": raw.get("attributes") or [],
                }
            )
            out.enrollments += [_enrollment(e, tei) for e in raw.get("enrollments") or [] if isinstance(e, dict)]
        elif kind == "enrollments":
            out.enrollments.append(_enrollment(raw))
        else:
            out.events.append(
                {
                    "event": raw.get("event"),
                    "programStage": raw.get("programStage"),
                    "enrollment": raw.get("enrollment"),
                    "orgUnit": raw.get("orgUnit"),
                    "occurredAt": raw.get("eventDate"),
                    "status": raw.get("status", "ACTIVE"),
                    "dataValues": raw.get("dataValues") or [],
                }
            )
    return out


def _summary(uid: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
    conflicts = [{"object": e["uid"], "value": e["message"], "errorCode": e["errorCode"]} for e in errors]
    return {"status": "ERROR" if errors else "SUCCESS", "reference": uid, "conflicts": conflicts}


def _drop_values_not_in_stage(store: Store, objects: Objects) -> dict[str, list[dict[str, Any]]]:
    """The legacy event importer drops data values of elements its stage lacks and answers WARNING."""
    warnings: dict[str, list[dict[str, Any]]] = {}
    for ev in objects.events:
        stage = store.program_stages.get(str(ev.get("programStage"))) or {}
        in_stage = {(d.get("dataElement") or {}).get("id") for d in stage.get("programStageDataElements") or []}
        if not stage:
            continue
        kept = []
        for dv in ev.get("dataValues") or []:
            if dv.get("dataElement") in in_stage:
                kept.append(dv)
            else:
                message = f"Data element {dv.get('dataElement')} is not part of the program stage"
                warnings.setdefault(str(ev.get("event")), []).append(
                    {"uid": dv.get("dataElement"), "message": message, "errorCode": ""}
                )
        ev["dataValues"] = kept
    return warnings


def _replace_values(store: Store, objects: Objects) -> None:
    """The legacy importer replaces an updated event's data values with those sent (unless mergeDataValues=true):
    values it has that the payload lacks are deleted."""
    for ev in objects.events:
        current = store.events.get(str(ev.get("event")))
        if current is None:
            continue
        sent = {dv.get("dataElement") for dv in ev.get("dataValues") or []}
        gone = [{"dataElement": de, "value": None} for de in current["dataValues"] if de not in sent]
        ev["dataValues"] = [*(ev.get("dataValues") or []), *gone]


def run_legacy(store: Store, kind: str, payload: Any, strategy: str, merge_values: bool = False) -> dict[str, Any]:
    objects = to_objects(kind, payload)
    check_enums(objects)
    with store.lock:
        dropped = _drop_values_not_in_stage(store, objects)
        errors = validate(store, objects, strategy.upper())
        if not merge_values:
            _replace_values(store, objects)
        stats = commit(store, objects, set(errors))
    summaries = []
    if kind == "trackedEntityInstances":
        for te in objects.tracked_entities:
            summary = _summary(te["trackedEntity"], errors.get(str(te["trackedEntity"]), []))
            nested = [e for e in objects.enrollments if e["trackedEntity"] == te["trackedEntity"]]
            summary["enrollments"] = {
                "importSummaries": [_summary(e["enrollment"], errors.get(str(e["enrollment"]), [])) for e in nested]
            }
            summaries.append(summary)
        main = stats["TRACKED_ENTITY"]
    elif kind == "enrollments":
        summaries = [_summary(e["enrollment"], errors.get(str(e["enrollment"]), [])) for e in objects.enrollments]
        main = stats["ENROLLMENT"]
    else:
        summaries = []
        for e in objects.events:
            summary = _summary(e["event"], errors.get(str(e["event"]), []))
            if summary["status"] == "SUCCESS" and str(e["event"]) in dropped:
                warned = _summary(e["event"], dropped[str(e["event"])])
                summary = {**warned, "status": "WARNING"}
            summaries.append(summary)
        main = stats["EVENT"]
    failed = any(s["status"] == "ERROR" for s in summaries) or any(
        s2["status"] == "ERROR" for s in summaries for s2 in (s.get("enrollments") or {}).get("importSummaries", [])
    )
    return {
        "responseType": "ImportSummaries",
        "status": "ERROR" if failed else "SUCCESS",
        "imported": main["created"],
        "updated": main["updated"],
        "ignored": main["ignored"],
        "deleted": 0,
        "importSummaries": summaries,
    }


# --- reads (GET /api/enrollments/{uid}, GET /api/events/{uid}) -------------------------------------------------


def legacy_enrollment_doc(store: Store, uid: str) -> dict[str, Any] | None:
    """An enrollment as the legacy API shows it: legacy names, the instance's program attributes."""
    found = store.enrollments.get(uid)
    if found is None:
        return None
    te = store.tracked_entities.get(found["trackedEntity"]) or {"attributes": {}}
    program_attributes = store.program_attributes(found["program"])
    return {
        "enrollment": uid,
        "trackedEntityType": te.get("trackedEntityType"),
        "trackedEntityInstance": found["trackedEntity"],
        "program": found["program"],
        "orgUnit": found["orgUnit"],
        "enrollmentDate": found["enrolledAt"],
        "incidentDate": found["occurredAt"],
        "status": found["status"],
        "followup": False,
        "deleted": False,
        "attributes": [{"attribute": a, "value": v} for a, v in te["attributes"].items() if a in program_attributes],
        "notes": [],
    }


def legacy_event_doc(store: Store, uid: str) -> dict[str, Any] | None:
    """An event as the legacy API shows it: legacy names, data values as a list."""
    found = store.events.get(uid)
    if found is None:
        return None
    enrollment = store.enrollments.get(found["enrollment"]) or {}
    return {
        "event": uid,
        "program": found["program"],
        "programStage": found["programStage"],
        "enrollment": found["enrollment"],
        "enrollmentStatus": enrollment.get("status"),
        "trackedEntityInstance": enrollment.get("trackedEntity"),
        "orgUnit": found["orgUnit"],
        "eventDate": found["occurredAt"],
        "status": found["status"],
        "deleted": False,
        "dataValues": [{"dataElement": d, "value": v} for d, v in found["dataValues"].items()],
        "notes": [],
    }
