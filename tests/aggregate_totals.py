"""Monthly totals computed straight from openIMIS FHIR resources, for checking what the mediator sent DHIS2: its
own tables and code are not used, only the definitions of docs/aggregates.md.

A total is keyed (data element code, org unit key, YYYYMM, {category code: option code}) -> value.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

Key = tuple[str, str, str, frozenset[tuple[str, str]]]
BOUNDS = (6, 13, 19, 26, 36, 56, 76)


def clean(code: str) -> str:
    return re.sub(r"[^a-zA-Z0-9*]", "_", code).upper()


def band(born: str, year: int, month: int) -> str:
    b_year, b_month = int(born[:4]), int(born[5:7])
    years = year - b_year - (1 if month < b_month else 0)
    low = 0
    for high in BOUNDS:
        if years < high:
            return f"P{low}Y_P{high - 1}Y"
        low = high
    return "P76Y_P9999Y"


def sex(gender: str | None) -> str:
    return {"male": "M", "female": "F"}.get(gender or "", "O")


def ref_id(reference: dict[str, Any] | None) -> str | None:
    if not reference:
        return None
    ident = reference.get("identifier") or {}
    if ident.get("value") and (ident.get("type") or {}).get("coding", [{}])[0].get("code") == "UUID":
        return str(ident["value"]).lower()
    text = reference.get("reference") or ""
    return text.rsplit("/", 1)[-1].lower() if "/" in text else None


def ext(resource: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension") or [] if str(e.get("url", "")).endswith(name)), None)


def months(first: str, last: str) -> list[tuple[int, int]]:
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while (y, m) <= (int(last[:4]), int(last[5:7])):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_end(y: int, m: int) -> str:
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1).isoformat()


def totals(resources: list[dict[str, Any]], received: str, now: str) -> dict[Key, Decimal]:
    """`received`: the month (YYYY-MM) the mediator first got the insurees and families; `now`: the current month."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in resources:
        by_type[r["resourceType"]].append(r)
    parent: dict[str, tuple[str, str | None]] = {}
    for loc in by_type["Location"]:
        kind = (loc.get("physicalType") or {}).get("coding", [{}])[0].get("code")
        parent[loc["id"].lower()] = (kind, ref_id(loc.get("partOf")))

    def ward(location: str | None) -> str | None:
        if location not in parent:
            return None
        kind, up = parent[location]
        return location if kind == "W" else (up if kind == "V" else None)

    out: dict[Key, Decimal] = defaultdict(Decimal)

    def add(element: str, unit: str, y: int, m: int, cats: dict[str, str], value: Decimal) -> None:
        out[(element, unit, f"{y:04d}{m:02d}", frozenset(cats.items()))] += value

    patients = {p["id"].lower(): p for p in by_type["Patient"]}

    def home(resource: dict[str, Any], address_key: str = "address") -> str | None:
        if address_key == "address":
            address = (resource.get("address") or [{}])[0]
        else:
            address = (ext(resource, "group-address") or {}).get("valueAddress") or {}
        return ref_id((ext(address, "address-location-reference") or {}).get("valueReference"))

    for p in patients.values():
        where = ward(home(p))
        if where is None or not p.get("birthDate"):
            continue
        for y, m in months(received, now):
            add(
                "NB_INSUREES",
                where,
                y,
                m,
                {"AGEGROUP": band(p["birthDate"], y, m), "SEX": sex(p.get("gender"))},
                Decimal(1),
            )
    contracts = by_type["Contract"]

    def subject(c: dict[str, Any]) -> str | None:
        return next((ref_id(s) for s in c.get("subject") or []), None)

    def asset(c: dict[str, Any]) -> dict[str, Any]:
        return c["term"][0]["asset"][0]

    def premiums(c: dict[str, Any]) -> list[tuple[str, Decimal]]:
        found = []
        for e in asset(c).get("extension") or []:
            if e["url"].endswith("contract-premium"):
                parts = {x["url"]: x for x in e["extension"]}
                found.append((parts["date"]["valueDate"], Decimal(str(parts["amount"]["valueMoney"]["value"]))))
        return found

    def product(c: dict[str, Any]) -> str:
        code = ((asset(c).get("valuedItem") or [{}])[0].get("entityReference") or {}).get("display")
        return clean(code) if code else "NONE"

    for g in by_type["Group"]:
        gid = g["id"].lower()
        where = ward(home(g, "group"))
        heads = [
            p
            for p in patients.values()
            if (ext(p, "patient-is-head") or {}).get("valueBoolean")
            and ref_id((ext(p, "patient-group-reference") or {}).get("valueReference")) == gid
        ]
        if where is None or not heads:
            continue
        head = heads[0]
        mine = [c for c in contracts if subject(c) == gid]
        for y, m in months(received, now):
            first, last = f"{y:04d}-{m:02d}-01", month_end(y, m)
            live = [
                c
                for c in mine
                if asset(c)["period"][0]["start"] <= last and asset(c)["period"][0].get("end", "9999") >= first
            ]
            policy = max(live, key=lambda c: asset(c)["period"][0]["start"], default=None)
            if policy is None:
                status = state = "NO_POLICY"
            else:
                paid = sum((a for d, a in premiums(policy) if d <= last), Decimal(0))
                value = Decimal(str(asset(policy)["valuedItem"][0]["net"]["value"]))
                status = "NOT_PAID" if paid == 0 else ("PAID" if paid >= value else "PARTIALY_PAID")
                state = {"Offered": "NEW", "Renewed": "RENEW"}.get(
                    str((policy.get("legalState") or {}).get("text")), "NO_POLICY"
                )
            cats = {
                "AGEGROUP": band(head["birthDate"], y, m),
                "SEX": sex(head.get("gender")),
                "PAYMENT_STATUS": status,
                "PAYMENT_STATE": state,
            }
            add("NB_FAMILY", where, y, m, cats, Decimal(1))
    groups = {g["id"].lower(): g for g in by_type["Group"]}
    for c in contracts:
        family = groups.get(subject(c) or "")
        where = ward(home(family, "group")) if family else None
        if where is None:
            continue
        for day, amount in premiums(c):
            add("SUM_CONTRIBUTIONS", where, int(day[:4]), int(day[5:7]), {"PRODUCT": product(c)}, amount)
    _claims(by_type, patients, contracts, product, add)
    return {k: v for k, v in out.items() if v != 0}


ORDER = ("1", "2", "4", "8", "16")
STATUS = {"16": "APPROVED", "1": "REJECTED", "4": "CHECKED", "8": "PROCESSED", "2": "ENTERED"}


def _claims(by_type: Any, patients: Any, contracts: Any, product: Any, add: Any) -> None:
    coverages = {}
    for cov in by_type["Coverage"]:
        key = next(i["value"] for i in cov["identifier"] if i["type"]["coding"][0]["code"] == "UUID").lower()
        plan = next((x.get("value") for x in cov.get("class") or [] if x["type"]["coding"][0]["code"] == "plan"), None)
        coverages[key] = clean(plan) if plan else "NONE"
    by_contract = {
        next(i["value"] for i in c["identifier"] if i["type"]["coding"][0]["code"] == "UUID").lower(): product(c)
        for c in contracts
    }
    reviews = {str(ref_id(r["request"])): r for r in by_type["ClaimResponse"]}
    for claim in by_type["Claim"]:
        cid = claim["id"].lower()
        patient = patients.get(ref_id(claim["patient"]) or "")
        when = (claim.get("billablePeriod") or {}).get("end") or (claim.get("billablePeriod") or {}).get("start")
        if patient is None or not when or not patient.get("birthDate"):
            continue
        y, m = int(when[:4]), int(when[5:7])
        facility = ref_id(claim.get("provider")) or ref_id(claim.get("facility"))
        policy = next((ref_id(i.get("coverage")) for i in claim.get("insurance") or []), None)
        prod = by_contract.get(policy or "") or coverages.get(policy or "") or "NONE"
        review: dict[str, Any] = reviews.get(cid) or {}
        lines = {it["itemSequence"]: it["adjudication"] for it in review.get("item") or []}
        reached = {t["category"]["coding"][0]["code"] for t in review.get("total") or []}
        reached |= {a["category"]["coding"][0]["code"] for adj in lines.values() for a in adj}
        if lines and all({a["category"]["coding"][0]["code"] for a in adj} == {"1"} for adj in lines.values()):
            status = "1"
        else:
            status = max([c for c in reached if c != "1"] or ["2"], key=int)
        attrs = {"ATT_PRODUCT": prod, "ATT_CLAIM_STATUS": STATUS[status]}
        visit = {"E": "EMERGENCY", "R": "REFERRALS"}.get(claim["type"]["coding"][0]["code"], "OTHER")
        who = {"SEX": sex(patient.get("gender")), "AGEGROUP": band(patient["birthDate"], y, m)}
        diagnosis = (claim.get("diagnosis") or [{}])[0].get("diagnosisCodeableConcept", {}).get("coding", [{}])[0]
        icd = clean(diagnosis["code"].split()[0]) if diagnosis.get("code") else "NONE"

        def cell(
            element: str, cats: dict[str, str], value: Decimal, at: Any = (facility, y, m), attrs: Any = attrs
        ) -> None:
            add(element, at[0], at[1], at[2], {**cats, **attrs}, value)

        cell("NB_CLAIM", {"CLAIM_TYPE": visit, **who}, Decimal(1))
        for item in claim.get("item") or []:
            adjudication = lines.get(item["sequence"]) or []
            cats_seen = {a["category"]["coding"][0]["code"] for a in adjudication}
            detail = (
                "APPROVED" if cats_seen & {"4", "8", "16"} else ("REJECTED" if "1" in cats_seen else "NOT_ASSESSED")
            )
            values = {
                a["category"]["coding"][0]["code"]: a.get("value") for a in adjudication if a.get("value") is not None
            }
            furthest = max(values, key=int) if values else None
            provided = Decimal(str(item["quantity"]["value"]))
            qty = Decimal(str(values[furthest])) if furthest else provided
            reference = (ext(item, "claim-item-reference") or {}).get("valueReference") or {}
            kind = "item" if "Medication" in str(reference.get("reference")) else "service"
            if not reference:
                kind = item["category"]["text"]
            if kind == "item":
                cell("NB_CLAIM_ITEM", {"CLAIM_DETAIL_STATUS": detail, "CLAIM_TYPE": visit, **who}, qty)
                continue
            cell("NB_CLAIM_SERVICE", {"CLAIM_DETAIL_STATUS": detail, "CLAIM_TYPE": visit, **who}, qty)
            cell("NB_CLAIM_SERVICE_ICD", {"CLAIM_DETAIL_STATUS": detail, "ICD": icd}, qty)
            valuated = next((a for a in adjudication if a["category"]["coding"][0]["code"] == "16"), None)
            if valuated is not None and valuated.get("amount"):
                amount = Decimal(str(valuated["amount"]["value"])) * Decimal(str(valuated.get("value", 1)))
                cell("SUM_VALUATED_SERVICE", {"CLAIM_DETAIL_STATUS": detail, "CLAIM_TYPE": visit, **who}, amount)
            price = Decimal(str(item["unitPrice"]["value"]))
            code = (item.get("productOrService") or {}).get("text") or "NONE"
            cell("SUM_ASKED_SERVICE", {"CLAIM_SERVICE": clean(code), **who}, price * provided)


def sent(store: Any, org_unit_keys: dict[str, str]) -> dict[Key, Decimal]:
    """What the fake DHIS2 holds, in the same keys: `org_unit_keys` maps org unit UIDs back to openIMIS keys."""
    elements = {uid: de["code"] for uid, de in store.data_elements.items() if de.get("domainType") == "AGGREGATE"}
    option_code = {uid: o.get("code") for uid, o in store.category_options.items()}

    def named(coc_uid: str) -> dict[str, str]:
        # The fake lists an option combo's options in the order of its combo's categories.
        coc = store.category_option_combos[coc_uid]
        combo = store.category_combos[coc["categoryCombo"]["id"]]
        found = {}
        for ref, option in zip(combo["categories"], coc["categoryOptions"], strict=True):
            category = store.categories[ref["id"]]
            if category.get("code") is not None:  # not the default category
                found[category["code"]] = option_code[option["id"]]
        return found

    out: dict[Key, Decimal] = {}
    for (de, period, ou, coc, aoc), value in store.data_values.items():
        key = (elements[de], org_unit_keys[ou], period, frozenset({**named(coc), **named(aoc)}.items()))
        out[key] = Decimal(value)
    return out
