"""The shapes a real openIMIS 24.04 FHIR module writes, taken as they are: identifier types, references, ICD codes,
dateTimes for dates, floats for numbers, URL styles, and the insurer among the Organizations."""

import json
from datetime import date
from decimal import Decimal

from mediator.openimis.reader import read_body
from mediator.openimis.schemas import SCHEMAS
from mediator.openimis.stream import survey
from tests import samples

ALL = tuple(SCHEMAS)
IG = samples.IG
CLAIM_UUID = "96c604a1-4d71-4c37-bd5a-867595863102"


def read(doc):
    return read_body(json.dumps(doc).encode(), ALL)


def one(doc):
    reading = read(doc)
    assert reading.problems == [], reading.problems
    (record,) = reading.records
    return record


def insurer():
    return {
        "resourceType": "Organization",
        "id": "openIMIS-Implementation",
        "identifier": [samples.code_identifier("openIMIS")],
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "ins"}]}],
        "name": "openIMIS Implementation",
    }


def diagnosed(*codings):
    claim = samples.claim()
    claim["diagnosis"] = [
        {"sequence": i + 1, "diagnosisCodeableConcept": {"coding": [coding]}} for i, coding in enumerate(codings)
    ]
    return one(claim)


# --- identifiers ------------------------------------------------------------------------------------------------


def test_a_business_code_typed_code_is_read_as_the_code_of_areas_facilities_and_claims():
    area = samples.area(samples.REGION, "R", "R1", "Ultha")
    area["identifier"][1] = samples.code_identifier("R1", "Code")
    organization = samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta Hospital")
    organization["identifier"][1] = samples.code_identifier("RAHOS001", "Code")
    claim = samples.claim()
    claim["identifier"][1] = samples.code_identifier("CID00001", "Code")
    assert one(area).code == "R1"
    assert one(organization).code == "RAHOS001"
    assert one(claim).code == "CID00001"


def test_the_older_business_code_types_are_read_the_same():
    area = samples.area(samples.REGION, "R", "R1", "Ultha")  # LC
    claim = samples.claim()  # MR
    assert (one(area).code, one(claim).code) == ("R1", "CIA00001")


# --- references -------------------------------------------------------------------------------------------------


def test_a_review_naming_its_claim_claimv2_links_to_that_claim():
    review = samples.claim_response(CLAIM_UUID)
    review["request"] = {
        "reference": f"ClaimV2/{CLAIM_UUID}",
        "type": "ClaimV2",
        "identifier": samples.uuid_identifier(CLAIM_UUID),
    }
    assert one(review).claim_key == CLAIM_UUID
    review["request"] = {"reference": f"ClaimV2/{CLAIM_UUID.upper()}"}
    assert one(review).claim_key == CLAIM_UUID


def test_a_reference_carrying_only_an_identifier_names_the_record_by_it():
    claim = samples.claim()
    claim["patient"] = {"type": "Patient", "identifier": samples.uuid_identifier(samples.HEAD)}
    claim["provider"] = {"identifier": {"value": samples.HOSPITAL}}  # untyped, but a UUID
    record = one(claim)
    assert (record.patient_key, record.facility_key) == (samples.HEAD, samples.HOSPITAL)


def test_the_uuid_identifier_beside_a_reference_wins_over_the_reference():
    claim = samples.claim()
    claim["patient"] = {"reference": "Patient/104000001", "identifier": samples.uuid_identifier(samples.HEAD)}
    assert one(claim).patient_key == samples.HEAD


def test_a_coverage_beneficiary_is_an_insurance_number_or_an_insuree():
    coverage = samples.coverage()
    assert one(coverage).insurance_numbers == ("104000001",)
    coverage["beneficiary"] = {"identifier": samples.code_identifier("104000001")}
    assert one(coverage).insurance_numbers == ("104000001",)
    coverage["beneficiary"] = {
        "reference": f"Patient/{samples.HEAD}",
        "identifier": samples.uuid_identifier(samples.HEAD),
    }
    policy = one(coverage)
    assert (policy.insuree_keys, policy.insurance_numbers) == ((samples.HEAD,), ())


def test_a_claim_naming_its_insuree_by_insurance_number_alone_is_refused_naming_the_field():
    claim = samples.claim()
    claim["patient"] = {"identifier": samples.code_identifier("104000001")}
    (problem,) = read(claim).problems
    assert problem.field == "patient"


def test_a_family_listing_superseded_versions_of_its_insurees_is_read_with_every_member():
    superseded = "f8319403-4228-42fe-bca1-d85732f50735"
    reading = read(samples.bundle(samples.group(members=(samples.HEAD, superseded)), samples.patient()))
    assert reading.problems == []
    assert reading.records[0].member_keys == (samples.HEAD, superseded)


# --- ICD codes --------------------------------------------------------------------------------------------------


def test_an_icd_code_followed_by_its_description_is_the_code_named_by_the_description():
    claim = diagnosed(
        {
            "system": f"{IG}/CodeSystem/diagnosis-ICD10-level1",
            "code": "A009 Cholera, unspecified",
            "display": "Cholera, unspecified",
        },
        {"code": "A000 Cholera due to Vibrio cholerae 01, biovar cholerae"},
    )
    assert claim.diagnoses == (
        ("A009", "Cholera, unspecified"),
        ("A000", "Cholera due to Vibrio cholerae 01, biovar cholerae"),
    )


def test_an_icd_code_without_description_is_kept_as_it_is():
    claim = diagnosed({"code": "A0105", "display": "Typhoid osteomyelitis"}, {"code": "G44"}, {"code": "U07.1"})
    assert claim.diagnoses == (("A0105", "Typhoid osteomyelitis"), ("G44", "G44"), ("U07.1", "U07.1"))


def test_a_local_code_is_split_only_where_its_display_says_what_the_description_is():
    claim = diagnosed({"code": "MAL-1 Malaria", "display": "Malaria"}, {"code": "MAL-2 Severe malaria"})
    assert claim.diagnoses == (("MAL-1", "Malaria"), ("MAL-2 Severe malaria", "MAL-2 Severe malaria"))


# --- dates and numbers ------------------------------------------------------------------------------------------


def test_dates_written_as_datetimes_are_their_day():
    patient = samples.patient(birthDate="1979-03-19T00:00:00")
    assert one(patient).birth_date == date(1979, 3, 19)
    claim = samples.claim()
    claim["billablePeriod"] = {"start": "2019-01-23T00:00:00", "end": "2019-01-23T23:30:00+03:00"}
    claim["created"] = "2019-01-24T10:00:00Z"
    record = one(claim)
    assert (record.start, record.end, record.created) == (date(2019, 1, 23), date(2019, 1, 23), date(2019, 1, 24))
    coverage = samples.coverage()
    coverage["period"] = {"start": "2019-08-20T00:00:00", "end": "2020-08-19T00:00:00"}
    coverage["extension"] = [
        {"url": f"{IG}//StructureDefinition/coverage-date", "valueDate": "2019-08-20T00:00:00"},
        {"url": f"{IG}//StructureDefinition/coverage-date", "valueDate": "2019-08-21"},
    ]
    policy = one(coverage)
    assert (policy.enroll_date, policy.effective_date) == (date(2019, 8, 20), date(2019, 8, 21))
    assert (policy.start_date, policy.expiry_date) == (date(2019, 8, 20), date(2020, 8, 19))
    contract = samples.contract()
    contract["term"][0]["asset"][0]["period"] = [{"start": "2019-08-20T00:00:00", "end": "2020-08-19T00:00:00"}]
    assert one(contract).expiry_date == date(2020, 8, 19)


def test_code_lists_with_datetimes_where_openimis_writes_them_are_read():
    plan = samples.code_list_entry("InsurancePlan", samples.POLICY, "BCUL0001", "Basic Cover Ultha")
    plan["period"] = {"start": "2017-01-01T00:00:00", "end": "2030-12-31T00:00:00"}
    service = samples.code_list_entry("ActivityDefinition", samples.SERVICE, "A1", "General Consultation")
    service["date"] = "2017-01-01T00:00:00"
    assert one(plan).code == "BCUL0001" and one(service).code == "A1"


def test_a_date_that_is_no_day_is_still_refused():
    for bad in ("2019-02-30T00:00:00", "2019-02-03Tnoon", "03/02/2019"):
        (problem,) = read(samples.patient(birthDate=bad)).problems
        assert problem.field == "birthDate", bad


def test_numbers_written_as_floats_are_read_exactly():
    claim = samples.claim()
    claim["item"][0].update(sequence=1.0, quantity={"value": 0.1}, unitPrice={"value": 1670.0, "currency": "$"})
    record = one(claim)
    line = record.lines[0]
    assert (line.sequence, line.quantity, line.price) == (1, Decimal("0.1"), Decimal("1670.0"))


def test_a_line_number_with_a_fraction_is_refused_not_cut_down():
    claim = samples.claim()
    claim["item"][0]["sequence"] = 1.5
    (problem,) = read(claim).problems
    assert problem.field == "item[0].sequence"


# --- URL styles -------------------------------------------------------------------------------------------------


def test_relative_double_slash_and_page_urls_are_matched_on_their_last_segment():
    organization = samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta Hospital")
    organization["extension"] = [
        {
            "url": f"{IG}/StructureDefinition/organization-legal-form",
            "valueCodeableConcept": {"coding": [{"system": "CodeSystem/organization-legal-form", "code": "P"}]},
        },
        {
            "url": f"{IG}//StructureDefinition/organization-hf-level",
            "valueCodeableConcept": {"coding": [{"system": f"{IG}//CodeSystem/organization-hf-level", "code": "D"}]},
        },
    ]
    facility = one(organization)
    assert (facility.level, facility.legal_form) == ("D", "P")
    patient = samples.patient()
    patient["extension"][0]["url"] = f"{IG}/StructureDefinition-patient-is-head.html"
    patient["extension"][1]["url"] = "patient-card-issued"
    insuree = one(patient)
    assert (insuree.is_head, insuree.card_issued) == (True, False)


# --- the insurer ------------------------------------------------------------------------------------------------


def test_the_insurer_organization_is_skipped_with_its_reason_not_refused():
    reading = read(samples.bundle(insurer(), samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta")))
    assert reading.problems == []
    assert [r.key for r in reading.records] == [samples.HOSPITAL]
    (skipped,) = reading.skipped
    assert skipped.record == "Organization/openIMIS-Implementation"
    assert "not a health facility" in skipped.reason and "ins" in skipped.reason
    assert reading.resource_counts == {"Organization": 2}


def test_a_policy_holder_organization_is_skipped_too_and_a_provider_or_untyped_one_is_a_facility():
    holder = {**insurer(), "id": "holder-1", "type": [{"coding": [{"code": "bus"}]}]}
    (skipped,) = read(holder).skipped
    assert "policy holder" in skipped.reason
    provider = samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta Hospital")
    provider["type"] = [{"coding": [{"code": "prov"}]}]
    assert one(provider).key == samples.HOSPITAL
    assert one(samples.facility_organization(samples.HOSPITAL, "RAHOS001", "Rapta Hospital")).key == samples.HOSPITAL


def test_the_insurer_is_skipped_even_when_it_has_nothing_a_facility_needs():
    bare = {"resourceType": "Organization", "type": [{"coding": [{"code": "ins"}]}]}
    reading = read(samples.bundle(bare))
    assert reading.problems == [] and reading.records == []
    assert [s.record for s in reading.skipped] == ["Bundle.entry[0] (Organization)"]


def test_a_push_read_from_a_file_lists_what_it_skipped_and_keeps_no_record_of_it(tmp_path):
    path = tmp_path / "push.json"
    path.write_text(json.dumps(samples.bundle(insurer(), *samples.locations())))
    found = survey(path, ALL)
    assert found.problems == []
    assert [s.record for s in found.skipped] == ["Organization/openIMIS-Implementation"]
    assert found.labels[0] is None and len(found.records) == 6
    assert found.resource_counts == {"Organization": 2, "Location": 5}
