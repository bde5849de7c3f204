"""What `/ready` checks, what the heartbeat leaves for it to read, and the labels and log fields the metrics and logs
add: each a pure function or a small file, tested here without a server."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import shutil
import socket
import sqlite3
import threading

import pytest
import responses
from sqlalchemy import create_engine, text

from mediator.config.settings import SettingsError, build_settings
from mediator.journal.store import migrate, newest_revision, open_engine, open_probe, open_read_only
from mediator.openhim.core import CoreClient
from mediator.openhim.heartbeat import Heartbeat
from mediator.openhim.status import HeartbeatStatus, StatusFile
from mediator.ops import logs
from mediator.ops import metrics as metrics_module
from mediator.ops import readiness as readiness_module
from mediator.ops.metrics import endpoint, kind_of
from mediator.ops.readiness import CachedCheck, Check, JournalProbe, openhim_check, readiness
from mediator.ops.scrape import JournalCollector

CORE = "https://core.test:8080"
DOC = {"urn": "urn:mediator:test", "version": "1.0.0", "name": "t", "endpoints": []}
HEARTBEAT = f"{CORE}/mediators/urn%3Amediator%3Atest/heartbeat"


def test_a_migrated_journal_is_writable_and_at_this_version_s_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url))
    writable, migrations = JournalProbe(open_probe(url)).check()
    assert writable.ok and migrations.ok
    assert migrations.detail["revision"] == newest_revision()


def test_a_journal_behind_this_version_is_not_ready_and_says_which_revision_it_wants(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url), "0007")
    writable, migrations = JournalProbe(open_probe(url)).check()
    assert writable.ok and not migrations.ok
    assert migrations.detail == {"revision": "0007", "wanted": newest_revision()}


def test_a_journal_that_cannot_be_written_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url))
    writable, _ = JournalProbe(
        open_read_only(url)
    ).check()  # a connection that refuses writes, as a read-only disk does
    assert not writable.ok and writable.detail == {"error": "cannot be written"}
    missing, _ = JournalProbe(create_engine(f"sqlite:///{tmp_path / 'none' / 'journal.sqlite'}")).check()
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
    assert kind_of("Claim/1") == "Claim"
    assert kind_of("Zzzq/1") == "other"  # a made-up type is not a series of its own
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


def test_a_journal_busy_with_a_writer_passes_until_the_writer_holds_it_too_long(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url))
    writer = sqlite3.connect(tmp_path / "journal.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process writing
    clock = [0.0]
    probe = JournalProbe(open_probe(url), busy_limit=60, clock=lambda: clock[0])
    writable, migrations = probe.check()
    assert writable.ok and writable.detail == {"busy": True}
    assert migrations.ok and migrations.detail["revision"] == newest_revision()  # read, not assumed
    clock[0] = 61
    writable, _ = probe.check()
    assert not writable.ok and "over 60 s" in writable.detail["error"]
    writer.execute("ROLLBACK")
    assert probe.check()[0].ok and probe.busy_since is None


def test_a_sqlite_journal_on_a_full_disk_is_not_writable(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    migrate(open_engine(url))
    monkeypatch.setattr(
        readiness_module.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1024)
    )
    writable, _ = JournalProbe(open_probe(url)).check()
    assert not writable.ok and writable.detail == {"error": "no room left on its disk"}


def test_while_one_caller_asks_again_the_others_get_the_last_answer():
    clock = [0.0]
    cache = CachedCheck(5, clock=lambda: clock[0])
    cache.get("a", lambda: Check(True, {"n": 1}))
    clock[0] = 10
    started, release = threading.Event(), threading.Event()

    def slow() -> Check:
        started.set()
        release.wait(5)
        return Check(True, {"n": 2})

    asking = threading.Thread(target=cache.get, args=("a", slow))
    asking.start()
    started.wait(5)
    calls = []
    assert cache.get("a", lambda: calls.append(1) or Check(False)).detail == {"n": 1}
    release.set()
    asking.join(5)
    assert not calls and cache.get("a", lambda: Check(False)).detail == {"n": 2}


def test_a_status_file_that_cannot_be_written_never_stops_the_heartbeat(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    status = StatusFile(tmp_path / "not-a-folder")
    status.beat()  # logged, not raised
    assert status.read() == HeartbeatStatus()


def test_gunicorn_s_access_log_stays_off(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logging.config.dictConfig(logs.gunicorn_config("INFO", "json"))
    access = logging.getLogger("gunicorn.access")
    assert not access.isEnabledFor(logging.ERROR) and not access.handlers and not access.propagate
    assert logging.getLogger("gunicorn.error").isEnabledFor(logging.INFO)


def test_each_server_counts_in_a_folder_of_its_own_and_clears_those_of_servers_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics_module.values, "ValueClass", metrics_module.values.ValueClass)
    monkeypatch.delenv(metrics_module.MULTIPROCESS_ENV, raising=False)
    host = socket.gethostname()
    gone = tmp_path / f"{host}-999999999"
    other_host = tmp_path / "elsewhere-1"
    for folder in (gone, other_host):
        folder.mkdir()
    alive = tmp_path / f"{host}-1"  # pid 1 is running
    alive.mkdir()
    similar = tmp_path / f"{host}-2-999999999"  # host `<host>-2`, which this server cannot see the processes of
    similar.mkdir()
    (tmp_path / "counter_123.db").write_text("")  # kept at the top by an older version
    mine = metrics_module.use_directory(tmp_path)
    assert mine == tmp_path / f"{host}-{os.getpid()}" and mine.is_dir()
    assert not gone.exists() and alive.exists() and other_host.exists() and similar.exists()
    assert not (tmp_path / "counter_123.db").exists()
    assert os.environ[metrics_module.MULTIPROCESS_ENV] == str(mine)
    monkeypatch.delenv(metrics_module.MULTIPROCESS_ENV)


def test_the_counters_still_go_out_when_the_journal_cannot_be_read(tmp_path):
    collector = JournalCollector(create_engine(f"sqlite:///{tmp_path / 'none' / 'j.sqlite'}"), HeartbeatStatus)
    families = {f.name: f for f in collector.collect()}
    assert families["mediator_journal_up"].samples[0].value == 0
    assert "mediator_records_pending" not in families and "mediator_openhim_registered" in families


@pytest.mark.postgres
def test_a_postgresql_journal_whose_row_a_writer_holds_is_busy_not_broken(postgres_url):
    from tests.conftest import empty_postgres

    url = empty_postgres(postgres_url)
    migrate(open_engine(url))
    holder = open_engine(url).connect()
    holder.begin()
    holder.execute(text("SELECT version_num FROM alembic_version FOR UPDATE"))  # a migration of another instance
    try:
        writable, migrations = JournalProbe(open_probe(url)).check()
        assert writable.ok and writable.detail == {"busy": True}
        assert migrations.ok
    finally:
        holder.rollback()
        holder.close()
