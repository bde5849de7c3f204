"""`push FILE`: a push taken from a file (an initial load, or what openIMIS exported) as if it came on a channel,
with progress bars for reading, keeping and delivering it. `pushes`: the journal's latest pushes and their counts."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import select
from tqdm import tqdm

from mediator.answer.outcomes import PushResult
from mediator.config.settings import ChannelSettings, Settings
from mediator.delivery.worker import Deliverer
from mediator.intake.keep import take_in
from mediator.intake.spool import Spooled, incoming_dir, spooled
from mediator.journal.finish import progress
from mediator.journal.models import Transaction
from mediator.journal.store import Journal
from mediator.openimis.stream import Survey

log = logging.getLogger(__name__)
DECIDED = ("delivered", "duplicate", "rejected", "superseded", "aggregated")


def push_file(
    journal: Journal,
    settings: Settings,
    path: Path,
    channel_name: str,
    *,
    deliver: bool = False,
    wait: bool = False,
    out: IO[str] | None = None,
    bars: bool = True,
) -> int:
    """Keep the file's push in the journal, then deliver it here (`deliver`) or watch the mediator do it (`wait`).

    Returns the exit status: 0 when everything was delivered, 1 when records were refused or still wait, 2 when
    the push was refused whole.
    """
    out = out or sys.stdout
    channel = settings.channel(channel_name)
    if channel is None:
        names = ", ".join(c.name for c in settings.channels) or "none"
        out.write(f"no channel named {channel_name!r} (channels: {names})\n")
        return 2
    with path.open("rb") as source, spooled(source, incoming_dir(settings)) as body:
        return _push(journal, settings, body, channel, deliver, wait, out, bars)


def _push(
    journal: Journal,
    settings: Settings,
    body: Spooled,
    channel: ChannelSettings,
    deliver: bool,
    wait: bool,
    out: IO[str],
    bars: bool,
) -> int:
    reading = tqdm(desc="read", unit=" resources", disable=not bars, file=sys.stderr)
    keeping = tqdm(desc="kept", unit=" records", disable=not bars, file=sys.stderr)
    with reading, keeping:
        intake = take_in(
            journal,
            body,
            channel,
            settings,
            received_at=datetime.now(UTC),
            client_id="push-command",
            origin="file",
            on_read=lambda n: reading.update(n - reading.n),
            on_kept=lambda n: keeping.update(n - keeping.n),
        )
    found, accepted = intake.survey, intake.accepted
    say_refused(found, out)
    if accepted is None:
        out.write("nothing in the file could be used: the push was not kept\n")
        return 2
    tid = accepted.transaction_id
    total = len(found.records)
    out.write(f"push {tid}: {total} records kept, {len(accepted.unchanged)} unchanged since an earlier push\n")
    return follow(journal, settings, tid, total, deliver, wait, out, bars)


def say_refused(found: Survey, out: IO[str], shown: int = 20) -> None:
    """The first records a push refused on input, with their reasons."""
    for problem in found.problems[:shown]:
        out.write(f"refused: {problem.record}: {problem.field}: {problem.message}\n")
    if len(found.problems) > shown:
        out.write(f"... and {len(found.problems) - shown} more problems (see `pushes`)\n")


def follow(
    journal: Journal,
    settings: Settings,
    tid: int,
    total: int,
    deliver: bool,
    wait: bool,
    out: IO[str],
    bars: bool,
) -> int:
    """Deliver a kept push from here (`deliver`) or watch the mediator deliver it (`wait`), then say how it ended;
    0 when every record is in DHIS2, 1 otherwise."""
    if deliver or wait:
        with tqdm(total=total, desc="delivered", unit=" records", disable=not bars, file=sys.stderr) as bar:

            def advance(_: PushResult | None = None) -> None:
                counts = progress(journal, tid)
                bar.update(sum(counts.get(s, 0) for s in DECIDED) - bar.n)

            advance()
            if deliver:
                Deliverer(journal, settings.slice_size).run(tid, settings, on_slice=advance)
                advance()
            while wait and not deliver and _status(journal, tid) == "Processing":
                time.sleep(1.0)
                advance()
    out.write(f"push {tid}: {_status(journal, tid)}; {_counts(progress(journal, tid))}\n")
    return 0 if _status(journal, tid) == "Successful" else 1


def _counts(counts: dict[str, int]) -> str:
    """Records by state, in the answer's words: a record DHIS2 already had (`duplicate`) is unchanged."""
    named = {("unchanged" if state == "duplicate" else state): n for state, n in counts.items()}
    return ", ".join(f"{state} {n}" for state, n in sorted(named.items()))


def _status(journal: Journal, transaction_id: int) -> str:
    with journal.sessions() as session:
        tx = session.get(Transaction, transaction_id)
        return tx.status if tx is not None else "unknown"


def list_pushes(journal: Journal, last: int, out: IO[str] | None = None) -> None:
    """The latest pushes, newest first: id, time, channel, status and how many records are in each state."""
    out = out or sys.stdout
    with journal.sessions() as session:
        rows = session.scalars(select(Transaction).order_by(Transaction.id.desc()).limit(last)).all()
    for tx in rows:
        counts = _counts(progress(journal, tx.id)) or "no records"
        out.write(f"{tx.id}\t{tx.received_at:%Y-%m-%d %H:%M:%S}\t{tx.channel}\t{tx.status}\t{counts}\n")
