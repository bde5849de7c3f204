"""Benchmark: what the monthly aggregates cost, measured in one run against the same push without them.

One Bundle of what openIMIS sends on its own channel (locations, code lists, insurees with a family for every four,
a policy per family with its contribution, a claim per insuree spread over twelve months, and its review) is pushed
three times into fresh journals, the fake DHIS2 running in its own process:

1. tracker only (the aggregates off): accept and delivery, records per mediator CPU-second (the baseline);
2. the aggregates on: the same, with every record counted into the cells as its slice is decided;
3. aggregate-only mode: no tracker data sent, only counted.

Then, on the second journal, sending every month (org unit months and values per CPU-second), and a correction: a
tenth of the insurees move village, counted again and their months re-sent.

    .venv/bin/python bench/aggregates.py --insurees 2000
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.config.settings import build_settings  # noqa: E402
from mediator.delivery.aggregates import send_aggregates  # noqa: E402
from mediator.delivery.bootstrap import bootstrap  # noqa: E402
from mediator.dhis2.client import Dhis2Client, make_auth  # noqa: E402
from mediator.journal import aggregates as jagg  # noqa: E402
from mediator.mapping.model import Setup  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic, mediator_client  # noqa: E402
from tests.processes import BENCH_CHANNEL_PASSWORD, BENCH_DHIS2, bench_env, start_fake_dhis2  # noqa: E402

WARDS = [str(uuid.UUID(int=1000 + i)) for i in range(4)]
VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def contract(key: str, family: str, insurees: list[str], paid: str) -> dict[str, Any]:
    doc = samples.contract(key, tuple(insurees))
    doc["subject"] = [{"reference": f"Group/{family}", "type": "Group"}]
    asset = doc["term"][0]["asset"][0]
    asset["period"] = [{"start": "2025-03-01", "end": "2026-02-28"}]
    asset["extension"] = [
        {
            "url": f"{samples.IG}/StructureDefinition/contract-premium",
            "extension": [
                {"url": "amount", "valueMoney": {"value": float(paid)}},
                {"url": "date", "valueDate": "2025-03-01"},
            ],
        }
    ]
    return doc


def resources(n: int) -> list[dict[str, Any]]:
    found = [
        samples.area(samples.REGION, "R", "R1", "Ultha"),
        samples.area(samples.DISTRICT, "D", "R1D1", "Rapta", samples.REGION),
        *(samples.area(w, "W", f"W{i}", f"Ward {i}", samples.DISTRICT) for i, w in enumerate(WARDS)),
        *(samples.area(v, "V", f"V{i}", f"Village {i}", WARDS[i % 4]) for i, v in enumerate(VILLAGES)),
        samples.facility_location(samples.HOSPITAL, "RAHOS001", "Rapta Hospital", samples.DISTRICT),
        samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta Hospital"),
        *samples.code_lists_for_claims(),
        samples.code_list_entry("InsurancePlan", str(uuid.uuid4()), samples.PRODUCT_CODE, "Basic"),
    ]
    members: list[str] = []
    family = ""
    for i in range(n):
        key = str(uuid.uuid4())
        if i % 4 == 0:
            family = str(uuid.uuid4())
        born = f"{1950 + i % 70}-{i % 12 + 1:02d}-15"
        found.append(samples.patient(key, f"{100000000 + i}", VILLAGES[i % 20], family, i % 4 == 0, birthDate=born))
        members.append(key)
        claim = samples.claim(str(uuid.uuid4()), key)
        claim["identifier"][1]["value"] = f"C{i:08d}"
        month = f"2025-{i % 12 + 1:02d}"
        claim["billablePeriod"] = {"start": f"{month}-10", "end": f"{month}-11"}
        found.append(claim)
        found.append(samples.claim_response(claim["id"], str(uuid.uuid4())))
        if i % 4 == 3 or i == n - 1:
            found.append(samples.group(family, tuple(members)))
            found.append(contract(str(uuid.uuid4()), family, members, "10000" if i % 8 == 3 else "4000"))
            members = []
    return found


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def push(work: Path, dhis2_url: str, body: bytes, records: int, **settings: str) -> dict[str, Any]:
    env = bench_env(work, dhis2_url, inline_limit="1", **settings)
    client = mediator_client(env)
    headers = {**basic("openhim-openimis", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}
    cpu = time.process_time()
    answer = client.post("/channels/openimis", data=body, headers=headers)
    accept = time.process_time() - cpu
    assert answer.status_code == 202, answer.data[:300]
    deliverer = client.application.extensions["deliverer"]
    cpu = time.process_time()
    deliverer.work_once(build_settings(env))
    delivery = time.process_time() - cpu
    return {"env": env, "client": client, "accept": records / accept, "delivery": records / delivery}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-aggregates-"))
    fake, dhis2_url = start_fake_dhis2(work, VILLAGES, *BENCH_DHIS2)
    try:
        auth = make_auth("basic", BENCH_DHIS2[0], BENCH_DHIS2[1], "")
        bootstrap(Dhis2Client(dhis2_url, auth), Setup(), "openIMIS")
        docs = resources(args.insurees)
        body = json.dumps(samples.bundle(*docs)).encode()
        records = len(docs)
        base = peak_mib()
        tracker = push(work / "tracker", dhis2_url, body, records)
        counted = push(work / "counted", dhis2_url, body, records, aggregates="true")
        only = push(work / "only", dhis2_url, body, records, aggregate_only="true")
        after_push = peak_mib()

        env = counted["env"]
        settings = build_settings(env)
        app = counted["client"].application
        journal, deliverer = app.extensions["journal"], app.extensions["deliverer"]
        with journal.sessions() as session:
            months = jagg.months_known(session)
        cpu, start = time.process_time(), time.perf_counter()
        run = send_aggregates(journal, lambda ex: deliverer.client(settings, None, ex), settings, months)
        send_cpu, send_wall = time.process_time() - cpu, time.perf_counter() - start
        assert run is not None and run.failure is None and not run.rejected, run

        movers = [d for d in docs if d["resourceType"] == "Patient"][: args.insurees // 10]
        for doc in movers:
            doc["address"][0]["extension"][1]["valueReference"]["reference"] = f"Location/{VILLAGES[3]}"
            doc["address"][0]["extension"][1]["valueReference"].pop("identifier", None)
        moved = json.dumps(samples.bundle(*movers)).encode()
        headers = {**basic("openhim-openimis", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}
        cpu = time.process_time()
        counted["client"].post("/channels/openimis", data=moved, headers=headers)
        deliverer.work_once(settings)
        recount_cpu = time.process_time() - cpu
        cpu = time.process_time()
        again = send_aggregates(journal, lambda ex: deliverer.client(settings, None, ex), settings, months)
        resend_cpu = time.process_time() - cpu
        assert again is not None and again.failure is None

        print(f"records: {records} ({args.insurees} insurees with families, policies, claims and reviews)")
        print("                      accept (records/CPU-s)   delivery (records per mediator CPU-s)")
        for name, r in (("tracker only", tracker), ("aggregates on", counted), ("aggregate-only", only)):
            print(f"  {name:18} {r['accept']:12,.0f}            {r['delivery']:12,.0f}")
        print(
            f"aggregates on / tracker only: delivery {counted['delivery'] / tracker['delivery']:.2f}x, "
            f"accept {counted['accept'] / tracker['accept']:.2f}x"
        )
        print(
            f"send every month: {run.sent} org unit months, {run.values} values in {run.calls} DHIS2 calls: "
            f"{send_cpu:.2f} CPU-s ({run.values / send_cpu:,.0f} values/CPU-s), {send_wall:.1f} s wall"
        )
        print(
            f"a tenth moves village: {len(movers)} insurees counted again with their families and claims in "
            f"{recount_cpu:.2f} CPU-s (push and delivery); {again.sent} org unit months re-sent in {resend_cpu:.2f} CPU-s"
        )
        print(
            f"peak RSS: {base:.0f} MiB before, {after_push:.0f} MiB after the three pushes, {peak_mib():.0f} MiB at the end"
        )
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main()
