"""Benchmark: `verify` on a journal of N records (their outcomes, a DHIS2 call and a push per thousand, each push
decided), every entry chained as the mediator chains it. Reports the time, records per second and the peak memory
the check took (tracemalloc), which stays that of one batch whatever N is.

    .venv/bin/python bench/verify_chain.py --records 100000 [--journal postgresql://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediator.journal import chain  # noqa: E402
from mediator.journal.models import Exchange, Outcome, Transaction  # noqa: E402
from mediator.journal.store import Journal  # noqa: E402
from mediator.journal.verify import verify  # noqa: E402

PER_PUSH = 1000


def build(journal: Journal, records: int) -> None:
    now = datetime.now(UTC)
    for start in range(0, records, PER_PUSH):
        with journal.sessions.begin() as session:
            tx = Transaction(channel="insurees", received_at=now, answered_at=now, status="Successful", http_status=200,
                             body_sha256="0" * 64, received={"Patient": PER_PUSH}, stats={}, origin="channel")  # fmt: skip
            session.add(tx)
            session.flush()
            rows = [
                {"transaction_id": tx.id, "record": f"Patient/{start + i:036d}", "status": "delivered",
                 "uids": {"trackedEntity": f"T{start + i:010d}", "enrollment": f"E{start + i:010d}"}, "reasons": []}
                for i in range(min(PER_PUSH, records - start))
            ]  # fmt: skip
            outcomes = list(session.scalars(insert(Outcome).returning(Outcome.id), rows))
            call = Exchange(transaction_id=tx.id, method="POST", url="/api/tracker", started_at=now, finished_at=now,
                            status=200, request_body="{}" * 500, response_body="{}" * 500)  # fmt: skip
            session.add(call)
            session.flush()
            facts = [
                ("push", chain.push_fact(session, tx.id)),
                ("decided", chain.decided_fact(tx.id, "Successful", 200, now)),
            ]
            chain.append(session, facts, {"outcome": outcomes, "call": [call.id]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--journal", default="", help="SQLAlchemy URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    url = args.journal or f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-verify-')) / 'journal.sqlite'}"
    journal = Journal.open(url)
    start = time.perf_counter()
    build(journal, args.records)
    built = time.perf_counter() - start
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    found = verify(journal)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert found.ok, found.problem
    print(f"journal: {args.records:,} records, {found.entries:,} chain entries (written in {built:.1f} s)")
    print(
        f"verify:  {wall:.1f} s wall, {cpu:.1f} CPU-s, {args.records / wall:,.0f} records/s, peak {peak:.1f} MiB traced"
    )


if __name__ == "__main__":
    main()
