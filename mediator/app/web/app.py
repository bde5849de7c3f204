"""The application factory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from mediator.app.audit import atna_auditor
from mediator.app.service import core_client
from mediator.app.web import audit, channels, health
from mediator.config.console import LiveSettings
from mediator.config.settings import load_registration
from mediator.delivery.worker import Deliverer
from mediator.errors import MediatorError
from mediator.intake.spool import incoming_dir, remove_stale
from mediator.journal.accept import drop_unfinished
from mediator.journal.numbers import journal_secret
from mediator.journal.store import Journal, default_url, open_engine, open_probe, open_read_only
from mediator.openhim.status import StatusFile
from mediator.ops.readiness import CachedCheck, JournalProbe
from mediator.ops.scrape import SCRAPE_SECONDS, JournalCollector

log = logging.getLogger(__name__)


def _outcome(status: int, code: str, text: str) -> Response:
    doc = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return Response(json.dumps(doc), status=status, content_type="application/json")


def _http_error(exc: HTTPException) -> Response:
    return _outcome(exc.code or 500, "invalid" if (exc.code or 500) < 500 else "exception", exc.description or exc.name)


def _known(exc: MediatorError) -> Response:
    """An error the mediator raises on purpose that no view answered: as the error says."""
    log.warning("%s: %s", type(exc).__name__, exc)
    issue = exc.issue()
    return _outcome(exc.http_status, issue["code"], issue["diagnostics"])


def _unexpected(exc: Exception) -> Response:
    # The body may hold personal data: log the error's type and place, never the request.
    log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return _outcome(500, "exception", "internal error in the mediator; see its log")


def journal_url(live: LiveSettings) -> str:
    return live.base.journal_url or default_url(live.base.state_dir)


def create_app(live: LiveSettings, migrate_journal: bool = True) -> Flask:
    """The app; `migrate_journal=False` when the schema was brought up to date before the workers started."""
    app = Flask("mediator")
    app.config["MAX_CONTENT_LENGTH"] = live.base.max_body_mb * 1024 * 1024
    app.config["MEDIATOR_URN"] = load_registration(live.base.config_file)["urn"]
    app.extensions["live_settings"] = live
    url = journal_url(live)
    journal = Journal.open(url) if migrate_journal else Journal(open_engine(url))
    app.extensions["journal"] = journal
    app.extensions["deliverer"] = deliverer = Deliverer(journal, live.base.slice_size)
    if live.base.openhim_register and live.base.openhim_password:  # pushes delivered while answered, too
        deliverer.auditor = atna_auditor(live, journal, core_client(live.base), app.config["MEDIATOR_URN"])
    remove_stale(incoming_dir(live.base))
    drop_unfinished(journal)
    app.extensions["audit_journal"] = Journal(open_read_only(url))
    app.extensions["journal_probe"] = JournalProbe(open_probe(url))
    app.extensions["dhis2_check"] = CachedCheck()
    status = StatusFile(Path(live.base.state_dir))
    app.extensions["journal_collector"] = JournalCollector(open_probe(url, SCRAPE_SECONDS), status.read)
    # Auditor sign-ins: a session cookie signed with a secret of the journal's (every worker shares it); a new
    # auditor password ends every session.
    app.secret_key = journal_secret(journal, f"auditor-session\x1f{live.base.auditor_password}")
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_NAME="mediator_audit", PERMANENT_SESSION_LIFETIME=8 * 3600)  # fmt: skip
    app.register_blueprint(health.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(channels.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(MediatorError, _known)
    app.register_error_handler(Exception, _unexpected)
    return app
