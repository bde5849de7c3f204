"""Reads a push from a file without holding it whole: one pass validates every resource into a domain record, handed
over as it is read, and keeps only what deciding the push needs (labels, problems, counts, delivery units).

Bundles are read entry by entry, so a push of 100,000 resources costs the memory of one resource plus a label per
record. A Bundle is first read the fast way (mediator.openimis.scan, which checks as it reads); at anything unusual,
and for a single resource, the body is read the careful way: checked whole (mediator.openimis.wellformed), then read
with ijson. Both give the same resources, and the careful way names what is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import ijson

from mediator.openimis.reader import Problem, Skipped, read_resource, tally
from mediator.openimis.records import Insuree, Record
from mediator.openimis.scan import MISSING, Unusual, bundle_entries
from mediator.openimis.schemas import BUNDLE_SCHEMA
from mediator.openimis.units import Units
from mediator.openimis.wellformed import NotWellFormed, check, check_surrogates

BUNDLE_FIELDS = ("resourceType", "type")


@dataclass
class Survey:
    """What reading a push learnt of it (its records themselves are handed over as they are read)."""

    problems: list[Problem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # not for DHIS2, and no error; counted by resource type
    resource_counts: dict[str, int] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    labels: list[str | None] = field(default_factory=list)  # per resource: the record it is kept as, or None
    units: dict[str, int] = field(default_factory=dict)  # record -> delivery unit
    numbers: dict[str, str] = field(default_factory=dict)  # insuree record -> its insurance number
    bundle: bool = True
    exact_numbers: bool = False  # numbers beyond the fast reader's: read as Python ints and Decimals

    @property
    def records(self) -> list[str]:
        return [label for label in self.labels if label is not None]


class _Unreadable(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _header(file: IO[bytes]) -> tuple[dict[str, Any], str | None]:
    """The top-level scalars of the document and the JSON kind of its `entry` ("start_array" for a list)."""
    header: dict[str, Any] = {}
    entry_kind = None
    events = ijson.parse(file, use_float=False)
    first = next(events, None)
    if first is None or first[1] != "start_map":
        raise _Unreadable(Problem("body", "resourceType", "expected a FHIR resource or Bundle"))
    for prefix, event, value in events:
        if prefix in BUNDLE_FIELDS and event in ("string", "number", "boolean", "null"):
            header[prefix] = value
        elif prefix == "resourceType":
            header["resourceType"] = {}  # not a string: read as a resource, and refused as one
        elif prefix == "entry" and entry_kind is None:
            entry_kind = event
        if entry_kind is not None and all(name in header for name in BUNDLE_FIELDS):
            break  # the usual order (resourceType and type before the entries): no need to read on
    return header, entry_kind


def _resources(path: Path, bundle: bool, exact: bool = False) -> Iterator[tuple[str, Any]]:
    """(where, resource) for each entry of a Bundle, or the one resource of the body: the careful way."""
    with path.open("rb") as file:
        items = ijson.items(file, "entry.item" if bundle else "", use_float=not exact)
        if exact:
            items = (_plain_numbers(item) for item in items)
        if not bundle:
            yield "", next(items)
            return
        for i, entry in enumerate(items):
            where = f"Bundle.entry[{i}]"
            if not isinstance(entry, dict) or "resource" not in entry:
                yield where, MISSING
            else:
                yield where, entry["resource"]


def _plain_header(header: dict[str, Any]) -> bool:
    """Whether what comes before a Bundle's entries is a valid Bundle header, for the fast way."""
    kind = header.get("type")
    if header.get("resourceType") != "Bundle" or type(kind) is not str:
        return False
    return not BUNDLE_SCHEMA.validate({"resourceType": "Bundle", "type": kind, "entry": []})


def _plain_numbers(value: Any) -> Any:
    """Decimals as the fast reader gives them (floats), or as integers when too large for a float: a record must
    not depend on how the body was read (exactly, because some number in it is big, or not)."""
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    if isinstance(value, Decimal):
        number = float(value)
        if number in (float("inf"), float("-inf")):
            return int(value)  # integral: past 10^308, a JSON number has no fraction a float could keep
        return number
    return value


def _open_document(path: Path) -> bool:
    """Check the top of the document; True for a Bundle, False for a single resource."""
    with path.open("rb") as file:
        header, entry_kind = _header(file)
    if "resourceType" not in header:
        raise _Unreadable(Problem("body", "resourceType", "expected a FHIR resource or Bundle"))
    if header["resourceType"] != "Bundle":
        return False
    errors = BUNDLE_SCHEMA.validate({**header, "entry": []})
    if entry_kind not in (None, "start_array"):
        errors["entry"] = ["Not a valid list."]
    if errors:
        raise _Unreadable(Problem("Bundle", next(iter(errors)), str(next(iter(errors.values()))[0])))
    return True


def survey(
    path: Path,
    accepted: Collection[str],
    on_read: Callable[[int], None] | None = None,
    on_record: Callable[[int, Record], None] | None = None,
    on_restart: Callable[[], None] | None = None,
) -> Survey:
    """The one pass that reads and validates the push: count, and decide which records it keeps.

    `on_record(position, record)` hears each record read (a record later found twice in the Bundle is heard too:
    `labels[position]` is None for it once the pass is over); `on_read(n)` hears every thousandth resource read.
    `on_restart()` hears that the fast way gave up: what was heard so far is heard again, the careful way."""
    try:
        return _survey(path, accepted, on_read, on_record, fast=True)
    except Unusual:
        if on_restart is not None:
            on_restart()
        return _survey(path, accepted, on_read, on_record, fast=False)


def _survey(
    path: Path,
    accepted: Collection[str],
    on_read: Callable[[int], None] | None,
    on_record: Callable[[int, Record], None] | None,
    fast: bool,
) -> Survey:
    result = Survey()
    try:
        if fast:
            check_surrogates(path)
            resources = bundle_entries(path, _plain_header)
        else:
            result.exact_numbers = check(path).big_numbers
            result.bundle = _open_document(path)
            resources = _resources(path, result.bundle, result.exact_numbers)
        units = Units()
        for position, (where, resource) in enumerate(resources):
            if resource is MISSING:
                result.problems.append(Problem(where, "resource", "each entry needs a resource"))
                result.labels.append(None)
                continue
            if on_read is not None and position % 1000 == 999:
                on_read(position + 1)
            read = read_resource(resource, where, accepted)
            tally(read, result)
            if read.record is None:
                result.labels.append(None)
                continue
            label = f"{read.record.kind}/{read.record.key}"
            result.labels.append(label)
            units.add(label, position, read.record)
            if on_record is not None:
                on_record(position, read.record)
            if isinstance(read.record, Insuree) and read.record.insurance_number:
                result.numbers[label] = read.record.insurance_number
        if result.bundle and not result.labels:
            raise _Unreadable(Problem("Bundle", "entry", "the Bundle has no entries: nothing to take"))
    except (_Unreadable, NotWellFormed) as exc:
        return Survey(problems=[exc.problem])
    except (ijson.JSONError, UnicodeDecodeError, ValueError) as exc:
        # The parser's own message quotes the body around the fault: it may hold personal data, so it is not shown.
        return Survey(problems=[Problem("body", "body", f"not valid JSON ({type(exc).__name__})")])
    for (kind, rid), key in result.aliases.items():
        units.alias(kind, rid, key)
    _drop_duplicates(result)
    assigned = units.assign()
    result.units = {label: assigned[label] for label in result.labels if label is not None}
    return result


def _drop_duplicates(result: Survey) -> None:
    """A record sent twice in one Bundle is ambiguous: every copy is refused, once."""
    counts = Counter(label for label in result.labels if label is not None)
    twice = sorted(label for label, n in counts.items() if n > 1)
    for label in twice:
        result.problems.append(Problem(label, "identifier", "appears more than once in the Bundle"))
    if twice:
        refused = set(twice)
        result.labels = [None if label in refused else label for label in result.labels]
        result.numbers = {label: n for label, n in result.numbers.items() if label not in refused}
