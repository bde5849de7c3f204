"""What `/ready` checks: the journal can be written and its schema is this version's, DHIS2 answers (and with which
version), and the OpenHIM core took the registration and a recent heartbeat.

Each check says whether it passes and a few words of why not; none says an address, a user or a value of a record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2AuthFailed, Dhis2Error, Dhis2NotConfigured
from mediator.dhis2.version import parse_version
from mediator.journal.store import newest_revision, schema_revision
from mediator.openhim.status import HeartbeatStatus

DHIS2_CACHE_SECONDS = 5.0  # probes from several orchestrators and workers do not each reach DHIS2
# A lock held by a writer means the journal is being written: the wait running out is not a failure.
BUSY = ("database is locked", "lock timeout", "canceling statement due to lock timeout")


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.detail}


def journal_check(engine: Engine) -> tuple[Check, Check]:
    """Whether a write goes through (tried, then rolled back), and whether the schema is at this version's revision."""
    wanted = newest_revision()
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            revision = schema_revision(connection)
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
            transaction.rollback()
    except OperationalError as exc:
        if any(words in str(exc.orig).lower() for words in BUSY):
            return Check(True, {"busy": True}), Check(True, {"revision": wanted})
        return Check(False, {"error": "cannot be written"}), Check(False, {"error": "not read"})
    except SQLAlchemyError:
        return Check(False, {"error": "cannot be written"}), Check(False, {"error": "not read"})
    migrations = Check(revision == wanted, {"revision": revision, **({} if revision == wanted else {"wanted": wanted})})
    return Check(True), migrations


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
    detail: dict[str, Any] = {"registered": status.registered_at is not None, "heartbeat_age_seconds": age}
    if age is not None:
        detail["heartbeat_age_seconds"] = round(age, 1)
    fresh = age is not None and age <= max(3 * interval, 30.0)
    return Check(status.registered_at is not None and fresh, detail)


class CachedCheck:
    """A check's answer kept for a few seconds, per process."""

    def __init__(self, seconds: float = DHIS2_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._clock = seconds, clock
        self._kept: tuple[float, object, Check] | None = None
        self._lock = threading.Lock()

    def get(self, key: object, run: Callable[[], Check]) -> Check:
        with self._lock:
            kept = self._kept
        if kept is not None and kept[1] == key and self._clock() - kept[0] < self.seconds:
            return kept[2]
        result = run()
        with self._lock:
            self._kept = (self._clock(), key, result)
        return result


def readiness(checks: dict[str, Check]) -> tuple[dict[str, Any], int]:
    """The body and status of `/ready`: 200 when every check passes, else 503."""
    ready = all(c.ok for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": {k: c.shown() for k, c in checks.items()}}
    return body, 200 if ready else 503
