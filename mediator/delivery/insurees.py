"""Insurees into the Family/Insuree program through the tracker importer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mediator.answer.outcomes import PushResult
from mediator.delivery.atomic import Attempt, Deliverable, Refusal, deliver_in_batches
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.writer import TrackerWriter
from mediator.mapping.insuree import InsureeTarget, MappedInsuree

# Which part of the openIMIS record a DHIS2 error code points at.
FIELD_OF_CODE = {
    "E1000": "address (village): the DHIS2 user may not write to this org unit",
    "E1011": "address (village): no such org unit in DHIS2",
    "E1049": "address (village): no such org unit in DHIS2",
    "E1070": "address (village): no such org unit in DHIS2",
    "E1041": "address (village): the village is not open to the program",
    "E1005": "tracked entity type",
    "E1069": "program",
    "E1015": "enrollment",
}


def tracker_sender(client: Dhis2Client, writer: TrackerWriter) -> Any:
    def send(body: dict[str, list[dict[str, Any]]]) -> Attempt:
        report = writer.write(client, body)
        stats = {
            f"{kind.lower()}_{name}": int(s.get(name, 0))
            for kind, s in report.type_stats.items()
            for name in ("created", "updated", "ignored")
        }
        refusals = [Refusal(e.uid, e.code, e.message) for e in report.errors]
        warnings = [Refusal(w.uid, w.code, w.message) for w in report.warnings]
        return Attempt(report.status != "ERROR", refusals, stats, warnings)

    return send


def field_namer(names: Mapping[str, str], by_code: Mapping[str, str] = FIELD_OF_CODE) -> Any:
    """Names the openIMIS field a refusal is about: the attribute or data element it quotes, else its code's."""

    def field_of(refusal: Refusal) -> str:
        for uid in re.findall(r"[A-Za-z][A-Za-z0-9]{10}", refusal.message):
            if uid in names:
                return names[uid]
        return by_code.get(refusal.code, "record")

    return field_of


def deliver_insurees(
    client: Dhis2Client,
    writer: TrackerWriter,
    mapped: list[MappedInsuree],
    target: InsureeTarget,
    batch_size: int,
    result: PushResult,
) -> None:
    field_of = field_namer({uid: f"attribute {name}" for name, uid in target.attributes.items()})
    items = [Deliverable(f"Patient/{m.key}", m.uids, (("trackedEntities", m.tracked_entity),)) for m in mapped]
    deliver_in_batches(items, tracker_sender(client, writer), field_of, result, batch_size, writer.concurrency)
