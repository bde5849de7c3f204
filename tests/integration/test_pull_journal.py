"""What the journal keeps of pulls, on SQLite and PostgreSQL: cursors that only move forward, the filters asked within
the hour, and one pull at a time per openIMIS."""

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from mediator.journal.pulls import (
    PullRunning,
    advance,
    feed_states,
    forget,
    release_lease,
    remember_query,
    take_lease,
)
from mediator.journal.store import Journal

SOURCE = "http://openimis.test/api/api_fhir_r4"


@pytest.fixture
def journal(journal_url):
    return Journal.open(journal_url)


def test_a_cursor_moves_forward_never_back(journal):
    advance(journal, SOURCE, {"Patient": "2024-05-01T10:00:00"})
    advance(journal, SOURCE, {"Patient": "2024-04-01T10:00:00", "Claim": "2024-05-02T00:00:00"})
    states = feed_states(journal, SOURCE, 0)
    assert states["Patient"].cursor == "2024-05-01T10:00:00" and states["Claim"].cursor == "2024-05-02T00:00:00"
    assert feed_states(journal, "http://other.test", 0) == {}


def test_forgetting_the_cursors_makes_the_next_pull_read_everything(journal):
    advance(journal, SOURCE, {"Patient": "2024-05-01T10:00:00"})
    forget(journal, SOURCE)
    assert feed_states(journal, SOURCE, 0)["Patient"].cursor is None


def test_filters_are_remembered_for_an_hour(journal):
    remember_query(journal, SOURCE, "Patient", "ge2024-05-01T09:55:00", 1000.0)
    remember_query(journal, SOURCE, "Patient", "ge2024-05-01T09:54:59", 2000.0)
    assert [q for q, _ in feed_states(journal, SOURCE, 2100.0)["Patient"].queries] == [
        "ge2024-05-01T09:55:00",
        "ge2024-05-01T09:54:59",
    ]
    assert [q for q, _ in feed_states(journal, SOURCE, 1000.0 + 3800)["Patient"].queries] == ["ge2024-05-01T09:54:59"]


def test_one_pull_at_a_time_per_openimis(journal):
    take_lease(journal, SOURCE, "elsewhere:1:pull-a")
    with pytest.raises(PullRunning, match="another pull"):
        take_lease(journal, SOURCE, "elsewhere:2:pull-b")
    take_lease(journal, "http://other.test", "elsewhere:2:pull-b")  # another openIMIS is another lease
    release_lease(journal, SOURCE, "elsewhere:1:pull-a")
    take_lease(journal, SOURCE, "elsewhere:2:pull-b")


def test_a_lease_left_by_a_dead_process_on_this_machine_is_taken_at_once(journal):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    take_lease(journal, SOURCE, f"{socket.gethostname()}:{dead.stdout.strip()}:pull-x")
    take_lease(journal, SOURCE, f"{socket.gethostname()}:1:pull-y")


def test_a_lease_left_on_another_machine_is_taken_once_it_runs_out(journal):
    take_lease(journal, SOURCE, "elsewhere:1:pull-a")
    with pytest.raises(PullRunning):
        take_lease(journal, SOURCE, "here:1:pull-b")
    take_lease(journal, SOURCE, "here:1:pull-b", now=datetime.now(UTC) + timedelta(minutes=31))
