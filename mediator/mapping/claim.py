"""Claims → an enrollment in "Claims management" on the facility, a "Claim details" event, and one
"Claim - Services" or "Claim - Items" event per line. A ClaimResponse adds its amounts to the same events.

Amounts openIMIS does not expose through FHIR (deductible, exceed-ceiling, remunerated) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mediator.mapping.model import Setup
from mediator.mapping.uids import derive_uid
from mediator.mapping.values import data_values, iso_date, number
from mediator.openimis.records import CHECKED, ENTERED, PROCESSED, VALUATED, Claim, ClaimReview

# Which review category fills which amount.
AMOUNTS = {CHECKED: "approved", PROCESSED: "adjusted", VALUATED: "valuated"}
STAGE_OF_KIND = {"item": "claim_items", "service": "claim_services"}
MAX_DIAGNOSES = 5


def claim_enrollment_uid(claim_key: str) -> str:
    return derive_uid("claimEnrollment", claim_key)


def claim_details_uid(claim_key: str) -> str:
    return derive_uid("claimDetails", claim_key)


def claim_line_uid(claim_key: str, sequence: int) -> str:
    return derive_uid("claimLine", f"{claim_key}:{sequence}")


def review_values(review: ClaimReview | None) -> dict[str, str | None]:
    if review is None:
        return {"claim.status": ENTERED}
    values: dict[str, str | None] = {"claim.status": review.status}
    for category, name in AMOUNTS.items():
        values[f"claim.{name}"] = number(review.totals.get(category))
    return values


def line_review_values(kind: str, amounts: Mapping[str, Decimal]) -> dict[str, str | None]:
    return {f"{kind}.{name}": number(amounts.get(category)) for category, name in AMOUNTS.items()}


def map_claim(
    claim: Claim, review: ClaimReview | None, setup: Setup, codes: Mapping[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """The claim's DHIS2 objects as (payload section, object). `codes` gives the openIMIS code of a
    Medication/ActivityDefinition key, for lines that name one (the line's own text may be a name)."""
    program = setup.programs["claim"]
    enrollment_id = claim_enrollment_uid(claim.key)
    org_unit = setup.org_unit(claim.facility_key)
    occurred = iso_date(claim.start or claim.created)
    enrollment = {
        "enrollment": enrollment_id,
        "program": program,
        "trackedEntity": setup.tracked_entity(claim.patient_key),
        "orgUnit": org_unit,
        "enrolledAt": iso_date(claim.created or claim.start),
        "occurredAt": occurred,
        # Completed, so that an insuree's claims do not collide as active enrollments of one program.
        "status": "COMPLETED",
    }

    def event(uid: str, stage: str, values: Mapping[str, str | None]) -> dict[str, Any]:
        return {
            "event": uid,
            "program": program,
            "programStage": setup.stages[stage],
            "enrollment": enrollment_id,
            "orgUnit": org_unit,
            "occurredAt": occurred,
            "status": "COMPLETED",
            "dataValues": data_values(setup, values),
        }

    details = {"claim.code": claim.code, "claim.claimed": number(claim.claimed), "claim.visit_type": claim.visit_type}
    keys = ["claim.diagnosis", *(f"claim.diagnosis_{i}" for i in range(1, MAX_DIAGNOSES))]
    details.update(zip(keys, (code for code, _ in claim.diagnoses[:MAX_DIAGNOSES]), strict=False))
    details.update(review_values(review))
    objects = [("enrollments", enrollment), ("events", event(claim_details_uid(claim.key), "claim_details", details))]
    reviewed = {line.sequence: line for line in (review.lines if review else ())}
    for line in claim.lines:
        values: dict[str, str | None] = {
            "line.sequence": str(line.sequence),
            f"{line.kind}.code": codes.get(line.entry_key or "") or line.code,
            f"{line.kind}.quantity": number(line.quantity),
            f"{line.kind}.price": number(line.price),
        }
        if line.sequence in reviewed:
            values.update(line_review_values(line.kind, reviewed[line.sequence].amounts))
        uid = claim_line_uid(claim.key, line.sequence)
        objects.append(("events", event(uid, STAGE_OF_KIND[line.kind], values)))
    return objects


def review_updates(review: ClaimReview, existing: Mapping[str, dict[str, Any]], setup: Setup) -> list[dict[str, Any]]:
    """Events of a claim already in DHIS2 (`existing`, by UID) with the review's amounts added."""
    updates = []
    targets = [(claim_details_uid(review.claim_key), review_values(review))]
    for line in review.lines:
        if line.kind:
            targets.append(
                (claim_line_uid(review.claim_key, line.sequence), line_review_values(line.kind, line.amounts))
            )
    for uid, values in targets:
        current = existing[uid]
        updates.append(
            {
                "event": uid,
                **{
                    k: current.get(k)
                    for k in ("program", "programStage", "enrollment", "orgUnit", "occurredAt", "status")
                },
                "dataValues": data_values(setup, values),
            }
        )
    return updates


def review_event_uids(review: ClaimReview) -> list[str]:
    return [
        claim_details_uid(review.claim_key),
        *(claim_line_uid(review.claim_key, line.sequence) for line in review.lines),
    ]
