"""Domain records: what the mediator knows of an openIMIS object once its FHIR form has been read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


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


Record = Insuree | Family
