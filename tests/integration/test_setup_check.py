"""Start-up check of an existing DHIS2, and mapping files that point the mediator at other UIDs."""

import json
import subprocess
import sys

import pytest

from mediator.config.mapping_file import dhis2_setup
from mediator.config.settings import SettingsError, build_settings
from mediator.delivery.bootstrap import bootstrap
from mediator.delivery.setup_check import check_setup
from mediator.mapping.insuree import InsureeTarget
from mediator.mapping.model import Setup
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, dhis2_client

SETUP = Setup()


@pytest.fixture
def dhis2(empty_dhis2):
    return empty_dhis2


def client(running):
    return dhis2_client(running)


def check_env(dhis2, tmp_path):
    """The environment of a `check` command against this DHIS2."""
    return {
        "PATH": "/usr/bin:/bin",
        "MEDIATOR_STATE_DIR": str(tmp_path),
        "MEDIATOR_DHIS2_URL": dhis2.url,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
    }


def test_a_bootstrapped_dhis2_passes(dhis2):
    bootstrap(client(dhis2), SETUP, "openIMIS")
    assert check_setup(client(dhis2), SETUP, InsureeTarget()) == []


def test_an_empty_dhis2_gets_a_report_of_everything_missing(dhis2):
    problems = check_setup(client(dhis2), SETUP, InsureeTarget())
    assert any("program 'Family/Insuree'" in p and "bootstrap" in p for p in problems)
    assert any("data element claim.claimed" in p for p in problems)


def test_mandatory_personal_data_is_reported_as_in_the_way(dhis2):
    bootstrap(client(dhis2), SETUP, "openIMIS")
    program = dhis2.fake.store.programs[SETUP.programs["insuree"]]
    for pa in program["programTrackedEntityAttributes"]:
        if pa["trackedEntityAttribute"]["id"] == SETUP.attributes["first_name"]:
            pa["mandatory"] = True
    problems = check_setup(client(dhis2), SETUP, InsureeTarget())
    assert len(problems) == 1 and "first_name" in problems[0] and "E1018" in problems[0]
    assert check_setup(client(dhis2), SETUP, InsureeTarget(send_names=True)) == []


def test_a_mapping_file_points_keys_at_other_uids(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text(
        json.dumps({"programs": {"claim": "Abcdefghij1"}, "data_elements": {"claim.claimed": "Bbcdefghij1"}})
    )
    setup = dhis2_setup(build_settings({"MEDIATOR_MAPPING_FILE": str(path)}))
    assert setup.programs["claim"] == "Abcdefghij1"
    assert setup.data_elements["claim.claimed"] == "Bbcdefghij1"
    assert setup.programs["insuree"] == SETUP.programs["insuree"]


def test_a_bad_mapping_file_is_refused_naming_the_entry(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"programs": {"claims": "Abcdefghij1"}, "data_elements": {"claim.claimed": "bad"}}))
    with pytest.raises(SettingsError) as err:
        dhis2_setup(build_settings({"MEDIATOR_MAPPING_FILE": str(path)}))
    assert "programs.claims: unknown" in str(err.value) and "data_elements.claim.claimed" in str(err.value)


def test_check_command_exits_non_zero_on_problems(dhis2, tmp_path):
    env = check_env(dhis2, tmp_path)
    run = [sys.executable, "-m", "mediator.app.cli", "check"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "is not in DHIS2" in done.stderr
    bootstrap(client(dhis2), SETUP, "openIMIS")
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_monthly_data_sets_are_checked_when_the_aggregates_are_on(dhis2):
    from mediator.aggregates import cubes
    from mediator.delivery.setup_check import check_aggregates

    problems = check_aggregates(client(dhis2))
    assert any("data set ENROLMENT" in p and "bootstrap" in p for p in problems)
    assert any("data element NB_CLAIM_SERVICE_ICD" in p for p in problems)
    bootstrap(client(dhis2), SETUP, "openIMIS")
    assert check_aggregates(client(dhis2)) == []
    dhis2.fake.store.category_option_combos = {
        uid: c
        for uid, c in dhis2.fake.store.category_option_combos.items()
        if c["categoryCombo"]["id"] != cubes.PROCESSED_CLAIM.combo_uid
    }
    (problem,) = check_aggregates(client(dhis2))
    assert cubes.PROCESSED_CLAIM.combo_uid in problem and "no option combos" in problem


def test_aggregate_only_mode_checks_only_what_it_writes(dhis2, tmp_path):
    env = {**check_env(dhis2, tmp_path), "MEDIATOR_AGGREGATE_ONLY": "true"}
    run = [sys.executable, "-m", "mediator.app.cli", "check"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "data set ENROLMENT" in done.stderr and "Family/Insuree" not in done.stderr
    bootstrap(client(dhis2), SETUP, "openIMIS")
    del dhis2.fake.store.programs[SETUP.programs["insuree"]]  # tracker setup gone: nothing aggregate-only needs
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
