"""Real processes for end-to-end tests and benchmarks: a fake DHIS2 set up with the insuree metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, dhis2_metadata
from tests.e2e.openhim_core import free_port, wait_for_port


def start_fake_dhis2(
    work: Path, villages: Iterable[str], user: str, password: str, log: Path | None = None, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """Start `python -m fake_dhis2` on `port` (a free one by default) with the villages as org units; returns it and
    its URL."""
    villages = list(villages)
    metadata = dhis2_metadata(villages)
    path = work / "fake-dhis2-metadata.json"
    path.write_text(json.dumps(metadata))
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "fake_dhis2",
        "--port",
        str(port),
        "--user",
        f"{user}:{password}",
        "--metadata",
        str(path),
    ]
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 30, proc)
    return proc, f"http://127.0.0.1:{port}"


def faults(dhis2: str, **switches: float) -> dict:
    """Set fault switches of a fake DHIS2 process (fail_next, delay, ...); returns what it holds."""
    import requests

    return requests.post(f"{dhis2}/__fake__/faults", json=switches, timeout=10).json()


def mediator_env(
    port: int,
    state_dir: Path,
    dhis2: str,
    channel_password: str,
    dhis2_user: str = DHIS2_USER,
    dhis2_password: str = DHIS2_PASSWORD,
    **settings: str,
) -> dict[str, str]:
    """The environment of a served mediator (`python -m mediator.app.cli serve`) on `port` without OpenHIM, delivering
    to the fake DHIS2 at `dhis2`, its insuree channel open with `channel_password`; `settings` are more MEDIATOR_*
    variables, by their names without the prefix."""
    return {
        **os.environ,
        "MEDIATOR_LISTEN_PORT": str(port),
        "MEDIATOR_STATE_DIR": str(state_dir),
        "MEDIATOR_OPENHIM_REGISTER": "false",
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": dhis2_user,
        "MEDIATOR_DHIS2_PASSWORD": dhis2_password,
        "MEDIATOR_CHANNEL_INSUREES_PASSWORD": channel_password,
        **{f"MEDIATOR_{k.upper()}": v for k, v in settings.items()},
    }


BENCH_DHIS2 = ("bench", "Bench-pass-1")
BENCH_CHANNEL_PASSWORD = "bench-channel"  # noqa: S105 (a throw-away channel of the benchmarks)


def bench_env(work: Path, dhis2: str, **settings: str) -> dict[str, str]:
    """The settings of an in-process mediator for a benchmark: its state under `work`, the fake DHIS2 at `dhis2`
    (started with BENCH_DHIS2), every channel open with BENCH_CHANNEL_PASSWORD; `settings` as in `mediator_env`."""
    channels = ("INSUREES", "METADATA", "POLICIES", "CLAIMS", "OPENIMIS")
    return {
        "MEDIATOR_STATE_DIR": str(work / "state"),
        "MEDIATOR_DHIS2_URL": dhis2,
        "MEDIATOR_DHIS2_USERNAME": BENCH_DHIS2[0],
        "MEDIATOR_DHIS2_PASSWORD": BENCH_DHIS2[1],
        "MEDIATOR_PSEUDONYM_KEY": "bench-key",
        **{f"MEDIATOR_CHANNEL_{c}_PASSWORD": BENCH_CHANNEL_PASSWORD for c in channels},
        **{f"MEDIATOR_{k.upper()}": v for k, v in settings.items()},
    }
