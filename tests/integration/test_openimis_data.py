"""openIMIS's own data, end to end inside one process: the public demo database as FHIR and the FHIR IG examples
go through the mediator into a freshly bootstrapped DHIS2, every record accounted for.

These read ../shared/data when it is there (it is not part of this project); elsewhere they are skipped.
"""

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.app.web.app import create_app
from mediator.config.console import LiveSettings
from mediator.config.settings import build_settings
from mediator.delivery.bootstrap import bootstrap
from mediator.dhis2.client import Dhis2Client, make_auth
from mediator.mapping.claim import claim_details_uid
from mediator.mapping.model import Setup
from mediator.openimis import fhir
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, basic

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DEMO = DATA / "openimis-demo-fhir"
IG = DATA / "openimis-fhir-ig"
pytestmark = pytest.mark.skipif(
    not DEMO.is_dir(), reason="openIMIS sample data (../shared/data) is not on this machine"
)
AUTH = basic("openhim-openimis", "openimis-route-pass")
SETUP = Setup()
IG_ORDER = [
    "Location",
    "Organization",
    "InsurancePlan",
    "Medication",
    "ActivityDefinition",
    "Group",
    "Patient",
    "Coverage",
    "Contract",
    "Claim",
    "ClaimResponse",
]


def push_all(bodies: list[bytes], state) -> dict:
    """Bodies through the all-kinds channel into a freshly bootstrapped DHIS2, twice."""
    running = RunningFake(FakeDhis2(users={DHIS2_USER: DHIS2_PASSWORD})).start()
    bootstrap(Dhis2Client(running.url, make_auth("basic", DHIS2_USER, DHIS2_PASSWORD, "")), SETUP, "openIMIS")
    env = {
        "MEDIATOR_STATE_DIR": str(state),
        "MEDIATOR_DHIS2_URL": running.url,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_PSEUDONYM_KEY": "data-test-key",
        "MEDIATOR_CHANNEL_OPENIMIS_PASSWORD": "openimis-route-pass",
    }
    client = create_app(LiveSettings(build_settings(env), env)).test_client()

    def push(body: bytes) -> dict:
        resp = client.post("/channels/openimis", data=body, headers={**AUTH, "Content-Type": "application/json"})
        return json.loads(resp.data)

    store = running.fake.store

    def snapshot() -> str:
        kept = [
            store.org_units,
            store.options,
            store.option_sets,
            store.tracked_entities,
            store.enrollments,
            store.events,
        ]
        return json.dumps(kept, sort_keys=True)

    first = [push(b) for b in bodies]
    before = snapshot()
    second = [push(b) for b in bodies]
    running.stop()
    return {"first": first, "second": second, "store": store, "bodies": bodies, "same": before == snapshot()}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    bodies = [(DEMO / f"{name}.json").read_bytes() for name in ("metadata", "insurees", "policies", "claims")]
    return push_all(bodies, tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def ig_pushed(tmp_path_factory):
    ig = [json.loads(p.read_text()) for p in sorted(IG.glob("*.json")) if not p.name.startswith("CodeSystem")]
    ig.sort(key=lambda r: IG_ORDER.index(r["resourceType"]))
    body = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in ig]}).encode()
    return push_all([body], tmp_path_factory.mktemp("ig"))


def outcomes(envelope: dict) -> list[dict]:
    return json.loads(envelope["response"]["body"])["issue"]


def test_every_demo_record_is_delivered(pushed):
    for envelope in pushed["first"]:
        props = envelope["properties"]
        received = sum(int(v) for k, v in props.items() if k.startswith("received_"))
        assert envelope["status"] == "Successful", [i for i in outcomes(envelope) if i["severity"] != "information"][:3]
        assert int(props["records_delivered"]) == received


def test_counts_per_kind_equal_the_input(pushed):
    store = pushed["store"]
    resources = [e["resource"] for body in pushed["bodies"] for e in json.loads(body)["entry"]]
    kinds = Counter(r["resourceType"] for r in resources)
    assert len(store.tracked_entities) == kinds["Patient"]
    by_program = Counter(e["program"] for e in store.enrollments.values())
    assert by_program[SETUP.programs["insuree"]] == kinds["Patient"]
    assert by_program[SETUP.programs["claim"]] == kinds["Claim"]
    by_stage = Counter(e["programStage"] for e in store.events.values())
    assert by_stage[SETUP.stages["claim_details"]] == kinds["Claim"]
    lines = sum(len(r.get("item") or []) for r in resources if r["resourceType"] == "Claim")
    assert by_stage[SETUP.stages["claim_items"]] + by_stage[SETUP.stages["claim_services"]] == lines
    # A facility sent as Location and as Organization is one org unit; the root comes on top.
    places = {fhir.record_key(r) for r in resources if r["resourceType"] in ("Location", "Organization")}
    assert len(store.org_units) == len(places) + 1
    products = {fhir.business_code(r["identifier"]) for r in resources if r["resourceType"] == "InsurancePlan"}
    assert products <= store.option_codes(SETUP.option_sets["product"])


def test_claim_amounts_equal_the_fhir_totals(pushed):
    store = pushed["store"]
    claims = json.loads(pushed["bodies"][3])["entry"]
    de = SETUP.data_elements
    for entry in claims:
        resource = entry["resource"]
        if resource["resourceType"] == "Claim":
            values = store.events[claim_details_uid(fhir.record_key(resource))]["dataValues"]
            assert Decimal(values[de["claim.claimed"]]) == Decimal(str(resource["total"]["value"]))
        else:
            values = store.events[claim_details_uid(fhir.reference_key(resource["request"]))]["dataValues"]
            for total in resource.get("total") or []:
                name = {"4": "claim.approved", "8": "claim.adjusted", "16": "claim.valuated"}.get(
                    total["category"]["coding"][0]["code"]
                )
                if name:
                    assert Decimal(values[de[name]]) == Decimal(str(total["amount"]["value"]))


def test_ig_examples_are_each_delivered_or_rejected_where_their_references_lead_nowhere(ig_pushed):
    (envelope,) = ig_pushed["first"]
    props = envelope["properties"]
    received = sum(int(v) for k, v in props.items() if k.startswith("received_"))
    assert int(props["records_delivered"]) + int(props["records_rejected"]) == received
    rejected = {
        i["diagnostics"].split(":", 1)[0]: i["diagnostics"] for i in outcomes(envelope) if i["severity"] == "error"
    }
    # The Coverage names a Patient that exists nowhere; the hospital's district (and so the claim made there)
    # exists only in openIMIS's demo database, which this DHIS2 has not received.
    assert set(rejected) == {
        "Coverage/d30f70df-d10b-43d4-bf31-5137c118ad84",
        "Organization/d8a25f21-f36a-4d4d-9e58-1db8ffbe7036",
        "Claim/Claim001",
        "ClaimResponse/d30f70df-d10b-43d4-bf31-5137c118ad83",
    }, rejected
    assert "beneficiary" in rejected["Coverage/d30f70df-d10b-43d4-bf31-5137c118ad84"]
    assert "partOf" in rejected["Organization/d8a25f21-f36a-4d4d-9e58-1db8ffbe7036"]
    assert "provider" in rejected["Claim/Claim001"]
    assert ig_pushed["same"]


def test_a_second_push_changes_nothing(pushed):
    assert pushed["same"]
    for envelope in pushed["second"]:
        created = sum(int(v) for k, v in envelope["properties"].items() if k.endswith("_created"))
        assert created == 0, envelope["properties"]
