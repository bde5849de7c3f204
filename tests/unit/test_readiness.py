"""What `/ready` checks, what the heartbeat leaves for it to read, and the labels and log fields the metrics and logs
add: each a pure function or a small file, tested here without a server."""

from __future__ import annotations

import json
import logging

import pytest
import responses
from sqlalchemy import create_engine

from mediator.config.settings import SettingsError, build_settings
from mediator.journal.store import migrate, newest_revision, open_engine, open_probe, open_read_only
from mediator.openhim.core import CoreClient
from mediator.openhim.heartbeat import Heartbeat
from mediator.openhim.status import HeartbeatStatus, StatusFile
from mediator.ops import logs
from mediator.ops.metrics import endpoint, kind_of
from mediator.ops.readiness import CachedCheck, Check, journal_check, openhim_check, readiness

CORE = "https://core.test:8080"
DOC = {"urn": "urn:mediator:test", "version": "1.0.0", "name": "t", "endpoints": []}
HEARTBEAT = f"{CORE}/mediators/urn%3Amediator%3Atest/heartbeat"


def test_a_migrated_journal_is_writable_and_at_this_version_s_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url))
    writable, migrations = journal_check(open_probe(url))
    assert writable.ok and migrations.ok
    assert migrations.detail["revision"] == newest_revision()


def test_a_journal_behind_this_version_is_not_ready_and_says_which_revision_it_wants(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url), "0007")
    writable, migrations = journal_check(open_probe(url))
    assert writable.ok and not migrations.ok
    assert migrations.detail == {"revision": "0007", "wanted": newest_revision()}


def test_a_journal_that_cannot_be_written_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url))
    writable, _ = journal_check(open_read_only(url))  # a connection that refuses writes, as a read-only disk does
    assert not writable.ok and writable.detail == {"error": "cannot be written"}
    missing, _ = journal_check(create_engine(f"sqlite:///{tmp_path / 'none' / 'journal.sqlite'}"))
    assert not missing.ok


def test_the_heartbeat_counts_only_when_registered_and_recent():
    now = 1_000_000.0
    fresh = HeartbeatStatus(registered_at=now - 100, beat_at=now - 5)
    assert openhim_check(True, fresh, 10, now).ok
    assert openhim_check(True, fresh, 10, now).detail == {"registered": True, "heartbeat_age_seconds": 5.0}
    stale = HeartbeatStatus(registered_at=now - 100, beat_at=now - 31)
    assert not openhim_check(True, stale, 10, now).ok  # three intervals, at least 30 s
    assert openhim_check(True, stale, 20, now).ok
    assert not openhim_check(True, HeartbeatStatus(beat_at=now - 1), 10, now).ok  # not registered
    assert not openhim_check(True, HeartbeatStatus(), 10, now).ok
    assert openhim_check(False, HeartbeatStatus(), 10, now).ok  # registration off: not checked


def test_ready_only_when_every_check_passes():
    body, status = readiness({"a": Check(True), "b": Check(True, {"version": "2.40.3"})})
    assert status == 200 and body == {
        "status": "ready",
        "checks": {"a": {"ok": True}, "b": {"ok": True, "version": "2.40.3"}},
    }
    body, status = readiness({"a": Check(True), "b": Check(False, {"error": "x"})})
    assert status == 503 and body["status"] == "not ready"


def test_a_cached_check_is_asked_again_after_its_time_or_for_other_settings():
    clock = [0.0]
    calls = []
    cache = CachedCheck(5, clock=lambda: clock[0])

    def run() -> Check:
        calls.append(1)
        return Check(True)

    cache.get("a", run)
    cache.get("a", run)
    assert len(calls) == 1
    clock[0] = 6
    cache.get("a", run)
    cache.get("b", run)
    assert len(calls) == 3


def test_the_status_file_is_what_the_heartbeat_last_achieved(tmp_path):
    clock = [100.0]
    status = StatusFile(tmp_path, clock=lambda: clock[0])
    assert StatusFile(tmp_path).read() == HeartbeatStatus()  # nothing yet
    status.registered()
    clock[0] = 110
    status.beat()
    clock[0] = 120
    status.failed()
    clock[0] = 130
    status.failed()
    assert StatusFile(tmp_path).read() == HeartbeatStatus(100.0, 110.0, 120.0)
    status.unregistered()
    assert StatusFile(tmp_path).read().registered_at is None
    (tmp_path / "heartbeat-status.json").write_text("{not json")
    assert StatusFile(tmp_path).read() == HeartbeatStatus()


@responses.activate
def test_the_heartbeat_writes_its_status_for_every_worker_to_read(tmp_path):
    responses.post(f"{CORE}/mediators", status=201)
    responses.post(HEARTBEAT, body="")
    hb = Heartbeat(CoreClient(CORE, "u", "p"), lambda: DOC, lambda c: None, interval=10, status=StatusFile(tmp_path))
    hb.step()
    seen = StatusFile(tmp_path).read()
    assert seen.registered_at is not None and seen.beat_at is not None and seen.failing_since is None
    responses.replace(responses.POST, HEARTBEAT, status=503)
    hb.step()
    failing = StatusFile(tmp_path).read()
    assert failing.beat_at == seen.beat_at and failing.failing_since is not None


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/api/tracker", "/api/tracker"),
        ("/api/system/info", "/api/system/info"),
        ("/api/tracker/trackedEntities/Ab3dEfGhIj1?fields=*", "/api/tracker/trackedEntities/{uid}"),
        ("/api/organisationUnits/abcdefghij1", "/api/organisationUnits/{uid}"),
        ("/api/tracker/enrollments", "/api/tracker/enrollments"),  # an 11-letter name, not a UID
        ("/api/40/tracker", "/api/{n}/tracker"),
        ("/api/a/b/c/d/e", "/api/a/b/c"),
    ],
)
def test_dhis2_endpoints_are_labels_without_uids(path, label):
    assert endpoint(path) == label


def test_record_kinds_are_resource_types_or_other():
    assert kind_of("Patient/55c8cabb") == "Patient"
    assert kind_of("entry[3]") == "other"
    assert kind_of("body") == "other"


def test_json_lines_carry_what_the_push_is_about_and_forget_it_after():
    record = logging.LogRecord("mediator.x", logging.INFO, __file__, 1, "delivered %d", (3,), None)
    formatter = logs.JsonLines()
    with logs.about(channel="insurees", transaction="64f0"):
        logs.also(push=7)
        with logs.about(push=8):
            inner = json.loads(formatter.format(record))
        outer = json.loads(formatter.format(record))
    after = json.loads(formatter.format(record))
    assert inner["push"] == 8 and outer["push"] == 7
    assert outer["channel"] == "insurees" and outer["transaction"] == "64f0" and outer["message"] == "delivered 3"
    assert "push" not in after and "channel" not in after


def test_a_channel_cannot_take_the_mediator_s_own_paths():
    for path in ("/health", "/ready/", "/metrics", "/audit/pushes"):
        channels = [{"name": "x", "path": path, "username": "u"}]
        with pytest.raises(SettingsError, match="the mediator's own"):
            build_settings({}, console={"channels": channels})
