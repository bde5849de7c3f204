"""The insuree channel end to end inside one process: Flask test client → mediator → fake DHIS2 over HTTP."""

import json
from pathlib import Path

from mediator.mapping import defaults
from mediator.mapping.insuree import tracked_entity_uid
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, basic, mediator_client

A = defaults.INSUREE_ATTRIBUTES
PATH = "/channels/insurees"


def post(client, doc, headers=INSUREES_AUTH):
    body = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    resp = client.post(PATH, data=body, headers={**headers, "Content-Type": "application/json"})
    return resp, json.loads(resp.data)


def inner(envelope):
    return json.loads(envelope["response"]["body"])


def stored(fake, key):
    return fake.fake.store.tracked_entities.get(tracked_entity_uid(key))


def tracker_calls(fake):
    return [r for r in fake.fake.requests_seen if r[1] == "/api/tracker"]


def test_bare_patient_creates_a_tracked_entity_enrolled_in_family_insuree(client, fake):
    resp, env = post(client, samples.patient())
    assert resp.status_code == 200
    assert resp.content_type == "application/json+openhim"
    assert env["status"] == "Successful"
    assert env["response"]["headers"]["content-type"] == "application/json"
    te = stored(fake, samples.HEAD)
    assert te["orgUnit"] == org_unit_uid(samples.VILLAGE)
    assert te["attributes"][A["insuree_id"]] == samples.HEAD
    assert te["attributes"][A["gender"]] == "F"
    (enrollment,) = [e for e in fake.fake.store.enrollments.values() if e["trackedEntity"] == te["trackedEntity"]]
    assert enrollment["program"] == defaults.INSUREE_PROGRAM
    assert env["properties"]["dhis2_tracked_entity_created"] == "1"
    assert env["properties"]["dhis2_enrollment_created"] == "1"


def test_one_orchestration_per_dhis2_call_and_the_version_asked_once(client, fake):
    _, env = post(client, samples.patient())
    info, tracker = env["orchestrations"]
    assert info["request"]["path"] == "/api/system/info"
    assert tracker["request"]["path"] == "/api/tracker"
    assert "async=false" in tracker["request"]["querystring"]
    assert tracker["response"]["status"] == 200
    assert tracker["request"]["timestamp"] and tracker["response"]["timestamp"]
    assert isinstance(tracker["request"]["body"], str) and isinstance(tracker["response"]["body"], str)
    _, again = post(client, samples.patient(gender="male"))
    assert [o["request"]["path"] for o in again["orchestrations"]] == ["/api/tracker"]
    assert len(tracker_calls(fake)) == 2


def test_sending_the_same_patient_twice_updates_and_never_duplicates(client, fake):
    post(client, samples.patient())
    resp, env = post(client, samples.patient(gender="male"))
    assert env["status"] == "Successful"
    assert len(fake.fake.store.tracked_entities) == 1
    assert len(fake.fake.store.enrollments) == 1
    assert stored(fake, samples.HEAD)["attributes"][A["gender"]] == "M"
    assert env["properties"]["dhis2_tracked_entity_updated"] == "1"
    assert env["properties"]["dhis2_tracked_entity_created"] == "0"


def test_bundle_of_family_and_members_writes_family_attributes_on_each(client, fake):
    doc = samples.bundle(
        samples.group(), samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False)
    )
    resp, env = post(client, doc)
    assert env["status"] == "Successful", inner(env)
    for key in (samples.HEAD, samples.MEMBER):
        attrs = stored(fake, key)["attributes"]
        assert attrs[A["poverty"]] == "true"
        assert attrs[A["family_type"]] == "H"
    assert stored(fake, samples.MEMBER)["attributes"][A["is_head"]] == "false"
    assert env["properties"]["records_delivered"] == "3"


def test_personal_data_stays_out_of_dhis2_and_the_transaction(client, fake):
    _, env = post(client, samples.patient())
    attrs = stored(fake, samples.HEAD)["attributes"]
    for field in ("first_name", "last_name", "phone", "identification_number"):
        assert A[field] not in attrs
    assert attrs[A["insurance_number"]] != "104000001"
    text = json.dumps(env)
    for secret in ("Ageni", "Nonino", "NAT-778899", "104000001", "+255", "test-pseudonym-key", "Dhis2-Test-Pass"):
        assert secret not in text


def test_wrong_credentials_are_refused(client, fake):
    resp, body = post(client, samples.patient(), basic("openhim-insurees", "wrong"))
    assert resp.status_code == 401
    assert body["resourceType"] == "OperationOutcome"
    resp, _ = post(client, samples.patient(), {})
    assert resp.status_code == 401
    assert tracker_calls(fake) == []


def test_an_invalid_record_is_rejected_naming_the_field_while_the_rest_goes(client, fake):
    good = samples.patient()
    bad = samples.patient(samples.MEMBER, "104000002", birthDate="not-a-date")
    resp, env = post(client, samples.bundle(good, bad))
    assert resp.status_code == 422
    assert env["status"] == "Completed with error(s)"
    errors = [i["diagnostics"] for i in inner(env)["issue"] if i["severity"] == "error"]
    assert errors == [f"Patient/{samples.MEMBER}: birthDate: Not a valid date."]
    assert stored(fake, samples.HEAD) is not None
    assert stored(fake, samples.MEMBER) is None


def test_a_push_with_nothing_valid_is_refused_whole_and_nothing_is_sent(client, fake):
    resp, env = post(
        client, samples.bundle(samples.patient(birthDate="x"), samples.patient(samples.MEMBER, "2", village=None))
    )
    assert resp.status_code == 400
    assert env["status"] == "Completed"
    assert len(inner(env)["issue"]) == 2
    assert tracker_calls(fake) == []


def test_body_that_is_not_json_gets_400(client, fake):
    resp, env = post(client, b"<xml/>")
    assert resp.status_code == 400
    assert "not valid JSON" in inner(env)["issue"][0]["diagnostics"]


def test_unknown_village_is_rejected_while_the_rest_of_the_bundle_goes(client, fake):
    lost = samples.patient(samples.MEMBER, "104000002", village=samples.OTHER_VILLAGE, family=None)
    resp, env = post(client, samples.bundle(samples.patient(family=None), lost))
    assert resp.status_code == 422
    assert env["status"] == "Completed with error(s)"
    assert stored(fake, samples.HEAD) is not None
    assert stored(fake, samples.MEMBER) is None
    diagnostics = [i["diagnostics"] for i in inner(env)["issue"] if i["severity"] == "error"]
    assert any(f"Patient/{samples.MEMBER}" in d and "village" in d and "E1049" in d for d in diagnostics)
    assert env["properties"]["records_rejected"] == "1"
    assert env["properties"]["records_delivered"] == "1"
    # the first import was refused whole, the second carried only the good record
    assert [o["request"]["path"] for o in env["orchestrations"]].count("/api/tracker") == 2


def test_single_patient_on_unknown_village_gets_422_completed(client, fake):
    resp, env = post(client, samples.patient(village=samples.OTHER_VILLAGE, family=None))
    assert resp.status_code == 422
    assert env["status"] == "Completed"
    assert fake.fake.store.tracked_entities == {}


def test_dhis2_unreachable_keeps_the_push_and_says_so(client, fake, live):
    fake.stop()
    resp, env = post(client, samples.patient())
    assert resp.status_code == 202
    assert env["status"] == "Processing" and "error" not in env
    assert env["properties"]["records_pending"] == "1"
    assert env["orchestrations"][0]["error"]["message"] == "ConnectionError"


def test_the_same_content_again_is_recognised_and_not_sent_twice(client, fake):
    post(client, samples.patient())
    resp, env = post(client, samples.patient())
    assert resp.status_code == 200 and env["status"] == "Successful"
    assert env["orchestrations"] == []
    assert len(tracker_calls(fake)) == 1


def test_a_resend_of_the_same_patient_answers_unchanged_and_successful(client, fake):
    post(client, samples.patient())
    resp, env = post(client, samples.patient())
    assert resp.status_code == 200 and env["status"] == "Successful"
    props = env["properties"]
    assert props["records_unchanged"] == "1" and props["records_delivered"] == "0"
    (issue,) = inner(env)["issue"]
    assert issue["severity"] == "information"
    assert issue["diagnostics"] == f"Patient/{samples.HEAD}: unchanged: DHIS2 already has this version of the record"


def test_a_push_of_new_and_unchanged_records_counts_each_and_is_successful(client, fake):
    post(client, samples.patient())
    resp, env = post(client, samples.bundle(samples.patient(), samples.patient(samples.MEMBER, "104000002")))
    assert resp.status_code == 200 and env["status"] == "Successful"
    props = env["properties"]
    assert props["records_delivered"] == "1" and props["records_unchanged"] == "1"
    texts = [i["diagnostics"] for i in inner(env)["issue"]]
    assert any(t.startswith(f"Patient/{samples.MEMBER}: delivered to DHIS2") for t in texts)
    assert any(t.startswith(f"Patient/{samples.HEAD}: unchanged") for t in texts)


def test_an_unchanged_record_beside_a_rejected_one_completes_with_errors(client, fake):
    post(client, samples.patient())
    elsewhere = samples.patient(samples.MEMBER, "104000002", village=samples.OTHER_VILLAGE, family=None)
    resp, env = post(client, samples.bundle(samples.patient(), elsewhere))
    assert resp.status_code == 422 and env["status"] == "Completed with error(s)"
    props = env["properties"]
    assert props["records_unchanged"] == "1" and props["records_rejected"] == "1" and props["records_delivered"] == "0"


def test_unknown_channel_path_is_404(client):
    resp = client.post("/channels/nope", data="{}", headers=INSUREES_AUTH)
    assert resp.status_code == 404


def test_console_change_takes_effect_without_restart(client, fake, live):
    live.publish({"send_names": True})
    _, env = post(client, samples.patient())
    assert env["status"] == "Successful"
    assert stored(fake, samples.HEAD)["attributes"][A["first_name"]] == "Ageni"


def test_too_large_or_wrong_method_get_json_errors(client, env):
    resp = client.get(PATH, headers=INSUREES_AUTH)
    assert resp.status_code == 405
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    small = mediator_client(env, max_body_mb="1")
    resp = small.post(PATH, data=b"x" * (1024 * 1024 + 1), headers=INSUREES_AUTH)
    assert resp.status_code == 413
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert list((Path(env["MEDIATOR_STATE_DIR"]) / "incoming").glob("*")) == []  # nothing left of the body


def test_records_refused_by_dhis2_are_not_retried(client, fake):
    fake.fake.store.tracked_entity_types.clear()
    resp, env = post(client, samples.patient())
    assert resp.status_code == 422
    assert env["status"] == "Completed"
    assert "error" not in env
    assert "E1005" in json.dumps(inner(env))


def test_hostile_shapes_get_400_naming_record_and_field(client, fake):
    cases = [
        {"resourceType": "Patient", "id": "p1", "identifier": ["abc"]},
        {"resourceType": "Patient", "id": "p1", "identifier": [{"type": {"coding": ["UUID"]}}]},
        {"resourceType": {"$where": 1}},
        {"resourceType": "Bundle", "type": "collection", "entry": [None, 5, {"resource": []}]},
    ]
    for doc in cases:
        resp, env = post(client, doc)
        assert resp.status_code == 400, doc
        assert inner(env)["issue"], doc
    assert "received_other" in post(client, cases[2])[1]["properties"]
    assert tracker_calls(fake) == []


def test_a_bundle_without_entries_or_type_gets_400_naming_the_field(client, fake):
    for doc, field in [
        ({"resourceType": "Bundle", "type": "collection"}, "Bundle: entry: the Bundle has no entries"),
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, "Bundle: entry: the Bundle has no entries"),
        ({"resourceType": "Bundle", "entry": [{"resource": samples.patient()}]}, "Bundle: type: "),
    ]:
        resp, env = post(client, doc)
        assert resp.status_code == 400, doc
        assert inner(env)["issue"][0]["diagnostics"].startswith(field), inner(env)
    assert tracker_calls(fake) == []


def test_deeply_nested_input_gets_400(client):
    ext = {"url": "a"}
    for _ in range(400):
        ext = {"url": "a", "extension": [ext]}
    resp, env = post(client, samples.patient(extension=[ext]))
    assert resp.status_code == 400
    resp, _ = post(client, b"[" * 50000 + b"]" * 50000)
    assert resp.status_code == 400


def test_a_family_sent_alone_updates_its_members_in_dhis2(client, fake):
    post(
        client, samples.bundle(samples.patient(family=None), samples.patient(samples.MEMBER, "104000002", family=None))
    )
    resp, env = post(client, samples.group(poverty=False))
    assert resp.status_code == 200, env["response"]["body"]
    for key in (samples.HEAD, samples.MEMBER):
        attrs = stored(fake, key)["attributes"]
        assert attrs[A["poverty"]] == "false" and attrs[A["family_type"]] == "H"
    assert len(fake.fake.store.enrollments) == 2


def test_a_family_without_member_list_counts_the_patients_that_name_it(client, fake):
    family = samples.group(members=())
    resp, env = post(client, samples.bundle(family, samples.patient()))
    assert resp.status_code == 200, inner(env)
    assert stored(fake, samples.HEAD)["attributes"][A["poverty"]] == "true"
