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
