"""`bootstrap` sets up an empty DHIS2 for the mediator, and can run again without losing anything."""

import subprocess
import sys

import pytest

from fake_dhis2.store import import_metadata
from mediator.delivery.bootstrap import bootstrap
from mediator.mapping.metadata import option_uid
from mediator.mapping.model import DATA_ELEMENTS, PROGRAMS, STAGES, Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, dhis2_client

SETUP = Setup()


@pytest.fixture
def empty(empty_dhis2):
    return empty_dhis2


def client(running):
    return dhis2_client(running)


def test_bootstrap_installs_everything_into_an_empty_dhis2(empty):
    result = bootstrap(client(empty), SETUP, "openIMIS")
    store = empty.fake.store
    assert result.root_created
    assert store.org_units[SETUP.root_org_unit]["name"] == "openIMIS"
    assert set(SETUP.programs.values()) <= set(store.programs)
    assert set(SETUP.stages.values()) <= set(store.program_stages)
    assert set(SETUP.data_elements.values()) <= set(store.data_elements)
    assert set(SETUP.attributes.values()) <= set(store.attributes)
    assert set(SETUP.org_unit_groups.values()) <= set(store.org_unit_groups)
    assert SETUP.tracked_entity_type in store.tracked_entity_types
    assert {"M", "F", "O"} <= store.option_codes(SETUP.option_sets["gender"])
    assert {"1", "2", "4", "8", "16"} <= store.option_codes(SETUP.option_sets["claim_status"])
    stage = store.program_stages[SETUP.stages["claim_services"]]
    assert stage["repeatable"] is True
    assert len(stage["programStageDataElements"]) == len(STAGES["claim_services"].data_elements)
    assert not any(a["mandatory"] for p in store.programs.values() for a in p["programTrackedEntityAttributes"])
    assert len(DATA_ELEMENTS) and len(PROGRAMS) == 2


def test_bootstrap_again_keeps_options_and_memberships_data_added(empty):
    bootstrap(client(empty), SETUP, "openIMIS")
    store = empty.fake.store
    village = org_unit_uid(samples.VILLAGE)
    product_set = SETUP.option_sets["product"]
    added = {
        "organisationUnits": [
            {
                "id": village,
                "name": "V",
                "shortName": "V",
                "openingDate": "2000-01-01",
                "parent": {"id": SETUP.root_org_unit},
            }
        ],
        "options": [
            {
                "id": option_uid(product_set, "BCTA0001"),
                "code": "BCTA0001",
                "name": "Basic",
                "optionSet": {"id": product_set},
            }
        ],
    }
    assert import_metadata(store, added, "CREATE_AND_UPDATE", "ALL")["status"] == "OK"
    store.option_sets[product_set]["options"] = [{"id": option_uid(product_set, "BCTA0001")}]
    store.programs[SETUP.programs["insuree"]]["organisationUnits"] = [{"id": village}]
    store.org_units[SETUP.root_org_unit]["name"] = "Renamed by the implementer"

    result = bootstrap(client(empty), SETUP, "openIMIS")

    assert not result.root_created
    assert store.org_units[SETUP.root_org_unit]["name"] == "Renamed by the implementer"
    assert store.programs[SETUP.programs["insuree"]]["organisationUnits"] == [{"id": village}]
    assert "BCTA0001" in store.option_codes(product_set)
    assert {"id": option_uid(product_set, "BCTA0001")} in store.option_sets[product_set]["options"]


def test_bootstrap_command_reports_and_exits_zero(empty, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "MEDIATOR_STATE_DIR": str(tmp_path),
        "MEDIATOR_DHIS2_URL": empty.url,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
    }
    done = subprocess.run(
        [sys.executable, "-m", "mediator.app.cli", "bootstrap"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "set up for the mediator" in done.stderr
    assert SETUP.programs["claim"] in empty.fake.store.programs


def test_bootstrap_command_fails_clearly_without_dhis2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MEDIATOR_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "mediator.app.cli", "bootstrap"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "bootstrap failed" in done.stderr and "not set" in done.stderr
