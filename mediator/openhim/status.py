"""What the heartbeat last achieved, kept in a file of the state directory: the one process that talks to the core
writes it, every process reads it (for `/ready` and the metrics). It holds times only, never a setting or answer."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "heartbeat-status.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeartbeatStatus:
    registered_at: float | None = None  # wall-clock seconds of the last registration the core accepted
    beat_at: float | None = None  # of the last heartbeat the core accepted
    failing_since: float | None = None  # of the first failure since the last success

    def beat_age(self, now: float | None = None) -> float | None:
        return None if self.beat_at is None else max(0.0, (time.time() if now is None else now) - self.beat_at)


class StatusFile:
    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(state_dir) / FILE_NAME
        self._clock = clock
        self._status = HeartbeatStatus()

    def read(self) -> HeartbeatStatus:
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return HeartbeatStatus()
        if not isinstance(doc, dict):
            return HeartbeatStatus()
        return HeartbeatStatus(*(_seconds(doc.get(k)) for k in ("registered_at", "beat_at", "failing_since")))

    def registered(self) -> None:
        self._write(HeartbeatStatus(self._clock(), self._status.beat_at, None))

    def beat(self) -> None:
        self._write(HeartbeatStatus(self._status.registered_at, self._clock(), None))

    def failed(self) -> None:
        if self._status.failing_since is None:
            s = self._status
            self._write(HeartbeatStatus(s.registered_at, s.beat_at, self._clock()))

    def unregistered(self) -> None:
        self._write(HeartbeatStatus(None, self._status.beat_at, self._clock()))

    def _write(self, status: HeartbeatStatus) -> None:
        """Replaced whole (rename), so that a reader never sees half a file. A file that cannot be written (a full
        disk) is logged and never stops the heartbeat: `/ready` then finds the status old, and says so."""
        self._status = status
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temporary = self.path.with_name(f".{FILE_NAME}.{os.getpid()}")
            temporary.write_text(json.dumps(status.__dict__))
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("the heartbeat's status not written to %s: %s", self.path, exc.strerror or type(exc).__name__)


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
