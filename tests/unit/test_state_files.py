"""What the mediator keeps on disk is private to its user, and the spool of a process that died goes at start."""

import io
import os
import time

import pytest

from mediator.app import cli
from mediator.intake.spool import remove_stale
from mediator.journal.store import migrate, open_engine


@pytest.fixture
def usual_umask():
    """A permissive umask, as a process that did not set its own would have; restored after."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path):
    return oct(path.stat().st_mode & 0o777)


def test_the_journal_and_its_wal_files_are_private(tmp_path, usual_umask):
    engine = open_engine(f"sqlite:///{tmp_path / 'state' / 'journal.sqlite'}")
    migrate(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT count(*) FROM work").scalar()
        files = sorted(p.name for p in (tmp_path / "state").iterdir())
        assert files == ["journal.sqlite", "journal.sqlite-shm", "journal.sqlite-wal"]
        assert [mode(tmp_path / "state" / f) for f in files] == ["0o600"] * 3
    assert mode(tmp_path / "state") == "0o700"
    engine.dispose()


def test_an_older_journal_readable_by_others_is_made_private(tmp_path, usual_umask):
    journal = tmp_path / "journal.sqlite"
    journal.touch(mode=0o644)
    open_engine(f"sqlite:///{journal}").dispose()
    assert mode(journal) == "0o600"


def spool_file(directory, name="push-abc.json"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text('{"resourceType": "Patient"}')
    return path


def test_a_spool_file_left_by_a_process_that_died_is_removed_at_start(tmp_path):
    path = spool_file(tmp_path)
    assert remove_stale(tmp_path, older_than=0) == 1
    assert not path.exists()


def test_a_spool_file_a_process_still_has_open_is_kept_whatever_its_age(tmp_path):
    path = spool_file(tmp_path)
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))
    with path.open("rb"):  # a push command or pull reading it beside the server
        assert remove_stale(tmp_path, older_than=0) == 0
    assert path.exists()


@pytest.fixture
def command_line(tmp_path, monkeypatch):
    """The command line with this state directory, its umask restored after (main sets the process's)."""
    monkeypatch.setenv("MEDIATOR_STATE_DIR", str(tmp_path / "state"))
    for name in [k for k in os.environ if k.startswith("MEDIATOR_") and k != "MEDIATOR_STATE_DIR"]:
        monkeypatch.delenv(name)
    before = os.umask(0o022)
    yield tmp_path / "state"
    os.umask(before)


def run(argv):
    try:
        cli.main(argv)
    except SystemExit as stopped:
        return stopped.code
    return 0


@pytest.mark.parametrize(
    ("command", "age", "removed"),
    [("serve", 0, True), ("push", 0, False), ("pull", 0, False), ("push", 7200, True), ("pull", 7200, True)],
)
def test_serve_push_and_pull_remove_the_spool_left_behind_before_they_start(
    command, age, removed, command_line, monkeypatch
):
    """The server's master removes every spool file nobody has open; a command started beside a running server
    only those older than an hour (the server may be between two reads of a push it is taking in)."""
    import mediator.app.pull_command
    import mediator.app.push_file

    left = spool_file(command_line / "incoming")
    os.utime(left, (time.time() - age, time.time() - age))
    seen = []
    monkeypatch.setattr(cli, "_serve", lambda settings, env: seen.append(left.exists()))
    monkeypatch.setattr(mediator.app.push_file, "push_file", lambda *a, **k: seen.append(left.exists()) or 0)
    monkeypatch.setattr(mediator.app.pull_command, "pull_command", lambda *a, **k: seen.append(left.exists()) or 0)
    argv = {"serve": ["serve"], "push": ["push", str(left.parent.parent / "x.json"), "--channel", "insurees"]}
    (command_line / "x.json").write_text("{}")
    assert run(argv.get(command, [command])) == 0
    assert seen == [not removed]


def test_the_command_line_keeps_what_it_writes_to_its_user(command_line, monkeypatch):
    monkeypatch.setattr(cli, "_serve", lambda settings, env: None)
    run(["serve"])
    assert os.umask(0o022) == 0o077


def test_a_push_being_taken_in_keeps_its_spool_file_from_a_process_starting_beside_it(tmp_path):
    from mediator.intake.spool import spooled

    directory = tmp_path / "incoming"
    with spooled(io.BytesIO(b"{}"), directory) as body:
        assert remove_stale(directory, older_than=0) == 0
        assert body.path.exists()
    assert not body.path.exists()
