"""The endpoint an OpenHIM polling channel calls: each call pulls from openIMIS, with the channel's own credentials."""

import json

from mediator.journal.pulls import take_lease
from tests.conftest import basic, mediator_client

PULL = basic("openhim-pull", "pull-route-pass")


def client(env, **extra):
    return mediator_client(env, channel_pull_password="pull-route-pass", **extra)


def answer(resp):
    doc = json.loads(resp.data)
    return doc, json.loads(doc["response"]["body"])


def test_the_pull_channel_refuses_other_credentials(env):
    resp = client(env).get("/channels/pull", headers=basic("openhim-pull", "wrong"))
    assert resp.status_code == 401


def test_a_pull_with_openimis_not_configured_fails_saying_what_to_set(env):
    resp = client(env).get("/channels/pull", headers=PULL)
    doc, body = answer(resp)
    assert resp.status_code == 503 and doc["status"] == "Failed"
    assert "MEDIATOR_OPENIMIS_URL" in body["issue"][0]["diagnostics"]


def test_a_pull_while_another_runs_pulls_nothing(env):
    app = client(env, openimis_url="http://127.0.0.1:9/api/api_fhir_r4/", openimis_username="u", openimis_password="p")
    journal = app.application.extensions["journal"]
    take_lease(journal, "http://127.0.0.1:9/api/api_fhir_r4", "elsewhere:1:pull")
    resp = app.get("/channels/pull", headers=PULL)
    doc, body = answer(resp)
    assert resp.status_code == 409 and doc["status"] == "Completed"
    assert "another pull" in body["issue"][0]["diagnostics"]


def test_openimis_unreachable_fails_the_pull_and_nothing_is_kept(env):
    app = client(env, openimis_url="http://127.0.0.1:9/api/api_fhir_r4/", openimis_username="u", openimis_password="p")
    resp = app.get("/channels/pull", headers=PULL)
    doc, body = answer(resp)
    assert resp.status_code == 502 and doc["status"] == "Failed"
    assert "not reachable" in json.dumps(body)


def test_other_channels_take_only_post(env):
    from tests.conftest import INSUREES_AUTH

    resp = client(env).get("/channels/insurees", headers=INSUREES_AUTH)
    assert resp.status_code == 405


def test_a_polling_call_pulls_from_openimis_and_answers_with_what_was_read(env, openimis, bootstrapped):
    from tests.openimis_local import PASSWORD, USER

    app = client(
        env,
        dhis2_url=bootstrapped.url,
        openimis_url=openimis.url,
        openimis_username=USER,
        openimis_password=PASSWORD,
        allow_default_passwords="true",
    )
    resp = app.get("/channels/pull", headers={**PULL, "X-OpenHIM-TransactionID": "poll-1"})
    doc, body = answer(resp)
    assert int(doc["properties"]["pulled_Patient"]) > 0 and doc["properties"]["records_pending"] == "0"
    assert doc["status"] in ("Successful", "Completed with error(s)"), body
    assert any("read from openIMIS: Patient" in i["diagnostics"] for i in body["issue"])
    again = app.get("/channels/pull", headers={**PULL, "X-OpenHIM-TransactionID": "poll-2"})
    doc, body = answer(again)
    assert doc["status"] == "Successful" and doc["properties"]["records_delivered"] == "0", body
