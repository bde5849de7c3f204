"""The OpenHIM protocol module against a mocked core API (the real core is exercised in tests/e2e)."""

import hashlib
import json
import re
from datetime import UTC, datetime

import pytest
import responses

from mediator.answer.envelope import Orchestration, cut, mediator_response
from mediator.openhim.auth import TokenAuth, utc_timestamp
from mediator.openhim.core import CoreClient
from mediator.openhim.errors import CoreAuthFailed, CoreRejected, CoreUnavailable, MediatorNotFound
from mediator.openhim.heartbeat import Heartbeat, LeaderLock

CORE = "https://core.test:8080"
URN = "urn:mediator:test"
DOC = {"urn": URN, "version": "1.0.0", "name": "t", "endpoints": []}
HEARTBEAT = f"{CORE}/mediators/urn%3Amediator%3Atest/heartbeat"


def sha512(text):
    return hashlib.sha512(text.encode()).hexdigest()


def test_token_headers_follow_the_legacy_scheme():
    auth = TokenAuth("root@openhim.org", "pw", lambda user: "SALT")
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    h = auth.headers(now=now, salt="req-salt")
    assert h["auth-ts"] == "2026-01-02T03:04:05.678Z"
    assert h["auth-username"] == "root@openhim.org"
    assert h["auth-token"] == sha512(sha512("SALT" + "pw") + "req-salt" + "2026-01-02T03:04:05.678Z")


def test_timestamp_is_utc_with_milliseconds_and_z():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_timestamp())


@responses.activate
def test_register_with_basic_auth():
    responses.post(f"{CORE}/mediators", status=201, body="User Authenticated Successfully")
    CoreClient(CORE, "root@openhim.org", "pw").register(DOC)
    call = responses.calls[0]
    assert call.request.headers["Authorization"].startswith("Basic ")
    assert json.loads(call.request.body) == DOC


@responses.activate
def test_register_with_token_auth_fetches_the_salt_first():
    responses.get(f"{CORE}/authenticate/root%40openhim.org", json={"salt": "abc", "ts": "x"})
    responses.post(f"{CORE}/mediators", status=201)
    CoreClient(CORE, "root@openhim.org", "pw", auth_mode="token").register(DOC)
    posted = responses.calls[1].request
    assert "Authorization" not in posted.headers
    assert posted.headers["auth-username"] == "root@openhim.org"
    expected = sha512(sha512("abc" + "pw") + posted.headers["auth-salt"] + posted.headers["auth-ts"])
    assert posted.headers["auth-token"] == expected


@responses.activate
def test_core_errors_are_typed():
    client = CoreClient(CORE, "u", "p")
    responses.post(f"{CORE}/mediators", status=400, body="Version is required")
    with pytest.raises(CoreRejected, match="Version"):
        client.register(DOC)
    responses.replace(responses.POST, f"{CORE}/mediators", status=401)
    with pytest.raises(CoreAuthFailed):
        client.register(DOC)
    responses.replace(responses.POST, f"{CORE}/mediators", status=502)
    with pytest.raises(CoreUnavailable):
        client.register(DOC)
    responses.post(HEARTBEAT, status=404)
    with pytest.raises(MediatorNotFound):
        client.heartbeat(URN, 1.0)


def test_unreachable_core_is_core_unavailable():
    with pytest.raises(CoreUnavailable):
        CoreClient("https://127.0.0.1:9", "u", "p").register(DOC)


@responses.activate
def test_heartbeat_returns_config_only_when_sent():
    client = CoreClient(CORE, "u", "p")
    responses.post(HEARTBEAT, body="")
    assert client.heartbeat(URN, 2.5) is None
    responses.replace(responses.POST, HEARTBEAT, body="OK")
    assert client.heartbeat(URN, 2.5) is None
    responses.replace(responses.POST, HEARTBEAT, json={"batch_size": 5})
    assert client.heartbeat(URN, 2.5, want_config=True) == {"batch_size": 5}
    assert json.loads(responses.calls[-1].request.body) == {"uptime": 2.5, "config": True}


class Recorder:
    def __init__(self):
        self.configs = []

    def __call__(self, config):
        self.configs.append(config)


@responses.activate
def test_heartbeat_asks_for_the_config_on_every_beat_and_applies_it_when_it_changed():
    responses.post(f"{CORE}/mediators", status=201)
    responses.post(HEARTBEAT, json={"send_names": False})
    applied = Recorder()
    hb = Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, applied, interval=10, uptime=lambda: 3.0)
    assert hb.step() == 10
    assert hb.step() == 10
    # A console save the core would not send unasked (its beat-time race) still arrives on the next beat.
    responses.replace(responses.POST, HEARTBEAT, json={"send_names": True})
    assert hb.step() == 10
    responses.replace(responses.POST, HEARTBEAT, body="")
    assert hb.step() == 10
    bodies = [json.loads(c.request.body) for c in responses.calls if c.request.url == HEARTBEAT]
    assert bodies == [{"uptime": 3.0, "config": True}] * 4
    assert applied.configs == [{"send_names": False}, {"send_names": True}]
    assert sum(1 for c in responses.calls if c.request.url == f"{CORE}/mediators") == 1


@responses.activate
def test_heartbeat_registers_again_after_404():
    responses.post(f"{CORE}/mediators", status=201)
    responses.post(HEARTBEAT, body="")
    hb = Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, Recorder(), interval=10)
    hb.step()
    responses.replace(responses.POST, HEARTBEAT, status=404)
    assert hb.step() == 0
    responses.replace(responses.POST, HEARTBEAT, body="")
    hb.step()
    assert sum(1 for c in responses.calls if c.request.url == f"{CORE}/mediators") == 2
    assert json.loads(responses.calls[-1].request.body)["config"] is True


@responses.activate
def test_heartbeat_backs_off_while_the_core_is_unreachable():
    responses.post(f"{CORE}/mediators", status=503)
    hb = Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, Recorder(), interval=10)
    waits = [hb.step() for _ in range(8)]
    assert 0 < waits[0] <= 2
    assert waits[-1] > waits[0]
    assert max(waits) <= 60
    assert not hb.registered


@responses.activate
def test_a_bad_console_config_does_not_stop_the_heartbeat():
    responses.post(f"{CORE}/mediators", status=201)
    responses.post(HEARTBEAT, json={"x": 1})

    refused = []

    def refuse(config):
        refused.append(config)
        raise ValueError("no")

    hb = Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, refuse, interval=10)
    assert hb.step() == 10
    assert hb.step() == 10
    assert hb.beats == 2
    assert refused == [{"x": 1}]  # refused once, not again on every beat


def test_only_one_holder_of_the_leader_lock(tmp_path):
    first, second = LeaderLock(tmp_path / "hb.lock"), LeaderLock(tmp_path / "hb.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


@responses.activate
def test_heartbeat_does_nothing_while_another_process_leads(tmp_path):
    leader = LeaderLock(tmp_path / "hb.lock")
    assert leader.try_acquire()
    hb = Heartbeat(
        CoreClient(CORE, "u", "p"), lambda: DOC, Recorder(), interval=7, lock=LeaderLock(tmp_path / "hb.lock")
    )
    assert hb.step() == 7
    assert len(responses.calls) == 0
    leader.release()


def orchestration(body="x"):
    now = datetime.now(UTC)
    return Orchestration("DHIS2 call", "POST", "https://dhis2.test/api/tracker?async=false", body, now, 200, "{}", now)


def test_envelope_has_the_openhim_shape():
    doc = mediator_response(URN, "Successful", 200, {"ok": True}, [orchestration()], {"n": 1})
    assert doc["x-mediator-urn"] == URN
    assert doc["response"]["headers"]["content-type"] == "application/json"
    assert doc["response"]["body"] == '{"ok":true}'
    assert doc["properties"] == {"n": "1"}
    req = doc["orchestrations"][0]["request"]
    assert (req["host"], req["port"], req["path"], req["querystring"]) == (
        "dhis2.test",
        "443",
        "/api/tracker",
        "async=false",
    )
    assert "error" not in doc


def test_envelope_refuses_unknown_statuses():
    with pytest.raises(ValueError):
        mediator_response(URN, "OK", 200, {})


def test_bodies_are_cut_to_stay_within_the_core_budget():
    big = "x" * (20 * 1024 * 1024)
    doc = mediator_response(URN, "Successful", 200, {}, [orchestration(big) for _ in range(10)])
    assert len(json.dumps(doc)) < 15 * 1024 * 1024
    assert "truncated" in doc["orchestrations"][0]["request"]["body"]
    assert cut("abc", 10) == "abc"


def test_drift_names_routes_whose_address_or_password_changed():
    from mediator.openhim.heartbeat import registration_drift

    sent = {
        "endpoints": [{"name": "e", "host": "m", "port": 8000, "path": "/c"}],
        "defaultChannelConfig": [
            {
                "name": "c",
                "routes": [{"name": "r", "host": "m", "port": 8000, "path": "/c", "username": "u", "password": "new"}],
            }
        ],
    }
    stored = json.loads(json.dumps(sent))
    stored["endpoints"][0]["port"] = "8000"  # the core may store numbers and strings alike
    assert registration_drift(sent, stored) == []
    stored["defaultChannelConfig"][0]["routes"][0]["password"] = "old"
    assert registration_drift(sent, stored) == ["route 'r' of channel 'c' password differs"]


@responses.activate
def test_registration_warns_when_the_core_keeps_an_older_document(caplog):
    doc = {**DOC, "endpoints": [{"name": "e", "host": "new-host", "port": 1, "path": "/p"}]}
    responses.post(f"{CORE}/mediators", status=201)
    responses.get(
        f"{CORE}/mediators/urn%3Amediator%3Atest",
        json={**doc, "endpoints": [{"name": "e", "host": "old", "port": 1, "path": "/p"}]},
    )
    responses.post(HEARTBEAT, body="")
    Heartbeat(CoreClient(CORE, "u", "p"), lambda: doc, Recorder(), interval=10).step()
    assert "endpoint 'e' differs" in caplog.text


SECRETS_ENV = {
    "MEDIATOR_DHIS2_PASSWORD": "Env-Dhis2-Pw",
    "MEDIATOR_DHIS2_TOKEN": "d2pat_env_token",
    "MEDIATOR_PSEUDONYM_KEY": "Env-Pseudonym-Key",
    "MEDIATOR_CHANNEL_INSUREES_PASSWORD": "Env-Route-Pw",
    "MEDIATOR_CHANNEL_INSUREES_DHIS2_USERNAME": "insuree-writer",
    "MEDIATOR_CHANNEL_INSUREES_DHIS2_PASSWORD": "Env-Channel-Dhis2-Pw",
    "MEDIATOR_OPENHIM_PASSWORD": "Env-Openhim-Pw",
    "MEDIATOR_OPENIMIS_PASSWORD": "Env-Openimis-Pw",
    "MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD": "Env-Client-Pw",
}


def config_defs(defs):
    for d in defs:
        yield d
        yield from config_defs(d.get("template") or [])


def test_the_registered_config_and_config_defs_carry_no_secret():
    from mediator.app.service import registration_document
    from mediator.config.settings import build_settings

    doc = registration_document(build_settings(SECRETS_ENV))
    assert [d["param"] for d in config_defs(doc["configDefs"]) if d["type"] == "password"] == []
    shown = json.dumps(doc["config"]) + json.dumps(doc["configDefs"])
    assert [v for v in SECRETS_ENV.values() if v in shown] == []
    # the core calls the mediator with the route's password: that one stays in the channel it installs
    routes = [r for c in doc["defaultChannelConfig"] for r in c["routes"] if r["path"] == "/channels/insurees"]
    assert [r["password"] for r in routes] == ["Env-Route-Pw"]


def test_every_default_channel_keeps_its_bodies_for_a_limited_time():
    from mediator.config.settings import DEFAULT_CONFIG_FILE, load_registration

    channels = load_registration(DEFAULT_CONFIG_FILE)["defaultChannelConfig"]
    # the core accepts maxBodyAgeDays only from 1 to 36499 days, and only on a channel that stores a body
    assert [(c["name"], 0 < c.get("maxBodyAgeDays", 0) < 36500) for c in channels] == [
        (c["name"], True) for c in channels
    ]
    assert all(c["requestBody"] or c["responseBody"] for c in channels)


def test_the_leader_lock_file_is_private(tmp_path):
    lock = LeaderLock(tmp_path / "state" / "hb.lock")
    assert lock.try_acquire()
    assert oct((tmp_path / "state" / "hb.lock").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"
    lock.release()


DEFS = [
    {"param": "batch_size", "type": "number"},
    {"param": "channels", "type": "struct", "array": True, "template": [{"param": "name"}, {"param": "username"}]},
]
CONFIG_URL = f"{CORE}/mediators/urn%3Amediator%3Atest/config"


def stored_with(version, config):
    responses.post(f"{CORE}/mediators", status=201)
    responses.get(f"{CORE}/mediators/urn%3Amediator%3Atest", json={**DOC, "version": version, "config": config})
    responses.put(CONFIG_URL, status=200)
    responses.post(HEARTBEAT, body="")


@responses.activate
def test_config_fields_an_older_version_left_are_removed_once_the_core_holds_this_version(caplog):
    old = {
        "batch_size": 5,
        "dhis2_password": "Old-Pw-1",
        "channels": [{"name": "a", "username": "u", "password": "Old-Pw-2"}],
    }
    stored_with("0.9.0", old)  # the core kept an older document: its config is still that version's
    Heartbeat(CoreClient(CORE, "u", "p"), lambda: {**DOC, "configDefs": DEFS}, Recorder(), interval=10).step()
    assert [c for c in responses.calls if c.request.method == "PUT"] == []
    responses.reset()
    stored_with("1.0.0", old)
    Heartbeat(CoreClient(CORE, "u", "p"), lambda: {**DOC, "configDefs": DEFS}, Recorder(), interval=10).step()
    (put,) = [c for c in responses.calls if c.request.method == "PUT"]
    assert json.loads(put.request.body) == {"batch_size": 5, "channels": [{"name": "a", "username": "u"}]}
    assert "dhis2_password, channels[a].password" in caplog.text
    assert "Old-Pw" not in caplog.text


@responses.activate
def test_a_config_that_could_not_be_applied_is_tried_again_on_the_next_beat():
    responses.post(f"{CORE}/mediators", status=201)
    responses.post(HEARTBEAT, json={"x": 1})
    tries = []

    def flaky(config):
        tries.append(config)
        if len(tries) == 1:
            raise OSError("state directory full")

    hb = Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, flaky, interval=10)
    assert [hb.step(), hb.step(), hb.step()] == [10, 10, 10]
    assert tries == [{"x": 1}, {"x": 1}]  # failed, applied, then seen
