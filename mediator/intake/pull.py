"""A pull: what changed in openIMIS since the last one, read from its FHIR API and taken in as one push.

Each feed (a resource type with its search parameters, see mediator.openimis.feeds) is read from its cursor, and
everything read is spooled as one Bundle that goes through the same intake as a push on a channel: the journal,
exactly-once delivery, dead letters and the OpenHIM log apply unchanged. A feed's cursor moves only once what it
read is kept in the journal, so a pull cut short (openIMIS down, the mediator killed) is simply read again from there;
records read twice are recognised as unchanged. One pull at a time per openIMIS, across processes and instances.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mediator.config.settings import ChannelSettings, Settings, pull_types
from mediator.intake.keep import Intake, take_in
from mediator.intake.spool import Spooled, incoming_dir
from mediator.journal.claim import worker_id
from mediator.journal.pulls import (
    FeedState,
    PullRunning,
    advance,
    feed_states,
    release_lease,
    remember_query,
    renew_lease,
    take_lease,
)
from mediator.journal.store import Journal
from mediator.openimis import fhir
from mediator.openimis.api import FhirApi, OpenImisError
from mediator.openimis.feeds import Feed, FeedRead, choose_filter, feeds_for, read_feed, stamp
from mediator.openimis.reader import Problem


def openimis_api(settings: Settings) -> FhirApi:
    return FhirApi(
        settings.openimis_url,
        settings.openimis_username,
        settings.openimis_password,
        verify=settings.openimis_verify_tls,
        timeout=settings.openimis_timeout_seconds,
    )


def source_of(settings: Settings) -> str:
    """The openIMIS a pull reads, as its cursors and lease are named."""
    return settings.openimis_url.rstrip("/")


class _Spool:
    """A Bundle written resource by resource to a private file (it holds personal data), hashed on the way."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.digest = hashlib.sha256()
        self.size = 0
        self.count = 0
        self._write(b'{"resourceType":"Bundle","type":"collection","entry":[')

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)
        self.size += len(data)

    def add(self, resource: dict[str, Any]) -> None:
        entry = json.dumps({"resource": resource}, separators=(",", ":")).encode()
        self._write((b"," if self.count else b"") + entry)
        self.count += 1

    def close(self) -> None:
        self._write(b"]}")
        self.file.close()


@contextmanager
def _spool(directory: Path) -> Iterator[tuple[_Spool, Path]]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="push-", suffix=".json", dir=directory)
    try:
        yield _Spool(os.fdopen(fd, "wb")), Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@dataclass
class FeedReport:
    feed: str
    filter: str | None
    read: FeedRead


@dataclass
class PullResult:
    feeds: list[FeedReport] = field(default_factory=list)
    failure: OpenImisError | None = None  # openIMIS stopped the pull; what was read before is kept
    failed_feed: str | None = None  # the feed being read when it did (its cursor stays where it was)
    intake: Intake | None = None  # None when nothing was read
    body_sha256: str = ""

    @property
    def unreadable(self) -> list[str]:
        return [why for f in self.feeds for why in f.read.unreadable]

    @property
    def resources(self) -> int:
        return sum(f.read.count for f in self.feeds)


def pull(
    journal: Journal,
    settings: Settings,
    channel: ChannelSettings,
    *,
    api: FhirApi | None = None,
    full: bool = False,
    holder: str | None = None,
    openhim_id: str | None = None,
    client_id: str | None = None,
    on_feed: Callable[[FeedReport], None] | None = None,
    on_resource: Callable[[int], None] | None = None,
) -> PullResult:
    """Read what changed in openIMIS (everything with `full`) and take it in as one push on `channel`.

    Raises PullRunning when another pull of this openIMIS runs. `holder` keeps the push's records for a caller
    that delivers them at once (see take_in); `on_feed` hears each feed once read, `on_resource` the count read."""
    source = source_of(settings)
    lease = worker_id(f"pull-{uuid.uuid4().hex[:8]}")
    take_lease(journal, source, lease)
    try:
        api = api or openimis_api(settings)
        result = PullResult()
        reached: dict[str, str] = {}
        received_at = datetime.now(UTC)
        with _spool(incoming_dir(settings)) as (spool, path):
            try:
                api.login()
                # Every feed's cursor is where the whole pull began: a claim made after its insuree was read is
                # read again with that insuree next time, whatever the feeds' order.
                began = stamp(api.server_now())
                states = feed_states(journal, source, api.server_now())
                named: dict[str, set[str]] = {"Claim": set()}

                def emit(resource: dict[str, Any]) -> None:
                    spool.add(resource)
                    if resource.get("resourceType") == "ClaimResponse":
                        named["Claim"].add(fhir.last_segment((resource.get("request") or {}).get("reference")))
                    if on_resource is not None:
                        on_resource(spool.count)

                for feed in feeds_for(set(pull_types(settings)) & set(channel.resources)):
                    _keep_lease(journal, source, lease)
                    result.failed_feed = feed.name
                    report = _read(api, journal, source, feed, states, full, settings, emit, named)
                    result.failed_feed = None
                    result.feeds.append(report)
                    reached[feed.name] = began
                    if on_feed is not None:
                        on_feed(report)
            except OpenImisError as exc:
                result.failure = exc  # the feeds read before are kept, and their cursors move
            spool.close()
            problems = [Problem(f"{why.split(':', 1)[0]} (unreadable)", "resource", why) for why in result.unreadable]
            if result.failure is not None:
                # Said as a refusal of its own, so the push is not taken for complete: the feed is read next time.
                why = f"not read: openIMIS stopped the pull here ({result.failure}); the next pull reads it"
                problems.append(Problem(f"{result.failed_feed or 'login'} (not read)", "pull", why))
            if spool.count == 0 and not result.unreadable:
                advance(journal, source, reached)
                return result
            _keep_lease(journal, source, lease)
            body = Spooled(path, spool.digest.hexdigest(), spool.size)
            result.body_sha256 = body.sha256
            result.intake = take_in(
                journal,
                body,
                channel,
                settings,
                received_at=received_at,
                openhim_id=openhim_id,
                client_id=client_id,
                holder=holder,
                origin="pull",
                problems=problems,
            )
        advance(journal, source, reached)  # kept: from now on the journal answers for what was read
        return result
    finally:
        release_lease(journal, source, lease)


def _keep_lease(journal: Journal, source: str, lease: str) -> None:
    if not renew_lease(journal, source, lease):
        raise PullRunning("another process", datetime.now(UTC))  # this pull stalled past its lease: it yields


def _read(
    api: FhirApi,
    journal: Journal,
    source: str,
    feed: Feed,
    states: dict[str, FeedState],
    full: bool,
    settings: Settings,
    emit: Callable[[dict[str, Any]], None],
    named: dict[str, set[str]],
) -> FeedReport:
    began_at = api.server_now()
    state = states.get(feed.name)
    cursor = None if full or state is None else state.cursor
    asked = [q for q, _ in state.queries] if state is not None else []
    query = choose_filter(feed, cursor, settings.pull_overlap_seconds, asked, began_at)
    if query is not None:
        remember_query(journal, source, feed.name, query, began_at)
    read = read_feed(api, feed, query, settings.pull_page_size, emit, named.get(feed.resource_type, ()))
    return FeedReport(feed.name, query, read)
