"""`openimis-dhis2-mediator`: the command line of the mediator."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from mediator import __version__
from mediator.config.settings import DEFAULT_CONFIG_FILE, Settings, SettingsError, build_settings

log = logging.getLogger("mediator")


def _serve(settings: Settings, env: dict[str, str]) -> None:
    from mediator.app.service import start_heartbeat, start_worker
    from mediator.app.serving import serve
    from mediator.app.web.app import create_app, journal_url
    from mediator.config.console import LiveSettings
    from mediator.journal.store import migrate, open_engine
    from mediator.ops import metrics, scrape

    # The journal's schema is brought up to date once, before the workers start.
    url = journal_url(LiveSettings(settings, env))
    engine = open_engine(url)
    migrate(engine)
    engine.dispose()
    # Every worker counts into files of this directory; a scrape of any of them sums them all. Set before anything
    # is counted (the check below counts its DHIS2 calls), so that the workers forked later inherit no count.
    metrics.use_directory(Path(settings.state_dir) / "metrics")
    if settings.dhis2_url:  # said in the log; one attempt, so that a DHIS2 that hangs delays the start little
        _check(settings, strict=False, attempts=1)

    def in_each_worker() -> None:
        start_heartbeat(settings, env)
        start_worker(settings, env)

    def when_ready() -> None:
        if settings.metrics_port:
            scrape.serve_port(settings.metrics_host, settings.metrics_port, url, Path(settings.state_dir))
            log.info("metrics served on %s:%d", settings.metrics_host, settings.metrics_port)

    def load_app() -> Any:
        return create_app(LiveSettings(settings, env), migrate_journal=False)

    serve(settings, load_app, in_each_worker, when_ready)


def _print_registration(settings: Settings) -> None:
    from mediator.app.service import registration_document

    doc = registration_document(settings)
    for channel in doc.get("defaultChannelConfig", []):
        for route in channel.get("routes", []):
            if route.get("password"):
                route["password"] = "**********"  # noqa: S105 (a mask, not a password)
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def _dhis2(settings: Settings, attempts: int | None = None) -> Any:
    from mediator.dhis2.client import Dhis2Client, RetryPolicy, make_auth

    auth = make_auth(settings.dhis2_auth, settings.dhis2_username, settings.dhis2_password, settings.dhis2_token)
    retry = RetryPolicy(attempts=attempts or settings.dhis2_max_attempts)
    return Dhis2Client(settings.dhis2_url, auth, settings.dhis2_verify_tls, settings.dhis2_timeout_seconds, retry=retry)


def _check(settings: Settings, strict: bool, attempts: int | None = None) -> int:
    """Report what DHIS2 lacks; `strict` (the check command) makes problems an error, at start-up a warning."""
    from mediator.config.mapping_file import dhis2_setup, insuree_target
    from mediator.config.settings import counts_aggregates
    from mediator.delivery.setup_check import check_aggregates, check_setup
    from mediator.dhis2.errors import Dhis2Error

    try:
        client = _dhis2(settings, attempts)
        problems = (
            [] if settings.aggregate_only else check_setup(client, dhis2_setup(settings), insuree_target(settings))
        )
        if counts_aggregates(settings):
            problems += check_aggregates(client)
    except Dhis2Error as exc:
        log.log(logging.ERROR if strict else logging.WARNING, "DHIS2 setup not checked: %s", exc)
        return 1
    for problem in problems:
        log.log(logging.ERROR if strict else logging.WARNING, "DHIS2 setup: %s", problem)
    if not problems:
        log.info("DHIS2 has everything the mediator writes into")
    return 1 if problems else 0


def _dead_letters(settings: Settings, do_replay: bool, ids: list[int] | None) -> None:
    from mediator.journal.dead_letters import dead_letters, replay

    journal = _journal(settings)
    if do_replay:
        count = replay(journal, ids, by=f"{getpass.getuser()} (dead-letters --replay)")
        sys.stdout.write(f"{count} record(s) will be sent again by the delivery worker\n")
        return
    for row in dead_letters(journal):
        if ids and row.id not in ids:
            continue
        reasons = "; ".join(f"{r.get('field')} {r.get('code') or ''}: {r.get('message')}" for r in row.reasons)
        sys.stdout.write(f"{row.id}\t{row.updated_at:%Y-%m-%d %H:%M}\t{row.kind}/{row.key}\t{reasons}\n")


def _journal(settings: Settings) -> Any:
    from mediator.journal.store import Journal, default_url

    return Journal.open(settings.journal_url or default_url(settings.state_dir))


def _reconcile(settings: Settings, resend: bool) -> int:
    from mediator.app.reconcile_command import reconcile_command
    from mediator.dhis2.errors import Dhis2Error

    try:
        client = _dhis2(settings)
    except Dhis2Error as exc:
        log.error("DHIS2 could not be reconciled with the journal: %s", exc)
        return 1
    return reconcile_command(_journal(settings), client, settings, resend=resend)


def _bootstrap(settings: Settings, root_name: str) -> int:
    from mediator.config.mapping_file import dhis2_setup
    from mediator.delivery.bootstrap import bootstrap
    from mediator.dhis2.errors import Dhis2Error

    try:
        result = bootstrap(_dhis2(settings), dhis2_setup(settings), root_name)
    except Dhis2Error as exc:
        log.error("bootstrap failed: %s", exc)
        return 1
    stats = ", ".join(f"{k} {v}" for k, v in result.report.stats.items())
    log.info("DHIS2 is set up for the mediator (%s)%s", stats, "; root org unit created" if result.root_created else "")
    return 0


def _aggregates(settings: Settings, periods: list[str], every: bool) -> int:
    from mediator.app.aggregates_command import aggregates_command
    from mediator.dhis2.errors import Dhis2Error

    try:
        _dhis2(settings)
    except Dhis2Error as exc:
        log.error("the aggregates could not be sent: %s", exc)
        return 1

    def client(exchanges: list[Any]) -> Any:
        made = _dhis2(settings)
        made.on_exchange = exchanges.append
        return made

    return aggregates_command(_journal(settings), client, settings, periods, every)


def _verify(settings: Settings, heads: list[str]) -> int:
    from mediator.journal.chain import Head
    from mediator.journal.verify import verify

    try:
        published = [Head.parse(h) for h in heads]
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    start = time.monotonic()
    found = verify(_journal(settings), published)
    took = time.monotonic() - start
    if found.ok:
        sys.stdout.write(f"the journal's chain holds: {found.entries} entries, head {found.head} ({took:.1f} s)\n")
        return 0
    sys.stdout.write(f"the journal's chain is broken: {found.problem}\n")
    return 1


def _settings(config_file: Path, write: bool) -> int:
    from mediator.config import declared

    readme = config_file.parent / "README.md"
    readme_or_none = readme if readme.is_file() else None
    if write:
        for path in declared.write(config_file, readme_or_none):
            sys.stdout.write(f"wrote {path}\n")
        return 0
    stale = declared.stale(config_file, readme_or_none)
    for path in stale:
        sys.stdout.write(f"{path} differs from the declaration of the settings: run `settings --write`\n")
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)  # what the mediator writes (journal, spool, console config, locks) is its user's alone
    parser = argparse.ArgumentParser(prog="openimis-dhis2-mediator", description="openIMIS to DHIS2 OpenHIM mediator")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the mediator (gunicorn), register with OpenHIM and heartbeat")
    sub.add_parser("registration", help="print the registration document sent to OpenHIM (passwords masked)")
    sub.add_parser("check", help="check DHIS2 against the setup the mediator writes into, and report what is missing")
    dead = sub.add_parser("dead-letters", help="list records DHIS2 refused for good; --replay sends them again")
    dead.add_argument("--replay", action="store_true", help="send them again (after fixing the mapping or DHIS2)")
    dead.add_argument("ids", nargs="*", type=int, help="only these (the first column of the list)")
    push = sub.add_parser("push", help="take a push from a FHIR file as if it came on a channel, with progress")
    push.add_argument("file", type=Path, help="a FHIR Bundle or resource (JSON), of any size")
    push.add_argument("--channel", required=True, help="the channel whose resource types and DHIS2 user apply")
    push.add_argument("--deliver", action="store_true", help="deliver it from this command (else the mediator does)")
    push.add_argument("--wait", action="store_true", help="watch until the mediator has delivered it")
    pushes = sub.add_parser("pushes", help="the latest pushes in the journal, with their records by state")
    pushes.add_argument("--last", type=int, default=20, help="how many (default 20)")
    pulling = sub.add_parser(
        "pull", help="read what changed in openIMIS's FHIR API (all of it the first time) into DHIS2"
    )
    pulling.add_argument("--full", action="store_true", help="read everything again (unchanged records are not sent)")
    pulling.add_argument(
        "--no-deliver", action="store_true", help="only keep what was read; the running mediator delivers it"
    )
    subscribing = sub.add_parser(
        "subscribe", help="create (or check) the openIMIS Subscriptions that push insurees and facilities to OpenHIM"
    )
    subscribing.add_argument("--check", action="store_true", help="only say whether they are in place")
    subscribing.add_argument("--insurees-path", default="/openimis/insurees", help="OpenHIM channel for Patients")
    subscribing.add_argument("--facilities-path", default="/openimis/metadata", help="OpenHIM channel for facilities")
    boot = sub.add_parser("bootstrap", help="install into DHIS2 everything the mapping needs (safe to run again)")
    boot.add_argument("--root-name", default="openIMIS", help="name of the root org unit, if it has to be created")
    checking = sub.add_parser(
        "verify", help="check the journal's hash chain and name the first entry changed, removed, added or reordered"
    )
    checking.add_argument(
        "--head", action="append", default=[], metavar="SEQ:HASH",
        help="a head published earlier (the OpenHIM transaction's journal_chain property, or the log)",
    )  # fmt: skip
    rec = sub.add_parser("reconcile", help="check that DHIS2 holds what the journal says it delivered, per kind")
    rec.add_argument("--resend", action="store_true", help="send again what DHIS2 lacks (after a restore or reset)")
    aggregating = sub.add_parser(
        "aggregates", help="send the monthly aggregates to DHIS2 now: the months asked, or the closed months due"
    )
    aggregating.add_argument(
        "--period", action="append", default=[], metavar="YYYY-MM", help="a month to send (again); repeatable"
    )
    aggregating.add_argument("--all", action="store_true", help="every month the journal counts anything in")
    declared = sub.add_parser(
        "settings", help="check that mediator_config.json and the README say what the settings' declaration says"
    )
    declared.add_argument("--write", action="store_true", help="write them from the declaration")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    if args.command == "settings":
        raise SystemExit(_settings(Path(env.get("MEDIATOR_CONFIG_FILE", DEFAULT_CONFIG_FILE)), args.write))
    try:
        settings = build_settings(env)
        from mediator.config.mapping_file import dhis2_setup

        dhis2_setup(settings)  # a mapping file that cannot be used stops the mediator here, not on a push
    except SettingsError as exc:
        sys.stderr.write(f"openimis-dhis2-mediator: settings refused: {exc}\n")
        raise SystemExit(2) from exc

    from mediator.app.service import clear_spool, configure_logging, warn_insecure

    configure_logging(settings)
    if args.command in ("serve", "push", "pull"):
        clear_spool(settings, at_once=args.command == "serve")  # serve: in the master, before any worker spools
    if args.command == "registration":
        _print_registration(settings)
        return
    if args.command == "bootstrap":
        raise SystemExit(_bootstrap(settings, args.root_name))
    if args.command == "check":
        raise SystemExit(_check(settings, strict=True))
    if args.command == "push":
        from mediator.app.push_file import push_file

        if not args.file.is_file():
            sys.stderr.write(f"openimis-dhis2-mediator: no such file: {args.file}\n")
            raise SystemExit(2)
        raise SystemExit(
            push_file(_journal(settings), settings, args.file, args.channel, deliver=args.deliver, wait=args.wait)
        )
    if args.command == "pull":
        from mediator.app.pull_command import pull_command

        raise SystemExit(pull_command(_journal(settings), settings, full=args.full, deliver=not args.no_deliver))
    if args.command == "subscribe":
        from mediator.app.pull_command import subscribe_command

        raise SystemExit(
            subscribe_command(
                settings, insurees_path=args.insurees_path, facilities_path=args.facilities_path, check=args.check
            )
        )
    if args.command == "pushes":
        from mediator.app.push_file import list_pushes

        list_pushes(_journal(settings), args.last)
        return
    if args.command == "dead-letters":
        _dead_letters(settings, args.replay, args.ids or None)
        return
    if args.command == "verify":
        raise SystemExit(_verify(settings, args.head))
    if args.command == "reconcile":
        raise SystemExit(_reconcile(settings, args.resend))
    if args.command == "aggregates":
        raise SystemExit(_aggregates(settings, args.period, args.all))
    warn_insecure(settings)
    _serve(settings, env)


if __name__ == "__main__":
    main()
