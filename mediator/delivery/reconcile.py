"""Reconcile the journal with DHIS2: are the records the journal says DHIS2 holds still there?

After DHIS2 loses data (restored from a backup, a reset test instance, another DHIS2 behind the same URL), the
journal would answer a re-send "unchanged" and send nothing. `reconcile` asks DHIS2, in batches, for the objects
that carry each record the journal vouches for (org units, options in their option sets, tracked entities,
enrollments, events) and counts, per kind of record, what is present and what is missing; with `resend`, what is
missing is sent again (see mediator.journal.delivered). Sending again is safe: the UIDs are deterministic and DHIS2
imports with CREATE_AND_UPDATE, so nothing DHIS2 still has is duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.lookup import TRACKER_KINDS, metadata_present, options_listed, tracker_present
from mediator.dhis2.writer import TrackerWriter
from mediator.journal.delivered import Vouched, send_again, vouched
from mediator.journal.store import Journal

# What a record's UIDs name, by the first word of their key ("orgUnit", "event <key>", "enrollments 0"...).
OBJECT_OF = {
    "orgUnit": "organisationUnits",
    "option": "options",
    "trackedEntity": "trackedEntities",
    "enrollment": "enrollments",
    "enrollments": "enrollments",
    "event": "events",
    "events": "events",
}


@dataclass
class KindCount:
    checked: int = 0
    present: int = 0
    missing: int = 0
    queued: int = 0  # sent again by the delivery worker
    marked: int = 0  # sent again by the next push or pull of the record


@dataclass
class Reconciliation:
    kinds: dict[str, KindCount] = field(default_factory=dict)

    def total(self) -> KindCount:
        out = KindCount()
        for c in self.kinds.values():
            out.checked += c.checked
            out.present += c.present
            out.missing += c.missing
            out.queued += c.queued
            out.marked += c.marked
        return out


def objects_of(record: Vouched) -> list[tuple[str, str]]:
    """(DHIS2 object kind, UID) pairs that carry the record; UIDs of kinds not looked up are left out."""
    pairs = []
    for name, uid in record.uids.items():
        kind = OBJECT_OF.get(str(name).split(" ", 1)[0])
        if kind is not None and isinstance(uid, str) and uid:
            pairs.append((kind, uid))
    return pairs


class Presence:
    """What DHIS2 holds, looked up a journal chunk at a time; the options listed by the option sets once."""

    def __init__(
        self, client: Dhis2Client, writer: TrackerWriter, option_sets: Iterable[str], tracked_entity_type: str
    ) -> None:
        self.client = client
        self.writer = writer
        self.tracked_entity_type = tracked_entity_type
        self._option_sets = list(option_sets)
        self._options: set[str] | None = None

    def present(self, wanted: Mapping[str, set[str]]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for kind, uids in wanted.items():
            if kind == "organisationUnits":
                found[kind] = metadata_present(self.client, kind, uids)
            elif kind == "options":
                if self._options is None:
                    self._options = options_listed(self.client, self._option_sets)
                found[kind] = uids & self._options
            elif kind in TRACKER_KINDS:
                found[kind] = tracker_present(self.client, self.writer, kind, uids, self.tracked_entity_type)
        return found


def reconcile(journal: Journal, presence: Presence, resend: bool = False, chunk: int = 500) -> Reconciliation:
    """Compare, a journal chunk at a time, what the journal vouches for with what DHIS2 holds; `resend` sends
    what is missing again. Only counts are kept: a journal of any size is reconciled in the memory of one chunk."""
    result = Reconciliation()
    for records in vouched(journal, chunk):
        pairs = {r.id: objects_of(r) for r in records}
        wanted: dict[str, set[str]] = {}
        for kind, uid in (p for ps in pairs.values() for p in ps):
            wanted.setdefault(kind, set()).add(uid)
        found = presence.present(wanted)
        missing: dict[str, list[int]] = {}
        for record in records:
            if not pairs[record.id]:
                continue  # nothing in DHIS2 stands for it on its own (nothing to look up)
            count = result.kinds.setdefault(record.kind, KindCount())
            count.checked += 1
            if all(uid in found.get(kind, set()) for kind, uid in pairs[record.id]):
                count.present += 1
            else:
                count.missing += 1
                missing.setdefault(record.kind, []).append(record.id)
        if resend:
            for kind, ids in missing.items():
                again = send_again(journal, ids)
                result.kinds[kind].queued += again.queued
                result.kinds[kind].marked += again.marked
    return result
