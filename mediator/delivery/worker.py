"""Delivers accepted pushes from the journal to DHIS2: at once for the push being answered, and later, by a worker,
for whatever DHIS2 could not take then. A worker that finishes a push also updates its OpenHIM transaction."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import requests
from sqlalchemy import insert

from mediator.answer.envelope import Orchestration
from mediator.answer.orchestrations import call_fields, to_orchestration
from mediator.answer.outcomes import PushResult, PushSummary, Reason, RecordOutcome
from mediator.answer.response import decided_update
from mediator.config.mapping_file import dhis2_setup, insuree_target
from mediator.config.settings import ChannelSettings, Settings, aggregate_only_for, counts_aggregates
from mediator.delivery.push import label, push
from mediator.dhis2.client import CONNECT_TIMEOUT, Dhis2Client, Exchange, RetryPolicy, credentials_key, make_auth
from mediator.dhis2.version import VersionCache
from mediator.dhis2.writer import TrackerWriter, choose_writer
from mediator.journal import aggregates, chain
from mediator.journal.accept import drop_unfinished
from mediator.journal.claim import Slice, claim, due, on_their_way, release, release_dead_claims, undecided
from mediator.journal.delivered import enrollment_org_units
from mediator.journal.finish import decide, finish
from mediator.journal.models import Exchange as ExchangeRow
from mediator.journal.models import Outcome, Transaction
from mediator.journal.numbers import insurees_by_number
from mediator.journal.store import Journal
from mediator.journal.summary import push_summary
from mediator.openimis.reader import Reading
from mediator.openimis.records import Claim, ClaimReview, CodeEntry, Family, Insuree, Policy, Record
from mediator.openimis.references import resolve
from mediator.openimis.units import referents
from mediator.ops import logs

log = logging.getLogger(__name__)
RETRY_CAP = timedelta(hours=1)


MAX_UPDATE_ORCHESTRATIONS = 100  # per OpenHIM update; every call stays in the journal


@dataclass
class Run:
    """One delivery of a push's due records, slice after slice."""

    result: PushResult = field(default_factory=PushResult)
    exchanges: list[Exchange] = field(default_factory=list)  # kept for an answer being written (inline)
    orchestrations: list[dict[str, Any]] = field(default_factory=list)  # for OpenHIM, at most a hundred
    calls: int = 0  # DHIS2 calls made
    status: str | None = None  # the push's final status, when this run decided it
    summary: PushSummary | None = None  # what the push came to, when this run decided it

    @property
    def decided(self) -> bool:
        return self.status is not None


class Deliverer:
    """Process-wide delivery: one HTTP session per DHIS2 user, one version cache, the journal."""

    def __init__(self, journal: Journal, slice_size: int = 1000) -> None:
        self.journal = journal
        self.slice_size = slice_size
        self.auditor: Callable[[int, PushResult], None] | None = None  # hears each slice delivered (ATNA)
        self.versions = VersionCache()
        # (DHIS2 URL, auth mode, username) -> (which credentials, their session)
        self.sessions: dict[tuple[str, str, str], tuple[str, requests.Session]] = {}
        self._lock = threading.Lock()

    def client(
        self,
        settings: Settings,
        channel: ChannelSettings | None,
        exchanges: list[Exchange],
        attempts: int | None = None,
        timeouts: tuple[float, float] | None = None,
    ) -> Dhis2Client:
        """A client of the channel's DHIS2 user on this process's session; `attempts` and `timeouts` (connect, read)
        other than the settings' for a caller that must answer soon (a health probe)."""
        mode, username, password = dhis2_user(settings, channel)
        auth = make_auth(mode, username, password, settings.dhis2_token)
        connect, read = timeouts or (CONNECT_TIMEOUT, settings.dhis2_timeout_seconds)
        return Dhis2Client(
            settings.dhis2_url,
            auth,
            verify=settings.dhis2_verify_tls,
            timeout=read,
            connect_timeout=connect,
            session=self.session(settings.dhis2_url, mode, username, password, settings.dhis2_token),
            on_exchange=exchanges.append,
            retry=RetryPolicy(attempts=attempts or settings.dhis2_max_attempts),
        )

    def session(self, url: str, mode: str, username: str, password: str, token: str) -> requests.Session:
        """The HTTP session of these credentials: one per DHIS2 user and process, as DHIS2 limits the sessions of a
        user. Changed credentials get a new session, so DHIS2 checks them instead of honouring the old session's
        cookie; the old session is dropped."""
        slot = (url.rstrip("/"), mode, "" if mode == "token" else username)
        key = credentials_key(mode, username, password, token)
        with self._lock:
            held = self.sessions.get(slot)
            if held is None or held[0] != key:
                held = self.sessions[slot] = (key, requests.Session())
            return held[1]

    def run(
        self,
        transaction_id: int,
        settings: Settings,
        now: datetime | None = None,
        keep: bool = False,
        on_slice: Callable[[PushResult], None] | None = None,
        holder: str | None = None,
    ) -> Run:
        """Deliver the push's due records, a slice at a time, and record each slice's outcome as it ends.

        `keep` gathers every outcome and exchange (for answering a push inline); a worker keeps only counts, so
        a push of any size is delivered in the memory of one slice. `on_slice` hears each slice's result; `holder`
        is the name the push's records were kept for at accept (a push delivered before answering).
        """
        run = Run()
        with self.journal.sessions() as session:
            tx = session.get(Transaction, transaction_id)
            channel = settings.channel(tx.channel if tx else "")
            about = {"push": transaction_id, "channel": tx and tx.channel, "transaction": tx and tx.openhim_id}
        with logs.about(**about):
            return self._run(transaction_id, settings, channel, run, now, keep, on_slice, holder)

    def _run(
        self,
        transaction_id: int,
        settings: Settings,
        channel: ChannelSettings | None,
        run: Run,
        now: datetime | None,
        keep: bool,
        on_slice: Callable[[PushResult], None] | None,
        holder: str | None,
    ) -> Run:
        try:
            while (taken := claim(self.journal, transaction_id, now, self.slice_size, holder)) is not None:
                result, waiting = self._slice(taken, settings, channel, run, keep)
                if on_slice is not None:
                    on_slice(result)
                tried = [o for o in result.outcomes if o.record not in waiting]
                if result.failure is not None or (tried and all(o.status == "pending" for o in tried)):
                    break  # DHIS2 will not take more now; what is left waits for its next attempt
        finally:
            if holder:
                release(self.journal, transaction_id, holder)  # what is left is the worker's
        return self._decided(transaction_id, run)

    def _decided(self, transaction_id: int, run: Run) -> Run:
        """The run, with the push's final status and what it came to if the push is decided now."""
        run.status = decide(self.journal, transaction_id)
        if run.status is not None:
            run.summary = push_summary(self.journal, transaction_id)
        return run

    def _slice(
        self, taken: Slice, settings: Settings, channel: ChannelSettings | None, run: Run, keep: bool
    ) -> tuple[PushResult, dict[str, str]]:
        """Deliver one slice, record what became of it, and add it to the run; also returns what waits."""
        result, exchanges, waiting, records = self._deliver(taken, settings, channel)
        # Records of the slice's units delivered before go again as context: only the slice's own are recorded.
        result.outcomes = [o for o in result.outcomes if o.record in taken.labels]
        outcomes = [
            {
                "record": o.record,
                "status": o.status,
                "uids": o.uids,
                "reasons": [asdict(r) for r in o.reasons],
                "waits_for": waiting.get(o.record),
            }
            for o in result.outcomes
        ]
        error = str(result.failure) if result.failure else None
        base = timedelta(seconds=settings.retry_seconds)
        # What a slice decides is counted into the monthly aggregates in the transaction that decides it: a crash
        # leaves the records pending and uncounted, never decided and uncounted.
        decided = {o["record"] for o in outcomes if o["status"] != "pending" and not o["waits_for"]}
        counted = [r for r in records if label(r) in decided] if counts_aggregates(settings) else []
        count = partial(aggregates.take, push_id=taken.transaction_id, records=counted) if counted else None
        finish(self.journal, taken, outcomes, result.failure is not None, error, base, RETRY_CAP, count)
        orchestrations = [to_orchestration(run.calls + i + 1, ex) for i, ex in enumerate(exchanges)]
        # A record that waits has no outcome yet: only its work row says what it waits for.
        self._record(taken.transaction_id, result, [o for o in outcomes if not o["waits_for"]], orchestrations)
        if self.auditor is not None:
            self.auditor(taken.transaction_id, result)
        room = MAX_UPDATE_ORCHESTRATIONS - len(run.orchestrations)
        run.orchestrations += [json.loads(json.dumps(o.to_json())) for o in orchestrations[:room]]
        run.calls += len(exchanges)
        run.result.add_stats(result.stats)
        run.result.failure = result.failure
        if keep:
            run.result.outcomes += result.outcomes
            run.exchanges += exchanges
        return result, waiting

    def _deliver(
        self, taken: Slice, settings: Settings, channel: ChannelSettings | None
    ) -> tuple[PushResult, list[Exchange], dict[str, str], list[Record]]:
        """Deliver a slice; also returns the records that wait for one still on its way in another push, and the
        slice's records as delivered (references resolved).

        In aggregate-only mode insurees, families, policies and claims are not sent: they are only counted."""
        exchanges: list[Exchange] = []
        resolved = [resolve(r, taken.aliases) for r in taken.records]
        reading = Reading(records=resolved)
        counted_only: list[Record] = []
        if aggregate_only_for(settings, channel):
            counted_only = [r for r in resolved if isinstance(r, INDIVIDUAL) and label(r) in taken.labels]
            reading.records = [r for r in resolved if not isinstance(r, INDIVIDUAL)]
            if not reading.records:
                outcomes = [RecordOutcome(label(r), "aggregated") for r in counted_only]
                return PushResult(outcomes=outcomes), exchanges, {}, resolved
        numbers = _numbers_from_elsewhere(reading.records)
        known = insurees_by_number(self.journal, numbers) if numbers else {}
        waiting = self._waiting(taken, reading.records, known)
        reading.records = [r for r in reading.records if label(r) not in waiting]
        covered = _insurees_from_elsewhere(reading.records, known)
        org_units = enrollment_org_units(self.journal, covered) if covered else {}
        entries = [r for r in taken.context if isinstance(r, CodeEntry)]

        def writer_for(dhis2: Dhis2Client) -> TrackerWriter:
            return choose_writer(
                self.versions.get(dhis2), settings.tracker_api, settings.async_threshold, settings.dhis2_concurrency
            )

        result = push(
            reading,
            insuree_target(settings, channel),
            dhis2_setup(settings),
            lambda: self.client(settings, channel, exchanges),
            settings.batch_size,
            writer_for,
            entries,
            known,
            org_units,
        )
        if result.failure is not None:
            self.versions.forget(settings.dhis2_url.rstrip("/"))
        for record, (referent, push_id) in waiting.items():
            why = f"waits for {referent}, still on its way to DHIS2 (push {push_id}); it goes once that is delivered"
            result.outcomes.append(RecordOutcome(record, "pending", {}, [Reason("reference", "", why)]))
        result.outcomes += [RecordOutcome(label(r), "aggregated") for r in counted_only]
        return result, exchanges, {record: referent for record, (referent, _) in waiting.items()}, resolved

    def _waiting(self, taken: Slice, records: list[Record], known: Mapping[str, str]) -> dict[str, tuple[str, int]]:
        """The slice's records that refer to a record still pending in another push: record -> (that record, push).

        They wait for it instead of being refused for a reference DHIS2 does not have yet."""
        present = {label(r) for r in records}
        needs: dict[str, list[str]] = {}
        for record in records:
            if label(record) not in taken.labels:
                continue  # context, already delivered
            labels, numbers = referents(record)
            wanted = [*labels, *(f"Patient/{known[n]}" for n in numbers if n in known)]
            outside = [w for w in dict.fromkeys(wanted) if w not in present]
            if outside:
                needs[label(record)] = outside
        if not needs:
            return {}
        travelling = on_their_way(self.journal, {w for ws in needs.values() for w in ws}, set(taken.ids))
        waiting = {}
        for name, wanted in needs.items():
            referent = next((w for w in wanted if w in travelling), None)
            if referent is not None:
                waiting[name] = (referent, travelling[referent])
        # What refers to a record of the slice that waits, waits with it (a review whose claim waits for its insuree).
        while True:
            more = {}
            for record in records:
                name = label(record)
                if name in waiting or name not in taken.labels:
                    continue
                inside = next((w for w in referents(record)[0] if w in waiting), None)
                if inside is not None:
                    more[name] = (inside, taken.transaction_id)
            if not more:
                return waiting
            waiting.update(more)

    def _record(
        self,
        transaction_id: int,
        result: PushResult,
        outcomes: list[dict[str, Any]],
        orchestrations: list[Orchestration],
    ) -> None:
        with self.journal.sessions.begin() as session:
            written: dict[int, dict[str, Any]] = {}
            if outcomes:
                rows = [{"transaction_id": transaction_id, **o} for o in outcomes]
                ids = session.scalars(insert(Outcome).returning(Outcome.id, sort_by_parameter_order=True), rows)
                columns = chain.ROWS["outcome"][1]  # their values come back as they went in: digested as written
                written = {i: {c: row.get(c) for c in columns} for i, row in zip(ids, rows, strict=True)}
            calls = [ExchangeRow(transaction_id=transaction_id, **call_fields(orch)) for orch in orchestrations]
            session.add_all(calls)
            tx = session.get(Transaction, transaction_id)
            if tx is not None:
                stats = dict(tx.stats or {})
                for k, v in result.stats.items():
                    stats[k] = stats.get(k, 0) + v
                tx.stats = stats
                tx.failure = str(result.failure) if result.failure else None
            session.flush()
            chain.append(session, rows={"call": [c.id for c in calls]}, written={"outcome": written})

    def work_once(self, settings: Settings, notify: Any = None, now: datetime | None = None) -> int:
        """Deliver every push that is due; returns how many were decided.

        `notify(tx, run)` hears of every push this round sent something for, or decided."""
        done = 0

        def tell(transaction_id: int, run: Run) -> None:
            if not (run.decided or run.calls):
                return
            with self.journal.sessions() as session:
                tx = session.get(Transaction, transaction_id)
            if tx is None:
                return
            with logs.about(push=tx.id, channel=tx.channel, transaction=tx.openhim_id):
                if run.summary is not None:
                    counts = ", ".join(f"{n} {state}" for state, n in run.summary.counts.items())
                    log.info("delivery: %d DHIS2 call(s); the push is %s: %s", run.calls, run.status, counts)
                else:
                    log.info("delivery: %d DHIS2 call(s); records of the push are still pending", run.calls)
                if notify is not None:
                    notify(tx, run)

        release_dead_claims(self.journal)
        drop_unfinished(self.journal)
        for transaction_id in undecided(self.journal):  # left with nothing pending by a process that died
            run = self._decided(transaction_id, Run())
            done += run.decided
            tell(transaction_id, run)
        for transaction_id in due(self.journal, now=now):
            run = self.run(transaction_id, settings, now)
            done += run.decided
            tell(transaction_id, run)
        return done


# Records of individuals: what aggregate-only mode keeps from DHIS2.
INDIVIDUAL = (Insuree, Family, Policy, Claim, ClaimReview)


def dhis2_user(settings: Settings, channel: ChannelSettings | None) -> tuple[str, str, str]:
    """(auth mode, username, password) a channel writes to DHIS2 with: its own DHIS2 user (Basic auth, whatever
    the default credentials are), else the default credentials."""
    if channel is not None and channel.dhis2_username:
        return "basic", channel.dhis2_username, channel.dhis2_password
    return settings.dhis2_auth, settings.dhis2_username, settings.dhis2_password


def _insurees_from_elsewhere(records: list[Record], by_number: Mapping[str, str]) -> set[str]:
    """The insurees the policies of a slice cover that the slice does not carry (by key, or by insurance number)."""
    carried = {r.key for r in records if isinstance(r, Insuree)}
    covered = {k for r in records if isinstance(r, Policy) for k in r.insuree_keys}
    covered |= {by_number[n] for r in records if isinstance(r, Policy) for n in r.insurance_numbers if n in by_number}
    return covered - carried


def _numbers_from_elsewhere(records: list[Record]) -> set[str]:
    """Insurance numbers that Coverages of a slice name and that no insuree of the slice carries."""
    carried = {r.insurance_number for r in records if isinstance(r, Insuree)}
    return {n for r in records if isinstance(r, Policy) for n in r.insurance_numbers} - carried


def openhim_update(tx: Transaction, run: Run) -> dict[str, Any]:
    """What the OpenHIM transaction learns of a delivery run: the DHIS2 calls made (added to the orchestrations it
    already shows) and, once the push is decided, its status, and its response and properties with the final
    counts (they said `Processing` and the records pending)."""
    update: dict[str, Any] = {"$push": {"orchestrations": {"$each": run.orchestrations}}}
    if run.summary is not None:
        update.update(decided_update(run.summary))
    elif run.decided:
        update["status"] = tx.status
    return update
