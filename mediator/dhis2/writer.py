"""Which API writes tracker data, by DHIS2 version and choice: the tracker importer (2.36+) or the legacy API
(2.33-2.41). Both take the same payload, in the tracker importer's dialect, and give the same report; what was
written is read back through the same API, in the same dialect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Rejected
from mediator.dhis2.legacy import import_legacy, read_legacy
from mediator.dhis2.tracker import ImportReport, import_tracker, read_tracker
from mediator.dhis2.version import Version

APIS = ("auto", "tracker", "legacy")


def count_objects(payload: dict[str, Any]) -> int:
    tes = payload.get("trackedEntities") or []
    nested = sum(len(te.get("enrollments") or []) for te in tes)
    return len(tes) + nested + len(payload.get("enrollments") or []) + len(payload.get("events") or [])


@dataclass(frozen=True)
class TrackerWriter:
    api: str  # tracker or legacy
    version: Version
    async_threshold: int = 1000  # objects; above it the tracker importer runs the import as a job
    concurrency: int = 1  # requests at a time; DHIS2 is best served by a few, not many

    def write(self, client: Dhis2Client, payload: dict[str, Any]) -> ImportReport:
        if self.api == "legacy":
            return import_legacy(client, payload)
        return import_tracker(client, payload, asynchronous=count_objects(payload) > self.async_threshold)

    def read_enrollment(self, client: Dhis2Client, uid: str) -> dict[str, Any] | None:
        """The enrollment with this UID in the tracker importer's names, or None when DHIS2 has none."""
        return self._read(client, "enrollments", uid)

    def read_event(self, client: Dhis2Client, uid: str) -> dict[str, Any] | None:
        """The event with this UID in the tracker importer's names (data values as a list), or None."""
        return self._read(client, "events", uid)

    def _read(self, client: Dhis2Client, kind: str, uid: str) -> dict[str, Any] | None:
        # 2.33-2.35 have no /api/tracker; on 2.36-2.41 the legacy reads see what the legacy writes wrote.
        if self.api == "legacy":
            return read_legacy(client, kind, uid)
        return read_tracker(client, kind, uid)


def choose_writer(
    version: Version, preference: str = "auto", async_threshold: int = 1000, concurrency: int = 1
) -> TrackerWriter:
    if preference == "legacy" and not version.has_legacy_tracker:
        raise Dhis2Rejected(f"DHIS2 {version} has no legacy tracker API (removed in 2.42): set tracker_api to auto")
    if preference == "tracker" and not version.has_tracker_importer:
        raise Dhis2Rejected(f"DHIS2 {version} has no tracker importer (2.36+): set tracker_api to auto")
    api = preference if preference != "auto" else ("tracker" if version.has_tracker_importer else "legacy")
    return TrackerWriter(api, version, async_threshold, concurrency)
