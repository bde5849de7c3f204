"""Locations, facilities and code lists into DHIS2 metadata: org units, options, and their memberships.

One metadata import carries every org unit and option of the push (DHIS2 orders parents before children itself);
the records it took are then added to their groups, programs and option sets through DHIS2's collection endpoints,
which add members without replacing the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mediator.answer.outcomes import PushResult, Reason, RecordOutcome, mirror_twins
from mediator.answer.redact import redact_message
from mediator.delivery.atomic import Attempt, Deliverable, Refusal, deliver
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.metadata import CollectionRefusal, add_to_collection, get_object, import_metadata
from mediator.mapping.metadata import distinct_names, option, option_uid
from mediator.mapping.model import Setup
from mediator.mapping.org_units import (
    area_memberships,
    area_org_unit,
    facility_memberships,
    facility_org_unit,
    merge_facilities,
)
from mediator.openimis.records import Area, CodeEntry, Facility

Membership = tuple[str, str, str]  # (collection, owner UID, member UID)

FIELD_OF_CODE = {"E5002": "partOf (the parent org unit)", "E4000": "name", "E4001": "name", "E5003": "code"}


def metadata_sender(client: Dhis2Client) -> Any:
    def send(body: dict[str, list[dict[str, Any]]]) -> Attempt:
        report = import_metadata(client, body)
        refusals = [Refusal(e.uid, e.code, e.message) for e in report.errors]
        stats = {f"metadata_{k}": int(v) for k, v in report.stats.items() if k in ("created", "updated", "ignored")}
        return Attempt(report.status != "ERROR" and not refusals, refusals, stats)

    return send


def _district_of(client: Dhis2Client, facility: Facility, setup: Setup) -> str | None:
    """Where a facility goes: its Location says; for an Organization alone, where DHIS2 already has it."""
    if facility.district_key:
        return setup.org_unit(facility.district_key)
    found = get_object(client, "organisationUnits", setup.org_unit(facility.key), "parent[id]")
    return ((found or {}).get("parent") or {}).get("id")


# What each collection is, and what adding to it does, in the words of a record's reason.
OWNERS = {
    "organisationUnitGroups": ("org unit group", "add this org unit to"),
    "programs": ("program", "open this org unit to"),
    "optionSets": ("option set", "add this option to"),
}


def add_members(client: Dhis2Client, memberships: Iterable[Membership]) -> dict[tuple[str, str], Reason]:
    """Add members to their groups, programs and option sets, one request per owner; returns why DHIS2 refused,
    by (collection, owner), for the records that needed that owner."""
    by_owner: dict[tuple[str, str], list[str]] = {}
    for collection, owner, member in memberships:
        by_owner.setdefault((collection, owner), []).append(member)
    refused: dict[tuple[str, str], Reason] = {}
    for (collection, owner), members in sorted(by_owner.items()):
        prop = "options" if collection == "optionSets" else "organisationUnits"
        refusal = add_to_collection(client, collection, owner, prop, sorted(set(members)))
        if refusal is not None:
            refused[(collection, owner)] = _reason(collection, owner, members, refusal)
    return refused


def _reason(collection: str, owner: str, members: list[str], refusal: CollectionRefusal) -> Reason:
    what, verb = OWNERS.get(collection, (collection, "add this record to"))
    said = redact_message(refusal.message, {owner, *members})
    if refusal.status == 404:
        why = f"DHIS2 has no {what} {owner} to {verb} ({said}): set DHIS2 up (bootstrap) or fix the mapping file"
    else:
        why = f"DHIS2 would not {verb} {what} {owner} ({refusal.status}: {said})"
    return Reason(what, "", why)


def _reject_for_memberships(
    taken: list[Deliverable],
    memberships: Mapping[str, list[Membership]],
    refused: Mapping[tuple[str, str], Reason],
    result: PushResult,
) -> None:
    """A record whose group, program or option set DHIS2 refused is rejected with that reason (its object may be in
    DHIS2, but not where the data needs it); sent again once DHIS2 is set up, it is completed."""
    delivered = {o.record: o for o in result.outcomes if o.status == "delivered"}
    for item in taken:
        reasons = list(dict.fromkeys(refused[(c, o)] for c, o, _ in memberships[item.record] if (c, o) in refused))
        outcome = delivered.get(item.record)
        if reasons and outcome is not None:
            outcome.status = "rejected"
            outcome.reasons = [*outcome.reasons, *reasons]


def add_options(client: Dhis2Client, set_uid: str, codes: Mapping[str, str]) -> set[str]:
    """Make sure the option set holds these codes; returns the codes DHIS2 would not take.

    Codes the set already holds (under any UID, as openIMIS's own module may have left them) are not sent again;
    each new option is imported on its own, so one refused code does not hold back the others.
    """
    found = get_object(client, "optionSets", set_uid, "options[id,code]") or {}
    present = {o.get("code") for o in found.get("options") or [] if isinstance(o, dict)}
    missing = {code: name for code, name in distinct_names(codes).items() if code not in present}
    if not missing:
        return set()
    options = [
        {k: v for k, v in option(set_uid, code, name, 0).items() if k != "sortOrder"} for code, name in missing.items()
    ]
    report = import_metadata(client, {"options": options}, atomic_mode="NONE")
    refused_uids = {e.uid for e in report.errors}
    refused = {o["code"] for o in options if o["id"] in refused_uids}
    if add_members(client, (("optionSets", set_uid, o["id"]) for o in options if o["code"] not in refused)):
        refused = {o["code"] for o in options}  # the set took none of them
    return refused


def deliver_metadata(
    client: Dhis2Client,
    areas: list[Area],
    facilities: list[Facility],
    entries: list[CodeEntry],
    setup: Setup,
    result: PushResult,
) -> None:
    items: list[Deliverable] = []
    memberships: dict[str, list[Membership]] = {}
    for area in areas:
        record = f"Location/{area.key}"
        items.append(
            Deliverable(
                record, {"orgUnit": setup.org_unit(area.key)}, (("organisationUnits", area_org_unit(area, setup)),)
            )
        )
        memberships[record] = area_memberships(area, setup)
    for facility in merge_facilities(facilities):
        record = f"{facility.kind}/{facility.key}"
        district = _district_of(client, facility, setup)
        if district is None:
            why = "the facility's district is unknown: send its Location (physicalType si), which has partOf"
            result.outcomes.append(RecordOutcome(record, "rejected", {}, [Reason("partOf", "", why)]))
            continue
        uid = setup.org_unit(facility.key)
        items.append(
            Deliverable(
                record, {"orgUnit": uid}, (("organisationUnits", facility_org_unit(facility, district, setup)),)
            )
        )
        memberships[record] = facility_memberships(facility, setup)
    names: dict[str, dict[str, str]] = {}
    for entry in entries:
        names.setdefault(entry.option_set, {})[entry.code] = entry.name
    names = {option_set: distinct_names(by_code) for option_set, by_code in names.items()}
    for entry in entries:
        record = f"{entry.kind}/{entry.key}"
        set_uid = setup.option_sets[entry.option_set]
        doc = option(set_uid, entry.code, names[entry.option_set][entry.code], 0)
        doc.pop("sortOrder")
        items.append(Deliverable(record, {"option": option_uid(set_uid, entry.code)}, (("options", doc),)))
        memberships[record] = [("optionSets", set_uid, doc["id"])]
    if items:
        taken = deliver(items, metadata_sender(client), lambda r: FIELD_OF_CODE.get(r.code, "record"), result)
        refused = add_members(client, (m for item in taken for m in memberships[item.record]))
        if refused:
            _reject_for_memberships(taken, memberships, refused, result)
    mirror_twins([(f.kind, f.key) for f in facilities], result)
