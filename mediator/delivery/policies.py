"""Policies into DHIS2: "Policy details" events in the Family/Insuree enrollment of each insuree covered.

Insurees are found in the same push (by key, or by insurance number for a Coverage), in the journal (those the
mediator delivered) or, by key, in DHIS2.
"""

from __future__ import annotations

from collections.abc import Mapping

from mediator.answer.outcomes import PushResult, Reason, RecordOutcome, mirror_twins
from mediator.delivery.atomic import Deliverable, deliver_in_batches
from mediator.delivery.insurees import field_namer, tracker_sender
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.writer import TrackerWriter
from mediator.mapping.insuree import enrollment_uid
from mediator.mapping.model import Setup
from mediator.mapping.policy import merge_policies, policy_event
from mediator.openimis.records import Insuree, Policy


class _Villages:
    """The org unit of each insuree's enrollment: from the push, else from what the journal delivered, else from
    DHIS2 (asked once per insuree)."""

    def __init__(
        self,
        client: Dhis2Client,
        writer: TrackerWriter,
        insurees: list[Insuree],
        setup: Setup,
        delivered: Mapping[str, str],
    ) -> None:
        self.client = client
        self.writer = writer
        self.program = setup.programs["insuree"]
        self.known: dict[str, str | None] = {**delivered, **{i.key: setup.org_unit(i.village_key) for i in insurees}}

    def of(self, insuree_key: str) -> str | None:
        if insuree_key not in self.known:
            found = self.writer.read_enrollment(self.client, enrollment_uid(insuree_key, self.program))
            self.known[insuree_key] = (found or {}).get("orgUnit")
        return self.known[insuree_key]


def _reject(result: PushResult, record: str, field: str, why: str) -> None:
    result.outcomes.append(RecordOutcome(record, "rejected", {}, [Reason(field, "", why)]))


def deliver_policies(
    client: Dhis2Client,
    writer: TrackerWriter,
    policies: list[Policy],
    insurees: list[Insuree],
    insuree_status: Mapping[str, str],
    setup: Setup,
    batch_size: int,
    result: PushResult,
    known_numbers: Mapping[str, str],
    known_org_units: Mapping[str, str] | None = None,
) -> None:
    """`known_numbers` (insurance number -> insuree key) are the insurees of earlier pushes, from the journal, and
    `known_org_units` (insuree key -> org unit) where their enrollments are."""
    by_number = {**known_numbers, **{i.insurance_number: i.key for i in insurees if i.insurance_number}}
    villages = _Villages(client, writer, insurees, setup, known_org_units or {})
    items: list[Deliverable] = []
    for policy in merge_policies(policies):
        record = f"{policy.kind}/{policy.key}"
        keys = list(
            dict.fromkeys([*policy.insuree_keys, *(by_number[n] for n in policy.insurance_numbers if n in by_number)])
        )
        if not keys:
            why = (
                "no insuree found for this policy: a Coverage names its beneficiary by insurance number, so send it "
                "with the beneficiary's Patient, or send the Contract"
            )
            _reject(result, record, "beneficiary", why)
            continue
        refused = [k for k in keys if insuree_status.get(f"Patient/{k}") == "rejected"]
        if refused:
            _reject(result, record, "beneficiary", f"its insuree Patient/{refused[0]} was rejected in this push")
            continue
        org_units = {k: villages.of(k) for k in keys}
        missing = [k for k, ou in org_units.items() if ou is None]
        if missing:
            _reject(
                result, record, "beneficiary", f"insuree Patient/{missing[0]} is not in DHIS2: send the Patient first"
            )
            continue
        events = [policy_event(policy, k, str(org_units[k]), setup) for k in keys]
        uids = {f"event {k}": e["event"] for k, e in zip(keys, events, strict=True)}
        items.append(Deliverable(record, uids, tuple(("events", e) for e in events)))
    field_of = field_namer({uid: f"data element {key}" for key, uid in setup.data_elements.items()})
    deliver_in_batches(items, tracker_sender(client, writer), field_of, result, batch_size, writer.concurrency)
    mirror_twins([(p.kind, p.key) for p in policies], result)
