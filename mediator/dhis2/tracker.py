"""The tracker importer (`POST /api/tracker`, DHIS2 2.36+) and its ImportReport, read per object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Rejected

TRACKER_TYPES = ("TRACKED_ENTITY", "ENROLLMENT", "EVENT", "RELATIONSHIP")


@dataclass(frozen=True)
class ObjectError:
    """One DHIS2 validation error, tied to the object it is about."""

    tracker_type: str
    uid: str
    code: str
    message: str


@dataclass
class ImportReport:
    status: str  # OK, WARNING or ERROR
    stats: dict[str, int] = field(default_factory=dict)
    type_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[ObjectError] = field(default_factory=list)
    warnings: list[ObjectError] = field(default_factory=list)


def _object_errors(reports: Any) -> list[ObjectError]:
    out = []
    for r in reports or []:
        if isinstance(r, dict):
            out.append(
                ObjectError(
                    tracker_type=str(r.get("trackerType") or ""),
                    uid=str(r.get("uid") or ""),
                    code=str(r.get("errorCode") or r.get("warningCode") or ""),
                    message=str(r.get("message") or ""),
                )
            )
    return out


def parse_import_report(body: Any) -> ImportReport:
    """Read an ImportReport, bare or wrapped in a WebMessage (`{"response": {...}}`)."""
    if isinstance(body, dict) and "validationReport" not in body and isinstance(body.get("response"), dict):
        body = body["response"]
    if not isinstance(body, dict) or "status" not in body:
        raise Dhis2Rejected("DHIS2 answered without an import report")
    validation = body.get("validationReport") or {}
    type_map = (body.get("bundleReport") or {}).get("typeReportMap") or {}
    type_stats = {t: dict((type_map.get(t) or {}).get("stats") or {}) for t in TRACKER_TYPES if type_map.get(t)}
    errors = _object_errors(validation.get("errorReports"))
    if not errors:
        # Older reports put per-object errors only under the bundle report.
        for t in TRACKER_TYPES:
            for obj in (type_map.get(t) or {}).get("objectReports") or []:
                errors.extend(_object_errors(obj.get("errorReports")))
    return ImportReport(
        status=str(body.get("status")),
        stats=dict(body.get("stats") or {}),
        type_stats=type_stats,
        errors=errors,
        warnings=_object_errors(validation.get("warningReports")),
    )


def import_tracker(client: Dhis2Client, payload: dict[str, Any], atomic_mode: str = "ALL") -> ImportReport:
    """One synchronous tracker import. 409 carries a report (status ERROR), so it is read, not raised."""
    params = {
        "async": "false",  # exactly this string: 2.36-2.40 go asynchronous on anything else, even "False"
        "importStrategy": "CREATE_AND_UPDATE",
        "atomicMode": atomic_mode,
        "reportMode": "ERRORS",
    }
    status, body = client.request("POST", "/api/tracker", params=params, body=payload)
    if status in (200, 409):
        return parse_import_report(body)
    if status == 404:
        raise Dhis2Rejected(
            "DHIS2 has no tracker importer at /api/tracker: DHIS2 before 2.36 is not supported yet", 404
        )
    message = body.get("message") if isinstance(body, dict) else str(body)[:300]
    raise Dhis2Rejected(f"DHIS2 refused the tracker import ({status}): {message}", status)
