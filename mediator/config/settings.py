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
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from mediator.errors import MediatorError
from mediator.mapping.defaults import INSUREE_ATTRIBUTES

log = logging.getLogger(__name__)

ENV_PREFIX = "MEDIATOR_"
UID = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[2] / "mediator_config.json"
# Passwords that ship with OpenHIM and DHIS2 demos; using them needs an explicit opt-in.
WELL_KNOWN_PASSWORDS = frozenset({"openhim-password", "district", "admin", "password", "admin123"})


class SettingsError(MediatorError, ValueError):
    """The settings cannot be used; the message names every offending setting."""

    summary = "settings refused"


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
    aggregate_only: bool = False  # what comes on this channel is only counted into the monthly aggregates
    sends_aggregates: bool = False  # the endpoint an OpenHIM polling channel calls: each call sends the aggregates due


def _declare(default: Any, doc: str, scope: str, **more: Any) -> Any:
    meta = {"doc": doc, "scope": scope, **more}
    secret = scope == "secret"
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def process(default: Any, doc: str, *, shown: str | None = None, values: tuple[str, ...] = ()) -> Any:
    """A process setting: from the environment, fixed for the life of the process. `shown` is how the README
    shows a default that is computed; `values` are the only ones allowed."""
    return _declare(default, doc, "process", shown=shown, values=values)


def secret(doc: str) -> Any:
    """A secret: from the environment only, never logged, never in the OpenHIM console or the registration."""
    return _declare("", doc, "secret", shown=None, values=())


def console(default: Any, title: str, doc: str, *, values: tuple[str, ...] = (), shown: str | None = None) -> Any:
    """A setting an implementer may change in the OpenHIM console (a configDef titled `title`); the environment
    sets it too, under the console's value once that was changed."""
    return _declare(default, doc, "console", title=title, shown=shown, values=values)


@dataclass(frozen=True)
class Settings:
    """Every setting, declared once: its type, default, scope and meaning. The configDefs and defaults in
    mediator_config.json and the settings table in the README are made from these (mediator.config.declared)."""

    # Process settings: from the environment (over the defaults here), fixed for the life of the process.
    config_file: Path = process(DEFAULT_CONFIG_FILE, "the registration document", shown="`./mediator_config.json`")
    listen_host: str = process("127.0.0.1", "the address gunicorn listens on")
    listen_port: int = process(8000, "the port gunicorn listens on")
    workers: int = process(2, 'gunicorn worker processes (see "How the mediator serves HTTP")')
    threads: int = process(
        8, "requests a worker serves at once (a push delivered inline holds its thread until answered)"
    )
    connections_per_worker: int = process(
        1000, "open connections a worker holds, slow ones included; more wait unaccepted; must be more than `threads`"
    )
    header_timeout_seconds: float = process(
        10.0, "from a connection's opening, or a request's first byte, to the end of its headers; then 408"
    )
    body_timeout_seconds: float = process(
        30.0, "longest pause in a request body, and how long a body may take before its minimum rate applies"
    )
    body_min_kib_per_second: float = process(
        16.0, "average rate (KiB/s) a request body must keep up after that; a slower one is cut off"
    )
    keepalive_seconds: int = process(5, "how long an idle connection is kept open between two requests")
    public_host: str = process("127.0.0.1", "the host the core's routes use to reach the mediator")
    public_port: int = process(8000, "the port the core's routes use to reach the mediator")
    state_dir: Path = process(
        Path("var"), "heartbeat lock, the console config shared by the workers (mode 0600), the SQLite journal"
    )
    log_level: str = process("INFO", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = process(
        "text",
        "`text`, or `json`: one JSON object per line, with the push's transaction, channel and push id",
        values=("text", "json"),
    )
    metrics_port: int = process(
        0, "`0`: `/metrics` on the main port, behind the auditor's credentials; else a port of its own, unauthenticated"
    )
    metrics_host: str = process("127.0.0.1", "the address that port listens on (keep it internal)")
    metrics_username: str = process("metrics", "a user that may read `/metrics` on the main port, and nothing else")
    metrics_password: str = secret("its password; without one, `/metrics` takes the auditor's credentials only")
    openhim_url: str = process("https://127.0.0.1:8080", "the OpenHIM core's API")
    openhim_username: str = process("root@openhim.org", "an admin user of the core")
    openhim_password: str = secret("its password; without one, the mediator does not register")
    openhim_auth_mode: str = process(
        "basic", "`basic` (cores 7.1+) or `token` (the legacy scheme, cores up to 7.x)", values=("basic", "token")
    )
    openhim_verify_tls: bool | str = process(True, "`true`, `false` (warned) or the path of a CA bundle")
    openhim_register: bool = process(True, "register with the core and heartbeat (`false`: serve only)")
    openhim_console_url: str = process("", "the OpenHIM console's address: the auditor view links transactions to it")
    auditor_username: str = process("auditor", "the user of the read-only auditor view (`/audit`)")
    auditor_password: str = secret("its password; without one, the auditor view is closed")
    heartbeat_seconds: float = process(10.0, "heartbeat interval")
    allow_default_passwords: bool = process(
        False, "well-known passwords (`openhim-password`, `district`...) are refused unless this is `true`"
    )
    mapping_file: Path | None = process(None, "UIDs of an existing DHIS2 setup, by the mediator's keys")
    journal_url: str = process(
        "", "the journal's database (`postgresql://...` for PostgreSQL)", shown="SQLite in the state directory"
    )
    inline_limit: int = process(5000, "records of a push delivered before answering; a larger push is answered at once")
    delivery_seconds: float = process(5.0, "how often the delivery worker looks for records that are due")
    aggregate_seconds: float = process(300.0, "how often the delivery worker sends the aggregates that are due")
    retry_seconds: float = process(
        30.0, "first wait after DHIS2 could not take a push; it doubles after each failure, up to an hour"
    )
    slice_size: int = process(
        1000, "records the worker delivers of a push at a time (whole families, policies, claims)"
    )
    max_body_mb: int = process(1024, "largest push body taken (spooled to the state directory, refused above with 413)")
    openimis_url: str = process("", "openIMIS's FHIR R4 base (`…/api/api_fhir_r4/`) that pulls read")
    openimis_username: str = process("", "the openIMIS user pulls log in as")
    openimis_password: str = secret("its password")
    openimis_verify_tls: bool | str = process(True, "`true`, `false` (warned) or the path of a CA bundle")
    openimis_timeout_seconds: float = process(
        300.0, "read timeout of one openIMIS request (a feed is read as one page)"
    )
    openhim_router_url: str = process("", "how openIMIS reaches the OpenHIM router, for `subscribe`")
    subscription_client_id: str = process("", "the OpenHIM client openIMIS's subscriptions authenticate as")
    subscription_client_password: str = secret("its password")
    dhis2_password: str = secret("the default DHIS2 user's password (`dhis2_auth=basic`)")
    dhis2_token: str = secret("a DHIS2 personal access token (`dhis2_auth=token`, DHIS2 2.37+)")
    pseudonym_key: str = secret("HMAC key for insurance numbers; without it they are not sent")
    dhis2_verify_tls: bool | str = process(
        True, "`true`, `false` (test servers only, warned) or the path of a CA bundle; never from the console"
    )
    dhis2_allowed_hosts: str = process(
        "",
        "comma-separated `host` (any port) or `host:port` entries: the only hosts the DHIS2 credentials are sent to",
        shown="the host and port of `MEDIATOR_DHIS2_URL`",
    )
    personal_data_retention_days: int = process(
        90, "days after which a decided record's kept data is cleared from the journal"
    )

    # Console settings: configDefs in mediator_config.json, editable in the OpenHIM console.
    dhis2_url: str = console(
        "",
        "DHIS2 base URL",
        "Base URL of the DHIS2 instance, without /api (for example https://dhis2.example.org): a plain http(s) URL on "
        "a host the mediator's environment allows (MEDIATOR_DHIS2_ALLOWED_HOSTS, or the host of its "
        "MEDIATOR_DHIS2_URL), since the DHIS2 credentials come from the environment.",
    )
    dhis2_auth: str = console(
        "basic",
        "DHIS2 authentication",
        "basic: username and password; token: personal access token (DHIS2 2.37+, MEDIATOR_DHIS2_TOKEN in the "
        "mediator's environment).",
        values=("basic", "token"),
    )
    dhis2_username: str = console(
        "",
        "DHIS2 username",
        "Default DHIS2 user for every channel that names none of its own (its password is MEDIATOR_DHIS2_PASSWORD in "
        "the mediator's environment).",
    )
    dhis2_timeout_seconds: float = console(
        60.0, "DHIS2 read timeout (s)", "How long one DHIS2 request may take before it counts as failed."
    )
    dhis2_max_attempts: int = console(
        5,
        "DHIS2 attempts per request",
        "How many times one DHIS2 request is tried while DHIS2 is unreachable or answers 429/502/503/504 (exponential "
        "backoff with jitter, honouring Retry-After).",
    )
    tracker_api: str = console(
        "auto",
        "DHIS2 tracker API",
        "auto: the tracker importer (/api/tracker) on DHIS2 2.36+, the legacy API before; legacy: "
        "/api/trackedEntityInstances, /api/enrollments, /api/events (up to 2.41); tracker: always /api/tracker.",
        values=("auto", "tracker", "legacy"),
    )
    async_threshold: int = console(
        1000,
        "Objects per synchronous import",
        "A tracker import of more objects than this runs as a DHIS2 job that the mediator polls.",
    )
    dhis2_concurrency: int = console(
        2,
        "Concurrent DHIS2 requests",
        "How many import requests of one push run at the same time (keep it small: DHIS2 limits sessions per user and "
        "slows down under parallel imports).",
    )
    batch_size: int = console(
        200, "Records per DHIS2 request", "Largest number of insurees sent in one tracker import request."
    )
    person_tracked_entity_type: str = console(
        "EoBGArVCQ69", "Person tracked entity type UID", "DHIS2 tracked entity type used for insurees."
    )
    insuree_program: str = console(
        "IR5BiEXrBD7", "Family/Insuree program UID", "DHIS2 tracker program that insurees are enrolled in."
    )
    root_org_unit: str = console(
        "ImspTQPwCqd",
        "Root org unit UID",
        "The DHIS2 org unit under which openIMIS regions are placed (bootstrap creates it when missing).",
    )
    attribute_uids: Mapping[str, str] = console(
        {},
        "Attribute UID overrides",
        "Tracked entity attribute UIDs by field name (insuree_id, insurance_number, family_id, gender, birth_date, "
        "...), for a DHIS2 set up with other UIDs.",
    )
    atna_audit: bool = console(
        False,
        "ATNA audit events",
        "Keep an IHE ATNA audit event in the OpenHIM core's audit log for every delivery that sends insurees' data to "
        "DHIS2, naming them by their DHIS2 UIDs (off by default).",
    )
    send_names: bool = console(
        False, "Send names", "Send first and last names to DHIS2 (personal data; off by default)."
    )
    send_phone: bool = console(
        False, "Send phone numbers", "Send phone numbers to DHIS2 (personal data; off by default)."
    )
    send_identification_number: bool = console(
        False,
        "Send identification numbers",
        "Send national identification numbers to DHIS2 (personal data; off by default).",
    )
    birth_date_precision: str = console(
        "year",
        "Birth date precision",
        "full: the exact birth date; year: 1 January of the birth year.",
        values=("year", "full"),
    )
    uid_scheme: str = console(
        "mediator",
        "UID scheme",
        "mediator: the mediator's own keyed UIDs; openimis-etl: tracked entity and org unit UIDs as openIMIS's own "
        "DHIS2 module made them, to keep the records a migration finds in DHIS2.",
        values=("mediator", "openimis-etl"),
    )
    pull_page_size: int = console(
        1000,
        "Pull: page size",
        "Records asked of openIMIS per page; a feed that holds more is read again in one page large enough for all of "
        "it (openIMIS's ordering is not unique, so smaller pages would skip records).",
    )
    pull_resource_types: str = console(
        "",
        "Pull: resource types",
        "Comma-separated openIMIS resource types a pull reads (empty: all the mediator maps: Location, Organization, "
        "InsurancePlan, Medication, ActivityDefinition, Patient, Group, Coverage, Contract, Claim, ClaimResponse).",
    )
    pull_overlap_seconds: float = console(
        300.0,
        "Pull: overlap (seconds)",
        "How far before the last pull each pull reads again, so that nothing changed while a pull ran is missed "
        "(records already delivered are recognised and not sent again).",
    )
    aggregates: bool = console(
        False,
        "Monthly aggregates",
        "Count what flows through the mediator into openIMIS's ENROLMENT (wards) and PROCESSED_CLAIM (health "
        "facilities) monthly data sets, with the codes of openIMIS's own DHIS2 module, and send each month to DHIS2 "
        "once it closes (corrections to earlier months as they happen).",
    )
    aggregate_only: bool = console(
        False,
        "Aggregates only",
        "Send DHIS2 no individual record at all: insurees, families, policies and claims are only counted into the "
        "monthly aggregates (org units and code lists still go). A channel can ask for this on its own too.",
    )
    aggregate_format: str = console(
        "json",
        "Aggregates: format",
        "json: /api/dataValueSets with the option combos' UIDs, read from DHIS2; adx: ADX XML with codes, as "
        "openIMIS's module sent them.",
        values=("json", "adx"),
    )
    aggregate_suppress_below: int = console(
        1,
        "Aggregates: smallest count sent",
        "A cell counted from fewer records than this (insurees, families, policies or claims) is not sent, whatever "
        "it holds (a count, a quantity, an amount), and one already in DHIS2 is deleted; 1 sends every cell.",
    )
    channels: tuple[ChannelSettings, ...] = field(default=(), metadata={"scope": "console", "title": "Channels"})

    def channel(self, name: str) -> ChannelSettings | None:
        return next((c for c in self.channels if c.name == name), None)


def _kind(hint: Any) -> Any:
    """The type a raw (environment or console) value is read as."""
    if hint == bool | str:
        return hint
    if hint in (Path | None, Path):
        return Path
    if typing.get_origin(hint) is Mapping:
        return dict
    return hint


_HINTS = typing.get_type_hints(Settings)
SCOPES: dict[str, str] = {f.name: f.metadata.get("scope", "process") for f in fields(Settings)}
PROCESS_KEYS: dict[str, Any] = {
    f.name: _kind(_HINTS[f.name])
    for f in fields(Settings)
    if SCOPES[f.name] in ("process", "secret") and f.name != "config_file"
}
CONSOLE_KEYS: dict[str, Any] = {
    f.name: _kind(_HINTS[f.name]) for f in fields(Settings) if SCOPES[f.name] == "console" and f.name != "channels"
}
OPTIONS: dict[str, tuple[str, ...]] = {
    f.name: f.metadata["values"] for f in fields(Settings) if f.metadata.get("values")
}
RESERVED_PATHS = ("/health", "/ready", "/metrics", "/audit")  # the mediator's own pages, never a channel's
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


def counts_aggregates(s: Settings) -> bool:
    """Whether the mediator counts the monthly aggregates: asked for, or needed by aggregate-only mode anywhere (then
    everything is counted, whichever channel brings it: a ward may come on another channel than its insurees)."""
    return s.aggregates or s.aggregate_only or any(c.aggregate_only for c in s.channels)


def aggregate_only_for(s: Settings, channel: ChannelSettings | None) -> bool:
    """Whether what comes on this channel is kept from DHIS2's tracker (only counted)."""
    return s.aggregate_only or bool(channel and channel.aggregate_only)


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
        aggregate_only = _coerce(f"channels[{i}].aggregate_only", bool, entry.get("aggregate_only") or False)
        sends = _coerce(f"channels[{i}].sends_aggregates", bool, entry.get("sends_aggregates") or False)
        if pulls and sends:
            raise SettingsError(f"channels[{i}]: a channel pulls or sends the aggregates, not both")
        prefix = channel_env_prefix(values["name"])
        for f in ("username", "dhis2_username", *CHANNEL_SECRETS):
            if prefix + f.upper() in env:
                values[f] = env[prefix + f.upper()]
        if not values["path"].startswith("/"):
            raise SettingsError(f"channels[{i}].path: must start with '/'")
        if values["path"].rstrip("/") in RESERVED_PATHS or values["path"].startswith("/audit/"):
            raise SettingsError(f"channels[{i}].path: {values['path']} is the mediator's own (/health, /ready, ...)")
        resources = tuple(r.strip() for r in values.pop("resources").split(",") if r.strip())
        personal = tuple(p.strip() for p in values.pop("personal_data").split(",") if p.strip())
        unknown = sorted(set(personal) - set(PERSONAL_DATA))
        if unknown:
            raise SettingsError(f"channels[{i}].personal_data: unknown {unknown}; known: {', '.join(PERSONAL_DATA)}")
        channels.append(
            ChannelSettings(
                resources=resources,
                personal_data=personal,
                pulls=pulls,
                aggregate_only=aggregate_only,
                sends_aggregates=sends,
                **values,
            )
        )
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
    for key, allowed in OPTIONS.items():
        if getattr(s, key) not in allowed:
            problems.append(f"{key}: must be {' or '.join(allowed)}")
    if s.openimis_url and not s.openimis_url.startswith(("http://", "https://")):
        problems.append("openimis_url: must be an http(s) URL (openIMIS's FHIR R4 base)")
    unknown_types = sorted(set(pull_types(s)) - set(PULLED_TYPES))
    if unknown_types:
        problems.append(f"pull_resource_types: unknown {unknown_types}; known: {', '.join(PULLED_TYPES)}")
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
