"""`pull`: what changed in openIMIS (everything, the first time) taken in and delivered from the command line, with
progress bars and a summary. `subscribe`: the openIMIS Subscriptions that push insurees and facilities as they
change."""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm

from mediator.app.push_file import follow, say_refused
from mediator.config.settings import Settings
from mediator.intake.pull import FeedReport, openimis_api, pull, source_of
from mediator.journal.pulls import PullRunning, forget
from mediator.journal.store import Journal
from mediator.openimis.api import OpenImisError
from mediator.openimis.subscriptions import basic_header, subscribe, wanted


def pull_command(
    journal: Journal,
    settings: Settings,
    *,
    full: bool = False,
    deliver: bool = True,
    out: IO[str] | None = None,
    bars: bool = True,
) -> int:
    """0 when everything read is in DHIS2, 1 when records were refused, still wait, or openIMIS stopped the pull;
    2 when the pull could not start."""
    out = out or sys.stdout
    channel = next((c for c in settings.channels if c.pulls), None)
    if channel is None:
        out.write('no channel pulls from openIMIS: add one with "pulls": true to the channels setting\n')
        return 2
    if not settings.openimis_url:
        out.write("openIMIS is not configured: set MEDIATOR_OPENIMIS_URL, _USERNAME and _PASSWORD\n")
        return 2
    if full:
        forget(journal, source_of(settings))
    reading = tqdm(desc="read from openIMIS", unit=" resources", disable=not bars, file=sys.stderr)

    def heard(report: FeedReport) -> None:
        since = f" ({report.filter})" if report.filter else ""
        reading.write(f"{report.feed}{since}: {report.read.count} read in {report.read.requests} request(s)")

    try:
        with reading:
            result = pull(
                journal,
                settings,
                channel,
                full=full,
                client_id="pull-command",
                on_feed=heard,
                on_resource=lambda n: reading.update(n - reading.n),
            )
    except PullRunning as exc:
        out.write(f"{exc}\n")
        return 2
    if result.failure is not None:
        out.write(
            f"openIMIS stopped the pull while {result.failed_feed or 'logging in'} was read: {result.failure}\n"
            "what was read before is kept; the next pull reads the rest\n"
        )
    intake = result.intake
    if intake is None:
        out.write("nothing changed in openIMIS since the last pull\n" if result.failure is None else "")
        return 0 if result.failure is None else 1
    found, accepted = intake.survey, intake.accepted
    say_refused(found, out)  # records openIMIS could not serve among them
    if accepted is None:
        out.write("nothing read could be used: the pull was not kept\n")
        return 1
    tid = accepted.transaction_id
    out.write(
        f"push {tid}: {result.resources} resources read, {len(found.records)} records kept, "
        f"{len(accepted.unchanged)} unchanged since an earlier push\n"
    )
    status = follow(journal, settings, tid, len(found.records), deliver, False, out, bars)
    return 1 if result.failure is not None else status


def subscribe_command(
    settings: Settings,
    *,
    insurees_path: str,
    facilities_path: str,
    check: bool = False,
    out: IO[str] | None = None,
) -> int:
    """0 when every subscription is in place (or was made so), 1 when a check found one missing, 2 on error."""
    out = out or sys.stdout
    missing = [
        name
        for name, value in (
            ("MEDIATOR_OPENIMIS_URL", settings.openimis_url),
            ("MEDIATOR_OPENHIM_ROUTER_URL", settings.openhim_router_url),
            ("MEDIATOR_SUBSCRIPTION_CLIENT_ID", settings.subscription_client_id),
            ("MEDIATOR_SUBSCRIPTION_CLIENT_PASSWORD", settings.subscription_client_password),
        )
        if not value
    ]
    if missing:
        out.write(f"not set: {', '.join(missing)}\n")
        return 2
    wants = wanted(settings.openhim_router_url, insurees_path, facilities_path)
    header = basic_header(settings.subscription_client_id, settings.subscription_client_password)
    try:
        outcomes = subscribe(openimis_api(settings), wants, header, check=check)
    except OpenImisError as exc:
        out.write(f"openIMIS: {exc}\n")
        return 2
    for outcome in outcomes:
        out.write(f"{outcome.criteria} -> {outcome.endpoint}: {outcome.action}\n")
    return 1 if any(o.action == "missing" for o in outcomes) else 0
