"""The DHIS2 metadata of the monthly data sets: category options, categories, category combos, data elements and
data sets, with openIMIS's module's codes and UIDs. A pure function of the code lists and org units known."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mediator.aggregates import cubes
from mediator.aggregates.cubes import Category, Options


def categories() -> list[Category]:
    """Every category of the two data sets, once each."""
    seen: dict[str, Category] = {}
    for data_set in cubes.DATA_SETS.values():
        for category in (*data_set.attributes, *(c for e in data_set.elements for c in e.categories)):
            seen.setdefault(category.uid, category)
    return list(seen.values())


def _option(code: str, name: str) -> dict[str, Any]:
    label = name if name.startswith(code) else f"{code}-{name}"
    return {
        "id": cubes.option_uid(code),
        "code": cubes.clean_code(code),
        "name": label[:230],
        "shortName": label[:50],
    }


def payload(
    options: Options, org_units: Mapping[str, Iterable[str]], existing: Mapping[str, Iterable[str]] | None = None
) -> dict[str, Any]:
    """The metadata to import. `org_units` are the org unit UIDs each data set is for (by its code); `existing`
    are what DHIS2 already lists for a category (its options) or a data set (its org units), kept."""
    existing = existing or {}
    made_options: dict[str, dict[str, Any]] = {}
    made_categories = []
    for category in categories():
        listed = options.of(category)
        for code, name in listed:
            made_options.setdefault(cubes.option_uid(code), _option(code, name))
        ids = list(dict.fromkeys([*(cubes.option_uid(code) for code, _ in listed), *existing.get(category.uid, ())]))
        prefix = "ATT:" if category.attribute else ""
        made_categories.append(
            {
                "id": category.uid,
                "code": category.code,
                "name": ("ATT:" if category.attribute else "DAG:") + category.name,
                "shortName": prefix + category.name,
                "dataDimensionType": "ATTRIBUTE" if category.attribute else "DISAGGREGATION",
                "dataDimension": False,
                "categoryOptions": [{"id": i} for i in ids],
            }
        )
    combos: dict[str, dict[str, Any]] = {}
    elements, data_sets = [], []
    for data_set in cubes.DATA_SETS.values():
        for element in data_set.elements:
            if element.combo_uid is not None:
                combos.setdefault(
                    element.combo_uid,
                    {
                        "id": element.combo_uid,
                        "name": "DAG:" + element.combo_name,
                        "dataDimensionType": "DISAGGREGATION",
                        "categories": [{"id": c.uid} for c in element.categories],
                    },
                )
            made: dict[str, Any] = {
                "id": element.uid,
                "code": element.code,
                "name": element.code,
                "shortName": element.code,
                "description": element.sums,
                "aggregationType": "SUM",
                "domainType": "AGGREGATE",
                "valueType": "NUMBER",
            }
            if element.combo_uid is not None:
                made["categoryCombo"] = {"id": element.combo_uid}
            elements.append(made)
        if data_set.combo_uid is not None:
            combos[data_set.combo_uid] = {
                "id": data_set.combo_uid,
                "name": "ATT:" + data_set.combo_name.replace("ATT:", ""),
                "dataDimensionType": "ATTRIBUTE",
                "categories": [{"id": c.uid} for c in data_set.attributes],
            }
        units = list(dict.fromkeys([*org_units.get(data_set.code, ()), *existing.get(data_set.uid, ())]))
        made_set: dict[str, Any] = {
            "id": data_set.uid,
            "code": data_set.code,
            "name": data_set.code,
            "shortName": data_set.code,
            "periodType": "Monthly",
            "dataSetElements": [
                {"dataElement": {"id": e.uid}, "dataSet": {"id": data_set.uid}} for e in data_set.elements
            ],
            "organisationUnits": [{"id": u} for u in units],
        }
        if data_set.combo_uid is not None:
            made_set["categoryCombo"] = {"id": data_set.combo_uid}
        data_sets.append(made_set)
    return {
        "categoryOptions": list(made_options.values()),
        "categories": made_categories,
        "categoryCombos": list(combos.values()),
        "dataElements": elements,
        "dataSets": data_sets,
    }
