"""Channel endpoints: one path per configured channel, each with its own credentials and DHIS2 user."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request

from mediator.answer.response import operation_outcome
from mediator.app.web.aggregates import aggregates_now
from mediator.app.web.auth import channel_allows
from mediator.app.web.guard import BodyReader, Refused, check_body_headers, origin
from mediator.app.web.pull import pull_now
from mediator.app.web.respond import answer_intake, error_response, json_response, request_holder
from mediator.config.settings import ChannelSettings, Settings
from mediator.intake.keep import take_in
from mediator.intake.spool import incoming_dir, spooled
from mediator.journal.store import Journal
from mediator.ops import logs, metrics

log = logging.getLogger(__name__)
bp = Blueprint("channels", __name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
REALM = "openIMIS to DHIS2 mediator"


def _refusal(status: int, code: str, text: str) -> Response:
    issue = {"severity": "error", "code": code, "diagnostics": text}
    return json_response(operation_outcome([issue]), status)


@bp.route("/", defaults={"subpath": ""}, methods=METHODS, provide_automatic_options=False)
@bp.route("/<path:subpath>", methods=METHODS, provide_automatic_options=False)
def receive(subpath: str) -> Response:
    started = time.perf_counter()
    settings: Settings = current_app.extensions["live_settings"].current()
    channel = next((c for c in settings.channels if c.path == "/" + subpath), None)
    with logs.about(channel=channel.name if channel is not None else None):
        resp = _receive(settings, channel, "/" + subpath)
    name = channel.name if channel is not None and resp.status_code != 401 else "(none)"
    metrics.PUSH_SECONDS.labels(name, str(resp.status_code)).observe(time.perf_counter() - started)
    return resp


def _receive(settings: Settings, channel: ChannelSettings | None, path: str) -> Response:
    credentials = request.headers.get("Authorization")
    if channel is None or not channel_allows(channel, credentials):
        # Only a caller with some channel's credentials learns whether a path is a channel.
        if channel is None and any(channel_allows(c, credentials) for c in settings.channels):
            return _refusal(404, "not-found", f"no channel at {path[:200]}")
        resp = _refusal(401, "security", "credentials not valid for this channel")
        resp.headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        return resp
    allowed = "GET" if channel.pulls or channel.sends_aggregates else "POST"
    if request.method != allowed:
        resp = _refusal(405, "not-supported", f"channel {channel.name} takes {allowed}")
        resp.headers["Allow"] = allowed
        return resp
    try:
        sender = origin(request.headers)
        logs.also(transaction=sender.openhim_id)
        if channel.pulls:
            return pull_now(channel, settings, sender)
        if channel.sends_aggregates:
            return aggregates_now(channel, settings, sender)
        check_body_headers(request.headers)
        received_at = datetime.now(UTC)
        journal: Journal = current_app.extensions["journal"]
        # Kept in the journal before anything is sent: from here on nothing of this push can be lost.
        with spooled(BodyReader(request.stream, request.content_length), incoming_dir(settings)) as body:
            intake = take_in(
                journal,
                body,
                channel,
                settings,
                received_at=received_at,
                openhim_id=sender.openhim_id,
                client_id=sender.client_id,
                holder=request_holder(),
            )
    except Refused as exc:
        return _refused(channel, exc)
    logs.also(push=intake.accepted.transaction_id if intake.accepted else None)
    return answer_intake(intake, sender, channel, settings, received_at, body.sha256)


def _refused(channel: ChannelSettings, exc: Refused) -> Response:
    """A request refused before its body was read: nothing of it is kept; OpenHIM's log has the transaction."""
    log.info("channel=%s refused before reading: %s %s", channel.name, exc.http_status, exc)
    return error_response(channel, exc)
