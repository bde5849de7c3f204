"""Delivers accepted pushes from the journal to DHIS2: at once for the push being answered, and later, by a worker,
for whatever DHIS2 could not take then. A worker that finishes a push also updates its OpenHIM transaction."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select

from mediator.dhis2.client import Dhis2Client, Exchange, RetryPolicy, make_auth
from mediator.dhis2.version import VersionCache
from mediator.dhis2.writer import TrackerWriter, choose_writer
from mediator.journal.models import Exchange as ExchangeRow
from mediator.journal.models import Outcome, Transaction
from mediator.journal.queue import claim, due, finish, release_dead_claims
from mediator.journal.store import Journal
from mediator.openhim.envelope import Orchestration
from mediator.openimis.reader import read_document
from mediator.openimis.schemas import SCHEMAS
from mediator.orchestrations import to_orchestration
from mediator.outcomes import PushResult, final_status
from mediator.push import push
from mediator.settings import ChannelSettings, Settings
from mediator.targets import dhis2_setup, insuree_target

log = logging.getLogger(__name__)
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)


@dataclass
class Run:
    result: PushResult
    exchanges: list[Exchange] = field(default_factory=list)
    decided: bool = False


class Deliverer:
    """Process-wide delivery: one HTTP session per DHIS2 user, one version cache, the journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.versions = VersionCache()
        self.sessions: dict[tuple[str, str], requests.Session] = {}
        self._lock = threading.Lock()

    def client(self, settings: Settings, channel: ChannelSettings | None, exchanges: list[Exchange]) -> Dhis2Client:
        username = (channel.dhis2_username if channel else "") or settings.dhis2_username
        password = channel.dhis2_password if channel and channel.dhis2_username else settings.dhis2_password
        auth = make_auth(settings.dhis2_auth, username, password, settings.dhis2_token)
        with self._lock:  # one session per DHIS2 user and process: DHIS2 limits the sessions of a user
            session = self.sessions.setdefault((settings.dhis2_url, username or "token"), requests.Session())
        return Dhis2Client(
            settings.dhis2_url,
            auth,
            verify=settings.dhis2_verify_tls,
            timeout=settings.dhis2_timeout_seconds,
            session=session,
            on_exchange=exchanges.append,
            retry=RetryPolicy(attempts=settings.dhis2_max_attempts),
        )

    def run(self, transaction_id: int, settings: Settings, now: datetime | None = None) -> Run | None:
        """Deliver one accepted push (None when another worker has it or nothing is due) and record the outcome."""
        resources = claim(self.journal, transaction_id, now)
        if resources is None:
            return None
        with self.journal.sessions() as session:
            tx = session.get(Transaction, transaction_id)
            channel_name = tx.channel if tx else ""
        channel = settings.channel(channel_name)
        exchanges: list[Exchange] = []
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        reading = read_document(bundle, SCHEMAS.keys())

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
        )
        if result.failure is not None:
            self.versions.forget(settings.dhis2_url.rstrip("/"))
        outcomes = [
            {"record": o.record, "status": o.status, "uids": o.uids, "reasons": [asdict(r) for r in o.reasons]}
            for o in result.outcomes
        ]
        decided = finish(
            self.journal,
            transaction_id,
            outcomes,
            retry=result.failure is not None,
            error=str(result.failure) if result.failure else None,
            base=RETRY_BASE,
            cap=RETRY_CAP,
        )
        self._record(transaction_id, result, outcomes, exchanges, decided)
        return Run(result, exchanges, decided)

    def _record(
        self,
        transaction_id: int,
        result: PushResult,
        outcomes: list[dict[str, Any]],
        exchanges: list[Exchange],
        decided: bool,
    ) -> None:
        orchestrations = [to_orchestration(i + 1, ex) for i, ex in enumerate(exchanges)]
        with self.journal.sessions.begin() as session:
            for o in outcomes:
                session.add(Outcome(transaction_id=transaction_id, **o))
            for orch in orchestrations:
                session.add(_exchange_row(transaction_id, orch))
            tx = session.get(Transaction, transaction_id)
            if tx is not None:
                stats = dict(tx.stats or {})
                for k, v in result.stats.items():
                    stats[k] = stats.get(k, 0) + v
                tx.stats = stats
                tx.failure = str(result.failure) if result.failure else None
                if decided:
                    statuses = [
                        r.status
                        for r in session.scalars(select(Outcome).where(Outcome.transaction_id == transaction_id))
                    ]
                    tx.status = final_status(statuses)
                    tx.http_status = 200 if tx.status == "Successful" else 422
                    tx.answered_at = datetime.now(UTC)

    def work_once(self, settings: Settings, notify: Any = None, now: datetime | None = None) -> int:
        """Deliver every push that is due; returns how many were decided. `notify(tx, run)` hears of decided pushes."""
        done = 0
        release_dead_claims(self.journal)
        for transaction_id in due(self.journal, now=now):
            run = self.run(transaction_id, settings, now)
            if run is not None and run.decided:
                done += 1
                if notify is not None:
                    with self.journal.sessions() as session:
                        tx = session.get(Transaction, transaction_id)
                    if tx is not None:
                        notify(tx, run)
        return done


def _exchange_row(transaction_id: int, orch: Orchestration) -> ExchangeRow:
    return ExchangeRow(
        transaction_id=transaction_id,
        method=orch.method,
        url=orch.url,
        started_at=orch.request_started,
        finished_at=orch.response_finished,
        status=orch.status,
        error=orch.error,
        request_body=orch.request_body,
        response_body=orch.response_body,
    )


def orchestrations_json(run: Run) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(to_orchestration(i + 1, ex).to_json())) for i, ex in enumerate(run.exchanges)]


def openhim_update(tx: Transaction, run: Run) -> dict[str, Any]:
    """What the OpenHIM transaction learns when a push it carried is finally decided: its status, and the DHIS2
    calls made since (added to the orchestrations it already shows)."""
    return {
        "status": tx.status,
        "$push": {"orchestrations": {"$each": orchestrations_json(run)}},
    }
