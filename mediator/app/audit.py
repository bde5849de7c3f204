"""The ATNA audit events of a process's deliveries, sent to the OpenHIM core when the `atna_audit` setting is on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from mediator.answer.outcomes import PushResult
from mediator.config.console import LiveSettings
from mediator.journal.models import Transaction
from mediator.journal.store import Journal
from mediator.openhim.atna import export_event
from mediator.openhim.core import CoreClient
from mediator.openhim.errors import OpenHimError

log = logging.getLogger(__name__)


def atna_auditor(live: LiveSettings, journal: Journal, core: CoreClient, urn: str) -> Callable[[int, PushResult], None]:
    """What hears each delivered slice: one audit event for the insurees whose data it sent to DHIS2.

    An event the core does not take is logged and not tried again: the journal keeps the delivery itself."""

    def audit(transaction_id: int, result: PushResult) -> None:
        settings = live.current()
        if not settings.atna_audit:
            return
        sent = {
            o.uids["trackedEntity"] for o in result.outcomes if o.status == "delivered" and "trackedEntity" in o.uids
        }
        if not sent:
            return
        with journal.sessions() as session:
            tx = session.get(Transaction, transaction_id)
        event = export_event(
            when=datetime.now(UTC),
            mediator=urn,
            dhis2_host=urlsplit(settings.dhis2_url).hostname or "dhis2",
            client_id=tx.client_id if tx else None,
            openhim_id=tx.openhim_id if tx else None,
            tracked_entities=sorted(sent),
            rejected=result.count("rejected"),
        )
        try:
            core.add_audit(event)
        except OpenHimError as exc:
            log.warning("ATNA audit event of push %s not kept by the OpenHIM core: %s", transaction_id, exc)

    return audit
