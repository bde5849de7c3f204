"""What a scrape of `/metrics` reads: the counters of every process, and what the journal and the heartbeat status
say now (records pending, dead letters, pull cursors, the journal's size, the heartbeat's age), read at each scrape
so that every worker answers the same."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from mediator.journal.models import AggregateDue, PullCursor, Transaction, Work
from mediator.journal.store import open_probe
from mediator.openhim.status import HeartbeatStatus, StatusFile
from mediator.ops.metrics import MULTIPROCESS_ENV

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_SECONDS = 10.0  # what the journal's gauges may take (a large journal counts for a while), within a scrape


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


class JournalCollector(Collector):
    """What the journal and the heartbeat status say now, read at each scrape."""

    def __init__(self, engine: Engine, heartbeat: Callable[[], HeartbeatStatus]) -> None:
        self.engine, self.heartbeat = engine, heartbeat

    def collect(self) -> Iterator[Any]:
        now = datetime.now(UTC)
        pending = GaugeMetricFamily("mediator_records_pending", "Records waiting to be delivered", labels=["kind"])
        dead = GaugeMetricFamily(
            "mediator_dead_letters", "Records DHIS2 refused, until sent again (`dead-letters`)", labels=["kind"]
        )
        months = GaugeMetricFamily(
            "mediator_aggregate_months", "Org unit months of the aggregates waiting, by state", labels=["state"]
        )
        cursors = GaugeMetricFamily(
            "mediator_pull_cursor_age_seconds", "How far behind now each openIMIS feed's cursor is", labels=["feed"]
        )
        try:
            with self.engine.connect() as connection:
                by_state = select(Work.state, Work.kind, func.count()).where(Work.state.in_(("pending", "rejected")))
                for state, kind, n in connection.execute(by_state.group_by(Work.state, Work.kind)):
                    (pending if state == "pending" else dead).add_metric([kind], n)
                by_due = select(AggregateDue.state, func.count()).group_by(AggregateDue.state)
                for state, n in connection.execute(by_due):
                    months.add_metric([state], n)
                for feed, reached, updated in connection.execute(
                    select(PullCursor.feed, PullCursor.last_updated, PullCursor.updated_at)
                ):
                    since = _instant(reached) or _aware(updated)
                    if since is not None:
                        cursors.add_metric([feed], max(0.0, (now - since).total_seconds()))
                pushes = connection.execute(select(func.count()).select_from(Transaction)).scalar_one()
                size = _database_bytes(connection)
        except SQLAlchemyError:  # the counters still go out; this says the journal's gauges could not be read
            yield GaugeMetricFamily("mediator_journal_up", "1 when the journal could be read for this scrape", value=0)
        else:
            yield GaugeMetricFamily("mediator_journal_up", "1 when the journal could be read for this scrape", value=1)
            yield from (pending, dead, months, cursors)
            yield GaugeMetricFamily("mediator_journal_pushes", "Pushes the journal keeps", value=pushes)
            if size is not None:
                yield GaugeMetricFamily("mediator_journal_size_bytes", "Size of the journal's database", value=size)
        status = self.heartbeat()
        yield GaugeMetricFamily(
            "mediator_openhim_registered",
            "1 while the OpenHIM core holds the registration",
            value=int(status.registered_at is not None),
        )
        age = status.beat_age(time.time())
        if age is not None:
            yield GaugeMetricFamily("mediator_heartbeat_age_seconds", "Since the core took a heartbeat", value=age)


def _database_bytes(connection: Any) -> float | None:
    if connection.dialect.name == "sqlite":
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()
        return float(pages * connection.execute(text("PRAGMA page_size")).scalar_one())
    if connection.dialect.name == "postgresql":
        return float(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    return None


def _instant(value: str | None) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(value)) if value else None
    except ValueError:
        return None


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _registry(journal: Collector) -> CollectorRegistry:
    """Every process's counters (or this process's, outside the server), then the journal's."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(journal)
    return registry


def exposition(journal: JournalCollector) -> bytes:
    """The text a scrape gets."""
    return generate_latest(_registry(journal))


class _OwnConnection(Collector):
    """The journal's metrics on a connection opened for the scrape and closed after it: what the server's master
    process serves, as its workers are forked from it and must not share its connections."""

    def __init__(self, journal_url: str, state_dir: Path) -> None:
        self.url, self.status = journal_url, StatusFile(state_dir)

    def collect(self) -> Iterator[Any]:
        engine = open_probe(self.url, SCRAPE_SECONDS)
        try:
            yield from JournalCollector(engine, self.status.read).collect()
        finally:
            engine.dispose()


def serve_port(host: str, port: int, journal_url: str, state_dir: Path) -> None:
    """Serve the metrics, unauthenticated, on a port of their own (an internal address), from a thread of this
    process."""
    start_http_server(port, host, _registry(_OwnConnection(journal_url, state_dir)))
