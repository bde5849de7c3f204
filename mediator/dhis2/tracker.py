"""The tracker importer (`POST /api/tracker`, DHIS2 2.36+) and its ImportReport, read per object; enrollments and
events read back from `/api/tracker/...`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2ApiMissing, Dhis2Rejected, Dhis2Unavailable
from mediator.dhis2.metadata import get_object

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


SYNC_PARAMS = {"importStrategy": "CREATE_AND_UPDATE", "reportMode": "ERRORS"}
JOB_RESUBMITS = 2


def import_tracker(
    client: Dhis2Client,
    payload: dict[str, Any],
    atomic_mode: str = "ALL",
    asynchronous: bool = False,
    max_wait: float = 600.0,
) -> ImportReport:
    """One tracker import. 409 carries a report (status ERROR), so it is read, not raised.

    Synchronous by default; a large payload goes as an async job that is polled until done. DHIS2 keeps jobs in
    memory, so a job lost to a restart is submitted again (safe: UIDs are deterministic, CREATE_AND_UPDATE).
    """
    if asynchronous:
        deadline = time.monotonic() + max_wait
        for _ in range(JOB_RESUBMITS + 1):
            report = _run_job(client, payload, atomic_mode, deadline)
            if report is not None:
                return report
        raise Dhis2Unavailable("DHIS2 lost the tracker import job every time it was submitted")
    # Exactly "false": 2.36-2.40 go asynchronous on anything else, even "False".
    params = {"async": "false", "atomicMode": atomic_mode, **SYNC_PARAMS}
    status, body = client.request("POST", "/api/tracker", params=params, body=payload)
    return _report(status, body)


def _report(status: int, body: Any) -> ImportReport:
    if status in (200, 409):
        return parse_import_report(body)
    if status == 404:
        raise Dhis2ApiMissing("DHIS2 has no tracker importer at /api/tracker (before 2.36, or it changed)")
    message = body.get("message") if isinstance(body, dict) else str(body)[:300]
    raise Dhis2Rejected(f"DHIS2 refused the tracker import ({status}): {message}", status)


LOST_AFTER = 10.0  # seconds without any notification before a job counts as lost


def _run_job(client: Dhis2Client, payload: dict[str, Any], atomic_mode: str, deadline: float) -> ImportReport | None:
    """Submit, poll, read the report; None when DHIS2 forgot the job (it restarted).

    DHIS2 answers an unknown job with an empty list of notifications (not 404), so a job that stays silent is
    checked through its report, which is 404 for a job DHIS2 does not have.
    """
    params = {"async": "true", "atomicMode": atomic_mode, **SYNC_PARAMS}
    status, body = client.request("POST", "/api/tracker", params=params, body=payload)
    job = ((body or {}).get("response") or {}).get("id") if isinstance(body, dict) else None
    if status != 200 or not job:
        return _report(status, body)
    submitted, interval = time.monotonic(), 0.2
    while time.monotonic() < deadline:
        client.retry.sleep(interval)
        interval = min(interval * 2, 5.0)
        status, notes = client.request("GET", f"/api/tracker/jobs/{job}")
        done = isinstance(notes, list) and any(isinstance(n, dict) and n.get("completed") for n in notes)
        silent = status == 404 or (not notes and time.monotonic() - submitted > LOST_AFTER)
        if done or silent:
            status, report = client.request("GET", f"/api/tracker/jobs/{job}/report", params={"reportMode": "ERRORS"})
            if status == 404:
                if done:
                    continue  # completed but the report is not there yet
                return None
            return _report(status, report)
    raise Dhis2Unavailable(f"the tracker import job {job} did not finish in time")


# The fields of an enrollment or event the mediator writes and reads back: enough to send it again with a change.
FIELDS = {
    "enrollments": ("enrollment", "trackedEntity", "program", "orgUnit", "enrolledAt", "occurredAt", "status"),
    "events": ("event", "program", "programStage", "orgUnit", "enrollment", "occurredAt", "status", "dataValues"),
}


def fields_param(names: Iterable[str]) -> str:
    """The `fields` a read asks for (data values with only what the mediator uses of them)."""
    return ",".join("dataValues[dataElement,value]" if name == "dataValues" else name for name in names)


def read_tracker(client: Dhis2Client, kind: str, uid: str) -> dict[str, Any] | None:
    """One enrollment or event (`kind`: enrollments, events); None when DHIS2 has no such object."""
    return get_object(client, f"tracker/{kind}", uid, fields_param(FIELDS[kind]))
