"""Domain records: what the mediator knows of an openIMIS object once its FHIR form has been read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Insuree:
    key: str  # the openIMIS UUID, or the resource id when the sender gives no UUID identifier
    village_key: str
    insurance_number: str | None = None
    family_key: str | None = None
    gender: str | None = None  # openIMIS code: M, F, O
    birth_date: date | None = None
    is_head: bool | None = None
    marital_status: str | None = None
    education: str | None = None
    profession: str | None = None
    identification_type: str | None = None
    identification_number: str | None = None
    card_issued: bool | None = None
    first_service_point_key: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None

    kind = "Patient"


@dataclass(frozen=True)
class Family:
    key: str
    village_key: str | None = None
    head_insurance_number: str | None = None
    poverty: bool | None = None
    family_type: str | None = None
    member_keys: tuple[str, ...] = ()

    kind = "Group"


@dataclass(frozen=True)
class Area:
    """A region (R), district (D), ward/municipality (W) or village (V)."""

    key: str
    name: str
    level: str
    code: str | None = None
    parent_key: str | None = None  # none for a region: it goes under the root org unit

    kind = "Location"


@dataclass(frozen=True)
class Facility:
    """A health facility, from a Location with physicalType `si` or from an Organization (same openIMIS key)."""

    kind: str  # the resource it came from: Location or Organization
    key: str
    name: str
    code: str | None = None
    level: str | None = None  # H hospital, D dispensary, C health centre
    legal_form: str | None = None
    district_key: str | None = None  # an Organization does not say


@dataclass(frozen=True)
class CodeEntry:
    """One entry of an openIMIS code list that DHIS2 keeps as an option: product, medical item or service."""

    kind: str  # InsurancePlan, Medication or ActivityDefinition
    key: str
    code: str
    name: str

    @property
    def option_set(self) -> str:
        return {"InsurancePlan": "product", "Medication": "item", "ActivityDefinition": "service"}[self.kind]


@dataclass(frozen=True)
class Policy:
    """A policy, from a Coverage or a Contract (openIMIS sends both for one policy, under the same UUID)."""

    kind: str  # Coverage or Contract
    key: str
    insuree_keys: tuple[str, ...] = ()  # insurees covered, by key (Contract)
    insurance_numbers: tuple[str, ...] = ()  # insurees covered, by insurance number (Coverage's beneficiary)
    product_code: str | None = None
    status: str | None = None  # openIMIS policy status: 1 idle, 2 active, 4 suspended, 8 expired
    stage: str | None = None  # N new, R renewed
    value: Decimal | None = None
    number: str | None = None  # openIMIS's policy number
    enroll_date: date | None = None
    start_date: date | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    family_key: str | None = None  # the family insured (Contract's subject)
    premiums: tuple[tuple[date, Decimal], ...] = ()  # contributions paid: (pay date, amount) (Contract)


@dataclass(frozen=True)
class ClaimLine:
    sequence: int
    kind: str  # item or service
    code: str | None = None
    entry_key: str | None = None  # the Medication or ActivityDefinition it names
    quantity: Decimal | None = None
    price: Decimal | None = None


@dataclass(frozen=True)
class Claim:
    key: str
    patient_key: str
    facility_key: str
    code: str | None = None
    visit_type: str | None = None
    diagnoses: tuple[tuple[str, str], ...] = ()  # (ICD code, its name), main first
    start: date | None = None
    end: date | None = None
    created: date | None = None
    claimed: Decimal | None = None
    lines: tuple[ClaimLine, ...] = ()
    coverage_key: str | None = None  # the policy it is claimed on (Claim.insurance)

    kind = "Claim"


# openIMIS claim status codes, which ClaimResponse uses as adjudication categories.
REJECTED, ENTERED, CHECKED, PROCESSED, VALUATED = "1", "2", "4", "8", "16"


@dataclass(frozen=True)
class LineReview:
    sequence: int
    kind: str | None
    amounts: dict[str, Decimal]  # line total (unit amount x quantity) by category: 4 approved, 8 adjusted, 16 valuated
    quantity: Decimal | None = None  # the quantity of the furthest category reached (the approved one once checked)


@dataclass(frozen=True)
class ClaimReview:
    """A ClaimResponse: how openIMIS judged a claim, line by line."""

    key: str
    claim_key: str
    status: str  # the furthest category reached: 1 rejected, 2 entered, 4 checked, 8 processed, 16 valuated
    totals: dict[str, Decimal]
    lines: tuple[LineReview, ...] = ()
    created: date | None = None

    kind = "ClaimResponse"


Record = Insuree | Family | Area | Facility | CodeEntry | Policy | Claim | ClaimReview
