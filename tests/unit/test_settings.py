import pytest

from mediator.live_settings import LiveSettings
from mediator.settings import SettingsError, build_settings, insecure_warnings, with_console


def test_defaults_come_from_mediator_config_json():
    s = build_settings({})
    assert s.batch_size == 200
    assert s.birth_date_precision == "year"
    assert s.send_names is False
    assert [c.name for c in s.channels] == ["insurees", "metadata", "policies", "claims", "openimis", "pull"]
    assert s.channels[0].resources == ("Patient", "Group")


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
