import pytest

from mediator.config.console import LiveSettings
from mediator.config.settings import SettingsError, build_settings, insecure_warnings, with_console


def test_defaults_come_from_mediator_config_json():
    s = build_settings({})
    assert s.batch_size == 200
    assert s.birth_date_precision == "year"
    assert s.send_names is False
    assert [c.name for c in s.channels] == [
        "insurees",
        "metadata",
        "policies",
        "claims",
        "openimis",
        "pull",
        "aggregates",
    ]
    assert s.channels[0].resources == ("Patient", "Group")
    assert [c.name for c in s.channels if c.sends_aggregates] == ["aggregates"]
    assert not any(c.aggregate_only for c in s.channels) and s.aggregates is False


def test_environment_overrides_defaults_with_types():
    s = build_settings({"MEDIATOR_BATCH_SIZE": "50", "MEDIATOR_SEND_NAMES": "yes", "MEDIATOR_DHIS2_URL": "https://d"})
    assert (s.batch_size, s.send_names, s.dhis2_url) == (50, True, "https://d")


def test_channel_secrets_come_from_environment():
    s = build_settings({"MEDIATOR_CHANNEL_INSUREES_PASSWORD": "pw", "MEDIATOR_CHANNEL_INSUREES_DHIS2_USERNAME": "u2"})
    assert s.channel("insurees").password == "pw"
    assert s.channel("insurees").dhis2_username == "u2"


def test_console_value_wins_only_where_the_implementer_changed_it():
    env = {"MEDIATOR_DHIS2_URL": "https://from-env", "MEDIATOR_BATCH_SIZE": "50"}
    console = {"dhis2_url": "", "batch_size": 75}  # dhis2_url left at its default in the console
    s = build_settings(env, console)
    assert s.dhis2_url == "https://from-env"
    assert s.batch_size == 75


def test_bad_values_are_refused_naming_the_setting():
    with pytest.raises(SettingsError, match="batch_size"):
        build_settings({"MEDIATOR_BATCH_SIZE": "many"})
    with pytest.raises(SettingsError, match="birth_date_precision"):
        build_settings({"MEDIATOR_BIRTH_DATE_PRECISION": "month"})


def test_well_known_passwords_need_an_explicit_opt_in():
    env = {"MEDIATOR_OPENHIM_PASSWORD": "openhim-password"}
    with pytest.raises(SettingsError, match="openhim_password"):
        build_settings(env)
    s = build_settings({**env, "MEDIATOR_ALLOW_DEFAULT_PASSWORDS": "true"})
    assert any("default passwords" in w for w in insecure_warnings(s))


def test_tls_verification_off_is_warned_about_and_a_ca_path_is_kept():
    s = build_settings({"MEDIATOR_OPENHIM_VERIFY_TLS": "false"})
    assert s.openhim_verify_tls is False
    assert any("OpenHIM" in w for w in insecure_warnings(s))
    assert build_settings({"MEDIATOR_OPENHIM_VERIFY_TLS": "/etc/ca.pem"}).openhim_verify_tls == "/etc/ca.pem"


def test_secrets_are_not_in_repr():
    s = build_settings({"MEDIATOR_DHIS2_PASSWORD": "hunter22", "MEDIATOR_CHANNEL_INSUREES_PASSWORD": "pw-x"})
    assert "hunter22" not in repr(s) and "pw-x" not in repr(s)


def test_console_config_keeps_process_settings():
    base = build_settings({"MEDIATOR_LISTEN_PORT": "9000"})
    assert with_console(base, {"listen_port": 1}, {"MEDIATOR_LISTEN_PORT": "9000"}).listen_port == 9000


def test_live_settings_follow_a_published_console_config_across_instances(tmp_path):
    env = {"MEDIATOR_STATE_DIR": str(tmp_path)}
    base = build_settings(env)
    worker_a, worker_b = LiveSettings(base, env), LiveSettings(base, env)
    worker_a.publish({"batch_size": 10, "send_phone": True})
    assert worker_b.current().batch_size == 10
    assert worker_b.current().send_phone is True
    assert oct((tmp_path / "console-config.json").stat().st_mode & 0o777) == "0o600"


def test_invalid_console_config_is_refused_and_the_old_settings_stay(tmp_path):
    env = {"MEDIATOR_STATE_DIR": str(tmp_path)}
    live = LiveSettings(build_settings(env), env)
    with pytest.raises(SettingsError):
        live.publish({"birth_date_precision": "decade"})
    assert live.current().birth_date_precision == "year"
    assert not (tmp_path / "console-config.json").exists()


def test_uids_in_settings_are_checked():
    with pytest.raises(SettingsError, match="insuree_program"):
        build_settings({"MEDIATOR_INSUREE_PROGRAM": "not-a-uid"})
    with pytest.raises(SettingsError, match="attribute_uids.gender"):
        build_settings({"MEDIATOR_ATTRIBUTE_UIDS": '{"gender": "x"}'})
    with pytest.raises(SettingsError, match="unknown fields"):
        build_settings({"MEDIATOR_ATTRIBUTE_UIDS": '{"genderr": "Xx1234567ab"}'})


def test_malformed_json_and_non_finite_numbers_are_refused():
    with pytest.raises(SettingsError, match="attribute_uids"):
        build_settings({"MEDIATOR_ATTRIBUTE_UIDS": "{not json"})
    with pytest.raises(SettingsError, match="dhis2_timeout_seconds"):
        build_settings({"MEDIATOR_DHIS2_TIMEOUT_SECONDS": "nan"})


DHIS2_ENV = {
    "MEDIATOR_DHIS2_URL": "https://dhis2.example.org",
    "MEDIATOR_DHIS2_USERNAME": "mediator",
    "MEDIATOR_DHIS2_PASSWORD": "Dhis2-Pass-1",
}


def test_a_console_dhis2_url_on_another_host_is_refused_naming_the_setting():
    base = build_settings(DHIS2_ENV)
    with pytest.raises(SettingsError, match="dhis2_url: evil.example.org:443 is not a DHIS2 host") as refused:
        with_console(base, {"dhis2_url": "https://evil.example.org"}, DHIS2_ENV)
    assert "Dhis2-Pass-1" not in str(refused.value)


def test_the_console_may_change_only_the_path_of_the_environments_dhis2_url():
    s = build_settings(DHIS2_ENV, {"dhis2_url": "https://dhis2.example.org:443/dhis"})
    assert s.dhis2_url == "https://dhis2.example.org:443/dhis"
    with pytest.raises(SettingsError, match="dhis2_url: dhis2.example.org:8443 is not a DHIS2 host"):
        build_settings(DHIS2_ENV, {"dhis2_url": "https://dhis2.example.org:8443/dhis"})


@pytest.mark.parametrize(
    "url",
    [
        "https://user:Hidden-Pw@dhis2.example.org",
        "https://dhis2.example.org@evil.example.org",
        "https://evil.example.org/steal?",
        "https://dhis2.example.org/?",
        "https://dhis2.example.org/#x",
        "https://dhis2.example.org\\@evil.example.org",
        "ftp://dhis2.example.org",
        "https://dhis2.example.org:99999",
    ],
)
def test_a_console_dhis2_url_that_is_not_a_plain_base_url_is_refused(url):
    with pytest.raises(SettingsError, match="dhis2_url") as refused:
        build_settings(DHIS2_ENV, {"dhis2_url": url})
    assert url not in str(refused.value) and "Hidden-Pw" not in str(refused.value)


def test_the_allowed_hosts_setting_lets_the_console_choose_among_them():
    env = {**DHIS2_ENV, "MEDIATOR_DHIS2_ALLOWED_HOSTS": "dhis2.example.org, dhis2-staging.example.org:8443"}
    assert build_settings(env, {"dhis2_url": "https://dhis2-staging.example.org:8443"}).dhis2_url.endswith(":8443")
    with pytest.raises(SettingsError, match="dhis2-staging.example.org:443 is not a DHIS2 host"):
        build_settings(env, {"dhis2_url": "https://dhis2-staging.example.org"})


def test_a_console_dhis2_url_cannot_drop_https_for_http():
    with pytest.raises(SettingsError, match="in clear"):
        build_settings(DHIS2_ENV, {"dhis2_url": "http://dhis2.example.org:443"})


def test_without_any_allowed_host_the_console_cannot_set_the_dhis2_url():
    with pytest.raises(SettingsError, match="MEDIATOR_DHIS2_ALLOWED_HOSTS"):
        build_settings({}, {"dhis2_url": "https://dhis2.example.org"})


def test_an_environment_dhis2_url_outside_its_own_allowed_hosts_is_refused():
    with pytest.raises(SettingsError, match="dhis2_url"):
        build_settings({**DHIS2_ENV, "MEDIATOR_DHIS2_ALLOWED_HOSTS": "other.example.org"})


def test_allowed_hosts_entries_must_be_hosts():
    with pytest.raises(SettingsError, match="dhis2_allowed_hosts"):
        build_settings({**DHIS2_ENV, "MEDIATOR_DHIS2_ALLOWED_HOSTS": "https://dhis2.example.org/"})


def test_live_settings_refuse_a_console_dhis2_url_elsewhere_and_keep_the_settings(tmp_path):
    env = {**DHIS2_ENV, "MEDIATOR_STATE_DIR": str(tmp_path)}
    live = LiveSettings(build_settings(env), env)
    with pytest.raises(SettingsError, match="dhis2_url"):
        live.publish({"dhis2_url": "https://evil.example.org", "batch_size": 10})
    assert (live.current().dhis2_url, live.current().batch_size) == ("https://dhis2.example.org", 200)
    assert not (tmp_path / "console-config.json").exists()


def test_a_stored_console_config_pointing_dhis2_elsewhere_is_not_applied(tmp_path):
    env = {**DHIS2_ENV, "MEDIATOR_STATE_DIR": str(tmp_path)}
    (tmp_path / "console-config.json").write_text('{"dhis2_url": "https://evil.example.org"}')
    assert LiveSettings(build_settings(env), env).current().dhis2_url == "https://dhis2.example.org"


def test_dhis2_tls_verification_is_not_taken_from_the_console(caplog):
    s = build_settings(DHIS2_ENV, {"dhis2_verify_tls": False})
    assert s.dhis2_verify_tls is True
    assert "ignoring dhis2_verify_tls from the OpenHIM console" in caplog.text


def test_dhis2_tls_verification_takes_false_or_a_ca_bundle_from_the_environment():
    assert build_settings({"MEDIATOR_DHIS2_VERIFY_TLS": "false"}).dhis2_verify_tls is False
    assert build_settings({"MEDIATOR_DHIS2_VERIFY_TLS": "/etc/dhis2-ca.pem"}).dhis2_verify_tls == "/etc/dhis2-ca.pem"


@pytest.mark.parametrize("key", ["dhis2_password", "dhis2_token", "pseudonym_key"])
def test_a_console_secret_is_ignored_with_a_warning_naming_only_the_key(key, caplog):
    s = build_settings({**DHIS2_ENV, "MEDIATOR_PSEUDONYM_KEY": "env-key"}, {key: "From-Console-7"})
    assert getattr(s, key) == {"dhis2_password": "Dhis2-Pass-1", "dhis2_token": "", "pseudonym_key": "env-key"}[key]
    assert f"ignoring {key} from the OpenHIM console" in caplog.text
    assert "From-Console-7" not in caplog.text


def test_console_channel_passwords_are_ignored_and_the_environments_kept(caplog):
    entry = {"name": "insurees", "path": "/channels/insurees", "resources": "Patient", "username": "openhim-insurees"}
    console = {"channels": [{**entry, "password": "Console-Route-Pw", "dhis2_password": "Console-Dhis2-Pw"}]}
    env = {"MEDIATOR_CHANNEL_INSUREES_PASSWORD": "env-route-pw"}
    s = build_settings(env, console)
    assert (s.channel("insurees").password, s.channel("insurees").dhis2_password) == ("env-route-pw", "")
    assert "channels[insurees].password" in caplog.text and "channels[insurees].dhis2_password" in caplog.text
    assert "Console-Route-Pw" not in caplog.text and "Console-Dhis2-Pw" not in caplog.text


def test_a_published_console_config_is_stored_without_secrets(tmp_path):
    env = {"MEDIATOR_STATE_DIR": str(tmp_path)}
    live = LiveSettings(build_settings(env), env)
    live.publish({"batch_size": 10, "dhis2_password": "Console-Pw-3", "pseudonym_key": "Console-Key-3"})
    stored = (tmp_path / "console-config.json").read_text()
    assert "Console-Pw-3" not in stored and "Console-Key-3" not in stored
    assert live.current().batch_size == 10


def test_personal_data_is_kept_90_days_in_the_journal_unless_set_otherwise():
    assert build_settings({}).personal_data_retention_days == 90
    assert build_settings({"MEDIATOR_PERSONAL_DATA_RETENTION_DAYS": "30"}).personal_data_retention_days == 30
    with pytest.raises(SettingsError, match="personal_data_retention_days"):
        build_settings({"MEDIATOR_PERSONAL_DATA_RETENTION_DAYS": "0"})


@pytest.mark.parametrize(
    "name", ["MEDIATOR_DHIS2_VERIFY_TLS", "MEDIATOR_OPENHIM_VERIFY_TLS", "MEDIATOR_OPENIMIS_VERIFY_TLS"]
)
def test_an_empty_tls_verification_is_refused_rather_than_taken_for_off(name):
    with pytest.raises(SettingsError, match="the path of a CA bundle, got nothing"):
        build_settings({name: " "})


def test_a_channel_that_pulls_cannot_also_send_the_aggregates():
    channel = {"name": "x", "path": "/x", "username": "u", "pulls": True, "sends_aggregates": True}
    with pytest.raises(SettingsError, match="pulls or sends the aggregates, not both"):
        build_settings({}, {"channels": [channel]})
