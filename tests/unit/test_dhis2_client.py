"""The DHIS2 client: what it retries, how long it waits, and what it never repeats."""

import pytest
import requests
import responses

from mediator.dhis2.client import Dhis2Client, RetryPolicy, make_auth
from mediator.dhis2.errors import Dhis2AuthFailed, Dhis2Unavailable

URL = "https://dhis2.test"


def client(attempts=4):
    waits: list[float] = []
    exchanges: list = []
    c = Dhis2Client(
        URL,
        make_auth("basic", "u", "p", ""),
        on_exchange=exchanges.append,
        retry=RetryPolicy(attempts=attempts, base=1.0, cap=8.0, sleep=waits.append),
    )
    return c, waits, exchanges


@responses.activate
def test_503_then_success_is_retried_and_every_attempt_recorded():
    responses.post(f"{URL}/api/tracker", status=503)
    responses.post(f"{URL}/api/tracker", status=503)
    responses.post(f"{URL}/api/tracker", json={"status": "OK"})
    c, waits, exchanges = client()
    assert c.request("POST", "/api/tracker", body={}) == (200, {"status": "OK"})
    assert [e.status for e in exchanges] == [503, 503, 200]
    assert len(waits) == 2 and 0 <= waits[0] <= 1.0 and 0 <= waits[1] <= 2.0


@responses.activate
def test_retry_after_is_honoured_within_the_cap():
    responses.get(f"{URL}/api/system/info", status=429, headers={"Retry-After": "3"})
    responses.get(f"{URL}/api/system/info", status=503, headers={"Retry-After": "120"})
    responses.get(f"{URL}/api/system/info", json={"version": "2.40.1"})
    c, waits, _ = client()
    c.request("GET", "/api/system/info")
    assert waits == [3.0, 8.0]


@responses.activate
def test_validation_errors_are_never_retried():
    responses.post(f"{URL}/api/tracker", status=409, json={"status": "ERROR"})
    c, waits, exchanges = client()
    assert c.request("POST", "/api/tracker", body={})[0] == 409
    assert waits == [] and len(exchanges) == 1


@responses.activate
def test_500_and_auth_failures_are_not_retried():
    responses.post(f"{URL}/api/tracker", status=500)
    c, waits, _ = client()
    with pytest.raises(Dhis2Unavailable):
        c.request("POST", "/api/tracker", body={})
    assert waits == []
    responses.replace(responses.POST, f"{URL}/api/tracker", status=401)
    with pytest.raises(Dhis2AuthFailed):
        c.request("POST", "/api/tracker", body={})
    assert waits == []


@responses.activate
def test_connection_errors_are_retried_then_reported():
    responses.get(f"{URL}/api/system/info", body=requests.ConnectionError("refused"))
    c, waits, exchanges = client(attempts=3)
    with pytest.raises(Dhis2Unavailable):
        c.request("GET", "/api/system/info")
    assert len(waits) == 2
    assert [e.error for e in exchanges] == ["ConnectionError"] * 3


@responses.activate
def test_api_token_is_sent_as_dhis2_expects():
    responses.get(f"{URL}/api/system/info", json={"version": "2.39.0"})
    c = Dhis2Client(URL, make_auth("token", "", "", "d2pat_abc"))
    c.request("GET", "/api/system/info")
    assert responses.calls[0].request.headers["Authorization"] == "ApiToken d2pat_abc"


@responses.activate
def test_credentials_go_with_each_request_and_never_onto_a_shared_session():
    responses.get(f"{URL}/api/system/info", json={"version": "2.40.1"})
    shared = requests.Session()
    Dhis2Client(URL, make_auth("basic", "u", "p", ""), session=shared).system_info()
    assert shared.auth is None and shared.headers["Accept"] == "*/*"  # the session is as it was given
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_two_users_or_a_changed_password_never_share_a_session():
    from mediator.delivery.worker import Deliverer

    deliverer = Deliverer(journal=None)  # type: ignore[arg-type]  # sessions need no journal
    alice = deliverer.session(URL, "basic", "alice", "a-1", "")
    assert deliverer.session(URL + "/", "basic", "alice", "a-1", "") is alice
    assert deliverer.session(URL, "basic", "bob", "b-1", "") is not alice
    assert deliverer.session(URL, "basic", "alice", "a-2", "") is not alice


@responses.activate
def test_retry_after_as_an_http_date_without_zone_is_read_as_utc():
    responses.get(f"{URL}/api/system/info", status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 -0000"})
    responses.get(f"{URL}/api/system/info", json={"version": "2.40.1"})
    c, waits, _ = client()
    c.request("GET", "/api/system/info")
    assert waits == [0.0]  # a date in the past: try again at once


def legacy_client():
    from mediator.dhis2.client import Dhis2Client

    return Dhis2Client(URL, make_auth("basic", "u", "p", ""), retry=RetryPolicy(attempts=1))


TEI = {
    "trackedEntities": [
        {
            "trackedEntity": "Aaaaaaaaaa1",
            "trackedEntityType": "Tttttttttt1",
            "orgUnit": "Oooooooooo1",
            "attributes": [],
            "enrollments": [
                {
                    "enrollment": "Eaaaaaaaaa1",
                    "program": "Pppppppppp1",
                    "orgUnit": "Oooooooooo1",
                    "enrolledAt": "2020-01-01",
                }
            ],
        }
    ]
}


@responses.activate
def test_legacy_409_without_summaries_is_a_refusal_not_a_success():
    from mediator.dhis2.legacy import import_legacy

    responses.post(
        f"{URL}/api/trackedEntityInstances",
        status=409,
        json={"httpStatusCode": 409, "status": "ERROR", "message": "bad"},
    )
    report = import_legacy(legacy_client(), TEI)
    assert report.status == "ERROR" and report.errors[0].uid == ""


@responses.activate
def test_legacy_nested_summary_without_reference_is_charged_to_its_instance():
    from mediator.dhis2.legacy import import_legacy

    summaries = {
        "status": "ERROR",
        "importSummaries": [
            {
                "status": "SUCCESS",
                "reference": "Aaaaaaaaaa1",
                "enrollments": {
                    "importSummaries": [{"status": "ERROR", "conflicts": [{"object": "program", "value": "no access"}]}]
                },
            }
        ],
    }
    responses.post(f"{URL}/api/trackedEntityInstances", status=409, json={"response": summaries})
    report = import_legacy(legacy_client(), TEI)
    assert [(e.tracker_type, e.uid) for e in report.errors] == [("ENROLLMENT", "Aaaaaaaaaa1")]


@responses.activate
def test_a_removed_api_is_api_missing_so_the_records_wait_and_the_version_is_asked_again():
    from mediator.dhis2.errors import Dhis2ApiMissing
    from mediator.dhis2.legacy import import_legacy
    from mediator.dhis2.tracker import import_tracker

    responses.post(f"{URL}/api/trackedEntityInstances", status=404)
    responses.post(f"{URL}/api/tracker", status=404)
    with pytest.raises(Dhis2ApiMissing):
        import_legacy(legacy_client(), TEI)
    with pytest.raises(Dhis2ApiMissing):
        import_tracker(legacy_client(), TEI)


@responses.activate
def test_the_legacy_writer_reads_an_event_from_the_legacy_api_in_tracker_names():
    from mediator.dhis2.version import Version
    from mediator.dhis2.writer import choose_writer

    legacy = {
        "event": "Vaaaaaaaaa1",
        "program": "Pppppppppp1",
        "programStage": "Ssssssssss1",
        "enrollment": "Eaaaaaaaaa1",
        "trackedEntityInstance": "Aaaaaaaaaa1",
        "orgUnit": "Oooooooooo1",
        "eventDate": "2020-01-01T00:00:00.000",
        "status": "ACTIVE",
        "dataValues": [{"dataElement": "Dddddddddd1", "value": "5"}],
    }
    responses.get(f"{URL}/api/events/Vaaaaaaaaa1", json=legacy)
    responses.get(f"{URL}/api/events/Vnoneeeeee1", status=404, json={"httpStatusCode": 404})
    writer = choose_writer(Version(2, 35))
    event = writer.read_event(legacy_client(), "Vaaaaaaaaa1")
    assert event == {
        "event": "Vaaaaaaaaa1",
        "program": "Pppppppppp1",
        "programStage": "Ssssssssss1",
        "orgUnit": "Oooooooooo1",
        "enrollment": "Eaaaaaaaaa1",
        "occurredAt": "2020-01-01T00:00:00.000",
        "status": "ACTIVE",
        "dataValues": [{"dataElement": "Dddddddddd1", "value": "5"}],
    }
    assert writer.read_event(legacy_client(), "Vnoneeeeee1") is None


@responses.activate
def test_each_writer_reads_an_enrollment_through_the_api_it_writes_with():
    from mediator.dhis2.version import Version
    from mediator.dhis2.writer import choose_writer

    responses.get(
        f"{URL}/api/enrollments/Eaaaaaaaaa1",
        json={"enrollment": "Eaaaaaaaaa1", "trackedEntityInstance": "Aaaaaaaaaa1", "enrollmentDate": "2020-01-01"},
    )
    responses.get(
        f"{URL}/api/tracker/enrollments/Eaaaaaaaaa1",
        json={"enrollment": "Eaaaaaaaaa1", "trackedEntity": "Aaaaaaaaaa1", "enrolledAt": "2020-01-01"},
    )
    expected = {"enrollment": "Eaaaaaaaaa1", "trackedEntity": "Aaaaaaaaaa1", "enrolledAt": "2020-01-01"}
    for version, preference, path in [
        (Version(2, 35), "auto", "/api/enrollments/"),
        (Version(2, 41), "legacy", "/api/enrollments/"),
        (Version(2, 40), "auto", "/api/tracker/enrollments/"),
    ]:
        responses.calls.reset()
        assert choose_writer(version, preference).read_enrollment(legacy_client(), "Eaaaaaaaaa1") == expected
        assert [c.request.path_url.split("?")[0] for c in responses.calls] == [path + "Eaaaaaaaaa1"]
