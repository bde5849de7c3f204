"""The ATNA audit event of a delivery: RFC 3881 / DICOM vocabulary, people named by DHIS2 UIDs only."""

import json
from datetime import UTC, datetime

from mediator.openhim.atna import export_event


def event(**given):
    values = {
        "when": datetime(2026, 12, 2, 7, 0, tzinfo=UTC),
        "mediator": "urn:mediator:openimis-dhis2",
        "dhis2_host": "dhis2.example.org",
        "client_id": "openimis",
        "openhim_id": "6750a1b2c3d4e5f6a7b8c9d0",
        "tracked_entities": ["Abc123def45", "Xyz987wvu65"],
        "rejected": 0,
    }
    return export_event(**(values | given))


def test_an_export_names_who_sent_it_where_and_about_whom():
    doc = event()
    assert doc["eventIdentification"]["eventID"] == {"code": "110106", "displayName": "Export", "codeSystemName": "DCM"}
    assert doc["eventIdentification"]["eventOutcomeIndicator"] == "0"
    assert doc["eventIdentification"]["eventDateTime"] == "2026-12-02T07:00:00+00:00"
    requestors = [p["userID"] for p in doc["activeParticipant"] if p["userIsRequestor"] == "true"]
    assert requestors == ["openimis"]
    destination = next(p for p in doc["activeParticipant"] if p["roleIDCode"]["code"] == "110152")
    assert destination["networkAccessPointID"] == "dhis2.example.org"
    people = [
        o["participantObjectID"]
        for o in doc["participantObjectIdentification"]
        if o["participantObjectTypeCode"] == "1"
    ]
    assert people == ["Abc123def45", "Xyz987wvu65"]
    jobs = [
        o["participantObjectID"]
        for o in doc["participantObjectIdentification"]
        if o["participantObjectTypeCode"] == "2"
    ]
    assert jobs == ["6750a1b2c3d4e5f6a7b8c9d0"]
    json.dumps(doc)  # what the core's API takes


def test_a_delivery_with_rejected_records_is_a_minor_failure():
    assert event(rejected=2)["eventIdentification"]["eventOutcomeIndicator"] == "4"


def test_a_push_without_an_openhim_transaction_names_no_job_and_an_unknown_requestor():
    doc = event(openhim_id=None, client_id=None)
    assert {o["participantObjectTypeCode"] for o in doc["participantObjectIdentification"]} == {"1"}
    assert doc["activeParticipant"][0]["userID"] == "unknown"
