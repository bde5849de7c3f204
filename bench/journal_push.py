"""Benchmark: the journal path. A Bundle of N insurees is accepted (kept in the journal, answered without waiting
for DHIS2), then delivered by the delivery worker to a fake DHIS2 running in its own process.

Reports accepted records per second, delivered records per second, and peak memory of the mediator process.

    .venv/bin/python bench/journal_push.py --insurees 10000 [--journal postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.settings import build_settings  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic, mediator_client  # noqa: E402
from tests.processes import start_fake_dhis2  # noqa: E402

VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--journal", default="", help="SQLAlchemy URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    fake, dhis2_url = start_fake_dhis2(work, VILLAGES, "bench", "Bench-pass-1")
    try:
        env = {
            "MEDIATOR_STATE_DIR": str(work / "state"),
            "MEDIATOR_DHIS2_URL": dhis2_url,
            "MEDIATOR_DHIS2_USERNAME": "bench",
            "MEDIATOR_DHIS2_PASSWORD": "Bench-pass-1",
            "MEDIATOR_PSEUDONYM_KEY": "bench-key",
            "MEDIATOR_CHANNEL_INSUREES_PASSWORD": "bench-channel",
            "MEDIATOR_BATCH_SIZE": str(args.batch),
            "MEDIATOR_INLINE_LIMIT": "1",  # answer at once; the worker delivers
        }
        if args.journal:
            env["MEDIATOR_JOURNAL_URL"] = args.journal
        client = mediator_client(env)
        n = args.insurees
        docs = (
            samples.patient(str(uuid.uuid4()), f"{100000000 + i}", village=VILLAGES[i % 20], family=None)
            for i in range(n)
        )
        body = json.dumps(samples.bundle(*docs)).encode()
        headers = {**basic("openhim-insurees", "bench-channel"), "Content-Type": "application/json"}

        start = time.perf_counter()
        resp = client.post("/channels/insurees", data=body, headers=headers)
        accepted = time.perf_counter() - start
        assert resp.status_code == 202, resp.data[:300]

        deliverer = client.application.extensions["deliverer"]
        start = time.perf_counter()
        deliverer.work_once(build_settings(env))
        delivered = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"insurees: {n} in one Bundle ({len(body) / 1e6:.0f} MB), journal {'PostgreSQL' if args.journal else 'SQLite'}"
        )
        print(
            f"accepted (parsed, validated, kept in the journal, answered): {accepted:.2f} s = {n / accepted:,.0f} records/s"
        )
        print(f"delivered by the worker to the fake DHIS2: {delivered:.2f} s = {n / delivered:,.0f} records/s")
        print(f"peak RSS of the mediator process: {peak:.0f} MiB")
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
