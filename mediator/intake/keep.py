"""Taking a push in: the spooled body is read and validated once (mediator.openimis.stream), and its records are
kept in the journal, in their compact form, before anything is sent. The web channels, the pull and the `push`
command all come through here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from mediator.answer.outcomes import Reason, RecordOutcome
from mediator.config.mapping_file import mapping_fingerprint
from mediator.config.settings import ChannelSettings, Settings
from mediator.intake.spool import Spooled, record_spool
from mediator.journal.accept import Accepted, accept
from mediator.journal.finish import decide
from mediator.journal.numbers import pseudonyms
from mediator.journal.store import Journal
from mediator.openimis.reader import Problem
from mediator.openimis.stream import Survey, survey
from mediator.ops import metrics


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
    with record_spool(body) as spool:
        found = survey(body.path, channel.resources, on_read, spool.write, spool.restart)
        found.problems.extend(problems)
        records = found.records
        if not records:
            metrics.count_received((), (), {p.record for p in found.problems})
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
            records=spool.kept(found.labels),
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
        refused, unchanged = {o.record for o in rejected}, set(accepted.unchanged)
        metrics.count_received([r for r in records if r not in refused | unchanged], unchanged, refused)
        return Intake(found, rejected, accepted, held)


def _rejected(found: Survey) -> list[RecordOutcome]:
    """The invalid records of a push that has valid ones: rejected with their reasons, the others still go."""
    grouped: dict[str, list[Reason]] = {}
    for p in found.problems:
        grouped.setdefault(p.record, []).append(Reason(p.field, "", p.message))
    return [RecordOutcome(record, "rejected", {}, reasons) for record, reasons in grouped.items()]
