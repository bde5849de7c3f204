"""One push from openIMIS: read → validate → map → deliver to DHIS2 → per-record outcome.

Metadata goes first (org units and options that data refers to), then insurees, their policies and claims.
An invalid record is rejected with its reasons while the valid ones go (a push with nothing valid is refused whole);
what DHIS2 refuses is rejected record by record too (see mediator.delivery.atomic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from mediator.answer.outcomes import PushResult, Reason, RecordOutcome
from mediator.delivery.claims import deliver_claims
from mediator.delivery.families import deliver_families
from mediator.delivery.insurees import deliver_insurees
from mediator.delivery.metadata import add_options, deliver_metadata
from mediator.delivery.policies import deliver_policies
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Error
from mediator.dhis2.writer import TrackerWriter
from mediator.mapping.insuree import InsureeTarget, map_insurees
from mediator.mapping.model import Setup
from mediator.openimis.reader import Problem, Reading
from mediator.openimis.records import Area, Claim, ClaimReview, CodeEntry, Facility, Family, Insuree, Policy


def label(record: object) -> str:
    return f"{record.kind}/{record.key}"  # type: ignore[attr-defined]


def push(
    reading: Reading,
    target: InsureeTarget,
    setup: Setup,
    client_factory: Callable[[], Dhis2Client],
    batch_size: int,
    writer_for: Callable[[Dhis2Client], TrackerWriter],
    known_entries: Sequence[CodeEntry] = (),
    known_numbers: Mapping[str, str] | None = None,
    known_org_units: Mapping[str, str] | None = None,
) -> PushResult:
    """`writer_for` picks the API that writes tracker data for the DHIS2 a client talks to (by its version);
    `known_entries` are code list entries of the same push delivered earlier, whose codes claim lines may name;
    `known_numbers` (insurance number -> insuree key) name the insurees of earlier pushes that Coverages cover;
    `known_org_units` (insuree key -> org unit) are where the enrollments of insurees delivered earlier are."""
    result = PushResult(received=dict(reading.resource_counts))
    if reading.problems and not reading.records:
        result.problems = list(reading.problems)  # nothing usable: the whole push is refused
        return result
    # Invalid records are rejected with their reasons; the valid ones of the same Bundle still go.
    for record, problems in _by_record(reading.problems).items():
        reasons = [Reason(p.field, "", p.message) for p in problems]
        result.outcomes.append(RecordOutcome(record, "rejected", {}, reasons))
    records = reading.records
    insurees = [r for r in records if isinstance(r, Insuree)]
    families = [r for r in records if isinstance(r, Family)]
    areas = [r for r in records if isinstance(r, Area)]
    facilities = [r for r in records if isinstance(r, Facility)]
    entries = [r for r in records if isinstance(r, CodeEntry)]
    policies = [r for r in records if isinstance(r, Policy)]
    claims = [r for r in records if isinstance(r, Claim)]
    reviews = [r for r in records if isinstance(r, ClaimReview)]
    # A family whose members are not in the push updates the members DHIS2 has.
    members = _members(families, insurees)
    alone = [f for f in families if not members[f.key] and f.member_keys]
    # Claims name ICD codes that no FHIR resource carries: they join the diagnosis option set from the claims.
    diagnoses = {code: name for claim in claims for code, name in claim.diagnoses}
    try:
        if not records:
            return result
        client = client_factory()
        if areas or facilities or entries:
            deliver_metadata(client, areas, facilities, entries, setup, result)
        unavailable = add_options(client, setup.option_sets["diagnosis"], diagnoses) if diagnoses else set()
        mapped = map_insurees(insurees, families, target)
        if alone or mapped or policies or claims or reviews:
            writer = writer_for(client)
            if alone:
                deliver_families(client, writer, alone, target, result)
            if mapped:
                deliver_insurees(client, writer, mapped, target, batch_size, result)
            if policies:
                status = {o.record: o.status for o in result.outcomes}
                deliver_policies(
                    client,
                    writer,
                    policies,
                    insurees,
                    status,
                    setup,
                    batch_size,
                    result,
                    known_numbers or {},
                    known_org_units or {},
                )
            if claims or reviews:
                deliver_claims(
                    client, writer, claims, reviews, [*known_entries, *entries], setup, batch_size, result, unavailable
                )
    except Dhis2Error as exc:
        # DHIS2 unreachable, not configured or refusing the credentials: what was not decided waits for a retry.
        result.failure = exc
        done = {o.record for o in result.outcomes}
        result.outcomes += [
            RecordOutcome(label(r), "pending")
            for r in records
            if (not isinstance(r, Family) or r in alone) and label(r) not in done
        ]
    by_record = {o.record: o.status for o in result.outcomes}
    result.outcomes += [_family_outcome(f, members[f.key], by_record) for f in families if f not in alone]
    return result


def _by_record(problems: list[Problem]) -> dict[str, list[Problem]]:
    grouped: dict[str, list[Problem]] = {}
    for p in problems:
        grouped.setdefault(p.record, []).append(p)
    return grouped


def _members(families: list[Family], insurees: list[Insuree]) -> dict[str, set[str]]:
    """The insurees of the push that belong to each family: listed by it, or naming it themselves."""
    keys = {i.key for i in insurees}
    found = {f.key: keys.intersection(f.member_keys) for f in families}
    for insuree in insurees:
        if insuree.family_key in found:
            found[insuree.family_key].add(insuree.key)
    return found


def _family_outcome(family: Family, members: set[str], insuree_status: Mapping[str, str]) -> RecordOutcome:
    """A family lives in DHIS2 as attributes of its members, so its fate is that of its members in this push."""
    statuses = {insuree_status.get(f"Patient/{k}") for k in members} - {None}
    record = f"Group/{family.key}"
    if "delivered" in statuses:
        return RecordOutcome(record, "delivered")
    if "pending" in statuses:
        return RecordOutcome(record, "pending")
    why = "DHIS2 refused all its members" if statuses else "none of its members is in this push"
    return RecordOutcome(record, "rejected", reasons=[Reason("member", "", f"family attributes not written: {why}")])
