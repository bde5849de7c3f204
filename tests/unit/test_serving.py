"""The deadlines a request's headers and body are held to, and what gunicorn is run with."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mediator.app.serving import (
    BodyTooSlow,
    Deadlines,
    DeadlineSocket,
    GuardedThreadWorker,
    Head,
    HeadersTooSlow,
    gunicorn_options,
)
from mediator.config.settings import SettingsError, build_settings

DEADLINES = Deadlines(header_seconds=10, body_seconds=30, body_min_rate=1024)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_a_head_is_complete_at_the_blank_line_that_ends_its_headers():
    head = Head(deadline=0)
    states = []
    for piece in (b"POST /channels/insurees HTTP/1.1\r\nHost: x\r\n", b"Content-Length: 2\r", b"\n", b"\r\n{}"):
        head.feed(piece)
        states.append(head.complete())

    assert states == [False, False, False, True]


def test_a_head_with_a_bare_line_feed_goes_to_the_parser_at_once_to_be_refused():
    head = Head(deadline=0)
    head.feed(b"GET / HTTP/1.1\nHost: x\n")

    assert head.complete()


def test_headers_read_after_their_deadline_are_too_slow(pair):
    server, _client = pair
    clock = Clock()
    guard = DeadlineSocket(server, DEADLINES, clock)
    guard.start_request(header_deadline=clock.now + 10)
    clock.now += 11

    with pytest.raises(HeadersTooSlow):
        guard.recv(1024)


def test_a_body_that_pauses_longer_than_the_body_timeout_is_too_slow(pair):
    server, _client = pair
    guard = DeadlineSocket(server, Deadlines(10, body_seconds=0.2, body_min_rate=1024))
    guard.start_body()

    with pytest.raises(BodyTooSlow):
        guard.recv(1024)


def test_a_body_behind_its_minimum_rate_is_too_slow_though_bytes_keep_coming(pair):
    server, client = pair
    clock = Clock()
    guard = DeadlineSocket(server, DEADLINES, clock)
    guard.start_body()
    for _ in range(10):  # 10 bytes a second: far below 1 KiB/s
        clock.now += 1
        client.sendall(b"x" * 10)
        guard.recv(1024)
    clock.now += 21  # the 30 s of slack are used up; 100 bytes needed only ~0.1 s more

    with pytest.raises(BodyTooSlow):
        guard.recv(1024)


def test_a_body_ahead_of_its_minimum_rate_is_read(pair):
    server, client = pair
    clock = Clock()
    guard = DeadlineSocket(server, DEADLINES, clock)
    guard.start_body()
    client.sendall(b"y" * 64 * 1024)
    received = b""
    while len(received) < 64 * 1024:
        received += guard.recv(64 * 1024)
    clock.now += 60  # 64 KiB bought 64 s beyond the 30 s of slack
    client.sendall(b"z")

    assert guard.recv(1024) == b"z"


def test_once_the_app_is_done_a_body_too_slow_is_a_socket_timeout_so_gunicorn_closes_the_connection(pair):
    server, _client = pair
    clock = Clock()
    guard = DeadlineSocket(server, DEADLINES, clock)
    guard.start_body()
    guard.end_app()
    clock.now += 31

    with pytest.raises(TimeoutError) as raised:
        guard.recv(1024)
    assert not isinstance(raised.value, BodyTooSlow)


def test_a_bound_its_caller_sets_ends_a_read_with_a_socket_timeout(pair):
    server, _client = pair
    guard = DeadlineSocket(server, DEADLINES)
    guard.start_body()
    guard.settimeout(0.05)  # as gunicorn does when it drains what the app left of a body

    with pytest.raises(TimeoutError):
        guard.recv(1024)
    assert guard.gettimeout() == 0.05


def test_gunicorn_runs_the_guarded_threaded_worker_with_the_serving_settings():
    settings = build_settings(
        {
            "MEDIATOR_THREADS": "4",
            "MEDIATOR_HEADER_TIMEOUT_SECONDS": "5",
            "MEDIATOR_BODY_TIMEOUT_SECONDS": "20",
            "MEDIATOR_BODY_MIN_KIB_PER_SECOND": "8",
            "MEDIATOR_KEEPALIVE_SECONDS": "3",
            "MEDIATOR_CONNECTIONS_PER_WORKER": "500",
        }
    )

    options = gunicorn_options(settings)

    assert issubclass(options["worker_class"], GuardedThreadWorker)
    assert options["worker_class"].deadlines == Deadlines(5, 20, 8 * 1024)
    assert (options["threads"], options["keepalive"], options["worker_connections"]) == (4, 3, 500)


def test_fewer_connections_per_worker_than_threads_are_refused():
    with pytest.raises(SettingsError, match="connections_per_worker"):
        build_settings({"MEDIATOR_THREADS": "8", "MEDIATOR_CONNECTIONS_PER_WORKER": "8"})


def test_a_complete_head_stays_complete_when_asked_again():
    # A pipelined request already buffered is asked about twice before anything more comes.
    head = Head(deadline=0.0)
    head.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.complete() and head.complete()
