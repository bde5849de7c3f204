"""The container deployment: Dockerfile, .dockerignore, docker-compose.yml and the OpenHIM import job under deploy/.

No container engine runs here, so these read the files and check what the image and the stack depend on: pinned
images, health checks, the order of start, settings the mediator declares, secrets only from the environment, and an
import file that installs the mediator's own channels with the credentials the mediator checks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from functools import cache
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from ruamel.yaml import YAML

from mediator import __version__
from mediator.config.settings import (
    CHANNEL_SECRETS,
    ENV_PREFIX,
    WELL_KNOWN_PASSWORDS,
    Settings,
    build_settings,
    channel_env_prefix,
    insecure_warnings,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
IMPORT_FILE = ROOT / "deploy" / "openhim" / "openhim-import.json"
IMPORT_SCRIPT = ROOT / "deploy" / "openhim" / "import_config.py"
CONSOLE_CONFIG = ROOT / "deploy" / "openhim" / "console-config.json"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"
DEPLOY_README = ROOT / "deploy" / "README.md"
REGISTRATION = ROOT / "mediator_config.json"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"password|secret|token|key$", re.IGNORECASE)
EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+(-[a-z0-9.]+)*$")
# PostgreSQL numbers its releases major.minor since version 10: 16.15 is one release, not a series.
EXACT_TWO_PART_TAG = {"postgres": re.compile(r"^\d+\.\d+(-[a-z0-9.]+)*$")}
ONE_SHOT = "service_completed_successfully"


# --- the compose file -------------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment as a mapping, so that each name can be checked"
    return {str(k): str(v) for k, v in env.items()}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """What compose makes of `value` with `env` as its .env: defaults apply, and a required variable missing fails."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        given = env.get(name)
        empty = given is None or (given == "" and op.startswith(":"))
        if op.endswith("-"):
            return arg if empty else str(given)
        if op.endswith("?") and empty:
            raise AssertionError(f"compose stops: {name} is required ({arg})")
        return given or ""

    return INTERPOLATION.sub(one, value)


def referenced_variables() -> dict[str, str]:
    """Each variable the compose file interpolates, and how: '' (plain), '-' (has a default) or '?' (required)."""
    found: dict[str, str] = {}
    for m in INTERPOLATION.finditer(COMPOSE.read_text(encoding="utf-8")):
        found[m.group(1)] = (m.group(2) or "").lstrip(":")
    return found


@cache
def example_env() -> tuple[dict[str, str], frozenset[str]]:
    """deploy/example.env: its settings, and the names it mentions only in commented-out lines."""
    values: dict[str, str] = {}
    commented = set()
    for line in EXAMPLE_ENV.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#)?([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m and m.group(1):
            commented.add(m.group(2))
        elif m:
            values[m.group(2)] = m.group(3)
    return values, frozenset(commented)


def filled_env() -> dict[str, str]:
    """example.env as an implementer fills it in: a URL or a distinct random-looking value for each empty setting."""
    values, _ = example_env()

    def made_up(name: str) -> str:
        if name.endswith("_URL"):
            return f"https://{name.lower().replace('_', '-')}.example.org/"
        return hashlib.sha256(name.encode()).hexdigest()[:32]

    return {k: v or made_up(k) for k, v in values.items()}


def published(service: str) -> dict[int, str]:
    """The container ports a service publishes, each with the host address it is bound to ('' for all)."""
    ports = {}
    for entry in services()[service].get("ports") or []:
        parts = interpolate(str(entry), filled_env()).split(":")
        ports[int(parts[-1].split("/")[0])] = parts[0] if len(parts) == 3 else ""
    return ports


def one_shots() -> set[str]:
    """Services others wait for to have run to completion."""
    waited = set()
    for svc in services().values():
        for name, dep in (svc.get("depends_on") or {}).items():
            if isinstance(dep, dict) and dep.get("condition") == ONE_SHOT:
                waited.add(name)
    return waited


# --- the Dockerfile ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@cache
def stages() -> list[list[Instruction]]:
    """The Dockerfile's stages, each a list of instructions, with continuation lines joined as the builder joins
    them (backslash and line break removed, comment lines dropped)."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#") or (not pending and not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        logical.append((pending + line).strip())
        pending = ""
    found: list[list[Instruction]] = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        if keyword.upper() == "FROM":
            found.append([])
        found[-1].append(Instruction(keyword.upper(), args.strip()))
    return found


def final_stage() -> list[Instruction]:
    return stages()[-1]


def instructions(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def base_image(stage: list[Instruction]) -> str:
    return stage[0].args.split()[0]


def image_env() -> dict[str, str]:
    """The ENV of the final stage (NAME=value pairs)."""
    env: dict[str, str] = {}
    for args in instructions(final_stage(), "ENV"):
        env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def copy_sources(stage: list[Instruction]) -> list[str]:
    """What a stage COPYs (or ADDs) from the build context, not from another stage."""
    sources = []
    for args in instructions(stage, "COPY") + instructions(stage, "ADD"):
        words = [w for w in args.split() if not w.startswith("--")]
        if any(w.startswith("--from") for w in args.split()):
            continue
        sources += words[:-1]
    return sources


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context: the last pattern matching the path or one of its
    parent directories decides; `*` stays within a name, `**` spans directories."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    included = True
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!")).lstrip("/")
        if any(regex(pattern).fullmatch(p) for p in prefixes):
            included = negated
    return included


# --- the registration and the import file -----------------------------------------------------------------------


@cache
def registration() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(REGISTRATION.read_text(encoding="utf-8"))
    return loaded


@cache
def import_file() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(IMPORT_FILE.read_text(encoding="utf-8"))
    return loaded


@cache
def import_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openhim_import_config", IMPORT_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def channel_for_path(path: str) -> dict[str, Any]:
    """The mediator's `channels` entry for a mediator path."""
    return next(c for c in registration()["config"]["channels"] if c["path"] == path)


def declared_variables() -> set[str]:
    """Every environment variable the mediator reads: one per setting, and each channel's credentials."""
    names = {ENV_PREFIX + f.name.upper() for f in fields(Settings) if f.name != "channels"}
    for channel in registration()["config"]["channels"]:
        prefix = channel_env_prefix(channel["name"])
        names |= {prefix + "USERNAME", prefix + "DHIS2_USERNAME"} | {prefix + s.upper() for s in CHANNEL_SECRETS}
    return names


def mediator_env() -> dict[str, str]:
    """The mediator's environment in its container: the image's ENV under the compose file's, with .env filled in;
    the registration document at its place in this checkout."""
    env = {**image_env(), **{k: interpolate(v, filled_env()) for k, v in environment("mediator").items()}}
    env[ENV_PREFIX + "CONFIG_FILE"] = str(REGISTRATION)
    return env


# --- the compose file: schema, images, health, order ------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_image_has_an_exact_version_tag() -> None:
    for name, svc in services().items():
        image = svc.get("image")
        assert image, f"{name}: names its image (a built one too, so that its tag says what it is)"
        assert "$" not in image, f"{name}: the image is not chosen by the environment"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has a tag"
        exact = EXACT_TWO_PART_TAG.get(repository, EXACT_TAG)
        assert tag != "latest" and exact.match(tag), f"{name}: {image} is not pinned to an exact version"


def test_openhim_is_core_8_5_0_with_console_1_18() -> None:
    assert services()["openhim-core"]["image"] == "jembi/openhim-core:v8.5.0"
    assert re.fullmatch(r"jembi/openhim-console:v1\.18\.\d+", services()["openhim-console"]["image"])


def test_the_mediator_image_is_built_here_and_tagged_with_the_mediators_version() -> None:
    mediator = services()["mediator"]
    assert mediator["build"]["context"] == "."
    assert (ROOT / mediator["build"].get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert mediator["image"] == f"openimis-dhis2-mediator:{__version__}"


def test_the_import_job_runs_on_the_mediators_own_base_image() -> None:
    assert services()["openhim-import"]["image"] == base_image(final_stage())


def test_every_service_has_a_health_check_or_runs_once() -> None:
    for name, svc in services().items():
        if name in one_shots():
            assert svc.get("restart") == "no", f"{name}: a one-shot job is not restarted"
            assert "healthcheck" not in svc, f"{name}: a one-shot job is waited for to finish, not to be healthy"
        elif "build" in svc:
            assert instructions(final_stage(), "HEALTHCHECK"), f"{name}: its image has a health check"
        else:
            check = svc.get("healthcheck") or {}
            assert check.get("test") and not check.get("disable"), f"{name}: has a health check"


def test_services_wait_for_what_they_depend_on_to_be_healthy_or_done() -> None:
    for name, svc in services().items():
        for dep, how in (svc.get("depends_on") or {}).items():
            assert isinstance(how, dict), f"{name}: waits for {dep} on a condition, not just its start"
            condition = how.get("condition")
            if condition == "service_healthy":
                target = services()[dep]
                assert "healthcheck" in target or "build" in target, f"{name} waits for {dep}, which has no check"
            else:
                assert condition == ONE_SHOT, f"{name}: waits for {dep} on {condition!r}"
    mediator = services()["mediator"]["depends_on"]
    assert mediator["openhim-import"]["condition"] == ONE_SHOT, "the mediator starts once its routes are in place"
    assert mediator["postgres"]["condition"] == "service_healthy", "and once its journal's database answers"


def test_only_the_console_the_core_api_and_the_router_are_published() -> None:
    found = {name: published(name) for name in services() if services()[name].get("ports")}
    assert {name: set(ports) for name, ports in found.items()} == {
        "openhim-core": {8080, 5000},
        "openhim-console": {80},
    }
    assert found["openhim-core"][8080] == "127.0.0.1", "the core's API on this machine only, unless set otherwise"
    assert found["openhim-console"][80] == "127.0.0.1"


def test_the_console_calls_the_core_api_where_it_is_published() -> None:
    config = json.loads(CONSOLE_CONFIG.read_text(encoding="utf-8"))
    assert (config["protocol"], config["host"], int(config["port"])) == ("https", "localhost", 8080)
    mounts = services()["openhim-console"]["volumes"]
    source, target, mode = next(m for m in mounts if "console-config.json" in m).split(":")
    assert (ROOT / source).resolve() == CONSOLE_CONFIG
    assert target.startswith("/usr/share/nginx/html/config/") and mode == "ro", "read-only: the console rewrites"


# --- the compose file: the mediator's settings and secrets ------------------------------------------------------


def test_the_mediator_is_given_only_settings_it_declares() -> None:
    unknown = sorted(set(environment("mediator")) - declared_variables())
    assert not unknown, f"not settings of the mediator: {unknown}"


def test_the_stack_environment_is_one_the_mediator_accepts() -> None:
    settings = build_settings(mediator_env())
    assert settings.public_host == "mediator", "the core's routes reach the mediator by its service name"
    assert settings.public_port == settings.listen_port == int(image_env()["MEDIATOR_LISTEN_PORT"])
    assert all(c.password for c in settings.channels), "every channel has its route's password"
    assert not settings.allow_default_passwords
    warnings = insecure_warnings(settings)
    assert len(warnings) == 1 and "MEDIATOR_OPENHIM_VERIFY_TLS" in warnings[0], (
        f"nothing weakened but the check of the new core's self-signed certificate: {warnings}"
    )


def test_the_mediator_reaches_the_core_and_its_journal_by_service_name() -> None:
    env = mediator_env()
    core = urlsplit(env["MEDIATOR_OPENHIM_URL"])
    assert (core.scheme, core.hostname, core.port) == ("https", "openhim-core", 8080)
    journal = urlsplit(env["MEDIATOR_JOURNAL_URL"])
    assert journal.scheme == "postgresql" and journal.hostname == "postgres" and journal.path == "/mediator"
    postgres = {k: interpolate(v, filled_env()) for k, v in environment("postgres").items()}
    assert (journal.username, journal.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])


def test_no_secret_is_written_in_the_compose_file() -> None:
    for name in services():
        for key, value in environment(name).items():
            if SECRET_NAME.search(key):
                m = INTERPOLATION.fullmatch(value)
                assert m, f"{name}: {key} is taken whole from an environment variable"
                assert not (m.group(2) or "").endswith("-") or not m.group(3), f"{name}: {key} has no default value"
            password = urlsplit(value).password if "://" in value else None
            if password:
                assert INTERPOLATION.fullmatch(password), f"{name}: {key} holds a password in its URL"
            assert value not in WELL_KNOWN_PASSWORDS, f"{name}: {key} is a well-known password"
    assert "openimis-demo-password" not in COMPOSE.read_text(encoding="utf-8")


def test_the_mediator_and_the_import_job_agree_on_the_openhim_credentials() -> None:
    shared = {"MEDIATOR_OPENHIM_USERNAME", "MEDIATOR_OPENHIM_PASSWORD"} | {
        channel_env_prefix(c["name"]) + "PASSWORD" for c in registration()["config"]["channels"]
    }
    mediator, job = environment("mediator"), environment("openhim-import")
    for key in sorted(shared):
        assert key in mediator and mediator[key] == job.get(key), f"{key}: the same value for both"
    assert "OPENHIM_ROOT_PASSWORD" not in mediator, "root's password is the import job's alone"


def test_example_env_names_every_variable_the_compose_file_reads() -> None:
    values, commented = example_env()
    for name, how in referenced_variables().items():
        if how == "-":
            assert name in values or name in commented, f"{name}: explained in deploy/example.env"
        else:
            assert name in values, f"{name}: required, so deploy/example.env has a line to fill in"
    assert not set(values) - set(referenced_variables()), "example.env sets nothing the stack ignores"


def test_example_env_holds_no_secret() -> None:
    values, _ = example_env()
    for name, value in values.items():
        if SECRET_NAME.search(name) and name != "OPENHIM_ROOT_PASSWORD":
            assert value == "", f"{name}: left for the implementer to set"
    # A new core's root password is the core's own published default; the mediator would refuse it anyway.
    assert values["OPENHIM_ROOT_PASSWORD"] in ("", "openhim-password")


def test_compose_stops_when_a_required_secret_is_missing() -> None:
    env = filled_env()
    env["MEDIATOR_CHANNEL_PULL_PASSWORD"] = ""
    with pytest.raises(AssertionError, match="MEDIATOR_CHANNEL_PULL_PASSWORD is required"):
        interpolate(environment("mediator")["MEDIATOR_CHANNEL_PULL_PASSWORD"], env)


# --- the import file --------------------------------------------------------------------------------------------


def test_every_default_channel_is_imported_as_the_registration_defines_it() -> None:
    imported = {c["name"]: c for c in import_file()["Channels"]}
    defaults = registration()["defaultChannelConfig"]
    assert sorted(imported) == sorted(c["name"] for c in defaults)
    for channel in defaults:
        mine = imported[channel["name"]]
        assert {k: v for k, v in mine.items() if k != "routes"} == {k: v for k, v in channel.items() if k != "routes"}
        assert [r["path"] for r in mine["routes"]] == [r["path"] for r in channel["routes"]]


def test_routes_go_to_the_mediator_service_with_the_credentials_it_checks() -> None:
    env = mediator_env()
    for channel in import_file()["Channels"]:
        for route in channel["routes"]:
            assert route["host"] == env["MEDIATOR_PUBLIC_HOST"] and route["host"] in services()
            assert route["port"] == int(env["MEDIATOR_PUBLIC_PORT"]) == int(env["MEDIATOR_LISTEN_PORT"])
            assert route["type"] == "http" and route["secured"] is False
            mediator_channel = channel_for_path(route["path"])
            assert route["username"] == mediator_channel["username"]
            assert route["password"] == "${" + channel_env_prefix(mediator_channel["name"]) + "PASSWORD}"


def test_channels_are_open_to_the_openimis_client_only() -> None:
    (client,) = import_file()["Clients"]
    assert client["clientID"] == "openimis" and client["roles"] == ["openimis"]
    for channel in import_file()["Channels"]:
        assert channel["authType"] == "private"
        assert channel["allow"] and set(channel["allow"]) <= set(client["roles"]), channel["name"]


def test_the_client_gets_its_password_from_the_environment_salted_and_hashed() -> None:
    (client,) = import_file()["Clients"]
    assert client["password"] == "${MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD}"
    assert not {"passwordHash", "passwordSalt"} & set(client)  # no password of the repository's
    job = import_job()
    env = dict.fromkeys(job.placeholders(import_file()), "route-pass") | {
        "MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD": "s3cret"
    }
    (first,) = job.hashed_clients(job.render(import_file(), env))["Clients"]
    (second,) = job.hashed_clients({"Clients": [{"clientID": "x", "password": "s3cret"}]})["Clients"]
    assert "password" not in first and first["passwordAlgorithm"] == "sha512"
    # The core's Basic authentication of clients: sha512(password + salt), in hex; a salt of its own each time.
    assert first["passwordHash"] == hashlib.sha512(("s3cret" + first["passwordSalt"]).encode()).hexdigest()
    assert first["passwordSalt"] != second["passwordSalt"] and len(first["passwordSalt"]) >= 16


def test_the_import_job_is_given_every_variable_the_import_file_names() -> None:
    named = import_job().placeholders(import_file())
    routes = {channel_env_prefix(c["name"]) + "PASSWORD" for c in registration()["config"]["channels"]}
    assert named == routes | {"MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD"}
    assert named <= set(environment("openhim-import"))


def test_rendering_puts_each_password_into_its_route_and_keeps_the_file_json() -> None:
    tricky = {name: f'p"w\\{name}}}${{x}}\n' for name in import_job().placeholders(import_file())}
    rendered = json.loads(json.dumps(import_job().render(import_file(), tricky)))
    for channel in rendered["Channels"]:
        for route in channel["routes"]:
            expected = tricky[channel_env_prefix(channel_for_path(route["path"])["name"]) + "PASSWORD"]
            assert route["password"] == expected
    (client,) = rendered["Clients"]
    assert client.pop("password") == tricky["MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD"]
    (original,) = import_file()["Clients"]
    assert client == {k: v for k, v in original.items() if k != "password"}, "nothing else changes"


def test_rendering_refuses_a_missing_or_empty_password() -> None:
    env = {name: "x" * 24 for name in import_job().placeholders(import_file())}
    env["MEDIATOR_CHANNEL_CLAIMS_PASSWORD"] = ""
    with pytest.raises(import_job().ImportRefused, match="MEDIATOR_CHANNEL_CLAIMS_PASSWORD"):
        import_job().render(import_file(), env)


# --- the Dockerfile and the build context -----------------------------------------------------------------------


def test_both_stages_start_from_the_same_pinned_slim_base() -> None:
    assert len(stages()) == 2
    build, final = (base_image(s) for s in stages())
    assert build == final
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", final), f"{final}: an exact Python patch release"
    assert stages()[0][0].args.split()[-1].lower() == "build"


def test_the_final_stage_runs_as_a_user_other_than_root() -> None:
    users = instructions(final_stage(), "USER")
    assert users, "sets a user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), "a fixed numeric uid, that orchestrators can check"


def test_the_final_stage_copies_nothing_but_the_registration_from_the_sources() -> None:
    assert copy_sources(final_stage()) == ["mediator_config.json"], "no tests, bench or fake_dhis2 in the image"
    assert not instructions(final_stage(), "ADD")
    for source in copy_sources(stages()[0]):
        assert source.split("/")[0] in ("pyproject.toml", "README.md", "mediator"), source


def test_the_image_serves_with_its_registration_and_state_where_the_settings_look() -> None:
    env = image_env()
    assert env["MEDIATOR_CONFIG_FILE"] == "/app/mediator_config.json"
    assert "mediator_config.json /app/mediator_config.json" in instructions(final_stage(), "COPY")
    assert env["MEDIATOR_LISTEN_HOST"] == "0.0.0.0"  # noqa: S104 (every interface of its own container)
    assert instructions(final_stage(), "EXPOSE") == [env["MEDIATOR_LISTEN_PORT"]]
    assert json.loads(instructions(final_stage(), "VOLUME")[-1]) == [env["MEDIATOR_STATE_DIR"]]
    assert json.loads(instructions(final_stage(), "CMD")[-1]) == ["openimis-dhis2-mediator", "serve"]


def test_the_build_context_holds_only_what_the_image_is_made_of() -> None:
    for path in ("pyproject.toml", "README.md", "mediator_config.json", "mediator/__init__.py", "mediator/app/cli.py"):
        assert in_build_context(path), path
    for path in (
        "tests/unit/test_settings.py",
        "bench/run.py",
        "fake_dhis2/app.py",
        ".venv/bin/python",
        ".git/HEAD",
        ".openhim/core/package.json",
        ".env",
        "var/journal.sqlite",
        "mediator/__pycache__/errors.cpython-311.pyc",
        "deploy/example.env",
    ):
        assert not in_build_context(path), path
    for source in copy_sources(stages()[0]) + copy_sources(final_stage()):
        assert in_build_context(source), f"{source} is copied, so the context must hold it"


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _health_check(port: int) -> int:
    args = instructions(final_stage(), "HEALTHCHECK")[-1]
    command = json.loads(args[args.index("CMD") + 3 :])
    assert command[0] == "python", "python's urllib: the slim image has no curl"
    env = {**os.environ, "MEDIATOR_LISTEN_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (404, False)])
def test_the_health_check_asks_health_on_the_listen_port(health_server: HTTPServer, status: int, healthy: bool) -> None:
    _Health.status = status
    port = int(health_server.server_address[1])
    assert (_health_check(port) == 0) is healthy


def test_the_health_check_is_liveness_not_readiness() -> None:
    args = instructions(final_stage(), "HEALTHCHECK")[-1]
    assert "/health" in args and "/ready" not in args
