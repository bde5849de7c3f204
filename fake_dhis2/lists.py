"""The fake's collection reads: metadata lists (`/api/organisationUnits?filter=id:in:[...]`), tracker lists by UID
(`/api/tracker/trackedEntities?trackedEntities=...`, 2.36+) and legacy lists (`/api/trackedEntityInstances?...`,
up to 2.41), with each version's parameter names, paging and answer shape.

A parameter a version does not know is ignored, as DHIS2 ignores it; what DHIS2 requires is refused without it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fake_dhis2.store import METADATA_TYPES, Store

PAGE_SIZE = 50  # DHIS2's default page
_ID_IN = re.compile(r"^id:in:\[(.*)\]$")
Version = tuple[int, int]
Answer = tuple[int, dict[str, Any]]


def _paged(params: Mapping[str, str], version: Version, legacy: bool = False) -> bool:
    """Whether the answer is one page: `paging=false` (metadata and legacy lists, tracker lists from 2.41) or
    `skipPaging=true` (legacy and tracker lists before 2.42) turn paging off."""
    if params.get("paging", "").lower() == "false" and (legacy or version >= (2, 41)):
        return False
    return not (params.get("skipPaging", "").lower() == "true" and (legacy or version < (2, 42)))


def _page(items: list[dict[str, Any]], params: Mapping[str, str], paged: bool) -> list[dict[str, Any]]:
    if not paged:
        return items
    size = int(params.get("pageSize") or PAGE_SIZE)
    start = (int(params.get("page") or 1) - 1) * size
    return items[start : start + size]


def metadata_list(store: Store, collection: str, params: Mapping[str, str]) -> Answer:
    """`GET /api/{collection}`: objects by `filter=id:in:[...]`, with `id` (and an option set's `options[id]`)."""
    kind = METADATA_TYPES.get(collection)
    if kind is None:
        return 404, {"httpStatusCode": 404, "status": "ERROR", "message": "Not Found"}
    objects = getattr(store, kind[1])
    wanted: list[str] | None = None
    match = _ID_IN.match(params.get("filter", ""))
    if match:
        wanted = [u for u in match[1].split(",") if u]
    with store.lock:
        found = [objects[u] for u in (wanted if wanted is not None else sorted(objects)) if u in objects]
    fields = params.get("fields", "")
    items = []
    for obj in found:
        item: dict[str, Any] = {"id": obj["id"]}
        if "options[" in fields:
            item["options"] = [{"id": o.get("id")} for o in obj.get("options") or []]
        items.append(item)
    paged = params.get("paging", "").lower() != "false"
    doc: dict[str, Any] = {collection: _page(items, params, paged)}
    if paged:
        doc["pager"] = {"page": int(params.get("page") or 1), "pageSize": int(params.get("pageSize") or PAGE_SIZE)}
    return 200, doc


# kind -> (store attribute, UID field, parameter from 2.41 (commas), parameter up to 2.41 (semicolons))
TRACKER_LISTS = {
    "trackedEntities": ("tracked_entities", "trackedEntity", "trackedEntities", "trackedEntity"),
    "enrollments": ("enrollments", "enrollment", "enrollments", "enrollment"),
    "events": ("events", "event", "events", "event"),
}


def _refused(version: Version, message: str) -> Answer:
    status = 400 if version >= (2, 40) else 409
    return status, {"httpStatusCode": status, "status": "ERROR", "message": message}


def tracker_list(store: Store, kind: str, params: Mapping[str, str], version: Version) -> Answer:
    """`GET /api/tracker/{kind}`: 2.36-2.40 take `trackedEntity=a;b` and `ouMode` and answer `instances`; 2.41
    also takes `trackedEntities=a,b` and `orgUnitMode` and answers `{kind}`; 2.42 only the latter."""
    attr, uid_field, plural, singular = TRACKER_LISTS[kind]
    raw = params.get(plural) if version >= (2, 41) else None
    wanted = raw.split(",") if raw else None
    if wanted is None and version < (2, 42) and params.get(singular):
        wanted = params[singular].split(";")
    mode = (params.get("orgUnitMode") if version >= (2, 41) else None) or (
        params.get("ouMode") if version < (2, 42) else None
    )
    units = (params.get("orgUnits") if version >= (2, 41) else None) or (
        params.get("orgUnit") if version < (2, 42) else None
    )
    if not mode and not units:
        return _refused(version, "At least one organisation unit must be specified")
    if kind == "trackedEntities" and not (params.get("trackedEntityType") or params.get("program")):
        return _refused(version, "Either Program or Tracked entity type should be specified")
    items = _select(store, attr, uid_field, wanted, params)
    key = kind if version >= (2, 41) else "instances"
    return 200, {key: _page(items, params, _paged(params, version))}


# kind -> (store attribute, UID field in the tracker importer's names, legacy UID field and parameter)
LEGACY_LISTS = {
    "trackedEntityInstances": ("tracked_entities", "trackedEntity", "trackedEntityInstance"),
    "enrollments": ("enrollments", "enrollment", "enrollment"),
    "events": ("events", "event", "event"),
}


def legacy_list(store: Store, kind: str, params: Mapping[str, str], version: Version) -> Answer:
    """`GET /api/{trackedEntityInstances,enrollments,events}` up to 2.41: UIDs as `trackedEntityInstance=a;b`."""
    if version >= (2, 42):
        return 404, {"httpStatusCode": 404, "status": "ERROR", "message": "Not Found"}
    attr, uid_field, legacy_field = LEGACY_LISTS[kind]
    if not params.get("ouMode") and not params.get("ou") and kind != "events":
        return _refused(version, "At least one organisation unit must be specified")
    if kind == "trackedEntityInstances" and not (params.get("trackedEntityType") or params.get("program")):
        return _refused(version, "Either Program or Tracked entity type should be specified")
    wanted = params[legacy_field].split(";") if params.get(legacy_field) else None
    items = [{legacy_field: i[uid_field]} for i in _select(store, attr, uid_field, wanted, params)]
    return 200, {kind: _page(items, params, _paged(params, version, legacy=True))}


def _select(
    store: Store, attr: str, uid_field: str, wanted: list[str] | None, params: Mapping[str, str]
) -> list[dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = getattr(store, attr)
    tet = params.get("trackedEntityType")
    with store.lock:
        uids = [u for u in (wanted if wanted is not None else sorted(objects)) if u in objects]
        if attr == "tracked_entities" and tet:
            uids = [u for u in uids if objects[u].get("trackedEntityType") == tet]
    return [{uid_field: u} for u in uids]
