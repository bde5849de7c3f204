"""Benchmark: the latency of a normal push while slow clients hold connections to the mediator.

Starts a fake DHIS2 and `openimis-dhis2-mediator serve` as real processes, times single-Patient pushes (each
delivered to DHIS2 before it is answered) with no other connection open, then again while `--slow` connections are
open: half of them drip header lines (one every `--drip` seconds, reconnecting when the mediator cuts them off), half
connect and send nothing. A push that is not answered within `--timeout` seconds counts as timed out.

    .venv/bin/python bench/slow_clients.py --slow 50 --pushes 20

Settings for the mediator come from the environment (MEDIATOR_WORKERS, MEDIATOR_THREADS...), as for `serve`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import samples  # noqa: E402
from tests.e2e.openhim_core import free_port, wait_for_port  # noqa: E402
from tests.processes import mediator_env, start_fake_dhis2  # noqa: E402

CHANNEL_PASSWORD = "bench-slow-channel"  # noqa: S105 (a throw-away test process)
DHIS2_USER, DHIS2_PASSWORD = "bench", "Bench-pass-1"
NUMBERS = itertools.count(700000000)  # insurance numbers are unique in DHIS2


def drip(port: int, every: float, stop: threading.Event, cut: list[int]) -> None:
    """A slowloris client: a request line, then one header line every `every` seconds, never the blank line."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"POST /channels/insurees HTTP/1.1\r\nHost: mediator\r\n")
                s.settimeout(every)
                while not stop.is_set():
                    try:
                        s.recv(1024)  # an answer (408) or the mediator closing it
                        break
                    except TimeoutError:
                        s.sendall(b"X-Slow: drip\r\n")
                cut.append(1)
        except OSError:
            stop.wait(0.1)


def idle(port: int, stop: threading.Event, cut: list[int]) -> None:
    """A client that connects and sends nothing, connecting again when the mediator closes it."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.settimeout(0.5)
                while not stop.is_set():
                    try:
                        s.recv(1024)
                        break
                    except TimeoutError:
                        continue
                cut.append(1)
        except OSError:
            stop.wait(0.1)


def push_latencies(port: int, pushes: int, timeout: float, pause: float = 0.0) -> tuple[list[float], int]:
    url = f"http://127.0.0.1:{port}/channels/insurees"
    times, timed_out = [], 0
    for _ in range(pushes):
        time.sleep(pause)
        body = json.dumps(samples.bundle(samples.patient(str(uuid.uuid4()), str(next(NUMBERS)), family=None)))
        start = time.perf_counter()
        try:
            resp = requests.post(
                url,
                data=body,
                auth=("openhim-insurees", CHANNEL_PASSWORD),
                headers={"Content-Type": "application/json", "Connection": "close"},
                timeout=timeout,
            )
        except requests.RequestException:
            timed_out += 1
            continue
        if resp.status_code != 200:
            raise SystemExit(f"push answered {resp.status_code}: {resp.text[:1500]}")
        times.append(time.perf_counter() - start)
    return times, timed_out


def report(label: str, times: list[float], timed_out: int) -> None:
    if times:
        ms = sorted(t * 1000 for t in times)
        p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
        print(
            f"{label:>22}: {len(ms)} answered, {timed_out} timed out; "
            f"median {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms"
        )
    else:
        print(f"{label:>22}: none answered, {timed_out} timed out")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=50, help="slow connections (half drip headers, half idle)")
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--drip", type=float, default=5.0, help="seconds between header lines of a dripping client")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a push may take before it counts lost")
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds between pushes, so that slow clients are cut off meanwhile"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    fake, dhis2_url = start_fake_dhis2(work, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD)
    port = free_port()
    env = mediator_env(
        port,
        work / "state",
        dhis2_url,
        CHANNEL_PASSWORD,
        DHIS2_USER,
        DHIS2_PASSWORD,
        pseudonym_key="bench-key",
        log_level="WARNING",
    )
    log = (work / "mediator.log").open("ab")
    mediator = subprocess.Popen(
        [sys.executable, "-m", "mediator.app.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    stop = threading.Event()
    try:
        wait_for_port(port, 60, mediator)
        push_latencies(port, 3, args.timeout)  # warm up: DHIS2 version, metadata caches
        report("0 slow connections", *push_latencies(port, args.pushes, args.timeout, args.pause))

        cut: list[int] = []
        drippers = args.slow // 2
        for i in range(args.slow):
            target = (drip, (port, args.drip, stop, cut)) if i < drippers else (idle, (port, stop, cut))
            threading.Thread(target=target[0], args=target[1], daemon=True).start()
        time.sleep(2)  # every slow connection is open before the pushes start
        started = time.monotonic()
        times, timed_out = push_latencies(port, args.pushes, args.timeout, args.pause)
        report(f"{args.slow} slow connections", times, timed_out)
        print(f"{'':>22}  slow connections cut off by the mediator: {len(cut)} in {time.monotonic() - started:.0f} s")
    finally:
        stop.set()
        mediator.terminate()
        mediator.wait(30)
        fake.terminate()
        fake.wait(10)
        print(f"mediator log: {work / 'mediator.log'}")


if __name__ == "__main__":
    main()
