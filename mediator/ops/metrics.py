"""The mediator's counters and histograms, kept by the process that counts: under gunicorn, in files of a directory
that every worker shares (prometheus_client's multiprocess mode), so that a scrape of any worker sums them all.
Labels are kinds, outcomes, channels and DHIS2 endpoints: never a key, a UID or a value of a record.
(What the journal knows is read when scraped: mediator.ops.scrape.)"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import Counter, Histogram, multiprocess, values

from mediator.openimis.schemas import SCHEMAS
from mediator.pids import alive

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

RECEIVED = Counter(
    "mediator_records_received",
    "Records taken in from pushes and pulls, by resource type and outcome (accepted, unchanged, rejected)",
    ["kind", "outcome"],
)
DECIDED = Counter(
    "mediator_records_delivered",
    "Records the delivery decided, by resource type and outcome (delivered, unchanged, rejected, aggregated)",
    ["kind", "outcome"],
)
DELIVERY_RETRIES = Counter(
    "mediator_delivery_retries", "Records put back to wait after DHIS2 could not take them, by resource type", ["kind"]
)
PUSH_SECONDS = Histogram(
    "mediator_push_answer_seconds",
    "From a channel request's arrival to its answer, by channel and HTTP status",
    ["channel", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
DHIS2_SECONDS = Histogram(
    "mediator_dhis2_request_seconds",
    "DHIS2 calls, by method, endpoint (UIDs replaced by {uid}) and HTTP status (`error`: no answer)",
    ["method", "endpoint", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DHIS2_RETRIES = Counter(
    "mediator_dhis2_retries", "DHIS2 calls sent again after an error or a busy answer, by endpoint", ["endpoint"]
)

_UID = re.compile(r"[A-Za-z][A-Za-z0-9]{10}")


def endpoint(path: str) -> str:
    """A DHIS2 path as a label: UIDs (after the first collection) and numbers become placeholders, at most four
    segments are kept."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s][:4]
    return "/" + "/".join(_segment(i, s) for i, s in enumerate(segments))


def _segment(i: int, segment: str) -> str:
    if segment.isdigit():
        return "{n}"
    word = segment.isalpha() and segment.islower()  # `enrollments`, `maintenance`: names, not UIDs
    if i >= 2 and _UID.fullmatch(segment) and not word:
        return "{uid}"
    return segment


def kind_of(record: str) -> str:
    """The resource type of a record label (`Patient/...`) when the mediator knows it; `other` for anything else, so
    that a sender cannot make a new series with each name it makes up."""
    kind = record.partition("/")[0]
    return kind if kind in SCHEMAS else "other"


def count_received(accepted: Iterable[str], unchanged: Iterable[str], rejected: Iterable[str]) -> None:
    for outcome, records in (("accepted", accepted), ("unchanged", unchanged), ("rejected", rejected)):
        for record in records:
            RECEIVED.labels(kind_of(record), outcome).inc()


def use_directory(base: Path) -> Path:
    """Count in files of a folder of `base` of this server's own (its host and master process), made empty: called by
    the server before its workers start. Folders that servers of this host left when they stopped are removed;
    another server sharing the state directory keeps its own."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64]
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for left in base.iterdir():
        named, _, pid = left.name.rpartition("-")
        if left.is_file():  # the files of a version that kept them all in `base`
            left.unlink(missing_ok=True)
        elif named == host and (not pid.isdigit() or not alive(int(pid))):  # not `web-2` when this is `web`
            shutil.rmtree(left, ignore_errors=True)
    directory = base / f"{host}-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    values.ValueClass = values.get_value_class()
    return directory


def process_gone(pid: int) -> None:
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(pid)
