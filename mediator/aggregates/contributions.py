"""Each root record's contribution to the cells of the monthly data sets: pure functions of the facts.

A contribution adds a value to one cell (data set, org unit, data element, options, attributes) for a run of months.
Flows (a claim, a premium) count in one month; stocks (an insuree, a family) count in every month from the one the
mediator first received them, and change where the age band or the policy in force changes.

Where the module's definitions are ambiguous or wrong, these follow the corrected meaning (docs/aggregates.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from mediator.aggregates import cubes

Month = int  # year * 12 + month - 1


def parse_month(text: str) -> Month:
    year, mon = text[:7].split("-")
    return int(year) * 12 + int(mon) - 1


def month_text(m: Month) -> str:
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def last_day(m: Month) -> date:
    year, mon = (m + 1) // 12, (m + 1) % 12 + 1
    return date.fromordinal(date(year, mon, 1).toordinal() - 1)


@dataclass(frozen=True)
class Contribution:
    data_set: str
    org_unit: str  # the openIMIS key of the ward or health facility
    element: str
    options: tuple[str, ...]  # option codes, in the order of the element's categories
    attributes: tuple[str, ...]  # option codes of the data set's attribute categories
    first: Month
    last: Month | None  # None: every month from `first` on
    value: Decimal


class Facts(Protocol):
    def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def referring(self, kind: str, label: str) -> list[tuple[str, dict[str, Any]]]: ...


def of_root(kind: str, key: str, facts: Facts) -> tuple[list[Contribution], str | None]:
    """A root record's contributions, or none and why it cannot be placed yet."""
    own = facts.get(kind, key)
    if own is None:
        return [], None
    return ROOTS[kind](key, own, facts)


def ward(village: str | None, facts: Facts) -> str | None:
    """The ward (municipality) a village belongs to, as openIMIS's module places enrolment."""
    area = facts.get("Location", village) if village else None
    if area is None:
        return None
    if area.get("level") == "W":
        return village
    return area.get("parent") if area.get("level") == "V" else None


def age(born: str, m: Month) -> int:
    """Completed years on the month's last day: the birthday in the birth month is past by then."""
    return (m - parse_month(born)) // 12


def band_changes(born: str | None) -> list[Month]:
    if not born:
        return []
    b = parse_month(born)
    return [b + 12 * years for years in cubes.AGE_BOUNDARIES]


def sex(code: str | None) -> str:
    return code if code in ("M", "F") else "O"


def _pieces(
    first: Month, changes: Iterable[Month], state: Callable[[Month], tuple[Any, ...] | None]
) -> list[tuple[Month, Month | None, tuple[Any, ...]]]:
    """Runs of months from `first` on with the same state, evaluated only where something may change."""
    points = sorted({first, *(c for c in changes if c > first)})
    runs: list[tuple[Month, Month | None, tuple[Any, ...] | None]] = []
    for m in points:
        now = state(m)
        if runs and runs[-1][2] == now:
            continue
        if runs:
            runs[-1] = (runs[-1][0], m - 1, runs[-1][2])
        runs.append((m, None, now))
    return [(a, b, s) for a, b, s in runs if s is not None]


def insuree(key: str, own: dict[str, Any], facts: Facts) -> tuple[list[Contribution], str | None]:
    place = ward(own.get("village"), facts)
    if place is None:
        return [], f"the ward of village {own.get('village')} is not known yet"
    born = own.get("born")
    if not born:
        return [], "no birth date"
    first = parse_month(own["since"])
    runs = _pieces(first, band_changes(born), lambda m: (cubes.age_band(age(born, m)), sex(own.get("sex"))))
    return [
        Contribution("ENROLMENT", place, "NB_INSUREES", options, (), a, b, Decimal(1)) for a, b, options in runs
    ], None


def in_force(policy: dict[str, Any], m: Month) -> bool:
    """A policy counts in a month it covers at least a day of (the module's test, `expiry before the month's end`,
    counted expired policies instead)."""
    start, expiry = policy.get("start"), policy.get("expiry")
    if not start or parse_month(start) > m:
        return False
    return expiry is None or parse_month(expiry) >= m


def payment(policy: dict[str, Any] | None, m: Month) -> tuple[str, str]:
    """(payment status, stage) of a family's policy in a month: paid when what was paid by the month's end covers
    the policy's value."""
    if policy is None:
        return "NO_POLICY", "NO_POLICY"
    end = last_day(m).isoformat()
    paid = sum((Decimal(amount) for day, amount in policy.get("premiums") or [] if day <= end), Decimal(0))
    value = Decimal(policy["value"]) if policy.get("value") is not None else None
    if paid == 0:
        status = "NOT_PAID"
    elif value is None or paid >= value:
        status = "PAID"
    else:
        status = "PARTIALY_PAID"
    stage = {"N": "NEW", "R": "RENEW"}.get(policy.get("stage") or "", "NO_POLICY")
    return status, stage


def family(key: str, own: dict[str, Any], facts: Facts) -> tuple[list[Contribution], str | None]:
    place = ward(own.get("village"), facts)
    if place is None:
        return [], f"the ward of village {own.get('village')} is not known yet"
    heads = [f for _, f in facts.referring("Patient", f"Group/{key}") if f.get("head") and f.get("family") == key]
    if not heads or not heads[0].get("born"):
        return [], "its head is not known yet"
    head = heads[0]
    policies = [p for _, p in facts.referring("Contract", f"Group/{key}") if p.get("family") == key]
    changes = band_changes(head["born"])
    for p in policies:
        if p.get("start"):
            changes.append(parse_month(p["start"]))
        if p.get("expiry"):
            changes.append(parse_month(p["expiry"]) + 1)
        changes += [parse_month(day) for day, _ in p.get("premiums") or []]

    def state(m: Month) -> tuple[str, ...]:
        current = max((p for p in policies if in_force(p, m)), key=lambda p: p["start"], default=None)
        return (cubes.age_band(age(head["born"], m)), sex(head.get("sex")), *payment(current, m))

    runs = _pieces(parse_month(own["since"]), changes, state)
    return [Contribution("ENROLMENT", place, "NB_FAMILY", s, (), a, b, Decimal(1)) for a, b, s in runs], None


def product_option(code: str | None) -> str:
    return cubes.clean_code(code) if code else "NONE"


def contract(key: str, own: dict[str, Any], facts: Facts) -> tuple[list[Contribution], str | None]:
    home = facts.get("Group", own["family"]) if own.get("family") else None
    place = ward(home.get("village"), facts) if home else None
    if place is None:
        return [], "the family or its ward is not known yet"
    product = product_option(own.get("product"))
    found = []
    for day, amount in own.get("premiums") or []:
        m = parse_month(day)
        found.append(Contribution("ENROLMENT", place, "SUM_CONTRIBUTIONS", (product,), (), m, m, Decimal(amount)))
    return found, None


CLAIM_STATUS = {"16": "APPROVED", "1": "REJECTED", "4": "CHECKED", "8": "PROCESSED"}
VISIT = {"E": "EMERGENCY", "R": "REFERRALS"}


def claim(key: str, own: dict[str, Any], facts: Facts) -> tuple[list[Contribution], str | None]:
    patient = facts.get("Patient", own["patient"]) if own.get("patient") else None
    if patient is None or not patient.get("born"):
        return [], "its insuree is not known yet"
    if not own.get("month"):
        return [], "no date"
    m = parse_month(own["month"])
    policy = own.get("policy")
    product = None
    if policy:
        product = (facts.get("Contract", policy) or {}).get("product") or (facts.get("Coverage", policy) or {}).get(
            "product"
        )
    reviews = [r for _, r in facts.referring("ClaimResponse", f"Claim/{key}") if r.get("claim") == key]
    review = reviews[0] if reviews else {}
    attributes = (product_option(product), CLAIM_STATUS.get(review.get("status") or "", "ENTERED"))
    kind = VISIT.get(own.get("visit") or "", "OTHER")
    who = (sex(patient.get("sex")), cubes.age_band(age(patient["born"], m)))
    icd = cubes.clean_code(own["icd"]) if own.get("icd") else "NONE"

    def cell(element: str, options: tuple[str, ...], value: Decimal) -> Contribution:
        return Contribution("PROCESSED_CLAIM", own["facility"], element, options, attributes, m, m, value)

    found = [cell("NB_CLAIM", (kind, *who), Decimal(1))]
    judged = review.get("lines") or {}
    for sequence, line_kind, code, quantity, price in own.get("lines") or []:
        detail, approved, valuated = judged.get(str(sequence)) or ["NOT_ASSESSED", None, None]
        provided = Decimal(quantity) if quantity is not None else None
        qty = Decimal(approved) if approved is not None else provided
        if line_kind == "item":
            if qty is not None:
                found.append(cell("NB_CLAIM_ITEM", (detail, kind, *who), qty))
            continue
        if provided is None or provided < 0:
            continue  # the module counts services with a quantity provided only
        if qty is not None:
            found.append(cell("NB_CLAIM_SERVICE", (detail, kind, *who), qty))
            found.append(cell("NB_CLAIM_SERVICE_ICD", (detail, icd), qty))
        if valuated is not None:
            found.append(cell("SUM_VALUATED_SERVICE", (detail, kind, *who), Decimal(valuated)))
        if price is not None and Decimal(price) >= 0:
            service = cubes.clean_code(code) if code else "NONE"
            found.append(cell("SUM_ASKED_SERVICE", (service, *who), Decimal(price) * provided))
    return found, None


def reads(
    kind: str, key: str, own: dict[str, Any], known: Mapping[tuple[str, str], dict[str, Any] | None]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """What a root's contribution reads besides its own facts, as far as `known` tells: (records by kind and key,
    (kind, label) of the records that refer to it). The journal fetches them in bulk; reading them one by one gives
    the same contributions."""
    pairs: list[tuple[str, str]] = []
    referring: list[tuple[str, str]] = []
    if kind in ("Patient", "Group") and own.get("village"):
        pairs.append(("Location", own["village"]))
    if kind == "Group":
        referring += [("Patient", f"Group/{key}"), ("Contract", f"Group/{key}")]
    if kind == "Contract" and own.get("family"):
        pairs.append(("Group", own["family"]))
        home = known.get(("Group", own["family"]))
        if home and home.get("village"):
            pairs.append(("Location", home["village"]))
    if kind == "Claim":
        pairs += [("Patient", own.get("patient") or ""), ("Contract", own.get("policy") or "")]
        pairs.append(("Coverage", own.get("policy") or ""))
        referring.append(("ClaimResponse", f"Claim/{key}"))
    return pairs, referring


ROOTS: dict[str, Callable[[str, dict[str, Any], Facts], tuple[list[Contribution], str | None]]] = {
    "Patient": insuree,
    "Group": family,
    "Contract": contract,
    "Claim": claim,
}
