"""Pulls from a real openIMIS 24.04 (its FHIR R4 API on the demo database) into the fake DHIS2: everything openIMIS
serves ends in DHIS2 exactly once, counted against what the API itself returns; a second pull sends nothing new; a
change made in openIMIS arrives by the next pull; an openIMIS that stops in the middle, a DHIS2 that is down for the
first part, and a pull killed half-way all end the same, with no dead letter."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from fake_dhis2 import FakeDhis2
from fake_dhis2.server import RunningFake
from mediator.config.settings import Settings, build_settings
from mediator.delivery.bootstrap import bootstrap
from mediator.delivery.worker import Deliverer
from mediator.intake.pull import pull
from mediator.journal.dead_letters import dead_letters
from mediator.journal.models import Transaction, Work
from mediator.journal.store import Journal
from mediator.mapping.claim import claim_details_uid, claim_enrollment_uid, claim_line_uid
from mediator.mapping.insuree import family_values
from mediator.mapping.model import Setup
from mediator.mapping.policy import policy_event_uid
from mediator.mapping.uids import org_unit_uid, tracked_entity_uid
from mediator.openimis.reader import read_document
from mediator.openimis.records import Claim, ClaimReview, CodeEntry, Family, Insuree, Policy
from mediator.openimis.schemas import SCHEMAS
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER, dhis2_client
from tests.openimis_local import PASSWORD, USER, OpenImis, Proxy, served

SETUP = Setup()
LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
def content(openimis: OpenImis) -> dict[str, list[dict[str, Any]]]:
    return served(openimis)  # as it is now: tests add to what openIMIS holds


def records(resources: list[dict[str, Any]]) -> list[Any]:
    doc = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return read_document(doc, SCHEMAS.keys()).records


def dhis2(version: str = "2.40") -> RunningFake:
    running = RunningFake(FakeDhis2(version=version, users={DHIS2_USER: DHIS2_PASSWORD})).start()
    bootstrap(dhis2_client(running), SETUP, "openIMIS")
    return running


def settings_for(tmp_path: Path, dhis2_url: str, openimis_url: str, journal_url: str, **extra: str) -> Settings:
    env = {
        "MEDIATOR_STATE_DIR": str(tmp_path / "state"),
        "MEDIATOR_JOURNAL_URL": journal_url,
        "MEDIATOR_DHIS2_URL": dhis2_url,
        "MEDIATOR_DHIS2_USERNAME": DHIS2_USER,
        "MEDIATOR_DHIS2_PASSWORD": DHIS2_PASSWORD,
        "MEDIATOR_DHIS2_MAX_ATTEMPTS": "1",
        "MEDIATOR_PSEUDONYM_KEY": "test-pseudonym-key",
        "MEDIATOR_OPENIMIS_URL": openimis_url,
        "MEDIATOR_OPENIMIS_USERNAME": USER,
        "MEDIATOR_OPENIMIS_PASSWORD": PASSWORD,
        "MEDIATOR_ALLOW_DEFAULT_PASSWORDS": "true",
        "MEDIATOR_RETRY_SECONDS": "1",
        **{f"MEDIATOR_{k.upper()}": v for k, v in extra.items()},
    }
    return build_settings(env)


def deliver_all(journal: Journal, settings: Settings) -> None:
    """The delivery worker, until nothing is left that it could deliver."""
    deliverer = Deliverer(journal, settings.slice_size)
    for _ in range(50):
        deliverer.work_once(settings, now=LATER)
        with journal.sessions() as session:
            pending = session.scalar(select(func.count()).select_from(Work).where(Work.state == "pending"))
        if not pending:
            return
    raise AssertionError(f"{pending} records still pending")


def pull_channel(settings: Settings) -> Any:
    return next(c for c in settings.channels if c.pulls)


def assert_everything_in_dhis2(store: Any, content: dict[str, list[dict[str, Any]]], journal: Journal) -> None:
    """Every record openIMIS serves is in DHIS2, once; the one claim of a deleted insuree is refused, naming it."""
    insurees = {r.key for r in records(content["insurees"]) if isinstance(r, Insuree)}
    assert len(insurees) == len(content["insurees"]) > 0
    assert set(store.tracked_entities) == {tracked_entity_uid(k) for k in insurees}
    insuree_program = SETUP.programs["insuree"]
    owners = Counter(e["trackedEntity"] for e in store.enrollments.values() if e["program"] == insuree_program)
    assert set(owners.values()) == {1}  # one Family/Insuree enrollment per insuree
    for family in (r for r in records(content["families"]) if isinstance(r, Family)):
        family_id = family_values(family)["family_id"]
        for member in set(family.member_keys) & insurees:
            attributes = store.tracked_entities[tracked_entity_uid(member)]["attributes"]
            assert attributes.get(SETUP_ATTRIBUTE_FAMILY) == family_id, (family.key, member)
    numbers = {r.insurance_number: r.key for r in records(content["insurees"]) if isinstance(r, Insuree)}
    covered: set[tuple[str, str]] = set()
    for policy in (r for r in records(content["coverages"] + content["contracts"]) if isinstance(r, Policy)):
        covered |= {(policy.key, k) for k in policy.insuree_keys}
        covered |= {(policy.key, numbers[n]) for n in policy.insurance_numbers if n in numbers}
    policy_events = {uid for uid, e in store.events.items() if e["programStage"] == SETUP.stages["policy"]}
    assert policy_events == {policy_event_uid(p, k) for p, k in covered} and covered
    claims = [r for r in records(content["claims"]) if isinstance(r, Claim)]
    orphans = {c.key for c in claims if c.patient_key not in insurees}
    expected_claims = [c for c in claims if c.key not in orphans]
    claim_program = SETUP.programs["claim"]
    assert {uid for uid, e in store.enrollments.items() if e["program"] == claim_program} == {
        claim_enrollment_uid(c.key) for c in expected_claims
    }
    for claim in expected_claims:
        assert claim_details_uid(claim.key) in store.events
        assert all(claim_line_uid(claim.key, line.sequence) in store.events for line in claim.lines)
    status = SETUP.data_elements["claim.status"]
    for review in (r for r in records(content["reviews"]) if isinstance(r, ClaimReview)):
        if review.claim_key not in orphans:
            assert store.events[claim_details_uid(review.claim_key)]["dataValues"][status] == review.status
    for area in content["areas"] + content["facilities"]:
        key = area["id"]
        assert org_unit_uid(key) in store.org_units, key
    for kind, option_set in (("products", "product"), ("items", "item"), ("services", "service")):
        codes = {r.code for r in records(content[kind]) if isinstance(r, CodeEntry)}
        assert codes and codes <= store.option_codes(SETUP.option_sets[option_set]), kind
    refused = {(w.kind, w.key) for w in dead_letters(journal)}
    reviewed = {r.claim_key: r.key for r in records(content["reviews"]) if isinstance(r, ClaimReview)}
    assert refused == {("Claim", k) for k in orphans} | {
        ("ClaimResponse", reviewed[k]) for k in orphans if k in reviewed
    }
    for letter in dead_letters(journal):
        assert "insuree" in json.dumps(letter.reasons)


SETUP_ATTRIBUTE_FAMILY = "DvT0LSMDW2f"
PROFESSION = "zy5Br9ZEDLY"


def writes(running: RunningFake) -> int:
    """Tracker writes DHIS2 has taken."""
    store = running.fake.store
    return len(store.tracked_entities) + len(store.enrollments) + len(store.events)


def test_a_full_pull_puts_every_record_openimis_serves_into_dhis2_and_a_second_pull_sends_nothing(
    openimis, content, tmp_path
):
    running = dhis2()
    try:
        settings = settings_for(tmp_path, running.url, openimis.url, f"sqlite:///{tmp_path / 'journal.sqlite'}")
        journal = Journal.open(settings.journal_url)
        first = pull(journal, settings, pull_channel(settings))
        assert first.failure is None and first.intake is not None
        served_count = sum(len(v) for v in content.values())
        assert first.resources == served_count
        deliver_all(journal, settings)
        assert_everything_in_dhis2(running.fake.store, content, journal)
        with journal.sessions() as session:
            (tx,) = session.scalars(select(Transaction)).all()
        assert tx.origin == "pull" and tx.status == "Completed with error(s)"  # the orphan claim

        running.fake.store.events.clear()  # anything the second pull wrote would show again
        second = pull(journal, settings, pull_channel(settings))
        assert second.failure is None
        deliver_all(journal, settings)
        assert running.fake.store.events == {}
        if second.intake is not None and second.intake.accepted is not None:
            assert second.intake.accepted.pending == 0  # what was read again is recognised as unchanged
    finally:
        running.stop()


def test_changes_made_in_openimis_reach_dhis2_by_the_next_pull(openimis, content, tmp_path):
    running = dhis2()
    try:
        settings = settings_for(tmp_path, running.url, openimis.url, f"sqlite:///{tmp_path / 'journal.sqlite'}")
        journal = Journal.open(settings.journal_url)
        pull(journal, settings, pull_channel(settings))
        deliver_all(journal, settings)
        session = openimis.session()
        # A member (not a family head: openIMIS refuses to update a head this way) changes profession...
        member = next(p for p in content["insurees"] if _is_head(p) is False)
        changed = copy.deepcopy(session.get(f"{openimis.url}Patient/{member['id']}/", timeout=60).json())
        before = running.fake.store.tracked_entities[tracked_entity_uid(member["id"])]["attributes"].get(PROFESSION)
        profession = "2" if before != "2" else "3"  # openIMIS's professions are 1 to 4
        changed["extension"] = [e for e in changed["extension"] if not e["url"].endswith("patient-profession")]
        changed["extension"].append(
            {
                "url": "https://openimis.github.io/openimis_fhir_r4_ig/StructureDefinition/patient-profession",
                "valueCodeableConcept": {"coding": [{"code": profession}]},
            }
        )
        answer = session.put(f"{openimis.url}Patient/{member['id']}/", json=changed, timeout=60)
        assert answer.status_code == 200, answer.text[:300]
        # ...and a facility enters a new claim for an insuree.
        claim = copy.deepcopy(next(c for c in content["claims"] if c.get("insurance")))
        claim.pop("id")
        claim["identifier"] = [i for i in claim["identifier"] if i["type"]["coding"][0]["code"] != "UUID"]
        for identifier in claim["identifier"]:
            identifier["value"] = f"CPULL{int(time.time()) % 100000:05d}"
        answer = session.post(f"{openimis.url}Claim/", json=claim, timeout=60)
        assert answer.status_code == 201, answer.text[:300]
        time.sleep(1.1)  # openIMIS's clock moves on: its next read begins after the changes
        later = pull(journal, settings, pull_channel(settings))
        deliver_all(journal, settings)
        by_feed = {r.feed: r.read.count for r in later.feeds}
        assert by_feed["Patient"] >= 1 and by_feed["Claim"] >= 1
        new_claim = answer.json()["id"]
        assert claim_enrollment_uid(new_claim) in running.fake.store.enrollments
        attributes = running.fake.store.tracked_entities[tracked_entity_uid(member["id"])]["attributes"]
        assert attributes.get(PROFESSION) == profession
    finally:
        running.stop()


def _is_head(patient: dict[str, Any]) -> bool | None:
    for ext in patient.get("extension") or []:
        if ext["url"].endswith("patient-is-head"):
            return bool(ext.get("valueBoolean"))
    return None


@pytest.mark.parametrize("version", ["2.35", "2.40"])
def test_openimis_stopping_mid_pull_and_dhis2_down_end_with_everything_in_dhis2_once(
    openimis, content, tmp_path, journal_url, version
):
    running = dhis2(version)
    proxy = Proxy(openimis.url)
    try:
        settings = settings_for(tmp_path, running.url, proxy.url, journal_url)
        journal = Journal.open(settings.journal_url)
        channel = pull_channel(settings)
        running.fake.fail_next = 10_000  # DHIS2 is down for the first part
        proxy.fail_after(8)  # openIMIS stops after the first feeds
        cut = pull(journal, settings, channel)
        assert cut.failure is not None and cut.failed_feed is not None
        deliver_all_attempt(journal, settings)
        assert running.fake.store.tracked_entities == {}
        proxy.up()
        rest = pull(journal, settings, channel)  # reads on from the cursors of the feeds read before
        assert rest.failure is None
        read_first = {r.feed for r in cut.feeds}
        again = [r.filter for r in rest.feeds if r.feed in read_first and r.filter is not None]  # Organizations: none
        assert again and all(f.startswith("ge") for f in again)
        running.fake.fail_next = 0
        deliver_all(journal, settings)
        assert_everything_in_dhis2(running.fake.store, content, journal)
    finally:
        proxy.close()
        running.stop()


def deliver_all_attempt(journal: Journal, settings: Settings) -> None:
    """One round of the worker while DHIS2 is down: nothing goes, nothing becomes a dead letter."""
    Deliverer(journal, settings.slice_size).work_once(settings, now=LATER)
    assert dead_letters(journal) == []


@pytest.mark.parametrize("version", ["2.35", "2.40"])
def test_a_pull_killed_half_way_is_read_again_and_ends_with_everything_in_dhis2_once(
    openimis, content, tmp_path, journal_url, version
):
    running = dhis2(version)
    proxy = Proxy(openimis.url)
    try:
        settings = settings_for(tmp_path, running.url, proxy.url, journal_url)
        journal = Journal.open(settings.journal_url)
        env = {
            **os.environ,
            "MEDIATOR_STATE_DIR": str(settings.state_dir),
            "MEDIATOR_JOURNAL_URL": journal_url,
            "MEDIATOR_OPENIMIS_URL": proxy.url,
            "MEDIATOR_OPENIMIS_USERNAME": USER,
            "MEDIATOR_OPENIMIS_PASSWORD": PASSWORD,
            "MEDIATOR_ALLOW_DEFAULT_PASSWORDS": "true",
        }
        command = [sys.executable, "-m", "mediator.app.cli", "pull", "--no-deliver"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while proxy.requests < 6 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        pulled = pull(journal, settings, pull_channel(settings))  # the dead pull's lease is freed at once
        assert pulled.failure is None
        deliver_all(journal, settings)
        assert_everything_in_dhis2(running.fake.store, content, journal)
    finally:
        proxy.close()
        running.stop()
