"""Aggregates over time: a record changed or superseded moves its contribution and the months it touched are sent
again with the right values; DHIS2 down, a conflict, small counts, ADX, older DHIS2 versions; aggregate-only mode
sends no tracker call at all."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mediator.aggregates.contributions import parse_month
from mediator.config.console import LiveSettings
from mediator.config.settings import DEFAULT_CONFIG_FILE
from mediator.journal.models import AggregateDue
from mediator.mapping.uids import org_unit_uid
from tests import samples
from tests.aggregate_totals import sent, totals
from tests.integration.test_aggregates import FILES, HEADERS, REAL, Mediator, bodies, this_month

WARD_2 = "a1f0c7e2-6b1d-4f3e-9a52-7c8d9e0f1a2b"
VILLAGE_2 = samples.OTHER_VILLAGE


def month_after(now: datetime) -> datetime:
    return datetime(now.year + (now.month == 12), now.month % 12 + 1, 5, tzinfo=UTC)


class World:
    """The resources openIMIS holds now, by type and id: a push replaces what it sends."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.now: dict[tuple[str, str], dict[str, Any]] = {}
        self.put(resources)

    def put(self, resources: list[dict[str, Any]]) -> bytes:
        for r in resources:
            self.now[(r["resourceType"], r["id"])] = r
        return json.dumps(samples.bundle(*resources)).encode()

    def totals(self, until: str | None = None) -> dict[Any, Any]:
        """As they stand with the months up to `until` (YYYY-MM, default this one) closed."""
        return totals(list(self.now.values()), this_month(), until or this_month())


def starting_resources() -> list[dict[str, Any]]:
    family = samples.group(members=(samples.HEAD,))
    head = samples.patient()
    review_less_claim = samples.claim()
    return [
        *samples.locations(),
        samples.area(WARD_2, "W", "R1D1M2", "Jaber", samples.DISTRICT),
        samples.area(VILLAGE_2, "V", "R1D1M2V1", "Utha", WARD_2),
        *samples.code_lists_for_claims(),
        family,
        head,
        review_less_claim,
    ]


def keys_of(world: World) -> dict[str, str]:
    return {org_unit_uid(k): k for (t, k) in world.now if t in ("Location", "Organization")}


@pytest.fixture
def mediator(tmp_path: Path, journal_url: str) -> Iterator[Mediator]:
    running = Mediator(tmp_path / "state", journal_url)
    yield running
    running.stop()


def test_an_insuree_who_moves_leaves_the_old_ward_when_the_month_closes(mediator):
    world = World(starting_resources())
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    mediator.send()
    store = mediator.fake.fake.store
    assert sent(store, keys_of(world)) == world.totals()
    wards = {k[1] for k in world.totals() if k[0] == "NB_INSUREES"}
    assert wards == {samples.WARD}

    moved = samples.patient(village=VILLAGE_2)
    mediator.push(world.put([moved]))
    with mediator.journal.sessions() as session:
        due = {(d.data_set, d.org_unit, d.period) for d in session.query(AggregateDue)}
    current = parse_month(this_month())
    assert {("ENROLMENT", samples.WARD, current), ("ENROLMENT", WARD_2, current)} <= due
    # The month is still open: the worker's round sends nothing of it yet.
    assert mediator.schedule(datetime.now(UTC)).sent == 0
    run = mediator.schedule(month_after(datetime.now(UTC)))
    assert run.failure is None and not run.rejected, run.rejected
    assert sent(store, keys_of(world)) == world.totals()
    assert {k[1] for k in world.totals() if k[0] == "NB_INSUREES"} == {WARD_2}
    assert run.deleted >= 1  # the old ward's cell, which went to zero, is gone from DHIS2


def test_a_review_moves_a_closed_month_of_claims_to_its_status(mediator):
    world = World(starting_resources())
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    mediator.send()
    store = mediator.fake.fake.store
    statuses = {dict(k[3])["ATT_CLAIM_STATUS"] for k in sent(store, keys_of(world)) if k[0] == "NB_CLAIM"}
    assert statuses == {"ENTERED"}

    mediator.push(world.put([samples.claim_response()]))
    run = mediator.schedule(datetime.now(UTC))  # 2019-01 is closed: its correction goes at once
    assert run.sent == 1 and run.deleted > 0, run
    held = sent(store, keys_of(world))
    assert held == world.totals()
    statuses = {dict(k[3])["ATT_CLAIM_STATUS"] for k in held if k[0] == "NB_CLAIM"}
    assert statuses == {"APPROVED"}
    assert any(k[0] == "SUM_VALUATED_SERVICE" for k in held)


def test_a_newer_version_pushed_before_the_older_is_sent_wins(mediator):
    world = World(starting_resources())
    older = deepcopy(samples.claim())
    newer = samples.claim()
    newer["billablePeriod"] = {"start": "2019-03-02", "end": "2019-03-04"}
    mediator.push(json.dumps(samples.bundle(*world.now.values(), older)).encode())
    mediator.push(world.put([newer]))
    mediator.send()
    held = sent(mediator.fake.fake.store, keys_of(world))
    assert held == world.totals()
    assert {k[2] for k in held if k[0] == "NB_CLAIM"} == {"201903"}


def test_dhis2_down_leaves_the_months_due_and_the_next_round_sends_them(mediator):
    world = World(starting_resources())
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    mediator.fake.fake.fail_next = 100
    run = mediator.schedule(datetime.now(UTC))
    assert run.failure is not None and run.sent == 0
    with mediator.journal.sessions() as session:
        due = session.query(AggregateDue).filter(AggregateDue.period == parse_month("2019-01")).one()
        later = due.next_attempt_at.replace(tzinfo=due.next_attempt_at.tzinfo or UTC)  # SQLite gives it naive
        assert due.state == "pending" and due.attempts == 1 and later > datetime.now(UTC)
    mediator.fake.fake.fail_next = 0
    assert mediator.schedule(datetime.now(UTC)).sent == 0  # it waits out its backoff
    run = mediator.schedule(datetime(2030, 1, 1, tzinfo=UTC))
    assert run.sent >= 1 and run.failure is None
    # Every month up to December 2029 closed by then: the stocks of each of them went too.
    assert sent(mediator.fake.fake.store, keys_of(world)) == world.totals("2029-12")


def test_a_month_dhis2_refuses_is_a_dead_letter_with_its_reason_and_the_rest_goes(mediator):
    world = World(starting_resources())
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    del mediator.fake.fake.store.org_units[org_unit_uid(samples.HOSPITAL)]  # removed in DHIS2 meanwhile
    run = mediator.send()
    assert [label for label, _ in run.rejected] == [f"DataValueSet/PROCESSED_CLAIM/2019-01/{samples.HOSPITAL}"]
    assert any("Organisation unit not found" in r for r in run.rejected[0][1])
    assert run.sent >= 1  # the wards' months went
    with mediator.journal.sessions() as session:
        dead = session.query(AggregateDue).filter(AggregateDue.state == "rejected").one()
        assert dead.org_unit == samples.HOSPITAL and dead.reasons
    assert mediator.schedule(month_after(datetime.now(UTC))).rejected == []  # a dead letter waits to be asked for


def test_cells_counted_from_too_few_records_are_not_sent_and_their_values_deleted(tmp_path):
    family = samples.group(members=(samples.HEAD, samples.MEMBER))
    member = samples.patient(samples.MEMBER, "104000002", is_head=False)
    world = World([*starting_resources(), family, member])
    mediator = Mediator(tmp_path / "state", aggregate_suppress_below="2")
    try:
        mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
        mediator.send()
        store = mediator.fake.fake.store
        held = sent(store, keys_of(world))
        # Two insurees of one age and sex in the ward: sent. One family, one claim: nothing of them, not even the
        # claim's amounts or its diagnosis.
        assert {k[0]: v for k, v in held.items()} == {"NB_INSUREES": 2}
        assert any(k[0] == "NB_CLAIM_SERVICE_ICD" for k in world.totals())
        mediator.push(world.put([samples.patient(samples.MEMBER, "104000002", is_head=False, village=VILLAGE_2)]))
        run = mediator.send([parse_month(this_month())])
        assert sent(store, keys_of(world)) == {}  # one in each ward now: neither is sent
        assert run.deleted >= 1  # and the 2 DHIS2 held is gone
    finally:
        mediator.stop()


@pytest.mark.parametrize("version", ["2.37.9", "2.40.3", "2.41.1"])
@pytest.mark.parametrize("form", ["adx", "json"])
def test_json_and_adx_give_dhis2_the_same_cells_in_every_version(tmp_path, version, form):
    raw = bodies(REAL, FILES)
    resources = [e["resource"] for body in raw for e in json.loads(body)["entry"]]
    mediator = Mediator(tmp_path / "state", aggregate_format=form)
    mediator.fake.fake.version = version
    try:
        for body in raw:
            mediator.push(body)
        run = mediator.send()
        assert run.failure is None and not run.rejected, run.rejected[:2]
        assert mediator.held(resources) == totals(resources, this_month(), this_month())
        asked = any(c[1] == "/api/categoryOptionCombos" for c in mediator.fake.fake.calls)
        assert asked == (form == "json")  # ADX names options by code; JSON needs the combos' UIDs
    finally:
        mediator.stop()


def test_aggregate_only_sends_no_tracker_call_at_all(tmp_path):
    raw = bodies(REAL, FILES)
    resources = [e["resource"] for body in raw for e in json.loads(body)["entry"]]
    mediator = Mediator(tmp_path / "state", aggregate_only="true", aggregates="false")
    try:
        answers = [mediator.push(body) for body in raw]
        mediator.send()
        paths = {path for _, path, _, _ in mediator.fake.fake.calls}
        tracker = {
            p
            for p in paths
            if p.startswith(("/api/tracker", "/api/trackedEntityInstances", "/api/enrollments", "/api/events"))
        }
        assert tracker == set(), tracker
        store = mediator.fake.fake.store
        assert not store.tracked_entities and not store.enrollments and not store.events
        assert mediator.held(resources) == totals(resources, this_month(), this_month())
        individual = answers[FILES.index("Patient")]
        assert individual["status"] == "Successful"
        assert int(individual["properties"]["records_aggregated"]) == len(
            json.loads(raw[FILES.index("Patient")])["entry"]
        )
        assert int(individual["properties"]["records_delivered"]) == 0
    finally:
        mediator.stop()


def test_a_channel_in_aggregate_only_mode_keeps_its_individuals_from_dhis2(tmp_path):
    mediator = Mediator(tmp_path / "state")
    channels = json.loads(DEFAULT_CONFIG_FILE.read_text())["config"]["channels"]
    for channel in channels:
        channel["aggregate_only"] = channel["name"] == "openimis"
    LiveSettings(mediator.settings, mediator.env).publish({"channels": channels})
    try:
        world = World(starting_resources())
        answer = mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
        assert answer["status"] == "Successful"
        store = mediator.fake.fake.store
        assert not store.tracked_entities and not store.enrollments
        assert org_unit_uid(samples.VILLAGE) in store.org_units  # org units still go
        mediator.send()
        assert sent(store, keys_of(world)) == world.totals()
    finally:
        mediator.stop()


def test_what_came_before_what_it_needs_is_counted_when_that_comes(mediator):
    everything = starting_resources()
    held_back = {samples.WARD, samples.VILLAGE, WARD_2, VILLAGE_2}
    later = [r for r in everything if r["resourceType"] == "Patient" or r["id"] in held_back]
    first = [r for r in everything if r not in later]
    world = World(first)
    mediator.push(json.dumps(samples.bundle(*first)).encode())
    with mediator.journal.sessions() as session:
        from mediator.journal.models import AggregateUnplaced

        waiting = {(u.root_kind, u.reason) for u in session.query(AggregateUnplaced)}
    assert ("Claim", "its insuree is not known yet") in waiting
    assert any(kind == "Group" for kind, _ in waiting)
    mediator.push(world.put(later))
    mediator.send()
    assert sent(mediator.fake.fake.store, keys_of(world)) == world.totals()
    assert {k[0] for k in world.totals()} >= {"NB_INSUREES", "NB_FAMILY", "NB_CLAIM"}
    with mediator.journal.sessions() as session:
        assert session.query(AggregateUnplaced).count() == 0


def test_two_workers_counting_one_family_at_once_count_it_once(postgres_url):
    """On PostgreSQL workers count slices in parallel: two recounts of one family must not both keep their rows."""
    import threading
    import time

    from mediator.journal import aggregates as jagg
    from mediator.journal.models import AggregateContribution
    from mediator.journal.store import Journal
    from mediator.openimis.reader import read_document
    from mediator.openimis.schemas import SCHEMAS
    from tests.conftest import empty_postgres

    def records(*resources: dict[str, Any]) -> list[Any]:
        return read_document(samples.bundle(*resources), SCHEMAS.keys()).records

    journal = Journal.open(empty_postgres(postgres_url))
    now = datetime.now(UTC)
    with journal.sessions.begin() as session:
        everything = records(*samples.locations(), samples.group(members=(samples.HEAD,)), samples.patient())
        jagg.take(session, 1, everything, now)
    policy = samples.contract(insurees=(samples.HEAD,))
    policy["subject"] = [{"reference": f"Group/{samples.FAMILY}", "type": "Group"}]
    year = now.year  # in force this month, so that counting it changes the family's rows
    policy["term"][0]["asset"][0]["period"] = [{"start": f"{year - 1}-01-01", "end": f"{year + 1}-12-31"}]
    first = journal.sessions()
    first.begin()
    jagg.take(first, 2, records(policy), now)  # counts the family again, not committed yet
    second = threading.Thread(
        target=lambda: _take(journal, 3, now, records(samples.patient(gender="male")))  # the family's head changed
    )
    second.start()
    time.sleep(0.5)
    assert second.is_alive()  # it waits for the first to commit
    first.commit()
    first.close()
    second.join(20)
    with journal.sessions() as session:
        rows = session.query(AggregateContribution).filter(
            AggregateContribution.root_kind == "Group", AggregateContribution.element == "NB_FAMILY"
        )
        month = parse_month(this_month())
        counted = [r for r in rows if r.first <= month and (r.last is None or r.last >= month)]
    # One row, with both changes: the policy the first counted and the head the second did.
    assert [(r.options, r.value) for r in counted] == [("P36Y-P55Y|M|NOT_PAID|RENEW", 10000)]  # 1, in 1/10,000


def _take(journal: Any, push_id: int, at: datetime, records: list[Any]) -> None:
    from mediator.journal import aggregates as jagg

    with journal.sessions.begin() as session:
        jagg.take(session, push_id, records, at)


def test_two_equal_lines_count_twice_and_dropping_one_is_a_change(mediator):
    claim = samples.claim()
    claim["item"].append({**deepcopy(claim["item"][0]), "sequence": 3})  # the same medicine again
    world = World([*starting_resources(), claim])
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    mediator.send()
    store = mediator.fake.fake.store
    items = {k: v for k, v in sent(store, keys_of(world)).items() if k[0] == "NB_CLAIM_ITEM"}
    assert list(items.values()) == [4]
    mediator.push(world.put([samples.claim()]))
    run = mediator.schedule(datetime.now(UTC))  # 2019-01 is closed: the correction goes at once
    assert run.sent == 1
    assert sent(store, keys_of(world)) == world.totals()


def test_a_month_made_due_while_it_is_sent_is_sent_again(tmp_path, journal_url):

    # Aggregate-only, so that the correction is counted while the month is still on its way (no tracker call).
    mediator = Mediator(tmp_path / "state", journal_url, aggregate_only="true")
    try:
        _made_due_while_sent(mediator)
    finally:
        mediator.stop()


def _made_due_while_sent(mediator: Mediator) -> None:
    import threading

    world = World(starting_resources())
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    mediator.fake.fake.delay = 1.5  # DHIS2 takes its time over the data values
    sending = threading.Thread(target=lambda: mediator.schedule(datetime.now(UTC)))
    sending.start()
    time.sleep(0.5)
    mediator.push(world.put([samples.claim_response()]))  # a correction to the month being sent
    sending.join(30)
    mediator.fake.fake.delay = 0
    with mediator.journal.sessions() as session:
        still = session.query(AggregateDue).filter(AggregateDue.period == parse_month("2019-01")).one_or_none()
    assert still is not None and still.state == "pending"
    mediator.schedule(datetime.now(UTC))
    this = this_month().replace("-", "")
    assert sent(mediator.fake.fake.store, keys_of(world)) == {k: v for k, v in world.totals().items() if k[2] < this}


def test_an_import_dhis2_fails_whole_without_a_conflict_is_not_taken_for_delivered(mediator):
    world = World(starting_resources())
    mediator.push(json.dumps(samples.bundle(*world.now.values())).encode())
    mediator.fake.fake.import_error_next = 1
    run = mediator.schedule(datetime.now(UTC))
    assert run.sent == 0 and run.rejected
    assert "The import process failed" in run.rejected[0][1][0]
    done = mediator.send([parse_month("2019-01")])  # asked for again: it goes
    assert done.sent == 1 and sent(mediator.fake.fake.store, keys_of(world)) == {
        k: v for k, v in world.totals().items() if k[2] == "201901"
    }


def test_turning_the_aggregates_on_later_counts_what_was_delivered_before(tmp_path):
    world = World(starting_resources())
    body = json.dumps(samples.bundle(*world.now.values())).encode()
    before = Mediator(tmp_path / "state", aggregates="false")
    try:
        assert before.push(body)["status"] == "Successful"
        later = Mediator(tmp_path / "state")  # the same journal, the aggregates on
        try:
            answer = later.push(body)
            assert int(answer["properties"]["records_unchanged"]) == 0  # taken again once, to be counted
            later.send()
            assert sent(later.fake.fake.store, keys_of(world)) == world.totals()
            assert int(later.push(body)["properties"]["records_unchanged"]) > 0  # and from then on unchanged
        finally:
            later.stop()
    finally:
        before.stop()


def test_counting_that_fails_leaves_the_slice_to_deliver_again(mediator, monkeypatch):
    from mediator.journal import aggregates as jagg
    from mediator.journal.models import Work

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the counting failed")

    monkeypatch.setattr(jagg, "take", broken)
    world = World(starting_resources())
    answer = mediator.client.post(
        "/channels/openimis", data=json.dumps(samples.bundle(*world.now.values())).encode(), headers=HEADERS
    )
    assert answer.status_code >= 500 or json.loads(answer.data)["status"] != "Successful"
    with mediator.journal.sessions() as session:
        states = {w.state for w in session.query(Work)}
    assert "pending" in states  # not decided without being counted
    monkeypatch.undo()
    settings = LiveSettings(mediator.settings, mediator.env).current()
    mediator.deliverer.work_once(settings, now=datetime(2030, 1, 1, tzinfo=UTC))
    mediator.send()
    assert sent(mediator.fake.fake.store, keys_of(world)) == world.totals()
