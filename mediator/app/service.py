"""Wires the parts of a running mediator: logging, the registration document, the heartbeat, the delivery worker
(with the journal's retention purge) and the spool left by processes that died."""

from __future__ import annotations

import copy
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

from mediator.config.console import LiveSettings
from mediator.config.settings import CHANNEL_FIELDS, CONSOLE_KEYS, Settings, insecure_warnings, load_registration
from mediator.intake.spool import STALE_SECONDS, incoming_dir, remove_stale
from mediator.openhim.core import CoreClient
from mediator.openhim.errors import OpenHimError
from mediator.openhim.heartbeat import Heartbeat, LeaderLock, start_in_thread
from mediator.openhim.status import StatusFile
from mediator.ops import logs

log = logging.getLogger(__name__)


def configure_logging(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)


def warn_insecure(settings: Settings) -> None:
    """Say once, at start, what security the operator turned off (rather than urllib3 on every request)."""
    for warning in insecure_warnings(settings):
        log.warning("%s", warning)
    if settings.openhim_verify_tls is False or settings.dhis2_verify_tls is False:
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


def registration_document(settings: Settings) -> dict[str, Any]:
    """mediator_config.json with this deployment's address and each channel's route credentials filled in."""
    doc = copy.deepcopy(load_registration(settings.config_file))
    for endpoint in doc.get("endpoints", []):
        endpoint["host"] = settings.public_host
        endpoint["port"] = settings.public_port
    by_path = {c.path: c for c in settings.channels}
    for channel_doc in doc.get("defaultChannelConfig", []):
        for route in channel_doc.get("routes", []):
            route["host"] = settings.public_host
            route["port"] = settings.public_port
            channel = by_path.get(route.get("path", ""))
            if channel is not None:
                route["username"] = channel.username
                route["password"] = channel.password
    return doc


def clear_spool(settings: Settings, at_once: bool) -> int:
    """Remove at start the spool files no process is reading any more: the bodies of pushes a process died taking
    in (never kept, never answered, so openIMIS or OpenHIM sends them again), which hold personal data.

    `at_once` (the server's master, before its workers start) removes every one no process has open; a command
    started beside a running server removes only those older than an hour, whatever it can see of other processes."""
    removed = remove_stale(incoming_dir(settings), older_than=0 if at_once else STALE_SECONDS)
    if removed:
        log.info("removed %d spool file(s) left by a process that stopped while taking a push in", removed)
    return removed


def core_client(settings: Settings) -> CoreClient:
    return CoreClient(
        settings.openhim_url,
        settings.openhim_username,
        settings.openhim_password,
        auth_mode=settings.openhim_auth_mode,
        verify=settings.openhim_verify_tls,
    )


def start_heartbeat(settings: Settings, env: Mapping[str, str] | None = None) -> threading.Event | None:
    """Start the registration/heartbeat loop in this process (only one process on the machine will lead)."""
    if not settings.openhim_register:
        log.info("OpenHIM registration is off (MEDIATOR_OPENHIM_REGISTER=false)")
        return None
    if not settings.openhim_password:
        log.warning("OpenHIM registration skipped: MEDIATOR_OPENHIM_PASSWORD is not set")
        return None
    from mediator.journal.store import Journal, default_url, open_engine

    live = LiveSettings(settings, env)
    document = registration_document(settings)
    journal = Journal(open_engine(settings.journal_url or default_url(settings.state_dir)))
    heartbeat = Heartbeat(
        core_client(settings),
        lambda: document,
        on_config=settings_applier(live, journal),
        interval=settings.heartbeat_seconds,
        lock=LeaderLock(Path(settings.state_dir) / "heartbeat.lock"),
        status=StatusFile(Path(settings.state_dir)),
    )
    return start_in_thread(heartbeat)


def settings_applier(live: LiveSettings, journal: Any) -> Callable[[Mapping[str, Any]], Settings]:
    """What the heartbeat does with a console config: publish it to every worker, and chain what it changed (the
    settings' new values: console settings hold no secret) so that auditors see when, say, names began to go."""
    from mediator.journal import chain

    def apply(config: Mapping[str, Any]) -> Settings:
        before, after = live.current(), live.preview(config)
        changed = {
            key: _shown(getattr(after, key)) for key in CONSOLE_KEYS if getattr(before, key) != getattr(after, key)
        }
        if before.channels != after.channels:
            changed["channels"] = [{f: _shown(getattr(c, f)) for f in CHANNEL_FIELDS} for c in after.channels]
        if changed:  # chained before it is in force: a change that could not be chained is tried again
            chain.record(journal.sessions, "settings", {"at": datetime.now(UTC), "changed": changed})
            log.info("console settings changed: %s", ", ".join(sorted(changed)))
        return live.publish(config)

    return apply


def _shown(value: Any) -> Any:
    """A setting's value as the chain keeps it (JSON)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, tuple | list):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    return str(value)


def start_worker(settings: Settings, env: Mapping[str, str] | None = None) -> threading.Event:
    """The delivery worker of this process: delivers what is due, tells OpenHIM when a push is decided, and purges
    the journal of personal data past its retention (at most once an hour, whichever process does it).

    On SQLite one process of the machine delivers (a lock file decides which); on PostgreSQL every process does,
    each taking other pushes.
    """
    from mediator.app.audit import atna_auditor
    from mediator.config.settings import counts_aggregates
    from mediator.delivery.aggregates import send_aggregates
    from mediator.delivery.worker import Deliverer, openhim_update
    from mediator.journal.retention import purge_if_due
    from mediator.journal.store import Journal, default_url, open_engine

    live = LiveSettings(settings, env)
    url = settings.journal_url or default_url(settings.state_dir)
    journal = Journal(open_engine(url))
    deliverer = Deliverer(journal, settings.slice_size)
    lock = None if url.startswith("postgresql") else LeaderLock(Path(settings.state_dir) / "delivery.lock")
    core = core_client(settings) if settings.openhim_register and settings.openhim_password else None
    if core is not None:
        deliverer.auditor = atna_auditor(live, journal, core, load_registration(settings.config_file)["urn"])
    stop = threading.Event()

    def notify(tx: Any, run: Any) -> None:
        if core is not None and tx.openhim_id:
            try:
                core.update_transaction(tx.openhim_id, openhim_update(tx, run))
            except OpenHimError as exc:
                log.warning("OpenHIM transaction %s not updated: %s", tx.openhim_id, exc)

    aggregated_at = 0.0

    def aggregate() -> None:
        nonlocal aggregated_at
        current = live.current()
        if not counts_aggregates(current) or time.monotonic() - aggregated_at < current.aggregate_seconds:
            return
        aggregated_at = time.monotonic()
        run = send_aggregates(journal, lambda exchanges: deliverer.client(current, None, exchanges), current)
        if run is not None and (run.sent or run.rejected or run.failure):
            log.info(
                "aggregates: %d org unit month(s) sent, %d refused%s (push %s)",
                run.sent,
                len(run.rejected),
                f", DHIS2 could not take them: {run.failure}" if run.failure else "",
                run.transaction_id,
            )

    def loop() -> None:
        while not stop.is_set():
            if lock is None or lock.try_acquire():
                try:
                    deliverer.work_once(live.current(), notify)
                except Exception:  # the worker must outlive any one push; the journal keeps what is left
                    log.exception("delivery round failed")
                try:
                    aggregate()
                except Exception:  # what is due stays due; tried again next round
                    log.exception("aggregates round failed")
                try:
                    purge_if_due(journal, settings.personal_data_retention_days)
                except Exception:  # tried again next round; nothing is lost by waiting
                    log.exception("retention purge failed")
            stop.wait(live.current().delivery_seconds)

    threading.Thread(target=loop, name="delivery-worker", daemon=True).start()
    return stop
