"""Settings are declared once: mediator_config.json, the README and the registration all say what the declaration
says, process settings and secrets never reach the console, and the mediator has one version."""

import json
from dataclasses import fields
from importlib.metadata import version
from pathlib import Path

from mediator import __version__
from mediator.app.cli import main
from mediator.app.service import registration_document
from mediator.config import declared
from mediator.config.settings import CONSOLE_KEYS, PROCESS_KEYS, SCOPES, Settings, build_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG, README = ROOT / "mediator_config.json", ROOT / "README.md"


def test_mediator_config_and_the_readme_say_what_the_declaration_says():
    assert declared.stale(CONFIG, README) == []


def test_the_settings_command_names_a_file_that_differs_and_writes_it(tmp_path, monkeypatch, capsys):
    config = tmp_path / "mediator_config.json"
    document = json.loads(CONFIG.read_text())
    document["configDefs"][0]["description"] = "edited by hand"
    document["config"]["batch_size"] = 7
    config.write_text(json.dumps(document))
    (tmp_path / "README.md").write_text(f"# x\n\n{declared.README_START}\n\nold table\n\n{declared.README_END}\n")
    monkeypatch.setenv("MEDIATOR_CONFIG_FILE", str(config))
    for argv, code in ((["settings"], 1), (["settings", "--write"], 0), (["settings"], 0)):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == code, argv
    out = capsys.readouterr().out
    assert f"{config} differs" in out and "wrote" in out
    written = json.loads(config.read_text())
    assert written["configDefs"] == declared.config_defs()
    assert written["config"]["batch_size"] == 200
    assert "| `MEDIATOR_BATCH_SIZE` | `batch_size` | 200 |" in (tmp_path / "README.md").read_text()


def test_every_setting_is_in_one_scope_and_every_one_is_in_the_readme():
    assert set(SCOPES) == {f.name for f in fields(Settings)}
    assert not set(PROCESS_KEYS) & set(CONSOLE_KEYS)
    table = declared.settings_table()
    for name in (*PROCESS_KEYS, *CONSOLE_KEYS):
        assert f"`MEDIATOR_{name.upper()}`" in table, name


def test_only_console_settings_are_registered_and_no_secret_is():
    params = [d["param"] for d in declared.config_defs()]
    assert params == [*CONSOLE_KEYS, "channels"]
    secrets = [name for name, scope in SCOPES.items() if scope == "secret"]
    assert {"dhis2_password", "dhis2_token", "pseudonym_key", "openhim_password"} <= set(secrets)
    doc = registration_document(build_settings({}))
    assert [d["param"] for d in doc["configDefs"]] == params
    assert not set(secrets) & set(doc["config"])


def test_the_declared_defaults_are_the_settings_of_an_empty_environment():
    settings = build_settings({})
    for f in fields(Settings):
        if f.name in CONSOLE_KEYS:
            assert getattr(settings, f.name) == getattr(Settings(), f.name), f.name


def test_one_version():
    assert json.loads(CONFIG.read_text())["version"] == __version__ == version("openimis-dhis2-mediator")
