"""Turns the body openIMIS sent (one resource or a Bundle of any type) into domain records, problems, and the
resources it holds that DHIS2 has no use for (skipped, which is no error).

Every problem names the record (resource type and key, or its place in the Bundle) and the field.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from marshmallow import ValidationError

from mediator.openimis import compiled, fhir
from mediator.openimis.records import Record
from mediator.openimis.references import resolve
from mediator.openimis.schemas import BUNDLE_SCHEMA, SCHEMAS


@dataclass(frozen=True)
class Problem:
    record: str  # e.g. "Patient/5e1c...", or "Bundle.entry[3]" when the record has no usable key
    field: str  # FHIR path within the record, e.g. "birthDate"
    message: str


@dataclass(frozen=True)
class Skipped:
    """A resource of a type the channel takes that is deliberately not carried to DHIS2 (openIMIS's insurer, served
    as an Organization like the health facilities): neither a record nor a problem."""

    record: str  # e.g. "Organization/openIMIS-Implementation", or "Bundle.entry[3] (Organization)"
    reason: str


@dataclass
class Reading:
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # counted in resource_counts under their resource type
    resource_counts: dict[str, int] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, id) -> key, where they differ


def _flatten(errors: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            name = str(key) if key != "_schema" else ""
            if isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{name}" if path and name else (name or path)
            yield from _flatten(value, sub)
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        for message in errors:
            yield path, message
    elif isinstance(errors, list):
        for i, value in enumerate(errors):
            yield from _flatten(value, f"{path}[{i}]")
    else:
        yield path, str(errors)


def _label(resource: Mapping[str, Any], where: str) -> str:
    kind = resource.get("resourceType")
    kind = kind if isinstance(kind, str) and kind.isalnum() and len(kind) <= 64 else "resource"
    key = fhir.record_key(resource)
    return f"{kind}/{key}" if key else f"{where} ({kind})" if where else kind


@dataclass(frozen=True)
class ResourceRead:
    """What one resource of a push gave: its count bucket, and a record, the problems that stop it, or why it is
    skipped."""

    counted: str  # the resource type it is counted under ("other" for one the channel does not take)
    record: Record | None = None
    problems: tuple[Problem, ...] = ()
    skipped: Skipped | None = None
    alias: tuple[tuple[str, str], str] | None = None  # ((type, id), key) when the id is not the record's key


def read_resource(resource: Any, where: str, accepted: Collection[str]) -> ResourceRead:
    """Validate one resource (a Bundle entry's, or the body's) into a domain record."""
    if not isinstance(resource, Mapping):
        return ResourceRead("other", problems=(Problem(where or "body", "resource", "must be a JSON object"),))
    kind = resource.get("resourceType")
    if not (isinstance(kind, str) and kind in accepted and kind in SCHEMAS):
        allowed = ", ".join(sorted(accepted)) or "none"
        shown = kind if isinstance(kind, str) and kind.isalnum() and len(kind) < 64 else "this resource type"
        problem = Problem(_label(resource, where), "resourceType", f"{shown} is not taken on this channel ({allowed})")
        return ResourceRead("other", problems=(problem,))
    reason = SCHEMAS[kind].not_carried(resource)
    if reason is not None:
        return ResourceRead(kind, skipped=Skipped(_label(resource, where), reason))
    try:
        record = compiled.load(SCHEMAS[kind], resource)
    except RecursionError:
        return ResourceRead(kind, problems=(Problem(_label(resource, where), "extension", "nested too deeply"),))
    except ValidationError as exc:
        label = _label(resource, where)
        problems = tuple(Problem(label, path or "resource", message) for path, message in _flatten(exc.messages))
        return ResourceRead(kind, problems=problems)
    rid = resource.get("id")
    alias = None
    if isinstance(rid, str) and fhir.normalize_key(rid) != record.key:
        alias = ((kind, fhir.normalize_key(rid)), record.key)
    return ResourceRead(kind, record, alias=alias)


class Tally(Protocol):
    problems: list[Problem]
    skipped: list[Skipped]
    resource_counts: dict[str, int]
    aliases: dict[tuple[str, str], str]


def tally(read: ResourceRead, into: Tally) -> None:
    """Count what one resource gave: its type, its problems, why it is skipped, the id it is known by."""
    into.resource_counts[read.counted] = into.resource_counts.get(read.counted, 0) + 1
    into.problems.extend(read.problems)
    if read.skipped is not None:
        into.skipped.append(read.skipped)
    if read.alias is not None:
        into.aliases[read.alias[0]] = read.alias[1]


def _read_resource(resource: Any, where: str, accepted: Collection[str], reading: Reading) -> None:
    read = read_resource(resource, where, accepted)
    tally(read, reading)
    if read.record is not None:
        reading.records.append(read.record)


def read_body(body: bytes, accepted: Collection[str]) -> Reading:
    reading = Reading()
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        reading.problems.append(Problem("body", "body", f"not valid JSON: {exc}"))
        return reading
    except RecursionError:
        reading.problems.append(Problem("body", "body", "JSON nested too deeply"))
        return reading
    return read_document(doc, accepted, reading)


def read_document(doc: Any, accepted: Collection[str], reading: Reading | None = None) -> Reading:
    """Read a parsed FHIR resource or Bundle (as `read_body` does after parsing the JSON)."""
    reading = reading or Reading()
    if not isinstance(doc, Mapping) or "resourceType" not in doc:
        reading.problems.append(Problem("body", "resourceType", "expected a FHIR resource or Bundle"))
        return reading
    if doc["resourceType"] != "Bundle":
        _read_resource(doc, "", accepted, reading)
        return reading
    try:
        bundle = BUNDLE_SCHEMA.load(doc)
    except ValidationError as exc:
        reading.problems.extend(Problem("Bundle", p, m) for p, m in _flatten(exc.messages))
        return reading
    return _read_entries(bundle["entry"], accepted, reading)


def _read_entries(entries: Iterable[Any], accepted: Collection[str], reading: Reading) -> Reading:
    for i, entry in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(entry, Mapping) or "resource" not in entry:
            reading.problems.append(Problem(where, "resource", "each entry needs a resource"))
            continue
        _read_resource(entry["resource"], where, accepted, reading)
    _check_duplicates(reading)
    reading.records = [resolve(r, reading.aliases) for r in reading.records]
    return reading


def _check_duplicates(reading: Reading) -> None:
    """A record sent twice in one Bundle is ambiguous: every copy is refused, once."""
    counts = Counter((record.kind, record.key) for record in reading.records)
    for kind, key in sorted(ident for ident, n in counts.items() if n > 1):
        reading.problems.append(Problem(f"{kind}/{key}", "identifier", "appears more than once in the Bundle"))
    reading.records = [r for r in reading.records if counts[(r.kind, r.key)] == 1]
