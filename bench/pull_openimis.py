"""Benchmark: a pull from a real openIMIS (its FHIR API on the demo database). In the same run, as the baseline, the
same resources are fetched the plain way (one large page per resource type with requests), so the ratio shows what
the pull adds on top of what openIMIS itself costs: reading in feeds, narrowing the page that fails, spooling and
keeping every record in the journal.

Reports wall time and the mediator's CPU seconds for both, records per CPU-second, and the process's peak memory.
A second pull right after the first shows the cost of a pull that finds nothing new.

    .venv/bin/python bench/pull_openimis.py                       # starts ../shared/openimis-local itself
    .venv/bin/python bench/pull_openimis.py --openimis http://127.0.0.1:38000/api/api_fhir_r4/
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.config.settings import build_settings  # noqa: E402
from mediator.intake.pull import pull  # noqa: E402
from mediator.journal.store import Journal  # noqa: E402
from tests.openimis_local import PASSWORD, USER, OpenImis, openimis_server  # noqa: E402

FEEDS = [("Location", {}), ("Location", {"physicalType": "si"}), ("Organization", {"type": "prov"})]
FEEDS += [(t, {}) for t in ("InsurancePlan", "Medication", "ActivityDefinition", "Patient", "Group", "Coverage")]
FEEDS += [(t, {}) for t in ("Contract", "ClaimResponse")]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(url: str) -> int:
    """The plain way: log in, one large page per resource type (Claims one by one: a page of them fails)."""
    session = requests.Session()
    token = session.post(url + "login/", json={"username": USER, "password": PASSWORD}, timeout=60).json()["token"]
    session.headers["Authorization"] = f"Bearer {token}"
    count = 0
    for kind, params in FEEDS:
        answer = session.get(f"{url}{kind}/", params={"_count": "100000", **params}, timeout=300)
        count += len(answer.json().get("entry") or [])
    for number in range(1, 10000):
        answer = session.get(f"{url}Claim/", params={"_count": "1", "page-offset": str(number)}, timeout=60)
        if answer.status_code == 404:
            break
        count += len(answer.json().get("entry") or []) if answer.ok else 0
    return count


def measure(label: str, run) -> tuple[float, float, int]:
    wall, spent = time.perf_counter(), cpu()
    count = run()
    wall, spent = time.perf_counter() - wall, cpu() - spent
    rate = count / spent if spent else float("inf")
    print(f"{label:<28} {count:>6} records  {wall:6.2f} s wall  {spent:6.2f} s CPU  {rate:8.0f} records/CPU-s")
    return wall, spent, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--openimis", help="a running openIMIS FHIR base; default: start ../shared/openimis-local")
    parser.add_argument("--journal", help="journal URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.openimis or stack.enter_context(openimis_server()).url
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {
            "MEDIATOR_STATE_DIR": str(work / "state"),
            "MEDIATOR_JOURNAL_URL": args.journal or f"sqlite:///{work / 'journal.sqlite'}",
            "MEDIATOR_OPENIMIS_URL": url,
            "MEDIATOR_OPENIMIS_USERNAME": USER,
            "MEDIATOR_OPENIMIS_PASSWORD": PASSWORD,
            "MEDIATOR_ALLOW_DEFAULT_PASSWORDS": "true",
        }
        settings = build_settings(env)
        journal = Journal.open(settings.journal_url)
        channel = next(c for c in settings.channels if c.pulls)
        OpenImis(url).session()  # openIMIS warms up on its first login
        base_wall, base_cpu, _ = measure("baseline (plain fetch)", lambda: baseline(url))
        first_wall, first_cpu, _ = measure(
            "first pull (read + keep)", lambda: pull(journal, settings, channel).resources
        )
        measure("second pull (nothing new)", lambda: pull(journal, settings, channel).resources)
        print(f"pull / baseline: {first_wall / base_wall:.2f}x wall, {first_cpu / base_cpu:.2f}x CPU")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
