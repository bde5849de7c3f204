"""What the declaration of the settings (mediator.config.settings.Settings) shows others: the OpenHIM configDefs and
their defaults in mediator_config.json, and the settings table of the README.

`openimis-dhis2-mediator settings --write` writes both from the declaration; a test fails when either differs.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from mediator import __version__
from mediator.config.settings import CONSOLE_KEYS, ENV_PREFIX, Settings, channel_env_prefix

CHANNEL_TEMPLATE = [
    {"param": "name", "displayName": "Name", "type": "string"},
    {"param": "path", "displayName": "Mediator path", "type": "string"},
    {"param": "resources", "displayName": "Resource types (comma separated)", "type": "string"},
    {
        "param": "personal_data",
        "displayName": "Personal data this channel may send (names, phone, identification_number)",
        "type": "string",
    },
    {"param": "username", "displayName": "Route username", "type": "string"},
    {"param": "dhis2_username", "displayName": "DHIS2 username (optional)", "type": "string"},
    {"param": "pulls", "displayName": "Pulls from openIMIS (the polling channel's endpoint)", "type": "bool"},
    {"param": "aggregate_only", "displayName": "Aggregates only (no individual record to DHIS2)", "type": "bool"},
    {
        "param": "sends_aggregates",
        "displayName": "Sends the monthly aggregates (the polling channel's endpoint)",
        "type": "bool",
    },
]
CHANNELS_DOC = (
    "One entry per mediator endpoint: the username its OpenHIM route sends, the openIMIS resources it takes, and "
    "optionally its own DHIS2 user. Passwords are not set here (the console shows this list unmasked): the route's "
    "comes from MEDIATOR_CHANNEL_<NAME>_PASSWORD, the DHIS2 user's from MEDIATOR_CHANNEL_<NAME>_DHIS2_PASSWORD, in "
    "the mediator's environment."
)
_CONFIG_TYPES = {str: "string", int: "number", float: "number", bool: "bool", dict: "map"}
README_START = "<!-- settings: written by `openimis-dhis2-mediator settings --write` -->"
README_END = "<!-- end of settings -->"


def _default(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def config_defs() -> list[dict[str, Any]]:
    """The configDefs the mediator registers: one per console setting, then the channels."""
    defs = []
    for f in fields(Settings):
        if f.name not in CONSOLE_KEYS:
            continue
        entry: dict[str, Any] = {
            "param": f.name,
            "displayName": f.metadata["title"],
            "description": f.metadata["doc"],
            "type": "option" if f.metadata["values"] else _CONFIG_TYPES[CONSOLE_KEYS[f.name]],
        }
        if f.metadata["values"]:
            entry["values"] = list(f.metadata["values"])
        defs.append(entry)
    defs.append(
        {
            "param": "channels",
            "displayName": "Channels",
            "description": CHANNELS_DOC,
            "type": "struct",
            "array": True,
            "template": CHANNEL_TEMPLATE,
        }
    )
    return defs


def config_defaults(channels: list[dict[str, Any]]) -> dict[str, Any]:
    """The registered config: each console setting's declared default, and the default channels."""
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in CONSOLE_KEYS:
            value = _default(f)
            values[f.name] = int(value) if isinstance(value, float) and value.is_integer() else value
    values["channels"] = channels
    return values


def registration(document: dict[str, Any]) -> dict[str, Any]:
    """mediator_config.json as the declaration says it is: its version, configDefs and config defaults (the
    default channels, endpoints and routes are the document's own)."""
    channels = (document.get("config") or {}).get("channels") or []
    return {**document, "version": __version__, "configDefs": config_defs(), "config": config_defaults(channels)}


def _shown(f: Any) -> str:
    if f.metadata.get("shown"):
        return str(f.metadata["shown"])
    value = _default(f)
    if value in ("", None, {}):
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return f"`{value}`"


def settings_table() -> str:
    """The README's table: every setting, its environment variable, console name, default and meaning."""
    rows = ["| environment | console | default | meaning |", "|---|---|---|---|"]
    for f in fields(Settings):
        if f.name == "channels":
            continue
        scope = f.metadata["scope"]
        where = f"`{f.name}`" if scope == "console" else "—"
        meaning = f.metadata["doc"] + ("; environment only, never shown" if scope == "secret" else "")
        rows.append(f"| `{ENV_PREFIX}{f.name.upper()}` | {where} | {_shown(f)} | {meaning} |")
    prefix = channel_env_prefix("<name>")
    rows.append(
        f"| `{prefix}USERNAME`, `{prefix}DHIS2_USERNAME` | `channels` | the default channels | per channel: route "
        "username, resource types, personal data it may send (`names`, `phone`, `identification_number`), optional "
        "DHIS2 username, `pulls` (the polling channel's endpoint: each call pulls from openIMIS), `aggregate_only` "
        "(what it brings is only counted into the monthly aggregates) and `sends_aggregates` (the polling channel's "
        "endpoint: each call sends the monthly aggregates due) |"
    )
    rows.append(
        f"| `{prefix}PASSWORD`, `{prefix}DHIS2_PASSWORD` | — | — | per channel: the password its OpenHIM route "
        "sends, and the password of the channel's own DHIS2 user; environment only, never shown |"
    )
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    start, end = readme.index(README_START), readme.index(README_END)
    return readme[: start + len(README_START)] + "\n\n" + settings_table() + "\n\n" + readme[end:]


def _wanted(config_file: Path, readme: Path | None) -> dict[Path, tuple[str, str]]:
    """Each file: (as it is, as the declaration says it should be)."""
    text = config_file.read_text(encoding="utf-8")
    files = {config_file: (text, json.dumps(registration(json.loads(text)), indent=2, ensure_ascii=False) + "\n")}
    if readme is not None:
        text = readme.read_text(encoding="utf-8")
        files[readme] = (text, readme_with_table(text))
    return files


def stale(config_file: Path, readme: Path | None) -> list[Path]:
    """The files that do not say what the declaration says."""
    return [path for path, (now, wanted) in _wanted(config_file, readme).items() if now != wanted]


def write(config_file: Path, readme: Path | None) -> list[Path]:
    """Write mediator_config.json (and the README's table) from the declaration; returns the files changed."""
    changed = []
    for path, (now, wanted) in _wanted(config_file, readme).items():
        if now != wanted:
            path.write_text(wanted, encoding="utf-8")
            changed.append(path)
    return changed
