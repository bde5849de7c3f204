"""Which of a list of objects DHIS2 holds, asked by UID in batches: org units and option sets' options through the
metadata API (every version), tracked entities, enrollments and events through the API that writes them, in the
dialect of the DHIS2 version.

| API | UIDs | org unit scope | paging off | answer |
|---|---|---|---|---|
| tracker, 2.36-2.40 | `trackedEntity=a;b` | `ouMode=ACCESSIBLE` | `skipPaging=true` | `instances` |
| tracker, 2.41+ | `trackedEntities=a,b` | `orgUnitMode=ACCESSIBLE` | `paging=false` | `trackedEntities` |
| legacy, 2.33-2.41 | `trackedEntityInstance=a;b` | `ouMode=ACCESSIBLE` | `skipPaging=true` | `trackedEntityInstances` |

(and likewise `enrollment(s)`, `event(s)`). Only the UIDs asked count: an answer holding more (a parameter the
version ignores) cannot make anything present that was not asked for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2ApiMissing, Dhis2Rejected
from mediator.dhis2.writer import TrackerWriter

BATCH = 100  # UIDs per request: about 1,200 characters of query string
TRACKER_KINDS = ("trackedEntities", "enrollments", "events")
# kind -> (UID field, parameter up to 2.41, legacy path, legacy UID field)
_TRACKER = {
    "trackedEntities": ("trackedEntity", "trackedEntity", "trackedEntityInstances", "trackedEntityInstance"),
    "enrollments": ("enrollment", "enrollment", "enrollments", "enrollment"),
    "events": ("event", "event", "events", "event"),
}


def batches(uids: Iterable[str], size: int = BATCH) -> Iterator[list[str]]:
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def metadata_present(client: Dhis2Client, collection: str, uids: Iterable[str]) -> set[str]:
    """The UIDs of `collection` (organisationUnits, options...) DHIS2 has, of those asked."""
    present: set[str] = set()
    for batch in batches(uids):
        params = {"filter": f"id:in:[{','.join(batch)}]", "fields": "id", "paging": "false"}
        present |= _ids(_list(client, f"/api/{collection}", params, (collection,)), "id", batch)
    return present


def options_listed(client: Dhis2Client, option_sets: Iterable[str]) -> set[str]:
    """The UIDs of the options these option sets list (an option outside its set is not one a value can take)."""
    listed: set[str] = set()
    for batch in batches(option_sets):
        params = {"filter": f"id:in:[{','.join(batch)}]", "fields": "id,options[id]", "paging": "false"}
        for found in _list(client, "/api/optionSets", params, ("optionSets",)):
            listed |= {str(o.get("id")) for o in found.get("options") or [] if isinstance(o, dict)}
    return listed


def tracker_present(
    client: Dhis2Client, writer: TrackerWriter, kind: str, uids: Iterable[str], tracked_entity_type: str
) -> set[str]:
    """The UIDs of tracked entities, enrollments or events (`kind`) DHIS2 has, of those asked, read through the
    API `writer` writes with. Tracked entities are looked for in `tracked_entity_type`, as DHIS2 requires."""
    uid_field, singular, legacy_path, legacy_field = _TRACKER[kind]
    present: set[str] = set()
    for batch in batches(uids):
        params: dict[str, str]
        if writer.api == "legacy":
            path, field = f"/api/{legacy_path}", legacy_field
            params = {legacy_field: ";".join(batch), "ouMode": "ACCESSIBLE", "skipPaging": "true"}
            keys: tuple[str, ...] = (legacy_path,)
        elif (writer.version.major, writer.version.minor) >= (2, 41):
            path, field = f"/api/tracker/{kind}", uid_field
            params = {kind: ",".join(batch), "orgUnitMode": "ACCESSIBLE", "paging": "false"}
            keys = (kind, "instances")
        else:
            path, field = f"/api/tracker/{kind}", uid_field
            params = {singular: ";".join(batch), "ouMode": "ACCESSIBLE", "skipPaging": "true"}
            keys = ("instances", kind)
        if kind == "trackedEntities":
            params["trackedEntityType"] = tracked_entity_type
        params["fields"] = field
        present |= _ids(_list(client, path, params, keys), field, batch)
    return present


def _list(client: Dhis2Client, path: str, params: dict[str, str], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    status, body = client.request("GET", path, params=params)
    if status == 404:
        raise Dhis2ApiMissing(f"DHIS2 has no {path} (it was upgraded or replaced)")
    if status != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        raise Dhis2Rejected(f"DHIS2 answered {status} listing {path}: {message}", status)
    found: list[Any] = next((body[k] for k in keys if isinstance(body.get(k), list)), [])
    return [item for item in found if isinstance(item, dict)]


def _ids(items: list[dict[str, Any]], field: str, asked: Collection[str]) -> set[str]:
    return {str(item.get(field)) for item in items} & set(asked)
