"""Puts the stack's OpenHIM configuration into the core once it answers: the mediator's own admin user, then the
client and channels of openhim-import.json, whose `${NAME}` placeholders are filled in from the environment.

Only what the core lacks is created: a client or channel already there (edited in the console, say) is left as it
is, so running this at every `docker compose up` never undoes an implementer's changes. Standard library only, so
that it runs on the plain Python image; it logs names, never a password.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("openhim-import")
PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
ROOT_USER = "root@openhim.org"
UID_FIELDS = {"Clients": "clientID", "Channels": "name"}  # how the core's /metadata tells records apart


class ImportRefused(Exception):
    """The configuration cannot be put into the core; the message says why, without secrets."""


def placeholders(document: Any) -> set[str]:
    """The environment variables that a document's strings name."""
    if isinstance(document, str):
        return set(PLACEHOLDER.findall(document))
    values = document.values() if isinstance(document, dict) else document if isinstance(document, list) else []
    return {name for value in values for name in placeholders(value)}


def render(document: Any, env: Mapping[str, str]) -> Any:
    """The document with every `${NAME}` in its strings replaced by that variable's value. Values are put into the
    parsed strings, not into the JSON text, so a value holding quotes or backslashes stays one string."""
    missing = sorted(name for name in placeholders(document) if not env.get(name))
    if missing:
        raise ImportRefused(f"set {', '.join(missing)}: the import file needs them, and none may be empty")

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return PLACEHOLDER.sub(lambda m: env[m.group(1)], value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill(document)


class Core:
    """The core's API, as one user (Basic credentials)."""

    def __init__(self, url: str, context: ssl.SSLContext, username: str = "", password: str = "") -> None:
        if not url.startswith(("https://", "http://")):
            raise ImportRefused(f"OPENHIM_API_URL must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.username = username
        self._password = password
        self._context = context

    def as_user(self, username: str, password: str) -> Core:
        return Core(self.url, self._context, username, password)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 (http(s) only)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.username:
            token = base64.b64encode(f"{self.username}:{self._password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=60, context=self._context) as response:  # noqa: S310 (same)
                return response.status, _decoded(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decoded(exc.read())


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:200]


def _user_path(email: str) -> str:
    return "/users/" + urllib.parse.quote(email, safe="")


def wait_for(core: Core, seconds: float) -> None:
    """Returns once the core's API answers its heartbeat: the core starts well after its container does."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, _ = core.call("GET", "/heartbeat")
            if status == 200:
                return
            reason = f"HTTP {status}"
        except OSError as exc:  # refused or reset while the core starts
            reason = str(exc)
        if time.monotonic() > deadline:
            raise ImportRefused(f"the OpenHIM core at {core.url} did not answer within {seconds:.0f} s ({reason})")
        log.info("waiting for the OpenHIM core at %s (%s)", core.url, reason)
        time.sleep(3)


def _logs_in_as_admin(user: Core) -> bool:
    status, body = user.call("GET", _user_path(user.username))
    if status != 200:
        return False
    groups = body.get("groups") if isinstance(body, dict) else None
    if "admin" not in (groups or []):
        raise ImportRefused(f"{user.username} logs in but is not in the core's admin group, which the mediator needs")
    return True


def ensure_mediator_user(api: Core, email: str, password: str, root_password: str) -> Core:
    """The mediator's admin user, made (or given its password again) with root's credentials while it cannot log in;
    returns the API as that user, which is all the rest needs."""
    if email != email.lower():
        raise ImportRefused(f"MEDIATOR_OPENHIM_USERNAME must be in lower case (the core stores {email.lower()})")
    mediator = api.as_user(email, password)
    if _logs_in_as_admin(mediator):
        log.info("%s logs in: left as it is", email)
        return mediator
    if not root_password:
        raise ImportRefused(f"{email} cannot log in to the core yet: set OPENHIM_ROOT_PASSWORD to root's password")
    root = api.as_user(ROOT_USER, root_password)
    status, _ = root.call("GET", _user_path(email))
    if status == 401:
        raise ImportRefused(f"the core refuses {ROOT_USER}: set OPENHIM_ROOT_PASSWORD to root's current password")
    if status == 404:
        user = {"firstname": "openIMIS to DHIS2", "surname": "mediator", "email": email, "groups": ["admin"]}
        status, body = root.call("POST", "/users", user)
        if status != 201:
            raise ImportRefused(f"the core did not create {email}: HTTP {status} {body}")
        log.info("%s: created in the admin group", email)
    elif status != 200:
        raise ImportRefused(f"the core did not say whether {email} exists: HTTP {status}")
    # The core hashes a password given to PUT /users (not one given to POST /users), and unlocks the new user.
    status, body = root.call("PUT", _user_path(email), {"password": password})
    if status != 200:
        raise ImportRefused(f"the core did not set {email}'s password: HTTP {status} {body}")
    if not _logs_in_as_admin(mediator):
        raise ImportRefused(f"{email} still cannot log in after its password was set")
    log.info("%s: password set from MEDIATOR_OPENHIM_PASSWORD", email)
    return mediator


def _described(result: dict[str, Any]) -> str:
    return f"{result.get('model')} {result.get('uid')!r}: {result.get('status')} {result.get('message') or ''}".strip()


def _problems(results: list[dict[str, Any]], wanted: str) -> list[str]:
    return [_described(r) for r in results if r.get("status") != wanted]


def hashed_clients(document: dict[str, Any]) -> dict[str, Any]:
    """Clients given a `password` get it as the core keeps a client's Basic password: sha512(password + salt) in hex,
    with a random salt; the password itself never goes to the core."""
    clients = []
    for client in document.get("Clients", []):
        client = dict(client)
        password = client.pop("password", None)
        if password is not None:
            salt = secrets.token_hex(16)
            client.update(
                passwordAlgorithm="sha512",
                passwordSalt=salt,
                passwordHash=hashlib.sha512((password + salt).encode()).hexdigest(),
            )
        clients.append(client)
    return {**document, "Clients": clients} if "Clients" in document else document


def import_missing(api: Core, document: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Creates the clients and channels the core lacks, and returns their names. The core checks every one of them
    first (/metadata/validate), so a document it refuses changes nothing."""
    status, results = api.call("POST", "/metadata/validate", document)
    if status != 201 or not isinstance(results, list):
        raise ImportRefused(f"the core did not check the import file: HTTP {status} {results}")
    present = {(r.get("model"), r.get("uid")) for r in results if r.get("status") == "Conflict"}
    refused = [_described(r) for r in results if r.get("status") not in ("Valid", "Conflict")]
    if refused:
        raise ImportRefused("the core refuses the import file: " + "; ".join(refused))
    missing: dict[str, list[dict[str, Any]]] = {}
    for model, docs in document.items():
        for doc in docs:
            uid = doc[UID_FIELDS[model]]
            if (model, uid) in present:
                log.info("%s %r: already in the core, left as it is", model, uid)
            else:
                missing.setdefault(model, []).append(doc)
    if not missing:
        return []
    status, results = api.call("POST", "/metadata", missing)
    if status != 201 or not isinstance(results, list):
        raise ImportRefused(f"the core did not import the file: HTTP {status} {results}")
    failed = _problems(results, "Inserted")
    if failed:
        raise ImportRefused("the core did not take " + "; ".join(failed))
    created = [f"{r.get('model')} {r.get('uid')!r}" for r in results]
    for name in created:
        log.info("%s: created", name)
    return created


def sync_route_credentials(api: Core, channels: list[dict[str, Any]]) -> list[str]:
    """Gives the routes of channels already in the core the credentials of the import file (the environment's): the
    mediator takes its channel passwords from the environment alone, so a route sending an older one would only be
    refused. A route is matched by name within its channel, and nothing else of the channel changes. Returns the
    names of the channels changed.

    The channel goes back through /metadata, whole, as the core's own import takes it."""
    status, current = api.call("GET", "/channels")
    if status != 200 or not isinstance(current, list):
        raise ImportRefused(f"the core did not list its channels: HTTP {status}")
    by_name = {c.get("name"): c for c in current if isinstance(c, dict)}
    stale = []
    for channel in channels:
        found = by_name.get(channel["name"])
        if found is None:
            continue
        wanted = {r["name"]: (r.get("username"), r.get("password")) for r in channel.get("routes") or []}
        routes = found.get("routes") or []
        changed = False
        for route in routes:
            want = wanted.get(route.get("name"))
            if want is not None and (route.get("username"), route.get("password")) != want:
                route["username"], route["password"] = want
                changed = True
        if changed:
            stale.append({k: v for k, v in found.items() if k not in ("_id", "__v")})
    if not stale:
        return []
    status, results = api.call("POST", "/metadata", {"Channels": stale})
    if status != 201 or not isinstance(results, list):
        raise ImportRefused(f"the core did not update the channels' routes: HTTP {status} {results}")
    failed = _problems(results, "Updated")
    if failed:
        raise ImportRefused("the core did not update " + "; ".join(failed))
    names = [str(doc["name"]) for doc in stale]
    for name in names:
        log.info("Channels %r: route credentials set from the environment", name)
    return names


def tls_context(ca_file: str) -> ssl.SSLContext:
    """The core's certificate is checked against `ca_file` when one is given. Otherwise it is not: a new core serves a
    self-signed certificate it made itself, and is reached only on the stack's own network."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def main(env: Mapping[str, str] = os.environ) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stdout)
    try:
        path = Path(env.get("OPENHIM_IMPORT_FILE", "/import/openhim-import.json"))
        document = hashed_clients(render(json.loads(path.read_text(encoding="utf-8")), env))
        unknown = sorted(set(document) - set(UID_FIELDS))
        if unknown:
            raise ImportRefused(f"{path} holds {', '.join(unknown)}: only Clients and Channels are imported")
        email, password = env.get("MEDIATOR_OPENHIM_USERNAME", ""), env.get("MEDIATOR_OPENHIM_PASSWORD", "")
        if not email or not password:
            raise ImportRefused("set MEDIATOR_OPENHIM_USERNAME and MEDIATOR_OPENHIM_PASSWORD (the mediator's user)")
        api = Core(env.get("OPENHIM_API_URL", "https://openhim-core:8080"), tls_context(env.get("OPENHIM_CA_FILE", "")))
        wait_for(api, float(env.get("OPENHIM_WAIT_SECONDS", "300")))
        admin = ensure_mediator_user(api, email, password, env.get("OPENHIM_ROOT_PASSWORD", ""))
        import_missing(admin, document)
        sync_route_credentials(admin, document.get("Channels", []))
    except (ImportRefused, OSError, ValueError) as exc:
        log.error("OpenHIM import failed: %s", exc)
        return 1
    log.info("OpenHIM configuration in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
