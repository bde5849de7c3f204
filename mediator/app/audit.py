"""The ATNA audit events of a process's deliveries, sent to the OpenHIM core when the `atna_audit` setting is on."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from mediator.answer.outcomes import PushResult
from mediator.config.console import LiveSettings
from mediator.journal.models import Transaction
from mediator.journal.store import Journal
from mediator.openhim.atna import export_event
from mediator.openhim.core import CoreClient

log = logging.getLogger(__name__)


class _Sender:
    """Sends audit events to the core from a thread of its own: a slow or absent core never holds up delivery."""

    def __init__(self, core: CoreClient, size: int = 1000) -> None:
        self.core = core
        self.waiting: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue(maxsize=size)
        self._started = False
        self._lock = threading.Lock()

    def put(self, transaction_id: int, event: dict[str, Any]) -> None:
        with self._lock:
            if not self._started:
                threading.Thread(target=self._run, name="atna-sender", daemon=True).start()
                self._started = True
        try:
            self.waiting.put_nowait((transaction_id, event))
        except queue.Full:
            log.warning(
                "ATNA audit event of push %s dropped: %d events wait for the core", transaction_id, self.waiting.qsize()
            )

    def _run(self) -> None:
        while True:
            transaction_id, event = self.waiting.get()
            try:
                self.core.add_audit(event)
            except Exception as exc:  # logged, not tried again: the journal keeps the delivery itself
                log.warning("ATNA audit event of push %s not kept by the OpenHIM core: %s", transaction_id, exc)


def atna_auditor(live: LiveSettings, journal: Journal, core: CoreClient, urn: str) -> Callable[[int, PushResult], None]:
    """What hears each delivered slice: one audit event for the insurees whose data it sent to DHIS2, sent to the
    core in the background. An event that cannot be made or sent is logged; it never stops a delivery."""
    sender = _Sender(core)

    def audit(transaction_id: int, result: PushResult) -> None:
        try:
            settings = live.current()
            if not settings.atna_audit:
                return
            sent = {
                o.uids["trackedEntity"]
                for o in result.outcomes
                if o.status == "delivered" and "trackedEntity" in o.uids
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
        except Exception as exc:
            log.warning("ATNA audit event of push %s not made: %s", transaction_id, type(exc).__name__)
            return
        sender.put(transaction_id, event)

    return audit
