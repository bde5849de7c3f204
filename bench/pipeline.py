"""Benchmark: the mediator's main job against reading its input, on one Bundle, in one process.

1. baseline: parsing the Bundle with orjson, in a process of its own (CPU seconds, records per CPU-second);
2. accept: the channel's POST (checked, read, validated, kept in the journal, answered without waiting for DHIS2);
3. delivery: the delivery worker sends the push to a fake DHIS2 in its own process (the mediator's CPU only).

Reports each phase in records per CPU-second, accept as a multiple of the orjson parse, and the peak RSS of the
mediator process after each phase (run with --insurees 100000 to see that it stays flat).

With --mixed the Bundle is what openIMIS sends on its own channel: the locations and code lists, the insurees with
their families, a policy (Coverage) per family and a claim (a medicine and a service) per insuree.

    .venv/bin/python bench/pipeline.py --insurees 2000 [--families | --mixed] [--journal postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.config.settings import build_settings  # noqa: E402
from mediator.journal.finish import progress  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic, mediator_client  # noqa: E402
from tests.processes import BENCH_CHANNEL_PASSWORD, BENCH_DHIS2, bench_env, start_fake_dhis2  # noqa: E402

VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def write_bundle(path: Path, n: int, families: bool, mixed: bool = False) -> int:
    """N Patients (and, with families, a Group for every four of them; mixed, also the metadata, a Coverage per
    family and a Claim per Patient), written entry by entry."""
    families = families or mixed
    with path.open("w") as out:
        out.write('{"resourceType": "Bundle", "type": "collection", "entry": [')
        first = True
        family = None
        members: list[str] = []
        records = 0
        if mixed:
            metadata = [*samples.locations(), *samples.code_lists_for_claims()]
            metadata.append(samples.code_list_entry("InsurancePlan", str(uuid.uuid4()), samples.PRODUCT_CODE, "B"))
            out.write(",".join(json.dumps({"resource": doc}) for doc in metadata))
            records, first = len(metadata), False
        for i in range(n):
            key = str(uuid.uuid4())
            if families and i % 4 == 0:
                family = str(uuid.uuid4())
            doc = samples.patient(key, f"{100000000 + i}", village=VILLAGES[i % 20], family=family, is_head=i % 4 == 0)
            out.write(("" if first else ",") + json.dumps({"resource": doc}))
            first = False
            records += 1
            members.append(key)
            if mixed:
                claim = samples.claim(str(uuid.uuid4()), key)
                claim["identifier"][1]["value"] = f"C{i:08d}"
                out.write("," + json.dumps({"resource": claim}))
                records += 1
            if families and (i % 4 == 3 or i == n - 1):
                out.write("," + json.dumps({"resource": samples.group(str(family), tuple(members))}))
                records += 1
                if mixed:
                    policy = samples.coverage(str(uuid.uuid4()), f"{100000000 + i - len(members) + 1}")
                    out.write("," + json.dumps({"resource": policy}))
                    records += 1
                members = []
            elif not families:
                members = []
        out.write("]}")
    return records


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PARSE = """
import sys, time, orjson
body = open(sys.argv[1], "rb").read()
best = float("inf")
for _ in range(int(sys.argv[2])):
    cpu = time.process_time()
    doc = orjson.loads(body)
    best = min(best, time.process_time() - cpu)
    del doc
print(best)
"""


def orjson_parse(body: Path, rounds: int = 7) -> float:
    """CPU seconds to parse the body with orjson (best of a few rounds), in a fresh process of its own: neither
    the mediator's heap nor its peak memory touch the baseline."""
    out = subprocess.run([sys.executable, "-c", PARSE, str(body), str(rounds)], capture_output=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=2000)
    parser.add_argument("--families", action="store_true", help="a Group for every four insurees")
    parser.add_argument("--mixed", action="store_true", help="openIMIS's own channel: metadata, policies, claims")
    parser.add_argument("--slice", type=int, default=1000)
    parser.add_argument("--journal", default="", help="SQLAlchemy URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    fake, dhis2_url = start_fake_dhis2(work, VILLAGES, *BENCH_DHIS2)
    try:
        env = bench_env(work, dhis2_url, slice_size=str(args.slice), inline_limit="1")
        if args.journal:
            env["MEDIATOR_JOURNAL_URL"] = args.journal
        body = work / "bundle.json"
        records = write_bundle(body, args.insurees, args.families, args.mixed)
        client = mediator_client(env)
        channel = "openimis" if args.mixed else "insurees"
        headers = {**basic(f"openhim-{channel}", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}

        base = peak_mib()

        cpu = time.process_time()
        with body.open("rb") as stream:
            resp = client.post(
                f"/channels/{channel}", input_stream=stream, headers=headers, content_length=body.stat().st_size
            )
        accept_cpu = time.process_time() - cpu
        assert resp.status_code == 202, resp.data[:300]
        after_accept = peak_mib()

        deliverer = client.application.extensions["deliverer"]
        start = time.perf_counter()
        cpu = time.process_time()
        deliverer.work_once(build_settings(env))
        deliver_wall = time.perf_counter() - start
        deliver_cpu = time.process_time() - cpu
        left = progress(deliverer.journal, 1)  # the one push of a fresh journal
        assert set(left) <= {"delivered"}, left

        peak = peak_mib()
        parse_cpu = orjson_parse(body)
        journal = "PostgreSQL" if args.journal else "SQLite"
        print(
            f"records: {records} ({args.insurees} insurees{_with(args)}) in one Bundle "
            f"({body.stat().st_size / 1e6:.1f} MB), journal {journal}"
        )
        print(f"orjson parse:  {parse_cpu:6.2f} CPU-s = {records / parse_cpu:9,.0f} records/CPU-s")
        print(
            f"accept:        {accept_cpu:6.2f} CPU-s = {records / accept_cpu:9,.0f} records/CPU-s "
            f"({accept_cpu / parse_cpu:.1f}x the orjson parse)"
        )
        print(
            f"delivery:      {deliver_cpu:6.2f} CPU-s = {records / deliver_cpu:9,.0f} records per mediator CPU-s "
            f"({deliver_wall:.1f} s wall)"
        )
        print(
            f"peak RSS: {base:.0f} MiB before the push, {after_accept:.0f} MiB after accepting it, "
            f"{peak:.0f} MiB after delivering it"
        )
    finally:
        fake.terminate()
        fake.wait(10)


def _with(args: argparse.Namespace) -> str:
    if args.mixed:
        return ", with families, metadata, a policy per family and a claim per insuree"
    return ", with families" if args.families else ""


if __name__ == "__main__":
    main()
