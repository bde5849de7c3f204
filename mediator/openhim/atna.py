"""IHE ATNA audit events (RFC 3881, DICOM audit message vocabulary) for the OpenHIM core's audit log: who sent what
about whom to DHIS2. The people are named only by the DHIS2 UIDs of their tracked entities (what DHIS2 received),
never by an openIMIS identifier or a value of their record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

EXPORT = {"code": "110106", "displayName": "Export", "codeSystemName": "DCM"}
DELIVERY = {"code": "openimis-dhis2", "displayName": "openIMIS data delivered to DHIS2", "codeSystemName": "openimis"}
SOURCE = {"code": "110153", "displayName": "Source Role ID", "codeSystemName": "DCM"}
DESTINATION = {"code": "110152", "displayName": "Destination Role ID", "codeSystemName": "DCM"}
APPLICATION = {"code": "110150", "displayName": "Application", "codeSystemName": "DCM"}
PATIENT_NUMBER = {"code": "2", "displayName": "Patient Number", "codeSystemName": "RFC-3881"}
TRANSACTION = {"code": "openhim-transaction", "displayName": "OpenHIM transaction", "codeSystemName": "openimis"}
SERVER_PROCESS = {"code": "4", "displayName": "Application Server Process", "codeSystemName": "RFC-3881"}
SUCCESS, MINOR_FAILURE = "0", "4"  # RFC 3881 event outcome indicators


def export_event(
    *,
    when: datetime,
    mediator: str,
    dhis2_host: str,
    client_id: str | None,
    openhim_id: str | None,
    tracked_entities: Sequence[str],
    rejected: int,
) -> dict[str, Any]:
    """The audit record of one delivery of insurees' data to DHIS2, as the core's `POST /audits` takes it."""
    participants = [
        {"userID": client_id or "unknown", "userIsRequestor": "true", "roleIDCode": SOURCE},
        {"userID": mediator, "userIsRequestor": "false", "roleIDCode": APPLICATION},
        {
            "userID": dhis2_host,
            "userIsRequestor": "false",
            "networkAccessPointID": dhis2_host,
            "networkAccessPointTypeCode": "1",  # a machine name
            "roleIDCode": DESTINATION,
        },
    ]
    objects = [
        {
            "participantObjectID": uid,
            "participantObjectTypeCode": "1",  # a person
            "participantObjectTypeCodeRole": "1",  # a patient
            "participantObjectIDTypeCode": PATIENT_NUMBER,
        }
        for uid in tracked_entities
    ]
    if openhim_id:
        objects.append(
            {
                "participantObjectID": openhim_id,
                "participantObjectTypeCode": "2",  # a system object
                "participantObjectTypeCodeRole": "20",  # a job
                "participantObjectIDTypeCode": TRANSACTION,
            }
        )
    return {
        "eventIdentification": {
            "eventDateTime": when.isoformat(),
            "eventOutcomeIndicator": MINOR_FAILURE if rejected else SUCCESS,
            "eventActionCode": "R",  # DICOM: an export reads the data it sends
            "eventID": EXPORT,
            "eventTypeCode": DELIVERY,
        },
        "activeParticipant": participants,
        "auditSourceIdentification": {"auditSourceID": mediator, "auditSourceTypeCode": SERVER_PROCESS},
        "participantObjectIdentification": objects,
    }
