"""The legacy tracker API (`/api/trackedEntityInstances`, `/api/enrollments`, `/api/events`; DHIS2 2.33 to 2.41).

Payloads are written in the tracker importer's dialect and translated here, so the mapping has one dialect. The
legacy API has no all-or-nothing mode: it commits every valid object and reports the others in ImportSummaries
(409 when any is refused), so a refused record may be partly written; sending it again once fixed completes it.
Enrollments and events are read back through the same API (`/api/enrollments/{uid}`, `/api/events/{uid}`) and
translated to the tracker importer's names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2ApiMissing, Dhis2Rejected
from mediator.dhis2.metadata import get_object
from mediator.dhis2.tracker import FIELDS, ImportReport, ObjectError, fields_param

PARAMS = {"strategy": "CREATE_AND_UPDATE"}
ENDPOINTS = (
    ("trackedEntityInstances", "/api/trackedEntityInstances", "TRACKED_ENTITY"),
    ("enrollments", "/api/enrollments", "ENROLLMENT"),
    ("events", "/api/events", "EVENT"),
)


# What the legacy API calls the fields the tracker importer renamed.
RENAMED = {
    "enrollments": {
        "trackedEntity": "trackedEntityInstance",
        "enrolledAt": "enrollmentDate",
        "occurredAt": "incidentDate",
    },
    "events": {"occurredAt": "eventDate"},
}
# (tracker importer name, legacy name) of each field the mediator writes and reads back, by kind.
NAMES = {kind: tuple((name, RENAMED[kind].get(name, name)) for name in names) for kind, names in FIELDS.items()}


def _legacy_names(doc: dict[str, Any], fields: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {legacy: doc[name] for name, legacy in fields if doc.get(name) is not None}


def _tracker_names(doc: dict[str, Any], fields: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {name: doc[legacy] for name, legacy in fields if doc.get(legacy) is not None}


def _enrollment(e: dict[str, Any], tracked_entity: str | None = None) -> dict[str, Any]:
    filled = {
        **e,
        "trackedEntity": e.get("trackedEntity") or tracked_entity,
        "occurredAt": e.get("occurredAt") or e.get("enrolledAt"),
        "status": e.get("status", "ACTIVE"),
    }
    return _legacy_names(filled, NAMES["enrollments"])


def _event(e: dict[str, Any]) -> dict[str, Any]:
    filled = {**e, "status": e.get("status", "ACTIVE"), "dataValues": e.get("dataValues") or []}
    return _legacy_names(filled, NAMES["events"])


def _merge_attributes(*lists: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # The legacy API keeps every attribute on the tracked entity instance, program attributes included.
    merged: dict[str, dict[str, Any]] = {}
    for values in lists:
        for av in values:
            merged[av["attribute"]] = av
    return list(merged.values())


def to_legacy(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The same objects in the legacy dialect, by endpoint."""
    teis = []
    for te in payload.get("trackedEntities") or []:
        enrollments = te.get("enrollments") or []
        teis.append(
            {
                "trackedEntityInstance": te["trackedEntity"],
                "trackedEntityType": te.get("trackedEntityType"),
                "orgUnit": te.get("orgUnit"),
                "attributes": _merge_attributes(
                    te.get("attributes") or [], *(e.get("attributes") or [] for e in enrollments)
                ),
                "enrollments": [_enrollment(e, te["trackedEntity"]) for e in enrollments],
            }
        )
    # An enrollment sent alone carries its program attributes; the legacy API writes them on its instance.
    flat = [
        {**_enrollment(e), **({"attributes": e["attributes"]} if e.get("attributes") else {})}
        for e in payload.get("enrollments") or []
    ]
    return {
        "trackedEntityInstances": teis,
        "enrollments": flat,
        "events": [_event(e) for e in payload.get("events") or []],
    }


def _summaries(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("response"), dict):
        body = body["response"]
    if not isinstance(body, dict) or ("importSummaries" not in body and "status" not in body):
        raise Dhis2Rejected("DHIS2 answered the legacy import without ImportSummaries")
    return body


def _read(
    summaries: list[dict[str, Any]], tracker_type: str, parent: str = ""
) -> tuple[list[ObjectError], list[ObjectError]]:
    """(errors, warnings) of ImportSummaries; a summary without reference is charged to its parent instance."""
    errors: list[ObjectError] = []
    warnings: list[ObjectError] = []
    for summary in summaries:
        reference = str(summary.get("reference") or parent)
        conflicts = summary.get("conflicts") or []
        code = next((str(c.get("errorCode")) for c in conflicts if c.get("errorCode")), "")
        text = "; ".join(f"{c.get('object')}: {c.get('value')}" for c in conflicts) or str(summary.get("description"))
        if summary.get("status") == "ERROR":
            errors.append(ObjectError(tracker_type, reference, code, text))
        elif summary.get("status") == "WARNING":
            # e.g. an event imported without the data values its stage does not have
            warnings.append(ObjectError(tracker_type, reference, code, text))
        nested = (summary.get("enrollments") or {}).get("importSummaries") or []
        more_errors, more_warnings = _read(nested, "ENROLLMENT", reference)
        errors += more_errors
        warnings += more_warnings
    return errors, warnings


def import_legacy(client: Dhis2Client, payload: dict[str, Any]) -> ImportReport:
    """Write each kind in turn (instances, then enrollments, then events) and read every ImportSummary."""
    errors: list[ObjectError] = []
    warnings: list[ObjectError] = []
    type_stats: dict[str, dict[str, int]] = {}
    legacy = to_legacy(payload)
    for key, path, tracker_type in ENDPOINTS:
        objects = legacy[key]
        if not objects:
            continue
        status, body = client.request("POST", path, params=PARAMS, body={key: objects})
        if status == 404:
            raise Dhis2ApiMissing(f"DHIS2 has no legacy tracker API at {path} (removed in 2.42, or it changed)")
        if status not in (200, 201, 409):
            message = body.get("message") if isinstance(body, dict) else str(body)[:300]
            raise Dhis2Rejected(f"DHIS2 refused the legacy import at {path} ({status}): {message}", status)
        summaries = _summaries(body)
        found, warned = _read(summaries.get("importSummaries") or [], tracker_type)
        if not found and (status == 409 or summaries.get("status") == "ERROR"):
            # Refused without saying which object: the request as a whole.
            message = body.get("message") if isinstance(body, dict) else ""
            found = [ObjectError(tracker_type, "", "", f"DHIS2 refused the import at {path}: {message}")]
        errors += found
        warnings += warned
        type_stats[tracker_type] = {
            "created": int(summaries.get("imported", 0)),
            "updated": int(summaries.get("updated", 0)),
            "ignored": int(summaries.get("ignored", 0)),
        }
    overall = "ERROR" if errors else "WARNING" if warnings else "OK"
    return ImportReport(status=overall, type_stats=type_stats, errors=errors, warnings=warnings)


def read_legacy(client: Dhis2Client, kind: str, uid: str) -> dict[str, Any] | None:
    """One enrollment or event (`kind`: enrollments, events) in the tracker importer's names; None when DHIS2 has
    no such object."""
    found = get_object(client, kind, uid, fields_param(legacy for _, legacy in NAMES[kind]))
    return None if found is None else _tracker_names(found, NAMES[kind])
