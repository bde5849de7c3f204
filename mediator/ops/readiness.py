"""What `/ready` checks: the journal can be written and its schema is this version's, DHIS2 answers (and with which
version), and the OpenHIM core took the registration and a recent heartbeat.

Each check says whether it passes and a few words of why not; none says an address, a user or a value of a record.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2AuthFailed, Dhis2Error, Dhis2NotConfigured
from mediator.dhis2.version import parse_version
from mediator.journal.store import newest_revision, schema_revision
from mediator.openhim.status import HeartbeatStatus

MIN_FREE_BYTES = 32 * 1024 * 1024  # below this, SQLite's next push may not fit
DHIS2_CACHE_SECONDS = 5.0  # probes from several orchestrators and workers do not each reach DHIS2
# A lock held by a writer means the journal is being written: the wait running out is not a failure.
BUSY = ("database is locked", "lock timeout", "canceling statement due to lock timeout")


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.detail}


class JournalProbe:
    """Whether the journal takes a write (tried, then rolled back) and its schema is this version's revision.

    A lock held by another writer means the journal is being written, so a probe that waits for it in vain passes,
    unless that lasts over `busy_limit` seconds (a writer stuck). On SQLite the disk under the journal must also
    have room: a rolled-back write never needs any, every real one does."""

    def __init__(self, engine: Engine, busy_limit: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.busy_limit, self._clock = engine, busy_limit, clock
        self.busy_since: float | None = None

    def check(self) -> tuple[Check, Check]:
        wanted = newest_revision()
        revision: str | None = None
        read = False
        try:
            with self.engine.connect() as connection:
                revision, read = schema_revision(connection), True
                connection.rollback()
                with connection.begin() as transaction:
                    connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                    transaction.rollback()
        except OperationalError as exc:
            busy = any(words in str(exc.orig).lower() for words in BUSY)
            writable = self._busy() if busy else Check(False, {"error": "cannot be written"})
        except SQLAlchemyError:
            writable = Check(False, {"error": "cannot be written"})
        else:
            self.busy_since = None
            writable = self._room()
        if not read:
            return writable, Check(False, {"error": "not read"})
        detail = {"revision": revision, **({} if revision == wanted else {"wanted": wanted})}
        return writable, Check(revision == wanted, detail)

    def _busy(self) -> Check:
        now = self._clock()
        self.busy_since = self.busy_since if self.busy_since is not None else now
        if now - self.busy_since > self.busy_limit:
            return Check(False, {"error": f"another writer has held it for over {self.busy_limit:.0f} s"})
        return Check(True, {"busy": True})

    def _room(self) -> Check:
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            return Check(True)
        try:
            free = shutil.disk_usage(Path(database).parent).free
        except OSError:
            return Check(False, {"error": "cannot be written"})
        return Check(True) if free >= MIN_FREE_BYTES else Check(False, {"error": "no room left on its disk"})


def dhis2_check(client: Callable[[], Dhis2Client]) -> Check:
    try:
        info = client().system_info()
        version = parse_version(str(info.get("version", "")))
    except Dhis2NotConfigured:
        return Check(False, {"error": "DHIS2 is not configured (its URL or credentials)"})
    except Dhis2AuthFailed:
        return Check(False, {"error": "DHIS2 refuses the mediator's credentials"})
    except Dhis2Error:
        return Check(False, {"error": "DHIS2 does not answer"})
    return Check(True, {"version": str(version)})


def openhim_check(registers: bool, status: HeartbeatStatus, interval: float, now: float | None = None) -> Check:
    """Registered, and a heartbeat taken within three intervals (at least 30 s); not checked when registration is
    off (`MEDIATOR_OPENHIM_REGISTER=false`)."""
    if not registers:
        return Check(True, {"registration": "off"})
    age = status.beat_age(now)
    shown_age = None if age is None else round(age, 1)
    detail = {"registered": status.registered_at is not None, "heartbeat_age_seconds": shown_age}
    fresh = age is not None and age <= max(3 * interval, 30.0)
    return Check(status.registered_at is not None and fresh, detail)


class CachedCheck:
    """A check's answer kept for a few seconds, per process; while one caller asks again, the others get the last
    answer rather than asking too (probes come from anyone who reaches the port)."""

    def __init__(self, seconds: float = DHIS2_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._clock = seconds, clock
        self._kept: tuple[float, object, Check] | None = None
        self._asking = False
        self._lock = threading.Lock()

    def get(self, key: object, run: Callable[[], Check]) -> Check:
        with self._lock:
            kept = self._kept
            same = kept is not None and kept[1] == key
            if kept is not None and same and (self._asking or self._clock() - kept[0] < self.seconds):
                return kept[2]
            self._asking = True
        try:
            result = run()
        finally:
            with self._lock:
                self._asking = False
        with self._lock:
            self._kept = (self._clock(), key, result)
        return result


def readiness(checks: dict[str, Check]) -> tuple[dict[str, Any], int]:
    """The body and status of `/ready`: 200 when every check passes, else 503."""
    ready = all(c.ok for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": {k: c.shown() for k, c in checks.items()}}
    return body, 200 if ready else 503
