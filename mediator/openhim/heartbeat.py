"""Registration and heartbeat loop: register (retrying with backoff), beat every interval, pass config on.

Every beat asks the core for the console config and applies it when it differs from the last one seen. The core
sends a changed config unasked only if the change is newer than the previous beat it recorded, and a beat that
reads the mediator just before a console save records itself just after it: such a change would never be sent.

With several server worker processes, each runs this loop but only the one holding an exclusive lock on a file
in the state directory talks to the core; if that process dies the lock is freed and another takes over.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mediator.backoff import half_jitter
from mediator.openhim.core import CoreClient
from mediator.openhim.errors import MediatorNotFound, OpenHimError
from mediator.openhim.status import StatusFile

log = logging.getLogger(__name__)

PROCESS_STARTED = time.monotonic()
MAX_BACKOFF = 60.0


class LeaderLock:
    """An exclusive, non-blocking lock on a file: held by at most one process on the machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class Heartbeat:
    """One registration/heartbeat state machine. `step()` does one action and says how long to wait."""

    def __init__(
        self,
        core: CoreClient,
        document: Callable[[], dict[str, Any]],
        on_config: Callable[[dict[str, Any]], object],
        interval: float = 10.0,
        lock: LeaderLock | None = None,
        uptime: Callable[[], float] = lambda: time.monotonic() - PROCESS_STARTED,
        status: StatusFile | None = None,
    ) -> None:
        self.core = core
        self.document = document
        self.on_config = on_config
        self.interval = interval
        self.lock = lock
        self.uptime = uptime
        self.status = status
        self.registered = False
        self.seen_config: dict[str, Any] | None = None  # the last config the core sent, applied or refused
        self.failures = 0
        self.beats = 0
        self.tidy_config = False  # the stored config may hold what this version no longer defines

    @property
    def urn(self) -> str:
        return str(self.document()["urn"])

    def _backoff(self) -> float:
        self.failures += 1
        return half_jitter(self.failures, 1.0, MAX_BACKOFF)

    def step(self) -> float:
        if self.lock is not None and not self.lock.try_acquire():
            return self.interval  # another process is the heartbeat leader
        try:
            if not self.registered:
                self.core.register(self.document())
                self.registered = True
                self.failures = 0
                if self.status is not None:
                    self.status.registered()
                log.info("registered with the OpenHIM core as %s", self.urn)
                self._check_drift()
                self.tidy_config = True
            if self.tidy_config:
                self.tidy_config = not self._drop_undefined_config()
            config = self.core.heartbeat(self.urn, round(self.uptime(), 3), want_config=True)
            self.beats += 1
            self.failures = 0
            if self.status is not None:
                self.status.beat()
            if config is not None and config != self.seen_config and self._apply(config):
                self.seen_config = config
            return self.interval
        except MediatorNotFound:
            log.warning("the OpenHIM core no longer knows this mediator; registering again")
            self.registered = False
            if self.status is not None:
                self.status.unregistered()
            return 0.0
        except OpenHimError as exc:
            wait = self._backoff()
            if self.status is not None:
                self.status.failed()
            if exc.retryable:
                log.warning("%s (%s); retrying in %.1f s", exc.summary, exc, wait)
            else:  # the core refuses what the mediator sends: an administrator has to act
                log.error("%s: %s; trying again in %.1f s", exc.summary, exc, wait)
            return wait

    def _drop_undefined_config(self) -> bool:
        """Remove from the stored config what this registration no longer defines; False to try again next beat.

        The core keeps a struct list's entries whole across versions, so fields an older version had (passwords
        among them) would stay shown to every admin, and the core refuses every later save of the config while
        they are there. Left alone while the core keeps another version's document."""
        try:
            stored = self.core.get_mediator(self.urn)
            if stored.get("version") != self.document().get("version") or not isinstance(stored.get("config"), dict):
                return True
            kept, removed = defined_config(self.document().get("configDefs") or [], stored["config"])
            if removed:
                self.core.set_config(self.urn, kept)
        except OpenHimError as exc:
            log.warning("config fields this version no longer defines not yet removed from the core: %s", exc)
            return False
        if removed:
            log.warning(
                "removed from the mediator's config in the OpenHIM core what this version no longer defines: %s",
                ", ".join(removed),
            )
        return True

    def _check_drift(self) -> None:
        """The core keeps its document when the version is not higher: say so when ours has changed since."""
        try:
            stored = self.core.get_mediator(self.urn)
        except OpenHimError:
            return
        for difference in registration_drift(self.document(), stored):
            log.warning(
                "the OpenHIM core keeps an older registration of version %s: %s; bump the version in "
                "mediator_config.json (and update installed channels) to change it",
                stored.get("version"),
                difference,
            )

    def _apply(self, config: dict[str, Any]) -> bool:
        """Apply a console config; False when it should be tried again (it was not refused, applying it failed)."""
        try:
            self.on_config(config)
            log.info("applied the configuration from the OpenHIM console")
            return True
        except ValueError as exc:  # refused (SettingsError): said once, until the console changes it again
            log.error("configuration from the OpenHIM console refused, the settings in force are kept: %s", exc)
            return True
        except Exception as exc:  # a failure to apply it must never stop the heartbeat: tried again next beat
            log.error(
                "configuration from the OpenHIM console not applied yet (%s: %s); trying again", type(exc).__name__, exc
            )
            return False

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.step()
            except Exception:  # the heartbeat must outlive any one beat, or its lock would keep others from leading
                log.exception("heartbeat step failed; trying again")
                wait = self._backoff()
            stop.wait(wait)
        if self.lock is not None:
            self.lock.release()


def _addresses(doc: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for ep in doc.get("endpoints") or []:
        found[f"endpoint {ep.get('name')!r}"] = (ep.get("host"), str(ep.get("port")), ep.get("path"))
    for channel in doc.get("defaultChannelConfig") or []:
        for route in channel.get("routes") or []:
            key = f"route {route.get('name')!r} of channel {channel.get('name')!r}"
            found[key] = (route.get("host"), str(route.get("port")), route.get("path"), route.get("username"))
            found[key + " password"] = (route.get("password"),)
    return found


def defined_config(config_defs: list[dict[str, Any]], config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The config without the params and struct fields `config_defs` do not define, and their names (never values)."""
    defs = {d.get("param"): d for d in config_defs}
    kept: dict[str, Any] = {}
    removed: list[str] = []
    for param, value in config.items():
        definition = defs.get(param)
        if definition is None:
            removed.append(param)
            continue
        if definition.get("type") == "struct":
            fields = {t.get("param") for t in definition.get("template") or []}
            entries = value if isinstance(value, list) else [value]
            for i, entry in enumerate(entries):
                if isinstance(entry, dict):
                    where = f"{param}[{entry.get('name') or i}]" if isinstance(value, list) else param
                    removed += [f"{where}.{f}" for f in entry if f not in fields]
            cleaned = [{k: v for k, v in e.items() if k in fields} if isinstance(e, dict) else e for e in entries]
            value = cleaned if isinstance(value, list) else cleaned[0]
        kept[param] = value
    return kept, removed


def registration_drift(sent: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """Where the core's stored document routes elsewhere than ours (addresses and route credentials)."""
    ours, theirs = _addresses(sent), _addresses(stored)
    return [f"{key} differs" for key in sorted(ours) if theirs.get(key) != ours[key]]


def start_in_thread(heartbeat: Heartbeat) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=heartbeat.run, args=(stop,), name="openhim-heartbeat", daemon=True).start()
    return stop
