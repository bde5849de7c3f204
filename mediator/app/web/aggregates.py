"""The endpoint an OpenHIM polling channel calls on its schedule: each call sends the monthly aggregates that are
due (`?period=YYYY-MM`, repeatable: those months again), answered with one orchestration per DHIS2 call."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, current_app, request

from mediator.aggregates.contributions import month_text
from mediator.answer.envelope import mediator_response
from mediator.answer.orchestrations import to_orchestration
from mediator.answer.response import operation_outcome
from mediator.app.aggregates_command import months_asked
from mediator.app.web.guard import Origin, Refused
from mediator.app.web.respond import OPENHIM_CONTENT_TYPE, error_response, json_response
from mediator.config.settings import ChannelSettings, Settings, counts_aggregates
from mediator.delivery.aggregates import AggregateRun, AggregatesBusy, AggregatesOff, send_aggregates
from mediator.journal.store import Journal
from mediator.ops import logs

log = logging.getLogger(__name__)


def _issues(run: AggregateRun, asked: str) -> list[dict[str, Any]]:
    said = [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": f"{asked}: {run.sent} org unit month(s) sent, {run.values} value(s) imported or updated, "
            f"{run.deleted} deleted",
        }
    ]
    for label, reasons in run.rejected:
        for reason in reasons[:5]:
            said.append({"severity": "error", "code": "processing", "diagnostics": f"{label}: {reason}"})
    if run.failure:
        text = f"DHIS2 could not take them: {run.failure}; they stay due and go with backoff"
        said.append({"severity": "warning", "code": "transient", "diagnostics": text})
    return said


def aggregates_now(channel: ChannelSettings, settings: Settings, origin: Origin) -> Response:
    if not counts_aggregates(settings):
        if request.args.getlist("period"):
            return error_response(channel, AggregatesOff("set MEDIATOR_AGGREGATES=true, or aggregate-only mode"))
        # The default polling channel calls every quarter hour whether or not they are on: a quiet answer.
        note = "the monthly aggregates are off (MEDIATOR_AGGREGATES): nothing to send"
        issue = {"severity": "information", "code": "informational", "diagnostics": note}
        doc = mediator_response(
            current_app.config["MEDIATOR_URN"],
            "Successful",
            200,
            operation_outcome([issue]),
            [],
            {"channel": channel.name},
        )
        return json_response(doc, 200, OPENHIM_CONTENT_TYPE)
    try:
        months = months_asked(request.args.getlist("period")) or None
    except ValueError as exc:
        return error_response(channel, Refused(400, "period", str(exc)))
    journal: Journal = current_app.extensions["journal"]
    deliverer = current_app.extensions["deliverer"]
    run = send_aggregates(
        journal,
        lambda exchanges: deliverer.client(settings, channel, exchanges),
        settings,
        months,
        openhim_id=origin.openhim_id,
        client_id=origin.client_id,
    )
    if run is None:
        return error_response(channel, AggregatesBusy("another process of this journal is sending the aggregates"))
    asked = ", ".join(month_text(m) for m in months) if months else "the closed months due"
    if run.failure:
        status, http = "Failed", 503
    elif run.rejected:
        status, http = ("Completed with error(s)" if run.sent else "Completed"), 422
    else:
        status, http = "Successful", 200
    logs.also(push=run.transaction_id)
    log.info("aggregates: %d org unit month(s) sent, %d refused; %s", run.sent, len(run.rejected), status)
    properties = {
        "channel": channel.name,
        "aggregates_sent": run.sent,
        "aggregates_values": run.values,
        "aggregates_deleted": run.deleted,
        "aggregates_refused": len(run.rejected),
        "journal_push": run.transaction_id or "",
    }
    orchestrations = [to_orchestration(i + 1, ex) for i, ex in enumerate(run.exchanges)]
    doc = mediator_response(
        current_app.config["MEDIATOR_URN"],
        status,
        http,
        operation_outcome(_issues(run, asked)),
        orchestrations,
        properties,
    )
    return json_response(doc, http, OPENHIM_CONTENT_TYPE)
