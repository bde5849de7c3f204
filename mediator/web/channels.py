"""Channel endpoints: one path per configured channel, each with its own credentials and DHIS2 user."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from mediator.dhis2.client import Dhis2Client, Exchange, RetryPolicy, make_auth
from mediator.dhis2.version import VersionCache
from mediator.dhis2.writer import TrackerWriter, choose_writer
from mediator.journal.store import Journal, PushRecord
from mediator.openimis.reader import read_body
from mediator.outcomes import PushResult
from mediator.push import push
from mediator.settings import ChannelSettings, Settings
from mediator.targets import dhis2_setup, insuree_target
from mediator.web.answer import envelope, operation_outcome, to_orchestration
from mediator.web.auth import channel_allows

log = logging.getLogger(__name__)
bp = Blueprint("channels", __name__)

OPENHIM_CONTENT_TYPE = "application/json+openhim"


def _json(doc: dict[str, Any], status: int, content_type: str = "application/json") -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), status=status, content_type=content_type)


def dhis2_client(settings: Settings, channel: ChannelSettings, exchanges: list[Exchange]) -> Dhis2Client:
    username = channel.dhis2_username or settings.dhis2_username
    password = channel.dhis2_password if channel.dhis2_username else settings.dhis2_password
    auth = make_auth(settings.dhis2_auth, username, password, settings.dhis2_token)
    sessions: dict[tuple[str, str], requests.Session] = current_app.extensions["dhis2_sessions"]
    # One session per DHIS2 user and process: DHIS2 limits the sessions of a user.
    session = sessions.setdefault((settings.dhis2_url, username or "token"), requests.Session())
    return Dhis2Client(
        settings.dhis2_url,
        auth,
        verify=settings.dhis2_verify_tls,
        timeout=settings.dhis2_timeout_seconds,
        session=session,
        on_exchange=exchanges.append,
        retry=RetryPolicy(attempts=settings.dhis2_max_attempts),
    )


def _journal(
    channel: str,
    received_at: datetime,
    body: bytes,
    result: PushResult,
    exchanges: list[Exchange],
    doc: dict[str, Any],
    status: int,
) -> None:
    """Keep the push in the journal; a journal that cannot be written is logged, the answer still goes."""
    journal: Journal = current_app.extensions["journal"]
    orchestrations = [to_orchestration(i + 1, ex) for i, ex in enumerate(exchanges)]
    record = PushRecord(
        channel=channel,
        openhim_id=request.headers.get("X-OpenHIM-TransactionID"),
        client_id=request.headers.get("X-OpenHIM-ClientID"),
        received_at=received_at,
        body=body,
        status=doc["status"],
        http_status=status,
        received=dict(result.received),
        stats=dict(result.stats),
        failure=str(result.failure) if result.failure else None,
        outcomes=[
            {"record": o.record, "status": o.status, "uids": o.uids, "reasons": [asdict(r) for r in o.reasons]}
            for o in result.outcomes
        ],
        exchanges=[
            {
                "method": o.method,
                "url": o.url,
                "started_at": o.request_started,
                "finished_at": o.response_finished,
                "status": o.status,
                "error": o.error,
                "request_body": o.request_body,
                "response_body": o.response_body,
            }
            for o in orchestrations
        ],
    )
    try:
        journal.write(record)
    except SQLAlchemyError:
        log.exception("the journal could not keep transaction %s", record.openhim_id or "-")


@bp.post("/<path:subpath>")
def receive(subpath: str) -> Response:
    settings: Settings = current_app.extensions["live_settings"].current()
    path = "/" + subpath
    channel = next((c for c in settings.channels if c.path == path), None)
    if channel is None:
        issue = {"severity": "error", "code": "not-found", "diagnostics": f"no channel at {path}"}
        return _json(operation_outcome([issue]), 404)
    if not channel_allows(channel, request.headers.get("Authorization")):
        issue = {
            "severity": "error",
            "code": "security",
            "diagnostics": f"credentials not valid for channel {channel.name}",
        }
        resp = _json(operation_outcome([issue]), 401)
        resp.headers["WWW-Authenticate"] = f'Basic realm="{channel.name}"'
        return resp
    transaction = request.headers.get("X-OpenHIM-TransactionID", "-")
    received_at = datetime.now(UTC)
    body = request.get_data(cache=False)
    reading = read_body(body, channel.resources)
    exchanges: list[Exchange] = []

    def client() -> Dhis2Client:
        return dhis2_client(settings, channel, exchanges)

    versions: VersionCache = current_app.extensions["dhis2_versions"]

    def writer_for(dhis2: Dhis2Client) -> TrackerWriter:
        return choose_writer(
            versions.get(dhis2), settings.tracker_api, settings.async_threshold, settings.dhis2_concurrency
        )

    target, setup = insuree_target(settings, channel), dhis2_setup(settings)
    result = push(reading, target, setup, client, settings.batch_size, writer_for)
    if result.failure is not None:
        versions.forget(settings.dhis2_url.rstrip("/"))  # DHIS2 may come back upgraded
    doc, status = envelope(current_app.config["MEDIATOR_URN"], result, exchanges, channel.name)
    _journal(channel.name, received_at, body, result, exchanges, doc, status)
    log.info(
        "channel=%s transaction=%s status=%s delivered=%d rejected=%d pending=%d problems=%d dhis2_calls=%d",
        channel.name,
        transaction,
        doc["status"],
        result.count("delivered"),
        result.count("rejected"),
        result.count("pending"),
        len(result.problems),
        len(exchanges),
    )
    return _json(doc, status, OPENHIM_CONTENT_TYPE)
