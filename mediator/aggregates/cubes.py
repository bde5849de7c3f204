"""The two monthly data sets openIMIS's own DHIS2 module publishes (`openimis-be-dhis2-etl` 1.3/1.4, its `adx`
services), with its codes, so dashboards built on them keep working.

- ENROLMENT, on wards: NB_INSUREES, NB_FAMILY, SUM_CONTRIBUTIONS.
- PROCESSED_CLAIM, on health facilities: NB_CLAIM, NB_CLAIM_ITEM, NB_CLAIM_SERVICE, NB_CLAIM_SERVICE_ICD,
  SUM_VALUATED_SERVICE, SUM_ASKED_SERVICE; product and claim status are attribute categories of the data set.

Category and option codes are the module's (`clean_code`: upper case, anything but letters, digits and `*` made
`_`); UIDs follow its scheme (`build_dhis2_id(value, salt)`), so a DHIS2 set up by the module is found as it is.
The options of product, service and diagnosis come from the code lists openIMIS sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from mediator.mapping.uids import openimis_etl_uid

# The module's age bands: completed years on the last day of the month.
AGE_BOUNDARIES = (6, 13, 19, 26, 36, 56, 76)


def clean_code(code: str) -> str:
    return re.sub(r"[^a-zA-Z0-9*]", "_", code).upper()


@lru_cache(maxsize=4096)
def etl_uid(value: str, salt: str) -> str:
    """The UID openIMIS's module gives a metadata object: its value when that is a UUID, else an MD5 of salt and
    value, written in its 64 characters."""
    digits = value.replace("-", "")
    if re.fullmatch(r"[0-9a-fA-F]{32}", digits):
        return openimis_etl_uid(value)
    return openimis_etl_uid(salt + value)


def age_bands() -> tuple[str, ...]:
    bands, low = [], 0
    for high in AGE_BOUNDARIES:
        bands.append(f"P{low}Y-P{high - 1}Y")
        low = high
    return (*bands, f"P{low}Y-P9999Y")


def age_band(years: int) -> str:
    low = 0
    for high in AGE_BOUNDARIES:
        if years < high:
            return f"P{low}Y-P{high - 1}Y"
        low = high
    return f"P{low}Y-P9999Y"


@dataclass(frozen=True)
class Category:
    name: str  # the module's category name: the ADX attribute is its clean code
    options: tuple[tuple[str, str], ...]  # (code, name); empty for a category whose options come from code lists
    default: str  # the option of what matches no other
    attribute: bool = False  # an attribute category of its data set (the ADX group carries it)
    code_list: str | None = None  # product, service or diagnosis: options from openIMIS's code lists

    @property
    def code(self) -> str:
        return ("ATT_" if self.attribute else "") + clean_code(self.name)

    @property
    def uid(self) -> str:
        return etl_uid(self.name, "CategoryAtt" if self.attribute else "Category")


def option_uid(code: str) -> str:
    return etl_uid(code, "categoryOption")


NONE = ("NONE", "None")
AGE = Category("ageGroup", tuple((b, b) for b in age_bands()), "")  # no default: every insuree has a birth date
SEX = Category("sex", (("M", "MALE"), ("F", "FEMALE"), ("O", "OTHER")), "O")
PAYMENT_STATUS = Category(
    "payment_status",
    (("PAID", "Paid"), ("NOT_PAID", "Not paid"), ("PARTIALY_PAID", "Partialy paid"), ("NO_POLICY", "No policy")),
    "NO_POLICY",
)
PAYMENT_STATE = Category("payment_state", (("NEW", "New"), ("RENEW", "Renew"), ("NO_POLICY", "No-policy")), "NO_POLICY")
PRODUCT = Category("product", (NONE,), "NONE", code_list="product")
CLAIM_TYPE = Category(
    "claim_type", (("EMERGENCY", "Emergency"), ("REFERRALS", "Referrals"), ("OTHER", "Other")), "OTHER"
)
DETAIL_STATUS = Category(
    "claim_detail_status",
    (("APPROVED", "Approved"), ("REJECTED", "Rejected"), ("NOT_ASSESSED", "not assessed")),
    "NOT_ASSESSED",
)
ICD = Category("icd", (NONE,), "NONE", code_list="diagnosis")
SERVICE = Category("claim_service", (NONE,), "NONE", code_list="service")
CLAIM_PRODUCT = Category("product", (NONE,), "NONE", attribute=True, code_list="product")
CLAIM_STATUS = Category(
    "claim_status",
    (
        ("APPROVED", "Approved"),
        ("REJECTED", "Rejected"),
        ("CHECKED", "Checked"),
        ("PROCESSED", "Processed"),
        ("ENTERED", "Entered"),
    ),
    "ENTERED",
    attribute=True,
)


@dataclass(frozen=True)
class DataElement:
    code: str
    categories: tuple[Category, ...]  # its disaggregations, in the order the module lists them
    sums: str  # what it adds up, in words (the metadata's description)

    @property
    def uid(self) -> str:
        return etl_uid(self.code, "DataElement")

    @property
    def combo_name(self) -> str:
        """The module names a category combo by its categories' names, sorted."""
        return "_".join(sorted(c.name for c in self.categories))

    @property
    def combo_uid(self) -> str | None:
        return etl_uid(self.combo_name, "CategoryCombo") if self.categories else None


@dataclass(frozen=True)
class DataSet:
    code: str
    level: str  # where its values go: ward or facility
    elements: tuple[DataElement, ...]
    attributes: tuple[Category, ...] = ()

    @property
    def uid(self) -> str:
        return etl_uid(self.code, "DataSet")

    @property
    def combo_name(self) -> str:
        """The module names its attribute combo by the categories' short names, `ATT:` and the name, sorted."""
        return "_".join(sorted(f"ATT:{c.name}" for c in self.attributes))

    @property
    def combo_uid(self) -> str | None:
        return etl_uid(self.combo_name, "CategoryComboAttr") if self.attributes else None

    def element(self, code: str) -> DataElement:
        return next(e for e in self.elements if e.code == code)


_CLAIM_DISAGGREGATION = (CLAIM_TYPE, SEX, AGE)
ENROLMENT = DataSet(
    "ENROLMENT",
    "ward",
    (
        DataElement("NB_INSUREES", (AGE, SEX), "insurees registered, by age on the month's last day and sex"),
        DataElement(
            "NB_FAMILY",
            (AGE, SEX, PAYMENT_STATUS, PAYMENT_STATE),
            "families, by their head's age and sex, and the payment and stage of their policy in force",
        ),
        DataElement("SUM_CONTRIBUTIONS", (PRODUCT,), "contributions paid in the month, by product"),
    ),
)
PROCESSED_CLAIM = DataSet(
    "PROCESSED_CLAIM",
    "facility",
    (
        DataElement("NB_CLAIM", _CLAIM_DISAGGREGATION, "claims of the month (by their end date, else start)"),
        DataElement("NB_CLAIM_ITEM", (DETAIL_STATUS, *_CLAIM_DISAGGREGATION), "medical items claimed (quantity)"),
        DataElement("NB_CLAIM_SERVICE", (DETAIL_STATUS, *_CLAIM_DISAGGREGATION), "medical services claimed (quantity)"),
        DataElement("NB_CLAIM_SERVICE_ICD", (DETAIL_STATUS, ICD), "medical services claimed, by main diagnosis"),
        DataElement("SUM_VALUATED_SERVICE", (DETAIL_STATUS, *_CLAIM_DISAGGREGATION), "valuated amount of the services"),
        DataElement("SUM_ASKED_SERVICE", (SERVICE, SEX, AGE), "amount asked for the services (price x quantity)"),
    ),
    (CLAIM_PRODUCT, CLAIM_STATUS),
)
DATA_SETS: dict[str, DataSet] = {d.code: d for d in (ENROLMENT, PROCESSED_CLAIM)}


@dataclass(frozen=True)
class Options:
    """The options of the categories that take theirs from openIMIS's code lists: code -> name."""

    product: dict[str, str] = field(default_factory=dict)
    service: dict[str, str] = field(default_factory=dict)
    diagnosis: dict[str, str] = field(default_factory=dict)

    def of(self, category: Category) -> tuple[tuple[str, str], ...]:
        if category.code_list is None:
            return category.options
        listed = getattr(self, category.code_list)
        return (NONE, *((clean_code(c), option_name(c, n)) for c, n in sorted(listed.items())))


def option_name(code: str, name: str) -> str:
    """As the module names a code-list option: the code, a dash, the name (unless the name starts with the code)."""
    return name if name.startswith(code) else f"{code}-{name}"
