"""Delivery decisions of a push, with DHIS2 mocked at the HTTP level."""

import json
import re

import responses

from mediator.delivery.push import push
from mediator.dhis2.client import Dhis2Client, RetryPolicy, make_auth
from mediator.dhis2.version import Version
from mediator.dhis2.writer import choose_writer
from mediator.mapping.insuree import InsureeTarget
from mediator.mapping.model import Setup
from mediator.openimis.reader import read_body
from tests import samples

URL = "https://dhis2.test"


def WRITER(client):  # noqa: N802 (stands for a writer choice, as the app makes it)
    return choose_writer(Version(2, 40, 3))


def client():
    return Dhis2Client(URL, make_auth("basic", "u", "p", ""), retry=RetryPolicy(attempts=3, sleep=lambda s: None))


def reading(*docs):
    return read_body(json.dumps(samples.bundle(*docs)).encode(), ("Patient", "Group"))


@responses.activate
def test_whole_request_refused_rejects_records_and_is_not_a_failure():
    responses.post(f"{URL}/api/tracker", status=400, json={"httpStatusCode": 400, "message": "Invalid UID `1x`"})
    result = push(reading(samples.patient()), InsureeTarget(), Setup(), client, 50, WRITER)
    assert result.failure is None
    (outcome,) = result.outcomes
    assert outcome.status == "rejected"
    assert "400" in outcome.reasons[0].message


@responses.activate
def test_dhis2_5xx_is_a_failure_and_records_stay_pending():
    responses.post(f"{URL}/api/tracker", status=503)
    result = push(reading(samples.patient()), InsureeTarget(), Setup(), client, 50, WRITER)
    assert type(result.failure).__name__ == "Dhis2Unavailable"
    assert [o.status for o in result.outcomes] == ["pending"]


@responses.activate
def test_batches_follow_the_batch_size():
    ok = {"status": "OK", "stats": {}, "validationReport": {"errorReports": []}, "bundleReport": {"typeReportMap": {}}}
    responses.post(f"{URL}/api/tracker", json=ok)
    docs = [samples.patient(f"00000000-0000-0000-0000-00000000000{i}", f"10{i}", family=None) for i in range(5)]
    result = push(reading(*docs), InsureeTarget(), Setup(), client, 2, WRITER)
    assert len(responses.calls) == 3
    assert [len(json.loads(c.request.body)["trackedEntities"]) for c in responses.calls] == [2, 2, 1]
    assert result.count("delivered") == 5


@responses.activate
def test_a_family_whose_members_are_nowhere_is_rejected_with_its_reason():
    responses.get(re.compile(f"{URL}/api/tracker/enrollments/.*"), status=404, json={"message": "not found"})
    result = push(reading(samples.group()), InsureeTarget(), Setup(), client, 50, WRITER)
    (outcome,) = result.outcomes
    assert outcome.record == f"Group/{samples.FAMILY}"
    assert outcome.status == "rejected"
    assert "none of its members is in DHIS2" in outcome.reasons[0].message
    assert [c.request.method for c in responses.calls] == ["GET", "GET"]


@responses.activate
def test_concurrent_batches_keep_their_order_and_all_count():
    ok = {"status": "OK", "stats": {}, "validationReport": {"errorReports": []}, "bundleReport": {"typeReportMap": {}}}
    responses.post(f"{URL}/api/tracker", json=ok)
    docs = [samples.patient(f"00000000-0000-0000-0000-00000000001{i}", f"11{i}", family=None) for i in range(7)]
    parallel = lambda c: choose_writer(Version(2, 40, 3), concurrency=3)  # noqa: E731
    result = push(reading(*docs), InsureeTarget(), Setup(), client, 2, parallel)
    assert len(responses.calls) == 4
    assert [o.record for o in result.outcomes] == [f"Patient/00000000-0000-0000-0000-00000000001{i}" for i in range(7)]
    assert result.count("delivered") == 7
