"""The auditor view: its own credentials, read only, the pushes and what became of them, a record's history, dead
letters and replays, streamed exports; and nothing of a record beyond what DHIS2 received."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mediator.config.settings import build_settings
from mediator.journal.dead_letters import replay
from tests import samples
from tests.conftest import INSUREES_AUTH, basic, mediator_client

AUDITOR = basic("auditor", "Audit-pass-1")
LATER = datetime.now(UTC) + timedelta(hours=2)
ELSEWHERE = "0b0b0b0b-0000-4000-8000-000000000000"


@pytest.fixture
def client(env, fake, journal_url):
    client = mediator_client(env, journal_url=journal_url, auditor_password="Audit-pass-1")
    post = lambda doc, tx: client.post(  # noqa: E731
        "/channels/insurees",
        data=json.dumps(doc),
        headers={**INSUREES_AUTH, "Content-Type": "application/json", "X-OpenHIM-TransactionID": tx},
    )
    post(samples.patient(), "tx-now")
    fake.fake.fail_next = 100
    lost = samples.patient(samples.MEMBER, "104000002", village=ELSEWHERE, is_head=False)
    post(samples.bundle(samples.group(), lost), "tx-later")
    fake.fake.fail_next = 0
    client.application.extensions["deliverer"].work_once(build_settings(env), now=LATER)
    replay(client.application.extensions["journal"], by="someone")
    return client


def get(client, path, **args):
    resp = client.get(path, query_string=args, headers=AUDITOR)
    assert resp.status_code == 200, resp.data[:300]
    return resp


def test_only_the_auditor_s_own_credentials_open_it(client):
    assert client.get("/audit/").status_code == 401
    assert client.get("/audit/", headers=INSUREES_AUTH).status_code == 401  # a channel's credentials do not
    refused = client.get("/audit/", headers=basic("auditor", "wrong"))
    assert refused.status_code == 401 and "auditors" in refused.headers["WWW-Authenticate"]
    assert b"Not signed in" in refused.data
    assert client.post("/channels/insurees", headers=AUDITOR, data="{}").status_code == 401  # nor a channel
    assert get(client, "/audit/").status_code == 200


def test_it_is_closed_without_an_auditor_password(env, fake, journal_url):
    closed = mediator_client(env, journal_url=journal_url)
    assert closed.get("/audit/", headers=basic("auditor", "")).status_code == 401


def test_it_only_reads(client):
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/audit/", headers=AUDITOR).status_code == 405
    journal = client.application.extensions["audit_journal"]
    with pytest.raises(DBAPIError), journal.engine.begin() as connection:
        connection.execute(text("DELETE FROM outcomes"))


def test_pushes_show_what_came_in_and_what_became_of_it(client):
    pushes = get(client, "/audit/", format="json").json["pushes"]
    later, now = pushes[0], pushes[1]
    assert (now["openhim_transaction"], now["status"], now["records"]) == ("tx-now", "Successful", {"delivered": 1})
    assert later["openhim_transaction"] == "tx-later" and later["received"] == {"Group": 1, "Patient": 1}
    assert later["records"] == {"pending": 2} and later["status"] == "Processing"  # refused, then replayed
    assert later["dhis2"]["tracked_entity_created"] == 0  # DHIS2 took nothing of it
    only = get(client, "/audit/", format="json", status="Successful").json["pushes"]
    assert [p["openhim_transaction"] for p in only] == ["tx-now"]
    assert get(client, "/audit/", format="json", channel="claims").json["pushes"] == []


def test_a_push_in_detail_has_its_records_calls_and_replays(client):
    (later,) = [
        p for p in get(client, "/audit/", format="json").json["pushes"] if p["openhim_transaction"] == "tx-later"
    ]
    detail = get(client, f"/audit/pushes/{later['push']}", format="json").json
    assert {r["record"]: r["status"] for r in detail["records"]} == {
        f"Patient/{samples.MEMBER}": "rejected",
        f"Group/{samples.FAMILY}": "rejected",
    }
    statuses = [c["status"] for c in detail["calls"]]
    assert statuses.count(503) >= 1 and statuses[-1] == 409  # the attempts DHIS2 refused, then its refusal
    assert all(c["milliseconds"] is not None for c in detail["calls"])
    assert [e["kind"] for e in detail["events"]] == ["replay", "decided"]
    assert detail["events"][0]["by"] == "someone"
    page = get(client, f"/audit/pushes/{later['push']}").data.decode()
    assert "DHIS2 calls" in page and "someone" in page


def test_a_record_s_history_by_uuid_and_by_insurance_number(client):
    by_key = get(client, "/audit/records", format="json", uuid=samples.HEAD).json
    assert by_key["record"] == f"Patient/{samples.HEAD}"
    (version,) = by_key["versions"]
    assert version["state"] == "delivered" and version["openhim_transaction"] == "tx-now"
    assert "trackedEntity" in version["uids"]
    by_number = get(client, "/audit/records", format="json", number="104000001").json
    assert by_number == by_key
    assert get(client, "/audit/records", format="json", number="999").json["versions"] == []


def test_dead_letters_and_their_replays(client):
    doc = get(client, "/audit/dead-letters", format="json").json
    assert doc["dead_letters"] == []  # replayed: pending again
    (replayed,) = doc["replays"]
    assert replayed["by"] == "someone" and len(replayed["records"]) == 2


def test_exports_stream_every_matching_push(client):
    resp = get(client, "/audit/", format="csv")
    assert resp.mimetype == "text/csv" and resp.is_streamed
    rows = list(csv.DictReader(io.StringIO(resp.data.decode())))
    assert [r["openhim_transaction"] for r in rows] == ["tx-later", "tx-now"]
    assert json.loads(rows[1]["records"]) == {"delivered": 1}
    lines = get(client, "/audit/", format="jsonl").data.decode().splitlines()
    assert [json.loads(line)["openhim_transaction"] for line in lines] == ["tx-later", "tx-now"]
    push = rows[0]["push"]
    records = list(csv.DictReader(io.StringIO(get(client, f"/audit/pushes/{push}", format="csv").data.decode())))
    assert {r["status"] for r in records} == {"pending", "rejected"}  # each attempt: kept for later, then refused


def test_nothing_of_a_record_beyond_what_dhis2_received_is_shown(client):
    pages = [get(client, "/audit/").data, get(client, "/audit/records", uuid=samples.HEAD).data,
             get(client, "/audit/dead-letters").data, get(client, "/audit/", format="jsonl").data]  # fmt: skip
    pushes = get(client, "/audit/", format="json").json["pushes"]
    pages += [get(client, f"/audit/pushes/{p['push']}").data for p in pushes]
    for page in pages:
        for secret in (b"Ageni", b"Nonino", b"104000001", b"NAT-778899"):
            assert secret not in page


def test_the_chain_is_checked_from_the_view_with_the_settings_changes(client):
    from mediator.journal import chain

    journal = client.application.extensions["journal"]
    chain.record(journal.sessions, "settings", {"at": datetime.now(UTC), "changed": {"send_names": True}})
    doc = get(client, "/audit/verify", format="json").json
    assert doc["ok"] and doc["entries"] > 5 and doc["problem"] is None
    assert [c["changed"] for c in doc["settings_changes"]] == [{"send_names": True}]
    page = get(client, "/audit/verify").data.decode()
    assert "The chain holds" in page and "send_names = True" in page


@pytest.mark.parametrize(
    "path, args",
    [
        ("/audit/", {"before": str(2**63)}),
        ("/audit/", {"before": "2147483648"}),
        ("/audit/", {"channel": "a\x00b"}),
        ("/audit/", {"status": "\x00", "format": "csv"}),
        ("/audit/", {"since": "not a day", "until": "2024-13-45"}),
        ("/audit/records", {"uuid": "\x00", "kind": "\x00"}),
        (f"/audit/pushes/{2**63}", {}),
        (f"/audit/pushes/{2**31}", {"format": "csv"}),
        ("/audit/pushes/1", {"after": "-5"}),
    ],
)
def test_odd_parameters_are_answered_not_failed(client, path, args):
    resp = client.get(path, query_string=args, headers=AUDITOR)
    assert resp.status_code in (200, 404), resp.data[:300]
    resp.get_data()  # a streamed export is read to its end


def test_a_sign_in_goes_back_only_to_a_page_of_the_view(client):
    form = {"username": "auditor", "password": "Audit-pass-1"}
    for wanted, where in (("/audit/dead-letters", "/audit/dead-letters"), ("https://evil.example/", "/audit/"),
                          ("/audit//evil.example", "/audit/"), ("/audit/\r\nX-Evil: 1", "/audit/")):  # fmt: skip
        resp = client.post("/audit/login", data={**form, "next": wanted})
        assert resp.status_code == 302 and resp.headers["Location"] == where
    refused = client.post("/audit/login", data={**form, "password": "no"})
    assert refused.status_code == 401 and b"is wrong" in refused.data


def test_a_record_is_looked_up_by_insurance_number_through_a_form(client):
    resp = client.post("/audit/records", data={"number": "104000001"}, headers=AUDITOR)
    assert resp.status_code == 200
    assert f"Patient/{samples.HEAD}".encode() in resp.data and b"104000001" not in resp.data


def test_the_until_day_is_included(client):
    today = datetime.now(UTC).date().isoformat()
    assert len(get(client, "/audit/", format="json", since=today, until=today).json["pushes"]) == 2
