"""A DHIS2 exchange as an OpenHIM orchestration: what the transaction log and the journal show of each call,
with personal data redacted."""

from __future__ import annotations

from typing import Any

from mediator.answer.envelope import Orchestration
from mediator.answer.redact import redacted_json, uids_in
from mediator.dhis2.client import Exchange


def to_orchestration(index: int, ex: Exchange) -> Orchestration:
    path = ex.url.split("?", 1)[0].split("/api/", 1)[-1]

    def known() -> set[str]:
        return uids_in(ex.request_body)

    return Orchestration(
        name=f"DHIS2 {ex.method} /api/{path} #{index}",
        method=ex.method,
        url=ex.url,
        request_body=redacted_json(ex.request_body, known),
        request_started=ex.started,
        status=ex.status,
        response_body=redacted_json(ex.response_body, known),
        response_finished=ex.finished,
        request_headers={"content-type": "application/json"} if ex.request_body is not None else {},
        response_headers={"content-type": "application/json"},
        error=ex.error,
    )


def call_fields(orch: Orchestration) -> dict[str, Any]:
    """An orchestration as the journal keeps a DHIS2 call (the columns of mediator.journal.models.Exchange)."""
    return {
        "method": orch.method,
        "url": orch.url,
        "started_at": orch.request_started,
        "finished_at": orch.response_finished,
        "status": orch.status,
        "error": orch.error,
        "request_body": orch.request_body,
        "response_body": orch.response_body,
    }
