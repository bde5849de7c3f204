"""Each root record's contributions, from facts alone: age bands on the month's last day, the policy in force, what
was paid by the month's end, a claim's status, lines and amounts, and what cannot be placed yet."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mediator.aggregates import cubes
from mediator.aggregates.contributions import Contribution, age, of_root, parse_month
from mediator.aggregates.facts import of

WARD, VILLAGE, FACILITY = "ward-1", "village-1", "hf-1"


class Facts:
    def __init__(self, **records: dict[str, Any]) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        for name, facts in records.items():
            kind, key = name.split("__")
            self.records[(kind, key)] = facts

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.records.get((kind, key))

    def referring(self, kind: str, label: str) -> list[tuple[str, dict[str, Any]]]:
        target_kind, target = label.split("/", 1)
        field = {"Group": "family", "Claim": "claim"}[target_kind]
        return sorted((k, f) for (c, k), f in self.records.items() if c == kind and f.get(field) == target)


PLACES = {
    "Location__ward-1": {"level": "W", "parent": "district", "since": "2024-01"},
    "Location__village-1": {"level": "V", "parent": WARD, "since": "2024-01"},
}


def insuree(born: str = "1990-05", since: str = "2024-01", **more: Any) -> dict[str, Any]:
    return {"village": VILLAGE, "family": "fam", "head": True, "sex": "F", "born": born, "since": since, **more}


def cells(found: list[Contribution], month: str) -> dict[tuple[str, tuple[str, ...], tuple[str, ...]], Decimal]:
    m = parse_month(month)
    out: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Decimal] = {}
    for c in found:
        if c.first <= m and (c.last is None or c.last >= m):
            key = (c.element, c.options, c.attributes)
            out[key] = out.get(key, Decimal(0)) + c.value
    return out


def test_the_age_band_changes_in_the_month_of_the_birthday_that_crosses_it():
    facts = Facts(**PLACES, Patient__p=insuree(born="2018-06"))  # six years old in June 2024
    found, why = of_root("Patient", "p", facts)
    assert why is None
    assert cells(found, "2024-05") == {("NB_INSUREES", ("P0Y-P5Y", "F"), ()): 1}
    assert cells(found, "2024-06") == {("NB_INSUREES", ("P6Y-P12Y", "F"), ()): 1}
    assert cells(found, "2023-12") == {}  # before the mediator received the insuree
    assert cells(found, "2094-06") == {("NB_INSUREES", ("P76Y-P9999Y", "F"), ()): 1}
    assert all(c.org_unit == WARD for c in found)


def test_76_exactly_is_in_the_last_band_which_the_module_left_out():
    assert age("1948-03", parse_month("2024-03")) == 76
    assert cubes.age_band(76) == "P76Y-P9999Y" and cubes.age_band(75) == "P56Y-P75Y"


def test_sex_other_than_male_or_female_is_other():
    facts = Facts(**PLACES, Patient__p=insuree(sex=None))
    found, _ = of_root("Patient", "p", facts)
    assert {c.options[1] for c in found} == {"O"}


def test_an_insuree_whose_ward_is_unknown_waits_with_a_reason():
    found, why = of_root("Patient", "p", Facts(Patient__p=insuree()))
    assert found == [] and why == "the ward of village village-1 is not known yet"


def policy(start: str, expiry: str, value: str, paid: list[tuple[str, str]], stage: str = "N") -> dict[str, Any]:
    return {
        "family": "fam",
        "product": "BCUL0001",
        "value": value,
        "stage": stage,
        "start": start,
        "expiry": expiry,
        "premiums": [list(p) for p in paid],
    }


def family_cells(month: str, **policies: dict[str, Any]) -> dict[Any, Decimal]:
    facts = Facts(
        **PLACES,
        Group__fam={"village": VILLAGE, "since": "2024-01"},
        Patient__head=insuree(),
        **{f"Contract__{k}": v for k, v in policies.items()},
    )
    found, why = of_root("Group", "fam", facts)
    assert why is None
    return cells(found, month)


@pytest.mark.parametrize(
    ("month", "status", "stage"),
    [
        ("2024-02", "NO_POLICY", "NO_POLICY"),  # before the policy starts
        ("2024-03", "PARTIALY_PAID", "NEW"),  # 400 of 1000 paid by the end of March
        ("2024-04", "PAID", "NEW"),  # the rest paid in April
        ("2025-03", "PAID", "NEW"),  # the month it expires still counts
        ("2025-04", "NO_POLICY", "NO_POLICY"),
    ],
)
def test_a_family_counts_by_its_policy_in_force_and_what_was_paid_by_the_month_end(month, status, stage):
    one = policy("2024-03-10", "2025-03-09", "1000", [("2024-03-10", "400"), ("2024-04-30", "600")])
    found = family_cells(month, one=one)
    assert found == {("NB_FAMILY", ("P26Y-P35Y", "F", status, stage), ()): 1}


def test_a_family_with_no_premium_is_not_paid_and_with_two_policies_counts_once_by_the_latest():
    older = policy("2023-06-01", "2024-05-31", "1000", [("2023-06-01", "1000")])
    renewed = policy("2024-05-01", "2025-04-30", "1000", [], stage="R")
    found = family_cells("2024-05", older=older, renewed=renewed)
    assert found == {("NB_FAMILY", ("P26Y-P35Y", "F", "NOT_PAID", "RENEW"), ()): 1}


def test_a_family_without_a_known_head_waits():
    facts = Facts(**PLACES, Group__fam={"village": VILLAGE, "since": "2024-01"})
    assert of_root("Group", "fam", facts) == ([], "its head is not known yet")


def test_contributions_count_in_the_month_paid_by_product_in_the_family_ward():
    facts = Facts(
        **PLACES,
        Group__fam={"village": VILLAGE, "since": "2024-01"},
        Contract__c=policy("2024-03-10", "2025-03-09", "1000", [("2024-03-10", "400"), ("2024-04-30", "600.50")]),
    )
    found, _ = of_root("Contract", "c", facts)
    assert cells(found, "2024-04") == {("SUM_CONTRIBUTIONS", ("BCUL0001",), ()): Decimal("600.50")}
    assert {c.org_unit for c in found} == {WARD}


def claim_facts(review: dict[str, Any] | None = None, **more: Any) -> Facts:
    claim = {
        "facility": FACILITY,
        "patient": "p",
        "policy": "pol",
        "visit": "E",
        "icd": "A0105",
        "month": "2024-02",
        "lines": [[1, "item", "0022", "2", "130"], [2, "service", "A.1", "1", "400"], [3, "service", "X", "-1", "5"]],
        **more,
    }
    extra = {"ClaimResponse__r": review} if review else {}
    return Facts(Patient__p=insuree(), Coverage__pol={"product": "BCTA 0001"}, Claim__c=claim, **extra)


def test_a_claim_without_review_is_entered_and_each_line_counts_its_quantity():
    found, why = of_root("Claim", "c", claim_facts())
    assert why is None
    attrs = ("BCTA_0001", "ENTERED")
    who = ("F", "P26Y-P35Y")
    assert cells(found, "2024-02") == {
        ("NB_CLAIM", ("EMERGENCY", *who), attrs): 1,
        ("NB_CLAIM_ITEM", ("NOT_ASSESSED", "EMERGENCY", *who), attrs): 2,
        ("NB_CLAIM_SERVICE", ("NOT_ASSESSED", "EMERGENCY", *who), attrs): 1,
        ("NB_CLAIM_SERVICE_ICD", ("NOT_ASSESSED", "A0105"), attrs): 1,
        ("SUM_ASKED_SERVICE", ("A_1", *who), attrs): 400,
    }  # the service with a negative quantity counts nowhere
    assert {c.org_unit for c in found} == {FACILITY}


def test_a_valuated_review_approves_lines_with_their_approved_quantities_and_valuated_amounts():
    review = {"claim": "c", "status": "16", "lines": {"1": ["APPROVED", "1", None], "2": ["REJECTED", None, None]}}
    found, _ = of_root("Claim", "c", claim_facts(review))
    got = cells(found, "2024-02")
    attrs = ("BCTA_0001", "APPROVED")
    assert got[("NB_CLAIM_ITEM", ("APPROVED", "EMERGENCY", "F", "P26Y-P35Y"), attrs)] == 1  # approved, not 2
    assert got[("NB_CLAIM_SERVICE", ("REJECTED", "EMERGENCY", "F", "P26Y-P35Y"), attrs)] == 1
    assert not any(k[0] == "SUM_VALUATED_SERVICE" for k in got)
    review["lines"]["2"] = ["APPROVED", "1", "380"]
    found, _ = of_root("Claim", "c", claim_facts(review))
    assert cells(found, "2024-02")[("SUM_VALUATED_SERVICE", ("APPROVED", "EMERGENCY", "F", "P26Y-P35Y"), attrs)] == 380


def test_a_claim_of_an_insuree_not_received_waits_and_an_unknown_product_is_none():
    assert of_root("Claim", "c", Facts(Claim__c={"patient": "p", "month": "2024-02"}))[1] == (
        "its insuree is not known yet"
    )
    found, _ = of_root("Claim", "c", claim_facts(policy=None))
    assert {c.attributes[0] for c in found} == {"NONE"}


def test_facts_keep_no_name_number_or_birth_day():
    from mediator.openimis.reader import read_document
    from mediator.openimis.schemas import SCHEMAS
    from tests import samples

    records = read_document(samples.bundle(samples.patient()), SCHEMAS.keys()).records
    kept = of(records[0])
    assert kept is not None
    text = repr(kept)
    assert "1979-03" in text and "1979-03-19" not in text
    assert "Nonino" not in text and "104000001" not in text and "NAT-778899" not in text


def test_values_are_kept_in_ten_thousandths_exactly():
    from mediator.journal.aggregates import to_units

    assert to_units(Decimal("600.50")) == 6_005_000
    assert to_units(Decimal("0.1") + Decimal("0.2")) == 3_000
    assert to_units(Decimal("123456789012.34")) == 1_234_567_890_123_400
