"""Benchmark: what the metrics, the JSON logs and the health checks cost.

1. The same push of insurees into fresh journals, the fake DHIS2 in its own process, alternately with the metrics'
   counters and histograms as they are and with them replaced by no-ops (the baseline, in the same run); then with
   JSON log lines instead of text (both written to /dev/null at INFO). Records per mediator CPU-second, and the
   ratio to the baseline.
2. What counting one record costs, in memory and in the files gunicorn's workers share.
3. A scrape of /metrics, and a /ready that asks DHIS2 each time, with that many records pending in the journal (DHIS2's
   imports failing): milliseconds each.

    .venv/bin/python bench/observability.py --insurees 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.app.web.app import create_app  # noqa: E402
from mediator.config.console import LiveSettings  # noqa: E402
from mediator.config.settings import build_settings  # noqa: E402
from mediator.ops import logs, metrics  # noqa: E402
from mediator.ops.readiness import CachedCheck  # noqa: E402
from tests import samples  # noqa: E402
from tests.conftest import basic  # noqa: E402
from tests.processes import BENCH_CHANNEL_PASSWORD, BENCH_DHIS2, bench_env, faults, start_fake_dhis2  # noqa: E402

VILLAGES = [str(uuid.UUID(int=i + 1)) for i in range(20)]
HOOKS = ("RECEIVED", "DECIDED", "DELIVERY_RETRIES", "PUSH_SECONDS", "DHIS2_SECONDS", "DHIS2_RETRIES")
AUDITOR = ("auditor", "bench-auditor-pass")


class _Nothing:
    def labels(self, *args: Any) -> _Nothing:
        return self

    def inc(self, *args: Any) -> None:
        pass

    def observe(self, *args: Any) -> None:
        pass


_NUMBERS = iter(range(100000000, 999999999))


def body(n: int) -> bytes:
    """New insurees each time (DHIS2 keeps insurance numbers unique)."""
    patients = [
        samples.patient(str(uuid.uuid4()), str(next(_NUMBERS)), village=VILLAGES[i % len(VILLAGES)], family=None)
        for i in range(n)
    ]
    return json.dumps(samples.bundle(*patients)).encode()


def push(work: Path, dhis2: str, data: bytes, n: int, **settings: str) -> tuple[float, Any]:
    """One push into a fresh journal, delivered inline; returns its CPU seconds and the app's test client."""
    env = bench_env(work / uuid.uuid4().hex, dhis2, inline_limit=str(n), auditor_password=AUDITOR[1], **settings)
    client = create_app(LiveSettings(build_settings(env), env)).test_client()
    headers = {**basic("openhim-insurees", BENCH_CHANNEL_PASSWORD), "Content-Type": "application/json"}
    cpu = time.process_time()
    resp = client.post("/channels/insurees", data=data, headers=headers)
    spent = time.process_time() - cpu
    if resp.status_code not in (200, 202):
        issues = json.loads(json.loads(resp.data)["response"]["body"])["issue"]
        raise SystemExit(f"push refused: {[i['diagnostics'] for i in issues if i['severity'] != 'information'][:3]}")
    return spent, client


def counting_cost(work: Path, n: int) -> tuple[float, float]:
    """CPU microseconds of what the mediator counts per record (received, delivered), kept in memory and kept in the
    multiprocess files the server's workers share."""

    def per_record() -> float:
        cpu = time.process_time()
        for _ in range(n):
            metrics.count_received(("Patient/x",), (), ())
            metrics.DECIDED.labels("Patient", "delivered").inc()
        return (time.process_time() - cpu) / n * 1e6

    in_memory = per_record()
    kept = metrics.values.ValueClass
    metrics.use_directory(work / "metrics")
    try:
        shared = metrics.Counter("bench_shared", "", ["kind", "outcome"])
        metrics.RECEIVED, metrics.DECIDED, old = shared, shared, (metrics.RECEIVED, metrics.DECIDED)
        in_files = per_record()
        metrics.RECEIVED, metrics.DECIDED = old
    finally:
        metrics.values.ValueClass = kept
        os.environ.pop(metrics.MULTIPROCESS_ENV, None)
    return in_memory, in_files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-observability-"))
    fake, dhis2 = start_fake_dhis2(work, VILLAGES, *BENCH_DHIS2)
    kept = {name: getattr(metrics, name) for name in HOOKS}
    try:
        push(work, dhis2, body(20), 20)  # warm up: imports, DHIS2's metadata
        runs: dict[str, list[float]] = {"no metrics (baseline)": [], "metrics": [], "metrics, JSON logs": []}
        for _ in range(args.rounds):
            for name in HOOKS:
                setattr(metrics, name, _Nothing())
            logs.configure("INFO", "text")
            logging.getLogger().handlers[0].stream = open("/dev/null", "w")  # noqa: SIM115
            runs["no metrics (baseline)"].append(push(work, dhis2, body(args.insurees), args.insurees)[0])
            for name, hook in kept.items():
                setattr(metrics, name, hook)
            runs["metrics"].append(push(work, dhis2, body(args.insurees), args.insurees)[0])
            logs.configure("INFO", "json")
            logging.getLogger().handlers[0].stream = open("/dev/null", "w")  # noqa: SIM115
            runs["metrics, JSON logs"].append(push(work, dhis2, body(args.insurees), args.insurees)[0])
        base = statistics.median(runs["no metrics (baseline)"])
        print(f"push of {args.insurees} insurees, delivered inline, median of {args.rounds} rounds:")
        for label, seconds in runs.items():
            median = statistics.median(seconds)
            rate = args.insurees / median
            print(f"  {label:24} {rate:8.0f} records/CPU-s   {base / median:5.2f}x the baseline")

        per_record = counting_cost(work, 100_000)
        print(f"  counting a record received and delivered: {per_record[0]:.1f} µs in one process, "
              f"{per_record[1]:.1f} µs in gunicorn's shared files")  # fmt: skip

        faults(dhis2, fail_next=10**9)  # DHIS2's imports fail: every record stays pending (it still says its version)
        _, client = push(work, dhis2, body(args.insurees), 1)
        client.application.extensions["dhis2_check"] = CachedCheck(0)  # every /ready asks DHIS2
        auth = basic(*AUDITOR)
        for path, headers in (("/metrics", auth), ("/ready", {})):
            took = []
            for _ in range(10):
                wall = time.perf_counter()
                resp = client.get(path, headers=headers)
                took.append((time.perf_counter() - wall) * 1000)
            print(f"  {path:8} with {args.insurees} records pending: {statistics.median(took):6.1f} ms (status "
                  f"{resp.status_code})")  # fmt: skip
    finally:
        fake.terminate()


if __name__ == "__main__":
    main()
