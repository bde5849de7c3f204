"""Delivery units: the records of a push that must travel in one slice, found by union-find."""

from mediator.openimis.records import Area, Claim, ClaimReview, Family, Insuree, Policy
from mediator.openimis.units import Units, stage


def assign(*records, aliases=()):
    units = Units()
    for position, record in enumerate(records):
        units.add(f"{record.kind}/{record.key}", position, record)
    for kind, rid, key in aliases:
        units.alias(kind, rid, key)
    return units.assign()


def test_a_family_its_members_their_policy_claim_and_review_are_one_unit_named_by_its_first_record():
    got = assign(
        Area("v", "Village", "V"),
        ClaimReview("r", "c", "16", {}),
        Insuree("head", "v", insurance_number="111", family_key="fam"),
        Insuree("member", "v", family_key="fam"),
        Family("fam", member_keys=("head", "member")),
        Policy("Coverage", "pol", insurance_numbers=("111",)),
        Policy("Contract", "pol", insuree_keys=("member",)),
        Claim("c", "member", "hf"),
        Insuree("alone", "v"),
    )
    family = {got[label] for label in ("Patient/head", "Patient/member", "Group/fam", "Coverage/pol",
                                       "Contract/pol", "Claim/c", "ClaimResponse/r")}  # fmt: skip
    assert family == {1}  # the review came first
    assert got["Patient/alone"] == 8
    assert got["Location/v"] == 0  # metadata joins nothing: it goes first, whole


def test_chains_of_any_length_collapse_into_one_unit():
    n = 20000
    records = [Insuree(f"p{i}", "v", family_key=f"f{i}") for i in range(n)]
    records += [Family(f"f{i}", member_keys=(f"p{i}", f"p{i + 1}")) for i in range(n - 1)]
    got = assign(*records)
    assert set(got.values()) == {0}


def test_a_record_named_by_its_resource_id_joins_the_record_keyed_by_its_uuid():
    got = assign(
        Insuree("uuid-1", "v"),
        Claim("c", "id-1", "hf"),
        aliases=[("Patient", "id-1", "uuid-1")],
    )
    assert got["Patient/uuid-1"] == got["Claim/c"] == 0


def test_metadata_is_stage_zero():
    assert [stage(k) for k in ("Location", "Organization", "InsurancePlan", "Patient", "Claim")] == [0, 0, 0, 1, 1]
