"""What a real openIMIS 24.04 backend serves (tests/data/openimis-24.04: one Bundle per resource type, holding the
entries as its FHIR API served them) goes through the all-kinds channel into a freshly bootstrapped DHIS2, every
record accounted for: once as one Bundle, and once a resource type at a time, metadata first.

The data is openIMIS's demo database as its FHIR module writes it: area and facility codes typed `Code`, ICD codes
followed by their description, reviews naming `ClaimV2/<uuid>`, families listing the superseded versions of their
insurees, the insurer among the Organizations, dateTimes where dates are meant, floats for every number. One claim
(CIA06601) is for an insuree openIMIS has deleted and lists nowhere: it is the only record DHIS2 cannot take.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.delivery.bootstrap import bootstrap
from mediator.mapping import defaults
from mediator.mapping.claim import claim_details_uid, claim_enrollment_uid, claim_line_uid
from mediator.mapping.insuree import enrollment_uid
from mediator.mapping.metadata import option_uid
from mediator.mapping.model import Setup
from mediator.mapping.policy import policy_event_uid
from mediator.mapping.uids import derive_uid, org_unit_uid, tracked_entity_uid
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, basic, dhis2_client, mediator_client

DATA = Path(__file__).resolve().parents[1] / "data" / "openimis-24.04"
# Dependency order: what a record names is pushed before it.
FILES = [
    "Location",
    "Location_physicalType_si",
    "Organization",
    "InsurancePlan",
    "Medication",
    "ActivityDefinition",
    "Patient",
    "Group",
    "Coverage",
    "Contract",
    "Claim",
    "ClaimResponse",
]
AUTH = basic("openhim-openimis", "openimis-route-pass")
SETUP = Setup()
A = defaults.INSUREE_ATTRIBUTES
DE = SETUP.data_elements
ORPHAN_CLAIM = "051bf876-8be5-4082-be29-83bb1a120a67"  # CIA06601, for the deleted insuree 6591b749-...
INSURER = "Organization/openIMIS-Implementation"
# The claim status each ClaimResponse reached, as openIMIS's database has it.
REVIEW_STATUS = {
    "CID00001": "2",
    "CIB00001": "2",
    "CIA00001": "4",
    "RAD00001": "1",
    "UPDH0001": "16",
    "UPDH0002": "4",
    "JADH0001": "16",
    "CIG00001": "2",
    "UPDH0009": "4",
}


def resources(name: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads((DATA / f"{name}.json").read_text())["entry"]]


def of_type(kind: str) -> list[dict[str, Any]]:
    return [r for name in FILES for r in resources(name) if r["resourceType"] == kind]


def identifier(resource: dict[str, Any], kind: str) -> str:
    return next(i["value"] for i in resource["identifier"] if i["type"]["coding"][0]["code"] == kind)


def extension(resource: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension") or [] if e["url"].endswith(f"/{name}")), None)


def uuid_of(reference: dict[str, Any]) -> str:
    return reference["reference"].rsplit("/", 1)[1]


def issues(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(envelope["response"]["body"])["issue"]


def errors(envelope: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for issue in issues(envelope):
        if issue["severity"] == "error":
            record, text = issue["diagnostics"].split(": ", 1)
            found.setdefault(record, []).append(text)
    return found


def push_into_fresh_dhis2(bodies: list[bytes], state: Path) -> tuple[list[dict[str, Any]], Any]:
    running = RunningFake(FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})).start()
    try:
        bootstrap(dhis2_client(running), SETUP, "openIMIS")
        env = {
            "MEDIATOR_STATE_DIR": str(state),
            "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
            "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
            "MEDIATOR_PSEUDONYM_KEY": "real-data-key",
        }
        client = mediator_client(env, dhis2_url=running.url, channel_openimis_password="openimis-route-pass")
        answers = []
        for body in bodies:
            resp = client.post("/channels/openimis", data=body, headers={**AUTH, "Content-Type": "application/json"})
            answers.append(json.loads(resp.data))
    finally:
        running.stop()
    return answers, running.fake.store


def one_bundle() -> list[bytes]:
    entries = [{"resource": r} for name in FILES for r in resources(name)]
    return [json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()]


def type_by_type() -> list[bytes]:
    return [(DATA / f"{name}.json").read_bytes() for name in FILES]


@pytest.fixture(scope="module", params=["one Bundle", "type by type"])
def pushed(request: Any, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    bodies = one_bundle() if request.param == "one Bundle" else type_by_type()
    answers, store = push_into_fresh_dhis2(bodies, tmp_path_factory.mktemp("real-openimis"))
    yield {"answers": answers, "store": store, "mode": request.param}


def test_nothing_is_rejected_but_the_claim_of_a_deleted_insuree_and_its_review(pushed):
    rejected = {record: texts for envelope in pushed["answers"] for record, texts in errors(envelope).items()}
    assert set(rejected) == {f"Claim/{ORPHAN_CLAIM}", f"ClaimResponse/{ORPHAN_CLAIM}"}, rejected
    missing_insuree = "patient [E1068]: its insuree Patient/6591b749-90ec-4d6f-bfe3-e770f0ce10d8 is neither in DHIS2"
    assert any(t.startswith(missing_insuree) for t in rejected[f"Claim/{ORPHAN_CLAIM}"])
    # Sent with its claim, the review shares the claim's fate; sent later, it finds no claim to review.
    review = rejected[f"ClaimResponse/{ORPHAN_CLAIM}"]
    assert any(t.startswith(missing_insuree) or t.startswith(f"request: Claim/{ORPHAN_CLAIM}") for t in review)


def test_every_record_read_is_delivered_or_that_claim_rejected_and_the_insurer_skipped(pushed):
    delivered = rejected = received = 0
    for envelope in pushed["answers"]:
        props = envelope["properties"]
        received += sum(int(v) for k, v in props.items() if k.startswith("received_"))
        delivered += int(props["records_delivered"])
        rejected += int(props["records_rejected"])
        assert int(props["records_pending"]) == 0
    assert received == sum(len(resources(name)) for name in FILES) == 547
    assert (delivered, rejected) == (received - 3, 2)  # the insurer is neither delivered nor rejected


def test_the_insurer_organization_is_no_error_and_no_org_unit(pushed):
    for envelope in pushed["answers"]:
        assert not any(INSURER in i["diagnostics"] for i in issues(envelope) if i["severity"] != "information")
    assert org_unit_uid("openIMIS-Implementation") not in pushed["store"].org_units
    said = [i["diagnostics"] for envelope in pushed["answers"] for i in issues(envelope)]
    assert any(INSURER in text and "skipped: not a health facility" in text for text in said)
    assert sum(int(e["properties"].get("records_skipped", 0)) for e in pushed["answers"]) == 1
    if pushed["mode"] == "type by type":
        organizations = pushed["answers"][FILES.index("Organization")]
        assert organizations["status"] == "Successful", errors(organizations)


def test_every_area_and_facility_is_an_org_unit_in_its_place(pushed):
    units = pushed["store"].org_units
    for area in resources("Location"):
        unit = units[org_unit_uid(area["id"])]
        assert unit["code"] == identifier(area, "Code")
        parent = uuid_of(area["partOf"]) if "partOf" in area else None
        assert unit["parent"]["id"] == (org_unit_uid(parent) if parent else SETUP.root_org_unit)
    for facility in resources("Location_physicalType_si"):
        unit = units[org_unit_uid(facility["id"])]
        assert unit["code"] == identifier(facility, "FI")
        assert unit["parent"]["id"] == org_unit_uid(uuid_of(facility["partOf"]))
    assert len(units) == 31 + 15 + 1  # and the root


def test_every_product_item_and_service_code_is_an_option(pushed):
    store = pushed["store"]
    for kind, option_set in (("InsurancePlan", "product"), ("Medication", "item"), ("ActivityDefinition", "service")):
        codes = {identifier(r, "Code") for r in of_type(kind)}
        assert codes <= store.option_codes(SETUP.option_sets[option_set]), kind


def test_two_items_of_one_name_are_options_told_apart_by_their_code(pushed):
    options = pushed["store"].options
    item_set = SETUP.option_sets["item"]
    names = {code: options[option_uid(item_set, code)]["name"] for code in ("0208", "0209")}
    assert names == {"0208": "RANITIDINE 150MG TABLETS (0208)", "0209": "RANITIDINE 150MG TABLETS (0209)"}


def test_icd_codes_carrying_their_description_become_options_of_the_code_alone(pushed):
    store = pushed["store"]
    icd = SETUP.option_sets["diagnosis"]
    expected = {}
    for claim in of_type("Claim"):
        for diagnosis in claim["diagnosis"]:
            coding = diagnosis["diagnosisCodeableConcept"]["coding"][0]
            code = coding["code"].split(" ", 1)[0]
            assert coding["code"] == f"{code} {coding['display']}"
            expected[code] = coding["display"]
    assert expected["A009"] == "Cholera, unspecified"
    assert set(expected) <= store.option_codes(icd)
    for code, name in expected.items():
        assert store.options[option_uid(icd, code)]["name"] == name


def test_each_insuree_is_a_tracked_entity_enrolled_on_its_village(pushed):
    store = pushed["store"]
    patients = resources("Patient")
    assert len(patients) == 60
    for patient in patients:
        te = store.tracked_entities[tracked_entity_uid(patient["id"])]
        assert te["attributes"][A["insuree_id"]] == patient["id"]
        enrollment = store.enrollments[enrollment_uid(patient["id"], SETUP.programs["insuree"])]
        village = extension(patient["address"][0], "address-location-reference")
        assert enrollment["orgUnit"] == org_unit_uid(uuid_of(village["valueReference"]))
    assert len(store.tracked_entities) == 60


def test_each_family_says_its_id_and_poverty_on_its_members_that_exist(pushed):
    store = pushed["store"]
    members_of: dict[str, list[str]] = {}
    for patient in resources("Patient"):
        group = extension(patient, "patient-group-reference")
        members_of.setdefault(uuid_of(group["valueReference"]), []).append(patient["id"])
    families = resources("Group")
    # openIMIS lists the superseded versions of its insurees among a family's members: no Patient is served for them.
    listed = {uuid_of(m["entity"]) for g in families for m in g["member"]}
    assert len(listed - {p["id"] for p in resources("Patient")}) == 69
    for family in families:
        poverty = extension(family, "group-poverty-status")
        assert members_of[family["id"]]
        for key in members_of[family["id"]]:
            attrs = store.tracked_entities[tracked_entity_uid(key)]["attributes"]
            assert attrs[A["family_id"]] == derive_uid("family", family["id"])
            assert attrs.get(A["poverty"]) == (str(poverty["valueBoolean"]).lower() if poverty else None)


def test_each_insuree_covered_has_a_policy_event(pushed):
    events = pushed["store"].events
    key_of_number = {identifier(p, "Code"): p["id"] for p in resources("Patient")}
    covered = set()
    for contract in resources("Contract"):
        for ref in contract["term"][0]["asset"][0]["typeReference"]:
            covered.add((identifier(contract, "UUID"), uuid_of(ref)))
    for coverage in resources("Coverage"):
        covered.add((identifier(coverage, "UUID"), key_of_number[uuid_of(coverage["beneficiary"])]))
    assert len({insuree for _, insuree in covered}) == 60
    for policy, insuree in covered:
        event = events[policy_event_uid(policy, insuree)]
        assert event["programStage"] == SETUP.stages["policy"]
        assert event["enrollment"] == enrollment_uid(insuree, SETUP.programs["insuree"])


def test_each_claim_is_delivered_with_its_lines_and_review(pushed):
    store = pushed["store"]
    claims = [c for c in resources("Claim") if c["id"] != ORPHAN_CLAIM]
    assert len(claims) == 9
    for claim in claims:
        code = identifier(claim, "Code")
        enrollment = store.enrollments[claim_enrollment_uid(claim["id"])]
        assert enrollment["orgUnit"] == org_unit_uid(uuid_of(claim["provider"]))
        details = store.events[claim_details_uid(claim["id"])]["dataValues"]
        assert details[DE["claim.code"]] == code
        assert (
            details[DE["claim.diagnosis"]]
            == claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"].split(" ", 1)[0]
        )
        assert details[DE["claim.status"]] == REVIEW_STATUS[code]
        for item in claim["item"]:
            stage = {"item": "claim_items", "service": "claim_services"}[item["category"]["text"]]
            line = store.events[claim_line_uid(claim["id"], item["sequence"])]
            assert line["programStage"] == SETUP.stages[stage]
    assert claim_enrollment_uid(ORPHAN_CLAIM) not in store.enrollments
    assert claim_details_uid(ORPHAN_CLAIM) not in store.events
