"""Taking a push in: the body is spooled to a file, read in two passes (mediator.openimis.stream) and kept in the
journal before anything is sent. The web channels and the `push` command both come through here."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mediator.journal.numbers import pseudonyms
from mediator.journal.queue import Accepted, accept, decide
from mediator.journal.store import Journal
from mediator.openimis.reader import Problem
from mediator.openimis.stream import Survey, kept_resources, survey
from mediator.outcomes import Reason, RecordOutcome
from mediator.settings import ChannelSettings, Settings
from mediator.targets import mapping_fingerprint

READ_SIZE = 1 << 20
STALE_SECONDS = 3600


@dataclass(frozen=True)
class Spooled:
    path: Path
    sha256: str
    size: int


def incoming_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "incoming"


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@contextmanager
def spooled(stream: Readable, directory: Path) -> Iterator[Spooled]:
    """Copy a request body to a private file (it holds personal data), hashing it on the way; removed after."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="push-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            while chunk := stream.read(READ_SIZE):
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
        # Held open while the push is taken in: a process starting beside this one sees the file in use.
        with open(name, "rb"):
            yield Spooled(Path(name), digest.hexdigest(), size)
    finally:
        Path(name).unlink(missing_ok=True)


def remove_stale(directory: Path, now: float | None = None, older_than: float = STALE_SECONDS) -> int:
    """Remove the spool files left by a process that died while reading a push (never kept: that push was not
    answered); they hold personal data.

    A file is left behind when it was last written more than `older_than` seconds ago and no process of this machine
    has it open (a push or pull command may be spooling beside the server). Where open files cannot be seen (no
    /proc), a file is taken for left behind only after STALE_SECONDS, whatever `older_than` says."""
    now = now or time.time()
    candidates = list(directory.glob("push-*.json"))
    if not candidates:
        return 0
    in_use = _open_files()
    if in_use is None:
        older_than = max(older_than, STALE_SECONDS)
    removed = 0
    for path in candidates:
        try:
            if now - path.stat().st_mtime >= older_than and str(path.resolve()) not in (in_use or ()):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _open_files() -> set[str] | None:
    """The files that the processes of this machine we may look at have open (Linux's /proc); None where unknown."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    found: set[str] = set()
    for fds in proc.glob("[0-9]*/fd"):
        try:
            links = list(fds.iterdir())
        except OSError:  # another user's process, or one that just ended
            continue
        for link in links:
            try:
                found.add(os.readlink(link))
            except OSError:
                continue
    return found


@dataclass(frozen=True)
class Intake:
    survey: Survey
    rejected: list[RecordOutcome]  # invalid records of a push that has valid ones
    accepted: Accepted | None  # None when nothing in the push was usable: it is refused whole
    held: str | None = None  # the holder its records are kept for, when the caller is to deliver them now


def take_in(
    journal: Journal,
    body: Spooled,
    channel: ChannelSettings,
    settings: Settings,
    *,
    received_at: datetime,
    openhim_id: str | None = None,
    client_id: str | None = None,
    holder: str | None = None,
    origin: str = "channel",
    problems: Sequence[Problem] = (),
    on_read: Callable[[int], None] | None = None,
    on_kept: Callable[[int], None] | None = None,
) -> Intake:
    """Read the push and keep it in the journal; `on_read`/`on_kept` hear the resources read and records kept.

    `holder` keeps the records claimed for the caller when it will deliver them itself, if the push has at most
    `inline_limit` records (`Intake.held` says whether it does). `problems` are records the sender could not give
    (a pull's unreadable rows): rejected with the push's own. `origin` says where the push came from."""
    found = survey(body.path, channel.resources, on_read)
    found.problems.extend(problems)
    records = found.records
    if not records:
        return Intake(found, [], None)
    held = holder if holder and len(records) <= settings.inline_limit else None
    rejected = _rejected(found)
    digests = pseudonyms(journal, found.numbers.values())
    accepted = accept(
        journal,
        channel=channel.name,
        openhim_id=openhim_id,
        client_id=client_id,
        received_at=received_at,
        body_sha256=body.sha256,
        received=found.resource_counts,
        resources=kept_resources(body.path, found),
        rejected=[(o.record, [asdict(r) for r in o.reasons]) for o in rejected],
        units=found.units,
        aliases=found.aliases,
        mapping=mapping_fingerprint(settings, channel),
        numbers={digests[n]: label.split("/", 1)[1] for label, n in found.numbers.items()},
        origin=origin,
        holder=held,
        on_progress=on_kept,
    )
    if not accepted.pending:
        decide(journal, accepted.transaction_id)  # nothing to send (all unchanged): decided now, not by a worker
    return Intake(found, rejected, accepted, held)


def _rejected(found: Survey) -> list[RecordOutcome]:
    """The invalid records of a push that has valid ones: rejected with their reasons, the others still go."""
    grouped: dict[str, list[Reason]] = {}
    for p in found.problems:
        grouped.setdefault(p.record, []).append(Reason(p.field, "", p.message))
    return [RecordOutcome(record, "rejected", {}, reasons) for record, reasons in grouped.items()]
