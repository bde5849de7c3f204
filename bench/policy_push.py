"""Benchmark: policies for insurees the mediator delivered earlier, into a fake DHIS2 in its own process.

Where each covered insuree's enrollment is comes from the journal; the baseline, measured in the same run, asks DHIS2
for it, one GET per insuree (as the mediator did before). Reports policies per mediator CPU-second, wall time and
DHIS2 calls of each.

    .venv/bin/python bench/policy_push.py --insurees 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mediator.delivery.worker  # noqa: E402
from mediator.app.web.app import create_app  # noqa: E402
from mediator.config.console import LiveSettings  # noqa: E402
from mediator.config.settings import build_settings  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic  # noqa: E402
from tests.processes import BENCH_CHANNEL_PASSWORD, BENCH_DHIS2, bench_env, start_fake_dhis2  # noqa: E402

VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def post(client, path: str, doc: dict) -> dict:
    name = path.rsplit("/", 1)[1]
    headers = {**basic(f"openhim-{name}", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}
    envelope = json.loads(client.post(path, data=json.dumps(doc), headers=headers).data)
    assert envelope["status"] == "Successful", envelope["response"]["body"][:500]
    return envelope


def policies(numbers: list[str]) -> dict:
    return samples.bundle(*(samples.coverage(str(uuid.uuid4()), n) for n in numbers))


def timed(client, numbers: list[str]) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    envelope = post(client, "/channels/policies", policies(numbers))
    return time.process_time() - cpu, time.perf_counter() - wall, len(envelope["orchestrations"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-policies-"))
    fake, dhis2_url = start_fake_dhis2(work, VILLAGES, *BENCH_DHIS2)
    try:
        env = bench_env(work, dhis2_url)
        client = create_app(LiveSettings(build_settings(env), env)).test_client()
        post(client, "/channels/metadata", samples.code_list_entry("InsurancePlan", "p-1", samples.PRODUCT_CODE, "B"))
        numbers = [f"{100000000 + i}" for i in range(args.insurees)]
        patients = [
            samples.patient(str(uuid.uuid4()), n, village=VILLAGES[i % len(VILLAGES)], family=None)
            for i, n in enumerate(numbers)
        ]
        post(client, "/channels/insurees", samples.bundle(*patients))
        with mock.patch.object(mediator.delivery.worker, "enrollment_org_units", lambda journal, keys: {}):
            before = timed(client, numbers)
        now = timed(client, numbers)
        n = args.insurees
        for name, (cpu, wall, calls) in (("asking DHIS2 (before)", before), ("from the journal (now)", now)):
            print(
                f"{name:24} {n / cpu:8,.0f} policies per mediator CPU-second, {wall:6.2f} s wall, {calls} DHIS2 calls"
            )
        print(f"ratio: x{before[0] / now[0]:.1f} the CPU, x{before[1] / now[1]:.1f} the wall time")
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
