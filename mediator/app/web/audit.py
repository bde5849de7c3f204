"""The auditor view (`/audit`): what the mediator did, read from the journal, as plain HTML pages and as JSON, CSV
and JSON Lines (streamed, so an export of any size runs in bounded memory).

Read only by construction: GET routes only, on a database connection that cannot write (`open_read_only`), behind
the auditor's own credentials (not a channel's). It shows what DHIS2 received (keys, UIDs, reasons, redacted call
bodies), never a kept record; an insurance number is looked up through its keyed pseudonym, never stored.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask import session as signed_in
from sqlalchemy.orm import Session

from mediator.app.web.auth import user_allows
from mediator.config.settings import Settings
from mediator.journal import audit
from mediator.journal.numbers import insurees_by_number
from mediator.journal.store import Journal
from mediator.journal.verify import verify

log = logging.getLogger(__name__)
bp = Blueprint("audit", __name__, url_prefix="/audit", template_folder="templates")
REALM = "openIMIS to DHIS2 mediator: auditors"
PUSH_COLUMNS = ("push", "received_at", "answered_at", "channel", "client", "origin", "status", "http_status",
                "openhim_transaction", "received", "records", "dhis2")  # fmt: skip
FORMATS = ("html", "json", "csv", "jsonl")


def _settings() -> Settings:
    return current_app.extensions["live_settings"].current()


def _journal() -> Journal:
    return current_app.extensions["audit_journal"]


@bp.before_request
def _auditors_only() -> Any:
    """The auditor's own credentials: signed in through the login page (a session cookie), or Basic auth on each
    request (scripts, exports); anything else is refused, naming nothing of the journal."""
    if request.endpoint in ("audit.login", "audit.sign_in"):
        return None
    settings = _settings()
    if settings.auditor_password and signed_in.get("auditor") == settings.auditor_username:
        return None
    if user_allows(settings.auditor_username, settings.auditor_password, request.headers.get("Authorization")):
        return None
    if (
        request.method == "GET"
        and "text/html" in request.headers.get("Accept", "")
        and "Authorization" not in request.headers
    ):
        return redirect(url_for("audit.login", next=request.full_path))
    page = render_template("audit/refused.html"), 401, {"WWW-Authenticate": f'Basic realm="{REALM}"'}
    return current_app.make_response(page)


@bp.get("/login")
def login() -> Any:
    return render_template("audit/login.html", refused=False, next=_next())


@bp.post("/login")
def sign_in() -> Any:
    settings = _settings()
    given = (request.form.get("username", ""), request.form.get("password", ""))
    header = "Basic " + base64.b64encode(":".join(given).encode()).decode()
    if not user_allows(settings.auditor_username, settings.auditor_password, header):
        log.warning("auditor sign-in refused (user name %r)", given[0][:64])
        return render_template("audit/login.html", refused=True, next=_next()), 401
    signed_in.clear()
    signed_in["auditor"] = settings.auditor_username
    signed_in.permanent = True
    log.info("auditor %s signed in", settings.auditor_username)
    return redirect(_next())


@bp.get("/logout")
def logout() -> Any:
    signed_in.clear()
    return redirect(url_for("audit.login"))


def _next() -> str:
    """Where to go once signed in: a page of the auditor view, nowhere else."""
    wanted = request.values.get("next", "")
    return (
        wanted
        if wanted.startswith("/audit/") and wanted.isprintable() and "//" not in wanted and "\\" not in wanted
        else url_for("audit.pushes")
    )


MAX_ID = (1 << 31) - 1


def _id(name: str) -> int | None:
    """A row id from the query, or None for one that names no row (not a number, out of range)."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_ID else None


def _value(name: str, default: str = "") -> str:
    """A text from the query or the form; one with a control character names nothing."""
    value = request.values.get(name, default)[:200]
    return value if value.isprintable() else "\ufffd"


def _filter() -> audit.PushFilter:
    args = request.args
    return audit.PushFilter(
        since=_day(args.get("since")), until=_day(args.get("until"), end=True), channel=_value("channel"),
        client=_value("client"), status=_value("status"), origin=_value("origin"),
    )  # fmt: skip


def _day(text: str | None, end: bool = False) -> datetime | None:
    """A day or time from the query, in UTC; `end`: a day alone means up to the end of that day."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if end and len(text) <= 10:
        moment += timedelta(days=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _format() -> str:
    wanted = request.args.get("format", "html")
    return wanted if wanted in FORMATS else "html"


def _console_link(openhim_id: str | None) -> str | None:
    base = _settings().openhim_console_url.rstrip("/")
    return f"{base}/#!/transactions/{openhim_id}" if base and openhim_id else None


@bp.get("/")
def pushes() -> Any:
    wanted, fmt = _filter(), _format()
    if fmt in ("csv", "jsonl"):
        return _stream(fmt, "pushes", lambda s: (p.as_json() for p in audit.all_pushes(s, wanted)), PUSH_COLUMNS)
    before = _id("before")
    with _journal().sessions() as session:
        rows = audit.pushes(session, wanted, before)
    if fmt == "json":
        return {"pushes": [p.as_json() for p in rows], "next_before": rows[-1].id if len(rows) == audit.PAGE else None}
    return render_template("audit/pushes.html", rows=rows, wanted=wanted, link=_console_link, page=audit.PAGE,
                           query=_query_without("before"))  # fmt: skip


@bp.get("/pushes/<int:transaction_id>")
def push(transaction_id: int) -> Any:
    fmt = _format()
    if transaction_id > MAX_ID:
        return render_template("audit/missing.html", what=f"push {transaction_id}"), 404
    if fmt in ("csv", "jsonl"):
        columns = ("id", "record", "status", "uids", "reasons")
        return _stream(fmt, f"push-{transaction_id}-records", lambda s: _all_outcomes(s, transaction_id), columns)
    after = _id("after") or 0
    with _journal().sessions() as session:
        found = audit.push(session, transaction_id)
        if found is None:
            return render_template("audit/missing.html", what=f"push {transaction_id}"), 404
        records = audit.outcomes(session, transaction_id, after)
        calls = audit.calls(session, transaction_id)
        events = audit.events(session, transaction_id)
    if fmt == "json":
        return {"push": found.as_json(), "records": records, "calls": calls, "events": events}
    return render_template("audit/push.html", push=found, records=records, calls=calls, events=events,
                           link=_console_link(found.openhim_id), batch=audit.BATCH)  # fmt: skip


def _all_outcomes(session: Session, transaction_id: int) -> Iterator[dict[str, Any]]:
    after = 0
    while batch := audit.outcomes(session, transaction_id, after):
        yield from batch
        after = batch[-1]["id"]


@bp.get("/records")
@bp.post("/records")  # the form posts: an insurance number stays out of addresses, histories and proxy logs
def record() -> Any:
    kind, key, number = _value("kind", "Patient"), _value("uuid").strip().lower(), ""
    if not key and (number := request.values.get("number", "").strip()[:64]):
        key = insurees_by_number(_journal(), [number]).get(number, "")
    with _journal().sessions() as session:
        versions = audit.history(session, kind, key) if key else []
    if _format() == "json":
        return {"record": f"{kind}/{key}" if key else None, "versions": versions}
    searched = bool(request.values.get("uuid") or request.values.get("number"))
    return render_template("audit/record.html", kind=kind, key=key, versions=versions, searched=searched)


@bp.get("/dead-letters")
def dead_letters() -> Any:
    with _journal().sessions() as session:
        letters = audit.dead_letters(session)
        replays = audit.events(session, kinds=("replay", "resend"))
    if _format() == "json":
        return {"dead_letters": letters, "replays": replays}
    return render_template("audit/dead_letters.html", letters=letters, replays=replays)


@bp.get("/verify")
def check_chain() -> Any:
    found = verify(_journal())
    with _journal().sessions() as session:
        changes = audit.events(session, kinds=("settings",))
    if _format() == "json":
        return {"ok": found.ok, "entries": found.entries, "head": str(found.head), "problem": found.problem,
                "settings_changes": changes}  # fmt: skip
    return render_template("audit/verify.html", found=found, changes=changes)


WRITES = ["POST", "PUT", "PATCH", "DELETE"]


@bp.route("/", methods=WRITES)
@bp.route("/<path:rest>", methods=WRITES)  # the login form posts to its own route
def read_only(rest: str = "") -> Response:
    """Nothing is written through the auditor view."""
    return Response("the auditor view only reads\n", 405, {"Allow": "GET"}, mimetype="text/plain")


def _query_without(name: str) -> str:
    """The page's query without `name` and the format, for links to another page or format of the same list."""
    return urlencode([(k, v) for k, v in request.args.items() if k not in (name, "format") and v])


def _stream(
    fmt: str, name: str, rows: Callable[[Session], Iterable[dict[str, Any]]], columns: tuple[str, ...]
) -> Response:
    journal = _journal()

    def lines() -> Iterator[str]:
        with journal.sessions() as session:
            if fmt == "csv":
                yield _csv_line(columns)
                for row in rows(session):
                    yield _csv_line(tuple(_cell(row.get(c)) for c in columns))
            else:
                for row in rows(session):
                    yield json.dumps(row, separators=(",", ":"), default=str) + "\n"

    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    disposition = f'attachment; filename="{name}.{fmt}"'
    return Response(stream_with_context(lines()), mimetype=mimetype, headers={"Content-Disposition": disposition})


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # not a formula to a spreadsheet


def _csv_line(values: tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()
