import json
from dataclasses import replace
from datetime import date

from mediator.mapping import defaults
from mediator.mapping.insuree import InsureeTarget, map_insuree, map_insurees
from mediator.mapping.privacy import pseudonym
from mediator.mapping.uids import derive_uid, is_uid, org_unit_uid
from mediator.openimis.reader import read_body
from mediator.openimis.records import Family, Insuree
from tests import samples

A = defaults.INSUREE_ATTRIBUTES
INSUREE = Insuree(
    key="k-1",
    village_key="v-1",
    insurance_number="104000001",
    family_key="f-1",
    gender="F",
    birth_date=date(1979, 3, 19),
    is_head=True,
    first_name="Ageni",
    last_name="Nonino",
    phone="+255 1",
    identification_number="NAT-1",
    identification_type="N",
)


def values(mapped):
    return {a["attribute"]: a["value"] for a in mapped.tracked_entity["enrollments"][0]["attributes"]}


def test_insuree_becomes_a_person_enrolled_on_its_village():
    te = map_insuree(INSUREE, None, InsureeTarget()).tracked_entity
    assert te["trackedEntityType"] == defaults.PERSON_TRACKED_ENTITY_TYPE
    assert te["orgUnit"] == org_unit_uid("v-1")
    (enrollment,) = te["enrollments"]
    assert enrollment["program"] == defaults.INSUREE_PROGRAM
    assert enrollment["orgUnit"] == org_unit_uid("v-1")
    assert enrollment["trackedEntity"] == te["trackedEntity"]
    assert all(is_uid(u) for u in (te["trackedEntity"], enrollment["enrollment"]))


def test_mapping_is_deterministic():
    a = map_insuree(INSUREE, None, InsureeTarget())
    b = map_insuree(INSUREE, None, InsureeTarget())
    assert json.dumps(a.tracked_entity, sort_keys=True) == json.dumps(b.tracked_entity, sort_keys=True)


def test_personal_data_is_kept_back_by_default():
    v = values(map_insuree(INSUREE, None, InsureeTarget()))
    for field in ("first_name", "last_name", "phone", "identification_number", "insurance_number"):
        assert v[A[field]] is None, field
    assert v[A["birth_date"]] == "1979-01-01"
    assert "Ageni" not in json.dumps(map_insuree(INSUREE, None, InsureeTarget()).tracked_entity)


def test_personal_data_is_sent_when_the_channel_enables_it():
    target = InsureeTarget(
        send_names=True, send_phone=True, send_identification_number=True, birth_date_precision="full"
    )
    v = values(map_insuree(INSUREE, None, target))
    assert (v[A["first_name"]], v[A["last_name"]]) == ("Ageni", "Nonino")
    assert v[A["phone"]] == "+255 1"
    assert v[A["identification_number"]] == "NAT-1"
    assert v[A["birth_date"]] == "1979-03-19"


def test_insurance_number_is_a_keyed_pseudonym():
    v = values(map_insuree(INSUREE, None, InsureeTarget(pseudonym_key="k")))
    assert v[A["insurance_number"]] == pseudonym("k", "104000001", "insurance_number")
    assert (
        v[A["insurance_number"]]
        != values(map_insuree(INSUREE, None, InsureeTarget(pseudonym_key="other")))[A["insurance_number"]]
    )
    assert "104000001" not in json.dumps(v)


def test_codes_and_flags_are_dhis2_option_codes():
    v = values(map_insuree(INSUREE, None, InsureeTarget()))
    assert v[A["gender"]] == "F"
    assert v[A["is_head"]] == "true"
    assert v[A["identification_type"]] == "N"
    assert v[A["family_id"]] == derive_uid("family", "f-1")
    for field, (_, _, codes) in (("gender", defaults.OPTION_SETS["gender"]),):
        assert v[A[field]] in codes


def test_family_in_the_same_push_gives_its_attributes():
    family = Family(key="f-1", poverty=False, family_type="H", member_keys=("k-1",))
    (mapped,) = map_insurees([replace(INSUREE, family_key=None)], [family], InsureeTarget())
    v = values(mapped)
    assert v[A["poverty"]] == "false"
    assert v[A["family_type"]] == "H"
    assert v[A["family_id"]] == derive_uid("family", "f-1")


def test_bare_patient_leaves_family_attributes_alone():
    v = values(map_insuree(INSUREE, None, InsureeTarget()))
    assert A["poverty"] not in v and A["family_type"] not in v


def test_attribute_uids_can_be_overridden():
    target = InsureeTarget(attributes={**A, "gender": "Xx1234567ab"})
    assert "Xx1234567ab" in values(map_insuree(INSUREE, None, target))


def test_patient_from_fhir_maps_end_to_end():
    reading = read_body(json.dumps(samples.patient()).encode(), ("Patient",))
    (mapped,) = map_insurees(reading.records, [], InsureeTarget())
    assert mapped.key == samples.HEAD
    assert mapped.tracked_entity["orgUnit"] == org_unit_uid(samples.VILLAGE)


def test_enrollment_date_tells_no_more_than_the_birth_year_whatever_the_precision():
    target = InsureeTarget(birth_date_precision="full")
    enrollment = map_insuree(INSUREE, None, target).tracked_entity["enrollments"][0]
    assert enrollment["enrolledAt"] == enrollment["occurredAt"] == "1979-01-01"


def test_a_bare_patient_without_family_reference_leaves_the_family_id_alone():
    v = values(map_insuree(replace(INSUREE, family_key=None), None, InsureeTarget()))
    assert A["family_id"] not in v
