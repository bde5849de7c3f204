"""Claiming slices of a push from the journal: metadata first and whole, data in whole units, a unit never split
between two workers, records kept for the request delivering them taken by it alone, a dead worker's lease taken
over."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mediator.journal.claim import LEASE, claim
from mediator.journal.models import Work
from mediator.journal.store import Journal
from tests import samples

VILLAGE = samples.VILLAGE


@pytest.fixture
def journal(tmp_path):
    return Journal.open(f"sqlite:///{tmp_path / 'j.sqlite'}")


def keep(journal, units, metadata=0, holder=None):
    """A push of `metadata` regions and one Patient per entry of `units` (the unit it is in)."""
    records = [(f"Location/{VILLAGE[:-3]}{i:03d}", samples.area(f"{VILLAGE[:-3]}{i:03d}", "R", f"R{i}", "region"))
               for i in range(metadata)]  # fmt: skip
    patients = [(f"Patient/p{i}", samples.patient(f"p{i}", f"10{i:07d}")) for i in range(len(units))]
    units_of = {f"Patient/p{i}": u for i, u in enumerate(units)}
    accepted = samples.accept_resources(
        journal, [*records, *patients], channel="openimis", units=units_of, holder=holder
    )
    return accepted.transaction_id


def labels(taken):
    return sorted(taken.labels)


def test_metadata_goes_first_and_whole_then_data_in_whole_units(journal):
    tid = keep(journal, units=[1, 1, 1, 4, 5, 5], metadata=3)
    first = claim(journal, tid, size=1)
    assert labels(first) == sorted(f"Location/{VILLAGE[:-3]}{i:03d}" for i in range(3))
    assert claim(journal, tid, size=1) is None  # data waits while metadata is on its way
    with journal.sessions.begin() as session:
        session.execute(update(Work).where(Work.id.in_(first.ids)).values(state="delivered"))
    second = claim(journal, tid, size=2)
    assert labels(second) == ["Patient/p0", "Patient/p1", "Patient/p2"]  # unit 1 whole, past the size
    third = claim(journal, tid, size=2)
    assert labels(third) == ["Patient/p3", "Patient/p4", "Patient/p5"]
    assert claim(journal, tid) is None


def test_a_unit_part_of_which_another_worker_holds_is_left_whole(journal):
    tid = keep(journal, units=[1, 1, 2])
    with journal.sessions.begin() as session:  # another worker's claim on one record of unit 1, still running
        first = session.query(Work).filter(Work.key == "p0").one()
        first.claimed_until, first.claimed_by = datetime.now(UTC) + LEASE, "elsewhere:1"
    taken = claim(journal, tid)
    assert labels(taken) == ["Patient/p2"]


def test_records_kept_for_a_request_are_taken_by_it_alone_until_released(journal):
    tid = keep(journal, units=[1, 2], holder="here:1:request")
    assert claim(journal, tid) is None
    assert labels(claim(journal, tid, holder="here:1:request")) == ["Patient/p0", "Patient/p1"]


def test_a_lease_that_ran_out_is_taken_over(journal):
    tid = keep(journal, units=[1])
    assert claim(journal, tid) is not None
    assert claim(journal, tid) is None  # leased
    later = datetime.now(UTC) + LEASE + timedelta(seconds=1)
    assert labels(claim(journal, tid, now=later)) == ["Patient/p0"]


def test_what_a_slice_holds_is_the_record_as_validated(journal):
    tid = keep(journal, units=[1])
    (record,) = claim(journal, tid).records
    assert record.kind == "Patient" and record.key == "p0" and record.insurance_number == "100000000"


def test_a_record_kept_in_a_form_this_version_cannot_read_is_rejected_not_stuck(journal):
    from mediator.journal.claim import UNREADABLE
    from mediator.journal.models import Outcome

    tid = keep(journal, units=[1, 2])
    with journal.sessions.begin() as session:
        session.execute(update(Work).where(Work.key == "p0").values(record='{"t": "Insuree", "renamed": 1}'))
    taken = claim(journal, tid)
    assert labels(taken) == ["Patient/p1"] and len(taken.ids) == 1
    with journal.sessions() as session:
        row = session.query(Work).filter(Work.key == "p0").one()
        assert row.state == "rejected" and row.reasons[0]["message"] == UNREADABLE
        assert [(o.record, o.status) for o in session.query(Outcome)] == [("Patient/p0", "rejected")]
