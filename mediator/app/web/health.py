"""`/health` (the process answers), `/ready` (it can do its work) and `/metrics` (Prometheus).

`/health` and `/ready` are open to anyone who can reach the port, as orchestrators probe them: they say whether
each check passes, DHIS2's version and the schema's revision, never an address, a user or a count of records.
`/metrics` is behind its own credentials or the auditor's, or on a port of its own (`MEDIATOR_METRICS_PORT`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request

from mediator import __version__
from mediator.app.web.auth import user_allows
from mediator.app.web.respond import json_response
from mediator.config.settings import Settings
from mediator.delivery.worker import Deliverer, dhis2_user
from mediator.dhis2.client import Dhis2Client
from mediator.openhim.status import StatusFile
from mediator.ops import readiness
from mediator.ops.scrape import CONTENT_TYPE, JournalCollector, exposition

bp = Blueprint("health", __name__)
DHIS2_CONNECT_TIMEOUT, DHIS2_TIMEOUT = 3.0, 5.0
REALM = "openIMIS to DHIS2 mediator: metrics"
OTHER_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


def _settings() -> Settings:
    return current_app.extensions["live_settings"].current()


@bp.get("/health")
def health() -> Response:
    return json_response({"status": "up", "version": __version__}, 200)


@bp.get("/ready")
def ready() -> Response:
    settings = _settings()
    probe: readiness.JournalProbe = current_app.extensions["journal_probe"]
    journal, migrations = probe.check()
    cache: readiness.CachedCheck = current_app.extensions["dhis2_check"]
    dhis2 = cache.get(_dhis2_key(settings), lambda: readiness.dhis2_check(lambda: _dhis2(settings)))
    status = StatusFile(Path(settings.state_dir)).read()
    registers = settings.openhim_register and bool(settings.openhim_password)
    openhim = readiness.openhim_check(registers, status, settings.heartbeat_seconds)
    checks = {"journal": journal, "migrations": migrations, "dhis2": dhis2, "openhim": openhim}
    body, code = readiness.readiness(checks)
    resp = json_response(body, code)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/health", methods=OTHER_METHODS)
@bp.route("/ready", methods=OTHER_METHODS)
@bp.route("/metrics", methods=OTHER_METHODS)
def not_allowed() -> Response:
    """The mediator's own pages take GET only (never a channel's request)."""
    resp = json_response({"status": "only GET is answered here"}, 405)
    resp.headers["Allow"] = "GET, HEAD"
    return resp


@bp.get("/metrics")
def metrics() -> Any:
    settings = _settings()
    if settings.metrics_port:  # served on its own port, not here
        return json_response({"status": "not here"}, 404)
    given = request.headers.get("Authorization")
    allowed = user_allows(settings.metrics_username, settings.metrics_password, given) or user_allows(
        settings.auditor_username, settings.auditor_password, given
    )
    if not allowed:
        return Response("metrics or auditor credentials needed\n", 401, {"WWW-Authenticate": f'Basic realm="{REALM}"'})
    collector: JournalCollector = current_app.extensions["journal_collector"]
    return Response(exposition(collector), 200, content_type=CONTENT_TYPE)


def _dhis2_key(settings: Settings) -> tuple[Any, ...]:
    return (settings.dhis2_url, *dhis2_user(settings, None), settings.dhis2_token)


def _dhis2(settings: Settings) -> Dhis2Client:
    deliverer: Deliverer = current_app.extensions["deliverer"]
    return deliverer.client(settings, None, [], attempts=1, timeouts=(DHIS2_CONNECT_TIMEOUT, DHIS2_TIMEOUT))
