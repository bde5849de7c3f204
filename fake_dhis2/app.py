"""HTTP face of the fake DHIS2: the Web API endpoints the mediator touches, with DHIS2's status codes."""

from __future__ import annotations

import base64
import hmac
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, jsonify, request

from fake_dhis2.aggregate import AdxRefused, adx_values, import_values, option_combos, update_option_combos
from fake_dhis2.legacy import legacy_enrollment_doc, legacy_event_doc, run_legacy
from fake_dhis2.lists import LEGACY_LISTS, TRACKER_LISTS, legacy_list, metadata_list, tracker_list
from fake_dhis2.store import METADATA_TYPES, Store, change_collection, import_metadata
from fake_dhis2.tracker import MalformedRequest, flatten, malformed_uids, run_import


def version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


@dataclass
class FakeDhis2:
    """One fake DHIS2 instance: its version, its users, its data, and the async jobs it is running."""

    version: str = "2.40.3"
    users: dict[str, str] = field(default_factory=lambda: {"admin": "district"})
    tokens: set[str] = field(default_factory=set)
    store: Store = field(default_factory=Store)
    job_delay: float = 0.05
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests_seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # (method, path, user the request was served as, user of the session cookie it carried or None)
    calls: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    writers: dict[str, set[str]] = field(default_factory=dict)  # tracked entity UID -> users that sent it
    # JSESSIONID -> (user, password at login): a session lasts while its user keeps that password
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Fault switches, for tests that check the mediator survives what production DHIS2s do.
    delay: float = 0.0  # seconds added to every data import
    fail_next: int = 0  # the next N requests answer 503
    drop_next: int = 0  # the next N requests lose their connection without an answer
    drop_after_next: int = 0  # the next N requests are carried out, then lose their connection before the answer
    # the next N data value imports fail whole as DHIS2 does on an internal error: status ERROR, no conflict
    import_error_next: int = 0
    fault_paths: tuple[str, ...] = (
        "/api/tracker",
        "/api/trackedEntityInstances",
        "/api/enrollments",
        "/api/events",
        "/api/dataValueSets",
    )

    def restart(self) -> None:
        """What a DHIS2 restart does to the fake: async jobs, kept in memory, are gone."""
        self.jobs.clear()

    @property
    def v(self) -> tuple[int, int]:
        return version_tuple(self.version)

    def session_user(self, cookie: str | None) -> str | None:
        user, password = self.sessions.get(cookie or "", ("", ""))
        return user if user and self.users.get(user) == password else None

    def authenticate(self, header: str | None, cookie: str | None) -> tuple[str | None, bool]:
        """(the user a request is served as, or None; whether it opens a new session).

        As DHIS2's Spring Security does: a valid session cookie stands for its user, and Basic credentials naming
        that same user are not checked again (so a session must never outlive the credentials it was opened with
        on the client's side); credentials of another user are checked and open a session of their own.
        """
        in_session = self.session_user(cookie)
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "apitoken":
            ok = self.v >= (2, 37) and any(hmac.compare_digest(value, t) for t in self.tokens)
            return ("token" if ok else None), False
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None, False
            if in_session is not None and user == in_session:
                return user, False
            expected = self.users.get(user)
            ok = expected is not None and hmac.compare_digest(password, expected)
            return (user if ok else None), ok
        return in_session, False

    def open_session(self, user: str) -> str:
        cookie = uuid.uuid4().hex
        self.sessions[cookie] = (user, self.users[user])
        return cookie

    def is_sync(self, params: dict[str, str]) -> bool:
        raw = params.get("async")
        if raw is None:
            return False  # async is the default
        # 2.36-2.40 parse the parameter case-sensitively: only "false" turns async off.
        return raw == "false" if self.v < (2, 41) else raw.lower() == "false"

    def start_job(self, payload: Any, params: dict[str, str]) -> str:
        job_id = uuid.uuid4().hex[:11]
        job: dict[str, Any] = {"notifications": [], "report": None}
        self.jobs[job_id] = job

        def work() -> None:
            job["notifications"].insert(0, _note("Import started", False))
            try:
                job["report"] = run_import(self.store, payload, params)
            except MalformedRequest as exc:
                job["report"] = {"status": "ERROR", "message": str(exc), "stats": {}}
            job["notifications"].insert(0, _note("Import complete", True))

        timer = threading.Timer(self.job_delay, work)
        timer.daemon = True
        timer.start()
        return job_id


def _note(message: str, completed: bool) -> dict[str, Any]:
    return {"message": message, "completed": completed, "level": "INFO", "time": datetime.now(UTC).isoformat()}


def _web_message(status: int, message: str, response: Any = None) -> tuple[Response, int]:
    doc: dict[str, Any] = {
        "httpStatus": {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}.get(
            status, str(status)
        ),
        "httpStatusCode": status,
        "status": "OK" if status < 400 else "ERROR",
        "message": message,
    }
    if response is not None:
        doc["response"] = response
        if response.get("status") == "WARNING":
            doc["status"] = "WARNING"  # an import that took some of what it was sent
    return jsonify(doc), status


def create_app(fake: FakeDhis2) -> Flask:
    app = Flask("fake_dhis2")
    app.extensions["fake_dhis2"] = fake

    @app.post("/__fake__/faults")
    def faults() -> Any:
        """Test control of a fake running in another process: set fault switches (never part of DHIS2's API)."""
        wanted = request.get_json(silent=True) or {}
        for name in ("delay", "fail_next", "drop_next", "drop_after_next", "import_error_next"):
            if name in wanted:
                setattr(fake, name, wanted[name])
        return jsonify({"tracked_entities": len(fake.store.tracked_entities), "events": len(fake.store.events)})

    @app.before_request
    def _auth() -> Any:
        if request.path == "/__fake__/faults":
            return None
        fake.requests_seen.append((request.method, request.path, dict(request.args)))
        if request.path.startswith(fake.fault_paths):
            if fake.delay:
                time.sleep(fake.delay)
            if fake.drop_next > 0:
                fake.drop_next -= 1
                sock = request.environ.get("werkzeug.socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
                return Response(status=500)
            if fake.fail_next > 0:
                fake.fail_next -= 1
                return _web_message(503, "Service Unavailable")
        cookie = request.cookies.get("JSESSIONID")
        user, opens = fake.authenticate(request.headers.get("Authorization"), cookie)
        if user is None:
            return _web_message(401, "Unauthorized")
        fake.calls.append((request.method, request.path, user, fake.session_user(cookie)))
        g.user = user
        g.new_session = fake.open_session(user) if opens else None
        if request.path.startswith("/api/tracker") and fake.v < (2, 36):
            return _web_message(404, "Not Found")  # the tracker API (imports and reads) arrived in 2.36
        return None

    def legacy(kind: str) -> Any:
        if fake.v >= (2, 42):
            return _web_message(404, "Not Found")  # the legacy tracker API was removed in 2.42
        strategy = request.args.get("strategy") or request.args.get("importStrategy") or "CREATE_AND_UPDATE"
        merge = request.args.get("mergeDataValues", "false").lower() == "true"
        try:
            summaries = run_legacy(fake.store, kind, request.get_json(silent=True), strategy, merge)
        except MalformedRequest as exc:
            return _web_message(400 if fake.v >= (2, 40) else 409, str(exc))
        if summaries["status"] == "ERROR":
            return _web_message(409, "An error occurred, please check import summary.", summaries)
        return _web_message(200, "Import was successful.", summaries)

    @app.after_request
    def _drop_answer(response: Response) -> Response:
        if g.get("new_session"):
            response.set_cookie("JSESSIONID", g.new_session, httponly=True, path="/")
        if fake.drop_after_next > 0 and request.path.startswith(fake.fault_paths) and request.method == "POST":
            fake.drop_after_next -= 1
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        return response

    for kind in ("trackedEntityInstances", "enrollments", "events"):
        app.add_url_rule(f"/api/{kind}", f"legacy_{kind}", lambda kind=kind: legacy(kind), methods=["POST"])

    def answer(found: tuple[int, dict[str, Any]]) -> Any:
        status, doc = found
        return jsonify(doc), status

    for api, prefix, kinds, lister in (
        ("legacy", "/api", LEGACY_LISTS, legacy_list),
        ("tracker", "/api/tracker", TRACKER_LISTS, tracker_list),
    ):
        for kind in kinds:
            app.add_url_rule(
                f"{prefix}/{kind}",
                f"{api}_{kind}_list",
                lambda kind=kind, lister=lister: answer(lister(fake.store, kind, request.args, fake.v)),
                methods=["GET"],
            )

    @app.get("/api/categoryOptionCombos")
    def category_option_combos() -> Any:
        return jsonify(option_combos(fake.store, request.args))

    @app.post("/api/maintenance/categoryOptionComboUpdate")
    def category_option_combo_update() -> Any:
        update_option_combos(fake.store)
        return _web_message(200, "Import was successful.") if fake.v >= (2, 38) else ("", 204)

    @app.post("/api/dataValueSets")
    def data_value_sets() -> Any:
        strategy = request.args.get("importStrategy", "CREATE_AND_UPDATE").upper()
        if fake.import_error_next > 0:
            fake.import_error_next -= 1
            failed = {
                "responseType": "ImportSummary",
                "status": "ERROR",
                "description": "The import process failed: Failed to flush BatchHandler",
                "importCount": {"imported": 0, "updated": 0, "ignored": 0, "deleted": 0},
                "conflicts": [],
            }
            return (jsonify(failed), 200) if fake.v < (2, 38) else _web_message(409, "An error occurred.", failed)
        if request.mimetype == "application/adx+xml":
            try:
                values, data_set = adx_values(fake.store, request.get_data(), request.args)
            except AdxRefused as exc:
                return _web_message(409, str(exc))
        else:
            payload = request.get_json(silent=True)
            if not isinstance(payload, dict) or not isinstance(payload.get("dataValues", []), list):
                return _web_message(400, "Request body is not valid JSON")
            values = [v for v in payload.get("dataValues") or [] if isinstance(v, dict)]
            data_set = payload.get("dataSet")
        summary = import_values(fake.store, values, strategy, data_set)
        if fake.v < (2, 38):
            return jsonify(summary), 200
        if summary["status"] == "SUCCESS":
            return _web_message(200, "Import was successful.", summary)
        return _web_message(409, "One more conflicts encountered, please check import summary.", summary)

    @app.get("/api/<collection>")
    def metadata_objects(collection: str) -> Any:
        return answer(metadata_list(fake.store, collection, request.args))

    def legacy_read(find: Any, missing: str, uid: str) -> Any:
        if fake.v >= (2, 42):
            return _web_message(404, "Not Found")
        with fake.store.lock:
            found = find(fake.store, uid)
        if found is None:
            return _web_message(404, missing.format(uid=uid))
        return jsonify(found)

    for kind, find, missing in (
        ("enrollments", legacy_enrollment_doc, "Enrollment not found for uid: {uid}"),
        ("events", legacy_event_doc, "Event not found for ID {uid}"),
    ):
        app.add_url_rule(
            f"/api/{kind}/<uid>",
            f"legacy_{kind}_read",
            lambda uid, find=find, missing=missing: legacy_read(find, missing, uid),
            methods=["GET"],
        )

    @app.get("/api/system/info")
    def system_info() -> Any:
        return jsonify({"version": fake.version, "revision": "fake", "serverDate": datetime.now(UTC).isoformat()})

    @app.post("/api/metadata")
    def metadata() -> Any:
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _web_message(400, "Request body is not valid JSON")
        strategy = request.args.get("importStrategy", "CREATE_AND_UPDATE").upper()
        atomic = request.args.get("atomicMode", "ALL").upper()
        report = import_metadata(fake.store, payload, strategy, atomic)
        status = 200 if report["status"] == "OK" else 409
        if fake.v >= (2, 38):
            return _web_message(
                status, "Import was successful." if status == 200 else "One or more errors occurred", report
            )
        return jsonify(report), status

    @app.post("/api/tracker")
    def tracker() -> Any:
        params = {k: v for k, v in request.args.items()}
        payload = request.get_json(silent=True)
        if isinstance(payload, dict):
            for te in payload.get("trackedEntities") or []:
                if isinstance(te, dict):
                    fake.writers.setdefault(str(te.get("trackedEntity")), set()).add(g.user)
        try:
            if payload is None:
                raise MalformedRequest("Request body is not valid JSON")
            objects = flatten(payload)
            bad = malformed_uids(objects)
            if bad and fake.v >= (2, 42):
                raise MalformedRequest(f"Invalid UID `{bad[0]}`")
        except MalformedRequest as exc:
            if fake.v >= (2, 40):
                return _web_message(400, str(exc))
            return _web_message(409, str(exc))
        if not fake.is_sync(params):
            job_id = fake.start_job(payload, params)
            location = f"{request.host_url.rstrip('/')}/api/tracker/jobs/{job_id}"
            return _web_message(
                200, "Tracker job added", {"id": job_id, "location": location, "jobType": "TRACKER_IMPORT_JOB"}
            )
        try:
            report = run_import(fake.store, payload, params)
        except MalformedRequest as exc:
            return _web_message(400 if fake.v >= (2, 40) else 409, str(exc))
        return jsonify(report), (409 if report["status"] == "ERROR" else 200)

    @app.get("/api/tracker/jobs/<job_id>")
    def job(job_id: str) -> Any:
        found = fake.jobs.get(job_id)
        # Like DHIS2, an unknown (or forgotten) job has simply no notifications; only its report is 404.
        return jsonify(found["notifications"] if found else [])

    @app.get("/api/tracker/jobs/<job_id>/report")
    def job_report(job_id: str) -> Any:
        found = fake.jobs.get(job_id)
        if found is None or found["report"] is None:
            return _web_message(404, f"Report for job `{job_id}` not found")
        return jsonify(found["report"])

    @app.get("/api/tracker/trackedEntities/<uid>")
    def tracked_entity(uid: str) -> Any:
        with fake.store.lock:
            te = fake.store.tracked_entities.get(uid)
            if te is None:
                return _web_message(404, f"TrackedEntity with id {uid} could not be found.")
            enrollments = [dict(e) for e in fake.store.enrollments.values() if e["trackedEntity"] == uid]
            return jsonify(
                {
                    "trackedEntity": uid,
                    "trackedEntityType": te["trackedEntityType"],
                    "orgUnit": te["orgUnit"],
                    "attributes": [{"attribute": a, "value": v} for a, v in te["attributes"].items()],
                    "enrollments": enrollments,
                }
            )

    @app.get("/api/tracker/enrollments/<uid>")
    def enrollment(uid: str) -> Any:
        found = fake.store.enrollments.get(uid)
        if found is None:
            return _web_message(404, f"Enrollment with id {uid} could not be found.")
        return jsonify(found)

    @app.get("/api/tracker/events/<uid>")
    def event(uid: str) -> Any:
        found = fake.store.events.get(uid)
        if found is None:
            return _web_message(404, f"Event with id {uid} could not be found.")
        values = [{"dataElement": d, "value": v} for d, v in found["dataValues"].items()]
        return jsonify({**found, "dataValues": values})

    @app.post("/api/<collection>/<uid>/<prop>")
    def collection_change(collection: str, uid: str, prop: str) -> Any:
        error = change_collection(fake.store, collection, uid, prop, request.get_json(silent=True))
        if error is not None:
            return _web_message(*error)
        return "", 204

    @app.get("/api/<collection>/<uid>")
    def metadata_object(collection: str, uid: str) -> Any:
        # Whole stored objects (the `fields` filter is not applied): enough for reading memberships back.
        kind = METADATA_TYPES.get(collection)
        found = getattr(fake.store, kind[1]).get(uid) if kind else None
        if found is None:
            return _web_message(404, f"{kind[0] if kind else 'Object'} with id {uid} could not be found.")
        if collection == "optionSets" and "options[" in request.args.get("fields", ""):
            options = [fake.store.options.get(o["id"], o) for o in found.get("options") or []]
            found = {**found, "options": [{"id": o["id"], "code": o.get("code")} for o in options]}
        return jsonify(found)

    return app
