"""Channel endpoints: one path per configured channel, each with its own credentials and DHIS2 user."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request

from mediator.intake import incoming_dir, spooled, take_in
from mediator.journal.store import Journal
from mediator.settings import Settings
from mediator.web.answer import operation_outcome
from mediator.web.auth import channel_allows
from mediator.web.pull import pull_now
from mediator.web.respond import answer_intake, json_response, request_holder

bp = Blueprint("channels", __name__)


@bp.route("/<path:subpath>", methods=["GET", "POST"])
def receive(subpath: str) -> Response:
    settings: Settings = current_app.extensions["live_settings"].current()
    path = "/" + subpath
    channel = next((c for c in settings.channels if c.path == path), None)
    if channel is None:
        issue = {"severity": "error", "code": "not-found", "diagnostics": f"no channel at {path}"}
        return json_response(operation_outcome([issue]), 404)
    if request.method == "GET" and not channel.pulls:
        issue = {"severity": "error", "code": "not-supported", "diagnostics": f"channel {channel.name} takes POST"}
        resp = json_response(operation_outcome([issue]), 405)
        resp.headers["Allow"] = "POST"
        return resp
    if not channel_allows(channel, request.headers.get("Authorization")):
        issue = {
            "severity": "error",
            "code": "security",
            "diagnostics": f"credentials not valid for channel {channel.name}",
        }
        resp = json_response(operation_outcome([issue]), 401)
        resp.headers["WWW-Authenticate"] = f'Basic realm="{channel.name}"'
        return resp
    if channel.pulls:
        return pull_now(channel, settings)
    received_at = datetime.now(UTC)
    journal: Journal = current_app.extensions["journal"]
    # Kept in the journal before anything is sent: from here on nothing of this push can be lost.
    with spooled(request.stream, incoming_dir(settings)) as body:
        intake = take_in(
            journal,
            body,
            channel,
            settings,
            received_at=received_at,
            openhim_id=request.headers.get("X-OpenHIM-TransactionID"),
            client_id=request.headers.get("X-OpenHIM-ClientID"),
            holder=request_holder(),
        )
    return answer_intake(intake, channel, settings, received_at, body.sha256)
