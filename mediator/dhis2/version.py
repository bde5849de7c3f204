"""Which DHIS2 the mediator talks to, from `/api/system/info`: detected once, re-checked after errors."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Rejected

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
RECHECK_SECONDS = 600.0  # an upgrade is noticed within this time even without errors


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def has_tracker_importer(self) -> bool:  # /api/tracker arrived in 2.36
        return (self.major, self.minor) >= (2, 36)

    @property
    def has_legacy_tracker(self) -> bool:  # /api/trackedEntityInstances, /api/enrollments, /api/events until 2.41
        return (self.major, self.minor) <= (2, 41)


def parse_version(text: str) -> Version:
    """'2.40.3', '2.41-SNAPSHOT', '2.39.1.2' → Version; anything else is refused."""
    match = _VERSION.match(text.strip())
    if not match:
        raise Dhis2Rejected(f"DHIS2 reports a version the mediator cannot read: {text!r}")
    return Version(int(match[1]), int(match[2]), int(match[3] or 0))


class VersionCache:
    """One detected version per DHIS2 URL, shared by a process's requests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._known: dict[str, tuple[Version, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, client: Dhis2Client) -> Version:
        with self._lock:
            known = self._known.get(client.base_url)
        if known and self._clock() - known[1] < RECHECK_SECONDS:
            return known[0]
        info = client.system_info()
        version = parse_version(str(info.get("version", "")))
        with self._lock:
            self._known[client.base_url] = (version, self._clock())
        return version

    def forget(self, base_url: str) -> None:
        """After an error the DHIS2 may have been upgraded or replaced: ask again next time."""
        with self._lock:
            self._known.pop(base_url, None)
