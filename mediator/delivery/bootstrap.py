"""`bootstrap`: install into a DHIS2 everything the mapping needs, keeping what data already added.

Safe to run again: objects are created or updated with the same UIDs, options and org unit memberships already in
DHIS2 are kept, and an existing root org unit is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mediator.aggregates import cubes
from mediator.aggregates import metadata as aggregate_metadata
from mediator.aggregates.cubes import Options
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Rejected
from mediator.dhis2.metadata import MetadataReport, get_object, import_metadata, update_option_combos
from mediator.mapping.metadata import member_sources, setup_metadata
from mediator.mapping.model import Setup


@dataclass
class BootstrapResult:
    report: MetadataReport
    root_created: bool


def root_org_unit(uid: str, name: str) -> dict[str, str]:
    return {"id": uid, "name": name, "shortName": name[:50], "openingDate": "1970-01-01"}


def aggregate_existing(client: Dhis2Client) -> dict[str, list[str]]:
    """What DHIS2 already lists for the aggregate categories (their options) and data sets (their org units)."""
    existing: dict[str, list[str]] = {}
    for category in aggregate_metadata.categories():
        found = get_object(client, "categories", category.uid, "categoryOptions[id]")
        if found:
            existing[category.uid] = [
                str(r.get("id")) for r in found.get("categoryOptions") or [] if isinstance(r, dict)
            ]
    for data_set in cubes.DATA_SETS.values():
        found = get_object(client, "dataSets", data_set.uid, "organisationUnits[id]")
        if found:
            existing[data_set.uid] = [
                str(r.get("id")) for r in found.get("organisationUnits") or [] if isinstance(r, dict)
            ]
    return existing


def bootstrap(
    client: Dhis2Client,
    setup: Setup,
    root_name: str,
    options: Options | None = None,
    org_units: Mapping[str, list[str]] | None = None,
) -> BootstrapResult:
    """Install the tracker metadata and the monthly data sets (`options`: the code lists known so far; `org_units`:
    the org unit UIDs each data set is for), then have DHIS2 make the data sets' option combos."""
    existing: dict[str, list[str]] = {}
    for uid, collection in member_sources(setup).items():
        found = get_object(client, collection, uid, "options[id],organisationUnits[id]")
        if found:
            refs = found.get("options") or found.get("organisationUnits") or []
            existing[uid] = [r["id"] for r in refs if isinstance(r, dict) and r.get("id")]
    payload = setup_metadata(setup, existing=existing)
    aggregate = aggregate_metadata.payload(options or Options(), org_units or {}, aggregate_existing(client))
    for collection, objects in aggregate.items():
        payload[collection] = [*payload.get(collection, []), *objects]
    root_created = get_object(client, "organisationUnits", setup.root_org_unit, "id") is None
    if root_created:
        payload["organisationUnits"] = [root_org_unit(setup.root_org_unit, root_name)]
    report = import_metadata(client, payload)
    if report.status == "ERROR" or report.errors:
        details = "; ".join(f"{e.klass} {e.uid}: {e.code} {e.message}" for e in report.errors[:20])
        raise Dhis2Rejected(f"DHIS2 refused the setup: {details or report.status}")
    update_option_combos(client)
    return BootstrapResult(report, root_created)
