"""The data value importer (`POST /api/dataValueSets`): JSON with UIDs, or ADX XML with codes, and its import
summary in every supported DHIS2 version (bare before 2.38, in a WebMessage after; 409 on conflicts from 2.38)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Rejected

ADX_NAMESPACE = "urn:ihe:qrph:adx:2015"


@dataclass(frozen=True)
class Conflict:
    object: str
    message: str
    code: str = ""
    index: int | None = None  # the data value it is about, when DHIS2 says


@dataclass
class ImportSummary:
    status: str  # SUCCESS/OK, WARNING, ERROR
    counts: dict[str, int] = field(default_factory=dict)  # imported, updated, ignored, deleted
    conflicts: list[Conflict] = field(default_factory=list)
    description: str = ""


def parse_summary(body: Any) -> ImportSummary:
    """Read an ImportSummary, bare (before 2.38) or the `response` of a WebMessage."""
    if isinstance(body, dict) and "importCount" not in body and isinstance(body.get("response"), dict):
        body = body["response"]
    if not isinstance(body, dict) or "status" not in body:
        raise Dhis2Rejected("DHIS2 answered the data value import without an import summary")
    conflicts = []
    for c in body.get("conflicts") or []:
        if not isinstance(c, dict):
            continue
        indexes = c.get("indexes") or []
        conflicts.append(
            Conflict(
                str(c.get("object") or ""),
                str(c.get("value") or ""),
                str(c.get("errorCode") or ""),
                int(indexes[0]) if indexes and isinstance(indexes[0], int) else None,
            )
        )
    counts = {k: int(v) for k, v in (body.get("importCount") or {}).items() if isinstance(v, int)}
    return ImportSummary(str(body["status"]), counts, conflicts, str(body.get("description") or ""))


@dataclass(frozen=True)
class Value:
    """One data value, by UIDs (JSON) and by codes (ADX)."""

    data_element: str  # UID
    period: str  # YYYYMM
    org_unit: str  # UID
    category_option_combo: str  # UID
    attribute_option_combo: str  # UID
    value: str
    element_code: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (category code, option code)
    attributes: tuple[tuple[str, str], ...] = ()


def as_json(values: Iterable[Value], data_set: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "dataValues": [
            {
                "dataElement": v.data_element,
                "period": v.period,
                "orgUnit": v.org_unit,
                "categoryOptionCombo": v.category_option_combo,
                "attributeOptionCombo": v.attribute_option_combo,
                "value": v.value,
            }
            for v in values
        ]
    }
    if data_set:
        doc["dataSet"] = data_set
    return doc


def iso_period(period: str) -> str:
    """ADX writes a month as an ISO 8601 interval: 2024-05-01/P1M."""
    return f"{period[:4]}-{period[4:6]}-01/P1M"


def as_adx(data_set_code: str, values: Sequence[Value]) -> bytes:
    """ADX 1.0: one group per org unit, period and attribute options, its values named by codes."""
    root = ElementTree.Element("adx", {"xmlns": ADX_NAMESPACE})
    groups: dict[tuple[str, str, tuple[tuple[str, str], ...]], ElementTree.Element] = {}
    for v in values:
        where = (v.org_unit, v.period, v.attributes)
        group = groups.get(where)
        if group is None:
            attrs = {"orgUnit": v.org_unit, "period": iso_period(v.period), "dataSet": data_set_code}
            attrs.update(dict(v.attributes))
            group = groups[where] = ElementTree.SubElement(root, "group", attrs)
        ElementTree.SubElement(group, "dataValue", {"dataElement": v.element_code, **dict(v.options), "value": v.value})
    return bytes(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))


def send(
    client: Dhis2Client, values: Sequence[Value], *, strategy: str, adx_data_set: str | None = None, data_set: str = ""
) -> ImportSummary:
    """Import (CREATE_AND_UPDATE) or delete (DELETE) data values; returns DHIS2's summary.

    A 409 carries the summary of what conflicted (2.38+); any other 4xx refuses the whole request."""
    params = {"importStrategy": strategy}
    if adx_data_set is not None:
        params |= {"orgUnitIdScheme": "UID", "dataElementIdScheme": "CODE", "dataSetIdScheme": "CODE"}
        status, body = client.request_raw(
            "POST", "/api/dataValueSets", params, as_adx(adx_data_set, values), "application/adx+xml"
        )
    else:
        status, body = client.request("POST", "/api/dataValueSets", params=params, body=as_json(values, data_set))
    if status in (200, 201, 409):
        return parse_summary(body)
    message = body.get("message") if isinstance(body, dict) else str(body)[:300]
    raise Dhis2Rejected(f"DHIS2 refused the data values ({status}): {message}", status)
