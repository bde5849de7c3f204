"""Answering a kept push: delivered at once when small enough, then the OpenHIM response with what became of each
record; a push with nothing usable is kept in the journal as it is."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from flask import Response, current_app
from sqlalchemy.exc import SQLAlchemyError

from mediator.answer.orchestrations import call_fields
from mediator.answer.outcomes import PushResult, RecordOutcome
from mediator.answer.response import envelope, error_envelope, to_orchestration
from mediator.app.web.guard import Origin
from mediator.config.settings import ChannelSettings, Settings
from mediator.delivery.worker import Deliverer
from mediator.dhis2.client import Exchange
from mediator.errors import MediatorError
from mediator.intake.keep import Intake
from mediator.journal.chain import head as chain_head
from mediator.journal.claim import worker_id
from mediator.journal.store import Journal, PushRecord

log = logging.getLogger(__name__)

OPENHIM_CONTENT_TYPE = "application/json+openhim"


def json_response(doc: dict[str, Any], status: int, content_type: str = "application/json") -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), status=status, content_type=content_type)


def error_response(
    channel: ChannelSettings,
    error: MediatorError,
    notes: Sequence[dict[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The OpenHIM answer to a channel request the mediator could not take, as the error says."""
    properties = {"channel": channel.name, **(extra or {})}
    doc, status = error_envelope(current_app.config["MEDIATOR_URN"], error, properties, notes)
    return json_response(doc, status, OPENHIM_CONTENT_TYPE)


def keep_refused(
    channel: str,
    origin: Origin,
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
        openhim_id=origin.openhim_id,
        client_id=origin.client_id,
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
        exchanges=[call_fields(o) for o in orchestrations],
    )
    try:
        journal.write(record)
    except SQLAlchemyError:
        log.exception("the journal could not keep transaction %s", record.openhim_id or "-")
        return
    with journal.sessions() as session:
        doc["properties"]["journal_chain"] = head = str(chain_head(session))
    log.info("transaction=%s journal_chain=%s", record.openhim_id or "-", head)


def request_holder() -> str:
    """The name a request keeps its push's records under while it delivers them (no worker takes them)."""
    return worker_id(f"request-{uuid.uuid4().hex[:12]}")


def answer_intake(
    intake: Intake,
    origin: Origin,
    channel: ChannelSettings,
    settings: Settings,
    received_at: datetime,
    body_sha256: str,
    notes: Sequence[dict[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Deliver a kept push at once when it is small enough, and answer OpenHIM with what became of each record."""
    urn = current_app.config["MEDIATOR_URN"]
    found, accepted = intake.survey, intake.accepted
    if found.skipped:  # what DHIS2 has no use for (the insurer Organization...): said, and no error
        said = [f"{s.record}: skipped: {s.reason}" for s in found.skipped]
        notes = [*notes, *({"severity": "information", "code": "informational", "diagnostics": t} for t in said)]
        extra = {**(extra or {}), "records_skipped": len(found.skipped)}
    if accepted is None:  # nothing usable: answered at once, kept in the journal as it is
        result = PushResult(received=found.resource_counts, problems=list(found.problems))
        doc, status = envelope(urn, result, [], channel.name, notes, extra)
        keep_refused(channel.name, origin, received_at, body_sha256, result, [], doc, status)
        return json_response(doc, status, OPENHIM_CONTENT_TYPE)
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
    doc, status = envelope(urn, result, exchanges, channel.name, notes, extra)
    with current_app.extensions["journal"].sessions() as session:
        doc["properties"]["journal_chain"] = head = str(chain_head(session))
    log.info(
        "channel=%s transaction=%s status=%s delivered=%d rejected=%d pending=%d unchanged=%d dhis2_calls=%d "
        "journal_chain=%s",
        channel.name,
        origin.openhim_id or "-",
        doc["status"],
        result.count("delivered"),
        result.count("rejected"),
        result.count("pending"),
        result.count("unchanged"),
        len(exchanges),
        head,
    )
    return json_response(doc, status, OPENHIM_CONTENT_TYPE)
