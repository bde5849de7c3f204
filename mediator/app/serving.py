"""How the mediator serves HTTP: gunicorn's threaded worker, changed so that a request takes a thread only once all
its headers have arrived, and so that headers and bodies that come too slowly are cut off.

A client that connects and sends nothing, or drips header lines, then costs a connection slot and a few kilobytes
in the worker's event loop, never a thread that a push needs; a body that falls below its minimum rate frees its
thread with a 408.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NoReturn

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.exceptions import RequestTimeout

from mediator.config.settings import Settings
from mediator.ops import logs, metrics

HEAD_LIMIT = 32 * 1024  # the largest request line and headers taken, the only thing held for a slow client
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 50
LIMIT_REQUEST_FIELD_SIZE = 8190
# The event loop of a threaded worker tells the arbiter it is alive every second however long a push takes in its
# thread, so this only replaces a worker whose loop is stuck; it never cuts a push being delivered.
WORKER_TIMEOUT = 120
CLOSING_SECONDS = 2.0  # after a refusal, how long what the client still sends is read and dropped before closing
READ_SIZE = 16 * 1024


@dataclass(frozen=True)
class Deadlines:
    header_seconds: float  # from a connection's opening, or a request's first byte, to the end of its headers
    body_seconds: float  # longest pause in a body, and the slack before the minimum rate applies
    body_min_rate: float  # bytes per second a body must average once its slack is used up

    @classmethod
    def of(cls, s: Settings) -> Deadlines:
        return cls(s.header_timeout_seconds, s.body_timeout_seconds, s.body_min_kib_per_second * 1024)


class HeadersTooSlow(Exception):
    """The request's headers did not all arrive within the header timeout."""


class BodyTooSlow(RequestTimeout):
    """The request body paused too long or fell below its minimum rate; the app answers it as any HTTP error."""

    description = "the request body came too slowly and was cut off; send it again at a steady rate"


class Head:
    """The request line and headers of one request, gathered by the event loop until they are complete."""

    def __init__(self, deadline: float) -> None:
        self.data = bytearray()
        self.deadline = deadline
        self.closing = False  # refused: what the client still sends is read and dropped until it closes
        self.watched = False  # registered with the worker's poller
        self._scanned = 0
        self._complete = False

    def feed(self, data: bytes) -> None:
        self.data += data

    def complete(self) -> bool:
        """Whether a thread may parse it: the blank line that ends the headers has come, or a bare LF, which the
        parser refuses at once (400) rather than wait for more."""
        if self._complete:  # asked again before anything more was fed: still complete
            return True
        start = max(0, self._scanned - 3)
        self._complete = self.data.find(b"\r\n\r\n", start) >= 0
        i = self.data.find(b"\n", start)
        while i >= 0 and not self._complete:
            self._complete = i == 0 or self.data[i - 1] != 0x0D
            i = self.data.find(b"\n", i + 1)
        self._scanned = len(self.data)
        return self._complete


@dataclass
class DeadlineSocket:
    """Stands for the client socket in gunicorn's request reader: a recv waits only as long as the request's
    deadlines leave. A body must not pause for more than `body_seconds`, and once that slack is used up it must
    have come at `body_min_rate` on average since its first byte was due."""

    sock: socket.socket
    deadlines: Deadlines
    clock: Callable[[], float] = time.monotonic
    phase: str = "headers"  # headers | body (the app reads it) | drain (gunicorn discards what the app left)
    header_deadline: float = 0.0
    body_start: float = 0.0
    received: int = 0
    outer: float | None = field(default=None)  # a bound gunicorn sets itself when it drains a body

    def start_request(self, header_deadline: float) -> None:
        self.phase, self.header_deadline = "headers", header_deadline

    def start_body(self) -> None:
        self.phase, self.body_start, self.received = "body", self.clock(), 0

    def end_app(self) -> None:
        self.phase = "drain"

    def remaining(self) -> float:
        """Seconds the next recv may wait."""
        now = self.clock()
        if self.phase == "headers":
            return self.header_deadline - now
        d = self.deadlines
        due = self.body_start + d.body_seconds + self.received / d.body_min_rate
        return min(d.body_seconds, due - now)

    def recv(self, size: int) -> bytes:
        wait = self.remaining()
        if wait <= 0:
            self._expired()
        bounded_by_caller = self.outer is not None and self.outer < wait
        self.sock.settimeout(self.outer if bounded_by_caller else wait)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            if bounded_by_caller:
                raise
            self._expired()
        finally:
            self.sock.settimeout(None)
        if self.phase != "headers":
            self.received += len(data)
        return data

    def _expired(self) -> NoReturn:
        if self.phase == "headers":
            raise HeadersTooSlow("request headers not complete in time")
        if self.phase == "body":
            raise BodyTooSlow()
        # gunicorn's drain takes a timeout as "close the connection", the answer having been sent.
        raise TimeoutError("request body too slow")

    # gunicorn's drain bounds its reads through these; the bound is kept and applied with the deadlines.
    def settimeout(self, value: float | None) -> None:
        self.outer = value

    def gettimeout(self) -> float | None:
        return self.outer


class GuardedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with the request head gathered by its event loop (see the module's docstring)."""

    deadlines: Deadlines = Deadlines(10.0, 30.0, 16 * 1024)  # set per deployment by `worker_class`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads: dict[Any, Head] = {}  # connections whose head is being gathered, touched by the event loop only

    def _stock(self, conn: Any) -> bool:
        # TLS and HTTP/2 need the socket in a thread from the first byte; the mediator turns neither on.
        return bool(self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, conn.client))

    # The event loop's side.

    def enqueue_req(self, conn: Any) -> None:
        """A new connection, a kept-alive one that became readable, or one with the next request buffered."""
        if self._stock(conn):
            super().enqueue_req(conn)
            return
        head = Head(time.monotonic() + self.deadlines.header_seconds)
        if conn.parser is not None:
            head.feed(conn.parser.unreader.take_buffered())
        self.heads[conn] = head
        conn.sock.setblocking(False)
        self._read_head(conn)

    def _on_readable(self, conn: Any, _fileobj: Any) -> None:
        self._read_head(conn)

    def _read_head(self, conn: Any) -> None:
        head = self.heads[conn]
        if head.closing or not head.complete():
            try:
                data = conn.sock.recv(READ_SIZE)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop(conn)  # the client went away
                return
            if data and head.closing:
                return
            if data:
                head.feed(data)
        if head.complete():
            self._unwatch(conn, head)
            del self.heads[conn]
            conn.head, conn.head_deadline, conn.data_ready = bytes(head.data), head.deadline, True
            ThreadWorker.enqueue_req(self, conn)
        elif len(head.data) > HEAD_LIMIT:
            self._refuse(conn, head, 431, "Request Header Fields Too Large", "request headers too large")
        elif not head.watched:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            head.watched = True

    def murder_pending(self) -> None:
        """Called by the event loop about every second: heads past their deadline are refused or closed."""
        super().murder_pending()
        now = time.monotonic()
        for conn, head in list(self.heads.items()):
            if not self.alive and not head.data and not head.closing:
                self._drop(conn)  # a stopping worker does not wait for requests not begun
            elif head.deadline > now:
                continue
            elif head.closing or not head.data:
                self._drop(conn)  # an idle connection is closed without an answer
            else:
                self._refuse(conn, head, 408, "Request Timeout", "request headers not complete in time")

    def finish_request(self, conn: Any, fs: Any) -> None:
        """A thread is done with a connection. One that is to close lingers in the event loop: gunicorn's own
        graceful close would wait there for the client to close its side, up to 2 s, holding up every other
        connection of the worker meanwhile."""
        if self._stock(conn) or fs.cancelled() or fs.exception() is not None or fs.result():
            super().finish_request(conn, fs)
            return
        head = Head(0.0)
        self.heads[conn] = head
        self._close_after(conn, head)

    def _refuse(self, conn: Any, head: Head, status: int, reason: str, message: str) -> None:
        self.log.info("request from %s: %s (answered %s)", conn.client[0] if conn.client else "?", message, status)
        try:
            util.write_error(conn.sock, status, reason, message)
        except OSError:
            self._drop(conn)
            return
        self._close_after(conn, head)

    def _close_after(self, conn: Any, head: Head) -> None:
        """Half-close after an answer; what the client still sends is read and dropped for a moment, so that the
        answer is not lost to a reset (RFC 9112 section 9.6)."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn)
            return
        head.closing, head.deadline, head.data = True, time.monotonic() + CLOSING_SECONDS, bytearray()
        if not head.watched:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            head.watched = True

    def _unwatch(self, conn: Any, head: Head) -> None:
        if head.watched:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            head.watched = False

    def _drop(self, conn: Any) -> None:
        head = self.heads.pop(conn)
        self._unwatch(conn, head)
        self.nr_conns -= 1
        conn.close()

    # A thread's side.

    def handle(self, conn: Any) -> Any:
        if self._stock(conn):
            return super().handle(conn)
        conn.sock.setblocking(True)
        conn.init()  # plain HTTP/1: only makes the parser, no I/O
        guard = conn.parser.unreader.sock
        if not isinstance(guard, DeadlineSocket):
            guard = DeadlineSocket(conn.sock, self.deadlines)
            conn.parser.unreader.sock = guard
        guard.start_request(conn.head_deadline)
        conn.parser.unreader.unread(conn.head)
        conn.head = b""
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        guard = conn.parser.unreader.sock
        if not isinstance(guard, DeadlineSocket):
            return super().handle_request(req, conn)
        guard.start_body()
        try:
            return super().handle_request(req, conn)
        finally:
            guard.end_app()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, HeadersTooSlow | BodyTooSlow):
            message = exc.description if isinstance(exc, BodyTooSlow) else str(exc)
            self.log.info("request from %s: %s (answered 408)", addr[0] if addr else "?", message)
            try:
                util.write_error(client, 408, "Request Timeout", message or "")
            except OSError:
                self.log.debug("408 not sent: the client is gone")
            return
        super().handle_error(req, client, addr, exc)


def worker_class(deadlines: Deadlines) -> type[GuardedThreadWorker]:
    """The worker class with this deployment's deadlines (the arbiter forks its workers with it)."""

    class MediatorWorker(GuardedThreadWorker):
        pass

    MediatorWorker.deadlines = deadlines
    return MediatorWorker


def gunicorn_options(s: Settings) -> dict[str, Any]:
    return {
        "bind": f"{s.listen_host}:{s.listen_port}",
        "workers": s.workers,
        "worker_class": worker_class(Deadlines.of(s)),
        "threads": s.threads,
        "worker_connections": s.connections_per_worker,
        "keepalive": s.keepalive_seconds,
        "timeout": WORKER_TIMEOUT,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "control_socket_disable": True,
        "loglevel": s.log_level.lower(),
        "logconfig_dict": logs.gunicorn_config(s.log_level, s.log_format),
    }


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any], load: Callable[[], Any]) -> None:
        self._options, self._load = options, load
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()


def serve(
    settings: Settings,
    load_app: Callable[[], Any],
    in_each_worker: Callable[[], None],
    when_ready: Callable[[], None] = lambda: None,
) -> None:
    """Run gunicorn in front of the app `load_app` makes; `in_each_worker` starts a worker's own threads,
    `when_ready` runs in the master once it listens."""
    options = {
        **gunicorn_options(settings),
        "post_worker_init": lambda worker: in_each_worker(),
        "when_ready": lambda server: when_ready(),
        "child_exit": lambda server, worker: metrics.process_gone(worker.pid),
    }
    _Server(options, load_app).run()
