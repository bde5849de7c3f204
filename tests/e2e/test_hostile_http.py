"""Requests broken below HTTP's body, sent over a socket to a served mediator (gunicorn): a body shorter than its
Content-Length, bad chunked coding, and the probes of a caller without credentials. None reaches a 5xx, none is
kept, and the mediator goes on answering."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER
from tests.e2e.openhim_core import free_port, wait_for_port
from tests.processes import mediator_env, start_fake_dhis2

pytestmark = pytest.mark.e2e
PASSWORD = "hostile-http-pass"
AUTH = "Basic " + base64.b64encode(f"openhim-insurees:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def mediator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("hostile-http")
    fake, dhis2 = start_fake_dhis2(tmp, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, tmp / "fake.log")
    port = free_port()
    env = mediator_env(port, tmp / "state", dhis2, PASSWORD)
    log = (tmp / "mediator.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "mediator.app.cli", "serve"], env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, 30, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(20)
        fake.terminate()
        fake.wait(10)


def exchange(port: int, head: str, body: bytes = b"", half_close: bool = True) -> tuple[int, bytes]:
    """Send raw bytes; (status, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def request_head(length: str | None = None, chunked: bool = False, auth: str | None = AUTH) -> str:
    lines = [
        "POST /channels/insurees HTTP/1.1",
        "Host: mediator",
        "Content-Type: application/json",
        "Connection: close",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return "\r\n".join(lines) + "\r\n\r\n"


BUNDLE = json.dumps(samples.bundle(samples.patient())).encode()


def test_a_body_shorter_than_its_content_length_is_refused(mediator):
    status, body = exchange(mediator, request_head(str(len(BUNDLE))), BUNDLE[:40])
    assert status == 400, body
    assert b"Content-Length" in body or b"could not be read whole" in body


@pytest.mark.parametrize("chunks", [b"ZZ\r\n{}\r\n0\r\n\r\n", b"-5\r\nabc\r\n0\r\n\r\n", b"fffffffffffffffffff\r\n"])
def test_an_invalid_chunk_size_is_a_400(mediator, chunks):
    status, body = exchange(mediator, request_head(chunked=True), chunks)
    assert status == 400, body


def test_a_chunked_body_is_taken(mediator):
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (BUNDLE[:100], BUNDLE[100:])) + b"0\r\n\r\n"
    status, body = exchange(mediator, request_head(chunked=True), chunked)
    assert status == 200, body


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "PUT", "DELETE", "POST"])
@pytest.mark.parametrize("path", ["/channels/insurees", "/channels/no-such-channel", "/"])
def test_without_credentials_every_path_and_method_answers_alike(mediator, method, path):
    head = f"{method} {path} HTTP/1.1\r\nHost: mediator\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    status, body = exchange(mediator, head)
    assert status == 401, body
    assert b"no-such-channel" not in body and b"insurees" not in body


def test_with_credentials_an_unknown_path_is_a_404(mediator):
    head = request_head("2").replace("/channels/insurees", "/channels/no-such-channel")
    assert exchange(mediator, head, b"{}")[0] == 404
