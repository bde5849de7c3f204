"""A family sent without its members: its attributes are written on the members DHIS2 already has.

DHIS2 keeps program attributes on the enrollment, so each member's Family/Insuree enrollment is read back and sent
again with the family's attributes.
"""

from __future__ import annotations

from typing import Any

from mediator.answer.outcomes import PushResult, Reason, RecordOutcome
from mediator.delivery.atomic import Deliverable, deliver
from mediator.delivery.insurees import field_namer, tracker_sender
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.writer import TrackerWriter
from mediator.mapping.insuree import InsureeTarget, enrollment_uid, family_values
from mediator.openimis.records import Family

ENROLLMENT_FIELDS = ("enrollment", "program", "trackedEntity", "orgUnit", "enrolledAt", "occurredAt", "status")


def _update(enrollment: dict[str, Any], attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {**{k: enrollment.get(k) for k in ENROLLMENT_FIELDS}, "attributes": attributes}


def deliver_families(
    client: Dhis2Client, writer: TrackerWriter, families: list[Family], target: InsureeTarget, result: PushResult
) -> None:
    items: list[Deliverable] = []
    for family in families:
        values = family_values(family)
        attributes = [
            {"attribute": target.attributes[k], "value": v} for k, v in values.items() if k in target.attributes
        ]
        found = []
        for member in family.member_keys:
            enrollment = writer.read_enrollment(client, enrollment_uid(member, target.program))
            if enrollment is not None:
                found.append(_update(enrollment, attributes))
        record = f"Group/{family.key}"
        if not found:
            why = "none of its members is in DHIS2 or in this push: send the family with its Patients"
            result.outcomes.append(RecordOutcome(record, "rejected", {}, [Reason("member", "", why)]))
            continue
        uids = {f"enrollment {i}": str(e["enrollment"]) for i, e in enumerate(found)}
        items.append(Deliverable(record, uids, tuple(("enrollments", e) for e in found)))
    if items:
        names = {uid: f"attribute {name}" for name, uid in target.attributes.items()}
        deliver(items, tracker_sender(client, writer), field_namer(names), result)
