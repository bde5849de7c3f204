"""`subscribe`: openIMIS's Subscriptions made to point at the OpenHIM channels with the client's credentials."""

import json
import re

import responses

from mediator.openimis.api import FhirApi
from mediator.openimis.subscriptions import basic_header, subscribe, wanted

BASE = "http://openimis.test/api/api_fhir_r4/"
WANTS = wanted("https://openhim.test:5000", "/openimis/insurees", "/openimis/metadata")


def listing(*subscriptions):
    return {"resourceType": "Bundle", "entry": [{"resource": s} for s in subscriptions]}


def existing(want, header, sid="s-1"):
    return {
        "resourceType": "Subscription",
        "id": sid,
        "status": "active",
        "end": "2099-01-01T00:00:00Z",
        "criteria": want.criteria,
        "channel": {"type": "rest-hook", "endpoint": want.endpoint, "header": [header]},
    }


def serve(*subscriptions, delete_status=204):
    responses.add(responses.POST, BASE + "login/", json={"token": "t", "exp": 4102444800})
    responses.add(responses.GET, re.compile(re.escape(BASE + "Subscription/") + r"\?.*"), json=listing(*subscriptions))
    responses.add(
        responses.POST, BASE + "Subscription/", status=201, json={"resourceType": "Subscription", "id": "new"}
    )
    responses.add(responses.DELETE, re.compile(re.escape(BASE + "Subscription/") + r".+/"), status=delete_status)


def made():
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.method == "POST" and "Subscription" in c.request.url
    ]


@responses.activate
def test_missing_subscriptions_are_made_with_the_client_credentials_in_the_header():
    serve()
    header = basic_header("openimis", "secret")
    outcomes = subscribe(FhirApi(BASE, "u", "p", retries=0), WANTS, header)
    assert [o.action for o in outcomes] == ["created", "created"]
    bodies = made()
    assert {b["criteria"] for b in bodies} == {"Patient", "Organisation?resourceType=bus"}
    assert all(b["channel"]["header"] == [header] and b["reason"] in ("Patient", "Organisation") for b in bodies)
    assert json.loads(header) == {"Authorization": "Basic b3BlbmltaXM6c2VjcmV0"}


@responses.activate
def test_subscriptions_in_place_are_left_alone():
    header = basic_header("openimis", "secret")
    serve(existing(WANTS[0], header, "a"), existing(WANTS[1], header, "b"))
    outcomes = subscribe(FhirApi(BASE, "u", "p", retries=0), WANTS, header)
    assert [o.action for o in outcomes] == ["in place", "in place"] and made() == []


@responses.activate
def test_a_subscription_with_other_credentials_is_replaced_new_one_first():
    serve(existing(WANTS[0], basic_header("openimis", "old")))
    outcomes = subscribe(FhirApi(BASE, "u", "p", retries=0), WANTS[:1], basic_header("openimis", "new"))
    assert outcomes[0].action == "replaced"
    methods = [c.request.method for c in responses.calls if "Subscription/" in c.request.url]
    assert methods == ["GET", "POST", "DELETE"]


@responses.activate
def test_one_another_user_made_is_left_in_place_and_said_so():
    serve(existing(WANTS[0], basic_header("openimis", "old")), delete_status=403)
    outcomes = subscribe(FhirApi(BASE, "u", "p", retries=0), WANTS[:1], basic_header("openimis", "new"))
    assert outcomes[0].action == "created (1 older left in place)"


@responses.activate
def test_check_only_reports():
    serve()
    outcomes = subscribe(FhirApi(BASE, "u", "p", retries=0), WANTS, basic_header("a", "b"), check=True)
    assert [o.action for o in outcomes] == ["missing", "missing"] and made() == []
