"""Channels are configuration: each has its own path, credentials, resource types and optionally DHIS2 user."""

import json
from pathlib import Path

import pytest

from mediator.app.web.app import create_app
from mediator.config.console import LiveSettings
from mediator.config.settings import build_settings
from tests import samples
from tests.conftest import DHIS2_PASSWORD, INSUREES_AUTH, basic

CLAIMS_AUTH = basic("openhim-other", "other-route-pass")


@pytest.fixture
def two_channels(env, tmp_path, fake):
    doc = json.loads(build_settings(env).config_file.read_text())
    doc["config"]["channels"].append(
        {
            "name": "other",
            "path": "/channels/other",
            "resources": "Claim,ClaimResponse",
            "username": "openhim-other",
            "dhis2_username": "",
        }
    )
    path = tmp_path / "mediator_config.json"
    path.write_text(json.dumps(doc))
    env = {**env, "MEDIATOR_CONFIG_FILE": str(path), "MEDIATOR_CHANNEL_OTHER_PASSWORD": "other-route-pass"}
    app = create_app(LiveSettings(build_settings(env), env))
    return app.test_client()


def post(client, path, doc, auth):
    return client.post(path, data=json.dumps(doc), headers={**auth, "Content-Type": "application/json"})


def test_another_channels_credentials_are_refused_with_401(two_channels, fake):
    assert post(two_channels, "/channels/insurees", samples.patient(), CLAIMS_AUTH).status_code == 401
    assert post(two_channels, "/channels/other", {"resourceType": "Claim", "id": "c"}, INSUREES_AUTH).status_code == 401
    assert [r for r in fake.fake.requests_seen if r[1] == "/api/tracker"] == []


def test_a_channel_takes_only_its_own_resource_types(two_channels):
    resp = post(two_channels, "/channels/other", samples.patient(), CLAIMS_AUTH)
    assert resp.status_code == 400
    body = json.loads(json.loads(resp.data)["response"]["body"])
    assert "not taken on this channel" in body["issue"][0]["diagnostics"]


def test_a_channel_can_use_its_own_dhis2_user(env, fake):
    fake.fake.users["insuree-writer"] = "Writer-pass-9"
    env = {
        **env,
        "MEDIATOR_CHANNEL_INSUREES_DHIS2_USERNAME": "insuree-writer",
        "MEDIATOR_CHANNEL_INSUREES_DHIS2_PASSWORD": "Writer-pass-9",
    }
    client = create_app(LiveSettings(build_settings(env), env)).test_client()
    resp = post(client, "/channels/insurees", samples.patient(), INSUREES_AUTH)
    assert resp.status_code == 200
    # with the channel's user removed from DHIS2, a changed insuree waits: DHIS2 refuses the credentials
    del fake.fake.users["insuree-writer"]
    assert fake.fake.users.get("mediator") == DHIS2_PASSWORD
    resp = post(client, "/channels/insurees", samples.patient(gender="male"), INSUREES_AUTH)
    assert resp.status_code == 202
    assert json.loads(resp.data)["properties"]["dhis2_failure"] == "Dhis2AuthFailed"


def test_channel_without_password_refuses_everything(env, fake):
    env = {k: v for k, v in env.items() if k != "MEDIATOR_CHANNEL_INSUREES_PASSWORD"}
    client = create_app(LiveSettings(build_settings(env), env)).test_client()
    assert post(client, "/channels/insurees", samples.patient(), basic("openhim-insurees", "")).status_code == 401


def test_dhis2_not_configured_keeps_the_push_for_later(env, fake):
    env = {k: v for k, v in env.items() if k != "MEDIATOR_DHIS2_URL"}
    client = create_app(LiveSettings(build_settings(env), env)).test_client()
    resp = post(client, "/channels/insurees", samples.patient(), INSUREES_AUTH)
    assert resp.status_code == 202
    doc = json.loads(resp.data)
    assert doc["status"] == "Processing" and "error" not in doc
    assert "not configured" in doc["response"]["body"]
    assert doc["properties"]["records_pending"] == "1"


def test_a_channel_may_send_personal_data_the_global_settings_keep_back(env, fake):
    from mediator.mapping.insuree import tracked_entity_uid
    from mediator.mapping.model import Setup

    doc = json.loads(build_settings(env).config_file.read_text())
    doc["config"]["channels"][0]["personal_data"] = "names"
    store = fake.fake.store
    config = Path(env["MEDIATOR_STATE_DIR"]).parent / "named.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(doc))
    env = {**env, "MEDIATOR_CONFIG_FILE": str(config)}
    client = create_app(LiveSettings(build_settings(env), env)).test_client()
    assert post(client, "/channels/insurees", samples.patient(), INSUREES_AUTH).status_code == 200
    attrs = store.tracked_entities[tracked_entity_uid(samples.HEAD)]["attributes"]
    assert attrs[Setup().attributes["first_name"]] == "Ageni"
    assert Setup().attributes["phone"] not in attrs


def test_unknown_personal_data_kinds_are_refused(env):
    from mediator.config.settings import SettingsError

    doc = json.loads(build_settings(env).config_file.read_text())
    doc["config"]["channels"][0]["personal_data"] = "names,religion"
    with pytest.raises(SettingsError, match="religion"):
        build_settings(env, {"channels": doc["config"]["channels"]})
