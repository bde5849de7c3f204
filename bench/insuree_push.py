"""Benchmark: insurees through the mediator into a fake DHIS2 running in its own process.

Reports records per CPU-second of the mediator process (read + validate + map + deliver + answer), the latency the
mediator adds to one Patient push (wall time minus the time spent waiting for DHIS2), and peak memory.

    .venv/bin/python bench/insuree_push.py --insurees 5000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.app.web.app import create_app  # noqa: E402
from mediator.config.console import LiveSettings  # noqa: E402
from mediator.config.settings import build_settings  # noqa: E402
from mediator.mapping.insuree import InsureeTarget, map_insurees  # noqa: E402
from mediator.openimis.reader import read_body  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic  # noqa: E402
from tests.processes import BENCH_CHANNEL_PASSWORD, BENCH_DHIS2, bench_env, start_fake_dhis2  # noqa: E402

VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def patients(n: int) -> list[dict]:
    return [
        samples.patient(str(uuid.uuid4()), f"{100000000 + i}", village=VILLAGES[i % len(VILLAGES)], family=None)
        for i in range(n)
    ]


def dhis2_seconds(envelope: dict) -> float:
    total = 0.0
    for o in envelope["orchestrations"]:
        start = datetime.fromisoformat(o["request"]["timestamp"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(o["response"]["timestamp"].replace("Z", "+00:00"))
        total += (end - start).total_seconds()
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--single", type=int, default=50, help="single-Patient pushes for the latency figure")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    fake, dhis2_url = start_fake_dhis2(work, VILLAGES, *BENCH_DHIS2)
    try:
        env = bench_env(work, dhis2_url, batch_size=str(args.batch))
        client = create_app(LiveSettings(build_settings(env), env)).test_client()
        headers = {**basic("openhim-insurees", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}

        body = json.dumps(samples.bundle(*patients(args.insurees))).encode()
        cpu, wall = time.process_time(), time.perf_counter()
        reading = read_body(body, ("Patient", "Group"))
        map_insurees(reading.records, [], InsureeTarget(pseudonym_key="k"))
        map_cpu = time.process_time() - cpu

        cpu, wall = time.process_time(), time.perf_counter()
        resp = client.post("/channels/insurees", data=body, headers=headers)
        push_cpu, push_wall = time.process_time() - cpu, time.perf_counter() - wall
        envelope = json.loads(resp.data)
        assert envelope["status"] == "Successful", envelope["properties"]

        added = []
        for doc in patients(args.single):
            start = time.perf_counter()
            single = json.loads(client.post("/channels/insurees", data=json.dumps(doc), headers=headers).data)
            added.append(time.perf_counter() - start - dhis2_seconds(single))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        n = args.insurees
        print(f"insurees: {n} in one Bundle, batch size {args.batch}, {os.cpu_count()} cores")
        print(f"read + validate + map only: {n / map_cpu:,.0f} records per CPU-second")
        print(
            f"whole push: {push_wall:.2f} s wall ({n / push_wall:,.0f} records/s incl. fake DHIS2), "
            f"mediator CPU {push_cpu:.2f} s = {n / push_cpu:,.0f} records per mediator CPU-second; "
            f"{len(envelope['orchestrations'])} DHIS2 calls taking {dhis2_seconds(envelope):.2f} s"
        )
        q = statistics.quantiles(added, n=20)
        print(
            f"added latency per single Patient push: p50 {statistics.median(added) * 1000:.1f} ms, p95 {q[18] * 1000:.1f} ms"
        )
        print(f"peak RSS of the mediator process: {peak_mib:.0f} MiB")
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
