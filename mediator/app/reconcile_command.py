"""`reconcile`: what the journal says DHIS2 holds, checked against DHIS2, as a summary per kind of record (counts
only, never a record's content); `--resend` sends again what DHIS2 lacks."""

from __future__ import annotations

import logging
import sys
from typing import IO

from mediator.config.mapping_file import dhis2_setup
from mediator.config.settings import Settings
from mediator.delivery.reconcile import KindCount, Presence, Reconciliation, reconcile
from mediator.dhis2.client import Dhis2Client
from mediator.dhis2.errors import Dhis2Error
from mediator.dhis2.version import VersionCache
from mediator.dhis2.writer import choose_writer
from mediator.journal.store import Journal

log = logging.getLogger(__name__)
COLUMNS = ("checked", "present", "missing", "queued again", "next push")


def reconcile_command(
    journal: Journal, client: Dhis2Client, settings: Settings, resend: bool = False, out: IO[str] | None = None
) -> int:
    """0 when DHIS2 holds everything the journal says it does, or `resend` has seen to what it lacks; 1 when DHIS2
    lacks records left as they are, or could not be asked."""
    out = out or sys.stdout
    setup = dhis2_setup(settings)
    try:
        writer = choose_writer(VersionCache().get(client), settings.tracker_api)
        presence = Presence(client, writer, setup.option_sets.values(), setup.tracked_entity_type)
        result = reconcile(journal, presence, resend)
    except Dhis2Error as exc:
        log.error("DHIS2 could not be reconciled with the journal: %s", exc)
        return 1
    out.write(summary(result))
    total = result.total()
    if total.marked:
        out.write(
            f"{total.marked} missing record(s) are no longer kept in the journal: the next time openIMIS sends them "
            "they are delivered, not answered unchanged (openimis-dhis2-mediator pull --full reads everything)\n"
        )
    if total.queued:
        out.write(f"{total.queued} record(s) will be sent again by the delivery worker\n")
    if total.missing and not resend:
        out.write("run reconcile --resend to send what DHIS2 lacks again\n")
    return 1 if total.missing and not resend else 0


def summary(result: Reconciliation) -> str:
    """A table: one line per kind of record, and the total."""
    rows = [(kind, result.kinds[kind]) for kind in sorted(result.kinds)] + [("total", result.total())]
    width = max(len(kind) for kind, _ in rows)
    lines = [f"{'':<{width}}  " + "  ".join(COLUMNS)]
    for kind, count in rows:
        cells = zip(_cells(count), COLUMNS, strict=True)
        lines.append(f"{kind:<{width}}  " + "  ".join(f"{n:>{len(c)}}" for n, c in cells))
    return "\n".join(lines) + "\n"


def _cells(count: KindCount) -> tuple[int, ...]:
    return (count.checked, count.present, count.missing, count.queued, count.marked)
