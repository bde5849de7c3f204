"""A push larger than a slice is delivered in slices of whole units, metadata first, and ends with the same DHIS2
content as the same push delivered in one go; exactly one worker decides it."""

import json
import threading
from datetime import UTC, datetime

import pytest

from mediator.config.settings import build_settings
from mediator.journal.claim import claim
from mediator.journal.finish import decide, finish
from mediator.openimis.reader import read_document
from mediator.openimis.schemas import SCHEMAS
from tests import samples
from tests.conftest import basic, mediator_client
from tests.integration.test_dhis2_versions import content, start
from tests.unit.test_stream import OTHER_FAMILY, OTHER_HEAD, mixed

AUTH = {**basic("openhim-openimis", "openimis-route-pass"), "Content-Type": "application/json"}


def families(n):
    """n more families of two, in the sample village."""
    docs = []
    for i in range(n):
        head, member, family = (f"00000000-0000-4000-8000-{i:04d}{j:08d}" for j in range(3))
        docs += [
            samples.patient(member, f"2{i:04d}0002", family=family, is_head=False),
            samples.group(family, (head, member)),
            samples.patient(head, f"2{i:04d}0001", family=family),
        ]
    return docs


def push_doc():
    doc = mixed()
    doc["entry"] = doc["entry"][:-1]  # without the broken Patient
    extra = samples.bundle(
        samples.contract(),
        *samples.code_lists_for_claims(),
        samples.code_list_entry("InsurancePlan", "p-1", samples.PRODUCT_CODE, "Basic"),
        *families(6),
    )
    doc["entry"] += extra["entry"]
    return doc


def mediator(env, running, tmp_path, name, **extra):
    env = {**env, "MEDIATOR_STATE_DIR": str(tmp_path / name), "MEDIATOR_PSEUDONYM_KEY": "k"}
    settings_env = {
        **env,
        "MEDIATOR_DHIS2_URL": running.url,
        "MEDIATOR_CHANNEL_OPENIMIS_PASSWORD": "openimis-route-pass",
        **{f"MEDIATOR_{k.upper()}": v for k, v in extra.items()},
    }
    return mediator_client(settings_env), build_settings(settings_env)


def test_a_push_larger_than_a_slice_ends_as_if_delivered_in_one_go(env, tmp_path):
    whole, sliced = start("2.40.5"), start("2.40.5")
    try:
        client, _ = mediator(env, whole, tmp_path, "whole")
        resp = client.post("/channels/openimis", data=json.dumps(push_doc()), headers=AUTH)
        assert json.loads(resp.data)["status"] == "Successful", resp.data[:2000]

        client, settings = mediator(env, sliced, tmp_path, "sliced", slice_size="3", inline_limit="1")
        resp = client.post("/channels/openimis", data=json.dumps(push_doc()), headers=AUTH)
        assert resp.status_code == 202
        deliverer = client.application.extensions["deliverer"]
        assert deliverer.work_once(settings) == 1
        assert content(sliced) == content(whole)
        posts = [r for r in sliced.fake.requests_seen if r[0] == "POST" and r[1] == "/api/tracker"]
        assert len(posts) > 3  # it did go in several slices
    finally:
        whole.stop()
        sliced.stop()


def labels(records):
    return {f"{r.kind}/{r.key}" for r in records}


def test_slices_hold_whole_units_and_metadata_comes_first(env, journal_url, tmp_path):
    running = start("2.40.5")
    try:
        client, _ = mediator(env, running, tmp_path, "m", inline_limit="1", journal_url=journal_url)
        client.post("/channels/openimis", data=json.dumps(push_doc()), headers=AUTH)
        journal = client.application.extensions["journal"]
        slices = []
        while (taken := claim(journal, 1, size=2)) is not None:
            slices.append(labels(taken.records))
            delivered = [{"record": label, "status": "delivered"} for label in slices[-1]]
            finish(journal, taken, delivered, retry=False, error=None)
        kinds = [{label.split("/")[0] for label in s} for s in slices]
        assert kinds[0] == {"Location", "Organization", "InsurancePlan", "Medication", "ActivityDefinition"}
        assert all(not k & kinds[0] for k in kinds[1:])
        head_unit = {
            f"Patient/{samples.HEAD}",
            f"Patient/{samples.MEMBER}",
            f"Group/{samples.FAMILY}",
            f"Coverage/{samples.POLICY}",
            f"Contract/{samples.POLICY}",
            f"Claim/{samples.CLAIM}",
            "ClaimResponse/9da194ce-73ed-4fec-9218-082197ebe4b1",
        }
        assert sum(head_unit <= s for s in slices) == 1
        assert sum({f"Patient/{OTHER_HEAD}", f"Group/{OTHER_FAMILY}"} <= s for s in slices) == 1
        everything = [label for s in slices for label in s]
        assert len(everything) == len(set(everything)) == len(labels(read_document(push_doc(), SCHEMAS).records))
        assert decide(journal, 1) == "Successful"
        assert decide(journal, 1) is None  # decided once
    finally:
        running.stop()


def test_exactly_one_of_several_workers_decides_a_push(env, journal_url, tmp_path):
    running = start("2.40.5")
    try:
        client, _ = mediator(env, running, tmp_path, "m", inline_limit="1", journal_url=journal_url)
        two = samples.bundle(samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False))
        client.post("/channels/openimis", data=json.dumps(two), headers=AUTH)
        journal = client.application.extensions["journal"]
        taken = claim(journal, 1)
        delivered = [{"record": f"Patient/{k}", "status": "delivered"} for k in (samples.HEAD, samples.MEMBER)]
        finish(journal, taken, delivered, False, None)
        barrier, decided = threading.Barrier(4), []

        def decide_now():
            barrier.wait()
            decided.append(decide(journal, 1))

        threads = [threading.Thread(target=decide_now) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(decided, key=str) == [None, None, None, "Successful"]
    finally:
        running.stop()


@pytest.mark.parametrize("size", [1, 4])
def test_a_slice_never_splits_a_family(env, tmp_path, size):
    running = start("2.40.5")
    try:
        client, _ = mediator(env, running, tmp_path, f"s{size}", inline_limit="1")
        client.post("/channels/openimis", data=json.dumps(samples.bundle(*families(3))), headers=AUTH)
        journal = client.application.extensions["journal"]
        while (taken := claim(journal, 1, size=size)) is not None:
            got = labels(taken.records)
            assert len(got) % 3 == 0  # two members and their Group, always together
            finish(journal, taken, [{"record": label, "status": "delivered"} for label in got], False, None)
    finally:
        running.stop()


def test_a_unit_cut_by_a_failure_is_completed_with_what_it_already_delivered(env, tmp_path, monkeypatch):
    """DHIS2 fails after a family's Patient went and before its Coverage: the retry still finds the beneficiary."""
    import mediator.delivery.push as pushing
    from mediator.dhis2.errors import Dhis2Unavailable
    from mediator.journal.models import Work
    from tests.integration.test_delivery_queue import LATER

    running = start("2.40.5")
    try:
        client, settings = mediator(env, running, tmp_path, "m", inline_limit="1")
        doc = samples.bundle(
            *samples.locations(),
            samples.code_list_entry("InsurancePlan", "p-1", samples.PRODUCT_CODE, "Basic"),
            samples.patient(),
            samples.group(samples.FAMILY, (samples.HEAD,)),
            samples.coverage(),
        )
        assert client.post("/channels/openimis", data=json.dumps(doc), headers=AUTH).status_code == 202
        real, failed = pushing.deliver_policies, []

        def down_once(*args, **kwargs):
            if not failed:
                failed.append(True)
                raise Dhis2Unavailable("DHIS2 went down")
            return real(*args, **kwargs)

        monkeypatch.setattr(pushing, "deliver_policies", down_once)
        deliverer = client.application.extensions["deliverer"]
        deliverer.work_once(settings)
        journal = client.application.extensions["journal"]
        with journal.session() as session:
            assert {w.kind: w.state for w in session.query(Work)}["Coverage"] == "pending"
        assert deliverer.work_once(settings, now=LATER) == 1
        with journal.session() as session:
            assert {w.state for w in session.query(Work)} == {"delivered"}
            assert all(w.record is None for w in session.query(Work))  # cleared once the push is decided
        assert len([e for e in running.fake.store.events.values() if e["programStage"]]) == 1
    finally:
        running.stop()


def test_records_kept_for_the_request_delivering_them_are_not_taken_by_the_worker(env, tmp_path):
    from mediator.intake.keep import take_in
    from mediator.intake.spool import Spooled
    from mediator.journal.claim import due, release

    running = start("2.40.5")
    try:
        client, settings = mediator(env, running, tmp_path, "m")
        journal = client.application.extensions["journal"]
        path = tmp_path / "push.json"
        path.write_text(json.dumps(samples.bundle(samples.patient(), samples.group())))
        intake = take_in(
            journal,
            Spooled(path, "0" * 64, 0),
            settings.channel("openimis"),
            settings,
            received_at=datetime.now(UTC),
            holder="vm:1:request-x",
        )
        assert intake.held == "vm:1:request-x"
        assert due(journal) == [] and claim(journal, 1) is None
        assert release(journal, 1, "vm:1:request-x") == 2
        assert due(journal) == [1] and claim(journal, 1) is not None
    finally:
        running.stop()


def test_a_newer_push_kept_first_is_not_superseded_by_an_older_one_still_being_kept(env, journal_url, tmp_path):
    from mediator.journal.models import Work
    from tests.integration.test_delivery_queue import keep

    running = start("2.40.5")
    try:
        client, _ = mediator(env, running, tmp_path, "m", journal_url=journal_url)
        journal = client.application.extensions["journal"]
        label = f"Patient/{samples.HEAD}"

        def older():
            yield label, samples.patient(gender="female")
            keep(journal, [(label, samples.patient(gender="male"))])  # a later push arrives and is kept meanwhile
            yield f"Patient/{samples.MEMBER}", samples.patient(samples.MEMBER, "104000002", is_head=False)

        keep(journal, older())
        with journal.session() as session:
            rows = {(w.transaction_id, w.key): w.state for w in session.query(Work)}
        assert rows[(1, samples.HEAD)] == "superseded" and rows[(2, samples.HEAD)] == "pending"
        assert rows[(1, samples.MEMBER)] == "pending"
    finally:
        running.stop()


def test_a_unit_another_worker_holds_part_of_is_left_whole(env, journal_url, tmp_path):
    from datetime import timedelta

    from mediator.journal.models import Work

    running = start("2.40.5")
    try:
        client, _ = mediator(env, running, tmp_path, "m", inline_limit="1", journal_url=journal_url)
        client.post("/channels/openimis", data=json.dumps(samples.bundle(*families(2))), headers=AUTH)
        journal = client.application.extensions["journal"]
        with journal.sessions.begin() as session:
            first = session.query(Work).order_by(Work.id).first()
            first.claimed_until, first.claimed_by = datetime.now(UTC) + timedelta(minutes=5), "elsewhere:1"
            held_unit = first.unit
        taken = claim(journal, 1, size=10)
        with journal.session() as session:
            units = {w.id: w.unit for w in session.query(Work)}
        assert taken is not None and len(taken.ids) == 3
        assert {units[i] for i in taken.ids} != {held_unit}
        assert all(units[i] != held_unit for i in taken.ids)
    finally:
        running.stop()
