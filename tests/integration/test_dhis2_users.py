"""Each DHIS2 user has its own HTTP session: channels with their own DHIS2 users write as those users, whatever the
others do at the same time, and a changed password is checked by DHIS2 instead of riding on an old session."""

import json
import threading

import pytest

from mediator.app.web.app import create_app
from mediator.config.console import LiveSettings
from mediator.config.settings import build_settings
from mediator.dhis2.errors import Dhis2AuthFailed
from mediator.mapping.insuree import tracked_entity_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, basic

OTHER_AUTH = basic("openhim-other", "other-route-pass")
USERS = {"alice": "Alice-pass-7", "bob": "Bob-pass-8"}
TOKEN = "d2pat_mediator0000000000000000000000000"
PUSHES = 6  # per channel


def app_with_two_channels(env, tmp_path):
    """The insurees channel writes as alice, a second channel taking Patients as bob; by default, a token."""
    doc = json.loads(build_settings(env).config_file.read_text())
    doc["config"]["channels"].append(
        {"name": "other", "path": "/channels/other", "resources": "Patient,Group", "username": "openhim-other"}
    )
    path = tmp_path / "two-users.json"
    path.write_text(json.dumps(doc))
    env = {
        **env,
        "MEDIATOR_CONFIG_FILE": str(path),
        "MEDIATOR_DHIS2_AUTH": "token",
        "MEDIATOR_DHIS2_TOKEN": TOKEN,
        "MEDIATOR_CHANNEL_INSUREES_DHIS2_USERNAME": "alice",
        "MEDIATOR_CHANNEL_INSUREES_DHIS2_PASSWORD": USERS["alice"],
        "MEDIATOR_CHANNEL_OTHER_PASSWORD": "other-route-pass",
        "MEDIATOR_CHANNEL_OTHER_DHIS2_USERNAME": "bob",
        "MEDIATOR_CHANNEL_OTHER_DHIS2_PASSWORD": USERS["bob"],
    }
    return create_app(LiveSettings(build_settings(env), env))


def keys(prefix: str) -> list[str]:
    return [f"{prefix}{i:04d}-0000-4000-8000-000000000000" for i in range(PUSHES)]


def post(client, path, doc, auth):
    resp = client.post(path, data=json.dumps(doc), headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.data


def test_channels_with_their_own_dhis2_users_write_as_them_at_the_same_time(env, fake, tmp_path):
    fake.fake.users.update(USERS)
    fake.fake.tokens.add(TOKEN)
    app = app_with_two_channels(env, tmp_path)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def deliver(path, auth, prefix):
        client = app.test_client()
        start.wait()
        try:
            for i, key in enumerate(keys(prefix)):
                post(client, path, samples.patient(key, f"9{prefix}{i:05d}", family=None), auth)
        except BaseException as exc:  # reported below, from the test's thread
            failures.append(exc)

    threads = [
        threading.Thread(target=deliver, args=("/channels/insurees", INSUREES_AUTH, "a")),
        threading.Thread(target=deliver, args=("/channels/other", OTHER_AUTH, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    writers = fake.fake.writers
    assert all(writers[tracked_entity_uid(k)] == {"alice"} for k in keys("a")), writers
    assert all(writers[tracked_entity_uid(k)] == {"bob"} for k in keys("b")), writers
    # Nor did any request carry another user's DHIS2 session cookie.
    assert [c for c in fake.fake.calls if c[3] is not None and c[3] != c[2]] == []


def test_a_changed_password_is_checked_by_dhis2_not_carried_by_the_old_session(env, fake):
    client = create_app(LiveSettings(build_settings(env), env)).test_client()
    post(client, "/channels/insurees", samples.patient(), INSUREES_AUTH)  # DHIS2 opened a session for the user
    deliverer = client.application.extensions["deliverer"]
    changed = build_settings({**env, "MEDIATOR_DHIS2_PASSWORD": "Not-the-password-1"})
    with pytest.raises(Dhis2AuthFailed):
        deliverer.client(changed, None, []).system_info()
