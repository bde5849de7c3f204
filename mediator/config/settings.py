"""All settings in one place: mediator_config.json defaults, overridden by MEDIATOR_* environment variables,
overridden by the values an implementer changed in the OpenHIM console.

Nothing else in the package reads os.environ.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from mediator.mapping.defaults import INSUREE_ATTRIBUTES

log = logging.getLogger(__name__)

ENV_PREFIX = "MEDIATOR_"
UID = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[2] / "mediator_config.json"
# Passwords that ship with OpenHIM and DHIS2 demos; using them needs an explicit opt-in.
WELL_KNOWN_PASSWORDS = frozenset({"openhim-password", "district", "admin", "password", "admin123"})


class SettingsError(ValueError):
    """The settings cannot be used; the message names every offending setting."""


@dataclass(frozen=True)
class ChannelSettings:
    name: str
    path: str
    resources: tuple[str, ...]
    username: str
    password: str = field(repr=False)
    dhis2_username: str = ""
    dhis2_password: str = field(default="", repr=False)
    personal_data: tuple[str, ...] = ()  # what this channel may send beyond the global privacy settings
    pulls: bool = False  # the endpoint an OpenHIM polling channel calls: each call pulls from openIMIS


@dataclass(frozen=True)
class Settings:
    # Process settings: environment only, fixed for the life of the process.
    config_file: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    workers: int = 2
    # How gunicorn serves (mediator/app/serving.py): a request takes one of a worker's threads once its headers are in.
    threads: int = 8  # requests a worker serves at once (a push delivered inline holds its thread until answered)
    connections_per_worker: int = 1000  # open connections a worker holds, slow ones included; more wait unaccepted
    header_timeout_seconds: float = 10.0  # from a connection's opening or a request's first byte to its last header
    body_timeout_seconds: float = 30.0  # longest pause in a request body, and the slack before its minimum rate
    body_min_kib_per_second: float = 16.0  # the average (KiB/s) a request body must keep up, or it is cut off
    keepalive_seconds: int = 5  # how long an idle connection is kept open between two requests
    public_host: str = "127.0.0.1"
    public_port: int = 8000
    state_dir: Path = Path("var")
    log_level: str = "INFO"
    openhim_url: str = "https://127.0.0.1:8080"
    openhim_username: str = "root@openhim.org"
    openhim_password: str = field(default="", repr=False)
    openhim_auth_mode: str = "basic"
    openhim_verify_tls: bool | str = True
    openhim_register: bool = True
    heartbeat_seconds: float = 10.0
    allow_default_passwords: bool = False
    mapping_file: Path | None = None  # DHIS2 UIDs of an existing setup, by the mediator's keys
    journal_url: str = ""  # SQLAlchemy URL; empty: SQLite in the state directory
    inline_limit: int = 5000  # records of a push delivered before answering; a larger push is answered at once
    delivery_seconds: float = 5.0  # how often the delivery worker looks for pushes that are due
    retry_seconds: float = 30.0  # first wait after DHIS2 could not take a push; it doubles, up to an hour
    slice_size: int = 1000  # records a worker delivers of a push at a time (whole units: a family, a claim...)
    max_body_mb: int = 1024  # largest push taken; it is spooled to the state directory, never held in memory
    openimis_url: str = ""  # openIMIS's FHIR R4 base, e.g. https://openimis.example.org/api/api_fhir_r4/
    openimis_username: str = ""
    openimis_password: str = field(default="", repr=False)
    openimis_verify_tls: bool | str = True
    openimis_timeout_seconds: float = 300.0  # read timeout of one openIMIS request (a feed is read as one page)
    openhim_router_url: str = ""  # how openIMIS reaches the OpenHIM router, for its subscriptions
    subscription_client_id: str = ""  # the OpenHIM client openIMIS's subscriptions authenticate as
    subscription_client_password: str = field(default="", repr=False)
    # Secrets and TLS verification: environment only, never in the OpenHIM console (see ENV_ONLY_CONSOLE_KEYS).
    dhis2_password: str = field(default="", repr=False)
    dhis2_token: str = field(default="", repr=False)
    pseudonym_key: str = field(default="", repr=False)
    dhis2_verify_tls: bool | str = True
    dhis2_allowed_hosts: str = ""  # where the DHIS2 credentials may go; empty: the environment's DHIS2 URL's host
    personal_data_retention_days: int = 90  # decided records' FHIR resources are cleared from the journal after this
    # Console-editable settings (configDefs in mediator_config.json).
    dhis2_url: str = ""
    dhis2_auth: str = "basic"
    dhis2_username: str = ""
    dhis2_timeout_seconds: float = 60.0
    dhis2_max_attempts: int = 5
    tracker_api: str = "auto"
    async_threshold: int = 1000
    dhis2_concurrency: int = 2
    batch_size: int = 200
    person_tracked_entity_type: str = ""
    insuree_program: str = ""
    root_org_unit: str = ""
    attribute_uids: Mapping[str, str] = field(default_factory=dict)
    send_names: bool = False
    send_phone: bool = False
    send_identification_number: bool = False
    birth_date_precision: str = "year"
    uid_scheme: str = "mediator"
    pull_page_size: int = 1000
    pull_resource_types: str = ""  # empty: every type the mapping takes
    pull_overlap_seconds: float = 300.0
    channels: tuple[ChannelSettings, ...] = ()

    def channel(self, name: str) -> ChannelSettings | None:
        return next((c for c in self.channels if c.name == name), None)


PROCESS_KEYS: dict[str, type] = {
    "listen_host": str,
    "listen_port": int,
    "workers": int,
    "threads": int,
    "connections_per_worker": int,
    "header_timeout_seconds": float,
    "body_timeout_seconds": float,
    "body_min_kib_per_second": float,
    "keepalive_seconds": int,
    "public_host": str,
    "public_port": int,
    "state_dir": Path,
    "log_level": str,
    "openhim_url": str,
    "openhim_username": str,
    "openhim_password": str,
    "openhim_auth_mode": str,
    "openhim_verify_tls": bool | str,  # type: ignore[dict-item]
    "openhim_register": bool,
    "heartbeat_seconds": float,
    "allow_default_passwords": bool,
    "mapping_file": Path,
    "journal_url": str,
    "inline_limit": int,
    "delivery_seconds": float,
    "retry_seconds": float,
    "slice_size": int,
    "max_body_mb": int,
    "openimis_url": str,
    "openimis_username": str,
    "openimis_password": str,
    "openimis_verify_tls": bool | str,  # type: ignore[dict-item]
    "openimis_timeout_seconds": float,
    "openhim_router_url": str,
    "subscription_client_id": str,
    "subscription_client_password": str,
    "dhis2_password": str,
    "dhis2_token": str,
    "pseudonym_key": str,
    "dhis2_verify_tls": bool | str,  # type: ignore[dict-item]
    "dhis2_allowed_hosts": str,
    "personal_data_retention_days": int,
}
CONSOLE_KEYS: dict[str, type] = {
    "dhis2_url": str,
    "dhis2_auth": str,
    "dhis2_username": str,
    "dhis2_timeout_seconds": float,
    "dhis2_max_attempts": int,
    "tracker_api": str,
    "async_threshold": int,
    "dhis2_concurrency": int,
    "batch_size": int,
    "person_tracked_entity_type": str,
    "insuree_program": str,
    "root_org_unit": str,
    "attribute_uids": dict,
    "send_names": bool,
    "send_phone": bool,
    "send_identification_number": bool,
    "birth_date_precision": str,
    "uid_scheme": str,
    "pull_page_size": int,
    "pull_resource_types": str,
    "pull_overlap_seconds": float,
}
CHANNEL_FIELDS = ("name", "path", "resources", "personal_data", "username", "dhis2_username")
# A channel's passwords come from MEDIATOR_CHANNEL_<NAME>_PASSWORD and _DHIS2_PASSWORD only.
CHANNEL_SECRETS = ("password", "dhis2_password")
# Keys the OpenHIM console may still carry from an older registration, taken from the environment only: the core
# masks nothing in GET /mediators nor inside the channels list, so a secret in its config is shown to every admin;
# and whether DHIS2's certificate is checked is not for whoever can edit the console to decide.
ENV_ONLY_CONSOLE_KEYS = ("dhis2_password", "dhis2_token", "pseudonym_key", "dhis2_verify_tls")
PERSONAL_DATA = ("names", "phone", "identification_number")
PULLED_TYPES = (
    "Location",
    "Organization",
    "InsurancePlan",
    "Medication",
    "ActivityDefinition",
    "Patient",
    "Group",
    "Coverage",
    "Contract",
    "Claim",
    "ClaimResponse",
)


def pull_types(s: Settings) -> tuple[str, ...]:
    """The openIMIS resource types a pull reads."""
    chosen = tuple(t.strip() for t in s.pull_resource_types.split(",") if t.strip())
    return chosen or PULLED_TYPES


def load_registration(path: Path) -> dict[str, Any]:
    """The mediator's OpenHIM registration document (mediator_config.json)."""
    try:
        with path.open(encoding="utf-8") as fh:
            doc: dict[str, Any] = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"cannot read mediator config file {path}: {exc}") from exc
    return doc


def _coerce(key: str, kind: Any, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{key}: expected true or false, got {raw!r}")
    if kind == bool | str:
        # TLS verification: true/false, or the path of a CA bundle; an empty value would turn it off unseen.
        try:
            return _coerce(key, bool, raw)
        except SettingsError:
            if not str(raw).strip():
                raise SettingsError(f"{key}: expected true, false or the path of a CA bundle, got nothing") from None
            return str(raw)
    if kind in (int, float):
        try:
            number = kind(raw)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SettingsError(f"{key}: expected a number, got {raw!r}") from exc
        if not math.isfinite(number) or number <= 0:
            raise SettingsError(f"{key}: must be positive, got {raw!r}")
        return number
    if kind is dict:
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise SettingsError(f"{key}: not valid JSON ({exc})") from exc
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise SettingsError(f"{key}: expected an object of strings")
        return dict(value)
    if kind is Path:
        return Path(raw)
    return str(raw)


def channel_env_prefix(name: str) -> str:
    """MEDIATOR_CHANNEL_<NAME>_: where a channel's credentials come from."""
    return f"{ENV_PREFIX}CHANNEL_{name.upper().replace('-', '_')}_"


def _channels(raw: Any, env: Mapping[str, str]) -> tuple[ChannelSettings, ...]:
    if not isinstance(raw, list):
        raise SettingsError("channels: expected a list of channel entries")
    channels = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("path"):
            raise SettingsError(f"channels[{i}]: each channel needs a name and a path")
        values = {f: str(entry.get(f) or "") for f in CHANNEL_FIELDS}
        values.update(dict.fromkeys(CHANNEL_SECRETS, ""))
        pulls = _coerce(f"channels[{i}].pulls", bool, entry.get("pulls") or False)
        prefix = channel_env_prefix(values["name"])
        for f in ("username", "dhis2_username", *CHANNEL_SECRETS):
            if prefix + f.upper() in env:
                values[f] = env[prefix + f.upper()]
        if not values["path"].startswith("/"):
            raise SettingsError(f"channels[{i}].path: must start with '/'")
        resources = tuple(r.strip() for r in values.pop("resources").split(",") if r.strip())
        personal = tuple(p.strip() for p in values.pop("personal_data").split(",") if p.strip())
        unknown = sorted(set(personal) - set(PERSONAL_DATA))
        if unknown:
            raise SettingsError(f"channels[{i}].personal_data: unknown {unknown}; known: {', '.join(PERSONAL_DATA)}")
        channels.append(ChannelSettings(resources=resources, personal_data=personal, pulls=pulls, **values))
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        raise SettingsError("channels: channel names must be unique")
    return tuple(channels)


def build_settings(
    env: Mapping[str, str] | None = None,
    console: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from mediator_config.json defaults < environment < values changed in the OpenHIM console.

    A console value counts only when it differs from the registered default, so a deployment's environment
    stays in force until an implementer actually edits that setting in the console.
    """
    env = dict(os.environ if env is None else env)
    config_file = Path(env.get(ENV_PREFIX + "CONFIG_FILE", DEFAULT_CONFIG_FILE))
    defaults: dict[str, Any] = load_registration(config_file).get("config", {})
    changed = console_changes(console or {}, defaults)
    values: dict[str, Any] = {"config_file": config_file}
    for key, kind in {**PROCESS_KEYS, **CONSOLE_KEYS}.items():
        raw = changed.get(key, env.get(ENV_PREFIX + key.upper(), defaults.get(key)))
        if raw is not None:
            values[key] = _coerce(key, kind, raw)
    values["channels"] = _channels(changed.get("channels", defaults.get("channels", [])), env)
    settings = Settings(**values)
    _check(settings)
    own_url = str(env.get(ENV_PREFIX + "DHIS2_URL", defaults.get("dhis2_url")) or "")
    problem = dhis2_url_problem(settings, own_url, from_console="dhis2_url" in changed)
    if problem:
        raise SettingsError(problem)
    return settings


def console_changes(console: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The console settings an implementer changed: a value still at its registered default leaves the environment
    in force, and what is taken from the environment only is ignored (see `without_env_only`)."""
    console = without_env_only(console)
    changed = {k: v for k, v in console.items() if k in CONSOLE_KEYS and v != defaults.get(k)}
    if "channels" in console and console["channels"] != defaults.get("channels", []):
        changed["channels"] = console["channels"]
    return changed


def without_env_only(console: Mapping[str, Any]) -> dict[str, Any]:
    """A console config without the keys taken from the environment only (an older registration had them in the
    console), each dropped with a warning that names the key, never its value."""
    kept = {k: v for k, v in console.items() if k not in ENV_ONLY_CONSOLE_KEYS}
    for key in ENV_ONLY_CONSOLE_KEYS:
        if console.get(key) not in (None, ""):
            _warn_ignored(key, f"{ENV_PREFIX}{key.upper()}")
    if isinstance(kept.get("channels"), list):
        kept["channels"] = [_channel_without_secrets(entry) for entry in kept["channels"]]
    return kept


def _channel_without_secrets(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry  # refused as malformed by _channels
    name = str(entry.get("name") or "?")
    for key in CHANNEL_SECRETS:
        if entry.get(key):
            _warn_ignored(f"channels[{name}].{key}", channel_env_prefix(name) + key.upper())
    return {k: v for k, v in entry.items() if k not in CHANNEL_SECRETS}


def _warn_ignored(key: str, variable: str) -> None:
    log.warning(
        "ignoring %s from the OpenHIM console: it is taken from the environment only (%s); remove it from the "
        "core's stored config, which shows it to every OpenHIM admin",
        key,
        variable,
    )


def _check(s: Settings) -> None:
    problems = []
    if s.connections_per_worker <= s.threads:
        problems.append("connections_per_worker: must be more than threads (slow connections wait without one)")
    if s.openhim_auth_mode not in {"basic", "token"}:
        problems.append("openhim_auth_mode: must be basic or token")
    if s.dhis2_auth not in {"basic", "token"}:
        problems.append("dhis2_auth: must be basic or token")
    if s.tracker_api not in {"auto", "tracker", "legacy"}:
        problems.append("tracker_api: must be auto, tracker or legacy")
    if s.openimis_url and not s.openimis_url.startswith(("http://", "https://")):
        problems.append("openimis_url: must be an http(s) URL (openIMIS's FHIR R4 base)")
    unknown_types = sorted(set(pull_types(s)) - set(PULLED_TYPES))
    if unknown_types:
        problems.append(f"pull_resource_types: unknown {unknown_types}; known: {', '.join(PULLED_TYPES)}")
    if s.uid_scheme not in {"mediator", "openimis-etl"}:
        problems.append("uid_scheme: must be mediator or openimis-etl")
    if s.birth_date_precision not in {"year", "full"}:
        problems.append("birth_date_precision: must be year or full")
    if not s.allow_default_passwords:
        for key, value in [
            ("openhim_password", s.openhim_password),
            ("dhis2_password", s.dhis2_password),
            *[(f"channels[{c.name}].password", c.password) for c in s.channels],
            *[(f"channels[{c.name}].dhis2_password", c.dhis2_password) for c in s.channels],
        ]:
            if value in WELL_KNOWN_PASSWORDS:
                problems.append(
                    f"{key}: a well-known default password; set {ENV_PREFIX}ALLOW_DEFAULT_PASSWORDS=true "
                    "to use it anyway (test installations only)"
                )
    uids = {
        "person_tracked_entity_type": s.person_tracked_entity_type,
        "insuree_program": s.insuree_program,
        "root_org_unit": s.root_org_unit,
    }
    uids.update({f"attribute_uids.{k}": v for k, v in s.attribute_uids.items()})
    unknown = sorted(set(s.attribute_uids) - set(INSUREE_ATTRIBUTES))
    if unknown:
        problems.append(f"attribute_uids: unknown fields {unknown}; known: {sorted(INSUREE_ATTRIBUTES)}")
    for key, value in uids.items():
        if value and not UID.match(value):
            problems.append(f"{key}: {value!r} is not a DHIS2 UID (a letter, then 10 letters or digits)")
    if problems:
        raise SettingsError("; ".join(problems))


def dhis2_url_problem(s: Settings, own_url: str, from_console: bool) -> str | None:
    """Why the DHIS2 credentials, which come from the environment, may not go to `s.dhis2_url` (None: they may).

    The environment says where they go: MEDIATOR_DHIS2_ALLOWED_HOSTS, or else the host and port of its own DHIS2 URL
    (`own_url`, the environment's or the registered default). A URL changed in the OpenHIM console must be a plain
    http(s) base URL on one of those hosts, and not http where the environment's own URL is https. Messages name the
    host at most: a URL may carry a password."""
    allowed: list[tuple[str, int | None]] = []
    for entry in (e.strip() for e in s.dhis2_allowed_hosts.split(",")):
        if not entry:
            continue
        try:
            parts = urlsplit("//" + entry)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or not parts.hostname or parts.path or parts.query or "@" in parts.netloc:
            return f"dhis2_allowed_hosts: {entry!r} is not a host or host:port"
        allowed.append((parts.hostname, port))
    if not s.dhis2_url:
        return None
    problem = _plain_url_problem(s.dhis2_url)
    if problem:
        return f"dhis2_url: {problem}"
    target = urlsplit(s.dhis2_url)
    host, port = target.hostname or "", _port(target)
    if not allowed and own_url and not _plain_url_problem(own_url):
        allowed = [(urlsplit(own_url).hostname or "", _port(urlsplit(own_url)))]
    if not any(host == h and p in (None, port) for h, p in allowed):
        if not allowed:
            return (
                "dhis2_url: the environment allows no DHIS2 host for its credentials; set "
                f"{ENV_PREFIX}DHIS2_ALLOWED_HOSTS (or {ENV_PREFIX}DHIS2_URL)"
            )
        names = ", ".join(h if p is None else f"{h}:{p}" for h, p in allowed)
        if s.dhis2_allowed_hosts.strip():
            return f"dhis2_url: {host}:{port} is not a DHIS2 host the environment allows ({names})"
        return (
            f"dhis2_url: {host}:{port} is not a DHIS2 host the environment allows (only {names}, the host of its "
            f"own DHIS2 URL; {ENV_PREFIX}DHIS2_ALLOWED_HOSTS allows others)"
        )
    if from_console and target.scheme == "http" and urlsplit(own_url).scheme == "https":
        return "dhis2_url: http would send the DHIS2 credentials in clear where the environment's URL uses https"
    return None


def _plain_url_problem(url: str) -> str | None:
    if "\\" in url or any(c.isspace() or not c.isprintable() for c in url):
        return "must be a plain http(s) base URL (no spaces, control characters or backslashes)"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host (DHIS2's base URL, without /api)"
    if "@" in parts.netloc:
        return "must not carry a user or password (the DHIS2 credentials come from the environment)"
    if "?" in url or "#" in url:
        return "must be a base URL, without a query or fragment"
    try:
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return "has a malformed port"
    return None


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def insecure_warnings(s: Settings) -> list[str]:
    """What an operator explicitly allowed that weakens security; logged at start and on every change."""
    warnings = []
    if s.openhim_verify_tls is False:
        warnings.append("TLS verification towards the OpenHIM core is OFF (MEDIATOR_OPENHIM_VERIFY_TLS=false)")
    if s.openimis_url and s.openimis_verify_tls is False:
        warnings.append("TLS verification towards openIMIS is OFF (MEDIATOR_OPENIMIS_VERIFY_TLS=false)")
    if s.dhis2_verify_tls is False:
        warnings.append("TLS verification towards DHIS2 is OFF (MEDIATOR_DHIS2_VERIFY_TLS=false)")
    if s.allow_default_passwords:
        warnings.append("well-known default passwords are allowed (MEDIATOR_ALLOW_DEFAULT_PASSWORDS=true)")
    for c in s.channels:
        if not c.password:
            warnings.append(f"channel {c.name!r} has no password: it refuses every request until one is set")
    return warnings


def with_console(settings: Settings, console: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Settings after the OpenHIM console config arrived by heartbeat (process settings unchanged)."""
    fresh = build_settings(env, console)
    return replace(fresh, **{k: getattr(settings, k) for k in PROCESS_KEYS})
