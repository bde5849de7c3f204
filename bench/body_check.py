"""Benchmark: the first pass over a push, the fast way (mediator.openimis.scan, which checks nesting, duplicate keys
and numbers as it reads) against the careful way (the whole-body check, then ijson), and the careful way without its
check, measured in the same run.

    .venv/bin/python bench/body_check.py --insurees 20000
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

from mediator.openimis import stream, wellformed  # noqa: E402
from tests import samples  # noqa: E402


def cpu(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--insurees", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    keys = [str(uuid.uuid4()) for _ in range(args.insurees)]
    bundle = samples.bundle(*(samples.patient(k, f"{i:09d}") for i, k in enumerate(keys)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "push.json"
        path.write_text(json.dumps(bundle))
        size = path.stat().st_size / 1e6
        accepted = ("Patient", "Group")
        check_only = cpu(lambda: wellformed.check(path), args.repeat)
        fast = cpu(lambda: stream.survey(path, accepted), args.repeat)
        careful = cpu(lambda: stream._survey(path, accepted, None, None, fast=False), args.repeat)
        with mock.patch.object(stream, "check", lambda p: wellformed.Checked(False)):
            unchecked = cpu(lambda: stream._survey(path, accepted, None, None, fast=False), args.repeat)
    n = args.insurees
    sys.stdout.write(
        f"{n} insurees, {size:.1f} MB\n"
        f"careful check alone        {check_only:6.2f} CPU-s  {size / check_only:7.1f} MB/CPU-s\n"
        f"careful way, unchecked     {unchecked:6.2f} CPU-s  {n / unchecked:7.0f} records/CPU-s\n"
        f"careful way                {careful:6.2f} CPU-s  {n / careful:7.0f} records/CPU-s\n"
        f"fast way (checked)         {fast:6.2f} CPU-s  {n / fast:7.0f} records/CPU-s  "
        f"(x{careful / fast:.2f} faster than the careful way)\n"
    )


if __name__ == "__main__":
    main()
