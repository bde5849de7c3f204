"""Benchmark: the journal path. A Bundle of N insurees, written to a file, is accepted (read in two passes, kept in
the journal, answered without waiting for DHIS2), then delivered by the delivery worker, slice by slice, to a fake
DHIS2 running in its own process.

Reports accepted records per second, delivered records per second, and the peak memory of the mediator process
after each phase (the body is streamed from the file: the benchmark itself holds none of it).

    .venv/bin/python bench/journal_push.py --insurees 100000 [--families] [--journal postgresql://...]
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

from mediator.config.settings import build_settings  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic, mediator_client  # noqa: E402
from tests.processes import BENCH_CHANNEL_PASSWORD, BENCH_DHIS2, bench_env, start_fake_dhis2  # noqa: E402

VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_bundle(path: Path, n: int, families: bool) -> int:
    """N Patients (and, with families, a Group for every four of them), written entry by entry."""
    with path.open("w") as out:
        out.write('{"resourceType": "Bundle", "type": "collection", "entry": [')
        first = True
        family = None
        members: list[str] = []
        records = 0
        for i in range(n):
            key = str(uuid.uuid4())
            if families and i % 4 == 0:
                family = str(uuid.uuid4())
            doc = samples.patient(key, f"{100000000 + i}", village=VILLAGES[i % 20], family=family, is_head=i % 4 == 0)
            out.write(("" if first else ",") + json.dumps({"resource": doc}))
            first = False
            records += 1
            members.append(key)
            if families and (i % 4 == 3 or i == n - 1):
                out.write("," + json.dumps({"resource": samples.group(str(family), tuple(members))}))
                records += 1
                members = []
            elif not families:
                members = []
        out.write("]}")
    return records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=10000)
    parser.add_argument("--families", action="store_true", help="a Group for every four insurees")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--slice", type=int, default=1000)
    parser.add_argument("--journal", default="", help="SQLAlchemy URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    fake, dhis2_url = start_fake_dhis2(work, VILLAGES, *BENCH_DHIS2)
    try:
        # answered at once (inline limit 1); the worker delivers
        env = bench_env(work, dhis2_url, batch_size=str(args.batch), slice_size=str(args.slice), inline_limit="1")
        if args.journal:
            env["MEDIATOR_JOURNAL_URL"] = args.journal
        body = work / "bundle.json"
        records = write_bundle(body, args.insurees, args.families)
        client = mediator_client(env)
        headers = {**basic("openhim-insurees", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}
        base = peak_mib()

        start = time.perf_counter()
        with body.open("rb") as stream:
            resp = client.post(
                "/channels/insurees", input_stream=stream, headers=headers, content_length=body.stat().st_size
            )
        accepted = time.perf_counter() - start
        assert resp.status_code == 202, resp.data[:300]
        after_accept = peak_mib()

        deliverer = client.application.extensions["deliverer"]
        start = time.perf_counter()
        cpu = time.process_time()
        deliverer.work_once(build_settings(env))
        delivered = time.perf_counter() - start
        cpu = time.process_time() - cpu
        journal = "PostgreSQL" if args.journal else "SQLite"
        print(
            f"records: {records} ({args.insurees} insurees{', with families' if args.families else ''}) "
            f"in one Bundle ({body.stat().st_size / 1e6:.0f} MB), journal {journal}"
        )
        print(
            f"accepted (read twice, validated, kept in the journal, answered): {accepted:.1f} s = {records / accepted:,.0f} records/s"
        )
        print(
            f"delivered by the worker to the fake DHIS2: {delivered:.1f} s = {records / delivered:,.0f} records/s "
            f"({records / cpu:,.0f} records per mediator CPU-second)"
        )
        print(
            f"peak RSS of the mediator process: {base:.0f} MiB before the push, {after_accept:.0f} MiB after "
            f"accepting it, {peak_mib():.0f} MiB after delivering it"
        )
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
