"""`push FILE`: a file's push is kept and delivered like one that came on the channel; `pushes` shows its counts."""

import json

import pytest

from mediator.app import cli
from mediator.mapping.insuree import tracked_entity_uid
from tests import samples
from tests.integration.test_slices import families


@pytest.fixture
def run(env, fake, monkeypatch, capsys):
    for key, value in {**env, "MEDIATOR_CHANNEL_OPENIMIS_PASSWORD": "route-pass", "MEDIATOR_SLICE_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)

    def run(*argv):
        with pytest.raises(SystemExit) as stop:
            cli.main(list(argv))
            raise SystemExit(0)
        return stop.value.code, capsys.readouterr().out

    return run


def test_a_file_is_kept_and_delivered_with_its_counts(run, fake, tmp_path):
    path = tmp_path / "families.json"
    path.write_text(json.dumps(samples.bundle(*families(3))))
    code, out = run("push", str(path), "--channel", "openimis", "--deliver")
    assert code == 0, out
    assert "push 1: 9 records kept" in out and "push 1: Successful; delivered 9" in out
    head = "00000000-0000-4000-8000-000200000000"
    assert tracked_entity_uid(head) in fake.fake.store.tracked_entities
    code, out = run("pushes")
    assert out.split("\t")[0] == "1" and "Successful\tdelivered 9" in out
    code, out = run("push", str(path), "--channel", "openimis", "--deliver")  # the same file again: nothing sent
    assert code == 0 and "9 unchanged" in out and "push 2: Successful; unchanged 9" in out
    code, out = run("pushes")
    assert "Successful\tunchanged 9" in out.splitlines()[0]


def test_a_file_that_is_not_a_push_is_not_kept(run, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(samples.bundle(samples.patient()))[:-10])
    code, out = run("push", str(path), "--channel", "openimis")
    assert code == 2 and "not valid JSON" in out and "not kept" in out
    assert run("pushes")[1] == ""


def test_an_unknown_channel_is_named(run, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(samples.patient()))
    code, out = run("push", str(path), "--channel", "nope")
    assert code == 2 and "no channel named 'nope'" in out and "insurees" in out
