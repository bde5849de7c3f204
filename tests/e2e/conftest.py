"""Shared end-to-end fixtures: a real OpenHIM core per test module, its API client, and how a mediator process that
registers with it is configured."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediator.openhim.core import CoreClient
from tests.e2e.openhim_core import ADMIN, SOURCE_85, VERSIONS, Core


def registered_mediator(core: Core, port: int, state_dir: Path) -> dict[str, str]:
    """The environment of a mediator on `port` that registers with the core and heartbeats every second."""
    return {
        **os.environ,
        "MEDIATOR_LISTEN_PORT": str(port),
        "MEDIATOR_PUBLIC_PORT": str(port),
        "MEDIATOR_WORKERS": "2",
        "MEDIATOR_STATE_DIR": str(state_dir),
        "MEDIATOR_OPENHIM_URL": core.api_url,
        "MEDIATOR_OPENHIM_USERNAME": ADMIN[0],
        "MEDIATOR_OPENHIM_PASSWORD": ADMIN[1],
        "MEDIATOR_OPENHIM_AUTH_MODE": core.auth_mode,
        "MEDIATOR_OPENHIM_VERIFY_TLS": "false",
        "MEDIATOR_ALLOW_DEFAULT_PASSWORDS": "true",
        "MEDIATOR_HEARTBEAT_SECONDS": "1",
        "MEDIATOR_PSEUDONYM_KEY": "e2e-pseudonym-key",
        "MEDIATOR_DHIS2_MAX_ATTEMPTS": "1",
        "MEDIATOR_DELIVERY_SECONDS": "0.5",
    }


def install_channels_and_client(api: CoreClient, urn: str, client_id: str, password: str) -> None:
    """What an implementer does in the console: install the mediator's channels, add openIMIS as a client."""
    # On a connection of its own: core 4.0.5 has been seen to fail a POST body on a reused keep-alive socket
    # ("Parse Error: Paused") and stop its worker.
    api = CoreClient(api.url, *ADMIN, auth_mode=api.auth_mode, verify=False)
    time.sleep(0.5)
    api.install_channels(urn)
    salt = uuid.uuid4().hex
    client = {
        "clientID": client_id,
        "name": "openIMIS",
        "roles": ["openimis"],
        "passwordAlgorithm": "sha512",
        "passwordSalt": salt,
        "passwordHash": hashlib.sha512((password + salt).encode()).hexdigest(),
    }
    api._call("POST", "/clients", json=client)
    time.sleep(2)  # the core refreshes its channel cache about once a second


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"core-{v}" for v in VERSIONS])
def core_version(request: pytest.FixtureRequest) -> str:
    """Each module's tests run against both cores: 4.0.5, and 8.5.0 (what implementers deploy)."""
    if request.param == "8.5.0" and not SOURCE_85.exists():
        pytest.skip(f"OpenHIM core 8.5.0's source is not at {SOURCE_85} (../shared is absent)")
    return str(request.param)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, core_version: str) -> Path:
    """A folder per module and core: each core's run starts with its own fake DHIS2 and mediator state."""
    return tmp_path_factory.mktemp(f"e2e-{core_version}")


@pytest.fixture(scope="module")
def core(core_version: str, run_dir: Path) -> Iterator[Core]:
    instance = Core(version=core_version).start(run_dir / "openhim")
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def api(core: Core) -> CoreClient:
    return CoreClient(core.api_url, *ADMIN, auth_mode=core.auth_mode, verify=False)
