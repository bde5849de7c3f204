"""The all-or-nothing-per-record loop: DHIS2 imports a request whole or not at all; refused records are set aside
and the rest sent again, so no record is half-written and the loop always ends."""

from mediator.answer.outcomes import PushResult
from mediator.delivery.atomic import Attempt, Deliverable, Refusal, deliver
from mediator.dhis2.errors import Dhis2Rejected


def item(n, objects=1):
    uids = {f"obj{j}": f"U{n:03d}{j}" for j in range(objects)}
    return Deliverable(f"Patient/{n}", uids, tuple(("trackedEntities", {"id": u}) for u in uids.values()))


class Dhis2:
    """Refuses every object whose UID is in `bad`, the whole request if any is there (atomicMode=ALL)."""

    def __init__(self, bad=()):
        self.bad = set(bad)
        self.requests = []
        self.written = []

    def __call__(self, payload):
        sent = [o["id"] for o in payload["trackedEntities"]]
        self.requests.append(sent)
        refused = [Refusal(uid, "E1000", "no") for uid in sent if uid in self.bad]
        if refused:
            return Attempt(False, refused)
        self.written += sent
        return Attempt(True, stats={"created": len(sent)})


def field_of(refusal):
    return "record"


def test_refused_records_are_set_aside_whole_and_the_rest_is_written():
    items = [item(1), item(2, objects=2), item(3)]
    dhis2 = Dhis2(bad={"U0021"})  # the second object of record 2
    result = PushResult()
    taken = deliver(items, dhis2, field_of, result)
    assert [i.record for i in taken] == ["Patient/1", "Patient/3"]
    assert dhis2.written == ["U0010", "U0030"]  # nothing of record 2, not even its good object
    assert {o.record: o.status for o in result.outcomes} == {
        "Patient/2": "rejected", "Patient/1": "delivered", "Patient/3": "delivered"
    }  # fmt: skip
    assert len(dhis2.requests) == 2


def test_the_loop_ends_after_at_most_one_round_per_refused_record():
    items = [item(n) for n in range(50)]

    class OneAtATime(Dhis2):
        def __call__(self, payload):  # refuses only the first bad object it meets each round
            sent = [o["id"] for o in payload["trackedEntities"]]
            self.requests.append(sent)
            first = next((u for u in sent if u in self.bad), None)
            if first:
                return Attempt(False, [Refusal(first, "E1000", "no")])
            self.written += sent
            return Attempt(True)

    dhis2 = OneAtATime(bad={f"U{n:03d}0" for n in range(0, 50, 5)})
    result = PushResult()
    deliver(items, dhis2, field_of, result)
    assert len(dhis2.requests) == 11  # ten refusals, then the rest in one request
    assert len(dhis2.written) == 40 and result.count("rejected") == 10 and result.count("delivered") == 40


def test_a_refusal_naming_nothing_of_ours_rejects_all_and_writes_nothing():
    dhis2 = Dhis2()
    result = PushResult()
    taken = deliver([item(1), item(2)], lambda p: Attempt(False, [Refusal("XYZ", "E5000", "odd")]), field_of, result)
    assert taken == [] and dhis2.written == []
    assert [o.status for o in result.outcomes] == ["rejected", "rejected"]


def test_a_request_refused_whole_is_not_sent_again():
    calls = []

    def send(payload):
        calls.append(payload)
        raise Dhis2Rejected("DHIS2 refused the import (400)", 400)

    result = PushResult()
    assert deliver([item(1), item(2)], send, field_of, result) == []
    assert len(calls) == 1 and result.count("rejected") == 2
