import json
from datetime import date

from mediator.openimis.reader import read_body
from mediator.openimis.records import Family, Insuree
from tests import samples

INSUREE_TYPES = ("Patient", "Group")


def read(doc, accepted=INSUREE_TYPES):
    return read_body(json.dumps(doc).encode(), accepted)


def test_bare_patient_becomes_an_insuree():
    reading = read(samples.patient())
    assert reading.problems == []
    (insuree,) = reading.records
    assert isinstance(insuree, Insuree)
    assert insuree.key == samples.HEAD
    assert insuree.village_key == samples.VILLAGE
    assert insuree.insurance_number == "104000001"
    assert insuree.family_key == samples.FAMILY
    assert insuree.gender == "F"
    assert insuree.birth_date == date(1979, 3, 19)
    assert insuree.is_head is True
    assert insuree.marital_status == "M"
    assert insuree.education == "4"
    assert insuree.identification_type == "N"
    assert insuree.identification_number == "NAT-778899"
    assert (insuree.first_name, insuree.last_name, insuree.phone) == ("Ageni", "Nonino", "+255 700 000 001")


def test_bundle_with_group_and_patients_gives_family_and_insurees():
    reading = read(
        samples.bundle(samples.group(), samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False))
    )
    assert reading.problems == []
    family = reading.records[0]
    assert isinstance(family, Family)
    assert family.poverty is True and family.family_type == "H"
    assert family.member_keys == (samples.HEAD, samples.MEMBER)
    assert reading.resource_counts == {"Group": 1, "Patient": 2}


def test_every_bundle_type_is_read():
    for kind in ("collection", "batch", "transaction", "searchset"):
        assert read(samples.bundle(samples.patient(), kind=kind)).problems == []


def test_patient_without_village_is_refused_naming_the_field():
    (problem,) = read(samples.patient(village=None)).problems
    assert problem.record == f"Patient/{samples.HEAD}"
    assert problem.field == "address"
    assert "village" in problem.message


def test_bad_birth_date_names_record_and_field():
    (problem,) = read(samples.patient(birthDate="19-03-1979")).problems
    assert (problem.record, problem.field) == (f"Patient/{samples.HEAD}", "birthDate")


def test_nested_error_gets_a_path():
    doc = samples.patient()
    doc["extension"][0]["valueBoolean"] = "yes"
    (problem,) = read(doc).problems
    assert problem.field == "extension[0].valueBoolean"


def test_record_without_usable_id_is_named_by_its_place_in_the_bundle():
    doc = samples.patient()
    del doc["id"]
    doc["identifier"] = [samples.code_identifier("104000001")]
    (problem,) = read(samples.bundle(samples.group(), doc)).problems
    assert problem.record == "Bundle.entry[1] (Patient)"
    assert problem.field == "identifier"


def test_resource_type_not_taken_on_the_channel_is_refused():
    (problem,) = read({"resourceType": "Claim", "id": "c1"}).problems
    assert problem.field == "resourceType"
    assert "Claim" in problem.message


def test_body_that_is_not_json_is_refused():
    reading = read_body(b"{not json", INSUREE_TYPES)
    assert reading.records == []
    assert reading.problems[0].field == "body"


def test_json_that_is_not_a_resource_is_refused():
    assert read([1, 2]).problems[0].field == "resourceType"
    assert read({"hello": "world"}).problems[0].field == "resourceType"


def test_unknown_bundle_type_is_refused():
    doc = samples.bundle(samples.patient(), kind="weird")
    assert read(doc).problems[0].record == "Bundle"


def test_same_record_twice_in_a_bundle_is_refused():
    problems = read(samples.bundle(samples.patient(), samples.patient())).problems
    assert [p.field for p in problems] == ["identifier"]


def test_ig_style_patient_keyed_by_resource_id():
    doc = samples.patient()
    doc["id"] = "john-doe"
    doc["identifier"] = [samples.code_identifier("123456789")]
    doc["address"][0]["extension"][1]["valueReference"] = {"reference": "Location/Jamula-village"}
    (insuree,) = read(doc).records
    assert insuree.key == "john-doe"
    assert insuree.village_key == "Jamula-village"


def test_every_copy_of_a_record_sent_twice_is_dropped():
    reading = read(samples.bundle(samples.patient(), samples.patient(), samples.patient(samples.MEMBER, "2")))
    assert [r.key for r in reading.records] == [samples.MEMBER]
    assert len(reading.problems) == 1


def test_a_claim_whose_every_line_was_refused_is_rejected():
    review = samples.claim_response()
    refused = {"coding": [{"code": "1"}]}
    for item in review["item"]:
        item["adjudication"] = [{"category": refused, "amount": {"value": 10}, "value": 1}]
    review["total"] = [{"category": {"coding": [{"code": "2"}]}, "amount": {"value": 660}}]
    (record,) = read(review, ("ClaimResponse",)).records
    assert record.status == "1"


def test_review_categories_that_are_not_claim_statuses_are_ignored():
    review = samples.claim_response()
    del review["total"]
    review["item"][0]["adjudication"].append({"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 1}})
    (record,) = read(review, ("ClaimResponse",)).records
    assert record.status == "16"


def test_claim_lines_need_their_own_sequence():
    claim = samples.claim()
    claim["item"][1]["sequence"] = 1
    (problem,) = read(claim, ("Claim",)).problems
    assert problem.field == "item"


def test_contract_in_another_shape_is_refused_not_crashed():
    for bad in (
        {"asset": 5},
        {"asset": [{"typeReference": 3}]},
        {"asset": [{"valuedItem": [{"net": {"value": "sNaN"}}]}]},
    ):
        contract = samples.contract()
        contract["term"] = [bad]
        (problem,) = read(contract, ("Contract",)).problems
        assert problem.field.startswith("term"), problem


def test_amounts_dhis2_cannot_store_are_refused():
    for value in ("1e9999999", "NaN", "Infinity", 1e300):
        claim = samples.claim()
        claim["total"] = {"value": value}
        problems = read(claim, ("Claim",)).problems
        assert problems and problems[0].field == "total.value", value
