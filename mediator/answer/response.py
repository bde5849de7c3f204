"""Turns a push result into the OpenHIM response: transaction status, HTTP answer, properties, orchestrations.

The client's body is a FHIR OperationOutcome with one issue per record (and per input problem), so openIMIS and
auditors read the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mediator.answer.envelope import mediator_response
from mediator.answer.orchestrations import to_orchestration
from mediator.answer.outcomes import PushResult, PushSummary, Reason, RecordOutcome, final_status
from mediator.dhis2.client import Exchange
from mediator.errors import MediatorError
from mediator.openimis.reader import Problem

MAX_ISSUES = 5000
UNCHANGED = "unchanged: DHIS2 already has this version of the record"
AGGREGATED = "counted into the monthly aggregates only (aggregate-only mode: no individual record goes to DHIS2)"


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    """FHIR needs at least one issue; a very long list is cut with a last issue saying how much was left out."""
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "the push held no records"}]
    if len(issues) > MAX_ISSUES:
        left_out = len(issues) - MAX_ISSUES + 1
        note = f"{left_out} more issues left out; the transaction properties count every record"
        issues = [*issues[: MAX_ISSUES - 1], {"severity": "warning", "code": "too-costly", "diagnostics": note}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def problem_issue(problem: Problem) -> dict[str, Any]:
    return {
        "severity": "error",
        "code": "invalid",
        "diagnostics": f"{problem.record}: {problem.field}: {problem.message}",
        "expression": [f"{problem.record.split('/')[0]}.{problem.field}"],
    }


def _record_issues(result: PushResult) -> list[dict[str, Any]]:
    issues = []
    for o in result.outcomes:
        if o.status == "delivered":
            uids = ", ".join(f"{k} {v}" for k, v in o.uids.items())
            text = f"{o.record}: delivered to DHIS2" + (f" ({uids})" if uids else "")
            issues.append({"severity": "information", "code": "informational", "diagnostics": text})
        elif o.status == "pending":
            issues.append({"severity": "information", "code": "informational", "diagnostics": f"{o.record}: waiting"})
        elif o.status == "unchanged":
            text = f"{o.record}: {UNCHANGED}"
            issues.append({"severity": "information", "code": "informational", "diagnostics": text})
        elif o.status == "aggregated":
            text = f"{o.record}: {AGGREGATED}"
            issues.append({"severity": "information", "code": "informational", "diagnostics": text})
        # A delivered record's reasons are warnings; a waiting record's say what it waits for.
        severity = {"delivered": "warning", "pending": "information"}.get(o.status, "error")
        for r in o.reasons:
            code = f" [{r.code}]" if r.code else ""
            issues.append(
                {"severity": severity, "code": "processing", "diagnostics": f"{o.record}: {r.field}{code}: {r.message}"}
            )
    return issues


def push_properties(
    channel: str, received: Mapping[str, int], counts: Mapping[str, int], stats: Mapping[str, int]
) -> dict[str, Any]:
    """The transaction's properties: resources received by type, records by outcome, what DHIS2 did."""
    properties: dict[str, Any] = {"channel": channel, **{f"received_{k}": v for k, v in received.items()}}
    properties.update({f"records_{k}": counts.get(k, 0) for k in ("delivered", "unchanged", "rejected", "pending")})
    if counts.get("aggregated"):
        properties["records_aggregated"] = counts["aggregated"]
    properties.update({f"dhis2_{k}": v for k, v in stats.items()})
    return properties


def decided_update(summary: PushSummary) -> dict[str, Any]:
    """What the OpenHIM transaction of a push answered `Processing` says once the push is decided: its status, its
    properties and response with the final counts (the response lists the rejected records, as the answer would
    have)."""
    counts = summary.counts
    done = ", ".join(
        f"{n} {state}" for state, n in counts.items() if state != "pending" and (n or state != "aggregated")
    )
    issues = [{"severity": "information", "code": "informational", "diagnostics": f"delivered later: {done}"}]
    rejected = [
        RecordOutcome(record, "rejected", {}, [Reason(r.get("field", ""), r.get("code", ""), r.get("message", ""))
                                               for r in reasons])
        for record, reasons in summary.rejected
    ]  # fmt: skip
    issues += _record_issues(PushResult(outcomes=rejected))
    if counts["rejected"] > len(rejected):
        more = f"{counts['rejected'] - len(rejected)} more rejected record(s) are in the mediator's journal"
        issues.append({"severity": "warning", "code": "too-costly", "diagnostics": more})
    properties = push_properties(summary.channel, summary.received, counts, summary.stats)
    if summary.chain_head:
        properties["journal_chain"] = summary.chain_head
    doc = mediator_response("", summary.status, summary.http_status, operation_outcome(issues), [], properties)
    return {"status": doc["status"], "response": doc["response"], "properties": doc["properties"]}


def envelope(
    urn: str,
    result: PushResult,
    exchanges: list[Exchange],
    channel: str,
    notes: Sequence[dict[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """The application/json+openhim document and the HTTP status the mediator answers the core with.

    `notes` are issues said before the records' own (what a pull read, say); `extra` joins the properties."""
    counts = {s: result.count(s) for s in ("delivered", "unchanged", "rejected", "pending", "aggregated")}
    delivered, unchanged, rejected, pending, aggregated = counts.values()
    properties = push_properties(channel, result.received, counts, result.stats)
    properties.update(extra or {})
    orchestrations = [to_orchestration(i + 1, ex) for i, ex in enumerate(exchanges)]
    error = None
    if result.problems:
        properties["input_problems"] = len(result.problems)
        status, http = "Completed", 400
        body = operation_outcome([*notes, *(problem_issue(p) for p in result.problems)])
    elif pending:
        # Accepted and kept in the journal: the mediator delivers the rest itself and then updates this transaction.
        issues = []
        if result.failure is not None:
            properties["dhis2_failure"] = type(result.failure).__name__
            issues.append(result.failure.issue("warning"))
        note = f"{pending} record(s) accepted and kept; they will be delivered to DHIS2 as soon as it takes them"
        issues.append({"severity": "information", "code": "informational", "diagnostics": note})
        body = operation_outcome([*notes, *issues, *_record_issues(result)])
        status, http = "Processing", 202
    else:
        body = operation_outcome([*notes, *_record_issues(result)])
        status = final_status(delivered + unchanged + aggregated, rejected)
        http = 200 if status == "Successful" else 422
    doc = mediator_response(urn, status, http, body, orchestrations, properties, error)
    return doc, http


def error_envelope(
    urn: str, error: MediatorError, properties: Mapping[str, Any], notes: Sequence[dict[str, Any]] = ()
) -> tuple[dict[str, Any], int]:
    """The answer to a request the mediator could not take, as the error says: its HTTP status, OpenHIM status and
    OperationOutcome issue (`notes` before it)."""
    body = operation_outcome([*notes, error.issue()])
    doc = mediator_response(urn, error.openhim_status, error.http_status, body, [], dict(properties))
    return doc, error.http_status
