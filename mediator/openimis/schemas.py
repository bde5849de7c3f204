"""marshmallow schemas for the openIMIS FHIR R4 resources the mediator takes; loading one gives a domain record.

Unknown FHIR elements are ignored (FHIR resources carry far more than the mediator needs); what the mediator
uses is checked for type, and what it cannot do without (a key, a village) is required.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing, post_load, validate, validates_schema

from mediator.openimis import fhir
from mediator.openimis.records import (
    REJECTED,
    Area,
    Claim,
    ClaimLine,
    ClaimReview,
    CodeEntry,
    Facility,
    Family,
    Insuree,
    LineReview,
    Policy,
)

INT64 = 1 << 63
GENDER_CODES = {"male": "M", "female": "F", "other": "O"}


class _Base(Schema):
    """Unknown elements are ignored. What marshmallow would do for nothing is skipped: a declared field the
    resource leaves out is not called only to learn that it is absent (an extension declares ten value fields and
    holds one), and a field without validators or processors is read without the machinery that runs them. The
    records and the errors are marshmallow's own (tests/unit/test_schema_fast_path.py compares them)."""

    class Meta:
        unknown = EXCLUDE

    def _deserialize(self, data: Any, *, error_store: Any, many: bool = False, partial: Any = None,
                     unknown: Any = EXCLUDE, index: Any = None) -> Any:  # fmt: skip
        if many or partial is not None or unknown != EXCLUDE or not isinstance(data, Mapping):
            return super()._deserialize(
                data, error_store=error_store, many=many, partial=partial, unknown=unknown, index=index
            )
        index = index if self.opts.index_errors else None
        loaded = self.dict_class()
        for attr_name, field_obj, field_name, always, plain in self._plan():
            raw = data.get(field_name, missing)
            if raw is missing and not always:
                continue
            if plain and raw is not missing and raw is not None:
                # What Field.deserialize comes to for a field without validators or processors.
                try:
                    value = field_obj._deserialize(raw, field_name, data)
                except ValidationError as error:
                    error_store.store_error(error.messages, field_name, index=index)
                    value = error.valid_data or missing
            else:

                def getter(value: Any, field_obj: Any = field_obj, field_name: str = field_name) -> Any:
                    return field_obj.deserialize(value, field_name, data)

                value = self._call_and_store(
                    getter_func=getter, data=raw, field_name=field_name, error_store=error_store, index=index
                )
            if value is not missing:
                loaded[field_obj.attribute or attr_name] = value
        return loaded

    def _plan(self) -> list[tuple[str, Any, str, bool, bool]]:
        """Per field: its name, the field, its key in the data, whether it is called when absent (required, or with
        a load default), and whether it has no validators or processors."""
        plan = self.__dict__.get("_fields_plan")
        if plan is None:
            plan = [
                (
                    name,
                    f,
                    f.data_key if f.data_key is not None else name,
                    bool(f.required or f.load_default is not missing),
                    not (f.validators or f.pre_load or f.post_load),
                )
                for name, f in self.load_fields.items()
            ]
            self.__dict__["_fields_plan"] = plan
        return plan


def _finite(value: Decimal) -> None:
    """Amounts and quantities DHIS2 can store as a NUMBER: finite, below 10^15, at most 10 decimals."""
    # adjusted() and as_tuple() read the number without arithmetic, so huge exponents cannot overflow here.
    if not value.is_finite() or value.adjusted() >= 15 or value.as_tuple().exponent < -10:  # type: ignore[operator]
        raise ValidationError("not a number DHIS2 can store (finite, below 10^15, at most 10 decimals)")


def Amount(**kwargs: Any) -> fields.Decimal:  # noqa: N802 (a field factory, used like a field class)
    return fields.Decimal(validate=_finite, **kwargs)


class Day(fields.Date):
    """A FHIR date. openIMIS writes some dates as dateTimes (`2017-01-01T00:00:00`, without a zone): the day is the
    one written, whatever the zone says, since openIMIS itself stores days."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> date:
        if isinstance(value, str) and len(value) > 10 and value[10] == "T":
            try:
                return datetime.fromisoformat(value).date()
            except ValueError as exc:
                raise self.make_error("invalid") from exc
        return super()._deserialize(value, attr, data, **kwargs)


class WholeNumber(fields.Integer):
    """An integer, also written as a float (`1.0`) as JSON serialisers of Python floats do; `1.5` is refused, not
    cut down to 1, and so is a number past 64 bits (no line of a claim has that many)."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        number: int = super()._deserialize(value, attr, data, **kwargs)
        if not -INT64 <= number < INT64:
            raise ValidationError("not a whole number of at most 64 bits")
        return number


class CodingSchema(_Base):
    system = fields.Str()
    code = fields.Str()
    display = fields.Str()


class CodeableConceptSchema(_Base):
    coding = fields.List(fields.Nested(CodingSchema))
    text = fields.Str()


class IdentifierSchema(_Base):
    type = fields.Nested(CodeableConceptSchema)
    system = fields.Str()
    value = fields.Str()


def _check_uuid_identifier(ident: Mapping[str, Any], where: str) -> None:
    """The UUID identifier is the record's key: it must be a FHIR id, as every key the journal keeps."""
    value = ident.get("value")
    if fhir.identifier_type(ident) == fhir.UUID_TYPE and isinstance(value, str) and not fhir.is_fhir_id(value):
        raise ValidationError(f"a UUID identifier must be a FHIR id ({fhir.FHIR_ID_RULE})", where)


class ReferenceSchema(_Base):
    reference = fields.Str()
    type = fields.Str()
    identifier = fields.Nested(IdentifierSchema)
    display = fields.Str()

    @validates_schema
    def _check_id(self, data: dict[str, Any], **_: Any) -> None:
        if fhir.reference_id_refused(data):
            raise ValidationError(f"the id is not a FHIR id ({fhir.FHIR_ID_RULE})", "reference")
        _check_uuid_identifier(data.get("identifier") or {}, "identifier")


class AddressSchema(_Base):
    extension = fields.List(fields.Nested(lambda: ExtensionSchema()))
    use = fields.Str()
    type = fields.Str()
    line = fields.List(fields.Str())
    city = fields.Str()
    district = fields.Str()
    state = fields.Str()


class ExtensionSchema(_Base):
    url = fields.Str(required=True)
    extension = fields.List(fields.Nested(lambda: ExtensionSchema()))
    valueBoolean = fields.Bool(truthy={True}, falsy={False})
    valueString = fields.Str()
    valueCode = fields.Str()
    valueDate = Day()
    valueDecimal = Amount(as_string=True)
    valueCodeableConcept = fields.Nested(CodeableConceptSchema)
    valueReference = fields.Nested(ReferenceSchema)
    valueAddress = fields.Nested(AddressSchema)


class HumanNameSchema(_Base):
    use = fields.Str()
    family = fields.Str()
    given = fields.List(fields.Str())


class ContactPointSchema(_Base):
    system = fields.Str()
    value = fields.Str()


def _village_key(addresses: list[dict[str, Any]]) -> str | None:
    # openIMIS writes the village as an extension on the home address (the first address otherwise).
    ordered = sorted(addresses or [], key=lambda a: a.get("use") != "home")
    for address in ordered:
        ref = fhir.extension_value(address.get("extension"), "address-location-reference", "Reference")
        key = fhir.reference_key(ref)
        if key:
            return key
    return None


class _Resource(_Base):
    resourceType = fields.Str(required=True)
    id = fields.Str(validate=validate.Regexp(r"\A[A-Za-z0-9\-.]{1,64}\Z", error=f"not a FHIR id ({fhir.FHIR_ID_RULE})"))
    identifier = fields.List(fields.Nested(IdentifierSchema))
    extension = fields.List(fields.Nested(ExtensionSchema))

    expected_type = ""

    @classmethod
    def not_carried(cls, resource: Mapping[str, Any]) -> str | None:
        """Why a resource of this type, valid or not, is no business of DHIS2's (None when it is)."""
        return None

    @validates_schema
    def _check_type_and_key(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("resourceType") != self.expected_type:
            raise ValidationError(f"must be {self.expected_type}", "resourceType")
        for i, ident in enumerate(data.get("identifier") or []):
            _check_uuid_identifier(ident, f"identifier[{i}]")
        if not fhir.record_key(data):
            raise ValidationError(
                "no usable id: give an identifier of type UUID (openIMIS-identifiers) or a resource id",
                "identifier",
            )


class PatientSchema(_Resource):
    expected_type = "Patient"

    name = fields.List(fields.Nested(HumanNameSchema))
    gender = fields.Str(validate=validate.OneOf(["male", "female", "other", "unknown"]))
    birthDate = Day()
    address = fields.List(fields.Nested(AddressSchema))
    telecom = fields.List(fields.Nested(ContactPointSchema))
    maritalStatus = fields.Nested(CodeableConceptSchema)
    generalPractitioner = fields.List(fields.Nested(ReferenceSchema))

    @validates_schema
    def _check_village(self, data: dict[str, Any], **_: Any) -> None:
        if not _village_key(data.get("address") or []):
            raise ValidationError(
                "the insuree's village is required: an address with the address-location-reference extension",
                "address",
            )

    @post_load
    def _to_insuree(self, data: dict[str, Any], **_: Any) -> Insuree:
        ext = data.get("extension") or []
        names = sorted(data.get("name") or [], key=lambda n: n.get("use") != "usual")
        name = names[0] if names else {}
        identification = fhir.extension(ext, "patient-identification")
        id_parts = (identification or {}).get("extension") or []
        phones = [t["value"] for t in data.get("telecom") or [] if t.get("system") == "phone" and t.get("value")]
        practitioners = data.get("generalPractitioner") or []
        return Insuree(
            key=str(fhir.record_key(data)),
            village_key=str(_village_key(data.get("address") or [])),
            insurance_number=fhir.business_code(data.get("identifier")),
            family_key=fhir.reference_key(fhir.extension_value(ext, "patient-group-reference", "Reference")),
            gender=GENDER_CODES.get(data.get("gender", "")),
            birth_date=data.get("birthDate"),
            is_head=fhir.extension_value(ext, "patient-is-head", "Boolean"),
            marital_status=fhir.first_code(data.get("maritalStatus")),
            education=fhir.first_code(fhir.extension_value(ext, "patient-education-level", "CodeableConcept")),
            profession=fhir.first_code(fhir.extension_value(ext, "patient-profession", "CodeableConcept")),
            identification_type=fhir.first_code(fhir.extension_value(id_parts, "type", "CodeableConcept")),
            identification_number=fhir.extension_value(id_parts, "number", "String"),
            card_issued=fhir.extension_value(ext, "patient-card-issued", "Boolean"),
            first_service_point_key=fhir.reference_key(practitioners[0]) if practitioners else None,
            first_name=" ".join(name.get("given") or []) or None,
            last_name=name.get("family"),
            phone=phones[0] if phones else None,
        )


class GroupMemberSchema(_Base):
    entity = fields.Nested(ReferenceSchema, required=True)


class GroupSchema(_Resource):
    expected_type = "Group"

    member = fields.List(fields.Nested(GroupMemberSchema))

    @post_load
    def _to_family(self, data: dict[str, Any], **_: Any) -> Family:
        ext = data.get("extension") or []
        address = fhir.extension_value(ext, "group-address", "Address")
        members = (fhir.reference_key(m["entity"]) for m in data.get("member") or [])
        return Family(
            key=str(fhir.record_key(data)),
            village_key=_village_key([address]) if address else None,
            head_insurance_number=fhir.business_code(data.get("identifier")),
            poverty=fhir.extension_value(ext, "group-poverty-status", "Boolean"),
            family_type=fhir.first_code(fhir.extension_value(ext, "group-type", "CodeableConcept")),
            member_keys=tuple(k for k in members if k),
        )


class BundleEntrySchema(_Base):
    fullUrl = fields.Str()
    resource = fields.Dict(required=True)


class BundleSchema(_Base):
    resourceType = fields.Str(required=True, validate=validate.Equal("Bundle"))
    type = fields.Str(
        required=True,
        validate=validate.OneOf(["collection", "batch", "transaction", "searchset", "history", "message", "document"]),
    )
    entry = fields.List(fields.Raw(), load_default=list)


AREA_LEVELS = ("R", "D", "W", "V")
FACILITY_TYPES = {"HOSP": "H", "COMM": "D", "OF": "C"}


class LocationSchema(_Resource):
    expected_type = "Location"

    name = fields.Str(required=True, validate=validate.Length(min=1))
    physicalType = fields.Nested(CodeableConceptSchema, required=True)
    type = fields.List(fields.Nested(CodeableConceptSchema))
    partOf = fields.Nested(ReferenceSchema)

    @validates_schema
    def _check_kind_and_parent(self, data: dict[str, Any], **_: Any) -> None:
        level = fhir.first_code(data.get("physicalType"))
        if level not in (*AREA_LEVELS, "si"):
            raise ValidationError("must be R, D, W, V (areas) or si (health facility)", "physicalType")
        if level in ("D", "W", "V", "si") and not fhir.reference_key(data.get("partOf")):
            raise ValidationError("a district, ward, village or facility needs the location it is part of", "partOf")

    @post_load
    def _to_record(self, data: dict[str, Any], **_: Any) -> Area | Facility:
        level = str(fhir.first_code(data["physicalType"]))
        key, code = str(fhir.record_key(data)), fhir.business_code(data.get("identifier"))
        parent = fhir.reference_key(data.get("partOf"))
        if level == "si":
            kinds = [fhir.first_code(t) for t in data.get("type") or []]
            facility_level = next((FACILITY_TYPES[k] for k in kinds if k in FACILITY_TYPES), None)
            return Facility("Location", key, data["name"], code, facility_level, None, parent)
        return Area(key, data["name"], level, code, parent if level != "R" else None)


FACILITY_ORGANIZATION = "prov"
OTHER_ORGANIZATIONS = {"ins": "the insurer", "bus": "a policy holder"}


class OrganizationSchema(_Resource):
    """Health facilities (type `prov`, or no type). openIMIS also serves its insurer (`ins`, from its module
    configuration) and policy holders (`bus`) as Organizations: they are no org units."""

    expected_type = "Organization"

    name = fields.Str(required=True, validate=validate.Length(min=1))
    address = fields.List(fields.Nested(AddressSchema))

    @classmethod
    def not_carried(cls, resource: Mapping[str, Any]) -> str | None:
        types = resource.get("type")
        codes = [c for c in (fhir.first_code(t) for t in types) if c] if isinstance(types, list) else []
        if not codes or FACILITY_ORGANIZATION in codes:
            return None
        what = next((OTHER_ORGANIZATIONS[c] for c in codes if c in OTHER_ORGANIZATIONS), None)
        kind = f"type {codes[0]}" + (f", {what}" if what else "")
        return f"not a health facility ({kind}): only Organizations of type prov become org units"

    @post_load
    def _to_facility(self, data: dict[str, Any], **_: Any) -> Facility:
        ext = data.get("extension") or []
        level = fhir.first_code(fhir.extension_value(ext, "organization-hf-level", "CodeableConcept"))
        legal = fhir.first_code(fhir.extension_value(ext, "organization-legal-form", "CodeableConcept"))
        code = fhir.business_code(data.get("identifier"))
        key = str(fhir.record_key(data))
        # The address may name the facility's district; openIMIS's own converter makes it name the facility itself.
        place = _village_key(data.get("address") or [])
        district = place if place not in (key, data.get("id")) else None
        return Facility("Organization", key, data["name"], code, level, legal, district)


class _CodeListSchema(_Resource):
    @validates_schema
    def _check_code(self, data: dict[str, Any], **_: Any) -> None:
        if not fhir.business_code(data.get("identifier")):
            raise ValidationError("the openIMIS code is required: an identifier that is not the UUID", "identifier")

    def entry(self, data: dict[str, Any], name: str | None) -> CodeEntry:
        code = str(fhir.business_code(data.get("identifier")))
        return CodeEntry(self.expected_type, str(fhir.record_key(data)), code, name or code)


class InsurancePlanSchema(_CodeListSchema):
    expected_type = "InsurancePlan"
    name = fields.Str()

    @post_load
    def _to_entry(self, data: dict[str, Any], **_: Any) -> CodeEntry:
        return self.entry(data, data.get("name"))


class MedicationSchema(_CodeListSchema):
    expected_type = "Medication"
    code = fields.Nested(CodeableConceptSchema)

    @post_load
    def _to_entry(self, data: dict[str, Any], **_: Any) -> CodeEntry:
        concept = data.get("code") or {}
        display = next((c.get("display") for c in concept.get("coding") or [] if c.get("display")), None)
        return self.entry(data, concept.get("text") or display)


class ActivityDefinitionSchema(_CodeListSchema):
    expected_type = "ActivityDefinition"
    title = fields.Str()
    name = fields.Str()

    @post_load
    def _to_entry(self, data: dict[str, Any], **_: Any) -> CodeEntry:
        return self.entry(data, data.get("title") or data.get("name"))


class PeriodSchema(_Base):
    start = Day()
    end = Day()


class CoverageClassSchema(_Base):
    type = fields.Nested(CodeableConceptSchema)
    value = fields.Str()


COVERAGE_STATUS = {"active": "2", "cancelled": "8", "draft": "1"}
CONTRACT_STATUS = {"Offered": "1", "Policy": "2", "Disputed": "4", "Terminated": "8"}
CONTRACT_STAGE = {"Offered": "N", "Renewed": "R"}


class CoverageSchema(_Resource):
    expected_type = "Coverage"

    status = fields.Str()
    beneficiary = fields.Nested(ReferenceSchema, required=True)
    period = fields.Nested(PeriodSchema)
    class_ = fields.List(fields.Nested(CoverageClassSchema), data_key="class")

    @post_load
    def _to_policy(self, data: dict[str, Any], **_: Any) -> Policy:
        # openIMIS writes the enrolment date first and the effective date second.
        dates = [
            e.get("valueDate")
            for e in data.get("extension") or []
            if fhir.last_segment(e.get("url")) == "coverage-date"
        ]
        plan = next(
            (c.get("value") for c in data.get("class_") or [] if fhir.first_code(c.get("type")) == "plan"), None
        )
        period = data.get("period") or {}
        # openIMIS names the beneficiary by insurance number (`Patient/<number>`); a UUID names the insuree itself.
        beneficiary = data.get("beneficiary")
        number = fhir.reference_code(beneficiary)
        key = fhir.reference_key(beneficiary)
        return Policy(
            "Coverage",
            str(fhir.record_key(data)),
            insuree_keys=(key,) if key and fhir.is_uuid(key) else (),
            insurance_numbers=(number,) if number else (),
            product_code=plan,
            status=COVERAGE_STATUS.get(data.get("status") or ""),
            number=fhir.business_code(data.get("identifier")),
            enroll_date=dates[0] if dates else None,
            effective_date=dates[1] if len(dates) > 1 else None,
            start_date=period.get("start"),
            expiry_date=period.get("end"),
        )


class ContractSchema(_Resource):
    expected_type = "Contract"

    status = fields.Str()
    legalState = fields.Nested(CodeableConceptSchema)
    subject = fields.List(fields.Nested(ReferenceSchema))
    term = fields.List(fields.Dict())

    @post_load
    def _to_policy(self, data: dict[str, Any], **_: Any) -> Policy:
        try:
            assets = [a for t in data.get("term") or [] for a in t.get("asset") or [] if isinstance(a, dict)]
            insurees = [fhir.reference_key(r) for a in assets for r in a.get("typeReference") or []]
            items = [v for a in assets for v in a.get("valuedItem") or [] if isinstance(v, dict)]
            product = next((v.get("entityReference") for v in items if v.get("entityReference")), None) or {}
            net = next(((v.get("net") or {}).get("value") for v in items if isinstance(v.get("net"), dict)), None)
            period = next((p for a in assets for p in a.get("period") or [] if isinstance(p, dict)), {})
        except (TypeError, AttributeError) as exc:
            raise ValidationError("not in the shape of an openIMIS Contract (term.asset lists)", "term") from exc
        problems = {}
        value = None
        try:
            value = Amount().deserialize(net) if net is not None else None
        except ValidationError:
            problems["term.asset.valuedItem.net"] = ["not a number DHIS2 can store"]
        start = end = None
        try:
            start = Day().deserialize(period.get("start")) if period.get("start") else None
            end = Day().deserialize(period.get("end")) if period.get("end") else None
        except ValidationError:
            problems["term.asset.period"] = ["not a valid date"]
        premiums = _premiums(assets, problems)
        if problems:
            raise ValidationError(problems)
        legal = (data.get("legalState") or {}).get("text")
        family = next((k for k in map(fhir.reference_key, data.get("subject") or []) if k), None)
        return Policy(
            "Contract",
            str(fhir.record_key(data)),
            insuree_keys=tuple(k for k in insurees if k),
            product_code=product.get("display") if isinstance(product, dict) else None,
            status=CONTRACT_STATUS.get(data.get("status") or ""),
            stage=CONTRACT_STAGE.get(legal or ""),
            value=value,
            number=fhir.business_code(data.get("identifier")),
            start_date=start,
            expiry_date=end,
            family_key=family,
            premiums=premiums,
        )


def _premiums(assets: list[dict[str, Any]], problems: dict[str, list[str]]) -> tuple[tuple[Any, Any], ...]:
    """The contributions paid on a policy: openIMIS writes each as a `contract-premium` extension of the asset, with
    its amount and pay date among its own extensions. One in another shape is refused, naming it."""
    where = "term.asset.extension.contract-premium"
    paid = []
    for asset in assets:
        extensions = asset.get("extension") or []
        if not isinstance(extensions, list):
            problems["term.asset.extension"] = ["not a list of extensions"]
            continue
        for ext in extensions:
            if not isinstance(ext, dict) or fhir.last_segment(ext.get("url")) != "contract-premium":
                continue
            inner = ext.get("extension") or []
            parts = (
                {fhir.last_segment(e.get("url")): e for e in inner if isinstance(e, dict)}
                if isinstance(inner, list)
                else None
            )
            money = (parts or {}).get("amount", {}).get("valueMoney")
            if parts is None or not isinstance(money, dict | None):
                problems[where] = ["not in the shape of an openIMIS premium (amount and date extensions)"]
                continue
            amount, when = (money or {}).get("value"), parts.get("date", {}).get("valueDate")
            if amount is None or when is None:
                continue  # a premium without amount or date counts nowhere
            try:
                paid.append((Day().deserialize(when), Amount().deserialize(amount)))
            except ValidationError:
                problems[where] = ["amount or date not valid"]
    return tuple(sorted(paid))


class QuantitySchema(_Base):
    value = Amount(required=True)


class MoneySchema(_Base):
    value = Amount(required=True)
    currency = fields.Str()


class ClaimItemSchema(_Base):
    extension = fields.List(fields.Nested(ExtensionSchema))
    sequence = WholeNumber(required=True)
    category = fields.Nested(CodeableConceptSchema)
    productOrService = fields.Nested(CodeableConceptSchema)
    quantity = fields.Nested(QuantitySchema)
    unitPrice = fields.Nested(MoneySchema)


class InsuranceSchema(_Base):
    coverage = fields.Nested(ReferenceSchema)


class DiagnosisSchema(_Base):
    sequence = WholeNumber()
    diagnosisCodeableConcept = fields.Nested(CodeableConceptSchema)


ENTRY_KINDS = {"Medication": "item", "ActivityDefinition": "service"}


def _line_kind(item: dict[str, Any]) -> tuple[str | None, str | None]:
    """(item or service, key of the Medication/ActivityDefinition named) of a claim or review line."""
    ref = fhir.extension_value(item.get("extension"), "claim-item-reference", "Reference") or {}
    target = str(ref.get("type") or str(ref.get("reference") or "").split("/", 1)[0])
    kind = ENTRY_KINDS.get(target)
    if kind is None:
        category = item.get("category") or {}
        text = (fhir.first_code(category) or category.get("text") or "").lower()
        kind = text if text in ("item", "service") else None
    return kind, fhir.reference_key(ref) if ref else None


# An ICD-10 code: a letter, two characters, and up to four more after an optional dot (A00, A0105, U07.1).
ICD_CODE = re.compile(r"[A-Za-z][0-9][0-9A-Za-z](?:\.?[0-9A-Za-z]{1,4})?")


def _diagnosis(concept: dict[str, Any] | None) -> tuple[str, str] | None:
    """(ICD code, its name). openIMIS writes the code as its ICD table has it, which may be the code followed by
    its description (`A009 Cholera, unspecified`, with `Cholera, unspecified` as display): the code is the first
    word then, and the rest its name. A code without a description is kept as it is."""
    code = fhir.first_code(concept)
    if code is None:
        return None
    display = next((c.get("display") for c in (concept or {}).get("coding") or [] if c.get("code") == code), None)
    name = str(display or (concept or {}).get("text") or "").strip()
    parts = code.split(None, 1)
    if len(parts) == 2 and (ICD_CODE.fullmatch(parts[0]) or parts[1].strip() == name):
        head, described = parts[0], parts[1].strip()
        return head, name.removeprefix(f"{head} ").strip() or described
    return code, name or code


class ClaimSchema(_Resource):
    expected_type = "Claim"

    patient = fields.Nested(ReferenceSchema, required=True)
    provider = fields.Nested(ReferenceSchema)
    facility = fields.Nested(ReferenceSchema)
    type = fields.Nested(CodeableConceptSchema)
    billablePeriod = fields.Nested(PeriodSchema)
    created = Day()
    diagnosis = fields.List(fields.Nested(DiagnosisSchema))
    item = fields.List(fields.Nested(ClaimItemSchema))
    total = fields.Nested(MoneySchema)
    insurance = fields.List(fields.Nested(InsuranceSchema))

    @validates_schema
    def _check_references(self, data: dict[str, Any], **_: Any) -> None:
        if not fhir.reference_key(data.get("patient")):
            raise ValidationError("the insuree is required: a reference to a Patient", "patient")
        if not (fhir.reference_key(data.get("provider")) or fhir.reference_key(data.get("facility"))):
            raise ValidationError("the health facility is required: provider or facility", "provider")
        sequences = [item.get("sequence") for item in data.get("item") or []]
        if len(set(sequences)) != len(sequences):
            raise ValidationError("each line needs its own sequence number", "item")
        for i, item in enumerate(data.get("item") or []):
            if _line_kind(item)[0] is None:
                raise ValidationError(
                    {i: {"category": ["must say item or service, or name a Medication or ActivityDefinition"]}}, "item"
                )

    @post_load
    def _to_claim(self, data: dict[str, Any], **_: Any) -> Claim:
        lines = []
        for item in data.get("item") or []:
            kind, entry = _line_kind(item)
            product = item.get("productOrService") or {}
            lines.append(
                ClaimLine(
                    sequence=item["sequence"],
                    kind=str(kind),
                    code=fhir.first_code(product) or product.get("text"),
                    entry_key=entry,
                    quantity=(item.get("quantity") or {}).get("value"),
                    price=(item.get("unitPrice") or {}).get("value"),
                )
            )
        diagnoses = sorted(data.get("diagnosis") or [], key=lambda d: d.get("sequence") or 0)
        period = data.get("billablePeriod") or {}
        return Claim(
            key=str(fhir.record_key(data)),
            patient_key=str(fhir.reference_key(data["patient"])),
            facility_key=str(fhir.reference_key(data.get("provider")) or fhir.reference_key(data.get("facility"))),
            code=fhir.business_code(data.get("identifier")),
            visit_type=fhir.first_code(data.get("type")),
            diagnoses=tuple(d for d in (_diagnosis(d.get("diagnosisCodeableConcept")) for d in diagnoses) if d),
            start=period.get("start"),
            end=period.get("end"),
            created=data.get("created"),
            claimed=(data.get("total") or {}).get("value"),
            lines=tuple(lines),
            coverage_key=next(
                (k for k in (fhir.reference_key(i.get("coverage")) for i in data.get("insurance") or []) if k), None
            ),
        )


class AdjudicationSchema(_Base):
    category = fields.Nested(CodeableConceptSchema, required=True)
    amount = fields.Nested(MoneySchema)
    value = Amount()


class ReviewItemSchema(_Base):
    extension = fields.List(fields.Nested(ExtensionSchema))
    itemSequence = WholeNumber(required=True)
    category = fields.Nested(CodeableConceptSchema)
    adjudication = fields.List(fields.Nested(AdjudicationSchema))


class TotalSchema(_Base):
    category = fields.Nested(CodeableConceptSchema, required=True)
    amount = fields.Nested(MoneySchema, required=True)


CATEGORY_ORDER = ("1", "2", "4", "8", "16")


class ClaimResponseSchema(_Resource):
    expected_type = "ClaimResponse"

    request = fields.Nested(ReferenceSchema, required=True)
    created = Day()
    item = fields.List(fields.Nested(ReviewItemSchema))
    total = fields.List(fields.Nested(TotalSchema))

    @validates_schema
    def _check_request(self, data: dict[str, Any], **_: Any) -> None:
        if not fhir.reference_key(data.get("request")):
            raise ValidationError("the claim reviewed is required: a reference to a Claim", "request")

    @post_load
    def _to_review(self, data: dict[str, Any], **_: Any) -> ClaimReview:
        totals = {
            str(fhir.first_code(t["category"])): t["amount"]["value"]
            for t in data.get("total") or []
            if fhir.first_code(t["category"]) in CATEGORY_ORDER
        }
        lines = []
        for item in data.get("item") or []:
            amounts, quantities = {}, {}
            for adj in item.get("adjudication") or []:
                category = str(fhir.first_code(adj["category"]))
                if category not in CATEGORY_ORDER:
                    continue
                unit = (adj.get("amount") or {}).get("value")
                if adj.get("value") is not None:
                    quantities[category] = adj["value"]
                if unit is not None:
                    # openIMIS gives the unit amount and the quantity; DHIS2 gets the line total.
                    amounts[category] = unit * (adj.get("value") if adj.get("value") is not None else 1)
            furthest = max(quantities, key=int, default=None)
            quantity = quantities[furthest] if furthest is not None else None
            lines.append(LineReview(item["itemSequence"], _line_kind(item)[0], amounts, quantity))
        line_categories = [set(line.amounts) for line in lines]
        reached = [c for c in CATEGORY_ORDER if c in totals or any(c in cats for cats in line_categories)]
        if line_categories and all(cats == {REJECTED} for cats in line_categories):
            status = REJECTED  # every line refused: the claim is rejected whatever its totals say
        else:
            status = max([c for c in reached if c != REJECTED] or ["2"], key=int)
        return ClaimReview(
            key=str(fhir.record_key(data)),
            claim_key=str(fhir.reference_key(data["request"])),
            status=status,
            totals=totals,
            lines=tuple(lines),
            created=data.get("created"),
        )


# Built once: a schema instance is reusable, and building one (with its nested schemas) costs far more than a load.
SCHEMAS: dict[str, _Resource] = {
    "Patient": PatientSchema(),
    "Group": GroupSchema(),
    "Location": LocationSchema(),
    "Organization": OrganizationSchema(),
    "InsurancePlan": InsurancePlanSchema(),
    "Medication": MedicationSchema(),
    "ActivityDefinition": ActivityDefinitionSchema(),
    "Coverage": CoverageSchema(),
    "Contract": ContractSchema(),
    "Claim": ClaimSchema(),
    "ClaimResponse": ClaimResponseSchema(),
}
BUNDLE_SCHEMA = BundleSchema()
