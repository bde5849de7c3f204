"""Records are atomic, a push is not.

DHIS2 imports each request all-or-nothing (atomicMode=ALL). When it refuses some objects, the records they belong to
are set aside as rejected and the rest is sent again; every round sets aside at least one record, so the loop ends.
No record is ever half-written, and one bad record does not hold back the others.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mediator.answer.outcomes import PushResult, Reason, RecordOutcome
from mediator.answer.redact import redact_message, uids_in
from mediator.dhis2.errors import Dhis2Rejected


@dataclass(frozen=True)
class Deliverable:
    record: str  # "Patient/<key>", "Location/<key>"...
    uids: Mapping[str, str]  # the DHIS2 objects that carry the record, by what they are
    objects: tuple[tuple[str, dict[str, Any]], ...]  # (payload section, DHIS2 object)


@dataclass(frozen=True)
class Refusal:
    uid: str
    code: str
    message: str


@dataclass
class Attempt:
    accepted: bool
    refusals: list[Refusal] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    warnings: list[Refusal] = field(default_factory=list)  # written, but with something DHIS2 left out


def payload(items: Iterable[Deliverable]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for section, obj in item.objects:
            out.setdefault(section, []).append(obj)
    return out


def deliver(
    items: list[Deliverable],
    send: Callable[[dict[str, list[dict[str, Any]]]], Attempt],
    field_of: Callable[[Refusal], str],
    result: PushResult,
) -> list[Deliverable]:
    """Send until DHIS2 takes what is left; returns the records it took."""
    pending = items

    # UIDs the mediator itself sent may stay in DHIS2's messages; any other quoted value is hidden.
    @cache
    def known() -> Collection[str]:
        return uids_in([obj for item in items for _, obj in item.objects])

    while pending:
        try:
            attempt = send(payload(pending))
        except Dhis2Rejected as exc:
            # DHIS2 refused the request as a whole: sending it again cannot help.
            reason = Reason("record", "", redact_message(str(exc), known()))
            result.outcomes += [RecordOutcome(i.record, "rejected", dict(i.uids), [reason]) for i in pending]
            return []
        result.add_stats(attempt.stats)
        if attempt.accepted:
            warned: dict[str, list[Reason]] = {}
            owner = {uid: i for i in pending for uid in i.uids.values()}
            for w in attempt.warnings:
                if w.uid in owner:
                    warned.setdefault(owner[w.uid].record, []).append(
                        Reason(field_of(w), w.code, redact_message(w.message, known()))
                    )
            result.outcomes += [
                RecordOutcome(i.record, "delivered", dict(i.uids), warned.get(i.record, [])) for i in pending
            ]
            return pending
        owner = {uid: i for i in pending for uid in i.uids.values()}
        refused: dict[str, list[Reason]] = {}
        for r in attempt.refusals:
            item = owner.get(r.uid)
            if item is not None:
                refused.setdefault(item.record, []).append(
                    Reason(field_of(r), r.code, redact_message(r.message, known()))
                )
        if not refused:
            # DHIS2 refused the request without naming an object of ours: nothing was written.
            reasons = [Reason("record", r.code, redact_message(r.message, known())) for r in attempt.refusals]
            result.outcomes += [RecordOutcome(i.record, "rejected", dict(i.uids), reasons) for i in pending]
            return []
        result.outcomes += [
            RecordOutcome(i.record, "rejected", dict(i.uids), refused[i.record]) for i in pending if i.record in refused
        ]
        pending = [i for i in pending if i.record not in refused]
    return []


def deliver_in_batches(
    items: list[Deliverable],
    send: Callable[[dict[str, list[dict[str, Any]]]], Attempt],
    field_of: Callable[[Refusal], str],
    result: PushResult,
    batch_size: int,
    concurrency: int = 1,
) -> None:
    """`deliver` in requests of about `batch_size` DHIS2 objects (a record is never split across two), at most
    `concurrency` requests at a time. Outcomes keep the order of the batches, whatever order they finish in."""
    batches: list[list[Deliverable]] = [[]]
    size = 0
    for item in items:
        if size >= batch_size:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += len(item.objects)
    batches = [b for b in batches if b]
    if concurrency <= 1 or len(batches) <= 1:
        for batch in batches:
            deliver(batch, send, field_of, result)
        return
    partial = [PushResult() for _ in batches]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dhis2") as pool:
        futures = [pool.submit(deliver, b, send, field_of, r) for b, r in zip(batches, partial, strict=True)]
        wait(futures)
    for part in partial:  # batches that finished count, even when another failed
        result.outcomes += part.outcomes
        result.add_stats(part.stats)
    for future in futures:
        future.result()  # DHIS2 unavailable in any batch: the push waits for a retry
