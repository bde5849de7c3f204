"""Slow and idle clients do not starve `openimis-dhis2-mediator serve`: more clients than the mediator has threads
drip header lines, connect and send nothing, or drip their bodies, and a push is still answered; each kind of slow
client is cut off."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, basic
from tests.e2e.openhim_core import free_port, wait_for_port
from tests.e2e.test_crash_recovery import kill, start_mediator
from tests.processes import mediator_env, start_fake_dhis2

pytestmark = pytest.mark.e2e
CHANNEL_PASSWORD = "slow-clients-pass"
# One worker, so that every slow client lands on the same threads.
WORKERS, THREADS = 1, 2
MORE_THAN_THREADS = WORKERS * THREADS + 2
SLOW_FOR = 90.0  # how long a slow client keeps it up; every wait of the tests below is shorter
PUSH_TIMEOUT = 60.0
NUMBERS = itertools.count(600000000)  # insurance numbers are unique in DHIS2


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Iterator[int]:
    """A mediator with one worker of 2 threads, cutting off headers and bodies after 2 s, delivering to a fake DHIS2."""
    work = tmp_path_factory.mktemp("slow-clients")
    fake, dhis2 = start_fake_dhis2(work, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, work / "fake.log")
    listen = free_port()
    env = mediator_env(
        listen,
        work / "state",
        dhis2,
        CHANNEL_PASSWORD,
        workers=str(WORKERS),
        threads=str(THREADS),
        header_timeout_seconds="2",
        body_timeout_seconds="2",
        body_min_kib_per_second="1",
        keepalive_seconds="2",
        dhis2_max_attempts="1",
        pseudonym_key="slow-clients-key",
    )
    mediator = start_mediator(env, work / "mediator.log")
    try:
        wait_for_port(listen, 30, mediator)
        yield listen
    finally:
        if mediator.poll() is None:
            kill(mediator)
        fake.terminate()
        fake.wait(10)


def push(port: int) -> requests.Response:
    """A single Patient, delivered to DHIS2 before it is answered."""
    patient = samples.patient(str(uuid.uuid4()), str(next(NUMBERS)), family=None)
    return requests.post(
        f"http://127.0.0.1:{port}/channels/insurees",
        data=json.dumps(samples.bundle(patient)),
        auth=("openhim-insurees", CHANNEL_PASSWORD),
        headers={"Content-Type": "application/json", "Connection": "close"},
        timeout=PUSH_TIMEOUT,
    )


def status_line(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


@dataclass
class SlowClient:
    """One connection after another, each sending `start`, then `drip` every half second for `SLOW_FOR` seconds
    in all; `end` is sent when that time is up. Keeps the first bytes of each answer, unless it `reads` nothing."""

    port: int
    start: bytes
    drip: bytes
    end: bytes = b""
    reads: bool = True
    answers: list[bytes] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        until = time.monotonic() + SLOW_FOR
        while not self.stop.is_set() and time.monotonic() < until:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(self.start)
                    self.connected.set()
                    self.answers.append(self._drip(s, until))
            except OSError:
                self.stop.wait(0.2)
        self.finished.set()

    def _drip(self, s: socket.socket, until: float) -> bytes:
        if not self.reads:
            self.stop.wait(until - time.monotonic())
            return b""
        s.settimeout(0.5)
        while not self.stop.is_set():
            try:
                return s.recv(4096)  # an answer, or b"" when the mediator closed the connection
            except TimeoutError:
                if time.monotonic() >= until:
                    s.sendall(self.end)
                    s.settimeout(10)
                    return s.recv(4096)
                s.sendall(self.drip)
        return b""


@pytest.fixture
def slow_clients() -> Iterator[list[SlowClient]]:
    clients: list[SlowClient] = []
    yield clients
    for c in clients:
        c.stop.set()


def start(clients: list[SlowClient], *new: SlowClient) -> list[SlowClient]:
    for c in new:
        clients.append(c)
        threading.Thread(target=c.run, daemon=True).start()
    for c in new:
        assert c.connected.wait(30), "could not connect to the mediator"
    time.sleep(0.5)  # the last lines reach the mediator before the push does
    return list(new)


def header_dripper(port: int) -> SlowClient:
    start = b"POST /channels/insurees HTTP/1.1\r\nHost: mediator\r\n"
    return SlowClient(port, start, drip=b"X-Drip: one line\r\n", end=b"\r\n")


def answer_holder(port: int) -> SlowClient:
    """Sends a whole request, then neither reads the answer nor closes the connection."""
    start = b"GET /channels/insurees HTTP/1.1\r\nHost: mediator\r\nConnection: close\r\n\r\n"
    return SlowClient(port, start, drip=b"", reads=False)


def idle_client(port: int) -> SlowClient:
    return SlowClient(port, start=b"", drip=b"")


def body_dripper(port: int) -> SlowClient:
    start = (
        b"POST /channels/insurees HTTP/1.1\r\nHost: mediator\r\nContent-Type: application/json\r\n"
        + f"Authorization: {basic('openhim-insurees', CHANNEL_PASSWORD)['Authorization']}\r\n".encode()
        + b"Content-Length: 100000\r\n\r\n["
    )
    return SlowClient(port, start, drip=b" " * 10)


def test_a_push_is_answered_while_more_clients_drip_headers_than_the_mediator_has_threads(port, slow_clients):
    holders = [answer_holder(port) for _ in range(50)]  # each answer is closed without waiting for the client
    slow = start(slow_clients, *(header_dripper(port) for _ in range(10 * MORE_THAN_THREADS)), *holders)

    resp = push(port)

    assert resp.status_code == 200, resp.text[:500]
    assert json.loads(resp.json()["response"]["body"])["resourceType"] == "OperationOutcome"
    assert not any(c.finished.is_set() for c in slow)  # answered while every one of them was still at it


def test_a_push_is_answered_while_many_connections_send_nothing(port, slow_clients):
    idle = start(slow_clients, *(idle_client(port) for _ in range(50)))

    resp = push(port)

    assert resp.status_code == 200, resp.text[:500]
    assert not any(c.finished.is_set() for c in idle)


def test_a_push_is_answered_while_more_clients_drip_bodies_than_the_mediator_has_threads(port, slow_clients):
    drippers = start(slow_clients, *(body_dripper(port) for _ in range(MORE_THAN_THREADS)))

    resp = push(port)

    assert resp.status_code == 200, resp.text[:500]
    assert not any(d.finished.is_set() for d in drippers)


def test_a_client_that_drips_header_lines_is_answered_408(port, slow_clients):
    (dripper,) = start(slow_clients, header_dripper(port))

    deadline = time.monotonic() + SLOW_FOR
    while not dripper.answers and time.monotonic() < deadline:
        time.sleep(0.2)

    assert not dripper.finished.is_set()
    assert status_line(dripper.answers[0]) == b"HTTP/1.1 408 Request Timeout"


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(port, slow_clients):
    (idle,) = start(slow_clients, idle_client(port))

    deadline = time.monotonic() + SLOW_FOR
    while not idle.answers and time.monotonic() < deadline:
        time.sleep(0.2)

    assert not idle.finished.is_set()
    assert idle.answers[0] == b""


def test_a_body_that_comes_slower_than_the_minimum_rate_is_refused(port, slow_clients):
    (dripper,) = start(slow_clients, body_dripper(port))

    deadline = time.monotonic() + SLOW_FOR
    while not dripper.answers and time.monotonic() < deadline:
        time.sleep(0.2)

    assert not dripper.finished.is_set()
    status = status_line(dripper.answers[0])
    assert status.split(b" ")[1] in {b"400", b"408"}, status  # the channel names what went wrong in the body


def test_a_kept_alive_connection_is_closed_once_idle(port):
    with socket.create_connection(("127.0.0.1", port), timeout=SLOW_FOR) as s:
        for _ in range(2):
            s.sendall(b"GET /channels/insurees HTTP/1.1\r\nHost: mediator\r\n\r\n")
            head, _body = read_response(s)
            assert b"connection: keep-alive" in head.lower()

        rest = s.recv(4096)  # the mediator closes it after its keepalive time, long before this socket's timeout

    assert rest == b""


def read_response(s: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += s.recv(4096)
    return head, body
