"""The journal's compact form of a record reads back as the very record that was validated."""

import json
from decimal import Decimal
from pathlib import Path

from mediator.journal.compact import decode, encode
from mediator.openimis.reader import read_document
from mediator.openimis.records import Claim, Insuree
from mediator.openimis.schemas import SCHEMAS
from tests import samples

DATA = Path(__file__).resolve().parents[1] / "data" / "openimis-24.04"


def real_records():
    for path in sorted(DATA.glob("*.json")):
        reading = read_document(json.loads(path.read_text()), SCHEMAS)
        yield from reading.records


def sample_records():
    resources = [
        samples.patient(),
        samples.group(),
        *samples.locations(),
        samples.coverage(),
        samples.contract(),
        samples.claim(),
        samples.claim_response(),
        *samples.code_lists_for_claims(),
    ]
    return read_document(samples.bundle(*resources), SCHEMAS).records


RECORDS = [*real_records(), *sample_records()]


def test_every_kind_of_record_is_covered():
    assert {type(r).__name__ for r in RECORDS} >= {
        "Insuree", "Family", "Area", "Facility", "CodeEntry", "Policy", "Claim", "ClaimReview"
    }  # fmt: skip


def test_every_record_reads_back_equal_with_its_types():
    for record in RECORDS:
        again = decode(encode(record))
        assert again == record
        assert type(again) is type(record)
        for name, value in vars(record).items():
            assert type(getattr(again, name)) is type(value), (record.kind, record.key, name)


def test_the_same_record_always_gives_the_same_bytes():
    first = Insuree("k", "v", insurance_number="1", first_name="A")
    second = Insuree(first_name="A", insurance_number="1", village_key="v", key="k")
    assert encode(first) == encode(second)
    assert encode(first) != encode(Insuree("k", "v", insurance_number="2", first_name="A"))


def test_decimals_are_kept_exactly_and_defaults_left_out():
    claim = next(r for r in RECORDS if isinstance(r, Claim) and r.lines)
    kept = json.loads(encode(claim))
    assert isinstance(kept["claimed"], str) and Decimal(kept["claimed"]) == claim.claimed
    bare = json.loads(encode(Insuree("k", "v")))
    assert bare == {"t": "Insuree", "key": "k", "village_key": "v"}
