"""The endpoint an OpenHIM polling channel calls on its schedule: each call is one pull from openIMIS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app

from mediator.answer.envelope import mediator_response
from mediator.answer.response import operation_outcome
from mediator.app.web.guard import Origin
from mediator.app.web.respond import (
    OPENHIM_CONTENT_TYPE,
    answer_intake,
    error_response,
    json_response,
    request_holder,
)
from mediator.config.settings import ChannelSettings, Settings
from mediator.intake.pull import PullResult, pull
from mediator.journal.pulls import PullRunning
from mediator.journal.store import Journal
from mediator.openimis.api import OpenImisNotConfigured
from mediator.ops import logs


def _notes(result: PullResult) -> list[dict[str, Any]]:
    """What a pull read, feed by feed, and where openIMIS stopped it: issues for the answer (the records openIMIS
    could not serve are refused records of the push, answered as such)."""
    said = []
    for report in result.feeds:
        since = f" ({report.filter})" if report.filter else ""
        text = f"read from openIMIS: {report.feed}{since}: {report.read.count} record(s)"
        said.append({"severity": "information", "code": "informational", "diagnostics": text})
    if result.failure is not None:
        text = (
            f"openIMIS stopped the pull while {result.failed_feed or 'logging in'} was read: {result.failure}; "
            "what was read before is kept, and the next pull reads the rest from where this one stopped"
        )
        said.append({"severity": "warning", "code": result.failure.fhir_code, "diagnostics": text})
    return said


def _properties(result: PullResult) -> dict[str, Any]:
    found: dict[str, Any] = {f"pulled_{r.feed}": r.read.count for r in result.feeds}
    found["pulled"] = result.resources
    if result.failure is not None:
        found["openimis_failure"] = type(result.failure).__name__
        found["pull_stopped_at"] = result.failed_feed or "login"
    return found


def pull_now(channel: ChannelSettings, settings: Settings, origin: Origin) -> Response:
    if not settings.openimis_url:
        return error_response(channel, OpenImisNotConfigured("no openIMIS to pull from"))
    journal: Journal = current_app.extensions["journal"]
    received_at = datetime.now(UTC)
    try:
        result = pull(
            journal,
            settings,
            channel,
            holder=request_holder(),
            openhim_id=origin.openhim_id,
            client_id=origin.client_id,
        )
    except PullRunning as exc:
        return error_response(channel, exc)
    said, extra = _notes(result), _properties(result)
    if result.intake is not None:
        logs.also(push=result.intake.accepted.transaction_id if result.intake.accepted else None)
        return answer_intake(result.intake, origin, channel, settings, received_at, result.body_sha256, said, extra)
    if result.failure is not None:
        return error_response(channel, result.failure, said[:-1], extra)
    nothing = {"severity": "information", "code": "informational", "diagnostics": "nothing changed in openIMIS"}
    doc = mediator_response(
        current_app.config["MEDIATOR_URN"],
        "Successful",
        200,
        operation_outcome([*said, nothing]),
        [],
        {"channel": channel.name, **extra},
    )
    return json_response(doc, 200, OPENHIM_CONTENT_TYPE)
