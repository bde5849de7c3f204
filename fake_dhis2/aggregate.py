"""Aggregate data in the fake: category option combos (made by the maintenance task, as DHIS2 makes them for a
combo imported through the metadata API), and `POST /api/dataValueSets` in JSON and ADX, with DHIS2's conflicts.

What it refuses, value by value (the rest of the request goes in): an unknown data element, org unit, period,
category option combo or attribute option combo; an option combo not of the data element's combo, an attribute
combo not of a data set holding the data element; an org unit the data set is not assigned to; a value that is not
a number. Before 2.38 the summary comes bare with 200; from 2.38 in a WebMessage, 409 when anything conflicted.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

from fake_dhis2.store import DEFAULT_COMBO, DEFAULT_OPTION_COMBO, Store

MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")
ISO_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])-01/P1M$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
ADX = "{urn:ihe:qrph:adx:2015}"


def _uid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return "c" + "".join(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[int(digest[i : i + 2], 16) % 62]
        for i in range(0, 20, 2)
    )


def update_option_combos(store: Store) -> int:
    """The maintenance task: every combination of every combo's categories' options gets its option combo."""
    made = 0
    with store.lock:
        have = {
            ((c.get("categoryCombo") or {}).get("id"), frozenset(o["id"] for o in c.get("categoryOptions") or []))
            for c in store.category_option_combos.values()
        }
        for combo in store.category_combos.values():
            cats = [store.categories.get(r["id"]) or {} for r in combo.get("categories") or []]
            lists = [[o["id"] for o in c.get("categoryOptions") or []] for c in cats]
            for chosen in itertools.product(*lists):
                key = (combo["id"], frozenset(chosen))
                if key in have:
                    continue
                uid = _uid(f"{combo['id']}:{','.join(sorted(chosen))}")
                store.category_option_combos[uid] = {
                    "id": uid,
                    "name": ", ".join(chosen),
                    "categoryCombo": {"id": combo["id"]},
                    "categoryOptions": [{"id": o} for o in chosen],
                }
                have.add(key)
                made += 1
    return made


def option_combos(store: Store, params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /api/categoryOptionCombos?filter=categoryCombo.id:in:[...]` with their combo and options."""
    match = re.match(r"^categoryCombo\.id:in:\[(.*)\]$", params.get("filter", ""))
    wanted = set(match[1].split(",")) if match else None
    with store.lock:
        found = [
            {
                "id": c["id"],
                "categoryCombo": {"id": (c.get("categoryCombo") or {}).get("id")},
                "categoryOptions": [{"id": o["id"]} for o in c.get("categoryOptions") or []],
            }
            for c in store.category_option_combos.values()
            if wanted is None or (c.get("categoryCombo") or {}).get("id") in wanted
        ]
    return {"categoryOptionCombos": found}


def _combo_of(store: Store, coc: str) -> str | None:
    found = store.category_option_combos.get(coc)
    return (found.get("categoryCombo") or {}).get("id") if found else None


def _sets_of(store: Store, element: str) -> list[dict[str, Any]]:
    return [
        s
        for s in store.data_sets.values()
        if any((d.get("dataElement") or {}).get("id") == element for d in s.get("dataSetElements") or [])
    ]


def _check(store: Store, value: dict[str, Any], data_set: str | None) -> tuple[str, str, str] | None:
    """(object, message, error code) of the first thing DHIS2 refuses in a data value, or None."""
    element = store.data_elements.get(str(value.get("dataElement")))
    if element is None or element.get("domainType") != "AGGREGATE":
        return (
            str(value.get("dataElement")),
            f"Data element not found or not accessible: `{value.get('dataElement')}`",
            "E7610",
        )
    period = str(value.get("period") or "")
    if not MONTH.match(period):
        return period, f"Period not valid: `{period}`", "E7611"
    org_unit = str(value.get("orgUnit"))
    if org_unit not in store.org_units:
        return org_unit, f"Organisation unit not found or not accessible: `{org_unit}`", "E7612"
    coc = str(value.get("categoryOptionCombo") or DEFAULT_OPTION_COMBO)
    if coc not in store.category_option_combos:
        return coc, f"Category option combo not found or not accessible for writing data: `{coc}`", "E7613"
    wanted_combo = (element.get("categoryCombo") or {}).get("id") or DEFAULT_COMBO
    if _combo_of(store, coc) != wanted_combo:
        message = f"Category option combo: `{coc}` must be part of category combo of data element: `{element['id']}`"
        return coc, message, "E7614"
    aoc = str(value.get("attributeOptionCombo") or DEFAULT_OPTION_COMBO)
    sets = _sets_of(store, element["id"])
    if aoc not in store.category_option_combos:
        return aoc, f"Attribute option combo not found or not accessible for writing data: `{aoc}`", "E7615"
    if not any(_combo_of(store, aoc) == ((s.get("categoryCombo") or {}).get("id") or DEFAULT_COMBO) for s in sets):
        message = (
            f"Attribute option combo: `{aoc}` must be part of category combo of data sets of data element: "
            f"`{element['id']}`"
        )
        return aoc, message, "E7616"
    chosen = [s for s in sets if data_set is None or s["id"] == data_set]
    if not any(org_unit in {o.get("id") for o in s.get("organisationUnits") or []} for s in chosen):
        return (
            org_unit,
            f"Data element: `{element['id']}` is not assigned to organisation unit `{org_unit}` through a data set",
            "E7617",
        )
    if not NUMBER.match(str(value.get("value") if value.get("value") is not None else "")):
        return (
            str(value.get("value")),
            f"Value must match data element's `{element['id']}` type constraints: NUMBER",
            "E7619",
        )
    return None


def import_values(store: Store, values: list[dict[str, Any]], strategy: str, data_set: str | None) -> dict[str, Any]:
    """Import or delete data values; returns the ImportSummary."""
    counts = {"imported": 0, "updated": 0, "ignored": 0, "deleted": 0}
    conflicts: list[dict[str, Any]] = []
    with store.lock:
        for index, value in enumerate(values):
            problem = _check(store, value, data_set)
            if problem is not None:
                counts["ignored"] += 1
                conflicts.append(
                    {"object": problem[0], "value": problem[1], "errorCode": problem[2], "indexes": [index]}
                )
                continue
            key = (
                str(value["dataElement"]),
                str(value["period"]),
                str(value["orgUnit"]),
                str(value.get("categoryOptionCombo") or DEFAULT_OPTION_COMBO),
                str(value.get("attributeOptionCombo") or DEFAULT_OPTION_COMBO),
            )
            if strategy == "DELETE":
                if store.data_values.pop(key, None) is None:
                    counts["ignored"] += 1
                else:
                    counts["deleted"] += 1
                continue
            counts["updated" if key in store.data_values else "imported"] += 1
            store.data_values[key] = str(value["value"])
    done = counts["imported"] + counts["updated"] + counts["deleted"]
    status = "SUCCESS" if not conflicts else ("WARNING" if done else "ERROR")
    return {"responseType": "ImportSummary", "status": status, "importCount": counts, "conflicts": conflicts}


class AdxRefused(ValueError):
    """An ADX message DHIS2 refuses whole (not XML, or not ADX)."""


def adx_values(store: Store, body: bytes, params: Mapping[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """ADX groups into data values: data set, data elements and options by code, org units by the scheme asked."""
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - a test double reading what the mediator under test sent
    except ElementTree.ParseError as exc:
        raise AdxRefused(f"Invalid ADX: {exc}") from exc
    if root.tag != f"{ADX}adx":
        raise AdxRefused("Invalid ADX: the root element must be adx in namespace urn:ihe:qrph:adx:2015")
    with store.lock:
        by_code: dict[str, dict[str, Any]] = {
            "dataSets": {str(o["code"]): o for o in store.data_sets.values() if o.get("code")},
            "dataElements": {str(o["code"]): o for o in store.data_elements.values() if o.get("code")},
            "categories": {str(o["code"]): o for o in store.categories.values() if o.get("code")},
            "options": {str(o["code"]): o for o in store.category_options.values() if o.get("code")},
            "orgUnits": {str(o["code"]): o for o in store.org_units.values() if o.get("code")},
        }
        values: list[dict[str, Any]] = []
        data_set_uid = None
        for group in root.findall(f"{ADX}group"):
            attrs = dict(group.attrib)
            data_set = by_code["dataSets"].get(attrs.pop("dataSet", ""))
            if data_set is None:
                raise AdxRefused("Data set not found or not accessible")
            data_set_uid = data_set["id"]
            match = ISO_MONTH.match(attrs.pop("period", ""))
            period = f"{match[1]}{match[2]}" if match else "invalid"
            org = attrs.pop("orgUnit", "")
            if params.get("orgUnitIdScheme", "UID").upper() == "CODE":
                org = (by_code["orgUnits"].get(org) or {}).get("id", org)
            attrs.pop("completeDate", None)
            aoc = _combo_for(store, by_code, (data_set.get("categoryCombo") or {}).get("id") or DEFAULT_COMBO, attrs)
            for dv in group.findall(f"{ADX}dataValue"):
                dattrs = dict(dv.attrib)
                element = by_code["dataElements"].get(dattrs.pop("dataElement", "")) or {}
                value = dattrs.pop("value", None)
                combo = (element.get("categoryCombo") or {}).get("id") or DEFAULT_COMBO
                values.append(
                    {
                        "dataElement": element.get("id", "unknown"),
                        "period": period,
                        "orgUnit": org,
                        "categoryOptionCombo": _combo_for(store, by_code, combo, dattrs),
                        "attributeOptionCombo": aoc,
                        "value": value,
                    }
                )
    return values, data_set_uid


def _combo_for(store: Store, by_code: dict[str, dict[str, Any]], combo: str, attrs: dict[str, str]) -> str:
    """The option combo of `combo` the ADX attributes name (category code = option code), or "unknown"."""
    if combo == DEFAULT_COMBO:
        return DEFAULT_OPTION_COMBO
    wanted = set()
    for ref in (store.category_combos.get(combo) or {}).get("categories") or []:
        category = store.categories.get(ref["id"]) or {}
        option = by_code["options"].get(attrs.get(str(category.get("code")), ""))
        if option is None:
            return "unknown"
        wanted.add(option["id"])
    for coc in store.category_option_combos.values():
        if (coc.get("categoryCombo") or {}).get("id") == combo and {o["id"] for o in coc["categoryOptions"]} == wanted:
            return str(coc["id"])
    return "unknown"
