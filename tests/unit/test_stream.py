"""Reading a push from a file, entry by entry: the same records and problems as reading it whole, and units that
keep together what the mapping looks up within the push."""

import json

from mediator.intake.spool import RecordSpool
from mediator.journal.compact import decode
from mediator.openimis.reader import read_body
from mediator.openimis.schemas import SCHEMAS
from mediator.openimis.stream import survey
from tests import samples

ALL = tuple(SCHEMAS)
OTHER_FAMILY = "7c4f0d5e-9a1b-4c2d-8e3f-0a1b2c3d4e5f"
OTHER_HEAD = "8d5e1f6a-0b2c-4d3e-9f4a-1b2c3d4e5f6a"


def write(tmp_path, doc, raw=None):
    path = tmp_path / "push.json"
    path.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return path


def mixed():
    return samples.bundle(
        samples.claim_response(),
        samples.claim(),
        samples.coverage(),
        samples.patient(),
        samples.patient(samples.MEMBER, "104000002", is_head=False),
        samples.patient(OTHER_HEAD, "104000003", family=OTHER_FAMILY),
        samples.group(OTHER_FAMILY, (OTHER_HEAD,)),
        samples.group(),
        *samples.locations(),
        {"resourceType": "Patient", "id": "broken", "identifier": ["abc"]},
    )


def test_a_bundle_read_entry_by_entry_gives_what_reading_it_whole_gives(tmp_path):
    doc = mixed()
    spool = RecordSpool(tmp_path)
    found = survey(write(tmp_path, doc), ALL, on_record=spool.write)
    whole = read_body(json.dumps(doc).encode(), ALL)
    assert found.records == [f"{r.kind}/{r.key}" for r in whole.records]
    assert found.problems == whole.problems
    assert found.resource_counts == whole.resource_counts
    kept = list(spool.kept(found.labels))
    assert [label for label, _ in kept] == found.records
    assert [decode(data) for _, data in kept] == whole.records
    spool.close()
    assert not spool.path.exists()


def test_resource_type_after_the_entries_still_makes_a_bundle(tmp_path):
    doc = samples.bundle(samples.patient())
    raw = json.dumps({"entry": doc["entry"], "type": "collection", "resourceType": "Bundle"}).encode()
    assert survey(write(tmp_path, None, raw), ALL).records == [f"Patient/{samples.HEAD}"]


def test_a_body_that_breaks_off_is_refused_whole(tmp_path):
    raw = json.dumps(samples.bundle(samples.patient(), samples.group())).encode()[:-40]
    found = survey(write(tmp_path, None, raw), ALL)
    assert found.records == []
    assert [(p.record, p.field) for p in found.problems] == [("body", "body")]
    assert "not valid JSON" in found.problems[0].message


def test_an_entry_list_that_is_not_a_list_is_named(tmp_path):
    found = survey(
        write(tmp_path, {"resourceType": "Bundle", "type": "collection", "entry": {"resource": samples.patient()}}), ALL
    )
    assert found.records == [] and [(p.record, p.field) for p in found.problems] == [("Bundle", "entry")]


def test_a_record_sent_twice_is_refused_and_not_kept(tmp_path):
    doc = samples.bundle(samples.patient(), samples.patient(), samples.group())
    spool = RecordSpool(tmp_path)
    found = survey(write(tmp_path, doc), ALL, on_record=spool.write)
    assert found.records == [f"Group/{samples.FAMILY}"]
    assert [p.message for p in found.problems] == ["appears more than once in the Bundle"]
    assert [label for label, _ in spool.kept(found.labels)] == [f"Group/{samples.FAMILY}"]
    spool.close()


def test_a_family_its_members_their_policy_and_claims_share_a_unit(tmp_path):
    units = survey(write(tmp_path, mixed()), ALL).units
    family = {
        units[f"Patient/{samples.HEAD}"],
        units[f"Patient/{samples.MEMBER}"],
        units[f"Group/{samples.FAMILY}"],
        units[f"Coverage/{samples.POLICY}"],  # names its beneficiary by insurance number
        units[f"Claim/{samples.CLAIM}"],
        units["ClaimResponse/9da194ce-73ed-4fec-9218-082197ebe4b1"],
    }
    other = {units[f"Patient/{OTHER_HEAD}"], units[f"Group/{OTHER_FAMILY}"]}
    assert len(family) == 1 and len(other) == 1 and family != other
    metadata = {units[f"Location/{samples.VILLAGE}"], units[f"Location/{samples.REGION}"]}
    assert len(metadata) == 2  # metadata goes as a whole, before data: it needs no unit


def test_a_broken_body_is_refused_without_quoting_it(tmp_path):
    patient = b'{"resourceType": "Patient", "name": [{"family": "Nakamura" "given": ["Aiko"]}]}'
    raw = b'{"resourceType": "Bundle", "entry": [{"resource": ' + patient + b"}]}"
    (problem,) = survey(write(tmp_path, None, raw), ALL).problems
    assert problem.message.startswith("not valid JSON")
    assert "Nakamura" not in problem.message and "Aiko" not in problem.message
