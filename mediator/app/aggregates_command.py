"""`openimis-dhis2-mediator aggregates`: send the monthly aggregates now, for the months asked or what is due."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from mediator.aggregates.contributions import month_text, parse_month
from mediator.config.settings import Settings, counts_aggregates
from mediator.delivery.aggregates import send_aggregates, unit_label
from mediator.journal import aggregates as jagg
from mediator.journal.store import Journal


def months_asked(periods: Iterable[str]) -> list[int]:
    """`2024-05` or `202405` -> months; raises ValueError naming a period that is neither."""
    found = []
    for text in periods:
        digits = text.replace("-", "")
        if len(digits) != 6 or not digits.isdigit() or not 1 <= int(digits[4:]) <= 12:
            raise ValueError(f"period {text!r} is not a month (YYYY-MM)")
        found.append(parse_month(f"{digits[:4]}-{digits[4:]}"))
    return found


def aggregates_command(
    journal: Journal, client: Any, settings: Settings, periods: list[str], every: bool, out: TextIO = sys.stdout
) -> int:
    if not counts_aggregates(settings):
        out.write("the monthly aggregates are off: set MEDIATOR_AGGREGATES=true (or aggregate-only mode)\n")
        return 2
    try:
        months: list[int] | None = months_asked(periods) if periods else None
    except ValueError as exc:
        out.write(f"{exc}\n")
        return 2
    if every:
        with journal.sessions() as session:
            months = jagg.months_known(session)
    run = send_aggregates(journal, client, settings, months)
    if run is None:
        out.write("another process of this journal is sending the aggregates; try again when it is done\n")
        return 1
    asked = ", ".join(month_text(m) for m in months) if months else "the closed months due"
    out.write(
        f"{asked}: {run.sent} org unit month(s) sent, {run.values} value(s) imported or updated, "
        f"{run.deleted} deleted, {len(run.rejected)} refused (push {run.transaction_id or '-'})\n"
    )
    said = {label for label, _ in run.rejected}
    for label, reasons in run.rejected:
        out.write(f"  refused {label}: {'; '.join(reasons[:3])}\n")
    with journal.sessions() as session:
        for reason, count in sorted(jagg.unplaced(session).items()):
            out.write(f"  not counted yet: {count} record(s): {reason}\n")
        waiting = [(unit, reasons) for unit, reasons in jagg.dead_letters(session) if unit_label(unit) not in said]
    for unit, reasons in waiting:
        out.write(f"  still refused since an earlier run: {unit_label(unit)}: {'; '.join(map(str, reasons[:3]))}\n")
    if run.failure:
        out.write(f"DHIS2 could not take them: {run.failure}; they stay due\n")
        return 1
    return 1 if run.rejected else 0
