"""The metadata importer (`POST /api/metadata`), collection additions, and reading objects back, in DHIS2's own
terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Rejected


@dataclass(frozen=True)
class MetadataError:
    klass: str
    uid: str
    code: str
    message: str


@dataclass
class MetadataReport:
    status: str
    stats: dict[str, int] = field(default_factory=dict)
    errors: list[MetadataError] = field(default_factory=list)


def parse_metadata_report(body: Any) -> MetadataReport:
    """Read an ImportReport, bare (before 2.38) or wrapped in a WebMessage."""
    if isinstance(body, dict) and "typeReports" not in body and isinstance(body.get("response"), dict):
        body = body["response"]
    if not isinstance(body, dict) or "status" not in body:
        raise Dhis2Rejected("DHIS2 answered the metadata import without an import report")
    errors = []
    for type_report in body.get("typeReports") or []:
        klass = str(type_report.get("klass", "")).rsplit(".", 1)[-1]
        for obj in type_report.get("objectReports") or []:
            for err in obj.get("errorReports") or []:
                errors.append(
                    MetadataError(
                        klass, str(obj.get("uid") or ""), str(err.get("errorCode") or ""), str(err.get("message"))
                    )
                )
    return MetadataReport(status=str(body["status"]), stats=dict(body.get("stats") or {}), errors=errors)


def import_metadata(client: Dhis2Client, payload: dict[str, Any], atomic_mode: str = "ALL") -> MetadataReport:
    params = {"importStrategy": "CREATE_AND_UPDATE", "atomicMode": atomic_mode}
    status, body = client.request("POST", "/api/metadata", params=params, body=payload)
    if status in (200, 409):
        return parse_metadata_report(body)
    message = body.get("message") if isinstance(body, dict) else str(body)[:300]
    raise Dhis2Rejected(f"DHIS2 refused the metadata import ({status}): {message}", status)


def get_object(client: Dhis2Client, collection: str, uid: str, fields: str) -> dict[str, Any] | None:
    """One object of `/api/{collection}/{uid}`, or None when DHIS2 has no such object."""
    status, body = client.request("GET", f"/api/{collection}/{uid}", params={"fields": fields})
    if status == 404:
        return None
    if status != 200 or not isinstance(body, dict):
        raise Dhis2Rejected(f"DHIS2 answered {status} for {collection}/{uid}", status)
    return body


@dataclass(frozen=True)
class CollectionRefusal:
    """DHIS2 would not add to a collection: its status (404: no such owner) and its message."""

    status: int
    message: str


def add_to_collection(
    client: Dhis2Client, collection: str, owner: str, prop: str, members: list[str]
) -> CollectionRefusal | None:
    """Add members to `/api/{collection}/{owner}/{prop}`, keeping the members it has; None once done.

    DHIS2 answers 404 for an owner (or a property) it does not have; such a refusal stays one until DHIS2 is set
    up, so it is returned for the records that needed it rather than raised as DHIS2 being unavailable. Members it
    does not have, DHIS2 leaves out without a word (its collection service looks them up and skips the rest).
    """
    status, body = client.request(
        "POST", f"/api/{collection}/{owner}/{prop}", body={"additions": [{"id": m} for m in members]}
    )
    if status < 300:
        return None
    message = body.get("message") if isinstance(body, dict) else str(body)[:300]
    return CollectionRefusal(status, str(message or ""))


def update_option_combos(dhis2: Dhis2Client) -> None:
    """DHIS2's maintenance task that makes the option combos of every category combo."""
    status, body = dhis2.request("POST", "/api/maintenance/categoryOptionComboUpdate")
    if status >= 300:
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        raise Dhis2Rejected(f"DHIS2 refused to update the category option combos ({status}): {message}", status)
