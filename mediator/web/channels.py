"""Channel endpoints: one path per configured channel, each with its own credentials and DHIS2 user."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from mediator.deliverer import Deliverer
from mediator.dhis2.client import Exchange
from mediator.intake import incoming_dir, spooled, take_in
from mediator.journal.queue import worker_id
from mediator.journal.store import Journal, PushRecord
from mediator.outcomes import PushResult, RecordOutcome
from mediator.settings import Settings
from mediator.web.answer import envelope, operation_outcome, to_orchestration
from mediator.web.auth import channel_allows

log = logging.getLogger(__name__)
bp = Blueprint("channels", __name__)

OPENHIM_CONTENT_TYPE = "application/json+openhim"


def _json(doc: dict[str, Any], status: int, content_type: str = "application/json") -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), status=status, content_type=content_type)


def _journal(
    channel: str,
    received_at: datetime,
    body_sha256: str,
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
        body_sha256=body_sha256,
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
            holder=worker_id(f"request-{uuid.uuid4().hex[:12]}"),  # no worker takes what this request delivers
        )
    found, accepted = intake.survey, intake.accepted
    if accepted is None:  # nothing usable: answered at once, kept in the journal as it is
        result = PushResult(received=found.resource_counts, problems=list(found.problems))
        doc, status = envelope(current_app.config["MEDIATOR_URN"], result, [], channel.name)
        _journal(channel.name, received_at, body.sha256, result, [], doc, status)
        return _json(doc, status, OPENHIM_CONTENT_TYPE)
    deliverer: Deliverer = current_app.extensions["deliverer"]
    run = None
    if accepted.pending and intake.held:
        run = deliverer.run(accepted.transaction_id, settings, keep=True, holder=intake.held)
    result = run.result if run else PushResult()
    result.received = dict(found.resource_counts)
    decided = {o.record for o in result.outcomes}
    unchanged = set(accepted.unchanged)
    waiting = [RecordOutcome(r, "pending") for r in found.records if r not in decided and r not in unchanged]
    result.outcomes = [
        *intake.rejected,
        *result.outcomes,
        *waiting,
        *[RecordOutcome(label, "unchanged") for label in accepted.unchanged],
    ]
    exchanges = run.exchanges if run else []
    doc, status = envelope(current_app.config["MEDIATOR_URN"], result, exchanges, channel.name)
    log.info(
        "channel=%s transaction=%s status=%s delivered=%d rejected=%d pending=%d unchanged=%d dhis2_calls=%d",
        channel.name,
        transaction,
        doc["status"],
        result.count("delivered"),
        result.count("rejected"),
        result.count("pending"),
        result.count("unchanged"),
        len(exchanges),
    )
    return _json(doc, status, OPENHIM_CONTENT_TYPE)
