"""The fake DHIS2 refuses what DHIS2 refuses, with DHIS2's codes and statuses."""

import json
import time

import pytest
import requests

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.mapping import defaults
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, seed

A = defaults.INSUREE_ATTRIBUTES
VILLAGE_OU = org_unit_uid(samples.VILLAGE)
SYNC = {"async": "false"}


def server(version="2.40.3"):
    fake = FakeDhis2(version=version, users={DHIS2_USER: DHIS2_PASSWORD})
    seed(fake)
    return RunningFake(fake).start()


@pytest.fixture
def dhis2():
    running = server()
    yield running
    running.stop()


def te(uid="Aaaaaaaaaa1", ou=VILLAGE_OU, attrs=(), with_enrollment=True, **enr):
    doc = {
        "trackedEntity": uid,
        "trackedEntityType": defaults.PERSON_TRACKED_ENTITY_TYPE,
        "orgUnit": ou,
        "attributes": [],
    }
    if with_enrollment:
        doc["enrollments"] = [
            {
                "enrollment": enr.pop("enrollment", "Eaaaaaaaaa1"),
                "program": defaults.INSUREE_PROGRAM,
                "orgUnit": ou,
                "enrolledAt": "2020-01-01",
                "attributes": [{"attribute": a, "value": v} for a, v in attrs],
                **enr,
            }
        ]
    return doc


def send(running, *tes, params=SYNC, auth=(DHIS2_USER, DHIS2_PASSWORD)):
    return requests.post(
        f"{running.url}/api/tracker", params=params, json={"trackedEntities": list(tes)}, auth=auth, timeout=10
    )


def codes(resp):
    return sorted(e["errorCode"] for e in resp.json()["validationReport"]["errorReports"])


def test_valid_import_answers_200_ok(dhis2):
    resp = send(dhis2, te())
    assert resp.status_code == 200
    assert resp.json()["status"] == "OK"
    assert resp.json()["bundleReport"]["typeReportMap"]["TRACKED_ENTITY"]["stats"]["created"] == 1


def test_wrong_password_is_401(dhis2):
    assert send(dhis2, te(), auth=(DHIS2_USER, "nope")).status_code == 401


def test_malformed_uid_is_e1048_before_242(dhis2):
    resp = send(dhis2, te(uid="1bad"))
    assert resp.status_code == 409
    assert "E1048" in codes(resp)


def test_malformed_uid_rejects_the_whole_request_from_242():
    running = server("2.42.1")
    try:
        resp = send(running, te(), te(uid="1bad", with_enrollment=False))
        assert resp.status_code == 400
        assert running.fake.store.tracked_entities == {}
    finally:
        running.stop()


def test_unknown_org_unit_and_option_code_and_type(dhis2):
    resp = send(dhis2, te(ou="Zzzzzzzzzz1", attrs=[(A["gender"], "X")]))
    assert resp.status_code == 409
    assert {"E1049", "E1070", "E1125"} <= set(codes(resp))


def test_unique_attribute_value_cannot_be_reused(dhis2):
    assert send(dhis2, te(attrs=[(A["insuree_id"], "same")])).status_code == 200
    resp = send(dhis2, te(uid="Bbbbbbbbbb1", enrollment="Ebbbbbbbbb1", attrs=[(A["insuree_id"], "same")]))
    assert resp.status_code == 409
    assert "E1064" in codes(resp)


def test_program_not_open_to_org_unit_is_e1041():
    fake = FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})
    seed(fake, villages=(samples.VILLAGE,))
    fake.store.programs[defaults.INSUREE_PROGRAM]["organisationUnits"] = []
    running = RunningFake(fake).start()
    try:
        assert "E1041" in codes(send(running, te()))
    finally:
        running.stop()


def test_only_one_enrollment_per_program(dhis2):
    send(dhis2, te())
    resp = send(dhis2, te(enrollment="Ecccccccccc"))
    assert "E1016" in codes(resp)


def test_atomic_object_commits_valid_objects_but_still_answers_409(dhis2):
    resp = send(
        dhis2,
        te(),
        te(uid="Bbbbbbbbbb1", ou="Zzzzzzzzzz1", enrollment="Ebbbbbbbbb1"),
        params={**SYNC, "atomicMode": "OBJECT"},
    )
    assert resp.status_code == 409
    assert resp.json()["status"] == "ERROR"
    assert "Aaaaaaaaaa1" in dhis2.fake.store.tracked_entities
    assert "Bbbbbbbbbb1" not in dhis2.fake.store.tracked_entities


def test_atomic_all_commits_nothing_on_error(dhis2):
    send(dhis2, te(), te(uid="Bbbbbbbbbb1", ou="Zzzzzzzzzz1", enrollment="Ebbbbbbbbb1"))
    assert dhis2.fake.store.tracked_entities == {}


def test_import_is_async_unless_async_is_exactly_false_before_241(dhis2):
    for params in ({}, {"async": "False"}):
        resp = send(dhis2, te(), params=params)
        assert resp.status_code == 200
        assert resp.json()["message"] == "Tracker job added"
    job = resp.json()["response"]["id"]
    for _ in range(50):
        notes = requests.get(f"{dhis2.url}/api/tracker/jobs/{job}", auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=5).json()
        if notes and notes[0]["completed"]:
            break
        time.sleep(0.05)
    report = requests.get(f"{dhis2.url}/api/tracker/jobs/{job}/report", auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=5)
    assert report.status_code == 200
    assert report.json()["status"] == "OK"


def test_async_false_in_any_case_is_sync_from_241():
    running = server("2.41.0")
    try:
        resp = send(running, te(), params={"async": "False"})
        assert resp.json()["status"] == "OK"
    finally:
        running.stop()


def test_null_value_deletes_an_attribute(dhis2):
    send(dhis2, te(attrs=[(A["gender"], "F")]))
    send(dhis2, te(attrs=[(A["gender"], None)]))
    assert A["gender"] not in dhis2.fake.store.tracked_entities["Aaaaaaaaaa1"]["attributes"]


def test_mandatory_program_attribute_is_e1018(dhis2):
    pa = dhis2.fake.store.programs[defaults.INSUREE_PROGRAM]["programTrackedEntityAttributes"][0]
    pa["mandatory"] = True
    assert "E1018" in codes(send(dhis2, te()))


def test_malformed_request_is_400_from_240(dhis2):
    resp = send(dhis2, te(status="BOGUS"))
    assert resp.status_code == 400


def test_metadata_import_refuses_orphan_org_unit_with_409(dhis2):
    payload = {
        "organisationUnits": [
            {
                "id": "Oooooooooo1",
                "name": "x",
                "shortName": "x",
                "openingDate": "2000-01-01",
                "parent": {"id": "Nnnnnnnnnn1"},
            }
        ]
    }
    resp = requests.post(f"{dhis2.url}/api/metadata", json=payload, auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=5)
    assert resp.status_code == 409
    assert resp.json()["response"]["status"] == "ERROR"


def test_non_object_or_non_string_ids_are_malformed(dhis2):
    bad = {"trackedEntities": [{"trackedEntity": ["x"], "enrollments": ["y"]}]}
    resp = requests.post(
        f"{dhis2.url}/api/tracker", params=SYNC, json=bad, auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=5
    )
    assert resp.status_code == 400


def test_objects_without_uid_get_one(dhis2):
    doc = te()
    del doc["trackedEntity"]
    resp = send(dhis2, doc, params={**SYNC, "atomicMode": "OBJECT"})
    assert resp.json()["status"] == "OK"
    assert len(dhis2.fake.store.tracked_entities) == 1


def test_no_tracker_importer_before_236():
    running = server("2.35.4")
    try:
        assert send(running, te()).status_code == 404
    finally:
        running.stop()


def event(uid="Vaaaaaaaaa1", stage=None, values=(), enrollment="Eaaaaaaaaa1", ou=VILLAGE_OU, **extra):
    from mediator.mapping.model import Setup

    return {
        "event": uid,
        "programStage": stage or Setup().stages["policy"],
        "enrollment": enrollment,
        "orgUnit": ou,
        "occurredAt": "2020-01-01",
        "status": "ACTIVE",
        "dataValues": [{"dataElement": d, "value": v} for d, v in values],
        **extra,
    }


def send_events(running, *events, params=SYNC):
    return requests.post(
        f"{running.url}/api/tracker",
        params=params,
        json={"events": list(events)},
        auth=(DHIS2_USER, DHIS2_PASSWORD),
        timeout=10,
    )


def test_events_are_validated_against_stage_and_option_sets(dhis2):
    from mediator.mapping.model import Setup

    s = Setup()
    assert send(dhis2, te()).status_code == 200
    ok = send_events(
        dhis2, event(values=[(s.data_elements["policy.status"], "2"), (s.data_elements["policy.value"], "10000")])
    )
    assert ok.status_code == 200, ok.text
    assert dhis2.fake.store.events["Vaaaaaaaaa1"]["dataValues"][s.data_elements["policy.status"]] == "2"
    bad = send_events(
        dhis2,
        event("Vbbbbbbbbb1", values=[(s.data_elements["policy.status"], "99")]),
        event("Vccccccccc1", values=[(s.data_elements["claim.claimed"], "1")]),
        event("Vddddddddd1", stage="Zzzzzzzzzz1"),
        event("Veeeeeeeee1", enrollment="Enoneeeeee1"),
        event("Vfffffffff1", occurredAt=None),
        event("Vggggggggg1", values=[(s.data_elements["policy.value"], "lots")]),
    )
    assert bad.status_code == 409
    assert codes(bad) == ["E1013", "E1031", "E1033", "E1125", "E1302", "E1305"]


def test_null_data_value_deletes_it(dhis2):
    from mediator.mapping.model import Setup

    de = Setup().data_elements["policy.value"]
    send(dhis2, te())
    send_events(dhis2, event(values=[(de, "5")]))
    send_events(dhis2, event(values=[(de, None)]))
    assert de not in dhis2.fake.store.events["Vaaaaaaaaa1"]["dataValues"]


def test_numbers_follow_dhis2s_rule(dhis2):
    from mediator.mapping.model import Setup

    de = Setup().data_elements["policy.value"]
    send(dhis2, te())
    for bad in ("NaN", "Infinity", "1e5", "01", "1" * 260):
        assert "E1302" in codes(send_events(dhis2, event(values=[(de, bad)]))), bad
    assert send_events(dhis2, event(values=[(de, "-12.5")])).status_code == 200


def test_org_unit_codes_are_unique(dhis2):
    unit = {"id": "Oooooooooo1", "name": "x", "shortName": "x", "code": "R1", "openingDate": "2000-01-01"}
    other = {**unit, "id": "Oooooooooo2"}
    assert (
        requests.post(
            f"{dhis2.url}/api/metadata",
            json={"organisationUnits": [unit]},
            auth=(DHIS2_USER, DHIS2_PASSWORD),
            timeout=5,
        ).status_code
        == 200
    )
    resp = requests.post(
        f"{dhis2.url}/api/metadata", json={"organisationUnits": [other]}, auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=5
    )
    assert resp.status_code == 409
    assert "E5003" in json.dumps(resp.json())


def get(running, path, **params):
    return requests.get(f"{running.url}{path}", params=params, auth=(DHIS2_USER, DHIS2_PASSWORD), timeout=10)


def post_legacy(running, kind, *objects, **params):
    return requests.post(
        f"{running.url}/api/{kind}",
        params={"strategy": "CREATE_AND_UPDATE", **params},
        json={kind: list(objects)},
        auth=(DHIS2_USER, DHIS2_PASSWORD),
        timeout=10,
    )


def legacy_tei(uid="Aaaaaaaaaa1", enrollment="Eaaaaaaaaa1"):
    return {
        "trackedEntityInstance": uid,
        "trackedEntityType": defaults.PERSON_TRACKED_ENTITY_TYPE,
        "orgUnit": VILLAGE_OU,
        "attributes": [],
        "enrollments": [
            {
                "enrollment": enrollment,
                "program": defaults.INSUREE_PROGRAM,
                "orgUnit": VILLAGE_OU,
                "enrollmentDate": "2020-01-01",
                "incidentDate": "2020-01-01",
            }
        ],
    }


def legacy_event(values, uid="Vaaaaaaaaa1"):
    from mediator.mapping.model import Setup

    return {
        "event": uid,
        "programStage": Setup().stages["policy"],
        "enrollment": "Eaaaaaaaaa1",
        "orgUnit": VILLAGE_OU,
        "eventDate": "2020-01-01",
        "status": "ACTIVE",
        "dataValues": [{"dataElement": d, "value": v} for d, v in values],
    }


@pytest.mark.parametrize("version", ["2.33.9", "2.35.4"])
def test_no_tracker_api_reads_before_236(version):
    running = server(version)
    try:
        assert send(running, te()).status_code == 404
        running.fake.store.enrollments["Eaaaaaaaaa1"] = {"enrollment": "Eaaaaaaaaa1"}  # present, but not there
        assert get(running, "/api/tracker/enrollments/Eaaaaaaaaa1").status_code == 404
        assert get(running, "/api/tracker/events/Vaaaaaaaaa1").status_code == 404
        assert get(running, "/api/tracker/trackedEntities/Aaaaaaaaaa1").status_code == 404
    finally:
        running.stop()


def test_legacy_reads_answer_in_legacy_names_and_404_when_absent():
    from mediator.mapping.model import Setup

    de = Setup().data_elements["policy.value"]
    running = server("2.35.4")
    try:
        assert post_legacy(running, "trackedEntityInstances", legacy_tei()).status_code == 200
        assert post_legacy(running, "events", legacy_event([(de, "5")])).status_code == 200
        enrollment = get(running, "/api/enrollments/Eaaaaaaaaa1").json()
        assert enrollment["trackedEntityInstance"] == "Aaaaaaaaaa1" and enrollment["enrollmentDate"] == "2020-01-01"
        assert "trackedEntity" not in enrollment and "enrolledAt" not in enrollment
        event = get(running, "/api/events/Vaaaaaaaaa1").json()
        assert event["eventDate"] == "2020-01-01" and "occurredAt" not in event
        assert event["dataValues"] == [{"dataElement": de, "value": "5"}]
        assert get(running, "/api/enrollments/Enoneeeeee1").status_code == 404
        assert get(running, "/api/events/Vnoneeeeee1").status_code == 404
    finally:
        running.stop()


def test_no_legacy_reads_from_242():
    running = server("2.42.1")
    try:
        assert send(running, te()).status_code == 200
        assert get(running, "/api/tracker/enrollments/Eaaaaaaaaa1").status_code == 200
        assert get(running, "/api/enrollments/Eaaaaaaaaa1").status_code == 404
    finally:
        running.stop()


def test_a_legacy_event_update_replaces_its_data_values_unless_asked_to_merge():
    from mediator.mapping.model import Setup

    s = Setup().data_elements
    status, value = s["policy.status"], s["policy.value"]
    running = server("2.35.4")
    try:
        post_legacy(running, "trackedEntityInstances", legacy_tei())
        post_legacy(running, "events", legacy_event([(status, "2"), (value, "5")]))
        post_legacy(running, "events", legacy_event([(value, "6")]), mergeDataValues="true")
        assert running.fake.store.events["Vaaaaaaaaa1"]["dataValues"] == {status: "2", value: "6"}
        post_legacy(running, "events", legacy_event([(value, "7")]))
        assert running.fake.store.events["Vaaaaaaaaa1"]["dataValues"] == {value: "7"}
    finally:
        running.stop()


def test_a_legacy_enrollment_writes_its_program_attributes_on_the_instance():
    running = server("2.35.4")
    try:
        post_legacy(running, "trackedEntityInstances", legacy_tei())
        update = {
            "enrollment": "Eaaaaaaaaa1",
            "trackedEntityInstance": "Aaaaaaaaaa1",
            "program": defaults.INSUREE_PROGRAM,
            "orgUnit": VILLAGE_OU,
            "enrollmentDate": "2020-01-01",
            "attributes": [{"attribute": A["family_type"], "value": "H"}],
        }
        assert post_legacy(running, "enrollments", update).status_code == 200
        assert running.fake.store.tracked_entities["Aaaaaaaaaa1"]["attributes"][A["family_type"]] == "H"
        shown = get(running, "/api/enrollments/Eaaaaaaaaa1").json()["attributes"]
        assert shown == [{"attribute": A["family_type"], "value": "H"}]
    finally:
        running.stop()
