"""What a pull reads from openIMIS's FHIR API, and how it reads each feed so that nothing is missed.

The API's traps, and what is done about each:
- Ordering is not unique, so pages skip and repeat records: a feed is read in one page, as large as it takes.
- One bad row makes every page holding it answer 500: such a feed is read again in smaller and smaller pages down to
  single records, and the records of the bad positions are asked by id where another feed names them (a Claim by
  its ClaimResponse); what still cannot be read is reported, and the rest of the pull goes on.
- `_lastUpdated` takes `[prefix]YYYY-MM-DDThh:mm:ss` only, in openIMIS's clock (UTC); only the last one given counts,
  and no resource says when it changed, so a feed's cursor is openIMIS's clock when a read began.
- openIMIS caches the count of a search for an hour and cuts the answer to it: a filter is never asked twice within
  the hour (an earlier lower bound, or a later upper one, is asked instead).
- Organizations take no `_lastUpdated` (500): they are read whole (`type=prov`, health facilities only).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mediator.openimis import fhir
from mediator.openimis.api import FhirApi, OpenImisFailed, OpenImisUnavailable

STAMP = "%Y-%m-%dT%H:%M:%S"
MAX_BAD = 20  # single-record pages failing in a row before openIMIS is taken for down rather than one bad row
BIG_PAGE_START = 2  # the first large page asks for twice what openIMIS counts


@dataclass(frozen=True)
class Feed:
    name: str  # the cursor's name
    resource_type: str
    params: tuple[tuple[str, str], ...] = ()
    incremental: bool = True  # whether openIMIS takes `_lastUpdated` for it


# Read in this order; a push of them is delivered metadata first whatever the order. ClaimResponse comes before
# Claim so that the claims it names can be asked by id when a Claim page fails.
FEEDS = (
    Feed("Location", "Location"),
    Feed("Location?physicalType=si", "Location", (("physicalType", "si"),)),
    Feed("Organization?type=prov", "Organization", (("type", "prov"),), incremental=False),
    Feed("InsurancePlan", "InsurancePlan"),
    Feed("Medication", "Medication"),
    Feed("ActivityDefinition", "ActivityDefinition"),
    Feed("Patient", "Patient"),
    Feed("Group", "Group"),
    Feed("Coverage", "Coverage"),
    Feed("Contract", "Contract"),
    Feed("ClaimResponse", "ClaimResponse"),
    Feed("Claim", "Claim"),
)


def feeds_for(resource_types: Collection[str]) -> list[Feed]:
    return [f for f in FEEDS if f.resource_type in resource_types]


def stamp(epoch: float) -> str:
    """openIMIS's `_lastUpdated` format (whole seconds, UTC, no zone)."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime(STAMP)


def choose_filter(
    feed: Feed, cursor: str | None, overlap: float, asked: Iterable[str], server_now: float
) -> str | None:
    """The `_lastUpdated` value to read a feed with, never one asked within the last hour.

    From a cursor: `ge` the cursor less the overlap (what changed while the last read ran is read again; unchanged
    records are recognised by the journal), or earlier than every lower bound asked lately. Without one: everything
    (`lt` a day ahead of openIMIS's clock), or later than every upper bound asked lately. None: no filter at all.
    """
    if not feed.incremental:
        return None
    asked = set(asked)
    if cursor is not None:
        bound = datetime.strptime(cursor, STAMP).replace(tzinfo=UTC) - timedelta(seconds=overlap)
        lows = [datetime.strptime(a[2:], STAMP).replace(tzinfo=UTC) for a in asked if a.startswith("ge")]
        if f"ge{bound.strftime(STAMP)}" in asked:
            bound = min(lows) - timedelta(seconds=1)
        return f"ge{bound.strftime(STAMP)}"
    top = datetime.fromtimestamp(int(server_now), UTC) + timedelta(days=1)
    highs = [datetime.strptime(a[2:], STAMP).replace(tzinfo=UTC) for a in asked if a.startswith("lt")]
    if f"lt{top.strftime(STAMP)}" in asked:
        top = max(highs) + timedelta(seconds=1)
    return f"lt{top.strftime(STAMP)}"


@dataclass
class FeedRead:
    """What reading one feed gave, besides the resources handed on."""

    count: int = 0
    requests: int = 0
    unreadable: list[str] = field(default_factory=list)  # why records openIMIS lists could not be read


def _identity(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{fhir.record_key(resource) or resource.get('id')}"


class _Reader:
    def __init__(self, api: FhirApi, feed: Feed, query: dict[str, str], emit: Callable[[dict[str, Any]], None]):
        self.api, self.feed, self.query, self._emit = api, feed, query, emit
        self.seen: set[str] = set()
        self.read = FeedRead()
        self.bad: list[tuple[int, str]] = []  # (position, why) of pages of one record that failed
        self.total: int | None = None  # what openIMIS counts, when the feed had to be narrowed
        self.streak = 0  # single-record pages failing in a row

    def emit(self, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            name = _identity(resource)
            if name not in self.seen:  # a record served twice (pages that overlap) is handed on once
                self.seen.add(name)
                self.read.count += 1
                self._emit(resource)

    def page(self, count: int, number: int | None = None) -> list[dict[str, Any]]:
        params = {**self.query, "_count": str(count)}
        if number is not None:
            params["page-offset"] = str(number)
        self.read.requests += 1
        return self.api.search(self.feed.resource_type, params).resources

    def whole(self, page_size: int) -> None:
        """The feed in one page: a first page of `page_size`, or one large enough for all that openIMIS counts."""
        first = self.api.search(self.feed.resource_type, {**self.query, "_count": str(page_size)})
        self.read.requests += 1
        if len(first.resources) < page_size and first.next_url is None:
            self.emit(first.resources)
            return
        count = max(first.total or 0, page_size) * BIG_PAGE_START
        while True:
            resources = self.page(count)
            if len(resources) < count:
                self.emit(resources)
                return
            count *= 2

    def narrowed(self, page_size: int) -> None:
        """Pages that fail are read again as two halves, down to single records; returns at the end of the feed."""
        size = 1 << max(0, page_size.bit_length() - 1)  # a power of two, so halves stay aligned to pages
        try:  # how many there are, from a page of one (unless that one is the bad row): fewer halvings
            self.total = self.api.search(self.feed.resource_type, {**self.query, "_count": "1"}).total
            self.read.requests += 1
        except OpenImisFailed:
            self.total = None
        if self.total is not None:
            size = min(size, 1 << max(0, (self.total - 1).bit_length()))
        number = 1
        while True:
            taken = self._part(number - 1, size)
            if taken < size or (self.total is not None and number * size >= self.total):
                return
            number += 1

    def _part(self, index: int, size: int) -> int:
        """Read positions [index*size, (index+1)*size); returns how many positions it held (size when full)."""
        try:
            resources = self.page(size, index + 1)
        except OpenImisFailed as exc:
            if exc.status == 404:  # "Invalid page.": past the end
                return 0
            if exc.status != 500:
                raise
            if size == 1:
                self.bad.append((index + 1, str(exc)))
                self.streak += 1
                if self.streak >= MAX_BAD:
                    # Not one bad row: openIMIS fails every page of this feed (its database gone, say).
                    raise OpenImisUnavailable(f"openIMIS fails every page of {self.feed.name}: {exc}") from exc
                return 1
            half = size // 2
            first = self._part(index * 2, half)
            if first < half:
                return first
            return half + self._part(index * 2 + 1, half)
        self.streak = 0
        self.emit(resources)
        return len(resources)


def read_feed(
    api: FhirApi,
    feed: Feed,
    last_updated: str | None,
    page_size: int,
    emit: Callable[[dict[str, Any]], None],
    named_elsewhere: Collection[str] = (),
) -> FeedRead:
    """Read one feed, handing each record on once; `named_elsewhere` are ids of this feed that other feeds name,
    asked one by one when some of its records cannot be listed."""
    query = dict(feed.params)
    if last_updated is not None:
        query["_lastUpdated"] = last_updated
    reader = _Reader(api, feed, query, emit)
    try:
        reader.whole(page_size)
    except OpenImisFailed as exc:
        if exc.status != 500:
            raise
        reader.narrowed(page_size)
    if reader.bad:
        recovered = 0
        for rid in sorted(set(named_elsewhere)):
            if f"{feed.resource_type}/{fhir.normalize_key(rid)}" in reader.seen:
                continue
            try:
                resource = api.read(feed.resource_type, rid)
            except OpenImisFailed:
                continue
            reader.read.requests += 1
            reader.emit([resource])
            recovered += 1
        for position, why in reader.bad[recovered:]:
            reader.read.unreadable.append(
                f"{feed.resource_type}: the record openIMIS lists at position {position} of {feed.name} "
                f"could not be read ({why})"
            )
    if reader.total is not None:
        # Pages of an ordering that is not unique may skip a record: what is missing is said, never passed over.
        missing = reader.total - reader.read.count - len(reader.read.unreadable)
        if missing > 0:
            reader.read.unreadable.append(
                f"{feed.resource_type}: openIMIS counts {reader.total} in {feed.name} but {missing} of them could "
                "not be read page by page (its ordering is not unique); a full pull (pull --full) reads them again"
            )
    return reader.read
