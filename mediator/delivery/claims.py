"""Claims (and their reviews) into the Claims management program through the tracker importer.

A Claim and its ClaimResponse in the same push are written together; a ClaimResponse that comes later updates the
events of its claim that DHIS2 already has.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mediator.answer.outcomes import PushResult, Reason, RecordOutcome
from mediator.delivery.atomic import Deliverable, deliver_in_batches
from mediator.delivery.insurees import FIELD_OF_CODE, field_namer, tracker_sender
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.writer import TrackerWriter
from mediator.mapping.claim import map_claim, review_event_uids, review_updates
from mediator.mapping.model import Setup
from mediator.openimis.records import Claim, ClaimReview, CodeEntry

CLAIM_FIELDS = {
    **FIELD_OF_CODE,
    "E1068": "patient: the insuree is not in DHIS2",
    "E1070": "provider: no such facility org unit in DHIS2",
    "E1011": "provider: no such facility org unit in DHIS2",
    "E1041": "provider: the facility is not open to Claims management",
    "E1029": "provider: the facility is not open to Claims management",
}


def _uids(objects: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    return {
        f"{section} {i}": str(obj.get("event") or obj.get("enrollment")) for i, (section, obj) in enumerate(objects)
    }


def _existing_events(
    client: Dhis2Client, writer: TrackerWriter, review: ClaimReview
) -> dict[str, dict[str, Any]] | None:
    found = {}
    for uid in review_event_uids(review):
        event = writer.read_event(client, uid)
        if event is None:
            return None
        found[uid] = event
    return found


def _with_current_values(update: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The update with the event's other data values: the legacy API replaces an event's values with those sent."""
    sent = {dv["dataElement"] for dv in update["dataValues"]}
    kept = [
        {"dataElement": dv["dataElement"], "value": dv.get("value")}
        for dv in current.get("dataValues") or []
        if dv.get("dataElement") not in sent
    ]
    return {**update, "dataValues": [*kept, *update["dataValues"]]}


def deliver_claims(
    client: Dhis2Client,
    writer: TrackerWriter,
    claims: list[Claim],
    reviews: list[ClaimReview],
    entries: list[CodeEntry],
    setup: Setup,
    batch_size: int,
    result: PushResult,
    unavailable_diagnoses: Collection[str] = (),
) -> None:
    codes = {e.key: e.code for e in entries}
    review_of = {r.claim_key: r for r in reviews}
    items: list[Deliverable] = []
    for claim in claims:
        if any(code in unavailable_diagnoses for code, _ in claim.diagnoses):
            why = "a diagnosis code of this claim could not be added to the ICD option set in DHIS2"
            result.outcomes.append(RecordOutcome(f"Claim/{claim.key}", "rejected", {}, [Reason("diagnosis", "", why)]))
            continue
        objects = map_claim(claim, review_of.get(claim.key), setup, codes)
        items.append(Deliverable(f"Claim/{claim.key}", _uids(objects), tuple(objects)))
    in_push = {c.key for c in claims}
    for review in reviews:
        if review.claim_key in in_push:
            continue
        existing = _existing_events(client, writer, review)
        if existing is None:
            why = (
                f"Claim/{review.claim_key} is not in DHIS2 (or lacks a line reviewed): send the Claim first or with it"
            )
            result.outcomes.append(
                RecordOutcome(f"ClaimResponse/{review.key}", "rejected", {}, [Reason("request", "", why)])
            )
            continue
        updates = [
            ("events", _with_current_values(u, existing[u["event"]])) for u in review_updates(review, existing, setup)
        ]
        items.append(Deliverable(f"ClaimResponse/{review.key}", _uids(updates), tuple(updates)))
    names = {uid: f"data element {key}" for key, uid in setup.data_elements.items()}
    field_of = field_namer(names, CLAIM_FIELDS)
    deliver_in_batches(items, tracker_sender(client, writer), field_of, result, batch_size, writer.concurrency)
    _name_missing_insurees(claims, result)
    # A review sent with its claim shares the claim's fate.
    claim_outcome = {o.record: o for o in result.outcomes}
    for review in reviews:
        twin = claim_outcome.get(f"Claim/{review.claim_key}")
        if review.claim_key in in_push and twin is not None:
            result.outcomes.append(RecordOutcome(f"ClaimResponse/{review.key}", twin.status, {}, list(twin.reasons)))


def _name_missing_insurees(claims: list[Claim], result: PushResult) -> None:
    """A claim whose insuree DHIS2 lacks says which openIMIS insuree that is, once, instead of DHIS2's UID and one
    "cannot be persisted" line per event of the claim."""
    patient_of = {f"Claim/{c.key}": c.patient_key for c in claims}
    for outcome in result.outcomes:
        key = patient_of.get(outcome.record)
        if outcome.status != "rejected" or key is None or not any(r.code == "E1068" for r in outcome.reasons):
            continue
        why = f"its insuree Patient/{key} is neither in DHIS2 nor on its way in the journal: send the Patient first"
        rest = [r for r in outcome.reasons if r.code not in ("E1068", "E5000")]
        outcome.reasons = [Reason("patient", "E1068", why), *rest]
