"""Shared fixtures: a fake DHIS2 on loopback set up with the insuree metadata, and the mediator app."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from fake_dhis2.store import import_metadata
from mediator.app.web.app import create_app
from mediator.config.console import LiveSettings
from mediator.config.settings import build_settings
from mediator.mapping.metadata import setup_metadata
from mediator.mapping.model import Setup
from mediator.mapping.uids import org_unit_uid
from tests import samples

ROOT = "ImspTQPwCqd"
CHANNEL_PASSWORD = "s3cret-insurees"
OTHER_CHANNEL_PASSWORD = "s3cret-claims"
DHIS2_USER, DHIS2_PASSWORD = "mediator", "Dhis2-Test-Pass"


def org_units(*location_keys: str) -> list[dict[str, Any]]:
    units = [{"id": ROOT, "name": "openIMIS", "shortName": "openIMIS", "openingDate": "2000-01-01"}]
    for key in location_keys:
        uid = org_unit_uid(key)
        units.append(
            {
                "id": uid,
                "name": f"Village {key[:8]}",
                "shortName": key[:20],
                "openingDate": "2000-01-01",
                "parent": {"id": ROOT},
            }
        )
    return units


def dhis2_metadata(villages: Iterable[str], facilities: Iterable[str] = ()) -> dict[str, Any]:
    """The mediator's DHIS2 setup, with villages opened to Family/Insuree and facilities to Claims management."""
    villages, facilities = list(villages), list(facilities)
    setup = Setup()
    opened = {
        setup.programs["insuree"]: [org_unit_uid(v) for v in villages],
        setup.programs["claim"]: [org_unit_uid(f) for f in facilities],
    }
    payload = setup_metadata(setup, opened=opened)
    payload["organisationUnits"] = org_units(*villages, *facilities)
    return payload


def seed(fake: FakeDhis2, villages: tuple[str, ...] = (samples.VILLAGE,), facilities: tuple[str, ...] = ()) -> None:
    report = import_metadata(fake.store, dhis2_metadata(villages, facilities), "CREATE_AND_UPDATE", "ALL")
    assert report["status"] == "OK", report


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    instance = FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})
    seed(instance)
    running = RunningFake(instance).start()
    yield running
    running.stop()


@pytest.fixture
def env(fake: RunningFake, tmp_path: Path) -> dict[str, str]:
    return {
        "MEDIATOR_STATE_DIR": str(tmp_path / "state"),
        "MEDIATOR_DHIS2_URL": fake.url,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_PSEUDONYM_KEY": "test-pseudonym-key",
        "MEDIATOR_CHANNEL_INSUREES_PASSWORD": CHANNEL_PASSWORD,
        "MEDIATOR_DHIS2_MAX_ATTEMPTS": "2",
    }


@pytest.fixture
def live(env: dict[str, str]) -> LiveSettings:
    return LiveSettings(build_settings(env), env)


@pytest.fixture
def client(live: LiveSettings) -> Any:
    app = create_app(live)
    app.testing = True
    return app.test_client()


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


INSUREES_AUTH = basic("openhim-insurees", CHANNEL_PASSWORD)


def dhis2_client(running: RunningFake) -> Any:
    from mediator.dhis2.client import Dhis2Client, make_auth

    return Dhis2Client(running.url, make_auth("basic", DHIS2_USER, DHIS2_PASSWORD, ""))


@pytest.fixture
def empty_dhis2() -> Iterator[RunningFake]:
    running = RunningFake(FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})).start()
    yield running
    running.stop()


@pytest.fixture
def bootstrapped(empty_dhis2: RunningFake) -> RunningFake:
    """A DHIS2 set up by `bootstrap`, with no org unit but the root."""
    from mediator.delivery.bootstrap import bootstrap

    bootstrap(dhis2_client(empty_dhis2), Setup(), "openIMIS")
    return empty_dhis2


def mediator_client(env: dict[str, str], **extra: str) -> Any:
    """The mediator app's test client with these settings (environment variables without the prefix)."""
    env = {**env, **{f"MEDIATOR_{k.upper()}": v for k, v in extra.items()}}
    return create_app(LiveSettings(build_settings(env), env)).test_client()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole test run (started outside pytest's folders: it runs as user postgres)."""
    import shutil
    import tempfile

    from tests.postgres import postgres_server

    base = Path(tempfile.mkdtemp(prefix="mediator-journal-pg-"))
    try:
        with postgres_server(base) as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: Any, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.sqlite'}"
    return empty_postgres(request.getfixturevalue("postgres_url"))


def empty_postgres(url: str) -> str:
    """The shared test server's database, emptied of what an earlier test left."""
    from sqlalchemy import text

    from mediator.journal.store import open_engine

    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def openimis() -> Iterator[Any]:
    """A real openIMIS 24.04 backend (../shared/openimis-local) for the whole test run, on the demo database."""
    from tests.openimis_local import available, openimis_server

    why = available()
    if why:
        pytest.skip(why)
    with openimis_server() as server:
        yield server


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Mark what needs a PostgreSQL server (the journal on PostgreSQL, the real openIMIS, which runs on one), so that
    `pytest -m "not e2e and not postgres"` runs without installing anything."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_postgres = "postgresql" in (params.get("journal_url"), params.get("database"))
        if "openimis" in fixtures:
            item.add_marker(pytest.mark.openimis)
        if on_postgres or "postgres_url" in fixtures or "openimis" in fixtures:
            item.add_marker(pytest.mark.postgres)
